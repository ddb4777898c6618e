//! GetObject, HeadObject.

use super::conditions::{self, Family};
use super::meta;
use super::object_lock;
use super::put::checksum_headers;
use super::request::S3Request;
use super::response::{S3Response, quoted};
use super::versioning::{object_version, version_header};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::metrics::METRICS;
use crate::params::ObjectRead;
use crate::sse::{self, CustomerKey, DataKey};
use crate::state::S3State;
use crate::timefmt::http_date;
use axum::body::Body;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{Response, StatusCode, header};
use kura_backend::BlobStore;
use kura_index::ObjectVersion;
use std::ops::Range;
use std::sync::Arc;

pub async fn get_object(
    state: &S3State,
    req: S3Request,
    read: &ObjectRead,
    head: bool,
) -> S3Result<S3Response> {
    sse::refuse_on_read(req.headers())?;
    let version = object_version(state, &req, read.version_id.as_deref()).await?;
    let customer = CustomerKey::from_headers(req.headers())?;
    let key = sse::key_for(
        version.meta.encryption.as_ref(),
        customer,
        &state.master_key,
    )?;
    conditions::check(
        req.headers(),
        Family::Read,
        &version.etag,
        version.last_modified_ms(),
    )?;

    let part_number = read.part_number;
    let range_header = req.header("range");
    let selection = match (part_number, range_header) {
        (Some(_), Some(_)) => {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter",
            ));
        }
        (Some(n), None) => Some(part_range(&version, n)?),
        (None, Some(spec)) => parse_range(spec, version.size)?,
        (None, None) => None,
    };
    let range = selection.clone().unwrap_or(0..version.size);

    let mut response = Response::builder()
        .header("etag", quoted(&version.etag))
        .header(header::LAST_MODIFIED, http_date(version.last_modified_ms()))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, range.end - range.start);
    response = version_header(response, &version.version_id);
    response = object_lock::answer_headers(response, &version.meta);
    response = meta::apply(response, &version.meta, read);
    response = meta::expiration(response, state, &req, &version)?;
    if let Some(headers) = response.headers_mut() {
        sse::answer_headers(headers, version.meta.encryption.as_ref());
    }
    if let Some(n) = part_number {
        if version.multipart {
            response = response.header("x-amz-mp-parts-count", version.parts.len());
        }
        if let Some(checksum) = part_checksum(&version, n) {
            response = checksum_headers(response, &checksum);
        }
    } else if req
        .header("x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("enabled"))
        && selection.is_none()
        && let Some(checksum) = &version.checksum
    {
        response = checksum_headers(response, checksum);
    }
    let status = match &selection {
        Some(r) => {
            response = response.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", r.start, r.end - 1, version.size),
            );
            StatusCode::PARTIAL_CONTENT
        }
        None => StatusCode::OK,
    };
    let body = if head {
        Body::empty()
    } else {
        object_body(state.blobs.clone(), &version, range, key).await?
    };
    Ok(response.status(status).body(body).expect("valid headers"))
}

/// The byte range of part `n`; a simple object has exactly one part.
fn part_range(version: &ObjectVersion, n: u32) -> S3Result<Range<u64>> {
    if !version.multipart {
        return if n == 1 {
            Ok(0..version.size)
        } else {
            Err(ErrorCode::InvalidPartNumber.into())
        };
    }
    let idx = n as usize - 1;
    let part = version.parts.get(idx).ok_or(ErrorCode::InvalidPartNumber)?;
    let start: u64 = version.parts[..idx].iter().map(|p| p.size).sum();
    Ok(start..start + part.size)
}

fn part_checksum(version: &ObjectVersion, n: u32) -> Option<kura_index::StoredChecksum> {
    let checksum = version.checksum.as_ref()?;
    if !version.multipart {
        return Some(checksum.clone());
    }
    let value = version.parts.get(n as usize - 1)?.checksum.clone()?;
    Some(kura_index::StoredChecksum {
        value,
        kind: "COMPOSITE".into(),
        ..checksum.clone()
    })
}

