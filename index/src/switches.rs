//! The reshard switches this process is running, so that its own writers stay out of the
//! bucket's shards from the switch's start to its end and wait for that end instead of
//! polling the frozen shards: their calls would queue on the storage in front of the
//! switch's own and lengthen the very pause they wait out. Only an optimisation: writers
//! of other gateways, or of a switch that died, meet the frozen shards and poll (the
//! bucket's record, while it says a switch runs: see `Index::read_key`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// How often a writer held off by a switch of another gateway looks again: little added
/// to the pause, and few reads of a busy shard.
const POLL: Duration = Duration::from_millis(20);
/// How long a writer held off by a switch of this process waits for its end before
/// looking again anyway.
const LOCAL_WAIT: Duration = Duration::from_millis(500);

#[derive(Default)]
pub(crate) struct Switches {
    running: Mutex<HashSet<String>>,
    /// How many run: every write asks, and almost always none does, so it need not lock.
    count: AtomicUsize,
    ended: Notify,
}

/// A switch of `bucket` running in this process, until dropped.
pub(crate) struct Running<'a> {
    switches: &'a Switches,
    bucket: String,
}

impl Switches {
    pub(crate) fn start(&self, bucket: &str) -> Running<'_> {
        self.running().insert(bucket.to_owned());
        self.count.fetch_add(1, Ordering::SeqCst);
        Running {
            switches: self,
            bucket: bucket.to_owned(),
        }
    }

    /// Whether this process is switching `bucket`'s layout.
    pub(crate) fn runs(&self, bucket: &str) -> bool {
        self.count.load(Ordering::SeqCst) > 0 && self.running().contains(bucket)
    }

    /// Waits while a switch holds off writes to `bucket`: until a switch of this process
    /// ends, or a poll's time when the switch runs elsewhere.
    pub(crate) async fn wait(&self, bucket: &str) {
        // Registered before looking, so that an end between the two still wakes us.
        let ended = self.ended.notified();
        tokio::pin!(ended);
        ended.as_mut().enable();
        let wait = if self.runs(bucket) { LOCAL_WAIT } else { POLL };
        let _ = tokio::time::timeout(wait, ended).await;
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        // Out of the set before the wake-up: a writer that looks after it polls.
        self.switches.running().remove(&self.bucket);
        self.switches.count.fetch_sub(1, Ordering::SeqCst);
        self.switches.ended.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn writers_held_off_by_a_local_switch_wake_when_it_ends() {
        let switches = std::sync::Arc::new(Switches::default());
        let running = switches.start("b");
        let waiter = tokio::spawn({
            let switches = switches.clone();
            async move {
                let started = Instant::now();
                switches.wait("b").await;
                started.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(running);
        let waited = waiter.await.unwrap();
        // Longer than a poll (it did not poll), shorter than the local wait (woken).
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < LOCAL_WAIT, "{waited:?}");
    }

    /// A write to a bucket this process is switching waits for the switch's end before
    /// it reads anything.
    #[tokio::test]
    async fn writes_to_a_bucket_being_switched_here_wait_for_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let kv = std::sync::Arc::new(kura_backend::LocalBackend::open(dir.path()).unwrap());
        let index = std::sync::Arc::new(crate::Index::new(kv, 1));
        index
            .create_bucket("b", "o", "us-east-1", |_| {})
            .await
            .unwrap();
        let running = index.switches.start("b");
        let write = tokio::spawn({
            let index = index.clone();
            async move {
                let by = crate::Deleter {
                    owner: "o",
                    bypass: crate::LockBypass::Nothing,
                };
                index.delete_object("b", "k", None, by).await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!write.is_finished());
        drop(running);
        write.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn writers_held_off_by_another_gateways_switch_poll() {
        let switches = Switches::default();
        let _other_bucket = switches.start("other");
        let started = Instant::now();
        switches.wait("b").await;
        assert!(started.elapsed() < Duration::from_millis(200));
    }
}
