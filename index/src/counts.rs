//! Entries per shard, kept as counters beside the shards, so that stats and
//! the reshard planner read one value per shard instead of counting keys.
//!
//! An entry is a key's record in a shard map, whatever versions it holds. A
//! counter changes in the same atomic batch as the entries it counts, under
//! the index's counter lock (read-modify-write of a shared value), so a crash
//! at any point leaves it exact. A reshard counts the target layout as it
//! fills it: the copy and the writes that reach both layouts check whether
//! the target already holds the key, which makes a repeated copy (after a
//! restart from the persisted cursor) count nothing twice.

use crate::model::{SHARD_ENTRIES, ShardLayout, object_map};
use crate::{Index, Result};
use kura_backend::Batch;
use std::collections::BTreeMap;
use std::sync::MutexGuard;

/// Changes to shard counters caused by one batch, summed per counter.
#[derive(Debug, Default)]
pub(crate) struct EntryDeltas(BTreeMap<Vec<u8>, i64>);

impl EntryDeltas {
    /// Notes that `key`'s shard in `layout` held an entry (`had`) and will
    /// hold one (`has`) once the batch is applied.
    pub(crate) fn note(
        &mut self,
        bucket: &str,
        layout: &ShardLayout,
        key: &str,
        had: bool,
        has: bool,
    ) {
        if !layout.counted || had == has {
            return;
        }
        let counter = counter_key(bucket, layout, layout.shard_of(key));
        *self.0.entry(counter).or_default() += if has { 1 } else { -1 };
    }
}

/// Proof that the caller holds the counter lock.
pub(crate) type CounterGuard<'a> = MutexGuard<'a, ()>;

impl Index {
    pub(crate) fn lock_counters(&self) -> CounterGuard<'_> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds to `batch` the counter values that `deltas` lead to. Only sound
    /// while the counter lock is held until the batch is applied.
    pub(crate) fn add_entry_counts(
        &self,
        _held: &CounterGuard<'_>,
        batch: &mut Batch,
        deltas: EntryDeltas,
    ) -> Result<()> {
        for (counter, delta) in deltas.0 {
            if delta == 0 {
                continue;
            }
            let value = self.counter(&counter)?.saturating_add_signed(delta);
            batch.put(SHARD_ENTRIES, counter, value.to_be_bytes().to_vec());
        }
        Ok(())
    }

    /// Entries in each shard of `layout`: its counters when it is counted,
    /// else (a layout from before counting) a full scan.
    pub(crate) fn shard_entries(&self, bucket: &str, layout: &ShardLayout) -> Result<Vec<u64>> {
        (0..layout.shards)
            .map(|shard| {
                if layout.counted {
                    self.counter(&counter_key(bucket, layout, shard))
                } else {
                    Ok(self
                        .kv
                        .scan(&object_map(bucket, layout, shard), b"")?
                        .count() as u64)
                }
            })
            .collect()
    }

    fn counter(&self, counter: &[u8]) -> Result<u64> {
        Ok(self
            .kv
            .get(SHARD_ENTRIES, counter)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }
}

/// Removes the counters of `layout` (its maps are being dropped).
pub(crate) fn forget_counters(batch: &mut Batch, bucket: &str, layout: &ShardLayout) {
    if layout.counted {
        for shard in 0..layout.shards {
            batch.delete(SHARD_ENTRIES, counter_key(bucket, layout, shard));
        }
    }
}

/// `bucket NUL generation shard`, fixed-width big-endian numbers: a bucket
/// name holds no NUL, so no two counters share a key, and none is the key of
/// a bucket's usage (its bare name) in the same map.
fn counter_key(bucket: &str, layout: &ShardLayout, shard: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(bucket.len() + 13);
    key.extend_from_slice(bucket.as_bytes());
    key.push(0);
    key.extend_from_slice(&layout.generation.to_be_bytes());
    key.extend_from_slice(&shard.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use crate::model::{BUCKETS, ObjectMeta, ObjectVersion, Stamp};
    use crate::{Index, IndexError};
    use kura_backend::{Batch, LocalBackend};
    use std::sync::Arc;

    fn version() -> ObjectVersion {
        ObjectVersion {
            version_id: "null".into(),
            stamp: Stamp { ms: 0, seq: 0 },
            delete_marker: false,
            size: 0,
            etag: String::new(),
            meta: ObjectMeta::default(),
            checksum: None,
            parts: Vec::new(),
            multipart: false,
            owner: "o".into(),
            upload_id: None,
        }
    }

    /// A bucket record written before counting began has no `counted` field:
    /// its stats come from a scan, and a reshard makes it counted.
    #[tokio::test]
    async fn layouts_from_before_counting_are_scanned_until_resharded() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::new(Arc::new(LocalBackend::open(dir.path()).unwrap()), 2);
        index
            .create_bucket("b", "o", "us-east-1", |_| {})
            .await
            .unwrap();
        // Rewrite the record as an older build stored it.
        let mut old = serde_json::to_value(index.bucket("b").unwrap()).unwrap();
        old["layout"].as_object_mut().unwrap().remove("counted");
        let mut batch = Batch::default();
        batch.put(BUCKETS, "b", serde_json::to_vec(&old).unwrap());
        index.kv.apply(batch).unwrap();
        assert!(!index.bucket("b").unwrap().layout.counted);
        for key in ["a", "b", "c", "d", "e"] {
            index
                .put_object::<IndexError>("b", key, version(), |_| Ok(()))
                .await
                .unwrap();
        }
        index.delete_object("b", "c").await.unwrap();
        let scanned = index.shard_stats("b").unwrap().objects_per_shard;
        assert_eq!(scanned.iter().sum::<u64>(), 4);
        assert_eq!(scanned.len(), 2);

        index.start_reshard("b", 3).await.unwrap();
        while !index.reshard_step("b", 2).await.unwrap().done {}
        let record = index.bucket("b").unwrap();
        assert!(record.layout.counted);
        let counted = index.shard_stats("b").unwrap().objects_per_shard;
        let recount: Vec<u64> = (0..3)
            .map(|shard| {
                let map = crate::model::object_map("b", &record.layout, shard);
                index.kv.scan(&map, b"").unwrap().count() as u64
            })
            .collect();
        assert_eq!(counted, recount);
        assert_eq!(counted.iter().sum::<u64>(), 4);
    }
}
