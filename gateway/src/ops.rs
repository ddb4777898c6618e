//! The ops listener: liveness, readiness (and metrics), served from a thread
//! and runtime of its own so that no load on the S3 path can delay a probe.

use axum::Router;
use axum::http::StatusCode;
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

/// Binds the ops address and serves it on a dedicated thread.
pub fn spawn(addr: SocketAddr, readiness: Arc<Readiness>) -> std::io::Result<OpsHandle> {
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
                if let Err(err) = axum::serve(listener, router(readiness))
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!(%err, "ops listener failed");
                }
            });
        })?;
    Ok(OpsHandle { stop, thread })
}

fn router(readiness: Arc<Readiness>) -> Router {
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
}
