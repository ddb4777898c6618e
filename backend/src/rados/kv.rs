//! Ordered maps on RADOS: one map is one object's omap, so a [`Write`] to a map is one
//! atomic RADOS operation (guards as omap compares, then the changes). Per-bucket maps
//! (their names hold a `/`) live in the `<prefix>-index` pool, the others (buckets, users,
//! keys) in `<prefix>-meta`.
//!
//! Every stored value gets a one-byte tag in front, so no stored value is empty: an omap
//! compare treats a missing key as empty, which is how a guard checks that a key is
//! absent. Keys are stored escaped so that they hold no NUL byte, because librados takes
//! a scan's start and prefix as C strings; the escape keeps their order and prefixes.

use super::sys::Pool;
use crate::blob::blocking;
use crate::{KvStore, Outcome, Page, Result, Scan, Write, key_after};
use async_trait::async_trait;
use std::ffi::CString;
use std::sync::Arc;

/// The tag in front of every stored value.
const TAG: u8 = 1;

/// Kura's maps in the `<prefix>-meta` and `<prefix>-index` pools.
pub struct RadosKv {
    meta: Arc<Pool>,
    index: Arc<Pool>,
}

impl RadosKv {
    /// Maps in the meta and index pools.
    pub(crate) fn new(meta: Pool, index: Pool) -> Self {
        RadosKv {
            meta: Arc::new(meta),
            index: Arc::new(index),
        }
    }

    fn pool(&self, map: &str) -> Arc<Pool> {
        if map.contains('/') {
            self.index.clone()
        } else {
            self.meta.clone()
        }
    }
}

fn tagged(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 1);
    out.push(TAG);
    out.extend_from_slice(value);
    out
}

/// A stored value without its tag.
fn untagged((key, mut value): (Vec<u8>, Vec<u8>)) -> (Vec<u8>, Vec<u8>) {
    if !value.is_empty() {
        value.remove(0);
    }
    (key, value)
}

/// `key` without NUL bytes: 0x00 becomes 0x01 0x01 and 0x01 becomes 0x01 0x02. Two keys
/// compare as their escapes do, and a key starts with a prefix exactly when its escape
/// starts with the prefix's escape.
fn escape(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2);
    for &byte in key {
        match byte {
            0 | 1 => out.extend_from_slice(&[1, byte + 1]),
            _ => out.push(byte),
        }
    }
    out
}

fn unescape(stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len());
    let mut bytes = stored.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            1 => out.push(bytes.next().map_or(0, |b| b.saturating_sub(1))),
            _ => out.push(byte),
        }
    }
    out
}

fn c_key(key: &[u8]) -> CString {
    CString::new(escape(key)).expect("escaped keys hold no NUL")
}

#[async_trait]
impl KvStore for RadosKv {
    async fn get(&self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut values = self.get_many(map, &[key.to_vec()]).await?;
        Ok(values.pop().flatten())
    }

    async fn get_many(&self, map: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let (pool, map) = (self.pool(map), map.to_owned());
        let escaped: Vec<Vec<u8>> = keys.iter().map(|key| escape(key)).collect();
        blocking(move || {
            let wanted: Vec<&[u8]> = escaped.iter().map(Vec::as_slice).collect();
            let page = pool.omap_read(&map, &wanted, c"", c"", 0)?;
            let found: std::collections::HashMap<Vec<u8>, Vec<u8>> =
                page.by_key.into_iter().map(untagged).collect();
            Ok(escaped.iter().map(|key| found.get(key).cloned()).collect())
        })
        .await
    }

    async fn scan(&self, map: &str, scan: &Scan) -> Result<Page> {
        let (pool, map, scan) = (self.pool(map), map.to_owned(), scan.clone());
        blocking(move || {
            let start = c_key(&scan.start.clone().max(scan.prefix.clone()));
            // The start key itself is read by key, the rest after it.
            let by_key: Vec<&[u8]> = match start.as_bytes() {
                [] => Vec::new(),
                key => vec![key],
            };
            let page = pool.omap_read(
                &map,
                &by_key,
                &start,
                &c_key(&scan.prefix),
                scan.limit.max(1) as u64,
            )?;
            let read_past = page.after.last().map(|(key, _)| key_after(&unescape(key)));
            let osd_more = page.more;
            let entries = page
                .by_key
                .into_iter()
                .chain(page.after)
                .map(|(key, value)| (unescape(&key), value));
            let mut out = Page::default();
            for (key, value) in entries {
                if scan.end.as_ref().is_some_and(|end| key >= *end) {
                    return Ok(out);
                }
                if out.entries.len() == scan.limit {
                    out.next = Some(key);
                    return Ok(out);
                }
                out.entries.push(untagged((key, value)));
            }
            out.next = if osd_more { read_past } else { None };
            Ok(out)
        })
        .await
    }

    async fn write(&self, map: &str, write: Write) -> Result<Outcome> {
        if write.is_empty() {
            return Ok(Outcome::Applied);
        }
        let (pool, map) = (self.pool(map), map.to_owned());
        blocking(move || {
            let expected: Vec<(Vec<u8>, Vec<u8>)> = write
                .guards
                .iter()
                .map(|(key, value)| {
                    (
                        escape(key),
                        value.as_deref().map(tagged).unwrap_or_default(),
                    )
                })
                .collect();
            let guards: Vec<(&[u8], &[u8])> = expected
                .iter()
                .map(|(key, value)| (key.as_slice(), value.as_slice()))
                .collect();
            let changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = write
                .final_changes()
                .into_iter()
                .map(|(key, value)| (escape(key), value.map(tagged)))
                .collect();
            let sets: Vec<(&[u8], &[u8])> = changes
                .iter()
                .filter_map(|(key, value)| Some((key.as_slice(), value.as_deref()?)))
                .collect();
            let removes: Vec<&[u8]> = changes
                .iter()
                .filter(|(_, value)| value.is_none())
                .map(|(key, _)| key.as_slice())
                .collect();
            Ok(if pool.omap_write(&map, &guards, &sets, &removes)? {
                Outcome::Applied
            } else {
                Outcome::GuardFailed
            })
        })
        .await
    }

    async fn drop_map(&self, map: &str) -> Result<()> {
        let (pool, map) = (self.pool(map), map.to_owned());
        blocking(move || Ok(pool.remove(&map)?)).await
    }

    async fn catch_up(&self) -> Result<()> {
        let pool = self.meta.clone();
        blocking(move || Ok(pool.cluster().wait_for_latest_osdmap()?)).await
    }

    async fn sync(&self) -> Result<()> {
        // A RADOS write returns once every replica in the acting set has it.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_keep_order_and_prefixes_and_hold_no_nul() {
        let keys: Vec<&[u8]> = vec![
            b"",
            b"\0",
            b"\0\0",
            b"\0\x01",
            b"\x01",
            b"\x01\0",
            b"\x01\x02",
            b"\x02",
            b"a",
            b"a\0",
            b"a\0b",
            b"a\x01",
            b"ab",
            b"\xff",
        ];
        for a in &keys {
            assert!(!escape(a).contains(&0));
            assert_eq!(unescape(&escape(a)), *a);
            for b in &keys {
                assert_eq!(a.cmp(b), escape(a).cmp(&escape(b)), "{a:?} {b:?}");
                assert_eq!(
                    b.starts_with(a),
                    escape(b).starts_with(&escape(a)),
                    "{a:?} {b:?}"
                );
            }
        }
    }
}
