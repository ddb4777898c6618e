//! Conditional request headers (If-Match and friends), for reads and for copy sources.

use super::response::unquote;
use crate::error::{ErrorCode, S3Error, S3Result};
use http::HeaderMap;

/// Which header family is evaluated.
#[derive(Clone, Copy)]
pub enum Family {
    /// `If-Match`, … on GET/HEAD: failures answer 412 or 304.
    Read,
    /// `x-amz-copy-source-if-match`, …: every failure answers 412.
    CopySource,
}

impl Family {
    fn name(self, condition: &str) -> String {
        match self {
            Family::Read => condition.to_owned(),
            Family::CopySource => format!("x-amz-copy-source-{condition}"),
        }
    }
}

/// Evaluates the conditions as S3 does: a true If-Match overrides a false
/// If-Unmodified-Since, and a false If-None-Match overrides a true
/// If-Modified-Since.
pub fn check(
    headers: &HeaderMap,
    family: Family,
    etag: &str,
    last_modified_ms: u64,
) -> S3Result<()> {
    let get = |c: &str| headers.get(family.name(c)).and_then(|v| v.to_str().ok());
    let modified_secs = last_modified_ms / 1000;
    let since = |c: &str| {
        get(c)
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .map(secs)
    };

    let if_match = get("if-match").map(|list| etag_matches(list, etag));
    let unmodified_ok = since("if-unmodified-since").map(|at| modified_secs <= at);
    if if_match == Some(false) || (if_match.is_none() && unmodified_ok == Some(false)) {
        return Err(ErrorCode::PreconditionFailed.into());
    }
    let if_none_match = get("if-none-match").map(|list| !etag_matches(list, etag));
    let modified_ok = since("if-modified-since").map(|at| modified_secs > at);
    let not_modified =
        if_none_match == Some(false) || (if_none_match.is_none() && modified_ok == Some(false));
    if not_modified {
        return Err(match family {
            // A 304 carries the validators a 200 would (RFC 9110 15.4.5).
            Family::Read => S3Error::from(ErrorCode::NotModified)
                .with_header("etag", format!("\"{etag}\""))
                .with_header("last-modified", crate::timefmt::http_date(last_modified_ms)),
            Family::CopySource => ErrorCode::PreconditionFailed.into(),
        });
    }
    Ok(())
}

fn secs(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether a comma-separated ETag list (or `*`) names `etag`.
pub fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || unquote(candidate) == etag)
}

/// A delete's conditions from its headers (`If-Match`, `x-amz-if-match-last-modified-time`,
/// `x-amz-if-match-size`), or from a DeleteObjects entry's `ETag`, `LastModifiedTime` and
/// `Size`.
pub fn delete_if(
    etags: Option<&str>,
    modified: Option<&str>,
    size: Option<&str>,
) -> S3Result<kura_index::DeleteIf> {
    let invalid = |what: &str, value: &str| {
        S3Error::new(
            ErrorCode::InvalidArgument,
            format!("Invalid {what}: {value}"),
        )
    };
    // SDKs send an HTTP date, in the XML too; ISO 8601 is what S3 writes in XML.
    let parse = |text: &str| {
        let http = httpdate::parse_http_date(text.trim()).ok().map(secs);
        http.or_else(|| crate::timefmt::parse_iso8601(text).map(|ms| ms / 1000))
    };
    let modified_s = match modified {
        Some(text) => Some(parse(text).ok_or_else(|| invalid("last modified time", text))?),
        None => None,
    };
    let size = match size {
        Some(text) => Some(text.trim().parse().map_err(|_| invalid("size", text))?),
        None => None,
    };
    let etags = etags.map(|list| {
        list.split(',')
            .map(|t| unquote(t.trim()).to_owned())
            .collect()
    });
    Ok(kura_index::DeleteIf {
        etags,
        modified_s,
        size,
    })
}

/// Write preconditions (PutObject, CompleteMultipartUpload): `If-None-Match: *`
/// refuses to overwrite, `If-Match` requires the current ETag. `If-None-Match` with
/// ETags (AWS answers 501 to it; radosgw and MinIO accept it) refuses to overwrite an
/// object with one of them.
pub struct WriteConditions {
    if_none_match: Option<String>,
    if_match: Option<String>,
}

impl WriteConditions {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let get = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        WriteConditions {
            if_none_match: get("if-none-match"),
            if_match: get("if-match"),
        }
    }

    /// Whether the write has any condition to check.
    pub fn any(&self) -> bool {
        self.if_none_match.is_some() || self.if_match.is_some()
    }

    pub fn check(&self, current: Option<&kura_index::ObjectVersion>) -> S3Result<()> {
        match (current, &self.if_match) {
            (None, Some(_)) => return Err(ErrorCode::NoSuchKey.into()),
            (Some(v), Some(list)) if !etag_matches(list, &v.etag) => {
                return Err(ErrorCode::PreconditionFailed.into());
            }
            _ => {}
        }
        if let (Some(v), Some(list)) = (current, &self.if_none_match)
            && etag_matches(list, &v.etag)
        {
            return Err(ErrorCode::PreconditionFailed.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (http::HeaderName::from_static(n), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn read_conditions_follow_s3_precedence() {
        let modified = 1_700_000_000_000;
        let before = "Mon, 13 Nov 2023 00:00:00 GMT";
        let after = "Fri, 17 Nov 2023 00:00:00 GMT";
        let ok = |h: &[(&'static str, &str)]| check(&headers(h), Family::Read, "abc", modified);
        assert!(ok(&[("if-match", "\"abc\"")]).is_ok());
        assert_eq!(
            ok(&[("if-match", "\"x\"")]).unwrap_err().code,
            ErrorCode::PreconditionFailed
        );
        let not_modified = ok(&[("if-none-match", "\"abc\"")]).unwrap_err();
        assert_eq!(not_modified.code, ErrorCode::NotModified);
        assert!(
            not_modified
                .headers
                .contains(&("etag", "\"abc\"".to_owned()))
        );
        assert_eq!(
            ok(&[("if-modified-since", after)]).unwrap_err().code,
            ErrorCode::NotModified
        );
        assert!(ok(&[("if-modified-since", before)]).is_ok());
        assert_eq!(
            ok(&[("if-unmodified-since", before)]).unwrap_err().code,
            ErrorCode::PreconditionFailed
        );
        assert!(ok(&[("if-match", "abc"), ("if-unmodified-since", before)]).is_ok());
        let copy = check(
            &headers(&[("x-amz-copy-source-if-none-match", "abc")]),
            Family::CopySource,
            "abc",
            modified,
        );
        assert_eq!(copy.unwrap_err().code, ErrorCode::PreconditionFailed);
    }
}
