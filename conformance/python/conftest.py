"""Shared pytest harness for Kura's Python end-to-end tests.

Every test drives a real `kura serve` process on free loopback ports with a
temporary data directory.  Fixtures (names are a stable API, other test files
import them):

    kura_bin      session   path of the kura binary (env KURA_BIN, else
                            <repo>/target/release/kura); fails loudly if missing
    server        session   one KuraServer shared by the whole session
    s3            session   boto3 S3 client (default settings) for `server`
    bucket        function  a fresh, uniquely named bucket on `server`; emptied
                            (objects + multipart uploads) and deleted afterwards
    fresh_server  function  a KuraServer of its own (for restart / kill tests)
    make_server   function  factory: make_server(**kwargs) -> started KuraServer
                            (e.g. domain="s3.test"); all stopped at test end

    from conftest import KuraServer, unique_bucket_name

KuraServer API: .endpoint .ops_endpoint .access_key .secret_key .region
.data_dir .base_dir .log_path .s3_port .ops_port .proc .domain
.start() .stop() .kill9() .restart() .client(**botocore_config) .env()
.log_tail(n) .signed_request(method, path, ...) (raw SigV4-signed request via
`requests`), .tls_proxy() / .https_endpoint / .ca_file (a TLS proxy in front of
the S3 port: botocore only uses aws-chunked trailer checksums over https),
.client(tls=True), .env(tls=True).

The backend under test is the local one, or RADOS with KURA_TEST_BACKEND=rados and
KURA_TEST_CEPH_CONF=<ceph.conf> (scripts/test runs the suite both ways): each server then
keeps its data in a RADOS namespace of its own in the shared pools, so servers never see
each other's buckets and a restarted server finds its own. Tests that look at the local
data directory itself are marked `local_only` and are not collected for RADOS.

The test process itself never reads the user's AWS configuration: all AWS_*
variables are removed from os.environ at import and AWS_CONFIG_FILE /
AWS_SHARED_CREDENTIALS_FILE point to empty files.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote, urlunsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_ACCESS_KEY = "KURATESTACCESSKEY001"
TEST_SECRET_KEY = "kura-test-secret-key-0123456789abcdefABCDEF"
TEST_REGION = "us-east-1"
READY_TIMEOUT = 30.0
BACKEND = os.environ.get("KURA_TEST_BACKEND", "local")
CEPH_CONF = os.environ.get("KURA_TEST_CEPH_CONF", "")
# Index shards of a new bucket: `kura serve --initial-shards`' default on each backend.
INITIAL_SHARDS = 11 if BACKEND == "rados" else 1
STOP_TIMEOUT = 20.0

# --------------------------------------------------------------------------
# Isolate this process from the user's AWS configuration.
# --------------------------------------------------------------------------
_ISOLATION_DIR = Path(tempfile.mkdtemp(prefix="kura-pytest-awscfg-"))
_EMPTY_CONFIG = _ISOLATION_DIR / "config"
_EMPTY_CREDENTIALS = _ISOLATION_DIR / "credentials"
_EMPTY_CONFIG.write_text("")
_EMPTY_CREDENTIALS.write_text("")
for _k in list(os.environ):
    if _k.startswith("AWS_") or _k in ("BOTO_CONFIG",):
        del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = str(_EMPTY_CONFIG)
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(_EMPTY_CREDENTIALS)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

# Every server started by this harness, so we can stop them at session end and
# show their logs when a test fails.  Only processes we started are touched.
_LIVE_SERVERS: "list[KuraServer]" = []


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_bucket_name(prefix: str = "kt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def resolve_kura_bin() -> Path:
    env = os.environ.get("KURA_BIN")
    p = Path(env) if env else REPO_ROOT / "target" / "release" / "kura"
    return p



class TlsProxy:
    """A TLS-terminating TCP proxy on 127.0.0.1 in front of a plain-HTTP port.

    botocore sends checksums in aws-chunked *trailers* (STREAMING-UNSIGNED-
    PAYLOAD-TRAILER) only over https; over plain http it sends a header
    checksum with a signed payload.  Tests of the default https behaviour go
    through this proxy.  The certificate is self-signed for IP 127.0.0.1 and
    DNS localhost; `ca_file` is its PEM (pass as verify= / AWS_CA_BUNDLE).
    """

    def __init__(self, target_port: int, work_dir: Path):
        import ssl
        import threading

        self.target_port = target_port
        work_dir.mkdir(parents=True, exist_ok=True)
        self.ca_file = work_dir / "tls-cert.pem"
        key_file = work_dir / "tls-key.pem"
        if not self.ca_file.exists():
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key_file),
                 "-out", str(self.ca_file), "-days", "2", "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                 "-addext", "basicConstraints=critical,CA:TRUE"],
                check=True, capture_output=True)
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(str(self.ca_file), str(key_file))
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(64)
        self.port = self._lsock.getsockname()[1]
        self._stopped = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _accept_loop(self):
        import threading
        while not self._stopped:
            try:
                conn, _ = self._lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        import select
        import ssl
        tls = plain = None
        try:
            conn.settimeout(30)
            tls = self._ctx.wrap_socket(conn, server_side=True)
            tls.settimeout(None)
            plain = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
            plain.settimeout(None)
            while True:
                if tls.pending():
                    ready = [tls]
                else:
                    ready, _, _ = select.select([tls, plain], [], [], 300)
                    if not ready:
                        return
                for s in ready:
                    data = s.recv(256 * 1024)
                    if not data:
                        return
                    (plain if s is tls else tls).sendall(data)
        except (OSError, ssl.SSLError):
            return
        finally:
            for s in (tls, plain, conn):
                try:
                    if s is not None:
                        s.close()
                except OSError:
                    pass

    def stop(self):
        self._stopped = True
        try:
            self._lsock.close()
        except OSError:
            pass


class KuraServer:
    """A `kura serve` process on free loopback ports with its own data dir.

    Layout: base_dir/ (a temp dir) holds data/ (the --data-dir), kura.log
    (server stdout+stderr) and empty aws config/credentials files.
    """

    def __init__(
        self,
        kura_bin: "str | os.PathLike | None" = None,
        base_dir: "str | os.PathLike | None" = None,
        *,
        domain: "str | None" = None,
        region: str = TEST_REGION,
        access_key: str = TEST_ACCESS_KEY,
        secret_key: str = TEST_SECRET_KEY,
        extra_args: "list[str] | None" = None,
        extra_env: "dict[str, str] | None" = None,
        namespace: "str | None" = None,
    ):
        self.kura_bin = Path(kura_bin) if kura_bin else resolve_kura_bin()
        self._own_base = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="kura-e2e-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "kura.log"
        self.aws_config_file = self.base_dir / "aws-config"
        self.aws_credentials_file = self.base_dir / "aws-credentials"
        self.aws_config_file.write_text("")
        self.aws_credentials_file.write_text("")
        self.domain = domain
        self.region = region
        self.access_key = access_key
        self.secret_key = secret_key
        self.extra_args = list(extra_args or [])
        self.extra_env = dict(extra_env or {})
        self.s3_port: "int | None" = None
        self.ops_port: "int | None" = None
        self.proc: "subprocess.Popen | None" = None
        self._log_fh = None
        self._tls: "TlsProxy | None" = None
        # RADOS: this server's own namespace (kept across restarts), or another
        # server's, for several gateways on the same data.
        self.namespace = namespace or f"t{uuid.uuid4().hex[:16]}"

    # ---------------------------------------------------------------- props
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def ops_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    @property
    def pid(self) -> "int | None":
        return self.proc.pid if self.proc else None

    def tls_proxy(self) -> TlsProxy:
        """Start (once) and return a TLS proxy in front of the S3 port."""
        if self._tls is None:
            self._tls = TlsProxy(self.s3_port, self.base_dir)
        return self._tls

    @property
    def https_endpoint(self) -> str:
        return self.tls_proxy().endpoint

    @property
    def ca_file(self) -> str:
        return str(self.tls_proxy().ca_file)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __repr__(self) -> str:
        return f"<KuraServer {self.endpoint} pid={self.pid} data={self.data_dir}>"

    # ------------------------------------------------------------ lifecycle
    def _command(self) -> "list[str]":
        cmd = [
            str(self.kura_bin), "serve",
            "--data-dir", str(self.data_dir),
            "--s3-addr", f"127.0.0.1:{self.s3_port}",
            "--ops-addr", f"127.0.0.1:{self.ops_port}",
            "--region", self.region,
        ]
        if self.domain:
            cmd += ["--domain", self.domain]
        if BACKEND == "rados":
            cmd += ["--backend", "rados", "--ceph-conf", CEPH_CONF,
                    "--ceph-namespace", self.namespace]
        return cmd + self.extra_args

    def _server_env(self) -> "dict[str, str]":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KURA_"))}
        env["KURA_ROOT_ACCESS_KEY"] = self.access_key
        env["KURA_ROOT_SECRET_KEY"] = self.secret_key
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = READY_TIMEOUT) -> "KuraServer":
        if self.is_running():
            return self
        if not self.kura_bin.exists():
            raise FileNotFoundError(
                f"kura binary not found at {self.kura_bin} (set KURA_BIN or run cargo build --release)")
        first = self.s3_port is None
        attempts = 3 if first else 1
        last_err = None
        for _ in range(attempts):
            if first:
                self.s3_port = free_port()
                self.ops_port = free_port()
                while self.ops_port == self.s3_port:
                    self.ops_port = free_port()
            try:
                self._spawn_and_wait(timeout)
                return self
            except RuntimeError as e:  # port race or startup failure
                last_err = e
                self._reap()
        raise last_err  # type: ignore[misc]

    def _spawn_and_wait(self, timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_fh = open(self.log_path, "ab", buffering=0)
        self._log_fh.write(f"\n===== start {' '.join(self._command())} =====\n".encode())
        self.proc = subprocess.Popen(
            self._command(), stdout=self._log_fh, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=self._server_env(), cwd=str(self.base_dir),
        )
        if self not in _LIVE_SERVERS:
            _LIVE_SERVERS.append(self)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"kura exited with {self.proc.returncode} during startup\n--- log tail ---\n"
                    + self.log_tail())
            try:
                with urllib.request.urlopen(self.ops_endpoint + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
                    last = r.status
            except urllib.error.HTTPError as e:
                last = e.code
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise RuntimeError(
            f"kura not ready after {timeout}s (last /readyz: {last!r})\n--- log tail ---\n" + self.log_tail())

    def _reap(self) -> None:
        """Make sure our own process (by PID) is gone; close the log."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def stop(self, timeout: float = STOP_TIMEOUT) -> "int | None":
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                sys.stderr.write(f"kura pid {self.proc.pid} ignored SIGTERM for {timeout}s; SIGKILL\n")
        self._reap()
        return self.proc.returncode

    def kill9(self) -> None:
        """SIGKILL the server (crash simulation); ports and data dir are kept."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        self._reap()

    def restart(self, timeout: float = READY_TIMEOUT, kill: bool = False) -> "KuraServer":
        """Stop (gracefully, or SIGKILL with kill=True) and start again on the same
        data dir and ports."""
        if kill:
            self.kill9()
        else:
            self.stop()
        deadline = time.monotonic() + 10
        err = None
        while True:  # the old socket may linger briefly
            try:
                self._spawn_and_wait(timeout)
                return self
            except RuntimeError as e:
                err = e
                self._reap()
                if time.monotonic() > deadline:
                    raise err
                time.sleep(0.3)

    def cleanup(self) -> None:
        """Stop and delete the base dir (if we created it)."""
        self.stop()
        if self._tls is not None:
            self._tls.stop()
            self._tls = None
        if self in _LIVE_SERVERS:
            _LIVE_SERVERS.remove(self)
        if self._own_base and not os.environ.get("KURA_KEEP_DATA"):
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # ------------------------------------------------------------- helpers
    def log_tail(self, n: int = 80) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def client(self, access_key: "str | None" = None, secret_key: "str | None" = None,
               endpoint_url: "str | None" = None, tls: bool = False, **config):
        """A boto3 S3 client with botocore's default settings (default CRC
        checksums...). `config` kwargs go to botocore.config.Config (e.g.
        s3={'addressing_style': 'virtual'}).  tls=True talks https through
        tls_proxy() -- that is where botocore uses aws-chunked trailers."""
        import boto3
        from botocore.config import Config

        session = boto3.session.Session()
        return session.client(
            "s3",
            endpoint_url=endpoint_url or (self.https_endpoint if tls else self.endpoint),
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
            config=Config(**config) if config else None,
            verify=self.ca_file if tls else None,
        )

    def env(self, base: "dict[str, str] | None" = None, tls: bool = False) -> "dict[str, str]":
        """A complete environment for subprocess clients (aws CLI, SDKs): the
        current environment without any AWS_* variable, plus the endpoint, keys
        and region of this server, and empty aws config/credentials files.
        tls=True: https endpoint through tls_proxy() and AWS_CA_BUNDLE set."""
        src = os.environ if base is None else base
        env = {k: v for k, v in src.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": str(self.aws_config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.aws_credentials_file),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
        })
        if tls:
            env["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL_S3"] = self.https_endpoint
            env["AWS_CA_BUNDLE"] = self.ca_file
        return env

    def signed_request(self, method: str, path: str = "/", *, query=None, headers=None,
                       body: bytes = b"", host: "str | None" = None,
                       access_key: "str | None" = None, secret_key: "str | None" = None,
                       unsigned_payload: bool = False, sign: bool = True, timeout: float = 30,
                       content_sha256: "str | None" = None, when=None, region: "str | None" = None):
        """Send a raw SigV4-signed request with `requests`.

        path: already-URL-encoded path, e.g. "/bucket/key%20x".
        query: dict or list of (k, v) pairs (v None -> bare "?k").
        host: Host header value to sign and send (e.g. "bkt.s3.test:PORT" for
        virtual-hosted style); the TCP connection always goes to 127.0.0.1.
        content_sha256: x-amz-content-sha256 value to sign as is (e.g.
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" or a deliberately wrong hash).
        when: a datetime (UTC) to sign with instead of now (clock-skew tests).
        region: sign for this region instead of the server's.
        body may be a callable(signing) -> bytes, called after the headers are
        signed with a dict {signature, amz_date, scope, signing_key} (for
        aws-chunked bodies with chunk signatures).
        """
        import requests
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        headers = dict(headers or {})
        qs = ""
        if query:
            items = list(query.items()) if isinstance(query, dict) else list(query)
            parts = []
            for k, v in items:
                parts.append(quote(k, safe="-_.~") if v is None
                             else f"{quote(k, safe='-_.~')}={quote(str(v), safe='-_.~')}")
            qs = "&".join(parts)
        netloc = host or f"127.0.0.1:{self.s3_port}"
        sign_url = urlunsplit(("http", netloc, path, qs, ""))
        signing = None
        if sign:
            if unsigned_payload:
                content_sha256 = "UNSIGNED-PAYLOAD"
            req = AWSRequest(method=method, url=sign_url,
                             data=b"" if callable(body) else body, headers=headers)
            creds = Credentials(access_key or self.access_key, secret_key or self.secret_key)
            sign_region = region or self.region
            auth = _FixedPayloadSigV4(creds, "s3", sign_region, content_sha256)
            if when is not None:
                from unittest import mock
                with mock.patch("botocore.auth.get_current_datetime", return_value=when):
                    auth.add_auth(req)
            else:
                auth.add_auth(req)
            headers = dict(req.headers.items())
            authz = headers["Authorization"]
            amz_date = headers["X-Amz-Date"]
            scope = f"{amz_date[:8]}/{sign_region}/s3/aws4_request"
            signing = {
                "signature": authz.rsplit("Signature=", 1)[1],
                "amz_date": amz_date,
                "scope": scope,
                "signing_key": sigv4_signing_key(secret_key or self.secret_key, amz_date[:8], sign_region),
            }
        if callable(body):
            body = body(signing)
        send_url = urlunsplit(("http", f"127.0.0.1:{self.s3_port}", path, qs, ""))
        headers["Host"] = netloc
        return requests.request(method, send_url, headers=headers, data=body,
                                timeout=timeout, allow_redirects=False)


def _fixed_payload_sigv4_class():
    from botocore.auth import S3SigV4Auth

    class FixedPayloadSigV4(S3SigV4Auth):
        def __init__(self, credentials, service, region, fixed=None):
            super().__init__(credentials, service, region)
            self._fixed = fixed

        def payload(self, request):
            if self._fixed is not None:
                return self._fixed
            return super().payload(request)

    return FixedPayloadSigV4


def _FixedPayloadSigV4(creds, service, region, fixed):  # noqa: N802
    return _fixed_payload_sigv4_class()(creds, service, region, fixed)


def sigv4_signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    import hmac

    def h(k, m):
        return hmac.new(k, m.encode(), "sha256").digest()
    return h(h(h(h(("AWS4" + secret).encode(), date), region), service), "aws4_request")


EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def aws_chunked_signed(chunks: "list[bytes]", signing: dict, trailer: "dict[str, str] | None" = None,
                       corrupt_chunk: "int | None" = None, corrupt_trailer_sig: bool = False) -> bytes:
    """Encode chunks as STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] body with
    chunk signatures chained from the seed signature. A final 0-length chunk
    is appended.  trailer: {"x-amz-checksum-crc32": "<b64>"} -> signed trailer."""
    import hashlib
    import hmac

    key, prev = signing["signing_key"], signing["signature"]
    out = bytearray()
    for i, c in enumerate(list(chunks) + [b""]):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", signing["amz_date"], signing["scope"], prev,
                         EMPTY_SHA256, hashlib.sha256(c).hexdigest()])
        sig = hmac.new(key, sts.encode(), "sha256").hexdigest()
        prev = sig
        if corrupt_chunk == i:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        out += f"{len(c):x};chunk-signature={sig}\r\n".encode() + c
        if c or trailer is None:
            out += b"\r\n"
    if trailer is not None:
        canon = "".join(f"{k}:{v}\n" for k, v in trailer.items())
        sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", signing["amz_date"], signing["scope"], prev,
                         hashlib.sha256(canon.encode()).hexdigest()])
        tsig = hmac.new(key, sts.encode(), "sha256").hexdigest()
        if corrupt_trailer_sig:
            tsig = ("0" if tsig[0] != "0" else "1") + tsig[1:]
        for k, v in trailer.items():
            out += f"{k}:{v}\r\n".encode()
        out += f"x-amz-trailer-signature:{tsig}\r\n\r\n".encode()
    return bytes(out)


def aws_chunked_unsigned(chunks: "list[bytes]", trailer: "dict[str, str] | None" = None) -> bytes:
    """STREAMING-UNSIGNED-PAYLOAD-TRAILER body (what botocore sends over https)."""
    out = bytearray()
    for c in chunks:
        if c:
            out += f"{len(c):x}\r\n".encode() + c + b"\r\n"
    out += b"0\r\n"
    for k, v in (trailer or {}).items():
        out += f"{k}:{v}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "local_only: looks at the local backend's data directory itself")
    config.addinivalue_line(
        "markers", "rados_only: needs a Ceph cluster (several gateways, lost racks)")
    if BACKEND not in ("local", "rados"):
        raise pytest.UsageError(f"KURA_TEST_BACKEND must be local or rados, not {BACKEND!r}")
    if BACKEND == "rados" and not Path(CEPH_CONF).is_file():
        raise pytest.UsageError(
            "KURA_TEST_BACKEND=rados needs KURA_TEST_CEPH_CONF=<ceph.conf of a running cluster> "
            "(scripts/ceph-cluster start DIR prints it)")


def pytest_collection_modifyitems(config, items):
    unwanted = "local_only" if BACKEND == "rados" else "rados_only"
    items[:] = [item for item in items if item.get_closest_marker(unwanted) is None]


def _server_factory(kura_bin, **kwargs) -> KuraServer:
    srv = KuraServer(kura_bin, **kwargs)
    try:
        srv.start()
    except Exception:
        srv.cleanup()
        raise
    return srv


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def kura_bin() -> Path:
    p = resolve_kura_bin()
    if not p.exists():
        pytest.fail(
            f"kura binary not found: {p}. Build it (cargo build --release) or set KURA_BIN.",
            pytrace=False)
    if not os.access(p, os.X_OK):
        pytest.fail(f"kura binary is not executable: {p}", pytrace=False)
    return p


@pytest.fixture(scope="session")
def server(kura_bin):
    srv = _server_factory(kura_bin)
    yield srv
    srv.cleanup()


def attach_error_shape_checker(client):
    """Make every error response this client receives be checked: an
    x-amz-request-id header, and (except for HEAD and 304) an S3 XML <Error>
    with Code, a non-empty Message, Resource and RequestId equal to the
    header.  A violation raises AssertionError inside the failing call."""
    def check(http_response, parsed, model, **kw):
        status = http_response.status_code
        if status < 300:
            return
        hdrs = {k.lower(): v for k, v in http_response.headers.items()}
        rid = hdrs.get("x-amz-request-id")
        assert rid, f"{model.name}: error {status} without x-amz-request-id"
        if model.http.get("method") == "HEAD" or status == 304:
            return
        body = http_response.content
        try:
            err = parse_error_xml(body)
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"{model.name}: error {status} body is not an S3 <Error>: {body[:300]!r}") from e
        assert err.get("Code"), f"{model.name}: no Code in {err}"
        assert err.get("Message"), f"{model.name}: empty Message in {err}"
        assert "Resource" in err, f"{model.name}: no Resource in {err}"
        assert err.get("RequestId") == rid, f"{model.name}: RequestId {err.get('RequestId')!r} != header {rid!r}"
    client.meta.events.register("after-call.s3", check)
    return client


@pytest.fixture(scope="session")
def s3(server):
    """boto3 client for `server`; every error response it receives is checked
    for S3's error shape (see attach_error_shape_checker)."""
    return attach_error_shape_checker(server.client())


