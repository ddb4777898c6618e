"""boto3 / raw SigV4: authentication errors, error document shape, request
ids, clock skew, presigned URLs, virtual-hosted-style addressing."""

import datetime
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from conftest import (
    assert_s3_error_response,
    parse_error_xml,
    s3_error,
    unique_bucket_name,
)


# ------------------------------------------------------------ credentials
def test_unsigned_requests_are_access_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="secret", Body=b"s")
    for method, path in (("GET", "/"), ("GET", f"/{bucket}"), ("GET", f"/{bucket}/secret"),
                         ("PUT", f"/{bucket}/anon"), ("DELETE", f"/{bucket}/secret"),
                         ("PUT", f"/{unique_bucket_name()}")):
        r = requests.request(method, server.endpoint + path, data=b"x" if method == "PUT" else None)
        assert_s3_error_response(r, "AccessDenied", 403)
    assert s3.get_object(Bucket=bucket, Key="secret")["Body"].read() == b"s"
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="anon")


def test_unsigned_head_is_403_without_body(server, bucket):
    r = requests.head(f"{server.endpoint}/{bucket}/secret")
    assert r.status_code == 403
    assert r.content == b""
    assert r.headers.get("x-amz-request-id")


def test_invalid_access_key(server, bucket):
    bad = server.client(access_key="AKIANOSUCHKEY0000000")
    with s3_error("InvalidAccessKeyId", 403):
        bad.list_buckets()
    with s3_error("InvalidAccessKeyId", 403):
        bad.put_object(Bucket=bucket, Key="x", Body=b"x")
    r = server.signed_request("GET", "/", access_key="AKIANOSUCHKEY0000000")
    assert_s3_error_response(r, "InvalidAccessKeyId", 403)


def test_wrong_secret(server, s3, bucket):
    bad = server.client(secret_key="definitely-not-the-secret")
    with s3_error("SignatureDoesNotMatch", 403):
        bad.list_buckets()
    with s3_error("SignatureDoesNotMatch", 403):
        bad.put_object(Bucket=bucket, Key="x", Body=b"x")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="x")
    r = server.signed_request("GET", f"/{bucket}", secret_key="definitely-not-the-secret")
    assert_s3_error_response(r, "SignatureDoesNotMatch", 403)


