//! PutObject.

use super::conditions::WriteConditions;
use super::meta;
use super::object_lock;
use super::request::S3Request;
use super::response::{S3Response, quoted};
use super::store::{
    Destination, MAX_SINGLE_UPLOAD, declared_size, or_discard, write_body_unless_empty,
};
use super::versioning::version_header;
use crate::acl;
use crate::body::{BodyDigests, VerifiedBody};
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::error::{S3Error, S3Result};
use crate::sse;
use crate::state::S3State;
use http::{Response, StatusCode};
use kura_index::{ObjectVersion, PartRef, Stamp, StoredChecksum, Versioning};

/// Without a client checksum, S3 computes CRC64NVME for every new object.
pub const DEFAULT_CHECKSUM: ChecksumAlgorithm = ChecksumAlgorithm::Crc64Nvme;

pub async fn put_object(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?.clone();
    let meta = meta::check_write_headers(req.headers())?;
    let conditions = WriteConditions::from_headers(req.headers());
    let size = declared_size(req.headers(), MAX_SINGLE_UPLOAD);
    // Conditions and the quota fail fast, before the body is read (the commit checks them
    // again, atomically). The quota's check reads every shard's counters: it is spared
    // when this gateway saw room for the write a moment ago, and so is the read of the
    // current version when no condition needs it either.
    let declared = size.as_ref().ok().copied().flatten().unwrap_or_default();
    let check_quota = !state.index.room_seen(&bucket, declared);
    let current = if conditions.any() || check_quota {
        state.index.current(&bucket, &req.key).await?
    } else {
        None
    };
    let current = current.as_ref();
    conditions.check(current)?;
    let size = size?;
    if check_quota {
        // A versioned bucket keeps the version a write replaces.
        let replaced = current.filter(|_| bucket.versioning == Versioning::Unversioned);
        state
            .index
            .check_room(&bucket, replaced, size.unwrap_or_default())
            .await?;
    }

    let mut meta = meta;
    let (owner, acl) =
        acl::for_new_object(&state.index, req.headers(), &bucket, req.user()).await?;
    meta.acl = acl;
    let (key, encryption) = sse::for_write(req.headers(), &bucket, &state.master_key)?.unzip();
    meta.encryption = encryption;
    object_lock::apply(&mut meta, req.headers(), &bucket, state.index.now_ms())?;
    object_lock::require_upload_integrity(&meta, req.headers())?;

    let want = (!names_checksum(req.headers())).then_some(DEFAULT_CHECKSUM);
    let mut body = req.take_body(want)?;
    let dest = Destination::object(&bucket, &req.key);
    let blob =
        write_body_unless_empty(state, dest, &mut body, MAX_SINGLE_UPLOAD, key.as_ref()).await?;
    let version = body_version(blob.as_ref(), &body, meta, &owner)?;
    let put = state
        .index
        .put_object(&req.bucket, &req.key, version, |current| {
            conditions.check(current)
        })
        .await;
    let stored = or_discard(state, dest, blob.as_ref(), put).await?;
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header("etag", quoted(&stored.etag));
    response = version_header(response, &stored.version_id);
    response = meta::expiration(response, state, &req, &stored)?;
    if let Some(headers) = response.headers_mut() {
        sse::answer_headers(headers, stored.meta.encryption.as_ref());
    }
    if let Some(checksum) = &stored.checksum {
        response = checksum_headers(response, checksum);
    }
    Ok(response
        .body(axum::body::Body::empty())
        .expect("valid headers"))
}

/// Whether the client chose a checksum itself (a value, a trailer, or an algorithm).
pub(super) fn names_checksum(headers: &http::HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        name == "x-amz-trailer"
            || name == "x-amz-sdk-checksum-algorithm"
            || name.starts_with("x-amz-checksum-")
    })
}

/// The `null` version of a request body just streamed into `blob` (none: it was empty):
/// its ETag and checksum are the body's digests.
pub(super) fn body_version<'b>(
    blob: impl Into<Option<&'b kura_backend::BlobInfo>>,
    body: &VerifiedBody,
    meta: kura_index::ObjectMeta,
    owner: &str,
) -> S3Result<ObjectVersion> {
    let digests = body
        .digests()
        .ok_or_else(|| S3Error::internal("a body read to its end has digests"))?;
    let checksum = full_object_checksum(&digests);
    Ok(simple_version(blob, digests.md5, meta, checksum, owner))
}

/// The `null` version of an object stored as one blob (not multipart), or as none (an
/// empty object).
pub fn simple_version<'b>(
    blob: impl Into<Option<&'b kura_backend::BlobInfo>>,
    md5: [u8; 16],
    meta: kura_index::ObjectMeta,
    checksum: Option<StoredChecksum>,
    owner: &str,
) -> ObjectVersion {
    let blob = blob.into();
    ObjectVersion {
        version_id: "null".into(),
        // The index stamps the version when it commits it.
        stamp: Stamp { ms: 0, seq: 0 },
        delete_marker: false,
        size: blob.map_or(0, |b| b.len),
        etag: hex::encode(md5),
        meta,
        checksum,
        parts: blob
            .map(|blob| PartRef {
                blob: blob.id.clone(),
                size: blob.len,
                etag: None,
                checksum: None,
            })
            .into_iter()
            .collect(),
        multipart: false,
        owner: owner.to_owned(),
        upload_id: None,
    }
}

pub fn full_object_checksum(digests: &BodyDigests) -> Option<StoredChecksum> {
    digests
        .checksum
        .as_ref()
        .map(|c: &Checksum| StoredChecksum {
            algorithm: c.algorithm.as_str().to_owned(),
            value: c.value.clone(),
            kind: "FULL_OBJECT".to_owned(),
        })
}

/// `x-amz-checksum-<algorithm>` and `x-amz-checksum-type` response headers.
pub fn checksum_headers(
    builder: http::response::Builder,
    checksum: &StoredChecksum,
) -> http::response::Builder {
    let name = format!("x-amz-checksum-{}", checksum.algorithm.to_ascii_lowercase());
    builder
        .header(name, checksum.value.as_str())
        .header("x-amz-checksum-type", checksum.kind.as_str())
}
