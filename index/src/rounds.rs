//! This process's writes waiting to reserve room in a bucket with a quota, and the room
//! they hold: the queues that let one round reserve for many writes (see `quota.rs`), and
//! the usage the rounds last saw.

use crate::model::{BucketRecord, Quota, Usage, UsageDelta};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a usage seen stands for the bucket's: see `Rounds::seen`.
const SEEN_FOR: Duration = Duration::from_secs(1);
/// Buckets whose usage is remembered before the stale ones are forgotten.
const SEEN_MAX: usize = 4096;

/// Room held for one write until released.
#[derive(Debug)]
pub(crate) struct Reservation {
    /// The uploads map it is held in, and its key there.
    pub(crate) map: String,
    pub(crate) key: Vec<u8>,
    /// The growth it holds room for, within this quota.
    pub(crate) delta: UsageDelta,
    pub(crate) quota: Quota,
}

impl Reservation {
    /// Whether it holds room for `delta` in `bucket` as it now stands.
    pub(crate) fn covers(&self, delta: UsageDelta, bucket: &BucketRecord) -> bool {
        self.map == bucket.upload_map()
            && self.quota == bucket.quota
            && delta.objects <= self.delta.objects
            && delta.bytes <= self.delta.bytes
    }
}

/// This process's writes waiting to reserve, per uploads map. One round reserves for all
/// of them at once, so that a bucket's writers do not each take a turn at the sequence
/// number: one reservation per turn of three round trips held a bucket with a quota to
/// about 50 PUT/s on RADOS. Only an optimisation: a round is guarded like any reservation.
#[derive(Default)]
pub(crate) struct Rounds {
    queues: Mutex<HashMap<String, Vec<Waiter>>>,
    /// Per uploads map: the usage and reservations a round or a check last read, and when.
    seen: Mutex<HashMap<String, (Instant, Usage)>>,
}

/// A write waiting for a round.
pub(crate) struct Waiter {
    pub(crate) delta: UsageDelta,
    pub(crate) turn: oneshot::Sender<Turn>,
}

pub(crate) enum Turn {
    /// The round's answer: the reservation, or None when the growth does not fit.
    Reserved(Option<Reservation>),
    /// This write runs the next round.
    Lead(Baton),
}

/// The right to run a map's next round, which one call holds at a time. Dropped (the round
/// done, or its caller gone), it passes to the first write still waiting.
pub(crate) struct Baton {
    rounds: Arc<Rounds>,
    map: String,
}

impl Rounds {
    /// Queues a write of `map`: where its turn will come, or the baton when no round
    /// runs.
    pub(crate) fn join(
        self: &Arc<Self>,
        map: &str,
        delta: UsageDelta,
    ) -> std::result::Result<oneshot::Receiver<Turn>, Baton> {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        match queues.get_mut(map) {
            Some(waiting) => {
                let (turn, answer) = oneshot::channel();
                waiting.push(Waiter { delta, turn });
                Ok(answer)
            }
            None => {
                queues.insert(map.to_owned(), Vec::new());
                Err(Baton {
                    rounds: self.clone(),
                    map: map.to_owned(),
                })
            }
        }
    }

    /// Remembers that `map`'s bucket held `usage` (counters and reservations) just now.
    pub(crate) fn saw(&self, map: &str, usage: Usage) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= SEEN_MAX {
            seen.retain(|_, (at, _)| at.elapsed() < SEEN_FOR);
        }
        seen.insert(map.to_owned(), (Instant::now(), usage));
    }

    /// What `map`'s bucket held when last seen, if that was less than a second ago. A
    /// hint, never the quota's check: other gateways' writes are not in it.
    pub(crate) fn seen(&self, map: &str) -> Option<Usage> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, usage) = seen.get(map)?;
        (at.elapsed() < SEEN_FOR).then_some(*usage)
    }

    /// The writes waiting for `map`'s next round, at most `max`.
    pub(crate) fn take(&self, map: &str, max: usize) -> Vec<Waiter> {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(waiting) = queues.get_mut(map) else {
            return Vec::new();
        };
        waiting.drain(..max.min(waiting.len())).collect()
    }
}

impl Baton {
    pub(crate) fn map(&self) -> &str {
        &self.map
    }
}

impl Drop for Baton {
    fn drop(&mut self) {
        if self.map.is_empty() {
            // Handed on below: nothing left to pass.
            return;
        }
        let mut queues = (self.rounds.queues.lock()).unwrap_or_else(PoisonError::into_inner);
        let Some(waiting) = queues.get_mut(&self.map) else {
            return;
        };
        while !waiting.is_empty() {
            let next = waiting.remove(0);
            let baton = Baton {
                rounds: self.rounds.clone(),
                map: std::mem::take(&mut self.map),
            };
            match next.turn.send(Turn::Lead(baton)) {
                Ok(()) => return,
                // Its caller is gone: the baton comes back, unused.
                Err(Turn::Lead(mut back)) => self.map = std::mem::take(&mut back.map),
                Err(Turn::Reserved(_)) => unreachable!("a baton was sent"),
            }
        }
        queues.remove(&self.map);
    }
}
