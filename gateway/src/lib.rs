//! Kura's S3 gateway: the `kura` binary's library.

pub mod admin;
pub mod auth;
pub mod body;
pub mod checksum;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod ops;
pub mod provisioner;
pub mod reshard;
pub mod router;
pub mod s3;
pub mod server;
pub mod xml;
