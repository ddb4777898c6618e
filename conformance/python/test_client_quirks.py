"""S3 behaviour real clients trip over, each as AWS does it (issue: "Behaviour real
clients trip over"). Every test here was a difference found by trying clients."""

import base64
import hashlib
import json
import subprocess
import uuid

import pytest
import requests

from conftest import assert_s3_error_response, s3_error, unique_bucket_name
from tools import run, utf8_env


def test_delete_bucket_with_only_incomplete_uploads_removes_them(s3):
    name = unique_bucket_name("mpu")
    s3.create_bucket(Bucket=name)
    upload = s3.create_multipart_upload(Bucket=name, Key="big")["UploadId"]
    s3.upload_part(Bucket=name, Key="big", UploadId=upload, PartNumber=1, Body=b"x" * 100)
    s3.delete_bucket(Bucket=name)
    with s3_error("404", 404):
        s3.head_bucket(Bucket=name)
    # A bucket with objects is still refused.
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    with s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=name)
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)


def test_complete_multipart_upload_again_answers_the_same(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="twice")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="twice", UploadId=upload, PartNumber=1, Body=b"a" * 10)
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    first = s3.complete_multipart_upload(Bucket=bucket, Key="twice", UploadId=upload,
                                         MultipartUpload=parts)
    again = s3.complete_multipart_upload(Bucket=bucket, Key="twice", UploadId=upload,
                                         MultipartUpload=parts)
    assert again["ETag"] == first["ETag"]
    assert s3.get_object(Bucket=bucket, Key="twice")["Body"].read() == b"a" * 10
    # An upload id that never existed is still NoSuchUpload.
    with s3_error("NoSuchUpload", 404):
        s3.complete_multipart_upload(Bucket=bucket, Key="twice", UploadId="nope",
                                     MultipartUpload=parts)


