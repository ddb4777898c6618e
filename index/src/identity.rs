//! Users and their access keys. Secrets are stored sealed by the gateway; the
//! index only keeps the bytes it is given.

use crate::model::{BUCKETS, BucketRecord, KEYS, USERS, decode, encode};
use crate::{Index, IndexError, Result};
use kura_backend::Batch;
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
        let user = {
            let _guard = self.locks.buckets();
            if self.kv.get(USERS, name.as_bytes())?.is_some() {
                return Err(IndexError::UserExists);
            }
            let user = UserRecord {
                name: name.to_owned(),
                created_ms: self.now_ms(),
            };
            let mut batch = Batch::default();
            batch.put(USERS, name.as_bytes(), encode(&user));
            self.kv.apply(batch)?;
            user
        };
        self.sync().await?;
        Ok(user)
    }

    pub fn user(&self, name: &str) -> Result<UserRecord> {
        self.kv
            .get(USERS, name.as_bytes())?
            .map(|b| decode(&b))
            .transpose()?
            .ok_or(IndexError::NoSuchUser)
    }

    pub fn list_users(&self) -> Result<Vec<UserRecord>> {
        self.kv
            .scan(USERS, b"")?
            .map(|item| decode(&item?.1))
            .collect()
    }

    /// Buckets owned by `user`, in name order.
    pub fn user_buckets(&self, user: &str) -> Result<Vec<BucketRecord>> {
        Ok(self
            .list_buckets()?
            .into_iter()
            .filter(|b| b.owner == user)
            .collect())
    }

    /// Deletes a user who owns no bucket, with every key and bucket grant of theirs.
    pub async fn delete_user(&self, name: &str) -> Result<()> {
        {
            let _guard = self.locks.buckets();
            self.user(name)?;
            let mut batch = Batch::default();
            for item in self.kv.scan(BUCKETS, b"")? {
                let (_, value) = item?;
                let mut bucket: BucketRecord = decode(&value)?;
                if bucket.owner == name {
                    return Err(IndexError::UserNotEmpty);
                }
                // A later user of the same name must not inherit access.
                if bucket.grants.iter().any(|u| u == name) {
                    bucket.grants.retain(|u| u != name);
                    batch.put(BUCKETS, bucket.name.as_bytes(), encode(&bucket));
                }
            }
            for key in self.user_keys(name)? {
                batch.delete(KEYS, key.access_key.as_bytes());
            }
            batch.delete(USERS, name.as_bytes());
            self.kv.apply(batch)?;
        }
        self.sync().await
    }

    pub async fn create_key(
        &self,
        user: &str,
        access_key: &str,
        sealed_secret: String,
    ) -> Result<KeyRecord> {
        let key = {
            let _guard = self.locks.buckets();
            self.user(user)?;
            let key = KeyRecord {
                access_key: access_key.to_owned(),
                user: user.to_owned(),
                sealed_secret,
                created_ms: self.now_ms(),
                revoked_ms: None,
            };
            let mut batch = Batch::default();
            batch.put(KEYS, access_key.as_bytes(), encode(&key));
            self.kv.apply(batch)?;
            key
        };
        self.sync().await?;
        Ok(key)
    }

    pub fn key(&self, access_key: &str) -> Result<Option<KeyRecord>> {
        self.kv
            .get(KEYS, access_key.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    pub fn user_keys(&self, user: &str) -> Result<Vec<KeyRecord>> {
        let mut keys = Vec::new();
        for item in self.kv.scan(KEYS, b"")? {
            let key: KeyRecord = decode(&item?.1)?;
            if key.user == user {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// Revokes a key: from the moment this returns, it authenticates nothing.
    pub async fn revoke_key(&self, access_key: &str) -> Result<KeyRecord> {
        let key = {
            let _guard = self.locks.buckets();
            let mut key = self.key(access_key)?.ok_or(IndexError::NoSuchAccessKey)?;
            if key.revoked_ms.is_none() {
                key.revoked_ms = Some(self.now_ms());
                let mut batch = Batch::default();
                batch.put(KEYS, access_key.as_bytes(), encode(&key));
                self.kv.apply(batch)?;
            }
            key
        };
        self.sync().await?;
        Ok(key)
    }
}
