"""End-to-end test of `kura provisioner`: the real binary, a real `kura serve`,
and a Kubernetes API server -- the fake one in fake_kube.py by default, or a real
cluster.

Flow: StorageClasses (Delete, Retain, brownfield `bucketName`, another
provisioner's) -> an ObjectBucketClaim -> phase Bound, ConfigMap + Secret +
ObjectBucket `obc-<ns>-<name>` -> S3 clients configured only from the
ConfigMap and Secret exactly as `envFrom` passes them (a boto3 script calling
`boto3.client("s3")` with no arguments, and the aws CLI) read and write the
bucket and are refused elsewhere -> the claim's quota is enforced -> deleting
the claim revokes the key and deletes or retains the bucket -> restarts of the
provisioner (kill -9 mid-provisioning, plain restart) create no duplicates and
leak no keys.

Modes (the module runs once per mode; a mode that is not configured is
reported as skipped):

  fake     always: FakeKube on 127.0.0.1 + the session's `kura serve`.
  cluster  when KURA_TEST_KUBECONFIG is set: that cluster (the kubeconfig's
           current context; token, client-certificate or CA data/file auth --
           exec plugins are not supported) with the CRDs of k8s/ installed
           (kubectl apply -f k8s/base/crd-*.yaml), and a Kura reachable both from this
           host and, for the same URL, from the pods:
             KURA_TEST_ENDPOINT     Kura's S3/admin URL (required)
             KURA_TEST_ACCESS_KEY / KURA_TEST_SECRET_KEY  its root credentials
                                    (required)
             KURA_TEST_REGION       default us-east-1
             KURA_TEST_PROVISIONER_NAME  default kura.dev/bucket-e2e (use a
                                    name no in-cluster provisioner serves)
           The test runs the local provisioner binary with that kubeconfig,
           creates a namespace kura-e2e-<random> and StorageClasses
           kura-e2e-<random>-*, and deletes them at the end.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from conftest import free_port, resolve_kura_bin
from fake_kube import FakeKube
from tools import run, utf8_env, venv_bin, wait_for

FINALIZER = "objectbucket.io/finalizer"
OB_API = "objectbucket.io/v1alpha1"
ADMIN = "/_kura/admin/v1"
WAIT = 30.0           # every wait for the provisioner is bounded by this
S3_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
CM_KEYS = {"BUCKET_HOST", "BUCKET_PORT", "BUCKET_NAME", "BUCKET_REGION", "BUCKET_SUBREGION",
           "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"}
SECRET_KEYS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def rand(n: int = 6) -> str:
    return uuid.uuid4().hex[:n]


# ------------------------------------------------------------ Kubernetes client
class Kube:
    """A minimal Kubernetes REST client (requests) for the test's own calls, so
    the same test code drives the fake server and a real cluster."""

    def __init__(self, server: str, *, token=None, verify=True, cert=None):
        self.server = server.rstrip("/")
        self.s = requests.Session()
        if token:
            self.s.headers["Authorization"] = f"Bearer {token}"
        self.s.verify = verify
        self.s.cert = cert

    @classmethod
    def from_kubeconfig(cls, path: str, tmp: Path) -> "Kube":
        import yaml
        cfg = yaml.safe_load(Path(path).read_text())
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next((u["user"] for u in cfg.get("users", []) if u["name"] == ctx.get("user")), {}) or {}

        def material(data_key, file_key, src, name):
            if src.get(data_key):
                p = tmp / name
                p.write_bytes(base64.b64decode(src[data_key]))
                return str(p)
            return src.get(file_key)

        verify = False if cluster.get("insecure-skip-tls-verify") else (
            material("certificate-authority-data", "certificate-authority", cluster, "ca.crt") or True)
        crt = material("client-certificate-data", "client-certificate", user, "client.crt")
        key = material("client-key-data", "client-key", user, "client.key")
        token = user.get("token") or (Path(user["tokenFile"]).read_text().strip() if user.get("tokenFile") else None)
        if "exec" in user or "auth-provider" in user:
            pytest.skip("KURA_TEST_KUBECONFIG uses an exec/auth-provider plugin; use a token or client certificate")
        return cls(cluster["server"], token=token, verify=verify, cert=(crt, key) if crt and key else None)

    @staticmethod
    def path(api_version: str, plural: str, ns=None, name=None, sub=None) -> str:
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        p = base + (f"/namespaces/{ns}" if ns else "") + f"/{plural}"
        if name:
            p += f"/{name}"
        if sub:
            p += f"/{sub}"
        return p

    def req(self, method, path, body=None, ctype="application/json", params=None, ok=(200, 201)):
        r = self.s.request(method, self.server + path, params=params, timeout=15,
                           data=None if body is None else json.dumps(body),
                           headers={"Content-Type": ctype})
        if r.status_code not in ok:
            raise AssertionError(f"{method} {path} -> {r.status_code}: {r.text[:800]}")
        return r.json() if r.content else None

    def get(self, api_version, plural, name, ns=None):
        r = self.s.get(self.server + self.path(api_version, plural, ns, name), timeout=15)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        return r.json()

    def list(self, api_version, plural, ns=None, **params):
        return self.req("GET", self.path(api_version, plural, ns), params=params)["items"]

    def create(self, api_version, plural, obj, ns=None):
        return self.req("POST", self.path(api_version, plural, ns), obj)

    def patch(self, api_version, plural, name, patch, ns=None):
        return self.req("PATCH", self.path(api_version, plural, ns, name), patch,
                        "application/merge-patch+json")

    def delete(self, api_version, plural, name, ns=None):
        return self.req("DELETE", self.path(api_version, plural, ns, name), ok=(200, 202, 404))

    def force_delete(self, api_version, plural, name, ns=None):
        """Cleanup: drop finalizers and delete (ignores absence)."""
        try:
            if self.get(api_version, plural, name, ns) is not None:
                self.req("PATCH", self.path(api_version, plural, ns, name), {"metadata": {"finalizers": None}},
                         "application/merge-patch+json", ok=(200, 201, 404, 409, 422))
            self.delete(api_version, plural, name, ns)
        except Exception:  # noqa: BLE001
            pass


# ------------------------------------------------------------------ admin API
class AdminApi:
    """Kura's admin API, SigV4-signed with the root credentials."""

    def __init__(self, endpoint, access_key, secret_key, region):
        self.endpoint, self.ak, self.sk, self.region = endpoint.rstrip("/"), access_key, secret_key, region

    def call(self, method, path, body=None, expect=None):
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"x-amz-content-sha256": hashlib.sha256(data).hexdigest()}
        if body is not None:
            headers["Content-Type"] = "application/json"
        req = AWSRequest(method=method, url=self.endpoint + ADMIN + path, data=data, headers=headers)
        SigV4Auth(Credentials(self.ak, self.sk), "s3", self.region).add_auth(req)
        r = requests.request(method, req.url, headers=dict(req.headers.items()), data=data, timeout=30)
        if expect is not None:
            assert r.status_code in ((expect,) if isinstance(expect, int) else expect), \
                f"{method} {path} -> {r.status_code}: {r.text[:500]}"
        return r.status_code, (r.json() if r.content else None)

    def bucket(self, name):
        st, body = self.call("GET", f"/buckets/{name}")
        return body if st == 200 else None

    def active_keys(self, user) -> "list[str]":
        st, body = self.call("GET", f"/users/{user}/keys")
        if st == 404:
            return []
        assert st == 200, body
        return [k["access_key"] for k in body["keys"] if k["status"] == "active"]

    def delete_bucket(self, name):
        self.call("DELETE", f"/buckets/{name}?purge=true")


