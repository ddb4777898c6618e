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
use futures::StreamExt;
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
    decode_len(id, &raw)
}

/// The length attribute's value: u64 little-endian.
fn decode_len(id: &str, raw: &[u8]) -> Result<u64> {
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

/// A verified read of one blob: where it stands, and the sums of the stripe it is in.
struct Reader {
    pool: Arc<Pool>,
    id: String,
    stripe: u64,
    /// The blob's length, known from the first read of stripe 0 on.
    len: Option<u64>,
    /// The stripe whose sums are known, with them.
    sums: Option<(u64, Vec<u8>)>,
}

impl Reader {
    /// Opens a committed blob for reading `range`, and reads the range's first bytes when
    /// they are in stripe 0: one operation brings the length, stripe 0's sums and those
    /// bytes (a whole blob of up to 1 MiB). Returns the range clamped to the blob, and what
    /// was read of it.
    fn open(
        pool: Arc<Pool>,
        id: String,
        stripe: u64,
        range: Range<u64>,
    ) -> Result<(Reader, Range<u64>, Option<Bytes>)> {
        let mut reader = Reader {
            pool,
            id,
            stripe,
            len: None,
            sums: None,
        };
        let first = if range.start < range.end && range.start < stripe {
            Some(reader.chunk(range.start, range.end)?)
        } else {
            reader.read(0, 0, 0)?;
            None
        };
        let len = reader.len.expect("read stripe 0");
        let first = first.filter(|bytes| !bytes.is_empty());
        Ok((reader, range.start.min(len)..range.end.min(len), first))
    }

    /// One read of stripe `n` from `offset`, `want` bytes at most, with the stripe's
    /// attributes when its sums are not known yet (and, on stripe 0, the blob's length).
    fn read(&mut self, n: u64, offset: u64, want: u64) -> Result<Vec<u8>> {
        let oid = stripe_oid(&self.id, n);
        if self.sums.as_ref().is_some_and(|(known, _)| *known == n) {
            return Ok(self.pool.read(&oid, offset, want as usize)?);
        }
        let (data, xattrs) = self.pool.read_with_xattrs(&oid, offset, want as usize)?;
        let attr = |name: &str| xattrs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if n == 0 {
            // Stripe 0 without its length: a blob never committed.
            let raw = attr(LENGTH).ok_or(BackendError::NotFound)?;
            self.len = Some(decode_len(&self.id, raw)?);
        }
        // A missing attribute fails the length check of the sums.
        self.sums = Some((n, attr(SUMS).cloned().unwrap_or_default()));
        Ok(data)
    }

    /// The verified bytes from `pos` on, up to `end` and at most `READ_BLOCKS` blocks, in
    /// one read of the stripe `pos` is in.
    fn chunk(&mut self, pos: u64, end: u64) -> Result<Bytes> {
        let stripe = self.stripe;
        let n = pos / stripe;
        let stripe_start = n * stripe;
        let block = (pos - stripe_start) / BLOCK_SIZE;
        let offset = block * BLOCK_SIZE;
        // Before the length is known (the first read of stripe 0), as if the stripe were full.
        let stripe_len =
            |len: Option<u64>| len.map_or(stripe, |len| (len - stripe_start).min(stripe));
        let want = |len: Option<u64>| {
            let local_end = (end.min(len.unwrap_or(u64::MAX)) - stripe_start).min(stripe_len(len));
            // Only the blocks the range touches are read, and so verified.
            let blocks_end = (local_end.div_ceil(BLOCK_SIZE) * BLOCK_SIZE).min(stripe_len(len));
            (READ_BLOCKS * BLOCK_SIZE).min(blocks_end.saturating_sub(offset))
        };
        let mut data = self.read(n, offset, want(self.len))?;
        let len = self.len.expect("stripe 0 read first");
        if pos >= len {
            return Ok(Bytes::new());
        }
        let want = want(self.len);
        let oid = stripe_oid(&self.id, n);
        if (data.len() as u64) < want {
            return Err(BackendError::Corrupt(format!("{oid}: truncated")));
        }
        data.truncate(want as usize);
        let sums = &self.sums.as_ref().expect("read with the stripe").1;
        if sums.len() as u64 != block_count(stripe_len(Some(len))) * 4 {
            return Err(BackendError::Corrupt(format!("{oid}: checksum attribute")));
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
        let to = ((end.min(len) - stripe_start - offset).min(want)) as usize;
        Ok(data.slice(from..to))
    }

    /// Hands the verified bytes of `range` to `emit` until it is done or returns false.
    fn run(mut self, range: Range<u64>, mut emit: impl FnMut(Bytes) -> bool) -> Result<()> {
        let mut pos = range.start;
        while pos < range.end {
            let data = self.chunk(pos, range.end)?;
            pos += data.len() as u64;
            if !emit(data) {
                break;
            }
        }
        Ok(())
    }
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
        let (reader, range, first) =
            blocking(move || Reader::open(pool, id, stripe, range)).await?;
        let rest = range.start + first.as_ref().map_or(0, |b| b.len() as u64)..range.end;
        let first = futures::stream::iter(first.map(Ok));
        if rest.is_empty() {
            return Ok(Box::pin(first));
        }
        Ok(Box::pin(first.chain(blocking_stream(move |emit| {
            reader.run(rest, emit)
        }))))
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
            if self.buf.capacity() == 0 {
                // A stripe's whole buffer at once: grown chunk by chunk, a 1 MiB stripe
                // was copied again by each doubling (5 % of the gateway's CPU in 1 MiB
                // PUTs). Pages only a small object touches are never faulted in.
                self.buf.reserve_exact(self.stripe as usize);
            }
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
