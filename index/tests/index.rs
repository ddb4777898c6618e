use kura_backend::LocalBackend;
use kura_index::{Index, IndexError, ListParams, PartRecord, PartRef, UploadRecord};
use std::sync::Arc;
use support::{open, version};

mod support;

#[tokio::test]
async fn listing_merges_shards_in_byte_order_with_exact_pages() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path(), 5);
    index
        .create_bucket("b", "o", "us-east-1", |_| {})
        .await
        .unwrap();
    let mut keys: Vec<String> = (0..300).map(|i| format!("k/{:03}/{}", i % 17, i)).collect();
    for key in &keys {
        index
            .put_object::<IndexError>("b", key, version("aa", 1), |_| Ok(()))
            .await
            .unwrap();
    }
    for key in keys.iter().step_by(7) {
        index
            .delete_object("b", key, None, support::OWNER)
            .await
            .unwrap();
    }
    let deleted: Vec<String> = keys.iter().step_by(7).cloned().collect();
    keys.retain(|k| !deleted.contains(k));
    keys.sort();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let params = ListParams {
            prefix: "k/",
            delimiter: None,
            after: after.as_deref(),
            max: 23,
        };
        let page = index.list_objects("b", &params).await.unwrap();
        seen.extend(page.entries.iter().map(|(k, _)| k.clone()));
        if !page.truncated {
            break;
        }
        after = page.last().map(str::to_owned);
    }
    assert_eq!(seen, keys);

    let params = ListParams {
        prefix: "k/",
        delimiter: Some("/"),
        after: None,
        max: 1000,
    };
    let page = index.list_objects("b", &params).await.unwrap();
    assert_eq!(page.prefixes.len(), 17);
    assert!(page.entries.is_empty());
}

#[tokio::test]
async fn records_survive_reopen_and_bucket_must_be_empty_to_delete() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = Arc::new(open(dir.path(), 2));
        index
            .create_bucket("b", "o", "us-east-1", |_| {})
            .await
            .unwrap();
        index
            .put_object::<IndexError>("b", "x", version("bb", 1), |_| Ok(()))
            .await
            .unwrap();
        assert!(matches!(
            index.delete_bucket("b").await,
            Err(IndexError::BucketNotEmpty)
        ));
    }
    let index = Arc::new(support::reopen(dir.path(), 2));
    let current = index
        .current(&index.bucket("b").await.unwrap(), "x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.parts[0].blob, "bb");
    assert!(matches!(
        index.create_bucket("b", "other", "us-east-1", |_| {}).await,
        Err(IndexError::BucketExists { owner }) if owner == "o"
    ));
    index
        .delete_object("b", "x", None, support::OWNER)
        .await
        .unwrap();
    index.delete_bucket("b").await.unwrap();
    assert!(matches!(
        index.bucket("b").await,
        Err(IndexError::NoSuchBucket)
    ));
}

#[tokio::test]
async fn grants_are_durable_idempotent_and_leave_with_their_user() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = open(dir.path(), 1);
        index.create_user("owner").await.unwrap();
        index.create_user("guest").await.unwrap();
        index
            .create_bucket("b", "owner", "us-east-1", |_| {})
            .await
            .unwrap();
        index.set_grant("b", "guest", true).await.unwrap();
        let record = index.set_grant("b", "guest", true).await.unwrap();
        assert_eq!(record.grants, ["guest"]);
    }
    let index = open(dir.path(), 1);
    assert_eq!(index.bucket("b").await.unwrap().grants, ["guest"]);
    index.delete_user("guest").await.unwrap();
    assert!(index.bucket("b").await.unwrap().grants.is_empty());
    index.create_user("guest").await.unwrap();
    index.set_grant("b", "guest", true).await.unwrap();
    let record = index.set_grant("b", "guest", false).await.unwrap();
    assert!(record.grants.is_empty());
    assert!(matches!(
        index.set_grant("nope", "guest", true).await,
        Err(IndexError::NoSuchBucket)
    ));
}

#[tokio::test]
async fn replaced_blobs_are_collected_after_the_grace_period_only() {
    use kura_backend::BlobStore;
    use kura_index::{BlobHome, GcCursor, GcPolicy};
    let (_dir, backend, index, bucket) = local_with_bucket().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let blob = tracked_blob(&index, &backend, &bucket, BlobHome::Object { key: "k" }).await;
        index
            .put_object::<IndexError>("b", "k", version(&blob, 1), |_| Ok(()))
            .await
            .unwrap();
        ids.push(blob);
    }
    let patient = GcPolicy {
        intent_age_ms: u64::MAX,
        grace_ms: 3_600_000,
    };
    assert_eq!(
        index
            .collect_garbage(backend.as_ref(), patient, 100, &mut GcCursor::default())
            .await
            .unwrap()
            .deleted,
        0
    );
    assert!(
        backend.read_blob(&ids[0], 0..1).await.is_ok(),
        "still within its grace period"
    );
    let eager = GcPolicy {
        intent_age_ms: u64::MAX,
        grace_ms: 0,
    };
    assert_eq!(
        index
            .collect_garbage(backend.as_ref(), eager, 100, &mut GcCursor::default())
            .await
            .unwrap()
            .deleted,
        1
    );
    assert!(
        backend.read_blob(&ids[0], 0..1).await.is_err(),
        "the replaced blob is gone"
    );
    assert!(
        backend.read_blob(&ids[1], 0..1).await.is_ok(),
        "the current blob stays"
    );
}

