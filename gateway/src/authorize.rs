//! Who may do what: the one place where an S3 or admin API request is allowed or refused.
//!
//! Every `Endpoint` names the IAM action it needs and what it acts on ([`permission`], an
//! exhaustive match: a new endpoint cannot compile without one). [`authorize`] decides once,
//! before dispatch, and hands the handler an [`Access`]: the bucket records the request may
//! touch. Handlers cannot be reached without one, since only this module makes an `Access`.
//!
//! The decision ([`decide`]) is AWS's: an explicit Deny in the bucket policy wins; then
//! anything that allows (the owner's rights, the `grants` the admin API gives, an ACL grant,
//! a policy Allow) allows; else AccessDenied. The public access block filters public ACL
//! grants and public policies out; Object Ownership decides whether ACLs count at all.

use crate::acl::{self, LOG_DELIVERY, Permission as AclPermission, Target};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::identity::ROOT_USER;
use crate::owner::canonical_id;
use crate::policy::{self, Context, Decision, Policy, Subject};
use crate::requester::Requester;
use crate::router::{Endpoint, Route};
use crate::state::S3State;
use kura_index::{AclGrantee, BucketRecord, ObjectVersion};

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
    /// Objects of an existing bucket that the request's body names (DeleteObjects, and
    /// PostObject whose form also says who signed it): each is decided by [`decide`] as
    /// the handler reads them, as AWS authorizes them.
    Objects,
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
    use Scope::{Bucket, NewBucket, Object, Objects, Public, Service};
    match endpoint {
        Endpoint::ListBuckets { .. } => needs("s3:ListAllMyBuckets", Service),
        Endpoint::CreateBucket => needs("s3:CreateBucket", NewBucket),
        Endpoint::HeadBucket => needs("s3:ListBucket", Bucket),
        Endpoint::DeleteBucket => needs("s3:DeleteBucket", Bucket),
        Endpoint::GetBucketLocation => needs("s3:GetBucketLocation", Bucket),
        Endpoint::GetBucketVersioning => needs("s3:GetBucketVersioning", Bucket),
        Endpoint::PutBucketVersioning => needs("s3:PutBucketVersioning", Bucket),
        Endpoint::GetObjectLockConfiguration => {
            needs("s3:GetBucketObjectLockConfiguration", Bucket)
        }
        Endpoint::PutObjectLockConfiguration => {
            needs("s3:PutBucketObjectLockConfiguration", Bucket)
        }
        Endpoint::GetObjectRetention { .. } => needs("s3:GetObjectRetention", Object),
        Endpoint::PutObjectRetention { .. } => needs("s3:PutObjectRetention", Object),
        Endpoint::GetObjectLegalHold { .. } => needs("s3:GetObjectLegalHold", Object),
        Endpoint::PutObjectLegalHold { .. } => needs("s3:PutObjectLegalHold", Object),
        Endpoint::GetBucketAcl => needs("s3:GetBucketAcl", Bucket),
        Endpoint::PutBucketAcl => needs("s3:PutBucketAcl", Bucket),
        Endpoint::GetBucketPolicy => needs("s3:GetBucketPolicy", Bucket),
        Endpoint::PutBucketPolicy => needs("s3:PutBucketPolicy", Bucket),
        Endpoint::DeleteBucketPolicy => needs("s3:DeleteBucketPolicy", Bucket),
        Endpoint::GetBucketPolicyStatus => needs("s3:GetBucketPolicyStatus", Bucket),
        Endpoint::GetBucketOwnershipControls => needs("s3:GetBucketOwnershipControls", Bucket),
        // AWS authorizes DeleteBucketOwnershipControls with s3:PutBucketOwnershipControls.
        Endpoint::PutBucketOwnershipControls | Endpoint::DeleteBucketOwnershipControls => {
            needs("s3:PutBucketOwnershipControls", Bucket)
        }
        Endpoint::GetPublicAccessBlock => needs("s3:GetBucketPublicAccessBlock", Bucket),
        // AWS authorizes DeletePublicAccessBlock with s3:PutBucketPublicAccessBlock.
        Endpoint::PutPublicAccessBlock | Endpoint::DeletePublicAccessBlock => {
            needs("s3:PutBucketPublicAccessBlock", Bucket)
        }
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
        Endpoint::GetBucketLogging => needs("s3:GetBucketLogging", Bucket),
        Endpoint::PutBucketLogging => needs("s3:PutBucketLogging", Bucket),
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
        Endpoint::DeleteObjects => needs("s3:DeleteObject", Objects),
        Endpoint::PostObject => needs("s3:PutObject", Objects),
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
        Endpoint::GetObjectAcl { version_id } => match version_id {
            Some(_) => needs("s3:GetObjectVersionAcl", Object),
            None => needs("s3:GetObjectAcl", Object),
        },
        Endpoint::PutObjectAcl { version_id } => match version_id {
            Some(_) => needs("s3:PutObjectVersionAcl", Object),
            None => needs("s3:PutObjectAcl", Object),
        },
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
    object: Option<ObjectVersion>,
    acl_required: bool,
}

