//! Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts, ListMultipartUploads. (UploadPartCopy is in `copy`.)

use super::conditions::WriteConditions;
use super::meta;
use super::object_lock;
use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, quoted, unquote, xml_ok};
use super::store::{Destination, MAX_SINGLE_UPLOAD, declared_size, or_discard, write_body};
use super::versioning::insert_version_id;
use crate::acl;
use crate::checksum::{Checksum, ChecksumAlgorithm, ChecksumType, combine_parts};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::owner::owner;
use crate::params::ListQuery;
use crate::sse::{self, CustomerKey};
use crate::state::S3State;
use crate::timefmt::iso8601;
use crate::xml::{self, ChecksumFields, NS};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{Response, StatusCode};
use kura_backend::BlobInfo;
use kura_index::{
    ObjectVersion, PartRecord, PartRef, Stamp, StoredChecksum, UploadListParams, UploadRecord,
};
use md5::Digest;

/// Every part but the last must be at least this large.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// The checksum algorithm and type an upload is created with, as AWS allows them.
fn upload_checksum(req: &S3Request) -> S3Result<(Option<ChecksumAlgorithm>, Option<ChecksumType>)> {
    let unsupported =
        |what: &str| S3Error::new(ErrorCode::InvalidRequest, format!("{what} is unsupported."));
    let algorithm = req
        .header("x-amz-checksum-algorithm")
        .map(|a| {
            ChecksumAlgorithm::parse(a).ok_or_else(|| unsupported("Checksum algorithm provided"))
        })
        .transpose()?;
    let kind = req
        .header("x-amz-checksum-type")
        .map(|t| ChecksumType::parse(t).ok_or_else(|| unsupported("Checksum type provided")))
        .transpose()?;
    match (algorithm, kind) {
        (None, Some(_)) => Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
        )),
        (Some(alg), kind) => {
            let kind = kind.unwrap_or(if alg == ChecksumAlgorithm::Crc64Nvme {
                ChecksumType::FullObject
            } else {
                ChecksumType::Composite
            });
            // Validate the combination now rather than at completion.
            combine_parts(alg, kind, &[])?;
            Ok((Some(alg), Some(kind)))
        }
        (None, None) => Ok((None, None)),
    }
}

pub async fn create_multipart_upload(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    let mut meta = meta::check_write_headers(req.headers())?;
    // The parts are sealed with this data key; the upload keeps it, wrapped.
    let bucket = req.access.bucket()?;
    // The ACL waits in the upload for the object; the owner is settled at completion.
    meta.acl = acl::for_new_object(&state.index, req.headers(), bucket, req.user())
        .await?
        .1;
    meta.encryption = sse::for_write(req.headers(), bucket, &state.master_key)?.map(|(_, e)| e);
    object_lock::apply(&mut meta, req.headers(), bucket, state.index.now_ms())?;
    let (algorithm, kind) = upload_checksum(&req)?;
    let now = state.index.now_ms();
    // Upload ids sort by creation time, which is the order S3 lists them in.
    let upload_id = format!("{now:012x}{}", uuid::Uuid::new_v4().simple());
    let upload = UploadRecord {
        upload_id: upload_id.clone(),
        key: req.key.clone(),
        owner: req.user().to_owned(),
        initiated_ms: now,
        meta,
        checksum_algorithm: algorithm.map(|a| a.as_str().to_owned()),
        checksum_type: kind.map(|k| k.as_str().to_owned()),
        completing: None,
    };
    state.index.create_upload(&req.bucket, &upload).await?;
    let doc = xml::InitiateMultipartUploadResult {
        xmlns: NS,
        bucket: req.bucket.clone(),
        key: req.key.clone(),
        upload_id,
    };
    let mut response = xml_ok(xml::to_xml("InitiateMultipartUploadResult", &doc)?)?;
    sse::answer_headers(response.headers_mut(), upload.meta.encryption.as_ref());
    if let (Some(alg), Some(kind)) = (algorithm, kind) {
        let headers = response.headers_mut();
        headers.insert(
            "x-amz-checksum-algorithm",
            http::HeaderValue::from_static(alg.as_str()),
        );
        headers.insert(
            "x-amz-checksum-type",
            http::HeaderValue::from_static(kind.as_str()),
        );
    }
    Ok(response)
}

