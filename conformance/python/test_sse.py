"""Server-side encryption: customer keys (SSE-C), Kura's keys (SSE-S3, SSE-KMS, bucket
default encryption) with boto3 and `aws s3 cp --sse-c` / `--sse aws:kms`: data at rest is
encrypted, reads need the right key, ranges decrypt, multipart uploads and copies
re-encrypt, errors are AWS's."""

import base64
import hashlib
import os
from pathlib import Path

import pytest

from conftest import assert_s3_error_response, s3_error
from tools import run, utf8_env, venv_bin

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def sse(key=KEY):
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def test_put_get_head_and_ranges(server, s3, bucket):
    data = os.urandom(3 * 64 * 1024 + 77)
    put = s3.put_object(Bucket=bucket, Key="secret", Body=data, **sse())
    assert put["SSECustomerAlgorithm"] == "AES256"
    key_md5 = base64.b64encode(hashlib.md5(KEY).digest()).decode()
    assert put["SSECustomerKeyMD5"] == key_md5
    got = s3.get_object(Bucket=bucket, Key="secret", **sse())
    assert got["Body"].read() == data and got["SSECustomerKeyMD5"] == key_md5
    assert s3.head_object(Bucket=bucket, Key="secret", **sse())["ContentLength"] == len(data)
    for first, last in [(0, 9), (65_530, 65_545), (len(data) - 5, len(data) - 1)]:
        part = s3.get_object(Bucket=bucket, Key="secret", Range=f"bytes={first}-{last}", **sse())
        assert part["Body"].read() == data[first:last + 1]
    # At rest, the data is not there in clear.
    stored = b"".join(p.read_bytes() for p in (server.data_dir / "blobs").rglob("*") if p.is_file())
    assert data[:4096] not in stored


def test_reads_need_the_right_key(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="secret", Body=b"classified", **sse())
    with s3_error("InvalidRequest", 400):
        s3.get_object(Bucket=bucket, Key="secret")
    with s3_error("AccessDenied", 403):
        s3.get_object(Bucket=bucket, Key="secret", **sse(OTHER_KEY))
    with s3_error("InvalidRequest", 400):
        s3.get_object_attributes(Bucket=bucket, Key="secret", ObjectAttributes=["ObjectSize"])
    # botocore leaves this operation's key to the caller: base64, with its MD5.
    raw_key = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(KEY).decode(),
               "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(KEY).digest()).decode()}
    attrs = s3.get_object_attributes(Bucket=bucket, Key="secret", ObjectAttributes=["ObjectSize"], **raw_key)
    assert attrs["ObjectSize"] == len(b"classified")
    with s3_error("403", 403):
        s3.head_object(Bucket=bucket, Key="secret", **sse(OTHER_KEY))
    s3.put_object(Bucket=bucket, Key="plain", Body=b"open")
    with s3_error("InvalidRequest", 400):
        s3.get_object(Bucket=bucket, Key="plain", **sse())


def test_bad_key_parameters_store_nothing(server, s3, bucket):
    headers = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
               "x-amz-server-side-encryption-customer-key": base64.b64encode(KEY).decode(),
               "x-amz-server-side-encryption-customer-key-md5": base64.b64encode(b"0" * 16).decode()}
    r = server.signed_request("PUT", f"/{bucket}/bad", body=b"x", headers=headers)
    assert_s3_error_response(r, "InvalidArgument", 400)
    r = server.signed_request("PUT", f"/{bucket}/bad", body=b"x",
                              headers={**headers, "x-amz-server-side-encryption-customer-algorithm": "DES"})
    assert_s3_error_response(r, "InvalidEncryptionAlgorithmError", 400)
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", ServerSideEncryption="AES256", **sse())
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="bad")


