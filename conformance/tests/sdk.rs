//! End-to-end tests with the Rust AWS SDK (`aws-sdk-s3`) in its default configuration:
//! only the endpoint, path-style addressing, region and static credentials are set, so
//! uploads carry the SDK's default CRC32 checksums in aws-chunked trailers.
//!
//! Each test starts its own `kura` process (see `kura_conformance::KuraProcess`).

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use base64::Engine as _;
use kura_conformance::KuraProcess;
use md5::{Digest, Md5};

const MIB: usize = 1024 * 1024;

/// A fresh server and a client for it, with `bucket` already created.
async fn server_with_bucket(bucket: &str) -> (KuraProcess, Client) {
    let server = KuraProcess::start();
    let s3 = server.target().sdk_client();
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("create bucket");
    (server, s3)
}

/// Deterministic, non-repeating test data (xorshift64), different for each seed.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// The ETag S3 gives a single-part object: the quoted hex MD5 of its content.
fn simple_etag(data: &[u8]) -> String {
    format!("\"{}\"", hex::encode(md5(data)))
}

/// The ETag S3 gives a multipart object: MD5 of the concatenated part MD5s, `-N`.
fn multipart_etag(parts: &[&[u8]]) -> String {
    let digests: Vec<u8> = parts.iter().flat_map(|part| md5(part)).collect();
    format!("\"{}-{}\"", hex::encode(md5(&digests)), parts.len())
}

