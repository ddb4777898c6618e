//! Policy conditions: the operators of the IAM policy language and how each compares a
//! request's context values with the policy's values.

use std::net::IpAddr;
use time::OffsetDateTime;

/// A condition operator's family: how two values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Ordering),
    Date(Ordering),
    Bool,
    IpAddress,
    ArnLike,
    Null,
}

/// The comparison of a Numeric or Date operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    Equals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

/// How a multi-valued context key is matched (`ForAnyValue:` / `ForAllValues:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

/// One operator as written: `ForAllValues:StringNotLikeIfExists` and the like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub family: Family,
    /// The `Not` forms (`StringNotEquals`, `NotIpAddress`, `NumericNotEquals`, …).
    pub negated: bool,
    pub if_exists: bool,
    pub qualifier: SetQualifier,
}

impl Operator {
    /// Parses an operator name; None if the policy language has no such operator.
    pub fn parse(name: &str) -> Option<Operator> {
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, rest)
        } else {
            (SetQualifier::Single, name)
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(base) if base != "Null" => (true, base),
            _ => (false, rest),
        };
        use Ordering::*;
        let (family, negated) = match base {
            "StringEquals" => (Family::StringEquals, false),
            "StringNotEquals" => (Family::StringEquals, true),
            "StringEqualsIgnoreCase" => (Family::StringEqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (Family::StringEqualsIgnoreCase, true),
            "StringLike" => (Family::StringLike, false),
            "StringNotLike" => (Family::StringLike, true),
            "NumericEquals" => (Family::Numeric(Equals), false),
            "NumericNotEquals" => (Family::Numeric(Equals), true),
            "NumericLessThan" => (Family::Numeric(LessThan), false),
            "NumericLessThanEquals" => (Family::Numeric(LessThanEquals), false),
            "NumericGreaterThan" => (Family::Numeric(GreaterThan), false),
            "NumericGreaterThanEquals" => (Family::Numeric(GreaterThanEquals), false),
            "DateEquals" => (Family::Date(Equals), false),
            "DateNotEquals" => (Family::Date(Equals), true),
            "DateLessThan" => (Family::Date(LessThan), false),
            "DateLessThanEquals" => (Family::Date(LessThanEquals), false),
            "DateGreaterThan" => (Family::Date(GreaterThan), false),
            "DateGreaterThanEquals" => (Family::Date(GreaterThanEquals), false),
            "Bool" => (Family::Bool, false),
            "IpAddress" => (Family::IpAddress, false),
            "NotIpAddress" => (Family::IpAddress, true),
            "ArnEquals" | "ArnLike" => (Family::ArnLike, false),
            "ArnNotEquals" | "ArnNotLike" => (Family::ArnLike, true),
            "Null" => (Family::Null, false),
            _ => return None,
        };
        Some(Operator {
            family,
            negated,
            if_exists,
            qualifier,
        })
    }

    /// Checks a policy value when the policy is put, so that a typo is refused then, not
    /// silently never matched later. Returns what is wrong with it.
    pub fn check_value(&self, value: &str) -> Result<(), String> {
        let ok = match self.family {
            Family::Numeric(_) => value.parse::<f64>().is_ok(),
            Family::Date(_) => parse_date(value).is_some(),
            Family::Bool | Family::Null => {
                value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
            }
            Family::IpAddress => Cidr::parse(value).is_some(),
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "Invalid value '{value}' for the condition operator"
            ))
        }
    }

    /// Whether the condition holds for the request's values of its key (empty: the key
    /// is absent from the request) against the policy's values.
    pub fn holds(&self, context: &[String], policy: &[String]) -> bool {
        if self.family == Family::Null {
            let wants_absent = policy.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return context.is_empty() == wants_absent;
        }
        if context.is_empty() {
            // AWS: a missing key matches nothing; negated operators and IfExists then
            // hold, and ForAllValues holds vacuously.
            return self.if_exists || self.negated || self.qualifier == SetQualifier::ForAllValues;
        }
        let matches_one = |value: &String| policy.iter().any(|p| self.family.compare(value, p));
        match self.qualifier {
            SetQualifier::ForAllValues => context.iter().all(|v| matches_one(v) != self.negated),
            SetQualifier::Single | SetQualifier::ForAnyValue => {
                let any = context.iter().any(matches_one);
                any != self.negated
            }
        }
    }
}

