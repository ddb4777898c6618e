"""Object Lock with boto3 and the aws CLI, as AWS behaves: buckets created with Object
Lock (versioning on for good), the bucket's default retention, retention and legal hold
per version (headers on writes, the retention and legal-hold calls, headers on reads),
GOVERNANCE bypass, COMPLIANCE that only extends, and a locked version surviving every
delete path: DeleteObject by id, DeleteObjects, bucket deletion and admin purge without
the operator's override."""

import datetime as dt
import json
import os

import pytest

from conftest import create_user, s3_error, unique_bucket_name
from tools import run, utf8_env, venv_bin


def later(**kw) -> dt.datetime:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(**kw)).replace(microsecond=0)


def admin_env(server):
    return {**os.environ, "KURA_ADMIN_ENDPOINT": server.endpoint,
            "KURA_ADMIN_ACCESS_KEY": server.access_key,
            "KURA_ADMIN_SECRET_KEY": server.secret_key}


@pytest.fixture
def locked(server, kura_bin, s3):
    """A bucket created with Object Lock; removed at the end past its locks, by the
    operator's override."""
    name = unique_bucket_name("lock")
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name
    run([kura_bin, "admin", "bucket", "delete", name, "--purge", "--bypass-object-lock"],
        admin_env(server))


def headers(response):
    return response["ResponseMetadata"]["HTTPHeaders"]


def test_a_bucket_created_with_object_lock_is_versioned_for_good(s3, locked):
    assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    conf = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert conf == {"ObjectLockEnabled": "Enabled"}
    with s3_error("InvalidBucketState", 409):
        s3.put_bucket_versioning(Bucket=locked, VersioningConfiguration={"Status": "Suspended"})


def test_default_retention_round_trip_and_limits(s3, locked):
    rule = {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}
    s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": rule})
    got = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert got["Rule"] == rule
    for retention, code in [({"Mode": "GOVERNANCE", "Days": 1, "Years": 1}, "MalformedXML"),
                            ({"Mode": "GOVERNANCE", "Days": 0}, "InvalidArgument"),
                            ({"Mode": "FOREVER", "Days": 1}, "MalformedXML")]:
        with s3_error(code, 400):
            s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}})
    assert s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]["Rule"] == rule
    # New versions get the default retention: about a day from now.
    vid = s3.put_object(Bucket=locked, Key="k", Body=b"x")["VersionId"]
    retention = s3.get_object_retention(Bucket=locked, Key="k", VersionId=vid)["Retention"]
    assert retention["Mode"] == "GOVERNANCE"
    assert abs((retention["RetainUntilDate"] - later(days=1)).total_seconds()) < 120


def test_a_bucket_without_object_lock(s3, bucket):
    with s3_error("ObjectLockConfigurationNotFoundError", 404):
        s3.get_object_lock_configuration(Bucket=bucket)
    conf = {"ObjectLockEnabled": "Enabled"}
    with s3_error("InvalidBucketState", 409):
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=conf)
    with s3_error("InvalidRequest", 400):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=later(days=1))
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with s3_error("InvalidRequest", 400):
        s3.get_object_retention(Bucket=bucket, Key="k")
    with s3_error("InvalidRequest", 400):
        s3.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "ON"})