#[tokio::test]
async fn garbage_is_collected_oldest_first_in_bounded_steps_and_discards_drop_their_intent() {
    use kura_backend::BlobStore;
    use kura_index::{BlobHome, GcCursor, GcPolicy};
    let (_dir, backend, index, bucket) = local_with_bucket().await;
    let home = BlobHome::Object { key: "k" };
    let mut ids = Vec::new();
    for _ in 0..5 {
        let blob = tracked_blob(&index, &backend, &bucket, home).await;
        // A failed write: the blob is discarded, its intent must not linger.
        index.discard_blob("b", home, &blob).await.unwrap();
        ids.push(blob);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let eager = GcPolicy {
        intent_age_ms: 0,
        grace_ms: 0,
    };
    assert_eq!(
        index
            .collect_garbage(backend.as_ref(), eager, 2, &mut GcCursor::default())
            .await
            .unwrap()
            .deleted,
        2
    );
    for (i, id) in ids.iter().enumerate() {
        let present = backend.read_blob(id, 0..1).await.is_ok();
        assert_eq!(present, i >= 2, "blob {i}: the two oldest go first");
    }
    assert_eq!(
        index
            .collect_garbage(backend.as_ref(), eager, 100, &mut GcCursor::default())
            .await
            .unwrap()
            .deleted,
        3
    );
    // Nothing is left to collect: no intent outlived its discard.
    assert_eq!(
        index
            .collect_garbage(backend.as_ref(), eager, 100, &mut GcCursor::default())
            .await
            .unwrap()
            .deleted,
        0
    );
}

/// Object data is tracked by its gateway's batched intents: data whose entry was never
/// written (its writer died) is collected once its intent is old, and data an entry
/// references never is, whether or not its intent's removal has landed yet.
#[tokio::test]
async fn object_data_without_its_entry_is_collected_and_referenced_data_never_is() {
    use kura_backend::BlobStore;
    use kura_index::{BlobHome, GcCursor, GcPolicy};
    let (_dir, backend, index, bucket) = local_with_bucket().await;
    let mut ids = Vec::new();
    for key in ["kept", "lost"] {
        ids.push(tracked_blob(&index, &backend, &bucket, BlobHome::Object { key }).await);
    }
    index
        .put_object::<IndexError>("b", "kept", version(&ids[0], 1), |_| Ok(()))
        .await
        .unwrap();
    let eager = GcPolicy {
        intent_age_ms: 0,
        grace_ms: 0,
    };
    let collect = async || {
        index
            .collect_garbage(backend.as_ref(), eager, 100, &mut GcCursor::default())
            .await
            .unwrap()
            .deleted
    };
    assert_eq!(collect().await, 1);
    assert!(backend.read_blob(&ids[0], 0..1).await.is_ok(), "referenced");
    assert!(backend.read_blob(&ids[1], 0..1).await.is_err(), "abandoned");
    assert_eq!(collect().await, 0, "no intent is left");
}

/// A local backend, its index, and bucket "b" made there (with its record).
async fn local_with_bucket() -> (
    tempfile::TempDir,
    Arc<LocalBackend>,
    Index,
    kura_index::BucketRecord,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(LocalBackend::open(dir.path()).unwrap());
    let index = Index::new(backend.clone(), 1);
    index
        .create_bucket("b", "o", "us-east-1", |_| {})
        .await
        .unwrap();
    let bucket = index.bucket("b").await.unwrap();
    (dir, backend, index, bucket)
}

/// A one-byte blob written for `home` as the gateway writes one: its intent first.
async fn tracked_blob(
    index: &Index,
    backend: &LocalBackend,
    bucket: &kura_index::BucketRecord,
    home: kura_index::BlobHome<'_>,
) -> String {
    use kura_backend::BlobStore;
    let mut writer = backend.create_blob().await.unwrap();
    index
        .track_new_blob(bucket, home, writer.id())
        .await
        .unwrap();
    writer.write(bytes::Bytes::from_static(b"x")).await.unwrap();
    writer.commit().await.unwrap().id
}

#[tokio::test]
async fn usage_is_exact_and_quotas_refuse_only_growth_past_the_limit() {
    use kura_index::{Quota, Usage};
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path(), 3);
    index
        .create_bucket("b", "o", "us-east-1", |_| {})
        .await
        .unwrap();
    index
        .set_quota(
            "b",
            Quota {
                max_objects: Some(2),
                max_bytes: Some(100),
            },
        )
        .await
        .unwrap();
    let put = |key: &'static str, size: u64| {
        let index = &index;
        async move {
            index
                .put_object::<IndexError>("b", key, version("cc", size), |_| Ok(()))
                .await
        }
    };
    put("a", 60).await.unwrap();
    put("b", 40).await.unwrap();
    assert_eq!(
        index.bucket_usage("b").await.unwrap(),
        Usage {
            objects: 2,
            bytes: 100
        },
        "exactly at both limits"
    );
    assert!(
        matches!(put("c", 0).await, Err(IndexError::QuotaExceeded)),
        "one object too many"
    );
    assert!(
        matches!(put("a", 61).await, Err(IndexError::QuotaExceeded)),
        "one byte too many"
    );
    assert_eq!(
        index.bucket_usage("b").await.unwrap(),
        Usage {
            objects: 2,
            bytes: 100
        },
        "refused writes change nothing"
    );
    assert_eq!(
        index
            .current(&index.bucket("b").await.unwrap(), "a")
            .await
            .unwrap()
            .unwrap()
            .size,
        60
    );
    put("a", 10).await.unwrap();
    assert_eq!(
        index.bucket_usage("b").await.unwrap(),
        Usage {
            objects: 2,
            bytes: 50
        },
        "an overwrite counts the difference"
    );
    index
        .delete_object("b", "b", None, support::OWNER)
        .await
        .unwrap();
    index
        .delete_object("b", "missing", None, support::OWNER)
        .await
        .unwrap();
    assert_eq!(
        index.bucket_usage("b").await.unwrap(),
        Usage {
            objects: 1,
            bytes: 10
        }
    );
    put("c", 90).await.unwrap();
    index.set_quota("b", Quota::default()).await.unwrap();
    put("d", 1000).await.unwrap();
    assert_eq!(
        index.bucket_usage("b").await.unwrap(),
        Usage {
            objects: 3,
            bytes: 1100
        }
    );
}

