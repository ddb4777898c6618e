//! Access control lists as S3 has them: canned ACLs, `x-amz-grant-*` headers and the
//! AccessControlPolicy document turned into grants (users by canonical id or by email,
//! the AllUsers and AuthenticatedUsers groups), which permission each IAM action needs,
//! and object ownership (who owns what a user writes into someone else's bucket).

use crate::error::{ErrorCode, S3Error, S3Result};
use crate::identity::ROOT_USER;
use crate::owner::canonical_id;
use crate::xml;
use http::HeaderMap;
use kura_index::{Acl, AclGrant, AclGrantee, BucketRecord, Index};

pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// Object Ownership settings.
pub const BUCKET_OWNER_ENFORCED: &str = "BucketOwnerEnforced";
pub const BUCKET_OWNER_PREFERRED: &str = "BucketOwnerPreferred";
pub const OBJECT_WRITER: &str = "ObjectWriter";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    fn parse(text: &str) -> Option<Permission> {
        [
            Permission::Read,
            Permission::Write,
            Permission::ReadAcp,
            Permission::WriteAcp,
            Permission::FullControl,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }
}

/// Whether an ACL's grant is checked against the bucket's ACL or the object's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Bucket,
    Object,
}

/// The ACL permission that allows an IAM action, as AWS maps them; None for actions ACLs
/// cannot grant (bucket configuration: only the owner and policies).
pub fn needed(action: &str) -> Option<(Target, Permission)> {
    use Permission::*;
    use Target::*;
    Some(match action {
        "s3:ListBucket"
        | "s3:ListBucketVersions"
        | "s3:ListBucketMultipartUploads"
        | "s3:ListMultipartUploadParts" => (Bucket, Read),
        "s3:PutObject"
        | "s3:DeleteObject"
        | "s3:DeleteObjectVersion"
        | "s3:AbortMultipartUpload"
        | "s3:PutObjectTagging"
        | "s3:PutObjectVersionTagging"
        | "s3:DeleteObjectTagging"
        | "s3:DeleteObjectVersionTagging" => (Bucket, Write),
        "s3:GetBucketAcl" => (Bucket, ReadAcp),
        "s3:PutBucketAcl" => (Bucket, WriteAcp),
        "s3:GetObject"
        | "s3:GetObjectVersion"
        | "s3:GetObjectTagging"
        | "s3:GetObjectVersionTagging"
        | "s3:GetObjectAttributes"
        | "s3:GetObjectVersionAttributes" => (Object, Read),
        "s3:GetObjectAcl" | "s3:GetObjectVersionAcl" => (Object, ReadAcp),
        "s3:PutObjectAcl" | "s3:PutObjectVersionAcl" => (Object, WriteAcp),
        _ => return None,
    })
}

/// The ACL in force: the stored one, or the default (the owner has FULL_CONTROL).
pub fn effective(acl: Option<&Acl>, owner: &str) -> Acl {
    acl.cloned()
        .unwrap_or_else(|| owner_only(owner, Permission::FullControl))
}

fn owner_only(owner: &str, permission: Permission) -> Acl {
    Acl {
        grants: vec![grant(AclGrantee::User(owner.to_owned()), permission)],
    }
}

fn grant(grantee: AclGrantee, permission: Permission) -> AclGrant {
    AclGrant {
        grantee,
        permission: permission.as_str().to_owned(),
    }
}

/// Whether `acl` gives `user` (None: anonymous) `permission`. Grants to the public
/// groups count unless `ignore_public` (IgnorePublicAcls).
pub fn allows(acl: &Acl, user: Option<&str>, permission: Permission, ignore_public: bool) -> bool {
    acl.grants.iter().any(|g| {
        let covers =
            g.permission == permission.as_str() || g.permission == Permission::FullControl.as_str();
        let names = match &g.grantee {
            AclGrantee::User(name) => user == Some(name.as_str()),
            AclGrantee::Group(uri) if uri == ALL_USERS => !ignore_public,
            AclGrantee::Group(uri) if uri == AUTHENTICATED_USERS => {
                user.is_some() && !ignore_public
            }
            AclGrantee::Group(_) => false,
        };
        covers && names
    })
}

/// Whether an ACL grants anything to everyone or every authenticated user.
pub fn is_public(acl: &Acl) -> bool {
    acl.grants.iter().any(|g| {
        matches!(&g.grantee, AclGrantee::Group(uri) if uri == ALL_USERS || uri == AUTHENTICATED_USERS)
    })
}

