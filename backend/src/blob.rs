//! The blob interface and the on-disk blob format shared by local storage.
//!
//! A blob file is the data followed by a footer:
//! `[data][crc32c of each BLOCK_SIZE block, u32 LE]...[data length u64 LE][MAGIC]`.
//! Per-block checksums let a range read verify only the blocks it touches.

use crate::Result;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
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

/// Granularity of the stored checksums.
pub const BLOCK_SIZE: u64 = 64 * 1024;
pub(crate) const MAGIC: &[u8; 8] = b"KURABLB1";
pub(crate) const TRAILER_LEN: u64 = 16;

/// A committed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub id: String,
    pub len: u64,
}

/// Verified blob bytes.
pub type BlobStream = BoxStream<'static, crate::Result<Bytes>>;

#[async_trait]
pub trait BlobWriter: Send {
    /// The id the blob will have once committed.
    fn id(&self) -> &str;
    async fn write(&mut self, data: Bytes) -> crate::Result<()>;
    /// Makes the blob durable and visible. Dropping a writer without
    /// committing it removes what was written.
    async fn commit(self: Box<Self>) -> crate::Result<BlobInfo>;
}

/// Accumulates per-block CRC32C values while data streams in.
#[derive(Default)]
pub(crate) struct BlockSums {
    sums: Vec<u32>,
    current: u32,
    filled: u64,
    pub(crate) len: u64,
}

impl BlockSums {
    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        while !data.is_empty() {
            let take = ((BLOCK_SIZE - self.filled) as usize).min(data.len());
            self.current = crc32c::crc32c_append(self.current, &data[..take]);
            self.filled += take as u64;
            data = &data[take..];
            if self.filled == BLOCK_SIZE {
                self.sums.push(self.current);
                self.current = 0;
                self.filled = 0;
            }
        }
    }

    /// One CRC32C per started block, little-endian, in block order.
    pub(crate) fn sums_le(mut self) -> Vec<u8> {
        if self.filled > 0 {
            self.sums.push(self.current);
        }
        self.sums.iter().flat_map(|sum| sum.to_le_bytes()).collect()
    }

    /// The footer bytes that follow the data: the sums, the length and the magic.
    pub(crate) fn footer(self) -> Vec<u8> {
        let len = self.len;
        let mut out = self.sums_le();
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(MAGIC);
        out
    }
}

/// Runs blocking storage I/O (files, librados) on tokio's blocking threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> crate::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| crate::BackendError::Io(std::io::Error::other(e)))?
}

/// The stream of what `produce` hands to `emit` on a blocking thread, at most two chunks
/// ahead of the reader; `emit` answers false once the reader is gone. An error `produce`
/// returns ends the stream.
pub(crate) fn blocking_stream(
    produce: impl FnOnce(&mut dyn FnMut(Bytes) -> bool) -> crate::Result<()> + Send + 'static,
) -> BlobStream {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let result = produce(&mut |chunk| tx.blocking_send(Ok(chunk)).is_ok());
        if let Err(err) = result {
            let _ = tx.blocking_send(Err(err));
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Number of checksum blocks for `len` data bytes.
pub(crate) fn block_count(len: u64) -> u64 {
    len.div_ceil(BLOCK_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_has_one_sum_per_started_block() {
        let mut sums = BlockSums::default();
        sums.update(&vec![7u8; BLOCK_SIZE as usize + 10]);
        let footer = sums.footer();
        assert_eq!(footer.len(), 2 * 4 + TRAILER_LEN as usize);
        let first = u32::from_le_bytes(footer[0..4].try_into().unwrap());
        assert_eq!(first, crc32c::crc32c(&vec![7u8; BLOCK_SIZE as usize]));
        assert_eq!(block_count(BLOCK_SIZE + 10), 2);
        assert_eq!(block_count(0), 0);
    }

    #[test]
    fn split_updates_match_one_update() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut whole = BlockSums::default();
        whole.update(&data);
        let mut split = BlockSums::default();
        for chunk in data.chunks(777) {
            split.update(chunk);
        }
        assert_eq!(whole.footer(), split.footer());
    }
}
