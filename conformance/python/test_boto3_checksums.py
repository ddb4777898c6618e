"""boto3: integrity -- default CRC32 checksums, the five flexible checksum
algorithms, Content-MD5, x-amz-content-sha256 forms, aws-chunked bodies
(botocore's unsigned trailer over https, signed chunks, signed trailers).

Note: botocore only uses aws-chunked trailers over https; over plain http it
sends x-amz-checksum-crc32 as a header with a signed payload hash. The
https tests go through the harness's TLS proxy (server.client(tls=True))."""

import base64
import hashlib

import pytest

from conftest import (
    MiB,
    assert_s3_error_response,
    aws_chunked_signed,
    aws_chunked_unsigned,
    checksum_b64,
    crc32c_int,
    crc64nvme_int,
    md5_hex,
    patterned_bytes,
    s3_error,
)

DATA = b"The quick brown fox jumps over the lazy dog" * 100
ALGOS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
NATIVE = {"CRC32", "SHA1", "SHA256"}  # botocore computes these without awscrt


def test_checksum_helpers_known_values():
    # check values of the reference CRCs, so a wrong helper can't hide a server bug
    assert crc32c_int(b"123456789") == 0xE3069283
    assert crc64nvme_int(b"123456789") == 0xAE8B14860A799888
    assert checksum_b64("CRC32", b"123456789") == base64.b64encode((0xCBF43926).to_bytes(4, "big")).decode()


def _capture(client, op):
    seen = {}

    def hook(request, **kw):
        seen.clear()
        seen.update({k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()})
    client.meta.events.register(f"before-send.s3.{op}", hook)
    return seen


def test_default_put_sends_and_stores_crc32(server, bucket):
    s3 = server.client()
    seen = _capture(s3, "PutObject")
    r = s3.put_object(Bucket=bucket, Key="default", Body=DATA)
    # premise: default botocore sends a CRC32 (header form over http)
    assert seen.get("x-amz-checksum-crc32") == checksum_b64("CRC32", DATA)
    assert r.get("ChecksumCRC32") == checksum_b64("CRC32", DATA)
    h = s3.head_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == checksum_b64("CRC32", DATA)
    g = s3.get_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED")
    assert g["ChecksumCRC32"] == checksum_b64("CRC32", DATA)
    assert g["Body"].read() == DATA  # botocore validates the checksum while reading


@pytest.mark.parametrize("algo", ALGOS)
def test_put_with_checksum_algorithm(s3, bucket, algo):
    expected = checksum_b64(algo, DATA)
    member = f"Checksum{algo}"
    if algo in NATIVE:
        r = s3.put_object(Bucket=bucket, Key=f"ck-{algo}", Body=DATA, ChecksumAlgorithm=algo)
    else:
        r = s3.put_object(Bucket=bucket, Key=f"ck-{algo}", Body=DATA, **{member: expected})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r.get(member) == expected
    h = s3.head_object(Bucket=bucket, Key=f"ck-{algo}", ChecksumMode="ENABLED")
    assert h.get(member) == expected
    assert h.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
    g = s3.get_object(Bucket=bucket, Key=f"ck-{algo}", ChecksumMode="ENABLED")
    assert g.get(member) == expected
    assert g["Body"].read() == DATA


@pytest.mark.parametrize("algo", ALGOS)
def test_put_with_wrong_checksum_is_bad_digest(s3, bucket, algo):
    wrong = checksum_b64(algo, b"something else")
    with s3_error("BadDigest", 400):
        s3.put_object(Bucket=bucket, Key=f"bad-{algo}", Body=DATA, **{f"Checksum{algo}": wrong})
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key=f"bad-{algo}")


def test_malformed_checksum_value(server, s3, bucket):
    r = server.signed_request("PUT", f"/{bucket}/malformed-ck", body=b"abc",
                              headers={"x-amz-checksum-crc32": "not base64!!"})
    assert r.status_code == 400, r.content
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="malformed-ck")


def test_content_md5(s3, bucket):
    good = base64.b64encode(hashlib.md5(DATA).digest()).decode()
    r = s3.put_object(Bucket=bucket, Key="md5", Body=DATA, ContentMD5=good)
    assert r["ETag"] == f'"{md5_hex(DATA)}"'
    with s3_error("BadDigest", 400):
        s3.put_object(Bucket=bucket, Key="md5-bad", Body=DATA,
                      ContentMD5=base64.b64encode(hashlib.md5(b"x").digest()).decode())
    with s3_error("InvalidDigest", 400):
        s3.put_object(Bucket=bucket, Key="md5-bad", Body=DATA, ContentMD5="bm90LWFuLW1kNQ==")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="md5-bad")


