//! Delivers the server access log records a gateway buffered (see `access_log`): every
//! batch whose interval has passed becomes one object of its target bucket.

use crate::background::{Progress, Worker};
use crate::error::ErrorCode;
use crate::metrics::METRICS;
use crate::s3;
use crate::state::S3State;
use std::sync::Arc;
use std::time::Duration;

pub struct LogDeliveryWorker {
    state: Arc<S3State>,
    interval: Duration,
    delivered: u64,
    /// Rounds in a row that the cluster could not take a batch: the pause doubles with
    /// each, up to `MAX_BACKOFF`.
    postponed: u32,
}

/// The longest pause between tries while the cluster cannot take access logs.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl LogDeliveryWorker {
    pub fn new(state: Arc<S3State>, interval: Duration) -> Self {
        LogDeliveryWorker {
            state,
            interval,
            delivered: 0,
            postponed: 0,
        }
    }
}

impl Worker for LogDeliveryWorker {
    fn name(&self) -> &'static str {
        "access-log"
    }

    async fn step(&mut self) -> Result<Duration, String> {
        let (delivered, postponed) = deliver(&self.state, self.interval, false).await;
        self.delivered += delivered;
        self.postponed = if postponed { self.postponed + 1 } else { 0 };
        // A batch waits at most a twentieth of its interval (and a second) past it.
        let pause = (self.interval / 20).clamp(Duration::from_millis(100), Duration::from_secs(1));
        Ok(pause
            .saturating_mul(1 << self.postponed.min(10))
            .min(MAX_BACKOFF.max(pause)))
    }

    fn progress(&self) -> Progress {
        Progress {
            busy: false,
            items: self.delivered,
            detail: "delivering server access logs".into(),
        }
    }
}

/// Delivers the batches due (with `all`, every one: at shutdown); returns how many
/// objects were written, and whether the cluster could not take some now: those are kept
/// for a later round. A batch its target refuses is dropped, and counted.
pub async fn deliver(state: &S3State, interval: Duration, all: bool) -> (u64, bool) {
    let now = state.index.now_ms();
    let interval_ms = interval.as_millis() as u64;
    let (mut delivered, mut postponed) = (0, false);
    for batch in state.access_logs.take_due(now, interval_ms, all) {
        match s3::deliver_access_log(state, &batch).await {
            Ok(()) => {
                METRICS.access_log_objects.inc();
                delivered += 1;
            }
            Err(err) if err.code == ErrorCode::ServiceUnavailable && !all => {
                tracing::debug!(%err, bucket = batch.source, "access log delivery postponed");
                state.access_logs.add(batch);
                postponed = true;
            }
            Err(err) => {
                tracing::warn!(
                    %err,
                    bucket = batch.source,
                    target = batch.logging.target_bucket,
                    "server access log records dropped"
                );
                METRICS.access_log_records_dropped.inc_by(batch.records());
            }
        }
    }
    (delivered, postponed)
}
