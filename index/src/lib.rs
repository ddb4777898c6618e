//! Kura's bucket index: buckets, object versions and multipart uploads, kept
//! in the backend's ordered key-value maps. A bucket's objects are spread over
//! shards; listings merge the shards back into S3's byte order.
//!
//! Nothing here knows HTTP or S3 XML: callers get typed records and errors.

mod buckets;
mod crowded;
mod error;
mod gc;
mod identity;
mod index;
mod intents;
mod listing;
mod locks;
mod migrate;
mod model;
mod objects;
mod pacing;
mod quota;
mod reshard;
mod reshard_log;
mod rounds;
mod seen;
mod settings;
mod shard;
mod switches;
mod uploads;
mod usage;
mod versions;

pub use error::{IndexError, Result};
pub use gc::{BlobHome, GcCursor, GcPolicy, GcStep};
pub use identity::{KeyRecord, UserRecord};
pub use index::Index;
pub use listing::{ListPage, ListParams};
pub use model::{
    Acl, AclGrant, AclGrantee, BucketLogging, BucketRecord, Completion, CorsRule,
    DefaultEncryption, DefaultRetention, Encryption, Lease, LifecycleFilter, LifecyclePass,
    LifecycleRule, LifecycleTransition, LockBypass, LogKeyFormat, ObjectLockConfig, ObjectMeta,
    ObjectVersion, PartRecord, PartRef, PassCursor, PublicAccessBlock, Quota, Reshard,
    ReshardPhase, Retention, RetentionMode, ShardLayout, Stamp, StoredChecksum, UploadRecord,
    Usage, Versioning, VersionsCursor,
};
pub use objects::{DeleteIf, Deleted, Deleter, ListedVersion, Only};
pub use pacing::{DEFAULT_RESHARD_SHARE, RESHARD_STEP_KEYS, ReshardPace, reshard_pause};
pub use reshard::{Backlog, ReshardStep, ShardStats};
pub use uploads::{CompletedPart, UploadListParams};
pub use usage::BucketUsage;
pub use versions::{NULL_VERSION, is_version_id};