def empty_and_delete_bucket(client, name: str) -> None:
    """Best effort: abort uploads, delete all objects (and versions), delete bucket."""
    try:
        while True:
            r = client.list_multipart_uploads(Bucket=name)
            ups = r.get("Uploads", [])
            for u in ups:
                try:
                    client.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
                except Exception:
                    pass
            if not r.get("IsTruncated") or not ups:
                break
    except Exception:
        pass
    for _ in range(100):
        try:
            r = client.list_object_versions(Bucket=name)
        except Exception:
            break
        found = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                 for v in r.get("Versions", []) + r.get("DeleteMarkers", [])]
        if not found:
            break
        try:
            client.delete_objects(Bucket=name, Delete={"Objects": found, "Quiet": True})
        except Exception:
            for v in found:
                try:
                    client.delete_object(Bucket=name, **v)
                except Exception:
                    pass
    try:
        client.delete_bucket(Bucket=name)
    except Exception:
        pass


@pytest.fixture
def bucket(server, s3):
    name = unique_bucket_name()
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete_bucket(s3, name)


@pytest.fixture
def fresh_server(kura_bin):
    srv = _server_factory(kura_bin)
    yield srv
    srv.cleanup()


@pytest.fixture
def make_server(kura_bin):
    made: "list[KuraServer]" = []

    def make(**kwargs) -> KuraServer:
        srv = _server_factory(kura_bin, **kwargs)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.cleanup()


