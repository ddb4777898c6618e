//! Listings against a model: random puts, deletes and listings (prefix,
//! delimiter, start-after, page size, paginated to the end) are applied both to
//! the index and to a `BTreeMap`, and every page must equal the model's page —
//! for several shard counts, and across an online reshard (started mid-run,
//! advanced by small steps interleaved with the writes and listings, and
//! reopened from disk mid-way to check that progress is persisted).

use kura_index::{Index, IndexError, ListParams, ShardLayout};
use proptest::prelude::*;
use std::collections::BTreeMap;
use support::{reopen, runtime, version, with_bucket};
use tokio::runtime::Runtime;

mod support;

const BUCKET: &str = "b";

/// The model: key -> the blob id of its current version.
type Model = BTreeMap<String, String>;

#[derive(Debug, Clone)]
enum Op {
    Put(String),
    Delete(String),
    List(Listing),
    /// One reshard step of at most this many keys (only while a reshard runs).
    Step(usize),
    /// Drop the index and open it again from the same directory.
    Reopen,
}

#[derive(Debug, Clone)]
struct Listing {
    prefix: String,
    delimiter: Option<&'static str>,
    after: Option<String>,
    max: usize,
}

/// Keys over a small alphabet with '/' so that delimiters group, and a
/// two-byte character so that byte order (not char order) is exercised.
fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!['a', 'b', '/', 'é']), 1..5)
        .prop_map(String::from_iter)
}

fn short() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!['a', 'b', '/', 'é']), 0..3)
        .prop_map(String::from_iter)
}

fn listing() -> impl Strategy<Value = Listing> {
    (
        short(),
        prop::sample::select(vec![None, Some("/"), Some("a/"), Some("b")]),
        prop::option::weighted(0.4, key()),
        1usize..7,
    )
        .prop_map(|(prefix, delimiter, after, max)| Listing {
            prefix,
            delimiter,
            after,
            max,
        })
}

fn op(with_reshard: bool) -> impl Strategy<Value = Op> {
    let step_weight = if with_reshard { 4 } else { 0 };
    let reopen_weight = if with_reshard { 1 } else { 0 };
    prop_oneof![
        6 => key().prop_map(Op::Put),
        3 => key().prop_map(Op::Delete),
        3 => listing().prop_map(Op::List),
        step_weight => (1usize..4).prop_map(Op::Step),
        reopen_weight => Just(Op::Reopen),
    ]
}

/// One page as S3 defines it, computed from the model. Common prefixes not
/// after the marker were returned before (or precede it) and are skipped.
fn model_page(
    model: &Model,
    l: &Listing,
    after: Option<&str>,
) -> (Vec<(String, String)>, Vec<String>, bool) {
    // (shown key or common prefix, blob for a key / None for a prefix)
    let mut items: Vec<(String, Option<String>)> = Vec::new();
    for (key, blob) in model.range::<str, _>((
        after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
        std::ops::Bound::Unbounded,
    )) {
        if !key.starts_with(&l.prefix) {
            continue;
        }
        let rest = &key[l.prefix.len()..];
        match l.delimiter.and_then(|d| rest.find(d).map(|at| (at, d))) {
            Some((at, d)) => {
                let common = &key[..l.prefix.len() + at + d.len()];
                if after.is_some_and(|a| common <= a) {
                    continue;
                }
                if items.last().is_some_and(|(last, _)| last == common) {
                    continue;
                }
                items.push((common.to_owned(), None));
            }
            None => items.push((key.clone(), Some(blob.clone()))),
        }
    }
    let truncated = items.len() > l.max;
    items.truncate(l.max);
    let mut entries = Vec::new();
    let mut prefixes = Vec::new();
    for (name, blob) in items {
        match blob {
            Some(blob) => entries.push((name, blob)),
            None => prefixes.push(name),
        }
    }
    (entries, prefixes, truncated)
}

