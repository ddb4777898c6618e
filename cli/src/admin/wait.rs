//! `kura admin bucket reshard --wait`: poll the bucket's stats until its reshard is over,
//! showing progress on stderr (a bar redrawn in place on a terminal, a line now and then
//! otherwise), so that stdout holds only the final answer.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::Value;

use super::render::{self, Stats};
use kura_admin_client::Client;

/// How often the stats are polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Without a terminal, a progress line at most this often.
const LINE_INTERVAL: Duration = Duration::from_secs(5);
const BAR_WIDTH: usize = 30;

/// Polls `GET buckets/{name}/stats` until `reshard` is null; returns that last answer.
/// `first` is the answer that started the reshard (it may already show it finished).
pub async fn until_resharded(
    client: &Client,
    name: &str,
    first: Option<Value>,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let mut answer = first;
    loop {
        if let Some(value) = answer.take() {
            let stats: Stats = render::decode(value.clone())?;
            match &stats.reshard {
                None => {
                    progress.finish(&stats);
                    return Ok(value);
                }
                Some(_) => progress.show(&stats),
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
        answer = client
            .call(Method::GET, &["buckets", name, "stats"], None, None)
            .await?;
    }
}

struct Progress {
    terminal: bool,
    started: Instant,
    last_line: Option<Instant>,
    drawn: bool,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        Self {
            terminal,
            started: Instant::now(),
            last_line: None,
            drawn: false,
        }
    }

    fn show(&mut self, stats: &Stats) {
        let Some(reshard) = &stats.reshard else {
            return;
        };
        let text = render::progress_text(reshard);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let bar = render::bar(reshard.progress, BAR_WIDTH);
            let _ = write!(
                err,
                "\r\x1b[2Kresharding {} to {} shards {bar} {text}",
                stats.name, reshard.target_shards
            );
            self.drawn = true;
        } else if self
            .last_line
            .is_none_or(|at| at.elapsed() >= LINE_INTERVAL)
        {
            let _ = writeln!(
                err,
                "resharding {} to {} shards: {text}",
                stats.name, reshard.target_shards
            );
            self.last_line = Some(Instant::now());
        }
        let _ = err.flush();
    }

    fn finish(&mut self, stats: &Stats) {
        let mut err = std::io::stderr().lock();
        if self.drawn {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(
            err,
            "resharded {}: {} shards, {} objects (waited {:.1}s)",
            stats.name,
            stats.shards,
            stats.objects,
            self.started.elapsed().as_secs_f64()
        );
        let _ = err.flush();
    }
}
