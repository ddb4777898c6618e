//! A policy document: its parts, parsed and checked (MalformedPolicy says what is
//! wrong), and whether it is public.

use super::condition::{self, Cidr, Operator};
use crate::error::{ErrorCode, S3Error, S3Result};
use serde_json::{Map, Value};

/// AWS's limit on a bucket policy's size.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, or (`Not…`) everything but them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns {
    pub negated: bool,
    pub values: Vec<String>,
}

/// Principal / NotPrincipal: `*` (everyone, anonymous included) or Kura users named by
/// ARN (`arn:aws:iam:::user/NAME`), canonical id or name, and services by name (Kura's own
/// deliveries: `logging.s3.amazonaws.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principals {
    pub negated: bool,
    pub everyone: bool,
    pub users: Vec<String>,
    pub services: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Condition {
    pub operator: Operator,
    /// Lower-case: context keys are case-insensitive.
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Principals,
    pub action: Patterns,
    pub resource: Patterns,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

fn malformed(message: impl Into<String>) -> S3Error {
    S3Error::new(ErrorCode::MalformedPolicy, message)
}

impl Policy {
    /// Parses and checks a bucket policy for `bucket`: every resource must be the bucket or
    /// objects in it, every action an S3 action.
    pub fn parse(text: &[u8], bucket: &str) -> S3Result<Policy> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(S3Error::new(
                ErrorCode::PolicyTooLarge,
                format!(
                    "Policy exceeds the maximum allowed document size of {MAX_POLICY_BYTES} bytes."
                ),
            ));
        }
        let value: Value = serde_json::from_slice(text)
            .map_err(|e| malformed(format!("This policy contains invalid Json: {e}")))?;
        let Value::Object(top) = value else {
            return Err(malformed(
                "Policies must be valid JSON and the first byte must be '{'",
            ));
        };
        for field in top.keys() {
            if !matches!(field.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed(format!("Unknown field {field}")));
            }
        }
        match top.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(_) => {
                return Err(malformed(
                    "The policy must contain a valid version string (2012-10-17 or 2008-10-17)",
                ));
            }
        }
        let statements = match top.get("Statement") {
            None => return Err(malformed("Missing required field Statement")),
            Some(Value::Array(list)) if list.is_empty() => {
                return Err(malformed("Could not parse the policy: Statement is empty!"));
            }
            Some(Value::Array(list)) => list.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => {
                return Err(malformed(
                    "Statement must be an object or a list of objects",
                ));
            }
        };
        let statements = statements
            .into_iter()
            .map(|s| match s {
                Value::Object(map) => statement(map, bucket),
                _ => Err(malformed("Each Statement must be an object")),
            })
            .collect::<S3Result<Vec<_>>>()?;
        Ok(Policy { statements })
    }

    /// Whether the policy grants access to the public (AWS's definition, simplified): an
    /// Allow statement for every principal (`*`) without a condition that pins the caller
    /// down (source address range, user id or name).
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.principal.everyone
                && !s.conditions.iter().any(pins_the_caller)
        })
    }
}

fn pins_the_caller(condition: &Condition) -> bool {
    if condition.operator.negated {
        return false;
    }
    match condition.key.as_str() {
        "aws:sourceip" => condition
            .values
            .iter()
            .all(|v| Cidr::parse(v).is_some_and(|c| !c.is_everything())),
        "aws:userid"
        | "aws:username"
        | "aws:sourcearn"
        | "aws:sourceaccount"
        | "aws:sourcevpc"
        | "aws:sourcevpce"
        | "aws:principalaccount"
        | "aws:principalarn" => condition.values.iter().all(|v| !v.contains('*')),
        _ => false,
    }
}

fn statement(map: &Map<String, Value>, bucket: &str) -> S3Result<Statement> {
    for field in map.keys() {
        if !matches!(
            field.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(malformed(format!("Unknown field {field}")));
        }
    }
    let sid = match map.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(malformed("Sid must be a string")),
    };
    let effect = match map.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => return Err(malformed(format!("Invalid effect: {other}"))),
        None => return Err(malformed("Missing required field Effect")),
    };
    let principal = principals(map)?;
    if principal.negated && effect == Effect::Allow {
        // IAM: NotPrincipal must be used with Deny; with Allow it is not supported.
        return Err(malformed("NotPrincipal is supported only with Effect Deny"));
    }
    let action = one_of(map, "Action", "NotAction")?;
    for action in &action.values {
        if !valid_action(action) {
            return Err(malformed("Policy has invalid action"));
        }
    }
    let resource = one_of(map, "Resource", "NotResource")?;
    for resource in &resource.values {
        if !in_bucket(resource, bucket) {
            return Err(malformed("Policy has invalid resource"));
        }
    }
    let conditions = match map.get("Condition") {
        None => Vec::new(),
        Some(Value::Object(block)) => conditions(block)?,
        Some(_) => return Err(malformed("Condition must be an object")),
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

/// A string or a non-empty list of strings.
fn strings(value: &Value, field: &str) -> S3Result<Vec<String>> {
    let list = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Bool(b) => Ok(b.to_string()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(malformed(format!("{field} must hold strings"))),
            })
            .collect::<S3Result<_>>()?,
        // Condition values are often written as bare booleans and numbers.
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        _ => {
            return Err(malformed(format!(
                "{field} must be a string or a list of strings"
            )));
        }
    };
    Ok(list)
}

