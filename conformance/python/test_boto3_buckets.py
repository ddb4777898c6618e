"""boto3: bucket operations -- ListBuckets, CreateBucket, HeadBucket,
DeleteBucket, GetBucketLocation, GetBucketVersioning, GetBucketAcl."""

import datetime

import pytest

from conftest import (
    assert_s3_error_response,
    s3_error,
    s3_error_any,
    unique_bucket_name,
)


def test_list_buckets_contains_created_buckets(s3, server):
    names = sorted(unique_bucket_name("lb") for _ in range(3))
    for n in names:
        s3.create_bucket(Bucket=n)
    try:
        r = s3.list_buckets()
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
        listed = [b["Name"] for b in r["Buckets"]]
        for n in names:
            assert n in listed
        # S3 lists buckets in lexicographic order of name.
        assert listed == sorted(listed)
        now = datetime.datetime.now(datetime.timezone.utc)
        for b in r["Buckets"]:
            if b["Name"] in names:
                assert abs((now - b["CreationDate"]).total_seconds()) < 300
        assert r["Owner"]["ID"]
    finally:
        for n in names:
            s3.delete_bucket(Bucket=n)
    listed = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert not set(names) & set(listed)


def test_create_head_delete_bucket(s3):
    name = unique_bucket_name()
    r = s3.create_bucket(Bucket=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    # "Location: a forward slash followed by the name of the bucket"
    assert r.get("Location") == f"/{name}"
    h = s3.head_bucket(Bucket=name)
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 200
    # HeadBucket reports the bucket's region.
    assert h["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region") == "us-east-1"
    d = s3.delete_bucket(Bucket=name)
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204
    with s3_error("404", 404):
        s3.head_bucket(Bucket=name)


def test_bucket_requests_log_no_internal_error(s3, server):
    """Creating, listing and deleting buckets, and a refused bucket name, are ordinary
    requests: the server's log must not call any of them an internal error (operators
    alert on those lines)."""
    before = server.log_path.stat().st_size
    name = unique_bucket_name("lq")
    s3.create_bucket(Bucket=name)
    s3.list_buckets()
    s3.delete_bucket(Bucket=name)
    with s3_error("InvalidBucketName", 400):
        s3.create_bucket(Bucket="ab")
    with open(server.log_path, "rb") as log:
        log.seek(before)
        written = log.read().decode(errors="replace")
    assert "internal error" not in written, written


def test_head_bucket_missing_is_404_without_body(s3, server):
    with s3_error("404", 404):
        s3.head_bucket(Bucket=unique_bucket_name("missing"))
    r = server.signed_request("HEAD", f"/{unique_bucket_name('missing')}")
    assert r.status_code == 404
    assert r.content == b""
    assert r.headers.get("x-amz-request-id")


def test_delete_missing_bucket_is_nosuchbucket(s3):
    with s3_error("NoSuchBucket", 404):
        s3.delete_bucket(Bucket=unique_bucket_name("missing"))


def test_delete_bucket_not_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=bucket)
    # rejected request changed nothing
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    s3.head_bucket(Bucket=bucket)


def test_delete_bucket_with_an_open_upload_and_an_object_keeps_both(s3, bucket):
    # With an object, the bucket is not empty; its open uploads are left alone.
    # (Without objects, DeleteBucket removes open uploads: test_client_quirks.py.)
    up = s3.create_multipart_upload(Bucket=bucket, Key="pending")
    s3.put_object(Bucket=bucket, Key="object", Body=b"x")
    with s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=bucket)
    s3.head_bucket(Bucket=bucket)
    parts = s3.list_parts(Bucket=bucket, Key="pending", UploadId=up["UploadId"])
    assert parts["UploadId"] == up["UploadId"]
    s3.delete_object(Bucket=bucket, Key="object")
    s3.delete_bucket(Bucket=bucket)
    with s3_error("404", 404):
        s3.head_bucket(Bucket=bucket)


def test_delete_bucket_after_emptying(s3):
    name = unique_bucket_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="a/b", Body=b"1")
    s3.delete_object(Bucket=name, Key="a/b")
    assert s3.delete_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_create_bucket_already_owned_us_east_1(s3, bucket):
    """us-east-1: AWS keeps a legacy 200 OK for re-creating a bucket you own
    (elsewhere it is 409 BucketAlreadyOwnedByYou). Accept either, but the
    bucket and its objects must survive."""
    s3.put_object(Bucket=bucket, Key="keep", Body=b"data")
    from botocore.exceptions import ClientError
    try:
        r = s3.create_bucket(Bucket=bucket)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    except ClientError as e:
        assert e.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"data"


@pytest.fixture(scope="module")
def eu_server(kura_bin):
    """A server whose region is eu-central-1 (not us-east-1)."""
    from conftest import KuraServer
    srv = KuraServer(kura_bin, region="eu-central-1")
    srv.start()
    yield srv
    srv.cleanup()


def test_create_bucket_already_owned_other_region(eu_server):
    s3 = eu_server.client()
    name = unique_bucket_name()
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    with s3_error("BucketAlreadyOwnedByYou", 409):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    s3.delete_bucket(Bucket=name)


def test_location_constraint_matching_region_accepted(eu_server):
    s3 = eu_server.client()
    name = unique_bucket_name()
    r = s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    loc = s3.get_bucket_location(Bucket=name)
    assert loc["LocationConstraint"] == "eu-central-1"
    h = s3.head_bucket(Bucket=name)
    assert h["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region") == "eu-central-1"
    s3.delete_bucket(Bucket=name)