impl Access {
    /// The bucket the request acts on, as read when it was authorized. Every operation
    /// with a bucket or object scope has one.
    pub fn bucket(&self) -> S3Result<&BucketRecord> {
        self.bucket_record()
            .ok_or_else(|| crate::error::S3Error::internal("no bucket was authorized"))
    }

    /// The bucket, if the request has one (CreateBucket and ListBuckets have none).
    pub fn bucket_record(&self) -> Option<&BucketRecord> {
        self.bucket.as_ref()
    }

    /// The bucket of a copy's source, for CopyObject and UploadPartCopy.
    pub fn source_bucket(&self) -> Option<&BucketRecord> {
        self.source.as_ref()
    }

    /// The version the request names (its `versionId`, else the key's current version),
    /// when authorizing read it and found one.
    pub fn object(&self) -> Option<&ObjectVersion> {
        self.object.as_ref()
    }

    /// Whether only an ACL grant allowed the request (access logs' `aclRequired`).
    pub fn acl_required(&self) -> bool {
        self.acl_required
    }
}

/// Decides whether the request `route` describes may be made: NoSuchBucket when its
/// bucket (or a copy's source bucket) does not exist, AccessDenied when not allowed.
pub async fn authorize(
    state: &S3State,
    requester: &Requester<'_>,
    route: &Route,
) -> S3Result<Access> {
    let needed = permission(&route.endpoint);
    let user = requester.user;
    let bucket = match (needed.scope, route.bucket.as_deref()) {
        (Scope::Service | Scope::NewBucket, _) | (_, None) => None,
        (Scope::Bucket | Scope::Object | Scope::Objects | Scope::Public, Some(name)) => {
            Some(state.index.bucket(name).await?)
        }
    };
    let mut object = None;
    let mut acl_required = false;
    let on_etag = delete_on_etag(route, requester);
    let allowed = match (needed.scope, &bucket) {
        (Scope::Public, _) => true,
        (Scope::Objects, Some(record)) => {
            expected_owner(requester, "x-amz-expected-bucket-owner", record)?;
            true
        }
        // Listing one's buckets and creating buckets take an account: not anonymous.
        (Scope::Service | Scope::NewBucket, _) | (_, None) => user.is_some(),
        (Scope::Bucket | Scope::Object, Some(record)) => {
            expected_owner(requester, "x-amz-expected-bucket-owner", record)?;
            let key = (needed.scope == Scope::Object)
                .then_some(route.key.as_deref())
                .flatten();
            // The object matters to its own ACL, to policies (s3:ExistingObjectTag) and to
            // a delete on its ETag (below); writes that only need the bucket's ACL skip
            // reading it.
            let reads_object = matches!(acl::needed(needed.action), Some((Target::Object, _)))
                || record.policy.is_some()
                || on_etag.is_some();
            if let Some(key) = key.filter(|_| reads_object) {
                object = version(state, record, key, object_version(&route.endpoint)).await?;
            }
            let grounds = grounds(record, key, object.as_ref(), requester, needed.action);
            acl_required = grounds == Some(Grounds::Acl);
            grounds.is_some()
                && (!OWNER_ONLY.contains(&needed.action)
                    || user.is_some_and(|u| {
                        u == record.owner || u == ROOT_USER || record.grants.iter().any(|g| g == u)
                    }))
        }
    };
    if !allowed {
        return Err(ErrorCode::AccessDenied.into());
    }
    if let (Some(record), Some((key, version_id))) = (&bucket, on_etag) {
        // Whether the delete happens tells whether the ETag matched: AWS asks for the
        // permission to read the object as well.
        let action = read_action(version_id);
        if !decide(record, Some(key), object.as_ref(), requester, action) {
            return Err(ErrorCode::AccessDenied.into());
        }
    }
    let source = match &route.endpoint {
        Endpoint::CopyObject { source } | Endpoint::UploadPartCopy { source, .. } => {
            let record = state.index.bucket(&source.bucket).await?;
            expected_owner(requester, "x-amz-source-expected-bucket-owner", &record)?;
            let action = read_action(source.version_id.as_deref());
            let object = version(state, &record, &source.key, source.version_id.as_deref()).await?;
            if !decide(
                &record,
                Some(&source.key),
                object.as_ref(),
                requester,
                action,
            ) {
                return Err(ErrorCode::AccessDenied.into());
            }
            Some(record)
        }
        _ => None,
    };
    Ok(Access {
        bucket,
        source,
        object,
        acl_required,
    })
}

