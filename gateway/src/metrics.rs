//! Prometheus metrics: one registry for the whole process, fed by the S3 path
//! and background tasks, rendered by the ops listener's `/metrics`.
//!
//! Labels take values from small fixed sets only (operation names, status
//! classes, error codes, task names) plus at most [`MAX_BUCKET_SERIES`]
//! bucket names: never object keys or access keys, so the number of series
//! stays bounded whatever clients send.

use crate::error::ErrorCode;
use axum::body::Body;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::{Frame, SizeHint};
use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

mod buckets;

pub use buckets::{BucketSeries, MAX_BUCKET_SERIES};

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The content type of [`render`]'s text: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// The S3 error codes that mean a request's credentials were not accepted.
const AUTH_FAILURES: [ErrorCode; 6] = [
    ErrorCode::AccessDenied,
    ErrorCode::AuthorizationHeaderMalformed,
    ErrorCode::AuthorizationQueryParametersError,
    ErrorCode::InvalidAccessKeyId,
    ErrorCode::RequestTimeTooSkewed,
    ErrorCode::SignatureDoesNotMatch,
];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    received_bytes: IntCounter,
    sent_bytes: IntCounter,
    in_flight: IntGauge,
    errors: IntCounterVec,
    auth_failures: IntCounterVec,
    pub blob_checksum_failures: IntCounter,
    task_runs: IntCounterVec,
    task_duration: HistogramVec,
    task_busy: IntGaugeVec,
    pub gc_blobs_deleted: IntCounter,
    pub access_log_objects: IntCounter,
    pub access_log_records_dropped: IntCounter,
    pub lifecycle_objects_expired: IntCounter,
    pub lifecycle_uploads_aborted: IntCounter,
    pub reshard_entries_copied: IntCounter,
    pub reshards_started: IntCounterVec,
    pub reshards_completed: IntCounter,
    reshard_duration: Histogram,
    reshard_switch_pause: Histogram,
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let build_info = registered(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "kura_build_info",
                    "Always 1; the version of the running Kura.",
                ),
                &["version"],
            ),
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique metric names");

        let metrics = Metrics {
            requests: registered(
                r,
                IntCounterVec::new(
                    Opts::new("kura_s3_requests_total", "S3 requests answered."),
                    &["operation", "status_class"],
                ),
            ),
            request_duration: registered(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "kura_s3_request_duration_seconds",
                        "Time from a request's arrival until its response body is sent.",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0, 30.0, 60.0, 300.0,
                    ]),
                    &["operation"],
                ),
            ),
            received_bytes: registered(
                r,
                IntCounter::new(
                    "kura_s3_received_bytes_total",
                    "S3 request body bytes received.",
                ),
            ),
            sent_bytes: registered(
                r,
                IntCounter::new("kura_s3_sent_bytes_total", "S3 response body bytes sent."),
            ),
            in_flight: registered(
                r,
                IntGauge::new(
                    "kura_s3_requests_in_flight",
                    "S3 requests being handled or having their response body sent.",
                ),
            ),
            errors: registered(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "kura_s3_errors_total",
                        "Error responses of the S3 and admin APIs, by error code.",
                    ),
                    &["code"],
                ),
            ),
            auth_failures: registered(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "kura_auth_failures_total",
                        "S3 and admin API requests refused for their credentials or signature, by error code.",
                    ),
                    &["reason"],
                ),
            ),
            blob_checksum_failures: registered(
                r,
                IntCounter::new(
                    "kura_blob_checksum_failures_total",
                    "Stored blocks that failed their checksum when read; never served.",
                ),
            ),
            task_runs: registered(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "kura_background_task_runs_total",
                        "Steps of background work run, by task and result.",
                    ),
                    &["task", "result"],
                ),
            ),
            task_duration: registered(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "kura_background_task_duration_seconds",
                        "Duration of one step of background work.",
                    )
                    .buckets(vec![0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 600.0]),
                    &["task"],
                ),
            ),
            task_busy: registered(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "kura_background_task_busy",
                        "1 while a background task has work left after its last step, else 0.",
                    ),
                    &["task"],
                ),
            ),
            lifecycle_objects_expired: registered(
                r,
                IntCounter::new(
                    "kura_lifecycle_objects_expired_total",
                    "Objects deleted by lifecycle expiration rules.",
                ),
            ),
            lifecycle_uploads_aborted: registered(
                r,
                IntCounter::new(
                    "kura_lifecycle_uploads_aborted_total",
                    "Incomplete multipart uploads aborted by lifecycle rules.",
                ),
            ),
            gc_blobs_deleted: registered(
                r,
                IntCounter::new(
                    "kura_gc_blobs_deleted_total",
                    "Unreferenced blobs deleted by garbage collection.",
                ),
            ),
            access_log_objects: registered(
                r,
                IntCounter::new(
                    "kura_access_log_objects_total",
                    "Server access log objects delivered to target buckets.",
                ),
            ),
            access_log_records_dropped: registered(
                r,
                IntCounter::new(
                    "kura_access_log_records_dropped_total",
                    "Server access log records dropped: the buffer was full, or the target bucket refused or failed the delivery.",
                ),
            ),
            reshard_entries_copied: registered(
                r,
                IntCounter::new(
                    "kura_reshard_entries_copied_total",
                    "Index entries copied to a new shard layout by online resharding.",
                ),
            ),
            reshards_started: registered(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "kura_reshards_started_total",
                        "Online reshards started, by trigger (auto: the threshold; manual: the admin API).",
                    ),
                    &["trigger"],
                ),
            ),
            reshards_completed: registered(
                r,
                IntCounter::new(
                    "kura_reshards_completed_total",
                    "Online reshards that switched a bucket to its new layout.",
                ),
            ),
            reshard_duration: registered(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "kura_reshard_duration_seconds",
                        "Whole online reshards, from start (as persisted, so across restarts) to switch.",
                    )
                    .buckets(vec![
                        1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
                    ]),
                ),
            ),
            reshard_switch_pause: registered(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "kura_reshard_switch_pause_seconds",
                        "How long index writes were held off to switch a bucket to its new layout.",
                    )
                    .buckets(vec![
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 1.0,
                    ]),
                ),
            ),
            registry,
        };
        for trigger in ["auto", "manual"] {
            metrics.reshards_started.with_label_values(&[trigger]);
        }
        metrics
    }

    /// Counts an S3 error answered to a client.
    pub fn s3_error(&self, code: ErrorCode) {
        self.error(code.as_str(), code.status());
    }

    /// Counts an error answered by the S3 or admin API (whose codes are S3's plus a few).
    pub fn error(&self, code: &str, status: StatusCode) {
        // A 304 travels as an error internally but is no error to the client.
        if status.as_u16() < 400 {
            return;
        }
        self.errors.with_label_values(&[code]).inc();
        if AUTH_FAILURES.iter().any(|c| c.as_str() == code) {
            self.auth_failures.with_label_values(&[code]).inc();
        }
    }

    /// Records a reshard that switched its bucket to the new layout.
    pub fn reshard_completed(&self, took: Duration, switch_pause: Duration) {
        self.reshards_completed.inc();
        self.reshard_duration.observe(took.as_secs_f64());
        self.reshard_switch_pause
            .observe(switch_pause.as_secs_f64());
    }

    /// Makes a background task's series exist (at 0) from its start.
    pub fn declare_task(&self, task: &str) {
        for result in ["ok", "error"] {
            self.task_runs.with_label_values(&[task, result]);
        }
        self.task_duration.with_label_values(&[task]);
        self.task_busy.with_label_values(&[task]);
    }

    /// Whether a background task has work left after its last step.
    pub fn task_busy(&self, task: &str, busy: bool) {
        self.task_busy
            .with_label_values(&[task])
            .set(i64::from(busy));
    }

    /// Records one step of a background task.
    pub fn task_run(&self, task: &str, took: Duration, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.task_runs.with_label_values(&[task, result]).inc();
        self.task_duration
            .with_label_values(&[task])
            .observe(took.as_secs_f64());
    }
}

