//! `kura serve` settings.

use crate::policy::condition::Cidr;
use clap::{Args, ValueEnum};
use kura_index::{DEFAULT_RESHARD_SHARE, PublicAccessBlock};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where objects and the index live: `local` (the data directory, one machine) or
    /// `rados` (Ceph RADOS pools, which any number of gateways serve together; needs a
    /// build with `--features rados`).
    #[arg(long, env = "KURA_BACKEND", value_enum, default_value_t = BackendKind::Local)]
    pub backend: BackendKind,

    /// Directory holding objects, the index and the generated root credentials
    /// (`--backend local`).
    #[arg(long, env = "KURA_DATA_DIR", default_value = "./kura-data")]
    pub data_dir: PathBuf,

    /// The ceph.conf naming the cluster's monitors and the keyring (`--backend rados`).
    #[arg(long, env = "KURA_CEPH_CONF", value_name = "FILE")]
    pub ceph_conf: Option<PathBuf>,

    /// The cephx client Kura connects as, without `client.` (`--backend rados`).
    #[arg(long, env = "KURA_CEPH_USER", default_value = "admin")]
    pub ceph_user: String,

    /// Kura uses the pools `<prefix>-meta`, `<prefix>-index` and `<prefix>-data`, and
    /// creates missing ones with the cluster's defaults (`--backend rados`).
    #[arg(long, env = "KURA_CEPH_POOL_PREFIX", default_value = "kura")]
    pub ceph_pool_prefix: String,

    /// The RADOS namespace within those pools that Kura keeps its objects in, so that
    /// independent Kura deployments can share pools (`--backend rados`).
    #[arg(long, env = "KURA_CEPH_NAMESPACE", default_value = "")]
    pub ceph_namespace: String,

    /// Seconds a RADOS operation may take before it fails: requests then answer 503
    /// ServiceUnavailable (SDKs retry it) instead of waiting for a cluster that cannot
    /// serve (`--backend rados`).
    #[arg(long, env = "KURA_CEPH_OP_TIMEOUT", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub ceph_op_timeout: u64,

    /// Address of the S3 API listener.
    #[arg(long, env = "KURA_S3_ADDR", default_value = "127.0.0.1:9000")]
    pub s3_addr: SocketAddr,

    /// Address of the ops listener: /healthz, /readyz (and metrics).
    #[arg(long, env = "KURA_OPS_ADDR", default_value = "127.0.0.1:9001")]
    pub ops_addr: SocketAddr,

    /// Region this server answers as; clients must sign for it.
    #[arg(long, env = "KURA_REGION", default_value = "us-east-1")]
    pub region: String,

    /// Domain for virtual-hosted-style requests: with `--domain s3.example.com`,
    /// `mybucket.s3.example.com/key` addresses bucket `mybucket`. Path-style
    /// requests always work.
    #[arg(long, env = "KURA_DOMAIN")]
    pub domain: Option<String>,

    /// Number of index shards for new buckets [default: 1 on local, 11 on rados].
    /// Writes to one shard take turns: on RADOS a read and a guarded write round trip
    /// each, about 200 PUT/s per shard, so RADOS buckets start with radosgw's 11; on
    /// the local backend one shard keeps up with the disk. Listings read every shard,
    /// and buckets reshard themselves as they grow (--max-objects-per-shard).
    #[arg(long, env = "KURA_INITIAL_SHARDS", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub initial_shards: Option<u32>,

    /// A bucket whose objects per shard exceed this is resharded online, in
    /// the background, to enough shards to be half full.
    #[arg(long, env = "KURA_MAX_OBJECTS_PER_SHARD", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_objects_per_shard: u64,

    /// Share of time, in percent, a background reshard spends copying entries
    /// while it keeps up; it sleeps the rest, leaving the index to requests.
    /// Higher finishes sooner, lower disturbs writes less. A reshard that falls
    /// behind the writers (they add more than half as many entries as it copies)
    /// doubles its share, up to 16 times, so that it finishes.
    #[arg(long, env = "KURA_RESHARD_SHARE", default_value_t = DEFAULT_RESHARD_SHARE, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub reshard_share: u32,

    /// Length of a lifecycle "day", in seconds: rules expire objects and abort uploads
    /// after this many seconds per day of their `Days`, and each bucket's rules are applied
    /// at most once per day. Shorten it only to test lifecycle rules (as RGW's
    /// `rgw_lc_debug_interval`); with a shortened day, expiries are not rounded to midnight.
    #[arg(long, env = "KURA_LIFECYCLE_DAY_SECONDS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub lifecycle_day_seconds: u64,

    /// Seconds a gateway holds a bucket's server access log records before it writes
    /// them to the target bucket as one object (so at most one object per interval,
    /// source bucket and gateway).
    #[arg(long, env = "KURA_ACCESS_LOG_INTERVAL_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub access_log_interval_seconds: u64,

    /// Seconds the data of a replaced or deleted object stays stored, for reads already
    /// under way, before garbage collection deletes it (also how long the index of a
    /// deleted bucket stays, for writes that were already on their way to it).
    #[arg(long, env = "KURA_GC_GRACE_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub gc_grace_seconds: u64,

    /// Seconds after which data a writer began and never committed (its gateway died
    /// mid-upload) is deleted. An object or part whose data takes more than half of
    /// this to arrive is refused with RequestTimeout.
    #[arg(long, env = "KURA_GC_ABANDONED_SECONDS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub gc_abandoned_seconds: u64,

    /// File holding the SSE-S3 master key (32 bytes, base64), e.g. a mounted Secret. The key
    /// may also come from $KURA_SSE_MASTER_KEY; with neither, one is generated on first start
    /// into <data-dir>/sse-master-key. It wraps the data key of every SSE-S3 object: losing
    /// it loses them, so keep a copy apart from the data.
    #[arg(long, env = "KURA_SSE_MASTER_KEY_FILE", value_name = "FILE")]
    pub sse_master_key_file: Option<PathBuf>,

    /// The KMS key ids SSE-KMS writes may name (comma-separated); `aws/s3`, the key of
    /// writes that name none, always. Without the list, any id: each names a key Kura
    /// derives from the master key, the same on every gateway. Objects stay readable when
    /// their id is taken off the list.
    #[arg(
        long,
        env = "KURA_KMS_KEY_IDS",
        value_delimiter = ',',
        value_name = "IDS"
    )]
    pub kms_key_ids: Vec<String>,

    /// How new buckets start: `object-writer` (ACLs enabled, no public access block, as RGW
    /// and AWS before 2023 create them) or `aws-2023` (Object Ownership BucketOwnerEnforced,
    /// ACLs disabled, and all four public access block settings on, as AWS creates buckets
    /// since April 2023). A CreateBucket's own `x-amz-object-ownership` wins.
    #[arg(
        long,
        env = "KURA_NEW_BUCKET_DEFAULTS",
        value_enum,
        default_value = "object-writer"
    )]
    pub new_bucket_defaults: BucketDefaults,

    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (addresses or
    /// CIDR ranges, comma-separated), e.g. the TLS-terminating ingress: bucket policies then
    /// see the client's address (`aws:SourceIp`) and TLS (`aws:SecureTransport`). Anyone
    /// else's such headers are ignored.
    #[arg(long, env = "KURA_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<Cidr>,
}

