//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
//! GetBucketLocation.

use super::ownership;
use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use crate::acl;
use crate::authorize;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::names::validate_bucket_name;
use crate::owner::owner;
use crate::params::{BucketListQuery, ContinuationToken};
use crate::state::S3State;
use crate::timefmt::iso8601;
use crate::xml::{self, NS};
use http::{Response, StatusCode};
use kura_index::{IndexError, ObjectLockConfig, Versioning};

pub async fn list_buckets(
    state: &S3State,
    req: S3Request,
    query: BucketListQuery,
) -> S3Result<S3Response> {
    let user = req.user();
    let after = query.continuation_token.as_ref().map(|t| t.after.as_str());
    let prefix = query.prefix.as_deref().unwrap_or("");
    // Buckets come in name order; a page starts after the token's name.
    let mut matching = state.index.list_buckets().await?.into_iter().filter(|b| {
        authorize::lists(user, b)
            && b.name.starts_with(prefix)
            && after.is_none_or(|after| b.name.as_str() > after)
            && query
                .bucket_region
                .as_deref()
                .is_none_or(|region| b.region == region)
    });
    let page: Vec<_> = matching
        .by_ref()
        .take(query.max_buckets.unwrap_or(usize::MAX))
        .collect();
    let continuation_token = match (matching.next(), page.last()) {
        (Some(_), Some(last)) => Some(ContinuationToken::encode(&last.name)),
        _ => None,
    };
    let buckets = page
        .into_iter()
        .map(|b| xml::BucketEntry {
            name: b.name,
            creation_date: iso8601(b.created_ms),
            bucket_region: b.region,
        })
        .collect();
    xml_ok(xml::to_xml(
        "ListAllMyBucketsResult",
        &xml::ListAllMyBucketsResult {
            xmlns: NS,
            owner: owner(user),
            buckets: xml::Buckets { bucket: buckets },
            continuation_token,
            prefix: query.prefix,
        },
    )?)
}

pub async fn create_bucket(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    validate_bucket_name(&req.bucket)?;
    let user = req.user().to_owned();
    let defaults = state.bucket_defaults;
    let ownership = match req.header("x-amz-object-ownership") {
        Some(value) => Some(ownership::parse_ownership(value)?),
        None => defaults.ownership().map(str::to_owned),
    };
    let object_lock = match req.header("x-amz-bucket-object-lock-enabled") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(ErrorCode::InvalidArgument.into()),
    };
    let requested = acl::from_headers(&state.index, req.headers()).await?;
    let acl = requested.map(|r| r.acl(&user, &user)).transpose()?;
    if let Some(ownership) = &ownership {
        ownership::check_acl_fits(acl.as_ref(), &user, ownership)?;
    }
    let block = defaults.public_access_block();
    if block.is_some_and(|b| b.block_public_acls) && acl.as_ref().is_some_and(acl::is_public) {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            "New buckets block public ACLs on this server.",
        ));
    }
    let body = read_small_body(&mut req, 64 * 1024).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let config: xml::CreateBucketConfiguration =
            xml::from_xml("CreateBucketConfiguration", &body)?;
        check_location(config.location_constraint.as_deref(), &state.region)?;
    }
    match state
        .index
        .create_bucket(&req.bucket, &user, &state.region, |record| {
            record.ownership = ownership;
            record.acl = acl;
            record.public_access_block = block;
            if object_lock {
                // Object Lock needs versioning, which it turns on for good.
                record.object_lock = Some(ObjectLockConfig::default());
                record.versioning = Versioning::Enabled;
            }
        })
        .await
    {
        Ok(_) => {}
        // AWS's legacy us-east-1 answers its owner's repeated CreateBucket with 200.
        Err(IndexError::BucketExists { owner }) if owner == user && state.region == "us-east-1" => {
        }
        Err(IndexError::BucketExists { owner }) if owner == user => {
            return Err(ErrorCode::BucketAlreadyOwnedByYou.into());
        }
        Err(err) => return Err(err.into()),
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("location", format!("/{}", req.bucket))
        .body(axum::body::Body::empty())
        .expect("valid headers"))
}

/// AWS quirk kept for compatibility: the default region must not be named
/// explicitly; any other region must be the server's own.
fn check_location(constraint: Option<&str>, region: &str) -> S3Result<()> {
    match constraint {
        None | Some("") if region == "us-east-1" => Ok(()),
        Some(c) if c == region && region != "us-east-1" => Ok(()),
        Some("us-east-1") if region == "us-east-1" => {
            Err(ErrorCode::InvalidLocationConstraint.into())
        }
        Some(c) if !c.is_empty() && region == "us-east-1" => {
            Err(ErrorCode::InvalidLocationConstraint.into())
        }
        _ => Err(ErrorCode::IllegalLocationConstraintException.into()),
    }
}

pub async fn head_bucket(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("x-amz-bucket-region", &bucket.region)
        .body(axum::body::Body::empty())
        .expect("valid headers"))
}

pub async fn delete_bucket(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    // As AWS does: incomplete multipart uploads do not keep a bucket from being deleted.
    if !state.index.has_objects(&req.bucket).await? {
        state.index.abort_all_uploads(&req.bucket).await?;
    }
    state.index.delete_bucket(&req.bucket).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn get_bucket_location(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    // AWS answers an empty constraint for us-east-1.
    let region = if bucket.region == "us-east-1" {
        String::new()
    } else {
        bucket.region.clone()
    };
    xml_ok(xml::to_xml(
        "LocationConstraint",
        &xml::LocationConstraint { xmlns: NS, region },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_constraints() {
        assert!(check_location(None, "us-east-1").is_ok());
        assert_eq!(
            check_location(Some("us-east-1"), "us-east-1")
                .unwrap_err()
                .code,
            ErrorCode::InvalidLocationConstraint
        );
        assert!(check_location(Some("eu-west-1"), "eu-west-1").is_ok());
        assert_eq!(
            check_location(Some("us-west-2"), "eu-west-1")
                .unwrap_err()
                .code,
            ErrorCode::IllegalLocationConstraintException
        );
    }
}
