//! The ops listener: liveness, readiness and metrics, served from a thread
//! and runtime of its own so that no load on the S3 path can delay a probe.

use crate::metrics;
use crate::monitor::{Readiness, UsageSnapshot};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

pub struct OpsHandle {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl OpsHandle {
    pub fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

/// Binds the ops address and serves it on a dedicated thread. `usage` gives
/// the per-bucket figures of `/metrics`.
pub fn spawn(
    addr: SocketAddr,
    readiness: Arc<Readiness>,
    usage: Arc<UsageSnapshot>,
) -> std::io::Result<OpsHandle> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let (stop, mut stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("kura-ops".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the ops runtime starts");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("listener is non-blocking");
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                if let Err(err) = axum::serve(listener, router(readiness, usage))
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!(%err, "ops listener failed");
                }
            });
        })?;
    Ok(OpsHandle { stop, thread })
}

fn router(readiness: Arc<Readiness>, usage: Arc<UsageSnapshot>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || async move {
                if readiness.get() {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }),
        )
        .route("/metrics", get(move || scrape(usage.clone())))
}

/// The per-bucket figures come from the S3 runtime's monitor (this thread never reads the
/// storage); rendering, which reads /proc, runs on a blocking thread so that it cannot hold
/// up the probes this thread's runtime serves.
async fn scrape(usage: Arc<UsageSnapshot>) -> Response {
    let series = usage.fresh().await;
    match tokio::task::spawn_blocking(move || metrics::render(series)).await {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Ok(Err(err)) => {
            tracing::error!(%err, "rendering metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(err) => {
            tracing::error!(%err, "rendering metrics panicked");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