/// The key and version of a DeleteObject conditional on an ETag (`If-Match` other than
/// `*`).
fn delete_on_etag<'a>(
    route: &'a Route,
    requester: &Requester,
) -> Option<(&'a str, Option<&'a str>)> {
    let Endpoint::DeleteObject { version_id } = &route.endpoint else {
        return None;
    };
    let if_match = requester
        .headers
        .get("if-match")?
        .to_str()
        .unwrap_or_default();
    names_an_etag(if_match).then_some((route.key.as_deref()?, version_id.as_deref()))
}

/// Whether an `If-Match` list (a delete's, or a DeleteObjects entry's `ETag`) holds only
/// for some ETags: without `*`, the answer tells whether the object's ETag is one of them.
pub fn names_an_etag(if_match: &str) -> bool {
    !if_match.split(',').any(|tag| tag.trim() == "*")
}

/// The permission that reads an object, or the version named.
pub fn read_action(version_id: Option<&str>) -> &'static str {
    match version_id {
        Some(_) => "s3:GetObjectVersion",
        None => "s3:GetObject",
    }
}

/// The version an object operation names, for the object-level checks.
fn object_version(endpoint: &Endpoint) -> Option<&str> {
    match endpoint {
        Endpoint::GetObject { read } | Endpoint::HeadObject { read } => read.version_id.as_deref(),
        Endpoint::GetObjectAcl { version_id }
        | Endpoint::PutObjectAcl { version_id }
        | Endpoint::GetObjectAttributes { version_id }
        | Endpoint::GetObjectTagging { version_id }
        | Endpoint::DeleteObject { version_id } => version_id.as_deref(),
        _ => None,
    }
}

/// The version a request names (`version_id`), else the key's current one, if it exists.
pub async fn version(
    state: &S3State,
    bucket: &BucketRecord,
    key: &str,
    version_id: Option<&str>,
) -> S3Result<Option<ObjectVersion>> {
    Ok(match version_id {
        Some(id) => state.index.version(bucket, key, id).await?,
        None => state.index.current(bucket, key).await?,
    })
}

/// `x-amz-expected-bucket-owner` (and its copy-source twin): when given, the bucket must
/// belong to that account (canonical id or user name), else AccessDenied as AWS answers.
fn expected_owner(requester: &Requester, header: &str, bucket: &BucketRecord) -> S3Result<()> {
    match requester.headers.get(header).map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(expected))
            if expected == bucket.owner || expected == canonical_id(&bucket.owner) =>
        {
            Ok(())
        }
        Some(_) => Err(S3Error::new(
            ErrorCode::AccessDenied,
            "The bucket is not owned by the expected account.",
        )),
    }
}