def test_governance_retention_blocks_deletes_unless_bypassed(s3, locked):
    until = later(days=2)
    put = s3.put_object(Bucket=locked, Key="k", Body=b"keep", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=until)
    vid = put["VersionId"]
    head = s3.head_object(Bucket=locked, Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"] == until
    with s3_error("AccessDenied", 403):
        s3.delete_object(Bucket=locked, Key="k", VersionId=vid)
    # Shortening needs the bypass; extending does not.
    with s3_error("AccessDenied", 403):
        s3.put_object_retention(Bucket=locked, Key="k", VersionId=vid, Retention={
            "Mode": "GOVERNANCE", "RetainUntilDate": later(days=1)})
    s3.put_object_retention(Bucket=locked, Key="k", VersionId=vid, Retention={
        "Mode": "GOVERNANCE", "RetainUntilDate": later(days=3)})
    # A delete without a version id only adds a marker.
    marker = s3.delete_object(Bucket=locked, Key="k")
    assert marker["DeleteMarker"] is True
    assert s3.get_object(Bucket=locked, Key="k", VersionId=vid)["Body"].read() == b"keep"
    # The owner may bypass GOVERNANCE.
    s3.delete_object(Bucket=locked, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    with s3_error("NoSuchVersion", 404):
        s3.get_object(Bucket=locked, Key="k", VersionId=vid)


def test_changing_a_governance_mode_needs_the_bypass(s3, locked):
    until = later(days=1)
    vid = s3.put_object(Bucket=locked, Key="m", Body=b"m", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=until)["VersionId"]
    stricter = {"Mode": "COMPLIANCE", "RetainUntilDate": until}
    with s3_error("AccessDenied", 403):
        s3.put_object_retention(Bucket=locked, Key="m", VersionId=vid, Retention=stricter)
    assert s3.head_object(Bucket=locked, Key="m")["ObjectLockMode"] == "GOVERNANCE"
    s3.put_object_retention(Bucket=locked, Key="m", VersionId=vid, Retention=stricter,
                            BypassGovernanceRetention=True)
    assert s3.head_object(Bucket=locked, Key="m")["ObjectLockMode"] == "COMPLIANCE"


def test_compliance_retention_only_extends_and_is_never_bypassed(s3, locked):
    vid = s3.put_object(Bucket=locked, Key="c", Body=b"c", ObjectLockMode="COMPLIANCE",
                        ObjectLockRetainUntilDate=later(days=1))["VersionId"]
    for retention in [{"Mode": "COMPLIANCE", "RetainUntilDate": later(hours=1)},
                      {"Mode": "GOVERNANCE", "RetainUntilDate": later(days=5)}]:
        with s3_error("AccessDenied", 403):
            s3.put_object_retention(Bucket=locked, Key="c", VersionId=vid,
                                    Retention=retention, BypassGovernanceRetention=True)
    extended = later(days=2)
    s3.put_object_retention(Bucket=locked, Key="c", VersionId=vid, Retention={
        "Mode": "COMPLIANCE", "RetainUntilDate": extended})
    got = s3.get_object_retention(Bucket=locked, Key="c", VersionId=vid)["Retention"]
    assert got == {"Mode": "COMPLIANCE", "RetainUntilDate": extended}
    with s3_error("AccessDenied", 403):
        s3.delete_object(Bucket=locked, Key="c", VersionId=vid, BypassGovernanceRetention=True)


def test_legal_hold_blocks_deletes_until_lifted(s3, locked):
    vid = s3.put_object(Bucket=locked, Key="h", Body=b"h", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=locked, Key="h")["LegalHold"]["Status"] == "ON"
    assert headers(s3.get_object(Bucket=locked, Key="h"))["x-amz-object-lock-legal-hold"] == "ON"
    with s3_error("AccessDenied", 403):
        s3.delete_object(Bucket=locked, Key="h", VersionId=vid, BypassGovernanceRetention=True)
    with s3_error("MalformedXML", 400):
        s3.put_object_legal_hold(Bucket=locked, Key="h", LegalHold={"Status": "MAYBE"})
    s3.put_object_legal_hold(Bucket=locked, Key="h", VersionId=vid, LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=locked, Key="h")["LegalHold"]["Status"] == "OFF"
    s3.delete_object(Bucket=locked, Key="h", VersionId=vid)


def test_lock_headers_are_checked(s3, locked):
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=locked, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=later(days=-1))
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=locked, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE")
    s3.put_object(Bucket=locked, Key="free", Body=b"x")
    with s3_error("NoSuchObjectLockConfiguration", 404):
        s3.get_object_retention(Bucket=locked, Key="free")
    assert [v["Key"] for v in s3.list_object_versions(Bucket=locked)["Versions"]] == ["free"]


def test_copies_and_multipart_uploads_get_locks_of_their_own(s3, locked, bucket):
    until = later(days=1)
    s3.put_object(Bucket=locked, Key="src", Body=b"s", ObjectLockMode="GOVERNANCE",
                  ObjectLockRetainUntilDate=until, ObjectLockLegalHoldStatus="ON")
    # A copy into an unlocked bucket carries no lock; a copy may ask for its own.
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": locked, "Key": "src"})
    head = s3.head_object(Bucket=bucket, Key="copy")
    assert "ObjectLockMode" not in head and "ObjectLockLegalHoldStatus" not in head
    copied = s3.copy_object(Bucket=locked, Key="copy", CopySource={"Bucket": locked, "Key": "src"},
                            ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
    head = s3.head_object(Bucket=locked, Key="copy", VersionId=copied["VersionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE" and "ObjectLockLegalHoldStatus" not in head
    up = s3.create_multipart_upload(Bucket=locked, Key="mp", ObjectLockMode="GOVERNANCE",
                                    ObjectLockRetainUntilDate=until)["UploadId"]
    part = s3.upload_part(Bucket=locked, Key="mp", UploadId=up, PartNumber=1, Body=b"p")
    done = s3.complete_multipart_upload(Bucket=locked, Key="mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    with s3_error("AccessDenied", 403):
        s3.delete_object(Bucket=locked, Key="mp", VersionId=done["VersionId"])


def test_a_locked_version_survives_every_delete_path(server, kura_bin, s3, locked):
    vid = s3.put_object(Bucket=locked, Key="k", Body=b"k", ObjectLockMode="COMPLIANCE",
                        ObjectLockRetainUntilDate=later(days=1))["VersionId"]
    free = s3.put_object(Bucket=locked, Key="free", Body=b"f")["VersionId"]
    r = s3.delete_objects(Bucket=locked, BypassGovernanceRetention=True, Delete={"Objects": [
        {"Key": "k", "VersionId": vid}, {"Key": "free", "VersionId": free}]})
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("k", "AccessDenied")]
    assert [d["Key"] for d in r["Deleted"]] == ["free"]
    with s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=locked)
    # The operator's purge stops at the lock unless told to override it.
    refused = run([kura_bin, "admin", "bucket", "delete", locked, "--purge"],
                  admin_env(server), check=False)
    assert refused.returncode == 1 and "ObjectLocked" in refused.stderr, refused.stderr
    assert s3.get_object(Bucket=locked, Key="k", VersionId=vid)["Body"].read() == b"k"


def test_aws_cli_object_lock(server, s3, locked):
    aws = [str(venv_bin("aws")), "s3api"]
    env = utf8_env(server.env())
    run([*aws, "put-object-lock-configuration", "--bucket", locked,
         "--object-lock-configuration",
         '{"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Years": 1}}}'],
        env)
    out = run([*aws, "get-object-lock-configuration", "--bucket", locked, "--output", "json"], env)
    rule = json.loads(out.stdout)["ObjectLockConfiguration"]["Rule"]
    assert rule == {"DefaultRetention": {"Mode": "GOVERNANCE", "Years": 1}}
    vid = s3.put_object(Bucket=locked, Key="cli", Body=b"x")["VersionId"]
    until = later(days=400).strftime("%Y-%m-%dT%H:%M:%SZ")
    run([*aws, "put-object-retention", "--bucket", locked, "--key", "cli", "--version-id", vid,
         "--retention", f"Mode=GOVERNANCE,RetainUntilDate={until}"], env)
    out = run([*aws, "get-object-retention", "--bucket", locked, "--key", "cli",
               "--output", "json"], env)
    assert json.loads(out.stdout)["Retention"]["Mode"] == "GOVERNANCE"
    run([*aws, "put-object-legal-hold", "--bucket", locked, "--key", "cli",
         "--legal-hold", "Status=ON"], env)
    out = run([*aws, "get-object-legal-hold", "--bucket", locked, "--key", "cli",
               "--output", "json"], env)
    assert json.loads(out.stdout)["LegalHold"]["Status"] == "ON"


def test_only_a_principal_allowed_to_bypass_governance_can(server, s3, locked):
    """A user the bucket policy lets delete versions still cannot pass a GOVERNANCE
    retention until the policy also allows s3:BypassGovernanceRetention."""
    name, ak, sk = create_user(server)
    other = server.client(ak, sk)
    vid = s3.put_object(Bucket=locked, Key="g", Body=b"g", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=later(days=1))["VersionId"]

    def allow(*actions):
        s3.put_bucket_policy(Bucket=locked, Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam:::user/{name}"]},
                "Action": list(actions), "Resource": [f"arn:aws:s3:::{locked}/*"]}]}))

    allow("s3:DeleteObjectVersion")
    with s3_error("AccessDenied", 403):
        other.delete_object(Bucket=locked, Key="g", VersionId=vid, BypassGovernanceRetention=True)
    assert s3.head_object(Bucket=locked, Key="g", VersionId=vid)["VersionId"] == vid
    allow("s3:DeleteObjectVersion", "s3:BypassGovernanceRetention")
    other.delete_object(Bucket=locked, Key="g", VersionId=vid, BypassGovernanceRetention=True)
    with s3_error("NoSuchVersion", 404):
        s3.get_object(Bucket=locked, Key="g", VersionId=vid)
