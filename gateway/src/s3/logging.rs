//! GetBucketLogging and PutBucketLogging (server access logging's configuration), and
//! the delivery of one batch of log records as an object of the target bucket.

use super::put::simple_version;
use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use super::store::{Destination, or_discard, write_blob};
use crate::access_log::Batch;
use crate::acl;
use crate::authorize::allows_log_delivery;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::sse;
use crate::state::S3State;
use crate::xml::{self, NS};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use kura_index::{BucketLogging, BucketRecord, IndexError, LogKeyFormat, ObjectMeta};
use md5::{Digest, Md5};

const MAX_BODY: usize = 64 * 1024;

pub async fn get_bucket_logging(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    let logging_enabled = bucket.logging.as_ref().map(|l| xml::LoggingEnabled {
        target_bucket: l.target_bucket.clone(),
        target_prefix: l.target_prefix.clone(),
        target_grants: (!l.grants.is_empty()).then(|| xml::TargetGrants {
            grants: acl::grant_elements(&l.grants),
        }),
        target_object_key_format: match l.key_format {
            LogKeyFormat::Simple => xml::TargetObjectKeyFormat {
                simple_prefix: Some(xml::Empty::default()),
                partitioned_prefix: None,
            },
            LogKeyFormat::Partitioned { event_time } => xml::TargetObjectKeyFormat {
                simple_prefix: None,
                partitioned_prefix: Some(xml::PartitionedPrefix {
                    partition_date_source: Some(
                        if event_time {
                            "EventTime"
                        } else {
                            "DeliveryTime"
                        }
                        .to_owned(),
                    ),
                }),
            },
        },
    });
    xml_ok(xml::to_xml(
        "BucketLoggingStatus",
        &xml::BucketLoggingStatus {
            xmlns: NS,
            logging_enabled,
        },
    )?)
}

/// Turns logging on (a `LoggingEnabled` whose target passes [`check_target`]) or off.
pub async fn put_bucket_logging(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let body = read_small_body(&mut req, MAX_BODY).await?;
    let status: xml::BucketLoggingStatusRequest = xml::from_xml("BucketLoggingStatus", &body)?;
    let logging = match status.logging_enabled {
        None => None,
        Some(enabled) => {
            let logging = parse(state, enabled).await?;
            let source = req.access.bucket()?;
            let target = match state.index.bucket(&logging.target_bucket).await {
                Err(IndexError::NoSuchBucket) => {
                    return Err(invalid_target(
                        "The target bucket for logging does not exist",
                    ));
                }
                other => other?,
            };
            check_target(source, &target, &logging)?;
            Some(logging)
        }
    };
    state
        .index
        .update_bucket(&req.bucket, |record| record.logging = logging.clone())
        .await?;
    Ok(empty(StatusCode::OK))
}

async fn parse(state: &S3State, enabled: xml::LoggingEnabledRequest) -> S3Result<BucketLogging> {
    let key_format = match enabled.target_object_key_format {
        None
        | Some(xml::TargetObjectKeyFormat {
            simple_prefix: Some(_),
            partitioned_prefix: None,
        }) => LogKeyFormat::Simple,
        Some(xml::TargetObjectKeyFormat {
            simple_prefix: None,
            partitioned_prefix: Some(partitioned),
        }) => match partitioned.partition_date_source.as_deref() {
            Some("EventTime") => LogKeyFormat::Partitioned { event_time: true },
            None | Some("DeliveryTime") => LogKeyFormat::Partitioned { event_time: false },
            Some(_) => return Err(ErrorCode::MalformedXML.into()),
        },
        Some(_) => return Err(ErrorCode::MalformedXML.into()),
    };
    let requested = enabled.target_grants.map(|g| g.grant).unwrap_or_default();
    let grants = acl::resolve_grants(&state.index, requested, ErrorCode::MalformedXML).await?;
    // The permissions a log object can be given (S3's BucketLogsPermission).
    if grants
        .iter()
        .any(|g| !matches!(g.permission.as_str(), "FULL_CONTROL" | "READ" | "WRITE"))
    {
        return Err(ErrorCode::MalformedXML.into());
    }
    Ok(BucketLogging {
        target_bucket: enabled.target_bucket,
        target_prefix: enabled.target_prefix,
        key_format,
        grants,
    })
}

