"""`kura admin …` (the admin CLI) against a real `kura serve`, and what its calls
change for S3 clients.

Covers every command (user, key, bucket, quota, usage) in table and --json form
and the JSON shape of every answer; help and usage errors; where the CLI finds
its endpoint and credentials; refused calls (no credentials, a non-admin key, a
wrong secret, an unknown key); the API's JSON errors; revoked keys failing at
once for S3; users kept out of each other's buckets (boto3 and the aws CLI);
quota edges (exactly at the limit, one object or one byte over, overwrites,
copies, multipart checked at completion); usage counters exact after
overwrite, delete, copy and multipart, and after kill -9.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import TlsProxy, free_port, s3_error, unique_bucket_name
from tools import Result, run, utf8_env, venv_bin

MIB = 1 << 20
PART = 5 * MIB
API = "/_kura/admin/v1"


def unique_user(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def clean_env() -> "dict[str, str]":
    """The test environment without any AWS_* or KURA_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KURA_"))}


class Admin:
    """Runs `kura admin` against one server, with the root credentials in the
    documented KURA_ADMIN_* variables unless a test passes its own env."""

    def __init__(self, kura_bin: Path, server):
        self.bin = str(kura_bin)
        self.server = server

    def env(self, **extra: str) -> "dict[str, str]":
        env = clean_env()
        env.update({
            "KURA_ADMIN_ENDPOINT": self.server.endpoint,
            "KURA_ADMIN_ACCESS_KEY": self.server.access_key,
            "KURA_ADMIN_SECRET_KEY": self.server.secret_key,
            "KURA_REGION": self.server.region,
        })
        env.update(extra)
        return env

    def __call__(self, *args: str, env: "dict[str, str] | None" = None, check: bool = True) -> Result:
        return run([self.bin, "admin", *args], env if env is not None else self.env(),
                   check=check, timeout=60)

    def json(self, *args: str, env: "dict[str, str] | None" = None):
        out = self("--json", *args, env=env).stdout
        return json.loads(out) if out.strip() else None

    def fails(self, *args: str, code: str, env: "dict[str, str] | None" = None) -> Result:
        """The command must be refused by the API with `code`: exit status 1,
        `code: message` on stderr, nothing on stdout."""
        r = self(*args, env=env, check=False)
        assert r.returncode == 1, f"expected exit 1 ({code})\n{r.describe()}"
        assert f"kura: {code}: " in r.stderr, f"expected {code} on stderr\n{r.describe()}"
        assert r.stdout == "", r.describe()
        return r


@pytest.fixture
def admin(kura_bin, server) -> Admin:
    return Admin(kura_bin, server)


@pytest.fixture
def users(admin):
    """Factory: users(n) -> n fresh user names (created); each is deleted at the end
    together with the buckets it owns (purged)."""
    made: "list[str]" = []

    def make(n: int = 1) -> "list[str]":
        names = [unique_user() for _ in range(n)]
        for name in names:
            admin("user", "create", name)
            made.append(name)
        return names

    yield make
    for name in made:
        info = admin("--json", "user", "info", name, check=False)
        if info.returncode != 0:
            continue
        for bucket in json.loads(info.stdout)["buckets"]:
            admin("bucket", "delete", bucket, "--purge", check=False)
        admin("user", "delete", name, check=False)


@pytest.fixture
def owned_bucket(admin, users):
    """Factory: owned_bucket(owner=None) -> name of a new bucket owned by `owner` (a
    fresh user by default), created with `kura admin bucket create`."""
    def make(owner: "str | None" = None) -> str:
        owner = owner or users(1)[0]
        name = unique_bucket_name("adm")
        admin("bucket", "create", name, "--owner", owner)
        return name
    return make


def new_key(admin, user: str) -> "tuple[str, str]":
    k = admin.json("key", "create", user)
    return k["access_key"], k["secret_key"]


def listed_totals(client, bucket: str) -> "tuple[int, int]":
    """(objects, bytes) of a bucket as ListObjectsV2 sees them (all pages)."""
    objects = size = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            objects += 1
            size += o["Size"]
    return objects, size


def usage_of(admin, bucket: str) -> "tuple[int, int]":
    """(objects, bytes) of a bucket from `usage`, checked against `bucket info`."""
    entries = [e for e in admin.json("usage")["buckets"] if e["name"] == bucket]
    assert len(entries) == 1, entries
    info = admin.json("bucket", "info", bucket)["usage"]
    got = (entries[0]["objects"], entries[0]["bytes"])
    assert (info["objects"], info["bytes"]) == got, f"bucket info {info} != usage {entries[0]}"
    return got


def assert_usage(admin, client, bucket: str, expected: "tuple[int, int]") -> None:
    assert listed_totals(client, bucket) == expected, "listing disagrees with the test's bookkeeping"
    assert usage_of(admin, bucket) == expected


def quota_exceeded(call):
    """`call` must be refused with 403 QuotaExceeded."""
    with s3_error("QuotaExceeded", 403):
        call()


def no_such_key(client, bucket: str, key: str) -> None:
    with s3_error("NoSuchKey", 404):
        client.get_object(Bucket=bucket, Key=key)


# ==================================================================== help and usage
COMMANDS = {
    "user": ["create", "list", "info", "delete"],
    "key": ["create", "list", "revoke"],
    "bucket": ["create", "list", "info", "delete"],
    "quota": ["set", "clear"],
}
ENV_VARS = ["KURA_ADMIN_ENDPOINT", "AWS_ENDPOINT_URL", "KURA_ADMIN_ACCESS_KEY", "KURA_ROOT_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID", "KURA_ADMIN_SECRET_KEY", "KURA_ROOT_SECRET_KEY",
            "AWS_SECRET_ACCESS_KEY", "KURA_REGION", "KURA_ADMIN_CA_BUNDLE", "AWS_CA_BUNDLE"]


