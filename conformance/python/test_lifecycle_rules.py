"""Bucket lifecycle with boto3 and the aws CLI: the configuration API and its errors, the
x-amz-expiration header, and the lifecycle worker expiring objects and aborting uploads
within seconds on a server whose lifecycle day is one second."""

import datetime
import json
import re
import time

import requests

import pytest

from conftest import s3_error, unique_bucket_name
from tools import run, utf8_env, venv_bin

RULES = [
    {"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 2}},
    {"ID": "tagged", "Filter": {"And": {"Prefix": "logs/", "Tags": [{"Key": "tier", "Value": "scratch"}],
                                        "ObjectSizeGreaterThan": 0}},
     "Status": "Enabled", "Expiration": {"Days": 1}},
    {"ID": "uploads", "Filter": {}, "Status": "Enabled",
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
    {"ID": "off", "Filter": {"Prefix": ""}, "Status": "Disabled", "Expiration": {"Days": 1}},
    {"ID": "dated", "Filter": {"ObjectSizeLessThan": 100},
     "Status": "Enabled", "Expiration": {"Date": datetime.datetime(2099, 1, 1, tzinfo=datetime.timezone.utc)}},
    {"ID": "versions", "Filter": {"Prefix": "v/"}, "Status": "Enabled",
     "NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 2},
     "Transitions": [{"Days": 30, "StorageClass": "STANDARD"}]},
]


def test_configuration_round_trip(s3, bucket):
    with s3_error("NoSuchLifecycleConfiguration", 404):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": RULES})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [r["ID"] for r in got] == [r["ID"] for r in RULES]
    assert got[0]["Filter"] == {"Prefix": "tmp/"} and got[0]["Expiration"] == {"Days": 2}
    assert got[1]["Filter"]["And"]["Tags"] == [{"Key": "tier", "Value": "scratch"}]
    assert got[2]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert got[3]["Status"] == "Disabled"
    assert got[4]["Expiration"]["Date"].year == 2099
    assert got[5]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30, "NewerNoncurrentVersions": 2}
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with s3_error("NoSuchLifecycleConfiguration", 404):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)


