//! GetBucketLifecycleConfiguration, PutBucketLifecycleConfiguration, DeleteBucketLifecycle.
//! (The rules are applied by the lifecycle worker, in `background`.)

use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::lifecycle::{rules_from_xml, rules_to_xml};
use crate::state::S3State;
use crate::xml;
use http::StatusCode;

/// 1000 rules fit well within this.
const MAX_BODY: usize = 2 * 1024 * 1024;

pub async fn get_configuration(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    let Some(rules) = &bucket.lifecycle else {
        return Err(S3Error::from(ErrorCode::NoSuchLifecycleConfiguration)
            .with("BucketName", bucket.name.clone()));
    };
    xml_ok(xml::to_xml("LifecycleConfiguration", &rules_to_xml(rules))?)
}

pub async fn put_configuration(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let body = read_small_body(&mut req, MAX_BODY).await?;
    let config: xml::LifecycleConfiguration = xml::from_xml("LifecycleConfiguration", &body)?;
    let rules = rules_from_xml(config)?;
    state
        .index
        .update_bucket(&req.bucket, |record| record.lifecycle = Some(rules.clone()))
        .await?;
    Ok(empty(StatusCode::OK))
}

pub async fn delete_configuration(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    state
        .index
        .update_bucket(&req.bucket, |record| record.lifecycle = None)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