def test_help_teaches_the_whole_surface(admin, kura_bin):
    top = run([kura_bin, "--help"], clean_env()).stdout
    assert "admin" in top
    env = admin.env(KURA_ADMIN_SECRET_KEY="help-must-not-show-this-secret")
    text = admin("--help", env=env).stdout
    for group in COMMANDS:
        assert f"\n  {group} " in text, f"{group} not listed in `kura admin --help`"
    assert "usage" in text and "--json" in text and "Examples:" in text
    for var in ENV_VARS:
        assert var in text, f"{var} not explained in `kura admin --help`"
    assert "help-must-not-show-this-secret" not in text
    for group, subs in COMMANDS.items():
        sub_help = admin(group, "--help", env=env).stdout
        assert "Examples:" in sub_help, sub_help
        for sub in subs:
            assert sub in sub_help
            leaf = admin(group, sub, "--help", env=env).stdout
            assert leaf.startswith(("Create", "List", "Show", "Delete", "Revoke", "Set", "Remove")), leaf
            assert "help-must-not-show-this-secret" not in leaf
    quota_help = admin("quota", "set", "--help", env=env).stdout
    for needle in ("--max-objects", "--max-bytes", "10GiB", "QuotaExceeded"):
        assert needle in quota_help, quota_help
    assert "--purge" in admin("bucket", "delete", "--help", env=env).stdout
    assert "--owner" in admin("bucket", "create", "--help", env=env).stdout
    assert "Example" in admin("usage", "--help", env=env).stdout


@pytest.mark.parametrize("args", [
    ["user"],
    ["frobnicate"],
    ["user", "create"],
    ["bucket", "create", "b-x"],
    ["quota", "set", "b-x"],
    ["quota", "set", "b-x", "--max-bytes", "10XB"],
    ["quota", "set", "b-x", "--max-bytes", "1.5B"],
    ["quota", "set", "b-x", "--max-objects", "-1"],
])
def test_usage_errors_exit_2(admin, args):
    r = admin(*args, check=False)
    assert r.returncode == 2, r.describe()
    assert r.stdout == "" and "error" in r.stderr.lower(), r.describe()


def test_half_a_key_pair_is_a_usage_error(admin):
    env = clean_env()
    env.update({"KURA_ADMIN_ENDPOINT": admin.server.endpoint, "KURA_ADMIN_ACCESS_KEY": "KURAX"})
    r = admin("user", "list", env=env, check=False)
    assert r.returncode == 2 and "secret key" in r.stderr, r.describe()


# ==================================================================== connection settings
def test_connection_settings_from_flags_and_env(admin, server):
    def names(env, *flags):
        return [u["name"] for u in admin.json(*flags, "user", "list", env=env)["users"]]

    user = unique_user()
    admin("user", "create", user)
    try:
        # KURA_ROOT_* and AWS_ENDPOINT_URL (what `kura serve`'s own environment has)
        env = clean_env() | {"AWS_ENDPOINT_URL": server.endpoint, "KURA_ROOT_ACCESS_KEY": server.access_key,
                             "KURA_ROOT_SECRET_KEY": server.secret_key}
        assert user in names(env)
        # the AWS_* variables of the start-up snippet
        env = {k: v for k, v in server.env().items() if not k.startswith("KURA_")}
        assert user in names(env)
        # flags only
        flags = ["--endpoint", server.endpoint, "--access-key", server.access_key,
                 "--secret-key", server.secret_key, "--region", server.region]
        assert user in names(clean_env(), *flags)
        # flags beat the environment; KURA_ADMIN_* beat KURA_ROOT_* and AWS_*
        wrong = admin.env(KURA_ADMIN_SECRET_KEY="wrong-secret")
        assert user in names(wrong, "--secret-key", server.secret_key)
        admin.fails("user", "list", env=wrong | {"KURA_ROOT_SECRET_KEY": server.secret_key,
                                                  "AWS_SECRET_ACCESS_KEY": server.secret_key},
                    code="SignatureDoesNotMatch")
        # KURA_ADMIN_ENDPOINT beats AWS_ENDPOINT_URL; a dead endpoint is a clear error
        dead_endpoint = f"http://127.0.0.1:{free_port()}"
        dead = admin.env(AWS_ENDPOINT_URL=server.endpoint, KURA_ADMIN_ENDPOINT=dead_endpoint)
        r = admin("user", "list", env=dead, check=False)
        assert r.returncode == 1 and "cannot reach" in r.stderr and dead_endpoint in r.stderr, r.describe()
        r = admin("--endpoint", "127.0.0.1:9000", "user", "list", check=False)
        assert r.returncode == 1 and "invalid endpoint" in r.stderr, r.describe()
    finally:
        admin("user", "delete", user)


def test_region_must_match_the_server(kura_bin, make_server):
    srv = make_server(region="eu-central-1")
    admin = Admin(kura_bin, srv)
    assert admin.json("user", "list")["users"] is not None       # KURA_REGION=eu-central-1
    assert admin.json("--region", "eu-central-1", "usage") is not None
    r = admin("user", "list", env=admin.env(KURA_REGION="us-east-1"), check=False)
    assert r.returncode == 1, r.describe()
    assert "AuthorizationHeaderMalformed" in r.stderr or "SignatureDoesNotMatch" in r.stderr, r.describe()