# ---------------------------------------------------------------- provisioner
class Provisioner:
    """The `kura provisioner` process (started and stopped by PID only)."""

    def __init__(self, kura_bin, base: Path, env: dict):
        self.bin, self.base, self.env = str(kura_bin), base, env
        self.ops_port = free_port()
        self.env["KURA_PROVISIONER_OPS_ADDR"] = f"127.0.0.1:{self.ops_port}"
        self.log_path = base / "provisioner.log"
        self.proc = None
        self.starts = 0

    def start(self, wait_ready=True):
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts} =====\n".encode())
            self.proc = subprocess.Popen([self.bin, "provisioner"], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=str(self.base))
        if wait_ready:
            # /healthz answers once the process runs; /readyz is checked by its own test
            # (test_provisioner_health_endpoints) so that a readiness bug fails that test only.
            deadline = time.monotonic() + 15
            while self.probe("/healthz") != 200:
                if self.proc.poll() is not None:
                    raise AssertionError(f"provisioner exited with {self.proc.returncode}\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"provisioner /healthz not 200 within 15 s\n{self.log_tail()}")
                time.sleep(0.05)
        return self

    def probe(self, path: str) -> "int | None":
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ops_port}{path}", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as err:
            return err.code
        except (urllib.error.URLError, OSError):
            return None

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.returncode if self.proc else None

    def log_tail(self, n=60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no provisioner log)"


