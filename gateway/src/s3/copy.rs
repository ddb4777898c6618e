//! CopyObject and UploadPartCopy: server-side copies into new blobs.

use super::conditions::{self, Family};
use super::get::object_stream;
use super::meta;
use super::multipart::record_part;
use super::object_lock;
use super::put::{DEFAULT_CHECKSUM, checksum_headers, simple_version};
use super::request::S3Request;
use super::response::{S3Response, quoted, xml_ok};
use super::store::{Destination, MAX_SINGLE_UPLOAD, or_discard, write_blob};
use super::versioning::{find_version, insert_version_id};
use crate::acl;
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::params::CopySource;
use crate::sse::{self, CustomerKey, DataKey};
use crate::state::S3State;
use crate::tags;
use crate::timefmt::iso8601;
use crate::xml::{self, ChecksumFields, NS};
use base64::Engine;
use kura_backend::BlobInfo;
use kura_index::{NULL_VERSION, ObjectVersion, StoredChecksum};
use md5::Digest;
use std::ops::Range;

/// The version of a copy's source object it names (else the current one), checked against the request's
/// `x-amz-copy-source-if-*` conditions, and its data key if it is encrypted (an SSE-C
/// source needs its key in the `x-amz-copy-source-server-side-encryption-customer-*`
/// headers). Authorization has already allowed reading it.
async fn load_source(
    state: &S3State,
    req: &S3Request,
    source: &CopySource,
) -> S3Result<(ObjectVersion, Option<DataKey>)> {
    let id = source.version_id.as_deref();
    let bucket = req
        .access
        .source_bucket()
        .ok_or_else(|| S3Error::internal("no copy source was authorized"))?;
    let version = find_version(state, bucket, &source.key, id).await?;
    let customer = CustomerKey::copy_source(req.headers())?;
    let key = sse::key_for(
        version.meta.encryption.as_ref(),
        customer,
        &state.master_key,
    )?;
    conditions::check(
        req.headers(),
        Family::CopySource,
        &version.etag,
        version.last_modified_ms(),
    )?;
    Ok((version, key))
}

/// Copies `range` of `source` (opened with `source_key`) into a new blob (sealed with
/// `key`), computing its MD5 and checksum.
async fn copy_range(
    state: &S3State,
    dest: Destination<'_>,
    (source, source_key): (&ObjectVersion, Option<DataKey>),
    range: Range<u64>,
    algorithm: Option<ChecksumAlgorithm>,
    key: Option<&DataKey>,
) -> S3Result<(BlobInfo, [u8; 16], Option<Checksum>)> {
    let mut md5 = md5::Md5::new();
    let mut hasher = algorithm.map(ChecksumAlgorithm::hasher);
    let data = object_stream(state.blobs.clone(), source, range, source_key);
    let blob = write_blob(
        state,
        dest,
        data,
        MAX_SINGLE_UPLOAD,
        |chunk| {
            md5.update(chunk);
            if let Some(h) = hasher.as_mut() {
                h.update(chunk);
            }
        },
        key,
    )
    .await?;
    let checksum = algorithm.zip(hasher).map(|(algorithm, h)| Checksum {
        algorithm,
        value: base64::engine::general_purpose::STANDARD.encode(h.finish()),
    });
    Ok((blob, md5.finalize().into(), checksum))
}

fn requested_algorithm(req: &S3Request) -> S3Result<Option<ChecksumAlgorithm>> {
    req.header("x-amz-checksum-algorithm")
        .map(|raw| {
            ChecksumAlgorithm::parse(raw).ok_or_else(|| {
                S3Error::new(
                    ErrorCode::InvalidRequest,
                    "Checksum algorithm provided is unsupported.",
                )
            })
        })
        .transpose()
}

