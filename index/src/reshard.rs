//! Online resharding without cross-map writes: a bucket's entries move to a new layout
//! while reads, writes and listings go on, through any number of gateways.
//!
//! 1. Starting: every source shard is switched to logging; from then on each change of
//!    a key also writes a log record into the same shard, in the same write.
//! 2. Copying: the entries of each source shard are copied, a page at a time, to their
//!    shards of the target layout; the place reached is persisted after each page.
//! 3. Replaying: logged keys are copied again (their current value), and their log
//!    records removed, until little is left.
//! 4. Switching: the source shards are frozen (writers wait), the last log records are
//!    replayed, the target shards opened, and the bucket record switched to the target
//!    layout. Writes pause only for this step. The source shards are retired: a writer
//!    that still uses the old layout finds its guard failed and reloads the bucket.
//!    Writers of every gateway keep off from the switch's start (this process's told
//!    directly, others by a mark in the bucket record they read anyway), so that they do
//!    not race the freezes; the freezes alone keep them out if the hint is missed.
//!
//! Reads and listings use the source layout, complete throughout, until the switch.
//! One gateway runs a reshard at a time, holding a lease in the bucket record; another
//! takes over once it lapses. Every lease has a new epoch, and target shards carry the
//! epoch of the last holder that wrote to them, so a holder that lost its lease can no
//! longer write there (nor, after the switch, anywhere that matters).

use crate::model::{
    BucketRecord, Lease, ObjectVersion, Reshard, ReshardPhase, ShardLayout, decode, encode,
};
use crate::reshard_log::LOG;
use crate::shard::{ENTRIES_END, Header, MapState, guard_header};
use crate::versions::{STORED_PER_KEY, is_version, object_key, tally};
use crate::{Index, IndexError, Result};
use kura_backend::{MAX_WRITE_CHANGES, Scan, Write, key_after};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How long a reshard's lease lasts without a step renewing it.
const LEASE_MS: u64 = 30_000;
/// A replay pass that finds fewer log records than this (per stored entry of a key) is
/// followed by the switch.
const SWITCH_BELOW: usize = 100;

/// What one reshard step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReshardStep {
    pub copied: u64,
    pub done: bool,
    /// How long writes were held off for the switch, when this step switched.
    pub switch_pause: Option<Duration>,
    /// What is left to do, for pacing (see `ReshardPace`).
    pub left: Backlog,
}

/// What a reshard has left to do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// Stored entries of the source shards the copy has not read yet (`left`, an
    /// estimate: see `Reshard::copy_left`; entries added behind the copy's place count
    /// too, though they are replayed from the log instead), and those its step `read`.
    Copy { left: u64, read: u64 },
    /// Log records a replay pass found; None when a shard had more than a page.
    Log(Option<u64>),
    /// Nothing to tell (starting, switching, or another gateway's turn).
    Unknown,
}

impl Backlog {
    pub(crate) fn same_stage(&self, other: &Backlog) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// Whether this is less left to do than `other`, of the same stage; for a copy, by at
    /// least half of what it `read` since, else writers add more than half as fast as
    /// it copies.
    pub(crate) fn less_than(&self, other: &Backlog, read: u64) -> bool {
        match (self, other) {
            (Backlog::Copy { left: a, .. }, Backlog::Copy { left: b, .. }) => a + read / 2 <= *b,
            (Backlog::Log(Some(a)), Backlog::Log(Some(b))) => a < b,
            (Backlog::Log(Some(_)), Backlog::Log(None)) => true,
            _ => false,
        }
    }
}

/// A page of a source shard's log, read for a replay.
struct Logged {
    /// The log records' own keys.
    records: Vec<Vec<u8>>,
    /// The keys they name.
    keys: Vec<Vec<u8>>,
    /// Whether the page holds the rest of the log.
    drained: bool,
}

/// What one replay pass over the source shards did.
struct Pass {
    records: usize,
    /// The source shards whose log had more than a page.
    undrained: Vec<String>,
}

