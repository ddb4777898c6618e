//! Per-bucket usage counters and quotas. Counters change in the same atomic
//! batch as the index entries they count, so they stay exact across crashes.

use crate::counts::EntryDeltas;
use crate::model::{BucketRecord, Quota, USAGE, Usage, UsageDelta, decode, encode};
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
        let next = Usage {
            objects: usage.objects.saturating_add_signed(delta.objects),
            bytes: usage.bytes.saturating_add_signed(delta.bytes),
        };
        let over =
            |limit: Option<u64>, grows: bool, value: u64| grows && limit.is_some_and(|l| value > l);
        if over(bucket.quota.max_objects, delta.objects > 0, next.objects)
            || over(bucket.quota.max_bytes, delta.bytes > 0, next.bytes)
        {
            return Err(IndexError::QuotaExceeded);
        }
        if delta != UsageDelta::default() {
            batch.put(USAGE, bucket.name.as_bytes(), encode(&next));
        }
        self.add_entry_counts(&guard, &mut batch, entries)?;
        Ok(self.kv.apply(batch)?)
    }
}
