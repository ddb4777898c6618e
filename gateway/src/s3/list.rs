//! ListObjects, ListObjectsV2 and ListObjectVersions.

use super::request::S3Request;
use super::response::{S3Response, quoted, xml_ok};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::owner::owner;
use crate::router::Query;
use crate::state::S3State;
use crate::timefmt::iso8601;
use crate::xml::{self, NS};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kura_index::{ListPage, ListParams, ObjectVersion};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

const DEFAULT_MAX_KEYS: usize = 1000;

/// Characters left as they are under `encoding-type=url`.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The listing parameters every list call shares.
pub struct Common {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max: usize,
    pub url_encode: bool,
}

impl Common {
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
        Ok(Common {
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

fn contents(
    common: &Common,
    key: &str,
    version: &ObjectVersion,
    with_owner: bool,
) -> xml::Contents {
    xml::Contents {
        key: common.show(key),
        last_modified: iso8601(version.last_modified_ms()),
        etag: quoted(&version.etag),
        checksum_algorithm: version.checksum.as_ref().map(|c| c.algorithm.clone()),
        checksum_type: version.checksum.as_ref().map(|c| c.kind.clone()),
        size: version.size,
        storage_class: "STANDARD",
        owner: with_owner.then(|| owner(&version.owner)),
    }
}

pub async fn list_objects(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    state.authorize(&req.bucket, req.user())?;
    let common = Common::parse(&req.query, "max-keys")?;
    let marker = req.query.get("marker").unwrap_or("");
    let page = state.index.list_objects(
        &req.bucket,
        &common.params(Some(marker).filter(|m| !m.is_empty())),
    )?;
    // AWS gives NextMarker only with a delimiter; without one, clients use the last key.
    let next_marker = (page.truncated && common.delimiter.is_some())
        .then(|| page.last().map(|l| common.show(l)))
        .flatten();
    let result = xml::ListBucketResult {
        marker: Some(common.show(marker)),
        next_marker,
        ..page_result(&req.bucket, &common, &page, true)
    };
    xml_ok(xml::to_xml("ListBucketResult", &result)?)
}

pub async fn list_objects_v2(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    state.authorize(&req.bucket, req.user())?;
    let common = Common::parse(&req.query, "max-keys")?;
    let token = req.query.get("continuation-token");
    let start_after = req.query.get("start-after").filter(|s| !s.is_empty());
    let after = match token {
        Some(token) => Some(decode_token(token)?),
        None => start_after.map(str::to_owned),
    };
    let page = state
        .index
        .list_objects(&req.bucket, &common.params(after.as_deref()))?;
    let fetch_owner = req.query.get("fetch-owner") == Some("true");
    let result = xml::ListBucketResult {
        continuation_token: token.map(str::to_owned),
        next_continuation_token: page
            .truncated
            .then(|| page.last().map(encode_token))
            .flatten(),
        start_after: start_after.map(|s| common.show(s)),
        key_count: Some(page.entries.len() + page.prefixes.len()),
        ..page_result(&req.bucket, &common, &page, fetch_owner)
    };
    xml_ok(xml::to_xml("ListBucketResult", &result)?)
}

/// The parts of a ListObjects (v1 or v2) answer both versions share.
fn page_result(
    bucket: &str,
    common: &Common,
    page: &ListPage<ObjectVersion>,
    with_owner: bool,
) -> xml::ListBucketResult {
    xml::ListBucketResult {
        xmlns: NS,
        name: bucket.to_owned(),
        prefix: common.show(&common.prefix),
        marker: None,
        next_marker: None,
        continuation_token: None,
        next_continuation_token: None,
        start_after: None,
        key_count: None,
        max_keys: common.max,
        delimiter: common.delimiter.as_deref().map(|d| common.show(d)),
        encoding_type: common.encoding_type(),
        is_truncated: page.truncated,
        contents: page
            .entries
            .iter()
            .map(|(k, v)| contents(common, k, v, with_owner))
            .collect(),
        common_prefixes: common.prefixes(&page.prefixes),
    }
}

fn encode_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

fn decode_token(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidArgument,
                "The continuation token provided is incorrect",
            )
            .with("ArgumentName", "continuation-token")
        })
}

pub async fn list_object_versions(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    state.authorize(&req.bucket, req.user())?;
    let common = Common::parse(&req.query, "max-keys")?;
    let key_marker = req.query.get("key-marker").unwrap_or("");
    let page = state.index.list_versions(
        &req.bucket,
        &common.params(Some(key_marker).filter(|m| !m.is_empty())),
    )?;
    let mut items = Vec::new();
    for (key, record) in &page.entries {
        for (i, version) in record.versions.iter().enumerate() {
            let entry = xml::ObjectVersionEntry {
                key: common.show(key),
                version_id: version.version_id.clone(),
                is_latest: i == 0,
                last_modified: iso8601(version.last_modified_ms()),
                etag: (!version.delete_marker).then(|| quoted(&version.etag)),
                size: (!version.delete_marker).then_some(version.size),
                storage_class: (!version.delete_marker).then_some("STANDARD"),
                owner: owner(&version.owner),
            };
            items.push(if version.delete_marker {
                xml::VersionItem::DeleteMarker(entry)
            } else {
                xml::VersionItem::Version(entry)
            });
        }
    }
    let last = page
        .truncated
        .then(|| page.last().map(|l| common.show(l)))
        .flatten();
    let result = xml::ListVersionsResult {
        xmlns: NS,
        name: req.bucket.clone(),
        prefix: common.show(&common.prefix),
        key_marker: common.show(key_marker),
        version_id_marker: req.query.get("version-id-marker").unwrap_or("").to_owned(),
        next_version_id_marker: last.as_ref().map(|_| "null".to_owned()),
        next_key_marker: last,
        max_keys: common.max,
        delimiter: common.delimiter.as_deref().map(|d| common.show(d)),
        encoding_type: common.encoding_type(),
        is_truncated: page.truncated,
        items,
        common_prefixes: common.prefixes(&page.prefixes),
    };
    xml_ok(xml::to_xml("ListVersionsResult", &result)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_tokens_are_refused() {
        assert_eq!(decode_token(&encode_token("a/b c+é")).unwrap(), "a/b c+é");
        assert_eq!(
            decode_token("!!!").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        let common = Common {
            prefix: String::new(),
            delimiter: None,
            max: 1,
            url_encode: true,
        };
        assert_eq!(common.show("a b/c+d%é"), "a%20b/c%2Bd%25%C3%A9");
    }
}
