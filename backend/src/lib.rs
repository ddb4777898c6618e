//! Kura's storage layer: immutable checksummed blobs and ordered key-value maps.
//!
//! Everything above this crate (the index, the S3 gateway) goes through the
//! [`Backend`] trait, so a replicated or remote implementation can replace the
//! local one without touching them.

mod blob;
mod error;
mod kv;
mod local;
#[cfg(feature = "rados")]
pub mod rados;
mod sys;

pub use blob::{BLOCK_SIZE, BlobInfo, BlobStore, BlobStream, BlobWriter};
pub use error::{BackendError, Result};
pub use kv::{KvStore, MAX_WRITE_CHANGES, Outcome, Page, Scan, Write, key_after};
pub use local::LocalBackend;
pub use sys::limit_malloc_arenas;

/// A complete storage backend.
pub trait Backend: BlobStore + KvStore {}

impl<T: BlobStore + KvStore> Backend for T {}
