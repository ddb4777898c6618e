"""The bucket configurations (tagging, CORS, lifecycle, default encryption) with the aws
CLI, and bad documents for each: AWS's MalformedXML, and the stored configuration kept."""

import json

import pytest

from conftest import assert_s3_error_response
from tools import run, utf8_env, venv_bin


def aws(server, *args):
    out = run([str(venv_bin("aws")), "s3api", *args, "--output", "json"], utf8_env(server.env())).stdout
    return json.loads(out) if out.strip() else {}


def test_aws_cli_bucket_configurations(server, s3, bucket):
    aws(server, "put-bucket-tagging", "--bucket", bucket,
        "--tagging", "TagSet=[{Key=team,Value=ops}]")
    assert aws(server, "get-bucket-tagging", "--bucket", bucket)["TagSet"] == [{"Key": "team", "Value": "ops"}]
    cors = {"CORSRules": [{"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET"],
                           "MaxAgeSeconds": 60}]}
    aws(server, "put-bucket-cors", "--bucket", bucket, "--cors-configuration", json.dumps(cors))
    assert aws(server, "get-bucket-cors", "--bucket", bucket)["CORSRules"][0]["AllowedOrigins"] == \
        ["https://app.example.com"]
    aws(server, "delete-bucket-cors", "--bucket", bucket)
    encryption = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    aws(server, "put-bucket-encryption", "--bucket", bucket,
        "--server-side-encryption-configuration", json.dumps(encryption))
    got = aws(server, "get-bucket-encryption", "--bucket", bucket)
    assert got["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"] == \
        {"SSEAlgorithm": "AES256"}
    s3.put_object(Bucket=bucket, Key="k", Body=b"attributes", ChecksumAlgorithm="CRC32")
    attrs = aws(server, "get-object-attributes", "--bucket", bucket, "--key", "k",
                "--object-attributes", "ETag", "Checksum", "ObjectSize", "StorageClass")
    assert attrs["ObjectSize"] == 10 and attrs["StorageClass"] == "STANDARD"
    assert "ChecksumCRC32" in attrs["Checksum"]


CONFIGS = {
    "tagging": b"<Tagging><TagSet><Tag><Key>kept</Key><Value>yes</Value></Tag></TagSet></Tagging>",
    "cors": b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod>"
            b"<AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
    "lifecycle": b"<LifecycleConfiguration><Rule><ID>kept</ID><Filter><Prefix>x/</Prefix></Filter>"
                 b"<Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>",
    "encryption": b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>"
                  b"<SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>"
                  b"</ServerSideEncryptionConfiguration>",
}


@pytest.mark.parametrize("subresource", sorted(CONFIGS))
def test_malformed_configurations_change_nothing(server, bucket, subresource):
    good = CONFIGS[subresource]
    query = [(subresource, None)]
    r = server.signed_request("PUT", f"/{bucket}", query=query, body=good)
    assert r.status_code in (200, 204), r.text
    before = server.signed_request("GET", f"/{bucket}", query=query)
    assert before.status_code == 200, before.text
    root = good[1:good.index(b">")]
    for bad in (good[:len(good) // 2],                                  # truncated
                b"<!DOCTYPE x [<!ENTITY a 'b'>]>" + good,                # a DTD
                good.replace(b"</" + root + b">", b"&a;</" + root + b">"),  # an unknown entity
                b"<Wrong/>",                                             # another document
                b"not xml"):
        r = server.signed_request("PUT", f"/{bucket}", query=query, body=bad)
        assert_s3_error_response(r, "MalformedXML", 400)
    after = server.signed_request("GET", f"/{bucket}", query=query)
    assert after.content == before.content
