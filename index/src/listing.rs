//! Ordered listing with S3's prefix / delimiter / marker semantics, over one
//! map or a merge of several shard maps.

use crate::Result;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

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

/// Items in sort-key order: the key S3 shows and its value.
pub(crate) type Items<T> = Box<dyn Iterator<Item = Result<(String, T)>>>;

/// Lists from `start` (a sort key, inclusive). `open(seek)` must yield the
/// items whose sort key is `>= seek`, in order; the sort key of an item starts
/// with its shown key. Common prefixes not after `marker` were returned by an
/// earlier page (or precede the marker) and are skipped.
pub(crate) fn list_sorted<T>(
    prefix: &str,
    delimiter: Option<&str>,
    start: Vec<u8>,
    marker: Option<&str>,
    max: usize,
    mut open: impl FnMut(&[u8]) -> Result<Items<T>>,
) -> Result<ListPage<T>> {
    let mut page = ListPage {
        entries: Vec::new(),
        prefixes: Vec::new(),
        truncated: false,
    };
    let start = start.max(prefix.as_bytes().to_vec());
    let mut items = open(&start)?;
    while let Some(item) = items.next() {
        let (key, value) = item?;
        if !key.starts_with(prefix) {
            break;
        }
        let common = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
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
                    Some(next) => items = open(&next)?,
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
    let mut out = key.as_bytes().to_vec();
    out.push(0);
    out
}

/// Merges several ordered iterators into one ordered iterator.
pub(crate) struct Merge<T> {
    sources: Vec<Items<T>>,
    heads: BinaryHeap<Reverse<(String, usize)>>,
    values: Vec<Option<T>>,
    failed: Option<crate::IndexError>,
}

impl<T> Merge<T> {
    pub(crate) fn new(sources: Vec<Items<T>>) -> Self {
        let mut merge = Merge {
            values: sources.iter().map(|_| None).collect(),
            sources,
            heads: BinaryHeap::new(),
            failed: None,
        };
        for idx in 0..merge.sources.len() {
            merge.advance(idx);
        }
        merge
    }

    fn advance(&mut self, idx: usize) {
        match self.sources[idx].next() {
            Some(Ok((key, value))) => {
                self.values[idx] = Some(value);
                self.heads.push(Reverse((key, idx)));
            }
            Some(Err(err)) => self.failed = Some(err),
            None => {}
        }
    }
}

impl<T> Iterator for Merge<T> {
    type Item = Result<(String, T)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(err) = self.failed.take() {
            return Some(Err(err));
        }
        let Reverse((key, idx)) = self.heads.pop()?;
        let value = self.values[idx].take().expect("a head has its value");
        self.advance(idx);
        Some(Ok((key, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(keys: &[&str]) -> Vec<String> {
        let mut keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        keys.sort();
        keys
    }

    fn list(
        keys: &[String],
        prefix: &str,
        delim: Option<&str>,
        after_key: Option<&str>,
        max: usize,
    ) -> ListPage<()> {
        let start = after_key.map(after).unwrap_or_default();
        list_sorted(prefix, delim, start, after_key, max, |seek| {
            let seek = seek.to_vec();
            let items: Vec<_> = keys
                .iter()
                .filter(|k| k.as_bytes() >= seek.as_slice())
                .map(|k| Ok((k.clone(), ())))
                .collect();
            Ok(Box::new(items.into_iter()) as Items<()>)
        })
        .unwrap()
    }

    fn keys_of(page: &ListPage<()>) -> Vec<&str> {
        page.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn delimiter_groups_and_pages_exactly() {
        let keys = source(&["a/1", "a/2", "b", "c/x/y", "c/z", "d"]);
        let page = list(&keys, "", Some("/"), None, 1000);
        assert_eq!(keys_of(&page), ["b", "d"]);
        assert_eq!(page.prefixes, ["a/", "c/"]);
        assert!(!page.truncated);

        let first = list(&keys, "", Some("/"), None, 2);
        assert_eq!(first.prefixes, ["a/"]);
        assert_eq!(keys_of(&first), ["b"]);
        assert!(first.truncated);
        let second = list(&keys, "", Some("/"), first.last(), 2);
        assert_eq!(second.prefixes, ["c/"]);
        assert_eq!(keys_of(&second), ["d"]);
        assert!(!second.truncated, "nothing follows d");

        // A marker inside a common prefix skips the rest of that prefix.
        let inside = list(&keys, "", Some("/"), Some("c/x/y"), 10);
        assert!(inside.prefixes.is_empty());
        assert_eq!(keys_of(&inside), ["d"]);
    }

    #[test]
    fn prefix_and_nested_delimiter() {
        let keys = source(&["c/x/y", "c/x/z", "c/z", "cc"]);
        let page = list(&keys, "c/", Some("/"), None, 10);
        assert_eq!(page.prefixes, ["c/x/"]);
        assert_eq!(keys_of(&page), ["c/z"]);
    }

    #[test]
    fn truncation_is_exact_at_the_boundary() {
        let keys = source(&["a", "b"]);
        assert!(!list(&keys, "", None, None, 2).truncated);
        assert!(list(&keys, "", None, None, 1).truncated);
        assert!(!list(&keys, "", None, Some("a"), 1).truncated);
    }

    #[test]
    fn merge_orders_across_sources() {
        let a: Items<u8> =
            Box::new(vec![Ok(("a".to_string(), 1)), Ok(("d".to_string(), 4))].into_iter());
        let b: Items<u8> =
            Box::new(vec![Ok(("b".to_string(), 2)), Ok(("c".to_string(), 3))].into_iter());
        let merged: Vec<_> = Merge::new(vec![a, b]).map(|r| r.unwrap()).collect();
        assert_eq!(
            merged.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn successor_skips_a_prefix() {
        assert_eq!(successor(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(successor(&[0x61, 0xff]), Some(vec![0x62]));
        assert_eq!(successor(&[0xff]), None);
    }
}
