//! Lifecycle rules as S3 defines them: turning a LifecycleConfiguration document into
//! checked rules and back, which objects a rule applies to, and when they expire.
//!
//! A "day" is 24 hours, and S3 rounds an expiry up to the next midnight UTC; for tests
//! the day can be made shorter (as RGW's `rgw_lc_debug_interval`), and then there is no
//! rounding.

use crate::error::{ErrorCode, S3Error, S3Result};
use crate::tags::{self, MAX_OBJECT_TAGS};
use crate::timefmt::{http_date, iso8601};
use crate::xml::{self, NS};
use kura_index::{LifecycleFilter, LifecycleRule, LifecycleTransition, ObjectVersion};
use std::time::Duration;

/// AWS's limit of rules per configuration, and of an ID's length.
const MAX_RULES: usize = 1000;
const MAX_ID_LEN: usize = 255;
const DAY_MS: u64 = 24 * 3600 * 1000;
/// The storage classes Kura has: transitions to them are accepted (and change nothing).
const STORAGE_CLASSES: [&str; 1] = ["STANDARD"];

fn invalid(message: &str) -> S3Error {
    S3Error::new(ErrorCode::InvalidArgument, message)
}

fn invalid_request(message: &str) -> S3Error {
    S3Error::new(ErrorCode::InvalidRequest, message)
}

fn positive(value: Option<i64>, what: &str) -> S3Result<Option<u32>> {
    value
        .map(|v| {
            u32::try_from(v)
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| invalid(&format!("'{what}' must be a positive integer")))
        })
        .transpose()
}

/// An ISO 8601 date at midnight UTC, in Unix milliseconds.
fn midnight(text: &str) -> S3Result<u64> {
    let date = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid("'Date' must be an ISO 8601 date at midnight GMT"))?;
    let ms = u64::try_from(date.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| invalid("'Date' must be after 1970"))?;
    if !ms.is_multiple_of(DAY_MS) {
        return Err(invalid("'Date' must be at midnight GMT"));
    }
    Ok(ms)
}

fn size(value: Option<i64>) -> S3Result<Option<u64>> {
    value
        .map(|v| {
            u64::try_from(v).map_err(|_| invalid("Object size must be a non-negative integer"))
        })
        .transpose()
}

fn filter(rule: &xml::LifecycleRuleXml) -> S3Result<LifecycleFilter> {
    let malformed = || S3Error::from(ErrorCode::MalformedXML);
    let tag = |t: &xml::Tag| (t.key.clone(), t.value.clone());
    match (&rule.filter, &rule.prefix) {
        (Some(_), Some(_)) => Err(malformed()),
        (None, Some(prefix)) => Ok(LifecycleFilter::LegacyPrefix(prefix.clone())),
        (None, None) => Err(malformed()),
        (Some(f), None) => {
            let given = [
                f.prefix.is_some(),
                f.tag.is_some(),
                f.and.is_some(),
                f.object_size_greater_than.is_some(),
                f.object_size_less_than.is_some(),
            ];
            if given.iter().filter(|g| **g).count() > 1 {
                return Err(malformed());
            }
            Ok(if let Some(prefix) = &f.prefix {
                LifecycleFilter::Prefix(prefix.clone())
            } else if let Some(t) = &f.tag {
                LifecycleFilter::Tag(t.key.clone(), t.value.clone())
            } else if let Some(and) = &f.and {
                LifecycleFilter::And {
                    prefix: and.prefix.clone(),
                    tags: and.tags.iter().map(tag).collect(),
                    size_greater_than: size(and.object_size_greater_than)?,
                    size_less_than: size(and.object_size_less_than)?,
                }
            } else if let Some(n) = size(f.object_size_greater_than)? {
                LifecycleFilter::SizeGreaterThan(n)
            } else if let Some(n) = size(f.object_size_less_than)? {
                LifecycleFilter::SizeLessThan(n)
            } else {
                LifecycleFilter::All
            })
        }
    }
}

fn filter_tags(filter: &LifecycleFilter) -> Vec<(String, String)> {
    match filter {
        LifecycleFilter::Tag(k, v) => vec![(k.clone(), v.clone())],
        LifecycleFilter::And { tags, .. } => tags.clone(),
        _ => Vec::new(),
    }
}

