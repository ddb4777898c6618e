//! The S3 API's operations, one module per group, and what they share: the request, the
//! response helpers, streaming into blobs, metadata, conditions.

mod acl;
mod attributes;
mod bucket;
mod conditions;
mod copy;
mod cors;
mod delete;
mod dispatch;
mod encryption;
mod get;
mod lifecycle;
mod list;
mod logging;
mod meta;
mod multipart;
mod object_lock;
mod ownership;
mod policy;
mod post;
mod public_access;
mod put;
mod request;
mod response;
mod store;
mod tagging;
mod versioning;

pub use dispatch::run;
pub use logging::deliver as deliver_access_log;
pub use request::S3Request;
pub use response::S3Response;