async fn put(s3: &Client, bucket: &str, key: &str, data: &[u8]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

async fn get_bytes(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let output = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
    output.body.collect().await.expect("read body").to_vec()
}

async fn list_keys(s3: &Client, bucket: &str) -> Vec<String> {
    let output = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list objects");
    output
        .contents()
        .iter()
        .filter_map(|object| object.key().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn bucket_create_list_head_delete() {
    let (_server, s3) = server_with_bucket("buckets").await;

    let listed = s3.list_buckets().send().await.expect("list buckets");
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["buckets"]);
    s3.head_bucket()
        .bucket("buckets")
        .send()
        .await
        .expect("head bucket");

    s3.delete_bucket()
        .bucket("buckets")
        .send()
        .await
        .expect("delete bucket");
    let err = s3.head_bucket().bucket("buckets").send().await.unwrap_err();
    assert!(
        err.as_service_error().is_some_and(|e| e.is_not_found()),
        "{err:?}"
    );
}

#[tokio::test]
async fn put_get_head_delete_object() {
    let (_server, s3) = server_with_bucket("objects").await;
    let data = pattern(100_000, 1);

    let put = s3
        .put_object()
        .bucket("objects")
        .key("dir/file.bin")
        .content_type("application/x-test")
        .metadata("color", "blue")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .expect("put object");
    assert_eq!(put.e_tag(), Some(simple_etag(&data).as_str()));

    let got = s3
        .get_object()
        .bucket("objects")
        .key("dir/file.bin")
        .send()
        .await
        .expect("get object");
    assert_eq!(got.e_tag(), Some(simple_etag(&data).as_str()));
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(got.content_length(), Some(data.len() as i64));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(got.body.collect().await.expect("read body").to_vec(), data);

    let head = s3
        .head_object()
        .bucket("objects")
        .key("dir/file.bin")
        .send()
        .await
        .expect("head object");
    assert_eq!(head.content_length(), Some(data.len() as i64));
    assert_eq!(head.e_tag(), Some(simple_etag(&data).as_str()));
    assert_eq!(head.content_type(), Some("application/x-test"));

    s3.delete_object()
        .bucket("objects")
        .key("dir/file.bin")
        .send()
        .await
        .expect("delete object");
    let err = s3
        .head_object()
        .bucket("objects")
        .key("dir/file.bin")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().is_some_and(|e| e.is_not_found()),
        "{err:?}"
    );
    assert!(list_keys(&s3, "objects").await.is_empty());
}

#[tokio::test]
async fn overwrite_replaces_content() {
    let (_server, s3) = server_with_bucket("overwrite").await;
    put(&s3, "overwrite", "k", b"first version").await;
    put(&s3, "overwrite", "k", b"second").await;
    assert_eq!(get_bytes(&s3, "overwrite", "k").await, b"second");
}

#[tokio::test]
async fn list_objects_v2_paginates_in_order() {
    let (_server, s3) = server_with_bucket("paging").await;
    let mut expected: Vec<String> = (0..25).map(|i| format!("key-{i:03}")).collect();
    for key in expected.iter().rev() {
        put(&s3, "paging", key, key.as_bytes()).await;
    }
    expected.sort();

    let mut pages = s3
        .list_objects_v2()
        .bucket("paging")
        .max_keys(10)
        .into_paginator()
        .send();
    let mut keys = Vec::new();
    let mut page_sizes = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.expect("list page");
        page_sizes.push(page.key_count().unwrap_or_default());
        let truncated = page.is_truncated().unwrap_or_default();
        assert_eq!(truncated, page.next_continuation_token().is_some());
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    assert_eq!(page_sizes, [10, 10, 5]);
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn list_objects_v2_prefix_delimiter_start_after() {
    let (_server, s3) = server_with_bucket("tree").await;
    for key in ["a/1", "a/2", "a/b/3", "b/1", "c", "d"] {
        put(&s3, "tree", key, b"x").await;
    }

    let root = s3
        .list_objects_v2()
        .bucket("tree")
        .delimiter("/")
        .send()
        .await
        .expect("list with delimiter");
    let prefixes: Vec<&str> = root
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    let keys: Vec<&str> = root.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(prefixes, ["a/", "b/"]);
    assert_eq!(keys, ["c", "d"]);
    assert_eq!(root.key_count(), Some(4));

    let under_a = s3
        .list_objects_v2()
        .bucket("tree")
        .prefix("a/")
        .delimiter("/")
        .send()
        .await
        .expect("list prefix a/");
    let keys: Vec<&str> = under_a.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = under_a
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(keys, ["a/1", "a/2"]);
    assert_eq!(prefixes, ["a/b/"]);

    let after = s3
        .list_objects_v2()
        .bucket("tree")
        .start_after("b/1")
        .send()
        .await
        .expect("list start-after");
    let keys: Vec<&str> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["c", "d"]);
}

#[tokio::test]
async fn delete_objects_removes_listed_keys() {
    let (_server, s3) = server_with_bucket("batch").await;
    for key in ["k1", "k2", "k3", "k4"] {
        put(&s3, "batch", key, key.as_bytes()).await;
    }

    let identifiers = ["k1", "k3", "missing"]
        .iter()
        .map(|key| ObjectIdentifier::builder().key(*key).build().expect("id"))
        .collect();
    let delete = Delete::builder()
        .set_objects(Some(identifiers))
        .build()
        .expect("delete request");
    let output = s3
        .delete_objects()
        .bucket("batch")
        .delete(delete)
        .send()
        .await
        .expect("delete objects");

    let mut deleted: Vec<&str> = output.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(deleted, ["k1", "k3", "missing"]);
    assert!(output.errors().is_empty(), "{:?}", output.errors());
    assert_eq!(list_keys(&s3, "batch").await, ["k2", "k4"]);
}

#[tokio::test]
async fn multipart_upload_complete() {
    let (_server, s3) = server_with_bucket("multipart").await;
    let parts = [pattern(5 * MIB, 1), pattern(5 * MIB, 2), pattern(1234, 3)];

    let upload = s3
        .create_multipart_upload()
        .bucket("multipart")
        .key("big")
        .send()
        .await
        .expect("create multipart upload");
    let upload_id = upload.upload_id().expect("upload id");

    let mut completed = Vec::new();
    for (number, data) in (1..).zip(&parts) {
        let part = s3
            .upload_part()
            .bucket("multipart")
            .key("big")
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload part {number}: {e:?}"));
        assert_eq!(part.e_tag(), Some(simple_etag(data).as_str()));
        completed.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(part.e_tag().unwrap_or_default())
                .build(),
        );
    }

    let listed = s3
        .list_parts()
        .bucket("multipart")
        .key("big")
        .upload_id(upload_id)
        .send()
        .await
        .expect("list parts");
    let listed: Vec<(Option<i32>, Option<i64>, Option<&str>)> = listed
        .parts()
        .iter()
        .map(|p| (p.part_number(), p.size(), p.e_tag()))
        .collect();
    let expected: Vec<(Option<i32>, Option<i64>, Option<&str>)> = completed
        .iter()
        .zip(&parts)
        .map(|(c, data)| (c.part_number(), Some(data.len() as i64), c.e_tag()))
        .collect();
    assert_eq!(listed, expected);

    let done = s3
        .complete_multipart_upload()
        .bucket("multipart")
        .key("big")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .expect("complete multipart upload");
    let part_refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let etag = multipart_etag(&part_refs);
    assert_eq!(done.e_tag(), Some(etag.as_str()));

    let head = s3
        .head_object()
        .bucket("multipart")
        .key("big")
        .send()
        .await
        .expect("head");
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(head.content_length(), Some(part_refs.concat().len() as i64));
    assert_eq!(get_bytes(&s3, "multipart", "big").await, part_refs.concat());
}

#[tokio::test]
async fn multipart_upload_abort() {
    let (_server, s3) = server_with_bucket("aborted").await;
    let upload = s3
        .create_multipart_upload()
        .bucket("aborted")
        .key("never")
        .send()
        .await
        .expect("create multipart upload");
    let upload_id = upload.upload_id().expect("upload id");
    s3.upload_part()
        .bucket("aborted")
        .key("never")
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from(pattern(1000, 4)))
        .send()
        .await
        .expect("upload part");

    let uploads = s3
        .list_multipart_uploads()
        .bucket("aborted")
        .send()
        .await
        .expect("list uploads");
    let ids: Vec<&str> = uploads
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id())
        .collect();
    assert_eq!(ids, [upload_id]);

    s3.abort_multipart_upload()
        .bucket("aborted")
        .key("never")
        .upload_id(upload_id)
        .send()
        .await
        .expect("abort");

    let err = s3
        .list_parts()
        .bucket("aborted")
        .key("never")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&err),
        Some("NoSuchUpload")
    );
    let uploads = s3
        .list_multipart_uploads()
        .bucket("aborted")
        .send()
        .await
        .expect("list uploads");
    assert!(uploads.uploads().is_empty());
    assert!(list_keys(&s3, "aborted").await.is_empty());
}

