//! Turns a request into the S3 operation it asks for: bucket and key from
//! path-style or virtual-hosted-style addressing, the operation from method,
//! path and query.

use crate::error::{ErrorCode, S3Error, S3Result};
use crate::params::{
    self, BucketListQuery, ContinuationToken, CopySource, ListQuery, MAX_PARTS, ObjectRead,
    part_number, version_id,
};
use crate::query::Query;
use http::Method;

/// Every operation Kura serves, with its parameters, typed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(strum::EnumIter))]
pub enum Endpoint {
    ListBuckets {
        query: BucketListQuery,
    },
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    PutBucketVersioning,
    GetBucketAcl,
    PutBucketAcl,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketPolicyStatus,
    GetBucketOwnershipControls,
    PutBucketOwnershipControls,
    DeleteBucketOwnershipControls,
    GetPublicAccessBlock,
    PutPublicAccessBlock,
    DeletePublicAccessBlock,
    GetBucketTagging,
    PutBucketTagging,
    DeleteBucketTagging,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    GetBucketEncryption,
    PutBucketEncryption,
    DeleteBucketEncryption,
    GetBucketLogging,
    PutBucketLogging,
    GetBucketLifecycleConfiguration,
    PutBucketLifecycleConfiguration,
    DeleteBucketLifecycle,
    /// A browser's CORS preflight (`OPTIONS` on a bucket or object): no credentials.
    PreflightRequest,
    ListObjects {
        list: ListQuery,
        marker: String,
    },
    ListObjectsV2 {
        list: ListQuery,
        continuation_token: Option<ContinuationToken>,
        start_after: Option<String>,
        fetch_owner: bool,
    },
    ListObjectVersions {
        list: ListQuery,
        key_marker: String,
        version_id_marker: String,
    },
    ListMultipartUploads {
        list: ListQuery,
        key_marker: Option<String>,
        upload_id_marker: Option<String>,
    },
    DeleteObjects,
    /// A browser's form upload (`POST` on a bucket, multipart/form-data).
    PostObject,
    PutObject,
    CopyObject {
        source: CopySource,
    },
    GetObject {
        read: ObjectRead,
    },
    HeadObject {
        read: ObjectRead,
    },
    DeleteObject {
        version_id: Option<String>,
    },
    GetObjectAcl {
        version_id: Option<String>,
    },
    PutObjectAcl {
        version_id: Option<String>,
    },
    GetObjectAttributes {
        version_id: Option<String>,
    },
    GetObjectTagging {
        version_id: Option<String>,
    },
    PutObjectTagging {
        version_id: Option<String>,
    },
    DeleteObjectTagging {
        version_id: Option<String>,
    },
    GetObjectRetention {
        version_id: Option<String>,
    },
    PutObjectRetention {
        version_id: Option<String>,
    },
    GetObjectLegalHold {
        version_id: Option<String>,
    },
    PutObjectLegalHold {
        version_id: Option<String>,
    },
    GetObjectLockConfiguration,
    PutObjectLockConfiguration,
    CreateMultipartUpload,
    UploadPart {
        upload_id: String,
        part_number: u32,
    },
    UploadPartCopy {
        upload_id: String,
        part_number: u32,
        source: CopySource,
    },
    CompleteMultipartUpload {
        upload_id: String,
    },
    AbortMultipartUpload {
        upload_id: String,
    },
    ListParts {
        upload_id: String,
        part_number_marker: u32,
        max_parts: usize,
    },
}

