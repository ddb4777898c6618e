//! The one thread that changes the embedded backend's maps (group commit).
//!
//! Jobs queue on a channel. The thread takes every job waiting, applies them in arrival
//! order in one redb transaction and commits it once, then answers them all: a guard is
//! checked against the changes of the jobs before it, exactly as if they had run one at
//! a time. The commit is flushed to disk when a job of the batch asks for durability (a
//! sync or a map's removal), or when writes have waited unflushed for [`FLUSH_EVERY`].
//!
//! An I/O error (a full disk) fails the batch, and redb then refuses every write until the
//! database is reopened: the writer reopens it, at its last flush, and fails the syncs of
//! the commits that went with it, so nothing unflushed is ever acknowledged.

use super::store::{Map, Store};
use crate::{BackendError, Outcome, Result, Write};
use redb::{Database, Durability, ReadableTable, WriteTransaction};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a write may stay unflushed when no caller syncs (background work), bounding
/// what a crash can take of it.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Jobs applied in one transaction at most.
const MAX_BATCH: usize = 512;

pub(super) enum Job {
    Write {
        map: String,
        write: Write,
        done: oneshot::Sender<Result<Outcome>>,
    },
    Drop {
        map: String,
        done: oneshot::Sender<Result<()>>,
    },
    /// Answered once the commit numbered `target` is flushed.
    Sync {
        target: u64,
        done: oneshot::Sender<Result<()>>,
    },
}

impl Job {
    fn wants_flush(&self) -> bool {
        !matches!(self, Job::Write { .. })
    }

    fn changes(&self) -> bool {
        !matches!(self, Job::Sync { .. })
    }

    fn fail(self, message: &str) {
        let error = BackendError::Unavailable(message.to_owned());
        // A caller that gave up waiting no longer needs its answer.
        let _ = match self {
            Job::Write { done, .. } => done.send(Err(error)).is_ok(),
            Job::Drop { done, .. } | Job::Sync { done, .. } => done.send(Err(error)).is_ok(),
        };
    }
}

/// How far the writer has got: commits made, how many of them are flushed to disk, and
/// up to which commit unflushed ones were lost (an I/O error made the database reopen at
/// its last flush).
#[derive(Default)]
pub(super) struct Progress {
    committed: AtomicU64,
    flushed: AtomicU64,
    lost_up_to: AtomicU64,
}

