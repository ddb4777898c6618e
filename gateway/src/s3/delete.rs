//! DeleteObject and DeleteObjects.

use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use crate::authorize;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::names::MAX_KEY_LEN;
use crate::query::Query;
use crate::state::S3State;
use crate::xml::{self, NS};
use http::StatusCode;

/// AWS's limit of keys per DeleteObjects request.
const MAX_DELETE_KEYS: usize = 1000;

pub async fn delete_object(
    state: &S3State,
    req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    check_version(version_id)?;
    state.index.delete_object(&req.bucket, &req.key).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Only the `null` version exists until versioning does.
fn check_version(version_id: Option<&str>) -> S3Result<()> {
    match version_id {
        None | Some("null") => Ok(()),
        Some(_) => Err(
            S3Error::new(ErrorCode::InvalidArgument, "Invalid version id specified")
                .with("ArgumentName", "versionId"),
        ),
    }
}

pub async fn delete_objects(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let body = read_small_body(&mut req, 2 * 1024 * 1024).await?;
    let request: xml::Delete = xml::from_xml("Delete", &body)?;
    if request.object.is_empty() || request.object.len() > MAX_DELETE_KEYS {
        return Err(ErrorCode::MalformedXML.into());
    }
    // Refused entries are reported without touching the index; the rest are
    // removed together with a single sync. AWS authorizes each key on its own.
    let bucket = req.access.bucket()?;
    let query = Query::parse(req.parts.uri.query());
    let requester = req.requester(&query);
    let checks: Vec<S3Result<()>> = request
        .object
        .iter()
        .map(|o| {
            if o.key.len() > MAX_KEY_LEN {
                return Err(ErrorCode::KeyTooLongError.into());
            }
            check_version(o.version_id.as_deref())?;
            let action = match o.version_id {
                Some(_) => "s3:DeleteObjectVersion",
                None => "s3:DeleteObject",
            };
            if !authorize::decide(bucket, Some(&o.key), None, &requester, action) {
                return Err(ErrorCode::AccessDenied.into());
            }
            Ok(())
        })
        .collect();
    let accepted: Vec<&str> = request
        .object
        .iter()
        .zip(&checks)
        .filter(|(_, check)| check.is_ok())
        .map(|(o, _)| o.key.as_str())
        .collect();
    let mut removals = state
        .index
        .delete_objects(&req.bucket, &accepted)
        .await?
        .into_iter();
    let mut result = xml::DeleteResult {
        xmlns: NS,
        deleted: Vec::new(),
        error: Vec::new(),
    };
    for (object, check) in request.object.into_iter().zip(checks) {
        let outcome = match check {
            Ok(()) => removals
                .next()
                .expect("one outcome per accepted key")
                .map_err(S3Error::from),
            Err(err) => Err(err),
        };
        match outcome {
            Ok(_) if request.quiet => {}
            Ok(_) => result.deleted.push(xml::DeletedEntry { key: object.key }),
            Err(err) => result.error.push(xml::DeleteErrorEntry {
                key: object.key,
                code: err.code.as_str().to_owned(),
                message: err.message,
            }),
        }
    }
    xml_ok(xml::to_xml("DeleteResult", &result)?)
}