def test_create_bucket_again_by_its_owner(s3, bucket, server):
    # us-east-1 (the test server's region): 200, nothing changes.
    s3.put_object(Bucket=bucket, Key="kept", Body=b"v")
    r = s3.create_bucket(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"v"


def test_create_bucket_another_user_owns_is_already_exists(server, s3, kura_bin):
    env = utf8_env({**server.env(), "KURA_ADMIN_ENDPOINT": server.endpoint,
                    "KURA_ADMIN_ACCESS_KEY": server.access_key,
                    "KURA_ADMIN_SECRET_KEY": server.secret_key})
    user = f"other-{uuid.uuid4().hex[:8]}"
    run([str(kura_bin), "admin", "user", "create", user], env)
    key = json.loads(run([str(kura_bin), "admin", "--json", "key", "create", user], env).stdout)
    other = server.client(access_key=key["access_key"], secret_key=key["secret_key"])
    name = unique_bucket_name("taken")
    s3.create_bucket(Bucket=name)
    with s3_error("BucketAlreadyExists", 409):
        other.create_bucket(Bucket=name)
    s3.delete_bucket(Bucket=name)


def test_create_bucket_again_in_another_region_is_owned_by_you(make_server):
    server = make_server(region="eu-west-1")
    s3 = server.client()
    config = {"LocationConstraint": "eu-west-1"}
    s3.create_bucket(Bucket="mine", CreateBucketConfiguration=config)
    with s3_error("BucketAlreadyOwnedByYou", 409):
        s3.create_bucket(Bucket="mine", CreateBucketConfiguration=config)


@pytest.mark.parametrize("version", [1, 2])
def test_list_with_max_keys_zero_is_not_truncated(s3, bucket, version):
    s3.put_object(Bucket=bucket, Key="a", Body=b"")
    if version == 2:
        r = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
        assert r["KeyCount"] == 0
    else:
        r = s3.list_objects(Bucket=bucket, MaxKeys=0)
    assert r["IsTruncated"] is False
    assert "Contents" not in r and r["MaxKeys"] == 0


def test_list_buckets_paginates(server, s3):
    prefix = unique_bucket_name("pg")[:20]
    names = sorted(f"{prefix}-{i}" for i in range(5))
    for name in names:
        s3.create_bucket(Bucket=name)
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"MaxBuckets": 2, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        r = s3.list_buckets(**kwargs)
        pages += 1
        assert r["Prefix"] == prefix
        assert all(b["BucketRegion"] == "us-east-1" for b in r["Buckets"])
        seen += [b["Name"] for b in r["Buckets"]]
        token = r.get("ContinuationToken")
        if not token:
            break
    assert seen == names and pages == 3
    assert s3.list_buckets(Prefix=prefix, BucketRegion="eu-west-1")["Buckets"] == []
    r = server.signed_request("GET", "/", query={"max-buckets": "0"})
    assert_s3_error_response(r, "InvalidArgument", 400, check_resource=False)
    for name in names:
        s3.delete_bucket(Bucket=name)


def curl_signed(server, *args: str) -> subprocess.CompletedProcess:
    """curl with its own SigV4 signing (it signs header bytes as it sends them)."""
    return subprocess.run(
        ["curl", "-sS", "--aws-sigv4", f"aws:amz:{server.region}:s3",
         "--user", f"{server.access_key}:{server.secret_key}",
         "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", *args],
        capture_output=True, timeout=60)


def test_non_ascii_user_metadata_round_trips(server, s3, bucket):
    # boto3 refuses non-ASCII metadata itself; curl and other SDKs send UTF-8 header bytes.
    sent = {"x-amz-meta-title": "Grüße aus Köln".encode(), "x-amz-meta-emoji": "🐈 ok".encode(),
            "x-amz-meta-plain": b"ascii"}
    headers = [arg for name, value in sent.items()
               for arg in ("-H", f"{name}: {value.decode()}")]
    r = curl_signed(server, "-X", "PUT", "--data-binary", "x", "-o", "/dev/null",
                    "-w", "%{http_code}", *headers, f"{server.endpoint}/{bucket}/m")
    assert r.stdout == b"200", r.stderr
    for method, verb in (("get_object", "GET"), ("head_object", "HEAD")):
        url = s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": "m"})
        got = requests.request(verb, url, timeout=30)
        assert got.status_code == 200, got.content
        # requests decodes header bytes as Latin-1: encode back to compare the bytes.
        returned = {name: got.headers[name].encode("latin-1") for name in sent}
        assert returned == sent


def test_put_with_plain_chunked_transfer_encoding(server, s3, bucket):
    data = b"streamed " * 10_000

    def chunks():
        for i in range(0, len(data), 7_000):
            yield data[i:i + 7_000]

    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "stream"})
    r = requests.put(url, data=chunks(), timeout=30)  # no Content-Length: chunked
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="stream")["Body"].read() == data


def test_curl_upload_from_stdin(server, bucket):
    data = b"from stdin\n" * 1000
    r = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", "-",
         "--aws-sigv4", f"aws:amz:{server.region}:s3",
         "--user", f"{server.access_key}:{server.secret_key}",
         "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
         f"{server.endpoint}/{bucket}/stdin"],
        input=data, capture_output=True, timeout=60)  # -T - : chunked, no Content-Length
    assert r.stdout == b"200", r.stderr
    got = requests.get(server.client().generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "stdin"}), timeout=30)
    assert got.content == data


def test_checksum_header_that_does_not_match_is_bad_digest(server, s3, bucket):
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    r = server.signed_request("PUT", f"/{bucket}/ck", body=b"payload",
                              headers={"x-amz-checksum-sha256": wrong})
    assert_s3_error_response(r, "BadDigest", 400)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="ck")


@pytest.mark.parametrize("method", ["get_object", "put_object"])
def test_expired_presigned_url_is_access_denied(s3, bucket, method):
    s3.put_object(Bucket=bucket, Key="p", Body=b"v")
    url = s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=1)
    import time
    time.sleep(2.5)
    r = requests.request("GET" if method == "get_object" else "PUT", url, data=b"new", timeout=30)
    assert_s3_error_response(r, "AccessDenied", 403, check_resource=False)
    assert b"Request has expired" in r.content
    assert s3.get_object(Bucket=bucket, Key="p")["Body"].read() == b"v"


def test_uri_that_is_not_utf8_is_refused(server, bucket):
    r = server.signed_request("GET", f"/{bucket}/%FF%FE")
    assert_s3_error_response(r, "InvalidURI", 400, check_resource=False)
