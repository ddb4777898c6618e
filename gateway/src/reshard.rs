//! The reshard worker: notices buckets whose shards grew past the threshold
//! and moves them to more shards, in small rate-limited steps, on a thread
//! and runtime of its own so it can never starve request handling or the
//! ops listener. Progress lives in the index, so a restart resumes it.

use crate::metrics::METRICS;
use kura_index::{Index, RESHARD_STEP_KEYS, reshard_pause};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often buckets are checked when there is nothing to copy.
const IDLE_PAUSE: Duration = Duration::from_millis(250);
/// Old layouts stay readable this long after a switch, for listings under way.
const RETIRED_GRACE_MS: u64 = 60_000;
pub const MAX_SHARDS: u32 = 1024;

/// When buckets are resharded, and how hard the worker may work.
#[derive(Debug, Clone, Copy)]
pub struct ReshardPolicy {
    pub max_objects_per_shard: u64,
    /// Percent of the time spent copying (see `reshard_pause`).
    pub share: u32,
}

pub struct ReshardWorker {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl ReshardWorker {
    pub fn spawn(index: Arc<Index>, policy: ReshardPolicy) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kura-reshard".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the reshard runtime starts");
                while !stopping.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let busy = runtime.block_on(round(&index, policy.max_objects_per_shard));
                    // The rate limit: a pause in proportion to the work done.
                    std::thread::sleep(if busy {
                        reshard_pause(started.elapsed(), policy.share)
                    } else {
                        IDLE_PAUSE
                    });
                }
            })?;
        Ok(ReshardWorker { stop, thread })
    }

    /// Stops after the current step; the rest resumes at the next start.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

/// Starts reshards that are due and runs one step of each one under way.
/// Returns whether there is copying left to do.
async fn round(index: &Index, max_objects_per_shard: u64) -> bool {
    if let Err(err) = plan(index, max_objects_per_shard).await {
        tracing::warn!(%err, "reshard planning failed");
    }
    let mut busy = false;
    for bucket in index.resharding().unwrap_or_default() {
        let started = Instant::now();
        let step = index.reshard_step(&bucket.name, RESHARD_STEP_KEYS).await;
        METRICS.task_run("reshard", started.elapsed(), step.is_ok());
        if let Ok(step) = &step {
            METRICS.reshard_entries_copied.inc_by(step.copied);
        }
        match step {
            Ok(step) if step.done => {
                // From the persisted start, so a reshard resumed after a
                // restart counts the time before the restart too.
                let started_ms = bucket.reshard.as_ref().map_or(0, |r| r.started_ms);
                let took = Duration::from_millis(index.now_ms().saturating_sub(started_ms));
                let pause = step.switch_pause.unwrap_or_default();
                METRICS.reshard_completed(took, pause);
                tracing::info!(
                    bucket = bucket.name,
                    took_s = took.as_secs_f64(),
                    switch_pause_ms = pause.as_secs_f64() * 1000.0,
                    "reshard finished"
                );
            }
            Ok(_) => busy = true,
            Err(err) => tracing::warn!(%err, bucket = bucket.name, "reshard step failed"),
        }
    }
    if let Err(err) = index.drop_retired(RETIRED_GRACE_MS) {
        tracing::warn!(%err, "dropping retired shard layouts failed");
    }
    busy
}

async fn plan(index: &Index, max_objects_per_shard: u64) -> kura_index::Result<()> {
    for usage in index.usage()? {
        let bucket = index.bucket(&usage.bucket)?;
        if bucket.reshard.is_some()
            || usage.objects <= max_objects_per_shard * u64::from(bucket.layout.shards)
        {
            continue;
        }
        let shards = target_shards(usage.objects, max_objects_per_shard, bucket.layout.shards);
        if shards > bucket.layout.shards {
            tracing::info!(
                bucket = usage.bucket,
                objects = usage.objects,
                from = bucket.layout.shards,
                to = shards,
                "reshard started"
            );
            index.start_reshard(&usage.bucket, shards).await?;
            METRICS.reshards_started.with_label_values(&["auto"]).inc();
        }
    }
    Ok(())
}

/// Enough shards to leave each half full (room to grow before the next
/// reshard), as a power of two, at least double the current count.
fn target_shards(objects: u64, max_per_shard: u64, current: u32) -> u32 {
    let wanted = objects
        .saturating_mul(2)
        .div_ceil(max_per_shard.max(1))
        .max(1);
    let pow2 = wanted.min(u64::from(MAX_SHARDS)).next_power_of_two() as u32;
    pow2.max(current.saturating_mul(2)).min(MAX_SHARDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_leave_room_and_double_at_least() {
        assert_eq!(target_shards(100_001, 100_000, 1), 4);
        assert_eq!(target_shards(150_000, 100_000, 2), 4);
        assert_eq!(target_shards(1_000_000, 100_000, 1), 32);
        assert_eq!(target_shards(u64::MAX, 1, 512), MAX_SHARDS);
    }
}
