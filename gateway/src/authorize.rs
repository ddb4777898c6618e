//! Who may do what: the one place where an S3 or admin API request is allowed or refused.
//!
//! Every `Endpoint` names the IAM action it needs and what it acts on ([`permission`], an
//! exhaustive match: a new endpoint cannot compile without one). [`authorize`] decides once,
//! before dispatch, and hands the handler an [`Access`]: the bucket records the request may
//! touch. Handlers cannot be reached without one, since only this module makes an `Access`.
//! Bucket policies, ACLs and public access blocks plug into [`allowed`].

use crate::error::{ErrorCode, S3Result};
use crate::identity::ROOT_USER;
use crate::router::{Endpoint, Route};
use crate::state::S3State;
use kura_index::BucketRecord;

/// What an operation acts on, which decides the resource it is authorized against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// No bucket: the account (ListBuckets).
    Service,
    /// A bucket that is about to be created: there is no record to check against.
    NewBucket,
    /// An existing bucket (`arn:aws:s3:::bucket`).
    Bucket,
    /// An object in an existing bucket (`arn:aws:s3:::bucket/key`).
    Object,
    /// Anyone, without credentials, on an existing bucket: what may follow is decided by
    /// the bucket's own rules (CORS preflight).
    Public,
}

/// The IAM action an endpoint needs (as AWS names it) and what it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub action: &'static str,
    pub scope: Scope,
}

const fn needs(action: &'static str, scope: Scope) -> Permission {
    Permission { action, scope }
}

/// The permission each operation needs, as AWS's authorization reference lists it.
pub fn permission(endpoint: &Endpoint) -> Permission {
    use Scope::{Bucket, NewBucket, Object, Public, Service};
    match endpoint {
        Endpoint::ListBuckets { .. } => needs("s3:ListAllMyBuckets", Service),
        Endpoint::CreateBucket => needs("s3:CreateBucket", NewBucket),
        Endpoint::HeadBucket => needs("s3:ListBucket", Bucket),
        Endpoint::DeleteBucket => needs("s3:DeleteBucket", Bucket),
        Endpoint::GetBucketLocation => needs("s3:GetBucketLocation", Bucket),
        Endpoint::GetBucketVersioning => needs("s3:GetBucketVersioning", Bucket),
        Endpoint::GetBucketAcl => needs("s3:GetBucketAcl", Bucket),
        Endpoint::PutBucketAcl => needs("s3:PutBucketAcl", Bucket),
        Endpoint::GetBucketTagging => needs("s3:GetBucketTagging", Bucket),
        Endpoint::GetBucketCors => needs("s3:GetBucketCORS", Bucket),
        Endpoint::GetBucketEncryption => needs("s3:GetEncryptionConfiguration", Bucket),
        // AWS authorizes DeleteBucketEncryption with s3:PutEncryptionConfiguration.
        Endpoint::PutBucketEncryption | Endpoint::DeleteBucketEncryption => {
            needs("s3:PutEncryptionConfiguration", Bucket)
        }
        Endpoint::GetBucketLifecycleConfiguration => needs("s3:GetLifecycleConfiguration", Bucket),
        // AWS authorizes DeleteBucketLifecycle with s3:PutLifecycleConfiguration.
        Endpoint::PutBucketLifecycleConfiguration | Endpoint::DeleteBucketLifecycle => {
            needs("s3:PutLifecycleConfiguration", Bucket)
        }
        // AWS authorizes DeleteBucketCors with s3:PutBucketCORS.
        Endpoint::PutBucketCors | Endpoint::DeleteBucketCors => needs("s3:PutBucketCORS", Bucket),
        // No IAM action: the bucket's CORS rules answer it.
        Endpoint::PreflightRequest => needs("", Public),
        // AWS authorizes DeleteBucketTagging with s3:PutBucketTagging.
        Endpoint::PutBucketTagging | Endpoint::DeleteBucketTagging => {
            needs("s3:PutBucketTagging", Bucket)
        }
        Endpoint::ListObjects { .. } | Endpoint::ListObjectsV2 { .. } => {
            needs("s3:ListBucket", Bucket)
        }
        Endpoint::ListObjectVersions { .. } => needs("s3:ListBucketVersions", Bucket),
        Endpoint::ListMultipartUploads { .. } => needs("s3:ListBucketMultipartUploads", Bucket),
        // Authorized per key by AWS; every key of one request is in the same bucket.
        Endpoint::DeleteObjects => needs("s3:DeleteObject", Bucket),
        Endpoint::PutObject
        | Endpoint::CopyObject { .. }
        | Endpoint::CreateMultipartUpload
        | Endpoint::UploadPart { .. }
        | Endpoint::UploadPartCopy { .. }
        | Endpoint::CompleteMultipartUpload { .. } => needs("s3:PutObject", Object),
        Endpoint::GetObject { read } | Endpoint::HeadObject { read } => match read.version_id {
            Some(_) => needs("s3:GetObjectVersion", Object),
            None => needs("s3:GetObject", Object),
        },
        Endpoint::DeleteObject { version_id } => match version_id {
            Some(_) => needs("s3:DeleteObjectVersion", Object),
            None => needs("s3:DeleteObject", Object),
        },
        Endpoint::GetObjectAcl { .. } => needs("s3:GetObjectAcl", Object),
        Endpoint::PutObjectAcl { .. } => needs("s3:PutObjectAcl", Object),
        Endpoint::GetObjectAttributes { version_id } => match version_id {
            Some(_) => needs("s3:GetObjectVersionAttributes", Object),
            None => needs("s3:GetObjectAttributes", Object),
        },
        Endpoint::GetObjectTagging { version_id } => match version_id {
            Some(_) => needs("s3:GetObjectVersionTagging", Object),
            None => needs("s3:GetObjectTagging", Object),
        },
        Endpoint::PutObjectTagging { version_id } => match version_id {
            Some(_) => needs("s3:PutObjectVersionTagging", Object),
            None => needs("s3:PutObjectTagging", Object),
        },
        Endpoint::DeleteObjectTagging { version_id } => match version_id {
            Some(_) => needs("s3:DeleteObjectVersionTagging", Object),
            None => needs("s3:DeleteObjectTagging", Object),
        },
        Endpoint::AbortMultipartUpload { .. } => needs("s3:AbortMultipartUpload", Object),
        Endpoint::ListParts { .. } => needs("s3:ListMultipartUploadParts", Object),
    }
}

