#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket already exists")]
    BucketExists { owner: String },
    #[error("bucket not empty")]
    BucketNotEmpty,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("a reshard of this bucket is already under way")]
    ReshardInProgress,
    #[error("quota exceeded")]
    QuotaExceeded,
    /// Object Lock keeps the version (the reason).
    #[error("object locked: {0}")]
    ObjectLocked(&'static str),
    /// A conditional delete's condition does not hold for the version it would delete.
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("no such user")]
    NoSuchUser,
    #[error("user already exists")]
    UserExists,
    #[error("user owns buckets")]
    UserNotEmpty,
    #[error("no such access key")]
    NoSuchAccessKey,
    #[error("access key already exists")]
    KeyExists,
    /// A write kept losing races (or waiting for a reshard's switch) past its deadline.
    #[error("the index is busy: try again")]
    Busy,
    #[error("the index was written in format {0}, which this Kura does not know: run a newer one")]
    Format(String),
    #[error("storage: {0}")]
    Backend(#[from] kura_backend::BackendError),
    #[error("corrupt index record: {0}")]
    Decode(#[from] serde_json::Error),
}

pub type Result<T> = std::result::Result<T, IndexError>;