/// A canned ACL for a resource owned by `owner` in a bucket owned by `bucket_owner`.
pub fn canned(name: &str, owner: &str, bucket_owner: &str) -> S3Result<Acl> {
    let mut acl = owner_only(owner, Permission::FullControl);
    let mut add = |grantee, permission| acl.grants.push(grant(grantee, permission));
    let group = |uri: &str| AclGrantee::Group(uri.to_owned());
    match name {
        "private" => {}
        "public-read" => add(group(ALL_USERS), Permission::Read),
        "public-read-write" => {
            add(group(ALL_USERS), Permission::Read);
            add(group(ALL_USERS), Permission::Write);
        }
        "authenticated-read" => add(group(AUTHENTICATED_USERS), Permission::Read),
        "bucket-owner-read" | "bucket-owner-full-control" if bucket_owner != owner => {
            let permission = if name == "bucket-owner-read" {
                Permission::Read
            } else {
                Permission::FullControl
            };
            add(AclGrantee::User(bucket_owner.to_owned()), permission);
        }
        "bucket-owner-read" | "bucket-owner-full-control" => {}
        "log-delivery-write" => {
            add(group(LOG_DELIVERY), Permission::Write);
            add(group(LOG_DELIVERY), Permission::ReadAcp);
        }
        other => {
            return Err(S3Error::new(
                ErrorCode::InvalidArgument,
                format!("Unknown canned ACL '{other}'."),
            )
            .with("ArgumentName", "x-amz-acl")
            .with("ArgumentValue", other));
        }
    }
    // Group grants before the owner's, in the order radosgw lists them: clients (and
    // s3-tests) that read a canned ACL's grants by position expect it.
    acl.grants
        .sort_by_key(|g| !matches!(g.grantee, AclGrantee::Group(_)));
    Ok(acl)
}

/// The `x-amz-grant-*` headers and the permission each gives.
const GRANT_HEADERS: [(&str, Permission); 5] = [
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
    ("x-amz-grant-full-control", Permission::FullControl),
];

/// What a request's headers ask for (`x-amz-acl` or `x-amz-grant-*`), if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    Canned(String),
    Grants(Acl),
}

impl Requested {
    /// The ACL this request sets on a resource owned by `owner`.
    pub fn acl(&self, owner: &str, bucket_owner: &str) -> S3Result<Acl> {
        match self {
            Requested::Canned(name) => canned(name, owner, bucket_owner),
            Requested::Grants(acl) => Ok(acl.clone()),
        }
    }
}

/// Reads `x-amz-acl` and the `x-amz-grant-*` headers; both at once is InvalidRequest.
pub async fn from_headers(index: &Index, headers: &HeaderMap) -> S3Result<Option<Requested>> {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or_default());
    let mut grants = Vec::new();
    for (name, permission) in GRANT_HEADERS {
        for value in headers.get_all(name) {
            let value = value.to_str().map_err(|_| invalid_grant_header(name))?;
            for grantee in value.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                let (kind, id) = grantee
                    .split_once('=')
                    .ok_or_else(|| invalid_grant_header(name))?;
                let id = id.trim().trim_matches('"');
                let grantee = resolve(index, &kind.trim().to_ascii_lowercase(), id).await?;
                grants.push(grant(grantee, permission));
            }
        }
    }
    match (text("x-amz-acl"), grants.is_empty()) {
        (Some(_), false) => Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Specifying both Canned ACLs and Header Grants is not allowed",
        )),
        (Some(canned), true) => Ok(Some(Requested::Canned(canned.to_owned()))),
        (None, false) => Ok(Some(Requested::Grants(Acl { grants }))),
        (None, true) => Ok(None),
    }
}

fn invalid_grant_header(name: &str) -> S3Error {
    S3Error::new(
        ErrorCode::InvalidArgument,
        format!(
            "The {name} header must list grantees as id=\"…\", emailAddress=\"…\" or uri=\"…\"."
        ),
    )
    .with("ArgumentName", name.to_owned())
}

/// A grantee as a grant names it (`id`, `emailaddress` or `uri`), resolved to a Kura user
/// or group: an unknown id is InvalidArgument, an unknown email address
/// UnresolvableGrantByEmailAddress, as AWS answers.
pub async fn resolve(index: &Index, kind: &str, value: &str) -> S3Result<AclGrantee> {
    match kind {
        "id" => user_by(index, |user| canonical_id(user) == value)
            .await?
            .map(AclGrantee::User)
            .ok_or_else(|| {
                S3Error::new(ErrorCode::InvalidArgument, "Invalid id")
                    .with("ArgumentName", "CanonicalUser/ID")
                    .with("ArgumentValue", value.to_owned())
            }),
        // A Kura user's email address is the user's name when it is one (`alice@example.com`).
        "emailaddress" => user_by(index, |user| user.eq_ignore_ascii_case(value))
            .await?
            .map(AclGrantee::User)
            .ok_or_else(|| S3Error::from(ErrorCode::UnresolvableGrantByEmailAddress)),
        "uri" if matches!(value, ALL_USERS | AUTHENTICATED_USERS | LOG_DELIVERY) => {
            Ok(AclGrantee::Group(value.to_owned()))
        }
        "uri" => Err(
            S3Error::new(ErrorCode::InvalidArgument, "Invalid group uri")
                .with("ArgumentName", "Group/URI")
                .with("ArgumentValue", value.to_owned()),
        ),
        _ => Err(S3Error::new(
            ErrorCode::InvalidArgument,
            format!("Unknown grantee type '{kind}'."),
        )),
    }
}

