"""Browser uploads (PostObject): forms built with boto3's generate_presigned_post (SigV4
and V2) sent with requests, the policy document's conditions, success_action_status and
redirects, metadata, checksums and ACLs from form fields; forged signatures, expired and
violated policies each get AWS's error and store nothing; and a headless Chromium page
served by Kura that uploads through a presigned POST form and reads a public object."""

import base64
import hashlib
import hmac
import json
import xml.etree.ElementTree as ET

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import (
    anonymous_client,
    assert_s3_error_response,
    create_user,
    s3_error,
    sigv4_signing_key,
)
from tools import browser_output


@pytest.fixture(scope="module")
def signer(server):
    """Signs forms with SigV4 (the default client presigns with V2)."""
    return server.client(signature_version="s3v4")


def post(presigned, filename="photo.jpg", body=b"form data", extra=None):
    fields = dict(presigned["fields"])
    fields.update(extra or {})
    return requests.post(presigned["url"], data=fields, files={"file": (filename, body)},
                         allow_redirects=False, timeout=30)


def test_sigv4_form_with_conditions_metadata_and_acl(server, s3, signer, bucket):
    presigned = signer.generate_presigned_post(
        bucket, "uploads/${filename}",
        Fields={"acl": "public-read", "Content-Type": "image/jpeg", "x-amz-meta-camera": "x100",
                "success_action_status": "201"},
        Conditions=[["starts-with", "$key", "uploads/"], {"acl": "public-read"},
                    ["starts-with", "$Content-Type", "image/"], {"x-amz-meta-camera": "x100"},
                    {"success_action_status": "201"}, ["content-length-range", 1, 1024]],
        ExpiresIn=600)
    assert presigned["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    r = post(presigned)
    assert r.status_code == 201, r.text
    doc = ET.fromstring(r.content)
    assert doc.tag == "PostResponse"
    assert doc.findtext("Key") == "uploads/photo.jpg" and doc.findtext("Bucket") == bucket
    head = s3.head_object(Bucket=bucket, Key="uploads/photo.jpg")
    assert head["ContentType"] == "image/jpeg" and head["Metadata"] == {"camera": "x100"}
    assert f'"{hashlib.md5(b"form data").hexdigest()}"' == doc.findtext("ETag") == head["ETag"]
    anon = anonymous_client(server)
    assert anon.get_object(Bucket=bucket, Key="uploads/photo.jpg")["Body"].read() == b"form data"


def test_a_key_condition_reads_the_filename_filled_in_or_the_field_as_sent(s3, signer, bucket):
    # As radosgw reads it: the key the object gets.
    filled = signer.generate_presigned_post(
        bucket, "${filename}", Conditions=[["starts-with", "$key", "shot-"]], ExpiresIn=600)
    filled["fields"]["key"] = "${filename}"
    assert post(filled, filename="shot-1.jpg").status_code == 204
    assert post(filled, filename="other.jpg").status_code == 403
    # As sent: an exact condition on the field with its variable.
    exact = signer.generate_presigned_post(
        bucket, "in/${filename}", Conditions=[{"key": "in/${filename}"}], ExpiresIn=600)
    assert post(exact, filename="a.jpg").status_code == 204
    assert s3.get_object(Bucket=bucket, Key="shot-1.jpg")["Body"].read() == b"form data"
    assert s3.get_object(Bucket=bucket, Key="in/a.jpg")["Body"].read() == b"form data"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="other.jpg")


def test_tagging_field(s3, signer, bucket):
    tagging = "<Tagging><TagSet><Tag><Key>team</Key><Value>blue</Value></Tag></TagSet></Tagging>"
    presigned = signer.generate_presigned_post(bucket, "tagged", Fields={"tagging": tagging},
                                               Conditions=[{"tagging": tagging}])
    assert post(presigned).status_code == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == [{"Key": "team", "Value": "blue"}]
    bad = "<Tagging><TagSet><Tag><Key>team</Key></Tag>"
    presigned = signer.generate_presigned_post(bucket, "badly-tagged", Fields={"tagging": bad},
                                               Conditions=[{"tagging": bad}])
    assert_s3_error_response(post(presigned), "MalformedXML", 400)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="badly-tagged")


