use crate::counts::EntryDeltas;
use crate::gc::{clear_intent, queue_garbage};
use crate::listing::{Items, ListPage, ListParams, Merge, after, list_sorted};
use crate::model::{
    BucketRecord, ObjectRecord, ObjectVersion, Stamp, UsageDelta, decode, encode, object_map,
};
use crate::{Index, IndexError, Result};
use kura_backend::Batch;

impl Index {
    /// The record of `key`, if any version of it exists.
    pub fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        let record = self.bucket(bucket)?;
        self.read_object(&record, key)
    }

    pub(crate) fn read_object(
        &self,
        bucket: &BucketRecord,
        key: &str,
    ) -> Result<Option<ObjectRecord>> {
        let map = object_map(&bucket.name, &bucket.layout, bucket.layout.shard_of(key));
        self.kv
            .get(&map, key.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Makes `version` the current (`null`) version of `key`, once `check`
    /// accepts the version it replaces. Check and write are atomic with
    /// respect to every other write of the key. Durable when it returns.
    pub async fn put_object<E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        mut version: ObjectVersion,
        check: impl FnOnce(Option<&ObjectVersion>) -> std::result::Result<(), E>,
    ) -> std::result::Result<ObjectVersion, E> {
        {
            let _guard = self.locks.key(bucket, key);
            let record = self.bucket(bucket)?;
            let existing = self.read_object(&record, key)?.unwrap_or_default();
            check(existing.current())?;
            version.stamp = self.clock.stamp();
            let mut batch = Batch::default();
            let (delta, entries) =
                self.commit_version(&mut batch, &record, key, existing, version.clone())?;
            self.apply_counted(batch, &record, delta, entries)?;
        }
        self.sync().await?;
        Ok(version)
    }

    /// Adds to `batch` the writes that make `version` current; returns the
    /// usage and shard-entry changes they cause.
    pub(crate) fn commit_version(
        &self,
        batch: &mut Batch,
        bucket: &BucketRecord,
        key: &str,
        existing: ObjectRecord,
        version: ObjectVersion,
    ) -> Result<(UsageDelta, EntryDeltas)> {
        for part in &version.parts {
            clear_intent(batch, &part.blob);
        }
        let delta = UsageDelta::between(existing.current(), Some(&version));
        let existed = !existing.versions.is_empty();
        let updated = replace_null_version(existing, Some(version), batch);
        let entries = self.write_record(batch, bucket, key, existed, &updated)?;
        Ok((delta, entries))
    }

    /// Changes the current version of `key` in place (what describes it, such as its tags;
    /// never its data), atomically with respect to every other write of the key. Returns
    /// the changed version, or None when the key has no current version. Durable when it
    /// returns.
    pub async fn update_current<E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        change: impl FnOnce(&mut ObjectVersion) -> std::result::Result<(), E>,
    ) -> std::result::Result<Option<ObjectVersion>, E> {
        let updated = {
            let _guard = self.locks.key(bucket, key);
            let record = self.bucket(bucket)?;
            let Some(mut existing) = self.read_object(&record, key)? else {
                return Ok(None);
            };
            let Some(current) = existing.versions.first_mut().filter(|v| !v.delete_marker) else {
                return Ok(None);
            };
            change(current)?;
            let updated = current.clone();
            let mut batch = Batch::default();
            let entries = self.write_record(&mut batch, &record, key, true, &existing)?;
            self.apply_counted(batch, &record, UsageDelta::default(), entries)?;
            updated
        };
        self.sync().await?;
        Ok(Some(updated))
    }

    /// Removes the current (`null`) version of `key`. Returns it, if there was one.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectVersion>> {
        let removed = self.remove_null_version(bucket, key, None)?;
        self.sync().await?;
        Ok(removed)
    }

    /// Removes the current version of several keys, with one sync for all.
    /// Each key's outcome is reported separately.
    pub async fn delete_objects(
        &self,
        bucket: &str,
        keys: &[&str],
    ) -> Result<Vec<Result<Option<ObjectVersion>>>> {
        let outcomes = keys
            .iter()
            .map(|key| self.remove_null_version(bucket, key, None))
            .collect();
        self.sync().await?;
        Ok(outcomes)
    }

    /// Removes the current version of `key` only if it is still the one written at
    /// `written` (so an object overwritten meanwhile is kept). Returns it if removed.
    pub async fn delete_object_if_unchanged(
        &self,
        bucket: &str,
        key: &str,
        written: Stamp,
    ) -> Result<Option<ObjectVersion>> {
        let removed = self.remove_null_version(bucket, key, Some(written))?;
        self.sync().await?;
        Ok(removed)
    }

    fn remove_null_version(
        &self,
        bucket: &str,
        key: &str,
        written: Option<Stamp>,
    ) -> Result<Option<ObjectVersion>> {
        let _guard = self.locks.key(bucket, key);
        let record = self.bucket(bucket)?;
        let Some(existing) = self.read_object(&record, key)? else {
            return Ok(None);
        };
        if written.is_some_and(|w| existing.current().is_none_or(|c| c.stamp != w)) {
            return Ok(None);
        }
        let removed = existing.current().cloned();
        let delta = UsageDelta::between(removed.as_ref(), None);
        let mut batch = Batch::default();
        let updated = replace_null_version(existing, None, &mut batch);
        let entries = self.write_record(&mut batch, &record, key, true, &updated)?;
        self.apply_counted(batch, &record, delta, entries)?;
        Ok(removed)
    }

    /// Keys with a current version, in S3 order, one page at a time.
    pub fn list_objects(
        &self,
        bucket: &str,
        params: &ListParams,
    ) -> Result<ListPage<ObjectVersion>> {
        self.list_records(bucket, params, |record| record.current().cloned())
    }

    /// Every version of every key (newest first per key), one page at a time.
    pub fn list_versions(
        &self,
        bucket: &str,
        params: &ListParams,
    ) -> Result<ListPage<ObjectRecord>> {
        self.list_records(bucket, params, Some)
    }

    /// Lists the keys whose record `select` keeps, as what it makes of them.
    fn list_records<T: 'static>(
        &self,
        bucket: &str,
        params: &ListParams,
        select: impl Fn(ObjectRecord) -> Option<T> + Copy + 'static,
    ) -> Result<ListPage<T>> {
        let record = self.bucket(bucket)?;
        let start = params.after.map(after).unwrap_or_default();
        list_sorted(
            params.prefix,
            params.delimiter,
            start,
            params.after,
            params.max,
            |seek| {
                let kept = self
                    .scan_objects(&record, seek)?
                    .filter_map(move |item| match item {
                        Ok((key, rec)) => select(rec).map(|v| Ok((key, v))),
                        Err(err) => Some(Err(err)),
                    });
                Ok(Box::new(kept) as Items<T>)
            },
        )
    }

    /// Every record (all versions) from `seek` on, merged across shards.
    pub(crate) fn scan_objects(
        &self,
        bucket: &BucketRecord,
        seek: &[u8],
    ) -> Result<Merge<ObjectRecord>> {
        self.scan_shards(bucket, seek, |value| decode::<ObjectRecord>(&value))
    }

    /// Every key from `seek` on, merged across shards; records stay undecoded.
    pub(crate) fn scan_keys(&self, bucket: &BucketRecord, seek: &[u8]) -> Result<Merge<()>> {
        self.scan_shards(bucket, seek, |_| Ok(()))
    }

    fn scan_shards<T: 'static>(
        &self,
        bucket: &BucketRecord,
        seek: &[u8],
        value: fn(Vec<u8>) -> Result<T>,
    ) -> Result<Merge<T>> {
        let mut sources = Vec::with_capacity(bucket.layout.shards as usize);
        for shard in 0..bucket.layout.shards {
            let map = object_map(&bucket.name, &bucket.layout, shard);
            let items = self.kv.scan(&map, seek)?.map(move |item| {
                let (key, bytes) = item?;
                let key = String::from_utf8(key)
                    .map_err(|e| IndexError::Decode(serde::de::Error::custom(e)))?;
                Ok((key, value(bytes)?))
            });
            sources.push(Box::new(items) as Items<T>);
        }
        Ok(Merge::new(sources))
    }
}