/// What a request was allowed to touch: handed to the handler with the request.
#[derive(Debug, Clone)]
pub struct Access {
    bucket: Option<BucketRecord>,
    source: Option<BucketRecord>,
}

impl Access {
    /// The bucket the request acts on, as read when it was authorized. Every operation
    /// with a bucket or object scope has one.
    pub fn bucket(&self) -> S3Result<&BucketRecord> {
        self.bucket
            .as_ref()
            .ok_or_else(|| crate::error::S3Error::internal("no bucket was authorized"))
    }

    /// The bucket of a copy's source, for CopyObject and UploadPartCopy.
    pub fn source_bucket(&self) -> Option<&BucketRecord> {
        self.source.as_ref()
    }
}

/// Decides whether `user` may make the request `route` describes: NoSuchBucket when its
/// bucket (or a copy's source bucket) does not exist, AccessDenied when not allowed.
pub fn authorize(state: &S3State, user: &str, route: &Route) -> S3Result<Access> {
    let needed = permission(&route.endpoint);
    let bucket = match (needed.scope, route.bucket.as_deref()) {
        (Scope::Service | Scope::NewBucket, _) | (_, None) => None,
        (Scope::Bucket | Scope::Object | Scope::Public, Some(name)) => {
            Some(state.index.bucket(name)?)
        }
    };
    if needed.scope != Scope::Public && !allowed(user, needed.action, bucket.as_ref()) {
        return Err(ErrorCode::AccessDenied.into());
    }
    let source = match &route.endpoint {
        Endpoint::CopyObject { source } | Endpoint::UploadPartCopy { source, .. } => {
            let record = state.index.bucket(&source.bucket)?;
            let action = match source.version_id {
                Some(_) => "s3:GetObjectVersion",
                None => "s3:GetObject",
            };
            if !allowed(user, action, Some(&record)) {
                return Err(ErrorCode::AccessDenied.into());
            }
            Some(record)
        }
        _ => None,
    };
    Ok(Access { bucket, source })
}

/// The admin API is the administrator's alone.
pub fn admin(user: &str) -> bool {
    user == ROOT_USER
}