async fn all_keys(index: &Index, bucket: &str) -> Vec<String> {
    let params = ListParams {
        prefix: "",
        delimiter: None,
        after: None,
        max: usize::MAX,
    };
    index
        .list_objects(bucket, &params)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// Writes racing into different shards each see the others' growth: a quota of 30
/// objects takes exactly 30 of 64 concurrent new keys, and the bytes quota likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_are_exact_over_many_shards_under_concurrent_writes() {
    use kura_index::Quota;
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(open(dir.path(), 11));
    for (bucket, quota) in [
        (
            "objects",
            Quota {
                max_objects: Some(30),
                max_bytes: None,
            },
        ),
        (
            "bytes",
            Quota {
                max_objects: None,
                max_bytes: Some(300),
            },
        ),
    ] {
        index
            .create_bucket(bucket, "o", "us-east-1", |_| {})
            .await
            .unwrap();
        index.set_quota(bucket, quota).await.unwrap();
        let writers = (0..8).map(|w| {
            let index = index.clone();
            tokio::spawn(async move {
                let mut accepted = 0;
                for i in 0..8 {
                    let key = format!("w{w}-{i}");
                    match index
                        .put_object::<IndexError>(bucket, &key, version(&key, 10), |_| Ok(()))
                        .await
                    {
                        Ok(_) => accepted += 1,
                        Err(IndexError::QuotaExceeded) => {}
                        Err(err) => panic!("{err}"),
                    }
                }
                accepted
            })
        });
        let accepted: u32 = futures::future::join_all(writers)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .sum();
        assert_eq!(accepted, 30, "{bucket}");
        assert_eq!(
            index.bucket_usage(bucket).await.unwrap().objects,
            30,
            "{bucket}"
        );
    }
}

/// Rounds that start from the counters an earlier round left count every write settled
/// since, through either gateway (the second's writes landing late): a quota of 30
/// objects takes exactly 30 of 64 writers' keys, and after 5 deletes exactly 5 more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_are_exact_across_gateways_under_concurrent_writes() {
    let (_dir, one, two) = two_gateways_with_quota(30).await;
    let race = |round: u32| {
        let writers = (0..8).map(|w| {
            let index = if w % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for i in 0..8 {
                    let key = format!("r{round}-w{w}-{i}");
                    match index
                        .put_object::<IndexError>("b", &key, version(&key, 10), |_| Ok(()))
                        .await
                    {
                        Ok(_) => accepted.push(key),
                        Err(IndexError::QuotaExceeded) => {}
                        Err(err) => panic!("{err}"),
                    }
                }
                accepted
            })
        });
        let writers: Vec<_> = writers.collect();
        async move {
            futures::future::join_all(writers)
                .await
                .into_iter()
                .flat_map(|r| r.unwrap())
                .collect::<Vec<_>>()
        }
    };
    let first = race(0).await;
    assert_eq!(first.len(), 30);
    for key in &first[..5] {
        two.delete_object("b", key, None, support::OWNER)
            .await
            .unwrap();
    }
    assert_eq!(race(1).await.len(), 5);
    assert_eq!(one.bucket_usage("b").await.unwrap().objects, 30);
}

