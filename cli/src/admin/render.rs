//! The admin API's answers as people read them: tables for lists, `label: value` blocks for
//! single users, keys and buckets. (`--json` bypasses all of this and prints the API's JSON.)

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;

use super::table::{Align, Fields, Table};
use kura_admin_client::size::human_size;

#[derive(Deserialize)]
pub struct User {
    name: String,
    #[serde(default)]
    created: Option<String>,
    /// Names of the buckets the user owns.
    #[serde(default)]
    buckets: Option<Vec<String>>,
    #[serde(default)]
    keys: Option<Vec<Key>>,
}

#[derive(Deserialize)]
pub struct Key {
    access_key: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    secret_key: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
pub struct Bucket {
    name: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    shards: Option<Value>,
    #[serde(default)]
    quota: Quota,
    #[serde(default)]
    grants: Vec<String>,
    #[serde(default)]
    usage: Usage,
    #[serde(default)]
    access: Option<Access>,
}

/// Who may reach a bucket besides its owner (`access` in the admin API's bucket JSON).
#[derive(Deserialize)]
struct Access {
    public_by_policy: bool,
    public_by_acl: bool,
    object_ownership: String,
    #[serde(default)]
    public_access_block: Option<BTreeMap<String, bool>>,
    #[serde(default)]
    acl: Vec<AclGrant>,
    #[serde(default)]
    policy: Option<Value>,
}

#[derive(Deserialize)]
struct AclGrant {
    grantee: BTreeMap<String, String>,
    permission: String,
}

#[derive(Deserialize, Default)]
struct Quota {
    max_objects: Option<u64>,
    max_bytes: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    objects: u64,
    #[serde(default)]
    bytes: u64,
}

#[derive(Deserialize)]
pub struct UsageEntry {
    name: String,
    #[serde(default)]
    owner: Option<String>,
    objects: u64,
    bytes: u64,
}

#[derive(Deserialize)]
pub struct Users {
    users: Vec<User>,
}

#[derive(Deserialize)]
pub struct Keys {
    keys: Vec<Key>,
}

#[derive(Deserialize)]
pub struct Buckets {
    buckets: Vec<Bucket>,
}

#[derive(Deserialize)]
pub struct UsageReport {
    buckets: Vec<UsageEntry>,
}

/// Decode an answer into the shape a view needs.
pub fn decode<T: DeserializeOwned>(answer: Value) -> Result<T, String> {
    serde_json::from_value(answer).map_err(|e| format!("unexpected answer from the admin API: {e}"))
}

fn or_dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

fn size_with_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        human_size(bytes)
    } else {
        format!("{} ({bytes} bytes)", human_size(bytes))
    }
}

pub fn user(user: &User) -> String {
    let mut fields = Fields::default();
    fields.add("name", &user.name);
    fields.add("created", or_dash(&user.created));
    if let Some(buckets) = &user.buckets {
        let names = buckets.join(", ");
        fields.add("buckets", if names.is_empty() { "-".into() } else { names });
    }
    match &user.keys {
        Some(keys) if !keys.is_empty() => format!("{fields}\n{}", key_table(keys)),
        Some(_) => {
            fields.add("keys", "-");
            fields.to_string()
        }
        None => fields.to_string(),
    }
}

/// A count of a list the API may leave out.
fn count<T>(list: &Option<Vec<T>>, keep: impl Fn(&T) -> bool) -> String {
    list.as_ref().map_or_else(
        || "-".into(),
        |items| items.iter().filter(|item| keep(item)).count().to_string(),
    )
}

pub fn users(list: &Users) -> String {
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("BUCKETS", Align::Right),
        ("ACTIVE KEYS", Align::Right),
        ("CREATED", Align::Left),
    ]);
    for user in &list.users {
        table.row(vec![
            user.name.clone(),
            count(&user.buckets, |_| true),
            count(&user.keys, |k| k.status.as_deref() != Some("revoked")),
            or_dash(&user.created),
        ]);
    }
    table.to_string()
}

/// A new key: the only time its secret is shown.
pub fn new_key(key: &Key) -> String {
    let mut fields = Fields::default();
    fields.add("access key", &key.access_key);
    fields.add("secret key", or_dash(&key.secret_key));
    fields.add("user", or_dash(&key.user));
    fields.add("created", or_dash(&key.created));
    fields.to_string()
}

fn key_table(keys: &[Key]) -> String {
    let mut table = Table::new(&[
        ("ACCESS KEY", Align::Left),
        ("STATUS", Align::Left),
        ("CREATED", Align::Left),
    ]);
    for key in keys {
        table.row(vec![
            key.access_key.clone(),
            or_dash(&key.status),
            or_dash(&key.created),
        ]);
    }
    table.to_string()
}

