//! DeleteObject and DeleteObjects, conditional ones too (the version they would delete
//! checked in the same guarded change that deletes it).

use super::conditions;
use super::object_lock;
use super::request::{S3Request, read_small_body};
use super::response::{S3Response, xml_ok};
use super::versioning::check_version_id;
use crate::access_log::BatchDeleted;
use crate::authorize;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::names::MAX_KEY_LEN;
use crate::query::Query;
use crate::state::S3State;
use crate::xml::{self, NS};
use http::{Response, StatusCode};
use kura_index::{DeleteIf, Deleted, Deleter};

/// AWS's limit of keys per DeleteObjects request.
const MAX_DELETE_KEYS: usize = 1000;

pub async fn delete_object(
    state: &S3State,
    req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    check_version_id(version_id)?;
    let only_if = conditions::delete_if(
        req.header("if-match"),
        req.header("x-amz-if-match-last-modified-time"),
        req.header("x-amz-if-match-size"),
    )?;
    let by = Deleter {
        owner: req.user(),
        bypass: object_lock::bypass(&req, Some(&req.key))?,
    };
    let deleted = state
        .index
        .delete_object_if(&req.bucket, &req.key, version_id, &only_if, by)
        .await?;
    let mut response = Response::builder().status(StatusCode::NO_CONTENT);
    if let Some(id) = &deleted.version_id {
        response = response.header("x-amz-version-id", id);
    }
    if deleted.delete_marker {
        response = response.header("x-amz-delete-marker", "true");
    }
    Ok(response
        .body(axum::body::Body::empty())
        .expect("valid headers"))
}

/// How DeleteObjects reports a key deleted: the version it named (a delete marker's id
/// twice, as AWS does), or the delete marker the delete added.
fn deleted_entry(key: String, asked: Option<String>, deleted: Deleted) -> xml::DeletedEntry {
    let marker = deleted.delete_marker.then_some(true);
    match asked {
        Some(id) => xml::DeletedEntry {
            key,
            delete_marker_version_id: marker.map(|_| id.clone()),
            version_id: Some(id),
            delete_marker: marker,
        },
        None => xml::DeletedEntry {
            key,
            version_id: None,
            delete_marker: marker,
            delete_marker_version_id: deleted.version_id.filter(|_| deleted.delete_marker),
        },
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
    let mut checks: Vec<S3Result<DeleteIf>> = Vec::with_capacity(request.object.len());
    for o in &request.object {
        let check = async {
            if o.key.len() > MAX_KEY_LEN {
                return Err(ErrorCode::KeyTooLongError.into());
            }
            let version_id = o.version_id.as_deref();
            check_version_id(version_id)?;
            let (etag, size) = (o.etag.as_deref(), o.size.as_deref());
            let only_if = conditions::delete_if(etag, o.last_modified_time.as_deref(), size)?;
            // As for DeleteObject (see `authorize`): an ETag condition needs read access,
            // which the version's own ACL may give.
            let on_etag = etag.is_some_and(authorize::names_an_etag);
            let object = match on_etag {
                true => authorize::version(state, bucket, &o.key, version_id).await?,
                false => None,
            };
            let may = |action| {
                authorize::decide(bucket, Some(&o.key), object.as_ref(), &requester, action)
            };
            let action = match version_id {
                Some(_) => "s3:DeleteObjectVersion",
                None => "s3:DeleteObject",
            };
            if !may(action) || (on_etag && !may(authorize::read_action(version_id))) {
                return Err(ErrorCode::AccessDenied.into());
            }
            Ok(only_if)
        };
        checks.push(check.await);
    }
    let by = Deleter {
        owner: req.user(),
        bypass: object_lock::bypass(&req, None)?,
    };
    let accepted: Vec<(&str, Option<&str>, &DeleteIf)> = request
        .object
        .iter()
        .zip(&checks)
        .filter_map(|(o, check)| {
            Some((
                o.key.as_str(),
                o.version_id.as_deref(),
                check.as_ref().ok()?,
            ))
        })
        .collect();
    let mut removals = state
        .index
        .delete_objects(&req.bucket, &accepted, by)
        .await?
        .into_iter();
    let mut result = xml::DeleteResult {
        xmlns: NS,
        deleted: Vec::new(),
        error: Vec::new(),
    };
    let mut batch = BatchDeleted::default();
    for (object, check) in request.object.into_iter().zip(checks) {
        let outcome = match check {
            Ok(_) => removals
                .next()
                .expect("one outcome per accepted key")
                .map_err(S3Error::from),
            Err(err) => Err(err),
        };
        if let Ok(deleted) = &outcome {
            let version = deleted.version_id.clone().or(object.version_id.clone());
            batch.0.push((object.key.clone(), version));
        }
        match outcome {
            Ok(_) if request.quiet => {}
            Ok(deleted) => {
                let entry = deleted_entry(object.key, object.version_id, deleted);
                result.deleted.push(entry);
            }
            Err(err) => result.error.push(xml::DeleteErrorEntry {
                key: object.key,
                version_id: object.version_id,
                code: err.code.as_str().to_owned(),
                message: err.message,
            }),
        }
    }
    let mut response = xml_ok(xml::to_xml("DeleteResult", &result)?)?;
    // The access log tells each key deleted, as AWS's BATCH.DELETE.OBJECT records do.
    response.extensions_mut().insert(batch);
    Ok(response)
}