def test_tampered_signed_request(server, bucket):
    """Change a signed header after signing -> SignatureDoesNotMatch."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    url = f"{server.endpoint}/{bucket}/t"
    req = AWSRequest(method="PUT", url=url, data=b"x", headers={"x-amz-meta-a": "1"})
    S3SigV4Auth(Credentials(server.access_key, server.secret_key), "s3", server.region).add_auth(req)
    headers = dict(req.headers.items())
    headers["x-amz-meta-a"] = "2"
    r = requests.put(url, data=b"x", headers=headers)
    assert_s3_error_response(r, "SignatureDoesNotMatch", 403)


def test_wrong_region_in_credential_scope(server):
    r = server.signed_request("GET", "/", region="eu-west-1")
    assert r.status_code in (400, 403), r.content
    err = parse_error_xml(r.content)
    assert err["Code"] in ("AuthorizationHeaderMalformed", "SignatureDoesNotMatch")


def test_malformed_authorization_header(server, s3, bucket):
    r = requests.put(f"{server.endpoint}/{bucket}/m", data=b"x",
                     headers={"Authorization": "AWS4-HMAC-SHA256 garbage",
                              "x-amz-date": datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ"),
                              "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    assert r.status_code in (400, 403), r.content
    assert parse_error_xml(r.content)["Code"]
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="m")


@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew_refused(server, minutes):
    when = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(minutes=minutes)
    r = server.signed_request("GET", "/", when=when)
    assert_s3_error_response(r, "RequestTimeTooSkewed", 403)


def test_clock_skew_within_limit_ok(server):
    when = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=10)
    r = server.signed_request("GET", "/", when=when)
    assert r.status_code == 200, r.content


# ------------------------------------------------------- error documents
def test_error_documents_have_code_message_resource_requestid(server, s3, bucket):
    cases = [
        (server.signed_request("GET", f"/{unique_bucket_name('nb')}"), "NoSuchBucket", 404),
        (server.signed_request("GET", f"/{bucket}/no/such/key"), "NoSuchKey", 404),
        (requests.get(f"{server.endpoint}/{bucket}"), "AccessDenied", 403),
        (server.signed_request("GET", "/", access_key="AKIANOSUCHKEY0000000"), "InvalidAccessKeyId", 403),
        (server.signed_request("PUT", "/Invalid_Bucket"), "InvalidBucketName", 400),
    ]
    for r, code, status in cases:
        err = assert_s3_error_response(r, code, status)
        assert r.headers.get("Content-Type", "").startswith(("application/xml", "text/xml")), r.headers
    # Resource names what was addressed
    err = assert_s3_error_response(cases[1][0], "NoSuchKey", 404)
    assert bucket in err["Resource"] or err.get("Key") == "no/such/key"


def test_boto3_error_metadata_has_request_id(s3, bucket):
    with s3_error("NoSuchKey", 404) as holder:
        s3.get_object(Bucket=bucket, Key="missing")
    assert holder["ResponseMetadata"]["RequestId"]
    assert holder["Error"]["Message"]


def test_success_responses_have_request_id(s3, bucket):
    responses = [
        s3.list_buckets(),
        s3.put_object(Bucket=bucket, Key="rid", Body=b"x"),
        s3.get_object(Bucket=bucket, Key="rid"),
        s3.head_object(Bucket=bucket, Key="rid"),
        s3.list_objects_v2(Bucket=bucket),
        s3.delete_object(Bucket=bucket, Key="rid"),
        s3.head_bucket(Bucket=bucket),
    ]
    ids = [r["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id") for r in responses]
    assert all(ids), ids
    assert len(set(ids)) == len(ids), "request ids must be unique"


def test_unknown_method_is_s3_error(server, bucket):
    r = server.signed_request("PATCH", f"/{bucket}/x", body=b"x")
    assert r.status_code in (400, 405, 501), r.content
    assert parse_error_xml(r.content)["Code"]
    assert r.headers.get("x-amz-request-id")


# ---------------------------------------------------------- presigned URLs
# Note: boto3 with default settings presigns S3 URLs for us-east-1 with the
# legacy SigV2 query form (AWSAccessKeyId/Signature/Expires); SigV4 presigned
# URLs need Config(signature_version="s3v4").  The issue asks for SigV4
# presigned URLs, so these tests use s3v4; the SigV2 default is covered by
# test_presigned_boto3_default_sigv2_is_handled below.
@pytest.fixture(scope="module")
def ps3(server):
    return server.client(signature_version="s3v4")


def test_presigned_url_is_sigv4(ps3):
    url = ps3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Signature=" in url


def test_presigned_get(ps3, s3, bucket):
    s3.put_object(Bucket=bucket, Key="pre/get file", Body=b"presigned content")
    url = ps3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/get file"},
                                     ExpiresIn=300)
    r = requests.get(url)
    assert r.status_code == 200, r.content
    assert r.content == b"presigned content"
    assert r.headers.get("x-amz-request-id")
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"presigned content"


def test_presigned_head(ps3, s3, bucket):
    s3.put_object(Bucket=bucket, Key="pre/head", Body=b"12345")
    url = ps3.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": "pre/head"})
    r = requests.head(url)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == "5"


def test_presigned_get_with_response_override(ps3, s3, bucket):
    s3.put_object(Bucket=bucket, Key="pre/ovr", Body=b"x", ContentType="text/plain")
    url = ps3.generate_presigned_url("get_object", Params={
        "Bucket": bucket, "Key": "pre/ovr", "ResponseContentDisposition": "attachment; filename=x.txt"})
    r = requests.get(url)
    assert r.status_code == 200, r.content
    assert r.headers["Content-Disposition"] == "attachment; filename=x.txt"


def test_presigned_put(ps3, s3, bucket):
    url = ps3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre/put"}, ExpiresIn=300)
    r = requests.put(url, data=b"uploaded via presigned url")
    assert r.status_code == 200, r.content
    assert s3.get_object(Bucket=bucket, Key="pre/put")["Body"].read() == b"uploaded via presigned url"


def test_presigned_list_bucket(ps3, s3, bucket):
    s3.put_object(Bucket=bucket, Key="pre/l", Body=b"x")
    url = ps3.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket})
    r = requests.get(url)
    assert r.status_code == 200, r.content
    from urllib.parse import unquote_plus
    from conftest import xml_find_all
    assert [unquote_plus(k.text) for k in xml_find_all(r.content, "Key")] == ["pre/l"]


def test_presigned_tampered(ps3, s3, bucket):
    s3.put_object(Bucket=bucket, Key="pre/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="pre/b", Body=b"b")
    url = ps3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/a"})
    r = requests.get(url.replace("/pre/a?", "/pre/b?"))
    assert_s3_error_response(r, "SignatureDoesNotMatch", 403)
    # a presigned GET does not authorize a PUT
    r = requests.put(url, data=b"overwrite")
    assert_s3_error_response(r, "SignatureDoesNotMatch", 403)
    assert s3.get_object(Bucket=bucket, Key="pre/a")["Body"].read() == b"a"


def test_presigned_wrong_secret(server, bucket, s3):
    s3.put_object(Bucket=bucket, Key="pre/w", Body=b"w")
    bad = server.client(secret_key="wrong-secret", signature_version="s3v4")
    url = bad.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/w"})
    assert_s3_error_response(requests.get(url), "SignatureDoesNotMatch", 403)


def test_presigned_unknown_key(server, bucket, s3):
    bad = server.client(access_key="AKIANOSUCHKEY0000000", signature_version="s3v4")
    url = bad.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/w"})
    assert_s3_error_response(requests.get(url), "InvalidAccessKeyId", 403)


def test_presigned_expired(ps3, s3, bucket):
    s3.put_object(Bucket=bucket, Key="pre/exp", Body=b"e")
    url = ps3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/exp"}, ExpiresIn=1)
    time.sleep(2.5)
    r = requests.get(url)
    err = assert_s3_error_response(r, "AccessDenied", 403)
    assert "expired" in err["Message"].lower()


def test_presigned_boto3_default_sigv2_is_handled(s3, bucket):
    """boto3's default presign (SigV2 query auth in us-east-1) must get a
    clean answer: either it works, or AWS's refusal for an unsupported
    mechanism (400 InvalidRequest "...Please use AWS4-HMAC-SHA256.")."""
    s3.put_object(Bucket=bucket, Key="pre/v2", Body=b"v2")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/v2"})
    assert "AWSAccessKeyId=" in url   # premise: boto3 default is SigV2 here
    r = requests.get(url)
    if r.status_code != 200:
        err = assert_s3_error_response(r, "InvalidRequest", 400)
        assert "AWS4-HMAC-SHA256" in err["Message"]
    else:
        assert r.content == b"v2"


def test_sigv2_authorization_header(server, bucket):
    """Clients set to the legacy SigV2 header (`Authorization: AWS key:signature`,
    botocore's signature_version "s3") work, with AWS's errors for a wrong secret or
    an unknown key."""
    v2 = server.client(signature_version="s3", s3={"addressing_style": "path"})
    v2.put_object(Bucket=bucket, Key="v2/obj name+1", Body=b"signed v2", ContentType="text/plain")
    got = v2.get_object(Bucket=bucket, Key="v2/obj name+1")
    assert got["Body"].read() == b"signed v2" and got["ContentType"] == "text/plain"
    keys = [o["Key"] for o in v2.list_objects(Bucket=bucket, Prefix="v2/")["Contents"]]
    assert keys == ["v2/obj name+1"]
    mpu = v2.create_multipart_upload(Bucket=bucket, Key="v2/mpu")
    part = v2.upload_part(Bucket=bucket, Key="v2/mpu", UploadId=mpu["UploadId"], PartNumber=1, Body=b"p")
    v2.complete_multipart_upload(Bucket=bucket, Key="v2/mpu", UploadId=mpu["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    v2.delete_object(Bucket=bucket, Key="v2/obj name+1")
    bad = server.client(secret_key="wrong-secret", signature_version="s3",
                        s3={"addressing_style": "path"})
    with s3_error("SignatureDoesNotMatch", 403):
        bad.get_object(Bucket=bucket, Key="v2/mpu")
    unknown = server.client(access_key="NOSUCHKEY0000000", signature_version="s3",
                            s3={"addressing_style": "path"})
    with s3_error("InvalidAccessKeyId", 403):
        unknown.list_objects(Bucket=bucket)


def _with_query(url, **changes):
    parts = urlsplit(url)
    q = dict(parse_qsl(parts.query, keep_blank_values=True))
    q.update(changes)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(q), ""))


def test_presigned_expires_too_long(ps3, s3, bucket):
    s3.put_object(Bucket=bucket, Key="pre/long", Body=b"l")
    url = ps3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/long"},
                                    ExpiresIn=604801)
    r = requests.get(url)
    assert_s3_error_response(r, "AuthorizationQueryParametersError", 400)
    # the maximum, one week, is accepted
    url = ps3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/long"},
                                     ExpiresIn=604800)
    assert requests.get(url).status_code == 200


def test_presigned_unsigned_url_params_missing(ps3, bucket, s3):
    s3.put_object(Bucket=bucket, Key="pre/m", Body=b"m")
    url = ps3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/m"})
    parts = urlsplit(url)
    q = [(k, v) for k, v in parse_qsl(parts.query) if k != "X-Amz-Signature"]
    r = requests.get(urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(q), "")))
    assert r.status_code in (400, 403), r.content
    assert parse_error_xml(r.content)["Code"]


# ------------------------------------------------------- virtual-hosted style
DOMAIN = "s3.test"


@pytest.fixture(scope="module")
def vhost_server(kura_bin):
    from conftest import KuraServer
    srv = KuraServer(kura_bin, domain=DOMAIN)
    srv.start()
    yield srv
    srv.cleanup()


def _vhost_client(srv):
    """A boto3 client with addressing_style=virtual against http://s3.test:PORT.
    *.s3.test does not resolve, so a before-send hook connects to 127.0.0.1
    and keeps the signed Host header (bucket.s3.test:PORT) unchanged."""
    c = srv.client(endpoint_url=f"http://{DOMAIN}:{srv.s3_port}", s3={"addressing_style": "virtual"})

    def reroute(request, **kw):
        parts = urlsplit(request.url)
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit((parts.scheme, f"127.0.0.1:{srv.s3_port}", parts.path, parts.query, ""))
    c.meta.events.register_last("before-send.s3", reroute)
    return c


def test_virtual_hosted_style_boto3(vhost_server):
    c = _vhost_client(vhost_server)
    seen = []
    c.meta.events.register_first("before-send.s3", lambda request, **kw: seen.append(request.url))
    name = unique_bucket_name("vh")
    c.create_bucket(Bucket=name)
    assert seen[-1].startswith(f"http://{name}.{DOMAIN}:"), seen   # premise: virtual style
    c.put_object(Bucket=name, Key="dir/obj key", Body=b"virtual")
    assert c.get_object(Bucket=name, Key="dir/obj key")["Body"].read() == b"virtual"
    assert [o["Key"] for o in c.list_objects_v2(Bucket=name)["Contents"]] == ["dir/obj key"]
    assert name in [b["Name"] for b in c.list_buckets()["Buckets"]]
    # path-style keeps working on the same server
    p = vhost_server.client()
    assert p.get_object(Bucket=name, Key="dir/obj key")["Body"].read() == b"virtual"
    c.delete_object(Bucket=name, Key="dir/obj key")
    c.delete_bucket(Bucket=name)
    with s3_error("404", 404):
        p.head_bucket(Bucket=name)


def test_virtual_hosted_style_raw(vhost_server):
    name = unique_bucket_name("vh")
    host = f"{name}.{DOMAIN}:{vhost_server.s3_port}"
    r = vhost_server.signed_request("PUT", "/", host=host)
    assert r.status_code == 200, r.content
    r = vhost_server.signed_request("PUT", "/k", host=host, body=b"raw virtual")
    assert r.status_code == 200, r.content
    r = vhost_server.signed_request("GET", "/k", host=host)
    assert r.status_code == 200 and r.content == b"raw virtual"
    # the same object through path style
    r = vhost_server.signed_request("GET", f"/{name}/k")
    assert r.status_code == 200 and r.content == b"raw virtual"
    # missing bucket addressed virtually
    r = vhost_server.signed_request("GET", "/k", host=f"{unique_bucket_name('nb')}.{DOMAIN}:{vhost_server.s3_port}")
    assert_s3_error_response(r, "NoSuchBucket", 404)
    vhost_server.signed_request("DELETE", "/k", host=host)
    assert vhost_server.signed_request("DELETE", "/", host=host).status_code == 204