# ==================================================================== refused calls
def test_calls_without_credentials_are_refused(admin, server, users):
    alice = users(1)[0]
    ak, _ = new_key(admin, alice)
    env = clean_env() | {"KURA_ADMIN_ENDPOINT": server.endpoint}
    name = unique_user()
    for args in (["user", "list"], ["user", "create", name], ["usage"], ["bucket", "list"],
                 ["key", "revoke", ak], ["user", "delete", alice]):
        r = admin.fails(*args, env=env, code="AccessDenied")
        assert "--access-key" in r.stderr, "no hint about missing credentials: " + r.describe()
    # nothing changed
    admin.fails("user", "info", name, code="NoSuchUser")
    assert [k["status"] for k in admin.json("key", "list", alice)["keys"]] == ["active"]


def test_non_admin_keys_are_refused(admin, users, owned_bucket):
    alice = users(1)[0]
    bucket = owned_bucket(alice)
    ak, sk = new_key(admin, alice)
    env = admin.env(KURA_ADMIN_ACCESS_KEY=ak, KURA_ADMIN_SECRET_KEY=sk)
    victim = unique_user()
    for args in (["user", "list"], ["user", "create", victim], ["user", "info", alice],
                 ["key", "create", alice], ["key", "list", alice], ["bucket", "list"],
                 ["bucket", "info", bucket], ["bucket", "create", unique_bucket_name(), "--owner", alice],
                 ["quota", "set", bucket, "--max-objects", "1000000"], ["quota", "clear", bucket],
                 ["usage"], ["bucket", "delete", bucket, "--purge"], ["user", "delete", alice],
                 ["key", "revoke", ak]):
        admin.fails(*args, env=env, code="AccessDenied")
    # nothing changed: no new user, alice has her one key (active) and her bucket
    admin.fails("user", "info", victim, code="NoSuchUser")
    keys = admin.json("key", "list", alice)["keys"]
    assert [(k["access_key"], k["status"]) for k in keys] == [(ak, "active")]
    assert admin.json("bucket", "info", bucket)["owner"] == alice


def test_wrong_secret_and_unknown_key_are_refused(admin, server):
    admin.fails("user", "list", env=admin.env(KURA_ADMIN_SECRET_KEY="not-the-root-secret"),
                code="SignatureDoesNotMatch")
    admin.fails("usage", env=admin.env(KURA_ADMIN_ACCESS_KEY="KURANOSUCHKEY0000000"),
                code="InvalidAccessKeyId")


def test_api_errors_are_json(server):
    """The API's own error shape (what the CLI prints as `code: message`)."""
    def check(r, status, code):
        assert r.status_code == status, (r.status_code, r.content[:300])
        body = r.json()
        assert body["code"] == code and body["message"], body
        assert body.get("request_id") and body["request_id"] == r.headers.get("x-amz-request-id"), \
            (body, dict(r.headers))

    check(requests.get(server.endpoint + API + "/users"), 403, "AccessDenied")
    check(server.signed_request("GET", API + "/users", secret_key="wrong"), 403, "SignatureDoesNotMatch")
    check(server.signed_request("GET", API + "/no-such-route"), 404, "NoSuchRoute")
    check(server.signed_request("POST", API + "/users", body=b'{"name": ',
                                headers={"content-type": "application/json"}), 400, "InvalidArgument")
    check(server.signed_request("POST", API + "/buckets", body=b'{"name": 5}',
                                headers={"content-type": "application/json"}), 400, "InvalidArgument")
    check(server.signed_request("GET", API + "/users/" + unique_user()), 404, "NoSuchUser")


# ==================================================================== users
def test_user_create_list_info_delete(admin):
    name = unique_user()
    created = admin.json("user", "create", name)
    assert created["name"] == name and isinstance(created["created"], str) and created["created"]
    listed = admin.json("user", "list")["users"]
    assert [u for u in listed if u["name"] == name] and all("name" in u for u in listed)
    info = admin.json("user", "info", name)
    assert info["name"] == name and info["created"] == created["created"]
    assert info["buckets"] == [] and info["keys"] == []

    table = admin("user", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "BUCKETS", "ACTIVE", "KEYS", "CREATED"]
    assert [line.split() for line in table[1:] if line.split()[0] == name] == [[name, "0", "0", created["created"]]]
    text = admin("user", "info", name).stdout
    assert f"name:    {name}\n" in text and "buckets: -\n" in text and "keys:    -\n" in text, text

    assert admin("user", "delete", name).stdout.strip() == f"deleted user {name}"
    admin.fails("user", "info", name, code="NoSuchUser")
    admin.fails("user", "delete", name, code="NoSuchUser")
    assert name not in [u["name"] for u in admin.json("user", "list")["users"]]


def test_user_names(admin):
    odd = f"a.b_c-d@{uuid.uuid4().hex[:8]}"       # every allowed character, '@' percent-encoded in paths
    longest = "L" + uuid.uuid4().hex + "x" * 31    # 64 characters
    assert len(longest) == 64
    for name in (odd, longest):
        assert admin.json("user", "create", name)["name"] == name
        assert admin.json("user", "info", name)["name"] == name
        admin("user", "delete", name)
    for bad in ("", "has space", "slash/name", "x" * 65, "ünï", "a:b", "root"):
        admin.fails("user", "create", bad, code="InvalidArgument")
    name = unique_user()
    admin("user", "create", name)
    admin.fails("user", "create", name, code="UserAlreadyExists")
    admin("user", "delete", name)


def test_user_owning_a_bucket_cannot_be_deleted_and_delete_revokes_keys(admin, server):
    name = unique_user()
    admin("user", "create", name)
    ak, sk = new_key(admin, name)
    bucket = unique_bucket_name("adm")
    admin("bucket", "create", bucket, "--owner", name)
    info = admin.json("user", "info", name)
    assert info["buckets"] == [bucket]
    assert [k["access_key"] for k in info["keys"]] == [ak]
    admin.fails("user", "delete", name, code="UserNotEmpty")
    server.client(ak, sk).put_object(Bucket=bucket, Key="k", Body=b"v")  # key still works
    admin("bucket", "delete", bucket, "--purge")
    admin("user", "delete", name)
    with s3_error("InvalidAccessKeyId", 403):
        server.client(ak, sk).list_buckets()


