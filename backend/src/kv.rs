//! Ordered key-value maps, shaped for a distributed engine: every call may be a network
//! round trip, atomicity stops at one map (one RADOS object), and a write can be made
//! conditional on what the map holds, so that several gateways can share the maps without
//! sharing a lock.

use crate::Result;
use async_trait::async_trait;

/// Ordered key-value maps (the index shards, uploads, buckets, users and keys live in
/// these). Keys and values are arbitrary bytes; keys sort bytewise.
#[async_trait]
pub trait KvStore: Send + Sync {
    async fn get(&self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Several keys of one map, read together (one round trip), in the order asked.
    async fn get_many(&self, map: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>>;

    /// One page of `map`'s entries in key order: keys `>= scan.start`, `< scan.end` and
    /// starting with `scan.prefix`, at most `scan.limit` of them.
    async fn scan(&self, map: &str, scan: &Scan) -> Result<Page>;

    /// Applies every guard check and change of `write` to `map` atomically: all of it or,
    /// when a guard does not hold, nothing. A write should carry at most
    /// [`MAX_WRITE_CHANGES`] changes.
    async fn write(&self, map: &str, write: Write) -> Result<Outcome>;

    /// Removes a whole map.
    async fn drop_map(&self, map: &str) -> Result<()>;

    /// Makes every write that returned so far durable. (Engines whose writes are durable
    /// when they return, such as RADOS, have nothing to do.)
    async fn sync(&self) -> Result<()>;

    /// Called while the store does not answer: refreshes what this process knows of where
    /// the data lives, for engines that can hold a stale picture of it (RADOS after a
    /// whole-cluster restart). Engines without one have nothing to do.
    async fn catch_up(&self) -> Result<()> {
        Ok(())
    }
}

/// How many changes one [`KvStore::write`] should carry at most. An engine applies a
/// write whole: an embedded engine holds what a write changes in memory until it commits
/// (sled, Kura's engine before redb: 1M entries written 24,000 changes at a time peaked at
/// 561 MiB resident, 100 at a time at 45 MiB), and RADOS puts a whole write in one OSD
/// operation. Work bigger than this goes in several writes, each valid on its own.
pub const MAX_WRITE_CHANGES: usize = 128;

/// Which entries of a map a [`KvStore::scan`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The first key that may be returned (inclusive).
    pub start: Vec<u8>,
    /// Keys from here on are not returned (exclusive); None: to the end of the map.
    pub end: Option<Vec<u8>>,
    /// Only keys starting with this are returned.
    pub prefix: Vec<u8>,
    pub limit: usize,
}

impl Scan {
    /// Up to `limit` entries whose keys start with `prefix`, from the first on.
    pub fn prefix(prefix: impl Into<Vec<u8>>, limit: usize) -> Self {
        let prefix = prefix.into();
        Scan {
            start: prefix.clone(),
            end: None,
            prefix,
            limit,
        }
    }

    /// Whether `key` is in the scanned range.
    pub fn holds(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice()
            && self.end.as_ref().is_none_or(|end| key < end.as_slice())
            && key.starts_with(&self.prefix)
    }
}

/// A page of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// Where the next page starts (a `Scan::start`), None when the range is exhausted. A
    /// page may hold fewer than `limit` entries (even none) and still have a next one.
    pub next: Option<Vec<u8>>,
}

/// The smallest key strictly greater than `key`.
pub fn key_after(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.extend_from_slice(key);
    out.push(0);
    out
}

/// Guards and changes applied to one map as one atomic step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Write {
    /// Each key must hold exactly this value (None: be absent).
    pub guards: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Each key is set to this value (None: removed), in order.
    pub changes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Write {
    /// Applies only if `key` holds `value` (None: is absent).
    pub fn expect(&mut self, key: impl Into<Vec<u8>>, value: Option<Vec<u8>>) -> &mut Self {
        self.guards.push((key.into(), value));
        self
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.changes.push((key.into(), Some(value.into())));
        self
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.changes.push((key.into(), None));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.guards.is_empty() && self.changes.is_empty()
    }

    /// The changes with later changes of a key replacing earlier ones, in key order: what
    /// engines that take a set of changes (not a sequence) apply.
    pub fn final_changes(&self) -> Vec<(&[u8], Option<&[u8]>)> {
        let mut last = std::collections::BTreeMap::new();
        for (key, value) in &self.changes {
            last.insert(key.as_slice(), value.as_deref());
        }
        last.into_iter().collect()
    }
}

/// What became of a [`Write`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// A guard did not hold; nothing was changed.
    GuardFailed,
}

impl Outcome {
    pub fn applied(self) -> bool {
        self == Outcome::Applied
    }
}
