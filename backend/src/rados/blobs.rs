//! Blobs on RADOS: a blob is striped over objects `blob.<id>.<n>` of at most the stripe
//! size (4 MiB by default, as RGW does), each written whole in one atomic operation with
//! the CRC32C of each of its 64 KiB blocks in an extended attribute. Stripe 0 also gets
//! the blob's length at commit: until then the blob does not exist for readers. Every
//! block read is checked against its sum, so damaged bytes are never served, even before
//! Ceph's own scrubbing finds them.

use super::sys::Pool;
use crate::blob::{BlockSums, block_count, blocking, blocking_stream};
use crate::{BLOCK_SIZE, BackendError, BlobInfo, BlobStore, BlobStream, BlobWriter, Result};
use async_trait::async_trait;
use bytes::Bytes;
use std::ops::Range;
use std::sync::Arc;

/// The stripe size RGW uses.
pub const DEFAULT_STRIPE_SIZE: u64 = 4 * 1024 * 1024;
/// The per-block checksums of a stripe: one little-endian CRC32C per started block.
const SUMS: &str = "kura.sums";
/// On stripe 0, once committed: the blob's length, u64 little-endian.
const LENGTH: &str = "kura.len";
/// Blocks read and verified per read call.
const READ_BLOCKS: u64 = 16;

/// Kura's blobs in the `<prefix>-data` pool.
pub struct RadosBlobs {
    pool: Arc<Pool>,
    stripe: u64,
}

impl RadosBlobs {
    /// Blobs in `pool` (the data pool). `stripe_size` is a multiple of the 64 KiB
    /// checksum block.
    pub(crate) fn new(pool: Pool, stripe_size: u64) -> Result<Self> {
        if stripe_size == 0 || !stripe_size.is_multiple_of(BLOCK_SIZE) {
            return Err(BackendError::Io(std::io::Error::other(format!(
                "the stripe size must be a multiple of {BLOCK_SIZE} bytes"
            ))));
        }
        Ok(RadosBlobs {
            pool: Arc::new(pool),
            stripe: stripe_size,
        })
    }
}

fn stripe_oid(id: &str, n: u64) -> String {
    format!("blob.{id}.{n}")
}

/// The length of a committed blob; NotFound for a blob never committed or deleted.
fn committed_len(pool: &Pool, id: &str) -> Result<u64> {
    let raw = pool.xattr(&stripe_oid(id, 0), LENGTH, 8).map_err(|e| {
        // ENODATA: stripe 0 exists but the blob was never committed.
        if e.errno() == libc::ENODATA {
            BackendError::NotFound
        } else {
            e.into()
        }
    })?;
    let bytes: [u8; 8] = raw
        .try_into()
        .map_err(|_| BackendError::Corrupt(format!("{id}: length attribute")))?;
    Ok(u64::from_le_bytes(bytes))
}

/// How many stripes a blob has: from its length once committed, else by looking for them
/// (an upload that stopped halfway wrote stripes 0..k).
fn stripe_count(pool: &Pool, id: &str, stripe: u64) -> Result<u64> {
    match committed_len(pool, id) {
        Ok(len) => Ok(len.div_ceil(stripe).max(1)),
        Err(BackendError::NotFound) => {
            let mut n = 0;
            while pool.size(&stripe_oid(id, n))?.is_some() {
                n += 1;
            }
            Ok(n)
        }
        Err(err) => Err(err),
    }
}

/// Reads `range` (within a blob of `len` bytes) stripe by stripe, verifying every block,
/// and hands the bytes to `emit` until it returns false.
fn read_verified(
    pool: &Pool,
    id: &str,
    stripe: u64,
    len: u64,
    range: Range<u64>,
    mut emit: impl FnMut(Bytes) -> bool,
) -> Result<()> {
    let range = range.start.min(len)..range.end.min(len);
    let mut pos = range.start;
    while pos < range.end {
        let n = pos / stripe;
        let stripe_start = n * stripe;
        let stripe_len = (len - stripe_start).min(stripe);
        let oid = stripe_oid(id, n);
        let blocks = block_count(stripe_len);
        let sums = pool.xattr(&oid, SUMS, blocks as usize * 4)?;
        if sums.len() as u64 != blocks * 4 {
            return Err(BackendError::Corrupt(format!("{oid}: checksum attribute")));
        }
        let local_end = (range.end - stripe_start).min(stripe_len);
        // Only the blocks the range touches are read, and so verified.
        let blocks_end = (local_end.div_ceil(BLOCK_SIZE) * BLOCK_SIZE).min(stripe_len);
        let mut block = (pos - stripe_start) / BLOCK_SIZE;
        while block * BLOCK_SIZE < local_end {
            let offset = block * BLOCK_SIZE;
            let want = (READ_BLOCKS * BLOCK_SIZE).min(blocks_end - offset);
            let data = pool.read(&oid, offset, want as usize)?;
            if data.len() as u64 != want {
                return Err(BackendError::Corrupt(format!("{oid}: truncated")));
            }
            for (i, chunk) in data.chunks(BLOCK_SIZE as usize).enumerate() {
                let k = (block as usize + i) * 4;
                let stored = u32::from_le_bytes(sums[k..k + 4].try_into().expect("4 bytes"));
                if crc32c::crc32c(chunk) != stored {
                    return Err(BackendError::Corrupt(format!(
                        "{oid}: block {}",
                        block as usize + i
                    )));
                }
            }
            let data = Bytes::from(data);
            let from = (pos - stripe_start - offset) as usize;
            let to = ((local_end - offset).min(want)) as usize;
            if !emit(data.slice(from..to)) {
                return Ok(());
            }
            pos = stripe_start + offset + to as u64;
            block += READ_BLOCKS;
        }
    }
    Ok(())
}

