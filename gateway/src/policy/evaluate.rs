//! A policy's verdict on one request: Deny if a matching Deny statement applies, else
//! Allow if a matching Allow statement does, else nothing (the other rules decide).

use super::condition::glob;
use super::document::{Effect, Patterns, Policy, Principals, Statement};
use crate::owner::canonical_id;

/// Who is asking: a Kura user by name, or anonymous (`None`).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub user: Option<&'a str>,
    /// A service acting on its own (Kura delivering server access logs), not a user.
    pub service: Option<&'a str>,
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
}

/// The request's condition keys: values of a key (lower-case name), empty if the request
/// has none.
pub trait Context {
    fn values(&self, key: &str) -> Vec<String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Deny,
    Allow,
    /// No statement applies: an implicit deny unless something else allows.
    NotApplicable,
}

pub fn evaluate(policy: &Policy, subject: &Subject, context: &dyn Context) -> Decision {
    let mut decision = Decision::NotApplicable;
    for statement in &policy.statements {
        if !applies(statement, subject, context) {
            continue;
        }
        match statement.effect {
            Effect::Deny => return Decision::Deny,
            Effect::Allow => decision = Decision::Allow,
        }
    }
    decision
}

fn applies(statement: &Statement, subject: &Subject, context: &dyn Context) -> bool {
    principal_matches(&statement.principal, subject)
        && patterns_match(&statement.action, |p| {
            glob(
                &p.to_ascii_lowercase(),
                &subject.action.to_ascii_lowercase(),
            )
        })
        && patterns_match(&statement.resource, |p| {
            substitute(p, context).is_some_and(|p| glob(&p, subject.resource))
        })
        && statement.conditions.iter().all(|c| {
            let values: Option<Vec<String>> =
                c.values.iter().map(|v| substitute(v, context)).collect();
            values.is_some_and(|values| c.operator.holds(&context.values(&c.key), &values))
        })
}

fn patterns_match(patterns: &Patterns, matches: impl Fn(&str) -> bool) -> bool {
    patterns.values.iter().any(|p| matches(p)) != patterns.negated
}

/// Whether a statement's principals name the subject. A service is named only by its
/// name: `*` means every user and anonymous requests, as in AWS's `"AWS": "*"`.
fn principal_matches(principals: &Principals, subject: &Subject) -> bool {
    let named = match subject.service {
        Some(service) => principals.services.iter().any(|s| s == service),
        None => {
            principals.everyone
                || (subject.user)
                    .is_some_and(|user| principals.users.iter().any(|p| names_user(p, user)))
        }
    };
    named != principals.negated
}

/// Whether a policy's principal names `user`: by name, canonical id, or an IAM ARN
/// (`arn:aws:iam::ACCOUNT:user/NAME` whatever the account, since Kura's user names are
/// unique; `arn:aws:iam::ACCOUNT:root` with the user's name or canonical id as account).
fn names_user(principal: &str, user: &str) -> bool {
    let id = canonical_id(user);
    let is_user = |s: &str| s == user || s == id;
    if is_user(principal) {
        return true;
    }
    let Some(rest) = principal.strip_prefix("arn:aws:iam::") else {
        return false;
    };
    let Some((account, what)) = rest.split_once(':') else {
        return false;
    };
    match what.strip_prefix("user/") {
        Some(name) => is_user(name),
        None => what == "root" && is_user(account),
    }
}

