//! Server access logging: one record per request to a bucket that logs, in AWS's format,
//! buffered per gateway and per target until the delivery worker writes a batch as one
//! object of the target bucket. Best effort, as AWS's: the buffer is bounded (records
//! past it are dropped and counted), and a gateway that dies loses what it held.

use crate::auth::{Authenticated, Via};
use crate::metrics::METRICS;
use crate::owner::canonical_id;
use crate::requester::Client;
use http::{HeaderValue, Method};
use kura_index::{BucketLogging, BucketRecord, LogKeyFormat};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::Mutex;

/// What a gateway holds at most, all batches together.
const MAX_BUFFERED: usize = 16 * 1024 * 1024;
/// A batch this large is delivered without waiting for its interval.
const MAX_BATCH: usize = 4 * 1024 * 1024;
const MS_PER_DAY: u64 = 86_400_000;

/// Characters a logged key keeps as they are.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The keys (and versions) a DeleteObjects removed, which its answer carries for the
/// access log: each gets a `BATCH.DELETE.OBJECT` record of its own.
#[derive(Debug, Clone, Default)]
pub struct BatchDeleted(pub Vec<(String, Option<String>)>);

/// One request, as its log record tells it.
pub struct Record<'a> {
    pub bucket: &'a BucketRecord,
    pub at_ms: u64,
    pub remote_ip: Option<IpAddr>,
    /// The user who asked; None for an anonymous request.
    pub requester: Option<&'a str>,
    pub request_id: &'a str,
    /// Kura's name of the operation (`PutObject`).
    pub operation: &'a str,
    pub key: Option<&'a str>,
    /// `GET /bucket/key?query HTTP/1.1`; None for a key of a DeleteObjects.
    pub request_uri: Option<&'a str>,
    pub status: u16,
    pub error_code: Option<&'a str>,
    pub bytes_sent: Option<u64>,
    pub object_size: Option<u64>,
    /// How long the request took; None for a key of a DeleteObjects.
    pub total_ms: Option<u64>,
    pub referrer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub version_id: Option<&'a str>,
    pub via: Via,
    pub host: Option<&'a str>,
    /// Whether only an ACL grant allowed the request.
    pub acl_required: bool,
}

impl Record<'_> {
    /// The record's line (with its newline), fields as AWS documents them.
    pub fn line(&self) -> String {
        let dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        let quoted = |v: Option<&str>| format!("\"{}\"", escape(v.unwrap_or("-")));
        let (signature, auth) = match self.via {
            Via::Anonymous => ("-", "-"),
            Via::Header { v4 } => (if v4 { "SigV4" } else { "SigV2" }, "AuthHeader"),
            Via::Query { v4 } => (if v4 { "SigV4" } else { "SigV2" }, "QueryString"),
            Via::Form { v4 } => (if v4 { "SigV4" } else { "SigV2" }, "AuthHeader"),
        };
        let fields = [
            canonical_id(&self.bucket.owner),
            self.bucket.name.clone(),
            format!("[{}]", log_time(self.at_ms)),
            dash(self.remote_ip.map(|ip| ip.to_string())),
            dash(self.requester.map(canonical_id)),
            self.request_id.to_owned(),
            operation(self.operation).to_owned(),
            dash(
                self.key
                    .map(|k| utf8_percent_encode(k, KEY_ENCODE).to_string()),
            ),
            quoted(self.request_uri),
            self.status.to_string(),
            dash(self.error_code.map(str::to_owned)),
            dash(self.bytes_sent.filter(|&n| n > 0).map(|n| n.to_string())),
            dash(self.object_size.map(|n| n.to_string())),
            dash(self.total_ms.map(|ms| ms.to_string())),
            // Turn-around time: Kura answers as it processes, so it is the same.
            dash(self.total_ms.map(|ms| ms.to_string())),
            quoted(self.referrer),
            quoted(self.user_agent),
            dash(self.version_id.map(str::to_owned)),
            self.request_id.to_owned(),
            signature.to_owned(),
            // Cipher suite and TLS version: TLS ends before Kura, at a proxy, if at all,
            // so neither is known here.
            "-".to_owned(),
            auth.to_owned(),
            dash(self.host.map(str::to_owned)),
            "-".to_owned(),
            // Access point ARN.
            "-".to_owned(),
            if self.acl_required { "Yes" } else { "-" }.to_owned(),
        ];
        let mut line = fields.join(" ");
        line.push('\n');
        line
    }
}

