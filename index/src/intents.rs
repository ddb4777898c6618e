//! This gateway's intents for object data being written, batched: a blob's intent must be
//! stored before its first byte is (so that a writer that dies leaves nothing garbage
//! collection cannot find), which costs every PutObject a write of its own when each
//! intent goes alone. Here the intents of the gateway's concurrent writers go together, in
//! one write to one of a few intent maps, and their removals, once their entries are
//! written, go with the next write rather than each in one of its own. A removal that
//! never lands (the gateway died first) leaves an intent that collection checks against
//! the entry it was for, once it is old, as it does for the intents of writers that died.

use kura_backend::{BackendError, KvStore, MAX_WRITE_CHANGES, Write};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

/// The intent maps: a gateway writes to one, chosen by its name, and collection reads
/// them all. A fixed number, so that every gateway knows them without a registry.
const INTENT_MAPS: u64 = 16;

/// The name of intent map `n`.
pub(crate) fn intent_map(n: u64) -> String {
    format!("intents.{n}")
}

/// Every intent map.
pub(crate) fn intent_maps() -> impl Iterator<Item = String> {
    (0..INTENT_MAPS).map(intent_map)
}

/// The intent map the gateway named `instance` writes to.
fn map_of(instance: &str) -> String {
    // FNV-1a: stable across builds, so a restarted gateway keeps its map.
    let hash = instance
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    intent_map(hash % INTENT_MAPS)
}

type Done = oneshot::Sender<std::result::Result<(), String>>;

/// A change waiting for the next write, and who waits for it to be stored.
struct Change {
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    done: Option<Done>,
}

#[derive(Default)]
struct Pending {
    changes: Vec<Change>,
    /// Keys of the intents this process stored and has not settled yet.
    tracked: HashSet<Vec<u8>>,
    /// Whether a task is writing the changes.
    flushing: bool,
    /// Whether a task will write them after `SETTLE_WITHIN`.
    timed: bool,
}

/// How long the removal of an intent may wait for a write that carries an intent: only
/// when none comes within this does it get a write of its own.
const SETTLE_WITHIN: Duration = Duration::from_millis(200);

pub(crate) struct IntentLog {
    kv: Arc<dyn KvStore>,
    map: String,
    pending: Mutex<Pending>,
}

impl IntentLog {
    pub(crate) fn new(kv: Arc<dyn KvStore>, instance: &str) -> Arc<Self> {
        Arc::new(IntentLog {
            kv,
            map: map_of(instance),
            pending: Mutex::default(),
        })
    }

    /// Stores the intent `value` at `key`; returns once it is stored.
    pub(crate) async fn add(self: &Arc<Self>, key: Vec<u8>, value: Vec<u8>) -> crate::Result<()> {
        let (done, stored) = oneshot::channel();
        {
            let mut pending = self.lock();
            pending.tracked.insert(key.clone());
            self.queue(&mut pending, key.clone(), Some(value), done);
        }
        // No data follows an intent that failed, or whose caller went away meanwhile: no
        // entry will settle it, and collection checks it once it is old.
        let mut untrack = Untrack {
            log: self,
            key: Some(key),
        };
        outcome(stored).await?;
        untrack.key = None;
        Ok(())
    }

    /// Drops the intent at `key`, if this process stored it, with the next write (within
    /// `SETTLE_WITHIN`).
    pub(crate) fn settle(self: &Arc<Self>, key: Vec<u8>) {
        let mut pending = self.lock();
        if !pending.tracked.remove(&key) {
            return;
        }
        pending.changes.push(Change {
            key,
            value: None,
            done: None,
        });
        if !pending.flushing && !std::mem::replace(&mut pending.timed, true) {
            // Weak: a dropped index does not keep its storage open meanwhile.
            let log = Arc::downgrade(self);
            tokio::spawn(async move {
                tokio::time::sleep(SETTLE_WITHIN).await;
                let Some(log) = log.upgrade() else {
                    return;
                };
                let flush = {
                    let mut pending = log.lock();
                    pending.timed = false;
                    !pending.changes.is_empty() && !std::mem::replace(&mut pending.flushing, true)
                };
                if flush {
                    log.flush().await;
                }
            });
        }
    }

    /// `settle`, returning once the intent is gone.
    pub(crate) async fn settle_now(self: &Arc<Self>, key: Vec<u8>) -> crate::Result<()> {
        let (done, stored) = oneshot::channel();
        {
            let mut pending = self.lock();
            if !pending.tracked.remove(&key) {
                return Ok(());
            }
            self.queue(&mut pending, key, None, done);
        }
        outcome(stored).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a change that a caller waits for, and starts a task writing the queue
    /// unless one runs: a task, so that a caller that goes away does not stop the writes
    /// of the others.
    fn queue(
        self: &Arc<Self>,
        pending: &mut Pending,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        done: Done,
    ) {
        pending.changes.push(Change {
            key,
            value,
            done: Some(done),
        });
        if !std::mem::replace(&mut pending.flushing, true) {
            tokio::spawn(self.clone().flush());
        }
    }

    /// Writes the queued changes, as many per write as a write takes, until none is left.
    async fn flush(self: Arc<Self>) {
        loop {
            let batch: Vec<Change> = {
                let mut pending = self.lock();
                if pending.changes.is_empty() {
                    pending.flushing = false;
                    return;
                }
                let n = pending.changes.len().min(MAX_WRITE_CHANGES);
                pending.changes.drain(..n).collect()
            };
            let mut write = Write::default();
            for change in &batch {
                match &change.value {
                    Some(value) => write.put(change.key.clone(), value.clone()),
                    None => write.delete(change.key.clone()),
                };
            }
            // Unguarded: it always applies. A removal lost with a failed write is left to
            // collection.
            let written = self.kv.write(&self.map, write).await;
            let outcome = written.map(|_| ()).map_err(|err| err.to_string());
            for done in batch.into_iter().filter_map(|change| change.done) {
                let _ = done.send(outcome.clone());
            }
        }
    }
}

/// Forgets an intent this process will not settle, when dropped holding its key.
struct Untrack<'a> {
    log: &'a IntentLog,
    key: Option<Vec<u8>>,
}

impl Drop for Untrack<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.log.lock().tracked.remove(&key);
        }
    }
}

/// What the write that carried a change reported.
async fn outcome(stored: oneshot::Receiver<std::result::Result<(), String>>) -> crate::Result<()> {
    stored
        .await
        .unwrap_or_else(|_| Err("the intent log stopped".to_owned()))
        .map_err(|err| BackendError::Unavailable(err).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_keeps_its_map_and_every_map_is_listed() {
        assert_eq!(map_of("host-a:9000"), map_of("host-a:9000"));
        let all: Vec<String> = intent_maps().collect();
        assert_eq!(all.len() as u64, INTENT_MAPS);
        assert!(all.contains(&map_of("host-a:9000")));
        assert!(all.contains(&map_of("local")));
    }
}
