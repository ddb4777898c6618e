"""boto3: single-object operations -- PutObject (incl. conditional writes),
GetObject (ranges, conditions, response overrides), HeadObject, DeleteObject,
DeleteObjects, GetObjectAcl, ListObjectVersions, metadata, key limits."""

import datetime
import hashlib
import time

import pytest

from conftest import (
    assert_s3_error_response,
    md5_hex,
    s3_error,
    unique_bucket_name,
    xml_find_all,
)

BODY = bytes(range(256)) * 4 + b"tail-of-body"  # 1036 bytes, binary


def _etag(data: bytes) -> str:
    return f'"{md5_hex(data)}"'


# ----------------------------------------------------------------- put/get
def test_put_get_roundtrip(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="obj", Body=BODY)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["ETag"] == _etag(BODY)
    assert r["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
    g = s3.get_object(Bucket=bucket, Key="obj")
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert g["Body"].read() == BODY
    assert g["ETag"] == _etag(BODY)
    assert g["ContentLength"] == len(BODY)
    assert g["ResponseMetadata"]["HTTPHeaders"].get("accept-ranges") == "bytes"
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - g["LastModified"]).total_seconds()) < 300


def test_put_empty_object(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert r["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    g = s3.get_object(Bucket=bucket, Key="empty")
    assert g["ContentLength"] == 0
    assert g["Body"].read() == b""


def test_default_content_type(s3, bucket):
    s3.put_object(Bucket=bucket, Key="noct", Body=b"x")
    h = s3.head_object(Bucket=bucket, Key="noct")
    # S3 stores binary/octet-stream when the PUT had no Content-Type.
    assert h["ContentType"] == "binary/octet-stream"


def test_overwrite_replaces_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", Metadata={"v": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"second!")
    g = s3.get_object(Bucket=bucket, Key="k")
    assert g["Body"].read() == b"second!"
    assert g["ETag"] == _etag(b"second!")
    assert g["Metadata"] == {}


@pytest.mark.parametrize("key", [
    "plain",
    "dir/sub/file.txt",
    "with space and+plus",
    "percent%20literal%",
    "query?and#hash&amp=eq",
    "unicode/ключ/日本語/ü",
    "double//slash",
    "trailing/",
    "~tilde*star'quote(paren)!bang",
    "semi;colon:comma,at@dollar$",
    "a" * 1024,                       # the longest key S3 allows (bytes)
    "é" * 512,                        # 1024 UTF-8 bytes
])
def test_key_roundtrip(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    s3.head_object(Bucket=bucket, Key=key)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]]
    assert key in keys
    assert s3.delete_object(Bucket=bucket, Key=key)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key=key)


@pytest.mark.parametrize("key", ["a" * 1025, "é" * 512 + "a"])
def test_key_too_long(s3, bucket, key):
    with s3_error("KeyTooLongError", 400):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_get_missing_key_and_bucket(s3, bucket, server):
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="nope")
    with s3_error("NoSuchBucket", 404):
        s3.get_object(Bucket=unique_bucket_name("missing"), Key="nope")
    with s3_error("NoSuchBucket", 404):
        s3.put_object(Bucket=unique_bucket_name("missing"), Key="nope", Body=b"x")
    r = server.signed_request("GET", f"/{bucket}/nope")
    err = assert_s3_error_response(r, "NoSuchKey", 404)
    assert err.get("Key") in ("nope", None)


def test_head_object(s3, bucket, server):
    s3.put_object(Bucket=bucket, Key="h", Body=BODY, ContentType="text/plain",
                  Metadata={"a": "b"})
    h = s3.head_object(Bucket=bucket, Key="h")
    assert h["ContentLength"] == len(BODY)
    assert h["ETag"] == _etag(BODY)
    assert h["ContentType"] == "text/plain"
    assert h["Metadata"] == {"a": "b"}
    assert h["ResponseMetadata"]["HTTPHeaders"].get("accept-ranges") == "bytes"
    raw = server.signed_request("HEAD", f"/{bucket}/h")
    assert raw.status_code == 200
    assert raw.headers["Content-Length"] == str(len(BODY))
    assert raw.content == b""


def test_head_missing_object_404_no_body(s3, bucket, server):
    with s3_error("404", 404):
        s3.head_object(Bucket=bucket, Key="missing")
    r = server.signed_request("HEAD", f"/{bucket}/missing")
    assert r.status_code == 404
    assert r.content == b""
    assert r.headers.get("x-amz-request-id")
    r = server.signed_request("HEAD", f"/{unique_bucket_name('missing')}/missing")
    assert r.status_code == 404
    assert r.content == b""