/// Checks a configuration and turns it into rules; a rule without an ID gets one.
pub fn rules_from_xml(config: xml::LifecycleConfiguration) -> S3Result<Vec<LifecycleRule>> {
    if config.rules.is_empty() || config.rules.len() > MAX_RULES {
        return Err(S3Error::new(
            ErrorCode::MalformedXML,
            format!("A lifecycle configuration has 1 to {MAX_RULES} rules."),
        ));
    }
    let mut rules: Vec<LifecycleRule> = Vec::new();
    for x in &config.rules {
        let id = match &x.id {
            Some(id) if id.chars().count() > MAX_ID_LEN => {
                return Err(invalid("ID length should not exceed allowed limit of 255"));
            }
            Some(id) => id.clone(),
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        if rules.iter().any(|r| r.id == id) {
            return Err(invalid(
                "Rule ID must be unique. Found same ID for more than one rule",
            ));
        }
        let enabled = match x.status.as_str() {
            "Enabled" => true,
            "Disabled" => false,
            _ => return Err(ErrorCode::MalformedXML.into()),
        };
        let filter = filter(x)?;
        let filter_tags = filter_tags(&filter);
        tags::validate(&filter_tags, MAX_OBJECT_TAGS)?;
        let mut rule = LifecycleRule {
            id,
            enabled,
            filter,
            ..Default::default()
        };
        if let Some(e) = &x.expiration {
            let given = [
                e.days.is_some(),
                e.date.is_some(),
                e.expired_object_delete_marker.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                return Err(ErrorCode::MalformedXML.into());
            }
            rule.expiration_days = positive(e.days, "Days' for Expiration action")?;
            rule.expiration_date_ms = e.date.as_deref().map(midnight).transpose()?;
            rule.expired_object_delete_marker = e.expired_object_delete_marker;
            if rule.expired_object_delete_marker.is_some() && !filter_tags.is_empty() {
                return Err(invalid_request(
                    "ExpiredObjectDeleteMarker cannot be specified with object tags",
                ));
            }
        }
        if let Some(a) = &x.abort_incomplete_multipart_upload {
            rule.abort_incomplete_days = positive(a.days_after_initiation, "DaysAfterInitiation")?;
            if rule.abort_incomplete_days.is_none() {
                return Err(ErrorCode::MalformedXML.into());
            }
            if !filter_tags.is_empty() {
                return Err(invalid_request(
                    "AbortIncompleteMultipartUpload cannot be specified with Tags.",
                ));
            }
        }
        if let Some(n) = &x.noncurrent_version_expiration {
            rule.noncurrent_days = positive(n.noncurrent_days, "NoncurrentDays")?;
            rule.newer_noncurrent_versions =
                positive(n.newer_noncurrent_versions, "NewerNoncurrentVersions")?;
        }
        for t in &x.transitions {
            if !STORAGE_CLASSES.contains(&t.storage_class.as_str()) {
                return Err(S3Error::new(
                    ErrorCode::InvalidStorageClass,
                    "The storage class you specified is not valid",
                ));
            }
            rule.transitions.push(LifecycleTransition {
                days: positive(t.days, "Days' in Transition action")?,
                date_ms: t.date.as_deref().map(midnight).transpose()?,
                storage_class: t.storage_class.clone(),
            });
        }
        let has_action = x.expiration.is_some()
            || rule.abort_incomplete_days.is_some()
            || x.noncurrent_version_expiration.is_some()
            || !rule.transitions.is_empty();
        if !has_action {
            return Err(invalid_request(
                "At least one action needs to be specified in a rule",
            ));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// The configuration document of stored rules.
pub fn rules_to_xml(rules: &[LifecycleRule]) -> xml::LifecycleConfiguration {
    let tag = |(key, value): &(String, String)| xml::Tag {
        key: key.clone(),
        value: value.clone(),
    };
    let count = |n: Option<u32>| n.map(i64::from);
    let sized = |n: Option<u64>| n.map(|n| n as i64);
    let rules = rules
        .iter()
        .map(|r| {
            let (filter, prefix) = match &r.filter {
                LifecycleFilter::LegacyPrefix(p) => (None, Some(p.clone())),
                other => {
                    let mut f = xml::LifecycleFilterXml::default();
                    match other {
                        LifecycleFilter::Prefix(p) => f.prefix = Some(p.clone()),
                        LifecycleFilter::Tag(k, v) => f.tag = Some(tag(&(k.clone(), v.clone()))),
                        LifecycleFilter::SizeGreaterThan(n) => {
                            f.object_size_greater_than = sized(Some(*n))
                        }
                        LifecycleFilter::SizeLessThan(n) => {
                            f.object_size_less_than = sized(Some(*n))
                        }
                        LifecycleFilter::And {
                            prefix,
                            tags,
                            size_greater_than,
                            size_less_than,
                        } => {
                            f.and = Some(xml::LifecycleAndXml {
                                prefix: prefix.clone(),
                                tags: tags.iter().map(tag).collect(),
                                object_size_greater_than: sized(*size_greater_than),
                                object_size_less_than: sized(*size_less_than),
                            })
                        }
                        LifecycleFilter::All | LifecycleFilter::LegacyPrefix(_) => {}
                    }
                    (Some(f), None)
                }
            };
            let has_expiration = r.expiration_days.is_some()
                || r.expiration_date_ms.is_some()
                || r.expired_object_delete_marker.is_some();
            xml::LifecycleRuleXml {
                id: Some(r.id.clone()),
                filter,
                prefix,
                status: if r.enabled { "Enabled" } else { "Disabled" }.into(),
                expiration: has_expiration.then(|| xml::ExpirationXml {
                    days: count(r.expiration_days),
                    date: r.expiration_date_ms.map(iso8601),
                    expired_object_delete_marker: r.expired_object_delete_marker,
                }),
                transitions: r
                    .transitions
                    .iter()
                    .map(|t| xml::TransitionXml {
                        days: count(t.days),
                        date: t.date_ms.map(iso8601),
                        storage_class: t.storage_class.clone(),
                    })
                    .collect(),
                noncurrent_version_expiration: (r.noncurrent_days.is_some()
                    || r.newer_noncurrent_versions.is_some())
                .then(|| xml::NoncurrentExpirationXml {
                    noncurrent_days: count(r.noncurrent_days),
                    newer_noncurrent_versions: count(r.newer_noncurrent_versions),
                }),
                abort_incomplete_multipart_upload: r.abort_incomplete_days.map(|d| {
                    xml::AbortIncompleteXml {
                        days_after_initiation: Some(i64::from(d)),
                    }
                }),
            }
        })
        .collect();
    xml::LifecycleConfiguration { xmlns: NS, rules }
}

/// Whether `rule`'s filter selects an object with this key, size and tags.
pub fn selects(rule: &LifecycleRule, key: &str, size: u64, tags: &[(String, String)]) -> bool {
    let has = |k: &String, v: &String| tags.iter().any(|(tk, tv)| tk == k && tv == v);
    match &rule.filter {
        LifecycleFilter::All => true,
        LifecycleFilter::LegacyPrefix(p) | LifecycleFilter::Prefix(p) => key.starts_with(p),
        LifecycleFilter::Tag(k, v) => has(k, v),
        LifecycleFilter::SizeGreaterThan(n) => size > *n,
        LifecycleFilter::SizeLessThan(n) => size < *n,
        LifecycleFilter::And {
            prefix,
            tags: wanted,
            size_greater_than,
            size_less_than,
        } => {
            prefix.as_deref().is_none_or(|p| key.starts_with(p))
                && wanted.iter().all(|(k, v)| has(k, v))
                && size_greater_than.is_none_or(|n| size > n)
                && size_less_than.is_none_or(|n| size < n)
        }
    }
}

/// When something written at `written_ms` expires after `days` days: with real days, at
/// the midnight UTC that follows, as S3 does.
pub fn after_days(written_ms: u64, days: u32, day: Duration) -> u64 {
    let day_ms = day.as_millis() as u64;
    let due = written_ms.saturating_add(u64::from(days).saturating_mul(day_ms));
    if day_ms == DAY_MS {
        due.div_ceil(DAY_MS) * DAY_MS
    } else {
        due
    }
}

/// When (Unix ms) the current version `version` of `key` expires under the earliest of
/// the enabled rules that select it, and which rule.
pub fn expiry<'r>(
    rules: &'r [LifecycleRule],
    key: &str,
    version: &ObjectVersion,
    day: Duration,
) -> Option<(u64, &'r LifecycleRule)> {
    rules
        .iter()
        .filter(|r| r.enabled && selects(r, key, version.size, &version.meta.tags))
        .filter_map(|r| {
            let by_days = r
                .expiration_days
                .map(|d| after_days(version.last_modified_ms(), d, day));
            let at = match (by_days, r.expiration_date_ms) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b)?,
            };
            Some((at, r))
        })
        .min_by_key(|(at, _)| *at)
}

/// Whether a noncurrent `version` of `key`, noncurrent since `since_ms` and with `newer`
/// noncurrent versions of its key newer than it, is due under an enabled rule's
/// NoncurrentVersionExpiration at `now_ms` (NewerNoncurrentVersions keeps the newest ones).
pub fn noncurrent_due(
    rules: &[LifecycleRule],
    key: &str,
    version: &ObjectVersion,
    (since_ms, newer): (u64, u32),
    day: Duration,
    now_ms: u64,
) -> bool {
    rules.iter().any(|r| {
        let configured = r.noncurrent_days.is_some() || r.newer_noncurrent_versions.is_some();
        configured
            && r.enabled
            && selects(r, key, version.size, &version.meta.tags)
            && after_days(since_ms, r.noncurrent_days.unwrap_or(0), day) <= now_ms
            && newer >= r.newer_noncurrent_versions.unwrap_or(0)
    })
}

/// Whether an enabled rule removes `key`'s delete marker once it is the key's only version
/// (ExpiredObjectDeleteMarker).
pub fn removes_lone_marker(rules: &[LifecycleRule], key: &str) -> bool {
    rules.iter().any(|r| {
        r.enabled && r.expired_object_delete_marker == Some(true) && selects(r, key, 0, &[])
    })
}

/// Whether the rules do anything to versions that are not current.
pub fn acts_on_versions(rules: &[LifecycleRule]) -> bool {
    rules.iter().any(|r| {
        r.enabled
            && (r.noncurrent_days.is_some()
                || r.newer_noncurrent_versions.is_some()
                || r.expired_object_delete_marker == Some(true))
    })
}

/// The `x-amz-expiration` header of an object that a rule will expire.
pub fn expiration_header(
    rules: &[LifecycleRule],
    key: &str,
    version: &ObjectVersion,
    day: Duration,
) -> Option<String> {
    let (at, rule) = expiry(rules, key, version, day)?;
    Some(format!(
        "expiry-date=\"{}\", rule-id=\"{}\"",
        http_date(at),
        rule.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rounds_to_midnight_only_with_real_days() {
        let written = DAY_MS * 100 + 5_000;
        assert_eq!(
            after_days(written, 1, Duration::from_secs(86_400)),
            DAY_MS * 102
        );
        assert_eq!(
            after_days(written, 3, Duration::from_secs(2)),
            written + 6_000
        );
    }

    #[test]
    fn filters_select_by_prefix_tags_and_size() {
        let rule = LifecycleRule {
            filter: LifecycleFilter::And {
                prefix: Some("logs/".into()),
                tags: vec![("tier".into(), "tmp".into())],
                size_greater_than: Some(10),
                size_less_than: None,
            },
            ..Default::default()
        };
        let tmp = vec![("tier".to_string(), "tmp".to_string())];
        assert!(selects(&rule, "logs/a", 11, &tmp));
        assert!(!selects(&rule, "logs/a", 10, &tmp));
        assert!(!selects(&rule, "data/a", 11, &tmp));
        assert!(!selects(&rule, "logs/a", 11, &[]));
    }

    #[test]
    fn dates_must_be_midnight() {
        assert_eq!(midnight("2030-01-01T00:00:00Z").unwrap() % DAY_MS, 0);
        assert!(midnight("2030-01-01T01:00:00Z").is_err());
        assert!(midnight("yesterday").is_err());
    }
}