/// The bucket policy in force, if the bucket has one that still parses.
/// Actions only the bucket's owner (and the users the admin API lets act on the bucket as
/// its owner's own) may take, whatever its policy or ACL grants to others: AWS's "to set
/// the logging status of a bucket, you must be the bucket owner".
const OWNER_ONLY: &[&str] = &["s3:PutBucketLogging"];

/// The service that delivers server access logs, as target buckets' policies name it.
pub const LOG_DELIVERY_SERVICE: &str = "logging.s3.amazonaws.com";

/// Whether `target` lets server access logs of `source` be delivered under `prefix`: its
/// policy allows the logging service `s3:PutObject` there (`aws:SourceArn` is the source
/// bucket, `aws:SourceAccount` its owner), or, where ACLs count, its ACL grants the
/// LogDelivery group WRITE. An explicit Deny wins.
pub fn allows_log_delivery(target: &BucketRecord, prefix: &str, source: &BucketRecord) -> bool {
    if let Some(policy) = bucket_policy(target) {
        let resource = format!("arn:aws:s3:::{}/{prefix}", target.name);
        let subject = Subject {
            user: None,
            service: Some(LOG_DELIVERY_SERVICE),
            action: "s3:PutObject",
            resource: &resource,
        };
        match policy::evaluate(&policy, &subject, &LogSource(source)) {
            Decision::Allow => return true,
            Decision::Deny => return false,
            Decision::NotApplicable => {}
        }
    }
    let group = AclGrantee::Group(LOG_DELIVERY.to_owned());
    !acl::disabled(target)
        && acl::effective(target.acl.as_ref(), &target.owner)
            .grants
            .iter()
            .any(|g| {
                g.grantee == group && matches!(g.permission.as_str(), "WRITE" | "FULL_CONTROL")
            })
}

/// The condition keys of a log delivery: the source bucket and its owner (by name and
/// canonical id, as Kura's users are its accounts).
struct LogSource<'a>(&'a BucketRecord);

impl Context for LogSource<'_> {
    fn values(&self, key: &str) -> Vec<String> {
        match key {
            "aws:sourcearn" => vec![format!("arn:aws:s3:::{}", self.0.name)],
            "aws:sourceaccount" => vec![self.0.owner.clone(), canonical_id(&self.0.owner)],
            _ => Vec::new(),
        }
    }
}

fn bucket_policy(bucket: &BucketRecord) -> Option<Policy> {
    let text = bucket.policy.as_deref()?;
    match Policy::parse(text.as_bytes(), &bucket.name) {
        Ok(policy) => Some(policy),
        Err(err) => {
            tracing::error!(bucket = bucket.name, %err, "stored bucket policy does not parse; ignored");
            None
        }
    }
}

/// AWS's evaluation for one action on a bucket (`key` None) or on an object in it
/// (`object`: its current or named version, if it exists).
pub fn decide(
    bucket: &BucketRecord,
    key: Option<&str>,
    object: Option<&ObjectVersion>,
    requester: &Requester,
    action: &str,
) -> bool {
    grounds(bucket, key, object, requester, action).is_some()
}

/// What allowed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grounds {
    /// Who asked: root, the bucket's owner, a grantee, or the bucket policy.
    Identity,
    /// An ACL grant to someone other than the bucket's owner.
    Acl,
}