fn one_of(map: &Map<String, Value>, positive: &str, negative: &str) -> S3Result<Patterns> {
    match (map.get(positive), map.get(negative)) {
        (Some(_), Some(_)) => Err(malformed(format!(
            "A statement cannot have both {positive} and {negative}"
        ))),
        (Some(v), None) => Ok(Patterns {
            negated: false,
            values: strings(v, positive)?,
        }),
        (None, Some(v)) => Ok(Patterns {
            negated: true,
            values: strings(v, negative)?,
        }),
        (None, None) => Err(malformed(format!("Missing required field {positive}"))),
    }
}

fn principals(map: &Map<String, Value>) -> S3Result<Principals> {
    let (negated, value) = match (map.get("Principal"), map.get("NotPrincipal")) {
        (Some(_), Some(_)) => {
            return Err(malformed(
                "A statement cannot have both Principal and NotPrincipal",
            ));
        }
        (Some(v), None) => (false, v),
        (None, Some(v)) => (true, v),
        (None, None) => return Err(malformed("Missing required field Principal")),
    };
    let mut principals = Principals {
        negated,
        everyone: false,
        users: Vec::new(),
        services: Vec::new(),
    };
    match value {
        Value::String(s) if s == "*" => principals.everyone = true,
        Value::Object(kinds) if !kinds.is_empty() => {
            for (kind, ids) in kinds {
                let ids = strings(ids, "Principal")?;
                match kind.as_str() {
                    "AWS" | "CanonicalUser" => {
                        for id in ids {
                            if id == "*" {
                                principals.everyone = true;
                            } else {
                                principals.users.push(id);
                            }
                        }
                    }
                    "Service" => principals.services.extend(ids),
                    // Valid, but no Kura request ever comes from these.
                    "Federated" => {}
                    other => return Err(malformed(format!("Invalid principal type {other}"))),
                }
            }
        }
        _ => return Err(malformed("Invalid principal in policy")),
    }
    Ok(principals)
}

fn conditions(block: &Map<String, Value>) -> S3Result<Vec<Condition>> {
    let mut out = Vec::new();
    for (name, keys) in block {
        let operator = Operator::parse(name)
            .ok_or_else(|| malformed(format!("Invalid Condition type : {name}")))?;
        let Value::Object(keys) = keys else {
            return Err(malformed(format!(
                "The condition {name} must map keys to values"
            )));
        };
        for (key, values) in keys {
            if !key.contains(':') {
                return Err(malformed(format!(
                    "Policy has an invalid condition key: {key}"
                )));
            }
            let values = strings(values, "Condition")?;
            for value in &values {
                operator
                    .check_value(value)
                    .map_err(|why| malformed(format!("{why} {name} on {key}")))?;
            }
            out.push(Condition {
                operator,
                key: key.to_ascii_lowercase(),
                values,
            });
        }
    }
    Ok(out)
}

/// An S3 action pattern (`s3:GetObject`, `s3:Get*`, `*`).
fn valid_action(action: &str) -> bool {
    if action == "*" {
        return true;
    }
    let Some((service, name)) = action.split_once(':') else {
        return false;
    };
    service.eq_ignore_ascii_case("s3")
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
}

/// Whether a resource pattern names this bucket or objects in it.
fn in_bucket(resource: &str, bucket: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let Some(rest) = resource.strip_prefix("arn:aws:s3:::") else {
        return false;
    };
    let named = rest.split('/').next().unwrap_or_default();
    condition::glob(named, bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> (ErrorCode, String) {
        let err = Policy::parse(text.as_bytes(), "b").unwrap_err();
        (err.code, err.message)
    }

    #[test]
    fn malformed_policies_say_what_is_wrong() {
        let cases = [
            ("not json", "invalid Json"),
            ("[1]", "first byte"),
            (
                r#"{"Version":"2012-10-17"}"#,
                "Missing required field Statement",
            ),
            (r#"{"Version":"1999","Statement":[]}"#, "valid version"),
            (
                r#"{"Statement":{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
                "Invalid effect",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
                "Missing required field Principal",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Resource":"arn:aws:s3:::b/*"}}"#,
                "Missing required field Action",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
                "only with Effect Deny",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"ec2:Run","Resource":"arn:aws:s3:::b/*"}}"#,
                "invalid action",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}}"#,
                "invalid resource",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"StringSortOf":{"s3:prefix":"a"}}}}"#,
                "Invalid Condition type",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:SourceIp":"not-an-ip"}}}}"#,
                "Invalid value",
            ),
        ];
        for (text, says) in cases {
            let (code, message) = code(text);
            assert_eq!(code, ErrorCode::MalformedPolicy, "{text}");
            assert!(message.contains(says), "{text}: {message}");
        }
        let big = format!(
            r#"{{"Statement":{{"Sid":"{}","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}}}"#,
            "x".repeat(MAX_POLICY_BYTES)
        );
        assert_eq!(code(&big).0, ErrorCode::PolicyTooLarge);
    }

    #[test]
    fn public_policies() {
        let policy = |principal: &str, condition: &str| {
            Policy::parse(
                format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"{condition}}}]}}"#
                )
                .as_bytes(),
                "b",
            )
            .unwrap()
        };
        assert!(policy(r#""*""#, "").is_public());
        assert!(policy(r#"{"AWS":["*"]}"#, "").is_public());
        assert!(!policy(r#"{"AWS":"arn:aws:iam:::user/alice"}"#, "").is_public());
        let pinned = r#","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#;
        assert!(!policy(r#""*""#, pinned).is_public());
        let open = r#","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#;
        assert!(policy(r#""*""#, open).is_public());
    }
}