/// A gateway that reserves alone starts each round from what its last one left, without
/// reading: it must still see room another gateway took (whose round bumps the sequence
/// number its writes are guarded on) and room deletes freed (it reads again rather than
/// refuse).
#[tokio::test]
async fn a_gateway_reserving_alone_sees_room_taken_and_freed_elsewhere() {
    let (_dir, one, two) = two_gateways_with_quota(10).await;
    for i in 0..8 {
        assert!(put_within_quota(&one, &format!("one-{i}")).await);
    }
    assert!(put_within_quota(&two, "two-0").await && put_within_quota(&two, "two-1").await);
    assert!(
        !put_within_quota(&one, "one-8").await,
        "room taken by the other gateway"
    );
    two.delete_object("b", "one-0", None, support::OWNER)
        .await
        .unwrap();
    assert!(
        put_within_quota(&one, "one-9").await,
        "room freed by the other gateway"
    );
    assert!(!put_within_quota(&one, "one-10").await);
    assert_eq!(one.bucket_usage("b").await.unwrap().objects, 10);
}

/// A write reserves ahead with the bucket record a write read a moment ago, which may be
/// older than a switch of layouts: a round must not take the old shards' counters, which
/// miss every write since the switch, for the bucket's.
#[tokio::test]
async fn a_round_with_a_record_from_before_a_reshard_counts_the_new_shards() {
    let (_dir, one, two) = two_gateways_with_quota(10).await;
    for i in 0..4 {
        assert!(put_within_quota(&one, &format!("one-{i}")).await);
    }
    two.start_reshard("b", 3).await.unwrap();
    while !two.reshard_step("b", 64).await.unwrap().done {}
    for i in 0..4 {
        assert!(put_within_quota(&two, &format!("two-{i}")).await);
    }
    let mut accepted = 0;
    for i in 0..4 {
        accepted += usize::from(put_within_quota(&one, &format!("late-{i}")).await);
    }
    assert_eq!(accepted, 2);
    assert_eq!(one.bucket_usage("b").await.unwrap().objects, 10);
}

/// Puts `key` (10 bytes) into bucket "b": whether its quota let it.
async fn put_within_quota(index: &Index, key: &str) -> bool {
    match index
        .put_object::<IndexError>("b", key, version(key, 10), |_| Ok(()))
        .await
    {
        Ok(_) => true,
        Err(IndexError::QuotaExceeded) => false,
        Err(err) => panic!("{err}"),
    }
}