/// Lists with `l`, page by page until not truncated; every page (objects and
/// versions) must equal the model's.
fn check_listing(rt: &Runtime, index: &Index, model: &Model, l: &Listing, context: &str) {
    let mut after = l.after.clone();
    let mut pages = 0;
    loop {
        let params = ListParams {
            prefix: &l.prefix,
            delimiter: l.delimiter,
            after: after.as_deref(),
            max: l.max,
        };
        let page = rt.block_on(index.list_objects(BUCKET, &params)).unwrap();
        let got: Vec<(String, String)> = page
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.parts[0].blob.clone()))
            .collect();
        let (entries, prefixes, truncated) = model_page(model, l, after.as_deref());
        assert_eq!(
            (&got, &page.prefixes, page.truncated),
            (&entries, &prefixes, truncated),
            "list_objects {l:?} page {pages} after {after:?} ({context})"
        );

        let versions = rt
            .block_on(index.list_versions(BUCKET, &params, None))
            .unwrap();
        let got: Vec<(String, String)> = versions
            .entries
            .iter()
            .map(|(k, listed)| {
                assert!(listed.latest, "{k}: a key's only version is its latest");
                (k.clone(), listed.version.parts[0].blob.clone())
            })
            .collect();
        assert_eq!(
            (&got, &versions.prefixes, versions.truncated),
            (&entries, &prefixes, truncated),
            "list_versions {l:?} page {pages} after {after:?} ({context})"
        );

        if !page.truncated {
            break;
        }
        after = page.last().map(str::to_owned);
        pages += 1;
        assert!(
            pages <= model.len() + 1,
            "pagination does not end ({context})"
        );
    }
}

/// Every key, no prefix or delimiter, in pages of 2: the whole content.
fn check_all(rt: &Runtime, index: &Index, model: &Model, context: &str) {
    let all = Listing {
        prefix: String::new(),
        delimiter: None,
        after: None,
        max: 2,
    };
    check_listing(rt, index, model, &all, context);
    check_counts(rt, index, model, context);
}

/// The per-shard entry counters equal the model's keys hashed to each shard
/// of the current layout: exact after every write, step, reopen and switch.
fn check_counts(rt: &Runtime, index: &Index, model: &Model, context: &str) {
    let stats = rt.block_on(index.shard_stats(BUCKET)).unwrap();
    let layout = ShardLayout {
        generation: 0,
        shards: stats.shards,
    };
    let mut expected = vec![0u64; stats.shards as usize];
    for key in model.keys() {
        expected[layout.shard_of(key) as usize] += 1;
    }
    assert_eq!(
        stats.objects_per_shard, expected,
        "entries per shard ({context})"
    );
}

struct Run {
    dir: tempfile::TempDir,
    index: Option<Index>,
    shards: u32,
    model: Model,
    next_blob: u64,
    resharding: bool,
}

impl Run {
    fn new(rt: &Runtime, shards: u32) -> Self {
        let (dir, index) = with_bucket(rt, BUCKET, shards);
        Run {
            dir,
            index: Some(index),
            shards,
            model: Model::new(),
            next_blob: 0,
            resharding: false,
        }
    }

    fn index(&self) -> &Index {
        self.index.as_ref().unwrap()
    }

    fn apply(&mut self, rt: &Runtime, op: &Op, at: usize) {
        let context = format!("op {at}: {op:?}");
        match op {
            Op::Put(key) => {
                self.next_blob += 1;
                let blob = format!("blob{}", self.next_blob);
                rt.block_on(self.index().put_object::<IndexError>(
                    BUCKET,
                    key,
                    version(&blob, 1),
                    |_| Ok(()),
                ))
                .unwrap();
                self.model.insert(key.clone(), blob);
                check_counts(rt, self.index(), &self.model, &context);
            }
            Op::Delete(key) => {
                let removed = rt
                    .block_on(
                        self.index()
                            .delete_object(BUCKET, key, None, support::OWNER),
                    )
                    .unwrap();
                let expected = self.model.remove(key);
                assert_eq!(
                    removed.removed.map(|v| v.parts[0].blob.clone()),
                    expected,
                    "delete returns the current version ({context})"
                );
                check_counts(rt, self.index(), &self.model, &context);
            }
            Op::List(l) => check_listing(rt, self.index(), &self.model, l, &context),
            Op::Step(max_keys) => {
                if self.resharding {
                    self.step(rt, *max_keys, &context);
                }
            }
            Op::Reopen => {
                drop(self.index.take());
                self.index = Some(reopen(self.dir.path(), self.shards));
                let stats = rt.block_on(self.index().shard_stats(BUCKET)).unwrap();
                assert_eq!(
                    stats.reshard.is_some(),
                    self.resharding,
                    "the reshard state survives a reopen ({context})"
                );
                check_all(rt, self.index(), &self.model, &context);
            }
        }
    }

    fn step(&mut self, rt: &Runtime, max_keys: usize, context: &str) {
        let step = rt
            .block_on(self.index().reshard_step(BUCKET, max_keys))
            .unwrap();
        if step.done {
            self.resharding = false;
            let stats = rt.block_on(self.index().shard_stats(BUCKET)).unwrap();
            assert!(stats.reshard.is_none(), "no reshard after done ({context})");
        }
        check_all(
            rt,
            self.index(),
            &self.model,
            &format!("after a step, {context}"),
        );
    }

