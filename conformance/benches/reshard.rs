//! End-to-end online reshard benchmark through a real `kura serve` process, or any S3
//! server (radosgw, to compare).
//!
//! ```text
//! cargo build --release -p kura -j 2
//! cargo bench -p kura-conformance --bench reshard -- [KEYS] [--minutes M] [--share P]
//! cargo bench -p kura-conformance --bench reshard -- [KEYS] --endpoint URL \
//!     --access-key K --secret-key S --bucket NAME --probe HOST:PORT/PATH --reshard-cmd CMD
//! ```
//!
//! KEYS (default 1,000,000) 0-byte objects are PUT through S3 into one bucket
//! of 1 shard (automatic resharding is off, so the measured reshard is the one
//! this benchmark starts). Then, at concurrency 32, PUTs of new keys spread
//! over the whole key range: latency and throughput for 20 s before, and
//! throughout a reshard 1 → 16 shards started with `kura admin bucket
//! reshard`; the reshard's duration and entries/s (stats polled every 250 ms)
//! and its switch pause (from `/metrics`); `/healthz` on a new connection
//! every 50 ms, as a probe would; ListObjectsV2 pages of 1000 keys at 1 shard
//! (after the fill), then at 16, 64 and 256 (each reached by a reshard).
//! P is the server's `--reshard-share` (default: the server's default).
//! Gives up after M minutes (default 90), printing what it measured so far.
//!
//! With `--endpoint`, the same fill, load and probes against that server, in bucket
//! NAME (new), probing `PATH` on HOST:PORT; the reshard is the shell command CMD, with
//! `{bucket}` replaced by NAME, which must return once the reshard is done. URL may be
//! several gateways of one cluster, comma-separated: the writers take them in turn.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use kura_conformance::{KuraProcess, S3Target, http_get_status};

/// The bucket measured: `--bucket`, else this.
const DEFAULT_BUCKET: &str = "reshard-bench";
static BUCKET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
const FILL_WRITERS: usize = 64;
const LOAD_WRITERS: usize = 32;
const BEFORE: Duration = Duration::from_secs(20);
const PROBE_EVERY: Duration = Duration::from_millis(50);
const STATS_EVERY: Duration = Duration::from_millis(250);
const LIST_SAMPLES: usize = 30;

/// The server measured.
enum Server {
    Kura(KuraProcess),
    /// Any S3 server, probed at `probe` (address, path), resharded by running `reshard`;
    /// `others` are more gateways serving the same buckets.
    Attached {
        target: S3Target,
        others: Vec<S3Target>,
        probe: (SocketAddr, String),
        reshard: String,
    },
}

impl Server {
    fn target(&self) -> &S3Target {
        match self {
            Server::Kura(kura) => kura.target(),
            Server::Attached { target, .. } => target,
        }
    }

    /// One client per gateway, the first one `target`'s.
    fn clients(&self) -> Vec<Client> {
        let others = match self {
            Server::Kura(_) => &[][..],
            Server::Attached { others, .. } => others,
        };
        std::iter::once(self.target())
            .chain(others)
            .map(S3Target::sdk_client)
            .collect()
    }

    fn kura(&self) -> Option<&KuraProcess> {
        match self {
            Server::Kura(kura) => Some(kura),
            Server::Attached { .. } => None,
        }
    }
}

fn bucket() -> &'static str {
    BUCKET.get().map_or(DEFAULT_BUCKET, String::as_str)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let valued = [
        "--minutes",
        "--share",
        "--endpoint",
        "--access-key",
        "--secret-key",
        "--bucket",
        "--probe",
        "--reshard-cmd",
    ];
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    // The first number that is not an option's value.
    let keys: usize = args
        .iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || !valued.contains(&args[i - 1].as_str()))
        .find_map(|(_, a)| a.parse().ok())
        .unwrap_or(1_000_000);
    let minutes: u64 = option("--minutes")
        .and_then(|m| m.parse().ok())
        .unwrap_or(90);
    let deadline = Instant::now() + Duration::from_secs(minutes * 60);
    if let Some(name) = option("--bucket") {
        BUCKET.set(name).expect("set once");
    }
    let server = match option("--endpoint") {
        Some(endpoints) => {
            let needed = |name: &str| option(name).unwrap_or_else(|| panic!("{name} is needed"));
            let probe = needed("--probe");
            let (addr, path) = probe.split_at(probe.find('/').unwrap_or(probe.len()));
            let (access_key, secret_key) = (needed("--access-key"), needed("--secret-key"));
            let mut targets = endpoints
                .split(',')
                .map(|endpoint| S3Target::attach(endpoint, &access_key, &secret_key));
            Server::Attached {
                target: targets.next().expect("--endpoint URL"),
                others: targets.collect(),
                probe: (
                    addr.parse().expect("--probe HOST:PORT/PATH"),
                    format!("/{}", path.trim_start_matches('/')),
                ),
                reshard: needed("--reshard-cmd").replace("{bucket}", bucket()),
            }
        }
        None => {
            let share = option("--share");
            let mut env = vec![
                ("KURA_INITIAL_SHARDS", "1"),
                ("KURA_MAX_OBJECTS_PER_SHARD", "1000000000000"),
            ];
            if let Some(share) = &share {
                env.push(("KURA_RESHARD_SHARE", share));
            }
            Server::Kura(KuraProcess::start_with_env(&env))
        }
    };
    println!(
        "reshard benchmark: {keys} keys, {} (kura pid {:?})",
        server.target().endpoint,
        server.kura().and_then(KuraProcess::pid)
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(&server, keys, deadline));
}

