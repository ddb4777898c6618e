//! Background work behind one small trait ([`Worker`]) and one [`Runner`] that owns its
//! threads, stop signal and metrics: garbage collection, online resharding and lifecycle
//! rules today; scrubbing plugs in the same way.

mod gc;
mod lifecycle;
mod reshard;
mod runner;
mod worker;

pub use gc::GcWorker;
pub use lifecycle::LifecycleWorker;
pub use reshard::{MAX_SHARDS, ReshardPolicy, ReshardWorker};
pub use runner::{ERROR_PAUSE, Runner, WorkerStatus, Workers};
pub use worker::{Progress, Worker};
