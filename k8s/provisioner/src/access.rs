//! What a claim's `additionalConfig` asks of who may reach its bucket: `access: read-only`
//! (a claim on an existing bucket whose key may only read and list it) and `publicRead:
//! "true"` (anyone, without credentials, may read the objects of the claim's own bucket).
//! Each is one statement the provisioner keeps in the bucket policy under a Sid of its own,
//! leaving every other statement alone.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// What the claim asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    pub read_only: bool,
    pub public_read: bool,
}

impl Access {
    /// From `additionalConfig`; a value it cannot mean is refused with what is wrong.
    pub fn from_config(config: &BTreeMap<String, Value>) -> Result<Access, String> {
        let text = |name: &str| match config.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_ascii_lowercase())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(format!("{name} {other} is not a string")),
        };
        let read_only = match text("access")?.as_deref() {
            None | Some("read-write") => false,
            Some("read-only") => true,
            Some(other) => {
                return Err(format!(
                    "access {other:?} is neither \"read-write\" nor \"read-only\""
                ));
            }
        };
        let public_read = match text("publicRead")?.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(format!("publicRead {other:?} is neither true nor false")),
        };
        Ok(Access {
            read_only,
            public_read,
        })
    }
}

/// The Sid of the statement that lets a read-only claim's user read a bucket.
pub fn read_only_sid(user: &str) -> String {
    format!("kura-read-only-{user}")
}

/// The Sid of the statement that lets anyone read a claim's bucket.
pub const PUBLIC_READ_SID: &str = "kura-public-read";

pub fn read_only_statement(bucket: &str, user: &str) -> Value {
    json!({
        "Sid": read_only_sid(user),
        "Effect": "Allow",
        "Principal": {"AWS": [format!("arn:aws:iam:::user/{user}")]},
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
    })
}

pub fn public_read_statement(bucket: &str) -> Value {
    json!({
        "Sid": PUBLIC_READ_SID,
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["s3:GetObject"],
        "Resource": [format!("arn:aws:s3:::{bucket}/*")],
    })
}

/// `policy` with the statement named `sid` replaced by `statement`, or removed when it is
/// None; None when no statement is left (the bucket then needs no policy).
pub fn with_statement(
    policy: Option<&Value>,
    sid: &str,
    statement: Option<Value>,
) -> Option<Value> {
    let mut statements: Vec<Value> = match policy.and_then(|p| p.get("Statement")) {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    };
    statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(sid));
    statements.extend(statement);
    if statements.is_empty() {
        return None;
    }
    let mut doc = policy
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    doc.insert("Version".into(), json!("2012-10-17"));
    doc.insert("Statement".into(), Value::Array(statements));
    Some(Value::Object(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values() {
        let config = |pairs: &[(&str, Value)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(Access::from_config(&config(&[])), Ok(Access::default()));
        let both = config(&[("access", json!("Read-Only")), ("publicRead", json!(true))]);
        assert_eq!(
            Access::from_config(&both),
            Ok(Access {
                read_only: true,
                public_read: true
            })
        );
        assert!(Access::from_config(&config(&[("access", json!("write-only"))])).is_err());
        assert!(Access::from_config(&config(&[("publicRead", json!("maybe"))])).is_err());
        assert!(Access::from_config(&config(&[("publicRead", json!(1))])).is_err());
    }

    #[test]
    fn statements_are_kept_apart_from_the_rest_of_the_policy() {
        let theirs =
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "Theirs", "Effect": "Deny"}]});
        let with_ours = with_statement(
            Some(&theirs),
            PUBLIC_READ_SID,
            Some(public_read_statement("b")),
        )
        .unwrap();
        assert_eq!(with_ours["Statement"].as_array().unwrap().len(), 2);
        let again = with_statement(
            Some(&with_ours),
            PUBLIC_READ_SID,
            Some(public_read_statement("b")),
        );
        assert_eq!(again.as_ref(), Some(&with_ours), "idempotent");
        assert_eq!(
            with_statement(Some(&with_ours), PUBLIC_READ_SID, None),
            Some(theirs)
        );
        assert_eq!(with_statement(None, "x", None), None);
        let only_ours = with_statement(
            None,
            &read_only_sid("u"),
            Some(read_only_statement("b", "u")),
        );
        assert_eq!(
            with_statement(only_ours.as_ref(), &read_only_sid("u"), None),
            None
        );
    }
}
