"""boto3: multipart uploads -- Create, UploadPart, UploadPartCopy (ranges),
Complete (ETag, InvalidPart, InvalidPartOrder, EntityTooSmall, MalformedXML),
Abort, ListParts, ListMultipartUploads, GetObject/HeadObject partNumber.

Non-last parts must be >= 5 MiB, so the multi-MiB uploads are module-scoped
fixtures shared by several tests."""

import hashlib

import pytest

from conftest import (
    MiB,
    assert_s3_error_response,
    composite_checksum_b64,
    empty_and_delete_bucket,
    md5_hex,
    multipart_etag,
    patterned_bytes,
    s3_error,
    s3_error_any,
    unique_bucket_name,
)

# AWS answers a partNumber beyond the object's parts with 416 InvalidPartNumber
# per most references; the ceph s3-tests (validated against AWS) expect
# 400 InvalidPart.  Either is accepted.
BAD_PART_NUMBER = (("InvalidPartNumber", 416), ("InvalidPart", 400))

P1 = patterned_bytes(5 * MiB, seed=1)
P2 = patterned_bytes(MiB + 123, seed=2)


@pytest.fixture(scope="module")
def mbucket(server):
    s3 = server.client()
    name = unique_bucket_name("mp")
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete_bucket(s3, name)


