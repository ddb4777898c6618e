//! Object versions: every change of a key is one guarded write to the key's shard map,
//! which carries the key's version entries (see `versions.rs`), the shard's counters, the
//! blobs it stops referencing and the intents it settles (see `shard.rs`). A writer that
//! read a stale bucket layout or lost a race finds its guard failed, reads again and
//! retries: correctness rests on the guards, the in-process shard locks only spare a
//! gateway from racing itself.

use crate::listing::{ListPage, ListParams, Merged, Space, after, list_sorted};
use crate::model::{
    BucketRecord, LockBypass, ObjectMeta, ObjectVersion, Stamp, UsageDelta, Versioning, decode,
    encode,
};
use crate::quota::needs_reservation;
use crate::reshard_log::{legacy_log_key, log_key};
use crate::rounds::Reservation;
use crate::shard::{
    Admit, FREEZE, Header, KeyRead, MapState, Retry, garbage_key, guard_header, intent_key,
};
use crate::versions::{
    KeyHead, NULL_VERSION, VersionRef, head_key, new_version_id, object_key, parse_version_id,
    tally, version_key, version_key_of, versions_of,
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
    /// The version the change was asked about by id, if any and if it exists.
    pub target: Option<ObjectVersion>,
    /// The key's newest version (a delete marker too), if it has any.
    pub newest: Option<VersionRef>,
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

/// What a delete did, in S3's terms.
#[derive(Debug, Clone, Default)]
pub struct Deleted {
    /// The version removed, or the delete marker added (None: an unversioned bucket's
    /// object removed, or nothing done).
    pub version_id: Option<String>,
    /// Whether that version is a delete marker.
    pub delete_marker: bool,
    /// The version removed, if one was.
    pub removed: Option<ObjectVersion>,
}

/// Who deletes: the owner of the delete markers they add, and the Object Lock protections
/// they may pass.
#[derive(Debug, Clone, Copy)]
pub struct Deleter<'a> {
    pub owner: &'a str,
    pub bypass: LockBypass,
}

/// What a conditional delete requires of the version it would delete (S3's `If-Match`,
/// `x-amz-if-match-last-modified-time` and `x-amz-if-match-size`, or the `ETag`,
/// `LastModifiedTime` and `Size` of a DeleteObjects entry): the key's current version (a
/// delete marker too), or the version named by id. A key without one is left as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteIf {
    /// ETags without quotes, any of which will do; `*` holds for every version.
    pub etags: Option<Vec<String>>,
    /// Last-Modified in whole seconds since the epoch.
    pub modified_s: Option<u64>,
    pub size: Option<u64>,
}

impl DeleteIf {
    /// Whether there is any condition.
    pub fn any(&self) -> bool {
        self.etags.is_some() || self.modified_s.is_some() || self.size.is_some()
    }

    /// Whether it holds for a version with this ETag (None: a delete marker's), stamp
    /// time and size.
    fn holds(&self, etag: Option<&str>, modified_ms: u64, size: u64) -> bool {
        let etag_holds = |tags: &Vec<String>| {
            (tags.iter()).any(|tag| tag == "*" || etag.is_some_and(|etag| etag == tag))
        };
        self.etags.as_ref().is_none_or(etag_holds)
            && self.modified_s.is_none_or(|s| modified_ms / 1000 == s)
            && self.size.is_none_or(|n| n == size)
    }
}

/// The condition of a delete lifecycle rules decided on (see `Index::expire`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Always,
    /// The key's current version is still the one written at this stamp.
    CurrentIs(Stamp),
    /// The version named is not the key's newest.
    Noncurrent,
    /// The version named is the key's newest.
    Newest,
}

/// Concurrent key changes of one DeleteObjects request.
const DELETE_CONCURRENCY: usize = 16;
/// Version entries read at a time when a key's versions are searched.
const VERSIONS_PAGE: usize = 100;

impl Index {
    // Reads take the bucket's record as the caller read it (authorizing the request):
    // reading it again would only cost a round trip.