impl Endpoint {
    /// The operation's name as AWS spells it (logs and metrics).
    pub fn name(&self) -> &'static str {
        match self {
            Endpoint::ListBuckets { .. } => "ListBuckets",
            Endpoint::CreateBucket => "CreateBucket",
            Endpoint::HeadBucket => "HeadBucket",
            Endpoint::DeleteBucket => "DeleteBucket",
            Endpoint::GetBucketLocation => "GetBucketLocation",
            Endpoint::GetBucketVersioning => "GetBucketVersioning",
            Endpoint::PutBucketVersioning => "PutBucketVersioning",
            Endpoint::GetObjectLockConfiguration => "GetObjectLockConfiguration",
            Endpoint::PutObjectLockConfiguration => "PutObjectLockConfiguration",
            Endpoint::GetObjectRetention { .. } => "GetObjectRetention",
            Endpoint::PutObjectRetention { .. } => "PutObjectRetention",
            Endpoint::GetObjectLegalHold { .. } => "GetObjectLegalHold",
            Endpoint::PutObjectLegalHold { .. } => "PutObjectLegalHold",
            Endpoint::GetBucketAcl => "GetBucketAcl",
            Endpoint::PutBucketAcl => "PutBucketAcl",
            Endpoint::GetBucketPolicy => "GetBucketPolicy",
            Endpoint::PutBucketPolicy => "PutBucketPolicy",
            Endpoint::DeleteBucketPolicy => "DeleteBucketPolicy",
            Endpoint::GetBucketPolicyStatus => "GetBucketPolicyStatus",
            Endpoint::GetBucketOwnershipControls => "GetBucketOwnershipControls",
            Endpoint::PutBucketOwnershipControls => "PutBucketOwnershipControls",
            Endpoint::DeleteBucketOwnershipControls => "DeleteBucketOwnershipControls",
            Endpoint::GetPublicAccessBlock => "GetPublicAccessBlock",
            Endpoint::PutPublicAccessBlock => "PutPublicAccessBlock",
            Endpoint::DeletePublicAccessBlock => "DeletePublicAccessBlock",
            Endpoint::GetBucketTagging => "GetBucketTagging",
            Endpoint::PutBucketTagging => "PutBucketTagging",
            Endpoint::DeleteBucketTagging => "DeleteBucketTagging",
            Endpoint::GetBucketCors => "GetBucketCors",
            Endpoint::PutBucketCors => "PutBucketCors",
            Endpoint::DeleteBucketCors => "DeleteBucketCors",
            Endpoint::GetBucketEncryption => "GetBucketEncryption",
            Endpoint::PutBucketEncryption => "PutBucketEncryption",
            Endpoint::DeleteBucketEncryption => "DeleteBucketEncryption",
            Endpoint::GetBucketLogging => "GetBucketLogging",
            Endpoint::PutBucketLogging => "PutBucketLogging",
            Endpoint::GetBucketLifecycleConfiguration => "GetBucketLifecycleConfiguration",
            Endpoint::PutBucketLifecycleConfiguration => "PutBucketLifecycleConfiguration",
            Endpoint::DeleteBucketLifecycle => "DeleteBucketLifecycle",
            Endpoint::PreflightRequest => "PreflightRequest",
            Endpoint::ListObjects { .. } => "ListObjects",
            Endpoint::ListObjectsV2 { .. } => "ListObjectsV2",
            Endpoint::ListObjectVersions { .. } => "ListObjectVersions",
            Endpoint::ListMultipartUploads { .. } => "ListMultipartUploads",
            Endpoint::DeleteObjects => "DeleteObjects",
            Endpoint::PostObject => "PostObject",
            Endpoint::PutObject => "PutObject",
            Endpoint::CopyObject { .. } => "CopyObject",
            Endpoint::GetObject { .. } => "GetObject",
            Endpoint::HeadObject { .. } => "HeadObject",
            Endpoint::DeleteObject { .. } => "DeleteObject",
            Endpoint::GetObjectAcl { .. } => "GetObjectAcl",
            Endpoint::PutObjectAcl { .. } => "PutObjectAcl",
            Endpoint::GetObjectAttributes { .. } => "GetObjectAttributes",
            Endpoint::GetObjectTagging { .. } => "GetObjectTagging",
            Endpoint::PutObjectTagging { .. } => "PutObjectTagging",
            Endpoint::DeleteObjectTagging { .. } => "DeleteObjectTagging",
            Endpoint::CreateMultipartUpload => "CreateMultipartUpload",
            Endpoint::UploadPart { .. } => "UploadPart",
            Endpoint::UploadPartCopy { .. } => "UploadPartCopy",
            Endpoint::CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            Endpoint::AbortMultipartUpload { .. } => "AbortMultipartUpload",
            Endpoint::ListParts { .. } => "ListParts",
        }
    }
}

/// A routed request: where it points and what it asks.
#[derive(Debug, Clone)]
pub struct Route {
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub endpoint: Endpoint,
}

/// A bucket and a key, as a request names them.
pub type Location = (Option<String>, Option<String>);