def test_sse_c_fields(s3, signer, bucket):
    key = bytes(range(32))
    sse = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
           "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
           "x-amz-server-side-encryption-customer-key-MD5": base64.b64encode(hashlib.md5(key).digest()).decode()}
    presigned = signer.generate_presigned_post(bucket, "sealed", Fields=sse,
                                               Conditions=[{k: v} for k, v in sse.items()])
    assert post(presigned).status_code == 204
    with s3_error("InvalidRequest", 400):
        s3.get_object(Bucket=bucket, Key="sealed")
    got = s3.get_object(Bucket=bucket, Key="sealed", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert got["Body"].read() == b"form data"


def test_status_and_redirect(signer, bucket):
    plain = signer.generate_presigned_post(bucket, "a.txt")
    r = post(plain)
    assert r.status_code == 204 and r.headers["ETag"]
    ok = signer.generate_presigned_post(bucket, "b.txt", Fields={"success_action_status": "200"},
                                    Conditions=[{"success_action_status": "200"}])
    assert post(ok).status_code == 200
    redirect = signer.generate_presigned_post(
        bucket, "c.txt", Fields={"success_action_redirect": "https://app.example/done"},
        Conditions=[{"success_action_redirect": "https://app.example/done"}])
    r = post(redirect)
    assert r.status_code == 303
    assert r.headers["Location"].startswith(f"https://app.example/done?bucket={bucket}&key=c.txt&etag=")


def test_v2_form_signature(server, bucket, s3):
    v2 = server.client(signature_version="s3")
    presigned = v2.generate_presigned_post(bucket, "v2.txt")
    assert "AWSAccessKeyId" in presigned["fields"] and "signature" in presigned["fields"]
    assert post(presigned, body=b"old client").status_code == 204
    assert s3.get_object(Bucket=bucket, Key="v2.txt")["Body"].read() == b"old client"
    forged = dict(presigned, fields=dict(presigned["fields"], signature="AAAA" + presigned["fields"]["signature"][4:]))
    assert_s3_error_response(post(forged, body=b"x"), "SignatureDoesNotMatch", 403)


def test_checksum_fields(s3, signer, bucket):
    good = base64.b64encode(hashlib.sha256(b"form data").digest()).decode()
    presigned = signer.generate_presigned_post(bucket, "sum.txt", Fields={"x-amz-checksum-sha256": good},
                                           Conditions=[{"x-amz-checksum-sha256": good}])
    assert post(presigned).status_code == 204
    attrs = s3.head_object(Bucket=bucket, Key="sum.txt", ChecksumMode="ENABLED")
    assert attrs["ChecksumSHA256"] == good
    r = post(presigned, body=b"something else")
    assert r.status_code == 400, r.text
    assert s3.get_object(Bucket=bucket, Key="sum.txt")["Body"].read() == b"form data"


@pytest.mark.parametrize("case", ["forged", "expired", "condition", "extra", "too-large", "too-small",
                                  "no-file", "no-key", "malformed-policy"])
def test_bad_forms_store_nothing(server, s3, signer, bucket, case):
    key = f"bad-{case}"
    presigned = signer.generate_presigned_post(bucket, key, Conditions=[["content-length-range", 2, 16]],
                                           ExpiresIn=-60 if case == "expired" else 600)
    fields = dict(presigned["fields"])
    body, code, status = b"form data", None, None
    if case == "forged":
        fields["x-amz-signature"] = "0" * 64
        code, status = "SignatureDoesNotMatch", 403
    elif case == "expired":
        code, status = "AccessDenied", 403
    elif case == "condition":
        fields["key"] = "elsewhere"
        code, status = "AccessDenied", 403
    elif case == "extra":
        fields["x-amz-meta-unsigned"] = "1"
        code, status = "AccessDenied", 403
    elif case == "too-large":
        body, code, status = b"x" * 17, "EntityTooLarge", 400
    elif case == "too-small":
        body, code, status = b"x", "EntityTooSmall", 400
    elif case == "malformed-policy":
        # A correctly signed document that is not JSON.
        fields["policy"] = base64.b64encode(b"{not json").decode()
        date = fields["x-amz-date"][:8]
        signing_key = sigv4_signing_key(server.secret_key, date, server.region)
        fields["x-amz-signature"] = hmac.new(signing_key, fields["policy"].encode(), hashlib.sha256).hexdigest()
        code, status = "InvalidPolicyDocument", 400
    if case == "no-file":
        r = requests.post(presigned["url"], data=fields, files={"notes": (None, "no file")}, timeout=30)
        code, status = "InvalidArgument", 400
    elif case == "no-key":
        del fields["key"]
        r = requests.post(presigned["url"], data=fields, files={"file": ("f", body)}, timeout=30)
        code, status = "InvalidArgument", 400
    else:
        r = requests.post(presigned["url"], data=fields, files={"file": ("f", body)}, timeout=30)
    err = assert_s3_error_response(r, code, status)
    if case == "expired":
        assert "Policy expired" in err["Message"]
    if case == "condition":
        assert "Policy Condition failed" in err["Message"]
    for name in (key, "elsewhere"):
        with s3_error("NoSuchKey", 404):
            s3.get_object(Bucket=bucket, Key=name)


def test_who_may_post(server, s3, bucket):
    _, ak, sk = create_user(server)
    r = post(server.client(ak, sk, signature_version="s3v4").generate_presigned_post(bucket, "from-stranger"))
    assert_s3_error_response(r, "AccessDenied", 403)
    # Without credentials, a form is anonymous: only a bucket open to everyone takes it.
    plain = {"url": f"{server.endpoint}/{bucket}", "fields": {"key": "anon.txt"}}
    assert_s3_error_response(post(plain), "AccessDenied", 403)
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    assert post(plain, body=b"from anyone").status_code == 204
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    assert s3.get_object(Bucket=bucket, Key="anon.txt")["Body"].read() == b"from anyone"
    huge = requests.post(f"{server.endpoint}/{bucket}", files={"key": (None, "k" * 200_000), "file": ("f", b"x")},
                         timeout=30)
    assert_s3_error_response(huge, "MaxPostPreDataLengthExceeded", 400)
    r = requests.post(f"{server.endpoint}/{bucket}", data=b"not a form",
                      headers={"Content-Type": "text/plain"}, timeout=30)
    assert_s3_error_response(r, "PreconditionFailed", 412)


UPLOAD_PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
const FORM = FORM_JSON;
(async () => {
  const out = {};
  const data = new FormData();
  for (const [name, value] of Object.entries(FORM.fields)) data.append(name, value);
  data.append("file", new Blob(["uploaded by chromium"], {type: "text/plain"}), "note.txt");
  const posted = await fetch(FORM.url, {method: "POST", body: data});
  out.post = posted.status;
  const read = await fetch("hello.txt");
  out.read = read.status + ":" + await read.text();
  document.getElementById("out").textContent = JSON.stringify(out);
})();
</script></body></html>"""


def test_chromium_uploads_with_a_presigned_form_served_by_kura(server, s3, signer, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="site/hello.txt", Body=b"public hello", ACL="public-read")
    presigned = signer.generate_presigned_post(
        bucket, "inbox/${filename}", Fields={"Content-Type": "text/plain"},
        Conditions=[["starts-with", "$key", "inbox/"], ["starts-with", "$Content-Type", "text/"],
                    ["content-length-range", 1, 4096]])
    page = UPLOAD_PAGE.replace("FORM_JSON", json.dumps(presigned))
    s3.put_object(Bucket=bucket, Key="site/upload.html", Body=page.encode(), ContentType="text/html",
                  ACL="public-read")
    out = browser_output(f"{server.endpoint}/{bucket}/site/upload.html", tmp_path)
    assert out == {"post": 204, "read": "200:public hello"}, out
    got = s3.get_object(Bucket=bucket, Key="inbox/note.txt")
    assert got["Body"].read() == b"uploaded by chromium" and got["ContentType"] == "text/plain"
