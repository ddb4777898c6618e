//! Online resharding: a bucket's objects move to a new shard layout while
//! reads, writes and listings go on.
//!
//! A worker copies the current layout's records to the target in key order,
//! a few hundred at a time, under those keys' locks so it never overwrites a
//! newer write. Writes of the keys a step is about to copy, and of every key
//! before them, reach both layouts (see `Reshard::covered`); writes further
//! on reach only the current layout, as the copy will take them along. The
//! last key copied is persisted in the same batch as the copies (with the
//! target's shard counters, see `counts.rs`), so a restart resumes where it
//! stopped. Reads and listings keep using the current layout, which is
//! complete throughout, until the switch: one atomic update of the bucket
//! record. The old layout's maps are dropped after a grace period, as
//! listings may still be reading them.

use crate::counts::{EntryDeltas, forget_counters};
use crate::listing::after;
use crate::model::{
    BUCKETS, BucketRecord, Covered, RETIRED, Reshard, ShardLayout, decode, encode, object_map,
};
use crate::{Index, IndexError, Result};
use kura_backend::Batch;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Keys copied under one set of lock stripes (of 256): few enough that most
/// writers never wait for a copy, enough to keep the batches efficient.
const COPY_CHUNK_KEYS: usize = 32;

/// What one reshard step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReshardStep {
    pub copied: u64,
    pub done: bool,
    /// How long writes were held off for the switch, when this step switched.
    pub switch_pause: Option<Duration>,
}

