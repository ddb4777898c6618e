//! Exact bucket quotas over any number of shards. A write to one shard checks its growth
//! against the sum of every shard's counters, but guards only its own shard: writes
//! landing in other shards at the same moment would pass the check together. So a write
//! that grows a bucket with a quota first reserves its growth in one map (the bucket's
//! uploads map), guarded there, and releases the reservation once its shard write is
//! done (applied or not):
//!
//! 1. read the reservations (and their sequence number), then the shards' counters;
//! 2. refuse if counters + reservations + growth exceed the quota;
//! 3. add the reservation, guarded on the sequence number, which every reservation bumps.
//!
//! Every write that settled before step 1 is in the counters; every other is reserved, or
//! reserves after this one and counts it. A write whose shard write succeeded used the
//! current layout throughout (a switch retires the shards it read), so the counters read
//! were the bucket's. A reservation its gateway never released (it died) lapses after
//! `RESERVATION_MS`, long past any shard write's deadline.
//!
//! The writes of one gateway that reserve at the same time share these steps: one round
//! reserves, in one write, for every write that waited for it, and removes in the same
//! write the reservations this gateway released meanwhile (see `rounds.rs`). Those it does
//! not count: their writes are done, in the counters read after them or never to be.
//! While no other gateway's round writes the map, a round starts from what the last one
//! left instead of steps 1 and 2's reads (see `Known` in `rounds.rs`).

use crate::model::{BucketRecord, Quota, Usage, UsageDelta, decode, encode};
use crate::rounds::{Baton, Known, Reservation, Turn, Wants};
use crate::shard::Retry;
use crate::{Index, IndexError, Result};
use kura_backend::{MAX_WRITE_CHANGES, Scan, Write};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// The reservations' own records in the uploads map: the key itself holds the sequence
/// number; longer keys are reservations. (An own record: see `shard.rs`.)
const RESERVED: &[u8] = b"\xffq";
/// How long a reservation holds room unless released.
const RESERVATION_MS: u64 = 60_000;
/// More live reservations than this at once (writes of one bucket in flight) are refused
/// as a busy bucket rather than read in pages.
const MAX_RESERVATIONS: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
struct Reserved {
    objects: u64,
    bytes: u64,
    until_ms: u64,
}

/// Whether `deltas` fit, one after the other, in `quota` beside `held`.
fn fit(held: Usage, deltas: &[UsageDelta], quota: Quota) -> bool {
    (deltas.iter())
        .try_fold(held, |held, delta| {
            (!delta.exceeds(held, quota)).then(|| held.apply(*delta))
        })
        .is_some()
}

/// Whether a write of `delta` to a bucket with `quota` must reserve.
pub(crate) fn needs_reservation(delta: UsageDelta, quota: Quota) -> bool {
    (delta.objects > 0 && quota.max_objects.is_some())
        || (delta.bytes > 0 && quota.max_bytes.is_some())
}

/// Most growths one round reserves, and most releases it writes: each is a change of the
/// round's write, beside the sequence number and the lapsed reservations it clears.
const ROUND_MAX: usize = 64;
const ROUND_RELEASES: usize = MAX_WRITE_CHANGES - 1 - ROUND_MAX;

impl Index {
    /// Reserves the growth `delta` of `bucket` within its quota; `QuotaExceeded` when
    /// there is no room for it. Joins this process's next round for the bucket.
    pub(crate) async fn reserve(
        &self,
        bucket: &BucketRecord,
        delta: UsageDelta,
    ) -> Result<Reservation> {
        let map = bucket.upload_map();
        loop {
            let baton = match self.rounds.join(&map, Wants::Room(delta)) {
                Err(baton) => baton,
                Ok(turn) => match turn.await {
                    Ok(Turn::Reserved(reserved)) => {
                        return reserved.ok_or(IndexError::QuotaExceeded);
                    }
                    Ok(Turn::Lead(baton)) => baton,
                    Ok(Turn::Released) => unreachable!("a reservation is not a release"),
                    // The round's runner went away (its caller did): queue again.
                    Err(_) => continue,
                },
            };
            return self.lead_round(bucket, delta, baton).await;
        }
    }

