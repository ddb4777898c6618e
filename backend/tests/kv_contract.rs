//! One contract for every key-value store (as Garage runs one suite on every engine): the
//! local backend always, RADOS when built with the `rados` feature (against the cluster
//! named by `KURA_TEST_CEPH_CONF`, which `scripts/test` starts with
//! `scripts/ceph-cluster`). Each run uses maps of its own, so runs never meet.

use kura_backend::{KvStore, LocalBackend, Outcome, Scan, Write, key_after};
use std::sync::Arc;

/// A map name unique to this run and test.
fn map(run: &str, name: &str) -> String {
    format!("t{run}/{name}")
}

async fn put(kv: &dyn KvStore, map: &str, key: &[u8], value: &[u8]) {
    let mut write = Write::default();
    write.put(key, value);
    assert_eq!(kv.write(map, write).await.unwrap(), Outcome::Applied);
}

/// Every key of `scan`'s range, read page by page with `limit` per page.
async fn scan_all(kv: &dyn KvStore, map: &str, mut scan: Scan) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for _ in 0..10_000 {
        let page = kv.scan(map, &scan).await.unwrap();
        assert!(page.entries.len() <= scan.limit);
        keys.extend(page.entries.into_iter().map(|(k, _)| k));
        match page.next {
            Some(next) => scan.start = next,
            None => return keys,
        }
    }
    panic!("a scan never ended");
}

async fn values_round_trip(kv: &dyn KvStore, run: &str) {
    let m = map(run, "values");
    assert_eq!(kv.get(&m, b"missing").await.unwrap(), None);
    put(kv, &m, b"empty", b"").await;
    put(kv, &m, b"bin\0\xff", &[0, 1, 255]).await;
    assert_eq!(kv.get(&m, b"empty").await.unwrap(), Some(Vec::new()));
    assert_eq!(
        kv.get(&m, b"bin\0\xff").await.unwrap(),
        Some(vec![0, 1, 255])
    );
    // Later changes of a key in one write win.
    let mut write = Write::default();
    write
        .put(&b"k"[..], &b"1"[..])
        .delete(&b"k"[..])
        .put(&b"j"[..], &b"2"[..]);
    assert!(kv.write(&m, write).await.unwrap().applied());
    assert_eq!(kv.get(&m, b"k").await.unwrap(), None);
    assert_eq!(kv.get(&m, b"j").await.unwrap(), Some(b"2".to_vec()));
    let keys = [
        b"j".to_vec(),
        b"missing".to_vec(),
        b"bin\0\xff".to_vec(),
        b"j".to_vec(),
    ];
    assert_eq!(
        kv.get_many(&m, &keys).await.unwrap(),
        vec![
            Some(b"2".to_vec()),
            None,
            Some(vec![0, 1, 255]),
            Some(b"2".to_vec())
        ]
    );
    kv.drop_map(&m).await.unwrap();
    assert_eq!(kv.get(&m, b"j").await.unwrap(), None);
    kv.sync().await.unwrap();
}

async fn scans_are_ordered_bounded_and_paged(kv: &dyn KvStore, run: &str) {
    let m = map(run, "scan");
    let mut keys: Vec<Vec<u8>> = (0..60u32)
        .map(|i| format!("a/{i:03}").into_bytes())
        .collect();
    keys.extend([
        b"a".to_vec(),
        b"a/\0x".to_vec(),
        b"a/\0y\0z".to_vec(),
        b"b".to_vec(),
        b"\xff\x01".to_vec(),
        b"\xff\x02".to_vec(),
    ]);
    let mut write = Write::default();
    for key in &keys {
        write.put(key.clone(), key.clone());
    }
    assert!(kv.write(&m, write).await.unwrap().applied());
    keys.sort();

    for limit in [1, 7, 1000] {
        let all = scan_all(
            kv,
            &m,
            Scan {
                limit,
                ..Scan::default()
            },
        )
        .await;
        assert_eq!(all, keys, "limit {limit}");
    }
    // Values come back with their keys.
    let page = kv.scan(&m, &Scan::prefix(&b"b"[..], 10)).await.unwrap();
    assert_eq!(page.entries, vec![(b"b".to_vec(), b"b".to_vec())]);
    assert_eq!(page.next, None);

    let expect = |f: &dyn Fn(&[u8]) -> bool| -> Vec<Vec<u8>> {
        keys.iter().filter(|k| f(k)).cloned().collect()
    };
    // Inclusive start, exclusive end, prefixes (also holding NULs), limits of every size.
    let cases: Vec<(Scan, Vec<Vec<u8>>)> = vec![
        (
            Scan {
                start: b"a/010".to_vec(),
                end: Some(b"a/020".to_vec()),
                prefix: vec![],
                limit: 3,
            },
            expect(&|k| k >= b"a/010".as_slice() && k < b"a/020".as_slice()),
        ),
        (
            Scan {
                start: key_after(b"a/010"),
                end: None,
                prefix: b"a/0".to_vec(),
                limit: 4,
            },
            expect(&|k| k > b"a/010".as_slice() && k.starts_with(b"a/0")),
        ),
        (
            Scan::prefix(&b"a/\0"[..], 1),
            expect(&|k| k.starts_with(b"a/\0")),
        ),
        (
            Scan {
                start: b"a/\0y".to_vec(),
                end: None,
                prefix: vec![],
                limit: 2,
            },
            expect(&|k| k >= b"a/\0y".as_slice()),
        ),
        (
            Scan {
                start: vec![],
                end: Some(vec![0xff]),
                prefix: vec![],
                limit: 25,
            },
            expect(&|k| k < [0xff].as_slice()),
        ),
        (
            Scan::prefix(vec![0xff], 1),
            expect(&|k| k.starts_with(&[0xff])),
        ),
        (Scan::prefix(&b"zz"[..], 5), Vec::new()),
    ];
    for (scan, want) in cases {
        assert_eq!(scan_all(kv, &m, scan.clone()).await, want, "{scan:?}");
    }
    let empty = kv
        .scan(&map(run, "never-written"), &Scan::prefix(vec![], 10))
        .await
        .unwrap();
    assert!(empty.entries.is_empty() && empty.next.is_none());
    kv.drop_map(&m).await.unwrap();
}