impl ReshardStep {
    /// The step of a bucket with no reshard (left) under way.
    const NOTHING_LEFT: ReshardStep = ReshardStep {
        copied: 0,
        done: true,
        switch_pause: None,
        left: Backlog::Unknown,
    };
    /// A step that did nothing now (another gateway holds the lease, or lost a race).
    const LATER: ReshardStep = ReshardStep {
        copied: 0,
        done: false,
        switch_pause: None,
        left: Backlog::Unknown,
    };
}

/// A bucket's shards and what they hold.
#[derive(Debug, Clone)]
pub struct ShardStats {
    pub shards: u32,
    pub objects_per_shard: Vec<u64>,
    pub reshard: Option<Reshard>,
}

/// Entries to write to the target layout: a key and its value in the source (None: gone).
/// Stored keys (of any of a shard's spaces, see `versions.rs`) and their values.
type Values = Vec<(Vec<u8>, Option<Vec<u8>>)>;
/// Keys to write to a target shard, each with its value there and its value in the source.
type Filled = Vec<(Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>)>;

impl Reshard {
    /// Stored entries the copy has yet to read from source shards holding `entries`
    /// versions, besides `read` (those its step just read): an estimate, from the
    /// `STORED_PER_KEY` entries of a key of one version (keys of several have fewer per
    /// version, so it runs high).
    pub(crate) fn copy_left(&self, entries: u64, read: u64) -> u64 {
        (entries * STORED_PER_KEY as u64).saturating_sub(self.read + read)
    }

    /// How far the reshard has got, 0 to 1, with `entries` versions in the source shards:
    /// the copy's share of what it reads, then 1 while the log is replayed.
    pub fn progress(&self, entries: u64) -> f64 {
        match self.phase {
            ReshardPhase::Starting => 0.0,
            ReshardPhase::Copying { .. } if entries > 0 => {
                1.0 - self.copy_left(entries, 0) as f64 / (entries * STORED_PER_KEY as u64) as f64
            }
            _ => 1.0,
        }
    }
}

impl Index {
    /// The buckets whose writes here found a shard holding more than `threshold` entries
    /// since the last call (which also set the threshold: none are noted before the
    /// first). See `crowded.rs`.
    pub fn crowded_buckets(&self, threshold: u64) -> Vec<String> {
        self.crowded.take(threshold)
    }

    /// Starts moving `bucket` to `shards` shards. Asking for the current
    /// count changes nothing.
    pub async fn start_reshard(&self, bucket: &str, shards: u32) -> Result<BucketRecord> {
        let generation = self.clock.stamp().ms;
        let now = self.now_ms();
        let record = self
            .change_bucket(bucket, |record| {
                if record.reshard.is_some() {
                    return Err(IndexError::ReshardInProgress);
                }
                if shards == record.layout.shards {
                    return Ok(false);
                }
                record.reshard = Some(Reshard {
                    target: ShardLayout {
                        generation: generation.max(record.layout.generation + 1),
                        shards,
                    },
                    started_ms: now,
                    copied: 0,
                    read: 0,
                    phase: ReshardPhase::Starting,
                    lease: None,
                    switching_since_ms: None,
                });
                Ok(true)
            })
            .await?;
        self.sync().await?;
        Ok(record)
    }