/// One `bytes=` range, as S3 reads it: `None` for the whole object (absent,
/// malformed or multi-range specs are ignored), InvalidRange when unsatisfiable.
pub fn parse_range(spec: &str, size: u64) -> S3Result<Option<Range<u64>>> {
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let unsatisfiable = || {
        S3Error::from(ErrorCode::InvalidRange)
            .with("RangeRequested", format!("bytes={spec}"))
            .with("ActualObjectSize", size.to_string())
    };
    let range = match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => start..end.saturating_add(1).min(size),
        (Ok(start), Err(_)) if last.is_empty() => start..size,
        (Err(_), Ok(suffix)) if first.is_empty() => {
            if suffix == 0 {
                return Err(unsatisfiable());
            }
            size.saturating_sub(suffix)..size
        }
        _ => return Ok(None),
    };
    if range.start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
}

/// Streams `range` of an object across its parts. The first chunk is read
/// (and so verified) before the response starts, so that a damaged object is
/// answered with an error rather than with a truncated 200.
pub async fn object_body(
    blobs: Arc<dyn BlobStore>,
    version: &ObjectVersion,
    range: Range<u64>,
    key: Option<DataKey>,
) -> S3Result<Body> {
    let mut stream = object_stream(blobs, version, range, key);
    let first = match stream.next().await {
        None => return Ok(Body::empty()),
        Some(first) => first?,
    };
    let rest = stream.map_err(std::io::Error::other);
    Ok(Body::from_stream(
        futures::stream::once(async move { Ok(first) }).chain(rest),
    ))
}

/// The verified bytes of `range`, as a stream over the object's blobs; an encrypted
/// object's blocks are opened with `key`.
pub fn object_stream(
    blobs: Arc<dyn BlobStore>,
    version: &ObjectVersion,
    range: Range<u64>,
    key: Option<DataKey>,
) -> impl futures::Stream<Item = S3Result<Bytes>> + Send + Unpin + 'static {
    let mut segments = Vec::new();
    let mut offset = 0u64;
    for part in &version.parts {
        let (start, end) = (offset, offset + part.size);
        if end > range.start && start < range.end {
            let local = range.start.max(start) - start..range.end.min(end) - start;
            segments.push((part.blob.clone(), local));
        }
        offset = end;
    }
    Box::pin(
        futures::stream::iter(segments)
            .then(move |(blob, local)| {
                let (blobs, key) = (blobs.clone(), key.clone());
                async move { read_segment(blobs, blob, local, key).await }
            })
            .try_flatten(),
    )
}

/// One blob's part of a read, as plaintext.
async fn read_segment(
    blobs: Arc<dyn BlobStore>,
    blob: String,
    local: Range<u64>,
    key: Option<DataKey>,
) -> S3Result<futures::stream::BoxStream<'static, S3Result<Bytes>>> {
    // Every read of stored data passes here: the one place that counts damage.
    let counted = |err: kura_backend::BackendError| {
        if matches!(err, kura_backend::BackendError::Corrupt(_)) {
            METRICS.blob_checksum_failures.inc();
        }
        S3Error::from(err)
    };
    Ok(match key {
        None => Box::pin(
            blobs
                .read_blob(&blob, local)
                .await
                .map_err(counted)?
                .map_err(counted),
        ),
        Some(key) => {
            let range = sse::sealed_range(local);
            let stored = blobs
                .read_blob(&blob, range.stored.clone())
                .await
                .map_err(counted)?
                .map_err(counted);
            Box::pin(sse::open_stream(stored, key, blob, range))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_s3_reads_them() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(parse_range("bytes=90-200", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=10-", 100).unwrap(), Some(10..100));
        assert_eq!(parse_range("bytes=-5", 100).unwrap(), Some(95..100));
        assert_eq!(parse_range("bytes=-500", 100).unwrap(), Some(0..100));
        assert_eq!(parse_range("bytes=5-1", 100).unwrap(), None);
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        assert_eq!(
            parse_range("bytes=100-", 100).unwrap_err().code,
            ErrorCode::InvalidRange
        );
        assert_eq!(
            parse_range("bytes=0-0", 0).unwrap_err().code,
            ErrorCode::InvalidRange
        );
        assert_eq!(
            parse_range("bytes=-0", 10).unwrap_err().code,
            ErrorCode::InvalidRange
        );
    }
}