pub fn keys(list: &Keys) -> String {
    key_table(&list.keys)
}

fn limit(value: Option<u64>, show: fn(u64) -> String) -> String {
    value.map_or_else(|| "unlimited".into(), show)
}

pub fn bucket(bucket: &Bucket) -> String {
    let mut fields = Fields::default();
    fields.add("name", &bucket.name);
    fields.add("owner", or_dash(&bucket.owner));
    fields.add("region", or_dash(&bucket.region));
    fields.add("created", or_dash(&bucket.created));
    if let Some(shards) = &bucket.shards {
        fields.add("shards", shards_text(shards));
    }
    fields.add("objects", bucket.usage.objects.to_string());
    fields.add("size", size_with_bytes(bucket.usage.bytes));
    fields.add(
        "max objects",
        limit(bucket.quota.max_objects, |n| n.to_string()),
    );
    fields.add("max size", limit(bucket.quota.max_bytes, size_with_bytes));
    if !bucket.grants.is_empty() {
        fields.add("granted to", bucket.grants.join(", "));
    }
    if let Some(access) = &bucket.access {
        add_access(&mut fields, access);
    }
    fields.to_string()
}

fn add_access(fields: &mut Fields, access: &Access) {
    let public = match (access.public_by_policy, access.public_by_acl) {
        (true, true) => "yes (policy and ACL)",
        (true, false) => "yes (policy)",
        (false, true) => "yes (ACL)",
        (false, false) => "no",
    };
    fields.add("public", public);
    fields.add("ownership", &access.object_ownership);
    let blocks: Vec<&str> = access
        .public_access_block
        .iter()
        .flatten()
        .filter(|(_, on)| **on)
        .map(|(setting, _)| setting.as_str())
        .collect();
    fields.add(
        "blocks",
        if blocks.is_empty() {
            "nothing".to_owned()
        } else {
            blocks.join(", ")
        },
    );
    let grants: Vec<String> = access
        .acl
        .iter()
        .map(|g| {
            // A group by the last part of its URI (AllUsers), a user by name.
            let who = g
                .grantee
                .values()
                .next()
                .map_or("?", |v| v.rsplit('/').next().unwrap_or(v));
            format!("{who} {}", g.permission)
        })
        .collect();
    fields.add("acl", grants.join(", "));
    let statements = access.policy.as_ref().map(|p| match p.get("Statement") {
        Some(Value::Array(list)) => list.len(),
        Some(_) => 1,
        None => 0,
    });
    fields.add(
        "policy",
        statements.map_or("none".to_owned(), |n| {
            format!("{n} statement(s); --json shows it")
        }),
    );
}

fn shards_text(shards: &Value) -> String {
    match shards {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

pub fn buckets(list: &Buckets) -> String {
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("OWNER", Align::Left),
        ("OBJECTS", Align::Right),
        ("SIZE", Align::Right),
        ("MAX OBJECTS", Align::Right),
        ("MAX SIZE", Align::Right),
        ("CREATED", Align::Left),
    ]);
    for b in &list.buckets {
        table.row(vec![
            b.name.clone(),
            or_dash(&b.owner),
            b.usage.objects.to_string(),
            human_size(b.usage.bytes),
            limit(b.quota.max_objects, |n| n.to_string()),
            limit(b.quota.max_bytes, human_size),
            or_dash(&b.created),
        ]);
    }
    table.to_string()
}

pub fn usage(report: &UsageReport) -> String {
    let mut table = Table::new(&[
        ("BUCKET", Align::Left),
        ("OWNER", Align::Left),
        ("OBJECTS", Align::Right),
        ("SIZE", Align::Right),
        ("BYTES", Align::Right),
    ]);
    let (mut objects, mut bytes) = (0u64, 0u64);
    for entry in &report.buckets {
        objects = objects.saturating_add(entry.objects);
        bytes = bytes.saturating_add(entry.bytes);
        table.row(vec![
            entry.name.clone(),
            or_dash(&entry.owner),
            entry.objects.to_string(),
            human_size(entry.bytes),
            entry.bytes.to_string(),
        ]);
    }
    table.row(vec![
        "TOTAL".into(),
        String::new(),
        objects.to_string(),
        human_size(bytes),
        bytes.to_string(),
    ]);
    table.to_string()
}

/// `GET /workers`: the background workers.
#[derive(Deserialize)]
pub struct Workers {
    pub workers: Vec<Worker>,
}

#[derive(Deserialize)]
pub struct Worker {
    pub name: String,
    pub busy: bool,
    pub items: u64,
    pub detail: String,
    pub steps: u64,
    pub failures: u64,
    pub last_step: Option<String>,
    pub last_error: Option<String>,
}

