//! Versions against a model: random puts, deletes (of keys and of versions by id),
//! versioning switched on and suspended, reshard steps and reopens are applied both to
//! the index and to a model of every key's versions; after each operation the whole
//! listing of versions (paged), the current objects, every version read by id, and the
//! per-shard counters must equal the model's.

use kura_index::{
    Index, IndexError, ListParams, NULL_VERSION, ObjectVersion, ShardLayout, Versioning,
};
use proptest::prelude::*;
use std::collections::BTreeMap;
use support::{reopen, runtime, version, with_bucket};
use tokio::runtime::Runtime;

mod support;

const BUCKET: &str = "b";

/// One version in the model: its id and its blob (None: a delete marker).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    id: String,
    blob: Option<String>,
}

/// key -> its versions, newest first.
type Model = BTreeMap<String, Vec<Version>>;

#[derive(Debug, Clone)]
enum Op {
    Put(String),
    Delete(String),
    /// Deletes the key's version at this position (modulo its count), by id.
    DeleteVersion(String, usize),
    SetVersioning(Versioning),
    /// One reshard step of at most this many keys (starting one when none runs).
    Step(usize),
    Reopen,
}

fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!['a', 'b', '/']), 1..3)
        .prop_map(String::from_iter)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => key().prop_map(Op::Put),
        3 => key().prop_map(Op::Delete),
        3 => (key(), 0usize..4).prop_map(|(k, at)| Op::DeleteVersion(k, at)),
        1 => prop::sample::select(vec![Versioning::Enabled, Versioning::Suspended])
            .prop_map(Op::SetVersioning),
        3 => (1usize..4).prop_map(Op::Step),
        1 => Just(Op::Reopen),
    ]
}

struct Run {
    dir: tempfile::TempDir,
    index: Option<Index>,
    model: Model,
    versioning: Versioning,
    next_blob: u64,
    next_shards: u32,
}

impl Run {
    fn new(rt: &Runtime, shards: u32) -> Self {
        let (dir, index) = with_bucket(rt, BUCKET, shards);
        Run {
            dir,
            index: Some(index),
            model: Model::new(),
            versioning: Versioning::Unversioned,
            next_blob: 0,
            next_shards: shards + 2,
        }
    }

    fn index(&self) -> &Index {
        self.index.as_ref().unwrap()
    }

    /// Adds `added` as `key`'s newest version, as the bucket's versioning state does.
    fn model_add(&mut self, key: &str, added: Version) {
        let versions = self.model.entry(key.to_owned()).or_default();
        if added.id == NULL_VERSION {
            versions.retain(|v| v.id != NULL_VERSION);
        }
        versions.insert(0, added);
    }

    fn apply(&mut self, rt: &Runtime, op: &Op) {
        match op {
            Op::Put(key) => {
                self.next_blob += 1;
                let blob = format!("blob{}", self.next_blob);
                let written = rt
                    .block_on(self.index().put_object::<IndexError>(
                        BUCKET,
                        key,
                        version(&blob, 1),
                        |_| Ok(()),
                    ))
                    .unwrap();
                assert_eq!(
                    written.version_id == NULL_VERSION,
                    self.versioning != Versioning::Enabled,
                    "a version of its own exactly while versioning is enabled"
                );
                let added = Version {
                    id: written.version_id,
                    blob: Some(blob),
                };
                self.model_add(key, added);
            }
            Op::Delete(key) => {
                let deleted = rt
                    .block_on(
                        self.index()
                            .delete_object(BUCKET, key, None, support::OWNER),
                    )
                    .unwrap();
                if self.versioning == Versioning::Unversioned {
                    let gone = self.model.remove(key).map(|mut v| v.remove(0));
                    assert_eq!(
                        deleted.removed.map(|v| v.parts[0].blob.clone()),
                        gone.and_then(|v| v.blob)
                    );
                } else {
                    assert!(deleted.delete_marker);
                    let id = deleted.version_id.expect("a marker's id");
                    self.model_add(key, Version { id, blob: None });
                }
            }
            Op::DeleteVersion(key, at) => {
                let Some(versions) = self.model.get_mut(key) else {
                    return;
                };
                let gone = versions.remove(at % versions.len());
                if versions.is_empty() {
                    self.model.remove(key);
                }
                let deleted = rt
                    .block_on(self.index().delete_object(
                        BUCKET,
                        key,
                        Some(&gone.id),
                        support::OWNER,
                    ))
                    .unwrap();
                assert_eq!(deleted.delete_marker, gone.blob.is_none());
                assert!(deleted.removed.is_some(), "{gone:?} was there");
            }
            Op::SetVersioning(state) => {
                rt.block_on(
                    self.index()
                        .update_bucket(BUCKET, |record| record.versioning = *state),
                )
                .unwrap();
                self.versioning = *state;
            }
            Op::Step(max_keys) => {
                let stats = rt.block_on(self.index().shard_stats(BUCKET)).unwrap();
                if stats.reshard.is_none() {
                    rt.block_on(self.index().start_reshard(BUCKET, self.next_shards))
                        .unwrap();
                    self.next_shards = self.next_shards % 7 + 1;
                } else {
                    rt.block_on(self.index().reshard_step(BUCKET, *max_keys))
                        .unwrap();
                }
            }
            Op::Reopen => {
                drop(self.index.take());
                self.index = Some(reopen(self.dir.path(), 1));
            }
        }
        self.check(rt, &format!("{op:?}"));
    }