    /// The current version of `key` (None when it has none or its newest is a delete
    /// marker): one read.
    pub async fn current(&self, bucket: &BucketRecord, key: &str) -> Result<Option<ObjectVersion>> {
        self.kv
            .get(&bucket.key_map(key), key.as_bytes())
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Version `id` of `key` (`null` included), delete markers too.
    pub async fn version(
        &self,
        bucket: &BucketRecord,
        key: &str,
        id: &str,
    ) -> Result<Option<ObjectVersion>> {
        let map = bucket.key_map(key);
        let raw_head = self.kv.get(&map, &head_key(key)).await?;
        let Some(head) = raw_head.as_deref().map(decode::<KeyHead>).transpose()? else {
            return Ok(None);
        };
        self.version_in(&map, key, &head, id).await
    }

    /// The newest version of `key`, delete marker or not.
    pub async fn latest(&self, bucket: &BucketRecord, key: &str) -> Result<Option<ObjectVersion>> {
        let map = bucket.key_map(key);
        let mut read = self
            .kv
            .get_many(&map, &[key.as_bytes().to_vec(), head_key(key)])
            .await?;
        let raw_head = read.pop().flatten();
        if let Some(current) = read.pop().flatten() {
            return Ok(Some(decode(&current)?));
        }
        let Some(head) = raw_head.as_deref().map(decode::<KeyHead>).transpose()? else {
            return Ok(None);
        };
        let newest = &head.newest;
        self.kv
            .get(&map, &version_key(key, newest.stamp, &newest.id))
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Version `id` of `key` in `map`, whose head is `head`.
    async fn version_in(
        &self,
        map: &str,
        key: &str,
        head: &KeyHead,
        id: &str,
    ) -> Result<Option<ObjectVersion>> {
        let Some(at) = entry_of(key, head, id) else {
            return Ok(None);
        };
        self.kv.get(map, &at).await?.map(|b| decode(&b)).transpose()
    }

    /// Applies the change `decide` makes of `key`'s versions, as one guarded write to the
    /// key's shard, retried on the bucket's current layout until it lands. `decide` may
    /// run more than once (once per attempt) and must decide from what it is given (with
    /// version `target` read too, when given). The write is guarded on what was read: the
    /// key's current entry and head, the target version, and the shard header, whose
    /// counters change whenever any version is removed. Not yet durable when it returns:
    /// callers sync. A change that grows a bucket with a quota reserves its growth first
    /// (see `quota.rs`), and gives the room back once done, whatever became of it. A change
    /// that may grow the bucket by up to `growth` reserves that much before it reads the
    /// key, when it can (see `Index::reserve_ahead`), rather than leave what it read for
    /// others to change while it waits for room.
    pub(crate) async fn change_key<T, E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        target: Option<&str>,
        growth: Option<UsageDelta>,
        decide: impl FnMut(&BucketRecord, KeyState) -> std::result::Result<Decision<T>, E>,
    ) -> std::result::Result<T, E> {
        let mut reserved = match growth {
            Some(growth) => self.reserve_ahead(bucket, growth).await?,
            None => None,
        };
        let changed = (self.change_key_reserving(bucket, key, target, decide, &mut reserved)).await;
        if let Some(reservation) = reserved {
            let _ = self.release(reservation).await;
        }
        changed
    }

    /// `change_key`, with the room it holds in `reserved`: kept from one attempt to the
    /// next while it covers the growth.
    async fn change_key_reserving<T, E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        target: Option<&str>,
        mut decide: impl FnMut(&BucketRecord, KeyState) -> std::result::Result<Decision<T>, E>,
        reserved: &mut Option<Reservation>,
    ) -> std::result::Result<T, E> {
        let mut retry = Retry::new();
        let head_at = head_key(key);
        // The map's lock kept from a try whose guard failed, so that the next try does not
        // queue behind this gateway's other writers of the map again.
        let mut held = None;
        loop {
            retry.pause().await?;
            // None: a switch of the bucket's layout holds writers off.
            let Some(KeyRead {
                record,
                map,
                mut values,
                header: raw_header,
                mut local,
            }) = self
                .read_key(
                    bucket,
                    key,
                    &[key.as_bytes().to_vec(), head_at.clone(), FREEZE.to_vec()],
                    held.take(),
                    retry.first(),
                    retry.take_held_off(),
                )
                .await?
            else {
                retry.held_off(&self.switches, bucket).await;
                continue;
            };
            let frozen = values.pop().flatten().is_some();
            let raw_head = values.pop().flatten();
            let raw_current = values.pop().flatten();
            let header = Header::decode(raw_header.as_deref())?;
            match header.admit(self.now_ms(), frozen) {
                Admit::Write => {}
                Admit::HeldOff => {
                    drop(local);
                    retry.held_off(&self.switches, bucket).await;
                    continue;
                }
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
            // The version asked about is read here and guarded below: a change of it
            // through another gateway (a legal hold set, say) fails this write's guard.
            let target_at = target
                .zip(head.as_ref())
                .and_then(|(id, head)| entry_of(key, head, id));
            let raw_target = match &target_at {
                Some(at) => self.kv.get(&map, at).await.map_err(IndexError::from)?,
                None => None,
            };
            let target = raw_target.as_deref().map(decode).transpose()?;
            let state = KeyState {
                current: current.clone(),
                null,
                stamp,
                target,
                newest: head.as_ref().map(|h| h.newest.clone()),
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
            let needed = needs_reservation(delta, record.quota);
            if needed {
                self.rounds.remember(&record);
            }
            if needed && !reserved.as_ref().is_some_and(|r| r.covers(delta, &record)) {
                if let Some(smaller) = reserved.take() {
                    let _ = self.release(smaller).await;
                }
                // The shard's other writers of this process go on while this one waits for
                // its round; what it read stays guarded.
                local = None;
                *reserved = Some(self.reserve(&record, delta).await?);
            }
            write.expect(key.as_bytes(), raw_current);
            write.expect(head_at.clone(), raw_head);
            if let Some(at) = target_at {
                write.expect(at, raw_target);
            }
            changed.extend([key.as_bytes().to_vec(), head_at.clone()]);
            let mut next = header.opened().counted(counted.0, counted.1, counted.2);
            // The reshard log's records, numbered on from the header's count.
            let log: Vec<Vec<u8>> = match header.state {
                MapState::Logging => {
                    next.logged += changed.len() as u64;
                    (header.logged + 1..=next.logged).map(log_key).collect()
                }
                MapState::UnnumberedLogging | MapState::LegacyLogging => (changed.iter())
                    .map(|_| legacy_log_key(self.clock.stamp()))
                    .collect(),
                _ => Vec::new(),
            };
            guard_header(&mut write, raw_header, &next);
            match &after.current {
                Some(v) => write.put(key.as_bytes(), encode(v)),
                None => write.delete(key.as_bytes()),
            };
            match &after.head {
                Some(h) => write.put(head_at.clone(), encode(h)),
                None => write.delete(head_at.clone()),
            };
            let now = self.now_ms();
            for gone in &change.remove {
                for part in &gone.parts {
                    write.put(garbage_key(now, &part.blob), Vec::new());
                }
            }
            if header.state.has_freeze_mark() {
                // A switch that freezes the map from now on fails this write.
                write.expect(FREEZE, None);
            }
            for (record, raw) in log.into_iter().zip(changed) {
                write.put(record, raw);
            }
            let written = self.kv.write(&map, write).await;
            if written.map_err(IndexError::from)?.applied() {
                retry.landed(bucket);
                // The intents of the data now referenced go with the intent log's next write.
                for part in change.add.iter().flat_map(|v| &v.parts) {
                    self.intents.settle(intent_key(&part.blob));
                }
                if counted.0 > 0 {
                    self.crowded
                        .saw(bucket, header.entries.saturating_add_signed(counted.0));
                }
                return Ok(out);
            }
            held = local;
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

    /// Makes `version` the current version of `key` (a new version of its own in a
    /// versioned bucket, else the `null` version), once `check` accepts the current
    /// version. Check and write are atomic with respect to every other write of the key,
    /// through any gateway. Returns the version as written (stamped, with its id).
    /// Durable when it returns.
    pub async fn put_object<E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        version: ObjectVersion,
        mut check: impl FnMut(Option<&ObjectVersion>) -> std::result::Result<(), E>,
    ) -> std::result::Result<ObjectVersion, E> {
        let growth = UsageDelta::replacing(None, Some(version.size));
        let written = self
            .change_key(
                bucket,
                key,
                None,
                Some(growth),
                |record, state| -> std::result::Result<_, E> {
                    check(state.current.as_ref())?;
                    Ok(add_version(record, state, &version))
                },
            )
            .await?;
        self.sync().await?;
        Ok(written)
    }

    /// Changes a version of `key` in place (what describes it, such as its tags; never its
    /// data): version `id`, or the current one. Atomic with respect to every other write
    /// of the key. Returns the changed version, or None when there is no such version
    /// (`change` may refuse a delete marker). Durable when it returns.
    pub async fn update_version<E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        id: Option<&str>,
        mut change: impl FnMut(&mut ObjectVersion) -> std::result::Result<(), E>,
    ) -> std::result::Result<Option<ObjectVersion>, E> {
        let updated = self
            .change_key(
                bucket,
                key,
                id,
                None,
                |_, state| -> std::result::Result<_, E> {
                    let found = if id.is_some() {
                        state.target
                    } else {
                        state.current
                    };
                    let Some(mut version) = found else {
                        return Ok(Decision::Keep(None));
                    };
                    change(&mut version)?;
                    let rewrite = KeyChange {
                        rewrite: Some(version.clone()),
                        ..KeyChange::default()
                    };
                    Ok(Decision::Write(Box::new(rewrite), Some(version)))
                },
            )
            .await?;
        self.sync().await?;
        Ok(updated)
    }

    /// Deletes version `id` of `key`, or (without an id) the key as S3 does: an
    /// unversioned bucket's object is removed; a versioned bucket gets a delete marker
    /// (`owner`'s) as the key's newest version; a suspended bucket's `null` version is
    /// replaced by a `null` delete marker. Durable when it returns.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        id: Option<&str>,
        by: Deleter<'_>,
    ) -> Result<Deleted> {
        (self.delete_object_if(bucket, key, id, &DeleteIf::default(), by)).await
    }

    /// `delete_object` if `only_if` holds (else `PreconditionFailed`, nothing deleted), in
    /// the same guarded change: a write through another gateway in between fails it.
    pub async fn delete_object_if(
        &self,
        bucket: &str,
        key: &str,
        id: Option<&str>,
        only_if: &DeleteIf,
        by: Deleter<'_>,
    ) -> Result<Deleted> {
        let deleted = (self.delete_key(bucket, key, id, only_if, by, Only::Always)).await?;
        self.sync().await?;
        Ok(deleted)
    }

    /// `delete_object` of several keys (each with its version id, if any, and its
    /// conditions), with one sync for all. Each outcome is reported separately, in the
    /// order of `keys`.
    pub async fn delete_objects(
        &self,
        bucket: &str,
        keys: &[(&str, Option<&str>, &DeleteIf)],
        by: Deleter<'_>,
    ) -> Result<Vec<Result<Deleted>>> {
        // The futures are made first: a stream mapping keys to borrowing futures would
        // not be `Send` (rustc cannot see the borrow's lifetime through the closure).
        let removals: Vec<_> = keys
            .iter()
            .map(|(key, id, only_if)| self.delete_key(bucket, key, *id, only_if, by, Only::Always))
            .collect();
        let outcomes = futures::stream::iter(removals)
            .buffered(DELETE_CONCURRENCY)
            .collect()
            .await;
        self.sync().await?;
        Ok(outcomes)
    }

    /// What lifecycle rules delete, only while it still is what they decided on: without
    /// an id, `key` as `delete_object` deletes it, if its current version is still the one
    /// written at the stamp `Only::CurrentIs` gives; with an id, that version, if it is
    /// still noncurrent (`Only::Noncurrent`) or still the newest (`Only::Newest`, for a
    /// delete marker found alone). Locked versions stay. None when nothing was deleted.
    pub async fn expire(
        &self,
        bucket: &str,
        key: &str,
        id: Option<&str>,
        only: Only,
    ) -> Result<Option<Deleted>> {
        let by = Deleter {
            owner: "",
            bypass: LockBypass::Nothing,
        };
        let always = DeleteIf::default();
        let deleted = self.delete_key(bucket, key, id, &always, by, only).await?;
        self.sync().await?;
        let done = deleted.removed.is_some() || deleted.delete_marker;
        Ok(done.then_some(deleted))
    }

    async fn delete_key(
        &self,
        bucket: &str,
        key: &str,
        id: Option<&str>,
        only_if: &DeleteIf,
        by: Deleter<'_>,
        only: Only,
    ) -> Result<Deleted> {
        let now = self.now_ms();
        let unlocked = |version: &ObjectVersion| match version.meta.locked(now, by.bypass) {
            Some(why) => Err(IndexError::ObjectLocked(why)),
            None => Ok(()),
        };
        self.change_key(bucket, key, id, None, |record, state| {
            let newest = |v: &ObjectVersion| state.newest.as_ref() == Some(&VersionRef::of(v));
            let holds = match (only, &state.target) {
                (Only::Always, _) => true,
                (Only::CurrentIs(w), _) => state.current.as_ref().is_some_and(|c| c.stamp == w),
                (Only::Noncurrent, Some(target)) => !newest(target),
                (Only::Newest, Some(target)) => newest(target),
                (_, None) => true,
            };
            if !holds {
                return Ok(Decision::Keep(Deleted::default()));
            }
            if only_if.any() {
                // The version the delete would take (or hide behind a delete marker).
                let version = match (id, &state.current, &state.newest) {
                    (Some(_), ..) => state.target.as_ref().map(|t| {
                        let etag = (!t.delete_marker).then_some(t.etag.as_str());
                        (etag, t.last_modified_ms(), t.size)
                    }),
                    (None, Some(c), _) => {
                        Some((Some(c.etag.as_str()), c.last_modified_ms(), c.size))
                    }
                    (None, None, Some(marker)) => Some((None, marker.stamp.ms, 0)),
                    (None, None, None) => None,
                };
                match version {
                    None => return Ok(Decision::Keep(Deleted::default())),
                    Some((etag, ms, size)) if !only_if.holds(etag, ms, size) => {
                        return Err(IndexError::PreconditionFailed);
                    }
                    Some(_) => {}
                }
            }
            if let Some(id) = id {
                let Some(target) = state.target else {
                    let nothing = Deleted {
                        version_id: Some(id.to_owned()),
                        ..Deleted::default()
                    };
                    return Ok(Decision::Keep(nothing));
                };
                unlocked(&target)?;
                let deleted = Deleted {
                    version_id: Some(id.to_owned()),
                    delete_marker: target.delete_marker,
                    removed: Some(target.clone()),
                };
                let change = KeyChange {
                    remove: vec![target],
                    ..KeyChange::default()
                };
                return Ok(Decision::Write(Box::new(change), deleted));
            }
            if record.versioning == Versioning::Unversioned {
                let Some(null) = state.null else {
                    return Ok(Decision::Keep(Deleted::default()));
                };
                unlocked(&null)?;
                let deleted = Deleted {
                    removed: Some(null.clone()),
                    ..Deleted::default()
                };
                let change = KeyChange {
                    remove: vec![null],
                    ..KeyChange::default()
                };
                return Ok(Decision::Write(Box::new(change), deleted));
            }
            let marker = ObjectVersion {
                version_id: NULL_VERSION.to_owned(),
                stamp: state.stamp,
                delete_marker: true,
                size: 0,
                etag: String::new(),
                meta: ObjectMeta::default(),
                checksum: None,
                parts: Vec::new(),
                multipart: false,
                owner: by.owner.to_owned(),
                upload_id: None,
            };
            let removed = state.null.clone();
            if let Some(null) = &removed
                && record.versioning == Versioning::Suspended
            {
                unlocked(null)?;
            }
            let (change, marker) = new_version(record, state, &marker);
            let deleted = Deleted {
                version_id: Some(marker.version_id.clone()),
                delete_marker: true,
                removed: removed.filter(|_| marker.version_id == NULL_VERSION),
            };
            Ok(Decision::Write(Box::new(change), deleted))
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
            (Some(key), Some(id)) => match self.version(&record, key, id).await? {
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

/// The decision that adds a copy of `version`, stamped for `state`, as the key's newest
/// version: with an id of its own in a versioned bucket, else as the `null` version,
/// replacing the one `state` has. Answers with the copy.
pub(crate) fn add_version(
    record: &BucketRecord,
    state: KeyState,
    version: &ObjectVersion,
) -> Decision<ObjectVersion> {
    let (change, version) = new_version(record, state, version);
    Decision::Write(Box::new(change), version)
}

/// `add_version`'s change and copy.
fn new_version(
    record: &BucketRecord,
    state: KeyState,
    version: &ObjectVersion,
) -> (KeyChange, ObjectVersion) {
    let mut version = version.clone();
    version.stamp = state.stamp;
    let remove = if record.versioning == Versioning::Enabled {
        version.version_id = new_version_id(state.stamp, &record.id);
        Vec::new()
    } else {
        version.version_id = NULL_VERSION.to_owned();
        state.null.into_iter().collect()
    };
    let change = KeyChange {
        add: Some(version.clone()),
        remove,
        rewrite: None,
    };
    (change, version)
}

/// Where version `id` of `key`, whose head is `head`, is stored (None: an id it cannot have).
fn entry_of(key: &str, head: &KeyHead, id: &str) -> Option<Vec<u8>> {
    let stamp = if id == NULL_VERSION {
        head.null
    } else {
        parse_version_id(id)
    };
    stamp.map(|stamp| version_key(key, stamp, id))
}

/// Where the entries after every version of `key` start.
fn after_versions_of(key: &str) -> Vec<u8> {
    let mut start = versions_of(key);
    start.pop();
    start.push(1);
    start
}

fn utf8(key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|e| IndexError::Decode(serde::de::Error::custom(e)))
}
