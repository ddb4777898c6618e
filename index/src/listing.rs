//! Ordered listing with S3's prefix / delimiter / marker semantics, over one
//! map or a merge of several shard maps, read a bounded page at a time.

use crate::shard::ENTRIES_END;
use crate::versions::{CURRENT_END, VERSIONS};
use crate::{IndexError, Result};
use kura_backend::{KvStore, Scan, key_after};
use std::collections::VecDeque;

/// What to list: keys starting with `prefix`, strictly after `after`.
#[derive(Debug, Clone, Default)]
pub struct ListParams<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub after: Option<&'a str>,
    pub max: usize,
}

/// One page: entries and common prefixes, each in byte order. `truncated` is
/// exact: it is set only when something else matches after this page.
#[derive(Debug, Clone)]
pub struct ListPage<T> {
    pub entries: Vec<(String, T)>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
}

impl<T> ListPage<T> {
    /// The last key or common prefix returned: where the next page starts.
    pub fn last(&self) -> Option<&str> {
        let entry = self.entries.last().map(|(k, _)| k.as_str());
        let prefix = self.prefixes.last().map(String::as_str);
        entry.max(prefix)
    }
}

/// Lists from where `items` starts. `show` turns a stored (key, value) into the key S3
/// shows and the listed value, or None to skip it; a stored key starts with the key shown.
/// Common prefixes not after the marker were returned by an earlier page (or precede the
/// marker) and are skipped.
pub(crate) async fn list_sorted<T>(
    params: &ListParams<'_>,
    items: &mut Merged<'_>,
    mut show: impl FnMut(Vec<u8>, Vec<u8>) -> Result<Option<(String, T)>>,
) -> Result<ListPage<T>> {
    let (prefix, marker, max) = (params.prefix, params.after, params.max);
    let mut page = ListPage {
        entries: Vec::new(),
        prefixes: Vec::new(),
        truncated: false,
    };
    while let Some((raw, value)) = items.next().await? {
        let Some((key, value)) = show(raw, value)? else {
            continue;
        };
        if !key.starts_with(prefix) {
            break;
        }
        let common = params.delimiter.filter(|d| !d.is_empty()).and_then(|d| {
            key[prefix.len()..]
                .find(d)
                .map(|at| prefix.len() + at + d.len())
        });
        let seen = common.is_some_and(|end| marker.is_some_and(|m| &key[..end] <= m));
        if !seen && page.entries.len() + page.prefixes.len() >= max {
            page.truncated = true;
            break;
        }
        match common {
            Some(end) => {
                let common = key[..end].to_owned();
                let next = successor(common.as_bytes());
                if !seen {
                    page.prefixes.push(common);
                }
                match next {
                    Some(next) => items.seek(&next),
                    None => break,
                }
            }
            None => page.entries.push((key, value)),
        }
    }
    Ok(page)
}

/// The smallest byte string greater than every string starting with `prefix`.
pub(crate) fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < u8::MAX {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// The smallest byte string strictly greater than `key`.
pub(crate) fn after(key: &str) -> Vec<u8> {
    key_after(key.as_bytes())
}

/// Entries read a page at a time from one map.
struct Cursor {
    map: String,
    /// Where the next page starts; None once the map is read to `end`.
    next: Option<Vec<u8>>,
    buffer: VecDeque<(Vec<u8>, Vec<u8>)>,
}

/// The entries of several maps (a bucket's shards) merged into one ordered stream, each
/// map read a page at a time, all maps that need a page read concurrently.
pub(crate) struct Merged<'a> {
    kv: &'a dyn KvStore,
    cursors: Vec<Cursor>,
    end: Vec<u8>,
    /// What the stored keys of the listed space start with, before the key listed.
    space: Vec<u8>,
    page: usize,
}

/// Which stored keys of a map a listing reads (see `versions.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Space {
    /// Every entry (an uploads map).
    Entries,
    /// The current versions of a bucket shard.
    Current,
    /// Every version of every key of a bucket shard.
    Versions,
}

impl<'a> Merged<'a> {
    /// The entries of `space` in `maps` from the stored key `start` on whose key starts
    /// with `prefix` (never a map's own records), for a listing of up to `max` of them.
    pub(crate) fn new(
        kv: &'a dyn KvStore,
        maps: Vec<String>,
        space: Space,
        start: Vec<u8>,
        prefix: &str,
        max: usize,
    ) -> Self {
        let (space, cap): (&[u8], &[u8]) = match space {
            Space::Entries => (&[], ENTRIES_END),
            Space::Current => (&[], CURRENT_END),
            Space::Versions => (&[VERSIONS], ENTRIES_END),
        };
        let prefix = [space, prefix.as_bytes()].concat();
        let start = start.max(prefix.clone());
        let end = successor(&prefix).map_or(cap.to_vec(), |end| end.min(cap.to_vec()));
        // Enough per map for a page spread evenly, and a margin for uneven spreads.
        let page = (max.saturating_add(1).div_ceil(maps.len().max(1)) + 16).min(1000);
        Merged {
            kv,
            cursors: maps
                .into_iter()
                .map(|map| Cursor {
                    map,
                    next: Some(start.clone()),
                    buffer: VecDeque::new(),
                })
                .collect(),
            end,
            space: space.to_vec(),
            page,
        }
    }