    /// Runs one bounded step of `bucket`'s reshard (about `max_keys` keys), if this
    /// gateway holds (or can take) its lease.
    pub async fn reshard_step(&self, bucket: &str, max_keys: usize) -> Result<ReshardStep> {
        if self.bucket(bucket).await?.reshard.is_none() {
            return Ok(ReshardStep::NOTHING_LEFT);
        }
        let Some((record, reshard, epoch)) = self.take_lease(bucket).await? else {
            return Ok(ReshardStep::LATER);
        };
        let target = reshard.target;
        let (copied, read, phase, left) = match reshard.phase {
            ReshardPhase::Starting => {
                // A shard still Filling (a switch's opener died, no write since) logs too.
                let unlogged =
                    |s: &MapState| matches!(s, MapState::Open | MapState::Filling { .. });
                for map in record.shard_maps() {
                    self.set_state(&map, unlogged, MapState::Logging).await?;
                }
                let first = ReshardPhase::Copying {
                    shard: 0,
                    after: None,
                };
                (0, 0, first, Backlog::Unknown)
            }
            ReshardPhase::Copying {
                shard,
                after: ref cursor,
            } => {
                let map = record.shard_map(&record.layout, shard);
                let scan = Scan {
                    start: cursor.as_deref().map(key_after).unwrap_or_default(),
                    end: Some(ENTRIES_END.to_vec()),
                    prefix: Vec::new(),
                    limit: max_keys.max(1) * STORED_PER_KEY,
                };
                let page = self.kv.scan(&map, &scan).await?;
                let values: Values = page
                    .entries
                    .into_iter()
                    .map(|(key, value)| (key, Some(value)))
                    .collect();
                // Versions, as the shard headers count entries; and every entry read.
                let copied = values.iter().filter(|(key, _)| is_version(key)).count() as u64;
                let read = values.len() as u64;
                let last = values.last().map(|(key, _)| key.clone());
                let keys = values.iter().map(|(key, _)| key.clone()).collect();
                let fill = self.fill_target(&record, &target, epoch, keys, async { Ok(values) });
                if !fill.await? {
                    return Ok(ReshardStep::LATER);
                }
                let next = match (page.next, last) {
                    (Some(_), Some(last)) => ReshardPhase::Copying {
                        shard,
                        after: Some(last),
                    },
                    _ if shard + 1 < record.layout.shards => ReshardPhase::Copying {
                        shard: shard + 1,
                        after: None,
                    },
                    _ => ReshardPhase::Replaying,
                };
                let entries: u64 = self.headers(&record).await?.iter().map(|h| h.entries).sum();
                let left = reshard.copy_left(entries, read);
                (copied, read, next, Backlog::Copy { left, read })
            }
            ReshardPhase::Replaying => {
                let limit = max_keys.max(1) * STORED_PER_KEY;
                let Some((next, left)) = self.catch_up_log(&record, &target, epoch, limit).await?
                else {
                    return Ok(ReshardStep::LATER);
                };
                // Straight on: the log grows for as long as the switch waits.
                if next == ReshardPhase::Switching {
                    return self.switch_step(&record, &target, epoch).await;
                }
                (0, 0, next, left)
            }
            ReshardPhase::Switching => return self.switch_step(&record, &target, epoch).await,
        };
        let saved = self
            .save_reshard(bucket, &target, epoch, |r| {
                r.copied += copied;
                r.read += read;
                r.phase = phase.clone();
            })
            .await?;
        Ok(if saved {
            ReshardStep {
                copied,
                done: false,
                switch_pause: None,
                left,
            }
        } else {
            ReshardStep::LATER
        })
    }

    async fn switch_step(
        &self,
        record: &BucketRecord,
        target: &ShardLayout,
        epoch: u64,
    ) -> Result<ReshardStep> {
        Ok(match self.switch(record, target, epoch).await? {
            Some(pause) => ReshardStep {
                copied: 0,
                done: true,
                switch_pause: Some(pause),
                left: Backlog::Unknown,
            },
            None => ReshardStep::LATER,
        })
    }

