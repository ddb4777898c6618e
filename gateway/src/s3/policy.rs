//! GetBucketPolicy, PutBucketPolicy, DeleteBucketPolicy, GetBucketPolicyStatus.

use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use crate::authorize::PublicStatus;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::policy::{MAX_POLICY_BYTES, Policy};
use crate::state::S3State;
use crate::xml::{self, NS};
use http::{Response, StatusCode, header};

pub async fn get_bucket_policy(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    let Some(policy) = &bucket.policy else {
        return Err(
            S3Error::from(ErrorCode::NoSuchBucketPolicy).with("BucketName", bucket.name.clone())
        );
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(policy.clone()))
        .expect("valid headers"))
}

pub async fn put_bucket_policy(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?.clone();
    // Read a little past the limit, so that an oversized policy is told so.
    let body = read_small_body(&mut req, MAX_POLICY_BYTES + 1)
        .await
        .map_err(|e| match e.code {
            ErrorCode::MalformedXML => S3Error::from(ErrorCode::PolicyTooLarge),
            _ => e,
        })?;
    let policy = Policy::parse(&body, &bucket.name)?;
    let blocked = bucket
        .public_access_block
        .is_some_and(|b| b.block_public_policy);
    if blocked && policy.is_public() {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            "The bucket's public access block does not allow public policies.",
        ));
    }
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| S3Error::new(ErrorCode::MalformedPolicy, "The policy is not UTF-8."))?;
    state
        .index
        .update_bucket(&bucket.name, |record| record.policy = Some(text.clone()))
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn delete_bucket_policy(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    state
        .index
        .update_bucket(&req.bucket, |record| record.policy = None)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// IsPublic: whether the bucket's policy or its ACL grants to the public (as RGW answers,
/// which s3-tests check: a bucket without a policy is simply not public by policy).
pub async fn get_bucket_policy_status(req: S3Request) -> S3Result<S3Response> {
    let is_public = PublicStatus::of(req.access.bucket()?).is_public();
    xml_ok(xml::to_xml(
        "PolicyStatus",
        &xml::PolicyStatus {
            xmlns: NS,
            is_public,
        },
    )?)
}