# ---------------------------------------------------------------- environment
class Env:
    """Everything one mode needs: Kubernetes client, admin API, provisioner,
    namespace, StorageClasses, and the bucket endpoint as the ConfigMap shows it."""

    def __init__(self, mode, kube, admin, prov, fake, endpoint, provisioner_name, tmp):
        self.mode, self.kube, self.admin, self.prov, self.fake = mode, kube, admin, prov, fake
        self.endpoint, self.provisioner_name, self.tmp = endpoint, provisioner_name, tmp
        self.ns = f"kura-e2e-{rand()}"
        self.sc = {}            # role -> StorageClass name
        self.cleanup_buckets = []
        self.cleanup_users = []

    # diagnostics for failure messages
    def diag(self) -> str:
        out = ["--- provisioner log tail ---", self.prov.log_tail(50)]
        if self.fake is not None:
            out.append("--- fake API server: last requests (method path status content-type) ---")
            for r in self.fake.requests[-40:]:
                if r.get("watch"):
                    continue
                out.append(f"{r['method']} {r['path']} {r['status']} {r['content_type']}"
                           + (f" ERROR {r.get('error')}" if r.get("error") else ""))
        return "\n".join(out)

    def wait(self, fn, what, timeout=WAIT, interval=0.1):
        try:
            return wait_for(what, fn, timeout, interval)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.diag()}") from None

    # claims
    def claim(self, name, sc_role, *, bucket=None, generate=None, additional=None):
        spec = {"storageClassName": self.sc[sc_role]}
        if bucket:
            spec["bucketName"] = bucket
        if generate:
            spec["generateBucketName"] = generate
        if additional:
            spec["additionalConfig"] = additional
        return self.kube.create(OB_API, "objectbucketclaims",
                                {"apiVersion": OB_API, "kind": "ObjectBucketClaim",
                                 "metadata": {"name": name, "namespace": self.ns}, "spec": spec}, self.ns)

    def get_claim(self, name):
        return self.kube.get(OB_API, "objectbucketclaims", name, self.ns)

    def phase(self, name):
        c = self.get_claim(name)
        return ((c or {}).get("status") or {}).get("phase")

    def wait_bound(self, name, timeout=WAIT):
        """Bound + ConfigMap + Secret; returns (claim, configmap data, secret data decoded)."""
        def ready():
            c = self.get_claim(name)
            if not c or (c.get("status") or {}).get("phase") != "Bound":
                return None
            cm = self.kube.get("v1", "configmaps", name, self.ns)
            sec = self.kube.get("v1", "secrets", name, self.ns)
            if not cm or not sec:
                return None
            return c, cm, sec
        return self.wait(ready, f"claim {self.ns}/{name} Bound with its ConfigMap and Secret", timeout)

    def delete_claim_and_wait(self, name):
        self.kube.delete(OB_API, "objectbucketclaims", name, self.ns)
        self.wait(lambda: self.get_claim(name) is None, f"claim {name} to be gone")

    def app_env(self, name) -> dict:
        """The environment a pod with envFrom: [configMapRef, secretRef] would get
        (ConfigMap data + decoded Secret data) + PATH and an empty HOME."""
        cm = self.kube.get("v1", "configmaps", name, self.ns)
        sec = self.kube.get("v1", "secrets", name, self.ns)
        assert cm and sec, f"ConfigMap/Secret {name} missing\n{self.diag()}"
        return pod_env(cm, sec, self.tmp)


def pod_env(cm, sec, tmp: Path) -> dict:
    env = dict(cm.get("data") or {})
    env.update({k: base64.b64decode(v).decode() for k, v in (sec.get("data") or {}).items()})
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    env["HOME"] = str(home)
    return env


# The application: configured by nothing but its environment.
APP = textwrap.dedent('''
    import json, os, sys
    import boto3
    from botocore.exceptions import ClientError
    s3 = boto3.client("s3")
    sub = lambda v: os.environ["BUCKET_NAME"] if v == "$BUCKET_NAME" else v
    out = []
    for op in json.loads(sys.argv[1]):
        kind, args = op[0], [sub(a) for a in op[1:]]
        try:
            if kind == "put":
                body = args[2].encode() if isinstance(args[2], str) else b"z" * args[2]
                s3.put_object(Bucket=args[0], Key=args[1], Body=body)
                out.append("ok")
            elif kind == "get":
                out.append(s3.get_object(Bucket=args[0], Key=args[1])["Body"].read().decode())
            elif kind == "list":
                out.append(sorted(o["Key"] for o in s3.list_objects_v2(Bucket=args[0]).get("Contents", [])))
        except ClientError as e:
            out.append("error:" + e.response["Error"]["Code"])
    print(json.dumps(out))
''')


