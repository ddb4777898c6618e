//! Bucket records: created if absent, changed by compare-and-set, and deleted only once
//! every map of the bucket has been closed while empty, so that no write through any
//! gateway can land in a bucket being deleted.

use crate::index::to_the_end;
use crate::model::{
    BUCKETS, BucketRecord, Quota, RETIRED, ShardLayout, Versioning, decode, encode,
};
use crate::shard::{Header, MapState, Retry};
use crate::{Index, IndexError, Result};
use kura_backend::{MAX_WRITE_CHANGES, Scan, Write};
use std::sync::Arc;

/// Rows read per page when a whole (small) map is read.
const PAGE: usize = 1000;

impl Index {
    /// Creates a bucket, or fails with `BucketExists` naming the current owner. `configure`
    /// sets the new record's settings (ACL, ownership, …) in the same write.
    pub async fn create_bucket(
        &self,
        name: &str,
        owner: &str,
        region: &str,
        configure: impl FnOnce(&mut BucketRecord),
    ) -> Result<BucketRecord> {
        let stamp = self.clock.stamp();
        let mut record = BucketRecord {
            name: name.to_owned(),
            id: format!("{name}.{:x}.{}.{:x}", stamp.ms, self.instance, stamp.seq),
            owner: owner.to_owned(),
            created_ms: self.now_ms(),
            region: region.to_owned(),
            layout: ShardLayout {
                generation: stamp.ms,
                shards: self.initial_shards,
            },
            quota: Quota::default(),
            reshard: None,
            grants: Vec::new(),
            tags: Vec::new(),
            cors: None,
            default_encryption: None,
            lifecycle: None,
            lifecycle_pass: None,
            policy: None,
            acl: None,
            ownership: None,
            public_access_block: None,
            versioning: Versioning::Unversioned,
            object_lock: None,
            logging: None,
        };
        configure(&mut record);
        let mut write = Write::default();
        write
            .expect(name.as_bytes(), None)
            .put(name.as_bytes(), encode(&record));
        if !self.kv.write(BUCKETS, write).await?.applied() {
            let existing = self.bucket(name).await?;
            return Err(IndexError::BucketExists {
                owner: existing.owner,
            });
        }
        self.seen.remember(&record);
        self.sync().await?;
        Ok(record)
    }

    pub async fn bucket(&self, name: &str) -> Result<BucketRecord> {
        Ok(self.bucket_raw(name).await?.0)
    }

    /// The record and its stored bytes (for a guard).
    pub(crate) async fn bucket_raw(&self, name: &str) -> Result<(BucketRecord, Vec<u8>)> {
        let raw = self
            .kv
            .get(BUCKETS, name.as_bytes())
            .await?
            .ok_or(IndexError::NoSuchBucket)?;
        let record: BucketRecord = decode(&raw)?;
        self.seen.remember(&record);
        Ok((record, raw))
    }

    /// Lets `user` use `bucket` (`granted`), or stops letting them.
    pub async fn set_grant(&self, bucket: &str, user: &str, granted: bool) -> Result<BucketRecord> {
        self.update_bucket(bucket, |record| {
            record.grants.retain(|u| u != user);
            if granted {
                record.grants.push(user.to_owned());
            }
        })
        .await
    }

    /// Changes a bucket record's settings (tags, CORS rules, …) durably: read, change,
    /// and write if nobody changed it meanwhile, else again.
    pub async fn update_bucket(
        &self,
        bucket: &str,
        mut change: impl FnMut(&mut BucketRecord),
    ) -> Result<BucketRecord> {
        let record = self
            .change_bucket(bucket, |record| {
                change(record);
                Ok::<_, IndexError>(true)
            })
            .await?;
        self.sync().await?;
        Ok(record)
    }

    /// Compare-and-set of a bucket record: `change` edits it and says whether to write it.
    /// Returns the record as stored.
    pub(crate) async fn change_bucket<E: From<IndexError>>(
        &self,
        bucket: &str,
        change: impl FnMut(&mut BucketRecord) -> std::result::Result<bool, E>,
    ) -> std::result::Result<BucketRecord, E> {
        self.change_bucket_from(bucket, None, change).await
    }

    /// `change_bucket`, starting from `read` (the record and its stored bytes, read
    /// earlier): one round trip when nothing changed the record since.
    pub(crate) async fn change_bucket_from<E: From<IndexError>>(
        &self,
        bucket: &str,
        mut read: Option<(BucketRecord, Vec<u8>)>,
        mut change: impl FnMut(&mut BucketRecord) -> std::result::Result<bool, E>,
    ) -> std::result::Result<BucketRecord, E> {
        let mut retry = Retry::new();
        loop {
            retry.pause().await?;
            let (mut record, raw) = match read.take() {
                Some(read) => read,
                None => self.bucket_raw(bucket).await?,
            };
            if !change(&mut record)? {
                return Ok(record);
            }
            let mut write = Write::default();
            write
                .expect(bucket.as_bytes(), Some(raw))
                .put(bucket.as_bytes(), encode(&record));
            if self
                .kv
                .write(BUCKETS, write)
                .await
                .map_err(IndexError::from)?
                .applied()
            {
                self.seen.remember(&record);
                return Ok(record);
            }
        }
    }

