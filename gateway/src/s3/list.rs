//! ListObjects, ListObjectsV2 and ListObjectVersions.

use super::request::S3Request;
use super::response::{S3Response, quoted, xml_ok};
use crate::acl;
use crate::error::S3Result;
use crate::owner::owner;
use crate::params::{ContinuationToken, ListQuery};
use crate::state::S3State;
use crate::timefmt::iso8601;
use crate::xml::{self, NS};
use kura_index::{BucketRecord, ListPage, ObjectVersion};

fn contents(
    list: &ListQuery,
    key: &str,
    version: &ObjectVersion,
    with_owner: Option<&BucketRecord>,
) -> xml::Contents {
    xml::Contents {
        key: list.show(key),
        last_modified: iso8601(version.last_modified_ms()),
        etag: quoted(&version.etag),
        checksum_algorithm: version.checksum.as_ref().map(|c| c.algorithm.clone()),
        checksum_type: version.checksum.as_ref().map(|c| c.kind.clone()),
        size: version.size,
        storage_class: "STANDARD",
        owner: with_owner.map(|bucket| owner(acl::shown_owner(bucket, &version.owner))),
    }
}

pub async fn list_objects(
    state: &S3State,
    req: S3Request,
    list: &ListQuery,
    marker: &str,
) -> S3Result<S3Response> {
    let page = current_objects(
        state,
        &req.bucket,
        list,
        Some(marker).filter(|m| !m.is_empty()),
    )
    .await?;
    // AWS gives NextMarker only with a delimiter; without one, clients use the last key.
    let next_marker = (page.truncated && list.delimiter.is_some())
        .then(|| page.last().map(|l| list.show(l)))
        .flatten();
    let result = xml::ListBucketResult {
        marker: Some(list.show(marker)),
        next_marker,
        ..page_result(req.access.bucket()?, list, &page, true)
    };
    xml_ok(xml::to_xml("ListBucketResult", &result)?)
}

pub async fn list_objects_v2(
    state: &S3State,
    req: S3Request,
    list: &ListQuery,
    token: Option<&ContinuationToken>,
    start_after: Option<String>,
    fetch_owner: bool,
) -> S3Result<S3Response> {
    let after = token.map(|t| t.after.as_str()).or(start_after.as_deref());
    let page = current_objects(state, &req.bucket, list, after).await?;
    let result = xml::ListBucketResult {
        continuation_token: token.map(|t| t.raw.clone()),
        next_continuation_token: page
            .truncated
            .then(|| page.last().map(ContinuationToken::encode))
            .flatten(),
        start_after: start_after.map(|s| list.show(&s)),
        key_count: Some(page.entries.len() + page.prefixes.len()),
        ..page_result(req.access.bucket()?, list, &page, fetch_owner)
    };
    xml_ok(xml::to_xml("ListBucketResult", &result)?)
}

/// A page of current objects. A page of none is never truncated: AWS answers
/// `max-keys=0` with IsTruncated false whatever the bucket holds.
async fn current_objects(
    state: &S3State,
    bucket: &str,
    list: &ListQuery,
    after: Option<&str>,
) -> S3Result<ListPage<ObjectVersion>> {
    if list.max == 0 {
        return Ok(ListPage {
            entries: Vec::new(),
            prefixes: Vec::new(),
            truncated: false,
        });
    }
    Ok(state
        .index
        .list_objects(bucket, &list.params(after))
        .await?)
}

/// The parts of a ListObjects (v1 or v2) answer both versions share.
fn page_result(
    bucket: &BucketRecord,
    list: &ListQuery,
    page: &ListPage<ObjectVersion>,
    with_owner: bool,
) -> xml::ListBucketResult {
    xml::ListBucketResult {
        xmlns: NS,
        name: bucket.name.clone(),
        prefix: list.show(&list.prefix),
        marker: None,
        next_marker: None,
        continuation_token: None,
        next_continuation_token: None,
        start_after: None,
        key_count: None,
        max_keys: list.max,
        delimiter: list.delimiter.as_deref().map(|d| list.show(d)),
        encoding_type: list.encoding_type(),
        is_truncated: page.truncated,
        contents: page
            .entries
            .iter()
            .map(|(k, v)| contents(list, k, v, with_owner.then_some(bucket)))
            .collect(),
        common_prefixes: list.prefixes(&page.prefixes),
    }
}

pub async fn list_object_versions(
    state: &S3State,
    req: S3Request,
    list: &ListQuery,
    key_marker: &str,
    version_id_marker: String,
) -> S3Result<S3Response> {
    let key_marker_given = Some(key_marker).filter(|m| !m.is_empty());
    let page = state
        .index
        .list_versions(
            &req.bucket,
            &list.params(key_marker_given),
            key_marker_given.and(Some(version_id_marker.as_str()).filter(|m| !m.is_empty())),
        )
        .await?;
    let bucket = req.access.bucket()?;
    let mut items = Vec::new();
    for (key, listed) in &page.entries {
        let version = &listed.version;
        let entry = xml::ObjectVersionEntry {
            key: list.show(key),
            version_id: version.version_id.clone(),
            is_latest: listed.latest,
            last_modified: iso8601(version.last_modified_ms()),
            etag: (!version.delete_marker).then(|| quoted(&version.etag)),
            size: (!version.delete_marker).then_some(version.size),
            storage_class: (!version.delete_marker).then_some("STANDARD"),
            owner: owner(acl::shown_owner(bucket, &version.owner)),
        };
        items.push(if version.delete_marker {
            xml::VersionItem::DeleteMarker(entry)
        } else {
            xml::VersionItem::Version(entry)
        });
    }
    // The next page starts after the last version listed, or after a common prefix.
    let last = page.truncated.then(|| page.last()).flatten();
    let last_version = page
        .entries
        .last()
        .filter(|(key, _)| Some(key.as_str()) == last)
        .map(|(_, listed)| listed.version.version_id.clone());
    let last = last.map(|l| list.show(l));
    let result = xml::ListVersionsResult {
        xmlns: NS,
        name: req.bucket.clone(),
        prefix: list.show(&list.prefix),
        key_marker: list.show(key_marker),
        version_id_marker,
        next_version_id_marker: last_version,
        next_key_marker: last,
        max_keys: list.max,
        delimiter: list.delimiter.as_deref().map(|d| list.show(d)),
        encoding_type: list.encoding_type(),
        is_truncated: page.truncated,
        items,
        common_prefixes: list.prefixes(&page.prefixes),
    };
    xml_ok(xml::to_xml("ListVersionsResult", &result)?)
}
