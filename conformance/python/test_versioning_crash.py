"""Crash safety of versions: kill -9 while writers overwrite and delete the same keys of a
versioned bucket, restart on the same data, and check that every acknowledged version
(and delete marker) is listed under its id and reads back byte-identical, that each key's
versions are listed in the order they were acknowledged, that nothing is listed that was
never sent, and that each key's current object is its newest version. Repeated at a few
moments; KURA_CRASH_SEED=<n> reproduces a run's random choices."""

from __future__ import annotations

import os
import random
import threading
import time

from botocore.exceptions import ClientError

from conftest import KuraServer

BUCKET = "versions-crash"
WRITERS = 6
KEYS_PER_WRITER = 3


def body_of(key: str, n: int) -> bytes:
    return (f"{key} version {n} ".encode() * (1 + n % 7))


class Writer(threading.Thread):
    """Writes versions of its own keys (so their order is its order) until stopped:
    mostly PUTs, some deletes (delete markers). Records what was acknowledged."""

    def __init__(self, server: KuraServer, wid: int, rng: random.Random, stop: threading.Event):
        super().__init__(daemon=True)
        self.client = server.client(retries={"max_attempts": 1}, connect_timeout=2,
                                    read_timeout=5)
        self.keys = [f"w{wid}/k{i}" for i in range(KEYS_PER_WRITER)]
        self.rng, self.stop = rng, stop
        # key -> [(version id, body or None for a delete marker)], in acknowledged order
        self.acked: "dict[str, list]" = {k: [] for k in self.keys}
        # key -> every body sent, acknowledged or not
        self.sent: "dict[str, set]" = {k: set() for k in self.keys}
        self.n = 0

    def run(self):
        while not self.stop.is_set():
            key = self.rng.choice(self.keys)
            self.n += 1
            try:
                if self.rng.random() < 0.15:
                    r = self.client.delete_object(Bucket=BUCKET, Key=key)
                    self.acked[key].append((r["VersionId"], None))
                else:
                    body = body_of(key, self.n)
                    self.sent[key].add(body)
                    r = self.client.put_object(Bucket=BUCKET, Key=key, Body=body)
                    self.acked[key].append((r["VersionId"], body))
            except Exception:  # noqa: BLE001 - the kill interrupts requests in any way
                if self.stop.is_set():
                    return


def listed_versions(client) -> "dict[str, list]":
    """key -> [(version id, is delete marker)] newest first, from ListObjectVersions."""
    out: "dict[str, list]" = {}
    kw: dict = {}
    while True:
        r = client.list_object_versions(Bucket=BUCKET, MaxKeys=200, **kw)
        entries = [(v, False) for v in r.get("Versions", [])] + \
                  [(m, True) for m in r.get("DeleteMarkers", [])]
        # Version ids sort by time: within a key, newest first is descending id order.
        for v, marker in sorted(entries, key=lambda e: (e[0]["Key"], e[0]["VersionId"]),
                                reverse=True):
            out.setdefault(v["Key"], []).append((v["VersionId"], marker))
        if not r["IsTruncated"]:
            return out
        kw = {"KeyMarker": r["NextKeyMarker"], "VersionIdMarker": r["NextVersionIdMarker"]}


def verify(server: KuraServer, writers: "list[Writer]", label: str) -> "list[str]":
    client = server.client()
    listed = listed_versions(client)
    problems = []
    for w in writers:
        for key in w.keys:
            acked = w.acked[key]
            versions = listed.get(key, [])
            ids = [vid for vid, _ in versions]
            # Every acknowledged version is there, in the order it was acknowledged.
            positions = [ids.index(vid) if vid in ids else None for vid, _ in acked]
            missing = [vid for (vid, _), p in zip(acked, positions) if p is None]
            if missing:
                problems.append(f"{label}: {key}: acknowledged versions missing: {missing}")
                continue
            if positions != sorted(positions, reverse=True):
                problems.append(f"{label}: {key}: versions out of order: {ids} vs {acked}")
            # Nothing listed that was never sent; acknowledged ones read back exactly.
            expected = dict(acked)
            for vid, marker in versions:
                if marker:
                    if vid in expected and expected[vid] is not None:
                        problems.append(f"{label}: {key}: {vid} listed as a delete marker")
                    continue
                got = client.get_object(Bucket=BUCKET, Key=key, VersionId=vid)["Body"].read()
                if vid in expected and got != expected[vid]:
                    problems.append(f"{label}: {key}: {vid} reads back different bytes")
                elif got not in w.sent[key]:
                    problems.append(f"{label}: {key}: {vid} holds bytes never sent")
            # The current object is the newest version, unless that is a delete marker.
            newest = versions[0] if versions else None
            try:
                current = client.get_object(Bucket=BUCKET, Key=key)["VersionId"]
            except ClientError as e:
                if e.response["Error"]["Code"] != "NoSuchKey":
                    raise
                current = None
            if newest and not newest[1] and current != newest[0]:
                problems.append(f"{label}: {key}: current {current}, newest {newest[0]}")
            if (not newest or newest[1]) and current is not None:
                problems.append(f"{label}: {key}: current {current} behind a delete marker")
    return problems


def test_kill9_during_versioned_overwrites_loses_no_version(kura_bin):
    seed = int(os.environ.get("KURA_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    server = KuraServer(kura_bin)
    problems: "list[str]" = []
    acked_total = 0
    try:
        server.start()
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        writers: "list[Writer]" = []
        for round_no in range(3):
            stop = threading.Event()
            fresh = [Writer(server, round_no * WRITERS + i, random.Random(rng.random()), stop)
                     for i in range(WRITERS)]
            for w in fresh:
                w.start()
            time.sleep(1.0 + rng.uniform(0, 1.5))
            server.kill9()
            stop.set()
            for w in fresh:
                w.join(timeout=30)
            writers += fresh
            server.restart()
            problems += verify(server, writers, f"after kill {round_no + 1} (seed {seed})")
            if problems:
                break
        acked_total = sum(len(v) for w in writers for v in w.acked.values())
    finally:
        server.cleanup()
    assert not problems, "\n".join(problems[:40])
    assert acked_total > 50, f"too few acknowledged writes to mean anything ({acked_total})"
