//! How fast a reshard copies: the step size and the pause between steps,
//! shared by `kura serve`'s worker and the benchmark so that both measure
//! the same thing.

use std::time::Duration;

/// Keys copied per step.
pub const RESHARD_STEP_KEYS: usize = 500;

/// The pause after a step that took `step_took`: three times as long, so
/// that a reshard takes at most a quarter of one core and of the index's
/// write bandwidth, however loaded the machine (a slow step means busy
/// writers). At least 5 ms, so that even an idle machine is not run flat out.
/// (Measured at 1M keys with twice the step: PUT p99 1.55x during a reshard.)
pub fn reshard_pause(step_took: Duration) -> Duration {
    (step_took * 3).max(Duration::from_millis(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_follows_the_step_with_a_floor() {
        assert_eq!(reshard_pause(Duration::ZERO), Duration::from_millis(5));
        assert_eq!(
            reshard_pause(Duration::from_millis(40)),
            Duration::from_millis(120)
        );
    }
}
