//! GetBucketVersioning, PutBucketVersioning, and what every operation on object versions
//! shares: which version a request names, and the version headers of the answer.

use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::state::S3State;
use crate::xml::{self, NS};
use http::response::Builder;
use http::{HeaderMap, HeaderValue, StatusCode};
use kura_index::{BucketRecord, NULL_VERSION, ObjectVersion, Versioning, is_version_id};

pub async fn get_bucket_versioning(req: S3Request) -> S3Result<S3Response> {
    let status = match req.access.bucket()?.versioning {
        Versioning::Unversioned => None,
        Versioning::Enabled => Some("Enabled".to_owned()),
        Versioning::Suspended => Some("Suspended".to_owned()),
    };
    xml_ok(xml::to_xml(
        "VersioningConfiguration",
        &xml::VersioningConfiguration { xmlns: NS, status },
    )?)
}

pub async fn put_bucket_versioning(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let body = read_small_body(&mut req, 64 * 1024).await?;
    let config: xml::VersioningRequest = xml::from_xml("VersioningConfiguration", &body)?;
    if config.mfa_delete.as_deref() == Some("Enabled") {
        return Err(S3Error::new(
            ErrorCode::NotImplemented,
            "MFA Delete is not supported.",
        ));
    }
    let versioning = match config.status.as_deref() {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        _ => return Err(ErrorCode::MalformedXML.into()),
    };
    if versioning == Versioning::Suspended && req.access.bucket()?.object_lock.is_some() {
        return Err(S3Error::new(
            ErrorCode::InvalidBucketState,
            "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
        ));
    }
    state
        .index
        .update_bucket(&req.bucket, |record| record.versioning = versioning)
        .await?;
    Ok(empty(StatusCode::OK))
}

/// Refuses a delete naming a `versionId` Kura could never have made, as AWS does.
pub(super) fn check_version_id(id: Option<&str>) -> S3Result<()> {
    match id {
        Some(id) if !is_version_id(id) => Err(S3Error::new(
            ErrorCode::InvalidArgument,
            "Invalid version id specified",
        )
        .with("ArgumentName", "versionId")
        .with("ArgumentValue", id)),
        _ => Ok(()),
    }
}

/// The version a request names: version `id`, else the key's current version. As AWS
/// answers: 404 NoSuchVersion for an unknown id (whatever its form); 405 for a delete
/// marker named by id; 404 NoSuchKey, with `x-amz-delete-marker`, when the key's newest
/// version is a marker.
pub(super) async fn object_version(
    state: &S3State,
    req: &S3Request,
    id: Option<&str>,
) -> S3Result<ObjectVersion> {
    // What authorizing read is still what the request names.
    if let Some(version) = req.access.object().filter(|v| !v.delete_marker) {
        return Ok(version.clone());
    }
    find_version(state, req.access.bucket()?, &req.key, id).await
}

/// `object_version` of `key` in `bucket`.
pub(super) async fn find_version(
    state: &S3State,
    bucket: &BucketRecord,
    key: &str,
    id: Option<&str>,
) -> S3Result<ObjectVersion> {
    match id {
        Some(id) => {
            let version = state.index.version(bucket, key, id).await?.ok_or_else(|| {
                S3Error::from(ErrorCode::NoSuchVersion)
                    .with("Key", key)
                    .with("VersionId", id)
            })?;
            if version.delete_marker {
                return Err(marker_error(
                    S3Error::from(ErrorCode::MethodNotAllowed).with("ResourceType", "DeleteMarker"),
                    &version,
                ));
            }
            Ok(version)
        }
        None => match state.index.latest(bucket, key).await? {
            Some(version) if !version.delete_marker => Ok(version),
            found => {
                let err = S3Error::from(ErrorCode::NoSuchKey).with("Key", key);
                Err(match found {
                    Some(marker) => marker_error(err, &marker),
                    None => err,
                })
            }
        },
    }
}

fn marker_error(err: S3Error, marker: &ObjectVersion) -> S3Error {
    err.with_header("x-amz-delete-marker", "true")
        .with_header("x-amz-version-id", marker.version_id.clone())
        .with_header(
            "last-modified",
            crate::timefmt::http_date(marker.last_modified_ms()),
        )
}

/// `x-amz-version-id` naming `version_id` (see `insert_version_id`).
pub(super) fn version_header(mut builder: Builder, version_id: &str) -> Builder {
    if let Some(headers) = builder.headers_mut() {
        insert_version_id(headers, "x-amz-version-id", version_id);
    }
    builder
}

/// Sets header `name` to `version_id`, unless that is the `null` version: the only one of
/// a bucket that never had versioning, where AWS names no version.
pub(super) fn insert_version_id(headers: &mut HeaderMap, name: &'static str, version_id: &str) {
    if version_id != NULL_VERSION
        && let Ok(value) = HeaderValue::from_str(version_id)
    {
        headers.insert(name, value);
    }
}