# ------------------------------------------------------------ metadata
def test_metadata_and_standard_headers_roundtrip(s3, bucket):
    expires = datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    s3.put_object(
        Bucket=bucket, Key="meta", Body=b"payload",
        Metadata={"color": "blue", "Camel-Case": "MixedValue", "with_underscore": "u v"},
        ContentType="application/x-kura-test",
        ContentEncoding="x-kura-enc",
        ContentDisposition='attachment; filename="f.txt"',
        ContentLanguage="de-CH",
        CacheControl="max-age=3600, private",
        Expires=expires,
    )
    for r in (s3.head_object(Bucket=bucket, Key="meta"), s3.get_object(Bucket=bucket, Key="meta")):
        # user metadata names come back lower-cased, values unchanged
        assert r["Metadata"] == {"color": "blue", "camel-case": "MixedValue", "with_underscore": "u v"}
        assert r["ContentType"] == "application/x-kura-test"
        assert r["ContentEncoding"] == "x-kura-enc"
        assert r["ContentDisposition"] == 'attachment; filename="f.txt"'
        assert r["ContentLanguage"] == "de-CH"
        assert r["CacheControl"] == "max-age=3600, private"
        hdr = r["ResponseMetadata"]["HTTPHeaders"]
        assert hdr.get("expires") == "Thu, 02 Jan 2031 03:04:05 GMT"
        assert hdr.get("x-amz-meta-color") == "blue"


def test_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="ovr", Body=b"hello", ContentType="text/plain")
    g = s3.get_object(
        Bucket=bucket, Key="ovr",
        ResponseContentType="application/x-override",
        ResponseContentLanguage="fr",
        ResponseExpires=datetime.datetime(2030, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
        ResponseCacheControl="no-cache",
        ResponseContentDisposition='inline; filename="o.bin"',
        ResponseContentEncoding="x-ovr-enc",
    )
    assert g["Body"].read() == b"hello"
    assert g["ContentType"] == "application/x-override"
    assert g["ContentLanguage"] == "fr"
    assert g["CacheControl"] == "no-cache"
    assert g["ContentDisposition"] == 'inline; filename="o.bin"'
    assert g["ContentEncoding"] == "x-ovr-enc"
    assert g["ResponseMetadata"]["HTTPHeaders"].get("expires") == "Mon, 06 May 2030 07:08:09 GMT"
    # overrides do not change what is stored
    assert s3.head_object(Bucket=bucket, Key="ovr")["ContentType"] == "text/plain"


# ----------------------------------------------------------------- ranges
RANGE_BODY = bytes((i * 7) % 251 for i in range(100))


@pytest.fixture
def ranged(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=RANGE_BODY)
    return bucket


@pytest.mark.parametrize("rng,start,end", [
    ("bytes=0-9", 0, 9),
    ("bytes=10-", 10, 99),
    ("bytes=-5", 95, 99),
    ("bytes=95-200", 95, 99),     # last-byte-pos past the end is clamped
    ("bytes=0-0", 0, 0),
    ("bytes=99-99", 99, 99),
    ("bytes=-200", 0, 99),        # suffix longer than the object: whole object
])
def test_get_range(s3, ranged, rng, start, end):
    g = s3.get_object(Bucket=ranged, Key="r", Range=rng)
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert g["Body"].read() == RANGE_BODY[start:end + 1]
    assert g["ContentRange"] == f"bytes {start}-{end}/100"
    assert g["ContentLength"] == end - start + 1
    assert g["ETag"] == _etag(RANGE_BODY)


@pytest.mark.parametrize("rng", ["bytes=100-", "bytes=100-200", "bytes=1000-1001"])
def test_get_range_not_satisfiable(s3, ranged, server, rng):
    with s3_error("InvalidRange", 416):
        s3.get_object(Bucket=ranged, Key="r", Range=rng)
    r = server.signed_request("GET", f"/{ranged}/r", headers={"Range": rng})
    assert_s3_error_response(r, "InvalidRange", 416)


def test_head_range(s3, ranged):
    h = s3.head_object(Bucket=ranged, Key="r", Range="bytes=10-19")
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert h["ContentLength"] == 10
    assert h["ContentRange"] == "bytes 10-19/100"


# ---------------------------------------------------- conditional reads
@pytest.fixture
def cond(s3, bucket):
    s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    h = s3.head_object(Bucket=bucket, Key="c")
    return bucket, h["ETag"], h["LastModified"]


def test_get_if_match(s3, cond):
    bucket, etag, _ = cond
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"conditional"
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag.strip('"'))["ResponseMetadata"]["HTTPStatusCode"] == 200
    with s3_error("PreconditionFailed", 412):
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0123456789abcdef0123456789abcdef"')


