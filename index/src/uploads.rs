use crate::gc::{clear_intent, queue_garbage};
use crate::listing::{Items, ListPage, list_sorted, successor};
use crate::model::{
    ObjectVersion, PartRecord, UploadRecord, decode, encode, part_key, part_map, part_prefix,
    upload_key, upload_map,
};
use crate::{Index, IndexError, Result};
use kura_backend::Batch;

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

impl Index {
    pub async fn create_upload(&self, bucket: &str, upload: &UploadRecord) -> Result<()> {
        {
            let _guard = self.locks.key(bucket, &upload.key);
            self.bucket(bucket)?;
            let mut batch = Batch::default();
            batch.put(
                &upload_map(bucket),
                upload_key(&upload.key, &upload.upload_id),
                encode(upload),
            );
            self.kv.apply(batch)?;
        }
        self.sync().await
    }

    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord> {
        self.bucket(bucket)?;
        self.kv
            .get(&upload_map(bucket), &upload_key(key, upload_id))?
            .map(|b| decode(&b))
            .transpose()?
            .ok_or(IndexError::NoSuchUpload)
    }

    /// Records a part, replacing (and collecting) an earlier upload of the same number.
    pub async fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: &PartRecord,
    ) -> Result<()> {
        {
            let _guard = self.locks.key(bucket, key);
            self.upload(bucket, key, upload_id)?;
            let map = part_map(bucket);
            let pkey = part_key(upload_id, part.number);
            let mut batch = Batch::default();
            if let Some(old) = self.kv.get(&map, &pkey)? {
                queue_garbage(&mut batch, &decode::<PartRecord>(&old)?.blob);
            }
            clear_intent(&mut batch, &part.blob);
            batch.put(&map, pkey, encode(part));
            self.kv.apply(batch)?;
        }
        self.sync().await
    }

    /// Parts with numbers greater than `after`, up to `max`; and whether more follow.
    pub fn parts(
        &self,
        bucket: &str,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<PartRecord>, bool)> {
        let prefix = part_prefix(upload_id);
        let start = part_key(upload_id, after.saturating_add(1));
        let mut parts = Vec::new();
        for item in self.kv.scan(&part_map(bucket), &start)? {
            let (key, value) = item?;
            if !key.starts_with(&prefix) || after == u32::MAX {
                break;
            }
            if parts.len() == max {
                return Ok((parts, true));
            }
            parts.push(decode(&value)?);
        }
        Ok((parts, false))
    }

    /// Turns an upload into the current version of its key. `build` gets the
    /// upload and all its uploaded parts and makes the version (validating the
    /// client's part list); `check` vets the version being replaced. Parts not
    /// used by the version are collected.
    pub async fn complete_upload<E: From<IndexError>>(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        build: impl FnOnce(&UploadRecord, &[PartRecord]) -> std::result::Result<ObjectVersion, E>,
        check: impl FnOnce(Option<&ObjectVersion>) -> std::result::Result<(), E>,
    ) -> std::result::Result<ObjectVersion, E> {
        let version = {
            let _guard = self.locks.key(bucket, key);
            let upload = self.upload(bucket, key, upload_id)?;
            let (parts, _) = self.parts(bucket, upload_id, 0, usize::MAX)?;
            let mut version = build(&upload, &parts)?;
            let record = self.bucket(bucket)?;
            let existing = self.object(bucket, key)?.unwrap_or_default();
            check(existing.current())?;
            version.stamp = self.clock.stamp();
            let mut batch = Batch::default();
            for part in &parts {
                if !version.parts.iter().any(|used| used.blob == part.blob) {
                    queue_garbage(&mut batch, &part.blob);
                }
                batch.delete(&part_map(bucket), part_key(upload_id, part.number));
            }
            batch.delete(&upload_map(bucket), upload_key(key, upload_id));
            let (delta, entries) =
                self.commit_version(&mut batch, &record, key, existing, version.clone())?;
            self.apply_counted(batch, &record, delta, entries)?;
            version
        };
        self.sync().await?;
        Ok(version)
    }

    /// Removes an upload and collects its parts.
    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        {
            let _guard = self.locks.key(bucket, key);
            self.upload(bucket, key, upload_id)?;
            let (parts, _) = self.parts(bucket, upload_id, 0, usize::MAX)?;
            let mut batch = Batch::default();
            for part in &parts {
                queue_garbage(&mut batch, &part.blob);
                batch.delete(&part_map(bucket), part_key(upload_id, part.number));
            }
            batch.delete(&upload_map(bucket), upload_key(key, upload_id));
            self.kv.apply(batch)?;
        }
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
            let page = self.list_uploads(bucket, &params)?;
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

    /// Open uploads ordered by key, then by initiation (upload ids sort by time).
    pub fn list_uploads(
        &self,
        bucket: &str,
        params: &UploadListParams,
    ) -> Result<ListPage<UploadRecord>> {
        self.bucket(bucket)?;
        let map = upload_map(bucket);
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
        list_sorted(
            params.prefix,
            params.delimiter,
            start,
            params.key_marker,
            params.max,
            |seek| {
                let items = self.kv.scan(&map, seek)?.map(|item| {
                    let (_, value) = item?;
                    let upload: UploadRecord = decode(&value)?;
                    Ok((upload.key.clone(), upload))
                });
                Ok(Box::new(items) as Items<UploadRecord>)
            },
        )
    }
}
