//! One place per S3 operation: each `Endpoint` goes to its handler.

use super::{S3Request, S3Response, bucket, copy, delete, get, list, multipart, put};
use crate::error::S3Result;
use crate::router::Endpoint;
use crate::state::S3State;

pub async fn run(state: &S3State, endpoint: Endpoint, req: S3Request) -> S3Result<S3Response> {
    match endpoint {
        Endpoint::ListBuckets => bucket::list_buckets(state, req).await,
        Endpoint::CreateBucket => bucket::create_bucket(state, req).await,
        Endpoint::HeadBucket => bucket::head_bucket(state, req).await,
        Endpoint::DeleteBucket => bucket::delete_bucket(state, req).await,
        Endpoint::GetBucketLocation => bucket::get_bucket_location(state, req).await,
        Endpoint::GetBucketVersioning => bucket::get_bucket_versioning(state, req).await,
        Endpoint::GetBucketAcl => bucket::get_bucket_acl(state, req).await,
        Endpoint::PutBucketAcl => bucket::put_bucket_acl(state, req).await,
        Endpoint::ListObjects => list::list_objects(state, req).await,
        Endpoint::ListObjectsV2 => list::list_objects_v2(state, req).await,
        Endpoint::ListObjectVersions => list::list_object_versions(state, req).await,
        Endpoint::ListMultipartUploads => multipart::list_multipart_uploads(state, req).await,
        Endpoint::DeleteObjects => delete::delete_objects(state, req).await,
        Endpoint::PutObject => put::put_object(state, req).await,
        Endpoint::CopyObject => copy::copy_object(state, req).await,
        Endpoint::GetObject => get::get_object(state, req, false).await,
        Endpoint::HeadObject => get::get_object(state, req, true).await,
        Endpoint::DeleteObject => delete::delete_object(state, req).await,
        Endpoint::GetObjectAcl => get::get_object_acl(state, req).await,
        Endpoint::PutObjectAcl => get::put_object_acl(state, req).await,
        Endpoint::CreateMultipartUpload => multipart::create_multipart_upload(state, req).await,
        Endpoint::UploadPart {
            upload_id,
            part_number,
        } => multipart::upload_part(state, req, &upload_id, &part_number).await,
        Endpoint::UploadPartCopy {
            upload_id,
            part_number,
        } => copy::upload_part_copy(state, req, &upload_id, &part_number).await,
        Endpoint::CompleteMultipartUpload { upload_id } => {
            multipart::complete_multipart_upload(state, req, &upload_id).await
        }
        Endpoint::AbortMultipartUpload { upload_id } => {
            multipart::abort_multipart_upload(state, req, &upload_id).await
        }
        Endpoint::ListParts { upload_id } => multipart::list_parts(state, req, &upload_id).await,
    }
}