    /// Replays the log in passes, back to back while each finds less than the one before,
    /// and tells whether the switch may follow: when little is left, or when the log no
    /// longer shrinks although every pass empties it (the writers then add about a pass's
    /// worth while a pass runs, which the switch's final replay will take as long as).
    /// None when a later lease holder has taken over.
    async fn catch_up_log(
        &self,
        record: &BucketRecord,
        target: &ShardLayout,
        epoch: u64,
        limit: usize,
    ) -> Result<Option<(ReshardPhase, Backlog)>> {
        const MAX_PASSES: usize = 8;
        let maps = record.shard_maps();
        // About `limit` records a pass, spread over the shards: what a pass holds at once
        // (the keys, their values and their targets' values) does not grow with the
        // number of shards.
        let per_shard = limit.div_ceil(maps.len().max(1));
        let mut before: Option<usize> = None;
        for _ in 0..MAX_PASSES {
            let Some(pass) = self
                .replay(record, target, epoch, &maps, per_shard, false)
                .await?
            else {
                return Ok(None);
            };
            if !pass.undrained.is_empty() {
                return Ok(Some((ReshardPhase::Replaying, Backlog::Log(None))));
            }
            let left = Backlog::Log(Some(pass.records as u64));
            if pass.records < SWITCH_BELOW * STORED_PER_KEY
                || before.is_some_and(|before| pass.records >= before)
            {
                return Ok(Some((ReshardPhase::Switching, left)));
            }
            before = Some(pass.records);
        }
        let left = Backlog::Log(before.map(|n| n as u64));
        Ok(Some((ReshardPhase::Replaying, left)))
    }

    /// Takes (or renews) the lease of `bucket`'s reshard for this gateway: the record and
    /// reshard as leased, and the lease's epoch; None if another gateway holds it.
    async fn take_lease(&self, bucket: &str) -> Result<Option<(BucketRecord, Reshard, u64)>> {
        let now = self.now_ms();
        let mut taken = false;
        let record = self
            .change_bucket(bucket, |record| {
                taken = false;
                let Some(reshard) = record.reshard.as_mut() else {
                    return Ok::<_, IndexError>(false);
                };
                let epoch = match &reshard.lease {
                    Some(lease) if lease.holder == self.instance => lease.epoch,
                    Some(lease) if lease.until_ms > now => return Ok(false),
                    Some(lease) => lease.epoch + 1,
                    None => 1,
                };
                reshard.lease = Some(Lease {
                    holder: self.instance.clone(),
                    until_ms: now + LEASE_MS,
                    epoch,
                });
                taken = true;
                Ok(true)
            })
            .await?;
        if !taken {
            return Ok(None);
        }
        let reshard = record.reshard.clone().expect("a leased reshard");
        let epoch = reshard.lease.as_ref().map_or(0, |l| l.epoch);
        Ok(Some((record, reshard, epoch)))
    }

    /// Changes the reshard's persisted progress, if it is still the one this gateway
    /// leased with `epoch`. False when it is not.
    async fn save_reshard(
        &self,
        bucket: &str,
        target: &ShardLayout,
        epoch: u64,
        change: impl Fn(&mut Reshard),
    ) -> Result<bool> {
        let (_, ours) = self
            .change_reshard(bucket, None, target, epoch, change)
            .await?;
        if ours {
            self.sync().await?;
        }
        Ok(ours)
    }

    /// Writes the source's values of `keys` (`values` reads them) to their shards of
    /// `target`, keeping each shard's counters; the shards carry `epoch`. The target
    /// shards' headers and the keys' values there (for the counters) are read at the same
    /// time as the source's values, which they do not depend on: only lease holders write
    /// target shards. False when a later lease holder has written there.
    async fn fill_target(
        &self,
        record: &BucketRecord,
        target: &ShardLayout,
        epoch: u64,
        keys: Vec<Vec<u8>>,
        values: impl Future<Output = Result<Values>>,
    ) -> Result<bool> {
        let mut by_shard: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
        for key in keys {
            let shard = target.shard_of(&String::from_utf8_lossy(object_key(&key)));
            by_shard.entry(shard).or_default().push(key);
        }
        for keys in by_shard.values_mut() {
            keys.sort();
            keys.dedup();
        }
        let reads = by_shard.iter().map(|(shard, keys)| async move {
            let map = record.shard_map(target, *shard);
            let (old, header) = self.read_with_header(&map, keys).await?;
            Ok::<_, IndexError>((map, old, header))
        });
        let (values, reads) = futures::try_join!(values, futures::future::try_join_all(reads))?;
        let values: HashMap<Vec<u8>, Option<Vec<u8>>> = values.into_iter().collect();
        let fills = by_shard
            .into_values()
            .zip(reads)
            .map(|(keys, (map, old, header))| {
                let filled = keys.into_iter().zip(old).map(|(key, old)| {
                    let new = values.get(&key).cloned().flatten();
                    (key, old, new)
                });
                self.fill_shard(map, epoch, filled.collect(), header)
            });
        Ok(futures::future::try_join_all(fills)
            .await?
            .into_iter()
            .all(|ok| ok))
    }

