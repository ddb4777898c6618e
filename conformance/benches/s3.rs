//! S3 throughput and latency benchmark with the Rust AWS SDK.
//!
//! ```text
//! cargo bench -p kura-conformance --bench s3
//! cargo bench -p kura-conformance --bench s3 -- --endpoint URL --access-key K --secret-key S
//!     [--large-mib 64] [--large-ops 32] [--list-keys 10000] [--prefix kura-bench]
//!     [--quota-cmd 'kura admin quota set {bucket} --max-objects 100000000']
//! ```
//!
//! Without `--endpoint` it starts its own `kura` (`$KURA_BIN`, else `target/release/kura`)
//! on a temporary data directory; with it, it measures any S3 server (radosgw, to compare).
//! Runs, at concurrency 16: PUT and GET of 4 KiB objects and of `--large-mib` MiB objects,
//! then ListObjectsV2 full pagination (1000 keys a page) over `--list-keys` keys, in buckets
//! named `<prefix>-small`, `-large`, `-list`. With `--quota-cmd`, also PUTs 4 KiB objects
//! into `<prefix>-quota` after running that shell command (`{bucket}` replaced) to give the
//! bucket a quota: a quota's cost per write. Prints ops/s, MiB/s, p50 and p99 latency.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use kura_conformance::{KuraProcess, S3Target};

const CONCURRENCY: usize = 16;
const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const SMALL_SIZE: usize = 4 * KIB;
const SMALL_OPS: usize = 2000;

const LIST_PAGE: i32 = 1000;
const LIST_ROUNDS: usize = 5;

const USAGE: &str = "usage: s3 [--endpoint URL --access-key KEY --secret-key SECRET] \
                     [--large-mib N] [--large-ops N] [--list-keys N] [--prefix NAME] \
                     [--quota-cmd COMMAND]";

/// What to measure, from the command line.
struct Plan {
    target: Option<S3Target>,
    large_mib: usize,
    large_ops: usize,
    list_keys: usize,
    prefix: String,
    /// Gives bucket `{bucket}` a quota (a shell command).
    quota_cmd: Option<String>,
}

fn main() {
    let plan = parse_args(std::env::args().skip(1));
    let server = plan.target.is_none().then(KuraProcess::start);
    let target = plan
        .target
        .clone()
        .unwrap_or_else(|| server.as_ref().expect("server").target().clone());
    println!("kura S3 benchmark against {}", target.endpoint);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run_all(target.sdk_client(), &plan));
}