def test_get_if_none_match(s3, cond):
    bucket, etag, _ = cond
    with s3_error("304", 304):
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    g = s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"0123456789abcdef0123456789abcdef"')
    assert g["Body"].read() == b"conditional"


def test_get_if_modified_since(s3, cond):
    bucket, _, lm = cond
    with s3_error("304", 304):
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=lm)
    g = s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=lm - datetime.timedelta(days=1))
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_get_if_unmodified_since(s3, cond):
    bucket, _, lm = cond
    with s3_error("PreconditionFailed", 412):
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=lm - datetime.timedelta(days=1))
    g = s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=lm)
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_get_condition_precedence(s3, cond):
    """AWS: If-Match true + If-Unmodified-Since false -> 200;
    If-None-Match false + If-Modified-Since true -> 304."""
    bucket, etag, lm = cond
    g = s3.get_object(Bucket=bucket, Key="c", IfMatch=etag,
                      IfUnmodifiedSince=lm - datetime.timedelta(days=1))
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 200
    with s3_error("304", 304):
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag,
                      IfModifiedSince=lm - datetime.timedelta(days=1))


def test_head_conditions(s3, cond, server):
    bucket, etag, lm = cond
    with s3_error("412", 412):
        s3.head_object(Bucket=bucket, Key="c", IfMatch='"0123456789abcdef0123456789abcdef"')
    with s3_error("304", 304):
        s3.head_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    r = server.signed_request("HEAD", f"/{bucket}/c", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""


# ---------------------------------------------------- conditional writes
def test_put_if_none_match_star(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="once", Body=b"v1", IfNoneMatch="*")
    assert r["ETag"] == _etag(b"v1")
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="once", Body=b"v2", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"v1"


def test_put_if_none_match_etag(s3, bucket):
    """An ETag in If-None-Match refuses to overwrite that content (radosgw's and MinIO's
    extension; AWS answers 501), other ETags and a missing key let the write through."""
    etag1 = s3.put_object(Bucket=bucket, Key="inm", Body=b"v1")["ETag"]
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="inm", Body=b"v2", IfNoneMatch=f'"x", {etag1}')
    assert s3.get_object(Bucket=bucket, Key="inm")["Body"].read() == b"v1"
    s3.put_object(Bucket=bucket, Key="inm", Body=b"v2", IfNoneMatch='"badetag"')
    assert s3.get_object(Bucket=bucket, Key="inm")["Body"].read() == b"v2"
    s3.delete_object(Bucket=bucket, Key="inm")
    s3.put_object(Bucket=bucket, Key="inm", Body=b"v3", IfNoneMatch=etag1)
    assert s3.get_object(Bucket=bucket, Key="inm")["Body"].read() == b"v3"


def test_put_if_match(s3, bucket):
    etag1 = s3.put_object(Bucket=bucket, Key="cas", Body=b"v1")["ETag"]
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="cas", Body=b"bad", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert s3.get_object(Bucket=bucket, Key="cas")["Body"].read() == b"v1"
    etag2 = s3.put_object(Bucket=bucket, Key="cas", Body=b"v2", IfMatch=etag1)["ETag"]
    assert etag2 == _etag(b"v2")
    # the old ETag no longer matches
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="cas", Body=b"v3", IfMatch=etag1)
    assert s3.get_object(Bucket=bucket, Key="cas")["Body"].read() == b"v2"


def test_put_if_match_missing_object(s3, bucket):
    """AWS: If-Match on a key with no current object -> 404 NoSuchKey."""
    with s3_error("NoSuchKey", 404):
        s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfMatch='"0123456789abcdef0123456789abcdef"')
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="absent")


