"""Server access logging with boto3, as AWS documents it: PutBucketLogging and
GetBucketLogging (the target's rules: it exists, has the same owner, lets the logging
service write under the prefix, is not SSE-KMS by default), and the delivery of records in
AWS's format as objects of the target bucket, simple or partitioned keys, at the interval
and when the gateway shuts down."""

import json
import re
import shlex
import time

import pytest

from conftest import create_user, empty_and_delete_bucket, s3_error, unique_bucket_name

LOGGING_SERVICE = "logging.s3.amazonaws.com"


def delivery_policy(target, prefix, source, owner_id):
    """The target bucket policy AWS's documentation gives for log delivery."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "S3ServerAccessLogsPolicy",
            "Effect": "Allow",
            "Principal": {"Service": LOGGING_SERVICE},
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{target}/{prefix}*",
            "Condition": {
                "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{source}"},
                "StringEquals": {"aws:SourceAccount": owner_id},
            },
        }],
    })


def owner_id(s3):
    return s3.list_buckets()["Owner"]["ID"]


def new_pair(s3, source_args=None, target_args=None):
    """A new source bucket and a target bucket that lets the logging service write under
    `log/` for that source: (source, target, owner's canonical id)."""
    source, target = unique_bucket_name("src"), unique_bucket_name("logs")
    s3.create_bucket(Bucket=source, **(source_args or {}))
    s3.create_bucket(Bucket=target, **(target_args or {}))
    me = owner_id(s3)
    s3.put_bucket_policy(Bucket=target, Policy=delivery_policy(target, "log/", source, me))
    return source, target, me


def logging_server(make_server, interval=1):
    """A server that delivers access logs every `interval` seconds, and its client."""
    srv = make_server(extra_args=["--access-log-interval-seconds", str(interval)])
    return srv, srv.client()


@pytest.fixture
def pair(server, s3):
    source, target, _ = new_pair(s3)
    yield source, target
    for name in (source, target):
        empty_and_delete_bucket(s3, name)


def enable(s3, source, target, prefix="log/", **extra):
    status = {"LoggingEnabled": {"TargetBucket": target, "TargetPrefix": prefix, **extra}}
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus=status)


def test_configuration_round_trip_and_off(s3, pair):
    source, target = pair
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=source)
    enable(s3, source, target)
    got = s3.get_bucket_logging(Bucket=source)["LoggingEnabled"]
    assert got == {"TargetBucket": target, "TargetPrefix": "log/",
                   "TargetObjectKeyFormat": {"SimplePrefix": {}}}
    partitioned = {"PartitionedPrefix": {"PartitionDateSource": "EventTime"}}
    enable(s3, source, target, TargetObjectKeyFormat=partitioned)
    got = s3.get_bucket_logging(Bucket=source)["LoggingEnabled"]
    assert got["TargetObjectKeyFormat"] == partitioned
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={})
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=source)


def test_a_bucket_may_log_to_itself(s3):
    name = unique_bucket_name("self")
    s3.create_bucket(Bucket=name)
    try:
        s3.put_bucket_policy(Bucket=name, Policy=delivery_policy(name, "log/", name, owner_id(s3)))
        enable(s3, name, name)
        assert s3.get_bucket_logging(Bucket=name)["LoggingEnabled"]["TargetBucket"] == name
    finally:
        empty_and_delete_bucket(s3, name)


