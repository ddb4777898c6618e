"""Tools for the tests that run several gateways over the Ceph cluster the suite runs
against (KURA_TEST_CEPH_CONF): cluster control through scripts/ceph-cluster, gateways on
shared data, a write load that records what was acknowledged."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from conftest import CEPH_CONF, REPO_ROOT, unique_bucket_name
from loadtools import RawS3, fill

API = "/_kura/admin/v1"
CLUSTER = REPO_ROOT / "scripts" / "ceph-cluster"


def ceph_cluster(*args: str) -> None:
    """scripts/ceph-cluster COMMAND DIR [ARG]: the cluster the suite runs against."""
    command, rest = args[0], list(args[1:])
    subprocess.run(["bash", str(CLUSTER), command, str(Path(CEPH_CONF).parent), *rest],
                   check=True, capture_output=True, timeout=300)


def pools_serve() -> bool:
    probe = f"probe-{uuid.uuid4().hex}"
    for pool in ("kura-meta", "kura-index", "kura-data"):
        put = subprocess.run(["rados", "-c", CEPH_CONF, "-p", pool, "put", probe, "/dev/null"],
                             capture_output=True, timeout=15)
        if put.returncode != 0:
            return False
        subprocess.run(["rados", "-c", CEPH_CONF, "-p", pool, "rm", probe],
                       capture_output=True, timeout=15)
    return True


def cluster_dir() -> Path:
    return Path(CEPH_CONF).parent


def ceph_json(*args: str):
    out = subprocess.run(["ceph", "-c", CEPH_CONF, *args, "--format", "json"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)


def placement(pool: str, oid: str, namespace: str) -> "tuple[str, int]":
    """(placement group, primary OSD) of an object."""
    where = ceph_json("osd", "map", pool, oid, namespace)
    return where["pgid"], where["acting_primary"]


def damage_on_osd(osd: int, pgid: str, oid: str, namespace: str, offset: int) -> None:
    """Flips one bit of the copy on `osd` of `oid` (in kura-data) behind Ceph's back:
    the OSD is stopped, its copy rewritten with ceph-objectstore-tool, and the OSD started
    again. The other copies stay intact; only a deep scrub or a whole-object read notices."""
    tool = ["ceph-objectstore-tool", "--no-mon-config",
            "--data-path", str(cluster_dir() / "osd" / f"ceph-{osd}"), "--pgid", pgid]
    ceph_cluster("stop-osd", str(osd))
    try:
        listed = subprocess.run([*tool, "--op", "list", oid], capture_output=True, text=True,
                                timeout=120, check=True).stdout
        spec = next(json.dumps(entry[1]) for entry in map(json.loads, listed.splitlines())
                    if entry[1]["namespace"] == namespace)
        data = bytearray(subprocess.run([*tool, spec, "get-bytes"], capture_output=True,
                                        timeout=120, check=True).stdout)
        data[offset] ^= 0x40
        subprocess.run([*tool, spec, "set-bytes"], input=bytes(data), capture_output=True,
                       timeout=120, check=True)
    finally:
        ceph_cluster("start-osd", str(osd))
    # The pools serve again as soon as the monitor sees the OSD's absence, from the other
    # copies: wait until it is back as the placement group's primary, serving its copy.
    deadline = time.monotonic() + 120
    while ceph_json("osd", "map", "kura-data", oid, namespace)["acting_primary"] != osd \
            or not pools_serve():
        assert time.monotonic() < deadline, f"osd.{osd} did not come back as primary"
        time.sleep(1)


def deep_scrub(osd: int, pgid: str) -> None:
    """Has `osd` (the placement group's primary) deep-scrub `pgid` now and repair what it
    finds from the good copies. (`ceph pg deep-scrub` and `ceph pg repair` need a
    manager, which the test cluster does without: the OSD's admin socket makes the scrub
    due, and automatic repair fixes what it finds.)"""
    socket = ["ceph", "--admin-daemon", str(cluster_dir() / "run" / f"ceph-osd.{osd}.asok")]
    for command in (["config", "set", "osd_scrub_auto_repair", "true"],
                    ["config", "set", "osd_scrub_load_threshold", "100"],
                    ["deep_scrub", pgid, "8640000"],  # last deep scrub: 100 days ago
                    ["scrub", pgid, "8640000"]):
        subprocess.run([*socket, *command], capture_output=True, timeout=60, check=True)


@pytest.fixture
def racks():
    """Stops and starts OSDs; every OSD runs again when the test ends."""
    stopped: "set[int]" = set()

    class Racks:
        def lose(self, n: int) -> None:
            ceph_cluster("stop-osd", str(n))
            stopped.add(n)

        def restore(self, n: int) -> None:
            ceph_cluster("start-osd", str(n))
            stopped.discard(n)

    yield Racks()
    for n in sorted(stopped):
        ceph_cluster("start-osd", str(n))
    deadline = time.monotonic() + 180
    while not pools_serve():
        assert time.monotonic() < deadline, "the cluster did not recover"
        time.sleep(2)


@pytest.fixture
def gateways(make_server):
    """gateways(n, **kwargs): n gateways on the same pools and namespace."""
    def make(n: int = 2, **kwargs):
        first = make_server(**kwargs)
        return [first] + [make_server(namespace=first.namespace, **kwargs) for _ in range(n - 1)]
    return make


def on_each(servers: dict, writer, per_gateway: int = 4) -> None:
    """Runs writer(server, tag) on `per_gateway` threads for each (label, server) and
    waits for them all."""
    threads = [threading.Thread(target=writer, args=(srv, f"{label}{i}"))
               for label, srv in servers.items() for i in range(per_gateway)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def filled_bucket(server, keys: "list[str]") -> str:
    """A new bucket holding `keys` (empty objects), written through `server`."""
    name = unique_bucket_name()
    server.client().create_bucket(Bucket=name)
    failures: list = []
    fill(RawS3(server), name, keys, 8, failures)
    assert not failures, failures[:5]
    return name


def retrying(server):
    """A boto3 client that retries as SDKs do by default (and a little longer)."""
    return server.client(retries={"mode": "standard", "max_attempts": 10},
                         connect_timeout=5, read_timeout=30)


def admin(server, method: str, path: str, body: "dict | None" = None):
    r = server.signed_request(method, API + path, body=json.dumps(body).encode() if body else b"",
                              timeout=30)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json() if r.text.strip() else None


class Load:
    """Writers on several gateways putting objects with known contents until stopped;
    records what was acknowledged and what failed after the SDK's retries."""

    def __init__(self, servers, bucket: str, threads_per_gateway: int = 3, size: int = 64 * 1024):
        self.bucket, self.size = bucket, size
        self.acked: "dict[str, str]" = {}
        self.failed: "list[tuple[str, str]]" = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(srv, f"g{g}t{t}"))
                        for g, srv in enumerate(servers) for t in range(threads_per_gateway)]

    def _write(self, server, tag: str) -> None:
        client = retrying(server)
        n = 0
        while not self.stop.is_set():
            key = f"{tag}/{n:06d}"
            body = hashlib.sha256(key.encode()).digest() * (self.size // 32)
            try:
                client.put_object(Bucket=self.bucket, Key=key, Body=body)
                with self.lock:
                    self.acked[key] = hashlib.sha256(body).hexdigest()
            except Exception as e:  # noqa: BLE001
                with self.lock:
                    self.failed.append((key, repr(e)[:200]))
            n += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()

    def verify(self, server) -> None:
        client = retrying(server)
        listed = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            listed.update(o["Key"] for o in page.get("Contents", []))
        missing = set(self.acked) - listed
        assert not missing, f"{len(missing)} acknowledged objects are not listed"
        for key, digest in self.acked.items():
            body = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == digest, f"{key} changed"


def wait_status(url: str, status: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = requests.get(url, timeout=2).status_code
        except requests.RequestException as e:
            last = repr(e)
        if last == status:
            return
        time.sleep(0.25)
    raise AssertionError(f"{url} answered {last}, not {status}, for {timeout} s")
