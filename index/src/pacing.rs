//! How fast a reshard works: the step size and the pause between steps, shared by
//! `kura serve`'s worker and the benchmarks so that both measure the same thing.
//!
//! A reshard starts gently (steps of `RESHARD_STEP_KEYS`, copying a `share` of the time)
//! and works harder while it falls behind: writes that keep coming faster than it copies
//! would otherwise keep it from ever finishing, and writes that come almost as fast make
//! it last for as long as they do (each of them logged meanwhile). It falls behind when
//! its backlog has not reached a new low for `STALLED_STEPS` steps; for the copy, a new
//! low must be lower by at least half of what it read since (else writers added more
//! than half as many entries as it read). Its share then doubles, up to `MAX_EFFORT`
//! doublings, and writers are slowed (never paused) until it catches up. Its step size
//! doubles only the first `MAX_STEP_DOUBLINGS` times: a step holds its keys' entries in
//! memory (as read, as written, the targets' as read, and the storage client's copies of
//! each), so working harder means pausing less, not holding more.

use crate::reshard::Backlog;
use std::time::Duration;

/// Keys copied per step, at the start.
pub const RESHARD_STEP_KEYS: usize = 500;

/// The share of time (percent) a reshard spends copying unless told otherwise.
pub const DEFAULT_RESHARD_SHARE: u32 = 25;

/// Steps without a new low of the backlog before the effort doubles.
const STALLED_STEPS: u32 = 10;
/// At most 2^4 = 16 times the first share.
const MAX_EFFORT: u32 = 4;
/// At most 2^1 = twice the first step size. Steps of up to 8,000 keys peaked a RADOS
/// gateway 31-41 MiB higher than steps of up to 1,000 (a 100k-key reshard under 32
/// writers, two runs each), and a local one 25 MiB (300k keys).
const MAX_STEP_DOUBLINGS: u32 = 1;

/// The pause after a step that took `step_took`, so that copying takes at
/// most `share` percent (1..=100) of the time, however loaded the machine (a
/// slow step means busy writers, which then get the rest). At least 5 ms, so
/// that even an idle machine is not run flat out.
pub fn reshard_pause(step_took: Duration, share: u32) -> Duration {
    let share = share.clamp(1, 100);
    (step_took * (100 - share) / share).max(Duration::from_millis(5))
}

/// The pace of one bucket's reshard.
#[derive(Debug, Clone)]
pub struct ReshardPace {
    share: u32,
    effort: u32,
    /// The lowest backlog seen in the current stage, and steps since.
    best: Option<Backlog>,
    since_best: u32,
    /// Stored entries the copy read since the lowest backlog.
    read_since_best: u64,
}

impl ReshardPace {
    /// A pace that starts at `share` percent of the time (see `reshard_pause`).
    pub fn new(share: u32) -> Self {
        ReshardPace {
            share,
            effort: 0,
            best: None,
            since_best: 0,
            read_since_best: 0,
        }
    }

    /// Keys the next step should move.
    pub fn step_keys(&self) -> usize {
        RESHARD_STEP_KEYS << self.effort.min(MAX_STEP_DOUBLINGS)
    }

    /// The share of time the reshard may take now.
    pub fn share(&self) -> u32 {
        (self.share << self.effort).min(100)
    }

    /// The pause after a step that took `step_took`.
    pub fn pause(&self, step_took: Duration) -> Duration {
        reshard_pause(step_took, self.share())
    }

    /// Takes note of what a step left to do.
    pub fn after(&mut self, left: Backlog) {
        if let Backlog::Copy { read, .. } = left {
            self.read_since_best += read;
        }
        let improved = match (&self.best, &left) {
            (_, Backlog::Unknown) => return,
            (Some(best), left) if best.same_stage(left) => {
                left.less_than(best, self.read_since_best)
            }
            _ => true,
        };
        if improved {
            self.best = Some(left);
            self.since_best = 0;
            self.read_since_best = 0;
            return;
        }
        self.since_best += 1;
        if self.since_best >= STALLED_STEPS && self.effort < MAX_EFFORT {
            self.effort += 1;
            self.since_best = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_leaves_the_rest_of_the_time_to_requests() {
        let step = Duration::from_millis(40);
        assert_eq!(reshard_pause(step, 25), Duration::from_millis(120));
        assert_eq!(reshard_pause(step, 50), Duration::from_millis(40));
        assert_eq!(reshard_pause(step, 10), Duration::from_millis(360));
    }

    #[test]
    fn pause_has_a_floor() {
        assert_eq!(reshard_pause(Duration::ZERO, 25), Duration::from_millis(5));
        assert_eq!(
            reshard_pause(Duration::from_millis(40), 100),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn a_reshard_that_keeps_up_keeps_its_pace() {
        let mut pace = ReshardPace::new(25);
        // Writers add a third of what each step reads.
        for step in 0..1000 {
            let left = 1_000_000 - step * 200;
            pace.after(Backlog::Copy { left, read: 300 });
        }
        assert_eq!((pace.step_keys(), pace.share()), (RESHARD_STEP_KEYS, 25));
    }

    #[test]
    fn a_reshard_that_falls_behind_works_harder_up_to_a_limit() {
        let mut pace = ReshardPace::new(25);
        for left in 0..(STALLED_STEPS as u64 + 1) {
            pace.after(Backlog::Copy {
                left: 1000 + left,
                read: 300,
            });
        }
        assert_eq!(
            (pace.step_keys(), pace.share()),
            (2 * RESHARD_STEP_KEYS, 50)
        );
        for _ in 0..100 {
            pace.after(Backlog::Log(None));
        }
        assert_eq!(
            (pace.step_keys(), pace.share()),
            (2 * RESHARD_STEP_KEYS, 100)
        );
        // The share goes on doubling after the step size stops.
        let mut gentle = ReshardPace::new(5);
        for _ in 0..100 {
            gentle.after(Backlog::Log(None));
        }
        assert_eq!(
            (gentle.step_keys(), gentle.share()),
            (2 * RESHARD_STEP_KEYS, 80)
        );
    }

    #[test]
    fn a_copy_that_writers_nearly_keep_up_with_works_harder() {
        // Each step reads 300 entries, writers add 200 meanwhile: a new low every step,
        // but by less than half of what was read.
        let mut pace = ReshardPace::new(25);
        for step in 0..(STALLED_STEPS as u64 + 1) {
            let left = 1_000_000 - step * 100;
            pace.after(Backlog::Copy { left, read: 300 });
        }
        assert_eq!(pace.share(), 50);
        // Writers that add exactly half of it are kept up with.
        let mut pace = ReshardPace::new(25);
        for step in 0..100 {
            let left = 1_000_000 - step * 150;
            pace.after(Backlog::Copy { left, read: 300 });
        }
        assert_eq!(pace.share(), 25);
    }

    #[test]
    fn a_new_stage_starts_a_new_count() {
        let mut pace = ReshardPace::new(25);
        pace.after(Backlog::Copy { left: 10, read: 1 });
        for _ in 0..STALLED_STEPS - 1 {
            pace.after(Backlog::Copy { left: 20, read: 1 });
        }
        pace.after(Backlog::Log(Some(5000)));
        pace.after(Backlog::Log(Some(4000)));
        assert_eq!(pace.share(), 25);
    }
}