/// The settings new buckets get.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum BucketDefaults {
    #[default]
    ObjectWriter,
    #[value(name = "aws-2023")]
    Aws2023,
}

impl BucketDefaults {
    /// The Object Ownership a new bucket starts with (None: no ownership controls).
    pub fn ownership(self) -> Option<&'static str> {
        match self {
            BucketDefaults::ObjectWriter => None,
            BucketDefaults::Aws2023 => Some(crate::acl::BUCKET_OWNER_ENFORCED),
        }
    }

    /// The public access block a new bucket starts with.
    pub fn public_access_block(self) -> Option<PublicAccessBlock> {
        (self == BucketDefaults::Aws2023).then_some(PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        })
    }
}

fn parse_cidr(text: &str) -> Result<Cidr, String> {
    Cidr::parse(text.trim()).ok_or_else(|| format!("'{text}' is not an address or CIDR range"))
}

/// Where `kura serve` keeps objects and the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    Local,
    Rados,
}

impl ServeArgs {
    /// `--initial-shards`, or the backend's default.
    pub fn initial_shards(&self) -> u32 {
        self.initial_shards.unwrap_or(match self.backend {
            BackendKind::Local => 1,
            BackendKind::Rados => 11,
        })
    }

    /// How long one upload's data may stream: half the age at which uncommitted data
    /// counts as abandoned, leaving the other half for its entry to be written.
    pub fn upload_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.gc_abandoned_seconds.saturating_mul(500))
    }

    /// When garbage collection deletes data, from `--gc-*`.
    pub fn gc_policy(&self) -> kura_index::GcPolicy {
        kura_index::GcPolicy {
            intent_age_ms: self.gc_abandoned_seconds.saturating_mul(1000),
            grace_ms: self.gc_grace_seconds.saturating_mul(1000),
        }
    }
}
