//! Blob garbage collection. A blob is queued as garbage in the same write that stops
//! referencing it, in the same map (see `shard.rs`), and deleted later, once that write
//! is durable and a grace period has passed (a GET that read an entry just before an
//! overwrite opens its blobs lazily, part by part). A blob being written is tracked by an
//! intent stored before its data: an object's in its gateway's intent map (see
//! `intents.rs`), removed once the entry that references the blob is written; a part's in
//! the bucket's uploads map, removed by the write of the part's record. An intent never
//! removed (its writer died) is collected once it is old enough, unless the entry it was
//! for references the blob after all.

use crate::intents::intent_maps;
use crate::model::{BucketRecord, PartRecord, RETIRED, decode, encode};
use crate::shard::{GARBAGE, INTENT, garbage_key, intent_key, parse_garbage_key};
use crate::{Index, Result};
use kura_backend::{BlobStore, MAX_WRITE_CHANGES, Scan, Write, key_after};
use serde::{Deserialize, Serialize};

/// How long collectable blobs are kept before deletion.
#[derive(Debug, Clone, Copy)]
pub struct GcPolicy {
    /// An uncommitted blob older than this was abandoned by its writer.
    pub intent_age_ms: u64,
    /// Unreferenced blobs are kept this long for reads already under way.
    pub grace_ms: u64,
}

/// What a blob being written is for: where its entry will be written.
#[derive(Debug, Clone, Copy)]
pub enum BlobHome<'a> {
    /// The data of an object.
    Object { key: &'a str },
    /// A part of a multipart upload.
    Part { upload_id: &'a str, number: u32 },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Intent {
    since_ms: u64,
    bucket: String,
    #[serde(rename = "for")]
    home: IntentFor,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum IntentFor {
    Object { key: String },
    Part { upload_id: String, number: u32 },
}

/// A map no longer in use, waiting for its garbage to be collected before it is dropped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RetiredMap {
    pub bucket: String,
    pub since_ms: u64,
}

/// Where a collection goes on: buckets after this one, then the retired maps.
#[derive(Debug, Clone, Default)]
pub struct GcCursor {
    after: Option<String>,
}

/// What one collection step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStep {
    pub deleted: usize,
    /// Every map was looked at since the cursor last started over.
    pub cycle_done: bool,
}

/// Buckets looked at per step.
const BUCKETS_PER_STEP: usize = 16;

impl Index {
    /// Records that a blob is being written for `home` in `bucket` (its record as the
    /// caller just read it), before its first byte is. Should a reshard retire the map
    /// meanwhile, collection still finds the intent there and checks it against the
    /// entry wherever that landed.
    pub async fn track_new_blob(
        &self,
        bucket: &BucketRecord,
        home: BlobHome<'_>,
        blob: &str,
    ) -> Result<()> {
        let intent = Intent {
            since_ms: self.now_ms(),
            bucket: bucket.name.clone(),
            home: match home {
                BlobHome::Object { key } => IntentFor::Object {
                    key: key.to_owned(),
                },
                BlobHome::Part { upload_id, number } => IntentFor::Part {
                    upload_id: upload_id.to_owned(),
                    number,
                },
            },
        };
        if let BlobHome::Object { .. } = home {
            return self.intents.add(intent_key(blob), encode(&intent)).await;
        }
        let mut write = Write::default();
        write.put(intent_key(blob), encode(&intent));
        let _ = self.kv.write(&home_map(bucket, home), write).await?;
        Ok(())
    }

    /// Queues a blob that will never be referenced (a failed write).
    pub async fn discard_blob(&self, bucket: &str, home: BlobHome<'_>, blob: &str) -> Result<()> {
        let record = self.bucket(bucket).await?;
        let mut write = Write::default();
        write.put(garbage_key(self.now_ms(), blob), Vec::new());
        let object = matches!(home, BlobHome::Object { .. });
        if !object {
            write.delete(intent_key(blob));
        }
        let _ = self.kv.write(&home_map(&record, home), write).await?;
        if object {
            // Queued as garbage first: a crash in between leaves both, never neither.
            self.intents.settle_now(intent_key(blob)).await?;
        }
        Ok(())
    }

