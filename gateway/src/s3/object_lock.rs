//! Object Lock: Get/PutObjectLockConfiguration, Get/PutObjectRetention,
//! Get/PutObjectLegalHold, the lock settings of new versions (`x-amz-object-lock-*`
//! headers, else the bucket's default retention), their headers on reads, and who may
//! bypass a GOVERNANCE retention. The index refuses to remove a locked version.

use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use super::versioning::object_version;
use crate::authorize;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::query::Query;
use crate::state::S3State;
use crate::timefmt::{iso8601, parse_iso8601};
use crate::xml::{self, NS};
use http::response::Builder;
use http::{HeaderMap, StatusCode};
use kura_index::{
    BucketRecord, DefaultRetention, LockBypass, ObjectLockConfig, ObjectMeta, Retention,
    RetentionMode, Versioning,
};

const MAX_BODY: usize = 64 * 1024;
const DAY_MS: u64 = 24 * 3600 * 1000;

pub async fn get_object_lock_configuration(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    let lock = bucket
        .object_lock
        .as_ref()
        .ok_or(ErrorCode::ObjectLockConfigurationNotFoundError)?;
    let rule = lock.default_retention.map(|d| xml::ObjectLockRule {
        default_retention: Some(xml::DefaultRetention {
            mode: Some(d.mode.as_str().to_owned()),
            days: d.days.map(i64::from),
            years: d.years.map(i64::from),
        }),
    });
    let doc = xml::ObjectLockConfiguration {
        xmlns: NS,
        object_lock_enabled: Some("Enabled".into()),
        rule,
    };
    xml_ok(xml::to_xml("ObjectLockConfiguration", &doc)?)
}

pub async fn put_object_lock_configuration(
    state: &S3State,
    mut req: S3Request,
) -> S3Result<S3Response> {
    require_integrity(req.headers())?;
    let body = read_small_body(&mut req, MAX_BODY).await?;
    let doc: xml::ObjectLockConfiguration = xml::from_xml("ObjectLockConfiguration", &body)?;
    if doc.object_lock_enabled.as_deref() != Some("Enabled") {
        return Err(ErrorCode::MalformedXML.into());
    }
    let default_retention = match doc.rule.and_then(|r| r.default_retention) {
        None => None,
        Some(d) => Some(default_retention(d)?),
    };
    let bucket = req.access.bucket()?;
    if bucket.object_lock.is_none() && bucket.versioning != Versioning::Enabled {
        return Err(S3Error::new(
            ErrorCode::InvalidBucketState,
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
        ));
    }
    let config = ObjectLockConfig { default_retention };
    state
        .index
        .update_bucket(&req.bucket, |record| {
            record.object_lock = Some(config.clone());
        })
        .await?;
    Ok(empty(StatusCode::OK))
}

fn default_retention(d: xml::DefaultRetention) -> S3Result<DefaultRetention> {
    let mode = d
        .mode
        .as_deref()
        .and_then(RetentionMode::parse)
        .ok_or(ErrorCode::MalformedXML)?;
    let positive = |n: i64, max: i64| {
        if n <= 0 || n > max {
            Err(S3Error::new(
                ErrorCode::InvalidArgument,
                "Default retention period must be a positive integer value",
            ))
        } else {
            Ok(Some(n as u32))
        }
    };
    let (days, years) = match (d.days, d.years) {
        (Some(days), None) => (positive(days, 36_500)?, None),
        (None, Some(years)) => (None, positive(years, 100)?),
        _ => return Err(ErrorCode::MalformedXML.into()),
    };
    Ok(DefaultRetention { mode, days, years })
}

/// Gives a new version described by `meta` its lock settings (see `for_write`).
pub(super) fn apply(
    meta: &mut ObjectMeta,
    headers: &HeaderMap,
    bucket: &BucketRecord,
    now_ms: u64,
) -> S3Result<()> {
    (meta.retention, meta.legal_hold) = for_write(headers, bucket, now_ms)?;
    Ok(())
}

/// The lock settings a new version gets: the request's `x-amz-object-lock-*` headers, else
/// the bucket's default retention. Refused on a bucket without Object Lock.
fn for_write(
    headers: &HeaderMap,
    bucket: &BucketRecord,
    now_ms: u64,
) -> S3Result<(Option<Retention>, bool)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mode = header("x-amz-object-lock-mode");
    let until = header("x-amz-object-lock-retain-until-date");
    let hold = header("x-amz-object-lock-legal-hold");
    let asked = mode.is_some() || until.is_some() || hold.is_some();
    let Some(lock) = &bucket.object_lock else {
        if asked {
            return Err(missing_lock_configuration());
        }
        return Ok((None, false));
    };
    let legal_hold = match hold {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(_) => return Err(invalid("Legal Hold must be either of 'ON' or 'OFF'")),
    };
    let retention = match (mode, until) {
        (None, None) => lock.default_retention.map(|d| Retention {
            mode: d.mode,
            until_ms: now_ms + retention_days(&d) * DAY_MS,
        }),
        (Some(mode), Some(until)) => Some(Retention {
            mode: RetentionMode::parse(mode).ok_or_else(|| {
                invalid("Unknown wormMode directive.")
                    .with("ArgumentName", "x-amz-object-lock-mode")
            })?,
            until_ms: future_date(until, now_ms)?,
        }),
        _ => {
            return Err(invalid(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            ));
        }
    };
    Ok((retention, legal_hold))
}

