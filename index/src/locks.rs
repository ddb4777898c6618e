//! In-process locks on index maps, taken while a key change reads and writes its shard so
//! that one gateway's own writes to a shard do not race each other's guards. Only an
//! optimisation: correctness rests on the guards, which hold across gateways.

use std::hash::{Hash, Hasher};
use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;

pub(crate) struct MapLocks {
    stripes: Vec<Mutex<()>>,
}

impl Default for MapLocks {
    fn default() -> Self {
        MapLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }
}

impl MapLocks {
    pub(crate) async fn lock(&self, map: &str) -> MutexGuard<'_, ()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        map.hash(&mut hasher);
        self.stripes[hasher.finish() as usize % STRIPES]
            .lock()
            .await
    }
}
