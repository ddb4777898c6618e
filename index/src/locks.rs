//! Striped locks that serialise read-modify-write of one (bucket, key).
//! Held only across synchronous index work, never across an await.

use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

const STRIPES: usize = 256;

pub(crate) struct KeyLocks {
    stripes: Vec<Mutex<()>>,
    /// Object writes hold it shared; bucket creation and deletion exclusively,
    /// so no write can land in a bucket that is being removed.
    buckets: RwLock<()>,
}

impl Default for KeyLocks {
    fn default() -> Self {
        KeyLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            buckets: RwLock::new(()),
        }
    }
}

pub(crate) struct KeyGuard<'a> {
    _bucket: RwLockReadGuard<'a, ()>,
    _key: MutexGuard<'a, ()>,
}

impl KeyLocks {
    pub(crate) fn key(&self, bucket: &str, key: &str) -> KeyGuard<'_> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (bucket, key).hash(&mut hasher);
        let stripe = &self.stripes[hasher.finish() as usize % STRIPES];
        KeyGuard {
            _bucket: self.buckets.read().unwrap_or_else(|e| e.into_inner()),
            _key: stripe.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    pub(crate) fn buckets(&self) -> RwLockWriteGuard<'_, ()> {
        self.buckets.write().unwrap_or_else(|e| e.into_inner())
    }
}
