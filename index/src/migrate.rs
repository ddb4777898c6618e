//! Upgrades an index written by an earlier Kura (format 1: counters in a `usage` map,
//! parts in `p/<bucket>` maps, global garbage maps) to the current one, where each map
//! carries its own counters and garbage (see `shard.rs`). Runs at startup, before any
//! request: every step can run again after a crash, and the format is recorded last.

use crate::model::{BUCKETS, BucketRecord, ObjectRecord, RETIRED, ShardLayout, decode, encode};
use crate::shard::{ENTRIES_END, HEADER, Header};
use crate::uploads::part_key;
use crate::{Index, Result};
use kura_backend::{BlobStore, Scan, Write};
use serde::Deserialize;

/// Index-wide records.
const META: &str = "meta";
const FORMAT_KEY: &[u8] = b"format";
const FORMAT: &[u8] = b"2";
/// Format 1's maps.
const OLD_USAGE: &str = "usage";
const OLD_GC: &str = "gc";
const OLD_GC_DUE: &str = "gc-due";
const PAGE: usize = 1000;

/// A layout replaced by a format 1 reshard.
#[derive(Deserialize)]
struct OldRetired {
    bucket: String,
    layout: ShardLayout,
}

impl Index {
    /// Makes the stored index one this build reads: records the format of a new index,
    /// upgrades one from an earlier Kura. Blobs that index had queued for deletion are
    /// deleted now: nothing reads or writes them while the process starts.
    pub async fn prepare(&self, blobs: &dyn BlobStore) -> Result<()> {
        match self.kv.get(META, FORMAT_KEY).await? {
            Some(format) if format == FORMAT => return Ok(()),
            Some(format) => {
                return Err(crate::IndexError::Format(
                    String::from_utf8_lossy(&format).into_owned(),
                ));
            }
            None => {}
        }
        let earlier = !self.read_all(BUCKETS).await?.is_empty()
            || !self
                .kv
                .scan(OLD_GC, &Scan::prefix(Vec::new(), 1))
                .await?
                .entries
                .is_empty();
        if earlier {
            tracing::info!("upgrading the index written by an earlier Kura");
            self.migrate(blobs).await?;
        }
        let mut write = Write::default();
        write.expect(FORMAT_KEY, None).put(FORMAT_KEY, FORMAT);
        // Another gateway recording it first is as good.
        let _ = self.kv.write(META, write).await?;
        self.sync().await
    }

    async fn migrate(&self, blobs: &dyn BlobStore) -> Result<()> {
        for (name, raw) in self.read_all(BUCKETS).await? {
            let mut record: BucketRecord = decode(&raw)?;
            if let Some(reshard) = record.reshard.take() {
                // Its copy was made without counters: the planner starts a new one.
                for shard in 0..reshard.target.shards {
                    self.kv
                        .drop_map(&record.shard_map(&reshard.target, shard))
                        .await?;
                }
            }
            for map in record.shard_maps() {
                self.count_entries(&map).await?;
            }
            self.move_parts(&record).await?;
            let mut write = Write::default();
            write.put(name, encode(&record));
            let _ = self.kv.write(BUCKETS, write).await?;
        }
        for map in [OLD_GC, OLD_GC_DUE] {
            for (key, _) in self.read_all(map).await? {
                let blob = match map {
                    OLD_GC => key,
                    _ => key.get(8..).unwrap_or_default().to_vec(),
                };
                blobs.delete_blob(&String::from_utf8_lossy(&blob)).await?;
            }
            self.kv.drop_map(map).await?;
        }
        for (_, raw) in self.read_all(RETIRED).await? {
            if let Ok(old) = decode::<OldRetired>(&raw) {
                for shard in 0..old.layout.shards {
                    let map = format!("o/{}/{}/{shard}", old.bucket, old.layout.generation);
                    self.kv.drop_map(&map).await?;
                }
            }
        }
        self.kv.drop_map(RETIRED).await?;
        self.kv.drop_map(OLD_USAGE).await?;
        self.sync().await
    }

    /// Writes a shard's header from what it holds.
    async fn count_entries(&self, map: &str) -> Result<()> {
        let mut header = Header::default();
        let mut scan = Scan {
            end: Some(ENTRIES_END.to_vec()),
            limit: PAGE,
            ..Scan::default()
        };
        loop {
            let page = self.kv.scan(map, &scan).await?;
            for (_, value) in &page.entries {
                let entry: ObjectRecord = decode(value)?;
                let (objects, bytes) = entry.current().map_or((0, 0), |v| (1, v.size as i64));
                header = header.counted(1, objects, bytes);
            }
            match page.next {
                Some(next) => scan.start = next,
                None => break,
            }
        }
        let mut write = Write::default();
        write.put(HEADER, encode(&header));
        let _ = self.kv.write(map, write).await?;
        Ok(())
    }

    /// Moves format 1's parts (`p/<bucket>`: upload id, NUL, number) into the uploads
    /// map, and counts its uploads.
    async fn move_parts(&self, record: &BucketRecord) -> Result<()> {
        let uploads = record.upload_map();
        let old_parts = format!("p/{}", record.name);
        for (key, value) in self.read_all(&old_parts).await? {
            let Some(split) = key.iter().position(|b| *b == 0) else {
                continue;
            };
            let (id, number) = (&key[..split], &key[split + 1..]);
            let Ok(number) = <[u8; 4]>::try_from(number) else {
                continue;
            };
            let mut write = Write::default();
            write.put(
                part_key(&String::from_utf8_lossy(id), u32::from_be_bytes(number)),
                value,
            );
            let _ = self.kv.write(&uploads, write).await?;
        }
        self.kv.drop_map(&old_parts).await?;
        let open = self
            .read_all(&uploads)
            .await?
            .iter()
            .filter(|(key, _)| key.as_slice() < ENTRIES_END)
            .count();
        let mut write = Write::default();
        write.put(
            HEADER,
            encode(&Header::default().counted(open as i64, 0, 0)),
        );
        let _ = self.kv.write(&uploads, write).await?;
        Ok(())
    }
}
