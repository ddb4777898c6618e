//! Garbage collection: deletes blobs nothing references any more (replaced or deleted
//! objects after their grace period, abandoned uploads), a bounded batch per step.

use super::worker::{Progress, Worker};
use crate::metrics::METRICS;
use kura_backend::BlobStore;
use kura_index::{GcCursor, GcPolicy, Index};
use std::sync::Arc;
use std::time::Duration;

/// Blobs deleted per step at most.
const STEP: usize = 256;
/// The wait once every map was looked at: a tenth of the shorter of the grace periods
/// (nothing queued becomes due sooner than that after it was queued), so that blobs go at
/// most a tenth late, within these bounds. Every cycle reads every map of every bucket.
const CYCLE_PAUSE_MIN: Duration = Duration::from_secs(1);
const CYCLE_PAUSE_MAX: Duration = Duration::from_secs(60);
/// The wait before looking at the next buckets' maps.
const NEXT_BUCKETS_PAUSE: Duration = Duration::from_millis(20);

pub struct GcWorker {
    index: Arc<Index>,
    blobs: Arc<dyn BlobStore>,
    policy: GcPolicy,
    cursor: GcCursor,
    deleted: u64,
    busy: bool,
}

impl GcWorker {
    pub fn new(index: Arc<Index>, blobs: Arc<dyn BlobStore>, policy: GcPolicy) -> Self {
        GcWorker {
            index,
            blobs,
            policy,
            cursor: GcCursor::default(),
            deleted: 0,
            busy: false,
        }
    }
}

impl Worker for GcWorker {
    fn name(&self) -> &'static str {
        "gc"
    }

    async fn step(&mut self) -> Result<Duration, String> {
        let step = self
            .index
            .collect_garbage(self.blobs.as_ref(), self.policy, STEP, &mut self.cursor)
            .await
            .map_err(|e| e.to_string())?;
        METRICS.gc_blobs_deleted.inc_by(step.deleted as u64);
        self.deleted += step.deleted as u64;
        // A full batch means more may be due: go on at once.
        self.busy = step.deleted == STEP;
        Ok(if self.busy {
            Duration::ZERO
        } else if step.cycle_done {
            cycle_pause(self.policy)
        } else {
            NEXT_BUCKETS_PAUSE
        })
    }

    fn progress(&self) -> Progress {
        Progress {
            busy: self.busy,
            items: self.deleted,
            detail: if self.busy {
                "deleting unreferenced blobs".into()
            } else {
                "nothing due".into()
            },
        }
    }
}

fn cycle_pause(policy: GcPolicy) -> Duration {
    Duration::from_millis(policy.grace_ms.min(policy.intent_age_ms) / 10)
        .clamp(CYCLE_PAUSE_MIN, CYCLE_PAUSE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_pause_a_tenth_of_the_shorter_grace_within_bounds() {
        let policy = |grace_s: u64, abandoned_s: u64| GcPolicy {
            grace_ms: grace_s * 1000,
            intent_age_ms: abandoned_s * 1000,
        };
        assert_eq!(cycle_pause(policy(600, 86_400)), CYCLE_PAUSE_MAX);
        assert_eq!(cycle_pause(policy(300, 86_400)), Duration::from_secs(30));
        assert_eq!(cycle_pause(policy(600, 120)), Duration::from_secs(12));
        assert_eq!(cycle_pause(policy(3, 4)), CYCLE_PAUSE_MIN);
    }
}
