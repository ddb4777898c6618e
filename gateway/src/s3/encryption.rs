//! GetBucketEncryption, PutBucketEncryption, DeleteBucketEncryption: a bucket's default
//! encryption (SSE-S3) for objects written without encryption headers.

use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::state::S3State;
use crate::xml::{self, NS};
use http::StatusCode;
use kura_index::DefaultEncryption;

const MAX_BODY: usize = 64 * 1024;

pub async fn get_bucket_encryption(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    let Some(default) = &bucket.default_encryption else {
        return Err(
            S3Error::from(ErrorCode::ServerSideEncryptionConfigurationNotFoundError)
                .with("BucketName", bucket.name.clone()),
        );
    };
    let doc = xml::ServerSideEncryptionConfiguration {
        xmlns: NS,
        rules: vec![xml::EncryptionRule {
            apply_server_side_encryption_by_default: Some(xml::EncryptionByDefault {
                sse_algorithm: default.algorithm.clone(),
                kms_master_key_id: None,
            }),
            bucket_key_enabled: Some(default.bucket_key_enabled),
        }],
    };
    xml_ok(xml::to_xml("ServerSideEncryptionConfiguration", &doc)?)
}

pub async fn put_bucket_encryption(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let body = read_small_body(&mut req, MAX_BODY).await?;
    let config: xml::ServerSideEncryptionConfiguration =
        xml::from_xml("ServerSideEncryptionConfiguration", &body)?;
    let [rule] = config.rules.as_slice() else {
        return Err(ErrorCode::MalformedXML.into());
    };
    let by_default = rule
        .apply_server_side_encryption_by_default
        .as_ref()
        .ok_or(ErrorCode::MalformedXML)?;
    match by_default.sse_algorithm.as_str() {
        "AES256" if by_default.kms_master_key_id.is_none() => {}
        "AES256" => {
            return Err(S3Error::new(
                ErrorCode::InvalidArgument,
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
            ));
        }
        kms if kms.starts_with("aws:kms") => {
            return Err(S3Error::new(
                ErrorCode::NotImplemented,
                "Server-side encryption with KMS keys is not implemented by Kura; use AES256.",
            ));
        }
        _ => return Err(ErrorCode::MalformedXML.into()),
    }
    let default = DefaultEncryption {
        algorithm: "AES256".into(),
        bucket_key_enabled: rule.bucket_key_enabled.unwrap_or(false),
    };
    state
        .index
        .update_bucket(&req.bucket, |record| {
            record.default_encryption = Some(default.clone())
        })
        .await?;
    Ok(empty(StatusCode::OK))
}

pub async fn delete_bucket_encryption(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    state
        .index
        .update_bucket(&req.bucket, |record| record.default_encryption = None)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
