"""Whole-cluster faults on RADOS (issue 11, section 4): collected only with
KURA_TEST_BACKEND=rados, against the cluster scripts/ceph-cluster started.

  * test_everything_killed_at_once_loses_nothing: every OSD, the monitor and both
    loaded gateways are killed (-9) at once under write load, and started again: every
    acknowledged object is listed and byte-identical, and nothing partial is visible
    (every listed object reads back whole, as its writer wrote it). A third gateway
    lives through the outage untouched: it turns unready, and ready and serving again by
    itself once the cluster is back (librados keeps the OSD map from before the restart,
    whose addresses are all gone, unless the gateway fetches the new one). A fourth,
    sent SIGTERM while the cluster is down, exits within 30 s.
  * test_a_gateway_killed_mid_reshard_and_mid_upload: the gateway running a reshard is
    killed (-9) with a part upload half streamed; another gateway takes the reshard over
    once the lease lapses and finishes it, the listing is exact, and the stripes of the
    half-written part are reclaimed.
  * test_bit_rot_is_never_served_and_heals_after_a_deep_scrub: one bit of the primary
    copy of an object's stripe flipped behind Kura's and Ceph's backs: a ranged GET
    (a partial read, which Ceph does not check against its whole-object digest) is
    refused with 500 InternalError rather than served, and counted in
    kura_blob_checksum_failures_total; after a deep scrub with repair on the primary,
    the same GET serves the right bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import CEPH_CONF, unique_bucket_name
from botocore.exceptions import ClientError
from cluster import (  # noqa: F401 (gateways: a fixture)
    Load, admin, ceph_cluster, damage_on_osd, deep_scrub, filled_bucket, gateways, placement,
    pools_serve, retrying)

pytestmark = pytest.mark.rados_only


def test_everything_killed_at_once_loses_nothing(gateways):
    a, b, survivor, leaving = gateways(4)
    name = unique_bucket_name()
    a.client().create_bucket(Bucket=name)
    with Load([a, b], name, threads_per_gateway=4, size=16 * 1024) as load:
        time.sleep(6)
        # The power cut: the cluster and both gateways at the same instant.
        crash = subprocess.Popen(["bash", str(Path(__file__).parents[2] / "scripts/ceph-cluster"),
                                  "crash", str(Path(CEPH_CONF).parent)])
        a.kill9()
        b.kill9()
        crash.wait(timeout=60)
    assert crash.returncode == 0
    acked = len(load.acked)
    assert acked > 20, f"only {acked} writes were acknowledged before the crash"
    down = time.monotonic()
    while ready(survivor):
        assert time.monotonic() < down + 15, "a gateway whose cluster is down says it is ready"
        time.sleep(0.5)
    # A gateway told to stop while its cluster is down stops within Kubernetes' default
    # grace period (its librados calls may wait for the cluster for as long as it is gone).
    leaving.proc.send_signal(signal.SIGTERM)
    try:
        leaving.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("a gateway whose cluster is down did not stop within 30 s of SIGTERM\n"
                    + leaving.log_tail())
    ceph_cluster("start")
    deadline = time.monotonic() + 180
    while not pools_serve():
        assert time.monotonic() < deadline, "the cluster did not come back"
        time.sleep(2)
    back = time.monotonic()
    while not ready(survivor):
        assert time.monotonic() < back + 30, (
            "the gateway that lived through the outage is still not ready 30 s after the "
            "cluster came back\n" + survivor.log_tail())
        time.sleep(0.5)
    print(f"\n[power cut] the surviving gateway was ready {time.monotonic() - back:.1f} s "
          "after the cluster")
    some_key = next(iter(load.acked))
    assert retrying(survivor).get_object(Bucket=name, Key=some_key)["Body"].read()
    a.start()
    b.start()
    load.failed.clear()  # writes cut by the crash were never acknowledged
    load.verify(a)
    client = retrying(b)
    listed = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        listed += [o["Key"] for o in page.get("Contents", [])]
    for key in listed:
        body = client.get_object(Bucket=name, Key=key)["Body"].read()
        expected = hashlib.sha256(key.encode()).digest() * (load.size // 32)
        assert body == expected, f"{key} is listed but not whole"
    print(f"\n[power cut] {acked} acknowledged, {len(listed)} listed after the restart")


def ready(server) -> bool:
    try:
        return requests.get(server.ops_endpoint + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def data_objects(namespace: str) -> "set[str]":
    out = subprocess.run(["rados", "-c", CEPH_CONF, "-p", "kura-data", "-N", namespace, "ls"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return set(out.split())


def test_a_gateway_killed_mid_reshard_and_mid_upload(make_server, tmp_path):
    # The half-written part's data is collected once its intent is this old; the kill
    # must come sooner, within the upload deadline (half of it).
    abandoned = 40
    gc = ["--gc-abandoned-seconds", str(abandoned), "--gc-grace-seconds", "3"]
    a = make_server(extra_args=gc)
    keys = [f"k/{i:05d}" for i in range(6000)]
    name = filled_bucket(a, keys)
    client = a.client()
    upload = client.create_multipart_upload(Bucket=name, Key="big")["UploadId"]
    client.upload_part(Bucket=name, Key="big", UploadId=upload, PartNumber=1,
                       Body=b"1" * (5 * 1024 * 1024))
    before = data_objects(a.namespace)

    # A second part, streamed slowly enough that the kill finds it half written.
    def slowly():
        for _ in range(abandoned):
            yield b"2" * (512 * 1024)
            time.sleep(0.5)

    def half_part() -> None:
        try:
            a.signed_request("PUT", f"/{name}/big", query={"partNumber": "2", "uploadId": upload},
                             content_sha256="UNSIGNED-PAYLOAD", body=lambda _: slowly(),
                             timeout=60)
        except requests.RequestException:
            pass  # the gateway was killed under it

    streaming = threading.Thread(target=half_part)
    streaming.start()
    streamed = time.monotonic()
    deadline = streamed + abandoned / 2 - 2
    while not data_objects(a.namespace) - before:
        assert time.monotonic() < deadline, "the streamed part wrote no stripe"
        time.sleep(0.1)
    admin(a, "POST", f"/buckets/{name}/reshard", {"shards": 16})
    while True:
        reshard = admin(a, "GET", f"/buckets/{name}/stats")["reshard"]
        assert reshard is not None, "the reshard finished before the kill"
        if reshard["copied"] > 0:
            break
        assert time.monotonic() < deadline, "the reshard never started copying"
        time.sleep(0.02)
    a.kill9()
    streaming.join()
    orphans = data_objects(a.namespace) - before
    assert orphans, "the half-written part left no stripe to reclaim"

    b = make_server(namespace=a.namespace, extra_args=gc)
    deadline = time.monotonic() + 120
    while admin(b, "GET", f"/buckets/{name}/stats")["reshard"] is not None:
        assert time.monotonic() < deadline, "no other gateway finished the reshard"
        time.sleep(0.5)
    stats = admin(b, "GET", f"/buckets/{name}/stats")
    assert stats["shards"] == 16 and stats["objects"] == len(keys)
    listed = []
    for page in b.client().get_paginator("list_objects_v2").paginate(Bucket=name):
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert listed == keys
    # The half-written part's stripes go; the acknowledged part stays.
    deadline = time.monotonic() + 60
    while data_objects(a.namespace) & orphans:
        assert time.monotonic() < deadline, "the orphaned stripes were not reclaimed"
        time.sleep(1)
    parts = b.client().list_parts(Bucket=name, Key="big", UploadId=upload)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1]
    print(f"\n[gateway killed] reshard finished by the other gateway, "
          f"{len(orphans)} orphaned stripes reclaimed, {json.dumps(stats['objects_per_shard'])}")


def checksum_failures(server) -> float:
    text = requests.get(server.ops_endpoint + "/metrics", timeout=10).text
    found = re.search(r"^kura_blob_checksum_failures_total (\S+)$", text, re.M)
    assert found, "kura_blob_checksum_failures_total is not exported"
    return float(found.group(1))


def test_bit_rot_is_never_served_and_heals_after_a_deep_scrub(make_server):
    server = make_server()
    name = unique_bucket_name()
    client = server.client(retries={"total_max_attempts": 1})
    client.create_bucket(Bucket=name)
    body = os.urandom(100_000)
    client.put_object(Bucket=name, Key="k", Body=body)
    (stripe,) = data_objects(server.namespace)
    pgid, primary = placement("kura-data", stripe, server.namespace)
    damage_on_osd(primary, pgid, stripe, server.namespace, offset=5000)

    before = checksum_failures(server)
    with pytest.raises(ClientError) as refused:
        client.get_object(Bucket=name, Key="k", Range="bytes=4096-8191")
    assert refused.value.response["Error"]["Code"] == "InternalError"
    assert checksum_failures(server) == before + 1

    deep_scrub(primary, pgid)
    deadline = time.monotonic() + 120
    while True:
        try:
            got = client.get_object(Bucket=name, Key="k", Range="bytes=4096-8191")
            break
        except ClientError as err:
            assert err.response["Error"]["Code"] == "InternalError", err.response
            assert time.monotonic() < deadline, "the deep scrub did not repair the copy"
            time.sleep(2)
    assert got["Body"].read() == body[4096:8192]
    assert client.get_object(Bucket=name, Key="k")["Body"].read() == body
