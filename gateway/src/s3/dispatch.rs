//! One place per S3 operation: each `Endpoint` goes to its handler, with its parameters.

use super::request::S3Request;
use super::response::S3Response;
use super::{
    acl, attributes, bucket, copy, cors, delete, encryption, get, lifecycle, list, logging,
    multipart, object_lock, ownership, policy, post, public_access, put, tagging, versioning,
};
use crate::error::S3Result;
use crate::router::Endpoint;
use crate::state::S3State;

/// Runs an authorized request (`req.access` says what it may touch).
pub async fn run(state: &S3State, endpoint: Endpoint, req: S3Request) -> S3Result<S3Response> {
    match endpoint {
        Endpoint::ListBuckets { query } => bucket::list_buckets(state, req, query).await,
        Endpoint::CreateBucket => bucket::create_bucket(state, req).await,
        Endpoint::HeadBucket => bucket::head_bucket(req).await,
        Endpoint::DeleteBucket => bucket::delete_bucket(state, req).await,
        Endpoint::GetBucketLocation => bucket::get_bucket_location(req).await,
        Endpoint::GetBucketVersioning => versioning::get_bucket_versioning(req).await,
        Endpoint::PutBucketVersioning => versioning::put_bucket_versioning(state, req).await,
        Endpoint::GetObjectLockConfiguration => {
            object_lock::get_object_lock_configuration(req).await
        }
        Endpoint::PutObjectLockConfiguration => {
            object_lock::put_object_lock_configuration(state, req).await
        }
        Endpoint::GetObjectRetention { version_id } => {
            object_lock::get_object_retention(state, req, version_id.as_deref()).await
        }
        Endpoint::PutObjectRetention { version_id } => {
            object_lock::put_object_retention(state, req, version_id.as_deref()).await
        }
        Endpoint::GetObjectLegalHold { version_id } => {
            object_lock::get_object_legal_hold(state, req, version_id.as_deref()).await
        }
        Endpoint::PutObjectLegalHold { version_id } => {
            object_lock::put_object_legal_hold(state, req, version_id.as_deref()).await
        }
        Endpoint::GetBucketAcl => acl::get_bucket_acl(req).await,
        Endpoint::PutBucketAcl => acl::put_bucket_acl(state, req).await,
        Endpoint::GetBucketPolicy => policy::get_bucket_policy(req).await,
        Endpoint::PutBucketPolicy => policy::put_bucket_policy(state, req).await,
        Endpoint::DeleteBucketPolicy => policy::delete_bucket_policy(state, req).await,
        Endpoint::GetBucketPolicyStatus => policy::get_bucket_policy_status(req).await,
        Endpoint::GetBucketOwnershipControls => ownership::get_ownership_controls(req).await,
        Endpoint::PutBucketOwnershipControls => ownership::put_ownership_controls(state, req).await,
        Endpoint::DeleteBucketOwnershipControls => {
            ownership::delete_ownership_controls(state, req).await
        }
        Endpoint::GetPublicAccessBlock => public_access::get_public_access_block(req).await,
        Endpoint::PutPublicAccessBlock => public_access::put_public_access_block(state, req).await,
        Endpoint::DeletePublicAccessBlock => {
            public_access::delete_public_access_block(state, req).await
        }
        Endpoint::GetBucketEncryption => encryption::get_bucket_encryption(req).await,
        Endpoint::PutBucketEncryption => encryption::put_bucket_encryption(state, req).await,
        Endpoint::DeleteBucketEncryption => encryption::delete_bucket_encryption(state, req).await,
        Endpoint::GetBucketLifecycleConfiguration => lifecycle::get_configuration(req).await,
        Endpoint::PutBucketLifecycleConfiguration => lifecycle::put_configuration(state, req).await,
        Endpoint::DeleteBucketLifecycle => lifecycle::delete_configuration(state, req).await,
        Endpoint::GetBucketLogging => logging::get_bucket_logging(req).await,
        Endpoint::PutBucketLogging => logging::put_bucket_logging(state, req).await,
        Endpoint::GetBucketCors => cors::get_bucket_cors(req).await,
        Endpoint::PutBucketCors => cors::put_bucket_cors(state, req).await,
        Endpoint::DeleteBucketCors => cors::delete_bucket_cors(state, req).await,
        Endpoint::PreflightRequest => cors::preflight(req).await,
        Endpoint::GetBucketTagging => tagging::get_bucket_tagging(req).await,
        Endpoint::PutBucketTagging => tagging::put_bucket_tagging(state, req).await,
        Endpoint::DeleteBucketTagging => tagging::delete_bucket_tagging(state, req).await,
        Endpoint::ListObjects { list, marker } => {
            list::list_objects(state, req, &list, &marker).await
        }
        Endpoint::ListObjectsV2 {
            list,
            continuation_token,
            start_after,
            fetch_owner,
        } => {
            let token = continuation_token.as_ref();
            list::list_objects_v2(state, req, &list, token, start_after, fetch_owner).await
        }
        Endpoint::ListObjectVersions {
            list,
            key_marker,
            version_id_marker,
        } => list::list_object_versions(state, req, &list, &key_marker, version_id_marker).await,
        Endpoint::ListMultipartUploads {
            list,
            key_marker,
            upload_id_marker,
        } => {
            let markers = (key_marker.as_deref(), upload_id_marker.as_deref());
            multipart::list_multipart_uploads(state, req, &list, markers).await
        }
        Endpoint::DeleteObjects => delete::delete_objects(state, req).await,
        Endpoint::PostObject => post::post_object(state, req).await,
        Endpoint::PutObject => put::put_object(state, req).await,
        Endpoint::CopyObject { source } => copy::copy_object(state, req, &source).await,
        Endpoint::GetObject { read } => get::get_object(state, req, &read, false).await,
        Endpoint::HeadObject { read } => get::get_object(state, req, &read, true).await,
        Endpoint::DeleteObject { version_id } => {
            delete::delete_object(state, req, version_id.as_deref()).await
        }
        Endpoint::GetObjectAcl { version_id } => {
            acl::get_object_acl(state, req, version_id.as_deref()).await
        }
        Endpoint::PutObjectAcl { version_id } => {
            acl::put_object_acl(state, req, version_id.as_deref()).await
        }
        Endpoint::GetObjectAttributes { version_id } => {
            attributes::get_object_attributes(state, req, version_id.as_deref()).await
        }
        Endpoint::GetObjectTagging { version_id } => {
            tagging::get_object_tagging(state, req, version_id.as_deref()).await
        }
        Endpoint::PutObjectTagging { version_id } => {
            tagging::put_object_tagging(state, req, version_id.as_deref()).await
        }
        Endpoint::DeleteObjectTagging { version_id } => {
            tagging::delete_object_tagging(state, req, version_id.as_deref()).await
        }
        Endpoint::CreateMultipartUpload => multipart::create_multipart_upload(state, req).await,
        Endpoint::UploadPart {
            upload_id,
            part_number,
        } => multipart::upload_part(state, req, &upload_id, part_number).await,
        Endpoint::UploadPartCopy {
            upload_id,
            part_number,
            source,
        } => copy::upload_part_copy(state, req, &upload_id, part_number, &source).await,
        Endpoint::CompleteMultipartUpload { upload_id } => {
            multipart::complete_multipart_upload(state, req, &upload_id).await
        }
        Endpoint::AbortMultipartUpload { upload_id } => {
            multipart::abort_multipart_upload(state, req, &upload_id).await
        }
        Endpoint::ListParts {
            upload_id,
            part_number_marker,
            max_parts,
        } => multipart::list_parts(state, req, &upload_id, part_number_marker, max_parts).await,
    }
}
