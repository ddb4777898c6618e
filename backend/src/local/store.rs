//! The redb file the embedded backend's maps live in: one table per map.

use crate::{BackendError, Result};
use redb::{Database, TableDefinition};
use std::path::Path;

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
                "the index was not closed cleanly: checking it before serving"
            );
        })
        .create(path)
        .map_err(kv_error)
}
