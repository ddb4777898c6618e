//! Online reshard benchmark at the index level (no HTTP):
//!
//!     cargo bench -p kura-index --bench reshard -- [KEYS] [--no-listing] [--share P]
//!
//! KEYS defaults to 1,000,000. Fills a bucket with KEYS keys from 64 concurrent
//! writers, then measures PUTs of new keys (each written once) spread over the
//! whole key range for 15 s before and throughout a reshard 1 → 16 shards,
//! run on a thread and runtime of its own with the same step size and pacing
//! as `kura serve`'s worker (copying P percent of the time, default `kura
//! serve`'s), and (unless `--no-listing`) the latency of a 1000-key listing
//! page at 1, 16, 64 and 256 shards.

use kura_backend::LocalBackend;
use kura_index::{DEFAULT_RESHARD_SHARE, Index, IndexError, ListParams, ReshardPace};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{pct, version};

#[path = "../tests/support/mod.rs"]
mod support;

const WRITERS: usize = 64;

async fn put(index: &Index, key: &str) -> Duration {
    let started = Instant::now();
    index
        .put_object::<IndexError>("b", key, version("00", 0), |_| Ok(()))
        .await
        .expect("put");
    started.elapsed()
}

fn fill_key(i: usize) -> String {
    format!("fill-{i:08}")
}

/// A new key beside a fill key picked by hashing `n`: writes land all over
/// the key range, before and after the reshard's copy position alike.
fn spread_key(n: usize, keys: usize, tag: &str) -> String {
    let at = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16;
    format!("{}-{tag}-{n}", fill_key(at as usize % keys))
}

/// PUTs of new keys (numbered by `next`) from all writers for `period`;
/// returns the sorted latencies.
async fn put_load(
    index: &Arc<Index>,
    keys: usize,
    next: &Arc<AtomicUsize>,
    period: Duration,
    tag: &str,
) -> Vec<Duration> {
    let deadline = Instant::now() + period;
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let index = index.clone();
        let (tag, next) = (tag.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                lat.push(put(&index, &spread_key(n, keys, &tag)).await);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("writer"));
    }
    all.sort();
    all
}

fn report(label: &str, lat: &[Duration], period: Duration) {
    println!(
        "{label:<28} {:>8} PUTs {:>9.0} PUT/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        lat.len(),
        lat.len() as f64 / period.as_secs_f64(),
        pct(lat, 0.50),
        pct(lat, 0.99)
    );
}

/// What a whole reshard took, and how long its switch held writes off.
struct Reshard {
    took: Duration,
    switch_pause: Duration,
}

/// Runs a whole reshard the way the server's worker does: its own thread and
/// runtime, steps paced by a `ReshardPace`.
fn reshard(index: &Arc<Index>, shards: u32, share: u32) -> std::thread::JoinHandle<Reshard> {
    let index = index.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let started = Instant::now();
            index.start_reshard("b", shards).await.expect("start");
            let mut pace = ReshardPace::new(share);
            loop {
                let step_started = Instant::now();
                let step = index
                    .reshard_step("b", pace.step_keys())
                    .await
                    .expect("step");
                pace.after(step.left);
                if let Some(switch_pause) = step.switch_pause {
                    return Reshard {
                        took: started.elapsed(),
                        switch_pause,
                    };
                }
                std::thread::sleep(pace.pause(step_started.elapsed()));
            }
        })
    })
}

async fn page_latency(index: &Index, keys: usize) -> f64 {
    let mut lat = Vec::new();
    for i in 0..20 {
        let after = fill_key(i * (keys.saturating_sub(1000) / 20));
        let started = Instant::now();
        let params = ListParams {
            prefix: "",
            delimiter: None,
            after: Some(&after),
            max: 1000,
        };
        let page = index.list_objects("b", &params).await.expect("list");
        assert_eq!(page.entries.len(), 1000);
        lat.push(started.elapsed());
    }
    lat.sort();
    pct(&lat, 0.5)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The first number that is not an option's value.
    let keys: usize = args
        .iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || !matches!(args[i - 1].as_str(), "--share"))
        .find_map(|(_, a)| a.parse().ok())
        .unwrap_or(1_000_000);
    let listing = !args.iter().any(|a| a == "--no-listing");
    let share = args
        .iter()
        .position(|a| a == "--share")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(DEFAULT_RESHARD_SHARE);
    let dir = tempfile::tempdir().expect("tempdir");
    let index = Arc::new(Index::new(
        Arc::new(LocalBackend::open(dir.path()).expect("backend")),
        1,
    ));
    index
        .create_bucket("b", "bench", "us-east-1", |_| {})
        .await
        .expect("bucket");

    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let index = index.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..keys).step_by(WRITERS) {
                put(&index, &fill_key(i)).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("filler");
    }
    let fill = started.elapsed();
    println!(
        "filled {keys} keys in {:.1} s ({:.0} keys/s)",
        fill.as_secs_f64(),
        keys as f64 / fill.as_secs_f64()
    );

    if listing {
        print_page_latency(&index, keys, 1).await;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let period = Duration::from_secs(15);
    report(
        "PUT before reshard",
        &put_load(&index, keys, &next, period, "load").await,
        period,
    );

    let running = Arc::new(AtomicBool::new(true));
    let during = {
        let (index, running, next) = (index.clone(), running.clone(), next.clone());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let started = Instant::now();
            while running.load(Ordering::SeqCst) {
                lat.extend(put_load(&index, keys, &next, Duration::from_secs(1), "load").await);
            }
            lat.sort();
            (lat, started.elapsed())
        })
    };
    let resharded = reshard(&index, 16, share);
    let took = tokio::task::spawn_blocking(move || resharded.join().expect("reshard"))
        .await
        .expect("join");
    running.store(false, Ordering::SeqCst);
    let (lat, span) = during.await.expect("load");
    let total = index
        .shard_stats("b")
        .await
        .expect("stats")
        .objects_per_shard
        .iter()
        .sum::<u64>();
    println!(
        "reshard 1 -> 16 shards: {total} entries in {:.1} s ({:.0} entries/s), switch pause {:.3} ms",
        took.took.as_secs_f64(),
        total as f64 / took.took.as_secs_f64(),
        took.switch_pause.as_secs_f64() * 1000.0
    );
    report("PUT during reshard", &lat, span);
    if !listing {
        return;
    }
    for shards in [16, 64, 256] {
        if shards != 16 {
            let done = reshard(&index, shards, share);
            tokio::task::spawn_blocking(move || done.join().expect("reshard"))
                .await
                .expect("join");
        }
        print_page_latency(&index, keys, shards).await;
    }
}

async fn print_page_latency(index: &Index, keys: usize, shards: u32) {
    println!(
        "list page (1000 keys), {shards:>3} shards: p50 {:.2} ms",
        page_latency(index, keys).await
    );
}
