//! The lifecycle worker: applies each bucket's lifecycle rules at most once per day, a page
//! of objects (then versions, then uploads) per step, saving where it is in the bucket
//! record so that a restart goes on where it stopped. Expired objects are deleted only if
//! unchanged since they were listed, noncurrent versions only while still noncurrent, lone
//! delete markers only while still the newest, and never a locked version; incomplete
//! multipart uploads past their days are aborted.

use super::worker::{Progress, Worker};
use crate::lifecycle::{
    acts_on_versions, after_days, expiry, noncurrent_due, removes_lone_marker, selects,
};
use crate::metrics::METRICS;
use kura_index::{
    BucketRecord, Index, IndexError, LifecyclePass, LifecycleRule, ListParams, Only, PassCursor,
    UploadListParams, Versioning, VersionsCursor,
};
use std::sync::Arc;
use std::time::Duration;

/// Objects or uploads looked at per step.
const PAGE: usize = 1000;
/// The wait when no bucket has a pass due, and between pages of a pass.
const IDLE_PAUSE: Duration = Duration::from_secs(1);
const PAGE_PAUSE: Duration = Duration::from_millis(20);

pub struct LifecycleWorker {
    index: Arc<Index>,
    day: Duration,
    expired: u64,
    aborted: u64,
    /// The bucket the last step worked on, while its pass goes on.
    current: Option<String>,
}

impl LifecycleWorker {
    pub fn new(index: Arc<Index>, day: Duration) -> Self {
        LifecycleWorker {
            index,
            day,
            expired: 0,
            aborted: 0,
            current: None,
        }
    }

    /// A bucket whose pass goes on, or whose last pass began a day ago or more.
    async fn due(&self, now_ms: u64) -> kura_index::Result<Option<BucketRecord>> {
        let day_ms = self.day.as_millis() as u64;
        Ok(self.index.list_buckets().await?.into_iter().find(|b| {
            b.lifecycle
                .as_ref()
                .is_some_and(|rules| rules.iter().any(|r| r.enabled))
                && match &b.lifecycle_pass {
                    None => true,
                    Some(pass) => {
                        pass.next.is_some() || now_ms >= pass.started_ms.saturating_add(day_ms)
                    }
                }
        }))
    }

    /// One page of a bucket's pass: expires the objects (or aborts the uploads) due now.
    async fn page(&mut self, bucket: &BucketRecord, now_ms: u64) -> kura_index::Result<()> {
        let rules: &[LifecycleRule] = bucket.lifecycle.as_deref().unwrap_or_default();
        let mut pass = match &bucket.lifecycle_pass {
            Some(pass) if pass.next.is_some() => pass.clone(),
            _ => LifecyclePass {
                started_ms: now_ms,
                next: Some(PassCursor::Objects(None)),
                ..Default::default()
            },
        };
        pass.next = match pass.next.take() {
            Some(PassCursor::Objects(after)) => {
                let params = ListParams {
                    prefix: "",
                    delimiter: None,
                    after: after.as_deref(),
                    max: PAGE,
                };
                let page = self.index.list_objects(&bucket.name, &params).await?;
                for (key, version) in &page.entries {
                    let due =
                        expiry(rules, key, version, self.day).is_some_and(|(at, _)| at <= now_ms);
                    if due {
                        let only = Only::CurrentIs(version.stamp);
                        if self.expire(&bucket.name, key, None, only).await? {
                            pass.objects_expired += 1;
                        }
                    }
                }
                Some(match (page.truncated, page.last()) {
                    (true, Some(last)) => PassCursor::Objects(Some(last.to_owned())),
                    _ if bucket.versioning != Versioning::Unversioned
                        && acts_on_versions(rules) =>
                    {
                        PassCursor::Versions(None)
                    }
                    _ => PassCursor::Uploads(None),
                })
            }
            Some(PassCursor::Versions(after)) => {
                let (expired, next) = self.versions_page(bucket, rules, after, now_ms).await?;
                pass.objects_expired += expired;
                Some(next)
            }
            Some(PassCursor::Uploads(after)) => {
                let params = UploadListParams {
                    key_marker: after.as_ref().map(|(k, _)| k.as_str()),
                    upload_id_marker: after.as_ref().map(|(_, id)| id.as_str()),
                    max: PAGE,
                    ..Default::default()
                };
                let page = self.index.list_uploads(&bucket.name, &params).await?;
                for (key, upload) in &page.entries {
                    let due = rules.iter().filter(|r| r.enabled).any(|r| {
                        r.abort_incomplete_days.is_some_and(|days| {
                            selects(r, key, 0, &[])
                                && after_days(upload.initiated_ms, days, self.day) <= now_ms
                        })
                    });
                    if due {
                        match self
                            .index
                            .abort_upload(&bucket.name, key, &upload.upload_id)
                            .await
                        {
                            Ok(()) => {
                                pass.uploads_aborted += 1;
                                self.aborted += 1;
                                METRICS.lifecycle_uploads_aborted.inc();
                            }
                            // Completed or aborted meanwhile.
                            Err(kura_index::IndexError::NoSuchUpload) => {}
                            Err(err) => return Err(err),
                        }
                    }
                }
                match (page.truncated, page.entries.last()) {
                    (true, Some((key, upload))) => Some(PassCursor::Uploads(Some((
                        key.clone(),
                        upload.upload_id.clone(),
                    )))),
                    _ => None,
                }
            }
            None => None,
        };
        if pass.next.is_none() {
            pass.finished_ms = Some(now_ms);
            tracing::info!(
                bucket = bucket.name,
                objects_expired = pass.objects_expired,
                uploads_aborted = pass.uploads_aborted,
                "lifecycle pass finished"
            );
        }
        self.index
            .update_bucket(&bucket.name, |record| {
                record.lifecycle_pass = Some(pass.clone())
            })
            .await?;
        Ok(())
    }
}