pub async fn upload_part(
    state: &S3State,
    mut req: S3Request,
    upload_id: &str,
    number: u32,
) -> S3Result<S3Response> {
    let upload = state.index.upload(&req.bucket, &req.key, upload_id).await?;
    let customer = CustomerKey::from_headers(req.headers())?;
    let key = sse::key_for(upload.meta.encryption.as_ref(), customer, &state.master_key)?;
    declared_size(req.headers(), MAX_SINGLE_UPLOAD)?;
    let algorithm = upload
        .checksum_algorithm
        .as_deref()
        .and_then(ChecksumAlgorithm::parse);
    let mut body = req.take_body(algorithm)?;
    let dest = Destination::part(req.access.bucket()?, upload_id, number);
    let blob = write_body(state, dest, &mut body, key.as_ref()).await?;
    let digests = body.digests().expect("a fully read body has digests");
    let part = record_part(
        state,
        &req,
        upload_id,
        number,
        &blob,
        digests.md5,
        digests.checksum.as_ref(),
    )
    .await?;
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header("etag", quoted(&part.etag));
    if let Some(checksum) = &digests.checksum {
        response = response.header(checksum.algorithm.header_name(), checksum.value.as_str());
    }
    if let Some(headers) = response.headers_mut() {
        sse::answer_headers(headers, upload.meta.encryption.as_ref());
    }
    Ok(response
        .body(axum::body::Body::empty())
        .expect("valid headers"))
}

/// Records an uploaded (or copied) part; its blob is discarded if the upload is gone.
pub async fn record_part(
    state: &S3State,
    req: &S3Request,
    upload_id: &str,
    number: u32,
    blob: &BlobInfo,
    md5: [u8; 16],
    checksum: Option<&Checksum>,
) -> S3Result<PartRecord> {
    let part = PartRecord {
        number,
        blob: blob.id.clone(),
        size: blob.len,
        etag: hex::encode(md5),
        checksum: checksum.map(|c| c.value.clone()),
        last_modified_ms: state.index.now_ms(),
    };
    let recorded = state
        .index
        .put_part(&req.bucket, &req.key, upload_id, &part)
        .await
        .map_err(S3Error::from);
    let dest = Destination::part(req.access.bucket()?, upload_id, number);
    or_discard(state, dest, blob, recorded).await?;
    Ok(part)
}

pub async fn complete_multipart_upload(
    state: &S3State,
    mut req: S3Request,
    upload_id: &str,
) -> S3Result<S3Response> {
    let conditions = WriteConditions::from_headers(req.headers());
    let body = read_small_body(&mut req, 4 * 1024 * 1024).await?;
    let request: xml::CompleteMultipartUpload = xml::from_xml("CompleteMultipartUpload", &body)?;
    if request.part.is_empty() {
        return Err(S3Error::new(
            ErrorCode::MalformedXML,
            "You must specify at least one part.",
        ));
    }
    let bucket = req.access.bucket()?.clone();
    let stated: Vec<(ChecksumAlgorithm, String)> = ChecksumAlgorithm::all()
        .into_iter()
        .filter_map(|alg| req.header(alg.header_name()).map(|v| (alg, v.to_owned())))
        .collect();
    // A value that is no checksum at all is refused before anything is done; one that
    // does not match is BadDigest after the parts are read.
    for (alg, value) in &stated {
        let digest = value.rsplit_once('-').map_or(value.as_str(), |(d, _)| d);
        if alg.decode_value(digest).is_none() {
            return Err(alg.invalid_value());
        }
    }
    let completed = state
        .index
        .complete_upload(
            &req.bucket,
            &req.key,
            upload_id,
            move |upload, parts| {
                let owner = acl::object_owner(&bucket, &upload.owner, upload.meta.acl.as_ref());
                let version = assemble(upload, parts, &request.part, owner)?;
                check_stated_checksum(&version, &stated)?;
                Ok(version)
            },
            move |current| conditions.check(current),
        )
        .await;
    let version = match completed {
        // Sent again after it succeeded (a retry whose answer was lost): the same answer.
        Err(err) if err.code == ErrorCode::NoSuchUpload => state
            .index
            .current(req.access.bucket()?, &req.key)
            .await?
            .filter(|current| current.upload_id.as_deref() == Some(upload_id))
            .ok_or(err)?,
        other => other?,
    };
    let host = req.header("host").unwrap_or("localhost");
    let fields = version.checksum.as_ref().map(ChecksumFields::from);
    let doc = xml::CompleteMultipartUploadResult {
        xmlns: NS,
        location: format!("http://{host}/{}/{}", req.bucket, req.key),
        bucket: req.bucket.clone(),
        key: req.key.clone(),
        etag: quoted(&version.etag),
        checksum: fields.unwrap_or_default(),
    };
    let mut response = xml_ok(xml::to_xml("CompleteMultipartUploadResult", &doc)?)?;
    insert_version_id(
        response.headers_mut(),
        "x-amz-version-id",
        &version.version_id,
    );
    Ok(response)
}

