//! The bucket records this gateway read last. Two uses, neither trusted for correctness:
//!
//! - where each bucket's keys were (its layout), so that a key's map can be read in the
//!   same round trip as the bucket record; a map guessed wrong is read again;
//! - the record itself for a moment after its read ([`RECENT`]), so that a write whose
//!   request has just read the record to authorize it does not read it again. Its layout
//!   may be stale by then: every write is guarded by its map's state, and a write whose
//!   guard fails, or whose map a switch or a deletion retired, reads the record again (see
//!   `Index::read_key`). Its settings (versioning, quota, …) are those of at most
//!   `RECENT` ago, well within the second in which bucket changes reach every gateway.

use crate::model::{BucketRecord, ShardLayout, shard_map_name};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Buckets whose layout is remembered at most; past that the memory starts over (a miss
/// costs one read).
const MAX_BUCKETS: usize = 4096;
/// How long a record read stands in for another read by a write.
const RECENT: Duration = Duration::from_millis(500);
/// Records kept before those older than `RECENT` are dropped: only buckets used within
/// `RECENT` stay, whatever their number.
const RECENT_KEPT: usize = 256;

#[derive(Default)]
pub(crate) struct SeenRecords {
    layouts: Mutex<HashMap<String, (String, ShardLayout)>>,
    recent: Mutex<HashMap<String, (Instant, Arc<BucketRecord>)>>,
}

impl SeenRecords {
    /// Notes a record just read from the storage, or written to it.
    pub(crate) fn remember(&self, record: &BucketRecord) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if recent.len() >= RECENT_KEPT {
                recent.retain(|_, (at, _)| at.elapsed() < RECENT);
            }
            recent.insert(
                record.name.clone(),
                (Instant::now(), Arc::new(record.clone())),
            );
        }
        let mut layouts = self.layouts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((id, layout)) = layouts.get(&record.name)
            && id == record.map_id()
            && *layout == record.layout
        {
            return;
        }
        if layouts.len() >= MAX_BUCKETS {
            layouts.clear();
        }
        layouts.insert(
            record.name.clone(),
            (record.map_id().to_owned(), record.layout),
        );
    }

    /// Forgets the record of `bucket`, which this process has just deleted.
    pub(crate) fn forget(&self, bucket: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.remove(bucket);
    }

    /// `bucket`'s record if it was read (or written) here less than `RECENT` ago.
    pub(crate) fn recent(&self, bucket: &str) -> Option<Arc<BucketRecord>> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, record) = recent.get(bucket)?;
        (at.elapsed() < RECENT).then(|| record.clone())
    }

    /// The map `key` of `bucket` was in when the bucket's record was last read here.
    pub(crate) fn key_map(&self, bucket: &str, key: &str) -> Option<String> {
        let layouts = self.layouts.lock().unwrap_or_else(PoisonError::into_inner);
        let (id, layout) = layouts.get(bucket)?;
        Some(shard_map_name(id, layout, layout.shard_of(key)))
    }
}
