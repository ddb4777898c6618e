"""Prometheus metrics on the ops listener's /metrics.

Checked three ways: the exposition itself (content type, `promtool check
metrics` clean, no secrets or object keys), what the counters count (deltas
around requests this test makes), and a real Prometheus: a throw-away
`prometheus` on a loopback port scrapes a running Kura every second and its
HTTP query API must show `up == 1` and the test's requests.

promtool and prometheus come from Debian's `prometheus` package, which
`bash scripts/test` installs; without them these tests fail rather than skip.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import INITIAL_SHARDS, free_port
from tools import wait_for

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run `bash scripts/test`, which installs "
                    "Debian's prometheus package (prometheus and promtool)", pytrace=False)
    return path


def scrape(server) -> requests.Response:
    r = requests.get(f"{server.ops_endpoint}/metrics", timeout=10)
    assert r.status_code == 200, r.text[:500]
    return r


def samples(server) -> "dict[tuple, float]":
    """{(name, frozenset of (label, value)): value} of one scrape."""
    out = {}
    for line in scrape(server).text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"unparsable exposition line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(snapshot: dict, name: str, **labels) -> float:
    """A sample's value; 0 for a series not exported yet (counters start there)."""
    return snapshot.get((name, frozenset(labels.items())), 0.0)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def settled(server) -> dict:
    """A scrape with no S3 request in flight: a response body is done (and its
    request counted out) a moment after the client has read it."""
    def idle():
        snapshot = samples(server)
        return snapshot if value(snapshot, "kura_s3_requests_in_flight") == 0 else None
    return wait_for("no S3 request in flight", idle, timeout=10, interval=0.1)


# ---------------------------------------------------------------- exposition
def test_exposition_is_prometheus_text_and_promtool_clean(server, s3, bucket):
    promtool = need("promtool")
    secret_key_name = "secret-looking-object-key-7f3a"
    s3.put_object(Bucket=bucket, Key=secret_key_name, Body=b"x")
    s3.get_object(Bucket=bucket, Key=secret_key_name)["Body"].read()

    r = scrape(server)
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    text = r.text
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), \
        f"promtool check metrics (exit {check.returncode}):\n{check.stdout}{check.stderr}"

    families = set(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for family in [
        ("kura_s3_requests_total", "counter"),
        ("kura_s3_request_duration_seconds", "histogram"),
        ("kura_s3_received_bytes_total", "counter"),
        ("kura_s3_sent_bytes_total", "counter"),
        ("kura_s3_requests_in_flight", "gauge"),
        ("kura_blob_checksum_failures_total", "counter"),
        ("kura_background_task_runs_total", "counter"),
        ("kura_background_task_duration_seconds", "histogram"),
        ("kura_gc_blobs_deleted_total", "counter"),
        ("kura_build_info", "gauge"),
        ("kura_buckets", "gauge"),
        ("kura_bucket_objects", "gauge"),
        ("kura_bucket_bytes", "gauge"),
        ("kura_bucket_shards", "gauge"),
        ("kura_index_shards", "gauge"),
        ("kura_reshards_running", "gauge"),
        ("kura_reshards_started_total", "counter"),
        ("kura_reshards_completed_total", "counter"),
        ("kura_reshard_entries_copied_total", "counter"),
        ("kura_reshard_duration_seconds", "histogram"),
        ("kura_reshard_switch_pause_seconds", "histogram"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_cpu_seconds_total", "counter"),
        ("process_open_fds", "gauge"),
    ]:
        assert family in families, f"{family} missing from /metrics"
    assert re.search(r'^kura_build_info\{version="[^"]+"\} 1$', text, re.M), text
    # Never a secret, an access key or an object key.
    for leak in (server.secret_key, server.access_key, secret_key_name):
        assert leak not in text, f"{leak!r} appears in /metrics"


# ---------------------------------------------------------------- counters
def test_counters_reflect_requests(server, s3, bucket):
    n, size = 5, 3000
    before = samples(server)
    for i in range(n):
        s3.put_object(Bucket=bucket, Key=f"obj-{i}", Body=b"a" * size)
    assert len(s3.get_object(Bucket=bucket, Key="obj-0")["Body"].read()) == size
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="missing")
    bad = server.client(secret_key="not-the-secret-key")
    with pytest.raises(ClientError) as refused:
        bad.list_objects_v2(Bucket=bucket)
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    after = settled(server)

    requests_total = "kura_s3_requests_total"
    assert delta(before, after, requests_total, operation="PutObject", status_class="2xx") == n
    assert delta(before, after, requests_total, operation="GetObject", status_class="2xx") == 1
    assert delta(before, after, requests_total, operation="GetObject", status_class="4xx") == 1
    assert delta(before, after, requests_total, operation="ListObjectsV2", status_class="4xx") == 1
    assert delta(before, after, "kura_s3_errors_total", code="NoSuchKey") == 1
    assert delta(before, after, "kura_s3_errors_total", code="SignatureDoesNotMatch") == 1
    assert delta(before, after, "kura_auth_failures_total", reason="SignatureDoesNotMatch") == 1
    assert delta(before, after, "kura_auth_failures_total", reason="NoSuchKey") == 0

    # Bodies: at least the object bytes each way (framing and XML come on top).
    assert delta(before, after, "kura_s3_received_bytes_total") >= n * size
    assert delta(before, after, "kura_s3_sent_bytes_total") >= size

    # The histogram: one observation per PutObject, cumulative buckets up to +Inf.
    hist = "kura_s3_request_duration_seconds"
    assert delta(before, after, f"{hist}_count", operation="PutObject") == n
    assert delta(before, after, f"{hist}_sum", operation="PutObject") > 0
    assert delta(before, after, f"{hist}_bucket", operation="PutObject", le="+Inf") == n
    buckets = sorted(
        (float(dict(labels)["le"]), v) for (name, labels), v in after.items()
        if name == f"{hist}_bucket" and dict(labels).get("operation") == "PutObject")
    assert len(buckets) > 5, buckets
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), f"histogram buckets not cumulative: {buckets}"
    assert buckets[-1] == (float("inf"), value(after, f"{hist}_count", operation="PutObject"))

    # The bucket's usage, read from the index at scrape time.
    assert value(after, "kura_bucket_objects", bucket=bucket) == n
    assert value(after, "kura_bucket_bytes", bucket=bucket) == n * size
    assert value(after, "kura_buckets") >= 1


