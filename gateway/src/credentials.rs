//! The root credentials and the SSE-S3 master key: taken from the environment (or, for
//! the key, a file such as a mounted Secret), or generated once and kept where every
//! gateway finds them: the data directory (readable by its owner only) on one machine,
//! the cluster with RADOS.

use kura_index::Index;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// Where generated secrets are kept.
#[derive(Clone, Copy)]
pub enum SecretHome<'a> {
    /// Files in the data directory, readable by their owner only.
    DataDir(&'a Path),
    /// The cluster's shared settings, so that every gateway uses the same.
    Cluster(&'a Index),
}

impl SecretHome<'_> {
    /// The stored secret `name`, or the one `generate` makes, stored first (true).
    async fn load_or_store(
        self,
        name: &str,
        generate: impl FnOnce() -> Vec<u8>,
    ) -> std::io::Result<(Vec<u8>, bool)> {
        match self {
            SecretHome::DataDir(dir) => {
                let path = dir.join(name);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok((bytes, false)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let bytes = generate();
                        write_private(&path, &bytes)?;
                        Ok((bytes, true))
                    }
                    Err(e) => Err(e),
                }
            }
            SecretHome::Cluster(index) => index
                .setting_or_init(name, generate())
                .await
                .map_err(std::io::Error::other),
        }
    }

    /// Where a secret called `name` is, for messages.
    pub fn describe(self, name: &str) -> String {
        match self {
            SecretHome::DataDir(dir) => dir.join(name).display().to_string(),
            SecretHome::Cluster(_) => format!("the cluster's setting {name}"),
        }
    }
}

pub const ROOT_ACCESS_KEY_ENV: &str = "KURA_ROOT_ACCESS_KEY";
pub const ROOT_SECRET_KEY_ENV: &str = "KURA_ROOT_SECRET_KEY";
/// The name the generated root credentials are kept under.
pub const ROOT_FILE: &str = "root-credentials.json";

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
    pub async fn load_or_create(home: SecretHome<'_>) -> std::io::Result<(Self, Origin)> {
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
        let generate = || {
            serde_json::to_vec_pretty(&RootCredentials::generate()).expect("credentials serialise")
        };
        let (bytes, generated) = home.load_or_store(ROOT_FILE, generate).await?;
        let origin = if generated {
            Origin::Generated
        } else {
            Origin::Stored
        };
        Ok((serde_json::from_slice(&bytes)?, origin))
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
/// in `home` (generated there on first start). Losing it loses every SSE-S3 object: back
/// it up with the data, or better, supply it from outside the data.
pub async fn load_or_create_master_key(
    home: SecretHome<'_>,
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
    let generate = || {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill(&mut key);
        base64::engine::general_purpose::STANDARD
            .encode(key)
            .into_bytes()
    };
    let (text, _) = home.load_or_store(MASTER_KEY_FILE, generate).await?;
    decode(
        &String::from_utf8_lossy(&text),
        &home.describe(MASTER_KEY_FILE),
    )
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