/// Bucket and key from the Host header and the (still encoded) path; a path that does not
/// decode to UTF-8 is InvalidURI, as AWS answers.
pub fn locate(host: Option<&str>, domain: Option<&str>, path: &str) -> S3Result<Location> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let decoded = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| S3Error::from(ErrorCode::InvalidURI))
    };
    let host = host.map(|h| {
        h.rsplit_once(':').map_or(h, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                h
            }
        })
    });
    let vhost_bucket = match (host, domain) {
        (Some(host), Some(domain)) => host
            .strip_suffix(domain)
            .and_then(|rest| rest.strip_suffix('.'))
            .filter(|b| !b.is_empty()),
        _ => None,
    };
    if let Some(bucket) = vhost_bucket {
        let key = (!path.is_empty()).then(|| decoded(path)).transpose()?;
        return Ok((Some(bucket.to_ascii_lowercase()), key));
    }
    Ok(match path.split_once('/') {
        None if path.is_empty() => (None, None),
        None => (Some(decoded(path)?), None),
        Some((bucket, "")) => (Some(decoded(bucket)?), None),
        Some((bucket, key)) => (Some(decoded(bucket)?), Some(decoded(key)?)),
    })
}

/// The operation a request asks for; `copy_source` is its `x-amz-copy-source` header.
pub fn route(
    method: &Method,
    bucket: Option<String>,
    key: Option<String>,
    query: &Query,
    copy_source: Option<&str>,
) -> S3Result<Route> {
    let endpoint = match (&bucket, &key) {
        (None, _) => match *method {
            Method::GET => Endpoint::ListBuckets {
                query: BucketListQuery::parse(query)?,
            },
            _ => return Err(not_allowed()),
        },
        (Some(_), None) => bucket_endpoint(method, query)?,
        (Some(_), Some(_)) => object_endpoint(method, query, copy_source)?,
    };
    Ok(Route {
        bucket,
        key,
        endpoint,
    })
}

fn not_allowed() -> S3Error {
    ErrorCode::MethodNotAllowed.into()
}

/// Sub-resources Kura does not implement: answered NotImplemented, never as
/// if they were a plain bucket or object request.
const UNSUPPORTED: &[&str] = &[
    "accelerate",
    "analytics",
    "intelligent-tiering",
    "inventory",
    "metrics",
    "notification",
    "replication",
    "requestPayment",
    "website",
    "torrent",
    "restore",
    "select",
];

fn unsupported(query: &Query) -> S3Result<()> {
    match UNSUPPORTED.iter().find(|name| query.has(name)) {
        Some(name) => Err(S3Error::new(
            ErrorCode::NotImplemented,
            format!("The '{name}' subresource is not implemented by Kura."),
        )),
        None => Ok(()),
    }
}