#[tokio::test]
async fn reshard_moves_every_key_while_writes_continue_and_resumes_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = std::collections::BTreeSet::new();
    let progress = {
        let index = open(dir.path(), 2);
        index
            .create_bucket("b", "o", "us-east-1", |_| {})
            .await
            .unwrap();
        for i in 0..400 {
            let key = format!("k{i:04}");
            index
                .put_object::<IndexError>("b", &key, version("aa", 1), |_| Ok(()))
                .await
                .unwrap();
            expected.insert(key);
        }
        index.start_reshard("b", 7).await.unwrap();
        assert!(matches!(
            index.start_reshard("b", 5).await,
            Err(IndexError::ReshardInProgress)
        ));
        for round in 0..3 {
            let step = index.reshard_step("b", 50).await.unwrap();
            assert!(!step.done);
            // Writes during the reshard: new keys, overwrites, deletes, ahead of and behind the cursor.
            let key = format!("k{:04}", 1000 + round);
            index
                .put_object::<IndexError>("b", &key, version("bb", 1), |_| Ok(()))
                .await
                .unwrap();
            expected.insert(key);
            for gone in [format!("k{:04}", round * 7), format!("k{:04}", 399 - round)] {
                index
                    .delete_object("b", &gone, None, support::OWNER)
                    .await
                    .unwrap();
                expected.remove(&gone);
            }
            assert_eq!(
                all_keys(&index, "b").await,
                expected.iter().cloned().collect::<Vec<_>>()
            );
        }
        index.shard_stats("b").await.unwrap().reshard.unwrap()
    };
    // The first step set the shards logging; the next two copied 50 stored entries each.
    assert!(matches!(
        &progress.phase,
        kura_index::ReshardPhase::Copying {
            shard: 0,
            after: Some(_)
        }
    ));
    // Reopened (as after a crash): the reshard resumes from its cursor.
    let index = open(dir.path(), 2);
    let stats = index.shard_stats("b").await.unwrap();
    assert_eq!(stats.shards, 2);
    let resumed = stats.reshard.as_ref().unwrap();
    assert_eq!(
        (&resumed.phase, resumed.copied),
        (&progress.phase, progress.copied),
        "progress survived the restart"
    );
    while !index.reshard_step("b", 64).await.unwrap().done {}
    let stats = index.shard_stats("b").await.unwrap();
    assert_eq!(stats.shards, 7);
    assert!(stats.reshard.is_none());
    assert_eq!(
        stats.objects_per_shard.iter().sum::<u64>(),
        expected.len() as u64
    );
    assert_eq!(
        all_keys(&index, "b").await,
        expected.iter().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        index.retired_maps().await.unwrap(),
        2,
        "the old shards wait"
    );
    let eager = kura_index::GcPolicy {
        intent_age_ms: u64::MAX,
        grace_ms: 0,
    };
    let backend = LocalBackend::open(&dir.path().join("blobs-unused")).unwrap();
    let mut cursor = kura_index::GcCursor::default();
    while !index
        .collect_garbage(&backend, eager, 1000, &mut cursor)
        .await
        .unwrap()
        .cycle_done
    {}
    assert_eq!(
        index.retired_maps().await.unwrap(),
        0,
        "the old layout is reclaimed"
    );
    index
        .put_object::<IndexError>("b", "after", version("cc", 1), |_| Ok(()))
        .await
        .unwrap();
    assert!(
        index
            .current(&index.bucket("b").await.unwrap(), "after")
            .await
            .unwrap()
            .is_some()
    );
}

/// A shard's current entries and heads sort before its versions, so the copy reads two
/// thirds of each shard before it copies a version: its backlog and its progress still
/// shrink and grow with every step, and a reshard that nobody writes to never works
/// harder (it would if its backlog stood still for 10 steps).
#[tokio::test]
async fn a_reshard_copy_progresses_with_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path(), 1);
    index
        .create_bucket("b", "o", "us-east-1", |_| {})
        .await
        .unwrap();
    for i in 0..300 {
        index
            .put_object::<IndexError>("b", &format!("k{i:04}"), version("aa", 1), |_| Ok(()))
            .await
            .unwrap();
    }
    index.start_reshard("b", 4).await.unwrap();
    let mut pace = kura_index::ReshardPace::new(25);
    let mut progress = Vec::new();
    loop {
        // 10 keys' worth of stored entries a step: 30 steps for the copy.
        let step = index.reshard_step("b", 10).await.unwrap();
        pace.after(step.left);
        if step.done {
            break;
        }
        let stats = index.shard_stats("b").await.unwrap();
        let reshard = stats.reshard.unwrap();
        if matches!(reshard.phase, kura_index::ReshardPhase::Copying { .. }) {
            progress.push(reshard.progress(300));
        }
    }
    assert!(progress.len() >= 25, "{progress:?}");
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]),
        "progress stood still: {progress:?}"
    );
    let last = progress[progress.len() - 1];
    assert!(
        progress[0] == 0.0 && last > 0.9 && last <= 1.0,
        "{progress:?}"
    );
    assert_eq!(
        (pace.step_keys(), pace.share()),
        (kura_index::RESHARD_STEP_KEYS, 25)
    );
}

/// Writers on other threads race the copy: new keys, overwrites and deletes
/// land before, inside and after each step's range while it is being covered
/// and copied. Most keys are written once, so a lost or stale copy is never
/// mended by a later write. After reshards both ways every key holds its
/// last write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_are_never_lost_or_stale_across_reshards() {
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(open(dir.path(), 1));
    writes_race_reshards(index.clone(), index).await;
}

/// As above, the writers writing through another gateway than the one that reshards, and
/// late (5 ms after their reads): a write that read a shard before the switch froze it
/// and lands after must fail its guard and land in the new layout, not in the old one
/// after its log was replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_through_another_gateway_are_never_lost_across_reshards() {
    let (_dir, one, two) = two_gateways();
    writes_race_reshards(one, two).await;
}