# --------------------------------------------------------------------------
# Hooks: server log tails on failure; stop everything we started.
# --------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("setup", "call"):
        for srv in list(_LIVE_SERVERS):
            rep.sections.append((f"kura log tail ({srv.base_dir})", srv.log_tail(60)))


def pytest_sessionfinish(session, exitstatus):
    for srv in list(_LIVE_SERVERS):
        try:
            srv.stop(timeout=10)
        except Exception:
            pass
    shutil.rmtree(_ISOLATION_DIR, ignore_errors=True)


# --------------------------------------------------------------------------
# Helpers shared by test files (import from conftest)
# --------------------------------------------------------------------------
import base64 as _b64
import contextlib as _contextlib
import hashlib as _hashlib
import zlib as _zlib
import xml.etree.ElementTree as _ET


@_contextlib.contextmanager
def s3_error(code: str, status: int):
    """Assert that the block raises botocore ClientError with this S3 error
    code and HTTP status.  Yields a dict that gets the error response."""
    from botocore.exceptions import ClientError

    holder: dict = {}
    try:
        yield holder
    except ClientError as e:
        holder.update(e.response)
        got_code = e.response.get("Error", {}).get("Code")
        got_status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        assert (got_code, got_status) == (code, status), \
            f"expected {code}/{status}, got {got_code}/{got_status}: {e.response.get('Error')}"
        return
    raise AssertionError(f"expected S3 error {code}/{status}, but the call succeeded")


