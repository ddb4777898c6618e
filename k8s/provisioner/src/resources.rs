//! The Kubernetes objects the provisioner reads (ObjectBucketClaim, StorageClass) and the
//! ones it keeps in the state a claim asks for (ObjectBucket, ConfigMap, Secret). Building
//! the desired objects is pure, so it is tested without a cluster.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{CustomResource, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The finalizer of the ObjectBucket API (shared with Rook's lib-bucket-provisioner).
pub const FINALIZER: &str = "objectbucket.io/finalizer";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "kura-provisioner";
pub const PROVISIONER_LABEL: &str = "bucket-provisioner";
/// Rook's API group is also the finalizer's domain.
const API_VERSION: &str = "objectbucket.io/v1alpha1";

/// A request for a bucket, in the application's namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "objectbucket.io",
    version = "v1alpha1",
    kind = "ObjectBucketClaim",
    plural = "objectbucketclaims",
    shortname = "obc",
    namespaced,
    status = "ClaimStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_bucket_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// `maxObjects`, `maxSize`; values are usually strings but YAML makes numbers easy to write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_config: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_bucket_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ClaimStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The cluster-wide record of a provisioned bucket, named `obc-<namespace>-<claim>`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "objectbucket.io",
    version = "v1alpha1",
    kind = "ObjectBucket",
    plural = "objectbuckets",
    shortname = "ob",
    status = "ObjectBucketStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ObjectBucketSpec {
    pub storage_class_name: String,
    pub reclaim_policy: String,
    pub claim_ref: ObjectReference,
    pub endpoint: BucketEndpoint,
    #[serde(default)]
    pub additional_state: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BucketEndpoint {
    pub bucket_host: String,
    pub bucket_port: u16,
    pub bucket_name: String,
    pub region: String,
    #[serde(default)]
    pub sub_region: String,
    #[serde(default)]
    pub additional_config: BTreeMap<String, Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ObjectBucketStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

/// Everything a claim resolves to before anything is created.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub bucket: String,
    /// The Kura user holding the claim's key: one per claim, named after its uid.
    pub user: String,
    /// An existing bucket named by the StorageClass (brownfield): never created or deleted.
    pub brownfield: bool,
    pub storage_class: String,
    pub reclaim_policy: String,
    pub endpoint: Endpoint,
    pub region: String,
}

/// Where pods reach Kura's S3 API.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub url: String,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim_end_matches('/');
        let uri: http::Uri = url
            .parse()
            .map_err(|_| format!("invalid endpoint URL {url:?}"))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => return Err(format!("endpoint {url:?} is not an http(s) URL")),
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("endpoint {url:?} has no host"))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!("endpoint {url:?} must not have a path"));
        }
        Ok(Self {
            url: url.to_owned(),
            host: host.trim_matches(['[', ']']).to_owned(),
            port: uri.port_u16().unwrap_or(default_port),
        })
    }
}

/// The Kura user of a claim. A uid is unique for the life of a cluster, so a claim deleted
/// and created again under the same name gets a fresh user and key.
pub fn claim_user(claim: &ObjectBucketClaim) -> Result<String, String> {
    claim
        .uid()
        .map(|uid| format!("obc-{uid}"))
        .ok_or_else(|| "the claim has no uid".to_owned())
}

pub fn object_bucket_name(namespace: &str, claim: &str) -> String {
    format!("obc-{namespace}-{claim}")
}

/// `prefix-xxxxxxxx`: the suffix is derived from the claim's uid, so every reconcile (and a
/// restarted provisioner) picks the same name without storing it first.
pub fn generated_bucket_name(prefix: &str, uid: &str) -> String {
    const SUFFIX: usize = 8;
    let digest = hex::encode(Sha256::digest(uid.as_bytes()));
    let prefix: String = prefix
        .chars()
        .take(63 - SUFFIX - 1)
        .collect::<String>()
        .trim_end_matches(['-', '.'])
        .to_owned();
    format!("{prefix}-{}", &digest[..SUFFIX])
}