def test_admin_refusals_are_counted_as_errors_and_auth_failures(server):
    before = samples(server)
    wrong = server.signed_request("GET", "/_kura/admin/v1/users", secret_key="not-the-secret-key")
    assert wrong.status_code == 403 and wrong.json()["code"] == "SignatureDoesNotMatch", wrong.text
    missing = server.signed_request("GET", "/_kura/admin/v1/users/nobody-at-all")
    assert missing.status_code == 404 and missing.json()["code"] == "NoSuchUser", missing.text
    after = settled(server)
    assert delta(before, after, "kura_s3_errors_total", code="SignatureDoesNotMatch") == 1
    assert delta(before, after, "kura_auth_failures_total", reason="SignatureDoesNotMatch") == 1
    assert delta(before, after, "kura_s3_errors_total", code="NoSuchUser") == 1
    assert delta(before, after, "kura_auth_failures_total", reason="NoSuchUser") == 0


def test_background_gc_runs_are_counted(make_server):
    # The collector looks over every bucket once per tenth of the grace period, at least
    # once a second.
    server = make_server(extra_args=["--gc-grace-seconds", "10"])
    runs = "kura_background_task_runs_total"
    first = value(samples(server), runs, task="gc", result="ok")
    wait_for("a gc step", lambda: value(samples(server), runs, task="gc", result="ok") > first,
             timeout=15)
    snapshot = samples(server)
    assert value(snapshot, "kura_background_task_duration_seconds_count", task="gc") > 0
    assert value(snapshot, runs, task="gc", result="error") == 0