impl ReshardStep {
    /// The step of a bucket with no reshard (left) under way.
    const NOTHING_LEFT: ReshardStep = ReshardStep {
        copied: 0,
        done: true,
        switch_pause: None,
    };
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
                target: ShardLayout {
                    generation,
                    shards,
                    counted: true,
                },
                started_ms: self.now_ms(),
                copied: 0,
                cursor: None,
                covered: Covered::Nothing,
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
            return Ok(ReshardStep::NOTHING_LEFT);
        };
        let start = reshard.cursor.as_deref().map(after).unwrap_or_default();
        // This step copies the next `max_keys` keys, or all that are left.
        let (mut ahead, mut last) = (0, None);
        for item in self.scan_keys(&record, &start)?.take(max_keys) {
            last = Some(item?.0);
            ahead += 1;
        }
        let reach = match last {
            Some(key) if ahead == max_keys => Covered::UpTo(key),
            _ => Covered::Everything,
        };
        if !self.cover(bucket, &reshard.target, &reach)? {
            return Ok(ReshardStep::NOTHING_LEFT);
        }
        // Every write that missed the target in this range has ended, so
        // this scan sees its key; later ones reach the target themselves.
        let keys = self
            .scan_keys(&record, &start)?
            .map(|item| item.map(|(key, _)| key))
            .take_while(|key| key.as_ref().map_or(true, |k| reach.holds(k)))
            .collect::<Result<Vec<String>>>()?;
        let copied = keys.len() as u64;
        self.copy_to_target(&record, &reshard.target, &keys)?;
        let done = reach == Covered::Everything;
        let switch_pause = if done {
            Some(self.switch_layout(bucket, &reshard.target)?)
        } else {
            None
        };
        self.sync().await?;
        Ok(ReshardStep {
            copied,
            done,
            switch_pause,
        })
    }

    /// Makes writes of the keys `reach` holds go to the target too. Takes the
    /// bucket lock exclusively, which waits for the writes under way, so
    /// none that read the narrower cover is still to land. Writers read the
    /// cover after it is stored, so any write that relied on it is persisted
    /// after it. False when the reshard is gone.
    fn cover(&self, bucket: &str, target: &ShardLayout, reach: &Covered) -> Result<bool> {
        let _guard = self.locks.buckets();
        let mut record = self.bucket(bucket)?;
        let Some(reshard) = record.reshard.as_mut().filter(|r| r.target == *target) else {
            return Ok(false);
        };
        if reshard.covered < *reach {
            reshard.covered = reach.clone();
            self.put_bucket(&record)?;
        }
        Ok(true)
    }

    /// Copies `keys` to `target`, a chunk at a time: a chunk holds only its
    /// own keys' lock stripes, so writes of other keys go on meanwhile. The
    /// progress is written with the last chunk; a crash before it only
    /// repeats copies, which count nothing twice.
    fn copy_to_target(
        &self,
        scanned: &BucketRecord,
        target: &ShardLayout,
        keys: &[String],
    ) -> Result<()> {
        let chunks = keys.len().div_ceil(COPY_CHUNK_KEYS);
        for (i, chunk) in keys.chunks(COPY_CHUNK_KEYS).enumerate() {
            let progress = (i + 1 == chunks).then_some(keys.len() as u64);
            if !self.copy_chunk(scanned, target, chunk, progress)? {
                break;
            }
        }
        Ok(())
    }

    /// Copies `keys` (and, with `progress`, counts that many keys copied up
    /// to the last of them) in one batch. False when the reshard is gone.
    fn copy_chunk(
        &self,
        scanned: &BucketRecord,
        target: &ShardLayout,
        keys: &[String],
        progress: Option<u64>,
    ) -> Result<bool> {
        let bucket = scanned.name.as_str();
        // Re-read under the keys' locks: a write since the scan is the one to
        // copy. Writers only read the bucket record, and whatever else
        // rewrites it takes the bucket lock exclusively, which these shared
        // guards keep out: the progress can be written here.
        let _guard = self.locks.many(bucket, keys);
        let mut record = self.bucket(bucket)?;
        let Some(reshard) = record.reshard.as_mut().filter(|r| r.target == *target) else {
            return Ok(false); // the bucket is gone, or moved on
        };
        let mut batch = Batch::default();
        let mut entries = EntryDeltas::default();
        for key in keys {
            // A key the target holds is current there already: it got there by
            // a copy or a covered write, and every write since reached both
            // layouts. Skipping it keeps the copy ahead of writers that keep
            // adding keys within the cover.
            let map = object_map(bucket, target, target.shard_of(key));
            if self.kv.get(&map, key.as_bytes())?.is_some() {
                continue;
            }
            // The stored bytes as they are: a copy needs no decoding.
            let from = object_map(bucket, &scanned.layout, scanned.layout.shard_of(key));
            if let Some(current) = self.kv.get(&from, key.as_bytes())? {
                entries.note(bucket, target, key, false, true);
                batch.put(&map, key.as_bytes(), current);
            }
        }
        if let Some(copied) = progress {
            reshard.copied += copied;
            reshard.cursor = keys.last().cloned();
            batch.put(BUCKETS, bucket.as_bytes(), encode(&record));
        }
        let counters = self.lock_counters();
        self.add_entry_counts(&counters, &mut batch, entries)?;
        self.kv.apply(batch)?;
        Ok(true)
    }

    /// Makes `target` the bucket's layout and retires the old one. Returns how
    /// long writers were held off: from asking for the bucket lock (which
    /// stops new writers from entering) until it is released.
    fn switch_layout(&self, bucket: &str, target: &ShardLayout) -> Result<Duration> {
        let paused = Instant::now();
        {
            let _guard = self.locks.buckets();
            let mut record = self.bucket(bucket)?;
            if record.reshard.as_ref().map(|r| r.target) != Some(*target) {
                return Ok(paused.elapsed());
            }
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
            record.layout = *target;
            record.reshard = None;
            batch.put(BUCKETS, bucket.as_bytes(), encode(&record));
            self.kv.apply(batch)?;
        }
        Ok(paused.elapsed())
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
            forget_counters(&mut batch, &retired.bucket, &retired.layout);
            batch.delete(RETIRED, key);
            self.kv.apply(batch)?;
            dropped += 1;
        }
        Ok(dropped)
    }

    /// Entries per shard of the current layout, from the shard counters.
    pub fn shard_stats(&self, bucket: &str) -> Result<ShardStats> {
        let record = self.bucket(bucket)?;
        Ok(ShardStats {
            shards: record.layout.shards,
            objects_per_shard: self.shard_entries(bucket, &record.layout)?,
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