async fn run(server: &Server, keys: usize, deadline: Instant) {
    let clients = server.clients();
    let s3 = clients[0].clone();
    s3.create_bucket()
        .bucket(bucket())
        .send()
        .await
        .expect("create bucket");

    let started = Instant::now();
    let failed = fill(&clients, keys).await;
    let took = started.elapsed();
    println!(
        "fill: {keys} PUTs of 0 B in {:.0} s ({:.0} PUT/s, {failed} failed)",
        took.as_secs_f64(),
        keys as f64 / took.as_secs_f64()
    );
    if let Some(kura) = server.kura() {
        print_memory(kura, "after the fill");
    }
    list_pages(&s3, keys, "before the reshard").await;

    let prober = match server {
        Server::Kura(kura) => Prober::start(kura.ops_addr(), "/healthz".to_owned()),
        Server::Attached { probe, .. } => Prober::start(probe.0, probe.1.clone()),
    };
    let before = load(
        clients.clone(),
        keys,
        "before",
        Arc::new(AtomicBool::new(false)),
        Some(BEFORE),
    )
    .await;
    before.print("PUT before the reshard");

    let stop = Arc::new(AtomicBool::new(false));
    let during = tokio::spawn(load(clients.clone(), keys, "during", stop.clone(), None));
    let reshard_started = Instant::now();
    let stats = match server {
        Server::Kura(kura) => Some(reshard(kura, 16, deadline).await),
        Server::Attached { reshard, .. } => {
            run_command(reshard).await;
            None
        }
    };
    let reshard_took = reshard_started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let during = during.await.expect("load");
    let probes = prober.stop();

    match &stats {
        Some(stats) => {
            let entries = stats["objects"].as_u64().expect("objects");
            println!(
                "reshard 1 -> 16 shards: {entries} entries in {:.1} s ({:.0} entries/s)",
                reshard_took.as_secs_f64(),
                entries as f64 / reshard_took.as_secs_f64()
            );
        }
        None => println!("reshard command: {:.1} s", reshard_took.as_secs_f64()),
    }
    during.print("PUT during the reshard");
    println!(
        "  p99 during / before: {:.2}x",
        during.pct(0.99) / before.pct(0.99)
    );
    let window = |from: Instant, to: Instant| {
        probes
            .iter()
            .filter(|p| p.at >= from && p.at <= to)
            .collect::<Vec<_>>()
    };
    let probed = prober_path(server);
    print_probes(
        &format!("{probed} before the reshard"),
        &window(started, reshard_started),
    );
    print_probes(
        &format!("{probed} during the reshard"),
        &window(reshard_started, reshard_started + reshard_took),
    );
    list_pages(&s3, keys, "after the reshard").await;
    let Some(kura) = server.kura() else {
        return;
    };
    print_switch_pause(kura).await;
    print_stats_latency(kura);
    print_memory(kura, "after the fill and a reshard under load");

    for shards in [64, 256] {
        let started = Instant::now();
        reshard(kura, shards, deadline).await;
        println!(
            "  (idle reshard to {shards} shards: {:.1} s)",
            started.elapsed().as_secs_f64()
        );
        list_pages(&s3, keys, &format!("at {shards} shards")).await;
    }
}

fn prober_path(server: &Server) -> &str {
    match server {
        Server::Kura(_) => "/healthz",
        Server::Attached { probe, .. } => &probe.1,
    }
}

