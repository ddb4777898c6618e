//! Who a request's access key belongs to, and its secret.
//!
//! The root key comes from the configuration. Other keys live in the index
//! with their secret sealed: XORed with an HMAC-SHA256 keystream derived from
//! the root secret and the access key, plus a tag. A copy of the data
//! directory alone therefore does not reveal them, as long as the root secret
//! is supplied from outside it (`KURA_ROOT_SECRET_KEY`). Changing the root
//! secret makes existing keys unusable (they must be re-created).

use crate::auth::KeyOwner;
use crate::credentials::{ACCESS_CHARS, RootCredentials, SECRET_CHARS, random_string};
use hmac::{Hmac, Mac};
use kura_index::Index;
use sha2::Sha256;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The administrator's user name.
pub const ROOT_USER: &str = "root";
const TAG_LEN: usize = 16;

pub struct Identities {
    index: Arc<Index>,
    root: RootCredentials,
}

/// A freshly made key pair, shown to its owner once.
pub struct NewKey {
    pub access_key: String,
    pub secret_key: String,
}

impl Identities {
    pub fn new(index: Arc<Index>, root: RootCredentials) -> Self {
        Identities { index, root }
    }

    /// Makes a key pair for `user` and stores it sealed.
    pub async fn create_key(
        &self,
        user: &str,
    ) -> kura_index::Result<(kura_index::KeyRecord, NewKey)> {
        let new = NewKey {
            access_key: random_string(ACCESS_CHARS, 20, "KURA"),
            secret_key: random_string(SECRET_CHARS, 40, ""),
        };
        let sealed = self.seal(&new.access_key, &new.secret_key);
        let record = self.index.create_key(user, &new.access_key, sealed).await?;
        Ok((record, new))
    }

    fn keystream(&self, access_key: &str, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 32);
        let mut block = 0u8;
        while out.len() < len {
            out.extend_from_slice(&self.mac(&[b"kura-seal\0", access_key.as_bytes(), &[block]]));
            block = block.wrapping_add(1);
        }
        out.truncate(len);
        out
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.root.secret_key.as_bytes())
            .expect("HMAC takes any key");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn seal(&self, access_key: &str, secret: &str) -> String {
        let stream = self.keystream(access_key, secret.len());
        let sealed: Vec<u8> = secret.bytes().zip(stream).map(|(a, b)| a ^ b).collect();
        let tag = self.mac(&[b"kura-seal-tag\0", access_key.as_bytes(), &sealed]);
        hex::encode([&sealed[..], &tag[..TAG_LEN]].concat())
    }

    fn unseal(&self, access_key: &str, sealed: &str) -> Option<String> {
        let bytes = hex::decode(sealed).ok()?;
        let (cipher, tag) = bytes.split_at(bytes.len().checked_sub(TAG_LEN)?);
        let expected = self.mac(&[b"kura-seal-tag\0", access_key.as_bytes(), cipher]);
        if !bool::from(expected[..TAG_LEN].ct_eq(tag)) {
            tracing::warn!(
                access_key,
                "a stored key's secret does not unseal: was the root secret changed?"
            );
            return None;
        }
        let stream = self.keystream(access_key, cipher.len());
        String::from_utf8(cipher.iter().zip(stream).map(|(a, b)| a ^ b).collect()).ok()
    }
}

impl Identities {
    /// An access key's secret and user, or None if the key is unknown or revoked. Read from
    /// the index every time, so a key revoked through any gateway is refused by all at once.
    pub async fn lookup(&self, access_key: &str) -> kura_index::Result<Option<KeyOwner>> {
        if access_key == self.root.access_key {
            return Ok(Some(KeyOwner {
                secret: self.root.secret_key.clone(),
                user: ROOT_USER.to_owned(),
            }));
        }
        let Some(key) = self.index.key(access_key).await?.filter(|k| k.is_active()) else {
            return Ok(None);
        };
        Ok(self
            .unseal(access_key, &key.sealed_secret)
            .map(|secret| KeyOwner {
                secret,
                user: key.user,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identities(dir: &std::path::Path, secret: &str) -> Identities {
        let backend = Arc::new(kura_backend::LocalBackend::open(dir).unwrap());
        let root = RootCredentials {
            access_key: "ROOT".into(),
            secret_key: secret.into(),
        };
        Identities::new(Arc::new(Index::new(backend, 1)), root)
    }

    #[test]
    fn sealed_secrets_round_trip_only_with_the_root_secret() {
        let dir = tempfile::tempdir().unwrap();
        let ids = identities(dir.path(), "root-secret");
        let sealed = ids.seal("KURAKEY", "the-secret-key-of-forty-characters-long!");
        assert!(
            !sealed.contains(&hex::encode("the-secret")),
            "the secret must not be stored in clear"
        );
        assert_eq!(
            ids.unseal("KURAKEY", &sealed).as_deref(),
            Some("the-secret-key-of-forty-characters-long!")
        );
        assert_eq!(
            ids.unseal("OTHERKEY", &sealed),
            None,
            "a sealed secret is bound to its access key"
        );
        drop(ids);
        let other = identities(dir.path(), "another-root-secret");
        assert_eq!(other.unseal("KURAKEY", &sealed), None);
    }

    #[tokio::test]
    async fn revoked_keys_stop_authenticating() {
        let dir = tempfile::tempdir().unwrap();
        let ids = identities(dir.path(), "root-secret");
        let root = ids.lookup("ROOT").await.unwrap().unwrap();
        assert_eq!(
            (root.secret.as_str(), root.user.as_str()),
            ("root-secret", ROOT_USER)
        );
        ids.index.create_user("alice").await.unwrap();
        let (_, key) = ids.create_key("alice").await.unwrap();
        assert_eq!(key.access_key.len(), 20);
        assert_eq!(
            ids.lookup(&key.access_key).await.unwrap(),
            Some(KeyOwner {
                secret: key.secret_key.clone(),
                user: "alice".to_owned()
            })
        );
        ids.index.revoke_key(&key.access_key).await.unwrap();
        assert_eq!(ids.lookup(&key.access_key).await.unwrap(), None);
    }
}
