//! Kura's storage layer: immutable checksummed blobs and ordered key-value maps.
//!
//! Everything above this crate (the index, the S3 gateway) goes through the
//! [`Backend`] trait, so a replicated or remote implementation can replace the
//! local one without touching them.

mod blob;
mod error;
mod kv;
mod local;

pub use blob::{BLOCK_SIZE, BlobInfo, BlobStream, BlobWriter};
pub use error::{BackendError, Result};
pub use kv::{Batch, BatchOp, KvIter};
pub use local::LocalBackend;

use async_trait::async_trait;
use std::ops::Range;

/// Immutable blobs: written once, read by range, deleted when unreferenced.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Starts a new blob. Nothing is visible until [`BlobWriter::commit`]
    /// returns; dropping the writer discards it.
    async fn create_blob(&self) -> Result<Box<dyn BlobWriter>>;

    /// Streams `range` of a blob. Every byte yielded has passed its checksum;
    /// a failing block ends the stream with [`BackendError::Corrupt`].
    async fn read_blob(&self, id: &str, range: Range<u64>) -> Result<BlobStream>;

    /// Removes a blob. Removing a missing blob is not an error.
    async fn delete_blob(&self, id: &str) -> Result<()>;
}

/// Ordered key-value maps (the index shards live in these).
#[async_trait]
pub trait KvStore: Send + Sync {
    fn get(&self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Entries of `map` with keys `>= start`, in byte order.
    fn scan(&self, map: &str, start: &[u8]) -> Result<KvIter>;

    /// Applies every operation of the batch atomically.
    fn apply(&self, batch: Batch) -> Result<()>;

    /// Removes a whole map.
    fn drop_map(&self, map: &str) -> Result<()>;

    /// Makes every change applied so far durable (fsync).
    async fn sync(&self) -> Result<()>;
}

/// A complete storage backend.
pub trait Backend: BlobStore + KvStore {}

impl<T: BlobStore + KvStore> Backend for T {}