def test_targets_aws_refuses_change_nothing(server, s3, pair):
    source, target = pair
    enable(s3, source, target)
    before = s3.get_bucket_logging(Bucket=source)

    with s3_error("NoSuchBucket", 404):
        enable(s3, source + "-missing", target)
    with s3_error("InvalidTargetBucketForLogging", 400):
        enable(s3, source, target + "-missing")
    # No grant to the logging service under this prefix.
    with s3_error("InvalidTargetBucketForLogging", 400):
        enable(s3, source, target, prefix="elsewhere/")
    bare = unique_bucket_name("bare")
    s3.create_bucket(Bucket=bare)
    try:
        with s3_error("InvalidTargetBucketForLogging", 400):
            enable(s3, source, bare, prefix="log/")
        # A grant to everyone is not a grant to the logging service.
        s3.put_bucket_policy(Bucket=bare, Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:PutObject",
                           "Resource": f"arn:aws:s3:::{bare}/*"}]}))
        with s3_error("InvalidTargetBucketForLogging", 400):
            enable(s3, source, bare, prefix="log/")
        # The LogDelivery group's WRITE grant (where ACLs count) is the other way AWS allows.
        s3.put_bucket_ownership_controls(
            Bucket=bare, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
        s3.put_bucket_acl(Bucket=bare, GrantWrite='uri="http://acs.amazonaws.com/groups/s3/LogDelivery"',
                          GrantFullControl=f'id="{owner_id(s3)}"')
        enable(s3, source, bare, prefix="acl/")
        enable(s3, source, target)
    finally:
        s3.delete_bucket_policy(Bucket=bare)
        empty_and_delete_bucket(s3, bare)

    # SSE-KMS by default on the target: AWS delivers only to SSE-S3 or unencrypted buckets.
    s3.put_bucket_encryption(Bucket=target, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    with s3_error("InvalidTargetBucketForLogging", 400):
        enable(s3, source, target)
    s3.delete_bucket_encryption(Bucket=target)

    with s3_error("MalformedXML", 400):
        enable(s3, source, target,
               TargetObjectKeyFormat={"PartitionedPrefix": {"PartitionDateSource": "Tomorrow"}})
    with s3_error("MalformedXML", 400):
        enable(s3, source, target,
               TargetObjectKeyFormat={"SimplePrefix": {},
                                      "PartitionedPrefix": {"PartitionDateSource": "EventTime"}})
    after = s3.get_bucket_logging(Bucket=source)
    assert after["LoggingEnabled"] == before["LoggingEnabled"]


def test_only_the_owner_sets_logging_and_targets_are_their_own(server, s3, pair):
    source, target = pair
    name, ak, sk = create_user(server)
    other = server.client(ak, sk)
    # Even a policy that allows it: AWS lets only the bucket owner set logging.
    s3.put_bucket_policy(Bucket=source, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": name},
                       "Action": ["s3:PutBucketLogging", "s3:GetBucketLogging"],
                       "Resource": f"arn:aws:s3:::{source}"}]}))
    with s3_error("AccessDenied", 403):
        enable(other, source, target)
    assert "LoggingEnabled" not in other.get_bucket_logging(Bucket=source)
    s3.delete_bucket_policy(Bucket=source)
    with s3_error("AccessDenied", 403):
        other.get_bucket_logging(Bucket=source)

    # The target must be the source owner's, whatever its policy says.
    theirs = unique_bucket_name("theirs")
    other.create_bucket(Bucket=theirs)
    try:
        other.put_bucket_policy(
            Bucket=theirs, Policy=delivery_policy(theirs, "log/", source, owner_id(s3)))
        with s3_error("InvalidTargetBucketForLogging", 400):
            enable(s3, source, theirs)
    finally:
        other.delete_bucket_policy(Bucket=theirs)
        empty_and_delete_bucket(other, theirs)


# ------------------------------------------------------------------ delivery
FIELDS = ["owner", "bucket", "time", "ip", "requester", "request_id", "operation", "key",
          "request_uri", "status", "error", "bytes_sent", "object_size", "total_ms",
          "turnaround_ms", "referrer", "user_agent", "version_id", "host_id", "signature",
          "cipher", "auth", "host", "tls", "access_point", "acl_required"]


def parse(line):
    # The time is in brackets; everything else is space-separated or quoted.
    fields = shlex.split(line.replace("[", '"').replace("]", '"'))
    assert len(fields) == len(FIELDS), line
    return dict(zip(FIELDS, fields))