# ==================================================================== keys
def test_key_create_list_revoke(admin, server, users):
    alice = users(1)[0]
    created = admin.json("key", "create", alice)
    assert set(created) >= {"access_key", "secret_key", "user", "created"}, created
    assert created["user"] == alice and created["access_key"].startswith("KURA") and created["secret_key"]
    r = admin("key", "create", alice)                      # the table form shows the secret once
    lines = dict(line.split(":", 1) for line in r.stdout.splitlines())
    second = {k.strip(): v.strip() for k, v in lines.items()}
    assert second["access key"].startswith("KURA") and second["secret key"] and second["user"] == alice
    assert "not shown again" in r.stderr

    keys = admin.json("key", "list", alice)["keys"]
    assert sorted(k["access_key"] for k in keys) == sorted([created["access_key"], second["access key"]])
    for k in keys:
        assert k["user"] == alice and k["status"] == "active" and k["created"]
        assert "secret_key" not in k
    listing = admin("key", "list", alice).stdout + admin("--json", "user", "info", alice).stdout
    for secret in (created["secret_key"], second["secret key"]):
        assert secret not in listing
        assert secret not in server.log_path.read_text(errors="replace"), "a secret is in the server log"
    table = admin("key", "list", alice).stdout.splitlines()
    assert table[0].split()[:3] == ["ACCESS", "KEY", "STATUS"]

    out = admin("key", "revoke", created["access_key"]).stdout
    assert out.strip() == f"revoked key {created['access_key']}"
    status = {k["access_key"]: k["status"] for k in admin.json("key", "list", alice)["keys"]}
    assert status == {created["access_key"]: "revoked", second["access key"]: "active"}
    info = [line.split()[:2] for line in admin("user", "info", alice).stdout.splitlines() if line.startswith("KURA")]
    assert sorted(info) == sorted([[created["access_key"], "revoked"], [second["access key"], "active"]])
    row = next(line.split() for line in admin("user", "list").stdout.splitlines() if line.startswith(alice + " "))
    assert row[1:3] == ["0", "1"], row                    # no bucket, one active key
    admin("key", "revoke", created["access_key"])        # idempotent
    admin.fails("key", "revoke", "KURANOSUCHKEY0000000", code="NoSuchKey")
    admin.fails("key", "create", unique_user(), code="NoSuchUser")
    admin.fails("key", "list", unique_user(), code="NoSuchUser")


def test_revoked_key_stops_working_at_once(admin, server, users, owned_bucket):
    alice = users(1)[0]
    bucket = owned_bucket(alice)
    ak, sk = new_key(admin, alice)
    ak2, sk2 = new_key(admin, alice)
    s3a, s3b = server.client(ak, sk), server.client(ak2, sk2)
    s3a.put_object(Bucket=bucket, Key="before", Body=b"1")
    assert s3a.get_object(Bucket=bucket, Key="before")["Body"].read() == b"1"
    admin("key", "revoke", ak)
    with s3_error("InvalidAccessKeyId", 403):
        s3a.put_object(Bucket=bucket, Key="after", Body=b"2")
    with s3_error("InvalidAccessKeyId", 403):
        s3a.get_object(Bucket=bucket, Key="before")
    with s3_error("InvalidAccessKeyId", 403):
        s3a.list_objects_v2(Bucket=bucket)
    with s3_error("InvalidAccessKeyId", 403):
        s3a.list_buckets()
    # presigned URLs made with the revoked key stop working too
    url = s3a.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "before"})
    assert requests.get(url).status_code == 403
    # the user's other key is untouched; nothing was stored by the refused PUT
    assert s3b.get_object(Bucket=bucket, Key="before")["Body"].read() == b"1"
    no_such_key(s3b, bucket, "after")


# ==================================================================== buckets
def test_bucket_create_list_info_delete(admin, server, s3, users):
    alice = users(1)[0]
    name = unique_bucket_name("adm")
    b = admin.json("bucket", "create", name, "--owner", alice)
    assert set(b) >= {"name", "owner", "created", "region", "shards", "quota", "usage"}, b
    assert (b["name"], b["owner"], b["region"]) == (name, alice, server.region)
    assert isinstance(b["shards"], int) and b["shards"] >= 1 and b["created"]
    assert b["quota"] == {"max_objects": None, "max_bytes": None}
    assert b["usage"] == {"objects": 0, "bytes": 0}
    assert admin.json("bucket", "info", name) == b
    listed = [x for x in admin.json("bucket", "list")["buckets"] if x["name"] == name]
    assert listed == [b]
    s3.head_bucket(Bucket=name)                             # root sees it through S3

    s3.put_object(Bucket=name, Key="k", Body=b"x" * 1536)
    table = admin("bucket", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "OWNER", "OBJECTS", "SIZE", "MAX", "OBJECTS", "MAX", "SIZE", "CREATED"]
    row = next(line.split() for line in table[1:] if line.split()[0] == name)
    assert row[1:6] == [alice, "1", "1.5", "KiB", "unlimited"], row
    text = admin("bucket", "info", name).stdout
    assert "owner:" in text and alice in text and "1.5 KiB (1536 bytes)" in text, text

    s3.delete_object(Bucket=name, Key="k")
    assert admin("bucket", "delete", name).stdout.strip() == f"deleted bucket {name}"
    with s3_error("NoSuchBucket", 404):
        s3.list_objects_v2(Bucket=name)
    admin.fails("bucket", "info", name, code="NoSuchBucket")
    admin.fails("bucket", "delete", name, code="NoSuchBucket")
    assert name not in [x["name"] for x in admin.json("bucket", "list")["buckets"]]