fn retention_days(d: &DefaultRetention) -> u64 {
    match (d.days, d.years) {
        (Some(days), _) => u64::from(days),
        (None, Some(years)) => u64::from(years) * 365,
        (None, None) => 0,
    }
}

/// A retain-until date, which must lie in the future.
fn future_date(text: &str, now_ms: u64) -> S3Result<u64> {
    let at = parse_iso8601(text).ok_or_else(|| {
        invalid("The retain until date must be provided in ISO 8601 format")
            .with("ArgumentName", "x-amz-object-lock-retain-until-date")
    })?;
    if at <= now_ms {
        return Err(invalid("The retain until date must be in the future!"));
    }
    Ok(at)
}

/// `x-amz-object-lock-*` of a version, for GET and HEAD.
pub(super) fn answer_headers(mut builder: Builder, meta: &ObjectMeta) -> Builder {
    if let Some(r) = meta.retention {
        builder = builder
            .header("x-amz-object-lock-mode", r.mode.as_str())
            .header("x-amz-object-lock-retain-until-date", iso8601(r.until_ms));
    }
    if meta.legal_hold {
        builder = builder.header("x-amz-object-lock-legal-hold", "ON");
    }
    builder
}

/// What a delete may pass: a GOVERNANCE retention when the request asks to bypass it
/// (`x-amz-bypass-governance-retention: true`) and its sender may.
pub(super) fn bypass(req: &S3Request, key: Option<&str>) -> S3Result<LockBypass> {
    let asked = req
        .header("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !asked {
        return Ok(LockBypass::Nothing);
    }
    let query = Query::parse(req.parts.uri.query());
    let requester = req.requester(&query);
    let action = "s3:BypassGovernanceRetention";
    Ok(
        if authorize::decide(req.access.bucket()?, key, None, &requester, action) {
            LockBypass::Governance
        } else {
            LockBypass::Nothing
        },
    )
}

pub async fn get_object_retention(
    state: &S3State,
    req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    locked_bucket(&req)?;
    let version = object_version(state, &req, version_id).await?;
    let retention = version
        .meta
        .retention
        .ok_or(ErrorCode::NoSuchObjectLockConfiguration)?;
    let doc = xml::Retention {
        xmlns: NS,
        mode: Some(retention.mode.as_str().to_owned()),
        retain_until_date: Some(iso8601(retention.until_ms)),
    };
    xml_ok(xml::to_xml("Retention", &doc)?)
}

pub async fn put_object_retention(
    state: &S3State,
    mut req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    locked_bucket(&req)?;
    require_integrity(req.headers())?;
    let bypass = bypass(&req, Some(&req.key))?;
    let body = read_small_body(&mut req, MAX_BODY).await?;
    let doc: xml::Retention = xml::from_xml("Retention", &body)?;
    let now = state.index.now_ms();
    let wanted = match (doc.mode.as_deref(), doc.retain_until_date.as_deref()) {
        (None, None) => None,
        (Some(mode), Some(until)) => Some(Retention {
            mode: RetentionMode::parse(mode).ok_or(ErrorCode::MalformedXML)?,
            until_ms: future_date(until, now)?,
        }),
        _ => return Err(ErrorCode::MalformedXML.into()),
    };
    change_lock(state, &req, version_id, |meta| {
        check_retention_change(meta.retention, wanted, now, bypass)?;
        meta.retention = wanted;
        Ok(())
    })
    .await
}

/// Changes the lock settings of the version a request names: checked and changed in one
/// guarded write, so no concurrent change slips between.
async fn change_lock(
    state: &S3State,
    req: &S3Request,
    version_id: Option<&str>,
    mut change: impl FnMut(&mut ObjectMeta) -> S3Result<()>,
) -> S3Result<S3Response> {
    object_version(state, req, version_id).await?;
    let changed = state
        .index
        .update_version(&req.bucket, &req.key, version_id, |version| {
            if version.delete_marker {
                return Err(S3Error::from(ErrorCode::MethodNotAllowed));
            }
            change(&mut version.meta)
        })
        .await?;
    changed.ok_or_else(|| S3Error::from(ErrorCode::NoSuchKey).with("Key", req.key.clone()))?;
    Ok(empty(StatusCode::OK))
}

