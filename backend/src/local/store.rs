//! The redb file the embedded backend's maps live in: one table per map.

use crate::{BackendError, Result};
use redb::{Database, TableDefinition};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// redb's page cache (reads and the write buffer together): what the maps may hold in
/// memory, however many keys they store.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// A map: a table of byte keys and values, in key order.
pub(super) type Map<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;

pub(super) fn kv_error(error: impl Into<redb::Error>) -> BackendError {
    BackendError::Kv(error.into().to_string())
}

/// Opens the file at `path`, created if missing; after a crash, checks it first.
pub(super) fn open_db(path: &Path) -> Result<Database> {
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .set_repair_callback(|session| {
            tracing::warn!(
                progress = %format!("{:.0}%", session.progress() * 100.0),
                "the index file was not closed cleanly: checking it before use"
            );
        })
        .create(path)
        .map_err(kv_error)
}

/// Opens the database (again).
pub(super) type Opener = Box<dyn Fn() -> Result<Database> + Send + Sync>;

/// How long a reopen waits for reads under way to let go of the old database.
const READS_DRAIN: Duration = Duration::from_secs(10);

/// The open database, shared by the readers and the writer. After an I/O error (a full
/// disk) redb refuses every later write until the database is closed and opened again:
/// the writer then reopens it, and until that succeeds callers are told the index is
/// unavailable (503, `/readyz` failing) rather than failed for good.
pub(super) struct Store {
    db: RwLock<Option<Arc<Database>>>,
    open: Opener,
}

impl Store {
    pub(super) fn open(open: Opener) -> Result<Self> {
        let db = open()?;
        Ok(Store {
            db: RwLock::new(Some(Arc::new(db))),
            open,
        })
    }

    pub(super) fn db(&self) -> Result<Arc<Database>> {
        let db = self.db.read().unwrap_or_else(|e| e.into_inner()).clone();
        db.ok_or_else(|| {
            BackendError::Unavailable("the index is being reopened after an I/O error".into())
        })
    }

    /// Closes the database, waiting for reads under way, and opens it again (a crash check
    /// runs first, as after a crash).
    pub(super) fn reopen(&self) -> Result<()> {
        let old = self.db.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(db) = old {
            let old = Arc::downgrade(&db);
            drop(db);
            let since = Instant::now();
            while old.strong_count() > 0 && since.elapsed() < READS_DRAIN {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let db = (self.open)()?;
        *self.db.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(db));
        tracing::info!("the index is open again");
        Ok(())
    }
}
