//! `kura serve`: opens storage, starts the ops thread and the S3 listener,
//! runs background work, and shuts down gracefully on SIGTERM/SIGINT.

use crate::access_log::AccessLogs;
use crate::background::{GcWorker, LifecycleWorker, ReshardPolicy, ReshardWorker, Runner};
use crate::config::ServeArgs;
use crate::credentials::{self, Origin, RootCredentials};
use crate::identity::Identities;
use crate::log_delivery::{self, LogDeliveryWorker};
use crate::monitor::{self, Readiness, UsageSnapshot};
use crate::ops;
use crate::service;
use crate::sse::MasterKey;
use crate::state::S3State;
use crate::storage::Storage;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use kura_backend::BackendError;
use kura_index::IndexError;
use std::sync::Arc;
use std::time::Duration;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The wait before trying again to open a storage that cannot serve yet.
const STORAGE_RETRY: Duration = Duration::from_secs(2);

/// Runs `kura serve` until SIGTERM or SIGINT.
pub fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kura-s3")
        .build()?;
    let result = serve_on(&runtime, args);
    // A librados call can wait on a cluster that is gone for as long as it is (waiting for
    // the latest OSD map does): it must not hold the process past its shutdown, whichever
    // way serving ended.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

fn serve_on(
    runtime: &tokio::runtime::Runtime,
    args: ServeArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    // Probes answer from the start: live, and not ready until the storage is.
    let readiness = Arc::new(Readiness::default());
    let usage = Arc::new(UsageSnapshot::default());
    let ops = ops::spawn(args.ops_addr, readiness.clone(), usage.clone())?;
    let storage = runtime.block_on(open_storage(&args))?;
    let index = storage.index.clone();
    let backend = storage.blobs.clone();
    let home = storage.secrets(&args);
    let (creds, origin) = runtime.block_on(RootCredentials::load_or_create(home))?;
    let master_key = runtime.block_on(credentials::load_or_create_master_key(
        home,
        args.sse_master_key_file.as_deref(),
    ))?;

    let listener = runtime.block_on(tokio::net::TcpListener::bind(args.s3_addr))?;
    print_banner(&args, &storage, &creds, &origin);

    let identities = Arc::new(Identities::new(index.clone(), creds));
    let mut background = Runner::default();
    background.spawn(GcWorker::new(
        index.clone(),
        backend.clone(),
        args.gc_policy(),
    ))?;
    let policy = ReshardPolicy {
        max_objects_per_shard: args.max_objects_per_shard,
        share: args.reshard_share,
    };
    background.spawn(ReshardWorker::new(index.clone(), policy))?;
    let lifecycle_day = Duration::from_secs(args.lifecycle_day_seconds);
    background.spawn(LifecycleWorker::new(index.clone(), lifecycle_day))?;
    let state = Arc::new(S3State {
        index,
        blobs: backend,
        identities,
        workers: background.workers(),
        region: args.region.clone(),
        domain: args.domain.clone(),
        lifecycle_day,
        master_key: MasterKey::new(master_key, args.kms_key_ids.clone()),
        bucket_defaults: args.new_bucket_defaults,
        trusted_proxies: args.trusted_proxies.clone(),
        upload_deadline: args.upload_deadline(),
        access_logs: AccessLogs::default(),
    });
    let log_interval = Duration::from_secs(args.access_log_interval_seconds);
    background.spawn(LogDeliveryWorker::new(state.clone(), log_interval))?;
    let (stop_monitor, monitor_stopped) = tokio::sync::watch::channel(false);
    let monitor = runtime.spawn(monitor::run(
        state.index.clone(),
        readiness.clone(),
        usage,
        monitor_stopped,
    ));
    let result = runtime.block_on(async {
        readiness.set(true);
        let served = accept(listener, state.clone()).await;
        readiness.set(false);
        let _ = stop_monitor.send(true);
        let _ = monitor.await;
        served
    });
    background.stop();
    // What is left of the access logs goes out now rather than with the process.
    runtime.block_on(log_delivery::deliver(&state, log_interval, true));
    runtime.block_on(state.index.sync())?;
    ops.stop();
    result
}

/// Opens the storage and brings its index to this build's format, waiting for a cluster
/// that cannot serve yet (a gateway started before its cluster is not a failed one).
async fn open_storage(args: &ServeArgs) -> Result<Storage, Box<dyn std::error::Error>> {
    let unavailable = |err: &(dyn std::error::Error + 'static)| {
        matches!(
            err.downcast_ref::<BackendError>(),
            Some(BackendError::Unavailable(_))
        ) || matches!(
            err.downcast_ref::<IndexError>(),
            Some(IndexError::Backend(BackendError::Unavailable(_)))
        )
    };
    loop {
        // Connecting blocks (librados): off the runtime's other work.
        let opened = match tokio::task::block_in_place(|| Storage::open(args)) {
            Ok(storage) => match storage.index.prepare(storage.blobs.as_ref()).await {
                Ok(()) => return Ok(storage),
                Err(err) => Box::<dyn std::error::Error>::from(err),
            },
            Err(err) => err,
        };
        if !unavailable(opened.as_ref()) {
            return Err(opened);
        }
        tracing::warn!(err = %opened, "the storage cannot serve yet: trying again");
        tokio::time::sleep(STORAGE_RETRY).await;
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    state: Arc<S3State>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(64 * 1024);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(err) => {
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let service = hyper::service::service_fn(move |req| service::handle(state.clone(), Some(peer), req));
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(err) = conn.await {
                        tracing::debug!(%err, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish in time");
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn print_banner(args: &ServeArgs, storage: &Storage, creds: &RootCredentials, origin: &Origin) {
    let saved = storage.secrets(args).describe(credentials::ROOT_FILE);
    let endpoint = format!("http://{}", args.s3_addr);
    println!(
        "Kura {} serving S3 at {endpoint} (region {})",
        env!("CARGO_PKG_VERSION"),
        args.region
    );
    println!(
        "ops listener: http://{}/healthz  /readyz  /metrics",
        args.ops_addr
    );
    println!("{}", storage.description);
    match origin {
        Origin::Generated => {
            println!("\nRoot credentials were generated and saved in {saved}.");
            println!(
                "They are shown only this once. To use Kura from the aws CLI or an AWS SDK:\n"
            );
            println!("  export AWS_ENDPOINT_URL={endpoint}");
            println!("  export AWS_ACCESS_KEY_ID={}", creds.access_key);
            println!("  export AWS_SECRET_ACCESS_KEY={}", creds.secret_key);
            println!("  export AWS_REGION={}", args.region);
            println!("  aws s3 mb s3://my-bucket && aws s3 ls\n");
        }
        Origin::Stored => println!("root access key {} (secret in {saved})", creds.access_key),
        Origin::Environment => println!(
            "root access key {} (from KURA_ROOT_ACCESS_KEY)",
            creds.access_key
        ),
    }
}