fn bucket_endpoint(method: &Method, query: &Query) -> S3Result<Endpoint> {
    unsupported(query)?;
    let list = || ListQuery::parse(query, "max-keys");
    let text = |name: &str| query.get(name).unwrap_or("").to_owned();
    Ok(match *method {
        Method::OPTIONS => Endpoint::PreflightRequest,
        Method::GET if query.has("policyStatus") => Endpoint::GetBucketPolicyStatus,
        Method::GET if query.has("policy") => Endpoint::GetBucketPolicy,
        Method::PUT if query.has("policy") => Endpoint::PutBucketPolicy,
        Method::DELETE if query.has("policy") => Endpoint::DeleteBucketPolicy,
        Method::GET if query.has("ownershipControls") => Endpoint::GetBucketOwnershipControls,
        Method::PUT if query.has("ownershipControls") => Endpoint::PutBucketOwnershipControls,
        Method::DELETE if query.has("ownershipControls") => Endpoint::DeleteBucketOwnershipControls,
        Method::GET if query.has("publicAccessBlock") => Endpoint::GetPublicAccessBlock,
        Method::PUT if query.has("publicAccessBlock") => Endpoint::PutPublicAccessBlock,
        Method::DELETE if query.has("publicAccessBlock") => Endpoint::DeletePublicAccessBlock,
        Method::GET if query.has("encryption") => Endpoint::GetBucketEncryption,
        Method::PUT if query.has("encryption") => Endpoint::PutBucketEncryption,
        Method::DELETE if query.has("encryption") => Endpoint::DeleteBucketEncryption,
        Method::GET if query.has("lifecycle") => Endpoint::GetBucketLifecycleConfiguration,
        Method::PUT if query.has("lifecycle") => Endpoint::PutBucketLifecycleConfiguration,
        Method::DELETE if query.has("lifecycle") => Endpoint::DeleteBucketLifecycle,
        Method::GET if query.has("logging") => Endpoint::GetBucketLogging,
        Method::PUT if query.has("logging") => Endpoint::PutBucketLogging,
        Method::GET if query.has("cors") => Endpoint::GetBucketCors,
        Method::PUT if query.has("cors") => Endpoint::PutBucketCors,
        Method::DELETE if query.has("cors") => Endpoint::DeleteBucketCors,
        Method::GET if query.has("tagging") => Endpoint::GetBucketTagging,
        Method::PUT if query.has("tagging") => Endpoint::PutBucketTagging,
        Method::DELETE if query.has("tagging") => Endpoint::DeleteBucketTagging,
        Method::GET if query.has("location") => Endpoint::GetBucketLocation,
        Method::GET if query.has("versioning") => Endpoint::GetBucketVersioning,
        Method::GET if query.has("object-lock") => Endpoint::GetObjectLockConfiguration,
        Method::PUT if query.has("object-lock") => Endpoint::PutObjectLockConfiguration,
        Method::GET if query.has("acl") => Endpoint::GetBucketAcl,
        Method::GET if query.has("uploads") => {
            let key_marker = query.get("key-marker").filter(|m| !m.is_empty());
            Endpoint::ListMultipartUploads {
                list: ListQuery::parse(query, "max-uploads")?,
                // An upload id marker means nothing without a key marker.
                upload_id_marker: key_marker
                    .and(query.get("upload-id-marker"))
                    .map(str::to_owned),
                key_marker: key_marker.map(str::to_owned),
            }
        }
        Method::GET if query.has("versions") => Endpoint::ListObjectVersions {
            list: list()?,
            key_marker: text("key-marker"),
            version_id_marker: text("version-id-marker"),
        },
        Method::GET if query.get("list-type") == Some("2") => Endpoint::ListObjectsV2 {
            list: list()?,
            continuation_token: query
                .get("continuation-token")
                .map(ContinuationToken::parse)
                .transpose()?,
            start_after: query
                .get("start-after")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            fetch_owner: query.get("fetch-owner") == Some("true"),
        },
        Method::GET => Endpoint::ListObjects {
            list: list()?,
            marker: text("marker"),
        },
        Method::HEAD => Endpoint::HeadBucket,
        Method::PUT if query.has("acl") => Endpoint::PutBucketAcl,
        Method::PUT if query.has("versioning") => Endpoint::PutBucketVersioning,
        Method::PUT => Endpoint::CreateBucket,
        Method::DELETE => Endpoint::DeleteBucket,
        Method::POST if query.has("delete") => Endpoint::DeleteObjects,
        Method::POST => Endpoint::PostObject,
        _ => return Err(not_allowed()),
    })
}

