#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("not found")]
    NotFound,
    #[error("checksum mismatch in {0}")]
    Corrupt(String),
    /// The storage cannot serve right now (a cluster without quorum or with inactive
    /// placement groups); retrying later may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("key-value store error: {0}")]
    Kv(String),
}

pub type Result<T> = std::result::Result<T, BackendError>;