@pytest.mark.parametrize("rule,code", [
    ({"ID": "a", "Filter": {"Prefix": "x"}, "Status": "Enabled", "Expiration": {"Days": 0}}, "InvalidArgument"),
    ({"ID": "a", "Filter": {"Prefix": "x"}, "Status": "Enabled",
      "Expiration": {"Date": datetime.datetime(2099, 1, 1, 12, tzinfo=datetime.timezone.utc)}}, "InvalidArgument"),
    ({"ID": "a", "Filter": {"Prefix": "x"}, "Status": "Enabled"}, "InvalidRequest"),
    ({"ID": "a", "Filter": {"Prefix": "x"}, "Status": "Enabled",
      "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}, "InvalidStorageClass"),
    ({"ID": "a", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Status": "Enabled",
      "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}, "InvalidRequest"),
    ({"ID": "x" * 256, "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 1}}, "InvalidArgument"),
])
def test_invalid_rules_change_nothing(s3, bucket, rule, code):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": RULES[:1]})
    with s3_error(code, 400):
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
    with s3_error("InvalidArgument", 400):
        s3.put_bucket_lifecycle_configuration(Bucket=bucket,
                                              LifecycleConfiguration={"Rules": [RULES[0], RULES[0]]})
    assert [r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]] == ["tmp"]


def test_expiration_header(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": RULES[:1]})
    put = s3.put_object(Bucket=bucket, Key="tmp/a", Body=b"x")
    assert put["Expiration"].endswith('rule-id="tmp"'), put["Expiration"]
    head = s3.head_object(Bucket=bucket, Key="tmp/a")
    expiry = head["Expiration"].split('"')[1]
    written = head["LastModified"]
    due = datetime.datetime.strptime(expiry, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=datetime.timezone.utc)
    # Two days later, rounded up to midnight UTC, as S3 does.
    assert due.time() == datetime.time(0) and datetime.timedelta(days=2) <= due - written < datetime.timedelta(days=3)
    s3.put_object(Bucket=bucket, Key="kept", Body=b"x")
    assert "Expiration" not in s3.head_object(Bucket=bucket, Key="kept")


def test_worker_expires_and_aborts_within_seconds(make_server, kura_bin):
    server = make_server(extra_env={"KURA_LIFECYCLE_DAY_SECONDS": "1"})
    s3 = server.client()
    bucket = unique_bucket_name("lc")
    s3.create_bucket(Bucket=bucket)
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"tmp/{i}", Body=b"x")
    s3.put_object(Bucket=bucket, Key="logs/scratch", Body=b"x", Tagging="tier=scratch")
    s3.put_object(Bucket=bucket, Key="logs/keep", Body=b"x", Tagging="tier=gold")
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": RULES[:4]})
    deadline = time.time() + 30
    while time.time() < deadline:
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        if keys == ["keep", "logs/keep"] and not uploads:
            break
        time.sleep(0.5)
    assert keys == ["keep", "logs/keep"], keys
    assert not uploads, uploads
    with s3_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key="big", UploadId=upload)
    # What the worker did shows in the admin API and the metrics.
    env = utf8_env({**server.env(), "KURA_ADMIN_ENDPOINT": server.endpoint,
                    "KURA_ADMIN_ACCESS_KEY": server.access_key, "KURA_ADMIN_SECRET_KEY": server.secret_key})
    info = json.loads(run([str(kura_bin), "admin", "--json", "bucket", "info", bucket], env).stdout)
    # With one-second days several passes ran; the last one is shown.
    assert info["lifecycle"]["last_run"] and info["lifecycle"]["finished"], info
    workers = json.loads(run([str(kura_bin), "admin", "--json", "workers"], env).stdout)["workers"]
    assert {w["name"] for w in workers} == {"gc", "reshard", "lifecycle", "access-log"}
    assert next(w for w in workers if w["name"] == "lifecycle")["items"] >= 7
    metrics = requests.get(f"{server.ops_endpoint}/metrics", timeout=10).text
    expired = re.search(r"^kura_lifecycle_objects_expired_total (\d+)", metrics, re.M)
    assert expired and int(expired.group(1)) >= 6, metrics[-2000:]


def test_aws_cli_lifecycle(server, bucket):
    aws = [str(venv_bin("aws")), "s3api"]
    env = utf8_env(server.env())
    config = json.dumps({"Rules": [{"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
                                    "Expiration": {"Days": 30}}]})
    run([*aws, "put-bucket-lifecycle-configuration", "--bucket", bucket,
         "--lifecycle-configuration", config], env)
    out = json.loads(run([*aws, "get-bucket-lifecycle-configuration", "--bucket", bucket,
                          "--output", "json"], env).stdout)
    assert out["Rules"][0]["ID"] == "logs" and out["Rules"][0]["Expiration"] == {"Days": 30}


def test_worker_expires_noncurrent_versions_and_lone_delete_markers(make_server):
    """With one-second days: NoncurrentVersionExpiration (keeping the newest noncurrent
    versions NewerNoncurrentVersions asks for), ExpiredObjectDeleteMarker removing markers
    left alone, current versions expiring into delete markers, and locked versions staying."""
    server = make_server(extra_env={"KURA_LIFECYCLE_DAY_SECONDS": "1"})
    s3 = server.client()
    bucket = unique_bucket_name("lcv")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    doc = [s3.put_object(Bucket=bucket, Key="keep1/doc", Body=b"%d" % i)["VersionId"]
           for i in range(4)]
    held = s3.put_object(Bucket=bucket, Key="all/held", Body=b"h",
                         ObjectLockLegalHoldStatus="ON")["VersionId"]
    newer = s3.put_object(Bucket=bucket, Key="all/held", Body=b"newer")["VersionId"]
    gone = s3.put_object(Bucket=bucket, Key="all/gone", Body=b"g")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="all/gone")
    tmp = s3.put_object(Bucket=bucket, Key="tmp/x", Body=b"t")["VersionId"]
    rules = [
        {"ID": "keep-one", "Filter": {"Prefix": "keep1/"}, "Status": "Enabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
        {"ID": "all", "Filter": {"Prefix": "all/"}, "Status": "Enabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
        {"ID": "markers", "Filter": {}, "Status": "Enabled",
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
        {"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})

    def listed():
        r = s3.list_object_versions(Bucket=bucket)
        return (sorted((v["Key"], v["VersionId"]) for v in r.get("Versions", [])),
                sorted(m["Key"] for m in r.get("DeleteMarkers", [])))

    # keep1/doc keeps its current and newest noncurrent version; all/held keeps its held
    # version; all/gone's version expires, then its marker, left alone; tmp/x expires into
    # a delete marker, which stays in front of the version it hides.
    want = (sorted([("keep1/doc", doc[3]), ("keep1/doc", doc[2]), ("all/held", held),
                    ("all/held", newer), ("tmp/x", tmp)]), ["tmp/x"])
    deadline = time.time() + 40
    while time.time() < deadline:
        got = listed()
        if got == want:
            break
        time.sleep(0.5)
    assert got == want
    assert gone not in [v for _, v in got[0]]
    assert s3.get_object(Bucket=bucket, Key="keep1/doc")["Body"].read() == b"3"
    s3.put_object_legal_hold(Bucket=bucket, Key="all/held", VersionId=held,
                             LegalHold={"Status": "OFF"})