impl Progress {
    /// The commit a sync called now must see flushed: every write answered so far is in
    /// it or before it.
    pub(super) fn sync_target(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    pub(super) fn flushed(&self, target: u64) -> bool {
        self.flushed.load(Ordering::Acquire) >= target
    }

    fn lost(&self, target: u64) -> bool {
        !self.flushed(target) && target <= self.lost_up_to.load(Ordering::Acquire)
    }
}

/// Starts the writer of `store`; it stops when every sender is dropped.
pub(super) fn start(
    store: Arc<Store>,
    progress: Arc<Progress>,
) -> Result<(Sender<Job>, JoinHandle<()>)> {
    let (jobs, queue) = channel();
    let writer = std::thread::Builder::new()
        .name("kura-index-writer".into())
        .spawn(move || {
            // A writer that died would leave every later write failing while reads go on:
            // better a restart, which checks the file and carries on.
            if std::panic::catch_unwind(AssertUnwindSafe(|| run(&store, &queue, &progress)))
                .is_err()
            {
                tracing::error!("the index writer panicked: aborting");
                std::process::abort();
            }
        })?;
    Ok((jobs, writer))
}

fn run(store: &Store, queue: &Receiver<Job>, progress: &Progress) {
    // When the oldest commit not yet flushed to disk was made.
    let mut unflushed: Option<Instant> = None;
    // Whether the database must be reopened before anything else (a failed reopen is
    // tried again every FLUSH_EVERY, writes or not, so that reads come back too).
    let mut broken = false;
    loop {
        let mut batch = Vec::new();
        match queue.recv_timeout(FLUSH_EVERY) {
            Ok(job) => batch.push(job),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if broken {
            match store.reopen() {
                Ok(()) => broken = false,
                Err(e) => {
                    let message = format!("the index cannot be reopened: {e}");
                    batch.into_iter().for_each(|job| job.fail(&message));
                    continue;
                }
            }
        }
        let overdue = unflushed.is_some_and(|since| since.elapsed() >= FLUSH_EVERY);
        let flush = overdue || batch.iter().any(Job::wants_flush);
        let work = batch.iter().any(Job::changes) || (flush && unflushed.is_some());
        if !work {
            // Nothing to change, nothing to flush: each sync here is covered, or was lost.
            answer(batch, Vec::new(), progress);
            continue;
        }
        // Only this thread reopens and `broken` is clear, so the database is open.
        let db = match store.db() {
            Ok(db) => db,
            Err(e) => {
                batch.into_iter().for_each(|job| job.fail(&e.to_string()));
                broken = true;
                continue;
            }
        };
        match commit(&db, &batch, flush) {
            Ok(outcomes) => {
                let committed = progress.committed.fetch_add(1, Ordering::AcqRel) + 1;
                if flush {
                    progress.flushed.store(committed, Ordering::Release);
                }
                answer(batch, outcomes, progress);
                unflushed = if flush {
                    None
                } else {
                    unflushed.or(Some(Instant::now()))
                };
            }
            Err(e) => {
                let message = e.to_string();
                tracing::error!(error = %message, "an index commit failed");
                batch.into_iter().for_each(|job| job.fail(&message));
                // redb refuses every write after an I/O error until the database is
                // reopened, at its last flush: what was committed since is gone, and the
                // syncs waiting for it must fail.
                if matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo) {
                    let committed = progress.committed.load(Ordering::Acquire);
                    progress.lost_up_to.store(committed, Ordering::Release);
                    unflushed = None;
                    broken = true;
                }
            }
        }
    }
}

/// Applies the batch's changes in one transaction and commits it (flushed to disk if
/// `flush`); returns the outcome of each write, in order.
fn commit(db: &Database, batch: &[Job], flush: bool) -> redb::Result<Vec<Outcome>, redb::Error> {
    let mut txn = db.begin_write()?;
    if !flush {
        txn.set_durability(Durability::None)?;
    }
    let mut outcomes = Vec::new();
    for job in batch {
        match job {
            Job::Write { map, write, .. } => outcomes.push(apply(&txn, map, write)?),
            Job::Drop { map, .. } => {
                txn.delete_table(Map::new(map))?;
            }
            Job::Sync { .. } => {}
        }
    }
    txn.commit()?;
    Ok(outcomes)
}

fn apply(txn: &WriteTransaction, map: &str, write: &Write) -> redb::Result<Outcome, redb::Error> {
    let mut table = txn.open_table(Map::new(map))?;
    for (key, expected) in &write.guards {
        let held = table.get(key.as_slice())?;
        if held.as_ref().map(|v| v.value()) != expected.as_deref() {
            return Ok(Outcome::GuardFailed);
        }
    }
    for (key, value) in &write.changes {
        match value {
            Some(value) => table.insert(key.as_slice(), value.as_slice()),
            None => table.remove(key.as_slice()),
        }?;
    }
    Ok(Outcome::Applied)
}

/// Answers every job of a committed batch; `outcomes` are its writes', in order. A sync
/// whose writes were lost to a reopen fails.
fn answer(batch: Vec<Job>, outcomes: Vec<Outcome>, progress: &Progress) {
    let mut outcomes = outcomes.into_iter();
    // A caller that gave up waiting no longer needs its answer.
    for job in batch {
        match job {
            Job::Write { done, .. } => {
                let outcome = outcomes.next().expect("one outcome per write");
                let _ = done.send(Ok(outcome));
            }
            Job::Sync { target, done } if progress.lost(target) => {
                let _ = done.send(Err(BackendError::Unavailable(
                    "index writes were lost to an I/O error before they were flushed".into(),
                )));
            }
            Job::Drop { done, .. } | Job::Sync { done, .. } => {
                let _ = done.send(Ok(()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_fails_when_its_writes_were_lost_to_a_reopen() {
        let progress = Progress::default();
        progress.committed.store(5, Ordering::SeqCst);
        progress.flushed.store(3, Ordering::SeqCst);
        // Commits 4 and 5 were not flushed when an I/O error made the database reopen.
        progress.lost_up_to.store(5, Ordering::SeqCst);
        let (done, mut answer_of) = oneshot::channel();
        answer(vec![Job::Sync { target: 4, done }], Vec::new(), &progress);
        assert!(matches!(
            answer_of.try_recv(),
            Ok(Err(BackendError::Unavailable(_)))
        ));
        // Flushed before the loss, or committed after the reopen: nothing was lost.
        for target in [3, 6] {
            let (done, mut answer_of) = oneshot::channel();
            answer(vec![Job::Sync { target, done }], Vec::new(), &progress);
            assert!(
                matches!(answer_of.try_recv(), Ok(Ok(()))),
                "target {target}"
            );
        }
    }
}