    fn start_reshard(&mut self, rt: &Runtime, target: u32) {
        let record = rt
            .block_on(self.index().start_reshard(BUCKET, target))
            .unwrap();
        assert_eq!(record.name, BUCKET);
        self.resharding = true;
        let stats = rt.block_on(self.index().shard_stats(BUCKET)).unwrap();
        let reshard = stats.reshard.expect("a started reshard is visible");
        assert_eq!(reshard.target.shards, target);
        assert!(matches!(
            rt.block_on(self.index().start_reshard(BUCKET, target + 1)),
            Err(IndexError::ReshardInProgress)
        ));
        check_all(rt, self.index(), &self.model, "right after start_reshard");
    }

    /// The final state: shard counts and per-shard totals match the model.
    fn check_stats(&self, rt: &Runtime, shards: u32) {
        let stats = rt.block_on(self.index().shard_stats(BUCKET)).unwrap();
        assert_eq!(stats.shards, shards);
        assert!(stats.reshard.is_none());
        assert_eq!(stats.objects_per_shard.len(), shards as usize);
        assert_eq!(
            stats.objects_per_shard.iter().sum::<u64>(),
            self.model.len() as u64,
            "objects per shard add up to the objects listed"
        );
        check_all(rt, self.index(), &self.model, "final");
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    }
}

fn run_without_reshard(shards: u32, ops: &[Op]) {
    let rt = runtime();
    let mut run = Run::new(&rt, shards);
    for (at, op) in ops.iter().enumerate() {
        run.apply(&rt, op, at);
    }
    run.check_stats(&rt, shards);
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn listing_matches_model_with_1_shard(ops in prop::collection::vec(op(false), 1..80)) {
        run_without_reshard(1, &ops);
    }

    #[test]
    fn listing_matches_model_with_3_shards(ops in prop::collection::vec(op(false), 1..80)) {
        run_without_reshard(3, &ops);
    }

    #[test]
    fn listing_matches_model_with_8_shards(ops in prop::collection::vec(op(false), 1..80)) {
        run_without_reshard(8, &ops);
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn listing_matches_model_across_a_reshard(
        from in prop::sample::select(vec![1u32, 3, 8]),
        to in prop::sample::select(vec![1u32, 2, 5, 8, 16]),
        before in prop::collection::vec(op(false), 0..40),
        during in prop::collection::vec(op(true), 1..80),
        last_step in 1usize..5,
    ) {
        prop_assume!(from != to);
        let rt = runtime();
        let mut run = Run::new(&rt, from);
        for (at, op) in before.iter().enumerate() {
            run.apply(&rt, op, at);
        }
        run.start_reshard(&rt, to);
        for (at, op) in during.iter().enumerate() {
            run.apply(&rt, op, before.len() + at);
        }
        // No more writes: the reshard must finish in a bounded number of steps.
        let mut steps = 0;
        while run.resharding {
            run.step(&rt, last_step, "finishing");
            steps += 1;
            prop_assert!(
                // Starting, a page per `last_step` stored entries (three per key: its
                // current entry, head and version) and one more per source shard,
                // replays of what the writes logged (three entries each), the switch.
                steps <= 3 * (run.model.len() + during.len()) + from as usize + 4,
                "reshard not done after {} steps of {} keys with {} keys",
                steps, last_step, run.model.len()
            );
        }
        run.check_stats(&rt, to);
    }
}

/// The model itself, on the example the index's own unit tests use.
#[test]
fn model_pages_like_s3() {
    let model: Model = ["a/1", "a/2", "b", "c/x/y", "c/z", "d"]
        .iter()
        .map(|k| (k.to_string(), String::new()))
        .collect();
    let l = Listing {
        prefix: String::new(),
        delimiter: Some("/"),
        after: None,
        max: 2,
    };
    let (entries, prefixes, truncated) = model_page(&model, &l, None);
    assert_eq!(entries.len(), 1);
    assert_eq!(prefixes, ["a/"]);
    assert!(truncated);
    let (entries, prefixes, truncated) = model_page(&model, &l, Some("b"));
    assert!(entries.iter().map(|(k, _)| k).eq(["d"].iter()));
    assert_eq!(prefixes, ["c/"]);
    assert!(!truncated);
    let (_, prefixes, _) = model_page(&model, &l, Some("c/x"));
    assert!(
        prefixes.is_empty(),
        "a prefix before the marker is not repeated"
    );
}