# ----------------------------------------------------------------- delete
def test_delete_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="d", Body=b"x")
    r = s3.delete_object(Bucket=bucket, Key="d")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="d")
    # deleting a key that does not exist is still 204
    r = s3.delete_object(Bucket=bucket, Key="d")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    r = s3.delete_object(Bucket=bucket, Key="never-existed")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_object_missing_bucket(s3):
    with s3_error("NoSuchBucket", 404):
        s3.delete_object(Bucket=unique_bucket_name("missing"), Key="k")


def test_delete_objects(s3, bucket):
    for k in ("a", "b", "c/d"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a"}, {"Key": "c/d"}, {"Key": "does-not-exist"}]})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    deleted = sorted(d["Key"] for d in r.get("Deleted", []))
    # S3 reports missing keys as deleted too
    assert deleted == ["a", "c/d", "does-not-exist"]
    assert not r.get("Errors")
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert left == ["b"]


def test_delete_objects_quiet(s3, bucket):
    for k in ("q1", "q2"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q1"}, {"Key": "q2"}], "Quiet": True})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert not r.get("Deleted")
    assert not r.get("Errors")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_1000_ok_1001_malformed(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k-0", Body=b"x")
    objs = [{"Key": f"k-{i}"} for i in range(1001)]
    with s3_error("MalformedXML", 400):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})
    # rejected: nothing deleted
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": objs[:1000], "Quiet": True})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def _post_delete(server, bucket, body: bytes):
    import base64
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    return server.signed_request("POST", f"/{bucket}", query=[("delete", None)], body=body,
                                 headers={"Content-MD5": md5, "Content-Type": "application/xml"})


@pytest.mark.parametrize("body", [
    b"<Delete><Object><Key>x</Key></Object>",                 # truncated
    b"this is not xml at all",
    b"<Delete></Delete>",                                     # no Object
    b"<Delete><Object></Object></Delete>",                    # Object without Key
    b"<?xml version=\"1.0\"?><Foo><Object><Key>x</Key></Object></Foo>",  # wrong root
])
def test_delete_objects_malformed_xml(server, s3, bucket, body):
    s3.put_object(Bucket=bucket, Key="x", Body=b"keep")
    r = _post_delete(server, bucket, body)
    assert_s3_error_response(r, "MalformedXML", 400)
    assert s3.get_object(Bucket=bucket, Key="x")["Body"].read() == b"keep"


def test_delete_objects_raw_ok(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="x y", Body=b"1")
    body = (b'<?xml version="1.0" encoding="UTF-8"?>'
            b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b'<Object><Key>x y</Key></Object></Delete>')
    r = _post_delete(server, bucket, body)
    assert r.status_code == 200, r.content
    assert [e.text for e in xml_find_all(r.content, "Key")] == ["x y"]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# ------------------------------------------------------ ACLs, versions
def test_put_with_private_acl_and_get_object_acl(s3, bucket):
    s3.put_object(Bucket=bucket, Key="acl", Body=b"x", ACL="private")
    r = s3.get_object_acl(Bucket=bucket, Key="acl")
    owner = r["Owner"]["ID"]
    assert owner
    assert len(r["Grants"]) == 1
    g = r["Grants"][0]
    assert g["Permission"] == "FULL_CONTROL"
    assert g["Grantee"]["Type"] == "CanonicalUser"
    assert g["Grantee"]["ID"] == owner
    with s3_error("NoSuchKey", 404):
        s3.get_object_acl(Bucket=bucket, Key="missing")


def test_list_object_versions_all_null(s3, bucket):
    s3.put_object(Bucket=bucket, Key="v/a", Body=b"1")
    s3.put_object(Bucket=bucket, Key="v/b", Body=b"2")
    s3.put_object(Bucket=bucket, Key="v/a", Body=b"3")  # overwrite: still one version
    r = s3.list_object_versions(Bucket=bucket)
    vs = r.get("Versions", [])
    assert [v["Key"] for v in vs] == ["v/a", "v/b"]
    for v in vs:
        assert v["VersionId"] == "null"
        assert v["IsLatest"] is True
    assert vs[0]["ETag"] == _etag(b"3")
    assert vs[0]["Size"] == 1
    assert not r.get("DeleteMarkers")
    assert r["IsTruncated"] is False
    # paginated
    r1 = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
    assert r1["IsTruncated"] is True
    assert [v["Key"] for v in r1["Versions"]] == ["v/a"]
    r2 = s3.list_object_versions(Bucket=bucket, MaxKeys=1, KeyMarker=r1["NextKeyMarker"],
                                 VersionIdMarker=r1.get("NextVersionIdMarker", "null"))
    assert [v["Key"] for v in r2["Versions"]] == ["v/b"]


def test_version_id_null_addresses_the_object(s3, bucket):
    """Cleanup tools delete through ListObjectVersions, passing VersionId=null."""
    s3.put_object(Bucket=bucket, Key="n1", Body=b"1")
    s3.put_object(Bucket=bucket, Key="n2", Body=b"2")
    assert s3.get_object(Bucket=bucket, Key="n1", VersionId="null")["Body"].read() == b"1"
    s3.delete_object(Bucket=bucket, Key="n1", VersionId="null")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "n2", "VersionId": "null"}]})
    assert [d["Key"] for d in r["Deleted"]] == ["n2"]
    assert s3.list_object_versions(Bucket=bucket).get("Versions", []) == []


