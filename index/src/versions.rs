//! How a key's versions are laid out in its shard map: one entry per version, so a key
//! with thousands of versions is thousands of small entries, never one growing value.
//!
//! - `K` → the current version of key K, present only while K's newest version is an
//!   object (not a delete marker): listing the current objects reads exactly these, never
//!   a noncurrent version or a marker;
//! - `\xfd K` → K's [`KeyHead`]: its newest version and where its `null` version is,
//!   present while K has any version. Every change of K's versions rewrites it, so
//!   guarding it serialises them all;
//! - `\xfe K \0 rank` → one version of K (delete markers too), newest first: the rank is
//!   the version's stamp inverted, then its id.
//!
//! S3 keys are UTF-8, which never holds the bytes 0xFD-0xFF, so the three spaces never
//! mix, and all of them sort before a map's own records (`shard.rs`).

use crate::model::{ObjectVersion, Stamp};
use serde::{Deserialize, Serialize};

pub(crate) const HEADS: u8 = 0xfd;
pub(crate) const VERSIONS: u8 = 0xfe;
/// Current entries sort before this.
pub(crate) const CURRENT_END: &[u8] = &[HEADS];
/// Stored entries of a key with one version (current, head, version): a reshard step of
/// N keys reads this many times N entries.
pub(crate) const STORED_PER_KEY: usize = 3;
/// The id of the version written while versioning is off or suspended.
pub const NULL_VERSION: &str = "null";

/// What every change of a key reads first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyHead {
    /// The newest version: new versions are stamped after it.
    pub newest: VersionRef,
    /// The `null` version's stamp, if the key has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null: Option<Stamp>,
}

/// Names one version of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionRef {
    pub stamp: Stamp,
    pub id: String,
}

impl VersionRef {
    pub(crate) fn of(version: &ObjectVersion) -> Self {
        VersionRef {
            stamp: version.stamp,
            id: version.version_id.clone(),
        }
    }
}

pub(crate) fn head_key(key: &str) -> Vec<u8> {
    [&[HEADS], key.as_bytes()].concat()
}

/// Where every version of `key` starts.
pub(crate) fn versions_of(key: &str) -> Vec<u8> {
    [&[VERSIONS], key.as_bytes(), &[0]].concat()
}

/// The entry of version `id` of `key`, stamped `stamp`.
pub(crate) fn version_key(key: &str, stamp: Stamp, id: &str) -> Vec<u8> {
    let rank = format!(
        "{:012x}{:016x}.{id}",
        0xffff_ffff_ffff_u64.saturating_sub(stamp.ms),
        u64::MAX - stamp.seq
    );
    [versions_of(key), rank.into_bytes()].concat()
}

pub(crate) fn version_key_of(key: &str, version: &ObjectVersion) -> Vec<u8> {
    version_key(key, version.stamp, &version.version_id)
}

/// The id of a version stamped `stamp`: the stamp (so `parse_version_id` finds its entry
/// from the id alone) and a hash of the gateway that made it, so ids stay unique even if
/// two gateways' clocks give the same stamp to versions of the same key at different times.
pub(crate) fn new_version_id(stamp: Stamp, maker: &str) -> String {
    // FNV-1a: stable across processes and releases, unlike std's hasher.
    let hash = maker.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{:012x}{:016x}{hash:08x}", stamp.ms, stamp.seq)
}

/// The stamp a version id other than `null` was made from (its first 28 hex digits);
/// None for an id Kura never made.
pub(crate) fn parse_version_id(id: &str) -> Option<Stamp> {
    let (ms, seq) = (id.get(..12)?, id.get(12..28)?);
    Some(Stamp {
        ms: u64::from_str_radix(ms, 16).ok()?,
        seq: u64::from_str_radix(seq, 16).ok()?,
    })
}

/// Whether `id` could name a version Kura made (`null`, or what `new_version_id` makes).
pub fn is_version_id(id: &str) -> bool {
    id == NULL_VERSION || (id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The S3 key an entry of any of the three spaces belongs to.
pub(crate) fn object_key(raw: &[u8]) -> &[u8] {
    match raw.first() {
        Some(&HEADS) => &raw[1..],
        Some(&VERSIONS) => raw[1..]
            .iter()
            .rposition(|b| *b == 0)
            .map_or(&raw[1..], |end| &raw[1..1 + end]),
        _ => raw,
    }
}

/// Whether `raw` is a version entry: only those are counted.
pub(crate) fn is_version(raw: &[u8]) -> bool {
    raw.first() == Some(&VERSIONS)
}

/// What one entry adds to its map's counters: (versions, object versions, bytes).
pub(crate) fn tally(raw: &[u8], value: Option<&ObjectVersion>) -> (i64, i64, i64) {
    match value {
        Some(v) if is_version(raw) => {
            let object = !v.delete_marker;
            (1, i64::from(object), if object { v.size as i64 } else { 0 })
        }
        _ => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_newest_first_within_their_key_and_keys_in_order() {
        let at = |ms, seq| Stamp { ms, seq };
        let mut raw = [
            version_key("a", at(5, 1), "x"),
            version_key("a", at(9, 1), "y"),
            version_key("a", at(9, 2), NULL_VERSION),
            version_key("a/b", at(1, 1), "z"),
            version_key("a\u{7f}", at(1, 1), "z"),
        ];
        raw.sort();
        let ids: Vec<String> = raw
            .iter()
            .map(|r| {
                String::from_utf8_lossy(r)
                    .rsplit('.')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(ids, [NULL_VERSION, "y", "x", "z", "z"]);
        assert_eq!(object_key(&raw[0]), b"a");
        assert_eq!(object_key(&raw[3]), b"a/b");
        assert_eq!(object_key(&head_key("k/é")), "k/é".as_bytes());
        assert_eq!(object_key(b"plain"), b"plain");
        assert!(raw.iter().all(|r| r.as_slice() > CURRENT_END));
        assert!(head_key("\u{10ffff}").as_slice() < [VERSIONS].as_slice());
    }
}