/// Writers race reshards of bucket "b" (created here) run through `index`, writing through
/// `writers`; after reshards both ways every key holds its last write.
async fn writes_race_reshards(index: Arc<Index>, through: Arc<Index>) {
    const WRITERS: usize = 3;
    index
        .create_bucket("b", "o", "us-east-1", |_| {})
        .await
        .unwrap();
    for i in 0..1000 {
        let key = format!("k{:04}", i * 10);
        index
            .put_object::<IndexError>("b", &key, version("fill", 1), |_| Ok(()))
            .await
            .unwrap();
    }
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (index, running) = (through.clone(), running.clone());
            tokio::spawn(async move {
                // Each writer owns the keys it creates, so their final state is
                // known without a global order.
                let mut last = std::collections::BTreeMap::new();
                let mut created: Vec<String> = Vec::new();
                let mut n = 0usize;
                while running.load(std::sync::atomic::Ordering::SeqCst) {
                    let blob = format!("{w}-{n}");
                    let key = match n % 6 {
                        // An earlier key of this writer is deleted or rewritten.
                        4 | 5 if created.len() > 3 => created[(n * 7919) % created.len()].clone(),
                        _ => {
                            let key = format!("k{:04}-{w}-{n}", (n * 7919 + w * 31) % 10_000);
                            created.push(key.clone());
                            key
                        }
                    };
                    if n % 6 == 4 {
                        index
                            .delete_object("b", &key, None, support::OWNER)
                            .await
                            .unwrap();
                        last.remove(&key);
                    } else {
                        index
                            .put_object::<IndexError>("b", &key, version(&blob, 1), |_| Ok(()))
                            .await
                            .unwrap();
                        last.insert(key, blob);
                    }
                    n += 1;
                }
                last
            })
        })
        .collect();
    for shards in [5, 16, 3] {
        index.start_reshard("b", shards).await.unwrap();
        while !index.reshard_step("b", 40).await.unwrap().done {
            tokio::task::yield_now().await;
        }
    }
    running.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut expected: std::collections::BTreeMap<String, String> = (0..1000)
        .map(|i| (format!("k{:04}", i * 10), "fill".to_owned()))
        .collect();
    for writer in writers {
        expected.extend(writer.await.unwrap());
    }
    assert_eq!(
        all_keys(&index, "b").await,
        expected.keys().cloned().collect::<Vec<_>>()
    );
    for (key, blob) in &expected {
        let current = index
            .current(&index.bucket("b").await.unwrap(), key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&current.parts[0].blob, blob, "{key}");
    }
    let stats = index.shard_stats("b").await.unwrap();
    assert_eq!(stats.shards, 3);
    assert_eq!(
        stats.objects_per_shard.iter().sum::<u64>(),
        expected.len() as u64
    );
}

/// `two_gateways()` with bucket "b" created through the first.
async fn two_gateways_with_bucket() -> (tempfile::TempDir, Arc<Index>, Arc<Index>) {
    let (dir, one, two) = two_gateways();
    one.create_bucket("b", "o", "us-east-1", |_| {})
        .await
        .unwrap();
    (dir, one, two)
}

/// As `two_gateways_with_bucket`, "b" holding at most `max_objects` objects.
async fn two_gateways_with_quota(max_objects: u64) -> (tempfile::TempDir, Arc<Index>, Arc<Index>) {
    let (dir, one, two) = two_gateways_with_bucket().await;
    let quota = kura_index::Quota {
        max_objects: Some(max_objects),
        max_bytes: None,
    };
    one.set_quota("b", quota).await.unwrap();
    (dir, one, two)
}

/// A gateway whose writes reach the store late: what it read may change meanwhile.
struct LateWrites(Arc<LocalBackend>);

/// Two gateways' indexes over one local backend, the second's writes arriving late.
fn two_gateways() -> (tempfile::TempDir, Arc<Index>, Arc<Index>) {
    let dir = tempfile::tempdir().unwrap();
    let local = Arc::new(LocalBackend::open(dir.path()).unwrap());
    let one = Arc::new(Index::shared(local.clone(), 1, "one".into()));
    let two = Arc::new(Index::shared(Arc::new(LateWrites(local)), 1, "two".into()));
    (dir, one, two)
}

#[async_trait::async_trait]
impl kura_backend::KvStore for LateWrites {
    async fn get(&self, map: &str, key: &[u8]) -> kura_backend::Result<Option<Vec<u8>>> {
        self.0.get(map, key).await
    }
    async fn get_many(
        &self,
        map: &str,
        keys: &[Vec<u8>],
    ) -> kura_backend::Result<Vec<Option<Vec<u8>>>> {
        self.0.get_many(map, keys).await
    }
    async fn scan(
        &self,
        map: &str,
        scan: &kura_backend::Scan,
    ) -> kura_backend::Result<kura_backend::Page> {
        self.0.scan(map, scan).await
    }
    async fn write(
        &self,
        map: &str,
        write: kura_backend::Write,
    ) -> kura_backend::Result<kura_backend::Outcome> {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        self.0.write(map, write).await
    }
    async fn drop_map(&self, map: &str) -> kura_backend::Result<()> {
        self.0.drop_map(map).await
    }
    async fn sync(&self) -> kura_backend::Result<()> {
        self.0.sync().await
    }
}

