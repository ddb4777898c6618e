"""Bucket versioning with boto3 and the aws CLI, as AWS behaves: Put/GetBucketVersioning,
version ids on every write, reads/copies/tagging by version id, delete markers, the
`null` version of unversioned and suspended buckets, DeleteObjects with version ids,
ListObjectVersions paging, and a versioned bucket counting as non-empty."""

import json
import os
import xml.etree.ElementTree as ET

import pytest

from conftest import s3_error, unique_bucket_name
from tools import run, utf8_env, venv_bin


def enable(s3, bucket, status="Enabled"):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def body(s3, bucket, key, version_id=None):
    extra = {"VersionId": version_id} if version_id else {}
    return s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()


NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def listing(server, bucket, **query):
    """ListObjectVersions as Kura sends it (boto3 splits versions from delete markers and
    loses their order): (key, version id, is latest, is delete marker) in document order,
    and the document's root."""
    params = [("versions", None)] + [(k.replace("_", "-"), v) for k, v in query.items()]
    r = server.signed_request("GET", f"/{bucket}", query=params)
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.content)
    entries = []
    for el in root:
        kind = el.tag.removeprefix(NS)
        if kind in ("Version", "DeleteMarker"):
            text = lambda name: el.find(NS + name).text  # noqa: E731
            entries.append((text("Key"), text("VersionId"), text("IsLatest") == "true",
                            kind == "DeleteMarker"))
    return entries, root


def versions(server, bucket):
    return listing(server, bucket)[0]


def headers(response):
    return response["ResponseMetadata"]["HTTPHeaders"]


def test_versioning_status_round_trip(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    with s3_error("MalformedXML", 400):
        enable(s3, bucket, "Off")
    with s3_error("NotImplemented", 501):
        s3.put_bucket_versioning(
            Bucket=bucket,
            VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"},
            MFA="SERIAL 123456")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def test_unversioned_bucket_names_no_version(server, s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"a")
    assert "VersionId" not in put
    assert "VersionId" not in s3.get_object(Bucket=bucket, Key="k")
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert "VersionId" not in deleted and "DeleteMarker" not in deleted
    assert versions(server, bucket) == []


def test_every_overwrite_keeps_the_version_it_replaces(server, s3, bucket):
    enable(s3, bucket)
    ids = [s3.put_object(Bucket=bucket, Key="k", Body=b"v%d" % i)["VersionId"] for i in range(3)]
    assert len(set(ids)) == 3 and "null" not in ids
    for i, vid in enumerate(ids):
        assert body(s3, bucket, "k", vid) == b"v%d" % i
        got = s3.head_object(Bucket=bucket, Key="k", VersionId=vid)
        assert got["VersionId"] == vid and got["ContentLength"] == 2
    newest = s3.get_object(Bucket=bucket, Key="k")
    assert newest["VersionId"] == ids[2] and newest["Body"].read() == b"v2"
    listed = versions(server, bucket)
    assert [(k, v, latest) for k, v, latest, _ in listed] == \
        [("k", ids[2], True), ("k", ids[1], False), ("k", ids[0], False)]
    # Only the current version is listed as an object.
    objects = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in objects] == [("k", 2)]


def test_delete_adds_a_marker_that_hides_the_key_until_removed(server, s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"data")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    assert marker not in (v1, "null")

    with s3_error("NoSuchKey", 404) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert headers(err)["x-amz-delete-marker"] == "true"
    assert headers(err)["x-amz-version-id"] == marker
    with s3_error("404", 404) as err:
        s3.head_object(Bucket=bucket, Key="k")
    assert headers(err)["x-amz-delete-marker"] == "true"
    with s3_error("MethodNotAllowed", 405) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    assert headers(err)["x-amz-delete-marker"] == "true"
    # The data is still there by id, and the key is no object any more.
    assert body(s3, bucket, "k", v1) == b"data"
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert versions(server, bucket) == [("k", marker, True, True), ("k", v1, False, False)]

    # A second delete adds a second marker.
    second = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    assert second != marker
    # Removing the markers by id brings the object back.
    for m in (second, marker):
        gone = s3.delete_object(Bucket=bucket, Key="k", VersionId=m)
        assert gone["VersionId"] == m and gone["DeleteMarker"] is True
    assert body(s3, bucket, "k") == b"data"
    assert versions(server, bucket) == [("k", v1, True, False)]