@pytest.fixture(scope="module")
def big_mpu(server, mbucket):
    """A completed two-part upload (5 MiB + 1 MiB), with default client
    settings (botocore sends a CRC32 for each part) and ChecksumAlgorithm
    CRC32 on create, so the object has a COMPOSITE CRC32 checksum."""
    s3 = server.client()
    key = "big/object.bin"
    up = s3.create_multipart_upload(Bucket=mbucket, Key=key, ChecksumAlgorithm="CRC32",
                                    ContentType="application/x-mp", Metadata={"mp": "yes"})
    uid = up["UploadId"]
    assert up["Bucket"] == mbucket and up["Key"] == key and uid
    parts = []
    for n, data in ((1, P1), (2, P2)):
        r = s3.upload_part(Bucket=mbucket, Key=key, UploadId=uid, PartNumber=n, Body=data,
                           ChecksumAlgorithm="CRC32")
        assert r["ETag"] == f'"{md5_hex(data)}"'
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    done = s3.complete_multipart_upload(Bucket=mbucket, Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": parts})
    return {"key": key, "complete": done, "parts": [P1, P2]}


def test_complete_etag_is_md5_of_part_md5s(s3, mbucket, big_mpu):
    expected = multipart_etag(big_mpu["parts"])
    done = big_mpu["complete"]
    assert done["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert done["ETag"] == expected
    assert done["Key"] == big_mpu["key"]
    assert done["Bucket"] == mbucket
    h = s3.head_object(Bucket=mbucket, Key=big_mpu["key"])
    assert h["ETag"] == expected
    assert h["ContentLength"] == len(P1) + len(P2)
    assert h["ContentType"] == "application/x-mp"
    assert h["Metadata"] == {"mp": "yes"}
    # without partNumber, S3 does not report the parts count
    assert "PartsCount" not in h
    lst = s3.list_objects_v2(Bucket=mbucket, Prefix=big_mpu["key"])["Contents"][0]
    assert lst["ETag"] == expected
    assert lst["Size"] == len(P1) + len(P2)


def test_multipart_object_content(s3, mbucket, big_mpu):
    body = s3.get_object(Bucket=mbucket, Key=big_mpu["key"])["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(P1 + P2).digest()
    # a range across the part boundary
    a, b = len(P1) - 10, len(P1) + 9
    g = s3.get_object(Bucket=mbucket, Key=big_mpu["key"], Range=f"bytes={a}-{b}")
    assert g["Body"].read() == (P1 + P2)[a:b + 1]
    assert g["ContentRange"] == f"bytes {a}-{b}/{len(P1) + len(P2)}"


def test_composite_crc32_checksum(s3, mbucket, big_mpu):
    h = s3.head_object(Bucket=mbucket, Key=big_mpu["key"], ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == composite_checksum_b64("CRC32", big_mpu["parts"])
    assert h.get("ChecksumType") == "COMPOSITE"
    assert big_mpu["complete"]["ChecksumCRC32"] == composite_checksum_b64("CRC32", big_mpu["parts"])


@pytest.mark.parametrize("n", [1, 2])
def test_get_part_number(s3, mbucket, big_mpu, n):
    total = len(P1) + len(P2)
    start = 0 if n == 1 else len(P1)
    data = big_mpu["parts"][n - 1]
    g = s3.get_object(Bucket=mbucket, Key=big_mpu["key"], PartNumber=n)
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert g["PartsCount"] == 2
    assert g["ResponseMetadata"]["HTTPHeaders"]["x-amz-mp-parts-count"] == "2"
    assert g["ContentLength"] == len(data)
    assert g["ContentRange"] == f"bytes {start}-{start + len(data) - 1}/{total}"
    assert g["ETag"] == multipart_etag(big_mpu["parts"])
    assert g["Body"].read() == data
    h = s3.head_object(Bucket=mbucket, Key=big_mpu["key"], PartNumber=n)
    assert h["PartsCount"] == 2
    assert h["ContentLength"] == len(data)


def test_get_part_number_out_of_range(s3, mbucket, big_mpu):
    with s3_error_any(*BAD_PART_NUMBER):
        s3.get_object(Bucket=mbucket, Key=big_mpu["key"], PartNumber=3)


def test_get_part_number_one_on_simple_object(s3, mbucket):
    s3.put_object(Bucket=mbucket, Key="simple-pn", Body=b"0123456789")
    g = s3.get_object(Bucket=mbucket, Key="simple-pn", PartNumber=1)
    assert g["Body"].read() == b"0123456789"
    assert "PartsCount" not in g
    with s3_error_any(*BAD_PART_NUMBER):
        s3.get_object(Bucket=mbucket, Key="simple-pn", PartNumber=2)


# ------------------------------------------------------ full-object CRC64NVME
def test_crc64nvme_full_object_multipart(s3, mbucket):
    from conftest import checksum_b64
    key = "crc64/object.bin"
    up = s3.create_multipart_upload(Bucket=mbucket, Key=key, ChecksumAlgorithm="CRC64NVME",
                                    ChecksumType="FULL_OBJECT")
    uid = up["UploadId"]
    parts = []
    for n, data in ((1, P1), (2, P2)):
        # explicit value: botocore needs awscrt to compute CRC64NVME itself
        r = s3.upload_part(Bucket=mbucket, Key=key, UploadId=uid, PartNumber=n, Body=data,
                           ChecksumCRC64NVME=checksum_b64("CRC64NVME", data))
        parts.append({"PartNumber": n, "ETag": r["ETag"],
                      "ChecksumCRC64NVME": checksum_b64("CRC64NVME", data)})
    whole = checksum_b64("CRC64NVME", P1 + P2)
    done = s3.complete_multipart_upload(Bucket=mbucket, Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": parts},
                                        ChecksumType="FULL_OBJECT", ChecksumCRC64NVME=whole)
    assert done["ETag"] == multipart_etag([P1, P2])
    assert done.get("ChecksumCRC64NVME") == whole
    h = s3.head_object(Bucket=mbucket, Key=key, ChecksumMode="ENABLED")
    # full-object checksums have no "-N" suffix
    assert h["ChecksumCRC64NVME"] == whole
    assert h.get("ChecksumType") == "FULL_OBJECT"


def test_crc32_full_object_multipart(s3, mbucket):
    """ChecksumType FULL_OBJECT with CRC32: the object's checksum is the CRC32
    of the whole object (combined from the part CRCs), without a -N suffix."""
    from conftest import checksum_b64
    key = "crc32full/object.bin"
    uid = s3.create_multipart_upload(Bucket=mbucket, Key=key, ChecksumAlgorithm="CRC32",
                                     ChecksumType="FULL_OBJECT")["UploadId"]
    small = b"last part of a full-object crc32 upload"
    parts = []
    for n, data in ((1, P1), (2, small)):
        r = s3.upload_part(Bucket=mbucket, Key=key, UploadId=uid, PartNumber=n, Body=data,
                           ChecksumAlgorithm="CRC32")
        assert r["ChecksumCRC32"] == checksum_b64("CRC32", data)
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    done = s3.complete_multipart_upload(Bucket=mbucket, Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": parts}, ChecksumType="FULL_OBJECT")
    whole = checksum_b64("CRC32", P1 + small)
    assert done.get("ChecksumCRC32") == whole
    h = s3.head_object(Bucket=mbucket, Key=key, ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == whole
    assert h.get("ChecksumType") == "FULL_OBJECT"
    # botocore validates the full-object CRC32 while reading
    g = s3.get_object(Bucket=mbucket, Key=key, ChecksumMode="ENABLED")
    assert hashlib.md5(g["Body"].read()).digest() == hashlib.md5(P1 + small).digest()


def test_crc64nvme_full_object_wrong_final_checksum(s3, mbucket):
    from conftest import checksum_b64
    key = "crc64/wrong.bin"
    small = b"tiny single part"
    uid = s3.create_multipart_upload(Bucket=mbucket, Key=key, ChecksumAlgorithm="CRC64NVME",
                                     ChecksumType="FULL_OBJECT")["UploadId"]
    c = checksum_b64("CRC64NVME", small)
    r = s3.upload_part(Bucket=mbucket, Key=key, UploadId=uid, PartNumber=1, Body=small,
                       ChecksumCRC64NVME=c)
    with s3_error("BadDigest", 400):
        s3.complete_multipart_upload(Bucket=mbucket, Key=key, UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"],
                                                                 "ChecksumCRC64NVME": c}]},
                                     ChecksumType="FULL_OBJECT",
                                     ChecksumCRC64NVME=checksum_b64("CRC64NVME", b"other"))
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=mbucket, Key=key)
    s3.abort_multipart_upload(Bucket=mbucket, Key=key, UploadId=uid)


# ----------------------------------------------------- failing completes
@pytest.fixture(scope="module")
def open_upload(server, mbucket):
    """An open upload with parts 1 and 2 of 5 MiB and a small part 3."""
    s3 = server.client()
    key = "bad/complete"
    uid = s3.create_multipart_upload(Bucket=mbucket, Key=key)["UploadId"]
    etags = {}
    for n, data in ((1, P1), (2, P1), (3, b"small")):
        etags[n] = s3.upload_part(Bucket=mbucket, Key=key, UploadId=uid, PartNumber=n, Body=data)["ETag"]
    yield {"key": key, "uid": uid, "etags": etags}
    try:
        s3.abort_multipart_upload(Bucket=mbucket, Key=key, UploadId=uid)
    except Exception:
        pass


def _complete(s3, bucket, up, parts):
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=up["key"], UploadId=up["uid"],
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})


