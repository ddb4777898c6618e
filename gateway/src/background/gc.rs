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
/// The wait once every map was looked at.
const IDLE_PAUSE: Duration = Duration::from_secs(1);
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
            IDLE_PAUSE
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
