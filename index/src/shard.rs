//! A map's own records, kept beside its entries so that an entry, the counters that count
//! it, the blobs it stops referencing and the reshard log all change in ONE atomic write:
//!
//! - the header (`\xffh`): the map's state and counters, guarded by every write;
//! - garbage (`\xffg` + due ms + blob): blobs no longer referenced, deleted after a grace;
//! - intents (`\xffi` + blob): blobs being written, collected if never committed;
//! - the reshard log (`\xffl` + number): keys changed while the map is being resharded;
//! - the freeze mark (`\xfff`): set by a reshard's switch, see `MapState::Logging`.
//! - in a bucket's uploads map, quota reservations (`\xffq`): see `quota.rs`.
//!
//! Their keys start with 0xFF, a byte no UTF-8 string holds, so they sort after every
//! entry (S3 keys, upload keys) and scans of entries stop at [`ENTRIES_END`].

use crate::locks::MapLock;
use crate::model::{BucketRecord, decode, encode};
use crate::switches::Switches;
use crate::{Index, IndexError, Result};
use kura_backend::Write;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const HEADER: &[u8] = b"\xffh";
pub(crate) const GARBAGE: &[u8] = b"\xffg";
pub(crate) const INTENT: &[u8] = b"\xffi";
pub(crate) const FREEZE: &[u8] = b"\xfff";
/// Entries sort before this; a map's own records after it.
pub(crate) const ENTRIES_END: &[u8] = b"\xff";

/// How long a map may stay closed by a bucket deletion that never finished (its gateway
/// died) before a writer reopens it.
const CLOSED_TOO_LONG_MS: u64 = 30_000;
/// How long a write keeps trying to land before it gives up as unavailable.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// A map's state and counters. A map without a header is open and empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub state: MapState,
    /// Keys held (object records; for an uploads map, open uploads).
    pub entries: u64,
    /// Current objects and their bytes.
    pub objects: u64,
    pub bytes: u64,
    /// Log records written to the map while `Logging`: the next one is numbered after
    /// this (see `log_key`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub logged: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum MapState {
    #[default]
    Open,
    /// Being resharded: every change also logs its key, in a record numbered after the
    /// header's count (`Header::logged`). Writers keep off once the map's freeze mark
    /// (`FREEZE`) is set, and guard on its absence, so that a switch freezes the map
    /// without reading its header. Older Kuras cannot read this state (its stored name is
    /// new) and so do not write here: they would neither number their records nor keep
    /// the count.
    #[serde(rename = "LoggingNumbered")]
    Logging,
    /// Being resharded, as the Kuras before numbered records mark it: as `Logging`, its
    /// records keyed by their writer's clock (`legacy_log_key`).
    #[serde(rename = "LoggingUntilFrozen")]
    UnnumberedLogging,
    /// Being resharded, as older Kuras mark it: frozen through the header (`LegacyFrozen`).
    /// Moved to `Logging` by the switch (see `Index::freeze`).
    #[serde(rename = "Logging")]
    LegacyLogging,
    /// Held off while an older Kura's reshard switches layouts.
    #[serde(rename = "Frozen")]
    LegacyFrozen,
    /// Being closed by a bucket deletion (since then).
    Closing { since_ms: u64 },
    /// No longer the bucket's: writers reload the bucket and go elsewhere.
    Retired,
    /// A reshard target being filled by the lease holder of this epoch. Writers only meet
    /// it once the bucket has switched to it (and the switch has not opened it yet): their
    /// write opens it, which also shuts out that holder's fills.
    Filling { epoch: u64 },
}

impl MapState {
    /// Whether changes of entries are logged for a reshard.
    pub(crate) fn logs(&self) -> bool {
        self.has_freeze_mark() || *self == MapState::LegacyLogging
    }

    /// Whether its writers keep off once the freeze mark is set, and guard on its absence.
    pub(crate) fn has_freeze_mark(&self) -> bool {
        matches!(self, MapState::Logging | MapState::UnnumberedLogging)
    }

