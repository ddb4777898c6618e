//! Ceph RADOS storage (the `rados` feature): several stateless gateways over a replicated,
//! rack-aware cluster. Blobs are striped over RADOS objects with per-block checksums.

mod blobs;
mod connect;
mod kv;
mod sys;

pub use blobs::{DEFAULT_STRIPE_SIZE, RadosBlobs};
pub use connect::RadosConfig;
pub use kv::RadosKv;
pub use sys::RadosError;