    /// Room for `growth`, the most a change of `bucket` may grow it, reserved before the
    /// change reads its key: None when this gateway did not reserve room in the bucket a
    /// moment ago (it may have no quota; the change reserves once it knows), or when the
    /// room is not there (the change may grow it less, replacing an object: it reserves
    /// what it grows once it knows). The change checks the reservation against the record
    /// it reads (`Reservation::covers`).
    pub(crate) async fn reserve_ahead(
        &self,
        bucket: &str,
        growth: UsageDelta,
    ) -> Result<Option<Reservation>> {
        let Some(record) = self.rounds.record(bucket) else {
            return Ok(None);
        };
        if !needs_reservation(growth, record.quota) {
            return Ok(None);
        }
        match self.reserve(&record, growth).await {
            Ok(reservation) => Ok(Some(reservation)),
            Err(IndexError::QuotaExceeded) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Runs a round for `delta` and the writes waiting: answers theirs, returns its own.
    /// On a failure the waiting writes queue again (their answers dropped).
    async fn lead_round(
        &self,
        bucket: &BucketRecord,
        delta: UsageDelta,
        baton: Baton,
    ) -> Result<Reservation> {
        let (others, releases) = self.rounds.take(baton.map(), ROUND_MAX - 1, ROUND_RELEASES);
        let deltas: Vec<UsageDelta> = std::iter::once(delta)
            .chain(others.iter().map(|(delta, _)| *delta))
            .collect();
        let (released, releasers): (Vec<_>, Vec<_>) = releases.into_iter().unzip();
        // On a failure, the releasers queue again too.
        let mut reserved = self
            .reserve_all(bucket, &deltas, &released)
            .await?
            .into_iter();
        let own = reserved.next().flatten();
        drop(baton);
        for releaser in releasers {
            let _ = releaser.send(Turn::Released);
        }
        for ((_, waiter), reservation) in others.into_iter().zip(reserved) {
            if let Err(Turn::Reserved(Some(unwanted))) = waiter.send(Turn::Reserved(reservation)) {
                // Its caller is gone: the room is given back at once.
                let _ = self.release(unwanted).await;
            }
        }
        own.ok_or(IndexError::QuotaExceeded)
    }

    /// Reserves each of `deltas` that fits, in order, in one guarded write, which removes
    /// the `released` reservations too: None for those that do not fit. Starts from what
    /// this process's last round left (see `Known`) while every growth fits in it.
    async fn reserve_all(
        &self,
        bucket: &BucketRecord,
        deltas: &[UsageDelta],
        released: &[Vec<u8>],
    ) -> Result<Vec<Option<Reservation>>> {
        let map = bucket.upload_map();
        let mut known = self.rounds.take_known(&map);
        let mut retry = Retry::new();
        loop {
            retry.pause().await?;
            let known = (known.take())
                .map(|mut left| {
                    left.release(released);
                    left
                })
                .filter(|left| fit(left.held(), deltas, bucket.quota));
            let (mut left, lapsed) = match known {
                Some(left) => (left, Vec::new()),
                None => self.read_known(bucket, released).await?,
            };
            let now = self.now_ms();
            let mut write = Write::default();
            for key in released {
                write.delete(key.clone());
            }
            // Lapsed reservations are cleared a page at a time, leaving room for this
            // round's own changes.
            let room = MAX_WRITE_CHANGES - 1 - deltas.len() - released.len();
            for key in lapsed.into_iter().take(room) {
                write.delete(key);
            }
            let mut held = left.held();
            let mut reservations = Vec::with_capacity(deltas.len());
            for delta in deltas {
                if delta.exceeds(held, bucket.quota) {
                    reservations.push(None);
                    continue;
                }
                held = held.apply(*delta);
                let stamp = self.clock.stamp();
                let id = format!("{}/{}.{}", self.instance, stamp.ms, stamp.seq);
                let key = [RESERVED, id.as_bytes()].concat();
                let growth = UsageDelta {
                    objects: delta.objects.max(0),
                    bytes: delta.bytes.max(0),
                };
                let reserved = Reserved {
                    objects: growth.objects as u64,
                    bytes: growth.bytes as u64,
                    until_ms: now + RESERVATION_MS,
                };
                write.put(key.clone(), encode(&reserved));
                left.reserved.insert(key.clone(), growth);
                reservations.push(Some(Reservation {
                    map: map.clone(),
                    key,
                    delta: *delta,
                    quota: bucket.quota,
                }));
            }
            let last: u64 = left.seq.as_deref().map(decode).transpose()?.unwrap_or(0);
            let seq = encode(&(last + 1));
            write
                .expect(RESERVED, left.seq.take())
                .put(RESERVED, seq.clone());
            if self.kv.write(&map, write).await?.applied() {
                left.seq = Some(seq);
                self.rounds.saw(&map, held);
                self.rounds.keep_known(&map, left);
                return Ok(reservations);
            }
        }
    }

    /// What a round of `bucket` starts from when it reads: its reservations but the
    /// `released` ones (their writes are done), then the shards' counters; and the lapsed
    /// reservations, which it clears.
    async fn read_known(
        &self,
        bucket: &BucketRecord,
        released: &[Vec<u8>],
    ) -> Result<(Known, Vec<Vec<u8>>)> {
        let mut layout = bucket.clone();
        let (page, counters) = loop {
            let page = self
                .kv
                .scan(
                    &bucket.upload_map(),
                    &Scan::prefix(RESERVED.to_vec(), MAX_RESERVATIONS + 1),
                )
                .await?;
            if page.next.is_some() {
                return Err(IndexError::Busy);
            }
            // After the reservations, never before: see the module's comment.
            let counters = self.usage_of(&layout).await?;
            // The record may be older than a switch of layouts, whose old shards count
            // nothing written since: the counters are the bucket's only if its layout
            // is still the one they were read from.
            let now = self.bucket(&bucket.name).await?;
            if now.shard_maps() == layout.shard_maps() {
                break (page, counters);
            }
            layout = now;
        };
        let mut known = Known {
            seq: None,
            counters,
            reserved: HashMap::new(),
            read_at: Instant::now(),
        };
        let releasing: HashSet<&[u8]> = released.iter().map(Vec::as_slice).collect();
        let now = self.now_ms();
        let mut lapsed = Vec::new();
        for (key, value) in page.entries {
            if key == RESERVED {
                known.seq = Some(value);
            } else if !releasing.contains(key.as_slice()) {
                let reserved: Reserved = decode(&value)?;
                if reserved.until_ms <= now {
                    // Its gateway died: its write is in the counters, or never will be.
                    lapsed.push(key);
                } else {
                    let growth = UsageDelta {
                        objects: reserved.objects as i64,
                        bytes: reserved.bytes as i64,
                    };
                    known.reserved.insert(key, growth);
                }
            }
        }
        Ok((known, lapsed))
    }

    /// Gives back what `reservation` held. Its write is done: in the counters, or not.
    /// Joins this process's next write to the map, a round's or one of releases only.
    pub(crate) async fn release(&self, reservation: Reservation) -> Result<()> {
        let Reservation { map, key, .. } = reservation;
        loop {
            let baton = match self.rounds.join(&map, Wants::Release(key.clone())) {
                Err(baton) => baton,
                Ok(turn) => match turn.await {
                    Ok(Turn::Released) => return Ok(()),
                    Ok(Turn::Lead(baton)) => baton,
                    Ok(Turn::Reserved(_)) => unreachable!("a release is not a reservation"),
                    // The write that took it failed, or its caller went away: queue again.
                    Err(_) => continue,
                },
            };
            return self.write_releases(baton, key).await;
        }
    }

    /// Removes the reservation `own` and those of the releases waiting, in one write.
    async fn write_releases(&self, baton: Baton, own: Vec<u8>) -> Result<()> {
        let (_, releases) = self.rounds.take(baton.map(), 0, MAX_WRITE_CHANGES - 1);
        let mut write = Write::default();
        let (mut released, releasers): (Vec<_>, Vec<_>) = releases.into_iter().unzip();
        released.push(own);
        for key in &released {
            write.delete(key.clone());
        }
        let known = self.rounds.take_known(baton.map());
        let written = self.kv.write(baton.map(), write).await;
        if let (Ok(_), Some(mut left)) = (&written, known) {
            left.release(&released);
            self.rounds.keep_known(baton.map(), left);
        }
        drop(baton);
        if written.is_ok() {
            for releaser in releasers {
                let _ = releaser.send(Turn::Released);
            }
        }
        written.map(drop).map_err(IndexError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kura_backend::LocalBackend;
    use std::sync::Arc;

    /// A gateway that died between reserving and releasing leaves its reservation: it
    /// holds its room until it lapses, and the next reservation then clears it.
    #[tokio::test]
    async fn a_dead_gateways_reservation_holds_room_until_it_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::new(Arc::new(LocalBackend::open(dir.path()).unwrap()), 3);
        index
            .create_bucket("b", "o", "us-east-1", |_| {})
            .await
            .unwrap();
        let quota = Quota {
            max_objects: Some(1),
            max_bytes: None,
        };
        index.set_quota("b", quota).await.unwrap();
        let bucket = index.bucket("b").await.unwrap();
        let dead_key = [RESERVED, b"dead-gateway/1.0"].concat();
        let dead = |until_ms| {
            let mut write = Write::default();
            let reserved = Reserved {
                objects: 1,
                bytes: 0,
                until_ms,
            };
            write.put(dead_key.clone(), encode(&reserved));
            write
        };
        let one = UsageDelta {
            objects: 1,
            bytes: 0,
        };
        let map = bucket.upload_map();

        let live = dead(index.now_ms() + RESERVATION_MS);
        assert!(index.kv.write(&map, live).await.unwrap().applied());
        assert!(matches!(
            index.reserve(&bucket, one).await,
            Err(IndexError::QuotaExceeded)
        ));

        let lapsed = dead(index.now_ms() - 1);
        assert!(index.kv.write(&map, lapsed).await.unwrap().applied());
        let reservation = index.reserve(&bucket, one).await.unwrap();
        assert_eq!(index.kv.get(&map, &dead_key).await.unwrap(), None);
        index.release(reservation).await.unwrap();
    }

    /// Writes reserving at once share rounds: exactly as many as the quota allows get room.
    /// Callers that go away mid-round (their tasks aborted, a round's runner among them)
    /// leave every other call its answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reservations_share_rounds_and_outlive_callers_going_away() {
        let dir = tempfile::tempdir().unwrap();
        let index = Arc::new(Index::new(
            Arc::new(LocalBackend::open(dir.path()).unwrap()),
            3,
        ));
        index
            .create_bucket("b", "o", "us-east-1", |_| {})
            .await
            .unwrap();
        let reserve_at_once = |max_objects: u64| {
            let index = index.clone();
            async move {
                let quota = Quota {
                    max_objects: Some(max_objects),
                    max_bytes: None,
                };
                index.set_quota("b", quota).await.unwrap();
                let bucket = Arc::new(index.bucket("b").await.unwrap());
                let one = UsageDelta {
                    objects: 1,
                    bytes: 0,
                };
                (0..100)
                    .map(|_| {
                        let (index, bucket) = (index.clone(), bucket.clone());
                        tokio::spawn(async move { index.reserve(&bucket, one).await.map(|_| ()) })
                    })
                    .collect::<Vec<_>>()
            }
        };

        let mut reserved = 0;
        for task in reserve_at_once(40).await {
            match task.await.unwrap() {
                Ok(()) => reserved += 1,
                Err(IndexError::QuotaExceeded) => {}
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(reserved, 40);

        // 40 more fit; a quarter of the callers go away.
        let tasks = reserve_at_once(80).await;
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        for task in tasks.iter().step_by(4) {
            task.abort();
        }
        let mut answered = 0;
        for task in tasks {
            let outcome = tokio::time::timeout(std::time::Duration::from_secs(20), task)
                .await
                .expect("every call still waiting gets its answer");
            match outcome {
                Err(aborted) if aborted.is_cancelled() => {}
                Ok(Ok(()) | Err(IndexError::QuotaExceeded)) => answered += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(answered >= 75, "{answered}");
    }
}