def test_upload_part_wrong_checksum(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="p", ChecksumAlgorithm="CRC32")["UploadId"]
    with s3_error("BadDigest", 400):
        s3.upload_part(Bucket=bucket, Key="p", UploadId=uid, PartNumber=1, Body=b"part",
                       ChecksumCRC32=checksum_b64("CRC32", b"other"))
    assert s3.list_parts(Bucket=bucket, Key="p", UploadId=uid).get("Parts", []) == []


def test_composite_crc32c_small_single_part(s3, bucket):
    """COMPOSITE checksum of a one-part upload: checksum of the part's
    checksum, with suffix -1."""
    from conftest import composite_checksum_b64
    data = b"single part for crc32c"
    key = "c32c"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32C")["UploadId"]
    c = checksum_b64("CRC32C", data)
    r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=data, ChecksumCRC32C=c)
    assert r.get("ChecksumCRC32C") == c
    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]
    assert parts[0].get("ChecksumCRC32C") == c
    listed = {"Parts": [{"PartNumber": 1, "ETag": r["ETag"], "ChecksumCRC32C": c}]}
    # A stated object checksum that is no checksum at all: refused, nothing completed.
    with s3_error("InvalidRequest", 400):
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload=listed,
                                     ChecksumCRC32C="bad")
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload=listed)
    h = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert h["ChecksumCRC32C"] == composite_checksum_b64("CRC32C", [data])
    assert h.get("ChecksumType") == "COMPOSITE"


# ------------------------------------------------- x-amz-content-sha256 forms
def test_content_sha256_mismatch(server, s3, bucket):
    r = server.signed_request("PUT", f"/{bucket}/sha-mismatch", body=b"actual body",
                              content_sha256=hashlib.sha256(b"different body").hexdigest())
    assert_s3_error_response(r, "XAmzContentSHA256Mismatch", 400)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="sha-mismatch")


def test_content_sha256_signed_hex_ok(server, s3, bucket):
    r = server.signed_request("PUT", f"/{bucket}/sha-ok", body=b"body")
    assert r.status_code == 200, r.content
    assert r.headers["ETag"] == f'"{md5_hex(b"body")}"'
    assert r.headers.get("x-amz-request-id")


def test_unsigned_payload(server, s3, bucket):
    r = server.signed_request("PUT", f"/{bucket}/unsigned", body=b"unsigned body", unsigned_payload=True)
    assert r.status_code == 200, r.content
    assert s3.get_object(Bucket=bucket, Key="unsigned")["Body"].read() == b"unsigned body"


