"""Load tools shared by the tests that drive Kura hard (resharding, the RADOS
gateways): a fast SigV4 client, a parallel fill, and a /healthz prober in a process of
its own."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


# --------------------------------------------------------------------------
# A small, fast SigV4 client: boto3 costs ~2 ms of Python per call, which on
# two cores caps a fill at a few hundred PUTs/s.
# --------------------------------------------------------------------------
class RawS3:
    def __init__(self, server):
        self.port = server.s3_port
        self.host = f"127.0.0.1:{server.s3_port}"
        self.access_key = server.access_key
        self.secret_key = server.secret_key
        self.region = server.region
        self._keys: dict = {}
        self._local = threading.local()

    def _signing_key(self, date: str) -> bytes:
        key = self._keys.get(date)
        if key is None:
            k = hmac.new(("AWS4" + self.secret_key).encode(), date.encode(), hashlib.sha256).digest()
            for part in (self.region, "s3", "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self._keys[date] = key = k
        return key

    def _headers(self, method: str, path: str, query: str) -> dict:
        amz = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        signed = "host;x-amz-content-sha256;x-amz-date"
        canonical = (f"{method}\n{path}\n{query}\nhost:{self.host}\n"
                     f"x-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:{amz}\n\n{signed}\n{EMPTY_SHA256}")
        scope = f"{amz[:8]}/{self.region}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        sig = hmac.new(self._signing_key(amz[:8]), to_sign.encode(), hashlib.sha256).hexdigest()
        return {
            "Host": self.host, "x-amz-date": amz, "x-amz-content-sha256": EMPTY_SHA256,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                             f"SignedHeaders={signed}, Signature={sig}",
        }

    def request(self, method: str, path: str, params: "dict | None" = None) -> "tuple[int, bytes]":
        """One signed request with an empty body on this thread's keep-alive
        connection. `path` must be URI-encoded already."""
        query = "&".join(f"{quote(k, safe='-_.~')}={quote(str(v), safe='-_.~')}"
                         for k, v in sorted((params or {}).items()))
        headers = self._headers(method, path, query)
        if method in ("PUT", "POST"):
            headers["Content-Length"] = "0"
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path + ("?" + query if query else ""), headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except Exception:
            conn.close()
            self._local.conn = None
            raise

    def list_page(self, bucket: str, prefix: str, start_after: "str | None", max_keys: int):
        params = {"list-type": "2", "prefix": prefix, "max-keys": str(max_keys)}
        if start_after is not None:
            params["start-after"] = start_after
        status, body = self.request("GET", f"/{bucket}", params)
        if status != 200:
            return status, [], False
        root = ET.fromstring(body)
        ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
        keys = [c.findtext(f"{ns}Key") for c in root.findall(f"{ns}Contents")]
        truncated = root.findtext(f"{ns}IsTruncated") == "true"
        return status, keys, truncated


def list_all(client, bucket: str) -> "list[str]":
    keys: "list[str]" = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 1000}):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def percentile(values: "list[float]", p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]



def fill(raw: RawS3, bucket: str, keys: "list[str]", threads: int, failures: list) -> None:
    def worker(i: int) -> None:
        for key in keys[i::threads]:
            try:
                status, body = raw.request("PUT", f"/{bucket}/{quote(key, safe='/')}")
                if status != 200:
                    failures.append(("PUT", key, status, body[:200]))
            except Exception as e:  # noqa: BLE001
                failures.append(("PUT", key, repr(e)))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


# --------------------------------------------------------------------------
# /healthz prober: its own process (own interpreter, own GIL), so the load's
# Python threads cannot delay a probe and inflate its latency.
# --------------------------------------------------------------------------
PROBE_SRC = r"""
import http.client, json, sys, time, os
port, out, stop, interval = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
probes = []
next_at = time.monotonic()
while not os.path.exists(stop):
    started = time.monotonic()
    status = None
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        status = resp.status
        conn.close()
    except Exception as e:
        status = repr(e)
    probes.append([time.time(), time.monotonic() - started, status])
    next_at += interval
    time.sleep(max(0.0, next_at - time.monotonic()))
with open(out, "w") as fh:
    json.dump(probes, fh)
"""


class Prober:
    """Probes /healthz every `interval` seconds until `finish`. A p99 needs a few hundred
    samples to differ from the maximum: probe often when the measured window is short."""

    def __init__(self, ops_port: int, work: Path, interval: float = 0.1):
        self.out = work / "probes.json"
        self.stop_file = work / "probes.stop"
        # Kubernetes' kubelet does not share a CPU with the load generator; here it
        # does (two cores), so the prober runs at a higher priority where it may.
        boost = (lambda: os.nice(-10)) if hasattr(os, "geteuid") and os.geteuid() == 0 else None
        self.proc = subprocess.Popen([sys.executable, "-c", PROBE_SRC, str(ops_port), str(self.out),
                                      str(self.stop_file), str(interval)], preexec_fn=boost)

    def finish(self) -> list:
        self.stop_file.write_text("")
        self.proc.wait(timeout=30)
        return json.loads(self.out.read_text())