def test_multipart_upload_with_a_customer_key(s3, bucket):
    mib = 1024 * 1024
    bodies = [os.urandom(5 * mib), os.urandom(1234)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mpu", **sse())
    assert upload["SSECustomerAlgorithm"] == "AES256"
    with s3_error("InvalidRequest", 400):  # every part needs the key
        s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload["UploadId"], PartNumber=1, Body=b"x")
    with s3_error("AccessDenied", 403):
        s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload["UploadId"], PartNumber=1, Body=b"x",
                       **sse(OTHER_KEY))
    parts = []
    for n, body in enumerate(bodies, start=1):
        r = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload["UploadId"], PartNumber=n,
                           Body=body, **sse())
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    data = b"".join(bodies)
    assert s3.get_object(Bucket=bucket, Key="mpu", **sse())["Body"].read() == data
    edge = 5 * mib
    got = s3.get_object(Bucket=bucket, Key="mpu", Range=f"bytes={edge - 10}-{edge + 10}", **sse())
    assert got["Body"].read() == data[edge - 10:edge + 11]
    with s3_error("InvalidRequest", 400):
        s3.get_object(Bucket=bucket, Key="mpu")


def test_copies_between_keys_and_encryptions(s3, bucket):
    s3.put_object(Bucket=bucket, Key="secret", Body=b"copied secret", **sse())
    src = {"Bucket": bucket, "Key": "secret"}
    copy_source = {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": KEY}
    with s3_error("InvalidRequest", 400):  # the source's key is needed
        s3.copy_object(Bucket=bucket, Key="c1", CopySource=src)
    # SSE-C -> SSE-C under another key.
    s3.copy_object(Bucket=bucket, Key="c1", CopySource=src, **copy_source, **sse(OTHER_KEY))
    assert s3.get_object(Bucket=bucket, Key="c1", **sse(OTHER_KEY))["Body"].read() == b"copied secret"
    with s3_error("AccessDenied", 403):
        s3.get_object(Bucket=bucket, Key="c1", **sse())
    # SSE-C -> SSE-S3 -> plain.
    r = s3.copy_object(Bucket=bucket, Key="c2", CopySource=src, ServerSideEncryption="AES256", **copy_source)
    assert r["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="c2")["Body"].read() == b"copied secret"
    s3.copy_object(Bucket=bucket, Key="c3", CopySource={"Bucket": bucket, "Key": "c2"})
    plain = s3.get_object(Bucket=bucket, Key="c3")
    assert plain["Body"].read() == b"copied secret" and "ServerSideEncryption" not in plain
    # A part copied from an encrypted source into an SSE-C upload.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", **sse(OTHER_KEY))
    part = s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1,
                               CopySource=src, **copy_source, **sse(OTHER_KEY))
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="mp", **sse(OTHER_KEY))["Body"].read() == b"copied secret"


def test_sse_s3_and_bucket_default_encryption(server, s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="managed", Body=b"managed data", ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="managed")
    assert got["Body"].read() == b"managed data" and got["ServerSideEncryption"] == "AES256"
    with s3_error("InvalidRequest", 400):  # a customer key does not apply to it
        s3.get_object(Bucket=bucket, Key="managed", **sse())
    with s3_error("NotImplemented", 501):
        s3.put_object(Bucket=bucket, Key="dsse", Body=b"x", ServerSideEncryption="aws:kms:dsse")

    with s3_error("ServerSideEncryptionConfigurationNotFoundError", 404):
        s3.get_bucket_encryption(Bucket=bucket)
    config = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                         "BucketKeyEnabled": False}]}
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=config)
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"] == config
    data = os.urandom(100_000)
    assert s3.put_object(Bucket=bucket, Key="by-default", Body=data)["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="by-default")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="by-default")["Body"].read() == data
    stored = b"".join(p.read_bytes() for p in (server.data_dir / "blobs").rglob("*") if p.is_file())
    assert data[:4096] not in stored
    s3.delete_bucket_encryption(Bucket=bucket)
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket, Key="after", Body=b"x")
    with s3_error("MalformedXML", 400):
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "ROT13"}}]})


