//! Kura's bucket index: buckets, object versions and multipart uploads, kept
//! in the backend's ordered key-value maps. A bucket's objects are spread over
//! shards; listings merge the shards back into S3's byte order.
//!
//! Nothing here knows HTTP or S3 XML: callers get typed records and errors.

mod buckets;
mod counts;
mod error;
mod gc;
mod identity;
mod listing;
mod locks;
mod model;
mod objects;
mod pacing;
mod reshard;
mod uploads;
mod usage;

pub use error::{IndexError, Result};
pub use gc::{GcEntry, GcPolicy};
pub use identity::{KeyRecord, UserRecord};
pub use listing::{ListPage, ListParams};
pub use model::{
    BucketRecord, Covered, ObjectMeta, ObjectRecord, ObjectVersion, PartRecord, PartRef, Quota,
    Reshard, ShardLayout, Stamp, StoredChecksum, UploadRecord, Usage,
};
pub use pacing::{DEFAULT_RESHARD_SHARE, RESHARD_STEP_KEYS, reshard_pause};
pub use reshard::{ReshardStep, ShardStats};
pub use uploads::{CompletedPart, UploadListParams};
pub use usage::BucketUsage;

use kura_backend::KvStore;
use std::sync::Arc;

/// The index over one backend. Cheap to share behind an `Arc`.
pub struct Index {
    kv: Arc<dyn KvStore>,
    locks: locks::KeyLocks,
    /// Serialises read-modify-write of the usage and shard-entry counters
    /// across keys of all buckets; held only while a batch is applied in memory.
    counters: std::sync::Mutex<()>,
    clock: model::Clock,
    initial_shards: u32,
}

impl Index {
    pub fn new(kv: Arc<dyn KvStore>, initial_shards: u32) -> Self {
        Index {
            kv,
            locks: locks::KeyLocks::default(),
            counters: std::sync::Mutex::new(()),
            clock: model::Clock::default(),
            initial_shards: initial_shards.max(1),
        }
    }

    /// Makes every index change made so far durable.
    pub async fn sync(&self) -> Result<()> {
        Ok(self.kv.sync().await?)
    }

    /// The current time in milliseconds, as stamped on new records.
    pub fn now_ms(&self) -> u64 {
        model::unix_ms()
    }
}
