//! GetBucketEncryption, PutBucketEncryption, DeleteBucketEncryption: a bucket's default
//! encryption (SSE-S3 or SSE-KMS) for objects written without encryption headers.

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
                kms_master_key_id: default.kms_master_key_id.clone(),
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
    let kms_key = by_default.kms_master_key_id.clone();
    match (by_default.sse_algorithm.as_str(), &kms_key) {
        ("AES256", None) => {}
        ("AES256", Some(_)) => {
            return Err(S3Error::new(
                ErrorCode::InvalidArgument,
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
            ));
        }
        ("aws:kms", kms_key) => {
            if let Some(id) = kms_key {
                state.master_key.check_kms_key_id(id)?;
            }
        }
        ("aws:kms:dsse", _) => {
            return Err(S3Error::new(
                ErrorCode::NotImplemented,
                "Dual-layer server-side encryption (aws:kms:dsse) is not implemented by Kura; use aws:kms or AES256.",
            ));
        }
        _ => return Err(ErrorCode::MalformedXML.into()),
    }
    let default = DefaultEncryption {
        algorithm: by_default.sse_algorithm.clone(),
        kms_master_key_id: kms_key,
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
