//! Per-bucket usage counters and quotas. Counters change in the same atomic
//! batch as the index entries they count, so they stay exact across crashes.

use crate::counts::EntryDeltas;
use crate::model::{BucketRecord, ObjectVersion, Quota, USAGE, Usage, UsageDelta, decode, encode};
use crate::{Index, IndexError, Result};
use kura_backend::Batch;

/// A bucket's usage, for reports and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUsage {
    pub bucket: String,
    pub owner: String,
    pub objects: u64,
    pub bytes: u64,
    /// Shards of the current layout.
    pub shards: u32,
    pub resharding: bool,
}

impl Index {
    pub fn bucket_usage(&self, bucket: &str) -> Result<Usage> {
        Ok(self
            .kv
            .get(USAGE, bucket.as_bytes())?
            .map(|b| decode(&b))
            .transpose()?
            .unwrap_or_default())
    }

    /// Usage of every bucket, in name order.
    pub fn usage(&self) -> Result<Vec<BucketUsage>> {
        self.list_buckets()?
            .into_iter()
            .map(|b| {
                let usage = self.bucket_usage(&b.name)?;
                Ok(BucketUsage {
                    bucket: b.name,
                    owner: b.owner,
                    objects: usage.objects,
                    bytes: usage.bytes,
                    shards: b.layout.shards,
                    resharding: b.reshard.is_some(),
                })
            })
            .collect()
    }

    pub async fn set_quota(&self, bucket: &str, quota: Quota) -> Result<BucketRecord> {
        self.update_bucket(bucket, |record| record.quota = quota)
            .await
    }

    /// Refuses, before its body is read, a write of `size` bytes over `current` that the
    /// quota cannot take now. Only a fast path: the commit checks again, atomically.
    pub fn check_room(
        &self,
        bucket: &BucketRecord,
        current: Option<&ObjectVersion>,
        size: u64,
    ) -> Result<()> {
        let delta = UsageDelta::replacing(current, Some(size));
        if delta.exceeds(self.bucket_usage(&bucket.name)?, bucket.quota) {
            return Err(IndexError::QuotaExceeded);
        }
        Ok(())
    }

    /// Applies `batch` together with the usage and shard-entry changes it
    /// causes, unless it takes the bucket over its quota. Shrinking is always
    /// allowed.
    pub(crate) fn apply_counted(
        &self,
        mut batch: Batch,
        bucket: &BucketRecord,
        delta: UsageDelta,
        entries: EntryDeltas,
    ) -> Result<()> {
        let guard = self.lock_counters();
        let usage = self.bucket_usage(&bucket.name)?;
        if delta.exceeds(usage, bucket.quota) {
            return Err(IndexError::QuotaExceeded);
        }
        if delta != UsageDelta::default() {
            batch.put(USAGE, bucket.name.as_bytes(), encode(&usage.apply(delta)));
        }
        self.add_entry_counts(&guard, &mut batch, entries)?;
        Ok(self.kv.apply(batch)?)
    }
}
