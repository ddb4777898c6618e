"""boto3: CopyObject -- across buckets, metadata directive, copy-source
conditions, copy onto itself."""

import datetime

import pytest

from conftest import md5_hex, s3_error, unique_bucket_name, empty_and_delete_bucket


@pytest.fixture
def two_buckets(s3, bucket):
    other = unique_bucket_name()
    s3.create_bucket(Bucket=other)
    yield bucket, other
    empty_and_delete_bucket(s3, other)


@pytest.fixture
def src(s3, bucket):
    body = b"copy source body \x00\xff" * 50
    s3.put_object(Bucket=bucket, Key="src/obj", Body=body, ContentType="text/x-src",
                  Metadata={"origin": "source"}, CacheControl="max-age=1")
    h = s3.head_object(Bucket=bucket, Key="src/obj")
    return bucket, body, h["ETag"], h["LastModified"]


def test_copy_same_bucket_copies_metadata(s3, src):
    bucket, body, etag, _ = src
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src/obj"})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["CopyObjectResult"]["ETag"] == etag
    assert r["CopyObjectResult"]["LastModified"]
    g = s3.get_object(Bucket=bucket, Key="dst")
    assert g["Body"].read() == body
    assert g["ETag"] == f'"{md5_hex(body)}"'
    # MetadataDirective defaults to COPY
    assert g["Metadata"] == {"origin": "source"}
    assert g["ContentType"] == "text/x-src"
    assert g["CacheControl"] == "max-age=1"


def test_copy_across_buckets(s3, two_buckets):
    a, b = two_buckets
    s3.put_object(Bucket=a, Key="k", Body=b"cross-bucket")
    s3.copy_object(Bucket=b, Key="k2", CopySource={"Bucket": a, "Key": "k"})
    assert s3.get_object(Bucket=b, Key="k2")["Body"].read() == b"cross-bucket"
    # source untouched
    assert s3.get_object(Bucket=a, Key="k")["Body"].read() == b"cross-bucket"
    # the copy is independent of the source
    s3.delete_object(Bucket=a, Key="k")
    assert s3.get_object(Bucket=b, Key="k2")["Body"].read() == b"cross-bucket"


def test_copy_source_string_form_with_special_key(s3, bucket):
    key = "dir/with space+plus/ü.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"special")
    s3.copy_object(Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == b"special"


def test_copy_metadata_directive_replace(s3, src):
    bucket, body, _, _ = src
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src/obj"},
                   MetadataDirective="REPLACE", Metadata={"new": "meta"},
                   ContentType="application/x-new")
    h = s3.head_object(Bucket=bucket, Key="dst")
    assert h["Metadata"] == {"new": "meta"}
    assert h["ContentType"] == "application/x-new"
    assert "CacheControl" not in h
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == body


def test_copy_metadata_directive_copy_ignores_new_metadata(s3, src):
    bucket, _, _, _ = src
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src/obj"},
                   MetadataDirective="COPY", Metadata={"ignored": "yes"})
    assert s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"origin": "source"}


def test_copy_invalid_metadata_directive(s3, src, server):
    bucket, _, _, _ = src
    r = server.signed_request("PUT", f"/{bucket}/dst", headers={
        "x-amz-copy-source": f"/{bucket}/src/obj", "x-amz-metadata-directive": "BOGUS"})
    assert r.status_code == 400
    assert b"InvalidArgument" in r.content


def test_copy_onto_itself_without_replace_is_invalid(s3, src):
    bucket, body, _, _ = src
    with s3_error("InvalidRequest", 400):
        s3.copy_object(Bucket=bucket, Key="src/obj", CopySource={"Bucket": bucket, "Key": "src/obj"})
    h = s3.head_object(Bucket=bucket, Key="src/obj")
    assert h["Metadata"] == {"origin": "source"}


