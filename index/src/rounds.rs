//! This process's writes to the uploads map of a bucket with a quota, queued so that one
//! write serves many: the rounds that reserve room for many writes at once (see
//! `quota.rs`), the releases of the room they held, and the usage the rounds last saw.

use crate::model::{BucketRecord, Quota, Usage, UsageDelta};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a usage seen stands for the bucket's: see `Rounds::seen`.
const SEEN_FOR: Duration = Duration::from_secs(1);
/// Buckets whose usage is remembered before the stale ones are forgotten.
const SEEN_MAX: usize = 4096;
/// How long what a round knows of a map stands in for reading it: see `Known`.
const KNOWN_FOR: Duration = Duration::from_secs(10);

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

/// This process's writes waiting for the uploads map, per map. One round reserves for all
/// of them at once, so that a bucket's writers do not each take a turn at the sequence
/// number: one reservation per turn of three round trips held a bucket with a quota to
/// about 50 PUT/s on RADOS. Releases wait beside them and go in the next write to the
/// map, a round's or one of releases only: the map is one RADOS object, whose writes the
/// cluster applies one after the other, and a release write per PUT held a bucket with a
/// quota to half the rate of one without. Only an optimisation: a round is guarded like
/// any reservation, and a release is a delete that may happen twice.
#[derive(Default)]
pub(crate) struct Rounds {
    queues: Mutex<HashMap<String, Vec<Waiter>>>,
    /// Per uploads map: the usage and reservations a round or a check last read, and when.
    seen: Mutex<HashMap<String, (Instant, Usage)>>,
    /// Per uploads map: what this process's last round left there.
    known: Mutex<HashMap<String, Known>>,
    /// Per bucket with a quota: its record as a write that reserved last read it, and when.
    records: Mutex<HashMap<String, (Instant, BucketRecord)>>,
}

/// What this process's last round of a map left there, which the next round uses instead
/// of reading the reservations and the shards' counters again while no other gateway's
/// round has written the map since: its write is guarded on the sequence number, which
/// every round bumps. Never less than the map and the shards hold: every growth of a
/// bucket with a quota is reserved, so the counters grew since they were read by no more
/// than the reservations known, and those of this process released since, added to them;
/// other gateways' reservations stay counted until read again, even once released or
/// lapsed. Over-counting only refuses early, so a round that would refuse reads again.
#[derive(Debug)]
pub(crate) struct Known {
    /// The sequence number's stored bytes (None while the map has none).
    pub(crate) seq: Option<Vec<u8>>,
    /// The shards' counters as read, plus the growth of the reservations released since.
    pub(crate) counters: Usage,
    /// The reservations held, by key: as read, and made since by this process.
    pub(crate) reserved: HashMap<Vec<u8>, UsageDelta>,
    /// When the map and the counters were read.
    pub(crate) read_at: Instant,
}

impl Known {
    /// The counters and the reservations held.
    pub(crate) fn held(&self) -> Usage {
        (self.reserved.values()).fold(self.counters, |held, delta| held.apply(*delta))
    }

    /// Counts the reservations `keys`, released, in the counters: their writes are done.
    pub(crate) fn release<'a>(&mut self, keys: impl IntoIterator<Item = &'a Vec<u8>>) {
        for key in keys {
            if let Some(delta) = self.reserved.remove(key) {
                self.counters = self.counters.apply(delta);
            }
        }
    }
}

/// Writes taken from the queue: what each wants, and where its answer goes.
pub(crate) type Taken<T> = Vec<(T, oneshot::Sender<Turn>)>;

/// A write waiting for its turn at the map.
pub(crate) struct Waiter {
    pub(crate) wants: Wants,
    pub(crate) turn: oneshot::Sender<Turn>,
}

pub(crate) enum Wants {
    /// Room for this growth.
    Room(UsageDelta),
    /// The reservation with this key removed: its write is done.
    Release(Vec<u8>),
}

pub(crate) enum Turn {
    /// The round's answer: the reservation, or None when the growth does not fit.
    Reserved(Option<Reservation>),
    /// The release is written.
    Released,
    /// This write takes the next turn at the map.
    Lead(Baton),
}

