//! The admin API: users, keys, buckets, quotas and usage as JSON under
//! `/_kura/admin/v1/` on the S3 listener (`_` never appears in a bucket name,
//! so the prefix cannot shadow a path-style request). Calls are signed with
//! SigV4 like S3 requests, and only the administrator (root) may make them.

use crate::acl;
use crate::auth;
use crate::authorize;
use crate::background::MAX_SHARDS;
use crate::body::verified_body;
use crate::error::S3Error;
use crate::identity::ROOT_USER;
use crate::metrics::METRICS;
use crate::names::validate_bucket_name;
use crate::policy::Policy;
use crate::query::Query;
use crate::state::S3State;
use crate::timefmt::iso8601;
use axum::body::Body;
use futures::StreamExt;
use http::{Method, StatusCode, header};
use kura_index::{
    AclGrantee, BucketRecord, DeleteIf, Deleter, IndexError, KeyRecord, ListParams, LockBypass,
    Quota, UserRecord,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const PREFIX: &str = "/_kura/admin/v1/";
/// Admin request bodies are small JSON documents.
const MAX_BODY: usize = 64 * 1024;
/// Objects deleted per step while purging a bucket.
const PURGE_PAGE: usize = 1000;

/// An admin API failure, answered as `{"code": …, "message": …}`.
#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AdminError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AdminError {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        AdminError::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }
}

impl From<S3Error> for AdminError {
    fn from(err: S3Error) -> Self {
        AdminError {
            status: err.status(),
            code: err.code.as_str(),
            message: err.message,
        }
    }
}

impl From<IndexError> for AdminError {
    fn from(err: IndexError) -> Self {
        use StatusCode as S;
        let (status, code, message) = match err {
            IndexError::NoSuchBucket => {
                (S::NOT_FOUND, "NoSuchBucket", "The bucket does not exist.")
            }
            IndexError::BucketExists { .. } => (
                S::CONFLICT,
                "BucketAlreadyExists",
                "The bucket already exists.",
            ),
            IndexError::BucketNotEmpty => (
                S::CONFLICT,
                "BucketNotEmpty",
                "The bucket is not empty; use purge to delete its contents.",
            ),
            IndexError::NoSuchUser => (S::NOT_FOUND, "NoSuchUser", "The user does not exist."),
            IndexError::UserExists => {
                (S::CONFLICT, "UserAlreadyExists", "The user already exists.")
            }
            IndexError::UserNotEmpty => {
                (S::CONFLICT, "UserNotEmpty", "The user still owns buckets.")
            }
            IndexError::ReshardInProgress => (
                S::CONFLICT,
                "ReshardInProgress",
                "A reshard of this bucket is already under way.",
            ),
            IndexError::NoSuchAccessKey => {
                (S::NOT_FOUND, "NoSuchKey", "The access key does not exist.")
            }
            IndexError::ObjectLocked(_) => (
                S::CONFLICT,
                "ObjectLocked",
                "Object Lock protects versions in the bucket; they stay unless bypass-object-lock is given.",
            ),
            other => return S3Error::from(other).into(),
        };
        AdminError::new(status, code, message)
    }
}

type AdminResult = Result<(StatusCode, Value), AdminError>;

pub async fn handle(
    state: &S3State,
    parts: http::request::Parts,
    body: Body,
    request_id: &str,
) -> http::Response<Body> {
    let (status, value) = match serve(state, parts, body).await {
        Ok(answer) => answer,
        Err(err) => {
            METRICS.error(err.code, err.status);
            (
                err.status,
                json!({ "code": err.code, "message": err.message, "request_id": request_id }),
            )
        }
    };
    let body = if status == StatusCode::NO_CONTENT {
        Body::empty()
    } else {
        Body::from(value.to_string())
    };
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("static headers are valid")
}

