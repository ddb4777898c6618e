//! Typed request parameters, parsed once by the router from the query string (and the
//! `x-amz-copy-source` header), so that no handler reads the query itself.

use crate::error::{ErrorCode, S3Error, S3Result};
use crate::query::Query;
use crate::xml;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kura_index::ListParams;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

const DEFAULT_MAX_KEYS: usize = 1000;
/// AWS's page size limit for ListParts.
pub const MAX_PARTS: usize = 1000;

/// The standard headers stored with an object; a GET may override each in its answer
/// with a `response-<header>` query parameter.
pub const STORED_HEADERS: [&str; 6] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

/// Characters left as they are under `encoding-type=url`.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The listing parameters every list call shares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max: usize,
    pub url_encode: bool,
}

impl ListQuery {
    /// `max_name` is the page size's parameter (`max-keys`, `max-uploads`).
    pub fn parse(query: &Query, max_name: &str) -> S3Result<Self> {
        let max = match query.get(max_name) {
            None => DEFAULT_MAX_KEYS,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(|n| n.min(DEFAULT_MAX_KEYS as i64) as usize)
                .ok_or_else(|| {
                    S3Error::new(
                        ErrorCode::InvalidArgument,
                        format!("Provided {max_name} not an integer or within integer range"),
                    )
                    .with("ArgumentName", max_name)
                    .with("ArgumentValue", raw)
                })?,
        };
        let url_encode = match query.get("encoding-type") {
            None => false,
            Some(t) if t.eq_ignore_ascii_case("url") => true,
            Some(t) => {
                return Err(S3Error::new(
                    ErrorCode::InvalidArgument,
                    "Invalid Encoding Method specified in Request",
                )
                .with("ArgumentName", "encoding-type")
                .with("ArgumentValue", t));
            }
        };
        Ok(ListQuery {
            prefix: query.get("prefix").unwrap_or("").to_owned(),
            delimiter: query
                .get("delimiter")
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            max,
            url_encode,
        })
    }

    pub fn params<'a>(&'a self, after: Option<&'a str>) -> ListParams<'a> {
        ListParams {
            prefix: &self.prefix,
            delimiter: self.delimiter.as_deref(),
            after,
            max: self.max,
        }
    }

    /// A key or prefix as the response shows it.
    pub fn show(&self, text: &str) -> String {
        if self.url_encode {
            utf8_percent_encode(text, URL_ENCODE).to_string()
        } else {
            text.to_owned()
        }
    }

    pub fn encoding_type(&self) -> Option<&'static str> {
        self.url_encode.then_some("url")
    }

    pub fn prefixes(&self, prefixes: &[String]) -> Vec<xml::CommonPrefix> {
        prefixes
            .iter()
            .map(|p| xml::CommonPrefix {
                prefix: self.show(p),
            })
            .collect()
    }
}

/// ListBuckets' paging and filters (the paginated ListBuckets of 2024).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketListQuery {
    /// At most this many buckets per page; all of them when absent.
    pub max_buckets: Option<usize>,
    pub continuation_token: Option<ContinuationToken>,
    pub prefix: Option<String>,
    pub bucket_region: Option<String>,
}

impl BucketListQuery {
    pub fn parse(query: &Query) -> S3Result<Self> {
        let max_buckets = query
            .get("max-buckets")
            .map(|raw| {
                raw.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| {
                        S3Error::new(
                            ErrorCode::InvalidArgument,
                            "max-buckets must be an integer between 1 and 10000",
                        )
                        .with("ArgumentName", "max-buckets")
                        .with("ArgumentValue", raw)
                    })
            })
            .transpose()?;
        Ok(BucketListQuery {
            max_buckets,
            continuation_token: query
                .get("continuation-token")
                .map(ContinuationToken::parse)
                .transpose()?,
            prefix: query.get("prefix").map(str::to_owned),
            bucket_region: query.get("bucket-region").map(str::to_owned),
        })
    }
}

/// A ListObjectsV2 continuation token: opaque to clients, the last key listed to Kura.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContinuationToken {
    /// As the client sent it (echoed in the answer).
    pub raw: String,
    /// The key the next page starts after.
    pub after: String,
}

impl ContinuationToken {
    pub fn encode(last: &str) -> String {
        URL_SAFE_NO_PAD.encode(last)
    }