def test_aws_cli_sse_c_round_trip(server, bucket, tmp_path):
    key_file = tmp_path / "key.bin"
    key_file.write_bytes(KEY)
    src = tmp_path / "report.txt"
    src.write_bytes(b"quarterly numbers\n" * 1000)
    aws = [str(venv_bin("aws")), "s3", "cp"]
    env = utf8_env(server.env())
    sse_args = ["--sse-c", "AES256", "--sse-c-key", f"fileb://{key_file}"]
    run([*aws, str(src), f"s3://{bucket}/report.txt", *sse_args], env)
    out = tmp_path / "back.txt"
    run([*aws, f"s3://{bucket}/report.txt", str(out), *sse_args], env)
    assert out.read_bytes() == src.read_bytes()
    refused = run([*aws, f"s3://{bucket}/report.txt", str(tmp_path / "no.txt")], env, check=False)
    assert refused.returncode != 0


def kms(key_id=None):
    return {"ServerSideEncryption": "aws:kms", **({"SSEKMSKeyId": key_id} if key_id else {})}


def test_sse_kms_objects_uploads_copies_and_bucket_default(server, s3, bucket):
    data = os.urandom(2 * 64 * 1024 + 5)
    put = s3.put_object(Bucket=bucket, Key="k1", Body=data, **kms("app-key"))
    assert (put["ServerSideEncryption"], put["SSEKMSKeyId"]) == ("aws:kms", "app-key")
    for read in (s3.get_object(Bucket=bucket, Key="k1"), s3.head_object(Bucket=bucket, Key="k1")):
        assert (read["ServerSideEncryption"], read["SSEKMSKeyId"]) == ("aws:kms", "app-key")
    got = s3.get_object(Bucket=bucket, Key="k1", Range="bytes=65530-65545")
    assert got["Body"].read() == data[65530:65546]
    stored = b"".join(p.read_bytes() for p in (server.data_dir / "blobs").rglob("*") if p.is_file())
    assert data[:4096] not in stored
    # A customer key does not apply to it.
    with s3_error("InvalidRequest", 400):
        s3.get_object(Bucket=bucket, Key="k1", **sse())
    # Without a key id, S3's default key.
    assert s3.put_object(Bucket=bucket, Key="k2", Body=b"d", **kms())["SSEKMSKeyId"] == "aws/s3"
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", SSEKMSKeyId="app-key")
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", **kms("two words"))

    # Multipart: every answer names the key; the parts read back.
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", **kms("mp-key"))
    assert (up["ServerSideEncryption"], up["SSEKMSKeyId"]) == ("aws:kms", "mp-key")
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
    etags = []
    for n, body in enumerate(parts, 1):
        part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=body)
        assert part["SSEKMSKeyId"] == "mp-key"
        etags.append({"PartNumber": n, "ETag": part["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": etags})
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == b"".join(parts) and got["SSEKMSKeyId"] == "mp-key"

    # Copies re-encrypt: KMS -> SSE-S3 -> another KMS key.
    src = {"Bucket": bucket, "Key": "k1"}
    r = s3.copy_object(Bucket=bucket, Key="c1", CopySource=src, ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in r
    r = s3.copy_object(Bucket=bucket, Key="c2", CopySource={"Bucket": bucket, "Key": "c1"}, **kms("other"))
    assert r["SSEKMSKeyId"] == "other"
    assert s3.get_object(Bucket=bucket, Key="c2")["Body"].read() == data

    # A bucket's default: its key, or the default key.
    config = {"Rules": [{"ApplyServerSideEncryptionByDefault": {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "bucket-key"}, "BucketKeyEnabled": False}]}
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=config)
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"] == config
    r = s3.put_object(Bucket=bucket, Key="d1", Body=b"by default")
    assert (r["ServerSideEncryption"], r["SSEKMSKeyId"]) == ("aws:kms", "bucket-key")
    assert s3.get_object(Bucket=bucket, Key="d1")["Body"].read() == b"by default"
    config["Rules"][0]["ApplyServerSideEncryptionByDefault"].pop("KMSMasterKeyID")
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=config)
    assert s3.put_object(Bucket=bucket, Key="d2", Body=b"x")["SSEKMSKeyId"] == "aws/s3"
    # A request's own encryption wins over the default.
    assert s3.put_object(Bucket=bucket, Key="d3", Body=b"x", ServerSideEncryption="AES256")[
        "ServerSideEncryption"] == "AES256"