    /// Deletes up to `limit` collectable blobs from the maps of the next few buckets
    /// after `cursor` (and, once past the last bucket, of retired maps, dropping those
    /// with nothing left).
    pub async fn collect_garbage(
        &self,
        blobs: &dyn BlobStore,
        policy: GcPolicy,
        limit: usize,
        cursor: &mut GcCursor,
    ) -> Result<GcStep> {
        // Whatever queued these blobs must be durable before they go.
        self.sync().await?;
        let mut step = GcStep::default();
        let start = cursor
            .after
            .as_deref()
            .map(str::as_bytes)
            .map(key_after)
            .unwrap_or_default();
        let page = self
            .kv
            .scan(
                crate::model::BUCKETS,
                &Scan {
                    start,
                    limit: BUCKETS_PER_STEP,
                    ..Scan::default()
                },
            )
            .await?;
        for (_, value) in &page.entries {
            let record: BucketRecord = decode(value)?;
            let mut maps = record.shard_maps();
            maps.push(record.upload_map());
            for map in maps {
                step.deleted += self
                    .collect_map(blobs, policy, &map, limit - step.deleted)
                    .await?
                    .0;
                if step.deleted >= limit {
                    // The cursor stays before this bucket: its rest comes next.
                    return Ok(step);
                }
            }
            cursor.after = Some(record.name);
        }
        if page.next.is_some() {
            return Ok(step);
        }
        for (map, value) in self.read_all(RETIRED).await? {
            if step.deleted >= limit {
                return Ok(step);
            }
            let map = String::from_utf8_lossy(&map).into_owned();
            let retired: RetiredMap = decode(&value)?;
            let (deleted, left) = self
                .collect_map(blobs, policy, &map, limit - step.deleted)
                .await?;
            step.deleted += deleted;
            if !left && self.now_ms().saturating_sub(retired.since_ms) >= policy.grace_ms {
                self.kv.drop_map(&map).await?;
                let mut write = Write::default();
                write.delete(map.as_bytes());
                let _ = self.kv.write(RETIRED, write).await?;
            }
        }
        for map in intent_maps() {
            if step.deleted >= limit {
                return Ok(step);
            }
            step.deleted += self
                .collect_map(blobs, policy, &map, limit - step.deleted)
                .await?
                .0;
        }
        cursor.after = None;
        step.cycle_done = true;
        Ok(step)
    }

    /// Maps retired (by reshards and bucket deletions) and not dropped yet.
    pub async fn retired_maps(&self) -> Result<usize> {
        Ok(self.read_all(RETIRED).await?.len())
    }

    /// Collects up to `limit` blobs of one map; returns how many, and whether anything
    /// (garbage or intents) is left in it.
    async fn collect_map(
        &self,
        blobs: &dyn BlobStore,
        policy: GcPolicy,
        map: &str,
        limit: usize,
    ) -> Result<(usize, bool)> {
        // Blobs are deleted only once the writes that stopped referencing them are
        // durable: a crash must not bring back an index pointing at a deleted blob.
        self.kv.sync().await?;
        let now = self.now_ms();
        // Due: queued at least `grace_ms` ago (at `now - grace_ms` itself included).
        let due_before = garbage_key((now + 1).saturating_sub(policy.grace_ms), "");
        let garbage = self
            .kv
            .scan(map, &Scan::prefix(GARBAGE.to_vec(), limit + 1))
            .await?;
        let mut done = Vec::new();
        let mut deleted = 0;
        for (key, _) in &garbage.entries {
            if key.as_slice() >= due_before.as_slice() || deleted == limit {
                break;
            }
            if let Some((_, blob)) = parse_garbage_key(key) {
                blobs.delete_blob(&blob).await?;
            }
            done.push(key.clone());
            deleted += 1;
        }
        let intents = self
            .kv
            .scan(map, &Scan::prefix(INTENT.to_vec(), limit + 1))
            .await?;
        for (key, value) in &intents.entries {
            if deleted == limit {
                break;
            }
            let intent: Intent = decode(value)?;
            if now.saturating_sub(intent.since_ms) < policy.intent_age_ms {
                continue;
            }
            let blob = String::from_utf8_lossy(&key[INTENT.len()..]).into_owned();
            if !self.intent_settled(map, &intent, &blob).await? {
                blobs.delete_blob(&blob).await?;
                deleted += 1;
            }
            done.push(key.clone());
        }
        for records in done.chunks(MAX_WRITE_CHANGES) {
            let mut write = Write::default();
            for key in records {
                write.delete(key.clone());
            }
            let _ = self.kv.write(map, write).await?;
        }
        let cleared = done.len();
        let left = garbage.entries.len() + intents.entries.len() > cleared;
        Ok((deleted, left))
    }

    /// Whether an old intent's blob got referenced after all, by an entry written where
    /// the intent's map did not see it.
    async fn intent_settled(&self, map: &str, intent: &Intent, blob: &str) -> Result<bool> {
        match &intent.home {
            IntentFor::Object { key } => match self.bucket(&intent.bucket).await {
                // Blob ids are unique: a bucket of the same name made since cannot hold it.
                Ok(bucket) => self.references(&bucket, key, blob).await,
                Err(crate::IndexError::NoSuchBucket) => Ok(false),
                Err(err) => Err(err),
            },
            IntentFor::Part { upload_id, number } => {
                let part = self
                    .kv
                    .get(map, &crate::uploads::part_key(upload_id, *number))
                    .await?;
                Ok(part
                    .map(|p| decode::<PartRecord>(&p))
                    .transpose()?
                    .is_some_and(|p| p.blob == blob))
            }
        }
    }
}

/// The map a blob's intent and garbage records go to.
fn home_map(record: &BucketRecord, home: BlobHome<'_>) -> String {
    match home {
        BlobHome::Object { key } => record.key_map(key),
        BlobHome::Part { .. } => record.upload_map(),
    }
}