def test_deleting_a_version_by_id_removes_only_it(server, s3, bucket):
    enable(s3, bucket)
    ids = [s3.put_object(Bucket=bucket, Key="k", Body=b"v%d" % i)["VersionId"] for i in range(3)]
    gone = s3.delete_object(Bucket=bucket, Key="k", VersionId=ids[1])
    assert gone["VersionId"] == ids[1] and "DeleteMarker" not in gone
    with s3_error("NoSuchVersion", 404):
        s3.get_object(Bucket=bucket, Key="k", VersionId=ids[1])
    assert [v for _, v, _, _ in versions(server, bucket)] == [ids[2], ids[0]]
    # Removing the newest makes the next one current.
    s3.delete_object(Bucket=bucket, Key="k", VersionId=ids[2])
    assert body(s3, bucket, "k") == b"v0"
    assert versions(server, bucket) == [("k", ids[0], True, False)]
    # Deleting a version that is not there changes nothing; a malformed id is refused.
    s3.delete_object(Bucket=bucket, Key="k", VersionId=ids[2])
    with s3_error("InvalidArgument", 400):
        s3.delete_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    with s3_error("NoSuchVersion", 404):
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert body(s3, bucket, "k") == b"v0"


def test_suspended_bucket_replaces_only_the_null_version(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"before")
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"enabled")["VersionId"]
    assert body(s3, bucket, "k", "null") == b"before"
    enable(s3, bucket, "Suspended")
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"suspended")
    assert put.get("VersionId", "null") == "null"
    assert body(s3, bucket, "k", "null") == b"suspended"
    assert versions(server, bucket) == [("k", "null", True, False), ("k", v1, False, False)]
    # A delete makes the null version a delete marker, keeping the enabled-era version.
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True and deleted["VersionId"] == "null"
    assert versions(server, bucket) == [("k", "null", True, True), ("k", v1, False, False)]
    assert body(s3, bucket, "k", v1) == b"enabled"
    s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    assert body(s3, bucket, "k") == b"enabled"


def test_delete_objects_with_and_without_version_ids(server, s3, bucket):
    enable(s3, bucket)
    a1 = s3.put_object(Bucket=bucket, Key="a", Body=b"1")["VersionId"]
    a2 = s3.put_object(Bucket=bucket, Key="a", Body=b"2")["VersionId"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "VersionId": a1},
        {"Key": "b"},
        {"Key": "c", "VersionId": "bad id"},
    ]})
    deleted = {(d["Key"], d.get("VersionId")): d for d in r["Deleted"]}
    assert deleted[("a", a1)].get("DeleteMarker") is None
    marker = deleted[("b", None)]
    assert marker["DeleteMarker"] is True and marker["DeleteMarkerVersionId"]
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("c", "InvalidArgument")]
    assert [v for k, v, _, _ in versions(server, bucket) if k == "a"] == [a2]
    # Deleting the marker through DeleteObjects reports it as one.
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "b", "VersionId": marker["DeleteMarkerVersionId"]}]})
    assert r["Deleted"][0]["DeleteMarker"] is True
    assert r["Deleted"][0]["DeleteMarkerVersionId"] == marker["DeleteMarkerVersionId"]
    assert body(s3, bucket, "b") == b"b"


def test_copy_restores_an_older_version(server, s3, bucket):
    enable(s3, bucket)
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"old")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"new")
    copied = s3.copy_object(Bucket=bucket, Key="k",
                            CopySource={"Bucket": bucket, "Key": "k", "VersionId": old})
    assert copied["CopySourceVersionId"] == old
    restored = copied["VersionId"]
    assert restored != old
    assert body(s3, bucket, "k") == b"old"
    assert len(versions(server, bucket)) == 3
    with s3_error("NoSuchVersion", 404):
        s3.copy_object(Bucket=bucket, Key="x", CopySource={
            "Bucket": bucket, "Key": "k", "VersionId": "0" * 36})


def test_multipart_upload_and_part_copy_in_a_versioned_bucket(s3, bucket):
    enable(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="src", Body=b"s" * (5 << 20))["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"t")
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1,
                               CopySource={"Bucket": bucket, "Key": "src", "VersionId": first})
    assert part["CopySourceVersionId"] == first
    part2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=2, Body=b"end")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=up,
        MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]},
            {"PartNumber": 2, "ETag": part2["ETag"]}]})
    assert done["VersionId"] not in (None, "null")
    assert body(s3, bucket, "mp", done["VersionId"]) == b"s" * (5 << 20) + b"end"