def run_app(env: dict, ops: list, tmp: Path) -> list:
    script = tmp / "app.py"
    script.write_text(APP)
    p = subprocess.run([sys.executable, str(script), json.dumps(ops)], env=env, capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"app failed: {p.stderr.decode()[-3000:]}"
    return json.loads(p.stdout)


# --------------------------------------------------------------------- fixture
@pytest.fixture(scope="module", params=["fake", "cluster"])
def env(request, tmp_path_factory):
    mode = request.param
    tmp = tmp_path_factory.mktemp(f"k8s-{mode}")
    kura_bin = resolve_kura_bin()
    fake = None
    if mode == "fake":
        if not kura_bin.exists():
            pytest.fail(f"kura binary not found: {kura_bin}", pytrace=False)
        help_ = subprocess.run([str(kura_bin), "provisioner", "--help"], capture_output=True, timeout=20)
        if help_.returncode != 0:
            pytest.fail(f"`kura provisioner --help` fails: {help_.stderr.decode()[-500:]}", pytrace=False)
        server = request.getfixturevalue("server")
        fake = FakeKube(bookmark_interval=2.0).start()
        kubeconfig = fake.write_kubeconfig(tmp / "kubeconfig")
        kube = Kube(fake.url, token=fake.token)
        endpoint, ak, sk, region = server.endpoint, server.access_key, server.secret_key, server.region
        provisioner_name = "kura.dev/bucket"
    else:
        kubeconfig = os.environ.get("KURA_TEST_KUBECONFIG")
        if not kubeconfig:
            pytest.skip("real-cluster mode: set KURA_TEST_KUBECONFIG (and KURA_TEST_ENDPOINT, "
                        "KURA_TEST_ACCESS_KEY, KURA_TEST_SECRET_KEY) to run against a cluster")
        missing = [v for v in ("KURA_TEST_ENDPOINT", "KURA_TEST_ACCESS_KEY", "KURA_TEST_SECRET_KEY")
                   if not os.environ.get(v)]
        if missing:
            pytest.fail(f"KURA_TEST_KUBECONFIG is set but {missing} are not", pytrace=False)
        kube = Kube.from_kubeconfig(kubeconfig, tmp)
        endpoint = os.environ["KURA_TEST_ENDPOINT"]
        ak, sk = os.environ["KURA_TEST_ACCESS_KEY"], os.environ["KURA_TEST_SECRET_KEY"]
        region = os.environ.get("KURA_TEST_REGION", "us-east-1")
        provisioner_name = os.environ.get("KURA_TEST_PROVISIONER_NAME", "kura.dev/bucket-e2e")

    admin = AdminApi(endpoint, ak, sk, region)
    penv = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp),
            "KUBECONFIG": str(kubeconfig), "KURA_ADMIN_ENDPOINT": endpoint,
            "KURA_ADMIN_ACCESS_KEY": ak, "KURA_ADMIN_SECRET_KEY": sk, "KURA_REGION": region,
            "KURA_BUCKET_ENDPOINT": endpoint, "KURA_PROVISIONER_NAME": provisioner_name,
            "KURA_LOG": "info,kura=debug", "RUST_LOG": "info,kura=debug", "RUST_BACKTRACE": "1"}
    prov = Provisioner(kura_bin, tmp, penv)
    request.addfinalizer(prov.stop)  # also when the setup below fails
    if fake is not None:
        request.addfinalizer(fake.stop)
    e = Env(mode, kube, admin, prov, fake, endpoint, provisioner_name, tmp)

    # namespace, a user + bucket for brownfield, another user's bucket, StorageClasses
    kube.create("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": e.ns}})
    e.brown_user, e.other_user = f"e2e-brown-{rand()}", f"e2e-other-{rand()}"
    e.brown_bucket, e.other_bucket = f"e2e-brown-{rand(10)}", f"e2e-other-{rand(10)}"
    for user, bucket in ((e.brown_user, e.brown_bucket), (e.other_user, e.other_bucket)):
        admin.call("POST", "/users", {"name": user}, expect=201)
        admin.call("POST", "/buckets", {"name": bucket, "owner": user}, expect=201)
        e.cleanup_buckets.append(bucket)
        e.cleanup_users.append(user)
    prefix = f"kura-e2e-{rand()}"
    classes = {"delete": ("Delete", provisioner_name, {}),
               "retain": ("Retain", provisioner_name, {}),
               "brown": ("Delete", provisioner_name, {"bucketName": e.brown_bucket}),
               "foreign": ("Delete", "example.com/not-kura", {})}
    for role, (policy, prov_name, params) in classes.items():
        name = f"{prefix}-{role}"
        sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
              "provisioner": prov_name, "reclaimPolicy": policy}
        if params:
            sc["parameters"] = params
        kube.create("storage.k8s.io/v1", "storageclasses", sc)
        e.sc[role] = name
    prov.start()
    yield e

    prov.stop()
    for c in kube.list(OB_API, "objectbucketclaims", e.ns):
        kube.force_delete(OB_API, "objectbucketclaims", c["metadata"]["name"], e.ns)
    for role in e.sc.values():
        kube.delete("storage.k8s.io/v1", "storageclasses", role)
    for ob in kube.list(OB_API, "objectbuckets"):
        if ob["metadata"]["name"].startswith(f"obc-{e.ns}-"):
            kube.force_delete(OB_API, "objectbuckets", ob["metadata"]["name"])
    for plural in ("configmaps", "secrets"):
        for o in kube.list("v1", plural, e.ns, labelSelector="app.kubernetes.io/managed-by=kura-provisioner"):
            kube.force_delete("v1", plural, o["metadata"]["name"], e.ns)
    kube.delete("v1", "namespaces", e.ns)
    for b in e.cleanup_buckets:
        admin.delete_bucket(b)
    for u in e.cleanup_users:
        admin.call("DELETE", f"/users/{u}")
    if fake is not None:
        fake.stop()


