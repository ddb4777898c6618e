//! The reshard worker: notices buckets whose shards grew past the threshold and moves
//! them to more shards, in small rate-limited steps. Progress lives in the index, so a
//! restart resumes it.

use super::worker::{Progress, Worker};
use crate::metrics::METRICS;
use kura_index::{Index, ReshardPace};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the worker looks for work when there is nothing to copy.
const IDLE_PAUSE: Duration = Duration::from_millis(250);
/// How often the size of every bucket is checked. Buckets this gateway's writes find
/// crowded are checked at once; this catches the rest (written through a gateway that
/// stopped before it checked them, say) without reading every shard all the time.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How soon a bucket found crowded is checked again (a shard may be crowded before the
/// whole bucket is, and writes keep finding it so).
const CHECK_AGAIN: Duration = Duration::from_secs(1);
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
    swept: Option<Instant>,
    /// When each bucket found crowded lately was checked.
    checked: HashMap<String, Instant>,
}

impl ReshardWorker {
    pub fn new(index: Arc<Index>, policy: ReshardPolicy) -> Self {
        ReshardWorker {
            index,
            policy,
            copied: 0,
            resharding: HashMap::new(),
            swept: None,
            checked: HashMap::new(),
        }
    }
}

impl Worker for ReshardWorker {
    fn name(&self) -> &'static str {
        "reshard"
    }

    async fn step(&mut self) -> Result<Duration, String> {
        let started = Instant::now();
        self.plan().await;
        let round = round(&self.index, &mut self.resharding, self.policy.share).await;
        self.copied += round.copied;
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
                let mut buckets: Vec<String> = (self.resharding.iter())
                    .map(|(name, pace)| format!("{name} ({}% of the time)", pace.share()))
                    .collect();
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

impl ReshardWorker {
    /// Starts the reshards that are due: of the buckets found crowded since the last
    /// step, or of every bucket when a sweep is due.
    async fn plan(&mut self) {
        let max = self.policy.max_objects_per_shard;
        // Taken at every step, sweep or not, so that each names the growth since the last.
        let crowded = self.index.crowded_buckets(max);
        let planned = if self.swept.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            self.swept = Some(Instant::now());
            self.checked.clear();
            plan_all(&self.index, max).await
        } else {
            self.checked.retain(|_, at| at.elapsed() < CHECK_AGAIN);
            let mut planned = Ok(());
            for bucket in crowded {
                if self.checked.contains_key(&bucket) {
                    continue;
                }
                self.checked.insert(bucket.clone(), Instant::now());
                match self.index.bucket_usage(&bucket).await {
                    Ok(usage) => {
                        planned = planned
                            .and(start_if_due(&self.index, max, &bucket, usage.objects).await)
                    }
                    Err(kura_index::IndexError::NoSuchBucket) => {}
                    Err(err) => planned = planned.and(Err(err)),
                }
            }
            planned
        };
        if let Err(err) = planned {
            tracing::warn!(%err, "reshard planning failed");
        }
    }
}

async fn plan_all(index: &Index, max_objects_per_shard: u64) -> kura_index::Result<()> {
    for usage in index.usage().await? {
        start_if_due(index, max_objects_per_shard, &usage.bucket, usage.objects).await?;
    }
    Ok(())
}

/// Starts a reshard of `bucket`, which holds `objects`, if its shards hold too many.
async fn start_if_due(
    index: &Index,
    max_objects_per_shard: u64,
    bucket: &str,
    objects: u64,
) -> kura_index::Result<()> {
    let record = index.bucket(bucket).await?;
    if record.reshard.is_some()
        || objects <= max_objects_per_shard * u64::from(record.layout.shards)
    {
        return Ok(());
    }
    let shards = target_shards(objects, max_objects_per_shard, record.layout.shards);
    if shards > record.layout.shards {
        tracing::info!(
            bucket,
            objects,
            from = record.layout.shards,
            to = shards,
            "reshard started"
        );
        index.start_reshard(bucket, shards).await?;
        METRICS.reshards_started.with_label_values(&["auto"]).inc();
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