def test_sse_kms_bucket_key_is_kept_and_told(server, s3, bucket):
    """An S3 Bucket Key asked for by the write or by the bucket's default is echoed on
    every answer about the object, as AWS does; a write may turn the default off."""
    put = s3.put_object(Bucket=bucket, Key="bk", Body=b"x", BucketKeyEnabled=True, **kms("k"))
    assert put["BucketKeyEnabled"] is True
    for read in (s3.get_object(Bucket=bucket, Key="bk"), s3.head_object(Bucket=bucket, Key="bk")):
        assert read["BucketKeyEnabled"] is True
    assert "BucketKeyEnabled" not in s3.put_object(Bucket=bucket, Key="plain", Body=b"x", **kms())
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", BucketKeyEnabled=True, **kms("k"))
    assert up["BucketKeyEnabled"] is True
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"])
    copy = s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "bk"},
                          BucketKeyEnabled=True, **kms("k"))
    assert copy["BucketKeyEnabled"] is True
    config = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                         "BucketKeyEnabled": True}]}
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=config)
    assert s3.put_object(Bucket=bucket, Key="d", Body=b"x")["BucketKeyEnabled"] is True
    assert s3.head_object(Bucket=bucket, Key="d")["BucketKeyEnabled"] is True
    off = s3.put_object(Bucket=bucket, Key="off", Body=b"x", BucketKeyEnabled=False)
    assert "BucketKeyEnabled" not in off
    bad = server.signed_request("PUT", f"/{bucket}/bad", body=b"x", headers={
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-bucket-key-enabled": "yes"})
    assert bad.status_code == 400 and b"<Code>InvalidArgument</Code>" in bad.content
    s3.delete_bucket_encryption(Bucket=bucket)


def test_aws_cli_sse_kms_round_trip(server, bucket, tmp_path):
    src = tmp_path / "ledger.txt"
    src.write_bytes(b"ledger line\n" * 1000)
    aws = [str(venv_bin("aws")), "s3", "cp"]
    env = utf8_env(server.env())
    run([*aws, str(src), f"s3://{bucket}/ledger.txt", "--sse", "aws:kms", "--sse-kms-key-id", "cli-key"], env)
    out = tmp_path / "back.txt"
    run([*aws, f"s3://{bucket}/ledger.txt", str(out)], env)
    assert out.read_bytes() == src.read_bytes()
    head = run([str(venv_bin("aws")), "s3api", "head-object", "--bucket", bucket, "--key", "ledger.txt"], env)
    assert '"SSEKMSKeyId": "cli-key"' in head.stdout


def test_kms_key_ids_limit_writes_not_reads(make_server):
    srv = make_server()
    s3 = srv.client()
    s3.create_bucket(Bucket="kms-listed")
    s3.put_object(Bucket="kms-listed", Key="old", Body=b"kept", **kms("retired"))
    srv.stop()
    srv.extra_args += ["--kms-key-ids", "current,next"]
    s3 = srv.start().client()
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket="kms-listed", Key="new", Body=b"x", **kms("retired"))
    with s3_error("InvalidArgument", 400):
        s3.put_bucket_encryption(Bucket="kms-listed", ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "retired"}}]})
    assert s3.put_object(Bucket="kms-listed", Key="new", Body=b"x", **kms("next"))["SSEKMSKeyId"] == "next"
    assert s3.put_object(Bucket="kms-listed", Key="dflt", Body=b"x", **kms())["SSEKMSKeyId"] == "aws/s3"
    assert s3.get_object(Bucket="kms-listed", Key="old")["Body"].read() == b"kept"