    /// `fill_target` for one target shard, read as `raw_header`: each key with its old
    /// and new value, in writes of at most `MAX_WRITE_CHANGES` (each with the header it
    /// counts into, guarded on the one written before): copying again what a cut-off fill
    /// copied changes nothing, so a fill need not be one write.
    async fn fill_shard(
        &self,
        map: String,
        epoch: u64,
        filled: Filled,
        mut raw_header: Option<Vec<u8>>,
    ) -> Result<bool> {
        let mut header = Header::decode(raw_header.as_deref())?;
        match header.state {
            MapState::Open if raw_header.is_none() => {}
            MapState::Filling { epoch: theirs } if theirs <= epoch => {}
            _ => return Ok(false),
        }
        for chunk in filled.chunks(MAX_WRITE_CHANGES - 1) {
            let mut next = Header {
                state: MapState::Filling { epoch },
                ..header
            };
            let mut write = Write::default();
            for (key, old, new) in chunk {
                let counts = |raw: Option<&Vec<u8>>| -> Result<(i64, i64, i64)> {
                    let version = match raw {
                        Some(raw) if is_version(key) => Some(decode::<ObjectVersion>(raw)?),
                        _ => None,
                    };
                    Ok(tally(key, version.as_ref()))
                };
                let (gained, lost) = (counts(new.as_ref())?, counts(old.as_ref())?);
                next = next.counted(gained.0 - lost.0, gained.1 - lost.1, gained.2 - lost.2);
                match new {
                    Some(value) => write.put(key.clone(), value.clone()),
                    None => write.delete(key.clone()),
                };
            }
            let written = guard_header(&mut write, raw_header, &next);
            if !self.kv.write(&map, write).await?.applied() {
                return Ok(false);
            }
            (header, raw_header) = (next, Some(written));
        }
        Ok(true)
    }

    /// Copies again the keys logged in the source shards `maps` (up to `max_keys` log
    /// records per shard) and removes their records. Every shard's log is read at once, and
    /// what they name is written to each target shard in one fill, as a key is logged
    /// in one source shard only. A frozen shard gets no new records, so its last page's
    /// records are left for its retirement. None when a later lease holder has taken
    /// over.
    async fn replay(
        &self,
        record: &BucketRecord,
        target: &ShardLayout,
        epoch: u64,
        maps: &[String],
        max_keys: usize,
        frozen: bool,
    ) -> Result<Option<Pass>> {
        let places = record.shard_map(target, 0);
        let logs = maps.iter().map(|map| self.log_page(map, &places, max_keys));
        let logs = futures::future::try_join_all(logs).await?;
        self.apply_logs(record, target, epoch, maps, logs, frozen)
            .await
    }

