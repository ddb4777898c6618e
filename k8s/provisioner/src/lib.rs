//! `kura provisioner`: a Kubernetes controller that turns ObjectBucketClaims into Kura
//! buckets, users and keys, and hands them to pods as a ConfigMap and a Secret.

mod access;
mod kura;
mod reconcile;
pub mod resources;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::ListParams;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, watcher};

use kura_admin_client::Connection;
use resources::{Endpoint, MANAGED_BY, MANAGED_BY_LABEL, ObjectBucketClaim};

#[derive(Debug, Args)]
#[command(
    about = "Run the Kubernetes bucket provisioner (ObjectBucketClaim → bucket, ConfigMap, Secret).",
    long_about = "Run the Kubernetes bucket provisioner.\n\n\
        It watches ObjectBucketClaims (objectbucket.io/v1alpha1) in every namespace whose \
        StorageClass has `provisioner: <--provisioner-name>`, and for each one creates, through \
        Kura's admin API, a bucket and a user with one access key, then in the claim's namespace \
        a ConfigMap (BUCKET_HOST, BUCKET_PORT, BUCKET_NAME, BUCKET_REGION, BUCKET_SUBREGION, \
        AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS_REGION, AWS_DEFAULT_REGION) and a Secret \
        (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) named after the claim, for pods to load with \
        `envFrom`, and a cluster-scoped ObjectBucket `obc-<namespace>-<claim>`.\n\n\
        StorageClass parameters (all optional): `endpoint` (the S3 URL written into ConfigMaps), \
        `region`, and `bucketName` (an existing bucket: claims get access to it, it is never \
        deleted). Claim `spec.additionalConfig`: `maxObjects` and `maxSize` (e.g. `2Gi`) become the \
        bucket's quota; `access: read-only` (with `bucketName` classes) gives the claim's key \
        read and list access only, through the bucket policy; `publicRead: \"true\"` lets \
        anyone read the objects of the claim's own bucket.\n\n\
        Deleting a claim revokes its key; its bucket is deleted with its objects only when the \
        StorageClass's reclaimPolicy is Delete and the bucket was made for the claim.\n\n\
        The Kubernetes API is found like kubectl does: $KUBECONFIG, ~/.kube/config, else the \
        in-cluster service account.",
    after_help = "Example (outside a cluster):\n  \
        export KURA_ADMIN_ENDPOINT=http://127.0.0.1:9000\n  \
        export KURA_ADMIN_ACCESS_KEY=<root access key> KURA_ADMIN_SECRET_KEY=<root secret key>\n  \
        kura provisioner --bucket-endpoint http://kura.kura-system.svc:9000"
)]
pub struct ProvisionerArgs {
    /// StorageClasses with this `provisioner` are served.
    #[arg(long, env = "KURA_PROVISIONER_NAME", default_value = "kura.dev/bucket")]
    provisioner_name: String,

    /// The S3 URL pods use to reach Kura, written into ConfigMaps, unless the StorageClass
    /// has an `endpoint` parameter [default: the admin endpoint].
    #[arg(long, env = "KURA_BUCKET_ENDPOINT", value_name = "URL")]
    bucket_endpoint: Option<String>,

    /// Where to serve /healthz and /readyz (ready once the Kubernetes API lets it list claims).
    #[arg(
        long,
        env = "KURA_PROVISIONER_OPS_ADDR",
        default_value = "0.0.0.0:9002"
    )]
    ops_addr: SocketAddr,

    #[command(flatten)]
    connection: Connection,
}

pub fn run(args: ProvisionerArgs) -> Result<(), Box<dyn std::error::Error>> {
    let admin = args.connection.client()?;
    let endpoint = args
        .bucket_endpoint
        .clone()
        .unwrap_or_else(|| args.connection.endpoint());
    let default_endpoint = Endpoint::parse(&endpoint)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client = kube::Client::try_default().await?;
        let ready = Arc::new(AtomicBool::new(false));
        let ops = tokio::net::TcpListener::bind(args.ops_addr).await?;
        tokio::spawn(serve_probes(ops, ready.clone()));

        let reporter = Reporter {
            controller: "kura-provisioner".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let context = Arc::new(reconcile::Context {
            recorder: Recorder::new(client.clone(), reporter),
            kura: kura::Kura::new(admin),
            provisioner: args.provisioner_name.clone(),
            default_endpoint,
            default_region: args.connection.region().to_owned(),
            client: client.clone(),
        });
        // Only the ConfigMaps and Secrets we made are watched, not every one in the cluster.
        let ours = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
        let controller = Controller::new(
            Api::<ObjectBucketClaim>::all(client.clone()),
            watcher::Config::default(),
        )
        .owns(Api::<ConfigMap>::all(client.clone()), ours.clone())
        .owns(Api::<Secret>::all(client.clone()), ours)
        .shutdown_on_signal();
        // Ready once claims can be listed: the API server is reachable and our RBAC lets us
        // watch. (The controller's own store signals readiness to one waiter only: itself.)
        let claims = Api::<ObjectBucketClaim>::all(client.clone());
        tokio::spawn(async move {
            while let Err(e) = claims.list(&ListParams::default().limit(1)).await {
                tracing::warn!("cannot list ObjectBucketClaims yet: {e}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            ready.store(true, Ordering::Relaxed);
            tracing::info!("watching ObjectBucketClaims");
        });
        tracing::info!(
            provisioner = %args.provisioner_name,
            endpoint = %endpoint,
            "kura provisioner starting"
        );
        controller
            .run(reconcile::reconcile, reconcile::error_policy, context)
            .for_each(|outcome| async move {
                match outcome {
                    Ok((claim, _)) => tracing::debug!(%claim, "reconciled"),
                    Err(e) => tracing::debug!("reconcile: {e}"),
                }
            })
            .await;
        tracing::info!("kura provisioner stopped");
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

async fn serve_probes(listener: tokio::net::TcpListener, ready: Arc<AtomicBool>) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || async move {
                if ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
                }
            }),
        );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("ops listener failed: {e}");
    }
}
