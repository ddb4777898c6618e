//! How fast a reshard copies: the step size and the pause between steps,
//! shared by `kura serve`'s worker and the benchmark so that both measure
//! the same thing.

use std::time::Duration;

/// Keys copied per step.
pub const RESHARD_STEP_KEYS: usize = 500;

/// The share of time (percent) a reshard spends copying unless told otherwise.
pub const DEFAULT_RESHARD_SHARE: u32 = 25;

/// The pause after a step that took `step_took`, so that copying takes at
/// most `share` percent (1..=100) of the time, however loaded the machine (a
/// slow step means busy writers, which then get the rest). At least 5 ms, so
/// that even an idle machine is not run flat out.
pub fn reshard_pause(step_took: Duration, share: u32) -> Duration {
    let share = share.clamp(1, 100);
    (step_took * (100 - share) / share).max(Duration::from_millis(5))
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
}
