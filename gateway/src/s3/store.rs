//! Streaming request and copy bodies into new blobs.

use crate::error::{ErrorCode, S3Error, S3Result};
use crate::sse::{DataKey, Sealer};
use crate::state::S3State;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::HeaderMap;
use kura_backend::BlobInfo;
use kura_index::{BlobHome, BucketRecord};

/// Where a new blob's entry will be written: the index tracks the blob there until the
/// entry references it, so that a writer that dies leaves nothing uncollected.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// The bucket's record as the request read it.
    pub bucket: &'a BucketRecord,
    pub home: BlobHome<'a>,
}

impl<'a> Destination<'a> {
    pub fn object(bucket: &'a BucketRecord, key: &'a str) -> Self {
        Destination {
            bucket,
            home: BlobHome::Object { key },
        }
    }

    pub fn part(bucket: &'a BucketRecord, upload_id: &'a str, number: u32) -> Self {
        Destination {
            bucket,
            home: BlobHome::Part { upload_id, number },
        }
    }
}

/// AWS's limit for one PutObject, one part, and one CopyObject source.
pub const MAX_SINGLE_UPLOAD: u64 = 5 * 1024 * 1024 * 1024;

/// Streams `data` into a new, durable blob, calling `observe` on every chunk; with `seal`,
/// the blob holds the data encrypted under that key (see `sse`). The returned length is
/// the data's, which is what object sizes and part sizes count.
/// On any failure the blob is discarded and the error returned.
pub async fn write_blob<S>(
    state: &S3State,
    dest: Destination<'_>,
    data: S,
    max: u64,
    mut observe: impl FnMut(&Bytes),
    seal: Option<&DataKey>,
) -> S3Result<BlobInfo>
where
    S: Stream<Item = S3Result<Bytes>> + Unpin,
{
    let mut writer = state.blobs.create_blob().await?;
    let id = writer.id().to_owned();
    let mut data = data.fuse();
    let tracked = state.index.track_new_blob(dest.bucket, dest.home, &id);
    let early = read_while(tracked, &mut data).await?;
    let mut sealer = seal.map(|key| Sealer::new(key, &id));
    let written = async {
        let mut len = 0u64;
        let mut data = futures::stream::iter(early).chain(data);
        while let Some(chunk) = data.next().await {
            let chunk = chunk?;
            len += chunk.len() as u64;
            if len > max {
                return Err(too_large(max));
            }
            observe(&chunk);
            match sealer.as_mut() {
                Some(sealer) => {
                    for block in sealer.push(&chunk)? {
                        writer.write(block).await?;
                    }
                }
                None => writer.write(chunk).await?,
            }
        }
        if let Some(last) = sealer.take().map(Sealer::finish).transpose()?.flatten() {
            writer.write(last).await?;
        }
        let info = writer.commit().await?;
        Ok(BlobInfo { len, ..info })
    };
    let written = tokio::time::timeout(state.upload_deadline, written)
        .await
        .unwrap_or_else(|_| Err(ErrorCode::RequestTimeout.into()));
    if written.is_err()
        && let Err(err) = state
            .index
            .discard_blob(&dest.bucket.name, dest.home, &id)
            .await
    {
        tracing::warn!(%err, blob = id, "could not queue a failed blob for collection");
    }
    written
}

/// Body bytes taken while a new blob's intent is stored, at most: the intent's round trip
/// overlaps the body's arrival instead of delaying it, and no byte is stored before the
/// intent is.
const EARLY_BYTES: usize = 1024 * 1024;

