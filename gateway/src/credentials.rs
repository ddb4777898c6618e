//! The root credentials and the SSE-S3 master key: taken from the environment (or, for
//! the key, a file such as a mounted Secret), or generated once and kept in the data
//! directory (readable by its owner only).

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

pub const ROOT_ACCESS_KEY_ENV: &str = "KURA_ROOT_ACCESS_KEY";
pub const ROOT_SECRET_KEY_ENV: &str = "KURA_ROOT_SECRET_KEY";
const FILE: &str = "root-credentials.json";

#[derive(Clone, Serialize, Deserialize)]
pub struct RootCredentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCredentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Where the root credentials came from, which decides what start-up prints.
pub enum Origin {
    Environment,
    Generated,
    Stored,
}

impl RootCredentials {
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<(Self, Origin)> {
        if let (Ok(access_key), Ok(secret_key)) = (
            std::env::var(ROOT_ACCESS_KEY_ENV),
            std::env::var(ROOT_SECRET_KEY_ENV),
        ) {
            return Ok((
                RootCredentials {
                    access_key,
                    secret_key,
                },
                Origin::Environment,
            ));
        }
        let path = data_dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Ok((serde_json::from_slice(&bytes)?, Origin::Stored)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let creds = RootCredentials::generate();
                write_private(&path, &serde_json::to_vec_pretty(&creds)?)?;
                Ok((creds, Origin::Generated))
            }
            Err(e) => Err(e),
        }
    }

    fn generate() -> Self {
        RootCredentials {
            access_key: random_string(ACCESS_CHARS, 20, "KURA"),
            secret_key: random_string(SECRET_CHARS, 40, ""),
        }
    }
}

pub const MASTER_KEY_ENV: &str = "KURA_SSE_MASTER_KEY";
const MASTER_KEY_FILE: &str = "sse-master-key";

/// The 32-byte master key of SSE-S3, base64 in `KURA_SSE_MASTER_KEY`, else in `file`, else
/// in the data directory (generated there on first start). Losing it loses every SSE-S3
/// object: back it up with the data, or better, supply it from outside the data.
pub fn load_or_create_master_key(
    data_dir: &Path,
    file: Option<&Path>,
) -> std::io::Result<[u8; 32]> {
    use base64::Engine;
    let decode = |text: &str, from: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "{from}: the SSE master key must be 32 bytes in base64"
                ))
            })
    };
    if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
        return decode(&text, MASTER_KEY_ENV);
    }
    if let Some(file) = file {
        return decode(&std::fs::read_to_string(file)?, &file.display().to_string());
    }
    let path = data_dir.join(MASTER_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode(&text, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill(&mut key);
            let text = base64::engine::general_purpose::STANDARD.encode(key);
            write_private(&path, text.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

pub const ACCESS_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `prefix` followed by random characters from `set`, `len` characters in all.
pub fn random_string(set: &[u8], len: usize, prefix: &str) -> String {
    let mut rng = rand::rngs::OsRng;
    let tail: String = (prefix.len()..len)
        .map(|_| set[rng.gen_range(0..set.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}