    /// Whether an older Kura's reshard set it.
    pub(crate) fn is_legacy(&self) -> bool {
        matches!(self, MapState::LegacyLogging | MapState::LegacyFrozen)
    }
}

/// What to do about a map's state before writing to it.
pub(crate) enum Admit {
    Write,
    /// Wait and look again (a deletion under way, a map retired).
    Wait,
    /// Wait for a reshard's switch to end.
    HeldOff,
    /// The map was left closed by a deletion whose gateway died: open it first.
    Reopen,
}

impl Header {
    pub(crate) fn decode(raw: Option<&[u8]>) -> Result<Header> {
        raw.map(decode).transpose().map(Option::unwrap_or_default)
    }

    /// Whether a writer of the map may write, `frozen` when it has the freeze mark.
    pub(crate) fn admit(&self, now_ms: u64, frozen: bool) -> Admit {
        match self.state {
            state if frozen && state.has_freeze_mark() => Admit::HeldOff,
            MapState::Open
            | MapState::Logging
            | MapState::UnnumberedLogging
            | MapState::LegacyLogging
            | MapState::Filling { .. } => Admit::Write,
            MapState::LegacyFrozen => Admit::HeldOff,
            MapState::Closing { .. } if self.left_closed(now_ms) => Admit::Reopen,
            MapState::Closing { .. } | MapState::Retired => Admit::Wait,
        }
    }

    /// Whether a bucket deletion closed the map and never finished (its gateway died).
    pub(crate) fn left_closed(&self, now_ms: u64) -> bool {
        matches!(self.state, MapState::Closing { since_ms }
            if now_ms.saturating_sub(since_ms) > CLOSED_TOO_LONG_MS)
    }

    /// The header a write of an entry leaves: see `MapState::Filling`.
    pub(crate) fn opened(self) -> Header {
        match self.state {
            MapState::Filling { .. } => Header {
                state: MapState::Open,
                ..self
            },
            _ => self,
        }
    }

    /// The header after `entries`, `objects` and `bytes` changed by these amounts.
    pub(crate) fn counted(mut self, entries: i64, objects: i64, bytes: i64) -> Header {
        self.entries = self.entries.saturating_add_signed(entries);
        self.objects = self.objects.saturating_add_signed(objects);
        self.bytes = self.bytes.saturating_add_signed(bytes);
        self
    }
}

/// Adds to `write` the header as read (`raw`) as a guard and `new` as its value; returns
/// that value, encoded.
pub(crate) fn guard_header(write: &mut Write, raw: Option<Vec<u8>>, new: &Header) -> Vec<u8> {
    let encoded = encode(new);
    write.expect(HEADER, raw);
    write.put(HEADER, encoded.clone());
    encoded
}

/// The key of blob `blob`'s garbage record, due from `since_ms` on.
pub(crate) fn garbage_key(since_ms: u64, blob: &str) -> Vec<u8> {
    [GARBAGE, &since_ms.to_be_bytes(), blob.as_bytes()].concat()
}

/// The blob and time of a garbage record's key.
pub(crate) fn parse_garbage_key(key: &[u8]) -> Option<(u64, String)> {
    let rest = key.strip_prefix(GARBAGE)?;
    let (since, blob) = rest.split_first_chunk::<8>()?;
    Some((
        u64::from_be_bytes(*since),
        String::from_utf8(blob.to_vec()).ok()?,
    ))
}

pub(crate) fn intent_key(blob: &str) -> Vec<u8> {
    [INTENT, blob.as_bytes()].concat()
}

/// Paces the attempts of a write that keeps meeting a failed guard or a held-off map,
/// and gives up at the deadline.
pub(crate) struct Retry {
    started: std::time::Instant,
    attempts: u32,
    /// Attempts in all, and time spent held off, for `landed`.
    tries: u32,
    held_off: Duration,
    /// Whether the last attempt was held off (see `Index::read_key`).
    just_held_off: bool,
}