/// Whether a version's retention may go from `current` to `wanted`: a COMPLIANCE
/// retention in force can only be extended; a GOVERNANCE one can be extended, and
/// shortened, removed or changed to another mode only with a bypass.
fn check_retention_change(
    current: Option<Retention>,
    wanted: Option<Retention>,
    now_ms: u64,
    bypass: LockBypass,
) -> S3Result<()> {
    let Some(current) = current.filter(|c| c.until_ms > now_ms) else {
        return Ok(());
    };
    let keeps = wanted.is_some_and(|w| w.until_ms >= current.until_ms);
    let denied = |why: &str| {
        Err(S3Error::new(
            ErrorCode::AccessDenied,
            format!("Access Denied because object protected by object lock: {why}."),
        ))
    };
    let same_mode = wanted.is_some_and(|w| w.mode == current.mode);
    match current.mode {
        RetentionMode::Compliance if keeps && same_mode => Ok(()),
        RetentionMode::Compliance => denied("a COMPLIANCE retention can only be extended"),
        RetentionMode::Governance if keeps && same_mode => Ok(()),
        RetentionMode::Governance if bypass == LockBypass::Governance => Ok(()),
        RetentionMode::Governance => denied(
            "shortening or changing a GOVERNANCE retention needs x-amz-bypass-governance-retention",
        ),
    }
}

pub async fn get_object_legal_hold(
    state: &S3State,
    req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    locked_bucket(&req)?;
    let version = object_version(state, &req, version_id).await?;
    let doc = xml::LegalHold {
        xmlns: NS,
        status: Some(if version.meta.legal_hold { "ON" } else { "OFF" }.into()),
    };
    xml_ok(xml::to_xml("LegalHold", &doc)?)
}

pub async fn put_object_legal_hold(
    state: &S3State,
    mut req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    locked_bucket(&req)?;
    require_integrity(req.headers())?;
    let body = read_small_body(&mut req, MAX_BODY).await?;
    let doc: xml::LegalHold = xml::from_xml("LegalHold", &body)?;
    let on = match doc.status.as_deref() {
        Some("ON") => true,
        Some("OFF") => false,
        _ => return Err(ErrorCode::MalformedXML.into()),
    };
    change_lock(state, &req, version_id, |meta| {
        meta.legal_hold = on;
        Ok(())
    })
    .await
}

/// Object Lock calls need a bucket with Object Lock.
fn locked_bucket(req: &S3Request) -> S3Result<()> {
    match req.access.bucket()?.object_lock {
        Some(_) => Ok(()),
        None => Err(missing_lock_configuration()),
    }
}

fn missing_lock_configuration() -> S3Error {
    S3Error::new(
        ErrorCode::InvalidRequest,
        "Bucket is missing Object Lock Configuration",
    )
}

fn invalid(message: &str) -> S3Error {
    S3Error::new(ErrorCode::InvalidArgument, message)
}

/// AWS requires Content-MD5 (or, from newer SDKs, a checksum) on the calls that set locks.
fn require_integrity(headers: &HeaderMap) -> S3Result<()> {
    if has_integrity(headers) {
        Ok(())
    } else {
        Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Missing required header for this request: Content-MD5",
        ))
    }
}

/// An upload of a version that will be locked must be checked on arrival, as AWS requires.
pub(super) fn require_upload_integrity(meta: &ObjectMeta, headers: &HeaderMap) -> S3Result<()> {
    if (meta.retention.is_none() && !meta.legal_hold) || has_integrity(headers) {
        Ok(())
    } else {
        Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
        ))
    }
}

fn has_integrity(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        name == "content-md5"
            || name == "x-amz-sdk-checksum-algorithm"
            || name == "x-amz-trailer"
            || name.starts_with("x-amz-checksum-")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(mode: RetentionMode, until_ms: u64) -> Option<Retention> {
        Some(Retention { mode, until_ms })
    }

    #[test]
    fn compliance_only_extends_governance_needs_a_bypass_to_shorten() {
        use LockBypass::{Governance, Nothing};
        use RetentionMode::{Compliance as C, Governance as G};
        let now = 1000;
        assert!(check_retention_change(r(C, 5000), r(C, 6000), now, Nothing).is_ok());
        assert!(check_retention_change(r(C, 5000), r(C, 4000), now, Governance).is_err());
        assert!(check_retention_change(r(C, 5000), r(G, 9000), now, Governance).is_err());
        assert!(check_retention_change(r(C, 5000), None, now, Governance).is_err());
        assert!(check_retention_change(r(G, 5000), r(G, 6000), now, Nothing).is_ok());
        assert!(check_retention_change(r(G, 5000), r(C, 5000), now, Nothing).is_err());
        assert!(check_retention_change(r(G, 5000), r(C, 5000), now, Governance).is_ok());
        assert!(check_retention_change(r(G, 5000), r(G, 4000), now, Nothing).is_err());
        assert!(check_retention_change(r(G, 5000), r(G, 4000), now, Governance).is_ok());
        assert!(check_retention_change(r(G, 5000), None, now, Governance).is_ok());
        // An expired retention no longer holds anything.
        assert!(check_retention_change(r(C, 500), None, now, Nothing).is_ok());
    }
}
