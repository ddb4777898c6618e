"""Process lifecycle: graceful shutdown and first-start credentials."""

import hashlib
import http.client
import os
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import KuraServer, _FixedPayloadSigV4, free_port


def _slow_put(server, bucket, key, body: bytes, pause: float, result: dict):
    """PUT `body` in 64 KiB pieces with a pause between them (UNSIGNED-PAYLOAD)."""
    url = f"http://127.0.0.1:{server.s3_port}/{bucket}/{key}"
    req = AWSRequest(method="PUT", url=url, headers={
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        "Content-Length": str(len(body)),
    })
    creds = Credentials(server.access_key, server.secret_key)
    _FixedPayloadSigV4(creds, "s3", server.region, "UNSIGNED-PAYLOAD").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", server.s3_port, timeout=60)
    conn.putrequest("PUT", f"/{bucket}/{key}", skip_accept_encoding=True)
    for name, value in req.headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    for i in range(0, len(body), 64 * 1024):
        conn.send(body[i:i + 64 * 1024])
        time.sleep(pause)
        result.setdefault("sent_first", threading.Event()).set()
    resp = conn.getresponse()
    result["status"] = resp.status
    result["etag"] = resp.getheader("ETag")
    resp.read()


def test_sigterm_lets_in_flight_uploads_finish(kura_bin):
    with KuraServer(kura_bin) as server:
        server.start()
        s3 = server.client()
        s3.create_bucket(Bucket="drain")
        body = os.urandom(16 * 64 * 1024)
        result = {"sent_first": threading.Event()}
        uploader = threading.Thread(target=_slow_put, args=(server, "drain", "slow.bin", body, 0.1, result))
        uploader.start()
        assert result["sent_first"].wait(10)
        os.kill(server.pid, signal.SIGTERM)
        # The listener closes at once: new connections are refused while the upload drains.
        deadline = time.time() + 5
        refused = False
        while time.time() < deadline and not refused:
            try:
                http.client.HTTPConnection("127.0.0.1", server.s3_port, timeout=1).connect()
                time.sleep(0.05)
            except OSError:
                refused = True
        uploader.join(30)
        assert refused, "the S3 listener kept accepting connections after SIGTERM"
        assert result.get("status") == 200, result
        assert server.proc.wait(30) == 0, server.log_tail()
        server.start()
        got = server.client().get_object(Bucket="drain", Key="slow.bin")
        assert hashlib.md5(got["Body"].read()).hexdigest() == hashlib.md5(body).hexdigest()
        assert result["etag"] == f'"{hashlib.md5(body).hexdigest()}"'


def _serve_without_env_keys(kura_bin, data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    s3_port, ops_port = free_port(), free_port()
    proc = subprocess.Popen(
        [str(kura_bin), "serve", "--data-dir", str(data_dir),
         "--s3-addr", f"127.0.0.1:{s3_port}", "--ops-addr", f"127.0.0.1:{ops_port}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/readyz", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out


def test_generated_credentials_are_printed_once_and_kept(kura_bin, tmp_path):
    code, first = _serve_without_env_keys(kura_bin, tmp_path / "data")
    assert code == 0, first
    secret_lines = [l for l in first.splitlines() if "AWS_SECRET_ACCESS_KEY=" in l]
    assert len(secret_lines) == 1, first
    secret = secret_lines[0].split("=", 1)[1].strip()
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:" in first
    assert len(secret) >= 40
    creds_file = tmp_path / "data" / "root-credentials.json"
    assert oct(creds_file.stat().st_mode & 0o777) == "0o600"

    code, second = _serve_without_env_keys(kura_bin, tmp_path / "data")
    assert code == 0, second
    assert secret not in second, "the secret must be printed only when generated"
    access_line = [l for l in first.splitlines() if "AWS_ACCESS_KEY_ID=" in l][0]
    assert access_line.split("=", 1)[1].strip() in second
