//! Object entries: every change of a key is one guarded write to the key's shard map,
//! which carries the entry, the shard's counters, the blobs it stops referencing and the
//! intents it settles (see `shard.rs`). A writer that read a stale bucket layout or lost
//! a race finds its guard failed, reads again and retries: correctness rests on the
//! guards, the in-process shard locks only spare a gateway from racing itself.

use crate::listing::{ListPage, ListParams, Merged, after, list_sorted};
use crate::model::{BucketRecord, ObjectRecord, ObjectVersion, Stamp, UsageDelta, decode, encode};
use crate::shard::{
    Admit, Header, MapState, Retry, garbage_key, guard_header, intent_key, log_key,
};
use crate::{Index, IndexError, Result};
use futures::StreamExt;
use kura_backend::Write;

/// What a change of one key writes, decided from the key's record as read.
pub(crate) struct KeyChange {
    /// The key's new record; None (or no versions): the key has no entry any more.
    pub record: Option<ObjectRecord>,
    /// Blobs the change stops referencing.
    pub garbage: Vec<String>,
    /// Blobs the change starts referencing: their intents are settled.
    pub settled: Vec<String>,
}

/// What a change decided.
pub(crate) enum Decision<T> {
    Write(KeyChange, T),
    /// Nothing to write.
    Keep(T),
}

/// Concurrent key changes of one DeleteObjects request.
const DELETE_CONCURRENCY: usize = 16;

impl Index {
    /// The record of `key`, if any version of it exists.
    pub async fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        let record = self.bucket(bucket).await?;
        self.kv
            .get(&record.key_map(key), key.as_bytes())
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Applies the change `decide` makes of `key`'s record, as one guarded write to the
    /// key's shard, retried on the bucket's current layout until it lands. `decide` may
    /// run more than once (once per attempt) and must decide from what it is given. Not
    /// yet durable when it returns: callers sync.
    pub(crate) async fn change_key<T, E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        mut decide: impl FnMut(
            &BucketRecord,
            Option<ObjectRecord>,
        ) -> std::result::Result<Decision<T>, E>,
    ) -> std::result::Result<T, E> {
        let mut retry = Retry::new();
        loop {
            retry.pause().await?;
            let record = self.bucket(bucket).await?;
            let map = record.key_map(key);
            let _local = self.locks.lock(&map).await;
            let (mut values, raw_header) = self
                .read_with_header(&map, &[key.as_bytes().to_vec()])
                .await?;
            let raw_entry = values.pop().flatten();
            let header = Header::decode(raw_header.as_deref())?;
            match header.admit(self.now_ms()) {
                Admit::Write => {}
                Admit::Wait => continue,
                Admit::Reopen => {
                    self.reopen(&map).await?;
                    continue;
                }
            }
            let existing: Option<ObjectRecord> = raw_entry.as_deref().map(decode).transpose()?;
            let old_current = existing.as_ref().and_then(|r| r.current().cloned());
            let had = existing.is_some();
            let (change, out) = match decide(&record, existing)? {
                Decision::Keep(out) => return Ok(out),
                Decision::Write(change, out) => (change, out),
            };
            let record_after = change.record.filter(|r| !r.versions.is_empty());
            let delta = UsageDelta::between(
                old_current.as_ref(),
                record_after.as_ref().and_then(|r| r.current()),
            );
            if (delta.objects > 0 || delta.bytes > 0)
                && (record.quota.max_objects.is_some() || record.quota.max_bytes.is_some())
                && delta.exceeds(self.usage_of(&record).await?, record.quota)
            {
                return Err(IndexError::QuotaExceeded.into());
            }
            let has = record_after.is_some();
            let header_after =
                header.counted(i64::from(has) - i64::from(had), delta.objects, delta.bytes);
            let mut write = Write::default();
            write.expect(key.as_bytes(), raw_entry);
            guard_header(&mut write, raw_header, &header_after);
            match &record_after {
                Some(r) => write.put(key.as_bytes(), encode(r)),
                None => write.delete(key.as_bytes()),
            };
            let now = self.now_ms();
            for blob in &change.garbage {
                write.put(garbage_key(now, blob), Vec::new());
            }
            for blob in &change.settled {
                write.delete(intent_key(blob));
            }
            if header.state == MapState::Logging {
                write.put(log_key(self.clock.stamp()), key.as_bytes());
            }
            if self
                .kv
                .write(&map, write)
                .await
                .map_err(IndexError::from)?
                .applied()
            {
                return Ok(out);
            }
        }
    }

    /// Makes `version` the current (`null`) version of `key`, once `check`
    /// accepts the version it replaces. Check and write are atomic with
    /// respect to every other write of the key, through any gateway. Durable when it
    /// returns.
    pub async fn put_object<E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        version: ObjectVersion,
        mut check: impl FnMut(Option<&ObjectVersion>) -> std::result::Result<(), E>,
    ) -> std::result::Result<ObjectVersion, E> {
        let written = self
            .change_key(bucket, key, |_, existing| -> std::result::Result<_, E> {
                let existing = existing.unwrap_or_default();
                check(existing.current())?;
                Ok(self.commit_stamped(existing, &version))
            })
            .await?;
        self.sync().await?;
        Ok(written)
    }

    /// Changes the current version of `key` in place (what describes it, such as its tags;
    /// never its data), atomically with respect to every other write of the key. Returns
    /// the changed version, or None when the key has no current version. Durable when it
    /// returns.
    pub async fn update_current<E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        mut change: impl FnMut(&mut ObjectVersion) -> std::result::Result<(), E>,
    ) -> std::result::Result<Option<ObjectVersion>, E> {
        let updated = self
            .change_key(bucket, key, |_, existing| -> std::result::Result<_, E> {
                let Some(mut existing) = existing else {
                    return Ok(Decision::Keep(None));
                };
                let Some(current) = existing.versions.first_mut().filter(|v| !v.delete_marker)
                else {
                    return Ok(Decision::Keep(None));
                };
                change(current)?;
                let updated = current.clone();
                let keep = KeyChange {
                    record: Some(existing),
                    garbage: Vec::new(),
                    settled: Vec::new(),
                };
                Ok(Decision::Write(keep, Some(updated)))
            })
            .await?;
        self.sync().await?;
        Ok(updated)
    }

    /// Removes the current (`null`) version of `key`. Returns it, if there was one.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectVersion>> {
        let removed = self.remove_null_version(bucket, key, None).await?;
        self.sync().await?;
        Ok(removed)
    }

    /// Removes the current version of several keys, with one sync for all.
    /// Each key's outcome is reported separately, in the order of `keys`.
    pub async fn delete_objects(
        &self,
        bucket: &str,
        keys: &[&str],
    ) -> Result<Vec<Result<Option<ObjectVersion>>>> {
        // The futures are made first: a stream mapping keys to borrowing futures would
        // not be `Send` (rustc cannot see the borrow's lifetime through the closure).
        let removals: Vec<_> = keys
            .iter()
            .map(|key| self.remove_null_version(bucket, key, None))
            .collect();
        let outcomes = futures::stream::iter(removals)
            .buffered(DELETE_CONCURRENCY)
            .collect()
            .await;
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
        let removed = self.remove_null_version(bucket, key, Some(written)).await?;
        self.sync().await?;
        Ok(removed)
    }

    async fn remove_null_version(
        &self,
        bucket: &str,
        key: &str,
        written: Option<Stamp>,
    ) -> Result<Option<ObjectVersion>> {
        self.change_key(bucket, key, |_, existing| {
            let Some(existing) = existing else {
                return Ok(Decision::Keep(None));
            };
            let removed = existing.current().cloned();
            if written.is_some_and(|w| removed.as_ref().is_none_or(|c| c.stamp != w)) {
                return Ok(Decision::Keep(None));
            }
            let (record, garbage) = replace_null_version(existing, None);
            let change = KeyChange {
                record: Some(record),
                garbage,
                settled: Vec::new(),
            };
            Ok(Decision::Write(change, removed))
        })
        .await
    }

    /// Keys with a current version, in S3 order, one page at a time.
    pub async fn list_objects(
        &self,
        bucket: &str,
        params: &ListParams<'_>,
    ) -> Result<ListPage<ObjectVersion>> {
        self.list_records(bucket, params, |record| record.current().cloned())
            .await
    }

    /// Every version of every key (newest first per key), one page at a time.
    pub async fn list_versions(
        &self,
        bucket: &str,
        params: &ListParams<'_>,
    ) -> Result<ListPage<ObjectRecord>> {
        self.list_records(bucket, params, Some).await
    }

    /// Lists the keys whose record `select` keeps, as what it makes of them.
    async fn list_records<T>(
        &self,
        bucket: &str,
        params: &ListParams<'_>,
        select: impl Fn(ObjectRecord) -> Option<T>,
    ) -> Result<ListPage<T>> {
        let record = self.bucket(bucket).await?;
        let start = params.after.map(after).unwrap_or_default();
        let mut entries = Merged::entries(
            self.kv.as_ref(),
            record.shard_maps(),
            start,
            params.prefix,
            params.max,
        );
        list_sorted(params, &mut entries, |key, value| {
            let key = String::from_utf8(key)
                .map_err(|e| IndexError::Decode(serde::de::Error::custom(e)))?;
            Ok(select(decode(&value)?).map(|v| (key, v)))
        })
        .await
    }
}