pub async fn copy_object(
    state: &S3State,
    req: S3Request,
    source: &CopySource,
) -> S3Result<S3Response> {
    let replace = match req.header("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => {
            return Err(
                S3Error::new(ErrorCode::InvalidArgument, "Unknown metadata directive.")
                    .with("ArgumentName", "x-amz-metadata-directive"),
            );
        }
    };
    let (version, source_key) = load_source(state, &req, source).await?;
    let algorithm = requested_algorithm(&req)?;
    let sealing = sse::for_write(req.headers(), req.access.bucket()?, &state.master_key)?;
    let changes_something = replace || algorithm.is_some() || sealing.is_some();
    // Copying an older version over its key is how a version is restored.
    let itself = source.bucket == req.bucket && source.key == req.key;
    if itself && source.version_id.is_none() && !changes_something {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    if version.size > MAX_SINGLE_UPLOAD {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_SINGLE_UPLOAD}"
            ),
        ));
    }
    let mut meta = if replace {
        meta::check_write_headers(req.headers())?
    } else {
        meta::check_storage_class(req.headers())?;
        version.meta.clone()
    };
    // A copy is a new object: its ACL comes from this request, never from the source.
    let bucket = req.access.bucket()?;
    let (owner, acl) = acl::for_new_object(&state.index, req.headers(), bucket, req.user()).await?;
    meta.acl = acl;
    // The copy is encrypted as this request (or the bucket's default) says, whatever the
    // source was.
    let (key, encryption) = sealing.unzip();
    meta.encryption = encryption;
    // Locks are the destination's, as for any new version.
    object_lock::apply(&mut meta, req.headers(), bucket, state.index.now_ms())?;
    // Tags follow their own directive, whatever the metadata's.
    meta.tags = match req.header("x-amz-tagging-directive") {
        None | Some("COPY") => version.meta.tags.clone(),
        Some("REPLACE") => tags::from_header(req.header("x-amz-tagging"))?,
        Some(_) => {
            return Err(
                S3Error::new(ErrorCode::InvalidArgument, "Unknown tagging directive.")
                    .with("ArgumentName", "x-amz-tagging-directive"),
            );
        }
    };
    let algorithm = algorithm
        .or_else(|| {
            version
                .checksum
                .as_ref()
                .and_then(|c| ChecksumAlgorithm::parse(&c.algorithm))
        })
        .unwrap_or(DEFAULT_CHECKSUM);
    let source = (&version, source_key);
    let dest = Destination::object(req.access.bucket()?, &req.key);
    let (blob, md5, checksum) = copy_range(
        state,
        dest,
        source,
        0..version.size,
        Some(algorithm),
        key.as_ref(),
    )
    .await?;
    let checksum = checksum.map(|c| StoredChecksum {
        algorithm: c.algorithm.as_str().to_owned(),
        value: c.value,
        kind: "FULL_OBJECT".into(),
    });
    let copy = simple_version(&blob, md5, meta, checksum, &owner);
    let put = state
        .index
        .put_object::<S3Error>(&req.bucket, &req.key, copy, |_| Ok(()))
        .await;
    let stored = or_discard(state, dest, &blob, put).await?;
    let fields = stored.checksum.as_ref().map(ChecksumFields::from);
    let doc = xml::CopyResult {
        xmlns: NS,
        etag: quoted(&stored.etag),
        last_modified: iso8601(stored.last_modified_ms()),
        checksum: fields.unwrap_or_default(),
    };
    let mut response = xml_ok(xml::to_xml("CopyObjectResult", &doc)?)?;
    add_version_headers(&mut response, &stored.version_id, &version.version_id);
    sse::answer_headers(response.headers_mut(), stored.meta.encryption.as_ref());
    if let Some(c) = &stored.checksum {
        let with = checksum_headers(http::Response::builder(), c)
            .body(())
            .expect("valid headers");
        response.headers_mut().extend(with.headers().clone());
    }
    Ok(response)
}

/// `x-amz-copy-source-range: bytes=first-last`, within the source.
fn copy_source_range(raw: Option<&str>, size: u64) -> S3Result<Range<u64>> {
    let Some(raw) = raw else { return Ok(0..size) };
    let invalid = || {
        S3Error::new(
            ErrorCode::InvalidArgument,
            format!("Range specified is not valid for source object of size: {size}"),
        )
        .with("ArgumentName", "x-amz-copy-source-range")
        .with("ArgumentValue", raw)
    };
    let (first, last) = raw
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(invalid)?;
    let (first, last) = (
        first.parse::<u64>().map_err(|_| invalid())?,
        last.parse::<u64>().map_err(|_| invalid())?,
    );
    if first > last || last >= size {
        return Err(invalid());
    }
    Ok(first..last + 1)
}

pub async fn upload_part_copy(
    state: &S3State,
    req: S3Request,
    upload_id: &str,
    number: u32,
    source: &CopySource,
) -> S3Result<S3Response> {
    let upload = state.index.upload(&req.bucket, &req.key, upload_id).await?;
    // The part is sealed with the upload's data key (for SSE-C, the request names it).
    let customer = CustomerKey::from_headers(req.headers())?;
    let key = sse::key_for(upload.meta.encryption.as_ref(), customer, &state.master_key)?;
    let (version, source_key) = load_source(state, &req, source).await?;
    let range = copy_source_range(req.header("x-amz-copy-source-range"), version.size)?;
    if range.end - range.start > MAX_SINGLE_UPLOAD {
        return Err(super::store::too_large(MAX_SINGLE_UPLOAD));
    }
    let algorithm = upload
        .checksum_algorithm
        .as_deref()
        .and_then(ChecksumAlgorithm::parse);
    let source = (&version, source_key);
    let dest = Destination::part(req.access.bucket()?, upload_id, number);
    let (blob, md5, checksum) =
        copy_range(state, dest, source, range, algorithm, key.as_ref()).await?;
    let part = record_part(
        state,
        &req,
        upload_id,
        number,
        &blob,
        md5,
        checksum.as_ref(),
    )
    .await?;
    let fields = checksum.map(|c| ChecksumFields::new(c.algorithm.as_str(), c.value, None));
    let doc = xml::CopyResult {
        xmlns: NS,
        etag: quoted(&part.etag),
        last_modified: iso8601(part.last_modified_ms),
        checksum: fields.unwrap_or_default(),
    };
    let mut response = xml_ok(xml::to_xml("CopyPartResult", &doc)?)?;
    add_version_headers(&mut response, NULL_VERSION, &version.version_id);
    sse::answer_headers(response.headers_mut(), upload.meta.encryption.as_ref());
    Ok(response)
}

/// The version a copy wrote and the version it read, as AWS reports them.
fn add_version_headers(response: &mut S3Response, written: &str, source: &str) {
    let headers = response.headers_mut();
    insert_version_id(headers, "x-amz-version-id", written);
    insert_version_id(headers, "x-amz-copy-source-version-id", source);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_ranges() {
        assert_eq!(copy_source_range(Some("bytes=0-9"), 10).unwrap(), 0..10);
        assert!(copy_source_range(Some("bytes=0-10"), 10).is_err());
    }
}
