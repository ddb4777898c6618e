//! Object metadata carried in headers: what is stored from a write, what is
//! returned on a read, and the write headers Kura accepts but does not store.

use super::request::S3Request;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::lifecycle;
use crate::params::{ObjectRead, STORED_HEADERS};
use crate::state::S3State;
use crate::tags;
use http::HeaderMap;
use http::response::Builder;
use kura_index::{ObjectMeta, ObjectVersion};

const USER_PREFIX: &str = "x-amz-meta-";
/// AWS's limit on user-defined metadata (names and values), in bytes.
const MAX_USER_META: usize = 2048;
pub const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// Metadata to store from a write's headers.
pub fn from_headers(headers: &HeaderMap) -> S3Result<ObjectMeta> {
    let mut meta = ObjectMeta::default();
    for name in STORED_HEADERS {
        let Some(value) = text(headers, name) else {
            continue;
        };
        let value = if name == "content-encoding" {
            strip_aws_chunked(value)
        } else {
            value.to_owned()
        };
        if !value.is_empty() {
            meta.headers.push((name.to_owned(), value));
        }
    }
    let mut size = 0;
    for (name, value) in headers {
        if let Some(user) = name.as_str().strip_prefix(USER_PREFIX) {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            size += user.len() + value.len();
            meta.user.push((user.to_owned(), value));
        }
    }
    if size > MAX_USER_META {
        return Err(S3Error::new(
            ErrorCode::MetadataTooLarge,
            format!(
                "Your metadata headers exceed the maximum allowed metadata size of {MAX_USER_META} bytes."
            ),
        ));
    }
    Ok(meta)
}

/// `aws-chunked` describes the transfer, not the object: it is never stored.
fn strip_aws_chunked(value: &str) -> String {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.eq_ignore_ascii_case("aws-chunked") && !v.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds `x-amz-expiration` when a lifecycle rule of the bucket will expire the object.
pub fn expiration(
    builder: Builder,
    state: &S3State,
    req: &S3Request,
    version: &ObjectVersion,
) -> S3Result<Builder> {
    let rules = req
        .access
        .bucket()?
        .lifecycle
        .as_deref()
        .unwrap_or_default();
    Ok(
        match lifecycle::expiration_header(rules, &req.key, version, state.lifecycle_day) {
            Some(header) => builder.header("x-amz-expiration", header),
            None => builder,
        },
    )
}

/// Adds an object's stored headers to a response, with `response-*` query
/// overrides applied.
pub fn apply(mut builder: Builder, meta: &ObjectMeta, read: &ObjectRead) -> Builder {
    let stored = |name: &str| {
        meta.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    for name in STORED_HEADERS {
        let value = read
            .overridden(name)
            .or_else(|| stored(name))
            .or((name == "content-type").then_some(DEFAULT_CONTENT_TYPE));
        if let Some(value) = value {
            builder = builder.header(name, value);
        }
    }
    if !meta.tags.is_empty() {
        builder = builder.header("x-amz-tagging-count", meta.tags.len());
    }
    for (name, value) in &meta.user {
        // As sent: UTF-8 bytes pass through (obs-text), not only visible ASCII.
        if let Ok(value) = http::HeaderValue::from_bytes(value.as_bytes()) {
            builder = builder.header(format!("{USER_PREFIX}{name}"), value);
        }
    }
    builder
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every object is stored as STANDARD.
pub fn check_storage_class(headers: &HeaderMap) -> S3Result<()> {
    match text(headers, "x-amz-storage-class") {
        None | Some("STANDARD") => Ok(()),
        Some(other) => Err(S3Error::new(
            ErrorCode::InvalidStorageClass,
            format!(
                "The storage class '{other}' is not supported; Kura stores objects as STANDARD."
            ),
        )),
    }
}

/// The checks every object write shares.
pub fn check_write_headers(headers: &HeaderMap) -> S3Result<ObjectMeta> {
    check_storage_class(headers)?;
    let mut meta = from_headers(headers)?;
    meta.tags = tags::from_header(text(headers, "x-amz-tagging"))?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_content_headers_but_not_aws_chunked() {
        let mut headers = HeaderMap::new();
        headers.insert("content-encoding", "aws-chunked".parse().unwrap());
        headers.insert("content-type", "text/plain".parse().unwrap());
        headers.insert("x-amz-meta-color", "blue".parse().unwrap());
        let meta = from_headers(&headers).unwrap();
        assert_eq!(
            meta.headers,
            vec![("content-type".to_string(), "text/plain".to_string())]
        );
        assert_eq!(meta.user, vec![("color".to_string(), "blue".to_string())]);
        assert_eq!(strip_aws_chunked("gzip, aws-chunked"), "gzip");
    }

    #[test]
    fn refuses_oversized_metadata() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-meta-big", "x".repeat(2100).parse().unwrap());
        assert_eq!(
            from_headers(&headers).unwrap_err().code,
            ErrorCode::MetadataTooLarge
        );
    }
}
