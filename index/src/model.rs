//! The records stored in the index maps, and where each one lives.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Orders writes to the same key: wall-clock milliseconds, then a counter
/// that breaks ties (and survives a clock stepping backwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp {
    pub ms: u64,
    pub seq: u64,
}

#[derive(Default)]
pub(crate) struct Clock {
    last: AtomicU64,
}

impl Clock {
    /// A stamp strictly after every stamp this clock gave before.
    pub(crate) fn stamp(&self) -> Stamp {
        let now = unix_ms();
        let mut seq = 0;
        let _ = self
            .last
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |prev| {
                seq = prev + 1;
                Some(seq)
            });
        Stamp { ms: now, seq }
    }
}

pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How a bucket's objects are spread over maps. A new generation is a new
/// set of maps, which is what lets a reshard build the next layout beside
/// the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLayout {
    pub generation: u64,
    pub shards: u32,
}

impl ShardLayout {
    /// The shard that holds `key`.
    pub fn shard_of(&self, key: &str) -> u32 {
        // FNV-1a: stable across builds and platforms, unlike std's hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in key.as_bytes() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        (hash % u64::from(self.shards)) as u32
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    /// This incarnation of the bucket: its index maps are named after it, so a bucket
    /// deleted and created again starts on maps of its own. Buckets made before ids
    /// existed have none, and their maps are named after the bucket.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub owner: String,
    pub created_ms: u64,
    pub region: String,
    pub layout: ShardLayout,
    #[serde(default)]
    pub quota: Quota,
    /// A move to another layout under way, if any.
    #[serde(default)]
    pub reshard: Option<Reshard>,
    /// Users besides the owner allowed to use the bucket (e.g. a brownfield bucket claim).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<String>,
    /// The bucket's tags (key, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// The bucket's CORS rules, if it has a CORS configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Vec<CorsRule>>,
    /// The bucket's default encryption for new objects (`AES256`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_encryption: Option<DefaultEncryption>,
    /// The bucket's lifecycle rules, if it has a lifecycle configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Vec<LifecycleRule>>,
    /// The last (or current) pass applying the lifecycle rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_pass: Option<LifecyclePass>,
    /// The bucket policy (JSON), as it was given and validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The bucket's ACL; None is the default (the owner has FULL_CONTROL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    /// S3 Object Ownership (`BucketOwnerEnforced`, `BucketOwnerPreferred`, `ObjectWriter`);
    /// None: no ownership controls, which behaves as `ObjectWriter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<String>,
    /// The bucket's public access block, if one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access_block: Option<PublicAccessBlock>,
    /// Whether writes keep the versions they replace (see `Versioning`).
    #[serde(default, skip_serializing_if = "Versioning::is_unversioned")]
    pub versioning: Versioning,
    /// Object Lock, if enabled on the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLockConfig>,
    /// Where server access logs of the bucket's requests go, if logging is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<BucketLogging>,
}

/// A bucket's server access logging (S3's LoggingEnabled), as validated and stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BucketLogging {
    pub target_bucket: String,
    pub target_prefix: String,
    /// How log objects' keys are made (S3's TargetObjectKeyFormat).
    #[serde(default)]
    pub key_format: LogKeyFormat,
    /// Grants log objects carry besides their owner's FULL_CONTROL (S3's TargetGrants).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<AclGrant>,
}

/// S3's TargetObjectKeyFormat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogKeyFormat {
    /// `[prefix][YYYY]-[MM]-[DD]-[hh]-[mm]-[ss]-[unique]`.
    #[default]
    Simple,
    /// `[prefix][owner]/[region]/[bucket]/[YYYY]/[MM]/[DD]/` then the simple form, dated
    /// by the records' time (`EventTime`) or the delivery's (`DeliveryTime`).
    Partitioned { event_time: bool },
}

/// A bucket's versioning state. Once enabled it can be suspended, never turned off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    /// Never enabled: every write replaces the `null` version.
    #[default]
    Unversioned,
    /// Every write adds a version with an id of its own; deletes add delete markers.
    Enabled,
    /// Writes replace the `null` version (and deletes make it a delete marker); the
    /// versions written while enabled are kept.
    Suspended,
}

