//! The reshard worker: notices buckets whose shards grew past the threshold and moves
//! them to more shards, in small rate-limited steps. Progress lives in the index, so a
//! restart resumes it.

use super::worker::{Progress, Worker};
use crate::metrics::METRICS;
use kura_index::{Index, ReshardPace};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often buckets are checked when there is nothing to copy.
const IDLE_PAUSE: Duration = Duration::from_millis(250);
/// How often bucket sizes are checked for reshards that are due, while copying.
const PLAN_EVERY: Duration = Duration::from_secs(5);
pub const MAX_SHARDS: u32 = 1024;

/// When buckets are resharded, and how hard the worker may work.
#[derive(Debug, Clone, Copy)]
pub struct ReshardPolicy {
    pub max_objects_per_shard: u64,
    /// Percent of the time spent copying (see `reshard_pause`).
    pub share: u32,
}

pub struct ReshardWorker {
    index: Arc<Index>,
    policy: ReshardPolicy,
    copied: u64,
    /// Buckets being resharded after the last step, and the pace of each.
    resharding: HashMap<String, ReshardPace>,
    planned: Option<Instant>,
}

impl ReshardWorker {
    pub fn new(index: Arc<Index>, policy: ReshardPolicy) -> Self {
        ReshardWorker {
            index,
            policy,
            copied: 0,
            resharding: HashMap::new(),
            planned: None,
        }
    }
}

impl Worker for ReshardWorker {
    fn name(&self) -> &'static str {
        "reshard"
    }

    async fn step(&mut self) -> Result<Duration, String> {
        let started = Instant::now();
        if self.planned.is_none_or(|at| at.elapsed() >= PLAN_EVERY) {
            if let Err(err) = plan(&self.index, self.policy.max_objects_per_shard).await {
                tracing::warn!(%err, "reshard planning failed");
            }
            self.planned = Some(Instant::now());
        }
        let round = round(&self.index, &mut self.resharding, self.policy.share).await;
        self.copied += round.copied;
        if self.resharding.is_empty() {
            // Nothing to copy: check sizes again at the next step.
            self.planned = None;
        }
        if let Some(err) = round.failed {
            return Err(err);
        }
        // The rate limit: a pause in proportion to the work done, at the pace of the
        // bucket that most needs to catch up.
        let share = self.resharding.values().map(ReshardPace::share).max();
        Ok(match share {
            None => IDLE_PAUSE,
            Some(share) => kura_index::reshard_pause(started.elapsed(), share),
        })
    }

    fn progress(&self) -> Progress {
        Progress {
            busy: !self.resharding.is_empty(),
            items: self.copied,
            detail: if self.resharding.is_empty() {
                "no reshard under way".into()
            } else {
                let mut buckets: Vec<&str> = self.resharding.keys().map(String::as_str).collect();
                buckets.sort();
                format!("resharding {}", buckets.join(", "))
            },
        }
    }
}

/// What one round did.
struct Round {
    copied: u64,
    /// The first failure of a bucket's step; the other buckets went on.
    failed: Option<String>,
}

/// Runs one step of each reshard under way, at its pace; `paces` is left holding the
/// buckets with work left.
async fn round(index: &Index, paces: &mut HashMap<String, ReshardPace>, share: u32) -> Round {
    let mut done = Round {
        copied: 0,
        failed: None,
    };
    let buckets = index.resharding().await.unwrap_or_default();
    paces.retain(|name, _| buckets.iter().any(|b| &b.name == name));
    for bucket in buckets {
        let pace = paces
            .entry(bucket.name.clone())
            .or_insert_with(|| ReshardPace::new(share));
        let step = index.reshard_step(&bucket.name, pace.step_keys()).await;
        if let Ok(step) = &step {
            METRICS.reshard_entries_copied.inc_by(step.copied);
            done.copied += step.copied;
            pace.after(step.left);
        }
        match step {
            Ok(step) if step.done => {
                paces.remove(&bucket.name);
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
            Ok(_) => {}
            Err(err) => {
                let failed = format!("bucket {}: {err}", bucket.name);
                done.failed.get_or_insert(failed);
            }
        }
    }
    done
}

async fn plan(index: &Index, max_objects_per_shard: u64) -> kura_index::Result<()> {
    for usage in index.usage().await? {
        let bucket = index.bucket(&usage.bucket).await?;
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
