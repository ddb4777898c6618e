"""Crash safety: kill -9 under a concurrent PUT load, restart on the same data
directory, and check that

  * every object whose PutObject / CompleteMultipartUpload returned 200 is
    listed (ListObjectsV2 with pagination), reads back byte-identical and has
    the ETag the server returned;
  * no object is visible that was never fully written: every listed key is one
    whose upload was at least started, and its size, bytes and ETag are exactly
    those of the body sent for it (bodies are a deterministic function of the
    key, so a torn or mixed object is detected); started-but-not-listed keys
    answer NoSuchKey, never partial content;
  * multipart uploads interrupted by the crash are either completed in full
    (Complete was committed) or still open with every acknowledged part, and
    can be finished after the restart.

The kill is repeated at several moments (rounds with different delays and
mixes, two of them timed while multipart uploads are in flight); every round
re-verifies the objects of all earlier rounds. KURA_CRASH_SEED=<n> reproduces
a run's random choices.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import random
import threading
import time
from dataclasses import dataclass, field

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import KuraServer
from tools import det_bytes

KIB = 1024
MIB = 1 << 20
PART = 5 * MIB
WORKERS = 6
MAX_OPS_PER_WORKER = 400
BUCKET = "crash-test"

# (name, seconds of load before the kill, weights small/large/multipart, wait for an
#  in-flight multipart upload with at least one acknowledged part before killing)
ROUNDS = [
    ("right-away", 0.1, (60, 30, 10), False),
    ("early", 0.6, (70, 20, 10), False),
    ("multipart", 1.5, (20, 20, 60), True),
    ("mostly-large", 2.5, (45, 45, 10), False),
    ("late-multipart", 3.5, (55, 25, 20), True),
    ("long", 6.0, (50, 30, 20), True),
]


@dataclass
class Expect:
    kind: str
    size: int
    sha256: str
    etag: str  # the ETag S3 defines for this body (quoted)


@dataclass
class OpenUpload:
    key: str
    upload_id: str
    nparts: int
    acked_parts: "dict[int, str]" = field(default_factory=dict)  # part number -> ETag
    checksums: "dict[int, dict]" = field(default_factory=dict)


def body_for(key: str, size: int) -> bytes:
    return det_bytes(key, size)


def md5_etag(body: bytes) -> str:
    return f'"{hashlib.md5(body).hexdigest()}"'


def multipart_etag(body: bytes, part: int) -> str:
    digests = [hashlib.md5(body[i:i + part]).digest() for i in range(0, len(body), part)]
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'


class Ledger:
    """What the clients sent and what the server acknowledged, over all rounds."""

    def __init__(self):
        self.lock = threading.Lock()
        self.started: "dict[str, Expect]" = {}
        self.acked: "dict[str, str]" = {}  # key -> ETag returned with the 200
        self.open_uploads: "dict[str, OpenUpload]" = {}  # started, Complete not acked
        self.bad_responses: "list[str]" = []  # 200s with wrong ETags, errors before the kill


class LoadRound:
    def __init__(self, server: KuraServer, ledger: Ledger, no: int, weights, seed: int,
                 time_limit: float):
        self.server = server
        self.ledger = ledger
        self.no = no
        self.weights = weights
        self.seed = seed
        self.deadline = time.monotonic() + time_limit
        self.stop = threading.Event()
        self.killed = threading.Event()
        self.mpu_with_parts = 0  # in-flight multipart uploads with >= 1 acknowledged part
        self.ops_done = 0
        self.ready = threading.Barrier(WORKERS + 1)
        self.threads = [threading.Thread(target=self.worker, args=(w,), daemon=True)
                        for w in range(WORKERS)]

    def client(self):
        return self.server.client(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=3, read_timeout=30, max_pool_connections=2)

    def start(self):
        """Start the workers; returns once all have their clients, as they begin."""
        for t in self.threads:
            t.start()
        self.ready.wait(timeout=60)

    def join(self, timeout: float = 60):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, f"load threads did not stop: {alive}"

    def worker(self, wid: int):
        client = self.client()
        rng = random.Random(self.seed * 1000 + self.no * 100 + wid)
        self.ready.wait(timeout=60)
        for i in range(MAX_OPS_PER_WORKER):
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return
            kind = rng.choices(["small", "large", "mpu"], weights=self.weights)[0]
            key = f"r{self.no}/{kind}/w{wid}-{i:04d}"
            try:
                if kind == "small":
                    self.put(client, key, rng.randint(0, 64 * KIB))
                elif kind == "large":
                    self.put(client, key, rng.randint(1 * MIB, 8 * MIB))
                else:
                    self.multipart(client, key, rng.choice([2, 3]), rng.randint(1, PART))
                with self.ledger.lock:
                    self.ops_done += 1
            except Exception as e:  # noqa: BLE001
                if self.killed.is_set() or self.stop.is_set():
                    return  # the server is gone: expected
                with self.ledger.lock:
                    self.ledger.bad_responses.append(f"{key}: error before the kill: {e!r}")

    def put(self, client, key: str, size: int):
        body = body_for(key, size)
        exp = Expect("put", size, hashlib.sha256(body).hexdigest(), md5_etag(body))
        with self.ledger.lock:
            self.ledger.started[key] = exp
        resp = client.put_object(Bucket=BUCKET, Key=key, Body=body)
        etag = resp["ETag"]
        with self.ledger.lock:
            self.ledger.acked[key] = etag
            if etag != exp.etag:
                self.ledger.bad_responses.append(f"{key}: PUT returned ETag {etag}, expected {exp.etag}")

    def multipart(self, client, key: str, nparts: int, last: int):
        size = PART * (nparts - 1) + last
        body = body_for(key, size)
        exp = Expect("multipart", size, hashlib.sha256(body).hexdigest(), multipart_etag(body, PART))
        with self.ledger.lock:
            self.ledger.started[key] = exp
        uid = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        up = OpenUpload(key, uid, nparts)
        with self.ledger.lock:
            self.ledger.open_uploads[key] = up
        parts = []
        counted = False
        try:
            for n in range(1, nparts + 1):
                chunk = body[(n - 1) * PART: n * PART]
                r = client.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n, Body=chunk)
                entry = {"PartNumber": n, "ETag": r["ETag"]}
                cks = {k: v for k, v in r.items() if k.startswith("Checksum") and isinstance(v, str)}
                entry.update(cks)
                parts.append(entry)
                with self.ledger.lock:
                    up.acked_parts[n] = r["ETag"]
                    up.checksums[n] = cks
                    if r["ETag"] != md5_etag(chunk):
                        self.ledger.bad_responses.append(
                            f"{key} part {n}: UploadPart returned ETag {r['ETag']}, expected {md5_etag(chunk)}")
                    if not counted:
                        self.mpu_with_parts += 1
                        counted = True
            r = client.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                                 MultipartUpload={"Parts": parts})
            with self.ledger.lock:
                self.ledger.acked[key] = r["ETag"]
                self.ledger.open_uploads.pop(key, None)
                if r["ETag"] != exp.etag:
                    self.ledger.bad_responses.append(
                        f"{key}: CompleteMultipartUpload returned ETag {r['ETag']}, expected {exp.etag}")
        finally:
            if counted:
                with self.ledger.lock:
                    self.mpu_with_parts -= 1


# --------------------------------------------------------------------------- checks
def list_all(client) -> "dict[str, tuple[int, str]]":
    out: "dict[str, tuple[int, str]]" = {}
    token = None
    pages = 0
    while True:
        kw = {"Bucket": BUCKET, "MaxKeys": 250}
        if token:
            kw["ContinuationToken"] = token
        r = client.list_objects_v2(**kw)
        pages += 1
        for o in r.get("Contents", []):
            assert o["Key"] not in out, f"key listed twice: {o['Key']!r}"
            out[o["Key"]] = (o["Size"], o["ETag"])
        if not r.get("IsTruncated"):
            break
        token = r["NextContinuationToken"]
        assert pages < 10_000
    keys = list(out)
    assert keys == sorted(keys, key=lambda k: k.encode()), "listing is not in UTF-8 byte order"
    return out


def verify_object(client, key: str, exp: Expect, want_etag: "str | None") -> "str | None":
    """GET one visible object; returns a problem description or None."""
    try:
        r = client.get_object(Bucket=BUCKET, Key=key)
        data = r["Body"].read()
    except Exception as e:  # noqa: BLE001
        return f"{key}: listed but GET failed: {e!r}"
    if len(data) != exp.size or hashlib.sha256(data).hexdigest() != exp.sha256:
        return (f"{key}: content differs from the body sent ({len(data)} bytes read, "
                f"{exp.size} sent)")
    etag = r.get("ETag")
    if etag != exp.etag:
        return f"{key}: GET ETag {etag}, expected {exp.etag}"
    if want_etag is not None and etag != want_etag:
        return f"{key}: GET ETag {etag}, but the 200 at upload time said {want_etag}"
    return None


def verify_absent(client, key: str) -> "str | None":
    try:
        r = client.get_object(Bucket=BUCKET, Key=key)
        data = r["Body"].read()
        return f"{key}: not listed, but GET returned {len(data)} bytes"
    except ClientError as e:
        code = e.response["Error"]["Code"]
        if code in ("NoSuchKey", "404"):
            return None
        return f"{key}: not listed, GET answered {code} instead of NoSuchKey"


def verify_after_restart(server: KuraServer, ledger: Ledger, label: str) -> "list[str]":
    client = server.client(read_timeout=120)
    problems: "list[str]" = []
    listed = list_all(client)

    with ledger.lock:
        started = dict(ledger.started)
        acked = dict(ledger.acked)

    for key, etag in acked.items():
        if key not in listed:
            problems.append(f"{key}: acknowledged ({etag}) but not listed")
            continue
        size, letag = listed[key]
        if letag != etag:
            problems.append(f"{key}: listed with ETag {letag}, acknowledged with {etag}")
    for key, (size, _etag) in listed.items():
        if key not in started:
            problems.append(f"{key}: listed but never written by this test")
        elif size != started[key].size:
            problems.append(f"{key}: listed with size {size}, body sent had {started[key].size}")

    jobs = []
    with cf.ThreadPoolExecutor(4) as pool:
        for key in listed:
            if key in started:
                jobs.append(pool.submit(verify_object, client, key, started[key], acked.get(key)))
        for key in started:
            if key not in listed:
                jobs.append(pool.submit(verify_absent, client, key))
        for j in jobs:
            p = j.result()
            if p:
                problems.append(p)
    return [f"[{label}] {p}" for p in problems]


def resume_open_uploads(server: KuraServer, ledger: Ledger, label: str) -> "tuple[list[str], int]":
    """Multipart uploads cut by the crash: Complete either committed (object
    visible, checked elsewhere) or the upload is still open with every
    acknowledged part, and finishing it now yields the right object."""
    client = server.client(read_timeout=120)
    problems = []
    resumed = 0
    listed = list_all(client)
    with ledger.lock:
        uploads = list(ledger.open_uploads.values())
        ledger.open_uploads.clear()
    for up in uploads:
        exp = ledger.started[up.key]
        if up.key in listed:
            continue  # Complete was committed before the kill; verified with the objects
        try:
            r = client.list_parts(Bucket=BUCKET, Key=up.key, UploadId=up.upload_id)
        except ClientError as e:
            if up.acked_parts:
                problems.append(f"[{label}] {up.key}: upload with acknowledged parts "
                                f"{sorted(up.acked_parts)} lost after restart: "
                                f"{e.response['Error']['Code']}")
            continue
        have = {p["PartNumber"]: p["ETag"] for p in r.get("Parts", [])}
        for n, etag in up.acked_parts.items():
            if have.get(n) != etag:
                problems.append(f"[{label}] {up.key}: acknowledged part {n} ({etag}) "
                                f"listed as {have.get(n)} after restart")
        body = body_for(up.key, exp.size)
        parts = []
        try:
            for n in range(1, up.nparts + 1):
                chunk = body[(n - 1) * PART: n * PART]
                pr = client.upload_part(Bucket=BUCKET, Key=up.key, UploadId=up.upload_id,
                                        PartNumber=n, Body=chunk)
                entry = {"PartNumber": n, "ETag": pr["ETag"]}
                entry.update({k: v for k, v in pr.items() if k.startswith("Checksum") and isinstance(v, str)})
                parts.append(entry)
            cr = client.complete_multipart_upload(Bucket=BUCKET, Key=up.key, UploadId=up.upload_id,
                                                  MultipartUpload={"Parts": parts})
        except ClientError as e:
            problems.append(f"[{label}] {up.key}: finishing the interrupted upload failed: {e!r}")
            continue
        resumed += 1
        with ledger.lock:
            ledger.acked[up.key] = cr["ETag"]
        p = verify_object(client, up.key, exp, cr["ETag"])
        if p:
            problems.append(f"[{label}] resumed upload: {p}")
    # Nothing of ours may stay open.
    try:
        left = client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    except ClientError as e:
        problems.append(f"[{label}] ListMultipartUploads failed: {e!r}")
        left = []
    for u in left:
        try:
            client.abort_multipart_upload(Bucket=BUCKET, Key=u["Key"], UploadId=u["UploadId"])
        except ClientError as e:
            problems.append(f"[{label}] AbortMultipartUpload {u['Key']} failed: {e!r}")
    return problems, resumed


# ----------------------------------------------------------------------------- test
def test_kill9_under_put_load_loses_nothing_acknowledged(kura_bin):
    seed = int(os.environ.get("KURA_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    started_at = time.monotonic()
    server = KuraServer(kura_bin)
    ledger = Ledger()
    summary = []
    object_problems: "list[str]" = []
    upload_problems: "list[str]" = []
    try:
        server.start()
        server.client().create_bucket(Bucket=BUCKET)
        mpu_kills = 0
        for no, (name, delay, weights, wait_mpu) in enumerate(ROUNDS):
            delay += rng.uniform(0, 0.5)
            load = LoadRound(server, ledger, no, weights, seed, time_limit=delay + 30)
            load.start()
            time.sleep(delay)
            if wait_mpu:
                end = time.monotonic() + 15
                while load.mpu_with_parts == 0 and time.monotonic() < end:
                    time.sleep(0.02)
            with ledger.lock:
                mpu_in_flight = load.mpu_with_parts
            load.killed.set()
            server.kill9()
            load.stop.set()
            load.join()
            mpu_kills += mpu_in_flight > 0
            with ledger.lock:
                n_started = sum(1 for k in ledger.started if k.startswith(f"r{no}/"))
                n_acked = sum(1 for k in ledger.acked if k.startswith(f"r{no}/"))
            summary.append(f"round {no} ({name}): kill after {delay:.2f}s, {n_started} started, "
                           f"{n_acked} acknowledged, {mpu_in_flight} multipart uploads in flight")

            server.restart()
            label = f"after round {no} ({name})"
            object_problems += verify_after_restart(server, ledger, label)
            probs, resumed = resume_open_uploads(server, ledger, label)
            upload_problems += probs
            summary[-1] += f"; {resumed} interrupted multipart uploads finished after the restart"
            # The restarted server takes new writes.
            probe = f"r{no}/probe-after-restart"
            body = body_for(probe, 1000)
            ledger.started[probe] = Expect("put", 1000, hashlib.sha256(body).hexdigest(), md5_etag(body))
            ledger.acked[probe] = server.client().put_object(Bucket=BUCKET, Key=probe, Body=body)["ETag"]
            if object_problems or upload_problems:
                break

        # A graceful restart at the end changes nothing either.
        if not object_problems:
            server.restart()
            object_problems += verify_after_restart(server, ledger, "after a final graceful restart")
    finally:
        server.cleanup()

    elapsed = time.monotonic() - started_at
    report = "\n".join([f"seed={seed} (KURA_CRASH_SEED), {elapsed:.0f}s"] + summary)
    print(report)
    assert not object_problems, (f"{len(object_problems)} problems with objects after kill -9:\n"
                                 + "\n".join(object_problems[:40]) + "\n" + report)
    assert not upload_problems, (f"{len(upload_problems)} problems with interrupted multipart uploads:\n"
                                 + "\n".join(upload_problems[:40]) + "\n" + report)
    assert not ledger.bad_responses, ("wrong answers during the load:\n"
                                      + "\n".join(ledger.bad_responses[:40]) + "\n" + report)
    acked_total = len(ledger.acked)
    assert acked_total > 20, f"too few acknowledged writes to mean anything ({acked_total})\n{report}"
    assert mpu_kills >= 1, f"no kill happened while a multipart upload was in flight\n{report}"
