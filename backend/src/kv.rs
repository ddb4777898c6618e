use crate::Result;
use async_trait::async_trait;

/// Ordered key-value maps (the index shards live in these).
#[async_trait]
pub trait KvStore: Send + Sync {
    fn get(&self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Entries of `map` with keys `>= start`, in byte order.
    fn scan(&self, map: &str, start: &[u8]) -> Result<KvIter>;

    /// Applies every operation of the batch atomically.
    fn apply(&self, batch: Batch) -> Result<()>;

    /// Removes a whole map.
    fn drop_map(&self, map: &str) -> Result<()>;

    /// Makes every change applied so far durable (fsync).
    async fn sync(&self) -> Result<()>;
}

/// One write of an atomic batch.
#[derive(Debug, Clone)]
pub enum BatchOp {
    Put {
        map: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        map: String,
        key: Vec<u8>,
    },
}

/// Writes to one or more maps that are applied all together or not at all.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub ops: Vec<BatchOp>,
}

impl Batch {
    pub fn put(&mut self, map: &str, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Put {
            map: map.to_owned(),
            key: key.into(),
            value: value.into(),
        });
    }

    pub fn delete(&mut self, map: &str, key: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Delete {
            map: map.to_owned(),
            key: key.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub(crate) fn map_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .ops
            .iter()
            .map(|op| match op {
                BatchOp::Put { map, .. } | BatchOp::Delete { map, .. } => map.as_str(),
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// An ordered scan over a map.
pub type KvIter = Box<dyn Iterator<Item = crate::Result<(Vec<u8>, Vec<u8>)>> + Send>;