/// [`decide`], and what allowed the request: None when nothing did.
pub fn grounds(
    bucket: &BucketRecord,
    key: Option<&str>,
    object: Option<&ObjectVersion>,
    requester: &Requester,
    action: &str,
) -> Option<Grounds> {
    let user = requester.user;
    if user == Some(ROOT_USER) {
        return Some(Grounds::Identity);
    }
    let is_owner = user == Some(bucket.owner.as_str());
    let block = bucket.public_access_block.unwrap_or_default();
    if let Some(policy) = bucket_policy(bucket) {
        let resource = match key {
            Some(key) => format!("arn:aws:s3:::{}/{key}", bucket.name),
            None => format!("arn:aws:s3:::{}", bucket.name),
        };
        let subject = Subject {
            user,
            service: None,
            action,
            resource: &resource,
        };
        let tags = object.map(|o| o.meta.tags.as_slice());
        let context = Requester {
            object_tags: tags,
            ..*requester
        };
        match policy::evaluate(&policy, &subject, &context) {
            // The owner can always manage the policy: a policy cannot lock its owner out.
            Decision::Deny if is_owner && action.ends_with("BucketPolicy") => {
                return Some(Grounds::Identity);
            }
            Decision::Deny => return None,
            // RestrictPublicBuckets: a public policy grants only to the bucket's owner.
            Decision::Allow
                if !(block.restrict_public_buckets && policy.is_public()) || is_owner =>
            {
                return Some(Grounds::Identity);
            }
            _ => {}
        }
    }
    if let Some(user) = user
        && bucket.grants.iter().any(|g| g == user)
        && action != "s3:DeleteBucket"
    {
        return Some(Grounds::Identity);
    }
    if acl::disabled(bucket) {
        return is_owner.then_some(Grounds::Identity);
    }
    let allowed = match acl::needed(action) {
        // Bucket configuration: the owner's alone.
        None => is_owner,
        Some((Target::Bucket, permission)) => {
            (is_owner && matches!(permission, AclPermission::ReadAcp | AclPermission::WriteAcp))
                || acl_allows(
                    bucket.acl.as_ref(),
                    &bucket.owner,
                    user,
                    permission,
                    block.ignore_public_acls,
                )
        }
        Some((Target::Object, permission)) => match object {
            // A missing object: whoever may list the bucket learns it is missing.
            None => acl_allows(
                bucket.acl.as_ref(),
                &bucket.owner,
                user,
                AclPermission::Read,
                block.ignore_public_acls,
            ),
            Some(object) => {
                let owner = object.owner.as_str();
                let acp = matches!(permission, AclPermission::ReadAcp | AclPermission::WriteAcp);
                (user == Some(owner) && acp)
                    || acl_allows(
                        object.meta.acl.as_ref(),
                        owner,
                        user,
                        permission,
                        block.ignore_public_acls,
                    )
            }
        },
    };
    let grounds = if is_owner {
        Grounds::Identity
    } else {
        Grounds::Acl
    };
    allowed.then_some(grounds)
}

fn acl_allows(
    acl: Option<&kura_index::Acl>,
    owner: &str,
    user: Option<&str>,
    permission: AclPermission,
    ignore_public: bool,
) -> bool {
    acl::allows(&acl::effective(acl, owner), user, permission, ignore_public)
}

/// Whether a bucket grants to the public, and how: its policy (see `Policy::is_public`) or
/// its ACL (grants to AllUsers or AuthenticatedUsers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicStatus {
    pub by_policy: bool,
    pub by_acl: bool,
}

impl PublicStatus {
    pub fn of(bucket: &BucketRecord) -> Self {
        PublicStatus {
            by_policy: bucket_policy(bucket).is_some_and(|p| p.is_public()),
            by_acl: bucket.acl.as_ref().is_some_and(acl::is_public),
        }
    }

    pub fn is_public(self) -> bool {
        self.by_policy || self.by_acl
    }
}

/// The admin API is the administrator's alone.
pub fn admin(user: &str) -> bool {
    user == ROOT_USER
}