/// Builds the object from the parts the client lists, with S3's checks and
/// its `"<md5 of part md5s>-N"` ETag.
fn assemble(
    upload: &UploadRecord,
    uploaded: &[PartRecord],
    listed: &[xml::CompletedPartXml],
    owner: String,
) -> S3Result<ObjectVersion> {
    let mut chosen: Vec<&PartRecord> = Vec::with_capacity(listed.len());
    for (i, wanted) in listed.iter().enumerate() {
        if i > 0 && wanted.part_number <= listed[i - 1].part_number {
            return Err(ErrorCode::InvalidPartOrder.into());
        }
        let part = uploaded
            .iter()
            .find(|p| p.number == wanted.part_number && p.etag == unquote(&wanted.etag))
            .ok_or(ErrorCode::InvalidPart)?;
        if let (Some(stated), Some(stored)) = (wanted.checksum(), &part.checksum)
            && stated != stored
        {
            return Err(S3Error::new(
                ErrorCode::InvalidPart,
                format!("The checksum of part {} does not match.", part.number),
            ));
        }
        chosen.push(part);
    }
    if let Some(small) = chosen[..chosen.len() - 1]
        .iter()
        .find(|p| p.size < MIN_PART_SIZE)
    {
        return Err(S3Error::from(ErrorCode::EntityTooSmall)
            .with("ProposedSize", small.size.to_string())
            .with("MinSizeAllowed", MIN_PART_SIZE.to_string())
            .with("PartNumber", small.number.to_string()));
    }
    let mut md5s = md5::Md5::new();
    for part in &chosen {
        md5s.update(hex::decode(&part.etag).map_err(S3Error::internal)?);
    }
    Ok(ObjectVersion {
        version_id: "null".into(),
        stamp: Stamp { ms: 0, seq: 0 },
        delete_marker: false,
        size: chosen.iter().map(|p| p.size).sum(),
        etag: format!("{}-{}", hex::encode(md5s.finalize()), chosen.len()),
        meta: upload.meta.clone(),
        checksum: object_checksum(upload, &chosen)?,
        parts: chosen
            .iter()
            .map(|p| PartRef {
                blob: p.blob.clone(),
                size: p.size,
                etag: Some(p.etag.clone()),
                checksum: p.checksum.clone(),
            })
            .collect(),
        multipart: true,
        owner,
        upload_id: Some(upload.upload_id.clone()),
    })
}

