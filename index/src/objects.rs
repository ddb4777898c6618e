//! Object versions: every change of a key is one guarded write to the key's shard map,
//! which carries the key's version entries (see `versions.rs`), the shard's counters, the
//! blobs it stops referencing and the intents it settles (see `shard.rs`). A writer that
//! read a stale bucket layout or lost a race finds its guard failed, reads again and
//! retries: correctness rests on the guards, the in-process shard locks only spare a
//! gateway from racing itself.

use crate::listing::{ListPage, ListParams, Merged, Space, after, list_sorted};
use crate::model::{BucketRecord, ObjectVersion, Stamp, UsageDelta, decode, encode};
use crate::shard::{
    Admit, Header, MapState, Retry, garbage_key, guard_header, intent_key, log_key,
};
use crate::versions::{
    KeyHead, NULL_VERSION, VersionRef, head_key, object_key, tally, version_key, version_key_of,
    versions_of,
};
use crate::{Index, IndexError, Result};
use futures::StreamExt;
use kura_backend::{Scan, Write, key_after};

/// What a change of a key is decided from.
pub(crate) struct KeyState {
    /// The current version, unless the newest is a delete marker.
    pub current: Option<ObjectVersion>,
    /// The `null` version, current or not.
    pub null: Option<ObjectVersion>,
    /// The stamp a version added now gets: after every version the key has.
    pub stamp: Stamp,
}

/// What a change of one key writes.
#[derive(Default)]
pub(crate) struct KeyChange {
    /// A version (or delete marker) to add as the key's newest, stamped with the state's
    /// stamp. The blobs it references are settled.
    pub add: Option<ObjectVersion>,
    /// Versions to remove; their blobs become garbage.
    pub remove: Vec<ObjectVersion>,
    /// A version rewritten in place (same stamp and id): what describes it, never its data.
    pub rewrite: Option<ObjectVersion>,
}

/// What a change decided.
pub(crate) enum Decision<T> {
    Write(Box<KeyChange>, T),
    /// Nothing to write.
    Keep(T),
}

/// One version of a key in a listing of versions.
#[derive(Debug, Clone)]
pub struct ListedVersion {
    pub version: ObjectVersion,
    /// Whether it is the key's newest version.
    pub latest: bool,
}

/// Concurrent key changes of one DeleteObjects request.
const DELETE_CONCURRENCY: usize = 16;
/// Version entries read at a time when a key's versions are searched.
const VERSIONS_PAGE: usize = 100;