async fn guards_decide_all_or_nothing(kv: &dyn KvStore, run: &str) {
    // A guard on a map that does not exist yet: every key is absent.
    let m = map(run, "guards");
    let mut create = Write::default();
    create
        .expect(&b"k"[..], None)
        .put(&b"k"[..], &b"v1"[..])
        .put(&b"side"[..], &b"1"[..]);
    assert_eq!(
        kv.write(&m, create.clone()).await.unwrap(),
        Outcome::Applied
    );
    // The same write again: the key is no longer absent, so nothing changes.
    let mut again = create.clone();
    again.changes = vec![(b"side".to_vec(), Some(b"2".to_vec()))];
    assert_eq!(kv.write(&m, again).await.unwrap(), Outcome::GuardFailed);
    assert_eq!(kv.get(&m, b"side").await.unwrap(), Some(b"1".to_vec()));

    let mut swap = Write::default();
    swap.expect(&b"k"[..], Some(b"v1".to_vec()))
        .expect(&b"gone"[..], None)
        .put(&b"k"[..], &b"v2"[..])
        .delete(&b"side"[..]);
    assert!(kv.write(&m, swap.clone()).await.unwrap().applied());
    assert_eq!(kv.get(&m, b"k").await.unwrap(), Some(b"v2".to_vec()));
    assert_eq!(kv.get(&m, b"side").await.unwrap(), None);
    // A stale compare fails and leaves everything as it was.
    assert_eq!(kv.write(&m, swap).await.unwrap(), Outcome::GuardFailed);
    assert_eq!(kv.get(&m, b"k").await.unwrap(), Some(b"v2".to_vec()));
    // An empty value is not absence.
    put(kv, &m, b"e", b"").await;
    let mut absent = Write::default();
    absent.expect(&b"e"[..], None).put(&b"x"[..], &b"1"[..]);
    assert_eq!(kv.write(&m, absent).await.unwrap(), Outcome::GuardFailed);
    let mut empty = Write::default();
    empty
        .expect(&b"e"[..], Some(Vec::new()))
        .put(&b"x"[..], &b"1"[..]);
    assert_eq!(kv.write(&m, empty).await.unwrap(), Outcome::Applied);
    kv.drop_map(&m).await.unwrap();
}

/// Compare-and-set from many tasks at once: every increment lands exactly once.
async fn guarded_increments_never_lose_updates(kv: Arc<dyn KvStore>, run: &str) {
    let m = map(run, "counter");
    let (tasks, each) = (8, 10);
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (kv, m) = (kv.clone(), m.clone());
            tokio::spawn(async move {
                let mut conflicts = 0;
                for _ in 0..each {
                    loop {
                        let old = kv.get(&m, b"n").await.unwrap();
                        let n = old
                            .as_ref()
                            .map_or(0, |v| u64::from_be_bytes(v[..].try_into().unwrap()));
                        let mut write = Write::default();
                        write
                            .expect(&b"n"[..], old)
                            .put(&b"n"[..], (n + 1).to_be_bytes().to_vec());
                        if kv.write(&m, write).await.unwrap().applied() {
                            break;
                        }
                        conflicts += 1;
                    }
                }
                conflicts
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    let n = kv.get(&m, b"n").await.unwrap().unwrap();
    assert_eq!(u64::from_be_bytes(n[..].try_into().unwrap()), tasks * each);
    kv.drop_map(&m).await.unwrap();
}

async fn contract(kv: Arc<dyn KvStore>) {
    let run = uuid_like();
    values_round_trip(kv.as_ref(), &run).await;
    scans_are_ordered_bounded_and_paged(kv.as_ref(), &run).await;
    guards_decide_all_or_nothing(kv.as_ref(), &run).await;
    guarded_increments_never_lose_updates(kv, &run).await;
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_maps_keep_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(Arc::new(LocalBackend::open(dir.path()).unwrap())).await;
}

#[cfg(feature = "rados")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rados_maps_keep_the_contract() {
    use kura_backend::rados::{DEFAULT_STRIPE_SIZE, RadosConfig};
    let conf = std::env::var("KURA_TEST_CEPH_CONF").expect(
        "the RADOS tests need a cluster: `scripts/ceph-cluster start DIR`, then \
         KURA_TEST_CEPH_CONF=DIR/ceph.conf (scripts/test does both)",
    );
    let config = RadosConfig {
        conf: conf.into(),
        user: "admin".into(),
        pool_prefix: "kura".into(),
        namespace: String::new(),
        op_timeout: std::time::Duration::from_secs(10),
    };
    let (_, kv) = kura_backend::rados::open(&config, DEFAULT_STRIPE_SIZE).unwrap();
    contract(Arc::new(kv)).await;
}
