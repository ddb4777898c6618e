//! Blob garbage collection. Blobs are queued here in the same atomic batch
//! that stops referencing them, and deleted later, only after that batch is
//! durable. A blob being written is tracked as an intent; an intent that never
//! got committed (the writer crashed) is collected once it is old enough.
//! Garbage waits a grace period too: a GET that read an index entry just
//! before an overwrite opens the entry's blobs lazily, part by part.

use crate::model::{decode, encode, unix_ms};
use crate::{Index, Result};
use kura_backend::{Batch, BlobStore};
use serde::{Deserialize, Serialize};

/// Blobs being written (intents), keyed by blob id. Garbage queued by older versions is
/// also found here.
pub(crate) const GC: &str = "gc";
/// Unreferenced blobs keyed by when they became garbage (big-endian ms, then blob id), so
/// that a collection pass reads only the entries that are due, not the whole grace period.
pub(crate) const GC_DUE: &str = "gc-due";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum GcEntry {
    /// Being written; becomes garbage if not committed in time.
    Intent { since_ms: u64 },
    /// No longer referenced since then.
    Garbage { since_ms: u64 },
}

/// How long collectable blobs are kept before deletion.
#[derive(Debug, Clone, Copy)]
pub struct GcPolicy {
    /// An uncommitted blob older than this was abandoned by its writer.
    pub intent_age_ms: u64,
    /// Unreferenced blobs are kept this long for reads already under way.
    pub grace_ms: u64,
}

impl Index {
    /// Records that a blob is being written, before its first byte is.
    pub fn track_new_blob(&self, blob: &str) -> Result<()> {
        let mut batch = Batch::default();
        batch.put(
            GC,
            blob.as_bytes(),
            encode(&GcEntry::Intent {
                since_ms: self.now_ms(),
            }),
        );
        Ok(self.kv.apply(batch)?)
    }

    /// Queues a blob that will never be referenced (a failed write).
    pub fn discard_blob(&self, blob: &str) -> Result<()> {
        let mut batch = Batch::default();
        clear_intent(&mut batch, blob);
        queue_garbage(&mut batch, blob);
        Ok(self.kv.apply(batch)?)
    }

    /// Deletes up to `limit` collectable blobs; returns how many it deleted.
    pub async fn collect_garbage(
        &self,
        blobs: &dyn BlobStore,
        policy: GcPolicy,
        limit: usize,
    ) -> Result<usize> {
        // Whatever queued these blobs must be on disk before they go.
        self.sync().await?;
        let now = self.now_ms();
        // (map, key, blob) of every blob to delete now.
        let mut due: Vec<(&str, Vec<u8>, String)> = Vec::new();
        for item in self.kv.scan(GC_DUE, b"")? {
            let (key, _) = item?;
            let Some((since_ms, blob)) = parse_due_key(&key) else {
                continue;
            };
            if now.saturating_sub(since_ms) < policy.grace_ms || due.len() >= limit {
                break;
            }
            due.push((GC_DUE, key.to_vec(), blob));
        }
        for item in self.kv.scan(GC, b"")? {
            if due.len() >= limit {
                break;
            }
            let (key, value) = item?;
            let collectable = match decode::<GcEntry>(&value)? {
                GcEntry::Garbage { since_ms } => now.saturating_sub(since_ms) >= policy.grace_ms,
                GcEntry::Intent { since_ms } => {
                    now.saturating_sub(since_ms) >= policy.intent_age_ms
                }
            };
            if collectable {
                let blob = String::from_utf8_lossy(&key).into_owned();
                due.push((GC, key.to_vec(), blob));
            }
        }
        for (map, key, blob) in &due {
            blobs.delete_blob(blob).await?;
            let mut batch = Batch::default();
            batch.delete(map, key.as_slice());
            self.kv.apply(batch)?;
        }
        Ok(due.len())
    }
}

pub(crate) fn queue_garbage(batch: &mut Batch, blob: &str) {
    let mut key = unix_ms().to_be_bytes().to_vec();
    key.extend_from_slice(blob.as_bytes());
    batch.put(GC_DUE, key, Vec::new());
}

fn parse_due_key(key: &[u8]) -> Option<(u64, String)> {
    let (since, blob) = key.split_first_chunk::<8>()?;
    Some((
        u64::from_be_bytes(*since),
        String::from_utf8(blob.to_vec()).ok()?,
    ))
}

pub(crate) fn clear_intent(batch: &mut Batch, blob: &str) {
    batch.delete(GC, blob.as_bytes());
}