def test_missing_content_sha256_header(server, s3, bucket):
    """SigV4 for S3 requires x-amz-content-sha256."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import requests
    url = f"{server.endpoint}/{bucket}/no-sha"
    req = AWSRequest(method="PUT", url=url, data=b"x")
    SigV4Auth(Credentials(server.access_key, server.secret_key), "s3", server.region).add_auth(req)
    headers = {k: v for k, v in req.headers.items() if k.lower() != "x-amz-content-sha256"}
    r = requests.put(url, data=b"x", headers=headers)
    assert r.status_code in (400, 403), r.content
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="no-sha")


# ------------------------------------------------------- aws-chunked bodies
def _chunked_headers(decoded_len, _unused=None, trailer_name=None, extra=None):
    h = {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(decoded_len)}
    if trailer_name:
        h["X-Amz-Trailer"] = trailer_name
    h.update(extra or {})
    return h


CHUNKS = [patterned_bytes(64 * 1024, seed=5), patterned_bytes(64 * 1024, seed=6), b"last bit"]
CHUNKED_DATA = b"".join(CHUNKS)


def test_streaming_unsigned_trailer_raw(server, s3, bucket):
    crc = checksum_b64("CRC32", CHUNKED_DATA)
    body = aws_chunked_unsigned(CHUNKS, {"x-amz-checksum-crc32": crc})
    r = server.signed_request(
        "PUT", f"/{bucket}/ut", body=body, content_sha256="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        headers=_chunked_headers(len(CHUNKED_DATA), None, "x-amz-checksum-crc32",
                                 {"x-amz-sdk-checksum-algorithm": "CRC32"}))
    assert r.status_code == 200, r.content
    assert r.headers["ETag"] == f'"{md5_hex(CHUNKED_DATA)}"'
    g = s3.get_object(Bucket=bucket, Key="ut", ChecksumMode="ENABLED")
    assert g["Body"].read() == CHUNKED_DATA
    assert g["ChecksumCRC32"] == crc
    assert g.get("ContentEncoding") in (None, "")  # aws-chunked is not stored


def test_streaming_unsigned_trailer_wrong_checksum(server, s3, bucket):
    body = aws_chunked_unsigned(CHUNKS, {"x-amz-checksum-crc32": checksum_b64("CRC32", b"nope")})
    r = server.signed_request(
        "PUT", f"/{bucket}/ut-bad", body=body, content_sha256="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        headers=_chunked_headers(len(CHUNKED_DATA), None, "x-amz-checksum-crc32"))
    assert_s3_error_response(r, "BadDigest", 400)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="ut-bad")


@pytest.mark.parametrize("algo", ["CRC32C", "CRC64NVME", "SHA256"])
def test_streaming_unsigned_trailer_other_algorithms(server, s3, bucket, algo):
    name = f"x-amz-checksum-{algo.lower()}"
    val = checksum_b64(algo, CHUNKED_DATA)
    body = aws_chunked_unsigned(CHUNKS, {name: val})
    r = server.signed_request(
        "PUT", f"/{bucket}/ut-{algo}", body=body, content_sha256="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        headers=_chunked_headers(len(CHUNKED_DATA), None, name))
    assert r.status_code == 200, r.content
    h = s3.head_object(Bucket=bucket, Key=f"ut-{algo}", ChecksumMode="ENABLED")
    assert h[f"Checksum{algo}"] == val


def test_streaming_signed_chunks(server, s3, bucket):
    r = server.signed_request(
        "PUT", f"/{bucket}/sc", content_sha256="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        headers=_chunked_headers(len(CHUNKED_DATA), None),
        body=lambda signing: aws_chunked_signed(CHUNKS, signing))
    assert r.status_code == 200, r.content
    assert s3.get_object(Bucket=bucket, Key="sc")["Body"].read() == CHUNKED_DATA


@pytest.mark.parametrize("bad_chunk", [0, 2, 3])  # 3 = the final empty chunk
def test_streaming_signed_chunks_bad_signature(server, s3, bucket, bad_chunk):
    r = server.signed_request(
        "PUT", f"/{bucket}/sc-bad", content_sha256="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        headers=_chunked_headers(len(CHUNKED_DATA), None),
        body=lambda signing: aws_chunked_signed(CHUNKS, signing, corrupt_chunk=bad_chunk))
    assert_s3_error_response(r, "SignatureDoesNotMatch", 403)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="sc-bad")


def test_streaming_signed_chunks_tampered_data(server, s3, bucket):
    def body(signing):
        b = bytearray(aws_chunked_signed(CHUNKS, signing))
        i = b.index(b"\r\n") + 2 + 100  # a byte inside the first chunk's data
        b[i] ^= 0xFF
        return bytes(b)
    r = server.signed_request(
        "PUT", f"/{bucket}/sc-tamper", content_sha256="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        headers=_chunked_headers(len(CHUNKED_DATA), None), body=body)
    assert_s3_error_response(r, "SignatureDoesNotMatch", 403)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="sc-tamper")


def test_streaming_signed_chunks_short_body(server, s3, bucket):
    """Decoded length says more than the chunks carry: rejected, nothing stored."""
    r = server.signed_request(
        "PUT", f"/{bucket}/sc-short", content_sha256="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        headers=_chunked_headers(len(CHUNKED_DATA) + 10, None),
        body=lambda signing: aws_chunked_signed(CHUNKS, signing))
    assert r.status_code == 400, r.content
    assert r.headers.get("x-amz-request-id")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="sc-short")


def test_streaming_signed_trailer(server, s3, bucket):
    crc = checksum_b64("CRC32C", CHUNKED_DATA)
    r = server.signed_request(
        "PUT", f"/{bucket}/st", content_sha256="STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        headers=_chunked_headers(len(CHUNKED_DATA), None, "x-amz-checksum-crc32c"),
        body=lambda signing: aws_chunked_signed(CHUNKS, signing, trailer={"x-amz-checksum-crc32c": crc}))
    assert r.status_code == 200, r.content
    h = s3.head_object(Bucket=bucket, Key="st", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32C"] == crc
    assert s3.get_object(Bucket=bucket, Key="st")["Body"].read() == CHUNKED_DATA


def test_streaming_signed_trailer_bad_trailer_signature(server, s3, bucket):
    crc = checksum_b64("CRC32C", CHUNKED_DATA)
    r = server.signed_request(
        "PUT", f"/{bucket}/st-bad", content_sha256="STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        headers=_chunked_headers(len(CHUNKED_DATA), None, "x-amz-checksum-crc32c"),
        body=lambda signing: aws_chunked_signed(CHUNKS, signing, trailer={"x-amz-checksum-crc32c": crc},
                                                corrupt_trailer_sig=True))
    assert_s3_error_response(r, "SignatureDoesNotMatch", 403)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="st-bad")


def test_streaming_signed_trailer_wrong_checksum(server, s3, bucket):
    r = server.signed_request(
        "PUT", f"/{bucket}/st-badck", content_sha256="STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        headers=_chunked_headers(len(CHUNKED_DATA), None, "x-amz-checksum-crc32c"),
        body=lambda signing: aws_chunked_signed(
            CHUNKS, signing, trailer={"x-amz-checksum-crc32c": checksum_b64("CRC32C", b"x")}))
    assert_s3_error_response(r, "BadDigest", 400)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="st-badck")


# ---------------------------------------- botocore defaults over https (TLS)
@pytest.fixture(scope="module")
def tls_s3(server):
    return server.client(tls=True)


def test_tls_default_put_uses_unsigned_trailer(tls_s3, bucket):
    data = patterned_bytes(2 * MiB + 17, seed=9)   # several aws-chunks
    seen = _capture(tls_s3, "PutObject")
    r = tls_s3.put_object(Bucket=bucket, Key="tls/obj", Body=data)
    # premise: this really was an aws-chunked upload with a trailing CRC32
    assert seen.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert seen.get("x-amz-trailer") == "x-amz-checksum-crc32"
    assert r["ETag"] == f'"{md5_hex(data)}"'
    h = tls_s3.head_object(Bucket=bucket, Key="tls/obj", ChecksumMode="ENABLED")
    assert h["ContentLength"] == len(data)
    assert h["ChecksumCRC32"] == checksum_b64("CRC32", data)
    assert h.get("ContentEncoding") in (None, "")
    assert tls_s3.get_object(Bucket=bucket, Key="tls/obj")["Body"].read() == data


def test_tls_put_with_content_encoding_keeps_only_user_encoding(tls_s3, bucket):
    tls_s3.put_object(Bucket=bucket, Key="tls/gz", Body=b"pretend gzip", ContentEncoding="gzip")
    h = tls_s3.head_object(Bucket=bucket, Key="tls/gz")
    assert h["ContentEncoding"] == "gzip"


def test_tls_upload_part_trailer_and_complete(tls_s3, bucket):
    seen = _capture(tls_s3, "UploadPart")
    uid = tls_s3.create_multipart_upload(Bucket=bucket, Key="tls/mp")["UploadId"]
    r = tls_s3.upload_part(Bucket=bucket, Key="tls/mp", UploadId=uid, PartNumber=1, Body=b"tls part")
    assert seen.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    tls_s3.complete_multipart_upload(Bucket=bucket, Key="tls/mp", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]})
    assert tls_s3.get_object(Bucket=bucket, Key="tls/mp")["Body"].read() == b"tls part"


def test_tls_upload_fileobj_multipart(tls_s3, bucket):
    """s3transfer (what boto3 users call) with a small multipart threshold."""
    import io
    from boto3.s3.transfer import TransferConfig
    data = patterned_bytes(11 * MiB, seed=4)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    tls_s3.upload_fileobj(io.BytesIO(data), bucket, "tls/xfer", Config=cfg)
    h = tls_s3.head_object(Bucket=bucket, Key="tls/xfer")
    assert h["ContentLength"] == len(data)
    assert h["ETag"].endswith('-3"')
    out = io.BytesIO()
    tls_s3.download_fileobj(bucket, "tls/xfer", out, Config=cfg)
    assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(data).digest()
