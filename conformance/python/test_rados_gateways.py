"""Several gateways over one Ceph RADOS cluster (issue 11, section 4): collected only
with KURA_TEST_BACKEND=rados, against the throw-away cluster scripts/ceph-cluster
started (one monitor, three OSDs each in a rack of its own, pools of size 3 / min_size 2
on a by-rack rule, short heartbeat grace).

  * test_gateways_serve_the_same_buckets: what one gateway writes, another reads, lists
    and deletes.
  * test_concurrent_conditional_writes_have_one_winner: If-None-Match: * writes of the
    same keys through both gateways at once: exactly one wins each key.
  * test_a_revoked_key_is_refused_everywhere_within_a_second.
  * test_quota_holds_across_gateways: writes through both gateways never take a bucket
    past its quota.
  * test_a_lost_rack_under_load_loses_nothing: one OSD killed (-9) under load: writes
    keep succeeding (SDK retries allowed), every acknowledged object reads back intact.
  * test_two_lost_racks_fail_fast_and_recover: two OSDs killed: requests fail within the
    deadline with 503, /healthz stays 200 and fast, /readyz turns 503; one OSD back:
    service resumes by itself; nothing acknowledged is lost, access log records included.
  * test_reshard_under_load_from_two_gateways: a reshard while both gateways write, with
    /healthz polled from another process: no write fails, probes p99 <= 20 ms, the
    listing is exact.

Every test that stops OSDs starts them again and waits until the pools serve before it
ends, whatever happened.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import requests
from cluster import (  # noqa: F401 (gateways, racks: fixtures)
    Load, admin, filled_bucket, gateways, on_each, racks, retrying, wait_status)
from conftest import unique_bucket_name
from loadtools import Prober, RawS3, percentile
from test_access_log import delivered, delivery_policy, owner_id
from test_access_log import enable as enable_logging

pytestmark = pytest.mark.rados_only

def test_gateways_serve_the_same_buckets(gateways):
    a, b = gateways(2)
    sa, sb = a.client(), b.client()
    name = unique_bucket_name()
    sa.create_bucket(Bucket=name)
    data = os.urandom(5 * 1024 * 1024 + 17)
    sa.put_object(Bucket=name, Key="dir/one", Body=data)
    sa.put_object(Bucket=name, Key="two", Body=b"2")
    assert sb.get_object(Bucket=name, Key="dir/one")["Body"].read() == data
    listed = sb.list_objects_v2(Bucket=name, Delimiter="/")
    assert [o["Key"] for o in listed.get("Contents", [])] == ["two"]
    assert [p["Prefix"] for p in listed.get("CommonPrefixes", [])] == ["dir/"]
    assert name in [x["Name"] for x in sb.list_buckets()["Buckets"]]
    sb.delete_object(Bucket=name, Key="dir/one")
    sb.delete_object(Bucket=name, Key="two")
    assert sa.list_objects_v2(Bucket=name)["KeyCount"] == 0
    sb.delete_bucket(Bucket=name)
    with pytest.raises(sa.exceptions.NoSuchBucket):
        sa.list_objects_v2(Bucket=name)


def test_concurrent_conditional_writes_have_one_winner(gateways):
    a, b = gateways(2)
    name = unique_bucket_name()
    a.client().create_bucket(Bucket=name)
    keys = [f"k{i}" for i in range(25)]
    outcomes: "dict[str, list[tuple[str, int]]]" = {k: [] for k in keys}
    lock = threading.Lock()
    start = threading.Barrier(8)

    def writer(server, tag: str) -> None:
        start.wait()
        for key in keys:
            r = server.signed_request("PUT", f"/{name}/{key}", body=tag.encode(),
                                      headers={"If-None-Match": "*"})
            with lock:
                outcomes[key].append((tag, r.status_code))

    on_each({"a": a, "b": b}, writer)
    client = b.client()
    for key, results in outcomes.items():
        winners = [tag for tag, status in results if status == 200]
        assert len(winners) == 1, f"{key}: {results}"
        assert all(status in (200, 412) for _, status in results), f"{key}: {results}"
        assert client.get_object(Bucket=name, Key=key)["Body"].read() == winners[0].encode()


def test_concurrent_conditional_deletes_have_one_winner(gateways):
    """Deletes of one version by its ETag through two gateways, in a versioned bucket: the
    first hides it behind a delete marker, which has no ETag, so exactly one wins."""
    a, b = gateways(2)
    name = unique_bucket_name()
    a.client().create_bucket(Bucket=name)
    a.client().put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    keys = [f"k{i}" for i in range(25)]
    etags = {k: a.client().put_object(Bucket=name, Key=k, Body=k.encode())["ETag"] for k in keys}
    outcomes: "dict[str, list[tuple[str, int]]]" = {k: [] for k in keys}
    lock = threading.Lock()
    start = threading.Barrier(8)

    def deleter(server, tag: str) -> None:
        start.wait()
        for key in keys:
            r = server.signed_request("DELETE", f"/{name}/{key}", headers={"If-Match": etags[key]})
            with lock:
                outcomes[key].append((tag, r.status_code))

    on_each({"a": a, "b": b}, deleter)
    client = b.client()
    for key, results in outcomes.items():
        assert [status for _, status in results].count(204) == 1, f"{key}: {results}"
        assert all(status in (204, 412) for _, status in results), f"{key}: {results}"
    listed = client.list_object_versions(Bucket=name)
    for kind in ("Versions", "DeleteMarkers"):
        assert sorted(v["Key"] for v in listed[kind]) == sorted(keys), kind


def test_a_revoked_key_is_refused_everywhere_within_a_second(gateways):
    a, b, c = gateways(3)
    user = f"u-{uuid.uuid4().hex[:10]}"
    admin(a, "POST", "/users", {"name": user})
    key = admin(a, "POST", f"/users/{user}/keys")
    clients = [srv.client(access_key=key["access_key"], secret_key=key["secret_key"])
               for srv in (b, c)]
    for client in clients:
        client.list_buckets()
    admin(a, "DELETE", f"/keys/{key['access_key']}")
    revoked = time.monotonic()
    for client in clients:
        while True:
            try:
                client.list_buckets()
            except client.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] == "InvalidAccessKeyId"
                break
            assert time.monotonic() - revoked < 1.0, "a revoked key still works after 1 s"
            time.sleep(0.02)


def test_quota_holds_across_gateways(gateways):
    a, b = gateways(2)
    name = unique_bucket_name()
    a.client().create_bucket(Bucket=name)
    # Several shards: writes landing in different ones at once must see each other.
    assert admin(a, "GET", f"/buckets/{name}/stats")["shards"] > 1
    admin(a, "PUT", f"/buckets/{name}/quota", {"max_objects": 30})
    accepted: "list[str]" = []
    refused: "list[int]" = []
    lock = threading.Lock()

    def writer(server, tag: str) -> None:
        for i in range(10):
            key = f"{tag}-{i}"
            r = server.signed_request("PUT", f"/{name}/{key}", body=b"x")
            with lock:
                (accepted.append(key) if r.status_code == 200 else refused.append(r.status_code))

    on_each({"a": a, "b": b}, writer)
    assert len(accepted) == 30, f"{len(accepted)} accepted, refusals {set(refused)}"
    assert set(refused) == {403}
    listed = b.client().list_objects_v2(Bucket=name)
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(accepted)
    usage = admin(b, "GET", "/usage")
    mine = [u for u in usage["buckets"] if u["name"] == name]
    assert mine and mine[0]["objects"] == 30


def test_a_lost_rack_under_load_loses_nothing(gateways, racks):
    a, b = gateways(2)
    name = unique_bucket_name()
    a.client().create_bucket(Bucket=name)
    with Load([a, b], name) as load:
        time.sleep(4)
        racks.lose(2)
        time.sleep(15)
        during = len(load.acked)
        racks.restore(2)
        time.sleep(4)
    assert not load.failed, f"writes failed despite retries: {load.failed[:5]}"
    assert during > 20 and len(load.acked) > during, "writes went on with a rack lost"
    load.verify(b)


def test_two_lost_racks_fail_fast_and_recover(gateways, racks):
    a, = gateways(1, extra_args=["--ceph-op-timeout", "3", "--access-log-interval-seconds", "5"])
    client = a.client(retries={"max_attempts": 1}, read_timeout=30)
    name, logs = unique_bucket_name(), unique_bucket_name("logs")
    client.create_bucket(Bucket=name)
    # Access logs of the bucket: the records of the writes before the racks are lost fall
    # due (5 s) while the cluster is down, and are delivered once it is back.
    client.create_bucket(Bucket=logs)
    client.put_bucket_policy(
        Bucket=logs, Policy=delivery_policy(logs, "log/", name, owner_id(client)))
    enable_logging(client, name, logs)
    before = {f"before/{i}": os.urandom(1000) for i in range(20)}
    for key, body in before.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    racks.lose(1)
    racks.lose(2)
    # Writes fail within the deadline (a few op timeouts), and say so with 503.
    failed_fast = 0
    deadline = time.monotonic() + 60
    while failed_fast < 3:
        assert time.monotonic() < deadline, "requests did not start failing"
        started = time.monotonic()
        try:
            client.put_object(Bucket=name, Key=f"during/{failed_fast}", Body=b"x")
            continue
        except client.exceptions.ClientError as e:
            took = time.monotonic() - started
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503, e.response
            assert took < 15, f"a failing request took {took:.1f} s"
            failed_fast += 1
    # The ops listener stays fast and live; readiness says the storage cannot serve.
    for _ in range(10):
        started = time.monotonic()
        assert requests.get(a.ops_endpoint + "/healthz", timeout=2).status_code == 200
        assert time.monotonic() - started < 0.2
    wait_status(a.ops_endpoint + "/readyz", 503, 30)
    racks.restore(1)
    wait_status(a.ops_endpoint + "/readyz", 200, 120)
    retrying(a).put_object(Bucket=name, Key="after", Body=b"back")
    for key, body in before.items():
        assert client.get_object(Bucket=name, Key=key)["Body"].read() == body
    _, records = delivered(client, logs, "log/", len(before) + 1, timeout=60)
    status = {(r["key"], r["status"]) for r in records if r["operation"] == "REST.PUT.OBJECT"}
    assert {(key, "200") for key in before} | {("after", "200")} <= status, records


def test_reshard_under_load_from_two_gateways(gateways, tmp_path):
    a, b = gateways(2)
    keys = [f"pre/{i:05d}" for i in range(3000)]
    name = filled_bucket(a, keys)
    failures: list = []
    prober = Prober(b.ops_port, tmp_path, interval=0.02)
    written: "list[str]" = []
    stop = threading.Event()

    def writer(server, tag: str) -> None:
        raw = RawS3(server)
        n = 0
        while not stop.is_set():
            key = f"during/{tag}/{n:05d}"
            status, body = raw.request("PUT", f"/{name}/{key}")
            if status == 200:
                written.append(key)
            else:
                failures.append((key, status, body[:200]))
            n += 1

    threads = [threading.Thread(target=writer, args=(srv, f"{label}{i}"))
               for label, srv in (("a", a), ("b", b)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        admin(a, "POST", f"/buckets/{name}/reshard", {"shards": 16})
        deadline = time.monotonic() + 300
        while admin(a, "GET", f"/buckets/{name}/stats")["reshard"] is not None:
            assert time.monotonic() < deadline, "the reshard did not finish"
            time.sleep(0.5)
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join()
        probes = prober.finish()
    assert not failures, f"writes failed during the reshard: {failures[:5]}"
    stats = admin(b, "GET", f"/buckets/{name}/stats")
    assert stats["shards"] == 16
    latencies = [p[1] for p in probes if p[2] == 200]
    assert len(latencies) == len(probes), "every probe answered 200"
    assert len(probes) >= 100, f"too few probes for a p99: {len(probes)}"
    p99 = percentile(latencies, 99) * 1000
    print(f"\n[rados reshard under load] writes {len(written)}, probes {len(probes)}, "
          f"p99 {p99:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    assert p99 <= 20, f"/healthz p99 {p99:.1f} ms during the reshard"
    listed = set()
    for page in b.client().get_paginator("list_objects_v2").paginate(Bucket=name):
        listed.update(o["Key"] for o in page.get("Contents", []))
    assert listed == set(keys) | set(written)
    assert stats["objects"] == len(listed)

