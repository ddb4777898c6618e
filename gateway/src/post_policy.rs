//! The policy document of a browser POST upload: its expiration and the conditions every
//! form field must meet (`eq`, `starts-with`, `content-length-range`, `{"field": "value"}`),
//! as AWS checks them before it stores anything.

use crate::error::{ErrorCode, S3Error, S3Result};
use base64::Engine;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Eq { field: String, value: String },
    StartsWith { field: String, prefix: String },
    LengthRange { min: u64, max: u64 },
}

#[derive(Debug, Clone)]
pub struct PostPolicy {
    expiration: OffsetDateTime,
    rules: Vec<(Rule, String)>,
}

fn invalid(message: &str) -> S3Error {
    S3Error::new(
        ErrorCode::InvalidPolicyDocument,
        format!("Invalid Policy: {message}"),
    )
}

fn denied(message: &str) -> S3Error {
    S3Error::new(
        ErrorCode::AccessDenied,
        format!("Invalid according to Policy: {message}"),
    )
}

/// Fields no condition needs to name: the file, the signature and its policy, and what
/// AWS tells clients to ignore.
fn exempt(field: &str) -> bool {
    matches!(
        field,
        "file" | "policy" | "x-amz-signature" | "signature" | "awsaccesskeyid"
    ) || field.starts_with("x-ignore-")
}

impl PostPolicy {
    /// Parses the form's `policy` field (base64 of a JSON document).
    pub fn parse(encoded: &str) -> S3Result<PostPolicy> {
        let engine = base64::engine::general_purpose::STANDARD;
        let json = engine
            .decode(encoded.trim())
            .map_err(|_| invalid("Policy is not base64 encoded."))?;
        let doc: Value = serde_json::from_slice(&json).map_err(|_| invalid("Invalid JSON."))?;
        let expiration = doc
            .get("expiration")
            .and_then(Value::as_str)
            // ISO 8601 as S3 reads it: RFC 3339 without the space it allows for a `T`.
            .filter(|e| e.as_bytes().get(10) == Some(&b'T'))
            .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok())
            .ok_or_else(|| invalid("Invalid 'expiration' value."))?;
        let conditions = doc
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("Invalid 'conditions' value."))?;
        let rules = conditions
            .iter()
            .map(|c| rule(c).map(|r| (r, c.to_string())))
            .collect::<S3Result<_>>()?;
        Ok(PostPolicy { expiration, rules })
    }

    /// Checks the form (fields with lower-case names, the bucket among them as `bucket`)
    /// against the policy at `now`: AccessDenied saying which condition failed, or which
    /// field no condition covers.
    pub fn check(&self, now: OffsetDateTime, fields: &[(String, String)]) -> S3Result<()> {
        if now > self.expiration {
            return Err(denied("Policy expired."));
        }
        let value = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        for (rule, text) in &self.rules {
            let holds = match rule {
                Rule::Eq { field, value: v } => value(field).unwrap_or_default() == v,
                Rule::StartsWith { field, prefix } => value(field)
                    .unwrap_or_default()
                    .starts_with(prefix.as_str()),
                Rule::LengthRange { .. } => true,
            };
            if !holds {
                return Err(denied(&format!("Policy Condition failed: {text}")));
            }
        }
        let named = |field: &str| {
            self.rules.iter().any(|(rule, _)| match rule {
                Rule::Eq { field: f, .. } | Rule::StartsWith { field: f, .. } => f == field,
                Rule::LengthRange { .. } => false,
            })
        };
        if let Some((extra, _)) = fields
            .iter()
            .find(|(name, _)| name != "bucket" && !exempt(name) && !named(name))
        {
            return Err(denied(&format!("Extra input fields: {extra}")));
        }
        Ok(())
    }

    /// The `content-length-range` the file must be in, if the policy sets one.
    pub fn length_range(&self) -> Option<(u64, u64)> {
        self.rules.iter().find_map(|(rule, _)| match rule {
            Rule::LengthRange { min, max } => Some((*min, *max)),
            _ => None,
        })
    }
}

