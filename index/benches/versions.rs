//! What versions cost at the index level (no HTTP):
//!
//!     cargo bench -p kura-index --bench versions -- [KEYS] [VERSIONS]
//!
//! Fills one unversioned bucket with KEYS keys (default 10,000) and one versioned
//! bucket with the same keys, VERSIONS versions each (default 100), from 64 concurrent
//! writers, reporting the PUT rate of each fill; then times ListObjectsV2-style pages
//! of 1000 current objects over each bucket (every page of the bucket, five rounds),
//! and reads of a key's current version and of a version by id.

use kura_backend::LocalBackend;
use kura_index::{Index, IndexError, ListParams, Versioning};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{pct, version};

#[path = "../tests/support/mod.rs"]
mod support;

const WRITERS: usize = 64;
const PAGE: usize = 1000;
const ROUNDS: usize = 5;

fn key(i: usize) -> String {
    format!("key-{i:08}")
}

/// Writes `versions` versions of each of `keys` keys into `bucket`, round by round
/// (every key's n-th version before any key's n+1-th); returns the PUTs per second.
async fn fill(index: &Arc<Index>, bucket: &str, keys: usize, versions: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let total = keys * versions;
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (index, next, bucket) = (index.clone(), next.clone(), bucket.to_owned());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    index
                        .put_object::<IndexError>(&bucket, &key(n % keys), version("00", 1), |_| {
                            Ok(())
                        })
                        .await
                        .expect("put");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Every page of current objects, ROUNDS times: sorted page latencies.
async fn pages(index: &Index, bucket: &str, keys: usize) -> Vec<Duration> {
    let mut lat = Vec::new();
    for _ in 0..ROUNDS {
        let mut after: Option<String> = None;
        loop {
            let params = ListParams {
                prefix: "",
                delimiter: None,
                after: after.as_deref(),
                max: PAGE,
            };
            let started = Instant::now();
            let page = index.list_objects(bucket, &params).await.expect("list");
            lat.push(started.elapsed());
            assert!(page.entries.len() == PAGE || !page.truncated);
            if !page.truncated {
                break;
            }
            after = page.last().map(str::to_owned);
        }
    }
    assert_eq!(lat.len(), ROUNDS * keys.div_ceil(PAGE));
    lat.sort();
    lat
}

/// Microseconds per read of a tenth of the keys' current version, then of their oldest
/// version by id.
async fn reads(index: &Index, bucket: &str, keys: usize) -> (f64, f64) {
    let mut ids = Vec::new();
    for i in (0..keys).step_by(10) {
        let page = index
            .list_versions(
                bucket,
                &ListParams {
                    prefix: &key(i),
                    delimiter: None,
                    after: None,
                    max: 1000,
                },
                None,
            )
            .await
            .expect("versions");
        let oldest = page
            .entries
            .last()
            .expect("a version")
            .1
            .version
            .version_id
            .clone();
        ids.push((key(i), oldest));
    }
    let record = index.bucket(bucket).await.expect("bucket");
    let started = Instant::now();
    for (k, _) in &ids {
        index
            .current(&record, k)
            .await
            .expect("current")
            .expect("exists");
    }
    let current = started.elapsed().as_secs_f64() * 1e6 / ids.len() as f64;
    let started = Instant::now();
    for (k, id) in &ids {
        index
            .version(&record, k, id)
            .await
            .expect("version")
            .expect("exists");
    }
    let by_id = started.elapsed().as_secs_f64() * 1e6 / ids.len() as f64;
    (current, by_id)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let keys = numbers.first().copied().unwrap_or(10_000);
    let versions = numbers.get(1).copied().unwrap_or(100);
    let dir = tempfile::tempdir().expect("tempdir");
    let index = Arc::new(Index::new(
        Arc::new(LocalBackend::open(dir.path()).expect("backend")),
        1,
    ));
    for bucket in ["flat", "deep"] {
        index
            .create_bucket(bucket, "bench", "us-east-1", |record| {
                if bucket == "deep" {
                    record.versioning = Versioning::Enabled;
                }
            })
            .await
            .expect("bucket");
    }
    println!("kura index versions benchmark: {keys} keys, 1 shard");
    let rate = fill(&index, "flat", keys, 1).await;
    println!("fill unversioned: {keys} PUTs, {rate:.0} PUT/s");
    let rate = fill(&index, "deep", keys, versions).await;
    println!(
        "fill versioned:   {} PUTs ({versions} versions of each key), {rate:.0} PUT/s",
        keys * versions
    );
    for (bucket, label) in [("flat", "1 version per key"), ("deep", "versions per key")] {
        let lat = pages(&index, bucket, keys).await;
        println!(
            "list 1000 current objects, {label:>18}: p50 {:>6.2} ms  p99 {:>6.2} ms ({} pages)",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat.len()
        );
    }
    for bucket in ["flat", "deep"] {
        let (current, by_id) = reads(&index, bucket, keys).await;
        println!("{bucket}: read current {current:.0} µs, read a version by id {by_id:.0} µs");
    }
}
