//! The `Index` handle: the maps it works on and the in-process helpers it keeps. Its
//! operations live in the modules named after what they do (buckets, objects, uploads, …).

use crate::crowded::Crowded;
use crate::intents::IntentLog;
use crate::locks::MapLocks;
use crate::model::{Clock, unix_ms};
use crate::reshard_log::LogPlaces;
use crate::rounds::Rounds;
use crate::seen::SeenRecords;
use crate::switches::Switches;
use crate::{IndexError, Result};
use kura_backend::KvStore;
use std::sync::Arc;

/// The index over one backend. Cheap to share behind an `Arc`.
pub struct Index {
    pub(crate) kv: Arc<dyn KvStore>,
    pub(crate) locks: MapLocks,
    pub(crate) clock: Clock,
    pub(crate) initial_shards: u32,
    /// Names this process among the gateways sharing the maps (reshard leases, bucket
    /// ids).
    pub(crate) instance: String,
    /// The multipart uploads this process is completing now: a completion marked by this
    /// gateway's name and not in here was begun by an earlier run of it, which died.
    pub(crate) completing: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The bucket records last read, to read a key's map together with its bucket record,
    /// or instead of it right after a read.
    pub(crate) seen: SeenRecords,
    /// The reshard switches this process runs, which its held-off writers wait out.
    pub(crate) switches: Switches,
    /// This process's writes waiting to reserve room in buckets with a quota.
    pub(crate) rounds: Arc<Rounds>,
    /// Buckets this process's writes found with a shard past the reshard threshold.
    pub(crate) crowded: Crowded,
    /// This process's intents for the object data it is writing.
    pub(crate) intents: Arc<IntentLog>,
    /// Where this process's replays of reshard logs have got to.
    pub(crate) log_places: LogPlaces,
}

impl Index {
    /// The index of a backend only this process uses (the local backend, which locks its
    /// directory): a restarted process takes over its own reshards at once.
    pub fn new(kv: Arc<dyn KvStore>, initial_shards: u32) -> Self {
        Self::shared(kv, initial_shards, "local".to_owned())
    }

    /// The index of a backend several gateways share; `instance` names this gateway
    /// among them, the same across its restarts and different from every other gateway
    /// running at the same time (e.g. host and port): a restarted gateway takes over at
    /// once what it left half done (its reshard lease, its uploads' completions).
    pub fn shared(kv: Arc<dyn KvStore>, initial_shards: u32, instance: String) -> Self {
        Index {
            intents: IntentLog::new(kv.clone(), &instance),
            kv,
            locks: MapLocks::default(),
            clock: Clock::default(),
            initial_shards: initial_shards.max(1),
            instance,
            completing: Default::default(),
            seen: SeenRecords::default(),
            switches: Switches::default(),
            rounds: Arc::default(),
            crowded: Crowded::default(),
            log_places: LogPlaces::default(),
        }
    }

    /// Makes every index change made so far durable.
    pub async fn sync(&self) -> Result<()> {
        Ok(self.kv.sync().await?)
    }

    /// Whether the storage answers: one read of the bucket list's map.
    pub async fn probe(&self) -> Result<()> {
        self.kv.get(crate::model::BUCKETS, b"\0probe").await?;
        Ok(())
    }

    /// Lets the storage refresh its picture of the cluster after a probe failed (see
    /// [`kura_backend::KvStore::catch_up`]).
    pub async fn catch_up(&self) -> Result<()> {
        Ok(self.kv.catch_up().await?)
    }

    /// The current time in milliseconds, as stamped on new records.
    pub fn now_ms(&self) -> u64 {
        unix_ms()
    }
}

/// Runs `work` in a task of its own, to its end even when the caller stops waiting (a
/// client that hangs up drops its request): work of several writes, cut off between two,
/// would leave records half changed for a later request to settle.
pub(crate) async fn to_the_end<T, E>(
    work: impl Future<Output = std::result::Result<T, E>> + Send + 'static,
) -> std::result::Result<T, E>
where
    T: Send + 'static,
    E: From<IndexError> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(done) => done,
        Err(stopped) => match stopped.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // The runtime is shutting down.
            Err(_) => Err(IndexError::Busy.into()),
        },
    }
}