/// A request to a bucket that logs: the bucket as read, who asked (as far as that is
/// known: a request refused for its signature is anonymous here) and what.
pub struct Logged {
    pub bucket: BucketRecord,
    pub user: Option<String>,
    pub via: Via,
    pub key: Option<String>,
    /// Whether only an ACL grant allowed the request.
    pub acl_required: bool,
    pub asked: Asked,
}

impl Logged {
    /// What the log needs of a request (`request`: its head and client) to `bucket`, if
    /// that logs; nothing is kept of requests to buckets that do not.
    pub fn of(
        bucket: Option<&BucketRecord>,
        auth: &Authenticated,
        key: Option<&str>,
        (parts, client): (&http::request::Parts, Client),
    ) -> Option<Self> {
        bucket.filter(|b| b.logging.is_some()).map(|bucket| Logged {
            bucket: bucket.clone(),
            user: auth.user().map(str::to_owned),
            via: auth.via,
            key: key.map(str::to_owned),
            acl_required: false,
            asked: Asked::of(parts, client),
        })
    }
}

/// What an access log record tells of a request, kept before it is handled.
pub struct Asked {
    method: Method,
    uri: http::Uri,
    version: http::Version,
    host: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    referrer: Option<HeaderValue>,
    /// The object size a write announces.
    size: Option<u64>,
    /// The client's address (after trusted proxies').
    remote_ip: Option<IpAddr>,
}

impl Asked {
    fn of(parts: &http::request::Parts, client: Client) -> Self {
        let header = |name: &str| parts.headers.get(name).cloned();
        let number = |name: &str| {
            let value = parts.headers.get(name)?;
            value.to_str().ok()?.parse().ok()
        };
        Asked {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            host: header("host"),
            user_agent: header("user-agent"),
            referrer: header("referer"),
            size: number("x-amz-decoded-content-length").or_else(|| number("content-length")),
            remote_ip: client.ip,
        }
    }

    /// `GET /bucket/key?query HTTP/1.1`.
    fn request_line(&self) -> String {
        let target = self.uri.path_and_query().map_or("/", |p| p.as_str());
        format!("{} {target} {:?}", self.method, self.version)
    }
}

/// How a request was answered, as its log record tells it.
pub struct Answer<'a> {
    pub request_id: &'a str,
    /// Kura's name of the operation.
    pub operation: &'a str,
    pub error_code: Option<&'a str>,
    pub response: &'a http::Response<axum::body::Body>,
    pub started: std::time::Instant,
}

/// Keeps the record of a request `logged` that was answered so, at `at_ms` (with a record
/// per key a DeleteObjects deleted).
pub fn record(logs: &AccessLogs, at_ms: u64, logged: &Logged, answer: &Answer) {
    let asked = &logged.asked;
    let Some(logging) = &logged.bucket.logging else {
        return;
    };
    fn text(v: &Option<HeaderValue>) -> Option<&str> {
        v.as_ref().and_then(|v| v.to_str().ok())
    }
    let (operation, response) = (answer.operation, answer.response);
    let headers = response.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let length = header("content-length").and_then(|v| v.parse::<u64>().ok());
    let is_read = matches!(operation, "GetObject" | "HeadObject");
    let bytes_sent = match operation {
        "HeadObject" => None,
        _ => length.or_else(|| http_body::Body::size_hint(response.body()).exact()),
    };
    // A ranged read names the whole size after the slash of its Content-Range.
    let whole = header("content-range")
        .and_then(|r| r.rsplit_once('/'))
        .and_then(|(_, n)| n.parse().ok());
    let object_size = match (is_read, &logged.key) {
        (true, _) => whole.or(length),
        (false, Some(_)) if matches!(operation, "PutObject" | "UploadPart") => asked.size,
        _ => None,
    };
    let request_line = asked.request_line();
    let mut record = Record {
        bucket: &logged.bucket,
        at_ms,
        remote_ip: asked.remote_ip,
        requester: logged.user.as_deref(),
        request_id: answer.request_id,
        operation,
        key: logged.key.as_deref(),
        request_uri: Some(&request_line),
        status: response.status().as_u16(),
        error_code: answer.error_code,
        bytes_sent,
        object_size,
        total_ms: Some(answer.started.elapsed().as_millis() as u64),
        referrer: text(&asked.referrer),
        user_agent: text(&asked.user_agent),
        version_id: header("x-amz-version-id"),
        via: logged.via,
        host: text(&asked.host),
        acl_required: logged.acl_required,
    };
    let mut lines = record.line();
    if let Some(deleted) = response.extensions().get::<BatchDeleted>() {
        for (key, version_id) in &deleted.0 {
            record = Record {
                operation: "BatchDeleteObject",
                key: Some(key),
                request_uri: None,
                status: http::StatusCode::NO_CONTENT.as_u16(),
                bytes_sent: None,
                total_ms: None,
                version_id: version_id.as_deref(),
                ..record
            };
            lines.push_str(&record.line());
        }
    }
    logs.push(&logged.bucket.name, logging, at_ms, lines);
}