    /// The rest of `replay`, once the logs of the source shards `maps` are read.
    async fn apply_logs(
        &self,
        record: &BucketRecord,
        target: &ShardLayout,
        epoch: u64,
        maps: &[String],
        logs: Vec<Logged>,
        frozen: bool,
    ) -> Result<Option<Pass>> {
        let mut pass = Pass {
            records: 0,
            undrained: Vec::new(),
        };
        let mut keys = Vec::new();
        for (map, log) in maps.iter().zip(&logs) {
            pass.records += log.records.len();
            if !log.drained {
                pass.undrained.push(map.clone());
            }
            keys.extend(log.keys.iter().cloned());
        }
        if keys.is_empty() {
            return Ok(Some(pass));
        }
        // The keys' current values in the source shards.
        let values = async {
            let reads = maps
                .iter()
                .zip(&logs)
                .filter(|(_, log)| !log.keys.is_empty());
            let reads = reads.map(|(map, log)| async move {
                let current = self.kv.get_many(map, &log.keys).await?;
                Ok::<_, IndexError>(log.keys.iter().cloned().zip(current).collect::<Values>())
            });
            Ok(futures::future::try_join_all(reads).await?.concat())
        };
        if !self
            .fill_target(record, target, epoch, keys, values)
            .await?
        {
            return Ok(None);
        }
        let removals = maps
            .iter()
            .zip(&logs)
            .filter(|(_, log)| !(frozen && log.drained))
            .map(|(map, log)| self.remove_records(map, &log.records));
        futures::future::try_join_all(removals).await?;
        let places = record.shard_map(target, 0);
        for (map, log) in maps.iter().zip(&logs) {
            self.log_places.replayed(map, &places, &log.records);
        }
        Ok(Some(pass))
    }

    /// A page of `map`'s log from where this process's replays into the target named
    /// `places` got to (see `LogPlaces`): its records and the keys they name.
    async fn log_page(&self, map: &str, places: &str, max_keys: usize) -> Result<Logged> {
        let scan = Scan {
            start: self.log_places.start(map, places),
            ..Scan::prefix(LOG.to_vec(), max_keys.max(1))
        };
        let page = self.kv.scan(map, &scan).await?;
        let records: Vec<Vec<u8>> = page.entries.iter().map(|(k, _)| k.clone()).collect();
        let mut keys: Vec<Vec<u8>> = page.entries.into_iter().map(|(_, key)| key).collect();
        keys.sort();
        keys.dedup();
        Ok(Logged {
            records,
            keys,
            drained: page.next.is_none(),
        })
    }

    async fn remove_records(&self, map: &str, records: &[Vec<u8>]) -> Result<()> {
        for chunk in records.chunks(MAX_WRITE_CHANGES) {
            let mut done = Write::default();
            for record in chunk {
                done.delete(record.clone());
            }
            let _ = self.kv.write(map, done).await?;
        }
        Ok(())
    }

    /// Fences the target shards against earlier lease holders, freezes the source
    /// shards, replays what is left, switches the bucket to the target and opens its
    /// shards. How long writers were held off, or None when a later lease holder has
    /// taken over.
    async fn switch(
        &self,
        record: &BucketRecord,
        target: &ShardLayout,
        epoch: u64,
    ) -> Result<Option<Duration>> {
        let targets: Vec<String> = (0..target.shards)
            .map(|shard| record.shard_map(target, shard))
            .collect();
        let fences = targets.iter().map(|map| self.fence_target(map, epoch));
        if !futures::future::try_join_all(fences)
            .await?
            .into_iter()
            .all(|ok| ok)
        {
            return Ok(None);
        }
        // This process's writers to the bucket wait from here until `running` drops,
        // however the switch ends; other gateways' writers from each shard's freeze on.
        let running = self.switches.start(&record.name);
        let paused = Instant::now();
        const PAGE: usize = 1000;
        let sources = record.shard_maps();
        let places = &targets[0];
        // Each shard's log is read as soon as it is frozen.
        let freezes = sources.iter().map(|map| async move {
            self.freeze(map).await?;
            self.log_page(map, places, PAGE).await
        });
        // Meanwhile the bucket's record tells other gateways' writers to keep off, and is
        // what the switch will change.
        let (logs, read) = futures::try_join!(
            futures::future::try_join_all(freezes),
            self.hold_writers(record, target, epoch)
        )?;
        let all_frozen = paused.elapsed();
        let mut pass = self
            .apply_logs(record, target, epoch, &sources, logs, true)
            .await?;
        // A drained shard's log is done with: later passes read only the others.
        while let Some(Pass { undrained, .. }) = &pass
            && !undrained.is_empty()
        {
            let maps = undrained.clone();
            pass = self
                .replay(record, target, epoch, &maps, PAGE, true)
                .await?;
        }
        if pass.is_none() {
            return Ok(None);
        }
        let replayed = paused.elapsed();
        let mut switched = false;
        self.change_bucket_from(&record.name, Some(read), |current| {
            switched = false;
            let ours = current
                .reshard
                .as_ref()
                .is_some_and(|r| r.is_run_by(target, epoch));
            if !ours {
                return Ok::<_, IndexError>(false);
            }
            current.layout = *target;
            current.reshard = None;
            switched = true;
            Ok(true)
        })
        .await?;
        if !switched {
            return Ok(None);
        }
        drop(running);
        self.log_places.forget(places);
        // Writers held off can write now: their first write opens a target shard.
        let pause = paused.elapsed();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        tracing::debug!(
            bucket = record.name,
            frozen_ms = ms(all_frozen),
            replayed_ms = ms(replayed),
            switched_ms = ms(pause),
            "reshard switch: writes held off from its start until each point"
        );
        let opens = targets.iter().map(|map| {
            let filling = |s: &MapState| matches!(s, MapState::Filling { .. });
            self.set_state(map, filling, MapState::Open)
        });
        futures::future::try_join_all(opens).await?;
        self.sync().await?;
        self.retire(&record.name, &sources).await?;
        Ok(Some(pause))
    }

