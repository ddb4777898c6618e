//! In-process locks on index maps, taken while a key change reads and writes its shard so
//! that one gateway's own writes to a shard do not race each other's guards. Only an
//! optimisation: correctness rests on the guards, which hold across gateways.
//!
//! Under the lock each map also keeps the header this gateway last wrote to it: a reshard's
//! freeze guards on it instead of reading the header first (one round trip instead of
//! two), and a header another gateway changed since only fails that guard.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;
/// Headers remembered per stripe at most; past that the stripe's memory starts over.
const HEADERS_PER_STRIPE: usize = 16;

#[derive(Default)]
struct Stripe {
    /// Map name → the raw header this gateway last wrote there.
    headers: HashMap<String, Vec<u8>>,
}

pub(crate) struct MapLocks {
    stripes: Vec<Mutex<Stripe>>,
}

/// This process's lock on one map.
pub(crate) struct MapLock<'a> {
    map: String,
    stripe: MutexGuard<'a, Stripe>,
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
            stripe: self.stripes[hasher.finish() as usize % STRIPES]
                .lock()
                .await,
        }
    }
}

impl MapLock<'_> {
    pub(crate) fn is_for(&self, map: &str) -> bool {
        self.map == map
    }

    /// The header this gateway last wrote to the map, if it remembers one: a guess, as
    /// another gateway may have written since.
    pub(crate) fn written_header(&self) -> Option<Vec<u8>> {
        self.stripe.headers.get(&self.map).cloned()
    }

    /// Remembers the header just written to the map (None: not known what the map now
    /// holds, after a failed or unanswered write).
    pub(crate) fn wrote_header(&mut self, raw: Option<Vec<u8>>) {
        let headers = &mut self.stripe.headers;
        match raw {
            // Every write of a key lands here: the map's name is copied only when new.
            Some(raw) => match headers.get_mut(&self.map) {
                Some(known) => *known = raw,
                None => {
                    if headers.len() >= HEADERS_PER_STRIPE {
                        headers.clear();
                    }
                    headers.insert(self.map.clone(), raw);
                }
            },
            None => {
                headers.remove(&self.map);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_map_remembers_its_last_header_under_its_lock() {
        let locks = MapLocks::default();
        let mut lock = locks.lock("a").await;
        assert_eq!(lock.written_header(), None);
        lock.wrote_header(Some(b"h1".to_vec()));
        drop(lock);
        let mut lock = locks.lock("a").await;
        assert_eq!(lock.written_header(), Some(b"h1".to_vec()));
        lock.wrote_header(None);
        assert_eq!(lock.written_header(), None);
    }

    #[tokio::test]
    async fn remembered_headers_stay_bounded() {
        let locks = MapLocks::default();
        for n in 0..STRIPES * HEADERS_PER_STRIPE * 4 {
            locks
                .lock(&n.to_string())
                .await
                .wrote_header(Some(vec![0; 8]));
        }
        for stripe in &locks.stripes {
            assert!(stripe.lock().await.headers.len() <= HEADERS_PER_STRIPE);
        }
    }
}