pub fn workers(list: &Workers) -> String {
    let mut table = Table::new(&[
        ("WORKER", Align::Left),
        ("STATE", Align::Left),
        ("ITEMS", Align::Right),
        ("STEPS", Align::Right),
        ("FAILURES", Align::Right),
        ("LAST STEP", Align::Left),
        ("DOING", Align::Left),
    ]);
    for w in &list.workers {
        table.row(vec![
            w.name.clone(),
            if w.busy { "busy" } else { "idle" }.into(),
            w.items.to_string(),
            w.steps.to_string(),
            w.failures.to_string(),
            or_dash(&w.last_step),
            w.detail.clone(),
        ]);
    }
    let mut text = table.to_string();
    for w in &list.workers {
        if let Some(err) = &w.last_error {
            text.push_str(&format!("{}: last failure: {err}\n", w.name));
        }
    }
    text
}

/// `GET /buckets/{name}/stats`: shard counts and the running reshard, if any.
#[derive(Deserialize)]
pub struct Stats {
    pub name: String,
    pub shards: u32,
    #[serde(default)]
    pub objects_per_shard: Vec<u64>,
    #[serde(default)]
    pub objects: u64,
    #[serde(default)]
    pub reshard: Option<Reshard>,
}

#[derive(Deserialize)]
pub struct Reshard {
    pub target_shards: u32,
    #[serde(default)]
    pub copied: u64,
    #[serde(default)]
    pub total: u64,
    /// 0 to 1.
    #[serde(default)]
    pub progress: f64,
    #[serde(default)]
    pub rate_per_sec: f64,
    #[serde(default)]
    pub started: Option<String>,
}

/// Shards listed one per line up to this many; above, only the spread.
const SHARD_TABLE_MAX: usize = 64;

pub fn stats(stats: &Stats) -> String {
    let mut fields = Fields::default();
    fields.add("name", &stats.name);
    fields.add("shards", stats.shards.to_string());
    fields.add("objects", stats.objects.to_string());
    let per_shard = &stats.objects_per_shard;
    if let (Some(min), Some(max)) = (per_shard.iter().min(), per_shard.iter().max()) {
        let mean = stats.objects as f64 / per_shard.len() as f64;
        fields.add("per shard", format!("min {min}, mean {mean:.0}, max {max}"));
    }
    match &stats.reshard {
        None => fields.add("reshard", "none"),
        Some(r) => {
            fields.add(
                "reshard",
                format!("running: {} -> {} shards", stats.shards, r.target_shards),
            );
            fields.add("progress", progress_text(r));
            fields.add("started", or_dash(&r.started));
        }
    }
    let mut text = fields.to_string();
    if !per_shard.is_empty() && per_shard.len() <= SHARD_TABLE_MAX {
        let mut table = Table::new(&[("SHARD", Align::Right), ("OBJECTS", Align::Right)]);
        for (shard, objects) in per_shard.iter().enumerate() {
            table.row(vec![shard.to_string(), objects.to_string()]);
        }
        text.push('\n');
        text.push_str(&table.to_string());
    }
    text
}

/// `p% (copied/total keys copied), rate keys/s`: the share of the index the copy has
/// read, which grows evenly where the keys copied do not (a shard's versions come last).
pub fn progress_text(r: &Reshard) -> String {
    format!(
        "{:.1}% ({}/{} keys copied), {:.0} keys/s",
        (r.progress * 100.0).clamp(0.0, 100.0),
        r.copied,
        r.total,
        r.rate_per_sec
    )
}

