//! The `Index` handle: the maps it works on and the in-process helpers it keeps. Its
//! operations live in the modules named after what they do (buckets, objects, uploads, …).

use crate::Result;
use crate::locks::KeyLocks;
use crate::model::{Clock, unix_ms};
use kura_backend::KvStore;
use std::sync::Arc;

/// The index over one backend. Cheap to share behind an `Arc`.
pub struct Index {
    pub(crate) kv: Arc<dyn KvStore>,
    pub(crate) locks: KeyLocks,
    /// Serialises read-modify-write of the usage and shard-entry counters
    /// across keys of all buckets; held only while a batch is applied in memory.
    pub(crate) counters: std::sync::Mutex<()>,
    pub(crate) clock: Clock,
    pub(crate) initial_shards: u32,
}

impl Index {
    pub fn new(kv: Arc<dyn KvStore>, initial_shards: u32) -> Self {
        Index {
            kv,
            locks: KeyLocks::default(),
            counters: std::sync::Mutex::new(()),
            clock: Clock::default(),
            initial_shards: initial_shards.max(1),
        }
    }

    /// Makes every index change made so far durable.
    pub async fn sync(&self) -> Result<()> {
        Ok(self.kv.sync().await?)
    }

    /// The current time in milliseconds, as stamped on new records.
    pub fn now_ms(&self) -> u64 {
        unix_ms()
    }
}