/// The right to write a map next, which one call holds at a time. Dropped (the write
/// done, or its caller gone), it passes to the first write still waiting, one that wants
/// room first: its round takes the releases along.
pub(crate) struct Baton {
    rounds: Arc<Rounds>,
    map: String,
}

impl Rounds {
    /// Queues a write of `map`: where its turn will come, or the baton when no write of
    /// the map is under way.
    pub(crate) fn join(
        self: &Arc<Self>,
        map: &str,
        wants: Wants,
    ) -> std::result::Result<oneshot::Receiver<Turn>, Baton> {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        match queues.get_mut(map) {
            Some(waiting) => {
                let (turn, answer) = oneshot::channel();
                waiting.push(Waiter { wants, turn });
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

    /// What this process's last round of `map` left there, unless read too long ago.
    /// Taken out: the baton's holder keeps it while it writes the map.
    pub(crate) fn take_known(&self, map: &str) -> Option<Known> {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known
            .remove(map)
            .filter(|k| k.read_at.elapsed() < KNOWN_FOR)
    }

    /// Keeps what a round of `map` left there for the next one.
    pub(crate) fn keep_known(&self, map: &str, left: Known) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known.len() >= SEEN_MAX {
            known.retain(|_, k| k.read_at.elapsed() < KNOWN_FOR);
        }
        known.insert(map.to_owned(), left);
    }

    /// Remembers `bucket`'s record, read by a write that reserves room in it.
    pub(crate) fn remember(&self, bucket: &BucketRecord) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if records.len() >= SEEN_MAX {
            records.retain(|_, (at, _)| at.elapsed() < SEEN_FOR);
        }
        records.insert(bucket.name.clone(), (Instant::now(), bucket.clone()));
    }

    /// `bucket`'s record, if a write that reserved room in it read it less than a second
    /// ago. A hint: a write checks its reservation against the record it reads itself.
    pub(crate) fn record(&self, bucket: &str) -> Option<BucketRecord> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, record) = records.get(bucket)?;
        (at.elapsed() < SEEN_FOR).then(|| record.clone())
    }

    /// What `map`'s bucket held when last seen, if that was less than a second ago. A
    /// hint, never the quota's check: other gateways' writes are not in it.
    pub(crate) fn seen(&self, map: &str) -> Option<Usage> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, usage) = seen.get(map)?;
        (at.elapsed() < SEEN_FOR).then_some(*usage)
    }

    /// The writes waiting for room in `map`, at most `max`, and then its releases, at most
    /// `max_releases`.
    pub(crate) fn take(
        &self,
        map: &str,
        max: usize,
        max_releases: usize,
    ) -> (Taken<UsageDelta>, Taken<Vec<u8>>) {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(waiting) = queues.get_mut(map) else {
            return Default::default();
        };
        let (mut room_count, mut release_count) = (0, 0);
        let taken: Vec<Waiter> = (waiting.extract_if(.., |w| {
            let (count, most) = match w.wants {
                Wants::Room(_) => (&mut room_count, max),
                Wants::Release(_) => (&mut release_count, max_releases),
            };
            *count += 1;
            *count <= most
        }))
        .collect();
        let (mut rooms, mut releases) = (Vec::new(), Vec::new());
        for Waiter { wants, turn } in taken {
            match wants {
                Wants::Room(delta) => rooms.push((delta, turn)),
                Wants::Release(key) => releases.push((key, turn)),
            }
        }
        (rooms, releases)
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
            let first = (waiting
                .iter()
                .position(|w| matches!(w.wants, Wants::Room(_))))
            .unwrap_or(0);
            let next = waiting.remove(first);
            let baton = Baton {
                rounds: self.rounds.clone(),
                map: std::mem::take(&mut self.map),
            };
            match next.turn.send(Turn::Lead(baton)) {
                Ok(()) => return,
                // Its caller is gone: the baton comes back, unused. (A release's key goes
                // with it; its reservation lapses.)
                Err(Turn::Lead(mut back)) => self.map = std::mem::take(&mut back.map),
                Err(_) => unreachable!("a baton was sent"),
            }
        }
        queues.remove(&self.map);
    }
}
