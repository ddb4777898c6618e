//! One claim's reconciliation: make Kura and the cluster match what the claim asks for, or,
//! when it is being deleted, undo it. Every step reads the current state first and changes
//! only what differs, so running it twice, or after a crash at any point, is harmless.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{self, Event as Finalizer};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::access::{self, Access};
use super::kura::{BucketInfo, Kura, Quota};
use super::resources::{
    Binding, Endpoint, FINALIZER, ObjectBucket, ObjectBucketClaim, child_meta, claim_user,
    config_map, generated_bucket_name, object_bucket, object_bucket_name, secret,
    secret_access_key, validate_bucket_name,
};
use kura_admin_client::AdminError;
use kura_admin_client::size::parse_size;

/// Bound claims are looked at again this often, to repair anything changed behind our back.
const RESYNC: Duration = Duration::from_secs(300);
/// A claim that cannot be provisioned as written is retried at this pace (its StorageClass
/// or bucket may appear later).
const FAILED_RETRY: Duration = Duration::from_secs(60);
const FIELD_MANAGER: &str = "kura-provisioner";

pub struct Context {
    pub client: kube::Client,
    pub kura: Kura,
    pub recorder: Recorder,
    pub provisioner: String,
    pub default_endpoint: Endpoint,
    pub default_region: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("Kura admin API: {0}")]
    Kura(#[from] AdminError),
    /// The claim cannot be provisioned as it is written: phase Failed until it changes.
    #[error("{reason}: {message}")]
    Invalid {
        reason: &'static str,
        message: String,
    },
    #[error(transparent)]
    Finalizer(Box<finalizer::Error<Error>>),
}

fn invalid(reason: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid {
        reason,
        message: message.into(),
    }
}

pub async fn reconcile(claim: Arc<ObjectBucketClaim>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = claim.namespace().unwrap_or_default();
    let class = storage_class(&ctx, &claim).await?;
    if !is_ours(&ctx, &claim, class.as_ref()).await? {
        return Ok(Action::await_change());
    }
    let claims: Api<ObjectBucketClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    let outcome = finalizer::finalizer(&claims, FINALIZER, claim.clone(), |event| async {
        match event {
            Finalizer::Apply(claim) => provision(&ctx, &claims, &claim, class.as_ref()).await,
            Finalizer::Cleanup(claim) => release(&ctx, &claim, class.as_ref()).await,
        }
    })
    .await;
    match outcome {
        Ok(action) => Ok(action),
        Err(finalizer::Error::ApplyFailed(Error::Invalid { reason, message })) => {
            set_phase(&ctx, &claims, &claim, "Failed", Some((reason, &message))).await?;
            Ok(Action::requeue(FAILED_RETRY))
        }
        // The claim went away while we released it: nothing is left to do.
        Err(finalizer::Error::RemoveFinalizer(kube::Error::Api(e))) if e.code == 404 => {
            Ok(Action::await_change())
        }
        Err(err) => Err(Error::Finalizer(Box::new(err))),
    }
}

/// Transient failures (Kura or the API server unreachable, conflicts) are retried soon.
pub fn error_policy(claim: Arc<ObjectBucketClaim>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(
        claim = %format!("{}/{}", claim.namespace().unwrap_or_default(), claim.name_any()),
        "reconcile failed, retrying: {error}"
    );
    Action::requeue(Duration::from_secs(5))
}

async fn storage_class(
    ctx: &Context,
    claim: &ObjectBucketClaim,
) -> Result<Option<StorageClass>, Error> {
    let Some(name) = claim.spec.storage_class_name.as_deref() else {
        return Ok(None);
    };
    Ok(Api::<StorageClass>::all(ctx.client.clone())
        .get_opt(name)
        .await?)
}

/// A claim is ours when its StorageClass names this provisioner. Once that class is gone,
/// the ObjectBucket we made for the claim still says so (needed to release it).
async fn is_ours(
    ctx: &Context,
    claim: &ObjectBucketClaim,
    class: Option<&StorageClass>,
) -> Result<bool, Error> {
    if let Some(class) = class {
        return Ok(class.provisioner == ctx.provisioner);
    }
    Ok(existing_object_bucket(ctx, claim).await?.is_some())
}