/// Runs a shell command to its end, failing the benchmark if it fails.
async fn run_command(command: &str) {
    let command = command.to_owned();
    tokio::task::spawn_blocking(move || {
        let status = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .status()
            .expect("run the reshard command");
        assert!(status.success(), "{command}: {status}");
    })
    .await
    .expect("reshard command");
}

fn fill_key(i: usize) -> String {
    format!("fill-{i:08}")
}

async fn put(s3: &Client, key: &str) -> bool {
    s3.put_object()
        .bucket(bucket())
        .key(key)
        .body(ByteStream::from_static(b""))
        .send()
        .await
        .is_ok()
}

/// PUTs every fill key, the writers taking the gateways in turn; returns how many failed.
async fn fill(clients: &[Client], keys: usize) -> usize {
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..FILL_WRITERS)
        .map(|w| {
            let s3 = clients[w % clients.len()].clone();
            let (next, failed) = (next.clone(), failed.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= keys {
                        break;
                    }
                    if !put(&s3, &fill_key(i)).await {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    if (i + 1) % (keys / 10).max(1) == 0 {
                        println!("  filled {} keys", i + 1);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("filler");
    }
    failed.load(Ordering::Relaxed)
}

/// PUT latencies of one load period, sorted.
struct Load {
    latencies: Vec<Duration>,
    failed: usize,
    took: Duration,
    /// When the longest PUT started, from the period's start: whether it met the
    /// reshard's switch (at its end) or something earlier.
    longest_from: Duration,
}

impl Load {
    fn pct(&self, p: f64) -> f64 {
        pct(&self.latencies, p)
    }

    fn print(&self, label: &str) {
        println!(
            "{label}: {} PUTs in {:.1} s, {:.0} PUT/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
             (started at {:.1} s), {} failed",
            self.latencies.len(),
            self.took.as_secs_f64(),
            self.latencies.len() as f64 / self.took.as_secs_f64(),
            self.pct(0.50),
            self.pct(0.99),
            self.pct(1.0),
            self.longest_from.as_secs_f64(),
            self.failed
        );
    }
}

/// A new key beside a fill key picked by hashing `n`: writes land all over
/// the key range, before and after a reshard's copy position alike.
fn spread_key(n: usize, keys: usize, tag: &str) -> String {
    let at = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16;
    format!("{}-{tag}-{n}", fill_key(at as usize % keys))
}

/// PUTs new keys from `LOAD_WRITERS` writers, taking the gateways in turn, until `stop`
/// or `period`.
async fn load(
    clients: Vec<Client>,
    keys: usize,
    tag: &'static str,
    stop: Arc<AtomicBool>,
    period: Option<Duration>,
) -> Load {
    let started = Instant::now();
    let over =
        move || stop.load(Ordering::SeqCst) || period.is_some_and(|p| started.elapsed() >= p);
    let tasks: Vec<_> = (0..LOAD_WRITERS)
        .map(|w| {
            let (s3, over) = (clients[w % clients.len()].clone(), over.clone());
            tokio::spawn(async move {
                let (mut latencies, mut failed) = (Vec::new(), 0);
                let mut longest = (Duration::ZERO, Duration::ZERO);
                let mut i = 0;
                while !over() {
                    let key = spread_key(i * LOAD_WRITERS + w, keys, tag);
                    let at = Instant::now();
                    if put(&s3, &key).await {
                        let took = at.elapsed();
                        latencies.push(took);
                        longest = longest.max((took, at - started));
                    } else {
                        failed += 1;
                    }
                    i += 1;
                }
                (latencies, failed, longest)
            })
        })
        .collect();
    let mut all = Load {
        latencies: Vec::new(),
        failed: 0,
        took: Duration::ZERO,
        longest_from: Duration::ZERO,
    };
    let mut longest = (Duration::ZERO, Duration::ZERO);
    for task in tasks {
        let (latencies, failed, theirs) = task.await.expect("writer");
        all.latencies.extend(latencies);
        all.failed += failed;
        longest = longest.max(theirs);
    }
    all.longest_from = longest.1;
    all.took = started.elapsed();
    all.latencies.sort();
    all
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx].as_secs_f64() * 1000.0
}

/// `kura admin <args>` against `server`, with `--json`; the parsed answer.
fn admin(server: &KuraProcess, args: &[&str]) -> serde_json::Value {
    let target = server.target();
    let out = Command::new(server.bin())
        .arg("admin")
        .arg("--json")
        .args(args)
        .env("KURA_ADMIN_ENDPOINT", &target.endpoint)
        .env("KURA_ADMIN_ACCESS_KEY", &target.access_key)
        .env("KURA_ADMIN_SECRET_KEY", &target.secret_key)
        .output()
        .expect("run kura admin");
    assert!(
        out.status.success(),
        "kura admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("kura admin answers JSON")
}

/// Starts a reshard to `shards` and polls the stats until it is done; the
/// final stats.
async fn reshard(server: &KuraProcess, shards: u32, deadline: Instant) -> serde_json::Value {
    let count = shards.to_string();
    admin(server, &["bucket", "reshard", bucket(), "--shards", &count]);
    loop {
        let stats = admin(server, &["bucket", "stats", bucket()]);
        if stats["reshard"].is_null() && stats["shards"] == shards {
            return stats;
        }
        // A panic, not an exit: unwinding stops the server and removes its data.
        assert!(
            Instant::now() < deadline,
            "gave up at the deadline, reshard to {shards} unfinished: {}",
            stats["reshard"]
        );
        tokio::time::sleep(STATS_EVERY).await;
    }
}

/// The switch pause of every reshard so far, from `/metrics`.
async fn print_switch_pause(server: &KuraProcess) {
    let text = reqwest::get(format!("{}/metrics", server.ops_url()))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text");
    let sample = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let (sum, count) = (
        sample("kura_reshard_switch_pause_seconds_sum"),
        sample("kura_reshard_switch_pause_seconds_count"),
    );
    println!(
        "switch pause (kura_reshard_switch_pause_seconds): {count} switch(es), {:.3} ms in all",
        sum * 1000.0
    );
}

/// The server's peak and current resident memory (VmHWM, VmRSS), which must stay flat
/// whatever the bucket's size: memory that grows with a bucket becomes OOM kills.
fn print_memory(server: &KuraProcess, when: &str) {
    let status = server
        .pid()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .map_or(f64::NAN, |kib| kib as f64 / 1024.0)
    };
    println!(
        "server memory {when}: VmHWM {:.0} MiB, VmRSS {:.0} MiB",
        field("VmHWM:"),
        field("VmRSS:")
    );
}

/// How long `kura admin bucket stats` takes on the full bucket, the CLI's
/// own start and SigV4 signing included (best of 5).
fn print_stats_latency(server: &KuraProcess) {
    let best = (0..5)
        .map(|_| {
            let at = Instant::now();
            admin(server, &["bucket", "stats", bucket()]);
            at.elapsed()
        })
        .min()
        .unwrap_or_default();
    println!(
        "kura admin bucket stats: {:.1} ms (best of 5, CLI start included)",
        best.as_secs_f64() * 1000.0
    );
}

/// ListObjectsV2 pages of 1000 keys starting at spread-out fill keys.
async fn list_pages(s3: &Client, keys: usize, when: &str) {
    let mut latencies = Vec::new();
    for i in 0..LIST_SAMPLES {
        let after = fill_key(i * (keys.saturating_sub(1000) / LIST_SAMPLES));
        let at = Instant::now();
        let page = s3
            .list_objects_v2()
            .bucket(bucket())
            .start_after(after)
            .max_keys(1000)
            .send()
            .await
            .expect("list");
        latencies.push(at.elapsed());
        // A server may return fewer keys than asked (radosgw does, after a reshard).
        assert!(!page.contents().is_empty(), "an empty page");
    }
    latencies.sort();
    println!(
        "ListObjectsV2 1000-key page, {when}: p50 {:.2} ms, max {:.2} ms ({LIST_SAMPLES} pages)",
        pct(&latencies, 0.5),
        pct(&latencies, 1.0)
    );
}

struct Probe {
    at: Instant,
    took: Duration,
    ok: bool,
}

/// Probes a path (`/healthz`) every `PROBE_EVERY` on its own thread.
struct Prober {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Probe>>,
}

impl Prober {
    fn start(addr: SocketAddr, path: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut probes = Vec::new();
            while !stopping.load(Ordering::SeqCst) {
                let at = Instant::now();
                let ok = http_get_status(addr, &path) == Some(200);
                let took = at.elapsed();
                probes.push(Probe { at, took, ok });
                std::thread::sleep(PROBE_EVERY.saturating_sub(took));
            }
            probes
        });
        Prober { stop, thread }
    }

    fn stop(self) -> Vec<Probe> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("prober")
    }
}

fn print_probes(label: &str, probes: &[&Probe]) {
    let mut took: Vec<Duration> = probes.iter().map(|p| p.took).collect();
    took.sort();
    println!(
        "{label}: {} probes, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} not 200 within 2 s",
        took.len(),
        pct(&took, 0.5),
        pct(&took, 0.99),
        pct(&took, 1.0),
        probes.iter().filter(|p| !p.ok).count()
    );
}