    /// Every bucket, in name order.
    pub async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.read_all(BUCKETS)
            .await?
            .iter()
            .map(|(_, value)| decode(value))
            .collect()
    }

    /// Every entry of a small map, read a page at a time.
    pub(crate) async fn read_all(&self, map: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut scan = Scan::prefix(Vec::new(), PAGE);
        loop {
            let page = self.kv.scan(map, &scan).await?;
            out.extend(page.entries);
            match page.next {
                Some(next) => scan.start = next,
                None => return Ok(out),
            }
        }
    }

    /// Whether a bucket holds any object (current or not).
    pub async fn has_objects(&self, name: &str) -> Result<bool> {
        let record = self.bucket(name).await?;
        Ok(self.headers(&record).await?.iter().any(|h| h.entries > 0))
    }

    /// Deletes an empty bucket (no object and no open multipart upload), to the end even
    /// if the caller stops waiting (a client that goes away drops its request): a deletion
    /// cut off between closing the bucket's maps and deleting its record would leave them
    /// closed to writes until they time out.
    pub async fn delete_bucket(self: &Arc<Self>, name: &str) -> Result<()> {
        let (index, name) = (self.clone(), name.to_owned());
        to_the_end(async move { index.delete_bucket_here(&name).await }).await
    }

    /// `delete_bucket`, in the caller's task. Each of the bucket's maps is closed while its
    /// header says it is empty, so a write racing through another gateway either landed
    /// before (and the bucket is not empty) or finds the map closed and then the bucket
    /// gone.
    async fn delete_bucket_here(&self, name: &str) -> Result<()> {
        let mut retry = Retry::new();
        loop {
            retry.pause().await?;
            let (record, raw) = self.bucket_raw(name).await?;
            if record.reshard.is_some() {
                return Err(IndexError::ReshardInProgress);
            }
            let mut maps = record.shard_maps();
            maps.push(record.upload_map());
            let mut closed = Vec::new();
            for map in &maps {
                if !self.close_if_empty(map).await? {
                    break;
                }
                closed.push(map.as_str());
            }
            let empty = closed.len() == maps.len();
            let mut write = Write::default();
            write
                .expect(name.as_bytes(), Some(raw))
                .delete(name.as_bytes());
            if empty && self.kv.write(BUCKETS, write).await?.applied() {
                self.seen.forget(name);
                self.retire(&record.name, &maps).await?;
                self.sync().await?;
                return Ok(());
            }
            for map in closed {
                let closing = |state: &MapState| matches!(state, MapState::Closing { .. });
                self.set_state(map, closing, MapState::Open).await?;
            }
            if !empty {
                return Err(IndexError::BucketNotEmpty);
            }
            // The record changed meanwhile (a setting): start again.
        }
    }

    /// Closes `map` if it is open and holds nothing; false if it holds something. A map
    /// a deletion left closed too long (its gateway died, or failed to delete the record)
    /// is closed anew.
    async fn close_if_empty(&self, map: &str) -> Result<bool> {
        let mut retry = Retry::new();
        loop {
            retry.pause().await?;
            let (header, raw) = self.header(map).await?;
            if header.entries > 0 {
                return Ok(false);
            }
            let abandoned = header.left_closed(self.now_ms());
            if header.state != MapState::Open && !abandoned {
                // Logging/Frozen: a reshard (refused above, so finishing); Closing: another
                // deletion under way. Retry.
                continue;
            }
            let closed = Header {
                state: MapState::Closing {
                    since_ms: self.now_ms(),
                },
                ..header
            };
            let mut write = Write::default();
            crate::shard::guard_header(&mut write, raw, &closed);
            if self.kv.write(map, write).await?.applied() {
                return Ok(true);
            }
        }
    }

    /// Hands maps no longer in use to garbage collection, which drops them once nothing in
    /// them remains to collect.
    pub(crate) async fn retire(&self, bucket: &str, maps: &[String]) -> Result<()> {
        let since_ms = self.now_ms();
        for chunk in maps.chunks(MAX_WRITE_CHANGES) {
            let mut write = Write::default();
            for map in chunk {
                let retired = crate::gc::RetiredMap {
                    bucket: bucket.to_owned(),
                    since_ms,
                };
                write.put(map.as_bytes(), encode(&retired));
            }
            let _ = self.kv.write(RETIRED, write).await?;
        }
        for map in maps {
            self.set_state(map, |s| *s != MapState::Retired, MapState::Retired)
                .await?;
        }
        Ok(())
    }
}
