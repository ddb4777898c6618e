"""GetObjectAttributes with boto3: ETag, checksum, parts (paged), storage class, size."""

import pytest

from conftest import assert_s3_error_response, s3_error

ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
MIB = 1024 * 1024


def test_simple_object(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"hello", ChecksumAlgorithm="SHA256")
    r = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=ALL)
    assert r["ETag"] == put["ETag"].strip('"')
    assert r["Checksum"]["ChecksumSHA256"] == put["ChecksumSHA256"]
    assert r["Checksum"]["ChecksumType"] == "FULL_OBJECT"
    assert r["StorageClass"] == "STANDARD" and r["ObjectSize"] == 5
    assert "ObjectParts" not in r
    assert r["LastModified"] == s3.head_object(Bucket=bucket, Key="k")["LastModified"]
    only = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == 5 and "ETag" not in only and "Checksum" not in only


def test_multipart_object_parts_page(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")
    parts = []
    for n, body in enumerate([b"a" * (5 * MIB), b"b" * (5 * MIB), b"c" * 10], start=1):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=n,
                           Body=body, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": parts})
    r = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL, MaxParts=2)
    assert r["ETag"] == done["ETag"].strip('"') and r["ObjectSize"] == 10 * MIB + 10
    assert r["Checksum"]["ChecksumType"] == "COMPOSITE"
    op = r["ObjectParts"]
    assert op["TotalPartsCount"] == 3 and op["MaxParts"] == 2 and op["IsTruncated"] is True
    assert [(p["PartNumber"], p["Size"], p["ChecksumCRC32"]) for p in op["Parts"]] == [
        (1, 5 * MIB, parts[0]["ChecksumCRC32"]), (2, 5 * MIB, parts[1]["ChecksumCRC32"])]
    assert op["NextPartNumberMarker"] == 2
    rest = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"],
                                    PartNumberMarker=2)["ObjectParts"]
    assert [p["PartNumber"] for p in rest["Parts"]] == [3] and rest["IsTruncated"] is False


def test_errors(server, s3, bucket):
    with s3_error("NoSuchKey", 404):
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for header in ["Colour", ""]:
        r = server.signed_request("GET", f"/{bucket}/k", query=[("attributes", None)],
                                  headers={"x-amz-object-attributes": header})
        assert_s3_error_response(r, "InvalidArgument", 400)
    with s3_error("NoSuchVersion", 404):
        s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ETag"],
                                 VersionId="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