impl Family {
    fn compare(self, value: &str, policy: &str) -> bool {
        match self {
            Family::StringEquals => value == policy,
            Family::StringEqualsIgnoreCase => value.eq_ignore_ascii_case(policy),
            Family::StringLike | Family::ArnLike => glob(policy, value),
            Family::Numeric(ordering) => match (value.parse::<f64>(), policy.parse::<f64>()) {
                (Ok(v), Ok(p)) => ordering.holds(v.partial_cmp(&p)),
                _ => false,
            },
            Family::Date(ordering) => match (parse_date(value), parse_date(policy)) {
                (Some(v), Some(p)) => ordering.holds(Some(v.cmp(&p))),
                _ => false,
            },
            Family::Bool => value.eq_ignore_ascii_case(policy),
            Family::IpAddress => match (value.parse::<IpAddr>(), Cidr::parse(policy)) {
                (Ok(ip), Some(cidr)) => cidr.contains(ip),
                _ => false,
            },
            Family::Null => false,
        }
    }
}

impl Ordering {
    fn holds(self, order: Option<std::cmp::Ordering>) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        matches!(
            (self, order),
            (Ordering::Equals, Some(Equal))
                | (Ordering::LessThan, Some(Less))
                | (Ordering::LessThanEquals, Some(Less | Equal))
                | (Ordering::GreaterThan, Some(Greater))
                | (Ordering::GreaterThanEquals, Some(Greater | Equal))
        )
    }
}

/// A date as policies write them: ISO 8601 (RFC 3339) or seconds since the epoch.
fn parse_date(value: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(seconds) = value.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(seconds).ok();
    }
    OffsetDateTime::parse(value, &Rfc3339).ok().or_else(|| {
        // A date alone (`2026-01-01`) is its midnight, UTC.
        OffsetDateTime::parse(&format!("{value}T00:00:00Z"), &Rfc3339).ok()
    })
}

/// A glob as IAM has it: `*` any run of characters, `?` any one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with one backtrack point (the last `*`): linear in practice and
    // never exponential, whatever a policy writes.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// An address range in CIDR notation (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, prefix.parse::<u8>().ok()?),
            None => {
                let addr = text.parse::<IpAddr>().ok()?;
                (addr, if addr.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr {
            network: addr,
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) if self.network.is_ipv4() => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            other => other,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(
                u128::from(net.to_bits()),
                u128::from(ip.to_bits()),
                self.prefix,
                32,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(net.to_bits(), ip.to_bits(), self.prefix, 128)
            }
            _ => false,
        }
    }

    /// Whether the range is every address (`0.0.0.0/0`, `::/0`): no restriction at all.
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }
}

fn same_prefix(a: u128, b: u128, prefix: u8, width: u32) -> bool {
    let shift = width - u32::from(prefix);
    shift >= width || (a >> shift) == (b >> shift)
}