@_contextlib.contextmanager
def s3_error_any(*allowed: "tuple[str, int]"):
    """Like s3_error, but any of several (code, status) pairs is accepted (for
    cases where AWS's documented answer is ambiguous)."""
    from botocore.exceptions import ClientError

    holder: dict = {}
    try:
        yield holder
    except ClientError as e:
        holder.update(e.response)
        got = (e.response.get("Error", {}).get("Code"),
               e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
        assert got in allowed, f"expected one of {allowed}, got {got}: {e.response.get('Error')}"
        return
    raise AssertionError(f"expected one of S3 errors {allowed}, but the call succeeded")


def parse_error_xml(body: bytes) -> "dict[str, str]":
    """Parse an S3 <Error> document into {Code, Message, Resource, RequestId, ...}."""
    root = _ET.fromstring(body)
    assert _local(root.tag) == "Error", f"root element is {root.tag!r}, not Error: {body[:300]!r}"
    return {_local(c.tag): (c.text or "") for c in root}


def _local(tag: str) -> str:
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def assert_s3_error_response(resp, code: str, status: int, *, check_resource: bool = True) -> dict:
    """For a `requests` response: status, x-amz-request-id header, XML body with
    Code, non-empty Message, Resource and RequestId (equal to the header)."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.content[:500]!r}"
    rid = resp.headers.get("x-amz-request-id")
    assert rid, f"no x-amz-request-id header: {dict(resp.headers)}"
    err = parse_error_xml(resp.content)
    assert err.get("Code") == code, f"expected Code {code}, got {err}"
    assert err.get("Message"), f"empty Message: {err}"
    if check_resource:
        assert "Resource" in err, f"no Resource element: {err}"
    assert err.get("RequestId") == rid, f"RequestId {err.get('RequestId')!r} != header {rid!r}"
    return err


def xml_find_all(body: bytes, name: str) -> "list[_ET.Element]":
    root = _ET.fromstring(body)
    return [e for e in root.iter() if _local(e.tag) == name]


def xml_text(body: bytes, name: str) -> "str | None":
    found = xml_find_all(body, name)
    return (found[0].text or "") if found else None


def md5_hex(data: bytes) -> str:
    return _hashlib.md5(data).hexdigest()


def b64(data: bytes) -> str:
    return _b64.b64encode(data).decode()


def multipart_etag(parts: "list[bytes]") -> str:
    """S3's ETag of a completed multipart upload: md5 of the concatenated
    binary part md5s, then '-N' (quoted, as in the ETag header)."""
    digests = b"".join(_hashlib.md5(p).digest() for p in parts)
    return f'"{_hashlib.md5(digests).hexdigest()}-{len(parts)}"'


# --- CRCs (pure Python; reflected table-driven, with combine for big data) --
def _make_table(poly: int, width: int) -> "list[int]":
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_POLY = 0x82F63B78
_CRC64NVME_POLY = 0x9A6C9329AC4BC9B5
_CRC32C_TABLE = _make_table(_CRC32C_POLY, 32)
_CRC64_TABLE = _make_table(_CRC64NVME_POLY, 64)


def _crc_update(data: bytes, table, mask: int, crc: int = 0) -> int:
    c = crc ^ mask
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ mask


def _gf2_times(mat, vec):
    s = 0
    i = 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def _gf2_square(mat):
    return [_gf2_times(mat, m) for m in mat]


def _crc_combine(crc1: int, crc2: int, len2: int, poly: int, width: int) -> int:
    """zlib's crc32_combine, generalised: CRC(A+B) from CRC(A), CRC(B), len(B)."""
    if len2 <= 0:
        return crc1
    odd = [poly] + [1 << i for i in range(width - 1)]
    even = _gf2_square(odd)   # 2 zero bits
    odd = _gf2_square(even)   # 4 zero bits
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


try:  # awscrt is optional; use it when installed (fast), else pure Python
    from awscrt import checksums as _crt_checksums  # type: ignore
except Exception:  # pragma: no cover
    _crt_checksums = None

_BLOCK = 64 * 1024


def _crc_big(data: bytes, table, mask, poly, width) -> int:
    """CRC of data in 64 KiB blocks, caching identical blocks (test data is
    built from repeated blocks, so multi-MiB CRCs stay fast in pure Python)."""
    cache: dict = {}
    crc = 0
    for off in range(0, len(data), _BLOCK):
        blk = bytes(data[off:off + _BLOCK])
        c = cache.get(blk)
        if c is None:
            c = _crc_update(blk, table, mask)
            if len(cache) < 64:
                cache[blk] = c
        crc = _crc_combine(crc, c, len(blk), poly, width) if off else c
    return crc


def crc32c_int(data: bytes) -> int:
    if _crt_checksums is not None:
        return _crt_checksums.crc32c(data)
    return _crc_big(data, _CRC32C_TABLE, 0xFFFFFFFF, _CRC32C_POLY, 32)


def crc64nvme_int(data: bytes) -> int:
    if _crt_checksums is not None and hasattr(_crt_checksums, "crc64nvme"):
        return _crt_checksums.crc64nvme(data)
    return _crc_big(data, _CRC64_TABLE, 0xFFFFFFFFFFFFFFFF, _CRC64NVME_POLY, 64)


def checksum_b64(algorithm: str, data: bytes) -> str:
    """base64 of the big-endian digest, as in x-amz-checksum-* headers."""
    a = algorithm.upper()
    if a == "CRC32":
        raw = (_zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
    elif a == "CRC32C":
        raw = crc32c_int(data).to_bytes(4, "big")
    elif a == "CRC64NVME":
        raw = crc64nvme_int(data).to_bytes(8, "big")
    elif a == "SHA1":
        raw = _hashlib.sha1(data).digest()
    elif a == "SHA256":
        raw = _hashlib.sha256(data).digest()
    else:
        raise ValueError(algorithm)
    return b64(raw)


def composite_checksum_b64(algorithm: str, parts: "list[bytes]") -> str:
    """AWS COMPOSITE multipart checksum: checksum of the concatenated binary
    part checksums, base64, then '-N'."""
    raw = b"".join(_b64.b64decode(checksum_b64(algorithm, p)) for p in parts)
    return f"{checksum_b64(algorithm, raw)}-{len(parts)}"


def patterned_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic test data built from a repeated pseudo-random 64 KiB block
    (with the offset-0 block distinct) -- cheap to CRC via block caching."""
    import random
    rnd = random.Random(seed)
    block = rnd.randbytes(_BLOCK)
    head = rnd.randbytes(min(size, _BLOCK))
    if size <= _BLOCK:
        return head
    reps = (size - _BLOCK) // _BLOCK + 1
    return (head + block * reps)[:size]


MiB = 1024 * 1024


def create_user(server, name: "str | None" = None) -> "tuple[str, str, str]":
    """A new Kura user with one access key, made through the admin API with the root
    credentials: (name, access_key, secret_key)."""
    import json as _json
    import uuid as _uuid

    name = name or f"u{_uuid.uuid4().hex[:10]}"
    api = "/_kura/admin/v1"
    json_type = {"Content-Type": "application/json"}
    r = server.signed_request("POST", f"{api}/users", body=_json.dumps({"name": name}).encode(),
                              headers=json_type)
    assert r.status_code in (200, 201), r.text
    r = server.signed_request("POST", f"{api}/users/{quote(name, safe='')}/keys", headers=json_type)
    assert r.status_code in (200, 201), r.text
    key = r.json()
    return name, key["access_key"], key["secret_key"]


def anonymous_client(server, **config):
    """A boto3 client that sends no credentials at all (botocore's UNSIGNED)."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=server.endpoint, region_name=server.region,
        config=Config(signature_version=UNSIGNED, **config))
