//! GetObjectTagging, PutObjectTagging, DeleteObjectTagging, GetBucketTagging,
//! PutBucketTagging, DeleteBucketTagging.

use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use super::versioning::{insert_version_id, object_version};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::state::S3State;
use crate::tags::{self, MAX_BUCKET_TAGS, MAX_OBJECT_TAGS, Tags};
use crate::xml::{self, NS};
use http::StatusCode;

/// A tagging document is small: 50 tags of 128 + 256 characters.
const MAX_BODY: usize = 64 * 1024;

fn document(tags: &Tags) -> S3Result<S3Response> {
    // A tag set has no order; listed by key, as radosgw lists it.
    let mut tag: Vec<xml::Tag> = tags
        .iter()
        .map(|(key, value)| xml::Tag {
            key: key.clone(),
            value: value.clone(),
        })
        .collect();
    tag.sort_by(|a, b| a.key.cmp(&b.key));
    xml_ok(xml::to_xml(
        "Tagging",
        &xml::Tagging {
            xmlns: NS,
            tag_set: xml::TagSet { tag },
        },
    )?)
}

/// The tag set a Put call sends, checked against `max`.
async fn requested(req: &mut S3Request, max: usize) -> S3Result<Tags> {
    let body = read_small_body(req, MAX_BODY).await?;
    tags::from_document(&body, max)
}

fn no_such_key(req: &S3Request) -> S3Error {
    S3Error::from(ErrorCode::NoSuchKey).with("Key", req.key.clone())
}

pub async fn get_object_tagging(
    state: &S3State,
    req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    let version = object_version(state, &req, version_id).await?;
    let mut response = document(&version.meta.tags)?;
    insert_version_id(
        response.headers_mut(),
        "x-amz-version-id",
        &version.version_id,
    );
    Ok(response)
}

pub async fn put_object_tagging(
    state: &S3State,
    mut req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    object_version(state, &req, version_id).await?;
    let tags = requested(&mut req, MAX_OBJECT_TAGS).await?;
    set_object_tags(state, &req, version_id, tags, StatusCode::OK).await
}

pub async fn delete_object_tagging(
    state: &S3State,
    req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    object_version(state, &req, version_id).await?;
    set_object_tags(state, &req, version_id, Tags::new(), StatusCode::NO_CONTENT).await
}

/// Sets the tags of a version; the answer (`status`) names the version.
async fn set_object_tags(
    state: &S3State,
    req: &S3Request,
    version_id: Option<&str>,
    tags: Tags,
    status: StatusCode,
) -> S3Result<S3Response> {
    let changed = state
        .index
        .update_version(&req.bucket, &req.key, version_id, |version| {
            version.meta.tags = tags.clone();
            Ok::<_, S3Error>(())
        })
        .await?
        .ok_or_else(|| no_such_key(req))?;
    let mut response = empty(status);
    insert_version_id(
        response.headers_mut(),
        "x-amz-version-id",
        &changed.version_id,
    );
    Ok(response)
}

pub async fn get_bucket_tagging(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    if bucket.tags.is_empty() {
        return Err(S3Error::from(ErrorCode::NoSuchTagSet).with("BucketName", bucket.name.clone()));
    }
    document(&bucket.tags)
}

pub async fn put_bucket_tagging(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let tags = requested(&mut req, MAX_BUCKET_TAGS).await?;
    state
        .index
        .update_bucket(&req.bucket, |record| record.tags = tags.clone())
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn delete_bucket_tagging(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    state
        .index
        .update_bucket(&req.bucket, |record| record.tags.clear())
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