/// A legal hold set through one gateway and a delete of the same noncurrent version
/// through another (whose writes arrive late), racing: either the hold lands first and the delete is
/// refused, or the delete lands first and the hold finds nothing to change — never both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_legal_hold_and_a_delete_through_two_gateways_never_both_win() {
    let (_dir, one, two) = two_gateways();
    one.create_bucket("b", "o", "us-east-1", |r| {
        r.versioning = kura_index::Versioning::Enabled;
    })
    .await
    .unwrap();
    let mut held = 0;
    for round in 0..100 {
        let key = format!("k{round}");
        let put = one
            .put_object::<IndexError>("b", &key, version("blob", 1), |_| Ok(()))
            .await
            .unwrap();
        let id = put.version_id.clone();
        // A newer version, so that the one raced over is neither current nor newest.
        one.put_object::<IndexError>("b", &key, version("newer", 1), |_| Ok(()))
            .await
            .unwrap();
        let (hold, delete) = tokio::join!(
            tokio::spawn({
                let (one, key, id) = (one.clone(), key.clone(), id.clone());
                async move {
                    one.update_version("b", &key, Some(&id), |v| {
                        v.meta.legal_hold = true;
                        Ok::<_, IndexError>(())
                    })
                    .await
                    .unwrap()
                }
            }),
            tokio::spawn({
                let (two, key, id) = (two.clone(), key.clone(), id.clone());
                async move {
                    two.delete_object("b", &key, Some(&id), support::OWNER)
                        .await
                }
            })
        );
        let (hold, delete) = (hold.unwrap(), delete.unwrap());
        match (hold, delete) {
            (Some(_), Err(IndexError::ObjectLocked(_))) => held += 1,
            (None, Ok(deleted)) => assert!(deleted.removed.is_some(), "round {round}"),
            (hold, delete) => panic!("round {round}: both won: {hold:?} / {delete:?}"),
        }
        let left = one
            .version(&one.bucket("b").await.unwrap(), &key, &id)
            .await
            .unwrap();
        assert_eq!(
            left.as_ref().is_some_and(|v| v.meta.legal_hold),
            left.is_some()
        );
    }
    assert!(
        held > 0,
        "the hold never came first: the race was not exercised"
    );
}

/// Writers of one shard through two gateways, overwriting and deleting the same few keys:
/// the shard's counters end exactly as what the listing holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_stay_exact_under_racing_writes_through_two_gateways() {
    let (_dir, one, two) = two_gateways_with_bucket().await;
    let writers = (0..16u64).map(|w| {
        let index = if w % 2 == 0 { one.clone() } else { two.clone() };
        tokio::spawn(async move {
            for i in 0..30u64 {
                let key = format!("k{}", (w * 7 + i) % 24);
                if (w + i) % 4 == 0 {
                    index
                        .delete_object("b", &key, None, support::OWNER)
                        .await
                        .unwrap();
                } else {
                    let size = w * 100 + i;
                    index
                        .put_object::<IndexError>("b", &key, version(&key, size), |_| Ok(()))
                        .await
                        .unwrap();
                }
            }
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.unwrap();
    }
    let all = ListParams {
        max: 1000,
        ..Default::default()
    };
    let listed = one.list_objects("b", &all).await.unwrap().entries;
    let bytes: u64 = listed.iter().map(|(_, v)| v.size).sum();
    let usage = two.bucket_usage("b").await.unwrap();
    assert!(!listed.is_empty());
    assert_eq!((usage.objects, usage.bytes), (listed.len() as u64, bytes));
}

/// Keys and counts the other gateway wrote while the bucket logged are carried into the
/// new layout, and both gateways write there after the switch.
#[tokio::test]
async fn a_switch_freezes_shards_another_gateway_wrote_last() {
    let (_dir, one, two) = two_gateways_with_bucket().await;
    let put = |index: Arc<Index>, key: &'static str, size: u64| async move {
        index
            .put_object::<IndexError>("b", key, version(key, size), |_| Ok(()))
            .await
            .unwrap();
    };
    put(one.clone(), "a", 1).await;
    put(two.clone(), "b", 10).await;
    one.start_reshard("b", 4).await.unwrap();
    // Logging now: these land in the log, the last through the other gateway.
    put(one.clone(), "c", 100).await;
    put(two.clone(), "d", 1000).await;
    while !one.reshard_step("b", 1).await.unwrap().done {}
    assert_eq!(one.shard_stats("b").await.unwrap().shards, 4);
    assert_eq!(all_keys(&two, "b").await, ["a", "b", "c", "d"]);
    let usage = two.bucket_usage("b").await.unwrap();
    assert_eq!((usage.objects, usage.bytes), (4, 1111));
    // Both gateways write to the new layout.
    put(two.clone(), "e", 10_000).await;
    put(one.clone(), "f", 100_000).await;
    let usage = one.bucket_usage("b").await.unwrap();
    assert_eq!((usage.objects, usage.bytes), (6, 111_111));
}

/// A write takes the bucket record its gateway read a moment before (to authorize it),
/// whose layout another gateway's switch may have replaced meanwhile: it must find the old
/// shard retired and go to the new layout, not land where nobody looks.
#[tokio::test]
async fn a_write_with_a_record_read_before_another_gateways_switch_lands_in_the_new_layout() {
    let (_dir, one, two) = two_gateways_with_bucket().await;
    let put = |index: Arc<Index>, key: &'static str| async move {
        index
            .put_object::<IndexError>("b", key, version(key, 1), |_| Ok(()))
            .await
            .unwrap();
    };
    put(two.clone(), "before").await;
    assert_eq!(two.bucket("b").await.unwrap().layout.shards, 1);
    one.start_reshard("b", 4).await.unwrap();
    while !one.reshard_step("b", 64).await.unwrap().done {}
    put(two.clone(), "after").await;
    assert_eq!(all_keys(&one, "b").await, ["after", "before"]);
    assert_eq!(one.bucket_usage("b").await.unwrap().objects, 2);
}