/// Replaces policy variables (`${aws:username}`, and the escapes `${*}`, `${?}`, `${$}`)
/// with the request's values; None when a variable has no value (the pattern then
/// matches nothing, as AWS does).
fn substitute(pattern: &str, context: &dyn Context) -> Option<String> {
    if !pattern.contains("${") {
        return Some(pattern.to_owned());
    }
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Some(out);
        };
        let name = &after[..end];
        match name {
            "*" | "?" | "$" => out.push_str(name),
            key => out.push_str(context.values(&key.to_ascii_lowercase()).first()?),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Map(HashMap<&'static str, &'static str>);

    impl Context for Map {
        fn values(&self, key: &str) -> Vec<String> {
            self.0
                .get(key)
                .map(|v| vec![v.to_string()])
                .unwrap_or_default()
        }
    }

    fn policy(text: &str) -> Policy {
        Policy::parse(text.as_bytes(), "b").unwrap()
    }

    fn decide(
        policy: &Policy,
        user: Option<&str>,
        action: &str,
        resource: &str,
        ctx: &Map,
    ) -> Decision {
        let subject = Subject {
            user,
            service: None,
            action,
            resource,
        };
        evaluate(policy, &subject, ctx)
    }

    #[test]
    fn a_service_is_named_only_by_its_name() {
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::b/log/*"},
              {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
        );
        let by = |service, action| {
            let subject = Subject {
                user: None,
                service: Some(service),
                action,
                resource: "arn:aws:s3:::b/log/x",
            };
            evaluate(&p, &subject, &Map::default())
        };
        assert_eq!(
            by("logging.s3.amazonaws.com", "s3:PutObject"),
            Decision::Allow
        );
        assert_eq!(
            by("other.amazonaws.com", "s3:PutObject"),
            Decision::NotApplicable
        );
        // "*" is every user and anonymous requests, not services.
        assert_eq!(
            by("logging.s3.amazonaws.com", "s3:GetObject"),
            Decision::NotApplicable
        );
        let anonymous = decide(
            &p,
            None,
            "s3:PutObject",
            "arn:aws:s3:::b/log/x",
            &Map::default(),
        );
        assert_eq!(anonymous, Decision::NotApplicable);
    }

    #[test]
    fn explicit_deny_wins_and_nothing_matching_is_not_applicable() {
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[
              {"Sid":"read","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
              {"Sid":"tls","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"],
               "Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#,
        );
        let plain = Map(HashMap::from([("aws:securetransport", "false")]));
        let tls = Map(HashMap::from([("aws:securetransport", "true")]));
        let obj = "arn:aws:s3:::b/k";
        assert_eq!(decide(&p, None, "s3:GetObject", obj, &tls), Decision::Allow);
        assert_eq!(
            decide(&p, None, "s3:GetObject", obj, &plain),
            Decision::Deny
        );
        assert_eq!(
            decide(&p, Some("alice"), "s3:PutObject", obj, &tls),
            Decision::NotApplicable
        );
        assert_eq!(
            decide(&p, Some("alice"), "s3:PutObject", obj, &plain),
            Decision::Deny
        );
    }

    #[test]
    fn principals_actions_and_resources() {
        let p = policy(
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/bob"]},
              "Action":["s3:Get*","s3:ListBucket"],"NotResource":"arn:aws:s3:::b/secret/*"}]}"#,
        );
        let none = Map(HashMap::new());
        let get = |user, resource| decide(&p, user, "s3:GetObject", resource, &none);
        assert_eq!(get(Some("bob"), "arn:aws:s3:::b/pub/x"), Decision::Allow);
        assert_eq!(
            get(Some("bob"), "arn:aws:s3:::b/secret/x"),
            Decision::NotApplicable
        );
        assert_eq!(
            get(Some("eve"), "arn:aws:s3:::b/pub/x"),
            Decision::NotApplicable
        );
        assert_eq!(get(None, "arn:aws:s3:::b/pub/x"), Decision::NotApplicable);
        assert_eq!(
            decide(
                &p,
                Some("bob"),
                "s3:PutObject",
                "arn:aws:s3:::b/pub/x",
                &none
            ),
            Decision::NotApplicable
        );
        let by_id = policy(&format!(
            r#"{{"Statement":{{"Effect":"Deny","NotPrincipal":{{"CanonicalUser":"{}"}},"Action":"*","Resource":"*"}}}}"#,
            canonical_id("bob")
        ));
        assert_eq!(
            decide(
                &by_id,
                Some("bob"),
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                &none
            ),
            Decision::NotApplicable
        );
        assert_eq!(
            decide(
                &by_id,
                Some("eve"),
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                &none
            ),
            Decision::Deny
        );
        assert_eq!(
            decide(&by_id, None, "s3:GetObject", "arn:aws:s3:::b/k", &none),
            Decision::Deny
        );
        assert!(names_user("arn:aws:iam::bob:root", "bob"));
        assert!(names_user("arn:aws:iam::123:user/bob", "bob"));
        assert!(!names_user("arn:aws:iam::eve:root", "bob"));
    }

    #[test]
    fn policy_variables() {
        let p = policy(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*",
              "Resource":"arn:aws:s3:::b/home/${aws:username}/*"}}"#,
        );
        let alice = Map(HashMap::from([("aws:username", "alice")]));
        let anonymous = Map(HashMap::new());
        let home = "arn:aws:s3:::b/home/alice/notes";
        assert_eq!(
            decide(&p, Some("alice"), "s3:PutObject", home, &alice),
            Decision::Allow
        );
        assert_eq!(
            decide(&p, None, "s3:PutObject", home, &anonymous),
            Decision::NotApplicable
        );
        assert_eq!(substitute("a${*}b${$}", &anonymous).unwrap(), "a*b$");
    }

    /// The evaluator's table: for every operator, an Allow statement conditioned on it
    /// allows a matching request and leaves the rest (a value that does not match, a missing
    /// key) to an implicit deny; a Deny statement denies exactly the matching requests.
    #[test]
    fn every_operator_allows_denies_or_leaves_an_implicit_deny() {
        use super::super::condition::OPERATORS;
        for &(operator, value, yes, no) in OPERATORS {
            for effect in ["Allow", "Deny"] {
                let p = policy(&format!(
                    r#"{{"Statement":{{"Effect":"{effect}","Principal":"*","Action":"s3:GetObject",
                      "Resource":"arn:aws:s3:::b/*","Condition":{{"{operator}":{{"kura:test":"{value}"}}}}}}}}"#
                ));
                let with = |v: &'static str| Map(HashMap::from([("kura:test", v)]));
                let get = |ctx: &Map| decide(&p, None, "s3:GetObject", "arn:aws:s3:::b/k", ctx);
                let applied = if effect == "Allow" {
                    Decision::Allow
                } else {
                    Decision::Deny
                };
                assert_eq!(get(&with(yes)), applied, "{effect} {operator} {yes}");
                assert_eq!(
                    get(&with(no)),
                    Decision::NotApplicable,
                    "{effect} {operator} {no}"
                );
                assert_eq!(
                    get(&Map(HashMap::new())),
                    Decision::NotApplicable,
                    "{effect} {operator} missing"
                );
            }
        }
    }
}