def test_rejected_put_changes_nothing(s3, bucket):
    s3.put_object(Bucket=bucket, Key="stable", Body=b"orig")
    import base64
    with s3_error("BadDigest", 400):
        s3.put_object(Bucket=bucket, Key="stable", Body=b"new",
                      ContentMD5=base64.b64encode(hashlib.md5(b"other").digest()).decode())
    assert s3.get_object(Bucket=bucket, Key="stable")["Body"].read() == b"orig"


# ------------------------------------------------------------------ limits
def test_user_metadata_too_large(s3, bucket):
    """User metadata is limited to 2 KB (names + values): MetadataTooLarge."""
    with s3_error("MetadataTooLarge", 400):
        s3.put_object(Bucket=bucket, Key="bigmeta", Body=b"x", Metadata={"m": "v" * 2100})
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="bigmeta")
    s3.put_object(Bucket=bucket, Key="okmeta", Body=b"x", Metadata={"m": "v" * 1000})
    assert s3.head_object(Bucket=bucket, Key="okmeta")["Metadata"]["m"] == "v" * 1000


def test_oversized_headers_rejected_server_survives(server, s3, bucket):
    r = server.signed_request("PUT", f"/{bucket}/bighdr", body=b"x",
                              headers={"x-kura-junk": "j" * (64 * 1024)})
    assert r.status_code in (400, 431), r.status_code
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="bighdr")
    s3.head_bucket(Bucket=bucket)


def _send_headers_only(server, method, path, headers, timeout=15):
    """Sign and send a request's headers (with a large Content-Length) but no
    body; return (status, body) of the early response."""
    import http.client
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from conftest import _FixedPayloadSigV4
    url = f"{server.endpoint}{path}"
    req = AWSRequest(method=method, url=url, headers=headers)
    _FixedPayloadSigV4(Credentials(server.access_key, server.secret_key), "s3", server.region,
                       "UNSIGNED-PAYLOAD").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", server.s3_port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in req.headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_put_larger_than_5gib_entity_too_large(server, s3, bucket):
    """A single PUT may be at most 5 GiB: the server refuses from the
    Content-Length header, without waiting for the body."""
    status, body = _send_headers_only(server, "PUT", f"/{bucket}/huge",
                                      {"Content-Length": str(5 * 1024 ** 3 + 1)})
    assert status == 400, body
    from conftest import parse_error_xml
    assert parse_error_xml(body)["Code"] == "EntityTooLarge"
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="huge")


# ------------------------------------------------- atomic conditional writes
def _race(fn, n):
    import threading
    from botocore.exceptions import ClientError
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        try:
            fn(i)
            results[i] = ("ok", 200)
        except ClientError as e:
            results[i] = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_if_none_match_star_is_atomic(server, bucket):
    """N concurrent create-if-absent PUTs: exactly one wins; the others get
    412 PreconditionFailed (or 409 ConditionalRequestConflict, which AWS
    also uses for concurrent conditional writes)."""
    n = 12
    c = server.client()  # boto3 clients are thread-safe
    clients = [c] * n
    res = _race(lambda i: clients[i].put_object(Bucket=bucket, Key="race", Body=f"writer-{i}".encode(),
                                                IfNoneMatch="*"), n)
    winners = [i for i, r in enumerate(res) if r == ("ok", 200)]
    assert len(winners) == 1, res
    for r in res:
        assert r in (("ok", 200), ("PreconditionFailed", 412), ("ConditionalRequestConflict", 409)), res
    body = clients[0].get_object(Bucket=bucket, Key="race")["Body"].read()
    assert body == f"writer-{winners[0]}".encode()