async fn serve(state: &S3State, parts: http::request::Parts, body: Body) -> AdminResult {
    let auth = state.authenticate(&parts).await?;
    if !authorize::admin(&auth.user) {
        return Err(AdminError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "The admin API needs the administrator's credentials.",
        ));
    }
    let body = read_body(body, &parts.headers, auth.payload).await?;
    let query = Query::parse(parts.uri.query());
    let path = &parts.uri.path()[PREFIX.len()..];
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (parts.method, segments.as_slice()) {
        (Method::POST, ["users"]) => create_user(state, parse(&body)?).await,
        (Method::GET, ["users"]) => list_users(state).await,
        (Method::GET, ["users", name]) => user_info(state, name).await,
        (Method::DELETE, ["users", name]) => delete_user(state, name).await,
        (Method::POST, ["users", name, "keys"]) => create_key(state, name).await,
        (Method::GET, ["users", name, "keys"]) => list_keys(state, name).await,
        (Method::DELETE, ["keys", access_key]) => revoke_key(state, access_key).await,
        (Method::POST, ["buckets"]) => create_bucket(state, parse(&body)?).await,
        (Method::GET, ["buckets"]) => list_buckets(state).await,
        (Method::GET, ["buckets", name]) => Ok((
            StatusCode::OK,
            bucket_json(state, &state.index.bucket(name).await?).await?,
        )),
        (Method::DELETE, ["buckets", name]) => {
            let purge = match (query.get("purge"), query.get("bypass-object-lock")) {
                (Some("true"), Some("true")) => Some(LockBypass::Everything),
                (Some("true"), _) => Some(LockBypass::Nothing),
                _ => None,
            };
            delete_bucket(state, name, purge).await
        }
        (Method::PUT, ["buckets", name, "quota"]) => set_quota(state, name, parse(&body)?).await,
        (Method::DELETE, ["buckets", name, "quota"]) => {
            set_quota(state, name, Quota::default()).await
        }
        (Method::PUT, ["buckets", name, "grants", user]) => {
            set_grant(state, name, user, true).await
        }
        (Method::DELETE, ["buckets", name, "grants", user]) => {
            set_grant(state, name, user, false).await
        }
        (Method::PUT, ["buckets", name, "policy"]) => set_policy(state, name, Some(&body)).await,
        (Method::DELETE, ["buckets", name, "policy"]) => set_policy(state, name, None).await,
        (Method::GET, ["usage"]) => usage(state).await,
        (Method::GET, ["workers"]) => Ok((StatusCode::OK, workers_json(state))),
        (Method::POST, ["buckets", name, "reshard"]) => {
            start_reshard(state, name, parse(&body)?).await
        }
        (Method::GET, ["buckets", name, "stats"]) => {
            Ok((StatusCode::OK, stats_json(state, name).await?))
        }
        _ => Err(AdminError::new(
            StatusCode::NOT_FOUND,
            "NoSuchRoute",
            format!("No admin call at {}.", parts.uri.path()),
        )),
    }
}

async fn read_body(
    body: Body,
    headers: &http::HeaderMap,
    payload: auth::PayloadMode,
) -> Result<Vec<u8>, AdminError> {
    let mut stream = verified_body(body, headers, payload, None)?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
        if out.len() > MAX_BODY {
            return Err(AdminError::invalid("The request body is too large."));
        }
    }
    Ok(out)
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body)
        .map_err(|e| AdminError::invalid(format!("Malformed JSON body: {e}")))
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
}

#[derive(Deserialize)]
struct NewBucket {
    name: String,
    owner: String,
}

#[derive(Serialize)]
struct KeyJson<'a> {
    access_key: &'a str,
    user: &'a str,
    created: String,
    status: &'static str,
}

fn key_json(key: &KeyRecord) -> KeyJson<'_> {
    KeyJson {
        access_key: &key.access_key,
        user: &key.user,
        created: iso8601(key.created_ms),
        status: if key.is_active() { "active" } else { "revoked" },
    }
}

fn validate_user_name(name: &str) -> Result<(), AdminError> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(&b));
    if !(1..=64).contains(&name.len()) || !valid_chars {
        return Err(AdminError::invalid(
            "A user name is 1 to 64 characters of letters, digits and _ . @ -.",
        ));
    }
    if name == ROOT_USER {
        return Err(AdminError::invalid(
            "The user name 'root' is reserved for the administrator.",
        ));
    }
    Ok(())
}

async fn create_user(state: &S3State, new: NewUser) -> AdminResult {
    validate_user_name(&new.name)?;
    let user = state.index.create_user(&new.name).await?;
    Ok((StatusCode::CREATED, user_json(state, &user).await?))
}

async fn user_json(state: &S3State, user: &UserRecord) -> Result<Value, AdminError> {
    let buckets: Vec<String> = state
        .index
        .user_buckets(&user.name)
        .await?
        .into_iter()
        .map(|b| b.name)
        .collect();
    let keys = state.index.user_keys(&user.name).await?;
    Ok(json!({
        "name": user.name,
        "created": iso8601(user.created_ms),
        "buckets": buckets,
        "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
    }))
}

async fn list_users(state: &S3State) -> AdminResult {
    let mut users = Vec::new();
    for user in state.index.list_users().await? {
        users.push(user_json(state, &user).await?);
    }
    Ok((StatusCode::OK, json!({ "users": users })))
}

async fn user_info(state: &S3State, name: &str) -> AdminResult {
    Ok((
        StatusCode::OK,
        user_json(state, &state.index.user(name).await?).await?,
    ))
}