/// A quoted field's text: quotes and backslashes escaped, control characters dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `06/Feb/2019:00:00:38 +0000`.
fn log_time(ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    ))
    .unwrap_or_default()
}

/// AWS's name of an operation in log records (`REST.PUT.OBJECT`), from Kura's.
fn operation(name: &str) -> &'static str {
    match name {
        "CreateBucket" => "REST.PUT.BUCKET",
        "HeadBucket" => "REST.HEAD.BUCKET",
        "DeleteBucket" => "REST.DELETE.BUCKET",
        "GetBucketLocation" => "REST.GET.LOCATION",
        "GetBucketVersioning" => "REST.GET.VERSIONING",
        "PutBucketVersioning" => "REST.PUT.VERSIONING",
        "GetObjectLockConfiguration" => "REST.GET.OBJECT_LOCK_CONFIGURATION",
        "PutObjectLockConfiguration" => "REST.PUT.OBJECT_LOCK_CONFIGURATION",
        "GetObjectRetention" => "REST.GET.RETENTION",
        "PutObjectRetention" => "REST.PUT.RETENTION",
        "GetObjectLegalHold" => "REST.GET.LEGAL_HOLD",
        "PutObjectLegalHold" => "REST.PUT.LEGAL_HOLD",
        "GetBucketAcl" | "GetObjectAcl" => "REST.GET.ACL",
        "PutBucketAcl" | "PutObjectAcl" => "REST.PUT.ACL",
        "GetBucketPolicy" => "REST.GET.BUCKETPOLICY",
        "PutBucketPolicy" => "REST.PUT.BUCKETPOLICY",
        "DeleteBucketPolicy" => "REST.DELETE.BUCKETPOLICY",
        "GetBucketPolicyStatus" => "REST.GET.POLICY_STATUS",
        "GetBucketOwnershipControls" => "REST.GET.OWNERSHIP_CONTROLS",
        "PutBucketOwnershipControls" => "REST.PUT.OWNERSHIP_CONTROLS",
        "DeleteBucketOwnershipControls" => "REST.DELETE.OWNERSHIP_CONTROLS",
        "GetPublicAccessBlock" => "REST.GET.PUBLIC_ACCESS_BLOCK",
        "PutPublicAccessBlock" => "REST.PUT.PUBLIC_ACCESS_BLOCK",
        "DeletePublicAccessBlock" => "REST.DELETE.PUBLIC_ACCESS_BLOCK",
        "GetBucketTagging" => "REST.GET.TAGGING",
        "PutBucketTagging" => "REST.PUT.TAGGING",
        "DeleteBucketTagging" => "REST.DELETE.TAGGING",
        "GetBucketCors" => "REST.GET.CORS",
        "PutBucketCors" => "REST.PUT.CORS",
        "DeleteBucketCors" => "REST.DELETE.CORS",
        "PreflightRequest" => "REST.OPTIONS.PREFLIGHT",
        "GetBucketEncryption" => "REST.GET.ENCRYPTION",
        "PutBucketEncryption" => "REST.PUT.ENCRYPTION",
        "DeleteBucketEncryption" => "REST.DELETE.ENCRYPTION",
        "GetBucketLifecycleConfiguration" => "REST.GET.LIFECYCLE",
        "PutBucketLifecycleConfiguration" => "REST.PUT.LIFECYCLE",
        "DeleteBucketLifecycle" => "REST.DELETE.LIFECYCLE",
        "GetBucketLogging" => "REST.GET.LOGGING_STATUS",
        "PutBucketLogging" => "REST.PUT.LOGGING_STATUS",
        "ListObjects" | "ListObjectsV2" => "REST.GET.BUCKET",
        "ListObjectVersions" => "REST.GET.BUCKETVERSIONS",
        "ListMultipartUploads" => "REST.GET.UPLOADS",
        "DeleteObjects" => "REST.POST.MULTI_OBJECT_DELETE",
        // One key a DeleteObjects removed.
        "BatchDeleteObject" => "BATCH.DELETE.OBJECT",
        "PostObject" => "REST.POST.OBJECT",
        "PutObject" => "REST.PUT.OBJECT",
        "CopyObject" => "REST.COPY.OBJECT",
        "GetObject" => "REST.GET.OBJECT",
        "HeadObject" => "REST.HEAD.OBJECT",
        "DeleteObject" => "REST.DELETE.OBJECT",
        "GetObjectAttributes" => "REST.GET.OBJECT_ATTRIBUTES",
        "GetObjectTagging" => "REST.GET.OBJECT_TAGGING",
        "PutObjectTagging" => "REST.PUT.OBJECT_TAGGING",
        "DeleteObjectTagging" => "REST.DELETE.OBJECT_TAGGING",
        "CreateMultipartUpload" => "REST.POST.UPLOADS",
        "UploadPart" => "REST.PUT.PART",
        "UploadPartCopy" => "REST.COPY.PART",
        "CompleteMultipartUpload" => "REST.POST.UPLOAD",
        "AbortMultipartUpload" => "REST.DELETE.UPLOAD",
        "ListParts" => "REST.GET.UPLOAD",
        _ => "REST.UNKNOWN",
    }
}