def test_complete_invalid_part_order(s3, mbucket, open_upload):
    e = open_upload["etags"]
    with s3_error("InvalidPartOrder", 400):
        _complete(s3, mbucket, open_upload, [(2, e[2]), (1, e[1])])
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=mbucket, Key=open_upload["key"])


def test_complete_invalid_part_wrong_etag(s3, mbucket, open_upload):
    e = open_upload["etags"]
    with s3_error("InvalidPart", 400):
        _complete(s3, mbucket, open_upload, [(1, '"0123456789abcdef0123456789abcdef"'), (2, e[2])])


def test_complete_invalid_part_not_uploaded(s3, mbucket, open_upload):
    e = open_upload["etags"]
    with s3_error("InvalidPart", 400):
        _complete(s3, mbucket, open_upload, [(1, e[1]), (2, e[2]), (7, e[2])])


def test_complete_empty_part_list_malformed(s3, mbucket, open_upload):
    with s3_error("MalformedXML", 400):
        s3.complete_multipart_upload(Bucket=mbucket, Key=open_upload["key"],
                                     UploadId=open_upload["uid"], MultipartUpload={"Parts": []})


def test_failed_completes_keep_upload_open(s3, mbucket, open_upload):
    r = s3.list_parts(Bucket=mbucket, Key=open_upload["key"], UploadId=open_upload["uid"])
    assert [p["PartNumber"] for p in r["Parts"]] == [1, 2, 3]
    assert [p["Size"] for p in r["Parts"]] == [len(P1), len(P1), 5]
    assert [p["ETag"] for p in r["Parts"]] == [open_upload["etags"][n] for n in (1, 2, 3)]