def delivered(s3, target, prefix, count, timeout=30):
    """The records of the log objects under `prefix`, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=target, Prefix=prefix) for o in page.get("Contents", [])]
        records = []
        for key in keys:
            body = s3.get_object(Bucket=target, Key=key)["Body"].read().decode()
            records += [parse(line) for line in body.splitlines()]
        if len(records) >= count or time.monotonic() > deadline:
            return keys, records
        time.sleep(0.5)


def test_records_are_delivered_in_awss_format(make_server):
    srv, s3 = logging_server(make_server)
    source, target, me = new_pair(s3)
    s3.put_bucket_encryption(Bucket=target, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    enable(s3, source, target)

    s3.put_object(Bucket=source, Key="dir/a b.txt", Body=b"x" * 100)
    s3.get_object(Bucket=source, Key="dir/a b.txt", Range="bytes=0-9")["Body"].read()
    s3.head_object(Bucket=source, Key="dir/a b.txt")
    s3.list_objects_v2(Bucket=source)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=source, Key="missing")
    import requests
    anonymous = requests.get(f"{srv.endpoint}/{source}/dir/a%20b.txt", timeout=10)
    assert anonymous.status_code == 403
    forged = srv.client(srv.access_key, "not-the-secret-key")
    with s3_error("SignatureDoesNotMatch", 403):
        forged.get_bucket_versioning(Bucket=source)
    s3.delete_object(Bucket=source, Key="dir/a b.txt")
    for key in ("x1", "x2"):
        s3.put_object(Bucket=source, Key=key, Body=b"")
    s3.delete_objects(Bucket=source, Delete={"Objects": [{"Key": "x1"}, {"Key": "x2"}]})

    keys, records = delivered(s3, target, "log/", 13)
    mine = [r for r in records if r["bucket"] == source]
    assert len(mine) == 13, records
    for key in keys:
        assert re.fullmatch(r"log/\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9A-F]{16}", key), key
        head = s3.head_object(Bucket=target, Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        assert head["ContentType"] == "text/plain"
    by_op = {}
    for r in mine:
        by_op.setdefault(r["operation"], []).append(r)
        assert r["owner"] == me
        assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", r["time"]), r
        assert r["ip"] == "127.0.0.1"
        assert r["request_id"] == r["host_id"] != "-"
        assert r["request_uri"].endswith(" HTTP/1.1") or r["operation"] == "BATCH.DELETE.OBJECT"
    put = by_op["REST.PUT.OBJECT"][0]
    assert (put["key"], put["status"], put["requester"]) == ("dir/a%20b.txt", "200", me)
    assert put["object_size"] == "100" and put["signature"] == "SigV4"
    assert put["auth"] == "AuthHeader" and put["request_uri"].startswith("PUT /")
    assert "Boto3" in put["user_agent"] or "Botocore" in put["user_agent"]
    ranged = [r for r in by_op["REST.GET.OBJECT"] if r["status"] == "206"][0]
    assert (ranged["bytes_sent"], ranged["object_size"]) == ("10", "100")
    missing = [r for r in by_op["REST.GET.OBJECT"] if r["status"] == "404"][0]
    assert (missing["key"], missing["error"]) == ("missing", "NoSuchKey")
    denied = [r for r in by_op["REST.GET.OBJECT"] if r["status"] == "403"][0]
    assert (denied["requester"], denied["error"], denied["auth"]) == ("-", "AccessDenied", "-")
    assert by_op["REST.HEAD.OBJECT"][0]["bytes_sent"] == "-"
    refused = by_op["REST.GET.VERSIONING"][0]
    assert (refused["status"], refused["error"], refused["requester"]) == (
        "403", "SignatureDoesNotMatch", "-")
    assert by_op["REST.GET.BUCKET"][0]["key"] == "-"
    assert by_op["REST.DELETE.OBJECT"][0]["status"] == "204"
    # A DeleteObjects: its request, and a record per key it deleted.
    assert by_op["REST.POST.MULTI_OBJECT_DELETE"][0]["request_uri"].startswith("POST /")
    batch = by_op["BATCH.DELETE.OBJECT"]
    assert sorted(r["key"] for r in batch) == ["x1", "x2"]
    assert {(r["status"], r["request_uri"], r["request_id"]) for r in batch} == {
        ("204", "-", by_op["REST.POST.MULTI_OBJECT_DELETE"][0]["request_id"])}

    # Turned off: nothing more is logged.
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={})
    s3.put_object(Bucket=source, Key="after", Body=b"")
    time.sleep(2.5)
    _, later = delivered(s3, target, "log/", 0, timeout=0)
    assert not [r for r in later if r["key"] == "after"]


def test_partitioned_keys_and_a_revoked_grant(make_server):
    srv, s3 = logging_server(make_server)
    source, target, me = new_pair(s3)
    enable(s3, source, target, TargetObjectKeyFormat={
        "PartitionedPrefix": {"PartitionDateSource": "DeliveryTime"}})
    s3.put_object(Bucket=source, Key="k", Body=b"1")
    keys, records = delivered(s3, target, "log/", 1)
    assert [r["operation"] for r in records] == ["REST.PUT.OBJECT"]
    day = time.strftime("%Y/%m/%d", time.gmtime())
    pattern = rf"log/{me}/{srv.region}/{source}/{day}/\d{{4}}(-\d\d){{5}}-[0-9A-F]{{16}}"
    assert re.fullmatch(pattern, keys[0]), keys

    # The target's owner takes the grant back: records are dropped, not delivered.
    s3.delete_bucket_policy(Bucket=target)
    s3.put_object(Bucket=source, Key="k2", Body=b"2")
    time.sleep(3)
    again, _ = delivered(s3, target, "log/", 0, timeout=0)
    assert again == keys
    import requests
    metrics = requests.get(f"{srv.ops_endpoint}/metrics", timeout=10).text
    dropped = re.search(r"^kura_access_log_records_dropped_total (\d+)", metrics, re.M)
    assert dropped and int(dropped.group(1)) >= 1, metrics


def test_acl_required_tells_what_only_an_acl_allowed(make_server):
    srv, s3 = logging_server(make_server)
    _, ak, sk = create_user(srv)
    other = srv.client(ak, sk)
    source, target, me = new_pair(s3, source_args={"ObjectOwnership": "BucketOwnerPreferred"})
    s3.put_public_access_block(Bucket=source, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False,
        "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    s3.put_bucket_acl(Bucket=source, ACL="public-read")
    enable(s3, source, target)
    s3.list_objects_v2(Bucket=source)
    other.list_objects_v2(Bucket=source, Prefix="by-acl")
    # A policy that allows the same: no ACL is needed any more.
    s3.put_bucket_policy(Bucket=source, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:ListBucket",
                       "Resource": f"arn:aws:s3:::{source}"}]}))
    other.list_objects_v2(Bucket=source, Prefix="by-policy")
    _, records = delivered(s3, target, "log/", 4)
    lists = {r["request_uri"].split("prefix=")[-1].split("&")[0].split(" ")[0]: r
             for r in records if r["operation"] == "REST.GET.BUCKET"}
    assert lists["by-acl"]["acl_required"] == "Yes", lists
    assert lists["by-policy"]["acl_required"] == "-"
    assert all(r["acl_required"] == "-" for r in records if r["requester"] == me)


def test_target_grants_reach_the_log_objects(make_server):
    srv, s3 = logging_server(make_server)
    _, ak, sk = create_user(srv)
    reader = srv.client(ak, sk)
    reader_id = owner_id(reader)
    source, target, me = new_pair(s3, target_args={"ObjectOwnership": "BucketOwnerPreferred"})
    grant = {"Grantee": {"Type": "CanonicalUser", "ID": reader_id}, "Permission": "READ"}
    enable(s3, source, target, TargetGrants=[grant])
    got = s3.get_bucket_logging(Bucket=source)["LoggingEnabled"]["TargetGrants"]
    assert [(g["Grantee"]["ID"], g["Permission"]) for g in got] == [(reader_id, "READ")]
    with s3_error("MalformedXML", 400):
        enable(s3, source, target, TargetGrants=[{**grant, "Permission": "WRITE_ACP"}])

    s3.put_object(Bucket=source, Key="k", Body=b"1")
    keys, _ = delivered(s3, target, "log/", 1)
    acl = s3.get_object_acl(Bucket=target, Key=keys[0])
    assert {(g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]} == {
        (me, "FULL_CONTROL"), (reader_id, "READ")}
    assert b"REST.PUT.OBJECT" in reader.get_object(Bucket=target, Key=keys[0])["Body"].read()

    # Where ACLs are off, grants cannot be kept: AWS refuses them.
    s3.put_bucket_ownership_controls(
        Bucket=target, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    with s3_error("AccessControlListNotSupported", 400):
        enable(s3, source, target, TargetGrants=[grant])


def test_records_held_at_shutdown_are_delivered(make_server):
    srv, s3 = logging_server(make_server, interval=3600)
    source, target, _ = new_pair(s3)
    enable(s3, source, target)
    s3.put_object(Bucket=source, Key="before-shutdown", Body=b"1")
    time.sleep(1)
    assert s3.list_objects_v2(Bucket=target).get("KeyCount") == 0
    srv.stop()
    srv.start()
    s3 = srv.client()
    _, records = delivered(s3, target, "log/", 1, timeout=5)
    assert [r["key"] for r in records if r["operation"] == "REST.PUT.OBJECT"] == ["before-shutdown"]