/// Records of one source bucket for one target, from one UTC day (so that an object's
/// records share the date its key may be partitioned by).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BatchKey {
    source: String,
    logging: BucketLogging,
    day: u64,
}

/// Log records waiting to become one object of their target bucket.
#[derive(Debug, Clone)]
pub struct Batch {
    pub source: String,
    pub logging: BucketLogging,
    /// When the first record was taken.
    pub first_ms: u64,
    pub lines: String,
}

impl Batch {
    /// How many records it holds (one per line).
    pub fn records(&self) -> u64 {
        self.lines.lines().count() as u64
    }

    /// The log object's key, as AWS makes it: `[prefix]YYYY-mm-DD-HH-MM-SS-[unique]`, or
    /// partitioned, `[prefix][owner]/[region]/[bucket]/YYYY/mm/DD/` before that.
    pub fn object_key(&self, source: &BucketRecord, delivered_ms: u64) -> String {
        let time_of = |ms: u64| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        };
        let delivered = time_of(delivered_ms);
        let stamp = delivered
            .format(&time::macros::format_description!(
                "[year]-[month]-[day]-[hour]-[minute]-[second]"
            ))
            .unwrap_or_default();
        let unique = hex::encode_upper(&uuid::Uuid::new_v4().as_bytes()[..8]);
        let prefix = &self.logging.target_prefix;
        match self.logging.key_format {
            LogKeyFormat::Simple => format!("{prefix}{stamp}-{unique}"),
            LogKeyFormat::Partitioned { event_time } => {
                let dated = if event_time {
                    time_of(self.first_ms)
                } else {
                    delivered
                };
                let day = dated
                    .format(&time::macros::format_description!("[year]/[month]/[day]"))
                    .unwrap_or_default();
                format!(
                    "{prefix}{}/{}/{}/{day}/{stamp}-{unique}",
                    canonical_id(&source.owner),
                    source.region,
                    source.name
                )
            }
        }
    }
}

/// The records a gateway holds until they are delivered.
#[derive(Default)]
pub struct AccessLogs {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    batches: HashMap<BatchKey, Batch>,
    bytes: usize,
}

impl AccessLogs {
    /// Keeps the record `line` of a request to `source`, unless the buffer is full.
    pub fn push(&self, source: &str, logging: &BucketLogging, at_ms: u64, line: String) {
        self.add(Batch {
            source: source.to_owned(),
            logging: logging.clone(),
            first_ms: at_ms,
            lines: line,
        });
    }