impl Versioning {
    fn is_unversioned(&self) -> bool {
        *self == Versioning::Unversioned
    }
}

/// An access control list: who (besides the owner's implicit rights) may do what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub grants: Vec<AclGrant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclGrant {
    pub grantee: AclGrantee,
    /// `FULL_CONTROL`, `READ`, `WRITE`, `READ_ACP` or `WRITE_ACP`.
    pub permission: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AclGrantee {
    /// A user, by name (requests without credentials act as the user `""`).
    User(String),
    /// A predefined group, by its URI (`http://acs.amazonaws.com/groups/global/AllUsers`, …).
    Group(String),
}

/// S3's PublicAccessBlockConfiguration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// A pass of the lifecycle worker over one bucket, saved after every step so that a
/// restart goes on where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecyclePass {
    pub started_ms: u64,
    /// Where the pass goes on; None once it is finished.
    pub next: Option<PassCursor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    pub objects_expired: u64,
    pub uploads_aborted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PassCursor {
    /// Objects after this key (from the first when None).
    Objects(Option<String>),
    /// Versions after this one (from the first when None).
    Versions(Option<VersionsCursor>),
    /// Uploads after this key and upload id (from the first when None).
    Uploads(Option<(String, String)>),
}

/// Where a lifecycle pass over a bucket's versions goes on, and what it knows of the key
/// it stopped in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionsCursor {
    pub key: String,
    pub version_id: String,
    /// When that version was written: when the key's next (older) version became
    /// noncurrent.
    pub written_ms: u64,
    /// How many of the key's noncurrent versions came before.
    pub noncurrent: u32,
}

/// A bucket's default encryption (S3's ServerSideEncryptionConfiguration), as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultEncryption {
    /// `AES256` (SSE-S3) or `aws:kms` (SSE-KMS).
    pub algorithm: String,
    /// SSE-KMS: the key new objects are encrypted under (None: the default key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_master_key_id: Option<String>,
    #[serde(default)]
    pub bucket_key_enabled: bool,
}

/// One lifecycle rule of a bucket (S3's LifecycleRule), as validated and stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    pub id: String,
    pub enabled: bool,
    pub filter: LifecycleFilter,
    /// Current versions expire this many days after they were written...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<u32>,
    /// ...or on this date (midnight UTC, Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_object_delete_marker: Option<bool>,
    /// Multipart uploads are aborted this many days after they were started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_days: Option<u32>,
    /// Noncurrent versions expire this many days after they became noncurrent...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_days: Option<u32>,
    /// ...except the newest this many of each key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_noncurrent_versions: Option<u32>,
    /// Transitions to the storage classes Kura has (stored, nothing to move).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<LifecycleTransition>,
}

/// Which objects a lifecycle rule applies to, in the shape it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleFilter {
    /// An empty `<Filter/>`: every object.
    #[default]
    All,
    /// The legacy `<Prefix>` of a rule, outside any `<Filter>`.
    LegacyPrefix(String),
    Prefix(String),
    Tag(String, String),
    SizeGreaterThan(u64),
    SizeLessThan(u64),
    And {
        prefix: Option<String>,
        tags: Vec<(String, String)>,
        size_greater_than: Option<u64>,
        size_less_than: Option<u64>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleTransition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_ms: Option<u64>,
    pub storage_class: String,
}

/// One CORS rule of a bucket (S3's CORSRule), as it was validated and stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_origins: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
}

impl BucketRecord {
    /// What the bucket's index maps are named after.
    pub(crate) fn map_id(&self) -> &str {
        if self.id.is_empty() {
            &self.name
        } else {
            &self.id
        }
    }

    /// The map of `layout`'s shard `shard`.
    pub(crate) fn shard_map(&self, layout: &ShardLayout, shard: u32) -> String {
        shard_map_name(self.map_id(), layout, shard)
    }

    /// The map of the current layout that holds `key`.
    pub(crate) fn key_map(&self, key: &str) -> String {
        self.shard_map(&self.layout, self.layout.shard_of(key))
    }