/// S3's rules for bucket names (those AWS enforces for new buckets).
pub fn validate_bucket_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let valid_chars = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.');
    let edges_ok = bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    let ip_like = name.parse::<std::net::Ipv4Addr>().is_ok();
    if !(3..=63).contains(&bytes.len())
        || !valid_chars
        || !edges_ok
        || ip_like
        || name.contains("..")
        || name.contains(".-")
        || name.contains("-.")
    {
        return Err(format!(
            "{name:?} is not a valid bucket name: 3 to 63 lowercase letters, digits, hyphens and \
             dots, starting and ending with a letter or digit, not an IP address"
        ));
    }
    Ok(())
}

/// The claim as the owner of the objects made for it: deleting the claim deletes them.
pub fn owner_reference(claim: &ObjectBucketClaim) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.to_owned(),
        kind: "ObjectBucketClaim".to_owned(),
        name: claim.name_any(),
        uid: claim.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn labels(provisioner: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        // Label values cannot hold `/`.
        (PROVISIONER_LABEL.to_owned(), provisioner.replace('/', "-")),
    ])
}

/// Metadata of an object made for `claim` in its namespace.
pub fn child_meta(claim: &ObjectBucketClaim, provisioner: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(claim.name_any()),
        namespace: claim.namespace(),
        labels: Some(labels(provisioner)),
        owner_references: Some(vec![owner_reference(claim)]),
        finalizers: Some(vec![FINALIZER.to_owned()]),
        ..ObjectMeta::default()
    }
}