/// A write that takes longer than this to land is logged (at debug) with where it waited.
const SLOW_WRITE: Duration = Duration::from_millis(500);

impl Retry {
    pub(crate) fn new() -> Self {
        Retry {
            started: std::time::Instant::now(),
            attempts: 0,
            tries: 0,
            held_off: Duration::ZERO,
            just_held_off: false,
        }
    }

    /// Notes that the write to `bucket` landed; a slow one is logged with its attempts
    /// and the time a switch or deletion held it off (the rest: the storage, local locks).
    pub(crate) fn landed(&self, bucket: &str) {
        let took = self.started.elapsed();
        if took >= SLOW_WRITE {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            tracing::debug!(
                bucket,
                attempts = self.tries,
                held_off_ms = ms(self.held_off),
                took_ms = ms(took),
                "slow index write"
            );
        }
    }

    /// Waits before the next attempt: not at all the first time (a failed guard means
    /// someone else just wrote; reading again is enough), then a few milliseconds,
    /// spread so that competing writers do not meet again.
    pub(crate) async fn pause(&mut self) -> Result<()> {
        self.attempts += 1;
        self.tries += 1;
        if self.started.elapsed() > WRITE_DEADLINE {
            return Err(IndexError::Busy);
        }
        if self.attempts > 1 {
            let spread = u64::from(self.attempts.min(10)) + u64::from(jitter() % 4);
            tokio::time::sleep(Duration::from_millis(spread)).await;
        }
        Ok(())
    }

    /// Waits while a reshard's switch holds writes to `bucket` off; the next attempt
    /// then follows at once.
    pub(crate) async fn held_off(&mut self, switches: &Switches, bucket: &str) {
        let from = std::time::Instant::now();
        switches.wait(bucket).await;
        self.held_off += from.elapsed();
        self.attempts = 0;
        self.just_held_off = true;
    }

    /// Whether this is the write's first attempt.
    pub(crate) fn first(&self) -> bool {
        self.tries == 1
    }

    /// Whether the attempt before this one was held off; asked once per attempt.
    pub(crate) fn take_held_off(&mut self) -> bool {
        std::mem::take(&mut self.just_held_off)
    }
}

/// A few bits that differ between callers and calls.
fn jitter() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() >> 10)
        .unwrap_or(0)
}

/// Whether the record says a switch of its layout has just begun.
fn holds_writers(record: &BucketRecord, now_ms: u64) -> bool {
    (record.reshard.as_ref()).is_some_and(|r| r.holds_writers(now_ms))
}

/// What `Index::read_key` read.
pub(crate) struct KeyRead<'a> {
    pub record: Arc<BucketRecord>,
    /// The map that holds the key in `record`'s layout.
    pub map: String,
    /// The values of the keys asked for, in order.
    pub values: Vec<Option<Vec<u8>>>,
    /// The map's raw header.
    pub header: Option<Vec<u8>>,
    /// This process's lock on the map.
    pub local: Option<MapLock<'a>>,
}

impl Index {
    /// Reads `keys` of `map` and its header in one round trip: (the keys' raw values, the
    /// raw header).
    pub(crate) async fn read_with_header(
        &self,
        map: &str,
        keys: &[Vec<u8>],
    ) -> Result<(Vec<Option<Vec<u8>>>, Option<Vec<u8>>)> {
        let mut wanted = keys.to_vec();
        wanted.push(HEADER.to_vec());
        let mut values = self.kv.get_many(map, &wanted).await?;
        let header = values.pop().flatten();
        Ok((values, header))
    }