def test_bucket_create_errors(admin, users, bucket):
    alice = users(1)[0]
    admin.fails("bucket", "create", unique_bucket_name(), "--owner", unique_user(), code="NoSuchUser")
    admin.fails("bucket", "create", bucket, "--owner", alice, code="BucketAlreadyExists")
    for bad in ("Upper-Case", "ab", "under_score", "trailing-dash-", "x" * 64):
        admin.fails("bucket", "create", bad, "--owner", alice, code="InvalidBucketName")


def test_bucket_delete_refuses_non_empty_unless_purged(admin, server, s3, owned_bucket):
    name = owned_bucket()
    for i in range(5):
        s3.put_object(Bucket=name, Key=f"dir/obj-{i}", Body=b"x" * i)
    upload = s3.create_multipart_upload(Bucket=name, Key="big")["UploadId"]
    s3.upload_part(Bucket=name, Key="big", UploadId=upload, PartNumber=1, Body=b"p" * 100)
    admin.fails("bucket", "delete", name, code="BucketNotEmpty")
    assert listed_totals(s3, name) == (5, 10)               # nothing was deleted
    out = admin("bucket", "delete", name, "--purge").stdout
    assert out.strip() == f"deleted bucket {name}"
    with s3_error("NoSuchBucket", 404):
        s3.list_objects_v2(Bucket=name)
    # a bucket of the same name starts empty: no object, no upload, zero usage
    owner = unique_user()
    admin("user", "create", owner)
    try:
        admin("bucket", "create", name, "--owner", owner)
        assert listed_totals(s3, name) == (0, 0)
        assert s3.list_multipart_uploads(Bucket=name).get("Uploads", []) == []
        assert usage_of(admin, name) == (0, 0)
        assert admin.json("bucket", "delete", name) is None   # 204: nothing printed with --json
    finally:
        admin("user", "delete", owner)


# ==================================================================== quotas
def test_quota_set_and_clear(admin, owned_bucket):
    name = owned_bucket()
    q = admin.json("quota", "set", name, "--max-objects", "10", "--max-bytes", "10GiB")
    assert q["name"] == name and q["quota"] == {"max_objects": 10, "max_bytes": 10 << 30}
    assert admin.json("bucket", "info", name)["quota"] == q["quota"]
    for text, value in (("1GB", 10**9), ("500MiB", 500 << 20), ("1073741824", 1 << 30),
                        ("1.5TB", 1_500_000_000_000), ("0", 0)):
        got = admin.json("quota", "set", name, "--max-bytes", text)["quota"]
        assert got == {"max_objects": None, "max_bytes": value}, (text, got)   # set replaces
    got = admin.json("quota", "set", name, "--max-objects", "0")["quota"]
    assert got == {"max_objects": 0, "max_bytes": None}
    text = admin("quota", "set", name, "--max-objects", "7", "--max-bytes", "10GiB").stdout
    assert "max objects: 7" in text and "max size:    10 GiB (10737418240 bytes)" in text, text
    cleared = admin.json("quota", "clear", name)
    assert cleared["quota"] == {"max_objects": None, "max_bytes": None}
    assert "unlimited" in admin("quota", "clear", name).stdout
    assert admin.json("bucket", "info", name)["quota"] == cleared["quota"]
    missing = unique_bucket_name()
    admin.fails("quota", "set", missing, "--max-objects", "1", code="NoSuchBucket")
    admin.fails("quota", "clear", missing, code="NoSuchBucket")


def test_quota_max_objects(admin, s3, owned_bucket):
    name = owned_bucket()
    admin("quota", "set", name, "--max-objects", "3")
    for k in ("a", "b", "c"):
        s3.put_object(Bucket=name, Key=k, Body=b"12345")    # the third is exactly at the limit
    quota_exceeded(lambda: s3.put_object(Bucket=name, Key="d", Body=b"1"))
    no_such_key(s3, name, "d")
    quota_exceeded(lambda: s3.copy_object(Bucket=name, Key="d", CopySource={"Bucket": name, "Key": "a"}))
    no_such_key(s3, name, "d")
    body = b"overwrite adds no object"
    s3.put_object(Bucket=name, Key="a", Body=body)
    s3.copy_object(Bucket=name, Key="b", CopySource={"Bucket": name, "Key": "a"})
    assert_usage(admin, s3, name, (3, 2 * len(body) + 5))
    s3.delete_object(Bucket=name, Key="c")
    s3.put_object(Bucket=name, Key="d", Body=b"")           # room again after a delete
    assert_usage(admin, s3, name, (3, 2 * len(body)))
    admin("quota", "clear", name)
    s3.put_object(Bucket=name, Key="e", Body=b"e")
    assert_usage(admin, s3, name, (4, 2 * len(body) + 1))


def test_quota_room_of_a_failed_put_is_given_back(admin, s3, owned_bucket):
    """A PutObject whose body fails (a Content-MD5 that does not match) holds no room in
    the quota afterwards: the next write fits at once, not once a reservation lapses."""
    name = owned_bucket()
    admin("quota", "set", name, "--max-objects", "2")
    s3.put_object(Bucket=name, Key="a", Body=b"a")
    wrong = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    for _ in range(3):
        with pytest.raises(ClientError) as err:
            s3.put_object(Bucket=name, Key="b", Body=b"b", ContentMD5=wrong)
        assert err.value.response["Error"]["Code"] == "BadDigest", err.value.response
    s3.put_object(Bucket=name, Key="b", Body=b"b")           # exactly at the limit
    quota_exceeded(lambda: s3.put_object(Bucket=name, Key="c", Body=b"c"))
    assert_usage(admin, s3, name, (2, 2))


