//! The reshard log's records in a source shard (see `reshard.rs`), and where this
//! process's replays of them have got to, so that the next read of a shard's log starts
//! after the records already replayed rather than at the log's start. The replayed records
//! are deleted, but RADOS keeps an omap key's deletion (RocksDB's tombstone) until
//! compaction, and a read from the start steps over every one of them again: an emptied
//! log read in 9.5 ms after 44k deletions, 0.6 ms from its place. Only an optimisation: a
//! process without a place (restarted, or taking over another gateway's lease) reads from
//! the start.
//!
//! A place is the last numbered record (see `log_key`) of a page replayed into the
//! target. Numbers follow the order in which records land, and a page is one snapshot of
//! the log from its start or place on, so every record up to the place was in that page
//! or an earlier one: those after it are the ones left to replay. Records an older Kura's
//! writers keyed by their clock (`legacy_log_key`) sort after every numbered one, so a
//! read from any place still finds them.

use crate::model::Stamp;
use kura_backend::key_after;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Where a map's reshard log records are, among its own records (see `shard.rs`).
pub(crate) const LOG: &[u8] = b"\xffl";

/// The key of log record number `n` of a `Logging` map. Every write that logs is
/// guarded on the header it bumps `logged` in, so a map's records are numbered in the
/// order they landed, and a replay can read on from the last it took (see
/// `LogPlaces`) instead of over the deletions of those it took.
pub(crate) fn log_key(n: u64) -> Vec<u8> {
    [LOG, &n.to_be_bytes()].concat()
}

/// The key of a log record as older Kuras' writers key it (and every writer of a map an
/// older Kura set logging): a stamp of the writer's clock, not in the order records land.
/// Such keys sort after every numbered one, until number 2^40 (a stamp's ms is past that).
pub(crate) fn legacy_log_key(stamp: Stamp) -> Vec<u8> {
    [LOG, &stamp.ms.to_be_bytes(), &stamp.seq.to_be_bytes()].concat()
}

/// Whether `key` is a numbered log record's (see `log_key`).
pub(crate) fn is_numbered_log_key(key: &[u8]) -> bool {
    key.len() == LOG.len() + 8 && key.starts_with(LOG)
}

/// Places kept at most; past that they start over (a miss costs a slower read).
const MAX_PLACES: usize = 4096;

/// Per source shard and reshard target (named by its first shard's map): the key of the
/// last record replayed.
#[derive(Default)]
pub(crate) struct LogPlaces {
    places: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl LogPlaces {
    /// Where a read of `source`'s log for the reshard to `target` starts.
    pub(crate) fn start(&self, source: &str, target: &str) -> Vec<u8> {
        let places = self.places.lock().unwrap_or_else(PoisonError::into_inner);
        places
            .get(&(source.to_owned(), target.to_owned()))
            .map_or_else(|| LOG.to_vec(), |last| key_after(last))
    }

    /// Notes that `records`, a page of `source`'s log read from its place on, are replayed
    /// into `target`.
    pub(crate) fn replayed(&self, source: &str, target: &str, records: &[Vec<u8>]) {
        let Some(last) = records.iter().rev().find(|k| is_numbered_log_key(k)) else {
            return;
        };
        let mut places = self.places.lock().unwrap_or_else(PoisonError::into_inner);
        if places.len() >= MAX_PLACES {
            places.clear();
        }
        places.insert((source.to_owned(), target.to_owned()), last.clone());
    }

    /// Forgets the places of the reshard to `target`, which is over.
    pub(crate) fn forget(&self, target: &str) {
        let mut places = self.places.lock().unwrap_or_else(PoisonError::into_inner);
        places.retain(|(_, t), _| t != target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_starts_after_the_last_numbered_record_replayed() {
        let places = LogPlaces::default();
        assert_eq!(places.start("s", "t"), LOG);
        let stamped = legacy_log_key(Stamp {
            ms: 1_796_000_000_000,
            seq: 1,
        });
        places.replayed("s", "t", &[log_key(1), log_key(2), stamped.clone()]);
        let start = places.start("s", "t");
        assert!(log_key(2) < start && start <= log_key(3));
        // Records keyed by an older Kura's clock are never skipped.
        assert!(stamped >= start);
        // A page without numbered records leaves the place where it was.
        places.replayed("s", "t", &[stamped]);
        assert_eq!(places.start("s", "t"), start);
        assert_eq!(places.start("s", "other"), LOG);
        places.forget("t");
        assert_eq!(places.start("s", "t"), LOG);
    }
}
