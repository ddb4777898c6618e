//! What every request handler can reach: the index, the blobs, the keys, and the
//! server's region and domain.

use crate::access_log::AccessLogs;
use crate::auth;
use crate::background::Workers;
use crate::config::BucketDefaults;
use crate::error::S3Result;
use crate::identity::Identities;
use crate::policy::condition::Cidr;
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
    /// The ownership and public access block new buckets get.
    pub bucket_defaults: BucketDefaults,
    /// Proxies whose `X-Forwarded-*` headers describe the client.
    pub trusted_proxies: Vec<Cidr>,
    /// How long one object's or part's data may take to arrive: garbage collection
    /// takes data still uncommitted after `--gc-abandoned-seconds` for abandoned, so a
    /// slower upload is refused rather than acknowledged with its data gone.
    pub upload_deadline: std::time::Duration,
    /// Server access log records waiting for delivery.
    pub access_logs: AccessLogs,
}

impl S3State {
    /// Looks up the access key a request claims, before its signature is checked with it.
    pub async fn resolve(&self, claimed: Option<String>) -> S3Result<auth::ResolvedKey> {
        let access_key = claimed.unwrap_or_default();
        let owner = match access_key.as_str() {
            "" => None,
            key => self.identities.lookup(key).await?,
        };
        Ok(auth::ResolvedKey { access_key, owner })
    }

    /// Checks a request's signature (S3 and admin API alike) against the keys, now.
    pub async fn authenticate(
        &self,
        parts: &http::request::Parts,
    ) -> S3Result<auth::Authenticated> {
        let claimed = auth::claimed_access_key(&parts.uri, &parts.headers);
        auth::authenticate(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &self.resolve(claimed).await?,
            &self.region,
            time::OffsetDateTime::now_utc(),
        )
    }
}
