//! Opening the storage `kura serve` runs on: the local backend in the data directory (one
//! process owns it), or Ceph RADOS pools that any number of gateways share.

use crate::config::{BackendKind, ServeArgs};
use crate::credentials::SecretHome;
use kura_backend::{BlobStore, LocalBackend};
use kura_index::Index;
use std::sync::Arc;

pub struct Storage {
    pub blobs: Arc<dyn BlobStore>,
    pub index: Arc<Index>,
    /// Where the data is, for the start-up banner.
    pub description: String,
    /// Whether other gateways share it: generated secrets are then kept in it.
    shared: bool,
}

impl Storage {
    pub fn open(args: &ServeArgs) -> Result<Storage, Box<dyn std::error::Error>> {
        match args.backend {
            BackendKind::Local => {
                std::fs::create_dir_all(&args.data_dir)?;
                let backend = Arc::new(LocalBackend::open(&args.data_dir)?);
                Ok(Storage {
                    index: Arc::new(Index::new(backend.clone(), args.initial_shards())),
                    blobs: backend,
                    description: format!("data directory: {}", args.data_dir.display()),
                    shared: false,
                })
            }
            BackendKind::Rados => open_rados(args),
        }
    }

    /// Where generated root credentials and SSE master keys are kept.
    pub fn secrets<'a>(&'a self, args: &'a ServeArgs) -> SecretHome<'a> {
        if self.shared {
            SecretHome::Cluster(&self.index)
        } else {
            SecretHome::DataDir(&args.data_dir)
        }
    }
}

#[cfg(feature = "rados")]
fn open_rados(args: &ServeArgs) -> Result<Storage, Box<dyn std::error::Error>> {
    use kura_backend::rados::{self, DEFAULT_STRIPE_SIZE, RadosConfig};
    let conf = args
        .ceph_conf
        .clone()
        .ok_or("--backend rados needs --ceph-conf (or KURA_CEPH_CONF): the cluster's ceph.conf")?;
    let config = RadosConfig {
        conf,
        user: args.ceph_user.clone(),
        pool_prefix: args.ceph_pool_prefix.clone(),
        namespace: args.ceph_namespace.clone(),
        op_timeout: std::time::Duration::from_secs(args.ceph_op_timeout),
    };
    let (blobs, kv) = rados::open(&config, DEFAULT_STRIPE_SIZE)?;
    // The same across restarts of one gateway (a pod keeps its name and port), different
    // for every gateway running at once (two on one machine cannot share a port).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "gateway".to_owned());
    let instance = format!("{host}:{}", args.s3_addr.port());
    Ok(Storage {
        index: Arc::new(Index::shared(Arc::new(kv), args.initial_shards(), instance)),
        blobs: Arc::new(blobs),
        description: format!(
            "RADOS pools {0}-meta, {0}-index, {0}-data{1} (cluster of {2}, client.{3})",
            args.ceph_pool_prefix,
            match args.ceph_namespace.as_str() {
                "" => String::new(),
                space => format!(", namespace {space}"),
            },
            config.conf.display(),
            args.ceph_user
        ),
        shared: true,
    })
}

#[cfg(not(feature = "rados"))]
fn open_rados(_: &ServeArgs) -> Result<Storage, Box<dyn std::error::Error>> {
    Err("this kura was built without RADOS support: build it with \
         `cargo build --release --features rados` (which needs Debian's librados-dev)"
        .into())
}