async fn existing_object_bucket(
    ctx: &Context,
    claim: &ObjectBucketClaim,
) -> Result<Option<ObjectBucket>, Error> {
    let name = object_bucket_name(&claim.namespace().unwrap_or_default(), &claim.name_any());
    let found = Api::<ObjectBucket>::all(ctx.client.clone())
        .get_opt(&name)
        .await?;
    Ok(found.filter(|ob| ob.spec.claim_ref.uid == claim.uid()))
}

/// Resolves what the claim asks for, refusing what cannot work.
fn bind(ctx: &Context, claim: &ObjectBucketClaim, class: &StorageClass) -> Result<Binding, Error> {
    let parameters = class.parameters.clone().unwrap_or_default();
    let existing = parameters.get("bucketName").filter(|n| !n.is_empty());
    let (bucket, brownfield) = match (
        existing,
        claim.spec.bucket_name.as_deref().filter(|n| !n.is_empty()),
        claim
            .spec
            .generate_bucket_name
            .as_deref()
            .filter(|n| !n.is_empty()),
    ) {
        (Some(existing), _, _) => (existing.clone(), true),
        (None, Some(name), _) => (name.to_owned(), false),
        (None, None, Some(prefix)) => (
            generated_bucket_name(prefix, &claim.uid().unwrap_or_default()),
            false,
        ),
        (None, None, None) => {
            return Err(invalid(
                "NoBucketName",
                "set spec.bucketName or spec.generateBucketName",
            ));
        }
    };
    validate_bucket_name(&bucket).map_err(|m| invalid("InvalidBucketName", m))?;
    let endpoint = match parameters.get("endpoint") {
        Some(url) => Endpoint::parse(url).map_err(|m| invalid("InvalidStorageClass", m))?,
        None => ctx.default_endpoint.clone(),
    };
    Ok(Binding {
        bucket,
        user: claim_user(claim).map_err(|m| invalid("InvalidClaim", m))?,
        brownfield,
        storage_class: class.name_any(),
        reclaim_policy: class
            .reclaim_policy
            .clone()
            .unwrap_or_else(|| "Delete".to_owned()),
        endpoint,
        region: parameters
            .get("region")
            .cloned()
            .unwrap_or_else(|| ctx.default_region.clone()),
    })
}