def check_children(e: Env, claim: dict, cm: dict, sec: dict) -> dict:
    """ConfigMap/Secret/ObjectBucket shapes; returns the ObjectBucket."""
    name, uid = claim["metadata"]["name"], claim["metadata"]["uid"]
    assert set(cm["data"]) == CM_KEYS, cm["data"]
    assert set(sec["data"]) == SECRET_KEYS, sec["data"]
    assert sec.get("type", "Opaque") == "Opaque"
    d = cm["data"]
    u = urlsplit(e.endpoint)
    assert d["BUCKET_HOST"] == u.hostname, d
    assert d["BUCKET_PORT"] == str(u.port or (443 if u.scheme == "https" else 80)), d
    assert d["AWS_ENDPOINT_URL_S3"] == d["AWS_ENDPOINT_URL"] == e.endpoint, d
    assert d["AWS_REGION"] == d["AWS_DEFAULT_REGION"] == d["BUCKET_REGION"] == e.admin.region, d
    assert d["BUCKET_SUBREGION"] == ""
    if claim["spec"].get("bucketName") or claim["spec"].get("generateBucketName"):
        # a generated name is written back into the claim
        assert claim["spec"].get("bucketName") == d["BUCKET_NAME"], (claim["spec"], d)
    for o in (cm, sec):
        refs = o["metadata"].get("ownerReferences") or []
        assert refs == [{"apiVersion": OB_API, "kind": "ObjectBucketClaim", "name": name, "uid": uid,
                         "controller": True, "blockOwnerDeletion": True}], refs
        assert o["metadata"].get("finalizers") == [FINALIZER], o["metadata"]
        labels = o["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/managed-by") == "kura-provisioner", labels
        assert labels.get("bucket-provisioner") == "kura.dev-bucket", labels
    assert FINALIZER in (claim["metadata"].get("finalizers") or [])
    ob_name = f"obc-{e.ns}-{name}"
    assert claim["spec"].get("objectBucketName") == ob_name, claim["spec"]
    ob = e.kube.get(OB_API, "objectbuckets", ob_name)
    assert ob is not None, f"ObjectBucket {ob_name} missing\n{e.diag()}"
    assert ob["metadata"].get("finalizers") == [FINALIZER]
    s = ob["spec"]
    assert s["claimRef"]["name"] == name and s["claimRef"]["namespace"] == e.ns and s["claimRef"]["uid"] == uid, s
    assert s["endpoint"]["bucketName"] == d["BUCKET_NAME"] and str(s["endpoint"]["bucketPort"]) == d["BUCKET_PORT"], s
    assert s["storageClassName"] == claim["spec"]["storageClassName"], s
    assert s["additionalState"]["accessKey"] == base64.b64decode(sec["data"]["AWS_ACCESS_KEY_ID"]).decode(), s
    assert (ob.get("status") or {}).get("phase") == "Bound", ob
    return ob


def user_of(claim) -> str:
    return f"obc-{claim['metadata']['uid']}"


def events_for(e: Env, name: str) -> "list[tuple[str, str]]":
    """(reason, note/message) of events regarding the claim (events.k8s.io and core)."""
    out = []
    for ev in e.kube.list("events.k8s.io/v1", "events", e.ns):
        if (ev.get("regarding") or {}).get("name") == name:
            out.append((ev.get("reason"), ev.get("note") or ""))
    for ev in e.kube.list("v1", "events", e.ns):
        if (ev.get("involvedObject") or {}).get("name") == name:
            out.append((ev.get("reason"), ev.get("message") or ""))
    return out