/// Whether ListBuckets shows `bucket` to `user`: their own, those granted to them, and
/// every bucket to the administrator.
pub fn lists(user: &str, bucket: &BucketRecord) -> bool {
    user == ROOT_USER || bucket.owner == user || bucket.grants.iter().any(|g| g == user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Authenticated;
    use crate::credentials::RootCredentials;
    use crate::identity::Identities;
    use crate::query::Query;
    use crate::requester::Client;
    use http::HeaderMap;
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
            master_key: crate::sse::MasterKey::new([7; 32], Vec::new()),
            region: "us-east-1".into(),
            domain: None,
            bucket_defaults: Default::default(),
            trusted_proxies: Vec::new(),
            upload_deadline: std::time::Duration::from_secs(3600),
            access_logs: Default::default(),
        }
    }

    /// Who signs a test request: a user's header signature, or nobody.
    fn signed_by(user: Option<&str>) -> Authenticated {
        match user {
            Some(user) => Authenticated {
                access_key: "AK".into(),
                user: user.into(),
                payload: crate::auth::PayloadMode::Unsigned,
                via: crate::auth::Via::Header { v4: true },
            },
            None => Authenticated::anonymous(),
        }
    }

    /// Authorizes `route` for `user` (None: anonymous) with these request headers.
    async fn ask(
        state: &S3State,
        user: Option<&str>,
        route: &Route,
        headers: &HeaderMap,
    ) -> S3Result<Access> {
        let auth = signed_by(user);
        let query = Query::default();
        let requester = Requester {
            user: auth.user(),
            via: auth.via,
            headers,
            query: &query,
            client: Client {
                ip: Some("192.0.2.1".parse().unwrap()),
                secure: false,
            },
            object_tags: None,
        };
        authorize(state, &requester, route).await
    }

    async fn as_user(state: &S3State, user: &str, route: &Route) -> S3Result<Access> {
        ask(state, Some(user), route, &HeaderMap::new()).await
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
            let decide = async |user: &str, route: &Route| code(as_user(&state, user, route).await);
            assert_eq!(decide(OWNER, &on_owned).await, None, "{name}: owner");
            assert_eq!(decide(ROOT_USER, &on_owned).await, None, "{name}: root");
            let everyone = matches!(
                needed.scope,
                Scope::Service | Scope::NewBucket | Scope::Public
            );
            let stranger = decide(STRANGER, &on_owned).await;
            let anonymous = code(ask(&state, None, &on_owned, &HeaderMap::new()).await);
            if needed.scope == Scope::Objects {
                // Each key is decided as the handler reads them.
                let bucket = state.index.bucket("owned").await.unwrap();
                let (auth, query, headers) = (
                    signed_by(Some(STRANGER)),
                    Query::default(),
                    HeaderMap::new(),
                );
                let client = Client {
                    ip: None,
                    secure: false,
                };
                let requester = |user| Requester {
                    user,
                    via: auth.via,
                    headers: &headers,
                    query: &query,
                    client,
                    object_tags: None,
                };
                let may =
                    |user| super::decide(&bucket, Some("k"), None, &requester(user), needed.action);
                assert!(
                    may(Some(OWNER)) && may(Some(GRANTEE)) && may(Some(ROOT_USER)),
                    "{name}"
                );
                assert!(!may(Some(STRANGER)) && !may(None), "{name}");
                assert_eq!(anonymous, None, "{name}: decided per key");
                continue;
            }
            if needed.scope == Scope::Public {
                assert_eq!(anonymous, None, "{name}: anyone");
            } else {
                assert_eq!(
                    anonymous,
                    Some(ErrorCode::AccessDenied),
                    "{name}: anonymous"
                );
            }
            if everyone {
                assert_eq!(stranger, None, "{name}: any user");
            } else {
                assert_eq!(stranger, Some(ErrorCode::AccessDenied), "{name}: stranger");
                let missing = route(&endpoint, "missing", "owned");
                assert_eq!(
                    decide(OWNER, &missing).await,
                    Some(ErrorCode::NoSuchBucket),
                    "{name}: no such bucket"
                );
            }
            let grantee = decide(GRANTEE, &on_owned).await;
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
                assert_eq!(
                    decide(OWNER, &from_others).await,
                    Some(ErrorCode::AccessDenied)
                );
                assert_eq!(decide(ROOT_USER, &from_others).await, None);
                let from_missing = route(&endpoint, "owned", "missing");
                assert_eq!(
                    decide(OWNER, &from_missing).await,
                    Some(ErrorCode::NoSuchBucket)
                );
            }
        }
        assert_eq!(seen, 63, "every variant iterated");
    }

    #[tokio::test]
    async fn handlers_get_the_bucket_they_were_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let access = as_user(&state, GRANTEE, &route(&Endpoint::HeadBucket, "owned", ""))
            .await
            .unwrap();
        assert_eq!(access.bucket().unwrap().owner, OWNER);
        let copy = Endpoint::CopyObject {
            source: Default::default(),
        };
        let access = as_user(&state, ROOT_USER, &route(&copy, "owned", "others"))
            .await
            .unwrap();
        assert_eq!(access.source_bucket().unwrap().owner, "carol");
        assert!(matches!(
            state.index.bucket("missing").await,
            Err(IndexError::NoSuchBucket)
        ));
    }

    fn get(bucket: &str) -> Route {
        route(
            &Endpoint::GetObject {
                read: Default::default(),
            },
            bucket,
            "",
        )
    }

    #[tokio::test]
    async fn a_policy_allows_denies_and_never_locks_its_owner_out() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam:::user/eve"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::owned/*"},
            {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::owned","arn:aws:s3:::owned/*"],
             "Condition":{"StringEquals":{"s3:x-amz-acl":"public-read"}}}]}"#;
        state
            .index
            .update_bucket("owned", |b| b.policy = Some(policy.into()))
            .await
            .unwrap();
        let none = HeaderMap::new();
        assert_eq!(
            code(ask(&state, Some(STRANGER), &get("owned"), &none).await),
            None
        );
        assert_eq!(
            code(ask(&state, Some("carol"), &get("owned"), &none).await),
            Some(ErrorCode::AccessDenied),
            "implicit deny"
        );
        let mut public = HeaderMap::new();
        public.insert("x-amz-acl", "public-read".parse().unwrap());
        let put = route(&Endpoint::PutObject, "owned", "");
        assert_eq!(
            code(ask(&state, Some(OWNER), &put, &public).await),
            Some(ErrorCode::AccessDenied),
            "explicit deny beats the owner's rights"
        );
        assert_eq!(code(ask(&state, Some(OWNER), &put, &none).await), None);
        let delete_policy = route(&Endpoint::DeleteBucketPolicy, "owned", "");
        assert_eq!(
            code(ask(&state, Some(OWNER), &delete_policy, &public).await),
            None
        );
        assert_eq!(
            code(ask(&state, Some(ROOT_USER), &put, &public).await),
            None
        );
    }

    #[tokio::test]
    async fn public_acls_and_the_public_access_block() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let list = route(
            &Endpoint::ListObjects {
                list: Default::default(),
                marker: String::new(),
            },
            "owned",
            "",
        );
        let none = HeaderMap::new();
        assert_eq!(
            code(ask(&state, None, &list, &none).await),
            Some(ErrorCode::AccessDenied)
        );
        let public = acl::canned("public-read", OWNER, OWNER).unwrap();
        state
            .index
            .update_bucket("owned", |b| b.acl = Some(public.clone()))
            .await
            .unwrap();
        assert_eq!(code(ask(&state, None, &list, &none).await), None);
        assert_eq!(
            code(
                ask(
                    &state,
                    None,
                    &route(&Endpoint::PutObject, "owned", ""),
                    &none
                )
                .await
            ),
            Some(ErrorCode::AccessDenied)
        );
        state
            .index
            .update_bucket("owned", |b| {
                b.public_access_block = Some(kura_index::PublicAccessBlock {
                    ignore_public_acls: true,
                    ..Default::default()
                })
            })
            .await
            .unwrap();
        assert_eq!(
            code(ask(&state, None, &list, &none).await),
            Some(ErrorCode::AccessDenied),
            "IgnorePublicAcls"
        );
        state
            .index
            .update_bucket("owned", |b| {
                b.ownership = Some(acl::BUCKET_OWNER_ENFORCED.into());
                b.public_access_block = None;
            })
            .await
            .unwrap();
        assert_eq!(
            code(ask(&state, None, &list, &none).await),
            Some(ErrorCode::AccessDenied),
            "ACLs disabled"
        );
        assert_eq!(code(ask(&state, Some(OWNER), &list, &none).await), None);
    }

    #[tokio::test]
    async fn the_expected_bucket_owner_must_own_the_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-expected-bucket-owner",
            canonical_id(OWNER).parse().unwrap(),
        );
        assert_eq!(
            code(ask(&state, Some(OWNER), &get("owned"), &headers).await),
            None
        );
        headers.insert("x-amz-expected-bucket-owner", "carol".parse().unwrap());
        assert_eq!(
            code(ask(&state, Some(OWNER), &get("owned"), &headers).await),
            Some(ErrorCode::AccessDenied)
        );
    }
}