    /// Every map of the current layout.
    pub(crate) fn shard_maps(&self) -> Vec<String> {
        (0..self.layout.shards)
            .map(|shard| self.shard_map(&self.layout, shard))
            .collect()
    }

    /// The map of the bucket's multipart uploads and their parts.
    pub(crate) fn upload_map(&self) -> String {
        format!("u/{}", self.map_id())
    }
}

/// The map of `layout`'s shard `shard` of the bucket whose maps are named after `map_id`.
pub(crate) fn shard_map_name(map_id: &str, layout: &ShardLayout, shard: u32) -> String {
    format!("o/{map_id}/{}/{shard}", layout.generation)
}

/// An online reshard (see `reshard.rs`): every entry of the current layout is copied to
/// `target` while the source shards log what changes meanwhile; the log is replayed, and
/// writes pause only for the last replay and the switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reshard {
    pub target: ShardLayout,
    pub started_ms: u64,
    /// Entries (versions) copied so far.
    pub copied: u64,
    /// Stored entries the copy has read so far, of every space (`versions.rs`): a shard's
    /// current entries and heads sort before its versions, so `copied` stands still for
    /// the first two thirds of each shard while this grows evenly.
    #[serde(default)]
    pub read: u64,
    #[serde(default)]
    pub phase: ReshardPhase,
    /// The gateway running the reshard, and until when; another may take over after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// When the lease holder began its switch: every gateway's writers keep off the source
    /// shards for a short while from then, so that they do not race the freezes. A hint
    /// only (the freezes keep writes out); a switch that fails leaves it to lapse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switching_since_ms: Option<u64>,
}

/// How long a switch's hint holds writers off: longer than a switch takes, short enough
/// that one which failed costs writers little. Clocks of gateways apart by more than this
/// make the hint lapse, not last.
const SWITCH_HINT_MS: u64 = 1_000;

impl Reshard {
    /// Whether this reshard is run by the lease holder of `epoch`, towards `target`.
    pub(crate) fn is_run_by(&self, target: &ShardLayout, epoch: u64) -> bool {
        self.target == *target && self.lease.as_ref().is_some_and(|l| l.epoch == epoch)
    }

    /// Whether writers keep off the source shards at `now_ms`: a switch began less than
    /// `SWITCH_HINT_MS` ago.
    pub(crate) fn holds_writers(&self, now_ms: u64) -> bool {
        self.switching_since_ms
            .is_some_and(|since| now_ms.abs_diff(since) < SWITCH_HINT_MS)
    }
}

/// Where a reshard is, persisted after every step so that whoever runs it next resumes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReshardPhase {
    /// The source shards are being told to log their changes.
    #[default]
    Starting,
    /// Copying source shard `shard`, at stored keys after `after`.
    Copying { shard: u32, after: Option<Vec<u8>> },
    /// Replaying what the source shards logged while the copy ran.
    Replaying,
    /// Writes are held off; the last log records are replayed and the layout switched.
    Switching,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: String,
    pub until_ms: u64,
    /// Grows with every new holder; target shards carry the epoch of their last writer.
    pub epoch: u64,
}

/// Limits on a bucket's contents; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub max_objects: Option<u64>,
    pub max_bytes: Option<u64>,
}

/// What a bucket holds: current objects and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub objects: u64,
    pub bytes: u64,
}

/// A change in usage caused by one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UsageDelta {
    pub objects: i64,
    pub bytes: i64,
}

impl UsageDelta {
    /// Replacing `old` with an object of `new_size` bytes, or with nothing.
    pub(crate) fn replacing(old: Option<&ObjectVersion>, new_size: Option<u64>) -> Self {
        let (old_objects, old_bytes) = match old {
            Some(v) if !v.delete_marker => (1i64, v.size as i64),
            _ => (0, 0),
        };
        let (new_objects, new_bytes) = new_size.map_or((0, 0), |size| (1, size as i64));
        UsageDelta {
            objects: new_objects - old_objects,
            bytes: new_bytes - old_bytes,
        }
    }