/// `maxObjects` and `maxSize` from `spec.additionalConfig`.
fn quota(claim: &ObjectBucketClaim) -> Result<Quota, Error> {
    let config = claim.spec.additional_config.clone().unwrap_or_default();
    let text = |name: &str| {
        config.get(name).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let max_objects = text("maxObjects")
        .map(|t| {
            t.trim().parse::<u64>().map_err(|_| {
                invalid(
                    "InvalidQuota",
                    format!("maxObjects {t:?} is not a whole number"),
                )
            })
        })
        .transpose()?;
    let max_bytes = text("maxSize")
        .map(|t| parse_size(&t).map_err(|m| invalid("InvalidQuota", format!("maxSize {t:?}: {m}"))))
        .transpose()?;
    Ok(Quota {
        max_objects,
        max_bytes,
    })
}

/// `access` and `publicRead` from `spec.additionalConfig`: read-only is for a claim on an
/// existing bucket (a claim's own bucket is its user's), public reads for the claim's own
/// bucket (not another team's).
fn wanted_access(claim: &ObjectBucketClaim, binding: &Binding) -> Result<Access, Error> {
    let config = claim.spec.additional_config.clone().unwrap_or_default();
    let wanted = Access::from_config(&config).map_err(|m| invalid("InvalidClaim", m))?;
    if wanted.read_only && !binding.brownfield {
        return Err(invalid(
            "InvalidClaim",
            "access: read-only needs a StorageClass that names an existing bucket",
        ));
    }
    if wanted.public_read && binding.brownfield {
        return Err(invalid(
            "InvalidClaim",
            "publicRead is only for a bucket made for the claim",
        ));
    }
    Ok(wanted)
}

/// Makes the bucket policy hold `statement` under `sid` (or not at all), changing it only
/// when it differs.
async fn keep_statement(
    ctx: &Context,
    name: &str,
    bucket: &BucketInfo,
    sid: &str,
    statement: Option<Value>,
) -> Result<(), Error> {
    let current = bucket.access.policy.as_ref();
    let desired = access::with_statement(current, sid, statement);
    if desired.as_ref() != current {
        ctx.kura.set_policy(name, desired.as_ref()).await?;
    }
    Ok(())
}

async fn provision(
    ctx: &Context,
    claims: &Api<ObjectBucketClaim>,
    claim: &ObjectBucketClaim,
    class: Option<&StorageClass>,
) -> Result<Action, Error> {
    // A claim without its StorageClass is ours only if we bound it before the class was
    // deleted: what exists keeps working, and nothing can be re-resolved.
    let Some(class) = class else {
        return Ok(Action::requeue(RESYNC));
    };
    let binding = bind(ctx, claim, class)?;
    let quota = quota(claim)?;
    let wanted = wanted_access(claim, &binding)?;
    if claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_none()
    {
        set_phase(ctx, claims, claim, "Pending", None).await?;
        publish(
            ctx,
            claim,
            EventType::Normal,
            "Provisioning",
            format!("provisioning bucket {}", binding.bucket),
        )
        .await;
    }

    ctx.kura.ensure_user(&binding.user).await?;
    if !binding.brownfield
        && !ctx
            .kura
            .ensure_bucket(&binding.bucket, &binding.user)
            .await?
    {
        return Err(invalid(
            "BucketExists",
            format!(
                "bucket {:?} already exists and belongs to someone else",
                binding.bucket
            ),
        ));
    }
    let Some(bucket) = ctx.kura.bucket(&binding.bucket).await? else {
        return Err(invalid(
            "NoSuchBucket",
            format!(
                "the StorageClass names bucket {:?}, which does not exist",
                binding.bucket
            ),
        ));
    };
    // A brownfield claim's user gets the bucket through a grant (read-write) or a policy
    // statement (read-only); a claim's own bucket may be opened to public reads.
    let granted = bucket.grants.contains(&binding.user);
    let full_access = binding.brownfield && !wanted.read_only;
    if full_access && !granted {
        ctx.kura.grant(&binding.bucket, &binding.user).await?;
    } else if !full_access && granted {
        ctx.kura
            .revoke_grant(&binding.bucket, &binding.user)
            .await?;
    }
    let blocked = bucket
        .access
        .public_access_block
        .as_ref()
        .is_some_and(|b| b.block_public_policy || b.restrict_public_buckets);
    if wanted.public_read && blocked {
        return Err(invalid(
            "InvalidClaim",
            "publicRead: the bucket's public access block keeps public policies from working \
             (Kura runs with --new-bucket-defaults aws-2023)",
        ));
    }
    let (sid, statement) = if binding.brownfield {
        let statement = wanted
            .read_only
            .then(|| access::read_only_statement(&binding.bucket, &binding.user));
        (access::read_only_sid(&binding.user), statement)
    } else {
        let statement = wanted
            .public_read
            .then(|| access::public_read_statement(&binding.bucket));
        (access::PUBLIC_READ_SID.to_owned(), statement)
    };
    keep_statement(ctx, &binding.bucket, &bucket, &sid, statement).await?;
    // A brownfield bucket's quota is its owner's business unless the claim sets one.
    let wants_quota = !binding.brownfield || quota != Quota::default();
    if wants_quota && bucket.quota != quota {
        ctx.kura.set_quota(&binding.bucket, quota).await?;
    }

    let access_key = ensure_key(ctx, claim, &binding).await?;
    let namespace = claim.namespace().unwrap_or_default();
    let desired = config_map(claim, &binding, &ctx.provisioner);
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let current = config_maps.get_opt(&claim.name_any()).await?;
    if current
        .as_ref()
        .map(|c| (&c.data, &c.metadata.owner_references))
        != Some((&desired.data, &desired.metadata.owner_references))
    {
        apply(&config_maps, &claim.name_any(), &desired).await?;
    }

    let desired = object_bucket(claim, &binding, &ctx.provisioner, &access_key);
    let buckets: Api<ObjectBucket> = Api::all(ctx.client.clone());
    let name = desired.name_any();
    let current = buckets.get_opt(&name).await?;
    if current.as_ref().map(|c| &c.spec) != Some(&desired.spec) {
        apply(&buckets, &name, &desired).await?;
    }
    if current
        .and_then(|c| c.status)
        .and_then(|s| s.phase)
        .as_deref()
        != Some("Bound")
    {
        let status = json!({ "status": { "phase": "Bound" } });
        buckets
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
    }

    // Record the generated bucket name and the ObjectBucket in the claim, as Rook does.
    let mut spec = serde_json::Map::new();
    if claim.spec.object_bucket_name.as_deref() != Some(name.as_str()) {
        spec.insert("objectBucketName".into(), name.clone().into());
    }
    if !binding.brownfield && claim.spec.bucket_name.as_deref() != Some(binding.bucket.as_str()) {
        spec.insert("bucketName".into(), binding.bucket.clone().into());
    }
    if !spec.is_empty() {
        claims
            .patch(
                &claim.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await?;
    }
    let status = claim.status.clone().unwrap_or_default();
    if status.phase.as_deref() != Some("Bound") || status.reason.is_some() {
        set_phase(ctx, claims, claim, "Bound", None).await?;
        publish(
            ctx,
            claim,
            EventType::Normal,
            "Bound",
            format!(
                "bucket {} is ready; ConfigMap and Secret {}",
                binding.bucket,
                claim.name_any()
            ),
        )
        .await;
    }
    Ok(Action::requeue(RESYNC))
}

/// Makes the claim's Secret hold the one working key of the claim's user. A key whose
/// Secret was never written (a crash in between) is revoked, so none leaks.
async fn ensure_key(
    ctx: &Context,
    claim: &ObjectBucketClaim,
    binding: &Binding,
) -> Result<String, Error> {
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &claim.namespace().unwrap_or_default());
    let active = ctx.kura.active_keys(&binding.user).await?;
    let current = secrets.get_opt(&claim.name_any()).await?;
    let kept = current
        .as_ref()
        .and_then(secret_access_key)
        .filter(|key| active.contains(key));
    let access_key = match kept {
        Some(key) => {
            let current = current.expect("a kept key comes from the Secret");
            let desired = child_meta(claim, &ctx.provisioner);
            if current.metadata.owner_references != desired.owner_references {
                // Keep the key pair, repair the metadata.
                let mut repaired = current.clone();
                repaired.metadata = desired;
                apply(&secrets, &claim.name_any(), &repaired).await?;
            }
            key
        }
        None => {
            let key = ctx.kura.create_key(&binding.user).await?;
            let desired = secret(claim, &ctx.provisioner, &key.access_key, &key.secret_key);
            apply(&secrets, &claim.name_any(), &desired).await?;
            key.access_key
        }
    };
    for stale in active.iter().filter(|k| **k != access_key) {
        ctx.kura.revoke_key(stale).await?;
    }
    Ok(access_key)
}

/// The claim is being deleted: revoke its access, delete or keep the bucket per the reclaim
/// policy, and let the objects made for it go.
async fn release(
    ctx: &Context,
    claim: &ObjectBucketClaim,
    class: Option<&StorageClass>,
) -> Result<Action, Error> {
    let user = claim_user(claim).map_err(|m| invalid("InvalidClaim", m))?;
    let recorded = existing_object_bucket(ctx, claim).await?;
    for key in ctx.kura.active_keys(&user).await? {
        ctx.kura.revoke_key(&key).await?;
    }
    publish(
        ctx,
        claim,
        EventType::Normal,
        "Revoked",
        format!("access keys of {user} revoked"),
    )
    .await;

    let bucket = recorded
        .as_ref()
        .map(|ob| ob.spec.endpoint.bucket_name.clone())
        .or_else(|| {
            class
                .and_then(|c| bind(ctx, claim, c).ok())
                .map(|b| b.bucket)
        });
    let reclaim = class
        .and_then(|c| c.reclaim_policy.clone())
        .or_else(|| recorded.as_ref().map(|ob| ob.spec.reclaim_policy.clone()))
        .unwrap_or_else(|| "Delete".to_owned());
    if let Some(bucket) = bucket {
        // Only a bucket made for this claim is ever deleted: its owner is the claim's user.
        let info = ctx.kura.bucket(&bucket).await?;
        let owner = info.as_ref().map(|b| b.owner.clone());
        if let Some(info) = info.as_ref().filter(|b| b.owner != user) {
            keep_statement(ctx, &bucket, info, &access::read_only_sid(&user), None).await?;
        }
        if owner.as_deref() == Some(user.as_str()) && reclaim == "Delete" {
            ctx.kura.purge_bucket(&bucket).await?;
            publish(
                ctx,
                claim,
                EventType::Normal,
                "BucketDeleted",
                format!("bucket {bucket} deleted"),
            )
            .await;
        } else if owner.is_some() {
            ctx.kura.revoke_grant(&bucket, &user).await?;
            publish(
                ctx,
                claim,
                EventType::Normal,
                "BucketRetained",
                format!("bucket {bucket} retained (reclaimPolicy {reclaim})"),
            )
            .await;
        }
    }
    // Keeps a user who still owns a retained bucket: its keys are revoked, the bucket stays
    // reachable by the administrator.
    ctx.kura.delete_user_if_unused(&user).await?;

    let namespace = claim.namespace().unwrap_or_default();
    let name = claim.name_any();
    let obc_name = object_bucket_name(&namespace, &name);
    release_child(&Api::<ObjectBucket>::all(ctx.client.clone()), &obc_name).await?;
    release_child(
        &Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace),
        &name,
    )
    .await?;
    release_child(
        &Api::<Secret>::namespaced(ctx.client.clone(), &namespace),
        &name,
    )
    .await?;
    Ok(Action::await_change())
}