def test_entity_too_small_then_subset_complete(s3, bucket):
    key = "small-parts"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="text/x-small")["UploadId"]
    a, b = b"A" * 1024, b"B" * 1024
    e1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=a)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=2, Body=b)["ETag"]
    with s3_error("EntityTooSmall", 400):
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key=key)
    # completing with a subset of the uploaded parts is allowed; the last part may be small
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert done["ETag"] == multipart_etag([a])
    g = s3.get_object(Bucket=bucket, Key=key)
    assert g["Body"].read() == a
    assert g["ContentType"] == "text/x-small"
    # the upload is gone
    with s3_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_non_contiguous_part_numbers(s3, bucket):
    key = "gaps"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    e = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=10, Body=b"ten")["ETag"]
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": [{"PartNumber": 10, "ETag": e}]})
    assert done["ETag"] == multipart_etag([b"ten"])
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"ten"


def test_part_overwrite_uses_latest(s3, bucket):
    key = "overwrite-part"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=b"old data")
    e = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=b"new")["ETag"]
    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [(1, e, 3)]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"new"


@pytest.mark.parametrize("pn", [0, 10001])
def test_upload_part_number_out_of_range(s3, bucket, pn):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="pn")["UploadId"]
    with s3_error("InvalidArgument", 400):
        s3.upload_part(Bucket=bucket, Key="pn", UploadId=uid, PartNumber=pn, Body=b"x")
    assert s3.list_parts(Bucket=bucket, Key="pn", UploadId=uid).get("Parts", []) == []


def test_upload_part_10000_ok(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="pn")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="pn", UploadId=uid, PartNumber=10000, Body=b"x")


# ----------------------------------------------------------------- abort
def test_abort(s3, bucket):
    key = "aborted"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    e = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=b"x")["ETag"]
    r = s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with s3_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)
    with s3_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=2, Body=b"y")
    with s3_error("NoSuchUpload", 404):
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key=key)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_unknown_upload_id(s3, bucket, server):
    with s3_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="k", UploadId="no-such-upload-id", PartNumber=1, Body=b"x")
    with s3_error("NoSuchUpload", 404):
        s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId="no-such-upload-id")
    r = server.signed_request("GET", f"/{bucket}/k", query=[("uploadId", "no-such-upload-id")])
    assert_s3_error_response(r, "NoSuchUpload", 404)


def test_upload_id_bound_to_key(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="key-a")["UploadId"]
    with s3_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="key-b", UploadId=uid, PartNumber=1, Body=b"x")


# ------------------------------------------------------------ list parts
def test_list_parts_pagination(s3, bucket):
    key = "lp"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    datas = {n: f"part-{n}".encode() * n for n in (1, 2, 3)}
    etags = {n: s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=d)["ETag"]
             for n, d in datas.items()}
    r = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid, MaxParts=2)
    assert r["Bucket"] == bucket and r["Key"] == key and r["UploadId"] == uid
    assert [p["PartNumber"] for p in r["Parts"]] == [1, 2]
    assert r["IsTruncated"] is True
    assert r["NextPartNumberMarker"] == 2
    assert r["MaxParts"] == 2
    for p in r["Parts"]:
        assert p["ETag"] == etags[p["PartNumber"]] == f'"{md5_hex(datas[p["PartNumber"]])}"'
        assert p["Size"] == len(datas[p["PartNumber"]])
        assert p["LastModified"]
    r2 = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid, MaxParts=2, PartNumberMarker=2)
    assert [p["PartNumber"] for p in r2["Parts"]] == [3]
    assert r2["IsTruncated"] is False
    assert r2["PartNumberMarker"] == 2
    r3 = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)
    assert [p["PartNumber"] for p in r3["Parts"]] == [1, 2, 3]
    assert r3["IsTruncated"] is False
    assert r3["Owner"]["ID"]
    assert r3["StorageClass"] == "STANDARD"
    # the paginator agrees
    got = []
    for page in s3.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=uid,
                                                         PaginationConfig={"PageSize": 1}):
        got += [p["PartNumber"] for p in page.get("Parts", [])]
    assert got == [1, 2, 3]
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)


# ---------------------------------------------------- list uploads
def test_list_multipart_uploads(s3, bucket):
    created = []
    for k in ("a", "a", "b", "c/d", "c/e"):
        created.append((k, s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]))
    r = s3.list_multipart_uploads(Bucket=bucket)
    got = [(u["Key"], u["UploadId"]) for u in r["Uploads"]]
    assert sorted(got) == sorted(created)
    assert [k for k, _ in got] == ["a", "a", "b", "c/d", "c/e"]  # sorted by key
    assert r["IsTruncated"] is False
    for u in r["Uploads"]:
        assert u["Initiated"]
        assert u["StorageClass"] == "STANDARD"
        assert u["Owner"]["ID"]
    # prefix
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="c/")
    assert [u["Key"] for u in r["Uploads"]] == ["c/d", "c/e"]
    # delimiter
    r = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in r["Uploads"]] == ["a", "a", "b"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["c/"]
    # key-marker alone: only keys strictly after it
    r = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="a")
    assert [u["Key"] for u in r["Uploads"]] == ["b", "c/d", "c/e"]