/// A progress bar `width` cells wide: `[#####.....]`.
pub fn bar(progress: f64, width: usize) -> String {
    let done = ((progress.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("[{}{}]", "#".repeat(done), ".".repeat(width - done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bucket_view_shows_usage_and_quota() {
        let b: Bucket = decode(json!({
            "name": "photos", "owner": "alice", "created": "2025-01-01T00:00:00Z",
            "region": "us-east-1", "shards": 4,
            "quota": {"max_objects": 1000, "max_bytes": null},
            "usage": {"objects": 3, "bytes": 1536}
        }))
        .unwrap();
        let text = bucket(&b);
        assert!(text.contains("owner:       alice\n"), "{text}");
        assert!(text.contains("shards:      4\n"), "{text}");
        assert!(
            text.contains("size:        1.5 KiB (1536 bytes)\n"),
            "{text}"
        );
        assert!(text.contains("max objects: 1000\n"), "{text}");
        assert!(text.contains("max size:    unlimited\n"), "{text}");
    }

    #[test]
    fn bucket_view_shows_who_may_reach_it() {
        let b: Bucket = decode(json!({
            "name": "site", "owner": "alice",
            "access": {
                "public": true, "public_by_policy": true, "public_by_acl": false,
                "object_ownership": "ObjectWriter",
                "public_access_block": {"block_public_acls": true, "ignore_public_acls": false,
                                        "block_public_policy": false, "restrict_public_buckets": false},
                "acl": [{"grantee": {"user": "alice"}, "permission": "FULL_CONTROL"},
                        {"grantee": {"group": "http://acs.amazonaws.com/groups/global/AllUsers"},
                         "permission": "READ"}],
                "policy": {"Version": "2012-10-17", "Statement": [{}, {}]}
            }
        }))
        .unwrap();
        let text = bucket(&b);
        assert!(text.contains("public:      yes (policy)\n"), "{text}");
        assert!(text.contains("ownership:   ObjectWriter\n"), "{text}");
        assert!(text.contains("blocks:      block_public_acls\n"), "{text}");
        assert!(
            text.contains("acl:         alice FULL_CONTROL, AllUsers READ\n"),
            "{text}"
        );
        assert!(text.contains("policy:      2 statement(s)"), "{text}");
    }

    #[test]
    fn usage_table_has_a_total() {
        let report: UsageReport = decode(json!({"buckets": [
            {"name": "a", "owner": "alice", "objects": 2, "bytes": 2048},
            {"name": "bb", "owner": "bob", "objects": 1, "bytes": 10}
        ]}))
        .unwrap();
        assert_eq!(
            usage(&report),
            "BUCKET  OWNER  OBJECTS   SIZE  BYTES\n\
             a       alice        2  2 KiB   2048\n\
             bb      bob          1   10 B     10\n\
             TOTAL                3  2 KiB   2058\n"
        );
    }

    #[test]
    fn user_view_lists_buckets_and_keys() {
        let u: User = decode(json!({
            "name": "alice", "created": "t0",
            "buckets": ["photos", "logs"],
            "keys": [{"access_key": "KURA1", "user": "alice", "created": "t1", "status": "active"}]
        }))
        .unwrap();
        let text = user(&u);
        assert!(text.contains("buckets: photos, logs\n"), "{text}");
        assert!(text.contains("KURA1       active  t1\n"), "{text}");
    }

    #[test]
    fn users_table_counts_buckets_and_active_keys() {
        let list: Users = decode(json!({"users": [
            {"name": "alice", "created": "t0", "buckets": ["a", "b"], "keys": [
                {"access_key": "K1", "status": "active"}, {"access_key": "K2", "status": "revoked"}]},
            {"name": "bob", "created": "t1", "buckets": [], "keys": []}
        ]}))
        .unwrap();
        assert_eq!(
            users(&list),
            "NAME   BUCKETS  ACTIVE KEYS  CREATED\n\
             alice        2            1  t0\n\
             bob          0            0  t1\n"
        );
        let bob: User =
            decode(json!({"name": "bob", "created": "t1", "buckets": [], "keys": []})).unwrap();
        assert_eq!(
            user(&bob),
            "name:    bob\ncreated: t1\nbuckets: -\nkeys:    -\n"
        );
    }

    #[test]
    fn stats_view_shows_shards_and_reshard_progress() {
        let s: Stats = decode(json!({
            "name": "photos", "shards": 2, "objects_per_shard": [3, 5], "objects": 8,
            "reshard": {"target_shards": 4, "copied": 2, "total": 8, "progress": 0.25,
                        "rate_per_sec": 10.4, "started": "2026-01-01T00:00:00Z"}
        }))
        .unwrap();
        let text = stats(&s);
        assert!(text.contains("shards:    2\n"), "{text}");
        assert!(text.contains("per shard: min 3, mean 4, max 5\n"), "{text}");
        assert!(
            text.contains("reshard:   running: 2 -> 4 shards\n"),
            "{text}"
        );
        assert!(
            text.contains("progress:  25.0% (2/8 keys copied), 10 keys/s\n"),
            "{text}"
        );
        assert!(
            text.ends_with("SHARD  OBJECTS\n    0        3\n    1        5\n"),
            "{text}"
        );

        let idle: Stats =
            decode(json!({"name": "b", "shards": 1, "objects_per_shard": [0], "objects": 0, "reshard": null}))
                .unwrap();
        assert!(stats(&idle).contains("reshard:   none\n"));
    }

    #[test]
    fn progress_bar_fills_in_proportion() {
        assert_eq!(bar(0.0, 4), "[....]");
        assert_eq!(bar(0.5, 4), "[##..]");
        assert_eq!(bar(1.7, 4), "[####]");
    }

    #[test]
    fn an_unexpected_shape_is_an_error() {
        assert!(decode::<Users>(json!({"people": []})).is_err());
    }
}
