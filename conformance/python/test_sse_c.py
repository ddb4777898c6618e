"""Server-side encryption with customer keys (SSE-C): boto3 and `aws s3 cp --sse-c`; data
at rest is encrypted, reads need the right key, ranges decrypt, errors are AWS's."""

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
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="bad")
    # Not yet for multipart uploads and copies: refused, never stored unencrypted.
    with s3_error("NotImplemented", 501):
        s3.create_multipart_upload(Bucket=bucket, Key="mpu", **sse())
    s3.put_object(Bucket=bucket, Key="secret", Body=b"x", **sse())
    with s3_error("NotImplemented", 501):
        s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "secret"})


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