#[tokio::test]
async fn copy_object_across_buckets() {
    let (_server, s3) = server_with_bucket("source").await;
    s3.create_bucket()
        .bucket("destination")
        .send()
        .await
        .expect("create destination");
    let data = pattern(300_000, 5);
    s3.put_object()
        .bucket("source")
        .key("original")
        .metadata("origin", "source")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .expect("put source");

    let copied = s3
        .copy_object()
        .bucket("destination")
        .key("copy")
        .copy_source("source/original")
        .send()
        .await
        .expect("copy object");
    let etag = copied.copy_object_result().and_then(|r| r.e_tag());
    assert_eq!(etag, Some(simple_etag(&data).as_str()));

    let got = s3
        .get_object()
        .bucket("destination")
        .key("copy")
        .send()
        .await
        .expect("get copy");
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("source")
    );
    assert_eq!(got.body.collect().await.expect("body").to_vec(), data);
    assert_eq!(get_bytes(&s3, "source", "original").await, data);
}

#[tokio::test]
async fn presigned_put_and_get() {
    let (_server, s3) = server_with_bucket("presigned").await;
    let http = reqwest::Client::new();
    let data = pattern(10_000, 6);
    let expiry = PresigningConfig::expires_in(Duration::from_secs(300)).expect("expiry");

    let put = s3
        .put_object()
        .bucket("presigned")
        .key("via url")
        .presigned(expiry.clone())
        .await
        .expect("presign put");
    let mut request = http.put(put.uri()).body(data.clone());
    for (name, value) in put.headers() {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("send presigned put");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(get_bytes(&s3, "presigned", "via url").await, data);

    let get = s3
        .get_object()
        .bucket("presigned")
        .key("via url")
        .presigned(expiry)
        .await
        .expect("presign get");
    let response = http
        .get(get.uri())
        .send()
        .await
        .expect("send presigned get");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        data.as_slice()
    );
}

#[tokio::test]
async fn presigned_url_expires() {
    let (_server, s3) = server_with_bucket("expiring").await;
    put(&s3, "expiring", "k", b"data").await;
    let expiry = PresigningConfig::expires_in(Duration::from_secs(1)).expect("expiry");
    let get = s3
        .get_object()
        .bucket("expiring")
        .key("k")
        .presigned(expiry)
        .await
        .expect("presign get");
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let response = reqwest::get(get.uri()).await.expect("send presigned get");
    assert_eq!(response.status(), 403);
    let body = response.text().await.expect("body");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
}

#[tokio::test]
async fn missing_key_and_bucket_errors() {
    let (_server, s3) = server_with_bucket("present").await;

    let err = s3
        .get_object()
        .bucket("present")
        .key("absent")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().is_some_and(|e| e.is_no_such_key()),
        "{err:?}"
    );
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));

    let err = s3
        .get_object()
        .bucket("absent-bucket")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&err),
        Some("NoSuchBucket")
    );
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));

    let err = s3
        .list_objects_v2()
        .bucket("absent-bucket")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_no_such_bucket()),
        "{err:?}"
    );
}

#[tokio::test]
async fn checksum_mode_returns_stored_crc32() {
    let (_server, s3) = server_with_bucket("checksums").await;
    let data = pattern(70_000, 7);
    let expected =
        base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(&data).to_be_bytes());

    // The SDK's default: CRC32 computed while streaming, sent as an aws-chunked trailer.
    let put = s3
        .put_object()
        .bucket("checksums")
        .key("summed")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .expect("put object");
    assert_eq!(put.checksum_crc32(), Some(expected.as_str()));

    let head = s3
        .head_object()
        .bucket("checksums")
        .key("summed")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("head with checksum mode");
    assert_eq!(head.checksum_crc32(), Some(expected.as_str()));

    // With checksum mode on, the SDK also validates the body against the header.
    let got = s3
        .get_object()
        .bucket("checksums")
        .key("summed")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("get with checksum mode");
    assert_eq!(got.checksum_crc32(), Some(expected.as_str()));
    assert_eq!(
        got.body.collect().await.expect("validated body").to_vec(),
        data
    );
}

#[tokio::test]
async fn objects_survive_restart_and_kill9() {
    let (mut server, s3) = server_with_bucket("durable").await;
    let data = pattern(200_000, 8);
    put(&s3, "durable", "before-restart", &data).await;

    let status = server.stop();
    assert!(status.success(), "graceful shutdown exited with {status}");
    server.restart();
    assert_eq!(get_bytes(&s3, "durable", "before-restart").await, data);

    put(&s3, "durable", "before-kill", b"acknowledged").await;
    server.kill9();
    server.restart();
    assert_eq!(
        get_bytes(&s3, "durable", "before-kill").await,
        b"acknowledged"
    );
    assert_eq!(
        list_keys(&s3, "durable").await,
        ["before-kill", "before-restart"]
    );
}
