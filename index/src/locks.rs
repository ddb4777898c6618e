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

fn stripe_of(bucket: &str, key: &str) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (bucket, key).hash(&mut hasher);
    hasher.finish() as usize % STRIPES
}

pub(crate) struct ManyGuard<'a> {
    _bucket: RwLockReadGuard<'a, ()>,
    _keys: Vec<MutexGuard<'a, ()>>,
}

pub(crate) struct KeyGuard<'a> {
    _bucket: RwLockReadGuard<'a, ()>,
    _key: MutexGuard<'a, ()>,
}

impl KeyLocks {
    pub(crate) fn key(&self, bucket: &str, key: &str) -> KeyGuard<'_> {
        let stripe = &self.stripes[stripe_of(bucket, key)];
        KeyGuard {
            _bucket: self.buckets.read().unwrap_or_else(|e| e.into_inner()),
            _key: stripe.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Locks every stripe `keys` fall in, each once and in ascending order
    /// (the only multi-stripe holder, so this cannot deadlock with writers).
    pub(crate) fn many(&self, bucket: &str, keys: &[String]) -> ManyGuard<'_> {
        let mut stripes: Vec<usize> = keys.iter().map(|k| stripe_of(bucket, k)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        ManyGuard {
            _bucket: self.buckets.read().unwrap_or_else(|e| e.into_inner()),
            _keys: stripes
                .into_iter()
                .map(|i| self.stripes[i].lock().unwrap_or_else(|e| e.into_inner()))
                .collect(),
        }
    }

    pub(crate) fn buckets(&self) -> RwLockWriteGuard<'_, ()> {
        self.buckets.write().unwrap_or_else(|e| e.into_inner())
    }
}
