//! Where each bucket's keys were last seen: the layout of the bucket record this gateway
//! read last. Kept only so that a key's map can be read in the same round trip as the
//! bucket record; never trusted — the record is always read too, and a map guessed wrong
//! is read again (see `Index::read_key`).

use crate::model::{BucketRecord, ShardLayout, shard_map_name};
use std::collections::HashMap;
use std::sync::Mutex;

/// Buckets remembered at most; past that the memory starts over (a miss costs one read).
const MAX_BUCKETS: usize = 4096;

#[derive(Default)]
pub(crate) struct SeenLayouts {
    layouts: Mutex<HashMap<String, (String, ShardLayout)>>,
}

impl SeenLayouts {
    pub(crate) fn remember(&self, record: &BucketRecord) {
        let mut layouts = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, layout)) = layouts.get(&record.name)
            && id == record.map_id()
            && *layout == record.layout
        {
            return;
        }
        if layouts.len() >= MAX_BUCKETS {
            layouts.clear();
        }
        layouts.insert(
            record.name.clone(),
            (record.map_id().to_owned(), record.layout),
        );
    }

    /// The map `key` of `bucket` was in when the bucket's record was last read here.
    pub(crate) fn key_map(&self, bucket: &str, key: &str) -> Option<String> {
        let layouts = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
        let (id, layout) = layouts.get(bucket)?;
        Some(shard_map_name(id, layout, layout.shard_of(key)))
    }
}