    pub fn parse(raw: &str) -> S3Result<Self> {
        URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(|after| ContinuationToken {
                raw: raw.to_owned(),
                after,
            })
            .ok_or_else(|| {
                S3Error::new(
                    ErrorCode::InvalidArgument,
                    "The continuation token provided is incorrect",
                )
                .with("ArgumentName", "continuation-token")
            })
    }
}

/// What a GET or HEAD of an object reads and how it answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRead {
    pub version_id: Option<String>,
    pub part_number: Option<u32>,
    /// `response-<header>` overrides, as (header, value).
    pub overrides: Vec<(&'static str, String)>,
}

impl ObjectRead {
    pub fn parse(query: &Query) -> S3Result<Self> {
        Ok(ObjectRead {
            version_id: version_id(query),
            part_number: query.get("partNumber").map(part_number).transpose()?,
            overrides: STORED_HEADERS
                .iter()
                .filter_map(|name| {
                    let value = query.get(&format!("response-{name}"))?;
                    Some((*name, value.to_owned()))
                })
                .collect(),
        })
    }

    /// The override of `header`, if the request asked for one.
    pub fn overridden(&self, header: &str) -> Option<&str> {
        self.overrides
            .iter()
            .find(|(name, _)| *name == header)
            .map(|(_, value)| value.as_str())
    }
}

/// The object named by `x-amz-copy-source`: `bucket/key`, URL-encoded, optionally with
/// a leading `/` and a `?versionId=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

impl CopySource {
    pub fn parse(raw: &str) -> S3Result<Self> {
        let invalid = || {
            S3Error::new(ErrorCode::InvalidArgument, "Invalid copy source object key")
                .with("ArgumentName", "x-amz-copy-source")
        };
        let (path, version_id) = match raw.split_once("?versionId=") {
            Some((path, version)) => (path, Some(version.to_owned())),
            None => (raw, None),
        };
        let path = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| invalid())?;
        let path = path.strip_prefix('/').unwrap_or(&path);
        match path.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(CopySource {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version_id,
            }),
            _ => Err(invalid()),
        }
    }
}

pub fn version_id(query: &Query) -> Option<String> {
    query.get("versionId").map(str::to_owned)
}

/// A part number: 1 to 10000, as AWS allows.
pub fn part_number(raw: &str) -> S3Result<u32> {
    match raw.parse::<u32>() {
        Ok(n @ 1..=10000) => Ok(n),
        _ => Err(S3Error::new(
            ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )
        .with("ArgumentName", "partNumber")
        .with("ArgumentValue", raw)),
    }
}

/// A non-negative count parameter, `default` when absent.
pub fn count(query: &Query, name: &str, default: usize) -> S3Result<usize> {
    match query.get(name) {
        None => Ok(default),
        Some(raw) => raw.parse::<usize>().map_err(|_| {
            S3Error::new(
                ErrorCode::InvalidArgument,
                format!("Provided {name} not an integer or within integer range"),
            )
            .with("ArgumentName", name)
            .with("ArgumentValue", raw)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_tokens_are_refused() {
        let token = ContinuationToken::encode("a/b c+é");
        assert_eq!(ContinuationToken::parse(&token).unwrap().after, "a/b c+é");
        assert_eq!(
            ContinuationToken::parse("!!!").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        let list = ListQuery {
            url_encode: true,
            ..Default::default()
        };
        assert_eq!(list.show("a b/c+d%é"), "a%20b/c%2Bd%25%C3%A9");
    }

    #[test]
    fn copy_sources() {
        let parsed = CopySource::parse("/src/a%20b/c?versionId=null").unwrap();
        assert_eq!(
            (parsed.bucket.as_str(), parsed.key.as_str()),
            ("src", "a b/c")
        );
        assert_eq!(parsed.version_id.as_deref(), Some("null"));
        for bad in ["", "bucket", "/bucket/", "%FF/k"] {
            assert!(CopySource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_with_part_numbers_and_overrides() {
        let q = |s: &str| Query::parse(Some(s));
        let read =
            ObjectRead::parse(&q("partNumber=3&response-content-type=text%2Fplain")).unwrap();
        assert_eq!(read.part_number, Some(3));
        assert_eq!(read.overridden("content-type"), Some("text/plain"));
        for bad in ["partNumber=0", "partNumber=10001", "partNumber=x"] {
            assert!(ObjectRead::parse(&q(bad)).is_err(), "{bad}");
        }
    }
}
