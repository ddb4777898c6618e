//! The lifecycle worker: applies each bucket's lifecycle rules at most once per day, a page
//! of objects (or uploads) per step, saving where it is in the bucket record so that a
//! restart goes on where it stopped. Expired objects are deleted only if unchanged since
//! they were listed; incomplete multipart uploads past their days are aborted.

use super::worker::{Progress, Worker};
use crate::lifecycle::{after_days, expiry, selects};
use crate::metrics::METRICS;
use kura_index::{
    BucketRecord, Index, LifecyclePass, LifecycleRule, ListParams, PassCursor, UploadListParams,
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
                    if due
                        && self
                            .index
                            .delete_object_if_unchanged(&bucket.name, key, version.stamp)
                            .await?
                            .is_some()
                    {
                        pass.objects_expired += 1;
                        self.expired += 1;
                        METRICS.lifecycle_objects_expired.inc();
                    }
                }
                Some(match (page.truncated, page.last()) {
                    (true, Some(last)) => PassCursor::Objects(Some(last.to_owned())),
                    _ => PassCursor::Uploads(None),
                })
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