def test_if_match_compare_and_swap_is_atomic(server, bucket):
    n = 12
    c = server.client()  # boto3 clients are thread-safe
    clients = [c] * n
    etag = clients[0].put_object(Bucket=bucket, Key="cas-race", Body=b"base")["ETag"]
    res = _race(lambda i: clients[i].put_object(Bucket=bucket, Key="cas-race", Body=f"swap-{i}".encode(),
                                                IfMatch=etag), n)
    winners = [i for i, r in enumerate(res) if r == ("ok", 200)]
    assert len(winners) == 1, res
    for r in res:
        assert r in (("ok", 200), ("PreconditionFailed", 412), ("ConditionalRequestConflict", 409)), res
    assert clients[0].get_object(Bucket=bucket, Key="cas-race")["Body"].read() == f"swap-{winners[0]}".encode()


def test_conditional_delete_object(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cd", Body=b"12345")["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="cd")["LastModified"]
    for wrong in ({"IfMatch": '"0123456789abcdef0123456789abcdef"'}, {"IfMatchSize": 4},
                  {"IfMatchLastModifiedTime": datetime.datetime(2015, 1, 1)},
                  {"IfMatch": etag, "IfMatchSize": 6}):
        with s3_error("PreconditionFailed", 412):
            s3.delete_object(Bucket=bucket, Key="cd", **wrong)
        assert s3.head_object(Bucket=bucket, Key="cd")["ETag"] == etag
    r = s3.delete_object(Bucket=bucket, Key="cd", IfMatch=etag, IfMatchSize=5, IfMatchLastModifiedTime=modified)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    # Nothing to delete: nothing to hold for.
    assert s3.delete_object(Bucket=bucket, Key="cd", IfMatch="*")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with s3_error("InvalidArgument", 400):
        s3.delete_object(Bucket=bucket, Key="cd", IfMatchSize=-1)


def test_conditional_delete_in_a_versioned_bucket(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket=bucket, Key="v", Body=b"one")
    with s3_error("PreconditionFailed", 412):
        s3.delete_object(Bucket=bucket, Key="v", IfMatch='"0123456789abcdef0123456789abcdef"')
    marker = s3.delete_object(Bucket=bucket, Key="v", IfMatch=put["ETag"])
    assert marker["DeleteMarker"]
    # A delete marker is current now: it has no ETag, but `*` holds for it.
    with s3_error("PreconditionFailed", 412):
        s3.delete_object(Bucket=bucket, Key="v", IfMatch=put["ETag"])
    assert s3.delete_object(Bucket=bucket, Key="v", IfMatch="*")["DeleteMarker"]
    # A version named by id is the one checked.
    with s3_error("PreconditionFailed", 412):
        s3.delete_object(Bucket=bucket, Key="v", VersionId=put["VersionId"], IfMatchSize=4)
    r = s3.delete_object(Bucket=bucket, Key="v", VersionId=put["VersionId"], IfMatch=put["ETag"], IfMatchSize=3)
    assert r["VersionId"] == put["VersionId"]
    versions = s3.list_object_versions(Bucket=bucket, Prefix="v")
    assert "Versions" not in versions and len(versions["DeleteMarkers"]) == 2