/// The plan given on the command line (no target: start a server). Ignores the `--bench`
/// flag cargo passes to bench binaries.
fn parse_args(mut args: impl Iterator<Item = String>) -> Plan {
    let (mut endpoint, mut access_key, mut secret_key) = (None, None, None);
    let mut plan = Plan {
        target: None,
        large_mib: 64,
        large_ops: 32,
        list_keys: 10_000,
        prefix: "kura-bench".to_owned(),
        quota_cmd: None,
    };
    while let Some(arg) = args.next() {
        if arg == "--bench" {
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{arg} needs a value\n{USAGE}"));
        let number = || -> usize {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{arg} takes a number\n{USAGE}"))
        };
        match arg.as_str() {
            "--endpoint" => endpoint = Some(value),
            "--access-key" => access_key = Some(value),
            "--secret-key" => secret_key = Some(value),
            "--large-mib" => plan.large_mib = number(),
            "--large-ops" => plan.large_ops = number(),
            "--list-keys" => plan.list_keys = number(),
            "--prefix" => plan.prefix = value,
            "--quota-cmd" => plan.quota_cmd = Some(value),
            _ => panic!("unknown argument {arg:?}\n{USAGE}"),
        }
    }
    plan.target = match (endpoint, access_key, secret_key) {
        (None, None, None) => None,
        (Some(endpoint), Some(access_key), Some(secret_key)) => {
            Some(S3Target::attach(&endpoint, &access_key, &secret_key))
        }
        _ => panic!("--endpoint, --access-key and --secret-key go together\n{USAGE}"),
    };
    plan
}

async fn run_all(s3: Client, plan: &Plan) {
    print_header();
    let bucket = |suffix: &str| format!("{}-{suffix}", plan.prefix);
    bench_objects(&s3, &bucket("small"), "4 KiB", SMALL_SIZE, SMALL_OPS).await;
    if let Some(command) = &plan.quota_cmd {
        bench_quota_puts(&s3, &bucket("quota"), command).await;
    }
    let large = format!("{} MiB", plan.large_mib);
    bench_objects(
        &s3,
        &bucket("large"),
        &large,
        plan.large_mib * MIB,
        plan.large_ops,
    )
    .await;
    bench_list(&s3, &bucket("list"), plan.list_keys).await;
}

/// PUT then GET `count` objects of `size` bytes.
async fn bench_objects(s3: &Client, bucket: &str, label: &str, size: usize, count: usize) {
    ensure_bucket(s3, bucket).await;
    let put = put_all(s3, bucket, size, count).await;
    put.print(&format!("PUT {label}"), count, Some(size));

    let get = run_concurrently(count, {
        let s3 = s3.clone();
        let bucket = bucket.to_owned();
        move |i| get_object(s3.clone(), bucket.clone(), object_key(i), size)
    })
    .await;
    get.print(&format!("GET {label}"), count, Some(size));
}

/// PUTs 4 KiB objects into `bucket` once `command` has given it a quota.
async fn bench_quota_puts(s3: &Client, bucket: &str, command: &str) {
    ensure_bucket(s3, bucket).await;
    let command = command.replace("{bucket}", bucket);
    let status = std::process::Command::new("sh")
        .args(["-c", &command])
        .status()
        .expect("run --quota-cmd");
    assert!(status.success(), "--quota-cmd failed: {command}");
    let put = put_all(s3, bucket, SMALL_SIZE, SMALL_OPS).await;
    put.print("PUT 4 KiB, quota", SMALL_OPS, Some(SMALL_SIZE));
}

/// PUTs `count` objects of `size` bytes into `bucket`.
async fn put_all(s3: &Client, bucket: &str, size: usize, count: usize) -> Run {
    let body = Bytes::from(pattern(size));
    run_concurrently(count, {
        let s3 = s3.clone();
        let bucket = bucket.to_owned();
        move |i| put_object(s3.clone(), bucket.clone(), object_key(i), body.clone())
    })
    .await
}

/// Fills a bucket with `keys` empty objects, then lists it fully, page by page.
async fn bench_list(s3: &Client, bucket: &str, keys: usize) {
    ensure_bucket(s3, bucket).await;
    let fill = run_concurrently(keys, {
        let s3 = s3.clone();
        let bucket = bucket.to_owned();
        move |i| put_object(s3.clone(), bucket.clone(), object_key(i), Bytes::new())
    })
    .await;
    fill.print("PUT 0 B (list fill)", keys, Some(0));

    let mut latencies = Vec::new();
    let started = Instant::now();
    for _ in 0..LIST_ROUNDS {
        latencies.extend(list_all_pages(s3, bucket, keys).await);
    }
    let elapsed = started.elapsed();
    let pages = latencies.len();
    Run { elapsed, latencies }.print("LIST 1000-key pages", pages, None);
    println!(
        "  ({LIST_ROUNDS} full listings of {keys} keys, {:.0} keys/s, sequential)",
        (LIST_ROUNDS * keys) as f64 / elapsed.as_secs_f64()
    );
}

/// Lists the whole bucket, checking the key count; returns each page's latency.
async fn list_all_pages(s3: &Client, bucket: &str, expected: usize) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut keys = 0;
    let mut token = None;
    loop {
        let started = Instant::now();
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .max_keys(LIST_PAGE)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list objects v2");
        latencies.push(started.elapsed());
        keys += page.contents().len();
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(keys, expected, "listing returned a wrong number of keys");
    latencies
}

async fn ensure_bucket(s3: &Client, bucket: &str) {
    if let Err(err) = s3.create_bucket().bucket(bucket).send().await {
        let owned = err
            .as_service_error()
            .is_some_and(|e| e.is_bucket_already_owned_by_you());
        assert!(owned, "create bucket {bucket}: {err:?}");
    }
}

async fn put_object(s3: Client, bucket: String, key: String, body: Bytes) {
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

/// Streams the object without keeping it, checking its length.
async fn get_object(s3: Client, bucket: String, key: String, size: usize) {
    let mut body = s3
        .get_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e:?}"))
        .body;
    let mut received = 0;
    while let Some(chunk) = body.try_next().await.expect("read body") {
        received += chunk.len();
    }
    assert_eq!(received, size, "short body for {key}");
}

fn object_key(i: usize) -> String {
    format!("obj-{i:06}")
}

/// Deterministic incompressible-looking data (xorshift64).
fn pattern(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Wall-clock time of a batch of operations and the latency of each.
struct Run {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    /// `bytes_per_op` is the object payload moved per operation, if any.
    fn print(mut self, name: &str, ops: usize, bytes_per_op: Option<usize>) {
        self.latencies.sort_unstable();
        let seconds = self.elapsed.as_secs_f64();
        let mib_per_second = bytes_per_op.map_or("-".to_owned(), |bytes| {
            format!("{:.1}", (ops * bytes) as f64 / MIB as f64 / seconds)
        });
        println!(
            "{name:<22} {ops:>6} {:>10.1} {mib_per_second:>10} {:>10.2} {:>10.2}",
            ops as f64 / seconds,
            millis(percentile(&self.latencies, 50)),
            millis(percentile(&self.latencies, 99)),
        );
    }
}

fn print_header() {
    println!(
        "{:<22} {:>6} {:>10} {:>10} {:>10} {:>10}",
        "operation", "ops", "ops/s", "MiB/s", "p50 ms", "p99 ms"
    );
}

/// Nearest-rank percentile of sorted latencies.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Runs `op(0..count)` on `CONCURRENCY` workers, timing each call.
async fn run_concurrently<F, Fut>(count: usize, op: F) -> Run
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| tokio::spawn(worker(count, Arc::clone(&next), op.clone())))
        .collect();
    let mut latencies = Vec::with_capacity(count);
    for worker in workers {
        latencies.extend(worker.await.expect("benchmark worker panicked"));
    }
    Run {
        elapsed: started.elapsed(),
        latencies,
    }
}

async fn worker<F, Fut>(count: usize, next: Arc<AtomicUsize>, op: F) -> Vec<Duration>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut latencies = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            return latencies;
        }
        let started = Instant::now();
        op(i).await;
        latencies.push(started.elapsed());
    }
}
