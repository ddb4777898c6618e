//! Test and bench fixtures shared by the index's integration tests and benches.

use kura_index::{ObjectMeta, ObjectVersion, PartRef, Stamp};

/// A one-part object version of `size` bytes stored in `blob`.
pub fn version(blob: &str, size: u64) -> ObjectVersion {
    ObjectVersion {
        version_id: "null".into(),
        stamp: Stamp { ms: 0, seq: 0 },
        delete_marker: false,
        size,
        etag: "e".into(),
        meta: ObjectMeta::default(),
        checksum: None,
        parts: vec![PartRef {
            blob: blob.into(),
            size,
            etag: None,
            checksum: None,
        }],
        multipart: false,
        owner: "o".into(),
        upload_id: None,
    }
}
