"""rclone and s3cmd (Debian packages) against Kura with their default settings.

rclone is configured only through environment variables (RCLONE_CONFIG_KURA_*:
type s3, provider Other, endpoint, keys, region); s3cmd through a minimal
.s3cfg (host, keys, no TLS, SigV4, region). Each copies a directory tree (nested
directories, spaces, unicode, an empty file) up and back down and compares it,
lists, deletes and removes the bucket.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import empty_and_delete_bucket, unique_bucket_name
from tools import (BASE_TREE, assert_same_tree, make_tree, require_tool, run, sha256_file,
                   utf8_env, write_det_file)

MIB = 1 << 20


def _plain_env() -> "dict[str, str]":
    """The test process' environment without AWS/rclone/s3cmd settings."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "RCLONE_", "S3CMD"))}


def bucket_keys(server, bucket: str) -> "dict[str, int]":
    s3 = server.client()
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
    return out


def bucket_exists(server, bucket: str) -> bool:
    from botocore.exceptions import ClientError
    try:
        server.client().head_bucket(Bucket=bucket)
        return True
    except ClientError as e:
        assert e.response["Error"]["Code"] in ("404", "NoSuchBucket"), e.response
        return False


# ======================================================================= rclone
class Rclone:
    def __init__(self, server, tmp_path: Path):
        self.bin = require_tool("rclone")
        cfg = tmp_path / "rclone-empty.conf"
        cfg.write_text("")
        env = utf8_env(_plain_env())
        env.update({
            "RCLONE_CONFIG": str(cfg),
            "RCLONE_CONFIG_KURA_TYPE": "s3",
            "RCLONE_CONFIG_KURA_PROVIDER": "Other",
            "RCLONE_CONFIG_KURA_ENDPOINT": server.endpoint,
            "RCLONE_CONFIG_KURA_ACCESS_KEY_ID": server.access_key,
            "RCLONE_CONFIG_KURA_SECRET_ACCESS_KEY": server.secret_key,
            "RCLONE_CONFIG_KURA_REGION": server.region,
            "RCLONE_CACHE_DIR": str(tmp_path / "rclone-cache"),
        })
        self.env = env

    def __call__(self, *args, check: bool = True, timeout: float = 300, input=None):
        return run([self.bin, *args], self.env, check=check, timeout=timeout, input=input)


def parse_rclone_ls(stdout: str) -> "dict[str, int]":
    out = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        size, name = line.strip().split(" ", 1)
        out[name] = int(size)
    return out


def test_rclone_copy_tree_up_and_back(server, tmp_path):
    rc = Rclone(server, tmp_path)
    bucket = unique_bucket_name("rclone")
    try:
        rc("mkdir", f"kura:{bucket}")
        assert bucket_exists(server, bucket)
        lsd = rc("lsd", "kura:").stdout
        assert bucket in lsd, lsd

        files = dict(BASE_TREE)
        files["medium/seven-mib.bin"] = 7 * MIB
        src = tmp_path / "src"
        expected = make_tree(src, files)

        rc("copy", str(src), f"kura:{bucket}/tree")
        assert bucket_keys(server, bucket) == {f"tree/{k}": v for k, v in files.items()}

        listed = parse_rclone_ls(rc("ls", f"kura:{bucket}").stdout)
        assert listed == {f"tree/{k}": v for k, v in files.items()}, listed
        listed = parse_rclone_ls(rc("ls", f"kura:{bucket}/tree/ünïcödé").stdout)
        assert set(listed) == {k[len("ünïcödé/"):] for k in files if k.startswith("ünïcödé/")}

        # size + MD5 (the ETag) of every object against the local files
        rc("check", str(src), f"kura:{bucket}/tree")

        # copying again transfers nothing and changes nothing
        r = rc("copy", "-v", str(src), f"kura:{bucket}/tree")
        assert "Copied (new)" not in r.stderr and "Copied (replaced" not in r.stderr, r.describe()

        dst = tmp_path / "dst"
        rc("copy", f"kura:{bucket}/tree", str(dst))
        assert_same_tree(expected, dst, "after rclone copy down")

        # Unknown-size stream: rclone rcat uploads it as a multipart upload (5 MiB parts).
        blob = tmp_path / "stream.bin"
        sha = write_det_file(blob, 12 * MIB + 123)
        rc("rcat", f"kura:{bucket}/stream/stream.bin", input=blob.read_bytes())
        head = server.client().head_object(Bucket=bucket, Key="stream/stream.bin")
        assert head["ContentLength"] == 12 * MIB + 123
        out = tmp_path / "stream.down"
        rc("copyto", f"kura:{bucket}/stream/stream.bin", str(out))
        assert sha256_file(out) == sha

        rc("delete", f"kura:{bucket}/stream")
        assert not any(k.startswith("stream/") for k in bucket_keys(server, bucket))

        rc("purge", f"kura:{bucket}")
        assert not bucket_exists(server, bucket)
    finally:
        empty_and_delete_bucket(server.client(), bucket)