    /// Marks the switch's start in the bucket's record (see `Reshard::switching_since_ms`),
    /// starting from `record` as read when this step took the lease: one round trip when
    /// nothing changed it since. The record as it then stands, and its stored bytes.
    async fn hold_writers(
        &self,
        record: &BucketRecord,
        target: &ShardLayout,
        epoch: u64,
    ) -> Result<(BucketRecord, Vec<u8>)> {
        let now = self.now_ms();
        let read = (record.clone(), encode(record));
        let (held, _) = self
            .change_reshard(&record.name, Some(read), target, epoch, |r| {
                r.switching_since_ms = Some(now);
            })
            .await?;
        let raw = encode(&held);
        Ok((held, raw))
    }

    /// Changes `bucket`'s reshard if it is still the one this gateway leased with `epoch`,
    /// starting from `read` if given (see `change_bucket_from`). The record as it then
    /// stands, and whether the reshard was ours.
    async fn change_reshard(
        &self,
        bucket: &str,
        read: Option<(BucketRecord, Vec<u8>)>,
        target: &ShardLayout,
        epoch: u64,
        change: impl Fn(&mut Reshard),
    ) -> Result<(BucketRecord, bool)> {
        let mut ours = false;
        let record = self
            .change_bucket_from(bucket, read, |record| {
                ours = false;
                let Some(reshard) =
                    (record.reshard.as_mut()).filter(|r| r.is_run_by(target, epoch))
                else {
                    return Ok::<_, IndexError>(false);
                };
                change(reshard);
                ours = true;
                Ok(true)
            })
            .await?;
        Ok((record, ours))
    }

    /// Marks a target shard as this lease holder's. False when a later holder (or the
    /// switch) has taken it.
    async fn fence_target(&self, map: &str, epoch: u64) -> Result<bool> {
        let (header, raw) = self.header(map).await?;
        match header.state {
            MapState::Filling { epoch: theirs } if theirs == epoch => return Ok(true),
            MapState::Filling { epoch: theirs } if theirs < epoch => {}
            MapState::Open if raw.is_none() => {}
            _ => return Ok(false),
        }
        let mut write = Write::default();
        let fenced = Header {
            state: MapState::Filling { epoch },
            ..header
        };
        guard_header(&mut write, raw, &fenced);
        Ok(self.kv.write(map, write).await?.applied())
    }

    /// Buckets with a reshard under way.
    pub async fn resharding(&self) -> Result<Vec<BucketRecord>> {
        Ok(self
            .list_buckets()
            .await?
            .into_iter()
            .filter(|b| b.reshard.is_some())
            .collect())
    }