impl Index {
    /// The current version of `key` (None when it has none or its newest is a delete
    /// marker): one read.
    pub async fn current(&self, bucket: &str, key: &str) -> Result<Option<ObjectVersion>> {
        let record = self.bucket(bucket).await?;
        self.kv
            .get(&record.key_map(key), key.as_bytes())
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Version `id` of `key` (`null` included), delete markers too.
    pub async fn version(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
    ) -> Result<Option<ObjectVersion>> {
        let record = self.bucket(bucket).await?;
        let map = record.key_map(key);
        let raw_head = self.kv.get(&map, &head_key(key)).await?;
        let Some(head) = raw_head.as_deref().map(decode::<KeyHead>).transpose()? else {
            return Ok(None);
        };
        let stamp = if id == NULL_VERSION {
            head.null
        } else {
            parse_version_id(id)
        };
        let Some(stamp) = stamp else {
            return Ok(None);
        };
        self.kv
            .get(&map, &version_key(key, stamp, id))
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Applies the change `decide` makes of `key`'s versions, as one guarded write to the
    /// key's shard, retried on the bucket's current layout until it lands. `decide` may
    /// run more than once (once per attempt) and must decide from what it is given. Not
    /// yet durable when it returns: callers sync.
    pub(crate) async fn change_key<T, E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        mut decide: impl FnMut(&BucketRecord, KeyState) -> std::result::Result<Decision<T>, E>,
    ) -> std::result::Result<T, E> {
        let mut retry = Retry::new();
        let head_at = head_key(key);
        loop {
            retry.pause().await?;
            let record = self.bucket(bucket).await?;
            let map = record.key_map(key);
            let _local = self.locks.lock(&map).await;
            let (mut values, raw_header) = self
                .read_with_header(&map, &[key.as_bytes().to_vec(), head_at.clone()])
                .await?;
            let raw_head = values.pop().flatten();
            let raw_current = values.pop().flatten();
            let header = Header::decode(raw_header.as_deref())?;
            match header.admit(self.now_ms()) {
                Admit::Write => {}
                Admit::Wait => continue,
                Admit::Reopen => {
                    self.reopen(&map).await?;
                    continue;
                }
            }
            let current: Option<ObjectVersion> = raw_current.as_deref().map(decode).transpose()?;
            let head: Option<KeyHead> = raw_head.as_deref().map(decode).transpose()?;
            let null = match head.as_ref().and_then(|h| h.null) {
                None => None,
                Some(stamp) => match &current {
                    Some(c) if c.version_id == NULL_VERSION && c.stamp == stamp => Some(c.clone()),
                    _ => self
                        .kv
                        .get(&map, &version_key(key, stamp, NULL_VERSION))
                        .await
                        .map_err(IndexError::from)?
                        .map(|b| decode(&b))
                        .transpose()?,
                },
            };
            let mut stamp = self.clock.stamp();
            if let Some(newest) = head.as_ref().map(|h| h.newest.stamp)
                && stamp <= newest
            {
                stamp = Stamp {
                    ms: newest.ms,
                    seq: newest.seq + 1,
                };
            }
            let state = KeyState {
                current: current.clone(),
                null,
                stamp,
            };
            let (change, out) = match decide(&record, state)? {
                Decision::Keep(out) => return Ok(out),
                Decision::Write(change, out) => (change, out),
            };
            let after = self
                .key_after_change(&map, key, head.as_ref(), &current, &change)
                .await?;

            let mut write = Write::default();
            let mut changed: Vec<Vec<u8>> = Vec::new();
            let mut counted = (0i64, 0i64, 0i64);
            let mut count = |raw: &[u8], value: Option<&ObjectVersion>, sign: i64| {
                let (v, o, b) = tally(raw, value);
                counted = (
                    counted.0 + sign * v,
                    counted.1 + sign * o,
                    counted.2 + sign * b,
                );
            };
            for gone in &change.remove {
                let raw = version_key_of(key, gone);
                count(&raw, Some(gone), -1);
                write.delete(raw.clone());
                changed.push(raw);
            }
            if let Some(added) = &change.add {
                count(&version_key_of(key, added), Some(added), 1);
            }
            // A rewrite changes no size: counted as it was.
            for version in change.add.iter().chain(&change.rewrite) {
                let raw = version_key_of(key, version);
                write.put(raw.clone(), encode(version));
                changed.push(raw);
            }
            let delta = UsageDelta {
                objects: counted.1,
                bytes: counted.2,
            };
            if (delta.objects > 0 || delta.bytes > 0)
                && (record.quota.max_objects.is_some() || record.quota.max_bytes.is_some())
                && delta.exceeds(self.usage_of(&record).await?, record.quota)
            {
                return Err(IndexError::QuotaExceeded.into());
            }
            write.expect(key.as_bytes(), raw_current);
            write.expect(head_at.clone(), raw_head);
            guard_header(
                &mut write,
                raw_header,
                &header.counted(counted.0, counted.1, counted.2),
            );
            match &after.current {
                Some(v) => write.put(key.as_bytes(), encode(v)),
                None => write.delete(key.as_bytes()),
            };
            match &after.head {
                Some(h) => write.put(head_at.clone(), encode(h)),
                None => write.delete(head_at.clone()),
            };
            changed.extend([key.as_bytes().to_vec(), head_at.clone()]);
            let now = self.now_ms();
            for gone in &change.remove {
                for part in &gone.parts {
                    write.put(garbage_key(now, &part.blob), Vec::new());
                }
            }
            for part in change.add.iter().flat_map(|v| &v.parts) {
                write.delete(intent_key(&part.blob));
            }
            if header.state == MapState::Logging {
                for raw in changed {
                    write.put(log_key(self.clock.stamp()), raw);
                }
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

    /// The key's current entry and head once `change` is applied.
    async fn key_after_change(
        &self,
        map: &str,
        key: &str,
        head: Option<&KeyHead>,
        current: &Option<ObjectVersion>,
        change: &KeyChange,
    ) -> Result<After> {
        let removed = |r: &VersionRef| change.remove.iter().any(|v| VersionRef::of(v) == *r);
        let null_after = match &change.add {
            Some(v) if v.version_id == NULL_VERSION => Some(v.stamp),
            _ if change.remove.iter().any(|v| v.version_id == NULL_VERSION) => None,
            _ => head.and_then(|h| h.null),
        };
        let newest = match (&change.add, head) {
            (Some(added), _) => Some(added.clone()),
            (None, None) => None,
            (None, Some(head)) if !removed(&head.newest) => {
                let rewritten = change
                    .rewrite
                    .as_ref()
                    .filter(|v| VersionRef::of(v) == head.newest);
                let Some(newest) = rewritten.or(current.as_ref()) else {
                    // A delete marker, unchanged.
                    return Ok(After {
                        current: None,
                        head: Some(KeyHead {
                            newest: head.newest.clone(),
                            null: null_after,
                        }),
                    });
                };
                Some(newest.clone())
            }
            (None, Some(_)) => {
                self.newest_version_where(map, key, |v| !removed(&VersionRef::of(v)))
                    .await?
            }
        };
        Ok(match newest {
            None => After {
                current: None,
                head: None,
            },
            Some(newest) => After {
                head: Some(KeyHead {
                    newest: VersionRef::of(&newest),
                    null: null_after,
                }),
                current: (!newest.delete_marker).then_some(newest),
            },
        })
    }

    /// Makes `version` the current (`null`) version of `key`, once `check`
    /// accepts the version it replaces. Check and write are atomic with
    /// respect to every other write of the key, through any gateway. Returns the version
    /// as written (stamped). Durable when it returns.
    pub async fn put_object<E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        version: ObjectVersion,
        mut check: impl FnMut(Option<&ObjectVersion>) -> std::result::Result<(), E>,
    ) -> std::result::Result<ObjectVersion, E> {
        let written = self
            .change_key(bucket, key, |_, state| -> std::result::Result<_, E> {
                check(state.current.as_ref())?;
                Ok(replace_null(state, &version))
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
            .change_key(bucket, key, |_, state| -> std::result::Result<_, E> {
                let Some(mut current) = state.current else {
                    return Ok(Decision::Keep(None));
                };
                change(&mut current)?;
                let rewrite = KeyChange {
                    rewrite: Some(current.clone()),
                    ..KeyChange::default()
                };
                Ok(Decision::Write(Box::new(rewrite), Some(current)))
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
        self.change_key(bucket, key, |_, state| {
            let removed = state.current.filter(|c| c.version_id == NULL_VERSION);
            if written.is_some_and(|w| removed.as_ref().is_none_or(|c| c.stamp != w)) {
                return Ok(Decision::Keep(None));
            }
            let Some(null) = state.null else {
                return Ok(Decision::Keep(None));
            };
            let change = KeyChange {
                remove: vec![null],
                ..KeyChange::default()
            };
            Ok(Decision::Write(Box::new(change), removed))
        })
        .await
    }

    /// Keys with a current version, in S3 order, one page at a time: reads only current
    /// entries, however many versions the keys have.
    pub async fn list_objects(
        &self,
        bucket: &str,
        params: &ListParams<'_>,
    ) -> Result<ListPage<ObjectVersion>> {
        let record = self.bucket(bucket).await?;
        let start = params.after.map(after).unwrap_or_default();
        let mut entries = Merged::new(
            self.kv.as_ref(),
            record.shard_maps(),
            Space::Current,
            start,
            params.prefix,
            params.max,
        );
        list_sorted(params, &mut entries, |key, value| {
            Ok(Some((utf8(key)?, decode(&value)?)))
        })
        .await
    }

    /// Every version of every key (newest first per key), one page at a time: after
    /// `params.after` (the key marker), or after its version `version_after` when given.
    pub async fn list_versions(
        &self,
        bucket: &str,
        params: &ListParams<'_>,
        version_after: Option<&str>,
    ) -> Result<ListPage<ListedVersion>> {
        let record = self.bucket(bucket).await?;
        let marker = params.after;
        let start = match (marker, version_after) {
            (None, _) => Vec::new(),
            (Some(key), Some(id)) => match self.version(bucket, key, id).await? {
                Some(v) => key_after(&version_key_of(key, &v)),
                // Gone since the last page: on with the versions older than it.
                None => match parse_version_id(id) {
                    Some(stamp) => key_after(&version_key(key, stamp, id)),
                    None => after_versions_of(key),
                },
            },
            (Some(key), None) => after_versions_of(key),
        };
        let mut entries = Merged::new(
            self.kv.as_ref(),
            record.shard_maps(),
            Space::Versions,
            start,
            params.prefix,
            params.max,
        );
        // The page starts inside the marker's key when it names a version of it.
        let mut previous = version_after.and(marker).map(str::to_owned);
        list_sorted(params, &mut entries, |raw, value| {
            let key = utf8(object_key(&raw).to_vec())?;
            let latest = previous.as_deref() != Some(key.as_str());
            previous = Some(key.clone());
            let version = decode(&value)?;
            Ok(Some((key, ListedVersion { version, latest })))
        })
        .await
    }

    /// Whether any version of `key` in the current layout references `blob`.
    pub(crate) async fn references(
        &self,
        record: &BucketRecord,
        key: &str,
        blob: &str,
    ) -> Result<bool> {
        let map = record.key_map(key);
        let uses_blob = |v: &ObjectVersion| v.parts.iter().any(|p| p.blob == blob);
        Ok(self
            .newest_version_where(&map, key, uses_blob)
            .await?
            .is_some())
    }

    /// The newest version of `key` in `map` that `wanted` accepts, read a page at a time.
    async fn newest_version_where(
        &self,
        map: &str,
        key: &str,
        wanted: impl Fn(&ObjectVersion) -> bool,
    ) -> Result<Option<ObjectVersion>> {
        let mut scan = Scan::prefix(versions_of(key), VERSIONS_PAGE);
        loop {
            let page = self.kv.scan(map, &scan).await?;
            for (_, value) in &page.entries {
                let version: ObjectVersion = decode(value)?;
                if wanted(&version) {
                    return Ok(Some(version));
                }
            }
            match page.next {
                Some(next) => scan.start = next,
                None => return Ok(None),
            }
        }
    }
}

/// A key's current entry and head after a change.
struct After {
    current: Option<ObjectVersion>,
    head: Option<KeyHead>,
}

/// The decision that makes a copy of `version`, stamped for `state`, the `null` version
/// and the newest, replacing the `null` version `state` has; answers with the copy.
pub(crate) fn replace_null(state: KeyState, version: &ObjectVersion) -> Decision<ObjectVersion> {
    let mut version = version.clone();
    version.stamp = state.stamp;
    version.version_id = NULL_VERSION.to_owned();
    let change = KeyChange {
        add: Some(version.clone()),
        remove: state.null.into_iter().collect(),
        rewrite: None,
    };
    Decision::Write(Box::new(change), version)
}

/// Where the entries after every version of `key` start.
fn after_versions_of(key: &str) -> Vec<u8> {
    let mut start = versions_of(key);
    start.pop();
    start.push(1);
    start
}

/// The stamp a version id other than `null` was made from (its first 28 hex digits);
/// None for an id Kura never made.
fn parse_version_id(id: &str) -> Option<Stamp> {
    let (ms, seq) = (id.get(..12)?, id.get(12..28)?);
    Some(Stamp {
        ms: u64::from_str_radix(ms, 16).ok()?,
        seq: u64::from_str_radix(seq, 16).ok()?,
    })
}

fn utf8(key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|e| IndexError::Decode(serde::de::Error::custom(e)))
}