def test_quota_max_bytes(admin, s3, owned_bucket):
    name = owned_bucket()
    admin("quota", "set", name, "--max-bytes", "1000")
    s3.put_object(Bucket=name, Key="a", Body=b"a" * 600)
    s3.put_object(Bucket=name, Key="b", Body=b"b" * 400)    # exactly 1000
    quota_exceeded(lambda: s3.put_object(Bucket=name, Key="c", Body=b"c"))
    no_such_key(s3, name, "c")
    quota_exceeded(lambda: s3.put_object(Bucket=name, Key="a", Body=b"A" * 601))  # overwrite +1 byte
    assert s3.get_object(Bucket=name, Key="a")["Body"].read() == b"a" * 600
    s3.put_object(Bucket=name, Key="empty", Body=b"")       # 0 bytes never goes over
    s3.put_object(Bucket=name, Key="a", Body=b"A" * 599)    # shrinking is fine
    s3.put_object(Bucket=name, Key="c", Body=b"c")          # exactly 1000 again
    assert_usage(admin, s3, name, (4, 1000))
    quota_exceeded(lambda: s3.copy_object(Bucket=name, Key="d", CopySource={"Bucket": name, "Key": "c"}))
    no_such_key(s3, name, "d")
    # a quota below the current usage refuses growth but allows deletes
    admin("quota", "set", name, "--max-bytes", "500")
    quota_exceeded(lambda: s3.put_object(Bucket=name, Key="b", Body=b"b" * 401))
    s3.delete_object(Bucket=name, Key="b")
    assert_usage(admin, s3, name, (3, 600))


def test_quota_refuses_a_put_before_reading_its_body(admin, server, owned_bucket):
    """A PutObject whose Content-Length cannot fit is refused from its headers alone:
    the server answers while the client has not sent a byte of the body."""
    import http.client
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    name = owned_bucket()
    admin("quota", "set", name, "--max-bytes", str(MIB))
    netloc = server.endpoint.split("//")[1]
    request = AWSRequest(method="PUT", url=f"{server.endpoint}/{name}/too-big", headers={
        "Host": netloc, "Content-Length": str(50 * MIB), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials(server.access_key, server.secret_key), "s3", server.region).add_auth(request)
    host, port = netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("PUT", f"/{name}/too-big", skip_host=True, skip_accept_encoding=True)
    for key, value in request.headers.items():
        conn.putheader(key, value)
    conn.endheaders()                      # headers only: the 50 MiB body never comes
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert response.status == 403 and "<Code>QuotaExceeded</Code>" in body, body
    assert usage_of(admin, name) == (0, 0)


def test_quota_multipart_is_checked_at_completion(admin, s3, owned_bucket):
    name = owned_bucket()
    admin("quota", "set", name, "--max-bytes", str(2 * PART), "--max-objects", "2")

    def upload(key: str, sizes: "list[int]"):
        uid = s3.create_multipart_upload(Bucket=name, Key=key)["UploadId"]
        parts = []
        for n, size in enumerate(sizes, start=1):
            etag = s3.upload_part(Bucket=name, Key=key, UploadId=uid, PartNumber=n,
                                  Body=bytes([n]) * size)["ETag"]
            parts.append({"PartNumber": n, "ETag": etag})
        return lambda: s3.complete_multipart_upload(Bucket=name, Key=key, UploadId=uid,
                                                    MultipartUpload={"Parts": parts}), uid

    complete, uid = upload("over", [PART, PART, 1])         # one byte over
    quota_exceeded(complete)
    no_such_key(s3, name, "over")
    assert_usage(admin, s3, name, (0, 0))
    s3.abort_multipart_upload(Bucket=name, Key="over", UploadId=uid)

    complete, _ = upload("exact", [PART, PART])             # exactly at the limit
    complete()
    assert_usage(admin, s3, name, (1, 2 * PART))
    # an overwrite by multipart counts the difference: same size fits, one byte more does not
    complete, _ = upload("exact", [PART, PART])
    complete()
    complete, uid = upload("exact", [PART, PART + 1])
    quota_exceeded(complete)
    s3.abort_multipart_upload(Bucket=name, Key="exact", UploadId=uid)
    assert_usage(admin, s3, name, (1, 2 * PART))
    # max objects at completion (`set` replaces the quota: no byte limit any more)
    admin("quota", "set", name, "--max-objects", "2")
    complete, _ = upload("second", [1])
    complete()
    complete, uid = upload("third", [1])
    quota_exceeded(complete)
    no_such_key(s3, name, "third")
    assert_usage(admin, s3, name, (2, 2 * PART + 1))


# ==================================================================== usage
def test_usage_is_exact_after_overwrite_delete_copy_multipart(admin, s3, owned_bucket):
    name = owned_bucket()
    steps = [
        ("put a", lambda: s3.put_object(Bucket=name, Key="a", Body=b"a" * 100), (1, 100)),
        ("overwrite a", lambda: s3.put_object(Bucket=name, Key="a", Body=b"a" * 250), (1, 250)),
        ("put empty b", lambda: s3.put_object(Bucket=name, Key="b", Body=b""), (2, 250)),
        ("copy a to c", lambda: s3.copy_object(Bucket=name, Key="c", CopySource={"Bucket": name, "Key": "a"}),
         (3, 500)),
        ("copy a onto itself", lambda: s3.copy_object(Bucket=name, Key="a", CopySource={"Bucket": name, "Key": "a"},
                                                      MetadataDirective="REPLACE", Metadata={"m": "1"}), (3, 500)),
        ("copy b over c", lambda: s3.copy_object(Bucket=name, Key="c", CopySource={"Bucket": name, "Key": "b"}),
         (3, 250)),
        ("delete b", lambda: s3.delete_object(Bucket=name, Key="b"), (2, 250)),
        ("delete missing", lambda: s3.delete_object(Bucket=name, Key="never-there"), (2, 250)),
        ("multipart d", lambda: multipart(s3, name, "d", [PART, 7]), (3, 250 + PART + 7)),
        ("multipart over a", lambda: multipart(s3, name, "a", [PART, 1]), (3, PART + 1 + PART + 7)),
        ("aborted upload", lambda: aborted(s3, name, "e"), (3, PART + 1 + PART + 7)),
        ("put over multipart d", lambda: s3.put_object(Bucket=name, Key="d", Body=b"d" * 10), (3, PART + 1 + 10)),
        ("delete_objects", lambda: s3.delete_objects(Bucket=name, Delete={"Objects": [
            {"Key": "a"}, {"Key": "c"}, {"Key": "nope"}]}), (1, 10)),
    ]
    for what, step, expected in steps:
        step()
        assert usage_of(admin, name) == expected, f"after {what}"
        assert listed_totals(s3, name) == expected, f"listing after {what}"
    usage = [e for e in admin.json("usage")["buckets"] if e["name"] == name][0]
    assert set(usage) >= {"name", "owner", "objects", "bytes"} and usage["owner"], usage
    table = admin("usage").stdout.splitlines()
    assert table[0].split() == ["BUCKET", "OWNER", "OBJECTS", "SIZE", "BYTES"]
    row = next(line.split() for line in table if line.split()[0] == name)
    assert row[1:] == [usage["owner"], "1", "10", "B", "10"], row
    assert table[-1].split()[0] == "TOTAL"


def multipart(s3, bucket: str, key: str, sizes: "list[int]") -> None:
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n,
                                                       Body=b"m" * size)["ETag"]}
             for n, size in enumerate(sizes, start=1)]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts})