    /// Whether `usage` changed by this delta breaks `quota`. Shrinking never does.
    pub(crate) fn exceeds(self, usage: Usage, quota: Quota) -> bool {
        let next = usage.apply(self);
        let over =
            |limit: Option<u64>, grows: bool, value: u64| grows && limit.is_some_and(|l| value > l);
        over(quota.max_objects, self.objects > 0, next.objects)
            || over(quota.max_bytes, self.bytes > 0, next.bytes)
    }
}

impl Usage {
    pub(crate) fn apply(self, delta: UsageDelta) -> Usage {
        Usage {
            objects: self.objects.saturating_add_signed(delta.objects),
            bytes: self.bytes.saturating_add_signed(delta.bytes),
        }
    }
}

/// Content headers and user metadata kept with an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Standard headers (`content-type`, `cache-control`, …), lower-case names.
    pub headers: Vec<(String, String)>,
    /// `x-amz-meta-*` values, keyed by the name without the prefix.
    pub user: Vec<(String, String)>,
    /// The object's tags (key, value), in the order they were given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// How the object's data is encrypted at rest, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// The object's ACL; None is the default (the object's owner has FULL_CONTROL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    /// Object Lock: the version may not be deleted before this date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Object Lock: the version may not be deleted while this is on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

/// An Object Lock retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub mode: RetentionMode,
    pub until_ms: u64,
}

/// Who may lift a retention early: nobody (`Compliance`), or a principal allowed to
/// bypass it (`Governance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionMode {
    Governance,
    Compliance,
}

impl RetentionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionMode::Governance => "GOVERNANCE",
            RetentionMode::Compliance => "COMPLIANCE",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "GOVERNANCE" => Some(RetentionMode::Governance),
            "COMPLIANCE" => Some(RetentionMode::Compliance),
            _ => None,
        }
    }
}

/// Which Object Lock protections a delete may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockBypass {
    /// None: locked versions stay.
    Nothing,
    /// A `GOVERNANCE` retention, for a principal allowed to bypass it.
    Governance,
    /// Every retention and legal hold: the operator's explicit override (admin purge).
    Everything,
}

impl ObjectMeta {
    /// Why the version described by this may not be deleted at `now_ms` with `bypass`.
    pub fn locked(&self, now_ms: u64, bypass: LockBypass) -> Option<&'static str> {
        if bypass == LockBypass::Everything {
            return None;
        }
        if self.legal_hold {
            return Some("the object version is under a legal hold");
        }
        match self.retention {
            Some(r) if r.until_ms > now_ms => match (r.mode, bypass) {
                (RetentionMode::Governance, LockBypass::Governance) => None,
                (RetentionMode::Governance, _) => {
                    Some("the object version is under GOVERNANCE retention")
                }
                (RetentionMode::Compliance, _) => {
                    Some("the object version is under COMPLIANCE retention")
                }
            },
            _ => None,
        }
    }
}

/// A bucket's Object Lock configuration: enabled at creation (or on a versioned bucket),
/// never disabled; an optional retention given to every new version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLockConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_retention: Option<DefaultRetention>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    pub mode: RetentionMode,
    /// The period as configured: days, or years (kept as given, for GetObjectLockConfiguration).
    pub days: Option<u32>,
    pub years: Option<u32>,
}