/// A completion whose caller stops waiting (a client that hangs up) still runs to its end,
/// and the same completion sent again through another gateway meanwhile gets its outcome:
/// cut off between marking the upload and writing the entry, it would leave the upload
/// marked (refused to the other gateway for minutes) and the object missing.
#[tokio::test]
async fn a_completion_finishes_when_its_caller_goes_away() {
    let (_dir, one, two) = two_gateways_with_bucket().await;
    let upload = UploadRecord {
        upload_id: "u1".into(),
        key: "k".into(),
        owner: "o".into(),
        initiated_ms: 0,
        meta: Default::default(),
        checksum_algorithm: None,
        checksum_type: None,
        completing: None,
    };
    one.create_upload("b", &upload).await.unwrap();
    for number in 1..=3 {
        let part = PartRecord {
            number,
            blob: format!("p{number}"),
            size: 10,
            etag: "e".into(),
            checksum: None,
            last_modified_ms: 0,
        };
        one.put_part("b", "k", "u1", &part).await.unwrap();
    }
    let build = |_: &UploadRecord, parts: &[PartRecord]| {
        let mut object = version("unused", 30);
        object.multipart = true;
        object.upload_id = Some("u1".into());
        object.parts = (parts.iter())
            .map(|p| PartRef {
                blob: p.blob.clone(),
                size: p.size,
                etag: Some(p.etag.clone()),
                checksum: None,
            })
            .collect();
        Ok::<_, IndexError>(object)
    };
    // `check` runs once the upload is marked, before the entry is written (late: 5 ms).
    let marked = Arc::new(tokio::sync::Notify::new());
    let signal = marked.clone();
    let completion = two.complete_upload("b", "k", "u1", build, move |_| {
        signal.notify_one();
        Ok(())
    });
    tokio::select! {
        _ = completion => panic!("the entry was written before `check` ran"),
        _ = marked.notified() => {}
    }
    // The caller is gone. Sent again through the other gateway: it waits for the first.
    match one.complete_upload("b", "k", "u1", build, |_| Ok(())).await {
        Ok(object) => assert_eq!(object.upload_id.as_deref(), Some("u1")),
        Err(IndexError::NoSuchUpload) => {}
        Err(other) => panic!("{other}"),
    }
    let record = one.bucket("b").await.unwrap();
    let current = one.current(&record, "k").await.unwrap().expect("completed");
    assert_eq!(
        (current.upload_id.as_deref(), current.size),
        (Some("u1"), 30)
    );
    assert!(matches!(
        one.upload("b", "k", "u1").await,
        Err(IndexError::NoSuchUpload)
    ));
}

/// A bucket deletion whose caller stops waiting (a client that hangs up) still runs to its
/// end: cut off midway, it would leave the bucket's maps closed and its record in place.
#[tokio::test]
async fn a_bucket_deletion_finishes_when_its_caller_goes_away() {
    let (_dir, one, two) = two_gateways_with_bucket().await;
    // `two` writes late (5 ms a write): the deletion is still closing maps when dropped.
    let deletion = two.delete_bucket("b");
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(2), deletion)
            .await
            .is_err()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !matches!(one.bucket("b").await, Err(IndexError::NoSuchBucket)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the deletion stopped midway"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    one.create_bucket("b", "o", "us-east-1", |_| {})
        .await
        .unwrap();
    one.put_object::<IndexError>("b", "k", version("k", 1), |_| Ok(()))
        .await
        .unwrap();
}