    fn check(&self, rt: &Runtime, context: &str) {
        let index = self.index();
        // Every version, newest first per key, in pages of 3.
        let mut listed: Vec<(String, Version, bool)> = Vec::new();
        let mut marker: Option<(String, String)> = None;
        loop {
            let params = ListParams {
                prefix: "",
                delimiter: None,
                after: marker.as_ref().map(|(k, _)| k.as_str()),
                max: 3,
            };
            let id = marker.as_ref().map(|(_, id)| id.as_str());
            let page = rt
                .block_on(index.list_versions(BUCKET, &params, id))
                .unwrap();
            for (key, v) in &page.entries {
                listed.push((key.clone(), model_version(&v.version), v.latest));
            }
            if !page.truncated {
                break;
            }
            let (key, last) = page.entries.last().expect("a truncated page has entries");
            marker = Some((key.clone(), last.version.version_id.clone()));
        }
        let expected: Vec<(String, Version, bool)> = self
            .model
            .iter()
            .flat_map(|(key, versions)| {
                versions
                    .iter()
                    .enumerate()
                    .map(move |(i, v)| (key.clone(), v.clone(), i == 0))
            })
            .collect();
        assert_eq!(listed, expected, "versions after {context}");

        // The current objects: each key whose newest version is not a marker.
        let params = ListParams {
            prefix: "",
            delimiter: None,
            after: None,
            max: 1000,
        };
        let page = rt.block_on(index.list_objects(BUCKET, &params)).unwrap();
        let current: Vec<(String, Version)> = page
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), model_version(v)))
            .collect();
        let expected: Vec<(String, Version)> = self
            .model
            .iter()
            .filter(|(_, versions)| versions[0].blob.is_some())
            .map(|(k, versions)| (k.clone(), versions[0].clone()))
            .collect();
        assert_eq!(current, expected, "current objects after {context}");

        // Every version by id, and the newest by `latest`.
        let record = rt.block_on(index.bucket(BUCKET)).unwrap();
        for (key, versions) in &self.model {
            for v in versions {
                let read = rt
                    .block_on(index.version(&record, key, &v.id))
                    .unwrap()
                    .map(|read| model_version(&read));
                assert_eq!(read.as_ref(), Some(v), "{key} by id after {context}");
            }
            let latest = rt.block_on(index.latest(&record, key)).unwrap();
            assert_eq!(latest.map(|l| model_version(&l)).as_ref(), versions.first());
        }

        // The shard counters count every version, markers too.
        let stats = rt.block_on(index.shard_stats(BUCKET)).unwrap();
        let layout = ShardLayout {
            generation: 0,
            shards: stats.shards,
        };
        let mut per_shard = vec![0u64; stats.shards as usize];
        for (key, versions) in &self.model {
            per_shard[layout.shard_of(key) as usize] += versions.len() as u64;
        }
        assert_eq!(
            stats.objects_per_shard, per_shard,
            "counters after {context}"
        );
    }
}

fn model_version(v: &ObjectVersion) -> Version {
    Version {
        id: v.version_id.clone(),
        blob: (!v.delete_marker).then(|| v.parts[0].blob.clone()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn versions_match_the_model(
        shards in prop::sample::select(vec![1u32, 3]),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let rt = runtime();
        let mut run = Run::new(&rt, shards);
        for op in &ops {
            run.apply(&rt, op);
        }
    }
}
