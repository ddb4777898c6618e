//! Connecting to a cluster and opening Kura's pools, and how librados errors map to the
//! backend's.

use super::sys::{Cluster, Pool, RadosError};
use crate::BackendError;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the cluster is and who Kura is to it.
#[derive(Debug, Clone)]
pub struct RadosConfig {
    /// A ceph.conf naming the monitors and the keyring.
    pub conf: PathBuf,
    /// The cephx user, without `client.`.
    pub user: String,
    /// Kura's pools are `<prefix>-meta`, `<prefix>-index` and `<prefix>-data`.
    pub pool_prefix: String,
    /// The RADOS namespace Kura's objects live in within those pools (empty: the
    /// default), so that independent deployments can share pools.
    pub namespace: String,
    /// Every monitor and OSD operation fails after this long instead of waiting.
    pub op_timeout: Duration,
}

impl RadosConfig {
    pub(crate) fn connect(&self) -> Result<Arc<Cluster>, RadosError> {
        Cluster::connect(&self.conf, &self.user, self.op_timeout)
    }

    /// Kura's pool `<prefix>-<role>`, created with the cluster's defaults if missing.
    pub(crate) fn pool(&self, cluster: &Arc<Cluster>, role: &str) -> Result<Pool, RadosError> {
        let name = format!("{}-{role}", self.pool_prefix);
        if !cluster.pool_exists(&name)? {
            tracing::warn!(
                pool = name,
                "pool missing: creating it with the cluster's default replication and CRUSH rule \
                 (create it yourself on a rule that spreads copies over racks: see the README)"
            );
            cluster.create_pool(&name)?;
        }
        cluster.pool(&name, &self.namespace)
    }
}

impl From<RadosError> for BackendError {
    fn from(err: RadosError) -> Self {
        match err.errno() {
            libc::ENOENT => BackendError::NotFound,
            // The cluster cannot serve now (placement groups inactive, monitors unreachable):
            // the op timed out or the connection is gone. Worth retrying later.
            libc::ETIMEDOUT | libc::ENOTCONN | libc::ESHUTDOWN | libc::EAGAIN => {
                BackendError::Unavailable(err.to_string())
            }
            _ => BackendError::Io(std::io::Error::other(err)),
        }
    }
}
