//! The one thread that changes the embedded backend's maps (group commit).
//!
//! Jobs queue on a channel. The thread takes every job waiting, applies them in arrival
//! order in one redb transaction and commits it once, then answers them all: a guard is
//! checked against the changes of the jobs before it, exactly as if they had run one at
//! a time. The commit is flushed to disk when a job of the batch asks for durability (a
//! sync or a map's removal), or when writes have waited unflushed for [`FLUSH_EVERY`].

use super::store::{Map, kv_error};
use crate::{Outcome, Result, Write};
use redb::{Database, Durability, ReadableTable, WriteTransaction};
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
    Sync {
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
        let error = crate::BackendError::Kv(message.to_owned());
        // A caller that gave up waiting no longer needs its answer.
        let _ = match self {
            Job::Write { done, .. } => done.send(Err(error)).is_ok(),
            Job::Drop { done, .. } | Job::Sync { done } => done.send(Err(error)).is_ok(),
        };
    }
}

/// How far the writer has got: commits made, and how many of them are flushed to disk.
#[derive(Default)]
pub(super) struct Progress {
    committed: AtomicU64,
    flushed: AtomicU64,
}

impl Progress {
    /// Whether every write answered so far is on disk (a sync has nothing to do).
    pub(super) fn all_flushed(&self) -> bool {
        let committed = self.committed.load(Ordering::Acquire);
        self.flushed.load(Ordering::Acquire) >= committed
    }
}

/// Starts the writer of `db`; it stops when every sender is dropped.
pub(super) fn start(
    db: Arc<Database>,
    progress: Arc<Progress>,
) -> Result<(Sender<Job>, JoinHandle<()>)> {
    let (jobs, queue) = channel();
    let writer = std::thread::Builder::new()
        .name("kura-index-writer".into())
        .spawn(move || run(&db, &queue, &progress))?;
    Ok((jobs, writer))
}

fn run(db: &Database, queue: &Receiver<Job>, progress: &Progress) {
    // When the oldest commit not yet flushed to disk was made.
    let mut unflushed: Option<Instant> = None;
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
        let overdue = unflushed.is_some_and(|since| since.elapsed() >= FLUSH_EVERY);
        let flush = overdue || batch.iter().any(Job::wants_flush);
        let work = batch.iter().any(Job::changes) || (flush && unflushed.is_some());
        if !work {
            // Nothing to change, nothing to flush: every sync here is already covered.
            answer(batch, Vec::new());
            continue;
        }
        match commit(db, &batch, flush) {
            Ok(outcomes) => {
                let committed = progress.committed.fetch_add(1, Ordering::AcqRel) + 1;
                if flush {
                    progress.flushed.store(committed, Ordering::Release);
                }
                answer(batch, outcomes);
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
            }
        }
    }
}

/// Applies the batch's changes in one transaction and commits it (flushed to disk if
/// `flush`); returns the outcome of each write, in order.
fn commit(db: &Database, batch: &[Job], flush: bool) -> Result<Vec<Outcome>> {
    let mut txn = db.begin_write().map_err(kv_error)?;
    if !flush {
        txn.set_durability(Durability::None).map_err(kv_error)?;
    }
    let mut outcomes = Vec::new();
    for job in batch {
        match job {
            Job::Write { map, write, .. } => outcomes.push(apply(&txn, map, write)?),
            Job::Drop { map, .. } => {
                txn.delete_table(Map::new(map)).map_err(kv_error)?;
            }
            Job::Sync { .. } => {}
        }
    }
    txn.commit().map_err(kv_error)?;
    Ok(outcomes)
}

fn apply(txn: &WriteTransaction, map: &str, write: &Write) -> Result<Outcome> {
    let mut table = txn.open_table(Map::new(map)).map_err(kv_error)?;
    for (key, expected) in &write.guards {
        let held = table.get(key.as_slice()).map_err(kv_error)?;
        if held.as_ref().map(|v| v.value()) != expected.as_deref() {
            return Ok(Outcome::GuardFailed);
        }
    }
    for (key, value) in &write.changes {
        match value {
            Some(value) => table.insert(key.as_slice(), value.as_slice()),
            None => table.remove(key.as_slice()),
        }
        .map_err(kv_error)?;
    }
    Ok(Outcome::Applied)
}

/// Answers every job of a committed batch; `outcomes` are its writes', in order.
fn answer(batch: Vec<Job>, outcomes: Vec<Outcome>) {
    let mut outcomes = outcomes.into_iter();
    // A caller that gave up waiting no longer needs its answer.
    for job in batch {
        match job {
            Job::Write { done, .. } => {
                let outcome = outcomes.next().expect("one outcome per write");
                let _ = done.send(Ok(outcome));
            }
            Job::Drop { done, .. } | Job::Sync { done } => {
                let _ = done.send(Ok(()));
            }
        }
    }
}