def test_reshard_is_counted_and_timed(fresh_server):
    s3 = fresh_server.client()
    s3.create_bucket(Bucket="grow")
    n = 1200  # more than one copy step (500 keys)
    for i in range(n):
        s3.put_object(Bucket="grow", Key=f"k{i:05d}", Body=b"")
    before = samples(fresh_server)
    start = int(value(before, "kura_bucket_shards", bucket="grow"))
    assert start == INITIAL_SHARDS
    target = start + 3
    r = fresh_server.signed_request("POST", "/_kura/admin/v1/buckets/grow/reshard",
                                    body=json.dumps({"shards": target}).encode(),
                                    headers={"Content-Type": "application/json"})
    assert r.status_code == 202, r.text
    def finished():
        s = samples(fresh_server)
        return s if delta(before, s, "kura_reshards_completed_total") >= 1 else None
    after = wait_for("the reshard to finish", finished, timeout=60, interval=0.2)
    assert value(after, "kura_bucket_shards", bucket="grow") == target
    assert delta(before, after, "kura_reshards_started_total", trigger="manual") == 1
    assert delta(before, after, "kura_reshards_started_total", trigger="auto") == 0
    assert delta(before, after, "kura_reshards_completed_total") == 1
    assert delta(before, after, "kura_reshard_entries_copied_total") == n
    assert value(after, "kura_reshards_running") == 0
    assert delta(before, after, "kura_index_shards") == 3
    assert delta(before, after, "kura_reshard_duration_seconds_count") == 1
    assert delta(before, after, "kura_reshard_switch_pause_seconds_count") == 1
    # The switch holds writes off for far less than the 50 ms budget.
    assert value(after, "kura_reshard_switch_pause_seconds_bucket", le="0.05") == \
        value(after, "kura_reshard_switch_pause_seconds_count")


@pytest.mark.local_only  # damages a blob file; RADOS bit rot is test_rados_faults.py's
def test_blob_checksum_failures_are_counted(fresh_server):
    s3 = fresh_server.client()
    s3.create_bucket(Bucket="rot")
    s3.put_object(Bucket="rot", Key="k", Body=b"z" * 10000)
    blobs = [p for p in (fresh_server.data_dir / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1, blobs
    data = bytearray(blobs[0].read_bytes())
    data[0] ^= 0xFF
    blobs[0].write_bytes(bytes(data))

    before = value(samples(fresh_server), "kura_blob_checksum_failures_total")
    with pytest.raises(ClientError) as failed:
        fresh_server.client(retries={"total_max_attempts": 1}).get_object(Bucket="rot", Key="k")
    assert failed.value.response["Error"]["Code"] == "InternalError"
    after = samples(fresh_server)
    assert value(after, "kura_blob_checksum_failures_total") == before + 1
    assert value(after, "kura_s3_errors_total", code="InternalError") >= 1


# ---------------------------------------------------------------- a real Prometheus
class ThrowAwayPrometheus:
    """`prometheus` on a free loopback port with its data in a temp dir,
    scraping `target` (host:port) every second."""

    def __init__(self, target: str):
        binary = need("prometheus")
        self.dir = Path(tempfile.mkdtemp(prefix="kura-prometheus-"))
        self.port = free_port()
        config = self.dir / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: kura\n"
            "    static_configs:\n"
            f"      - targets: ['{target}']\n")
        self.log = self.dir / "prometheus.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def query(self, promql: str) -> "list[dict]":
        """The instant vector of `promql`; [] while Prometheus is not up yet."""
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            r = requests.get(f"http://127.0.0.1:{self.port}/api/v1/query",
                             params={"query": promql}, timeout=5)
        except requests.ConnectionError:
            return []
        if r.status_code != 200:
            return []
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def scalar(self, promql: str) -> "float | None":
        result = self.query(promql)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def prometheus(fresh_server):
    prom = ThrowAwayPrometheus(f"127.0.0.1:{fresh_server.ops_port}")
    yield prom
    prom.stop()


def test_prometheus_scrapes_kura(fresh_server, prometheus):
    need("promtool")
    wait_for("up == 1 for the kura target",
             lambda: prometheus.scalar('up{job="kura"}') == 1.0, timeout=30)

    n = 7
    s3 = fresh_server.client()
    s3.create_bucket(Bucket="scraped")
    for i in range(n):
        s3.put_object(Bucket="scraped", Key=f"k{i}", Body=b"p" * 100)

    # A fresh server: Prometheus must see exactly the test's requests.
    puts = 'sum(kura_s3_requests_total{job="kura",operation="PutObject",status_class="2xx"})'
    wait_for(f"{puts} == {n}", lambda: prometheus.scalar(puts) == n, timeout=30)
    durations = 'sum(kura_s3_request_duration_seconds_count{job="kura",operation="PutObject"})'
    assert prometheus.scalar(durations) == n
    assert prometheus.scalar('kura_bucket_objects{job="kura",bucket="scraped"}') == n
    assert prometheus.scalar('kura_bucket_bytes{job="kura",bucket="scraped"}') == n * 100
    assert prometheus.scalar('kura_build_info{job="kura"}') == 1