async fn user_by(index: &Index, wanted: impl Fn(&str) -> bool) -> S3Result<Option<String>> {
    if wanted(ROOT_USER) {
        return Ok(Some(ROOT_USER.to_owned()));
    }
    Ok(index
        .list_users()
        .await?
        .into_iter()
        .map(|u| u.name)
        .find(|name| wanted(name)))
}

/// The grants of an AccessControlPolicy document, resolved; its Owner, if given, must be
/// the resource's owner.
pub async fn from_document(index: &Index, body: &[u8], owner: &str) -> S3Result<Acl> {
    let policy: xml::AccessControlPolicyRequest = xml::from_xml("AccessControlPolicy", body)
        .map_err(|e| match e.code {
            ErrorCode::MalformedXML => S3Error::from(ErrorCode::MalformedACLError),
            _ => e,
        })?;
    if let Some(id) = policy.owner.and_then(|o| o.id)
        && id != canonical_id(owner)
    {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            "The Owner of an AccessControlPolicy must be the resource's owner.",
        ));
    }
    let grants = policy.access_control_list.map(|l| l.grant);
    let grants = resolve_grants(
        index,
        grants.unwrap_or_default(),
        ErrorCode::MalformedACLError,
    )
    .await?;
    Ok(Acl { grants })
}

/// The grants of a document's `<Grant>` elements, resolved; one that is not well formed
/// is `malformed`.
pub async fn resolve_grants(
    index: &Index,
    requested: Vec<xml::GrantRequest>,
    malformed: ErrorCode,
) -> S3Result<Vec<AclGrant>> {
    let mut grants = Vec::new();
    for g in requested {
        let permission = Permission::parse(&g.permission).ok_or(malformed)?;
        let grantee = g.grantee;
        let (kind, value) = match grantee.kind.as_deref() {
            Some("CanonicalUser") => ("id", grantee.id),
            Some("AmazonCustomerByEmail") => ("emailaddress", grantee.email_address),
            Some("Group") => ("uri", grantee.uri),
            _ => return Err(malformed.into()),
        };
        let value = value.ok_or(malformed)?;
        grants.push(grant(resolve(index, kind, value.trim()).await?, permission));
    }
    Ok(grants)
}

/// The `<Grant>` elements of `grants`.
pub fn grant_elements(grants: &[AclGrant]) -> Vec<xml::Grant> {
    grants
        .iter()
        .map(|g| xml::Grant {
            grantee: match &g.grantee {
                AclGrantee::User(user) => xml::Grantee::user(crate::owner::owner(user)),
                AclGrantee::Group(uri) => xml::Grantee::group(uri.clone()),
            },
            permission: g.permission.clone(),
        })
        .collect()
}

/// The AccessControlPolicy document of a resource.
pub fn document(acl: &Acl, owner: &str) -> xml::AccessControlPolicy {
    xml::AccessControlPolicy::new(crate::owner::owner(owner), grant_elements(&acl.grants))
}

/// The bucket's Object Ownership setting (no controls behave as ObjectWriter).
pub fn ownership(bucket: &BucketRecord) -> &str {
    bucket.ownership.as_deref().unwrap_or(OBJECT_WRITER)
}

/// Who owns an object, as S3 shows it: with ACLs disabled, the bucket owner owns them all.
pub fn shown_owner<'a>(bucket: &'a BucketRecord, object_owner: &'a str) -> &'a str {
    if disabled(bucket) {
        &bucket.owner
    } else {
        object_owner
    }
}

/// Whether the bucket has ACLs disabled (BucketOwnerEnforced).
pub fn disabled(bucket: &BucketRecord) -> bool {
    ownership(bucket) == BUCKET_OWNER_ENFORCED
}

