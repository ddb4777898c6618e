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

use super::store::{Map, Opener, Store, kv_error, open_db};
use super::writer::{self, Job, Progress};
use crate::{BackendError, Outcome, Page, Result, Scan, Write};
use redb::{ReadableDatabase, ReadableTable, TableError};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

fn stopped() -> BackendError {
    BackendError::Kv("the index writer has stopped".into())
}

pub(super) struct Maps {
    store: Arc<Store>,
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
        let path = path.to_owned();
        Self::start(Box::new(move || open_db(&path)))
    }

    /// Opens the maps with `open` (again at each reopen) and starts their writer.
    pub(super) fn start(open: Opener) -> Result<Self> {
        let store = Arc::new(Store::open(open)?);
        let progress = Arc::new(Progress::default());
        let (jobs, writer) = writer::start(store.clone(), progress.clone())?;
        Ok(Maps {
            store,
            jobs,
            writer: Some(writer),
            progress,
        })
    }

    pub(super) fn get_many(&self, map: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let db = self.store.db()?;
        let txn = db.begin_read().map_err(kv_error)?;
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
        let db = self.store.db()?;
        let txn = db.begin_read().map_err(kv_error)?;
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
        let target = self.progress.sync_target();
        if self.progress.flushed(target) {
            return Ok(());
        }
        self.submit(|done| Job::Sync { target, done }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;
    use redb::backends::FileBackend;
    use redb::{Builder, StorageBackend};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A file whose writes and flushes fail while `full` is set, as on a full disk.
    #[derive(Debug)]
    struct Full {
        file: FileBackend,
        full: Arc<AtomicBool>,
    }

    impl Full {
        fn check(&self) -> std::result::Result<(), redb::BackendError> {
            match self.full.load(Ordering::SeqCst) {
                true => Err(redb::BackendError::Io(
                    std::io::ErrorKind::StorageFull.into(),
                )),
                false => Ok(()),
            }
        }
    }

    impl StorageBackend for Full {
        fn len(&self) -> std::result::Result<u64, redb::BackendError> {
            self.file.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> std::result::Result<(), redb::BackendError> {
            self.file.read(offset, out)
        }
        fn set_len(&self, len: u64) -> std::result::Result<(), redb::BackendError> {
            self.check()?;
            self.file.set_len(len)
        }
        fn sync_data(&self) -> std::result::Result<(), redb::BackendError> {
            self.check()?;
            self.file.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::result::Result<(), redb::BackendError> {
            self.check()?;
            self.file.write(offset, data)
        }
        fn close(&self) -> std::result::Result<(), redb::BackendError> {
            self.file.close()
        }
    }

    fn put(key: &[u8]) -> Write {
        let mut write = Write::default();
        write.put(key.to_vec(), b"v".to_vec());
        write
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_full_disk_fails_writes_until_space_returns_and_loses_nothing_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        let full = Arc::new(AtomicBool::new(false));
        let opener_full = full.clone();
        let maps = Maps::start(Box::new(move || {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            let backend = Full {
                file: FileBackend::new(file),
                full: opener_full.clone(),
            };
            Builder::new()
                .create_with_backend(backend)
                .map_err(kv_error)
        }))
        .unwrap();
        assert_eq!(
            maps.write("m".into(), put(b"a")).await.unwrap(),
            Outcome::Applied
        );
        maps.sync().await.unwrap();

        full.store(true, Ordering::SeqCst);
        // A write may still be taken in memory, but its flush fails: not acknowledged.
        let written = maps.write("m".into(), put(b"b")).await;
        let synced = match written {
            Ok(_) => maps.sync().await,
            Err(e) => Err(e),
        };
        assert!(synced.is_err(), "nothing can be flushed to a full disk");
        assert!(maps.write("m".into(), put(b"c")).await.is_err());

        full.store(false, Ordering::SeqCst);
        let since = std::time::Instant::now();
        loop {
            let written = maps.write("m".into(), put(b"d")).await;
            if written.is_ok() && maps.sync().await.is_ok() {
                break;
            }
            assert!(
                since.elapsed().as_secs() < 10,
                "the index did not come back"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let keys: Vec<Vec<u8>> = [b"a", b"b", b"c", b"d"].map(|k| k.to_vec()).into();
        let held = maps.get_many("m", &keys).unwrap();
        let present: Vec<bool> = held.iter().map(Option::is_some).collect();
        // What was acknowledged (a, d) is there; b and c, never acknowledged, went with
        // the unflushed commit the reopen dropped.
        assert_eq!(present, [true, false, false, true]);
    }
}
