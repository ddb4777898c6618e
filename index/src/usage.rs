//! Per-bucket usage and quotas: the sum of the counters in the headers of the bucket's
//! current shards, each changed in the same write as the entries it counts, so they stay
//! exact across crashes and gateways.

use crate::model::{BucketRecord, ObjectVersion, Quota, Usage, UsageDelta};
use crate::shard::Header;
use crate::{Index, IndexError, Result};

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
    pub async fn bucket_usage(&self, bucket: &str) -> Result<Usage> {
        self.usage_of(&self.bucket(bucket).await?).await
    }

    /// The headers of the bucket's current shards, read concurrently.
    pub(crate) async fn headers(&self, record: &BucketRecord) -> Result<Vec<Header>> {
        let maps = record.shard_maps();
        let reads = maps.iter().map(|map| self.header(map));
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .map(|(header, _)| header)
            .collect())
    }

    pub(crate) async fn usage_of(&self, record: &BucketRecord) -> Result<Usage> {
        Ok(self
            .headers(record)
            .await?
            .iter()
            .fold(Usage::default(), |sum, h| Usage {
                objects: sum.objects + h.objects,
                bytes: sum.bytes + h.bytes,
            }))
    }

    /// Usage of every bucket, in name order.
    pub async fn usage(&self) -> Result<Vec<BucketUsage>> {
        let mut out = Vec::new();
        for bucket in self.list_buckets().await? {
            let usage = self.usage_of(&bucket).await?;
            out.push(BucketUsage {
                objects: usage.objects,
                bytes: usage.bytes,
                shards: bucket.layout.shards,
                resharding: bucket.reshard.is_some(),
                bucket: bucket.name,
                owner: bucket.owner,
            });
        }
        Ok(out)
    }

    pub async fn set_quota(&self, bucket: &str, quota: Quota) -> Result<BucketRecord> {
        self.update_bucket(bucket, |record| record.quota = quota)
            .await
    }

    /// Refuses, before its body is read, a write of `size` bytes over `current` that the
    /// quota cannot take now. Only a fast path: the commit checks again.
    pub async fn check_room(
        &self,
        bucket: &BucketRecord,
        current: Option<&ObjectVersion>,
        size: u64,
    ) -> Result<()> {
        if bucket.quota == Quota::default() {
            return Ok(());
        }
        let delta = UsageDelta::replacing(current, Some(size));
        let usage = self.usage_of(bucket).await?;
        self.rounds.saw(&bucket.upload_map(), usage);
        if delta.exceeds(usage, bucket.quota) {
            return Err(IndexError::QuotaExceeded);
        }
        Ok(())
    }

    /// Whether this gateway saw room for one more object of `size` bytes in `bucket` less
    /// than a second ago (or it has no quota): a write may then skip `check_room` and the
    /// shards' reads it takes. A hint only; the commit checks the quota exactly.
    pub fn room_seen(&self, bucket: &BucketRecord, size: u64) -> bool {
        bucket.quota == Quota::default()
            || self.rounds.seen(&bucket.upload_map()).is_some_and(|usage| {
                !UsageDelta::replacing(None, Some(size)).exceeds(usage, bucket.quota)
            })
    }
}
