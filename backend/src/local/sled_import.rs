//! Data directories written before Kura kept its maps in redb hold them in a sled
//! database (`index/`): the first start of a newer Kura copies them over, once.

use super::maps::Maps;
use super::store::{Map, kv_error, open_db};
use crate::{BackendError, Result};
use redb::{Database, Durability};
use std::fs;
use std::path::Path;

/// Entries per transaction while copying.
const BATCH: usize = 1024;

fn sled_error(error: sled::Error) -> BackendError {
    BackendError::Kv(format!("reading the old sled index: {error}"))
}

/// Opens the maps at `path`, first filling them from the sled database at `old` if there
/// is one and `path` does not exist yet. The copy goes to a file beside `path` that is
/// renamed into place when complete, so an interrupted copy starts over at the next
/// start; the sled database is removed once the copy is in place.
pub(super) fn open_importing(path: &Path, old: &Path) -> Result<Maps> {
    if !path.exists() && old.exists() {
        let partial = path.with_extension("importing");
        if partial.exists() {
            fs::remove_file(&partial)?;
        }
        let entries = copy(old, &open_db(&partial)?)?;
        fs::rename(&partial, path)?;
        fs::File::open(path.parent().expect("the maps file has a parent"))?.sync_all()?;
        tracing::info!(
            entries,
            from = %old.display(),
            to = %path.display(),
            "copied the index from sled to redb"
        );
    }
    let maps = Maps::open(path)?;
    if old.exists() {
        fs::remove_dir_all(old)?;
    }
    Ok(maps)
}

/// Copies every tree of the sled database at `old` into a map of the same name, flushed
/// to disk when complete.
fn copy(old: &Path, db: &Database) -> Result<u64> {
    let sled = sled::Config::new()
        .path(old)
        .cache_capacity(8 * 1024 * 1024)
        .open()
        .map_err(sled_error)?;
    let mut entries = 0;
    for name in sled.tree_names() {
        let tree = sled.open_tree(&name).map_err(sled_error)?;
        let Ok(name) = std::str::from_utf8(&name) else {
            continue;
        };
        let mut items = tree.iter().peekable();
        while items.peek().is_some() {
            let mut txn = db.begin_write().map_err(kv_error)?;
            txn.set_durability(Durability::None).map_err(kv_error)?;
            {
                let mut table = txn.open_table(Map::new(name)).map_err(kv_error)?;
                for item in items.by_ref().take(BATCH) {
                    let (key, value) = item.map_err(sled_error)?;
                    table.insert(&*key, &*value).map_err(kv_error)?;
                    entries += 1;
                }
            }
            txn.commit().map_err(kv_error)?;
        }
    }
    db.begin_write()
        .map_err(kv_error)?
        .commit()
        .map_err(kv_error)?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scan;

    #[test]
    fn a_sled_index_is_copied_once_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("index");
        {
            let db = sled::open(&old).unwrap();
            let tree = db.open_tree("buckets").unwrap();
            for i in 0..3000u32 {
                tree.insert(i.to_be_bytes(), format!("v{i}").as_bytes())
                    .unwrap();
            }
            db.open_tree("users")
                .unwrap()
                .insert(b"alice", b"a")
                .unwrap();
            db.flush().unwrap();
        }
        let path = dir.path().join("index.redb");
        std::fs::write(path.with_extension("importing"), b"left by a crash").unwrap();
        let maps = open_importing(&path, &old).unwrap();
        assert!(!old.exists());
        assert!(!path.with_extension("importing").exists());
        let page = maps
            .scan("buckets", &Scan::prefix(Vec::new(), 5000))
            .unwrap();
        assert_eq!(page.entries.len(), 3000);
        assert_eq!(
            page.entries[2999],
            (2999u32.to_be_bytes().to_vec(), b"v2999".to_vec())
        );
        assert_eq!(
            maps.get_many("users", &[b"alice".to_vec()]).unwrap(),
            vec![Some(b"a".to_vec())]
        );
        drop(maps);
        // Later starts open the copy and find no sled database to import.
        let maps = open_importing(&path, &old).unwrap();
        assert_eq!(
            maps.get_many("users", &[b"alice".to_vec()]).unwrap(),
            vec![Some(b"a".to_vec())]
        );
    }
}