impl LifecycleWorker {
    /// Deletes what a rule expired, if it still is what the rule decided on; locked
    /// versions stay. Whether something was deleted.
    async fn expire(
        &mut self,
        bucket: &str,
        key: &str,
        id: Option<&str>,
        only: Only,
    ) -> kura_index::Result<bool> {
        match self.index.expire(bucket, key, id, only).await {
            Ok(Some(_)) => {
                self.expired += 1;
                METRICS.lifecycle_objects_expired.inc();
                Ok(true)
            }
            Ok(None) | Err(IndexError::ObjectLocked(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// A page of a bucket's versions: removes the noncurrent versions the rules expire and
    /// the delete markers left alone that they remove. What it expired, and where the
    /// pass goes on.
    async fn versions_page(
        &mut self,
        bucket: &BucketRecord,
        rules: &[LifecycleRule],
        after: Option<VersionsCursor>,
        now_ms: u64,
    ) -> kura_index::Result<(u64, PassCursor)> {
        let params = ListParams {
            prefix: "",
            delimiter: None,
            after: after.as_ref().map(|c| c.key.as_str()),
            max: PAGE,
        };
        let version_after = after.as_ref().map(|c| c.version_id.as_str());
        let page = self
            .index
            .list_versions(&bucket.name, &params, version_after)
            .await?;
        let mut entries = page.entries.as_slice();
        // A key's newest version that ends a truncated page may have older versions on the
        // next: whether a delete marker there is alone is decided with the next page.
        if page.truncated
            && entries.len() > 1
            && entries
                .last()
                .is_some_and(|(_, v)| v.latest && v.version.delete_marker)
        {
            entries = &entries[..entries.len() - 1];
        }
        let mut expired = 0;
        let mut cursor = after;
        for (i, (key, listed)) in entries.iter().enumerate() {
            let version = &listed.version;
            let in_key = cursor.as_ref().filter(|c| c.key == *key && !listed.latest);
            let noncurrent = in_key.map(|c| (c.written_ms, c.noncurrent));
            cursor = Some(VersionsCursor {
                key: key.clone(),
                version_id: version.version_id.clone(),
                written_ms: version.stamp.ms,
                noncurrent: noncurrent.map_or(0, |(_, n)| n + 1),
            });
            let id = Some(version.version_id.as_str());
            let remove = match noncurrent {
                Some(since) => noncurrent_due(rules, key, version, since, self.day, now_ms)
                    .then_some(Only::Noncurrent),
                None => {
                    let alone = match entries.get(i + 1) {
                        Some((next, _)) => next != key,
                        None => !page.truncated,
                    };
                    (version.delete_marker && alone && removes_lone_marker(rules, key))
                        .then_some(Only::Newest)
                }
            };
            if let Some(only) = remove
                && self.expire(&bucket.name, key, id, only).await?
            {
                expired += 1;
            }
        }
        let next = match cursor {
            Some(cursor) if page.truncated => PassCursor::Versions(Some(cursor)),
            _ => PassCursor::Uploads(None),
        };
        Ok((expired, next))
    }
}

impl Worker for LifecycleWorker {
    fn name(&self) -> &'static str {
        "lifecycle"
    }

    async fn step(&mut self) -> Result<Duration, String> {
        let now_ms = self.index.now_ms();
        let Some(bucket) = self.due(now_ms).await.map_err(|e| e.to_string())? else {
            self.current = None;
            return Ok(IDLE_PAUSE);
        };
        self.current = Some(bucket.name.clone());
        self.page(&bucket, now_ms)
            .await
            .map_err(|e| format!("bucket {}: {e}", bucket.name))?;
        Ok(PAGE_PAUSE)
    }

    fn progress(&self) -> Progress {
        Progress {
            busy: self.current.is_some(),
            items: self.expired + self.aborted,
            detail: match &self.current {
                Some(bucket) => format!(
                    "applying the rules of {bucket} ({} objects expired, {} uploads aborted)",
                    self.expired, self.aborted
                ),
                None => format!(
                    "no pass due ({} objects expired, {} uploads aborted)",
                    self.expired, self.aborted
                ),
            },
        }
    }
}
