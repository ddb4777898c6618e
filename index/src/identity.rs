//! Users and their access keys. Secrets are stored sealed by the gateway; the
//! index only keeps the bytes it is given.

use crate::model::{BucketRecord, KEYS, USERS, decode, encode};
use crate::shard::Retry;
use crate::{Index, IndexError, Result};
use kura_backend::{MAX_WRITE_CHANGES, Write};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub created_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub access_key: String,
    pub user: String,
    /// The secret as the gateway sealed it.
    pub sealed_secret: String,
    pub created_ms: u64,
    pub revoked_ms: Option<u64>,
}

impl KeyRecord {
    pub fn is_active(&self) -> bool {
        self.revoked_ms.is_none()
    }
}

impl Index {
    pub async fn create_user(&self, name: &str) -> Result<UserRecord> {
        let user = UserRecord {
            name: name.to_owned(),
            created_ms: self.now_ms(),
        };
        let mut write = Write::default();
        write
            .expect(name.as_bytes(), None)
            .put(name.as_bytes(), encode(&user));
        if !self.kv.write(USERS, write).await?.applied() {
            return Err(IndexError::UserExists);
        }
        self.sync().await?;
        Ok(user)
    }

    pub async fn user(&self, name: &str) -> Result<UserRecord> {
        self.kv
            .get(USERS, name.as_bytes())
            .await?
            .map(|b| decode(&b))
            .transpose()?
            .ok_or(IndexError::NoSuchUser)
    }

    pub async fn list_users(&self) -> Result<Vec<UserRecord>> {
        self.read_all(USERS)
            .await?
            .iter()
            .map(|(_, value)| decode(value))
            .collect()
    }

    /// Buckets owned by `user`, in name order.
    pub async fn user_buckets(&self, user: &str) -> Result<Vec<BucketRecord>> {
        Ok(self
            .list_buckets()
            .await?
            .into_iter()
            .filter(|b| b.owner == user)
            .collect())
    }

    /// Deletes a user who owns no bucket, with every key and bucket grant of theirs.
    pub async fn delete_user(&self, name: &str) -> Result<()> {
        self.user(name).await?;
        let buckets = self.list_buckets().await?;
        if buckets.iter().any(|b| b.owner == name) {
            return Err(IndexError::UserNotEmpty);
        }
        // A later user of the same name must not inherit access.
        for bucket in buckets
            .iter()
            .filter(|b| b.grants.iter().any(|u| u == name))
        {
            match self
                .change_bucket(&bucket.name, |record| {
                    let before = record.grants.len();
                    record.grants.retain(|u| u != name);
                    Ok::<_, IndexError>(record.grants.len() != before)
                })
                .await
            {
                Ok(_) | Err(IndexError::NoSuchBucket) => {}
                Err(err) => return Err(err),
            }
        }
        for chunk in self.user_keys(name).await?.chunks(MAX_WRITE_CHANGES) {
            let mut keys = Write::default();
            for key in chunk {
                keys.delete(key.access_key.as_bytes());
            }
            let _ = self.kv.write(KEYS, keys).await?;
        }
        let mut user = Write::default();
        user.delete(name.as_bytes());
        let _ = self.kv.write(USERS, user).await?;
        self.sync().await
    }

    pub async fn create_key(
        &self,
        user: &str,
        access_key: &str,
        sealed_secret: String,
    ) -> Result<KeyRecord> {
        self.user(user).await?;
        let key = KeyRecord {
            access_key: access_key.to_owned(),
            user: user.to_owned(),
            sealed_secret,
            created_ms: self.now_ms(),
            revoked_ms: None,
        };
        let mut write = Write::default();
        write
            .expect(access_key.as_bytes(), None)
            .put(access_key.as_bytes(), encode(&key));
        if !self.kv.write(KEYS, write).await?.applied() {
            return Err(IndexError::KeyExists);
        }
        self.sync().await?;
        Ok(key)
    }

    pub async fn key(&self, access_key: &str) -> Result<Option<KeyRecord>> {
        self.kv
            .get(KEYS, access_key.as_bytes())
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    pub async fn user_keys(&self, user: &str) -> Result<Vec<KeyRecord>> {
        let mut keys = Vec::new();
        for (_, value) in self.read_all(KEYS).await? {
            let key: KeyRecord = decode(&value)?;
            if key.user == user {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// Revokes a key: from the moment this returns, it authenticates nothing.
    pub async fn revoke_key(&self, access_key: &str) -> Result<KeyRecord> {
        let mut retry = Retry::new();
        loop {
            retry.pause().await?;
            let raw = self
                .kv
                .get(KEYS, access_key.as_bytes())
                .await?
                .ok_or(IndexError::NoSuchAccessKey)?;
            let mut key: KeyRecord = decode(&raw)?;
            if key.revoked_ms.is_some() {
                return Ok(key);
            }
            key.revoked_ms = Some(self.now_ms());
            let mut write = Write::default();
            write
                .expect(access_key.as_bytes(), Some(raw))
                .put(access_key.as_bytes(), encode(&key));
            if self.kv.write(KEYS, write).await?.applied() {
                self.sync().await?;
                return Ok(key);
            }
        }
    }
}
