//! Buckets that a write of this process found with a crowded shard: one holding more
//! entries than the reshard planner's threshold. Every write reads its shard's header,
//! so this costs no I/O, and it lets the planner check the size of just those buckets as
//! soon as they grow, instead of reading every bucket's shards all the time. A hint only:
//! the planner still sums all the bucket's shards before it reshards, and looks at every
//! bucket now and then (a bucket written only through other gateways is noticed by them).

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct Crowded {
    /// Entries past which a shard is crowded; none before the planner first asks.
    threshold: AtomicU64,
    buckets: Mutex<HashSet<String>>,
}

impl Default for Crowded {
    fn default() -> Self {
        Crowded {
            threshold: AtomicU64::new(u64::MAX),
            buckets: Mutex::default(),
        }
    }
}

impl Crowded {
    /// A write to `bucket` left one of its shards holding `entries`.
    pub(crate) fn saw(&self, bucket: &str, entries: u64) {
        if entries <= self.threshold.load(Ordering::Relaxed) {
            return;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains(bucket) {
            buckets.insert(bucket.to_owned());
        }
    }

    /// The buckets seen crowded past `threshold` since the last call, which sets the
    /// threshold for the next.
    pub(crate) fn take(&self, threshold: u64) -> Vec<String> {
        self.threshold.store(threshold, Ordering::Relaxed);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.drain().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shards_past_the_threshold_asked_for_count() {
        let crowded = Crowded::default();
        crowded.saw("before", 1_000_000);
        assert!(crowded.take(10).is_empty(), "nobody asked yet");
        crowded.saw("small", 10);
        crowded.saw("big", 11);
        crowded.saw("big", 12);
        assert_eq!(crowded.take(10), vec!["big".to_owned()]);
        assert!(crowded.take(10).is_empty(), "taken once");
    }
}