#[async_trait]
impl BlobStore for RadosBlobs {
    async fn create_blob(&self) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(RadosBlobWriter {
            pool: self.pool.clone(),
            id: uuid::Uuid::new_v4().simple().to_string(),
            stripe: self.stripe,
            buf: Vec::new(),
            written: 0,
            len: 0,
            length_set: false,
            committed: false,
        }))
    }

    async fn read_blob(&self, id: &str, range: Range<u64>) -> Result<BlobStream> {
        let (pool, id, stripe) = (self.pool.clone(), id.to_owned(), self.stripe);
        let reader_pool = pool.clone();
        let reader_id = id.clone();
        let len = blocking(move || committed_len(&reader_pool, &reader_id)).await?;
        Ok(blocking_stream(move |emit| {
            read_verified(&pool, &id, stripe, len, range, emit)
        }))
    }

    async fn delete_blob(&self, id: &str) -> Result<()> {
        let (pool, id, stripe) = (self.pool.clone(), id.to_owned(), self.stripe);
        blocking(move || remove_stripes(&pool, &id, stripe)).await
    }
}

/// Removes a blob's stripes, last first and stripe 0 (with the length) at the very end,
/// so that a removal cut short leaves stripes that a later one still finds.
fn remove_stripes(pool: &Pool, id: &str, stripe: u64) -> Result<()> {
    for n in (0..stripe_count(pool, id, stripe)?).rev() {
        pool.remove(&stripe_oid(id, n))?;
    }
    Ok(())
}

struct RadosBlobWriter {
    pool: Arc<Pool>,
    id: String,
    stripe: u64,
    /// Data of the stripe being filled.
    buf: Vec<u8>,
    /// Stripes written so far.
    written: u64,
    len: u64,
    /// Whether stripe 0 carries the length (the blob is committed once it does).
    length_set: bool,
    committed: bool,
}

impl RadosBlobWriter {
    /// Writes the buffered data as the next stripe; stripe 0 of a blob that ends here also
    /// gets the length, so a one-stripe blob is one operation.
    async fn write_stripe(&mut self, last: bool) -> Result<()> {
        let data = std::mem::take(&mut self.buf);
        let (pool, oid) = (self.pool.clone(), stripe_oid(&self.id, self.written));
        let length = (last && self.written == 0).then_some(self.len.to_le_bytes());
        blocking(move || {
            let mut sums = BlockSums::default();
            sums.update(&data);
            let sums = sums.sums_le();
            let mut xattrs: Vec<(&str, &[u8])> = vec![(SUMS, &sums)];
            if let Some(length) = &length {
                xattrs.push((LENGTH, length));
            }
            Ok(pool.write_full(&oid, &data, &xattrs)?)
        })
        .await?;
        self.written += 1;
        self.length_set |= length.is_some();
        Ok(())
    }
}

#[async_trait]
impl BlobWriter for RadosBlobWriter {
    fn id(&self) -> &str {
        &self.id
    }

    async fn write(&mut self, mut data: Bytes) -> Result<()> {
        self.len += data.len() as u64;
        while !data.is_empty() {
            let room = self.stripe as usize - self.buf.len();
            let take = data.split_to(room.min(data.len()));
            self.buf.extend_from_slice(&take);
            if self.buf.len() as u64 == self.stripe {
                self.write_stripe(false).await?;
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<BlobInfo> {
        if !self.buf.is_empty() || self.written == 0 {
            self.write_stripe(true).await?;
        }
        if !self.length_set {
            // Several stripes: the length goes on stripe 0 once every stripe is stored.
            let (pool, oid, length) = (
                self.pool.clone(),
                stripe_oid(&self.id, 0),
                self.len.to_le_bytes(),
            );
            blocking(move || Ok(pool.set_xattr(&oid, LENGTH, &length)?)).await?;
        }
        self.committed = true;
        Ok(BlobInfo {
            id: self.id.clone(),
            len: self.len,
        })
    }
}

impl Drop for RadosBlobWriter {
    /// An abandoned upload's stripes are removed in the background; if that fails too, the
    /// index's record of the new blob lets garbage collection remove them later.
    fn drop(&mut self) {
        if self.committed || self.written == 0 {
            return;
        }
        let (pool, id, stripe) = (self.pool.clone(), self.id.clone(), self.stripe);
        let remove = move || {
            if let Err(err) = remove_stripes(&pool, &id, stripe) {
                tracing::warn!(%err, blob = id, "could not remove an abandoned blob's stripes");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}