    /// Reads the next page of every map whose buffer ran dry.
    async fn fill(&mut self) -> Result<()> {
        let (kv, end, page) = (self.kv, &self.end, self.page);
        let reads = self
            .cursors
            .iter_mut()
            .filter(|c| c.buffer.is_empty() && c.next.is_some())
            .map(|cursor| async move {
                while cursor.buffer.is_empty() {
                    let Some(start) = cursor.next.take() else {
                        break;
                    };
                    let scan = Scan {
                        start,
                        end: Some(end.clone()),
                        prefix: Vec::new(),
                        limit: page,
                    };
                    let read = kv.scan(&cursor.map, &scan).await?;
                    cursor.buffer.extend(read.entries);
                    cursor.next = read.next;
                }
                Ok::<_, IndexError>(())
            });
        futures::future::try_join_all(reads).await?;
        Ok(())
    }

    /// The next entry in key order.
    pub(crate) async fn next(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.fill().await?;
        let smallest = self
            .cursors
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.buffer.front().map(|(key, _)| (key, i)))
            .min()
            .map(|(_, i)| i);
        Ok(smallest.and_then(|i| self.cursors[i].buffer.pop_front()))
    }

    /// Skips every entry of keys before `to`.
    pub(crate) fn seek(&mut self, to: &[u8]) {
        let to = [self.space.as_slice(), to].concat();
        for cursor in &mut self.cursors {
            while cursor.buffer.front().is_some_and(|(key, _)| *key < to) {
                cursor.buffer.pop_front();
            }
            if cursor.buffer.is_empty()
                && let Some(next) = cursor.next.as_mut()
                && *next < to
            {
                *next = to.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kura_backend::{LocalBackend, Write};

    async fn store(keys: &[&str], maps: usize) -> (tempfile::TempDir, LocalBackend, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let kv = LocalBackend::open(dir.path()).unwrap();
        let names: Vec<String> = (0..maps).map(|i| format!("m/{i}")).collect();
        for (i, key) in keys.iter().enumerate() {
            let mut write = Write::default();
            write.put(key.as_bytes(), Vec::new());
            assert!(kv.write(&names[i % maps], write).await.unwrap().applied());
        }
        // A map's own records are never listed.
        let mut own = Write::default();
        own.put(ENTRIES_END.to_vec(), Vec::new());
        assert!(kv.write(&names[0], own).await.unwrap().applied());
        (dir, kv, names)
    }

    async fn list(
        keys: &[&str],
        prefix: &str,
        delimiter: Option<&str>,
        after_key: Option<&str>,
        max: usize,
    ) -> ListPage<()> {
        let mut out = None;
        for maps in [1, 3] {
            let (_dir, kv, names) = store(keys, maps).await;
            let params = ListParams {
                prefix,
                delimiter,
                after: after_key,
                max,
            };
            let start = after_key.map(after).unwrap_or_default();
            let mut items = Merged::new(&kv, names, Space::Entries, start, prefix, max);
            let page = list_sorted(&params, &mut items, |k, _| {
                Ok(Some((String::from_utf8(k).unwrap(), ())))
            })
            .await
            .unwrap();
            if let Some(one) = &out {
                assert_eq!(format!("{one:?}"), format!("{page:?}"), "1 map vs 3");
            }
            out = Some(page);
        }
        out.unwrap()
    }

    fn keys_of(page: &ListPage<()>) -> Vec<&str> {
        page.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[tokio::test]
    async fn delimiter_groups_and_pages_exactly() {
        let keys = ["a/1", "a/2", "b", "c/x/y", "c/z", "d"];
        let page = list(&keys, "", Some("/"), None, 1000).await;
        assert_eq!(keys_of(&page), ["b", "d"]);
        assert_eq!(page.prefixes, ["a/", "c/"]);
        assert!(!page.truncated);

        let first = list(&keys, "", Some("/"), None, 2).await;
        assert_eq!(first.prefixes, ["a/"]);
        assert_eq!(keys_of(&first), ["b"]);
        assert!(first.truncated);
        let second = list(&keys, "", Some("/"), first.last(), 2).await;
        assert_eq!(second.prefixes, ["c/"]);
        assert_eq!(keys_of(&second), ["d"]);
        assert!(!second.truncated, "nothing follows d");

        // A marker inside a common prefix skips the rest of that prefix.
        let inside = list(&keys, "", Some("/"), Some("c/x/y"), 10).await;
        assert!(inside.prefixes.is_empty());
        assert_eq!(keys_of(&inside), ["d"]);
    }

    #[tokio::test]
    async fn prefix_and_nested_delimiter() {
        let keys = ["c/x/y", "c/x/z", "c/z", "cc"];
        let page = list(&keys, "c/", Some("/"), None, 10).await;
        assert_eq!(page.prefixes, ["c/x/"]);
        assert_eq!(keys_of(&page), ["c/z"]);
    }

    #[tokio::test]
    async fn truncation_is_exact_at_the_boundary() {
        let keys = ["a", "b"];
        assert!(!list(&keys, "", None, None, 2).await.truncated);
        assert!(list(&keys, "", None, None, 1).await.truncated);
        assert!(!list(&keys, "", None, Some("a"), 1).await.truncated);
    }

    #[tokio::test]
    async fn pages_smaller_than_a_listing_are_read_in_turn() {
        let keys: Vec<String> = (0..3000).map(|i| format!("k{i:05}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let page = list(&refs, "", None, None, 2500).await;
        assert_eq!(page.entries.len(), 2500);
        assert!(page.truncated);
        assert_eq!(page.entries[2499].0, "k02499");
    }

    #[test]
    fn successor_skips_a_prefix() {
        assert_eq!(successor(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(successor(&[0x61, 0xff]), Some(vec![0x62]));
        assert_eq!(successor(&[0xff]), None);
    }
}
