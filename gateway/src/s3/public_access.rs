//! GetPublicAccessBlock, PutPublicAccessBlock, DeletePublicAccessBlock.

use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::state::S3State;
use crate::xml::{self, NS};
use http::StatusCode;
use kura_index::PublicAccessBlock;

pub async fn get_public_access_block(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    let Some(block) = bucket.public_access_block else {
        return Err(
            S3Error::from(ErrorCode::NoSuchPublicAccessBlockConfiguration)
                .with("BucketName", bucket.name.clone()),
        );
    };
    xml_ok(xml::to_xml(
        "PublicAccessBlockConfiguration",
        &xml::PublicAccessBlockConfiguration {
            xmlns: NS,
            block_public_acls: block.block_public_acls,
            ignore_public_acls: block.ignore_public_acls,
            block_public_policy: block.block_public_policy,
            restrict_public_buckets: block.restrict_public_buckets,
        },
    )?)
}

pub async fn put_public_access_block(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let body = read_small_body(&mut req, 16 * 1024).await?;
    let config: xml::PublicAccessBlockConfiguration =
        xml::from_xml("PublicAccessBlockConfiguration", &body)?;
    let block = PublicAccessBlock {
        block_public_acls: config.block_public_acls,
        ignore_public_acls: config.ignore_public_acls,
        block_public_policy: config.block_public_policy,
        restrict_public_buckets: config.restrict_public_buckets,
    };
    state
        .index
        .update_bucket(&req.bucket, |record| {
            record.public_access_block = Some(block)
        })
        .await?;
    Ok(empty(StatusCode::OK))
}

pub async fn delete_public_access_block(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    state
        .index
        .update_bucket(&req.bucket, |record| record.public_access_block = None)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
