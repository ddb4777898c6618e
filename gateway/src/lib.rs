//! Kura's S3 and admin HTTP server (`kura serve`): routing, authentication, the S3
//! operations, the admin API, the ops listener (probes and metrics) and the background
//! work that keeps the index in shape. Storage is `kura-index` over `kura-backend`; this
//! crate knows nothing of Kubernetes or of the admin client.

pub mod access_log;
pub mod acl;
pub mod admin;
pub mod auth;
pub mod authorize;
pub mod background;
pub mod body;
pub mod checksum;
pub mod config;
pub mod cors;
pub mod credentials;
pub mod error;
pub mod identity;
pub mod lifecycle;
pub mod log_delivery;
pub mod metrics;
pub mod monitor;
pub mod names;
pub mod ops;
pub mod owner;
pub mod params;
pub mod policy;
pub mod post_policy;
pub mod query;
pub mod requester;
pub mod router;
pub mod s3;
pub mod server;
pub mod service;
pub mod sse;
pub mod state;
pub mod storage;
pub mod tags;
pub mod timefmt;
pub mod xml;

pub use config::ServeArgs;
pub use server::serve;
