//! Runs every background worker on a thread and runtime of its own, so none can starve
//! request handling, the ops listener or another worker; stops them between steps; counts
//! their steps in the metrics; and keeps each one's status for the admin API.

use super::worker::{Progress, Worker};
use crate::metrics::METRICS;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// How long a worker waits after a failed step before trying again.
pub const ERROR_PAUSE: Duration = Duration::from_secs(5);

/// What the admin API shows of one worker.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerStatus {
    pub name: &'static str,
    pub steps: u64,
    pub failures: u64,
    /// Unix time in milliseconds of the last step's end, 0 before the first.
    pub last_step_ms: u64,
    pub last_error: Option<String>,
    pub progress: Progress,
}

/// The status of every running worker, shared with the admin API.
#[derive(Debug, Default)]
pub struct Workers(Mutex<Vec<WorkerStatus>>);

impl Workers {
    pub fn statuses(&self) -> Vec<WorkerStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut WorkerStatus)) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = all.iter_mut().find(|s| s.name == name) {
            change(status);
        }
    }
}

/// Owns the worker threads and their stop signal.
pub struct Runner {
    workers: Arc<Workers>,
    stop: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Default for Runner {
    fn default() -> Self {
        Runner {
            workers: Arc::default(),
            stop: watch::channel(false).0,
            threads: Vec::new(),
        }
    }
}

impl Runner {
    /// The statuses, for the admin API.
    pub fn workers(&self) -> Arc<Workers> {
        self.workers.clone()
    }

    /// Starts `worker` on a thread of its own.
    pub fn spawn(&mut self, mut worker: impl Worker) -> std::io::Result<()> {
        let name = worker.name();
        METRICS.declare_task(name);
        self.workers
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(WorkerStatus {
                name,
                progress: worker.progress(),
                ..Default::default()
            });
        let workers = self.workers.clone();
        let mut stop = self.stop.subscribe();
        let thread = std::thread::Builder::new()
            .name(format!("kura-{name}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a worker's runtime starts");
                runtime.block_on(async move {
                    while !*stop.borrow() {
                        let pause = run_step(&mut worker, &workers).await;
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            _ = stop.changed() => {}
                        }
                    }
                });
            })?;
        self.threads.push(thread);
        Ok(())
    }

    /// Stops every worker after its current step; their work resumes at the next start.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// One step of `worker`, recorded in the metrics and its status; returns the pause.
async fn run_step(worker: &mut impl Worker, workers: &Workers) -> Duration {
    let name = worker.name();
    let started = Instant::now();
    let result = worker.step().await;
    METRICS.task_run(name, started.elapsed(), result.is_ok());
    let progress = worker.progress();
    METRICS.task_busy(name, progress.busy);
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    workers.update(name, |status| {
        status.steps += 1;
        status.last_step_ms = now_ms;
        status.progress = progress;
        if let Err(err) = &result {
            status.failures += 1;
            status.last_error = Some(err.clone());
        }
    });
    match result {
        Ok(pause) => pause,
        Err(err) => {
            tracing::warn!(worker = name, %err, "background step failed");
            ERROR_PAUSE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its steps; fails every third; asks for a long pause after each.
    struct Counter {
        steps: u64,
    }

    impl Worker for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }

        async fn step(&mut self) -> Result<Duration, String> {
            self.steps += 1;
            if self.steps.is_multiple_of(3) {
                return Err("every third step fails".into());
            }
            Ok(if self.steps < 5 {
                Duration::ZERO
            } else {
                Duration::from_secs(3600)
            })
        }

        fn progress(&self) -> Progress {
            Progress {
                busy: self.steps < 5,
                items: self.steps,
                detail: format!("{} steps", self.steps),
            }
        }
    }

    #[test]
    fn steps_are_paced_recorded_and_stopped() {
        let mut runner = Runner::default();
        runner.spawn(Counter { steps: 0 }).unwrap();
        let workers = runner.workers();
        let deadline = Instant::now() + Duration::from_secs(10);
        // Steps 1 and 2 go on at once, step 3 fails (a 5 s pause), 4 and 5 follow, then an
        // hour's pause: the status settles at 5 steps.
        while workers.statuses()[0].steps < 5 {
            assert!(Instant::now() < deadline, "{:?}", workers.statuses());
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = &workers.statuses()[0];
        assert_eq!(
            (status.name, status.steps, status.failures),
            ("counter", 5, 1)
        );
        assert_eq!(status.last_error.as_deref(), Some("every third step fails"));
        assert_eq!(status.progress.items, 5);
        assert!(!status.progress.busy && status.last_step_ms > 0);
        // Stopping interrupts the hour's pause.
        let stopping = Instant::now();
        runner.stop();
        assert!(stopping.elapsed() < Duration::from_secs(5));
    }
}