def test_conditional_delete_objects(s3, bucket):
    etags = {k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode())["ETag"] for k in ("a", "bb", "ccc")}
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": etags["a"]},
        {"Key": "bb", "ETag": etags["a"]},
        {"Key": "ccc", "Size": 3, "LastModifiedTime": datetime.datetime(2015, 1, 1)},
    ]})
    assert [d["Key"] for d in r["Deleted"]] == ["a"]
    assert sorted((e["Key"], e["Code"]) for e in r["Errors"]) == [
        ("bb", "PreconditionFailed"), ("ccc", "PreconditionFailed")]
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert left == ["bb", "ccc"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "bb", "Size": 2}, {"Key": "ccc", "ETag": "*"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["bb", "ccc"] and "Errors" not in r


def test_conditional_delete_is_atomic(server, bucket):
    """N concurrent deletes of one version by its ETag in a versioned bucket: the first
    hides it behind a delete marker, which no longer has that ETag, so exactly one wins."""
    c = server.client()  # boto3 clients are thread-safe
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    etag = c.put_object(Bucket=bucket, Key="del-race", Body=b"once")["ETag"]
    n = 12
    res = _race(lambda i: c.delete_object(Bucket=bucket, Key="del-race", IfMatch=etag), n)
    winners = [r for r in res if r == ("ok", 200)]
    assert len(winners) == 1, res
    for r in res:
        assert r in (("ok", 200), ("PreconditionFailed", 412), ("ConditionalRequestConflict", 409)), res
    markers = c.list_object_versions(Bucket=bucket, Prefix="del-race")["DeleteMarkers"]
    assert len(markers) == 1


def test_an_upload_slower_than_the_deadline_is_refused_and_leaves_nothing(make_server):
    """Data uncommitted after --gc-abandoned-seconds counts as abandoned and is collected,
    so a body that takes more than half of that to arrive is refused (RequestTimeout)
    instead of acknowledged with its data collected under it."""
    srv = make_server(extra_args=["--gc-abandoned-seconds", "4"])
    s3 = srv.client()
    s3.create_bucket(Bucket="slow")

    def slowly():
        for _ in range(6):
            yield b"s" * 1024
            time.sleep(0.6)

    r = srv.signed_request("PUT", "/slow/late", content_sha256="UNSIGNED-PAYLOAD",
                           body=lambda _: slowly())
    assert r.status_code == 400, r.text
    assert "<Code>RequestTimeout</Code>" in r.text
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket="slow", Key="late")
    s3.put_object(Bucket="slow", Key="prompt", Body=b"p" * 6144)
    assert s3.get_object(Bucket="slow", Key="prompt")["Body"].read() == b"p" * 6144


def test_an_empty_object_is_stored_without_a_blob(make_server):
    """A 0-byte PutObject writes no data at all (only its index entry), and reads,
    checksums, encryption and overwrites behave as for any object."""
    import os
    from conftest import BACKEND
    srv = make_server()
    s3 = srv.client()
    name = unique_bucket_name("empty")
    s3.create_bucket(Bucket=name)
    blobs = srv.data_dir / "blobs"

    def stored():
        return sum(1 for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else 0

    before = stored()
    put = s3.put_object(Bucket=name, Key="dir/", Body=b"", ChecksumAlgorithm="CRC32")
    assert put["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert put["ChecksumCRC32"] == "AAAAAA=="
    if BACKEND == "local":
        assert stored() == before
    got = s3.get_object(Bucket=name, Key="dir/", ChecksumMode="ENABLED")
    assert (got["Body"].read(), got["ContentLength"], got["ChecksumCRC32"]) == (b"", 0, "AAAAAA==")
    assert s3.head_object(Bucket=name, Key="dir/")["ContentLength"] == 0
    assert [o["Size"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == [0]
    # An SSE-C empty object still asks for its key.
    key = os.urandom(32)
    s3.put_object(Bucket=name, Key="sealed", Body=b"", SSECustomerAlgorithm="AES256",
                  SSECustomerKey=key)
    with s3_error("InvalidRequest", 400):
        s3.get_object(Bucket=name, Key="sealed")
    got = s3.get_object(Bucket=name, Key="sealed", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert got["Body"].read() == b""
    # Data replaces the empty object and the other way round; copies of it are empty.
    s3.put_object(Bucket=name, Key="dir/", Body=b"data")
    assert s3.get_object(Bucket=name, Key="dir/")["Body"].read() == b"data"
    s3.put_object(Bucket=name, Key="dir/", Body=b"")
    assert s3.get_object(Bucket=name, Key="dir/")["Body"].read() == b""
    s3.copy_object(Bucket=name, Key="copy", CopySource={"Bucket": name, "Key": "dir/"})
    assert s3.get_object(Bucket=name, Key="copy")["Body"].read() == b""
    # A browser form's empty file is stored the same way.
    import requests
    form = srv.client(signature_version="s3v4").generate_presigned_post(name, "form-empty")
    before = stored()
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("e", b"")}, timeout=30)
    assert posted.status_code == 204, posted.text
    if BACKEND == "local":
        assert stored() == before
    got = s3.get_object(Bucket=name, Key="form-empty")
    assert got["Body"].read() == b"" and got["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    # content-length-range still counts an empty file as 0 bytes.
    form = srv.client(signature_version="s3v4").generate_presigned_post(
        name, "too-small", Conditions=[["content-length-range", 1, 10]])
    refused = requests.post(form["url"], data=form["fields"], files={"file": ("e", b"")}, timeout=30)
    assert refused.status_code == 400 and b"EntityTooSmall" in refused.content
