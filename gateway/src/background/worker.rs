//! The contract of background work: a named task that does one small, bounded step at a
//! time and says how long to wait before the next, so that the runner can pace it, stop it
//! between steps, count it, and show what it is doing.

use serde::Serialize;
use std::future::Future;
use std::time::Duration;

/// A background task (garbage collection, resharding, and later scrubbing or lifecycle).
/// Its progress is persisted by the work itself (in the index), so a restart resumes it.
pub trait Worker: Send + 'static {
    /// A short, stable name: thread name, metric label, admin API.
    fn name(&self) -> &'static str;

    /// Does one bounded step and returns how long to wait before the next: short while
    /// there is work left (the worker's own rate limit), longer when idle. On an error the
    /// runner logs it and waits [`ERROR_PAUSE`](crate::background::ERROR_PAUSE).
    /// (It runs on the worker's own single-threaded runtime, so it need not be `Send`.)
    fn step(&mut self) -> impl Future<Output = Result<Duration, String>>;

    /// What the worker has done so far and whether work is left, for metrics and the
    /// admin API.
    fn progress(&self) -> Progress;
}

/// A worker's own account of its work.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Whether the last step left work to do.
    pub busy: bool,
    /// Items handled since the process started (blobs deleted, entries copied, …).
    pub items: u64,
    /// What it is doing now, in a few words.
    pub detail: String,
}