# ------------------------------------------------------------------------ tests
def test_claim_bound_used_by_clients_quota_and_delete(env):
    e = env
    bucket = f"e2e-app-{rand(10)}"
    e.claim("app", "delete", bucket=bucket, additional={"maxObjects": "3", "maxSize": "1Mi"})
    claim, cm, sec = e.wait_bound("app")
    check_children(e, claim, cm, sec)
    assert cm["data"]["BUCKET_NAME"] == bucket
    info = e.admin.bucket(bucket)
    assert info and info["owner"] == user_of(claim), info
    assert info["quota"] == {"max_objects": 3, "max_bytes": 1 << 20}, info
    keys = e.admin.active_keys(user_of(claim))
    assert keys == [base64.b64decode(sec["data"]["AWS_ACCESS_KEY_ID"]).decode()], keys

    app = e.app_env("app")
    assert not any(k.startswith("KURA") for k in app)
    # boto3.client("s3") with no arguments: read, write, refused elsewhere
    got = run_app(app, [["put", "$BUCKET_NAME", "hello.txt", "hi from envFrom"],
                        ["get", "$BUCKET_NAME", "hello.txt"],
                        ["list", "$BUCKET_NAME"],
                        ["list", e.other_bucket],
                        ["put", e.other_bucket, "x", "no"]], e.tmp)
    assert got == ["ok", "hi from envFrom", ["hello.txt"], "error:AccessDenied", "error:AccessDenied"], got
    # the aws CLI, same environment
    src = e.tmp / "cli-upload.txt"
    src.write_text("from the aws cli\n")
    aws = venv_bin("aws")
    run([aws, "s3", "cp", str(src), f"s3://{bucket}/cli.txt"], utf8_env(app), timeout=60)
    ls = run([aws, "s3", "ls", f"s3://{app['BUCKET_NAME']}"], utf8_env(app), timeout=60)
    assert "cli.txt" in ls.stdout and "hello.txt" in ls.stdout, ls.describe()
    denied = run([aws, "s3", "ls", f"s3://{e.other_bucket}"], utf8_env(app), timeout=60, check=False)
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr, denied.describe()

    # quota: 2 objects stored, maxObjects 3; maxSize 1 MiB
    got = run_app(app, [["put", "$BUCKET_NAME", "big", 1 << 20],      # over maxSize
                        ["put", "$BUCKET_NAME", "third", "3"],
                        ["put", "$BUCKET_NAME", "fourth", "4"]], e.tmp)  # over maxObjects
    assert got == ["error:QuotaExceeded", "ok", "error:QuotaExceeded"], got

    # an Event says it is Bound
    e.wait(lambda: any(r == "Bound" for r, _ in events_for(e, "app")), "a Bound event for the claim")

    # delete the claim: key revoked, bucket deleted (Delete policy), children gone
    e.delete_claim_and_wait("app")
    assert e.kube.get("v1", "configmaps", "app", e.ns) is None
    assert e.kube.get("v1", "secrets", "app", e.ns) is None
    assert e.kube.get(OB_API, "objectbuckets", f"obc-{e.ns}-app") is None
    got = run_app(app, [["list", "$BUCKET_NAME"]], e.tmp)
    assert got == ["error:InvalidAccessKeyId"], got
    assert e.admin.bucket(bucket) is None, "Delete policy: the bucket must be deleted"
    assert e.admin.active_keys(user_of(claim)) == []
    reasons = [r for r, _ in events_for(e, "app")]
    assert "Revoked" in reasons or "BucketDeleted" in reasons or e.mode == "cluster", reasons


def test_generate_name_and_retain_policy(env):
    e = env
    e.claim("gen", "retain", generate="e2e-gen")
    claim, cm, sec = e.wait_bound("gen")
    check_children(e, claim, cm, sec)
    name = cm["data"]["BUCKET_NAME"]
    e.cleanup_buckets.append(name)
    assert name.startswith("e2e-gen-") and len(name) <= 63 and S3_NAME.match(name), name
    assert ".." not in name and not re.match(r"^\d+\.\d+\.\d+\.\d+$", name)
    app = e.app_env("gen")
    assert run_app(app, [["put", "$BUCKET_NAME", "keep", "me"]], e.tmp) == ["ok"]
    e.delete_claim_and_wait("gen")
    assert run_app(app, [["list", "$BUCKET_NAME"]], e.tmp) == ["error:InvalidAccessKeyId"]
    info = e.admin.bucket(name)
    assert info is not None and info["usage"]["objects"] == 1, f"Retain policy: bucket kept with its data: {info}"
    assert e.admin.active_keys(user_of(claim)) == []
    assert e.kube.get(OB_API, "objectbuckets", f"obc-{e.ns}-gen") is None


def test_long_generate_name_is_cut_to_a_valid_name(env):
    e = env
    e.claim("longgen", "delete", generate="e2e-" + "x" * 70)
    claim, cm, _ = e.wait_bound("longgen")
    name = cm["data"]["BUCKET_NAME"]
    assert name.startswith("e2e-xxxx") and len(name) <= 63 and S3_NAME.match(name), name
    e.delete_claim_and_wait("longgen")
    assert e.admin.bucket(name) is None


def brown_owner(e: Env):
    """A new key of the brownfield bucket's owner, and a boto3 client with it."""
    owner_key = e.admin.call("POST", f"/users/{e.brown_user}/keys", expect=201)[1]
    boto = __import__("boto3").session.Session().client(
        "s3", endpoint_url=e.endpoint, aws_access_key_id=owner_key["access_key"],
        aws_secret_access_key=owner_key["secret_key"], region_name=e.admin.region)
    return owner_key, boto