def test_copy_onto_itself_with_replace(s3, src):
    bucket, body, etag, _ = src
    r = s3.copy_object(Bucket=bucket, Key="src/obj", CopySource={"Bucket": bucket, "Key": "src/obj"},
                       MetadataDirective="REPLACE", Metadata={"updated": "1"}, ContentType="text/x-updated")
    assert r["CopyObjectResult"]["ETag"] == etag
    g = s3.get_object(Bucket=bucket, Key="src/obj")
    assert g["Body"].read() == body
    assert g["Metadata"] == {"updated": "1"}
    assert g["ContentType"] == "text/x-updated"


def test_copy_missing_source(s3, bucket):
    with s3_error("NoSuchKey", 404):
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "missing"})
    with s3_error("NoSuchBucket", 404):
        s3.copy_object(Bucket=bucket, Key="dst",
                       CopySource={"Bucket": unique_bucket_name("missing"), "Key": "x"})


def test_copy_to_missing_bucket(s3, src):
    bucket, _, _, _ = src
    with s3_error("NoSuchBucket", 404):
        s3.copy_object(Bucket=unique_bucket_name("missing"), Key="dst",
                       CopySource={"Bucket": bucket, "Key": "src/obj"})


def test_copy_source_if_match(s3, src):
    bucket, body, etag, _ = src
    cs = {"Bucket": bucket, "Key": "src/obj"}
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=cs, CopySourceIfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="ok")["Body"].read() == body
    with s3_error("PreconditionFailed", 412):
        s3.copy_object(Bucket=bucket, Key="no", CopySource=cs,
                       CopySourceIfMatch='"0123456789abcdef0123456789abcdef"')
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="no")


def test_copy_source_if_none_match(s3, src):
    bucket, _, etag, _ = src
    cs = {"Bucket": bucket, "Key": "src/obj"}
    with s3_error("PreconditionFailed", 412):
        s3.copy_object(Bucket=bucket, Key="no", CopySource=cs, CopySourceIfNoneMatch=etag)
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=cs,
                   CopySourceIfNoneMatch='"0123456789abcdef0123456789abcdef"')
    s3.head_object(Bucket=bucket, Key="ok")


def test_copy_source_if_modified_since(s3, src):
    bucket, _, _, lm = src
    cs = {"Bucket": bucket, "Key": "src/obj"}
    with s3_error("PreconditionFailed", 412):
        s3.copy_object(Bucket=bucket, Key="no", CopySource=cs, CopySourceIfModifiedSince=lm)
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=cs,
                   CopySourceIfModifiedSince=lm - datetime.timedelta(days=1))
    s3.head_object(Bucket=bucket, Key="ok")


def test_copy_source_if_unmodified_since(s3, src):
    bucket, _, _, lm = src
    cs = {"Bucket": bucket, "Key": "src/obj"}
    with s3_error("PreconditionFailed", 412):
        s3.copy_object(Bucket=bucket, Key="no", CopySource=cs,
                       CopySourceIfUnmodifiedSince=lm - datetime.timedelta(days=1))
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=cs, CopySourceIfUnmodifiedSince=lm)
    s3.head_object(Bucket=bucket, Key="ok")


def test_copy_source_condition_precedence(s3, src):
    """AWS: if-match true and if-unmodified-since false -> copy (200);
    if-none-match false and if-modified-since true -> 412."""
    bucket, _, etag, lm = src
    cs = {"Bucket": bucket, "Key": "src/obj"}
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=cs, CopySourceIfMatch=etag,
                   CopySourceIfUnmodifiedSince=lm - datetime.timedelta(days=1))
    with s3_error("PreconditionFailed", 412):
        s3.copy_object(Bucket=bucket, Key="no", CopySource=cs, CopySourceIfNoneMatch=etag,
                       CopySourceIfModifiedSince=lm - datetime.timedelta(days=1))


def test_copy_overwrites_destination(s3, src):
    bucket, body, _, _ = src
    s3.put_object(Bucket=bucket, Key="dst", Body=b"old", Metadata={"old": "1"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src/obj"})
    g = s3.get_object(Bucket=bucket, Key="dst")
    assert g["Body"].read() == body
    assert g["Metadata"] == {"origin": "source"}