/// The ConfigMap a pod loads with `envFrom`: Rook's `BUCKET_*` keys, and the variables the
/// AWS SDKs and CLI read so that they need no code or flags.
pub fn config_map(claim: &ObjectBucketClaim, binding: &Binding, provisioner: &str) -> ConfigMap {
    let endpoint = &binding.endpoint;
    let data = [
        ("BUCKET_HOST", endpoint.host.clone()),
        ("BUCKET_PORT", endpoint.port.to_string()),
        ("BUCKET_NAME", binding.bucket.clone()),
        ("BUCKET_REGION", binding.region.clone()),
        ("BUCKET_SUBREGION", String::new()),
        ("AWS_ENDPOINT_URL_S3", endpoint.url.clone()),
        ("AWS_ENDPOINT_URL", endpoint.url.clone()),
        ("AWS_REGION", binding.region.clone()),
        // boto3 and the aws CLI v1 read the region from this one.
        ("AWS_DEFAULT_REGION", binding.region.clone()),
    ];
    ConfigMap {
        metadata: child_meta(claim, provisioner),
        data: Some(data.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
        ..ConfigMap::default()
    }
}

pub const ACCESS_KEY_FIELD: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_KEY_FIELD: &str = "AWS_SECRET_ACCESS_KEY";

pub fn secret(
    claim: &ObjectBucketClaim,
    provisioner: &str,
    access_key: &str,
    secret_key: &str,
) -> Secret {
    let data = [
        (ACCESS_KEY_FIELD, access_key),
        (SECRET_KEY_FIELD, secret_key),
    ];
    Secret {
        metadata: child_meta(claim, provisioner),
        type_: Some("Opaque".to_owned()),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// The access key a Secret made by [`secret`] holds.
pub fn secret_access_key(secret: &Secret) -> Option<String> {
    let value = secret.data.as_ref()?.get(ACCESS_KEY_FIELD)?;
    String::from_utf8(value.0.clone()).ok()
}

/// What the ObjectBucket remembers beyond the endpoint: who holds the key, and whether the
/// bucket was made for the claim (only such a bucket is ever deleted).
pub fn object_bucket(
    claim: &ObjectBucketClaim,
    binding: &Binding,
    provisioner: &str,
    access_key: &str,
) -> ObjectBucket {
    let namespace = claim.namespace().unwrap_or_default();
    let claim_ref = ObjectReference {
        api_version: Some(API_VERSION.to_owned()),
        kind: Some("ObjectBucketClaim".to_owned()),
        namespace: Some(namespace.clone()),
        name: Some(claim.name_any()),
        uid: claim.uid(),
        ..ObjectReference::default()
    };
    let additional_config = claim.spec.additional_config.clone().unwrap_or_default();
    let mut bucket = ObjectBucket::new(
        &object_bucket_name(&namespace, &claim.name_any()),
        ObjectBucketSpec {
            storage_class_name: binding.storage_class.clone(),
            reclaim_policy: binding.reclaim_policy.clone(),
            claim_ref,
            endpoint: BucketEndpoint {
                bucket_host: binding.endpoint.host.clone(),
                bucket_port: binding.endpoint.port,
                bucket_name: binding.bucket.clone(),
                region: binding.region.clone(),
                sub_region: String::new(),
                additional_config,
            },
            additional_state: BTreeMap::from([
                ("user".to_owned(), binding.user.clone()),
                ("accessKey".to_owned(), access_key.to_owned()),
                (
                    "createdBucket".to_owned(),
                    (!binding.brownfield).to_string(),
                ),
            ]),
        },
    );
    let meta = bucket.meta_mut();
    meta.labels = Some(labels(provisioner));
    meta.finalizers = Some(vec![FINALIZER.to_owned()]);
    bucket
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> ObjectBucketClaim {
        let mut claim = ObjectBucketClaim::new(
            "photos",
            ClaimSpec {
                generate_bucket_name: Some("photos".into()),
                storage_class_name: Some("kura-bucket".into()),
                additional_config: Some(BTreeMap::from([(
                    "maxObjects".to_owned(),
                    Value::from("100"),
                )])),
                ..ClaimSpec::default()
            },
        );
        claim.metadata.namespace = Some("shop".into());
        claim.metadata.uid = Some("5d1c9d6e-3a43-4c1e-9d64-0d4b8f0a2f11".into());
        claim
    }

    fn binding() -> Binding {
        Binding {
            bucket: "photos-1a2b3c4d".into(),
            user: "obc-5d1c9d6e-3a43-4c1e-9d64-0d4b8f0a2f11".into(),
            brownfield: false,
            storage_class: "kura-bucket".into(),
            reclaim_policy: "Delete".into(),
            endpoint: Endpoint::parse("http://kura.kura-system.svc:9000").unwrap(),
            region: "eu-west-1".into(),
        }
    }

    #[test]
    fn config_map_carries_rook_and_aws_variables() {
        let cm = config_map(&claim(), &binding(), "kura.dev/bucket");
        let data = cm.data.unwrap();
        let get = |k: &str| data.get(k).map(String::as_str);
        assert_eq!(get("BUCKET_HOST"), Some("kura.kura-system.svc"));
        assert_eq!(get("BUCKET_PORT"), Some("9000"));
        assert_eq!(get("BUCKET_NAME"), Some("photos-1a2b3c4d"));
        assert_eq!(get("BUCKET_REGION"), Some("eu-west-1"));
        assert_eq!(get("BUCKET_SUBREGION"), Some(""));
        assert_eq!(
            get("AWS_ENDPOINT_URL_S3"),
            Some("http://kura.kura-system.svc:9000")
        );
        assert_eq!(get("AWS_ENDPOINT_URL"), get("AWS_ENDPOINT_URL_S3"));
        assert_eq!(get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(get("AWS_DEFAULT_REGION"), Some("eu-west-1"));
        assert_eq!(data.len(), 9);
        assert_eq!(cm.metadata.name.as_deref(), Some("photos"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("shop"));
        let labels = cm.metadata.labels.unwrap();
        assert_eq!(labels[PROVISIONER_LABEL], "kura.dev-bucket");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
    }

    #[test]
    fn children_are_owned_by_the_claim_and_carry_the_finalizer() {
        let claim = claim();
        let cm = config_map(&claim, &binding(), "kura.dev/bucket");
        let secret = secret(&claim, "kura.dev/bucket", "AKID", "SECRET");
        for meta in [&cm.metadata, &secret.metadata] {
            let owners = meta.owner_references.as_ref().unwrap();
            assert_eq!(owners.len(), 1);
            let owner = &owners[0];
            assert_eq!(owner.api_version, "objectbucket.io/v1alpha1");
            assert_eq!(owner.kind, "ObjectBucketClaim");
            assert_eq!(owner.name, "photos");
            assert_eq!(owner.uid, "5d1c9d6e-3a43-4c1e-9d64-0d4b8f0a2f11");
            assert_eq!(owner.controller, Some(true));
            assert_eq!(owner.block_owner_deletion, Some(true));
            assert_eq!(
                meta.finalizers.as_deref(),
                Some(&[FINALIZER.to_owned()][..])
            );
        }
    }

    #[test]
    fn secret_holds_the_key_pair_and_reads_back() {
        let secret = secret(&claim(), "kura.dev/bucket", "AKID", "SECRET");
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        let data = secret.data.as_ref().unwrap();
        assert_eq!(data[ACCESS_KEY_FIELD].0, b"AKID");
        assert_eq!(data[SECRET_KEY_FIELD].0, b"SECRET");
        assert_eq!(data.len(), 2);
        assert_eq!(secret_access_key(&secret).as_deref(), Some("AKID"));
        // On the wire, Secret data is base64.
        let json = serde_json::to_value(&secret).unwrap();
        assert_eq!(json["data"][ACCESS_KEY_FIELD], "QUtJRA==");
    }

    #[test]
    fn object_bucket_records_claim_endpoint_and_state() {
        let ob = object_bucket(&claim(), &binding(), "kura.dev/bucket", "AKID");
        assert_eq!(ob.metadata.name.as_deref(), Some("obc-shop-photos"));
        assert_eq!(ob.metadata.namespace, None);
        assert_eq!(
            ob.metadata.finalizers.as_deref(),
            Some(&[FINALIZER.to_owned()][..])
        );
        let spec = &ob.spec;
        assert_eq!(spec.claim_ref.namespace.as_deref(), Some("shop"));
        assert_eq!(spec.claim_ref.name.as_deref(), Some("photos"));
        assert_eq!(
            spec.claim_ref.uid.as_deref(),
            Some("5d1c9d6e-3a43-4c1e-9d64-0d4b8f0a2f11")
        );
        assert_eq!(spec.reclaim_policy, "Delete");
        assert_eq!(spec.endpoint.bucket_port, 9000);
        assert_eq!(spec.endpoint.bucket_name, "photos-1a2b3c4d");
        assert_eq!(spec.endpoint.additional_config["maxObjects"], "100");
        assert_eq!(spec.additional_state["createdBucket"], "true");
        assert_eq!(spec.additional_state["accessKey"], "AKID");
        let json = serde_json::to_value(&ob).unwrap();
        assert_eq!(json["apiVersion"], "objectbucket.io/v1alpha1");
        assert_eq!(json["kind"], "ObjectBucket");
        assert_eq!(json["spec"]["claimRef"]["kind"], "ObjectBucketClaim");
        assert_eq!(
            json["spec"]["endpoint"]["bucketHost"],
            "kura.kura-system.svc"
        );
    }

    #[test]
    fn generated_names_are_stable_valid_and_bounded() {
        let uid = "5d1c9d6e-3a43-4c1e-9d64-0d4b8f0a2f11";
        let name = generated_bucket_name("photos", uid);
        assert_eq!(name, generated_bucket_name("photos", uid));
        assert_ne!(name, generated_bucket_name("photos", "another-uid"));
        assert!(name.starts_with("photos-") && name.len() == 15, "{name}");
        validate_bucket_name(&name).unwrap();
        let long = generated_bucket_name(&"a".repeat(80), uid);
        assert_eq!(long.len(), 63);
        validate_bucket_name(&long).unwrap();
        // A prefix cut just before a hyphen does not leave `--`.
        let cut = generated_bucket_name(&format!("{}-b", "a".repeat(53)), uid);
        assert!(!cut.contains("--"), "{cut}");
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "my-bucket.v2", "0bucket9", &"a".repeat(63)] {
            validate_bucket_name(good).unwrap();
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Upper",
            "under_score",
            "-start",
            "end-",
            "a..b",
            "a.-b",
            "192.168.1.1",
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_give_host_and_port() {
        let e = Endpoint::parse("https://s3.example.test/").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("s3.example.test", 443));
        assert_eq!(e.url, "https://s3.example.test");
        let e = Endpoint::parse("http://[::1]:9000").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9000));
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("http://x/path").is_err());
    }
}