/// Runs `first` while taking the first chunks of `data` (up to `EARLY_BYTES`, or up to a
/// failed one); returns them once `first` succeeded.
async fn read_while<S>(
    first: impl Future<Output = kura_index::Result<()>>,
    data: &mut S,
) -> S3Result<Vec<S3Result<Bytes>>>
where
    S: Stream<Item = S3Result<Bytes>> + futures::stream::FusedStream + Unpin,
{
    let mut early = Vec::new();
    let mut taken = 0;
    let mut first = std::pin::pin!(first);
    loop {
        let more =
            taken < EARLY_BYTES && !early.last().is_some_and(|c: &S3Result<Bytes>| c.is_err());
        tokio::select! {
            done = &mut first => {
                done?;
                return Ok(early);
            }
            Some(chunk) = data.next(), if more => {
                taken += chunk.as_ref().map_or(0, Bytes::len);
                early.push(chunk);
            }
        }
    }
}

/// Streams a request body (at most one PutObject's or part's size) into a new blob.
pub async fn write_body<S>(
    state: &S3State,
    dest: Destination<'_>,
    body: S,
    seal: Option<&DataKey>,
) -> S3Result<BlobInfo>
where
    S: Stream<Item = S3Result<Bytes>> + Unpin,
{
    write_blob(state, dest, body, MAX_SINGLE_UPLOAD, |_| {}, seal).await
}

/// Streams a simple object's request body (at most `max` bytes) into a new blob, or into
/// none when the body is empty: an empty object has no data to write, track or collect,
/// so its write costs one index write (a blob would add two storage writes: its intent
/// and itself).
pub async fn write_body_unless_empty<S>(
    state: &S3State,
    dest: Destination<'_>,
    body: &mut S,
    max: u64,
    seal: Option<&DataKey>,
) -> S3Result<Option<BlobInfo>>
where
    S: Stream<Item = S3Result<Bytes>> + Unpin,
{
    let first = loop {
        match body.next().await {
            None => return Ok(None),
            Some(chunk) => {
                let chunk = chunk?;
                if !chunk.is_empty() {
                    break chunk;
                }
            }
        }
    };
    let data = futures::stream::iter([Ok(first)]).chain(body);
    write_blob(state, dest, data, max, |_| {}, seal)
        .await
        .map(Some)
}

pub fn too_large(max: u64) -> S3Error {
    S3Error::new(
        ErrorCode::EntityTooLarge,
        ErrorCode::EntityTooLarge.default_message(),
    )
    .with("MaxSizeAllowed", max.to_string())
}

/// The object size a write announces (the decoded size for aws-chunked
/// bodies), refused up front when it is over `max`. A plain HTTP chunked body
/// (`curl -T -`, streaming clients) announces none: its size is known at its end,
/// and `max` is enforced while it streams. Anything else without a size is
/// MissingContentLength.
pub fn declared_size(headers: &HeaderMap, max: u64) -> S3Result<Option<u64>> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    let raw = get("x-amz-decoded-content-length").or_else(|| get("content-length"));
    let http_chunked = get("transfer-encoding").is_some_and(|te| {
        te.rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    });
    let aws_chunked = get("content-encoding").is_some_and(|ce| ce.contains("aws-chunked"));
    let size = match raw {
        None if http_chunked && !aws_chunked => return Ok(None),
        None => return Err(ErrorCode::MissingContentLength.into()),
        Some(raw) => raw
            .parse::<u64>()
            .map_err(|_| S3Error::new(ErrorCode::InvalidArgument, "Invalid content length."))?,
    };
    if size > max {
        return Err(too_large(max));
    }
    Ok(Some(size))
}

/// Passes `result` on; when it failed, the committed blob written for it (if any) is
/// queued for collection first (a write that lost its precondition leaves its blob unused).
pub async fn or_discard<'b, T>(
    state: &S3State,
    dest: Destination<'_>,
    blob: impl Into<Option<&'b BlobInfo>>,
    result: S3Result<T>,
) -> S3Result<T> {
    if result.is_err()
        && let Some(blob) = blob.into()
        && let Err(err) = state
            .index
            .discard_blob(&dest.bucket.name, dest.home, &blob.id)
            .await
    {
        tracing::warn!(%err, blob = blob.id, "could not queue an unused blob for collection");
    }
    result
}