/// Each operator family with a policy value, a request value it matches and one it does
/// not: the table the condition and evaluator tests both run.
#[cfg(test)]
#[rustfmt::skip]
pub(crate) const OPERATORS: &[(&str, &str, &str, &str)] = &[
    // (operator, policy value, matching request value, non-matching value)
    ("StringEquals", "public-read", "public-read", "Public-Read"),
    ("StringEqualsIgnoreCase", "public-read", "PUBLIC-READ", "private"),
    ("StringLike", "home/*/docs", "home/alice/docs", "home/alice/pics"),
    ("NumericEquals", "10", "10.0", "11"),
    ("NumericLessThan", "10", "9", "10"),
    ("NumericLessThanEquals", "10", "10", "11"),
    ("NumericGreaterThan", "10", "11", "10"),
    ("NumericGreaterThanEquals", "10", "10", "9"),
    ("DateEquals", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
    ("DateLessThan", "2026-01-01T00:00:00Z", "2025-12-31T23:59:59Z", "2026-01-01T00:00:00Z"),
    ("DateLessThanEquals", "2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"),
    ("DateGreaterThan", "1767225600", "2026-01-01T00:00:01Z", "2026-01-01T00:00:00Z"),
    ("DateGreaterThanEquals", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
    ("Bool", "true", "true", "false"),
    ("IpAddress", "192.168.0.0/24", "192.168.0.77", "192.168.1.1"),
    ("ArnLike", "arn:aws:iam::*:user/a*", "arn:aws:iam:::user/alice", "arn:aws:iam:::user/bob"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn v(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn globs() {
        assert!(glob("s3:Get*", "s3:GetObject"));
        assert!(glob("*", ""));
        assert!(glob("arn:aws:s3:::b/pub/*", "arn:aws:s3:::b/pub/x/y"));
        assert!(!glob("arn:aws:s3:::b/pub/*", "arn:aws:s3:::b/private"));
        assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
        assert!(glob("*a*b*c*", "xxaxxbxxcxx") && !glob("*a*b*c*", "xxaxxcxxbxx"));
    }

    #[test]
    fn cidrs() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().is_everything());
        assert!(
            Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains("2001:db8::1".parse().unwrap())
        );
        assert!(Cidr::parse("1.2.3.4/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
        assert!(
            Cidr::parse("127.0.0.1")
                .unwrap()
                .contains("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn operator_names() {
        let op = Operator::parse("ForAllValues:StringNotLikeIfExists").unwrap();
        assert_eq!(op.family, Family::StringLike);
        assert!(op.negated && op.if_exists);
        assert_eq!(op.qualifier, SetQualifier::ForAllValues);
        assert!(Operator::parse("StringSortOf").is_none());
        assert!(Operator::parse("NullIfExists").is_none());
        for (name, value, ok) in [
            ("Bool", "maybe", false),
            ("DateLessThan", "2026-01-01T00:00:00Z", true),
            ("NumericLessThan", "ten", false),
            ("IpAddress", "10.0.0.0/8", true),
        ] {
            let checked = Operator::parse(name).unwrap().check_value(value);
            assert_eq!(checked.is_ok(), ok, "{name} {value}");
        }
    }

    /// The table: each operator family with a value that matches, one that does not, and
    /// a missing key; the negated form gives the opposite except for the missing key.
    #[test]
    fn every_operator_allows_denies_and_treats_missing_keys_as_aws_does() {
        let table = OPERATORS;
        for &(name, policy, yes, no) in table {
            let policy = v(&[policy]);
            let op = Operator::parse(name).unwrap();
            op.check_value(&policy[0]).unwrap();
            assert!(op.holds(&v(&[yes]), &policy), "{name} allows {yes}");
            assert!(!op.holds(&v(&[no]), &policy), "{name} refuses {no}");
            assert!(
                !op.holds(&[], &policy),
                "{name}: a missing key never matches"
            );
            let if_exists = Operator::parse(&format!("{name}IfExists")).unwrap();
            assert!(
                if_exists.holds(&[], &policy),
                "{name}IfExists: missing holds"
            );
            assert!(!if_exists.holds(&v(&[no]), &policy), "{name}IfExists");
            let negated = match name {
                "IpAddress" => Some("NotIpAddress".to_owned()),
                "ArnLike" => Some("ArnNotLike".to_owned()),
                "StringEquals" | "StringEqualsIgnoreCase" | "StringLike" => {
                    Some(name.replacen("String", "StringNot", 1))
                }
                "NumericEquals" | "DateEquals" => Some(name.replace("Equals", "NotEquals")),
                _ => None,
            };
            if let Some(negated) = negated {
                let op = Operator::parse(&negated).unwrap();
                assert!(!op.holds(&v(&[yes]), &policy), "{negated} refuses {yes}");
                assert!(op.holds(&v(&[no]), &policy), "{negated} allows {no}");
                assert!(op.holds(&[], &policy), "{negated}: a missing key holds");
            }
        }
        let null = Operator::parse("Null").unwrap();
        assert!(null.holds(&[], &v(&["true"])));
        assert!(!null.holds(&v(&["x"]), &v(&["true"])));
        assert!(null.holds(&v(&["x"]), &v(&["false"])));
        assert!(!null.holds(&[], &v(&["false"])));
    }

    #[test]
    fn set_qualifiers() {
        let keys = v(&["project", "team"]);
        let any = Operator::parse("ForAnyValue:StringEquals").unwrap();
        let all = Operator::parse("ForAllValues:StringEquals").unwrap();
        assert!(any.holds(&keys, &v(&["team"])));
        assert!(!all.holds(&keys, &v(&["team"])));
        assert!(all.holds(&keys, &v(&["team", "project", "cost"])));
        assert!(all.holds(&[], &v(&["team"])), "vacuously");
        assert!(!any.holds(&[], &v(&["team"])));
    }
}
