//! GetBucketOwnershipControls, PutBucketOwnershipControls, DeleteBucketOwnershipControls.

use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use crate::acl::{self, BUCKET_OWNER_ENFORCED, BUCKET_OWNER_PREFERRED, OBJECT_WRITER};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::state::S3State;
use crate::xml::{self, NS};
use http::StatusCode;
use kura_index::Acl;

/// The value of an Object Ownership setting, as `x-amz-object-ownership` and
/// OwnershipControls give it.
pub fn parse_ownership(value: &str) -> S3Result<String> {
    match value {
        BUCKET_OWNER_ENFORCED | BUCKET_OWNER_PREFERRED | OBJECT_WRITER => Ok(value.to_owned()),
        other => Err(S3Error::new(
            ErrorCode::InvalidArgument,
            format!("Invalid x-amz-object-ownership header: {other}"),
        )
        .with("ArgumentName", "x-amz-object-ownership")
        .with("ArgumentValue", other.to_owned())),
    }
}

/// BucketOwnerEnforced disables ACLs: a bucket whose ACL grants anyone but its owner must
/// be reset to private first, as AWS insists.
pub fn check_acl_fits(acl: Option<&Acl>, owner: &str, ownership: &str) -> S3Result<()> {
    let owner_only = acl::effective(acl, owner) == acl::effective(None, owner);
    if ownership == BUCKET_OWNER_ENFORCED && !owner_only {
        return Err(ErrorCode::InvalidBucketAclWithObjectOwnership.into());
    }
    Ok(())
}

pub async fn get_ownership_controls(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    let Some(ownership) = &bucket.ownership else {
        return Err(S3Error::from(ErrorCode::OwnershipControlsNotFoundError)
            .with("BucketName", bucket.name.clone()));
    };
    xml_ok(xml::to_xml(
        "OwnershipControls",
        &xml::OwnershipControls {
            xmlns: NS,
            rule: vec![xml::OwnershipControlsRule {
                object_ownership: ownership.clone(),
            }],
        },
    )?)
}

pub async fn put_ownership_controls(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?.clone();
    let body = read_small_body(&mut req, 16 * 1024).await?;
    let controls: xml::OwnershipControls = xml::from_xml("OwnershipControls", &body)?;
    let [rule] = controls.rule.as_slice() else {
        return Err(S3Error::new(
            ErrorCode::MalformedXML,
            "OwnershipControls must have exactly one Rule.",
        ));
    };
    let ownership = parse_ownership(&rule.object_ownership)
        .map_err(|_| S3Error::from(ErrorCode::MalformedXML))?;
    check_acl_fits(bucket.acl.as_ref(), &bucket.owner, &ownership)?;
    state
        .index
        .update_bucket(&bucket.name, |record| {
            record.ownership = Some(ownership.clone())
        })
        .await?;
    Ok(empty(StatusCode::OK))
}

pub async fn delete_ownership_controls(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    state
        .index
        .update_bucket(&req.bucket, |record| record.ownership = None)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