# ======================================================================== s3cmd
class S3cmd:
    def __init__(self, server, tmp_path: Path):
        self.bin = require_tool("s3cmd")
        hostport = f"127.0.0.1:{server.s3_port}"
        self.cfg = tmp_path / "s3cfg"
        self.cfg.write_text(
            "[default]\n"
            f"access_key = {server.access_key}\n"
            f"secret_key = {server.secret_key}\n"
            f"host_base = {hostport}\n"
            f"host_bucket = {hostport}\n"
            "use_https = False\n"
            "signature_v2 = False\n"
            f"bucket_location = {server.region}\n"
        )
        env = utf8_env(_plain_env())
        env["HOME"] = str(tmp_path)  # no ~/.s3cfg of the user's
        self.env = env

    def __call__(self, *args, check: bool = True, timeout: float = 300):
        return run([self.bin, "-c", str(self.cfg), *args], self.env, check=check, timeout=timeout)


def parse_s3cmd_ls(stdout: str) -> "dict[str, int]":
    """`s3cmd ls --recursive` lines: 'DATE TIME SIZE s3://bucket/key' -> {url: size}."""
    out = {}
    for line in stdout.splitlines():
        if not line.strip() or line.strip().startswith("DIR "):
            continue
        parts = line.split(None, 3)
        assert len(parts) == 4 and parts[2].isdigit(), f"unexpected s3cmd ls line: {line!r}"
        out[parts[3]] = int(parts[2])
    return out


def test_s3cmd_tree_up_and_back(server, tmp_path):
    s3c = S3cmd(server, tmp_path)
    bucket = unique_bucket_name("s3cmd")
    try:
        r = s3c("mb", f"s3://{bucket}")
        assert bucket_exists(server, bucket), r.describe()
        assert f"s3://{bucket}" in s3c("ls").stdout

        files = dict(BASE_TREE)
        files["big/twenty-mib.bin"] = 20 * MIB  # above s3cmd's 15 MiB multipart chunk size
        src = tmp_path / "src"
        expected = make_tree(src, files)

        # put --recursive
        s3c("put", "--recursive", str(src) + "/", f"s3://{bucket}/put/")
        assert bucket_keys(server, bucket) == {f"put/{k}": v for k, v in files.items()}

        listed = parse_s3cmd_ls(s3c("ls", "--recursive", f"s3://{bucket}").stdout)
        assert listed == {f"s3://{bucket}/put/{k}": v for k, v in files.items()}, listed
        top = s3c("ls", f"s3://{bucket}/put/").stdout
        dirs = [ln.split("DIR", 1)[1].strip() for ln in top.splitlines() if ln.strip().startswith("DIR")]
        assert f"s3://{bucket}/put/dir one/" in dirs and f"s3://{bucket}/put/ünïcödé/" in dirs, top

        # get --recursive
        dst = tmp_path / "dst"
        dst.mkdir()
        s3c("get", "--recursive", f"s3://{bucket}/put/", str(dst) + "/")
        assert_same_tree(expected, dst, "after s3cmd get --recursive")

        # sync up, sync again (no-op), sync down
        s3c("sync", str(src) + "/", f"s3://{bucket}/sync/")
        assert {k for k in bucket_keys(server, bucket) if k.startswith("sync/")} == \
            {f"sync/{k}" for k in files}
        r = s3c("sync", str(src) + "/", f"s3://{bucket}/sync/")
        assert "upload:" not in r.stdout, "second s3cmd sync uploaded again:\n" + r.describe()
        dst2 = tmp_path / "dst2"
        dst2.mkdir()
        s3c("sync", f"s3://{bucket}/sync/", str(dst2) + "/")
        assert_same_tree(expected, dst2, "after s3cmd sync down")

        # info on one object (HEAD + ACL)
        r = s3c("info", f"s3://{bucket}/put/top.txt")
        assert "File size: 1000" in r.stdout, r.describe()

        # delete everything, then remove the bucket
        s3c("del", "--recursive", "--force", f"s3://{bucket}/put/")
        s3c("del", "--recursive", "--force", f"s3://{bucket}/sync/")
        assert bucket_keys(server, bucket) == {}
        assert s3c("ls", "--recursive", f"s3://{bucket}").stdout.strip() == ""
        s3c("rb", f"s3://{bucket}")
        assert not bucket_exists(server, bucket)
    finally:
        empty_and_delete_bucket(server.client(), bucket)


def test_s3cmd_acls(server, tmp_path):
    """`s3cmd put --acl-public` and `s3cmd setacl` (which reads the ACL, edits it and puts
    an AccessControlPolicy document back) open and close an object to anonymous reads."""
    import requests

    s3c = S3cmd(server, tmp_path)
    bucket = unique_bucket_name("s3cmdacl")
    src = tmp_path / "page.html"
    src.write_text("hello")
    url = f"{server.endpoint}/{bucket}/page.html"
    try:
        s3c("mb", f"s3://{bucket}")
        s3c("put", "--acl-public", str(src), f"s3://{bucket}/page.html")
        assert requests.get(url, timeout=10).text == "hello"
        s3c("setacl", "--acl-private", f"s3://{bucket}/page.html")
        assert requests.get(url, timeout=10).status_code == 403
        s3c("setacl", "--acl-public", f"s3://{bucket}/page.html")
        assert requests.get(url, timeout=10).text == "hello"
        info = s3c("info", f"s3://{bucket}/page.html").stdout
        assert "*anon*: READ" in info, info
    finally:
        empty_and_delete_bucket(server.client(), bucket)