/// Server-side encryption of an object's data: a data key of its own, kept only wrapped
/// (encrypted) by the customer's key (SSE-C), by the server's master key (SSE-S3) or by a
/// KMS key (SSE-KMS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// `AES256`, or `aws:kms` for SSE-KMS.
    pub algorithm: String,
    /// SSE-C: base64 MD5 of the customer's key, as the client states it on every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_key_md5: Option<String>,
    /// SSE-KMS: the id of the KMS key that wraps the data key. With neither this nor
    /// `customer_key_md5`: SSE-S3, the master key wraps the data key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// SSE-KMS: the write asked for an S3 Bucket Key (answers say so; Kura's KMS keys
    /// cost nothing per use, so nothing else changes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bucket_key: bool,
    /// The wrapped data key: base64 of nonce, ciphertext and tag.
    pub wrapped_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1` or `SHA256`.
    pub algorithm: String,
    /// Base64, as on the wire (`…-N` for a composite multipart checksum).
    pub value: String,
    /// `FULL_OBJECT` or `COMPOSITE`.
    pub kind: String,
}

/// One stored piece of an object: a whole simple object, or one part of a
/// multipart object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRef {
    pub blob: String,
    pub size: u64,
    /// The part's own ETag (multipart objects only).
    pub etag: Option<String>,
    /// The part's own checksum (base64), when the upload used one.
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVersion {
    /// `null` until versioning is enabled on the bucket.
    pub version_id: String,
    pub stamp: Stamp,
    pub delete_marker: bool,
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    pub meta: ObjectMeta,
    pub checksum: Option<StoredChecksum>,
    pub parts: Vec<PartRef>,
    pub multipart: bool,
    pub owner: String,
    /// The multipart upload this version completed: a CompleteMultipartUpload sent again
    /// for it is answered with this version, as AWS does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

impl ObjectVersion {
    pub fn last_modified_ms(&self) -> u64 {
        self.stamp.ms
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRecord {
    pub upload_id: String,
    pub key: String,
    pub owner: String,
    pub initiated_ms: u64,
    pub meta: ObjectMeta,
    /// The checksum algorithm and type chosen at creation, if any.
    pub checksum_algorithm: Option<String>,
    pub checksum_type: Option<String>,
    /// Set while a CompleteMultipartUpload runs: the upload takes no more parts. A
    /// completion whose gateway died is finished, undone or cleaned up by whoever meets
    /// the upload next (see `uploads.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completing: Option<Completion>,
}

/// A CompleteMultipartUpload under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub since_ms: u64,
    /// The gateway running it.
    pub by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    pub number: u32,
    pub blob: String,
    pub size: u64,
    pub etag: String,
    pub checksum: Option<String>,
    pub last_modified_ms: u64,
}

pub(crate) const BUCKETS: &str = "buckets";
pub(crate) const USERS: &str = "users";
pub(crate) const KEYS: &str = "keys";
/// Maps no longer in use (a layout replaced by a reshard, a deleted bucket's maps),
/// keyed by map name: dropped once nothing in them remains to collect.
pub(crate) const RETIRED: &str = "retired";

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("index records always serialise")
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> crate::Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_strictly_increase() {
        let clock = Clock::default();
        let a = clock.stamp();
        let b = clock.stamp();
        assert!(b > a);
    }

    #[test]
    fn shard_choice_is_stable_and_in_range() {
        let layout = ShardLayout {
            generation: 1,
            shards: 7,
        };
        assert_eq!(
            layout.shard_of("photos/cat.jpg"),
            layout.shard_of("photos/cat.jpg")
        );
        let used: std::collections::HashSet<_> = (0..200)
            .map(|i| layout.shard_of(&format!("k{i}")))
            .collect();
        assert_eq!(used.len(), 7);
    }

    #[test]
    fn a_switch_hint_holds_writers_briefly_and_lapses() {
        let mut reshard = Reshard {
            target: ShardLayout {
                generation: 2,
                shards: 4,
            },
            started_ms: 0,
            copied: 0,
            read: 0,
            phase: ReshardPhase::Replaying,
            lease: None,
            switching_since_ms: None,
        };
        assert!(!reshard.holds_writers(10_000));
        reshard.switching_since_ms = Some(10_000);
        assert!(reshard.holds_writers(10_000));
        assert!(reshard.holds_writers(10_999));
        assert!(
            !reshard.holds_writers(11_000),
            "a failed switch's hint lapses"
        );
        // A gateway whose clock is far behind the switch's does not wait longer for it.
        assert!(!reshard.holds_writers(5_000));
        // Records written before the hint existed read as without one.
        let old = br#"{"target":{"generation":2,"shards":4},"started_ms":0,"copied":0}"#;
        assert_eq!(decode::<Reshard>(old).unwrap().switching_since_ms, None);
    }
}
