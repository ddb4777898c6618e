//! One contract for every blob store: the local backend always, RADOS when built with the
//! `rados` feature (against the cluster named by `KURA_TEST_CEPH_CONF`, which
//! `scripts/test` starts with `scripts/ceph-cluster`).

use bytes::Bytes;
use futures::StreamExt;
use kura_backend::{BLOCK_SIZE, BackendError, BlobInfo, BlobStore, LocalBackend, Result};
use std::ops::Range;

/// Flips one bit of the stored data byte at `offset` of blob `id`, behind the store's back.
type Corrupt = Box<dyn Fn(&str, u64)>;

/// A store under test, and how to damage it.
struct Harness {
    store: Box<dyn BlobStore>,
    corrupt: Corrupt,
    /// The size of a stored piece (a file, a stripe): ranges across its edges are read.
    piece: u64,
}

fn sample(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

async fn write(store: &dyn BlobStore, data: &[u8], chunk: usize) -> BlobInfo {
    let mut writer = store.create_blob().await.unwrap();
    for part in data.chunks(chunk.max(1)) {
        writer.write(Bytes::copy_from_slice(part)).await.unwrap();
    }
    writer.commit().await.unwrap()
}

/// What a read yields before it ends, and how it ends.
async fn read(store: &dyn BlobStore, id: &str, range: Range<u64>) -> (Vec<u8>, Result<()>) {
    let mut out = Vec::new();
    let mut stream = match store.read_blob(id, range).await {
        Ok(stream) => stream,
        Err(err) => return (out, Err(err)),
    };
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(err) => return (out, Err(err)),
        }
    }
    (out, Ok(()))
}

async fn round_trips(h: &Harness) {
    let b = BLOCK_SIZE;
    for (len, chunk) in [
        (0, 1),
        (1, 1),
        (b - 1, 4096),
        (b, 100_003),
        (b + 1, 7),
        (2 * h.piece + 3 * b + 5, 100_003),
    ] {
        let data = sample(len);
        let info = write(h.store.as_ref(), &data, chunk).await;
        assert_eq!(info.len, len);
        // Ranges past the end read what there is.
        let mut ranges = vec![
            (0, len),
            (len / 3, len / 2),
            (len / 2, len + 9),
            (len + 1, len + 9),
        ];
        for edge in [b, h.piece, 2 * h.piece] {
            if edge < len {
                ranges.extend([(edge - 1, edge + 1), (edge, len), (0, edge)]);
            }
        }
        if len > 0 {
            ranges.extend([(len - 1, len), (0, 1)]);
        }
        for (start, end) in ranges {
            let (got, end_state) = read(h.store.as_ref(), &info.id, start..end).await;
            end_state.unwrap();
            let (from, to) = (start.min(len) as usize, end.min(len) as usize);
            assert!(got == data[from..to], "{len} bytes: range {start}..{end}");
        }
    }
}

async fn abandoned_and_deleted_blobs_are_gone(h: &Harness) {
    let store = h.store.as_ref();
    let mut writer = store.create_blob().await.unwrap();
    writer
        .write(Bytes::from(sample(h.piece + 10)))
        .await
        .unwrap();
    let id = writer.id().to_owned();
    drop(writer);
    assert!(matches!(
        read(store, &id, 0..1).await.1,
        Err(BackendError::NotFound)
    ));
    store.delete_blob(&id).await.unwrap();

    let info = write(store, &sample(2 * h.piece + 1), 65_536).await;
    store.delete_blob(&info.id).await.unwrap();
    assert!(matches!(
        read(store, &info.id, 0..1).await.1,
        Err(BackendError::NotFound)
    ));
    store.delete_blob(&info.id).await.unwrap();
    store
        .delete_blob("0123456789abcdef0123456789abcdef")
        .await
        .unwrap();
}

async fn damaged_bytes_are_never_served(h: &Harness) {
    let store = h.store.as_ref();
    let data = sample(h.piece + 3 * BLOCK_SIZE);
    let info = write(store, &data, 100_003).await;
    let damaged = h.piece + BLOCK_SIZE + 7;
    (h.corrupt)(&info.id, damaged);
    // Blocks around the damaged one read as they were...
    for range in [
        0..h.piece + BLOCK_SIZE,
        h.piece + 2 * BLOCK_SIZE..data.len() as u64,
    ] {
        let (got, end) = read(store, &info.id, range.clone()).await;
        end.unwrap();
        assert!(got == data[range.start as usize..range.end as usize]);
    }
    // ...and a read through it ends with Corrupt before handing out any byte of it.
    let (got, end) = read(store, &info.id, 0..data.len() as u64).await;
    assert!(matches!(end, Err(BackendError::Corrupt(_))), "{end:?}");
    assert!((got.len() as u64) <= h.piece + BLOCK_SIZE);
    assert!(got == data[..got.len()]);
}

async fn contract(h: Harness) {
    round_trips(&h).await;
    abandoned_and_deleted_blobs_are_gone(&h).await;
    damaged_bytes_are_never_served(&h).await;
}

#[tokio::test]
async fn local_backend_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let store = LocalBackend::open(&root).unwrap();
    contract(Harness {
        store: Box::new(store),
        corrupt: Box::new(move |id, offset| {
            let path = root.join("blobs").join(&id[..2]).join(id);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[offset as usize] ^= 0x40;
            std::fs::write(&path, bytes).unwrap();
        }),
        // One file per blob: check a few blocks' edges.
        piece: 4 * BLOCK_SIZE,
    })
    .await;
}

#[cfg(feature = "rados")]
mod rados {
    use super::*;
    use kura_backend::rados::RadosConfig;
    use std::process::Command;
    use std::time::Duration;

    /// Small stripes, so that multi-stripe blobs stay small in tests.
    const STRIPE: u64 = 4 * BLOCK_SIZE;

    fn config() -> RadosConfig {
        let conf = std::env::var("KURA_TEST_CEPH_CONF").expect(
            "the RADOS tests need a cluster: `scripts/ceph-cluster start DIR`, then \
             KURA_TEST_CEPH_CONF=DIR/ceph.conf (scripts/test does both)",
        );
        RadosConfig {
            conf: conf.into(),
            user: "admin".into(),
            pool_prefix: "kura".into(),
            namespace: String::new(),
            op_timeout: Duration::from_secs(10),
        }
    }

    fn rados(config: &RadosConfig, args: &[&str]) {
        let conf = config.conf.to_str().unwrap();
        let status = Command::new("rados")
            .args(["-c", conf, "-p", &format!("{}-data", config.pool_prefix)])
            .args(args)
            .status()
            .expect("the rados command runs");
        assert!(status.success(), "rados {args:?}");
    }

    #[tokio::test]
    async fn rados_blobs_keep_the_contract() {
        let config = config();
        let (store, _) = kura_backend::rados::open(&config, STRIPE).unwrap();
        contract(Harness {
            store: Box::new(store),
            // Rewrites a stripe's data with the rados tool, as bit rot would change it.
            corrupt: Box::new(move |id, offset| {
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join("stripe");
                let file_arg = file.to_str().unwrap();
                let oid = format!("blob.{id}.{}", offset / STRIPE);
                rados(&config, &["get", &oid, file_arg]);
                let mut bytes = std::fs::read(&file).unwrap();
                bytes[(offset % STRIPE) as usize] ^= 0x40;
                std::fs::write(&file, bytes).unwrap();
                rados(&config, &["put", &oid, file_arg]);
            }),
            piece: STRIPE,
        })
        .await;
    }
}
