//! An index written by an earlier Kura (formats 1 and 2) is upgraded at startup: the
//! same objects, uploads and parts, with counters, and the garbage it had queued
//! collected.

use bytes::Bytes;
use kura_backend::{BlobStore, KvStore, LocalBackend, Write};
use kura_index::{Index, IndexError, ListParams, Usage};
use std::sync::Arc;
use support::version;

mod support;

async fn put(kv: &LocalBackend, map: &str, key: &[u8], value: &[u8]) {
    let mut write = Write::default();
    write.put(key, value);
    assert!(kv.write(map, write).await.unwrap().applied());
}

fn fnv_shard(key: &str, shards: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % shards
}

#[tokio::test]
async fn an_index_from_format_1_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let kv = Arc::new(LocalBackend::open(dir.path()).unwrap());
    // Format 1, as the earlier Kura stored it.
    let bucket = br#"{"name":"b","owner":"o","created_ms":1,"region":"us-east-1","layout":{"generation":7,"shards":2,"counted":true},"quota":{"max_objects":null,"max_bytes":null},"reshard":{"target":{"generation":9,"shards":4,"counted":true},"started_ms":1,"copied":1,"cursor":"a","covered":{"UpTo":"a"}}}"#;
    put(&kv, "buckets", b"b", bucket).await;
    for (key, size) in [("a", 10u64), ("b/1", 20), ("c", 5)] {
        let record = serde_json::json!({ "versions": [version(&format!("blob-{key}"), size)] });
        let map = format!("o/b/7/{}", fnv_shard(key, 2));
        put(
            &kv,
            &map,
            key.as_bytes(),
            &serde_json::to_vec(&record).unwrap(),
        )
        .await;
    }
    // A half-done reshard's copy, and the old counters.
    put(&kv, "o/b/9/0", b"a", b"{}").await;
    put(&kv, "usage", b"b", br#"{"objects":3,"bytes":35}"#).await;
    let upload = br#"{"upload_id":"u1","key":"big","owner":"o","initiated_ms":1,"meta":{"headers":[],"user":[]},"checksum_algorithm":null,"checksum_type":null}"#;
    put(&kv, "u/b", b"big\0u1", upload).await;
    let part = br#"{"number":1,"blob":"part-blob","size":3,"etag":"e","checksum":null,"last_modified_ms":1}"#;
    put(
        &kv,
        "p/b",
        &[&b"u1\0"[..], &1u32.to_be_bytes()].concat(),
        part,
    )
    .await;
    // A blob an interrupted write left behind, queued for collection.
    let mut writer = kv.create_blob().await.unwrap();
    writer.write(Bytes::from_static(b"orphan")).await.unwrap();
    let orphan = writer.commit().await.unwrap();
    put(
        &kv,
        "gc",
        orphan.id.as_bytes(),
        br#"{"Intent":{"since_ms":1}}"#,
    )
    .await;

    let index = Arc::new(Index::new(kv.clone(), 1));
    index.prepare(kv.as_ref()).await.unwrap();
    assert!(
        kv.read_blob(&orphan.id, 0..1).await.is_err(),
        "queued garbage is collected"
    );
    let record = index.bucket("b").await.unwrap();
    assert!(record.reshard.is_none(), "the half-done reshard is dropped");
    assert_eq!(
        index.bucket_usage("b").await.unwrap(),
        Usage {
            objects: 3,
            bytes: 35
        }
    );
    let stats = index.shard_stats("b").await.unwrap();
    assert_eq!(stats.objects_per_shard.iter().sum::<u64>(), 3);
    let all = ListParams {
        max: 100,
        ..Default::default()
    };
    let keys: Vec<String> = index
        .list_objects("b", &all)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["a", "b/1", "c"]);
    let (parts, more) = index.parts("b", "u1", 0, 10).await.unwrap();
    assert_eq!(
        (parts.len(), parts[0].blob.as_str(), more),
        (1, "part-blob", false)
    );
    // It works as a new one: writes count, the reshard planner can start over, and the
    // bucket empties and goes.
    index
        .put_object::<IndexError>("b", "d", version("blob-d", 1), |_| Ok(()))
        .await
        .unwrap();
    assert_eq!(index.bucket_usage("b").await.unwrap().objects, 4);
    index.start_reshard("b", 3).await.unwrap();
    while !index.reshard_step("b", 2).await.unwrap().done {}
    assert_eq!(
        index
            .shard_stats("b")
            .await
            .unwrap()
            .objects_per_shard
            .iter()
            .sum::<u64>(),
        4
    );
    index.abort_upload("b", "big", "u1").await.unwrap();
    for key in ["a", "b/1", "c", "d"] {
        index
            .delete_object("b", key, None, support::OWNER)
            .await
            .unwrap();
    }
    index.delete_bucket("b").await.unwrap();
    // A second start finds the current format and changes nothing.
    index.prepare(kv.as_ref()).await.unwrap();
}

#[tokio::test]
async fn an_index_from_format_2_gets_an_entry_per_version() {
    let dir = tempfile::tempdir().unwrap();
    let kv = Arc::new(LocalBackend::open(dir.path()).unwrap());
    put(&kv, "meta", b"format", b"2").await;
    let bucket = br#"{"name":"b","id":"i1","owner":"o","created_ms":1,"region":"us-east-1","layout":{"generation":0,"shards":1}}"#;
    put(&kv, "buckets", b"b", bucket).await;
    // Format 2: a key's versions in one entry, with the shard's counters of then.
    for (key, size) in [("a", 10u64), ("b/1", 20)] {
        let record = serde_json::json!({ "versions": [version(&format!("blob-{key}"), size)] });
        put(
            &kv,
            "o/i1/0/0",
            key.as_bytes(),
            &serde_json::to_vec(&record).unwrap(),
        )
        .await;
    }
    let header = br#"{"state":"Open","entries":2,"objects":2,"bytes":30}"#;
    put(&kv, "o/i1/0/0", b"\xffh", header).await;

    let index = Index::new(kv.clone(), 1);
    index.prepare(kv.as_ref()).await.unwrap();
    assert_eq!(
        index.bucket_usage("b").await.unwrap(),
        Usage {
            objects: 2,
            bytes: 30
        }
    );
    let a = index
        .current(&index.bucket("b").await.unwrap(), "a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.size, a.parts[0].blob.as_str()), (10, "blob-a"));
    let null = index
        .version(&index.bucket("b").await.unwrap(), "b/1", "null")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(null.parts[0].blob, "blob-b/1");
    let all = ListParams {
        max: 100,
        ..Default::default()
    };
    let versions = index.list_versions("b", &all, None).await.unwrap();
    let listed: Vec<(&str, bool)> = versions
        .entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.latest))
        .collect();
    assert_eq!(listed, [("a", true), ("b/1", true)]);
    // Overwrites replace the null version, deletes remove it.
    index
        .put_object::<IndexError>("b", "a", version("blob-a2", 4), |_| Ok(()))
        .await
        .unwrap();
    index
        .delete_object("b", "b/1", None, support::OWNER)
        .await
        .unwrap();
    assert_eq!(
        index.bucket_usage("b").await.unwrap(),
        Usage {
            objects: 1,
            bytes: 4
        }
    );
    assert_eq!(
        index
            .list_versions("b", &all, None)
            .await
            .unwrap()
            .entries
            .len(),
        1
    );
}