/// Registers `metric` and hands it back. Names and labels are constants, so
/// a failure is a bug that the unit tests meet first.
fn registered<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric name");
    metric
}

/// `/metrics` in the Prometheus text format: the registry, then the
/// per-bucket series from `usage`.
pub fn render(usage: Option<Vec<BucketSeries>>) -> prometheus::Result<String> {
    let mut families = METRICS.registry.gather();
    if let Some(usage) = usage {
        families.extend(buckets::families(usage));
    }
    TextEncoder::new().encode_to_string(&families)
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// One S3 request from its arrival until its response body is done (sent,
/// or dropped with the connection): in flight meanwhile, its duration
/// observed at the end. A request dropped before it is answered (the client
/// went away) only leaves the in-flight count.
pub struct RequestTracker {
    started: Instant,
    operation: Option<&'static str>,
}

impl RequestTracker {
    pub fn begin() -> Self {
        METRICS.in_flight.inc();
        RequestTracker {
            started: Instant::now(),
            operation: None,
        }
    }

    /// Counts the answer, and keeps tracking the request while its body is
    /// sent, counting the bytes as they go.
    pub fn finish(mut self, operation: &'static str, response: Response<Body>) -> Response<Body> {
        METRICS
            .requests
            .with_label_values(&[operation, status_class(response.status())])
            .inc();
        self.operation = Some(operation);
        response.map(|body| {
            Body::new(Counted {
                inner: body,
                bytes: &METRICS.sent_bytes,
                _tracker: Some(self),
            })
        })
    }
}

impl Drop for RequestTracker {
    fn drop(&mut self) {
        METRICS.in_flight.dec();
        if let Some(operation) = self.operation {
            METRICS
                .request_duration
                .with_label_values(&[operation])
                .observe(self.started.elapsed().as_secs_f64());
        }
    }
}

/// A request body that counts its bytes into `kura_s3_received_bytes_total`
/// as they arrive (the body as sent, aws-chunked framing included).
pub fn received(body: hyper::body::Incoming) -> Body {
    Body::new(Counted {
        inner: body,
        bytes: &METRICS.received_bytes,
        _tracker: None,
    })
}

/// A body passed through untouched while its data bytes are counted. hyper
/// drops a response body once it is sent or the connection is gone, which
/// ends the request's tracker with it.
struct Counted<B> {
    inner: B,
    bytes: &'static IntCounter,
    _tracker: Option<RequestTracker>,
}

impl<B> http_body::Body for Counted<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.bytes.inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    // Passed on so that hyper still sends a Content-Length where it can.
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::PARTIAL_CONTENT), "2xx");
        assert_eq!(status_class(StatusCode::NOT_MODIFIED), "3xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }

    #[test]
    fn auth_failures_are_counted_by_code_and_not_modified_is_no_error() {
        let count = |metric: &IntCounterVec, label: &str| metric.with_label_values(&[label]).get();
        let errors = count(&METRICS.errors, "SignatureDoesNotMatch");
        let auth = count(&METRICS.auth_failures, "SignatureDoesNotMatch");
        METRICS.s3_error(ErrorCode::SignatureDoesNotMatch);
        assert_eq!(count(&METRICS.errors, "SignatureDoesNotMatch"), errors + 1);
        assert_eq!(
            count(&METRICS.auth_failures, "SignatureDoesNotMatch"),
            auth + 1
        );

        METRICS.s3_error(ErrorCode::NoSuchKey);
        let text = render(None).unwrap();
        assert!(text.contains("kura_s3_errors_total{code=\"NoSuchKey\"}"));
        assert!(!text.contains("kura_auth_failures_total{reason=\"NoSuchKey\"}"));

        let not_modified = count(&METRICS.errors, "NotModified");
        METRICS.s3_error(ErrorCode::NotModified);
        assert_eq!(count(&METRICS.errors, "NotModified"), not_modified);
    }
}
