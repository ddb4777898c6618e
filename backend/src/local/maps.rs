//! The embedded backend's maps: one redb table per map, all in one file.
//!
//! redb keeps in memory only its page cache, whose size is a setting, so the process's
//! memory does not grow with the number of keys stored (sled, the engine before it, held
//! a table of every node of its tree and grew by ~40 bytes per object).
//!
//! Reads run on the caller's thread in a snapshot of the last commit. Changes go to one
//! writer thread ([`super::writer`]), which applies every change waiting for it in one
//! transaction and commits it once: a write pays a share of a commit, and a sync a share
//! of a flush, however many callers wait together.

use super::store::{Map, kv_error, open_db};
use super::writer::{self, Job, Progress};
use crate::{BackendError, Outcome, Page, Result, Scan, Write};
use redb::{Database, ReadableDatabase, ReadableTable, TableError};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

fn stopped() -> BackendError {
    BackendError::Kv("the index writer has stopped".into())
}

pub(super) struct Maps {
    db: Arc<Database>,
    jobs: Sender<Job>,
    writer: Option<JoinHandle<()>>,
    progress: Arc<Progress>,
}

impl Drop for Maps {
    /// Waits for the writer to finish its last batch and let go of the file, so that the
    /// maps can be opened again as soon as this returns.
    fn drop(&mut self) {
        drop(std::mem::replace(&mut self.jobs, channel().0));
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Maps {
    /// Opens the maps in the redb file at `path` (created if missing) and starts their
    /// writer.
    pub(super) fn open(path: &Path) -> Result<Self> {
        let db = Arc::new(open_db(path)?);
        let progress = Arc::new(Progress::default());
        let (jobs, writer) = writer::start(db.clone(), progress.clone())?;
        Ok(Maps {
            db,
            jobs,
            writer: Some(writer),
            progress,
        })
    }

    pub(super) fn get_many(&self, map: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let txn = self.db.begin_read().map_err(kv_error)?;
        let table = match txn.open_table(Map::new(map)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(vec![None; keys.len()]),
            Err(e) => return Err(kv_error(e)),
        };
        keys.iter()
            .map(|key| {
                let value = table.get(key.as_slice()).map_err(kv_error)?;
                Ok(value.map(|v| v.value().to_vec()))
            })
            .collect()
    }

    pub(super) fn scan(&self, map: &str, scan: &Scan) -> Result<Page> {
        let txn = self.db.begin_read().map_err(kv_error)?;
        let table = match txn.open_table(Map::new(map)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Page::default()),
            Err(e) => return Err(kv_error(e)),
        };
        let start = scan.start.clone().max(scan.prefix.clone());
        let mut page = Page::default();
        for item in table.range(start.as_slice()..).map_err(kv_error)? {
            let (key, value) = item.map_err(kv_error)?;
            let key = key.value();
            if !scan.holds(key) {
                break;
            }
            if page.entries.len() == scan.limit {
                page.next = Some(key.to_vec());
                break;
            }
            page.entries.push((key.to_vec(), value.value().to_vec()));
        }
        Ok(page)
    }

    async fn submit<T>(&self, job: impl FnOnce(oneshot::Sender<Result<T>>) -> Job) -> Result<T> {
        let (done, answer) = oneshot::channel();
        self.jobs.send(job(done)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Applies `write` if its guards hold; durable at the next [`Maps::sync`].
    pub(super) async fn write(&self, map: String, write: Write) -> Result<Outcome> {
        self.submit(|done| Job::Write { map, write, done }).await
    }

    /// Removes a map, durably.
    pub(super) async fn drop_map(&self, map: String) -> Result<()> {
        self.submit(|done| Job::Drop { map, done }).await
    }

    /// Makes every write that returned before this call durable.
    pub(super) async fn sync(&self) -> Result<()> {
        if self.progress.all_flushed() {
            return Ok(());
        }
        self.submit(|done| Job::Sync { done }).await
    }
}
