//! Upgrades an index written by an earlier Kura to the current format 3, where each map
//! carries its own counters and garbage (see `shard.rs`) and every version of a key is an
//! entry of its own (see `versions.rs`): from format 1 (counters in a `usage` map, parts
//! in `p/<bucket>` maps, global garbage maps) and format 2 (all versions of a key in one
//! entry). Runs at startup, before any request: every step can run again after a crash,
//! and the format is recorded last.

use crate::model::{BUCKETS, BucketRecord, ObjectVersion, RETIRED, ShardLayout, decode, encode};
use crate::shard::{ENTRIES_END, HEADER, Header, MapState};
use crate::uploads::part_key;
use crate::versions::{
    CURRENT_END, KeyHead, NULL_VERSION, VersionRef, head_key, is_version, tally, version_key_of,
};
use crate::{Index, Result};
use kura_backend::{BlobStore, Scan, Write};
use serde::Deserialize;

/// Index-wide records.
const META: &str = "meta";
const FORMAT_KEY: &[u8] = b"format";
const FORMAT: &[u8] = b"3";
/// Format 2: the versions of a key in one entry.
const FORMAT_2: &[u8] = b"2";
/// Format 1's maps.
const OLD_USAGE: &str = "usage";
const OLD_GC: &str = "gc";
const OLD_GC_DUE: &str = "gc-due";
const PAGE: usize = 1000;

/// A key's entry in formats 1 and 2: its versions, newest first.
#[derive(Deserialize)]
struct OldRecord {
    versions: Vec<ObjectVersion>,
}

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
        let format = self.kv.get(META, FORMAT_KEY).await?;
        match format.as_deref() {
            Some(FORMAT) => return Ok(()),
            Some(FORMAT_2) => {
                tracing::info!("upgrading the index written by an earlier Kura (format 2)");
                self.split_versions().await?;
            }
            Some(other) => {
                return Err(crate::IndexError::Format(
                    String::from_utf8_lossy(other).into_owned(),
                ));
            }
            None => {
                let earlier = !self.read_all(BUCKETS).await?.is_empty()
                    || !self
                        .kv
                        .scan(OLD_GC, &Scan::prefix(Vec::new(), 1))
                        .await?
                        .entries
                        .is_empty();
                if earlier {
                    tracing::info!("upgrading the index written by an earlier Kura (format 1)");
                    self.migrate(blobs).await?;
                    self.split_versions().await?;
                }
            }
        }
        let mut write = Write::default();
        write.expect(FORMAT_KEY, format).put(FORMAT_KEY, FORMAT);
        // Another gateway recording it first is as good.
        let _ = self.kv.write(META, write).await?;
        self.sync().await
    }

    async fn migrate(&self, blobs: &dyn BlobStore) -> Result<()> {
        for (name, raw) in self.read_all(BUCKETS).await? {
            // A reshard's copy was made without counters: the planner starts a new one.
            let record = self.drop_reshard(name, decode(&raw)?).await?;
            self.move_parts(&record).await?;
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

    /// Makes every version of every key an entry of its own (format 2 to 3). A reshard
    /// under way is dropped (its copies are in the old format): the planner starts anew.
    async fn split_versions(&self) -> Result<()> {
        for (name, raw) in self.read_all(BUCKETS).await? {
            let record = self.drop_reshard(name, decode(&raw)?).await?;
            for map in record.shard_maps() {
                self.split_map(&map).await?;
                self.count_entries(&map).await?;
            }
        }
        Ok(())
    }

    /// Drops the bucket's reshard under way, if any, and its target maps; saves the
    /// record (stored as `name`) and returns it.
    async fn drop_reshard(&self, name: Vec<u8>, mut record: BucketRecord) -> Result<BucketRecord> {
        if let Some(reshard) = record.reshard.take() {
            for shard in 0..reshard.target.shards {
                self.kv
                    .drop_map(&record.shard_map(&reshard.target, shard))
                    .await?;
            }
        }
        let mut write = Write::default();
        write.put(name, encode(&record));
        let _ = self.kv.write(BUCKETS, write).await?;
        Ok(record)
    }

    async fn split_map(&self, map: &str) -> Result<()> {
        let mut scan = Scan {
            end: Some(CURRENT_END.to_vec()),
            limit: PAGE,
            ..Scan::default()
        };
        loop {
            let page = self.kv.scan(map, &scan).await?;
            for (key, value) in &page.entries {
                // Keys split before a crash hold one version already.
                let Ok(old) = decode::<OldRecord>(value) else {
                    continue;
                };
                let text = String::from_utf8_lossy(key).into_owned();
                let mut write = Write::default();
                for version in &old.versions {
                    write.put(version_key_of(&text, version), encode(version));
                }
                match old.versions.first() {
                    Some(newest) => {
                        let null = old.versions.iter().find(|v| v.version_id == NULL_VERSION);
                        let head = KeyHead {
                            newest: VersionRef::of(newest),
                            null: null.map(|v| v.stamp),
                        };
                        write.put(head_key(&text), encode(&head));
                        match newest.delete_marker {
                            false => write.put(key.clone(), encode(newest)),
                            true => write.delete(key.clone()),
                        };
                    }
                    None => {
                        write.delete(key.clone());
                    }
                }
                let _ = self.kv.write(map, write).await?;
            }
            match page.next {
                Some(next) => scan.start = next,
                None => return Ok(()),
            }
        }
    }

    /// Writes a shard's counters from what it holds. A reshard's logging is over.
    async fn count_entries(&self, map: &str) -> Result<()> {
        let (mut header, _) = self.header(map).await?;
        header.entries = 0;
        header.objects = 0;
        header.bytes = 0;
        if header.state.logs() || header.state.is_legacy() {
            header.state = MapState::Open;
        }
        let mut scan = Scan {
            end: Some(ENTRIES_END.to_vec()),
            limit: PAGE,
            ..Scan::default()
        };
        loop {
            let page = self.kv.scan(map, &scan).await?;
            for (key, value) in page.entries.iter().filter(|(key, _)| is_version(key)) {
                let (entries, objects, bytes) = tally(key, Some(&decode(value)?));
                header = header.counted(entries, objects, bytes);
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