/// Drops our finalizer from an object made for a claim and deletes it. Objects someone else
/// made under that name (no owner reference to a claim of ours) are left alone.
async fn release_child<K>(api: &Api<K>, name: &str) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(object) = api.get_opt(name).await? else {
        return Ok(());
    };
    let labels = object.labels();
    if labels
        .get(super::resources::MANAGED_BY_LABEL)
        .map(String::as_str)
        != Some(super::resources::MANAGED_BY)
    {
        return Ok(());
    }
    if object.finalizers().iter().any(|f| f == FINALIZER) {
        let remaining: Vec<&String> = object
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .collect();
        let patch = json!({
            "metadata": { "finalizers": remaining, "resourceVersion": object.resource_version() }
        });
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates or updates an object to `desired` (server-side apply, our field manager).
async fn apply<K>(api: &Api<K>, name: &str, desired: &K) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(name, &params, &Patch::Apply(desired)).await?;
    Ok(())
}

async fn set_phase(
    ctx: &Context,
    claims: &Api<ObjectBucketClaim>,
    claim: &ObjectBucketClaim,
    phase: &str,
    failure: Option<(&str, &str)>,
) -> Result<(), Error> {
    let current = claim.status.clone().unwrap_or_default();
    let (reason, message) = failure.unzip();
    if current.phase.as_deref() == Some(phase)
        && current.reason.as_deref() == reason
        && current.message.as_deref() == message
    {
        return Ok(());
    }
    let status = json!({ "status": { "phase": phase, "reason": reason, "message": message } });
    claims
        .patch_status(
            &claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await?;
    if let Some((reason, message)) = failure {
        publish(
            ctx,
            claim,
            EventType::Warning,
            "ProvisioningFailed",
            format!("{reason}: {message}"),
        )
        .await;
    }
    Ok(())
}

/// Events help people see what happened; failing to publish one must not fail the work.
async fn publish(
    ctx: &Context,
    claim: &ObjectBucketClaim,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Provision".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &claim.object_ref(&())).await {
        tracing::warn!("cannot publish event {reason}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ClaimSpec;
    use std::collections::BTreeMap;

    fn claim_with(config: &[(&str, Value)]) -> ObjectBucketClaim {
        ObjectBucketClaim::new(
            "c",
            ClaimSpec {
                additional_config: Some(
                    config
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), v.clone()))
                        .collect::<BTreeMap<_, _>>(),
                ),
                ..ClaimSpec::default()
            },
        )
    }

    #[test]
    fn quotas_come_from_additional_config() {
        let q = quota(&claim_with(&[
            ("maxObjects", "1000".into()),
            ("maxSize", "2Gi".into()),
        ]))
        .unwrap();
        assert_eq!((q.max_objects, q.max_bytes), (Some(1000), Some(2 << 30)));
        let q = quota(&claim_with(&[
            ("maxObjects", 5.into()),
            ("maxSize", "500M".into()),
        ]))
        .unwrap();
        assert_eq!((q.max_objects, q.max_bytes), (Some(5), Some(500_000_000)));
        assert_eq!(quota(&claim_with(&[])).unwrap(), Quota::default());
        for bad in [
            ("maxObjects", Value::from("many")),
            ("maxSize", Value::from("2 parsecs")),
        ] {
            assert!(matches!(
                quota(&claim_with(&[bad])),
                Err(Error::Invalid {
                    reason: "InvalidQuota",
                    ..
                })
            ));
        }
    }
}