fn object_endpoint(
    method: &Method,
    query: &Query,
    copy_source: Option<&str>,
) -> S3Result<Endpoint> {
    unsupported(query)?;
    let upload_id = query.get("uploadId").map(str::to_owned);
    let source = || copy_source.map(CopySource::parse).transpose();
    Ok(match (method.clone(), upload_id) {
        (Method::OPTIONS, _) => Endpoint::PreflightRequest,
        (Method::GET, _) if query.has("attributes") => Endpoint::GetObjectAttributes {
            version_id: version_id(query),
        },
        (Method::GET, _) if query.has("retention") => Endpoint::GetObjectRetention {
            version_id: version_id(query),
        },
        (Method::PUT, _) if query.has("retention") => Endpoint::PutObjectRetention {
            version_id: version_id(query),
        },
        (Method::GET, _) if query.has("legal-hold") => Endpoint::GetObjectLegalHold {
            version_id: version_id(query),
        },
        (Method::PUT, _) if query.has("legal-hold") => Endpoint::PutObjectLegalHold {
            version_id: version_id(query),
        },
        (Method::GET, _) if query.has("tagging") => Endpoint::GetObjectTagging {
            version_id: version_id(query),
        },
        (Method::PUT, _) if query.has("tagging") => Endpoint::PutObjectTagging {
            version_id: version_id(query),
        },
        (Method::DELETE, _) if query.has("tagging") => Endpoint::DeleteObjectTagging {
            version_id: version_id(query),
        },
        (Method::GET, _) if query.has("acl") => Endpoint::GetObjectAcl {
            version_id: version_id(query),
        },
        (Method::PUT, _) if query.has("acl") => Endpoint::PutObjectAcl {
            version_id: version_id(query),
        },
        (Method::GET, Some(upload_id)) => Endpoint::ListParts {
            upload_id,
            part_number_marker: u32::try_from(params::count(query, "part-number-marker", 0)?)
                .unwrap_or(u32::MAX),
            max_parts: params::count(query, "max-parts", MAX_PARTS)?.min(MAX_PARTS),
        },
        (Method::GET, None) => Endpoint::GetObject {
            read: ObjectRead::parse(query)?,
        },
        (Method::HEAD, _) => Endpoint::HeadObject {
            read: ObjectRead::parse(query)?,
        },
        (Method::PUT, Some(upload_id)) => {
            let part_number = part_number(query.get("partNumber").unwrap_or(""))?;
            match source()? {
                Some(source) => Endpoint::UploadPartCopy {
                    upload_id,
                    part_number,
                    source,
                },
                None => Endpoint::UploadPart {
                    upload_id,
                    part_number,
                },
            }
        }
        (Method::PUT, None) => match source()? {
            Some(source) => Endpoint::CopyObject { source },
            None => Endpoint::PutObject,
        },
        (Method::POST, None) if query.has("uploads") => Endpoint::CreateMultipartUpload,
        (Method::POST, Some(upload_id)) => Endpoint::CompleteMultipartUpload { upload_id },
        (Method::DELETE, Some(upload_id)) => Endpoint::AbortMultipartUpload { upload_id },
        (Method::DELETE, None) => Endpoint::DeleteObject {
            version_id: version_id(query),
        },
        _ => return Err(not_allowed()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_and_virtual_host() {
        let locate = |host, domain, path| locate(host, domain, path).unwrap();
        assert_eq!(
            locate(Some("h:9000"), None, "/b/a%20b/c"),
            (Some("b".into()), Some("a b/c".into()))
        );
        assert_eq!(locate(Some("h"), None, "/b/"), (Some("b".into()), None));
        assert_eq!(locate(Some("h"), None, "/"), (None, None));
        assert_eq!(
            locate(Some("pics.s3.test:9000"), Some("s3.test"), "/x/y+z"),
            (Some("pics".into()), Some("x/y+z".into()))
        );
        assert_eq!(
            locate(Some("s3.test"), Some("s3.test"), "/pics/k"),
            (Some("pics".into()), Some("k".into()))
        );
        assert_eq!(
            super::locate(Some("h"), None, "/b/%FF").unwrap_err().code,
            ErrorCode::InvalidURI
        );
    }

    #[test]
    fn operations_from_method_and_query() {
        let q = |s: &str| Query::parse(Some(s));
        let b = |m: Method, query: &str| {
            route(&m, Some("b".into()), None, &q(query), None)
                .unwrap()
                .endpoint
        };
        let o = |m: Method, query: &str, copy: Option<&str>| {
            route(&m, Some("b".into()), Some("k".into()), &q(query), copy)
                .unwrap()
                .endpoint
        };
        assert!(matches!(
            b(Method::GET, "list-type=2&prefix=a"),
            Endpoint::ListObjectsV2 { list, .. } if list.prefix == "a"
        ));
        assert!(matches!(
            b(Method::GET, "uploads&upload-id-marker=u"),
            Endpoint::ListMultipartUploads {
                upload_id_marker: None,
                ..
            }
        ));
        assert_eq!(b(Method::POST, "delete"), Endpoint::DeleteObjects);
        assert_eq!(
            o(Method::POST, "uploads", None),
            Endpoint::CreateMultipartUpload
        );
        let source = CopySource {
            bucket: "src".into(),
            key: "k".into(),
            version_id: None,
        };
        assert_eq!(
            o(Method::PUT, "partNumber=2&uploadId=u", Some("src/k")),
            Endpoint::UploadPartCopy {
                upload_id: "u".into(),
                part_number: 2,
                source: source.clone(),
            }
        );
        assert_eq!(
            o(Method::PUT, "", Some("/src/k")),
            Endpoint::CopyObject { source }
        );
        let refused = |m: Method, key: Option<&str>, query: &str| {
            route(&m, Some("b".into()), key.map(Into::into), &q(query), None)
                .unwrap_err()
                .code
        };
        assert_eq!(
            refused(Method::GET, None, "website"),
            ErrorCode::NotImplemented
        );
        assert_eq!(b(Method::GET, "policy"), Endpoint::GetBucketPolicy);
        assert_eq!(
            b(Method::GET, "policyStatus"),
            Endpoint::GetBucketPolicyStatus
        );
        assert_eq!(
            refused(Method::GET, None, "max-keys=-1"),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            refused(Method::PUT, Some("k"), "uploadId=u&partNumber=0"),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            refused(Method::GET, Some("k"), "uploadId=u&max-parts=x"),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            Query::parse(Some("prefix=a+b%2Bc&x")).get("prefix"),
            Some("a b+c")
        );
    }
}