async fn delete_user(state: &S3State, name: &str) -> AdminResult {
    state.index.delete_user(name).await?;
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

async fn create_key(state: &S3State, user: &str) -> AdminResult {
    let (record, new) = state.identities.create_key(user).await?;
    Ok((
        StatusCode::CREATED,
        json!({
            "access_key": new.access_key,
            "secret_key": new.secret_key,
            "user": record.user,
            "created": iso8601(record.created_ms),
        }),
    ))
}

async fn list_keys(state: &S3State, user: &str) -> AdminResult {
    state.index.user(user).await?;
    let keys = state.index.user_keys(user).await?;
    Ok((
        StatusCode::OK,
        json!({ "keys": keys.iter().map(key_json).collect::<Vec<_>>() }),
    ))
}

async fn revoke_key(state: &S3State, access_key: &str) -> AdminResult {
    state.index.revoke_key(access_key).await?;
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

async fn bucket_json(state: &S3State, bucket: &BucketRecord) -> Result<Value, AdminError> {
    let usage = state.index.bucket_usage(&bucket.name).await?;
    Ok(json!({
        "name": bucket.name,
        "owner": bucket.owner,
        "created": iso8601(bucket.created_ms),
        "region": bucket.region,
        "shards": bucket.layout.shards,
        "quota": { "max_objects": bucket.quota.max_objects, "max_bytes": bucket.quota.max_bytes },
        "grants": bucket.grants,
        "usage": { "objects": usage.objects, "bytes": usage.bytes },
        "access": access_json(bucket),
        // The last (or current) pass of the lifecycle rules.
        "lifecycle": bucket.lifecycle_pass.as_ref().map(|pass| json!({
            "last_run": iso8601(pass.started_ms),
            "finished": pass.finished_ms.map(iso8601),
            "running": pass.next.is_some(),
            "objects_expired": pass.objects_expired,
            "uploads_aborted": pass.uploads_aborted,
        })),
    }))
}

/// Who may reach a bucket besides its owner: public status, Object Ownership, the public
/// access block, the ACL's grants and the bucket policy.
fn access_json(bucket: &BucketRecord) -> Value {
    let public = authorize::PublicStatus::of(bucket);
    let grants: Vec<Value> = acl::effective(bucket.acl.as_ref(), &bucket.owner)
        .grants
        .iter()
        .map(|g| {
            let grantee = match &g.grantee {
                AclGrantee::User(user) => json!({ "user": user }),
                AclGrantee::Group(uri) => json!({ "group": uri }),
            };
            json!({ "grantee": grantee, "permission": g.permission })
        })
        .collect();
    let policy = bucket
        .policy
        .as_deref()
        .map(|text| serde_json::from_str::<Value>(text).unwrap_or_else(|_| json!(text)));
    json!({
        "public": public.is_public(),
        "public_by_policy": public.by_policy,
        "public_by_acl": public.by_acl,
        "object_ownership": acl::ownership(bucket),
        "public_access_block": bucket.public_access_block.map(|b| json!({
            "block_public_acls": b.block_public_acls,
            "ignore_public_acls": b.ignore_public_acls,
            "block_public_policy": b.block_public_policy,
            "restrict_public_buckets": b.restrict_public_buckets,
        })),
        "acl": grants,
        "policy": policy,
    })
}

/// Sets (or, with None, removes) a bucket's policy, checked as PutBucketPolicy checks it
/// (`MalformedPolicy`), whatever the bucket's public access block says: the administrator
/// decides.
async fn set_policy(state: &S3State, name: &str, body: Option<&[u8]>) -> AdminResult {
    let text = match body {
        Some(body) => {
            Policy::parse(body, name)?;
            let text = String::from_utf8(body.to_vec())
                .map_err(|_| AdminError::invalid("The policy is not UTF-8."))?;
            Some(text)
        }
        None => None,
    };
    let record = state
        .index
        .update_bucket(name, |record| record.policy = text.clone())
        .await?;
    Ok((StatusCode::OK, bucket_json(state, &record).await?))
}

async fn create_bucket(state: &S3State, new: NewBucket) -> AdminResult {
    validate_bucket_name(&new.name)?;
    if new.owner != ROOT_USER {
        state.index.user(&new.owner).await?;
    }
    // Buckets made here start like those made through S3 (--new-bucket-defaults).
    let defaults = state.bucket_defaults;
    let bucket = state
        .index
        .create_bucket(&new.name, &new.owner, &state.region, |record| {
            record.ownership = defaults.ownership().map(str::to_owned);
            record.public_access_block = defaults.public_access_block();
        })
        .await?;
    Ok((StatusCode::CREATED, bucket_json(state, &bucket).await?))
}

async fn set_grant(state: &S3State, bucket: &str, user: &str, granted: bool) -> AdminResult {
    if granted && user != ROOT_USER {
        state.index.user(user).await?;
    }
    let bucket = state.index.set_grant(bucket, user, granted).await?;
    Ok((StatusCode::OK, bucket_json(state, &bucket).await?))
}

async fn list_buckets(state: &S3State) -> AdminResult {
    let mut buckets = Vec::new();
    for bucket in state.index.list_buckets().await? {
        buckets.push(bucket_json(state, &bucket).await?);
    }
    Ok((StatusCode::OK, json!({ "buckets": buckets })))
}

/// Deletes a bucket, first purging it when asked (passing the Object Lock protections
/// `purge` says).
async fn delete_bucket(state: &S3State, name: &str, purge: Option<LockBypass>) -> AdminResult {
    if let Some(bypass) = purge {
        if bypass == LockBypass::Everything {
            tracing::warn!(
                bucket = name,
                "purging a bucket past its Object Lock protections"
            );
        }
        purge_bucket(state, name, bypass).await?;
    }
    state.index.delete_bucket(name).await?;
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// Deletes every version (delete markers too) and open upload of a bucket, a page at a
/// time.
async fn purge_bucket(state: &S3State, name: &str, bypass: LockBypass) -> Result<(), AdminError> {
    loop {
        let params = ListParams {
            max: PURGE_PAGE,
            ..Default::default()
        };
        let page = state.index.list_versions(name, &params, None).await?;
        let always = DeleteIf::default();
        let versions: Vec<_> = page
            .entries
            .iter()
            .map(|(key, v)| (key.as_str(), Some(v.version.version_id.as_str()), &always))
            .collect();
        let by = Deleter { owner: "", bypass };
        for outcome in state.index.delete_objects(name, &versions, by).await? {
            outcome?;
        }
        if !page.truncated {
            break;
        }
    }
    state.index.abort_all_uploads(name).await?;
    Ok(())
}

async fn set_quota(state: &S3State, name: &str, quota: Quota) -> AdminResult {
    let bucket = state.index.set_quota(name, quota).await?;
    Ok((StatusCode::OK, bucket_json(state, &bucket).await?))
}

async fn usage(state: &S3State) -> AdminResult {
    let buckets: Vec<Value> = state
        .index
        .usage().await?
        .into_iter()
        .map(|u| json!({ "name": u.bucket, "owner": u.owner, "objects": u.objects, "bytes": u.bytes }))
        .collect();
    Ok((StatusCode::OK, json!({ "buckets": buckets })))
}

/// The background workers: steps run, failures, and what each is doing.
fn workers_json(state: &S3State) -> Value {
    let workers: Vec<Value> = state
        .workers
        .statuses()
        .into_iter()
        .map(|w| {
            json!({
                "name": w.name,
                "busy": w.progress.busy,
                "items": w.progress.items,
                "detail": w.progress.detail,
                "steps": w.steps,
                "failures": w.failures,
                "last_step": (w.last_step_ms > 0).then(|| iso8601(w.last_step_ms)),
                "last_error": w.last_error,
            })
        })
        .collect();
    json!({ "workers": workers })
}

#[derive(Deserialize)]
struct ReshardRequest {
    shards: u32,
}

async fn start_reshard(state: &S3State, name: &str, request: ReshardRequest) -> AdminResult {
    if !(1..=MAX_SHARDS).contains(&request.shards) {
        return Err(AdminError::invalid(format!(
            "shards must be between 1 and {MAX_SHARDS}."
        )));
    }
    let bucket = state.index.start_reshard(name, request.shards).await?;
    if bucket.reshard.is_some() {
        METRICS
            .reshards_started
            .with_label_values(&["manual"])
            .inc();
    }
    Ok((StatusCode::ACCEPTED, stats_json(state, name).await?))
}

/// Shard counts and reshard progress; `rate_per_sec` is the average since the start.
async fn stats_json(state: &S3State, name: &str) -> Result<Value, AdminError> {
    let stats = state.index.shard_stats(name).await?;
    let objects: u64 = stats.objects_per_shard.iter().sum();
    let reshard = stats.reshard.map(|r| {
        let elapsed_s = state.index.now_ms().saturating_sub(r.started_ms) as f64 / 1000.0;
        json!({
            "target_shards": r.target.shards,
            "copied": r.copied,
            "total": objects,
            "progress": r.progress(objects),
            "rate_per_sec": if elapsed_s > 0.0 { r.copied as f64 / elapsed_s } else { 0.0 },
            "started": iso8601(r.started_ms),
        })
    });
    Ok(json!({
        "name": name,
        "shards": stats.shards,
        "objects_per_shard": stats.objects_per_shard,
        "objects": objects,
        "reshard": reshard,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert!(validate_user_name("alice.smith@team-1").is_ok());
        for bad in ["", "root", "has space", "slash/", &"a".repeat(65)] {
            assert!(validate_user_name(bad).is_err(), "{bad}");
        }
    }
}
