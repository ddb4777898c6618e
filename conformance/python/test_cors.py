"""CORS: the bucket CORS API with boto3, preflight and actual requests with requests, and
a real headless Chromium page on another origin that reads and writes a bucket (allowed by
a rule) and is refused where no rule allows it."""

import functools
import http.server
import json
import threading

import pytest
import requests

from conftest import assert_s3_error_response, free_port, s3_error, unique_bucket_name
from tools import browser_output

ORIGIN = "https://app.example.com"


def put_cors(s3, bucket, rules):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})


def test_cors_configuration_round_trip(s3, bucket):
    with s3_error("NoSuchCORSConfiguration", 404):
        s3.get_bucket_cors(Bucket=bucket)
    rules = [
        {"ID": "app", "AllowedMethods": ["GET", "PUT"], "AllowedOrigins": ["https://*.example.com"],
         "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag", "x-amz-request-id"], "MaxAgeSeconds": 600},
        {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]},
    ]
    put_cors(s3, bucket, rules)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == rules
    s3.delete_bucket_cors(Bucket=bucket)
    with s3_error("NoSuchCORSConfiguration", 404):
        s3.get_bucket_cors(Bucket=bucket)


@pytest.mark.parametrize("rules,code", [
    ([{"AllowedMethods": ["PATCH"], "AllowedOrigins": ["*"]}], "InvalidRequest"),
    ([{"AllowedMethods": ["GET"], "AllowedOrigins": ["https://*.*.com"]}], "InvalidRequest"),
    ([{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"], "AllowedHeaders": ["x-*-*"]}],
     "InvalidRequest"),
    ([{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}] * 101, "MalformedXML"),
])
def test_invalid_cors_configurations_change_nothing(s3, bucket, rules, code):
    kept = [{"AllowedMethods": ["GET"], "AllowedOrigins": [ORIGIN]}]
    put_cors(s3, bucket, kept)
    with s3_error(code, 400):
        put_cors(s3, bucket, rules)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == kept


def test_preflight_is_answered_without_credentials(server, s3, bucket):
    url = f"{server.endpoint}/{bucket}/some/key"
    ask = {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT",
           "Access-Control-Request-Headers": "Content-Type, X-Amz-Meta-Note"}
    r = requests.options(url, headers=ask, timeout=10)
    assert_s3_error_response(r, "AccessForbidden", 403, check_resource=False)  # no CORS yet
    put_cors(s3, bucket, [{"AllowedMethods": ["GET", "PUT"], "AllowedOrigins": ["https://*.example.com"],
                           "AllowedHeaders": ["content-type", "x-amz-meta-*"],
                           "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 300}])
    r = requests.options(url, headers=ask, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type, x-amz-meta-note"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag"
    assert r.headers["Access-Control-Max-Age"] == "300"
    assert "Origin" in r.headers["Vary"]
    for refused in ({**ask, "Origin": "https://evil.example.org"},
                    {**ask, "Access-Control-Request-Method": "DELETE"},
                    {**ask, "Access-Control-Request-Headers": "authorization"}):
        r = requests.options(url, headers=refused, timeout=10)
        assert_s3_error_response(r, "AccessForbidden", 403, check_resource=False)
        assert "Access-Control-Allow-Origin" not in r.headers
    r = requests.options(url, headers={"Access-Control-Request-Method": "GET"}, timeout=10)
    assert_s3_error_response(r, "BadRequest", 400, check_resource=False)


def test_actual_requests_and_their_errors_carry_cors_headers(server, s3, bucket):
    put_cors(s3, bucket, [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}])
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    for key, status in (("k", 200), ("missing", 404)):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
        r = requests.get(url, headers={"Origin": "http://anywhere"}, timeout=10)
        assert r.status_code == status
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "Origin" in r.headers["Vary"]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    assert "Access-Control-Allow-Origin" not in requests.get(url, timeout=10).headers


# --------------------------------------------------------------------------- the browser

PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
async function attempt(url, options, read) {
  try { const r = await fetch(url, options); return await read(r); }
  catch (e) { return "blocked"; }
}
(async () => {
  const out = {};
  out.get = await attempt(GET_URL, {}, async r => r.status + ":" + await r.text());
  out.put = await attempt(PUT_URL, {method: "PUT", body: "from the browser",
                                    headers: {"Content-Type": "text/plain"}},
                          async r => r.status + ":" + (r.headers.get("ETag") ? "etag" : "no-etag"));
  out.other = await attempt(OTHER_URL, {}, async r => String(r.status));
  document.getElementById("out").textContent = JSON.stringify(out);
})();
</script></body></html>"""


class PageServer:
    """Serves one page from its own origin (another port of 127.0.0.1)."""

    def __init__(self, directory):
        self.port = free_port()
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        handler.log_message = lambda *args: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.origin = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def run_page(tmp_path, page_server, urls: dict) -> dict:
    page = PAGE
    for name, url in urls.items():
        page = page.replace(name, json.dumps(url))
    (tmp_path / "index.html").write_text(page)
    return browser_output(f"{page_server.origin}/index.html", tmp_path)


def test_browser_reads_and_writes_across_origins(server, s3, bucket, tmp_path):
    page_server = PageServer(tmp_path)
    other = unique_bucket_name("nocors")
    s3.create_bucket(Bucket=other)
    try:
        signer = server.client(signature_version="s3v4")
        s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hi from kura")
        s3.put_object(Bucket=other, Key="hello.txt", Body=b"not for browsers")
        urls = {
            "GET_URL": signer.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": "hello.txt"}),
            "PUT_URL": signer.generate_presigned_url(
                "put_object", Params={"Bucket": bucket, "Key": "uploaded.txt"}),
            "OTHER_URL": signer.generate_presigned_url(
                "get_object", Params={"Bucket": other, "Key": "hello.txt"}),
        }
        put_cors(s3, bucket, [{"AllowedMethods": ["GET", "PUT"],
                               "AllowedOrigins": [page_server.origin],
                               "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"]}])
        out = run_page(tmp_path, page_server, urls)
        assert out == {"get": "200:hi from kura", "put": "200:etag", "other": "blocked"}, out
        assert s3.get_object(Bucket=bucket, Key="uploaded.txt")["Body"].read() == b"from the browser"

        # A rule for another origin only: the same page is refused everything.
        s3.delete_object(Bucket=bucket, Key="uploaded.txt")
        put_cors(s3, bucket, [{"AllowedMethods": ["GET", "PUT"],
                               "AllowedOrigins": ["https://elsewhere.example"]}])
        out = run_page(tmp_path, page_server, urls)
        assert out == {"get": "blocked", "put": "blocked", "other": "blocked"}, out
        with s3_error("NoSuchKey", 404):
            s3.get_object(Bucket=bucket, Key="uploaded.txt")
    finally:
        page_server.stop()
        s3.delete_object(Bucket=other, Key="hello.txt")
        s3.delete_bucket(Bucket=other)