    /// `bucket`'s record, and `keys` of the map that holds `key` in it, with that map's
    /// header and this process's lock on it (`held`, when it is that map's). A `first`
    /// attempt takes the record this gateway read in the last moment (usually to authorize
    /// the same request; see `seen.rs`), else reads it now: then one round trip when the
    /// map is the one the bucket's layout last seen here names (both are read at once), two
    /// when it is not. None when a switch of the bucket's layout holds writers off: one
    /// this process started while the lock was awaited, or one the record says has just
    /// begun. A writer that a switch has just held off (`after_hold`) reads the record
    /// alone first: while the switch lasts, reads of its shards would only queue in front
    /// of the switch's own calls.
    pub(crate) async fn read_key<'a>(
        &'a self,
        bucket: &str,
        key: &str,
        keys: &[Vec<u8>],
        held: Option<MapLock<'a>>,
        first: bool,
        after_hold: bool,
    ) -> Result<Option<KeyRead<'a>>> {
        if let Some(record) = self.seen.recent(bucket).filter(|_| first && !after_hold) {
            return self.read_key_in(record, key, keys, held).await;
        }
        let guess = if after_hold {
            None
        } else {
            self.seen.key_map(bucket, key)
        };
        let local = match (&guess, held) {
            (Some(map), Some(lock)) if lock.is_for(map) => Some(lock),
            (Some(map), held) => {
                // Maps share a lock's stripe: the one held goes first.
                drop(held);
                Some(self.locks.lock(map).await)
            }
            (None, _) => None,
        };
        if self.switches.runs(bucket) {
            return Ok(None);
        }
        let read_guess = async {
            match &guess {
                Some(map) => Some(self.read_with_header(map, keys).await),
                None => None,
            }
        };
        let (record, guessed) = futures::join!(self.bucket(bucket), read_guess);
        let record = Arc::new(record?);
        let map = record.key_map(key);
        match guessed {
            Some(read) if guess.as_deref() == Some(map.as_str()) => {
                if holds_writers(&record, self.now_ms()) {
                    return Ok(None);
                }
                let (values, header) = read?;
                Ok(Some(KeyRead {
                    record,
                    map,
                    values,
                    header,
                    local,
                }))
            }
            _ => self.read_key_in(record, key, keys, local).await,
        }
    }

    /// `read_key` with the bucket's `record` at hand.
    async fn read_key_in<'a>(
        &'a self,
        record: Arc<BucketRecord>,
        key: &str,
        keys: &[Vec<u8>],
        held: Option<MapLock<'a>>,
    ) -> Result<Option<KeyRead<'a>>> {
        if holds_writers(&record, self.now_ms()) {
            return Ok(None);
        }
        let map = record.key_map(key);
        let local = match held {
            Some(lock) if lock.is_for(&map) => lock,
            held => {
                // Maps share a lock's stripe: the one held goes first.
                drop(held);
                self.locks.lock(&map).await
            }
        };
        if self.switches.runs(&record.name) {
            return Ok(None);
        }
        let (values, header) = self.read_with_header(&map, keys).await?;
        Ok(Some(KeyRead {
            record,
            map,
            values,
            header,
            local: Some(local),
        }))
    }

    pub(crate) async fn header(&self, map: &str) -> Result<(Header, Option<Vec<u8>>)> {
        let raw = self.kv.get(map, HEADER).await?;
        Ok((Header::decode(raw.as_deref())?, raw))
    }

    /// Moves `map` to `state` if its state is one `from` accepts; returns the state it
    /// ends in.
    pub(crate) async fn set_state(
        &self,
        map: &str,
        from: impl Fn(&MapState) -> bool,
        state: MapState,
    ) -> Result<MapState> {
        self.set_state_after(map, from, state, None).await
    }

    /// `set_state`, starting from the header `read` when given.
    async fn set_state_after(
        &self,
        map: &str,
        from: impl Fn(&MapState) -> bool,
        state: MapState,
        mut read: Option<(Header, Option<Vec<u8>>)>,
    ) -> Result<MapState> {
        let mut retry = Retry::new();
        loop {
            retry.pause().await?;
            let (header, raw) = match read.take() {
                Some(read) => read,
                None => self.header(map).await?,
            };
            if !from(&header.state) {
                return Ok(header.state);
            }
            let mut write = Write::default();
            guard_header(&mut write, raw, &Header { state, ..header });
            if state == MapState::Logging {
                // A logging period starts unfrozen, whatever an earlier one left.
                write.delete(FREEZE);
            }
            if self.kv.write(map, write).await?.applied() {
                return Ok(state);
            }
        }
    }

    /// Freezes a logging map for a reshard's switch by setting its freeze mark: one write
    /// that needs no read and never races writers' counters, as it leaves the header alone.
    /// A writer that read the map before lands nothing (its guard on the mark fails); one
    /// that reads it after keeps off. The header is read beside it, for a map an older Kura
    /// set logging (`LegacyLogging`): its gateways' writers guard on the header alone, so
    /// that header moves to `Logging`, which they cannot read, and the mark is set again.
    pub(crate) async fn freeze(&self, map: &str) -> Result<()> {
        let (marked, read) = futures::join!(self.set_freeze_mark(map), self.header(map));
        marked?;
        let read = read?;
        if !read.0.state.is_legacy() {
            return Ok(());
        }
        self.set_state_after(map, MapState::is_legacy, MapState::Logging, Some(read))
            .await?;
        self.set_freeze_mark(map).await
    }

    async fn set_freeze_mark(&self, map: &str) -> Result<()> {
        let mut write = Write::default();
        write.put(FREEZE, b"frozen".to_vec());
        // Unguarded: it always applies.
        let _ = self.kv.write(map, write).await?;
        Ok(())
    }

    /// Opens a map a deletion closed and never finished with.
    pub(crate) async fn reopen(&self, map: &str) -> Result<()> {
        let (header, raw) = self.header(map).await?;
        if header.left_closed(self.now_ms()) {
            let mut write = Write::default();
            let open = Header {
                state: MapState::Open,
                ..header
            };
            guard_header(&mut write, raw, &open);
            // A failed guard means someone else moved it on: nothing to do.
            let _ = self.kv.write(map, write).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reshard_log::LOG;

    #[test]
    fn own_records_sort_after_every_entry() {
        for key in [&b"zzz"[..], "\u{10ffff}".as_bytes(), b""] {
            assert!(key < ENTRIES_END);
        }
        for own in [HEADER, GARBAGE, INTENT, LOG, FREEZE] {
            assert!(own > ENTRIES_END);
        }
    }

    /// Headers older Kuras wrote read as their legacy states; `Logging` is stored under a
    /// name they do not know, so that their writers, which ignore the freeze mark or do not
    /// number their log records, cannot write to a map that has it.
    #[test]
    fn states_older_kuras_wrote_read_as_legacy() {
        let stored = |state: &str| {
            let raw = format!(r#"{{"state":"{state}","entries":2,"objects":1,"bytes":5}}"#);
            Header::decode(Some(raw.as_bytes())).unwrap()
        };
        assert_eq!(stored("Logging").state, MapState::LegacyLogging);
        assert_eq!(stored("Frozen").state, MapState::LegacyFrozen);
        let unnumbered = stored("LoggingUntilFrozen");
        assert_eq!(unnumbered.state, MapState::UnnumberedLogging);
        assert!(matches!(unnumbered.admit(0, true), Admit::HeldOff));
        assert_eq!(stored("Open").bytes, 5);
        let logging = Header {
            state: MapState::Logging,
            ..Header::default()
        };
        let raw = String::from_utf8(encode(&logging)).unwrap();
        assert!(raw.contains(r#""state":"LoggingNumbered""#), "{raw}");
        assert!(matches!(logging.admit(0, true), Admit::HeldOff));
        assert!(matches!(logging.admit(0, false), Admit::Write));
    }

    #[test]
    fn garbage_keys_sort_by_time_and_parse_back() {
        let early = garbage_key(5, "bbb");
        let late = garbage_key(256, "aaa");
        assert!(early < late);
        assert_eq!(parse_garbage_key(&late), Some((256, "aaa".to_owned())));
        assert_eq!(parse_garbage_key(b"\xffg123"), None);
    }
}