    /// Entries per shard of the current layout, from the shard headers.
    pub async fn shard_stats(&self, bucket: &str) -> Result<ShardStats> {
        let record = self.bucket(bucket).await?;
        let headers = self.headers(&record).await?;
        Ok(ShardStats {
            shards: record.layout.shards,
            objects_per_shard: headers.iter().map(|h| h.entries).collect(),
            reshard: record.reshard,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ObjectMeta, PartRef, Stamp};
    use crate::shard::{FREEZE, HEADER};
    use kura_backend::LocalBackend;
    use std::sync::Arc;

    fn object(size: u64) -> ObjectVersion {
        ObjectVersion {
            version_id: "null".into(),
            stamp: Stamp { ms: 0, seq: 0 },
            delete_marker: false,
            size,
            etag: "e".into(),
            meta: ObjectMeta::default(),
            checksum: None,
            parts: vec![PartRef {
                blob: format!("blob-{size}"),
                size,
                etag: None,
                checksum: None,
            }],
            multipart: false,
            owner: "o".into(),
            upload_id: None,
        }
    }

    /// A reshard an older Kura started, its shards marked as that Kura marks them
    /// (`older`), is finished by this one: keys written meanwhile are logged as that
    /// state asks, a freeze leaves each shard marked and in a state (stored as `frozen_as`)
    /// that only gateways which keep off marked shards can write to, and every key and
    /// count ends up in the new layout.
    async fn finish_a_reshard_started_as(older: MapState, frozen_as: &str) {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::new(Arc::new(LocalBackend::open(dir.path()).unwrap()), 2);
        index
            .create_bucket("b", "o", "us-east-1", |_| {})
            .await
            .unwrap();
        let put = |key: String, size: u64| {
            let index = &index;
            async move {
                index
                    .put_object::<IndexError>("b", &key, object(size), |_| Ok(()))
                    .await
                    .unwrap();
            }
        };
        for n in 0..10 {
            put(format!("k{n}"), 1).await;
        }
        index.start_reshard("b", 4).await.unwrap();
        let sources = index.bucket("b").await.unwrap().shard_maps();
        for map in &sources {
            let any = |_: &MapState| true;
            index.set_state(map, any, older).await.unwrap();
        }
        for n in 10..15 {
            put(format!("k{n}"), 10).await;
        }
        index.freeze(&sources[0]).await.unwrap();
        let header = index.kv.get(&sources[0], HEADER).await.unwrap().unwrap();
        let header = String::from_utf8(header).unwrap();
        let stored = format!(r#""state":"{frozen_as}""#);
        assert!(header.contains(&stored), "{header}");
        assert!(index.kv.get(&sources[0], FREEZE).await.unwrap().is_some());
        while !index.reshard_step("b", 3).await.unwrap().done {}
        let record = index.bucket("b").await.unwrap();
        assert_eq!(record.layout.shards, 4);
        for n in 0..15 {
            let key = format!("k{n}");
            let current = index.current(&record, &key).await.unwrap();
            assert_eq!(current.map(|v| v.size), Some(if n < 10 { 1 } else { 10 }));
        }
        let usage = index.bucket_usage("b").await.unwrap();
        assert_eq!((usage.objects, usage.bytes), (15, 60));
    }

    /// Kuras before the freeze mark froze a shard through its header: a freeze moves
    /// their shards to `Logging`, which their gateways cannot read.
    #[tokio::test]
    async fn a_reshard_a_kura_before_the_freeze_mark_started_is_finished() {
        finish_a_reshard_started_as(MapState::LegacyLogging, "LoggingNumbered").await;
    }

    /// Kuras before numbered log records keep off marked shards but key their records by
    /// their clock: their shards stay as they are, and their records are all replayed.
    #[tokio::test]
    async fn a_reshard_a_kura_before_numbered_log_records_started_is_finished() {
        finish_a_reshard_started_as(MapState::UnnumberedLogging, "LoggingUntilFrozen").await;
    }
}