/// The rules: the administrator may do anything; any user may list their buckets and
/// create buckets; a bucket is its owner's, and its grantees may do everything with it
/// but delete it.
pub fn allowed(user: &str, action: &str, bucket: Option<&BucketRecord>) -> bool {
    if user == ROOT_USER {
        return true;
    }
    match bucket {
        None => matches!(action, "s3:ListAllMyBuckets" | "s3:CreateBucket"),
        Some(bucket) if bucket.owner == user => true,
        Some(bucket) => bucket.grants.iter().any(|u| u == user) && action != "s3:DeleteBucket",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::RootCredentials;
    use crate::identity::Identities;
    use kura_index::{Index, IndexError};
    use std::sync::Arc;
    use strum::IntoEnumIterator;

    const OWNER: &str = "alice";
    const GRANTEE: &str = "bob";
    const STRANGER: &str = "eve";

    async fn state(dir: &std::path::Path) -> S3State {
        let backend = Arc::new(kura_backend::LocalBackend::open(dir).unwrap());
        let index = Arc::new(Index::new(backend.clone(), 1));
        for user in [OWNER, GRANTEE, STRANGER, "carol"] {
            index.create_user(user).await.unwrap();
        }
        index
            .create_bucket("owned", OWNER, "us-east-1", |_| {})
            .await
            .unwrap();
        index.set_grant("owned", GRANTEE, true).await.unwrap();
        index
            .create_bucket("others", "carol", "us-east-1", |_| {})
            .await
            .unwrap();
        let root = RootCredentials {
            access_key: "ROOT".into(),
            secret_key: "secret".into(),
        };
        S3State {
            identities: Arc::new(Identities::new(index.clone(), root)),
            index,
            blobs: backend,
            workers: Default::default(),
            lifecycle_day: std::time::Duration::from_secs(86_400),
            master_key: crate::sse::MasterKey::new([7; 32]),
            region: "us-east-1".into(),
            domain: None,
        }
    }

    /// A request for `endpoint` on `bucket` (a key where the endpoint acts on objects);
    /// copies read from `source`.
    fn route(endpoint: &Endpoint, bucket: &str, source: &str) -> Route {
        let mut endpoint = endpoint.clone();
        if let Endpoint::CopyObject { source: s } | Endpoint::UploadPartCopy { source: s, .. } =
            &mut endpoint
        {
            s.bucket = source.into();
            s.key = "src".into();
        }
        let scope = permission(&endpoint).scope;
        Route {
            bucket: (scope != Scope::Service).then(|| bucket.to_owned()),
            key: (scope == Scope::Object).then(|| "k".to_owned()),
            endpoint,
        }
    }

    fn code(result: S3Result<Access>) -> Option<ErrorCode> {
        result.err().map(|e| e.code)
    }

    /// Every endpoint (the enum's every variant, so a new one is covered without a list
    /// to update) is decided here, with today's rules.
    #[tokio::test]
    async fn every_endpoint_is_authorized() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let mut seen = 0;
        for endpoint in Endpoint::iter() {
            seen += 1;
            let name = endpoint.name();
            let needed = permission(&endpoint);
            assert!(
                needed.action.starts_with("s3:") || needed.scope == Scope::Public,
                "{name}"
            );
            let on_owned = route(&endpoint, "owned", "owned");
            let decide = |user: &str, route: &Route| code(authorize(&state, user, route));
            assert_eq!(decide(OWNER, &on_owned), None, "{name}: owner");
            assert_eq!(decide(ROOT_USER, &on_owned), None, "{name}: root");
            let everyone = matches!(
                needed.scope,
                Scope::Service | Scope::NewBucket | Scope::Public
            );
            let stranger = decide(STRANGER, &on_owned);
            if everyone {
                assert_eq!(stranger, None, "{name}: any user");
            } else {
                assert_eq!(stranger, Some(ErrorCode::AccessDenied), "{name}: stranger");
                let missing = route(&endpoint, "missing", "owned");
                assert_eq!(
                    decide(OWNER, &missing),
                    Some(ErrorCode::NoSuchBucket),
                    "{name}: no such bucket"
                );
            }
            let grantee = decide(GRANTEE, &on_owned);
            if endpoint == Endpoint::DeleteBucket {
                assert_eq!(
                    grantee,
                    Some(ErrorCode::AccessDenied),
                    "grantees keep the bucket"
                );
            } else {
                assert_eq!(grantee, None, "{name}: grantee");
            }
            if matches!(
                endpoint,
                Endpoint::CopyObject { .. } | Endpoint::UploadPartCopy { .. }
            ) {
                let from_others = route(&endpoint, "owned", "others");
                assert_eq!(decide(OWNER, &from_others), Some(ErrorCode::AccessDenied));
                assert_eq!(decide(ROOT_USER, &from_others), None);
                let from_missing = route(&endpoint, "owned", "missing");
                assert_eq!(decide(OWNER, &from_missing), Some(ErrorCode::NoSuchBucket));
            }
        }
        assert_eq!(seen, 43, "every variant iterated");
    }

    #[tokio::test]
    async fn handlers_get_the_bucket_they_were_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let access =
            authorize(&state, GRANTEE, &route(&Endpoint::HeadBucket, "owned", "")).unwrap();
        assert_eq!(access.bucket().unwrap().owner, OWNER);
        let copy = Endpoint::CopyObject {
            source: Default::default(),
        };
        let access = authorize(&state, ROOT_USER, &route(&copy, "owned", "others")).unwrap();
        assert_eq!(access.source_bucket().unwrap().owner, "carol");
        assert!(matches!(
            state.index.bucket("missing"),
            Err(IndexError::NoSuchBucket)
        ));
    }
}