def test_brownfield_bucket_is_never_deleted(env):
    e = env
    owner_key, boto = brown_owner(e)
    boto.put_object(Bucket=e.brown_bucket, Key="existing", Body=b"old data")
    e.claim("brown", "brown")
    claim, cm, sec = e.wait_bound("brown")
    check_children(e, claim, cm, sec)
    assert cm["data"]["BUCKET_NAME"] == e.brown_bucket
    app = e.app_env("brown")
    assert run_app(app, [["get", "$BUCKET_NAME", "existing"], ["put", "$BUCKET_NAME", "new", "n"]],
                   e.tmp) == ["old data", "ok"]
    e.delete_claim_and_wait("brown")
    assert run_app(app, [["list", "$BUCKET_NAME"]], e.tmp) == ["error:InvalidAccessKeyId"]
    info = e.admin.bucket(e.brown_bucket)
    assert info is not None and info["owner"] == e.brown_user and info["usage"]["objects"] == 2, info
    # the owner's own key was not touched
    assert owner_key["access_key"] in e.admin.active_keys(e.brown_user)
    assert boto.get_object(Bucket=e.brown_bucket, Key="existing")["Body"].read() == b"old data"


def test_read_only_and_public_read_claims(env):
    e = env
    _, boto = brown_owner(e)
    boto.put_object(Bucket=e.brown_bucket, Key="report", Body=b"figures")
    e.claim("reader", "brown", additional={"access": "read-only"})
    claim, _, _ = e.wait_bound("reader")
    app = e.app_env("reader")
    got = run_app(app, [["get", "$BUCKET_NAME", "report"], ["put", "$BUCKET_NAME", "x", "x"]], e.tmp)
    assert got == ["figures", "error:AccessDenied"], got
    assert user_of(claim) not in e.admin.bucket(e.brown_bucket)["grants"]
    e.delete_claim_and_wait("reader")
    policy = e.admin.bucket(e.brown_bucket)["access"]["policy"]
    assert policy is None, policy

    bucket = f"e2e-public-{rand(10)}"
    e.claim("public", "delete", bucket=bucket, additional={"publicRead": "true"})
    e.wait_bound("public")
    assert run_app(e.app_env("public"), [["put", "$BUCKET_NAME", "logo", "png"]], e.tmp) == ["ok"]
    assert requests.get(f"{e.endpoint}/{bucket}/logo", timeout=10).text == "png"
    assert e.admin.bucket(bucket)["access"]["public_by_policy"] is True
    # Read-only on a claim's own bucket, and public reads of another team's, are refused.
    e.claim("own-read-only", "delete", bucket=f"e2e-ro-{rand(8)}", additional={"access": "read-only"})
    e.claim("open-theirs", "brown", additional={"publicRead": "true"})
    for name in ("own-read-only", "open-theirs"):
        e.wait(lambda n=name: e.phase(n) == "Failed", f"{name} Failed")
        assert (e.get_claim(name)["status"] or {}).get("reason") == "InvalidClaim"
    e.delete_claim_and_wait("public")


def test_foreign_and_invalid_claims(env):
    e = env
    e.claim("foreign", "foreign", bucket=f"e2e-foreign-{rand(8)}")
    e.claim("bad", "delete", bucket="Bad_Bucket_Name!")
    e.claim("sentinel", "delete", bucket=f"e2e-sentinel-{rand(8)}")
    e.wait_bound("sentinel")
    e.wait(lambda: e.phase("bad") == "Failed", "the invalid claim to be Failed")
    bad = e.get_claim("bad")
    assert bad["status"].get("reason"), bad["status"]
    e.wait(lambda: any(r == "ProvisioningFailed" for r, _ in events_for(e, "bad")),
           "a ProvisioningFailed event for the invalid claim")
    assert e.kube.get("v1", "secrets", "bad", e.ns) is None
    time.sleep(1.0)  # the foreign claim had every chance to be (wrongly) picked up
    foreign = e.get_claim("foreign")
    assert not foreign.get("status") and not foreign["metadata"].get("finalizers"), foreign
    assert e.kube.get("v1", "configmaps", "foreign", e.ns) is None
    if e.fake is not None:
        writes = [r for r in e.fake.requests if r["method"] in ("PATCH", "PUT", "POST", "DELETE")
                  and "/foreign" in r["path"] and "/events" not in r["path"]]
        assert writes == [], writes
    for n in ("foreign", "bad", "sentinel"):
        e.delete_claim_and_wait(n)


def _state(e: Env, names):
    """Per claim: (bound, active keys, secret's key) + managed object counts."""
    out = {}
    for n in names:
        c = e.get_claim(n)
        sec = e.kube.get("v1", "secrets", n, e.ns)
        ak = base64.b64decode(sec["data"]["AWS_ACCESS_KEY_ID"]).decode() if sec else None
        out[n] = ((c.get("status") or {}).get("phase"), sorted(e.admin.active_keys(user_of(c))), ak, c)
    return out