def test_location_constraint_us_east_1_explicit_is_invalid(s3):
    """AWS rejects an explicit 'us-east-1' LocationConstraint:
    400 InvalidLocationConstraint (us-east-1 is expressed by no constraint)."""
    name = unique_bucket_name()
    with s3_error("InvalidLocationConstraint", 400):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    with s3_error("404", 404):
        s3.head_bucket(Bucket=name)


def test_location_constraint_mismatch_is_illegal(s3):
    """A constraint naming another region than the endpoint's is refused. AWS
    answers 400 IllegalLocationConstraintException ("The eu-west-1 location
    constraint is incompatible for the region specific endpoint this request
    was sent to"); 400 InvalidLocationConstraint is accepted as well."""
    name = unique_bucket_name()
    with s3_error_any(("IllegalLocationConstraintException", 400), ("InvalidLocationConstraint", 400)):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with s3_error("404", 404):
        s3.head_bucket(Bucket=name)


def test_get_bucket_location_us_east_1_is_null(s3, bucket, server):
    r = s3.get_bucket_location(Bucket=bucket)
    # us-east-1 buckets have an empty LocationConstraint (boto3: None)
    assert r.get("LocationConstraint") in (None, "")
    raw = server.signed_request("GET", f"/{bucket}", query=[("location", None)])
    assert raw.status_code == 200
    assert b"LocationConstraint" in raw.content


def test_get_bucket_location_missing_bucket(s3):
    with s3_error("NoSuchBucket", 404):
        s3.get_bucket_location(Bucket=unique_bucket_name("missing"))


BAD_NAMES = [
    "ab",                      # too short
    "a" * 64,                  # too long
    "UpperCase",               # upper case
    "under_score",             # underscore
    "-leadingdash",
    "trailingdash-",
    ".leadingdot",
    "trailingdot.",
    "double..dot",
    "192.168.5.4",             # IP address form
    "xn--prefixed",            # reserved prefix
    "sthree-prefixed",         # reserved prefix
    "bucket-s3alias",          # reserved suffix
    "bucket--ol-s3",           # reserved suffix
    "has space",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_bucket_names(server, s3, name):
    from urllib.parse import quote
    r = server.signed_request("PUT", "/" + quote(name, safe=""))
    assert_s3_error_response(r, "InvalidBucketName", 400)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket.name", "0-9-digits", "a-b.c-d"])
def test_valid_bucket_names_accepted(s3, name):
    # names must be unique per server; suffix-free names are fine on a
    # session server as long as each is created once and deleted after.
    s3.create_bucket(Bucket=name)
    try:
        s3.head_bucket(Bucket=name)
    finally:
        s3.delete_bucket(Bucket=name)


def test_create_bucket_with_private_acl(s3):
    name = unique_bucket_name()
    r = s3.create_bucket(Bucket=name, ACL="private")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    s3.delete_bucket(Bucket=name)


def test_get_bucket_versioning_not_enabled(s3, bucket):
    r = s3.get_bucket_versioning(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    # A bucket that never had versioning has no Status and no MFADelete.
    assert "Status" not in r
    assert "MFADelete" not in r


def test_get_bucket_versioning_missing_bucket(s3):
    with s3_error("NoSuchBucket", 404):
        s3.get_bucket_versioning(Bucket=unique_bucket_name("missing"))


def test_get_bucket_acl_owner_full_control(s3, bucket):
    r = s3.get_bucket_acl(Bucket=bucket)
    owner = r["Owner"]["ID"]
    assert owner
    grants = r["Grants"]
    assert len(grants) == 1
    g = grants[0]
    assert g["Permission"] == "FULL_CONTROL"
    assert g["Grantee"]["Type"] == "CanonicalUser"
    assert g["Grantee"]["ID"] == owner
    # the bucket owner is the same identity ListBuckets reports
    assert s3.list_buckets()["Owner"]["ID"] == owner


def test_get_bucket_acl_missing_bucket(s3):
    with s3_error("NoSuchBucket", 404):
        s3.get_bucket_acl(Bucket=unique_bucket_name("missing"))


def test_bucket_persists_across_restart(fresh_server):
    s3 = fresh_server.client()
    name = unique_bucket_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    fresh_server.restart()
    s3 = fresh_server.client()
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"v"


@pytest.mark.parametrize("body", [
    # Made quick-xml's deserializer panic and the connection drop (a DTD inside an element).
    b"<CreateBucketConfiguration><LocationConstraint>us-<!DOCTYPE x [<!ENTITY a SYSTEM "
    b"'file:///etc/passwd'>]>east-1</LocationConstraint></CreateBucketConfiguration>",
    b"<!DOCTYPE x [<!ENTITY a 'b'>]><CreateBucketConfiguration>"
    b"<LocationConstraint>&a;</LocationConstraint></CreateBucketConfiguration>",
    b"<CreateBucketConfiguration><LocationConstraint>&a;</LocationConstraint>"
    b"</CreateBucketConfiguration>",
    b"<CreateBucketConfiguration><LocationConstraint>",
])
def test_create_bucket_refuses_dtds_and_entities(server, s3, body):
    name = unique_bucket_name("dtd")
    r = server.signed_request("PUT", f"/{name}", body=body)
    assert_s3_error_response(r, "MalformedXML", 400)
    with s3_error("404", 404):
        s3.head_bucket(Bucket=name)
    # The server is still answering on the same terms.
    assert server.signed_request("GET", "/").status_code == 200
