"""Online resharding end to end (issue 4).

  * test_auto_reshard_under_load: a server with --max-objects-per-shard 20000
    is filled with 100,000 keys by concurrent PUTs while other threads GET and
    LIST and a separate process probes /healthz every 100 ms. The automatic
    reshard must start (soon after the threshold is crossed) and finish; every
    probe answers 200 within 1 s with p99 <= 20 ms; no S3 request fails; no
    listing taken during the load misses an acknowledged key; the final
    listing is exactly the set of keys written.
  * test_reshard_resumes_after_kill9: a manual reshard (admin API) of a
    bucket of 20,000 keys, with writes and deletes going on, is interrupted by
    kill -9; after the restart the reshard is still there with its progress
    (not restarted from 0), finishes, and the listing is exact.
  * test_admin_cli_reshard_and_stats: `kura admin bucket reshard --wait` and
    `kura admin bucket stats [--json]` against a live server.

The data directories live on tmpfs (/dev/shm) when there is one: what is
measured here is the reshard and the probes, not the disk's fsync rate, and
100,000 fsync'd PUTs would take minutes on a slow disk. Measured figures are
printed (run with -s to see them) and written as JSON to
$KURA_RESHARD_REPORT when that is set.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import INITIAL_SHARDS
from loadtools import Prober, RawS3, fill, list_all, percentile

API = "/_kura/admin/v1"
# The most versions one reshard step can add to `copied`: a step reads RESHARD_STEP_KEYS (500)
# times 3 index entries (index/src/pacing.rs, versions.rs: a key's current entry, head and
# version sort apart, so a step may read versions only), twice that once the reshard works
# harder (MAX_STEP_DOUBLINGS). A kill -9 may take the last step, whose place was not yet
# flushed when the progress was read.
MAX_STEP_VERSIONS = 2 * 500 * 3


def reshard_durations(log_path: Path) -> "list[dict]":
    """Each reshard the server logged: objects, shard counts, seconds."""
    out: "list[dict]" = []
    started = None
    for line in log_path.read_text(errors="replace").splitlines():
        if "reshard started" not in line and "reshard finished" not in line:
            continue
        at = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
        if "reshard started" in line:
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            started = (at, fields)
        elif started is not None:
            at0, fields = started
            out.append({"objects": int(fields.get("objects", "0")), "from": fields.get("from"),
                        "to": fields.get("to"), "seconds": round(at - at0, 2)})
            started = None
    return out


def shard_of(key: str, shards: int) -> int:
    """The index's shard choice (FNV-1a 64 of the key's bytes, modulo the count)."""
    h = 0xCBF29CE484222325
    for b in key.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % shards


def entries_per_shard(keys, shards: int) -> "list[int]":
    counts = [0] * shards
    for key in keys:
        counts[shard_of(key, shards)] += 1
    return counts


def stats(server, bucket: str) -> dict:
    r = server.signed_request("GET", f"{API}/buckets/{bucket}/stats", timeout=10)
    assert r.status_code == 200, f"stats: {r.status_code} {r.text}"
    return r.json()


def report(name: str, figures: dict) -> None:
    print(f"\n[{name}] " + json.dumps(figures, sort_keys=True))
    path = os.environ.get("KURA_RESHARD_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"test": name, **figures}, sort_keys=True) + "\n")


@pytest.fixture
def shm_base():
    """A base directory on tmpfs where there is one; removed afterwards."""
    parent = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    base = Path(tempfile.mkdtemp(prefix="kura-reshard-", dir=parent))
    yield base
    if not os.environ.get("KURA_KEEP_DATA"):
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------
# (a) automatic reshard of 100,000 keys under load
# --------------------------------------------------------------------------
N_KEYS = 110_000
THRESHOLD = 25_000
PREFIXES = [f"d{i}/" for i in range(10)]


# 110,000 PUTs measure the local index; on RADOS a smaller reshard under load from two
# gateways is test_rados_gateways.py's.
@pytest.mark.local_only
def test_auto_reshard_under_load(shm_base, make_server):
    server = make_server(base_dir=shm_base, extra_args=["--max-objects-per-shard", str(THRESHOLD)])
    client = server.client()
    bucket = "reshard-load"
    client.create_bucket(Bucket=bucket)
    raw = RawS3(server)
    rng = random.Random(4)
    keys = [f"{PREFIXES[i % 10]}k{i:06d}-{rng.randrange(1 << 20):05x}" for i in range(N_KEYS)]
    rng.shuffle(keys)

    failures: list = []  # every failed S3 request
    listing_errors: list = []  # listings that missed an acknowledged key
    acked: "dict[str, list[str]]" = {p: [] for p in PREFIXES}  # append-only, per prefix
    acked_count = [0]
    lock = threading.Lock()
    done = threading.Event()
    stop_readers = threading.Event()
    stats_log: "list[tuple[float, int, int, dict | None]]" = []  # (t, shards, objects, reshard)
    crossed_at: "list[float]" = []

    def writer(i: int, threads: int) -> None:
        for key in keys[i::threads]:
            try:
                status, body = raw.request("PUT", f"/{bucket}/{quote(key, safe='/')}")
            except Exception as e:  # noqa: BLE001
                failures.append(("PUT", key, repr(e)))
                continue
            if status != 200:
                failures.append(("PUT", key, status, body[:200]))
                continue
            with lock:
                acked[key[:3]].append(key)
                acked_count[0] += 1
                if acked_count[0] == THRESHOLD + 1:
                    crossed_at.append(time.monotonic())

    def reader(seed: int) -> None:
        r = random.Random(seed)
        while not stop_readers.wait(0.01):
            prefix = r.choice(PREFIXES)
            with lock:
                known = len(acked[prefix])
                snapshot = acked[prefix][:known]
            try:
                if snapshot and r.random() < 0.5:
                    key = r.choice(snapshot)
                    status, body = raw.request("GET", f"/{bucket}/{quote(key, safe='/')}")
                    if status != 200:
                        failures.append(("GET", key, status, body[:200]))
                    continue
                start = r.choice(snapshot) if snapshot and r.random() < 0.7 else None
                status, listed, truncated = raw.list_page(bucket, prefix, start, 500)
            except Exception as e:  # noqa: BLE001
                failures.append(("GET/LIST", prefix, repr(e)))
                continue
            if status != 200:
                failures.append(("LIST", prefix, status))
                continue
            if listed != sorted(set(listed)):
                listing_errors.append(("unsorted or repeated", prefix, start))
            lo = start or ""
            hi = listed[-1] if truncated else None
            present = set(listed)
            missing = [k for k in snapshot if k > lo and (hi is None or k <= hi) and k not in present]
            if missing:
                listing_errors.append(("missed acknowledged keys", prefix, start, missing[:5], len(missing)))

    def watch() -> None:
        # Often until the first reshard is seen (to time its detection), then
        # every 2 s: enough to follow the progress.
        while not done.is_set():
            try:
                s = stats(server, bucket)
                stats_log.append((time.monotonic(), s["shards"], s["objects"], s["reshard"]))
            except Exception as e:  # noqa: BLE001
                failures.append(("stats", repr(e)))
            seen = any(r is not None or shards > 1 for (_, shards, _, r) in stats_log)
            done.wait(2.0 if seen else 0.25)

    prober = Prober(server.ops_port, shm_base)
    t0 = time.monotonic()
    threads = [threading.Thread(target=writer, args=(i, 12)) for i in range(12)]
    readers = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    watcher = threading.Thread(target=watch)
    for t in threads + readers + [watcher]:
        t.start()
    try:
        for t in threads:
            t.join()
        fill_s = time.monotonic() - t0
        # The load (reads and listings) goes on until every reshard is over.
        deadline = time.monotonic() + 120
        final = None
        while time.monotonic() < deadline:
            final = stats(server, bucket)
            if final["reshard"] is None and final["objects"] / final["shards"] <= THRESHOLD:
                break
            time.sleep(0.2)
    finally:
        stop_readers.set()
        for t in readers:
            t.join()
        done.set()
        watcher.join()
        probes = prober.finish()
    finished_at = time.monotonic()

    assert not failures, f"{len(failures)} S3 requests failed, e.g. {failures[:5]}"
    assert not listing_errors, f"{len(listing_errors)} listings were wrong, e.g. {listing_errors[:3]}"
    assert final is not None and final["reshard"] is None, f"reshard not finished after 120 s: {final}"
    assert final["shards"] > 1 and final["objects"] / final["shards"] <= THRESHOLD, final
    assert final["objects"] == N_KEYS, final
    assert sum(final["objects_per_shard"]) == N_KEYS, final

    # The reshard started on its own, soon after the threshold was crossed.
    running = [t for (t, _, _, r) in stats_log if r is not None]
    grown = [t for (t, shards, _, _) in stats_log if shards > 1]
    assert running or grown, "no reshard was seen while the bucket grew"
    assert crossed_at, "the threshold was never crossed?"
    first_seen = min(running + grown)
    detect_s = first_seen - crossed_at[0]
    assert detect_s <= 2.0, f"the reshard was seen {detect_s:.2f}s after the threshold was crossed"
    reshards = reshard_durations(server.log_path)
    assert reshards, "no reshard in the server log"

    listed = list_all(client, bucket)
    assert len(listed) == len(set(listed)), "the final listing repeats keys"
    assert listed == sorted(keys), (
        f"final listing differs: {len(set(keys) - set(listed))} missing, "
        f"{len(set(listed) - set(keys))} unexpected")

    latencies = [lat for (_, lat, status) in probes if status == 200]
    bad = [p for p in probes if p[2] != 200 or p[1] >= 1.0]
    p99 = percentile(latencies, 99) if latencies else float("inf")
    figures = {
        "keys": N_KEYS, "fill_s": round(fill_s, 1), "puts_per_s": round(N_KEYS / fill_s),
        "detect_s": round(detect_s, 2), "reshards": reshards,
        "total_s": round(finished_at - t0, 1), "final_shards": final["shards"],
        "shard_counts_seen": sorted({shards for (_, shards, _, _) in stats_log}),
        "probes": len(probes), "probe_p50_ms": round(percentile(latencies, 50) * 1000, 2) if latencies else None,
        "probe_p99_ms": round(p99 * 1000, 2), "probe_max_ms": round(max(latencies) * 1000, 2) if latencies else None,
    }
    report("auto_reshard_under_load", figures)
    assert len(probes) >= 10 * (finished_at - t0) * 0.8, f"too few probes: {len(probes)}"
    assert not bad, f"{len(bad)} probes failed or took >= 1 s: {bad[:5]}"
    assert p99 <= 0.020, f"/healthz p99 {p99 * 1000:.1f} ms > 20 ms ({figures})"


# --------------------------------------------------------------------------
# (b) kill -9 mid-reshard: the reshard resumes from its checkpoint
# --------------------------------------------------------------------------
def test_reshard_resumes_after_kill9(shm_base, make_server):
    server = make_server(base_dir=shm_base)
    client = server.client()
    bucket = "reshard-kill"
    client.create_bucket(Bucket=bucket)
    raw = RawS3(server)
    keys = [f"k/{i % 7}/{i:06d}" for i in range(20_000)]
    failures: list = []
    fill(raw, bucket, keys, 12, failures)
    assert not failures, failures[:5]
    expected = set(keys)

    before = stats(server, bucket)
    assert before["shards"] == INITIAL_SHARDS and before["reshard"] is None, before
    r = server.signed_request("POST", f"{API}/buckets/{bucket}/reshard", body=b'{"shards": 16}',
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 202, f"{r.status_code} {r.text}"
    assert r.json()["reshard"] is not None or r.json()["shards"] == 16, r.json()
    # A second reshard is refused while this one runs.
    again = server.signed_request("POST", f"{API}/buckets/{bucket}/reshard", body=b'{"shards": 4}')
    assert again.status_code == 409 and again.json().get("code") == "ReshardInProgress", again.text

    # Writes and deletes go on while the reshard runs; kill once some steps are done.
    rng = random.Random(7)
    n = 0
    deadline = time.monotonic() + 60
    last = None
    while time.monotonic() < deadline:
        for _ in range(5):
            key = f"new/{n:05d}"
            n += 1
            status, body = raw.request("PUT", f"/{bucket}/{key}")
            assert status == 200, (status, body)
            expected.add(key)
            gone = rng.choice(keys)
            status, body = raw.request("DELETE", f"/{bucket}/{gone}")
            assert status == 204, (status, body)
            expected.discard(gone)
        last = stats(server, bucket)
        assert last["reshard"] is not None, f"the reshard finished before it could be interrupted: {last}"
        if last["reshard"]["copied"] >= 2 * MAX_STEP_VERSIONS:
            break
    assert last is not None and last["reshard"]["copied"] >= 2 * MAX_STEP_VERSIONS, last
    copied_before = last["reshard"]["copied"]
    server.kill9()

    server.restart()
    after = stats(server, bucket)
    assert after["reshard"] is not None, f"the reshard is gone after the restart: {after}"
    assert after["reshard"]["target_shards"] == 16, after
    # The per-shard counters change in the same batch as the entries: exact after kill -9.
    assert after["objects_per_shard"] == entries_per_shard(expected, INITIAL_SHARDS), after
    # A reshard started over would show none: its first steps read current entries.
    assert after["reshard"]["copied"] >= copied_before - MAX_STEP_VERSIONS, (
        f"the reshard restarted: copied {after['reshard']['copied']} after the restart, "
        f"{copied_before} before the kill")

    # Keep writing after the restart too (new connections), then wait for the end.
    raw = RawS3(server)
    for i in range(50):
        key = f"after/{i:03d}"
        status, _ = raw.request("PUT", f"/{bucket}/{key}")
        assert status == 200
        expected.add(key)
    t0 = time.monotonic()
    final = after
    while final["reshard"] is not None and time.monotonic() - t0 < 60:
        time.sleep(0.1)
        final = stats(server, bucket)
    assert final["reshard"] is None, f"reshard not finished 60 s after the restart: {final}"
    assert final["shards"] == 16 and len(final["objects_per_shard"]) == 16, final
    assert final["objects"] == len(expected), final
    assert final["objects_per_shard"] == entries_per_shard(expected, 16), final
    listed = list_all(client, bucket)
    assert listed == sorted(expected), (
        f"listing differs: {len(expected - set(listed))} missing, {len(set(listed) - expected)} unexpected, "
        f"{len(listed) - len(set(listed))} repeated")
    report("reshard_resumes_after_kill9", {
        "copied_before_kill": copied_before, "copied_after_restart": after["reshard"]["copied"],
        "finish_after_restart_s": round(time.monotonic() - t0, 2), "objects": final["objects"]})


# --------------------------------------------------------------------------
# (c) the CLI
# --------------------------------------------------------------------------
def test_admin_cli_reshard_and_stats(shm_base, make_server, kura_bin):
    server = make_server(base_dir=shm_base)
    client = server.client()
    bucket = "reshard-cli"
    client.create_bucket(Bucket=bucket)
    raw = RawS3(server)
    failures: list = []
    fill(raw, bucket, [f"c/{i:05d}" for i in range(3000)], 8, failures)
    assert not failures, failures[:5]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KURA_"))}
    env.update({"KURA_ADMIN_ENDPOINT": server.endpoint, "KURA_ADMIN_ACCESS_KEY": server.access_key,
                "KURA_ADMIN_SECRET_KEY": server.secret_key})

    def kura(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(kura_bin), "admin", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    out = kura("bucket", "stats", bucket)
    assert out.returncode == 0, out.stderr
    assert f"shards:    {INITIAL_SHARDS}\n" in out.stdout and "objects:   3000\n" in out.stdout, out.stdout
    assert "reshard:   none\n" in out.stdout, out.stdout

    out = kura("bucket", "reshard", bucket, "--shards", "6", "--wait")
    assert out.returncode == 0, out.stderr
    assert "shards:    6\n" in out.stdout and "reshard:   none\n" in out.stdout, out.stdout
    assert f"resharded {bucket}: 6 shards, 3000 objects" in out.stderr, out.stderr
    assert "\x1b[" not in out.stderr, "no terminal control codes when stderr is not a terminal"

    out = kura("--json", "bucket", "stats", bucket)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["shards"] == 6 and answer["reshard"] is None, answer
    assert len(answer["objects_per_shard"]) == 6 and sum(answer["objects_per_shard"]) == 3000, answer

    # The copy ran as steps of the reshard worker, on the background runner.
    out = kura("--json", "workers")
    assert out.returncode == 0, out.stderr
    workers = {w["name"]: w for w in json.loads(out.stdout)["workers"]}
    assert set(workers) == {"gc", "reshard", "lifecycle", "access-log"}, workers
    assert workers["reshard"]["items"] >= 3000, workers["reshard"]
    assert workers["reshard"]["busy"] is False and workers["reshard"]["failures"] == 0, workers
    assert all(w["steps"] >= 1 and w["last_step"] for w in workers.values()), workers
    out = kura("workers")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["WORKER", "STATE", "ITEMS"], out.stdout
    assert any(line.split()[:2] == ["reshard", "idle"] for line in lines[1:]), out.stdout

    out = kura("bucket", "reshard", bucket, "--shards", "0")
    assert out.returncode == 2, (out.returncode, out.stderr)
    out = kura("bucket", "stats", "no-such-bucket-xyz")
    assert out.returncode == 1 and "NoSuchBucket" in out.stderr, (out.returncode, out.stderr)
    assert list_all(client, bucket) == [f"c/{i:05d}" for i in range(3000)]