def test_restarts_are_idempotent(env):
    e = env
    names = [f"rs{i}" for i in range(4)]
    buckets = {n: f"e2e-{n}-{rand(8)}" for n in names}
    mark = len(e.fake.requests) if e.fake is not None else 0
    for n in names:
        e.claim(n, "delete", bucket=buckets[n])
    # fake mode: the crash window between creating rs1's key in Kura and writing its Secret
    # is hit for sure -- writes of that Secret fail (500) until the provisioner is killed.
    def fail_rs1_secret(method, path, query):
        if method in ("PATCH", "PUT", "POST") and path.endswith(f"/namespaces/{e.ns}/secrets/rs1"):
            return (500, "InternalError")
        return None
    if e.fake is not None:
        e.fake.faults.append(fail_rs1_secret)
    # kill -9 while the claims are being provisioned: as soon as the first child object is written
    if e.fake is not None:
        e.wait(lambda: any(r["method"] in ("PATCH", "POST") and ("/configmaps/" in r["path"] or
                                                                 "/secrets/" in r["path"] or
                                                                 r["path"].endswith("/secrets"))
                           for r in e.fake.requests[mark:]),
               "the provisioner to start writing children", timeout=WAIT, interval=0.005)
        e.wait(lambda: any(r["method"] == "PATCH" and r["path"].endswith("/secrets/rs1") and r["status"] == 500
                           for r in e.fake.requests[mark:]),
               "the provisioner to try writing rs1's Secret", timeout=WAIT, interval=0.005)
    else:
        time.sleep(0.5)
    e.prov.kill9()
    partial = {n: e.phase(n) for n in names}
    if e.fake is not None:
        e.fake.faults.remove(fail_rs1_secret)
        assert not all(p == "Bound" for p in partial.values()), f"not killed mid-way: {partial}"
        assert e.kube.get("v1", "secrets", "rs1", e.ns) is None
    e.prov.start()
    for n in names:
        e.wait_bound(n)
    st = _state(e, names)
    for n, (phase, keys, ak, c) in st.items():
        assert phase == "Bound"
        assert keys == [ak], f"{n}: exactly one active key (the Secret's) expected, got {keys} vs {ak}; " \
                             f"phases at kill: {partial}\n{e.diag()}"
    if e.fake is not None:
        # rs1's first key (its Secret never written) was revoked, not leaked
        _st, body = e.admin.call("GET", f"/users/{user_of(st['rs1'][3])}/keys", expect=200)
        statuses = sorted(k["status"] for k in body["keys"])
        assert statuses.count("active") == 1 and statuses.count("revoked") >= 1, body
    managed = "app.kubernetes.io/managed-by=kura-provisioner"
    for plural in ("configmaps", "secrets"):
        got = sorted(o["metadata"]["name"] for o in e.kube.list("v1", plural, e.ns, labelSelector=managed))
        assert [g for g in got if g in names] == names, (plural, got)
    obs = sorted(o["metadata"]["name"] for o in e.kube.list(OB_API, "objectbuckets")
                 if o["metadata"]["name"].startswith(f"obc-{e.ns}-rs"))
    assert obs == [f"obc-{e.ns}-{n}" for n in names], obs
    # every Secret works
    for n in names:
        assert run_app(e.app_env(n), [["put", "$BUCKET_NAME", "k", "v"]], e.tmp) == ["ok"], n

    # a plain restart after Bound changes nothing
    before = {n: (v[1], v[2]) for n, v in st.items()}
    rv_before = {n: e.kube.get("v1", "secrets", n, e.ns)["metadata"]["resourceVersion"] for n in names}
    e.prov.stop()
    e.prov.start()
    time.sleep(2.0)  # let it reconcile everything once more
    after = {n: (v[1], v[2]) for n, v in _state(e, names).items()}
    assert after == before, (before, after)
    rv_after = {n: e.kube.get("v1", "secrets", n, e.ns)["metadata"]["resourceVersion"] for n in names}
    assert rv_after == rv_before, "a restart must not rewrite Secrets"
    assert run_app(e.app_env("rs0"), [["get", "$BUCKET_NAME", "k"]], e.tmp) == ["v"]

    # delete them (kill -9 in the middle of that too): no leaked keys, buckets gone
    for n in names:
        e.kube.delete(OB_API, "objectbucketclaims", n, e.ns)
    time.sleep(0.2)
    e.prov.kill9()
    e.prov.start()
    for n in names:
        e.wait(lambda n=n: e.get_claim(n) is None, f"claim {n} gone after restart")
    for n, (_p, _k, _a, c) in st.items():
        assert e.admin.active_keys(user_of(c)) == [], n
        assert e.admin.bucket(buckets[n]) is None, n
    assert not [o for o in e.kube.list(OB_API, "objectbuckets")
                if o["metadata"]["name"].startswith(f"obc-{e.ns}-rs")]
    for plural in ("configmaps", "secrets"):
        assert not [o for o in e.kube.list("v1", plural, e.ns) if o["metadata"]["name"] in names], plural


def test_provisioner_health_endpoints(env):
    """/healthz while running; /readyz 200 once the claim watch has synced (a fresh start)."""
    e = env
    e.prov.stop()
    e.prov.start()
    assert e.prov.probe("/healthz") == 200
    e.wait(lambda: e.prov.probe("/readyz") == 200, "provisioner /readyz 200 after its claim watch synced",
           timeout=10)
