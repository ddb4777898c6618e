//! Turns a request into the S3 operation it asks for: bucket and key from
//! path-style or virtual-hosted-style addressing, the operation from method,
//! path and query.

use crate::error::{ErrorCode, S3Error, S3Result};
use http::Method;

/// Query parameters, decoded, in request order.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_query(name), decode_query(value))
            })
            .collect();
        Query(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

fn decode_query(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Every operation Kura serves, with the parameters that select it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    GetBucketAcl,
    PutBucketAcl,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    ListMultipartUploads,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    GetObjectAcl,
    PutObjectAcl,
    CreateMultipartUpload,
    UploadPart {
        upload_id: String,
        part_number: String,
    },
    UploadPartCopy {
        upload_id: String,
        part_number: String,
    },
    CompleteMultipartUpload {
        upload_id: String,
    },
    AbortMultipartUpload {
        upload_id: String,
    },
    ListParts {
        upload_id: String,
    },
}

impl Endpoint {
    /// The operation's name as AWS spells it (logs and metrics).
    pub fn name(&self) -> &'static str {
        match self {
            Endpoint::ListBuckets => "ListBuckets",
            Endpoint::CreateBucket => "CreateBucket",
            Endpoint::HeadBucket => "HeadBucket",
            Endpoint::DeleteBucket => "DeleteBucket",
            Endpoint::GetBucketLocation => "GetBucketLocation",
            Endpoint::GetBucketVersioning => "GetBucketVersioning",
            Endpoint::GetBucketAcl => "GetBucketAcl",
            Endpoint::PutBucketAcl => "PutBucketAcl",
            Endpoint::ListObjects => "ListObjects",
            Endpoint::ListObjectsV2 => "ListObjectsV2",
            Endpoint::ListObjectVersions => "ListObjectVersions",
            Endpoint::ListMultipartUploads => "ListMultipartUploads",
            Endpoint::DeleteObjects => "DeleteObjects",
            Endpoint::PutObject => "PutObject",
            Endpoint::CopyObject => "CopyObject",
            Endpoint::GetObject => "GetObject",
            Endpoint::HeadObject => "HeadObject",
            Endpoint::DeleteObject => "DeleteObject",
            Endpoint::GetObjectAcl => "GetObjectAcl",
            Endpoint::PutObjectAcl => "PutObjectAcl",
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

/// Bucket and key from the Host header and the (still encoded) path.
pub fn locate(
    host: Option<&str>,
    domain: Option<&str>,
    path: &str,
) -> (Option<String>, Option<String>) {
    let path = path.strip_prefix('/').unwrap_or(path);
    let decoded = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
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
        let key = (!path.is_empty()).then(|| decoded(path));
        return (Some(bucket.to_ascii_lowercase()), key);
    }
    match path.split_once('/') {
        None if path.is_empty() => (None, None),
        None => (Some(decoded(path)), None),
        Some((bucket, "")) => (Some(decoded(bucket)), None),
        Some((bucket, key)) => (Some(decoded(bucket)), Some(decoded(key))),
    }
}

pub fn route(
    method: &Method,
    bucket: Option<String>,
    key: Option<String>,
    query: &Query,
    copy_source: bool,
) -> S3Result<Route> {
    let endpoint = match (&bucket, &key) {
        (None, _) => match *method {
            Method::GET => Endpoint::ListBuckets,
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
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "tagging",
    "website",
    "retention",
    "legal-hold",
    "torrent",
    "restore",
    "select",
    "attributes",
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
    Ok(match *method {
        Method::GET if query.has("location") => Endpoint::GetBucketLocation,
        Method::GET if query.has("versioning") => Endpoint::GetBucketVersioning,
        Method::GET if query.has("acl") => Endpoint::GetBucketAcl,
        Method::GET if query.has("uploads") => Endpoint::ListMultipartUploads,
        Method::GET if query.has("versions") => Endpoint::ListObjectVersions,
        Method::GET if query.get("list-type") == Some("2") => Endpoint::ListObjectsV2,
        Method::GET => Endpoint::ListObjects,
        Method::HEAD => Endpoint::HeadBucket,
        Method::PUT if query.has("acl") => Endpoint::PutBucketAcl,
        Method::PUT if query.has("versioning") => {
            return Err(S3Error::new(
                ErrorCode::NotImplemented,
                "Bucket versioning is not implemented yet.",
            ));
        }
        Method::PUT => Endpoint::CreateBucket,
        Method::DELETE => Endpoint::DeleteBucket,
        Method::POST if query.has("delete") => Endpoint::DeleteObjects,
        _ => return Err(not_allowed()),
    })
}

fn object_endpoint(method: &Method, query: &Query, copy_source: bool) -> S3Result<Endpoint> {
    unsupported(query)?;
    let upload_id = query.get("uploadId").map(str::to_owned);
    let part_number = query.get("partNumber").map(str::to_owned);
    Ok(match (method.clone(), upload_id) {
        (Method::GET, _) if query.has("acl") => Endpoint::GetObjectAcl,
        (Method::PUT, _) if query.has("acl") => Endpoint::PutObjectAcl,
        (Method::GET, Some(upload_id)) => Endpoint::ListParts { upload_id },
        (Method::GET, None) => Endpoint::GetObject,
        (Method::HEAD, _) => Endpoint::HeadObject,
        (Method::PUT, Some(upload_id)) => {
            let part_number = part_number.unwrap_or_default();
            if copy_source {
                Endpoint::UploadPartCopy {
                    upload_id,
                    part_number,
                }
            } else {
                Endpoint::UploadPart {
                    upload_id,
                    part_number,
                }
            }
        }
        (Method::PUT, None) if copy_source => Endpoint::CopyObject,
        (Method::PUT, None) => Endpoint::PutObject,
        (Method::POST, None) if query.has("uploads") => Endpoint::CreateMultipartUpload,
        (Method::POST, Some(upload_id)) => Endpoint::CompleteMultipartUpload { upload_id },
        (Method::DELETE, Some(upload_id)) => Endpoint::AbortMultipartUpload { upload_id },
        (Method::DELETE, None) => Endpoint::DeleteObject,
        _ => return Err(not_allowed()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_and_virtual_host() {
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
    }

    #[test]
    fn operations_from_method_and_query() {
        let q = |s: &str| Query::parse(Some(s));
        let b = |m: Method, query: &str| {
            route(&m, Some("b".into()), None, &q(query), false)
                .unwrap()
                .endpoint
        };
        let o = |m: Method, query: &str, copy: bool| {
            route(&m, Some("b".into()), Some("k".into()), &q(query), copy)
                .unwrap()
                .endpoint
        };
        assert_eq!(
            b(Method::GET, "list-type=2&prefix=a"),
            Endpoint::ListObjectsV2
        );
        assert_eq!(b(Method::GET, "uploads"), Endpoint::ListMultipartUploads);
        assert_eq!(b(Method::POST, "delete"), Endpoint::DeleteObjects);
        assert_eq!(
            o(Method::POST, "uploads", false),
            Endpoint::CreateMultipartUpload
        );
        assert_eq!(
            o(Method::PUT, "partNumber=2&uploadId=u", true),
            Endpoint::UploadPartCopy {
                upload_id: "u".into(),
                part_number: "2".into()
            }
        );
        assert_eq!(o(Method::PUT, "", true), Endpoint::CopyObject);
        assert!(route(&Method::GET, Some("b".into()), None, &q("policy"), false).is_err());
        assert_eq!(
            Query::parse(Some("prefix=a+b%2Bc&x")).get("prefix"),
            Some("a b+c")
        );
    }
}