impl Index {
    /// The decision that makes a freshly stamped copy of `version` current over
    /// `existing`, and answers with it.
    pub(crate) fn commit_stamped(
        &self,
        existing: ObjectRecord,
        version: &ObjectVersion,
    ) -> Decision<ObjectVersion> {
        let mut version = version.clone();
        version.stamp = self.clock.stamp();
        Decision::Write(commit_version(existing, version.clone()), version)
    }
}

/// The change that makes `version` the current (`null`) version of a key whose record is
/// `existing`: the version's blobs become referenced, the replaced version's garbage.
pub(crate) fn commit_version(existing: ObjectRecord, version: ObjectVersion) -> KeyChange {
    let settled = version.parts.iter().map(|p| p.blob.clone()).collect();
    let (record, garbage) = replace_null_version(existing, Some(version));
    KeyChange {
        record: Some(record),
        garbage,
        settled,
    }
}

/// Swaps the `null` version for `new` (or drops it); returns the record and the blobs
/// of the version it replaced.
fn replace_null_version(
    mut record: ObjectRecord,
    new: Option<ObjectVersion>,
) -> (ObjectRecord, Vec<String>) {
    let mut garbage = Vec::new();
    record.versions.retain(|v| {
        let replaced = v.version_id == "null";
        if replaced {
            garbage.extend(v.parts.iter().map(|p| p.blob.clone()));
        }
        !replaced
    });
    if let Some(new) = new {
        record.versions.insert(0, new);
    }
    (record, garbage)
}

impl Index {
    /// Whether the key's entry in the current layout references `blob`.
    pub(crate) async fn references(
        &self,
        record: &BucketRecord,
        key: &str,
        blob: &str,
    ) -> Result<bool> {
        let entry = self.kv.get(&record.key_map(key), key.as_bytes()).await?;
        let Some(entry) = entry else {
            return Ok(false);
        };
        let entry: ObjectRecord = decode(&entry)?;
        Ok(entry
            .versions
            .iter()
            .any(|v| v.parts.iter().any(|p| p.blob == blob)))
    }
}
