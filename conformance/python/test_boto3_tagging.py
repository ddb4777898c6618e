"""Object and bucket tagging with boto3 and the aws CLI: the tagging APIs, x-amz-tagging on
writes and copies, x-amz-tagging-count on reads, and AWS's limits and errors."""

import json

import pytest

from conftest import assert_s3_error_response, s3_error
from tools import run, utf8_env, venv_bin


def tag_set(pairs):
    return [{"Key": k, "Value": v} for k, v in pairs]


def tags_of(s3, bucket, key):
    """The object's tags, in the order Kura lists them: by key (a tag set has no order)."""
    return [(t["Key"], t["Value"]) for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]]


def test_object_tagging_round_trip(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert tags_of(s3, bucket, "k") == []
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="k")
    pairs = [("project", "kura"), ("größe", "Köln / 2 = ok"), ("empty", "")]
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tag_set(pairs)})
    assert tags_of(s3, bucket, "k") == sorted(pairs)
    assert s3.head_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPHeaders"][
        "x-amz-tagging-count"] == "3"
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 3
    # Tagging changes no data and no other metadata.
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"
    r = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags_of(s3, bucket, "k") == []
    with s3_error("NoSuchKey", 404):
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    with s3_error("NoSuchKey", 404):
        s3.put_object_tagging(Bucket=bucket, Key="missing", Tagging={"TagSet": []})


def test_tags_on_put_multipart_and_copy(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1&b%20c=d+e")
    assert tags_of(s3, bucket, "src") == [("a", "1"), ("b c", "d e")]
    # Overwriting replaces the tags with the new write's.
    s3.put_object(Bucket=bucket, Key="src", Body=b"y", Tagging="only=this")
    assert tags_of(s3, bucket, "src") == [("only", "this")]

    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "src"})
    assert tags_of(s3, bucket, "copied") == [("only", "this")]
    s3.copy_object(Bucket=bucket, Key="retagged", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE", Tagging="new=1")
    assert tags_of(s3, bucket, "retagged") == [("new", "1")]
    s3.copy_object(Bucket=bucket, Key="untagged", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE")
    assert tags_of(s3, bucket, "untagged") == []

    upload = s3.create_multipart_upload(Bucket=bucket, Key="mpu", Tagging="stage=raw")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload, PartNumber=1, Body=b"p")
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert tags_of(s3, bucket, "mpu") == [("stage", "raw")]


@pytest.mark.parametrize("pairs,code", [
    ([(f"k{i}", "v") for i in range(11)], "BadRequest"),
    ([("bad*key", "v")], "InvalidTag"),
    ([("k", "v" * 257)], "InvalidTag"),
    ([("k" * 129, "v")], "InvalidTag"),
    ([("aws:reserved", "v")], "InvalidTag"),
    ([("dup", "1"), ("dup", "2")], "InvalidTag"),
])
def test_object_tag_limits(s3, bucket, pairs, code):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="kept=yes")
    with s3_error(code, 400):
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tag_set(pairs)})
    assert tags_of(s3, bucket, "k") == [("kept", "yes")]


def test_tagging_header_errors_store_nothing(s3, bucket):
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=bucket, Key="h", Body=b"x", Tagging="a=1&a=2")
    with s3_error("InvalidTag", 400):
        s3.put_object(Bucket=bucket, Key="h", Body=b"x", Tagging="bad%2A=1")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="h")


@pytest.mark.parametrize("body", [
    b"<Tagging><TagSet><Tag><Key>a</Key>",
    b"<Tagging><TagSet><Tag><Value>no key</Value></Tag></TagSet></Tagging>",
    b"<!DOCTYPE x [<!ENTITY a 'b'>]><Tagging><TagSet/></Tagging>",
    b"<Other/>",
])
def test_malformed_tagging_documents(server, s3, bucket, body):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="kept=yes")
    r = server.signed_request("PUT", f"/{bucket}/k", query=[("tagging", None)], body=body)
    assert_s3_error_response(r, "MalformedXML", 400)
    r = server.signed_request("PUT", f"/{bucket}", query=[("tagging", None)], body=body)
    assert_s3_error_response(r, "MalformedXML", 400)
    assert tags_of(s3, bucket, "k") == [("kept", "yes")]


def test_bucket_tagging(s3, bucket):
    with s3_error("NoSuchTagSet", 404):
        s3.get_bucket_tagging(Bucket=bucket)
    pairs = [(f"team{i}", f"value {i}") for i in range(50)]
    r = s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set(pairs)})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    assert [(t["Key"], t["Value"]) for t in got] == sorted(pairs)
    with s3_error("BadRequest", 400):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set(pairs + [("one", "more")])})
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50
    s3.delete_bucket_tagging(Bucket=bucket)
    with s3_error("NoSuchTagSet", 404):
        s3.get_bucket_tagging(Bucket=bucket)


def test_aws_cli_object_tagging(server, s3, bucket):
    aws = [str(venv_bin("aws")), "s3api"]
    env = utf8_env(server.env())
    s3.put_object(Bucket=bucket, Key="cli", Body=b"x")
    run([*aws, "put-object-tagging", "--bucket", bucket, "--key", "cli",
         "--tagging", "TagSet=[{Key=env,Value=prod},{Key=owner,Value=ops team}]"], env)
    out = run([*aws, "get-object-tagging", "--bucket", bucket, "--key", "cli",
               "--output", "json"], env).stdout
    assert json.loads(out)["TagSet"] == tag_set([("env", "prod"), ("owner", "ops team")])
