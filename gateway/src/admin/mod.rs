//! Kura's admin API (JSON over the S3 listener) and the `kura admin` CLI that drives it.

pub mod api;
pub mod cli;
