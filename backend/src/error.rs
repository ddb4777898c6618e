#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("not found")]
    NotFound,
    #[error("checksum mismatch in {0}")]
    Corrupt(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("key-value store error: {0}")]
    Kv(#[from] sled::Error),
}

pub type Result<T> = std::result::Result<T, BackendError>;