    /// Adds `batch`'s records (a batch whose delivery must wait, put back) to those of
    /// its source, target and day, in time order, unless the buffer is full (then they
    /// are dropped, and counted).
    pub fn add(&self, batch: Batch) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.bytes + batch.lines.len() > MAX_BUFFERED {
            drop(pending);
            METRICS.access_log_records_dropped.inc_by(batch.records());
            return;
        }
        pending.bytes += batch.lines.len();
        let key = BatchKey {
            source: batch.source.clone(),
            logging: batch.logging.clone(),
            day: batch.first_ms / MS_PER_DAY,
        };
        match pending.batches.entry(key) {
            Entry::Vacant(slot) => {
                slot.insert(batch);
            }
            Entry::Occupied(mut slot) => {
                let held = slot.get_mut();
                if batch.first_ms < held.first_ms {
                    held.lines.insert_str(0, &batch.lines);
                    held.first_ms = batch.first_ms;
                } else {
                    held.lines.push_str(&batch.lines);
                }
            }
        }
    }

    /// Takes the batches due for delivery: those whose first record is `interval_ms` old,
    /// those grown large, or (`all`, at shutdown) every one.
    pub fn take_due(&self, now_ms: u64, interval_ms: u64, all: bool) -> Vec<Batch> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let due = |b: &Batch| {
            all || now_ms.saturating_sub(b.first_ms) >= interval_ms || b.lines.len() >= MAX_BATCH
        };
        let keys: Vec<BatchKey> = (pending.batches.iter())
            .filter(|(_, b)| due(b))
            .map(|(k, _)| k.clone())
            .collect();
        let taken: Vec<Batch> = keys
            .iter()
            .filter_map(|k| pending.batches.remove(k))
            .collect();
        pending.bytes -= taken.iter().map(|b| b.lines.len()).sum::<usize>();
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> BucketRecord {
        serde_json::from_value(serde_json::json!({
            "name": "src", "owner": "alice", "created_ms": 0, "region": "us-east-1",
            "layout": {"generation": 0, "shards": 1}
        }))
        .unwrap()
    }

    fn logging(key_format: LogKeyFormat) -> BucketLogging {
        BucketLogging {
            target_bucket: "logs".into(),
            target_prefix: "log/".into(),
            key_format,
            grants: Vec::new(),
        }
    }

    #[test]
    fn a_record_has_awss_26_fields_in_order() {
        let bucket = bucket();
        let record = Record {
            bucket: &bucket,
            at_ms: 1_549_411_238_000,
            remote_ip: Some("192.0.2.3".parse().unwrap()),
            requester: Some("alice"),
            request_id: "3E57427F3EXAMPLE",
            operation: "GetObject",
            key: Some("a b/c"),
            request_uri: Some("GET /src/a%20b/c HTTP/1.1"),
            status: 200,
            error_code: None,
            bytes_sent: Some(113),
            object_size: Some(113),
            total_ms: Some(7),
            referrer: None,
            user_agent: Some("aws-cli/2 \"quoted\""),
            version_id: None,
            via: Via::Header { v4: true },
            host: Some("127.0.0.1:9000"),
            acl_required: false,
        };
        let line = record.line();
        assert!(line.ends_with('\n'));
        let owner = canonical_id("alice");
        let expected = format!(
            "{owner} src [06/Feb/2019:00:00:38 +0000] 192.0.2.3 {owner} 3E57427F3EXAMPLE \
             REST.GET.OBJECT a%20b/c \"GET /src/a%20b/c HTTP/1.1\" 200 - 113 113 7 7 \"-\" \
             \"aws-cli/2 \\\"quoted\\\"\" - 3E57427F3EXAMPLE SigV4 - AuthHeader 127.0.0.1:9000 - - -\n"
        );
        assert_eq!(line, expected);
    }

    #[test]
    fn keys_are_simple_or_partitioned() {
        let bucket = bucket();
        let at = 1_549_411_238_000;
        let mut batch = Batch {
            source: "src".into(),
            logging: logging(LogKeyFormat::Simple),
            first_ms: at - MS_PER_DAY,
            lines: String::new(),
        };
        let key = batch.object_key(&bucket, at);
        assert!(key.starts_with("log/2019-02-06-00-00-38-"), "{key}");
        assert_eq!(key.len(), "log/2019-02-06-00-00-38-".len() + 16);
        batch.logging = logging(LogKeyFormat::Partitioned { event_time: true });
        let key = batch.object_key(&bucket, at);
        let owner = canonical_id("alice");
        let dir = format!("log/{owner}/us-east-1/src/2019/02/05/2019-02-06-00-00-38-");
        assert!(key.starts_with(&dir), "{key}");
        batch.logging = logging(LogKeyFormat::Partitioned { event_time: false });
        assert!(batch.object_key(&bucket, at).contains("/src/2019/02/06/"));
    }

    #[test]
    fn batches_are_due_by_age_or_at_shutdown() {
        let logs = AccessLogs::default();
        let simple = logging(LogKeyFormat::Simple);
        logs.push("a", &simple, 1_000, "one\n".into());
        logs.push("a", &simple, 2_000, "two\n".into());
        logs.push("b", &simple, 5_000, "three\n".into());
        assert!(logs.take_due(5_999, 5_000, false).is_empty());
        let due = logs.take_due(6_000, 5_000, false);
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].source.as_str(), due[0].lines.as_str()),
            ("a", "one\ntwo\n")
        );
        let rest = logs.take_due(6_000, 5_000, true);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].lines, "three\n");
        assert_eq!(logs.pending.lock().unwrap().bytes, 0);
    }
}
