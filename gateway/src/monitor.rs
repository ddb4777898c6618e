//! Watches the storage from the S3 runtime, so that the ops thread never waits for it:
//! readiness follows whether the index answers within a deadline (a cluster that cannot
//! serve makes `/readyz` fail, and service resumes by itself when it answers again), and
//! the per-bucket usage that `/metrics` shows is read here when a scrape asks for it.

use crate::metrics::BucketSeries;
use kura_index::Index;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// How often the storage is probed.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A probe slower than this counts as a failure.
const PROBE_DEADLINE: Duration = Duration::from_secs(3);
const USAGE_DEADLINE: Duration = Duration::from_secs(10);

/// Shared between the server and the ops thread: ready while the S3 listener serves and
/// the storage answers.
#[derive(Default)]
pub struct Readiness {
    serving: AtomicBool,
    storage: AtomicBool,
}

impl Readiness {
    pub fn set(&self, serving: bool) {
        self.serving.store(serving, Ordering::SeqCst);
    }

    pub fn set_storage(&self, answers: bool) {
        self.storage.store(answers, Ordering::SeqCst);
    }

    pub fn storage(&self) -> bool {
        self.storage.load(Ordering::SeqCst)
    }

    pub fn get(&self) -> bool {
        self.serving.load(Ordering::SeqCst) && self.storage()
    }
}

/// How long a scrape waits for fresh per-bucket figures before it takes the last ones.
const FRESH_WAIT: Duration = Duration::from_secs(2);

/// The per-bucket figures last read, for `/metrics` (None until a read succeeded, so that
/// no per-bucket series is exported rather than wrong ones), and the scrapes' requests for
/// fresh ones.
pub struct UsageSnapshot {
    series: RwLock<Option<Vec<BucketSeries>>>,
    wanted: Notify,
    /// When the last read that succeeded began.
    reads: watch::Sender<Option<Instant>>,
}

impl Default for UsageSnapshot {
    fn default() -> Self {
        UsageSnapshot {
            series: RwLock::new(None),
            wanted: Notify::new(),
            reads: watch::channel(None).0,
        }
    }
}

impl UsageSnapshot {
    /// The figures after asking the monitor for a fresh read and waiting for it a little;
    /// the last ones if the storage is slow.
    pub async fn fresh(&self) -> Option<Vec<BucketSeries>> {
        let asked = Instant::now();
        let mut reads = self.reads.subscribe();
        self.wanted.notify_one();
        let after_asking = reads.wait_for(|began| began.is_some_and(|b| b >= asked));
        let _ = tokio::time::timeout(FRESH_WAIT, after_asking).await;
        self.series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, began: Instant, series: Vec<BucketSeries>) {
        *self.series.write().unwrap_or_else(|e| e.into_inner()) = Some(series);
        self.reads.send_replace(Some(began));
    }
}

/// Probes the storage and refreshes the usage until `stop` turns true.
pub async fn run(
    index: Arc<Index>,
    readiness: Arc<Readiness>,
    usage: Arc<UsageSnapshot>,
    mut stop: watch::Receiver<bool>,
) {
    let mut asked = false;
    loop {
        let answered = tokio::time::timeout(PROBE_DEADLINE, index.probe()).await;
        let ok = matches!(answered, Ok(Ok(())));
        if readiness.storage() != ok {
            match &answered {
                Ok(Ok(())) => tracing::info!("storage answers again: ready"),
                Ok(Err(err)) => tracing::warn!(%err, "storage probe failed: not ready"),
                Err(_) => tracing::warn!("storage probe timed out: not ready"),
            }
        }
        readiness.set_storage(ok);
        if !ok {
            // A cluster that restarted whole may be back while this gateway still looks
            // for it where it was: ask it where it is now.
            match tokio::time::timeout(PROBE_DEADLINE, index.catch_up()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::debug!(%err, "storage catch-up failed"),
                Err(_) => tracing::debug!("storage catch-up timed out"),
            }
        }
        // Only for a scrape: the read takes every shard of every bucket.
        if ok && asked {
            let began = Instant::now();
            match tokio::time::timeout(USAGE_DEADLINE, index.usage()).await {
                Ok(Ok(buckets)) => usage.set(
                    began,
                    buckets
                        .into_iter()
                        .map(|u| BucketSeries {
                            name: u.bucket,
                            objects: u.objects,
                            bytes: u.bytes,
                            shards: u.shards,
                            resharding: u.resharding,
                        })
                        .collect(),
                ),
                Ok(Err(err)) => tracing::warn!(%err, "bucket usage unavailable for metrics"),
                Err(_) => tracing::warn!("bucket usage took too long to read for metrics"),
            }
        }
        asked = false;
        tokio::select! {
            _ = tokio::time::sleep(PROBE_EVERY) => {}
            _ = usage.wanted.notified() => asked = true,
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
