//! Test and bench fixtures shared by the index's integration tests and benches.

#![allow(dead_code)] // each test crate uses its own share of these

use kura_backend::LocalBackend;
use kura_index::{Index, ObjectMeta, ObjectVersion, PartRef, Stamp};
use std::path::Path;
use std::sync::Arc;

/// A one-part object version of `size` bytes stored in `blob`.
pub fn version(blob: &str, size: u64) -> ObjectVersion {
    ObjectVersion {
        version_id: "null".into(),
        stamp: Stamp { ms: 0, seq: 0 },
        delete_marker: false,
        size,
        etag: "e".into(),
        meta: ObjectMeta::default(),
        checksum: None,
        parts: vec![PartRef {
            blob: blob.into(),
            size,
            etag: None,
            checksum: None,
        }],
        multipart: false,
        owner: "o".into(),
        upload_id: None,
    }
}

pub fn open(dir: &Path, shards: u32) -> Index {
    Index::new(Arc::new(LocalBackend::open(dir).unwrap()), shards)
}

/// Opens the index again after the previous handle was dropped: the backend's
/// background flusher may hold the directory's lock a moment longer.
pub fn reopen(dir: &Path, shards: u32) -> Index {
    let mut tries = 0;
    loop {
        match LocalBackend::open(dir) {
            Ok(kv) => return Index::new(Arc::new(kv), shards),
            Err(err) if tries < 200 && err.to_string().contains("lock") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(err) => panic!("reopen: {err}"),
        }
    }
}

/// A scratch directory on tmpfs where there is one: every index write syncs,
/// and the cases must stay fast.
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// An index in a scratch directory, holding one bucket `name` (owned by `o`) of `shards`
/// shards.
pub fn with_bucket(
    rt: &tokio::runtime::Runtime,
    name: &str,
    shards: u32,
) -> (tempfile::TempDir, Index) {
    let dir = scratch();
    let index = open(dir.path(), shards);
    rt.block_on(index.create_bucket(name, "o", "us-east-1", |_| {}))
        .unwrap();
    (dir, index)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A delete by the owner `o`, passing no Object Lock protection.
pub const OWNER: kura_index::Deleter<'static> = kura_index::Deleter {
    owner: "o",
    bypass: kura_index::LockBypass::Nothing,
};

/// The `p` quantile (0..=1) of sorted durations, in milliseconds.
pub fn pct(sorted: &[std::time::Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx].as_secs_f64() * 1000.0
}