def aborted(s3, bucket: str, key: str) -> None:
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=b"x" * 1000)
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)


def test_usage_survives_kill9(kura_bin, fresh_server):
    srv = fresh_server
    admin = Admin(kura_bin, srv)
    owner = unique_user()
    admin("user", "create", owner)
    name = unique_bucket_name("crash")
    admin("bucket", "create", name, "--owner", owner)
    s3 = srv.client()
    sizes = {}
    for i in range(20):
        s3.put_object(Bucket=name, Key=f"k{i}", Body=b"x" * (i * 100))
        sizes[f"k{i}"] = i * 100
    s3.put_object(Bucket=name, Key="k1", Body=b"y" * 5000)
    sizes["k1"] = 5000
    s3.delete_object(Bucket=name, Key="k2")
    del sizes["k2"]
    s3.copy_object(Bucket=name, Key="copy", CopySource={"Bucket": name, "Key": "k3"})
    sizes["copy"] = sizes["k3"]
    multipart(s3, name, "mp", [PART, 3])
    sizes["mp"] = PART + 3
    expected = (len(sizes), sum(sizes.values()))
    srv.kill9()                                             # right after the last acknowledgement
    srv.restart()
    s3 = srv.client()
    assert_usage(admin, s3, name, expected)

    # kill -9 in the middle of a write load: usage equals what the listing shows
    dying, stop = threading.Event(), threading.Event()
    errors: "list[BaseException]" = []

    def load(worker: int) -> None:
        client = srv.client(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5)
        rnd = random.Random(worker)
        while not stop.is_set():
            key = f"w{worker}-{rnd.randrange(30)}"
            try:
                if rnd.random() < 0.25:
                    client.delete_object(Bucket=name, Key=key)
                else:
                    client.put_object(Bucket=name, Key=key, Body=b"z" * rnd.randrange(0, 200_000))
            except Exception as e:                         # the server dies under the load
                if not dying.is_set():
                    errors.append(e)
                    return
                time.sleep(0.05)

    threads = [threading.Thread(target=load, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    dying.set()
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    srv.restart()
    s3 = srv.client()
    totals = listed_totals(s3, name)
    assert totals[0] > len(sizes), "the load wrote nothing before the kill"
    assert usage_of(admin, name) == totals
    # and the counters keep counting correctly afterwards
    s3.put_object(Bucket=name, Key="after-crash", Body=b"q" * 123)
    assert usage_of(admin, name) == (totals[0] + 1, totals[1] + 123)


# ==================================================================== users and their buckets
def test_users_are_kept_out_of_each_others_buckets(admin, server, users, owned_bucket, tmp_path):
    alice, bob = users(2)
    alices, bobs = owned_bucket(alice), owned_bucket(bob)
    a_ak, a_sk = new_key(admin, alice)
    b_ak, b_sk = new_key(admin, bob)
    s3a, s3b = server.client(a_ak, a_sk), server.client(b_ak, b_sk)
    s3b.put_object(Bucket=bobs, Key="private", Body=b"bob's")

    for call in (lambda: s3a.list_objects_v2(Bucket=bobs),
                 lambda: s3a.get_object(Bucket=bobs, Key="private"),
                 lambda: s3a.put_object(Bucket=bobs, Key="intruder", Body=b"x"),
                 lambda: s3a.delete_object(Bucket=bobs, Key="private"),
                 lambda: s3a.copy_object(Bucket=alices, Key="stolen", CopySource={"Bucket": bobs, "Key": "private"}),
                 lambda: s3a.create_multipart_upload(Bucket=bobs, Key="mp"),
                 lambda: s3a.delete_bucket(Bucket=bobs)):
        with s3_error("AccessDenied", 403):
            call()
    with pytest.raises(ClientError) as head:
        s3a.head_bucket(Bucket=bobs)
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # nothing of bob's changed, nothing of alice's was stored
    assert s3b.get_object(Bucket=bobs, Key="private")["Body"].read() == b"bob's"
    no_such_key(s3b, bobs, "intruder")
    no_such_key(s3a, alices, "stolen")
    assert listed_totals(s3b, bobs) == (1, 5)

    # alice uses her own bucket with the aws CLI, configured only with her key
    aws = venv_bin("aws")
    env = utf8_env(server.env()) | {"AWS_ACCESS_KEY_ID": a_ak, "AWS_SECRET_ACCESS_KEY": a_sk}
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello from alice\n")
    run([aws, "s3", "cp", str(src), f"s3://{alices}/hello.txt"], env)
    assert "hello.txt" in run([aws, "s3", "ls", f"s3://{alices}/"], env).stdout
    assert run([aws, "s3", "cp", f"s3://{alices}/hello.txt", "-"], env).stdout == "hello from alice\n"
    for args in (["s3", "ls", f"s3://{bobs}/"], ["s3", "cp", str(src), f"s3://{bobs}/x"],
                 ["s3", "cp", f"s3://{bobs}/private", "-"]):
        r = run([aws, *args], env, check=False)
        assert r.returncode != 0 and ("AccessDenied" in r.stderr or "403" in r.stderr), r.describe()
    # root (the administrator) reaches both
    assert listed_totals(server.client(), alices) == (1, 17)
    assert listed_totals(server.client(), bobs) == (1, 5)


def test_list_buckets_shows_a_user_only_their_own(admin, server, users, owned_bucket):
    alice, bob = users(2)
    alices, bobs = owned_bucket(alice), owned_bucket(bob)
    ak, sk = new_key(admin, alice)
    names = [b["Name"] for b in server.client(ak, sk).list_buckets()["Buckets"]]
    assert names == [alices], names
    assert bobs in [b["Name"] for b in server.client().list_buckets()["Buckets"]]


def test_bucket_made_by_a_user_is_theirs(admin, server, users):
    alice, bob = users(2)
    s3a = server.client(*new_key(admin, alice))
    s3b = server.client(*new_key(admin, bob))
    name = unique_bucket_name("own")
    s3a.create_bucket(Bucket=name)
    assert admin.json("bucket", "info", name)["owner"] == alice
    s3a.put_object(Bucket=name, Key="k", Body=b"v")
    with s3_error("AccessDenied", 403):
        s3b.get_object(Bucket=name, Key="k")
    assert usage_of(admin, name) == (1, 1)


def test_grants_let_another_user_use_objects_but_not_delete_the_bucket(admin, server, users, owned_bucket):
    alice, bob = users(2)
    name = owned_bucket(alice)
    s3b = server.client(*new_key(admin, bob))
    with s3_error("AccessDenied", 403):
        s3b.put_object(Bucket=name, Key="k", Body=b"v")
    info = admin.json("bucket", "grant", name, bob)
    assert info["grants"] == [bob]
    assert f"granted to:  {bob}" in admin("bucket", "info", name).stdout
    s3b.put_object(Bucket=name, Key="k", Body=b"v")
    assert s3b.get_object(Bucket=name, Key="k")["Body"].read() == b"v"
    assert [b["Name"] for b in s3b.list_buckets()["Buckets"]] == [name]
    s3b.delete_object(Bucket=name, Key="k")
    with s3_error("AccessDenied", 403):
        s3b.delete_bucket(Bucket=name)
    assert admin.json("bucket", "ungrant", name, bob)["grants"] == []
    with s3_error("AccessDenied", 403):
        s3b.list_objects_v2(Bucket=name)
    admin.fails("bucket", "grant", name, "nobody-" + uuid.uuid4().hex[:8], code="NoSuchUser")


# ==================================================================== https endpoints
def make_ca_and_leaf(work_dir: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 signed by it, laid out the way
    conftest.TlsProxy loads them (tls-cert.pem, tls-key.pem). Returns the CA's PEM.
    (The harness's own self-signed certificate is a CA used as the server's
    certificate, which rustls rightly refuses.)"""
    work_dir.mkdir(parents=True, exist_ok=True)
    ca, ca_key = work_dir / "ca.pem", work_dir / "ca-key.pem"
    ext = work_dir / "leaf.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "extendedKeyUsage=serverAuth\n")
    openssl = ["openssl"]
    run(openssl + ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
                   "-days", "2", "-subj", "/CN=kura-admin-test-ca",
                   "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])
    run(openssl + ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", work_dir / "tls-key.pem",
                   "-out", work_dir / "leaf.csr", "-subj", "/CN=127.0.0.1"])
    run(openssl + ["x509", "-req", "-in", work_dir / "leaf.csr", "-CA", ca, "-CAkey", ca_key,
                   "-CAcreateserial", "-out", work_dir / "tls-cert.pem", "-days", "2", "-extfile", ext])
    return ca


def test_https_endpoint_trusts_the_ca_bundle(admin, server, tmp_path):
    ca = make_ca_and_leaf(tmp_path / "tls")
    proxy = TlsProxy(server.s3_port, tmp_path / "tls")
    try:
        env = admin.env(KURA_ADMIN_ENDPOINT=proxy.endpoint)
        r = admin("usage", env=env, check=False)          # a private CA is not trusted by default
        assert r.returncode == 1 and "cannot reach" in r.stderr and "certificate" in r.stderr, r.describe()
        for extra_env, flags in (({"KURA_ADMIN_CA_BUNDLE": str(ca)}, []), ({"AWS_CA_BUNDLE": str(ca)}, []),
                                 ({}, ["--ca-bundle", str(ca)])):
            assert "buckets" in admin.json(*flags, "usage", env=env | extra_env)
        r = admin("--ca-bundle", str(tmp_path / "missing.pem"), "usage", env=env, check=False)
        assert r.returncode == 1 and "CA bundle" in r.stderr, r.describe()
    finally:
        proxy.stop()
