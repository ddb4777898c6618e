//! Multipart uploads: a bucket's uploads and their parts live in one map (`u/<id>`), so a
//! part is recorded in one write guarded by its upload. Completing an upload spans two
//! maps, in three guarded steps: the upload is marked completing by this gateway (it takes
//! no more parts, nobody else completes or aborts it), the object entry is written to its
//! shard, the upload's records are removed.
//!
//! A completion whose gateway died between the steps is settled by whoever meets the
//! upload next: at once when that is the same gateway restarted (it knows its earlier run
//! is gone), else once the completion is old enough that its gateway must be. If the entry
//! landed, the completion is finished; if nothing was written to the key since it began,
//! the upload is open again (the client was never told it completed); if the key was
//! written since, whether the entry landed first cannot be told, so the upload is removed
//! and its parts collected, never left to be completed over data that replaced it.

use crate::index::to_the_end;
use crate::listing::{ListPage, ListParams, Merged, Space, list_sorted, successor};
use crate::model::{
    Completion, ObjectVersion, PartRecord, UploadRecord, UsageDelta, decode, encode,
};
use crate::objects::{Decision, add_version};
use crate::shard::{MapState, Retry, garbage_key, guard_header, intent_key};
use crate::{Index, IndexError, Result};
use kura_backend::{MAX_WRITE_CHANGES, Scan, Write};
use std::sync::Arc;

/// ListMultipartUploads parameters: uploads after (`key_marker`,
/// `upload_id_marker`), as S3 defines the pair.
#[derive(Debug, Clone, Default)]
pub struct UploadListParams<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub key_marker: Option<&'a str>,
    pub upload_id_marker: Option<&'a str>,
    pub max: usize,
}

/// A part named in CompleteMultipartUpload.
#[derive(Debug, Clone)]
pub struct CompletedPart {
    pub number: u32,
    pub etag: String,
}

/// A completion by another gateway older than this lost its gateway.
const COMPLETION_ABANDONED_MS: u64 = 5 * 60 * 1000;
/// How long a completion waits for another request completing the same upload.
const WAIT_FOR_COMPLETION: std::time::Duration = std::time::Duration::from_secs(20);

/// What meeting a marked completion came to.
enum Settled {
    /// Its entry is current: this version.
    Finished(Box<ObjectVersion>),
    /// It never landed: the upload takes parts again.
    Reopened,
    /// Whether it landed cannot be told: the upload is gone.
    Removed,
    /// Its gateway may still be running it.
    UnderWay,
}

const PARTS: &[u8] = b"\xffp";

pub(crate) fn upload_key(key: &str, upload_id: &str) -> Vec<u8> {
    [key.as_bytes(), b"\0", upload_id.as_bytes()].concat()
}

fn part_prefix(upload_id: &str) -> Vec<u8> {
    [PARTS, upload_id.as_bytes(), b"\0"].concat()
}

pub(crate) fn part_key(upload_id: &str, number: u32) -> Vec<u8> {
    [part_prefix(upload_id), number.to_be_bytes().to_vec()].concat()
}

/// An upload as read, with its stored bytes (for a guard).
struct Found {
    map: String,
    upload: UploadRecord,
    raw: Vec<u8>,
}

impl Index {
    pub async fn create_upload(&self, bucket: &str, upload: &UploadRecord) -> Result<()> {
        let mut retry = Retry::new();
        loop {
            retry.pause().await?;
            let record = self.bucket(bucket).await?;
            let map = record.upload_map();
            let (header, raw_header) = self.header(&map).await?;
            if header.state != MapState::Open {
                if header.left_closed(self.now_ms()) {
                    self.reopen(&map).await?;
                }
                continue;
            }
            let key = upload_key(&upload.key, &upload.upload_id);
            let mut write = Write::default();
            write.expect(key.clone(), None).put(key, encode(upload));
            guard_header(&mut write, raw_header, &header.counted(1, 0, 0));
            if self.kv.write(&map, write).await?.applied() {
                return self.sync().await;
            }
        }
    }

    async fn find_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Found> {
        let map = self.bucket(bucket).await?.upload_map();
        let raw = self
            .kv
            .get(&map, &upload_key(key, upload_id))
            .await?
            .ok_or(IndexError::NoSuchUpload)?;
        Ok(Found {
            upload: decode(&raw)?,
            map,
            raw,
        })
    }

    pub async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord> {
        Ok(self.find_upload(bucket, key, upload_id).await?.upload)
    }

