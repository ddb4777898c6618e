//! In-process locks on index maps, taken while a key change reads and writes its shard so
//! that one gateway's own writes to a shard do not race each other's guards. Only an
//! optimisation: correctness rests on the guards, which hold across gateways.

use std::hash::{Hash, Hasher};
use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;

pub(crate) struct MapLocks {
    stripes: Vec<Mutex<()>>,
}

/// This process's lock on one map.
pub(crate) struct MapLock<'a> {
    map: String,
    _stripe: MutexGuard<'a, ()>,
}

impl Default for MapLocks {
    fn default() -> Self {
        MapLocks {
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
        }
    }
}

impl MapLocks {
    pub(crate) async fn lock(&self, map: &str) -> MapLock<'_> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        map.hash(&mut hasher);
        MapLock {
            map: map.to_owned(),
            _stripe: self.stripes[hasher.finish() as usize % STRIPES]
                .lock()
                .await,
        }
    }
}

impl MapLock<'_> {
    pub(crate) fn is_for(&self, map: &str) -> bool {
        self.map == map
    }
}
