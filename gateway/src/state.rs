//! What every request handler can reach: the index, the blobs, the keys, and the
//! server's region and domain.

use crate::auth;
use crate::background::Workers;
use crate::error::S3Result;
use crate::identity::Identities;
use crate::sse::MasterKey;
use kura_backend::BlobStore;
use kura_index::Index;
use std::sync::Arc;

/// Everything a request handler can reach.
pub struct S3State {
    pub index: Arc<Index>,
    pub blobs: Arc<dyn BlobStore>,
    pub identities: Arc<Identities>,
    /// The background workers' statuses (admin API).
    pub workers: Arc<Workers>,
    pub region: String,
    pub domain: Option<String>,
    /// How long a lifecycle "day" is (24 hours but in tests).
    pub lifecycle_day: std::time::Duration,
    /// Wraps the data keys of SSE-S3 objects.
    pub master_key: MasterKey,
}

impl S3State {
    /// Checks a request's signature (S3 and admin API alike) against the keys, now.
    pub async fn authenticate(
        &self,
        parts: &http::request::Parts,
    ) -> S3Result<auth::Authenticated> {
        let access_key = auth::claimed_access_key(&parts.uri, &parts.headers).unwrap_or_default();
        let owner = match access_key.as_str() {
            "" => None,
            key => self.identities.lookup(key).await?,
        };
        auth::authenticate(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &auth::ResolvedKey { access_key, owner },
            &self.region,
            time::OffsetDateTime::now_utc(),
        )
    }
}
