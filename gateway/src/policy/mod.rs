//! Bucket policies: the JSON policy language (Version, Statement with Sid, Effect,
//! Principal / NotPrincipal, Action / NotAction, Resource / NotResource, Condition),
//! checked when a policy is put (MalformedPolicy saying what is wrong) and evaluated for
//! every request on the bucket ([`evaluate`]).

pub mod condition;
pub mod document;
pub mod evaluate;

pub use document::{MAX_POLICY_BYTES, Policy};
pub use evaluate::{Context, Decision, Subject, evaluate};