/// Who owns an object `writer` writes with `acl`: the bucket owner when ACLs are disabled,
/// when BucketOwnerPreferred and the ACL gives the bucket owner full control, or when the
/// writer uses the bucket through an administrator's grant (on the owner's behalf); the
/// writer otherwise.
pub fn object_owner(bucket: &BucketRecord, writer: &str, acl: Option<&Acl>) -> String {
    let owner = Some(bucket.owner.as_str());
    let hands_over = acl.is_some_and(|acl| {
        acl.grants.iter().any(|g| {
            g.permission == Permission::FullControl.as_str()
                && matches!(&g.grantee, AclGrantee::User(u) if Some(u.as_str()) == owner)
        })
    });
    let on_behalf = bucket.grants.iter().any(|g| g == writer);
    match ownership(bucket) {
        BUCKET_OWNER_ENFORCED => bucket.owner.clone(),
        BUCKET_OWNER_PREFERRED if hands_over => bucket.owner.clone(),
        _ if on_behalf => bucket.owner.clone(),
        _ => writer.to_owned(),
    }
}

/// The owner and ACL of an object `writer` is about to write, from the request's
/// `x-amz-acl` / `x-amz-grant-*` headers and the bucket's ownership and public access block.
pub async fn for_new_object(
    index: &Index,
    headers: &HeaderMap,
    bucket: &BucketRecord,
    writer: &str,
) -> S3Result<(String, Option<Acl>)> {
    let requested = from_headers(index, headers).await?;
    check_allowed(bucket, requested.as_ref())?;
    if disabled(bucket) {
        return Ok((bucket.owner.clone(), None));
    }
    let acl = requested
        .map(|r| r.acl(writer, &bucket.owner))
        .transpose()?;
    if let Some(acl) = &acl {
        check_public(bucket, acl)?;
    }
    Ok((object_owner(bucket, writer, acl.as_ref()), acl))
}

/// BlockPublicAcls: an ACL that grants to the public is refused.
pub fn check_public(bucket: &BucketRecord, acl: &Acl) -> S3Result<()> {
    let blocked = bucket
        .public_access_block
        .is_some_and(|b| b.block_public_acls);
    if blocked && is_public(acl) {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            "The bucket's public access block does not allow public ACLs.",
        ));
    }
    Ok(())
}

/// The ACL a write may set on a bucket with this ownership: with ACLs disabled only
/// the owner-only ACLs (`private`, `bucket-owner-full-control`) are accepted.
pub fn check_allowed(bucket: &BucketRecord, requested: Option<&Requested>) -> S3Result<()> {
    let owner_only = match requested {
        None => true,
        Some(Requested::Canned(c)) => c == "private" || c == "bucket-owner-full-control",
        Some(Requested::Grants(acl)) => acl.grants.iter().all(|g| {
            g.grantee == AclGrantee::User(bucket.owner.clone())
                && g.permission == Permission::FullControl.as_str()
        }),
    };
    if disabled(bucket) && !owner_only {
        return Err(ErrorCode::AccessControlListNotSupported.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls() {
        let acl = canned("public-read", "alice", "alice").unwrap();
        assert!(allows(&acl, None, Permission::Read, false));
        assert!(
            !allows(&acl, None, Permission::Read, true),
            "IgnorePublicAcls"
        );
        assert!(!allows(&acl, None, Permission::Write, false));
        assert!(allows(&acl, Some("alice"), Permission::WriteAcp, false));
        assert!(is_public(&acl));
        assert!(matches!(acl.grants[0].grantee, AclGrantee::Group(_)));
        assert_eq!(acl.grants[1].grantee, AclGrantee::User("alice".into()));
        let acl = canned("authenticated-read", "alice", "alice").unwrap();
        assert!(allows(&acl, Some("bob"), Permission::Read, false));
        assert!(!allows(&acl, None, Permission::Read, false));
        let acl = canned("bucket-owner-read", "bob", "alice").unwrap();
        assert!(allows(&acl, Some("alice"), Permission::Read, false));
        assert!(!allows(&acl, Some("alice"), Permission::Write, false));
        assert!(!is_public(&acl));
        let acl = canned("bucket-owner-full-control", "alice", "alice").unwrap();
        assert_eq!(acl.grants.len(), 1, "no second grant to the same owner");
        let acl = canned("private", "alice", "alice").unwrap();
        assert!(!allows(&acl, Some("bob"), Permission::Read, false));
        assert_eq!(
            canned("public", "a", "a").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn action_permissions() {
        assert_eq!(
            needed("s3:GetObject"),
            Some((Target::Object, Permission::Read))
        );
        assert_eq!(
            needed("s3:PutObject"),
            Some((Target::Bucket, Permission::Write))
        );
        assert_eq!(
            needed("s3:PutBucketAcl"),
            Some((Target::Bucket, Permission::WriteAcp))
        );
        assert_eq!(needed("s3:PutBucketPolicy"), None);
    }
}