    /// Records a part, replacing (and collecting) an earlier upload of the same number.
    pub async fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: &PartRecord,
    ) -> Result<()> {
        let mut retry = Retry::new();
        loop {
            retry.pause().await?;
            let found = self.find_upload(bucket, key, upload_id).await?;
            if found.upload.completing.is_some() {
                match self.settle_completion(bucket, key, found).await? {
                    Settled::Reopened => continue,
                    _ => return Err(IndexError::NoSuchUpload),
                }
            }
            let pkey = part_key(upload_id, part.number);
            let old = self.kv.get(&found.map, &pkey).await?;
            let mut write = Write::default();
            write
                .expect(upload_key(key, upload_id), Some(found.raw))
                .expect(pkey.clone(), old.clone());
            if let Some(old) = old {
                let old: PartRecord = decode(&old)?;
                write.put(garbage_key(self.now_ms(), &old.blob), Vec::new());
            }
            write.delete(intent_key(&part.blob)).put(pkey, encode(part));
            if self.kv.write(&found.map, write).await?.applied() {
                return self.sync().await;
            }
        }
    }

    /// Parts with numbers greater than `after`, up to `max`; and whether more follow.
    pub async fn parts(
        &self,
        bucket: &str,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<PartRecord>, bool)> {
        let map = self.bucket(bucket).await?.upload_map();
        self.parts_in(&map, upload_id, after, max).await
    }

    async fn parts_in(
        &self,
        map: &str,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<PartRecord>, bool)> {
        if after == u32::MAX {
            return Ok((Vec::new(), false));
        }
        let mut scan = Scan::prefix(part_prefix(upload_id), max.clamp(1, 1000));
        scan.start = part_key(upload_id, after + 1);
        let mut parts = Vec::new();
        loop {
            let page = self.kv.scan(map, &scan).await?;
            for (_, value) in page.entries {
                if parts.len() == max {
                    return Ok((parts, true));
                }
                parts.push(decode(&value)?);
            }
            match page.next {
                Some(next) => scan.start = next,
                None => return Ok((parts, false)),
            }
        }
    }

    /// Turns an upload into the current version of its key. `build` gets the
    /// upload and all its uploaded parts and makes the version (validating the
    /// client's part list); `check` vets the version being replaced. Parts not
    /// used by the version are collected. Runs to its end even if the caller stops
    /// waiting; a request completing an upload another is completing waits for that one.
    pub async fn complete_upload<E>(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        upload_id: &str,
        build: impl FnOnce(&UploadRecord, &[PartRecord]) -> std::result::Result<ObjectVersion, E>
        + Send
        + 'static,
        check: impl FnMut(Option<&ObjectVersion>) -> std::result::Result<(), E> + Send + 'static,
    ) -> std::result::Result<ObjectVersion, E>
    where
        E: From<IndexError> + Send + 'static,
    {
        let index = self.clone();
        let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        to_the_end(async move {
            index
                .complete_upload_here(&bucket, &key, &upload_id, build, check)
                .await
        })
        .await
    }

    /// `complete_upload`, in the caller's task.
    async fn complete_upload_here<E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        build: impl FnOnce(&UploadRecord, &[PartRecord]) -> std::result::Result<ObjectVersion, E>,
        mut check: impl FnMut(Option<&ObjectVersion>) -> std::result::Result<(), E>,
    ) -> std::result::Result<ObjectVersion, E> {
        let mut found = self.find_upload(bucket, key, upload_id).await?;
        let waited = std::time::Instant::now();
        while found.upload.completing.is_some() {
            match self.settle_completion(bucket, key, found).await? {
                Settled::Finished(version) => return Ok(*version),
                Settled::Reopened => {}
                Settled::Removed => return Err(IndexError::NoSuchUpload.into()),
                // Another request completes it (most likely this one's earlier try, whose
                // answer was lost): its outcome is this one's. Once it has finished, the
                // upload is gone and the caller finds the object it made.
                Settled::UnderWay if waited.elapsed() < WAIT_FOR_COMPLETION => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Settled::UnderWay => return Err(IndexError::Busy.into()),
            }
            found = self.find_upload(bucket, key, upload_id).await?;
        }
        let _running = Running::begin(self, upload_id);
        let (parts, _) = self.parts_in(&found.map, upload_id, 0, usize::MAX).await?;
        let version = build(&found.upload, &parts)?;
        // Step 1: no more parts, and nobody else completes it.
        let mut completing = found.upload.clone();
        completing.completing = Some(Completion {
            since_ms: self.now_ms(),
            by: self.instance.clone(),
        });
        let ukey = upload_key(key, upload_id);
        let mut write = Write::default();
        write
            .expect(ukey.clone(), Some(found.raw.clone()))
            .put(ukey, encode(&completing));
        if !self
            .kv
            .write(&found.map, write)
            .await
            .map_err(IndexError::from)?
            .applied()
        {
            // A part or another completion came in between: the client sees it as a race.
            return Err(IndexError::NoSuchUpload.into());
        }
        let marked = Found {
            raw: encode(&completing),
            upload: completing,
            map: found.map,
        };
        // Step 2: the entry. A completion already applied (by a retry) is kept as it is.
        let growth = UsageDelta::replacing(None, Some(version.size));
        let written = self
            .change_key(
                bucket,
                key,
                None,
                Some(growth),
                |record, state| -> std::result::Result<_, E> {
                    if let Some(done) = state
                        .current
                        .as_ref()
                        .filter(|v| v.upload_id.as_deref() == Some(upload_id))
                    {
                        return Ok(Decision::Keep(done.clone()));
                    }
                    check(state.current.as_ref())?;
                    Ok(add_version(record, state, &version))
                },
            )
            .await;
        let written = match written {
            Ok(written) => written,
            Err(err) => {
                // Refused (precondition, quota): the upload goes on taking parts.
                self.reopen_upload(&marked).await?;
                return Err(err);
            }
        };
        // Step 3: the upload's records; parts the version does not use are garbage.
        self.remove_upload(&marked, &parts, |blob| {
            !written.parts.iter().any(|used| used.blob == blob)
        })
        .await?;
        self.sync().await?;
        Ok(written)
    }

    /// Settles a marked completion met by another request (see the module's comment).
    async fn settle_completion(&self, bucket: &str, key: &str, found: Found) -> Result<Settled> {
        let Some(completion) = found.upload.completing.clone() else {
            return Ok(Settled::Reopened);
        };
        let upload_id = found.upload.upload_id.clone();
        let ours = completion.by == self.instance;
        let running_here = self.running(&upload_id);
        let abandoned = (ours && !running_here)
            || (!ours
                && self.now_ms().saturating_sub(completion.since_ms) >= COMPLETION_ABANDONED_MS);
        if !abandoned {
            return Ok(Settled::UnderWay);
        }
        let current = self.current(&self.bucket(bucket).await?, key).await?;
        let (parts, _) = self.parts_in(&found.map, &upload_id, 0, usize::MAX).await?;
        let settled = match current {
            Some(done) if done.upload_id.as_deref() == Some(upload_id.as_str()) => {
                let used = done.parts.clone();
                self.remove_upload(&found, &parts, |blob| !used.iter().any(|p| p.blob == blob))
                    .await?;
                Settled::Finished(Box::new(done))
            }
            Some(since) if since.stamp.ms >= completion.since_ms => {
                self.remove_upload(&found, &parts, |_| true).await?;
                Settled::Removed
            }
            // Nothing written to the key since it began (nor, as its gateway is gone,
            // to be written): the completion never happened.
            _ => {
                self.reopen_upload(&found).await?;
                Settled::Reopened
            }
        };
        self.sync().await?;
        Ok(settled)
    }

    fn running(&self, upload_id: &str) -> bool {
        self.completing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(upload_id)
    }

    async fn reopen_upload(&self, marked: &Found) -> Result<()> {
        let mut open = marked.upload.clone();
        open.completing = None;
        let ukey = upload_key(&open.key, &open.upload_id);
        let mut write = Write::default();
        write
            .expect(ukey.clone(), Some(marked.raw.clone()))
            .put(ukey, encode(&open));
        let _ = self.kv.write(&marked.map, write).await?;
        Ok(())
    }

    /// Removes an upload and its parts (in pages, the upload record last), queueing the
    /// blobs `unused` picks as garbage.
    async fn remove_upload(
        &self,
        found: &Found,
        parts: &[PartRecord],
        unused: impl Fn(&str) -> bool,
    ) -> Result<()> {
        let upload_id = &found.upload.upload_id;
        let now = self.now_ms();
        // Each part takes up to two changes.
        for chunk in parts.chunks(MAX_WRITE_CHANGES / 2) {
            let mut write = Write::default();
            for part in chunk {
                if unused(&part.blob) {
                    write.put(garbage_key(now, &part.blob), Vec::new());
                }
                write.delete(part_key(upload_id, part.number));
            }
            let _ = self.kv.write(&found.map, write).await?;
        }
        let ukey = upload_key(&found.upload.key, upload_id);
        let mut retry = Retry::new();
        loop {
            retry.pause().await?;
            let (header, raw_header) = self.header(&found.map).await?;
            let mut write = Write::default();
            write
                .expect(ukey.clone(), Some(found.raw.clone()))
                .delete(ukey.clone());
            guard_header(&mut write, raw_header, &header.counted(-1, 0, 0));
            if self.kv.write(&found.map, write).await?.applied() {
                return Ok(());
            }
            if self.kv.get(&found.map, &ukey).await?.as_deref() != Some(found.raw.as_slice()) {
                return Ok(()); // someone else removed (or changed) it
            }
        }
    }

    /// Removes an upload and collects its parts.
    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        let mut found = self.find_upload(bucket, key, upload_id).await?;
        if found.upload.completing.is_some() {
            match self.settle_completion(bucket, key, found).await? {
                Settled::Reopened => found = self.find_upload(bucket, key, upload_id).await?,
                _ => return Err(IndexError::NoSuchUpload),
            }
        }
        let (parts, _) = self.parts_in(&found.map, upload_id, 0, usize::MAX).await?;
        self.remove_upload(&found, &parts, |_| true).await?;
        self.sync().await
    }

    /// Aborts every open multipart upload of a bucket, a page at a time (their parts'
    /// data goes to garbage collection).
    pub async fn abort_all_uploads(&self, bucket: &str) -> Result<()> {
        const PAGE: usize = 1000;
        loop {
            let params = UploadListParams {
                max: PAGE,
                ..Default::default()
            };
            let page = self.list_uploads(bucket, &params).await?;
            for (key, upload) in &page.entries {
                match self.abort_upload(bucket, key, &upload.upload_id).await {
                    // Completed or aborted meanwhile: gone either way.
                    Ok(()) | Err(IndexError::NoSuchUpload) => {}
                    Err(err) => return Err(err),
                }
            }
            if !page.truncated {
                return Ok(());
            }
        }
    }

    /// Open uploads ordered by key, then by initiation (upload ids sort by time). An upload
    /// being completed is not open: one whose gateway died is settled here, and listed
    /// only if it turns out never to have completed.
    pub async fn list_uploads(
        &self,
        bucket: &str,
        params: &UploadListParams<'_>,
    ) -> Result<ListPage<UploadRecord>> {
        let map = self.bucket(bucket).await?.upload_map();
        let start = match (params.key_marker, params.upload_id_marker) {
            (Some(key), Some(id)) if !id.is_empty() => {
                let mut start = upload_key(key, id);
                start.push(0);
                start
            }
            // Every upload of the marker key itself is skipped.
            (Some(key), _) => successor(&upload_key(key, "")).unwrap_or_default(),
            (None, _) => Vec::new(),
        };
        let list = ListParams {
            prefix: params.prefix,
            delimiter: params.delimiter,
            after: params.key_marker,
            max: params.max,
        };
        let mut items = Merged::new(
            self.kv.as_ref(),
            vec![map.clone()],
            Space::Entries,
            start,
            params.prefix,
            params.max,
        );
        let page = list_sorted(&list, &mut items, |_, raw| {
            let upload: UploadRecord = decode(&raw)?;
            Ok(Some((upload.key.clone(), (upload, raw))))
        })
        .await?;
        let mut open = Vec::with_capacity(page.entries.len());
        for (key, (mut upload, raw)) in page.entries {
            if upload.completing.is_some() {
                let found = Found {
                    map: map.clone(),
                    upload: upload.clone(),
                    raw,
                };
                match self.settle_completion(bucket, &key, found).await? {
                    Settled::Reopened => upload.completing = None,
                    Settled::Finished(_) | Settled::Removed | Settled::UnderWay => continue,
                }
            }
            open.push((key, upload));
        }
        Ok(ListPage {
            entries: open,
            prefixes: page.prefixes,
            truncated: page.truncated,
        })
    }
}

/// Marks an upload as being completed by this process, until dropped.
struct Running<'a> {
    index: &'a Index,
    upload_id: String,
}

impl<'a> Running<'a> {
    fn begin(index: &'a Index, upload_id: &str) -> Self {
        index
            .completing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(upload_id.to_owned());
        Running {
            index,
            upload_id: upload_id.to_owned(),
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.index
            .completing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.upload_id);
    }
}
