//! The admin API calls a claim needs, each idempotent: "already exists" and "already gone"
//! are answers a level-triggered controller expects, not errors.

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use kura_admin_client::{AdminError, Client};

pub struct Kura {
    client: Client,
}

/// A new key's pair, known only at creation.
pub struct NewKey {
    pub access_key: String,
    pub secret_key: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub max_objects: Option<u64>,
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct BucketInfo {
    pub owner: String,
    pub quota: Quota,
    #[serde(default)]
    pub grants: Vec<String>,
    #[serde(default)]
    pub access: BucketAccess,
}

/// Who may reach the bucket, as far as a claim cares: its policy, and whether its public
/// access block keeps a public policy from working.
#[derive(Debug, Default, Deserialize)]
pub struct BucketAccess {
    #[serde(default)]
    pub policy: Option<Value>,
    #[serde(default)]
    pub public_access_block: Option<PublicAccessBlock>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PublicAccessBlock {
    #[serde(default)]
    pub block_public_policy: bool,
    #[serde(default)]
    pub restrict_public_buckets: bool,
}

fn unexpected(what: &str) -> AdminError {
    AdminError::Unexpected {
        url: String::new(),
        status: 200,
        body: format!("the answer has {what}"),
    }
}

fn is_api_error(error: &AdminError, codes: &[&str]) -> bool {
    matches!(error, AdminError::Api { code, .. } if codes.contains(&code.as_str()))
}

fn field(value: &Option<Value>, name: &str) -> Result<String, AdminError> {
    value
        .as_ref()
        .and_then(|v| v[name].as_str())
        .map(str::to_owned)
        .ok_or_else(|| unexpected(&format!("no {name:?}")))
}

impl Kura {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub async fn ensure_user(&self, user: &str) -> Result<(), AdminError> {
        let body = json!({ "name": user });
        match self
            .client
            .call(Method::POST, &["users"], None, Some(&body))
            .await
        {
            Err(e) if is_api_error(&e, &["UserAlreadyExists"]) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Deletes the user and its keys; a user still owning a bucket is kept.
    pub async fn delete_user_if_unused(&self, user: &str) -> Result<(), AdminError> {
        match self
            .client
            .call(Method::DELETE, &["users", user], None, None)
            .await
        {
            Err(e) if is_api_error(&e, &["NoSuchUser", "UserNotEmpty"]) => Ok(()),
            other => other.map(drop),
        }
    }

    /// The bucket's owner, quota and grantees, or None when there is no such bucket.
    pub async fn bucket(&self, bucket: &str) -> Result<Option<BucketInfo>, AdminError> {
        match self
            .client
            .call(Method::GET, &["buckets", bucket], None, None)
            .await
        {
            Ok(answer) => {
                let info = answer
                    .as_ref()
                    .and_then(|v| serde_json::from_value(v.clone()).ok());
                info.map(Some)
                    .ok_or_else(|| unexpected("a bucket without owner or quota"))
            }
            Err(e) if is_api_error(&e, &["NoSuchBucket"]) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the bucket for `owner`; Ok(false) when another user already has it.
    pub async fn ensure_bucket(&self, bucket: &str, owner: &str) -> Result<bool, AdminError> {
        let body = json!({ "name": bucket, "owner": owner });
        match self
            .client
            .call(Method::POST, &["buckets"], None, Some(&body))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_api_error(&e, &["BucketAlreadyExists"]) => {
                Ok(self.bucket(bucket).await?.is_some_and(|b| b.owner == owner))
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes the bucket and everything in it.
    pub async fn purge_bucket(&self, bucket: &str) -> Result<(), AdminError> {
        match self
            .client
            .call(
                Method::DELETE,
                &["buckets", bucket],
                Some("purge=true"),
                None,
            )
            .await
        {
            Err(e) if is_api_error(&e, &["NoSuchBucket"]) => Ok(()),
            other => other.map(drop),
        }
    }

    pub async fn set_quota(&self, bucket: &str, quota: Quota) -> Result<(), AdminError> {
        let body = json!(quota);
        self.client
            .call(
                Method::PUT,
                &["buckets", bucket, "quota"],
                None,
                Some(&body),
            )
            .await
            .map(drop)
    }

    /// Lets `user` use a bucket another user owns (a brownfield claim).
    pub async fn grant(&self, bucket: &str, user: &str) -> Result<(), AdminError> {
        self.client
            .call(
                Method::PUT,
                &["buckets", bucket, "grants", user],
                None,
                None,
            )
            .await
            .map(drop)
    }

    /// Sets the bucket's policy, or removes it (None).
    pub async fn set_policy(&self, bucket: &str, policy: Option<&Value>) -> Result<(), AdminError> {
        let method = if policy.is_some() {
            Method::PUT
        } else {
            Method::DELETE
        };
        self.client
            .call(method, &["buckets", bucket, "policy"], None, policy)
            .await
            .map(drop)
    }

    pub async fn revoke_grant(&self, bucket: &str, user: &str) -> Result<(), AdminError> {
        match self
            .client
            .call(
                Method::DELETE,
                &["buckets", bucket, "grants", user],
                None,
                None,
            )
            .await
        {
            Err(e) if is_api_error(&e, &["NoSuchBucket"]) => Ok(()),
            other => other.map(drop),
        }
    }

    /// The user's keys that still work; none for an unknown user.
    pub async fn active_keys(&self, user: &str) -> Result<Vec<String>, AdminError> {
        let answer = match self
            .client
            .call(Method::GET, &["users", user, "keys"], None, None)
            .await
        {
            Err(e) if is_api_error(&e, &["NoSuchUser"]) => return Ok(Vec::new()),
            other => other?,
        };
        let keys = answer
            .as_ref()
            .and_then(|v| v["keys"].as_array())
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(keys
            .iter()
            .filter(|k| k["status"] == "active")
            .filter_map(|k| k["access_key"].as_str().map(str::to_owned))
            .collect())
    }

    pub async fn create_key(&self, user: &str) -> Result<NewKey, AdminError> {
        let answer = self
            .client
            .call(Method::POST, &["users", user, "keys"], None, None)
            .await?;
        Ok(NewKey {
            access_key: field(&answer, "access_key")?,
            secret_key: field(&answer, "secret_key")?,
        })
    }

    pub async fn revoke_key(&self, access_key: &str) -> Result<(), AdminError> {
        match self
            .client
            .call(Method::DELETE, &["keys", access_key], None, None)
            .await
        {
            Err(e) if is_api_error(&e, &["NoSuchKey"]) => Ok(()),
            other => other.map(drop),
        }
    }
}
