//! Online resharding: a bucket's objects move to a new shard layout while
//! reads, writes and listings go on.
//!
//! During a reshard every write reaches both layouts (see
//! `BucketRecord::write_layouts`), and a worker copies the current layout's
//! records to the target in key order, a few hundred at a time, under those
//! keys' locks so it never overwrites a newer write. The last key copied is
//! persisted with each step, so a restart resumes where it stopped. Reads and
//! listings keep using the current layout, which is complete throughout, until
//! the switch: one atomic update of the bucket record. The old layout's maps
//! are dropped after a grace period, as listings may still be reading them.

use crate::listing::after;
use crate::model::{
    BUCKETS, BucketRecord, RETIRED, Reshard, ShardLayout, decode, encode, object_map,
};
use crate::{Index, IndexError, Result};
use kura_backend::Batch;
use serde::{Deserialize, Serialize};

/// What one reshard step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReshardStep {
    pub copied: u64,
    pub done: bool,
}

/// A bucket's shards and what they hold.
#[derive(Debug, Clone)]
pub struct ShardStats {
    pub shards: u32,
    pub objects_per_shard: Vec<u64>,
    pub reshard: Option<Reshard>,
}

/// A layout replaced by a reshard, waiting to be dropped.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Retired {
    bucket: String,
    layout: ShardLayout,
    since_ms: u64,
}

impl Index {
    /// Starts moving `bucket` to `shards` shards. Asking for the current
    /// count changes nothing.
    pub async fn start_reshard(&self, bucket: &str, shards: u32) -> Result<BucketRecord> {
        let record = {
            let _guard = self.locks.buckets();
            let mut record = self.bucket(bucket)?;
            if record.reshard.is_some() {
                return Err(IndexError::ReshardInProgress);
            }
            if shards == record.layout.shards {
                return Ok(record);
            }
            let generation = self.clock.stamp().ms.max(record.layout.generation + 1);
            record.reshard = Some(Reshard {
                target: ShardLayout { generation, shards },
                started_ms: self.now_ms(),
                copied: 0,
                cursor: None,
            });
            self.put_bucket(&record)?;
            record
        };
        self.sync().await?;
        Ok(record)
    }

    /// Copies up to `max_keys` records to the target layout, and switches to
    /// it once every record is copied.
    pub async fn reshard_step(&self, bucket: &str, max_keys: usize) -> Result<ReshardStep> {
        let record = self.bucket(bucket)?;
        let Some(reshard) = record.reshard.clone() else {
            return Ok(ReshardStep {
                copied: 0,
                done: true,
            });
        };
        let start = reshard.cursor.as_deref().map(after).unwrap_or_default();
        let keys = self
            .scan_objects(&record, &start)?
            .take(max_keys)
            .map(|item| item.map(|(key, _)| key))
            .collect::<Result<Vec<String>>>()?;
        let target = reshard.target;
        {
            // Re-read under the keys' locks: a write since the scan is the one to copy.
            let _guard = self.locks.many(bucket, &keys);
            let mut batch = Batch::default();
            for key in &keys {
                if let Some(current) = self.read_object(&record, key)? {
                    let map = object_map(bucket, &target, target.shard_of(key));
                    batch.put(&map, key.as_bytes(), encode(&current));
                }
            }
            self.kv.apply(batch)?;
        }
        let copied = keys.len() as u64;
        let done = keys.len() < max_keys;
        {
            let _guard = self.locks.buckets();
            let mut record = self.bucket(bucket)?;
            if done {
                let mut batch = Batch::default();
                let retired = Retired {
                    bucket: bucket.to_owned(),
                    layout: record.layout,
                    since_ms: self.now_ms(),
                };
                batch.put(
                    RETIRED,
                    retired_key(bucket, &record.layout),
                    encode(&retired),
                );
                record.layout = target;
                record.reshard = None;
                batch.put(BUCKETS, bucket.as_bytes(), encode(&record));
                self.kv.apply(batch)?;
            } else if let Some(progress) = record.reshard.as_mut() {
                progress.copied += copied;
                progress.cursor = keys.last().cloned();
                self.put_bucket(&record)?;
            }
        }
        self.sync().await?;
        Ok(ReshardStep { copied, done })
    }

    /// Buckets with a reshard under way.
    pub fn resharding(&self) -> Result<Vec<BucketRecord>> {
        Ok(self
            .list_buckets()?
            .into_iter()
            .filter(|b| b.reshard.is_some())
            .collect())
    }

    /// Drops the maps of layouts retired more than `grace_ms` ago.
    pub fn drop_retired(&self, grace_ms: u64) -> Result<usize> {
        let now = self.now_ms();
        let mut dropped = 0;
        for item in self.kv.scan(RETIRED, b"")? {
            let (key, value) = item?;
            let retired: Retired = decode(&value)?;
            if now.saturating_sub(retired.since_ms) < grace_ms {
                continue;
            }
            for shard in 0..retired.layout.shards {
                self.kv
                    .drop_map(&object_map(&retired.bucket, &retired.layout, shard))?;
            }
            let mut batch = Batch::default();
            batch.delete(RETIRED, key);
            self.kv.apply(batch)?;
            dropped += 1;
        }
        Ok(dropped)
    }

    /// Objects per shard of the current layout (a full count, for reports).
    pub fn shard_stats(&self, bucket: &str) -> Result<ShardStats> {
        let record = self.bucket(bucket)?;
        let objects_per_shard = (0..record.layout.shards)
            .map(|shard| {
                Ok(self
                    .kv
                    .scan(&object_map(bucket, &record.layout, shard), b"")?
                    .count() as u64)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ShardStats {
            shards: record.layout.shards,
            objects_per_shard,
            reshard: record.reshard,
        })
    }

    fn put_bucket(&self, record: &BucketRecord) -> Result<()> {
        let mut batch = Batch::default();
        batch.put(BUCKETS, record.name.as_bytes(), encode(record));
        Ok(self.kv.apply(batch)?)
    }
}

fn retired_key(bucket: &str, layout: &ShardLayout) -> Vec<u8> {
    format!("{bucket}\0{}", layout.generation).into_bytes()
}
