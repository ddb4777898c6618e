//! The ops listener: liveness, readiness and metrics, served from a thread
//! and runtime of its own so that no load on the S3 path can delay a probe.

use crate::metrics::{self, UsageSource};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// Shared between the server and the ops thread.
#[derive(Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

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
    usage: UsageSource,
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

fn router(readiness: Arc<Readiness>, usage: UsageSource) -> Router {
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

/// Rendered on a blocking thread: reading the index and /proc must not hold
/// up the probes this thread's runtime serves.
async fn scrape(usage: UsageSource) -> Response {
    match tokio::task::spawn_blocking(move || metrics::render(usage())).await {
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
