//! Ceph RADOS storage (the `rados` feature): several stateless gateways over a replicated,
//! rack-aware cluster. Blobs are striped over RADOS objects with per-block checksums.

mod blobs;
mod connect;
mod kv;

use crate::sys::rados as sys;

pub use blobs::{DEFAULT_STRIPE_SIZE, RadosBlobs};
pub use connect::RadosConfig;
pub use kv::RadosKv;
pub use sys::RadosError;

/// Connects to the cluster once and opens (creating missing ones with the cluster's
/// defaults, which the log says) Kura's pools: blobs striped at `stripe_size` in
/// `<prefix>-data`, maps in `<prefix>-meta` and `<prefix>-index`.
pub fn open(config: &RadosConfig, stripe_size: u64) -> crate::Result<(RadosBlobs, RadosKv)> {
    let cluster = config.connect()?;
    let blobs = RadosBlobs::new(config.pool(&cluster, "data")?, stripe_size)?;
    let kv = RadosKv::new(
        config.pool(&cluster, "meta")?,
        config.pool(&cluster, "index")?,
    );
    Ok((blobs, kv))
}