/// A client may state the object's checksum on completion; it must be the
/// one the parts add up to.
fn check_stated_checksum(
    version: &ObjectVersion,
    stated: &[(ChecksumAlgorithm, String)],
) -> S3Result<()> {
    for (alg, value) in stated {
        let ours = version
            .checksum
            .as_ref()
            .filter(|c| c.algorithm == alg.as_str());
        match ours {
            Some(c) if c.value == *value || c.value.split('-').next() == Some(value.as_str()) => {}
            Some(_) => {
                return Err(S3Error::new(
                    ErrorCode::BadDigest,
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        alg.as_str()
                    ),
                ));
            }
            None => {
                return Err(S3Error::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "The upload was not created with the {} checksum algorithm.",
                        alg.as_str()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The whole-object checksum of a multipart upload created with an algorithm.
fn object_checksum(
    upload: &UploadRecord,
    parts: &[&PartRecord],
) -> S3Result<Option<StoredChecksum>> {
    let Some(algorithm) = upload
        .checksum_algorithm
        .as_deref()
        .and_then(ChecksumAlgorithm::parse)
    else {
        return Ok(None);
    };
    let kind = upload
        .checksum_type
        .as_deref()
        .and_then(ChecksumType::parse)
        .unwrap_or(ChecksumType::Composite);
    let mut digests = Vec::with_capacity(parts.len());
    for part in parts {
        let missing = || {
            S3Error::new(
                ErrorCode::InvalidRequest,
                format!(
                    "The upload was created using a {} checksum. Part {} was uploaded without one.",
                    algorithm.as_str(),
                    part.number
                ),
            )
        };
        let raw = part.checksum.as_deref().ok_or_else(missing)?;
        digests.push((STANDARD.decode(raw).map_err(|_| missing())?, part.size));
    }
    let combined = combine_parts(algorithm, kind, &digests)?;
    Ok(Some(StoredChecksum {
        algorithm: algorithm.as_str().to_owned(),
        value: combined.value,
        kind: kind.as_str().to_owned(),
    }))
}

pub async fn abort_multipart_upload(
    state: &S3State,
    req: S3Request,
    upload_id: &str,
) -> S3Result<S3Response> {
    state
        .index
        .abort_upload(&req.bucket, &req.key, upload_id)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn list_parts(
    state: &S3State,
    req: S3Request,
    upload_id: &str,
    marker: u32,
    max: usize,
) -> S3Result<S3Response> {
    let upload = state.index.upload(&req.bucket, &req.key, upload_id).await?;
    let (parts, truncated) = state
        .index
        .parts(&req.bucket, upload_id, marker, max)
        .await?;
    let algorithm = upload.checksum_algorithm.clone();
    let doc = xml::ListPartsResult {
        xmlns: NS,
        bucket: req.bucket.clone(),
        key: req.key.clone(),
        upload_id: upload_id.to_owned(),
        initiator: owner(&upload.owner),
        owner: owner(&upload.owner),
        storage_class: "STANDARD",
        part_number_marker: marker,
        next_part_number_marker: parts.last().map(|p| p.number),
        max_parts: max,
        is_truncated: truncated,
        checksum_algorithm: algorithm.clone(),
        checksum_type: upload.checksum_type.clone(),
        part: parts
            .into_iter()
            .map(|p| xml::PartEntry {
                part_number: p.number,
                last_modified: iso8601(p.last_modified_ms),
                etag: quoted(&p.etag),
                size: p.size,
                checksum: match (&algorithm, p.checksum) {
                    (Some(alg), Some(value)) => ChecksumFields::new(alg, value, None),
                    _ => ChecksumFields::default(),
                },
            })
            .collect(),
    };
    xml_ok(xml::to_xml("ListPartsResult", &doc)?)
}

pub async fn list_multipart_uploads(
    state: &S3State,
    req: S3Request,
    common: &ListQuery,
    (key_marker, upload_id_marker): (Option<&str>, Option<&str>),
) -> S3Result<S3Response> {
    let params = UploadListParams {
        prefix: &common.prefix,
        delimiter: common.delimiter.as_deref(),
        key_marker,
        upload_id_marker,
        max: common.max,
    };
    let page = state.index.list_uploads(&req.bucket, &params).await?;
    let (next_key, next_id) = match (page.truncated, page.entries.last(), page.prefixes.last()) {
        (false, _, _) => (None, None),
        (true, Some((key, upload)), prefix) if prefix.is_none_or(|p| p.as_str() < key.as_str()) => {
            (Some(common.show(key)), Some(upload.upload_id.clone()))
        }
        (true, _, Some(prefix)) => (Some(common.show(prefix)), None),
        (true, _, None) => (None, None),
    };
    let doc = xml::ListMultipartUploadsResult {
        xmlns: NS,
        bucket: req.bucket.clone(),
        key_marker: common.show(key_marker.unwrap_or("")),
        upload_id_marker: upload_id_marker.unwrap_or("").to_owned(),
        next_key_marker: next_key,
        next_upload_id_marker: next_id,
        prefix: common.show(&common.prefix),
        delimiter: common.delimiter.as_deref().map(|d| common.show(d)),
        max_uploads: common.max,
        encoding_type: common.encoding_type(),
        is_truncated: page.truncated,
        upload: page
            .entries
            .into_iter()
            .map(|(key, u)| xml::UploadEntry {
                key: common.show(&key),
                upload_id: u.upload_id,
                initiator: owner(&u.owner),
                owner: owner(&u.owner),
                storage_class: "STANDARD",
                initiated: iso8601(u.initiated_ms),
                checksum_algorithm: u.checksum_algorithm,
                checksum_type: u.checksum_type,
            })
            .collect(),
        common_prefixes: common.prefixes(&page.prefixes),
    };
    xml_ok(xml::to_xml("ListMultipartUploadsResult", &doc)?)
}