def test_list_multipart_uploads_pagination(s3, bucket):
    created = []
    for k in ("k1", "k1", "k1", "k2", "k3"):
        created.append((k, s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]))
    seen, km, um = [], None, None
    for _ in range(20):
        args = {"Bucket": bucket, "MaxUploads": 2}
        if km is not None:
            args["KeyMarker"] = km
            args["UploadIdMarker"] = um
        r = s3.list_multipart_uploads(**args)
        page = [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]
        assert len(page) <= 2
        seen += page
        if not r["IsTruncated"]:
            break
        km, um = r["NextKeyMarker"], r["NextUploadIdMarker"]
        assert (km, um) == page[-1]
    assert len(seen) == len(created)
    assert sorted(seen) == sorted(created)      # each exactly once
    assert [k for k, _ in seen] == sorted(k for k, _ in seen)
    r = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2)
    assert r["MaxUploads"] == 2
    assert r["IsTruncated"] is True


# --------------------------------------------------------- upload part copy
def test_upload_part_copy_with_ranges(s3, mbucket, big_mpu, bucket):
    src_key = big_mpu["key"]
    whole = P1 + P2
    s3.put_object(Bucket=bucket, Key="small-src", Body=b"small source object")
    key = "copied/mp"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    cs = {"Bucket": mbucket, "Key": src_key}
    lo, hi = 100, 100 + 5 * MiB - 1
    r1 = s3.upload_part_copy(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, CopySource=cs,
                             CopySourceRange=f"bytes={lo}-{hi}")
    part1 = whole[lo:hi + 1]
    assert r1["CopyPartResult"]["ETag"] == f'"{md5_hex(part1)}"'
    assert r1["CopyPartResult"]["LastModified"]
    r2 = s3.upload_part_copy(Bucket=bucket, Key=key, UploadId=uid, PartNumber=2, CopySource=cs,
                             CopySourceRange=f"bytes={len(whole) - 1000}-{len(whole) - 1}")
    part2 = whole[-1000:]
    r3 = s3.upload_part_copy(Bucket=bucket, Key=key, UploadId=uid, PartNumber=3,
                             CopySource={"Bucket": bucket, "Key": "small-src"})
    part3 = b"small source object"
    parts = [{"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]} for n, r in ((1, r1), (2, r2), (3, r3))]
    lp = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]
    assert [p["Size"] for p in lp] == [len(part1), len(part2), len(part3)]
    with s3_error("EntityTooSmall", 400):
        # part 2 (1000 bytes) is not the last part here
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                     MultipartUpload={"Parts": parts})
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": parts[:2]})
    assert done["ETag"] == multipart_etag([part1, part2])
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.md5(body).digest() == hashlib.md5(part1 + part2).digest()


def test_upload_part_copy_source_conditions(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    etag = s3.head_object(Bucket=bucket, Key="src")["ETag"]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    cs = {"Bucket": bucket, "Key": "src"}
    with s3_error("PreconditionFailed", 412):
        s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1, CopySource=cs,
                            CopySourceIfMatch='"0123456789abcdef0123456789abcdef"')
    with s3_error("PreconditionFailed", 412):
        s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1, CopySource=cs,
                            CopySourceIfNoneMatch=etag)
    s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1, CopySource=cs,
                        CopySourceIfMatch=etag)


def test_upload_part_copy_missing_source(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    with s3_error("NoSuchKey", 404):
        s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "missing"})


def test_upload_part_copy_range_out_of_bounds(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src10", Body=b"0123456789")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as ei:
        s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "src10"}, CopySourceRange="bytes=5-20")
    # AWS answers 400 InvalidArgument ("Range specified is not valid for source
    # object of size: 10") or 416 InvalidRange -- either way an error, no part.
    assert ei.value.response["Error"]["Code"] in ("InvalidArgument", "InvalidRange")
    assert s3.list_parts(Bucket=bucket, Key="dst", UploadId=uid).get("Parts", []) == []