/// Swaps the `null` version for `new` (or drops it), queueing its blobs for
/// collection in the same batch.
fn replace_null_version(
    mut record: ObjectRecord,
    new: Option<ObjectVersion>,
    batch: &mut Batch,
) -> ObjectRecord {
    record.versions.retain(|v| {
        let replaced = v.version_id == "null";
        if replaced {
            for part in &v.parts {
                queue_garbage(batch, &part.blob);
            }
        }
        !replaced
    });
    if let Some(new) = new {
        record.versions.insert(0, new);
    }
    record
}

impl Index {
    /// Writes `key`'s `record` (or its removal, once no version is left) to
    /// every layout a write must reach. `existed` says whether the current
    /// layout held the key; whether the target of a reshard does is looked
    /// up, as the copy may not have reached the key yet.
    fn write_record(
        &self,
        batch: &mut Batch,
        bucket: &BucketRecord,
        key: &str,
        existed: bool,
        record: &ObjectRecord,
    ) -> Result<EntryDeltas> {
        let mut entries = EntryDeltas::default();
        let exists = !record.versions.is_empty();
        for layout in bucket.write_layouts(key) {
            let map = object_map(&bucket.name, layout, layout.shard_of(key));
            let had = if layout == &bucket.layout {
                existed
            } else {
                layout.counted && self.kv.get(&map, key.as_bytes())?.is_some()
            };
            entries.note(&bucket.name, layout, key, had, exists);
            if exists {
                batch.put(&map, key.as_bytes(), encode(record));
            } else {
                batch.delete(&map, key.as_bytes());
            }
        }
        Ok(entries)
    }
}