def test_tagging_by_version_id(server, s3, bucket):
    enable(s3, bucket)
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    new = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    put = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=old,
                                Tagging={"TagSet": [{"Key": "era", "Value": "old"}]})
    assert put["VersionId"] == old
    got = s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=old)
    assert got["TagSet"] == [{"Key": "era", "Value": "old"}] and got["VersionId"] == old
    current = s3.get_object_tagging(Bucket=bucket, Key="k")
    assert current["TagSet"] == [] and current["VersionId"] == new
    attributes = s3.get_object_attributes(Bucket=bucket, Key="k", VersionId=old,
                                          ObjectAttributes=["ETag", "ObjectSize"])
    assert attributes["VersionId"] == old and attributes["ObjectSize"] == 1
    assert s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=new)["TagSet"] == []
    # Tagging changed no version: still two, with the same ids.
    assert [v for _, v, _, _ in versions(server, bucket)] == [new, old]


def test_conditional_create_sees_a_delete_marker_as_no_object(server, s3, bucket):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="k", Body=b"3", IfNoneMatch="*")
    assert body(s3, bucket, "k") == b"3"
    assert len(versions(server, bucket)) == 3


def test_a_bucket_holding_versions_or_markers_is_not_empty(s3, bucket):
    enable(s3, bucket)
    vid = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=bucket)
    s3.delete_object(Bucket=bucket, Key="k", VersionId=vid)
    with s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=bucket)
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)  # for the fixture's clean-up


@pytest.mark.parametrize("page", [1, 2, 3])
def test_listing_versions_page_by_page_is_exact(server, s3, bucket, page):
    enable(s3, bucket)
    expected = []
    for key in ("a", "b/1", "b/2", "c"):
        ids = [s3.put_object(Bucket=bucket, Key=key, Body=b"x")["VersionId"] for _ in range(2)]
        if key == "b/2":
            ids.append(s3.delete_object(Bucket=bucket, Key=key)["VersionId"])
        expected += [(key, vid) for vid in reversed(ids)]
    seen, markers = [], {}
    for _ in range(50):
        got, root = listing(server, bucket, max_keys=str(page), **markers)
        assert len(got) <= page
        seen += [(k, v) for k, v, _, _ in got]
        if root.find(NS + "IsTruncated").text != "true":
            break
        markers = {"key_marker": root.find(NS + "NextKeyMarker").text,
                   "version_id_marker": root.find(NS + "NextVersionIdMarker").text}
    assert seen == expected
    # boto3 pages the same way.
    r = s3.list_object_versions(Bucket=bucket, MaxKeys=page)
    assert r["IsTruncated"] and r["NextKeyMarker"] == expected[page - 1][0]
    assert r["NextVersionIdMarker"] == expected[page - 1][1]
    # With a delimiter, b/ is one common prefix.
    r = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/"]
    assert {v["Key"] for v in r["Versions"]} == {"a", "c"}


def test_aws_cli_versioning(server, s3, bucket, tmp_path):
    aws = [str(venv_bin("aws")), "s3api"]
    env = utf8_env(server.env())
    run([*aws, "put-bucket-versioning", "--bucket", bucket,
         "--versioning-configuration", "Status=Enabled"], env)
    out = run([*aws, "get-bucket-versioning", "--bucket", bucket, "--output", "json"], env)
    assert json.loads(out.stdout)["Status"] == "Enabled"
    first = s3.put_object(Bucket=bucket, Key="cli", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="cli", Body=b"second")
    out = run([*aws, "list-object-versions", "--bucket", bucket, "--output", "json"], env)
    listed = json.loads(out.stdout)["Versions"]
    assert [v["VersionId"] for v in listed][1] == first
    run([*aws, "get-object", "--bucket", bucket, "--key", "cli", "--version-id", first,
         str(tmp_path / "first.out")], env)
    assert (tmp_path / "first.out").read_bytes() == b"first"
    out = run([*aws, "delete-object", "--bucket", bucket, "--key", "cli",
               "--output", "json"], env)
    assert json.loads(out.stdout)["DeleteMarker"] is True


def test_admin_purge_removes_every_version(server, kura_bin, s3):
    name = unique_bucket_name("ver")
    s3.create_bucket(Bucket=name)
    enable(s3, name)
    for i in range(3):
        s3.put_object(Bucket=name, Key="k", Body=b"%d" % i)
    s3.delete_object(Bucket=name, Key="k")
    s3.put_object(Bucket=name, Key="other", Body=b"x")
    env = {**os.environ, "KURA_ADMIN_ENDPOINT": server.endpoint,
           "KURA_ADMIN_ACCESS_KEY": server.access_key,
           "KURA_ADMIN_SECRET_KEY": server.secret_key}
    refused = run([kura_bin, "admin", "bucket", "delete", name], env, check=False)
    assert refused.returncode == 1 and "BucketNotEmpty" in refused.stderr
    run([kura_bin, "admin", "bucket", "delete", name, "--purge"], env)
    with s3_error("NoSuchBucket", 404):
        s3.list_object_versions(Bucket=name)
