//! GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl.

use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use super::versioning::object_version;
use crate::acl::{self, Requested};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::state::S3State;
use crate::xml;
use http::StatusCode;
use kura_index::{Acl, BucketRecord};

/// An ACL document is small; AWS allows at most 100 grants.
const MAX_BODY: usize = 64 * 1024;

fn answer(acl: &Acl, owner: &str) -> S3Result<S3Response> {
    xml_ok(xml::to_xml(
        "AccessControlPolicy",
        &acl::document(acl, owner),
    )?)
}

pub async fn get_bucket_acl(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    answer(
        &acl::effective(bucket.acl.as_ref(), &bucket.owner),
        &bucket.owner,
    )
}

pub async fn put_bucket_acl(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?.clone();
    let acl = requested(state, &mut req, &bucket, &bucket.owner).await?;
    state
        .index
        .update_bucket(&bucket.name, |record| record.acl = Some(acl.clone()))
        .await?;
    Ok(empty(StatusCode::OK))
}

pub async fn get_object_acl(
    state: &S3State,
    req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    let version = object_version(state, &req, version_id).await?;
    let bucket = req.access.bucket()?;
    // With ACLs disabled the bucket owner owns every object, with full control.
    let owner = acl::shown_owner(bucket, &version.owner);
    let stored = (!acl::disabled(bucket))
        .then_some(version.meta.acl.as_ref())
        .flatten();
    answer(&acl::effective(stored, owner), owner)
}

pub async fn put_object_acl(
    state: &S3State,
    mut req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    let version = object_version(state, &req, version_id).await?;
    let bucket = req.access.bucket()?.clone();
    let acl = requested(state, &mut req, &bucket, &version.owner).await?;
    let stored = (!acl::disabled(&bucket)).then_some(acl);
    state
        .index
        .update_version(&req.bucket, &req.key, version_id, |version| {
            version.meta.acl = stored.clone();
            Ok::<_, S3Error>(())
        })
        .await?
        .ok_or_else(|| S3Error::from(ErrorCode::NoSuchKey).with("Key", req.key.clone()))?;
    Ok(empty(StatusCode::OK))
}

/// The ACL a Put*Acl request sets on a resource owned by `owner`: from its headers
/// (`x-amz-acl` or `x-amz-grant-*`) or from its AccessControlPolicy body, never both;
/// refused if the bucket's ownership or public access block does not allow it.
async fn requested(
    state: &S3State,
    req: &mut S3Request,
    bucket: &BucketRecord,
    owner: &str,
) -> S3Result<Acl> {
    let from_headers = acl::from_headers(&state.index, req.headers()).await?;
    let body = read_small_body(req, MAX_BODY).await?;
    let has_body = !body.iter().all(u8::is_ascii_whitespace);
    let requested = match (from_headers, has_body) {
        (Some(_), true) => {
            return Err(S3Error::new(
                ErrorCode::UnexpectedContent,
                "This request does not support content when ACL headers are given.",
            ));
        }
        (Some(requested), false) => requested,
        (None, true) => Requested::Grants(acl::from_document(&state.index, &body, owner).await?),
        (None, false) => {
            return Err(S3Error::new(
                ErrorCode::MissingSecurityHeader,
                "Your request was missing a required header: x-amz-acl, x-amz-grant-* or an AccessControlPolicy body.",
            ));
        }
    };
    acl::check_allowed(bucket, Some(&requested))?;
    let acl = requested.acl(owner, &bucket.owner)?;
    acl::check_public(bucket, &acl)?;
    Ok(acl)
}