fn invalid_target(message: &str) -> S3Error {
    S3Error::new(ErrorCode::InvalidTargetBucketForLogging, message)
}

/// AWS's rules for a target bucket: the source's owner owns it (the source itself will
/// do), its default encryption is not SSE-KMS, it has no Object Lock default retention,
/// it allows ACLs if there are grants to give, and it lets the logging service write
/// under the prefix (see `allows_log_delivery`).
fn check_target(
    source: &BucketRecord,
    target: &BucketRecord,
    logging: &BucketLogging,
) -> S3Result<()> {
    if target.owner != source.owner {
        return Err(invalid_target(
            "The owner for the bucket to be logged and the target bucket must be the same.",
        ));
    }
    if target
        .default_encryption
        .as_ref()
        .is_some_and(|e| e.algorithm != sse::ALGORITHM)
    {
        return Err(invalid_target(
            "Server access logs can only be delivered to a target bucket whose default encryption is SSE-S3 (AES256).",
        ));
    }
    if target
        .object_lock
        .as_ref()
        .is_some_and(|lock| lock.default_retention.is_some())
    {
        return Err(invalid_target(
            "The target bucket for logging must not have an Object Lock default retention period.",
        ));
    }
    if !logging.grants.is_empty() && acl::disabled(target) {
        return Err(S3Error::new(
            ErrorCode::AccessControlListNotSupported,
            "The target bucket for logging does not allow ACLs: TargetGrants cannot be applied.",
        ));
    }
    if !allows_log_delivery(target, &logging.target_prefix, source) {
        return Err(invalid_target(
            "The target bucket's policy must allow the service logging.s3.amazonaws.com s3:PutObject under the target prefix (or its ACL grant the LogDelivery group WRITE).",
        ));
    }
    Ok(())
}

/// Writes `batch` as a new object of its target bucket, as the logging service would:
/// only while the target still exists and passes [`check_target`] for the source, in the
/// target's default encryption, owned by the target's owner with the configuration's
/// grants, within its quota.
pub async fn deliver(state: &S3State, batch: &Batch) -> S3Result<()> {
    let source = state.index.bucket(&batch.source).await?;
    let target = state.index.bucket(&batch.logging.target_bucket).await?;
    check_target(&source, &target, &batch.logging)?;
    let key = batch.object_key(&source, state.index.now_ms());
    let body = Bytes::from(batch.lines.clone());
    state
        .index
        .check_room(&target, None, body.len() as u64)
        .await?;
    let (data_key, encryption) =
        sse::for_write(&HeaderMap::new(), &target, &state.master_key)?.unzip();
    let dest = Destination::object(&target, &key);
    let md5: [u8; 16] = Md5::digest(&body).into();
    let data = futures::stream::iter([Ok(body)]);
    let blob = write_blob(state, dest, data, u64::MAX, |_| {}, data_key.as_ref()).await?;
    let grants = &batch.logging.grants;
    let acl = (!grants.is_empty()).then(|| {
        let mut acl = acl::effective(None, &target.owner);
        acl.grants.extend(grants.iter().cloned());
        acl
    });
    let meta = ObjectMeta {
        headers: vec![("content-type".into(), "text/plain".into())],
        encryption,
        acl,
        ..ObjectMeta::default()
    };
    let version = simple_version(&blob, md5, meta, None, &target.owner);
    let put = state
        .index
        .put_object(&target.name, &key, version, |_| Ok::<_, S3Error>(()))
        .await;
    or_discard(state, dest, &blob, put).await?;
    Ok(())
}