fn rule(condition: &Value) -> S3Result<Rule> {
    let field = |name: &str| name.trim_start_matches('$').to_ascii_lowercase();
    match condition {
        Value::Object(map) if map.len() == 1 => {
            let Some((name, value)) = map.iter().next() else {
                return Err(invalid("Empty condition."));
            };
            let value = value
                .as_str()
                .ok_or_else(|| invalid("Condition values must be strings."))?;
            Ok(Rule::Eq {
                field: field(name),
                value: value.to_owned(),
            })
        }
        Value::Array(items) => {
            let op = items.first().and_then(Value::as_str).unwrap_or_default();
            match (op.to_ascii_lowercase().as_str(), items.len()) {
                ("eq" | "starts-with", 3) => {
                    let (Some(name), Some(value)) = (items[1].as_str(), items[2].as_str()) else {
                        return Err(invalid("Condition values must be strings."));
                    };
                    if !name.starts_with('$') {
                        return Err(invalid("Condition field names must start with '$'."));
                    }
                    let (field, value) = (field(name), value.to_owned());
                    Ok(if op.eq_ignore_ascii_case("eq") {
                        Rule::Eq { field, value }
                    } else {
                        Rule::StartsWith {
                            field,
                            prefix: value,
                        }
                    })
                }
                ("content-length-range", 3) => {
                    let bound = |v: &Value| {
                        v.as_u64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    };
                    match (bound(&items[1]), bound(&items[2])) {
                        (Some(min), Some(max)) if min <= max => Ok(Rule::LengthRange { min, max }),
                        _ => Err(invalid("Invalid content-length-range.")),
                    }
                }
                _ => Err(invalid(&format!("Invalid condition {condition}."))),
            }
        }
        _ => Err(invalid("Each condition must be an object or an array.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(doc: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(doc)
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn conditions_expiry_and_extra_fields() {
        let policy = PostPolicy::parse(&encode(
            r#"{"expiration":"2030-01-01T00:00:00.000Z","conditions":[
                {"bucket":"b"},["starts-with","$key","up/"],{"acl":"public-read"},
                ["content-length-range",1,1024],["eq","$Content-Type","text/plain"]]}"#,
        ))
        .unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let good = fields(&[
            ("bucket", "b"),
            ("key", "up/x"),
            ("acl", "public-read"),
            ("content-type", "text/plain"),
            ("policy", "…"),
            ("x-ignore-me", "1"),
        ]);
        policy.check(now, &good).unwrap();
        assert_eq!(policy.length_range(), Some((1, 1024)));
        let mut wrong_key = good.clone();
        wrong_key[1].1 = "down/x".into();
        let err = policy.check(now, &wrong_key).unwrap_err();
        assert_eq!(err.code, ErrorCode::AccessDenied);
        assert!(
            err.message.contains("Policy Condition failed"),
            "{}",
            err.message
        );
        let mut extra = good.clone();
        extra.push(("x-amz-meta-color".into(), "red".into()));
        let err = policy.check(now, &extra).unwrap_err();
        assert!(err.message.contains("Extra input fields: x-amz-meta-color"));
        let later = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        assert!(
            policy
                .check(later, &good)
                .unwrap_err()
                .message
                .contains("Policy expired")
        );
    }

    #[test]
    fn malformed_documents() {
        for doc in [
            "not base64!",
            &encode("{"),
            &encode(r#"{"conditions":[]}"#),
            &encode(r#"{"expiration":"2030-01-01T00:00:00Z"}"#),
            &encode(r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["between","$key"]]}"#),
            &encode(r#"{"expiration":"2030-01-01 00:00:00+00:00","conditions":[]}"#),
            &encode(
                r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",9,1]]}"#,
            ),
        ] {
            assert_eq!(
                PostPolicy::parse(doc).unwrap_err().code,
                ErrorCode::InvalidPolicyDocument,
                "{doc}"
            );
        }
    }
}
