"""Access control as S3 defines it, with real clients: anonymous requests (botocore
UNSIGNED, curl, requests), bucket policies with conditions, canned and explicit ACLs,
object ownership, the public access block and cross-account behaviour between two users
(main and alt). Every refused change is checked to have changed nothing."""

import json
import subprocess

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import (
    anonymous_client,
    assert_s3_error_response,
    create_user,
    empty_and_delete_bucket,
    s3_error,
    unique_bucket_name,
)
from tools import require_tool, run

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


@pytest.fixture(scope="module")
def main(server):
    name, ak, sk = create_user(server)
    return {"name": name, "client": server.client(ak, sk), "ak": ak, "sk": sk}


@pytest.fixture(scope="module")
def alt(server):
    # A name that is an email address: grants by email resolve to it.
    name, ak, sk = create_user(server, f"alt-{unique_bucket_name('x')[-8:]}@example.com")
    return {"name": name, "client": server.client(ak, sk), "ak": ak, "sk": sk}


@pytest.fixture(scope="module")
def anon(server):
    return anonymous_client(server)


@pytest.fixture
def mbucket(main):
    """A bucket of the main user, with one private object `obj`."""
    s3 = main["client"]
    name = unique_bucket_name("acl")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="obj", Body=b"secret")
    yield name
    s3.delete_bucket_policy(Bucket=name)
    empty_and_delete_bucket(s3, name)


def canonical_id(client) -> str:
    return client.list_buckets()["Owner"]["ID"]


def denied(call, **kwargs):
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    assert err.value.response["Error"]["Code"] == "AccessDenied", err.value.response
    return err.value


# ------------------------------------------------------------------ anonymous
def test_anonymous_is_denied_on_private_and_allowed_by_public_read(server, main, anon, mbucket):
    s3 = main["client"]
    denied(anon.get_object, Bucket=mbucket, Key="obj")
    r = requests.get(f"{server.endpoint}/{mbucket}/obj")
    assert_s3_error_response(r, "AccessDenied", 403)
    s3.put_object(Bucket=mbucket, Key="pub", Body=b"hello", ACL="public-read")
    assert anon.get_object(Bucket=mbucket, Key="pub")["Body"].read() == b"hello"
    curl = subprocess.run(["curl", "-sf", f"{server.endpoint}/{mbucket}/pub"],
                          capture_output=True, check=True)
    assert curl.stdout == b"hello"
    # Public-read on an object does not open the bucket's listing or other objects.
    denied(anon.list_objects_v2, Bucket=mbucket)
    denied(anon.get_object, Bucket=mbucket, Key="obj")
    denied(anon.put_object, Bucket=mbucket, Key="new", Body=b"x")
    # Nor may anonymous list buckets or create one.
    assert_s3_error_response(requests.get(server.endpoint + "/"), "AccessDenied", 403)
    denied(anon.create_bucket, Bucket=unique_bucket_name())


def test_public_bucket_acls_for_anonymous(server, main, anon, mbucket):
    s3 = main["client"]
    s3.put_bucket_acl(Bucket=mbucket, ACL="public-read")
    assert s3.get_bucket_policy_status(Bucket=mbucket)["PolicyStatus"]["IsPublic"] is True
    keys = [o["Key"] for o in anon.list_objects_v2(Bucket=mbucket)["Contents"]]
    assert keys == ["obj"]
    # Listing is not reading: the object itself stays private.
    denied(anon.get_object, Bucket=mbucket, Key="obj")
    denied(anon.put_object, Bucket=mbucket, Key="new", Body=b"x")
    s3.put_bucket_acl(Bucket=mbucket, ACL="public-read-write")
    anon.put_object(Bucket=mbucket, Key="dropped", Body=b"from anyone")
    # What anonymous wrote is anonymous's: only the administrator reads it unless granted.
    assert server.client().get_object(Bucket=mbucket, Key="dropped")["Body"].read() == b"from anyone"
    anon.put_object(Bucket=mbucket, Key="shared", Body=b"for the owner", ACL="bucket-owner-read")
    assert s3.get_object(Bucket=mbucket, Key="shared")["Body"].read() == b"for the owner"
    s3.put_bucket_acl(Bucket=mbucket, ACL="private")
    denied(anon.list_objects_v2, Bucket=mbucket)


def test_anonymous_uploads_over_tls_with_checksum_trailers(server, main, mbucket):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    main["client"].put_bucket_acl(Bucket=mbucket, ACL="public-read-write")
    # Over https botocore sends unsigned aws-chunked bodies with a checksum trailer.
    anon = boto3.session.Session().client(
        "s3", endpoint_url=server.https_endpoint, region_name=server.region,
        verify=server.ca_file, config=Config(signature_version=UNSIGNED))
    anon.put_object(Bucket=mbucket, Key="chunked", Body=b"x" * 70000, ACL="bucket-owner-read")
    assert main["client"].get_object(Bucket=mbucket, Key="chunked")["Body"].read() == b"x" * 70000


def test_missing_key_is_404_only_to_those_who_may_list(main, alt, anon, mbucket):
    denied(anon.get_object, Bucket=mbucket, Key="nothing")
    denied(alt["client"].get_object, Bucket=mbucket, Key="nothing")
    main["client"].put_bucket_acl(Bucket=mbucket, ACL="public-read")
    with s3_error("NoSuchKey", 404):
        anon.get_object(Bucket=mbucket, Key="nothing")


# ------------------------------------------------------------------ ACLs
def test_get_bucket_acl_shows_owner_and_canned_grants(main, mbucket):
    s3 = main["client"]
    acl = s3.get_bucket_acl(Bucket=mbucket)
    owner = acl["Owner"]
    assert owner["ID"] == canonical_id(s3) and owner["DisplayName"] == main["name"]
    assert acl["Grants"] == [{"Grantee": {"ID": owner["ID"], "DisplayName": main["name"],
                                          "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}]
    s3.put_bucket_acl(Bucket=mbucket, ACL="authenticated-read")
    grants = s3.get_bucket_acl(Bucket=mbucket)["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": AUTH_USERS}, "Permission": "READ"} in grants
    assert len(grants) == 2


def test_canned_acls_on_every_write(main, alt, mbucket):
    s3, other = main["client"], alt["client"]
    s3.put_object(Bucket=mbucket, Key="a", Body=b"a", ACL="authenticated-read")
    assert other.get_object(Bucket=mbucket, Key="a")["Body"].read() == b"a"
    s3.copy_object(Bucket=mbucket, Key="b", CopySource={"Bucket": mbucket, "Key": "a"},
                   ACL="public-read")
    grants = s3.get_object_acl(Bucket=mbucket, Key="b")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in grants
    # A copy gets its own ACL, never the source's.
    s3.copy_object(Bucket=mbucket, Key="c", CopySource={"Bucket": mbucket, "Key": "a"})
    assert len(s3.get_object_acl(Bucket=mbucket, Key="c")["Grants"]) == 1
    denied(other.get_object, Bucket=mbucket, Key="c")
    up = s3.create_multipart_upload(Bucket=mbucket, Key="m", ACL="public-read")
    part = s3.upload_part(Bucket=mbucket, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=b"p")
    s3.complete_multipart_upload(Bucket=mbucket, Key="m", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    grants = s3.get_object_acl(Bucket=mbucket, Key="m")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in grants
    name = unique_bucket_name("cr")
    s3.create_bucket(Bucket=name, ACL="public-read")
    try:
        grants = s3.get_bucket_acl(Bucket=name)["Grants"]
        assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in grants
    finally:
        s3.delete_bucket(Bucket=name)


def test_grants_by_id_and_email_through_headers_and_documents(main, alt, mbucket):
    s3, other = main["client"], alt["client"]
    alt_id = canonical_id(other)
    denied(other.get_object, Bucket=mbucket, Key="obj")
    s3.put_object_acl(Bucket=mbucket, Key="obj", GrantRead=f'id="{alt_id}"')
    assert other.get_object(Bucket=mbucket, Key="obj")["Body"].read() == b"secret"
    grants = s3.get_object_acl(Bucket=mbucket, Key="obj")["Grants"]
    assert grants == [{"Grantee": {"ID": alt_id, "DisplayName": alt["name"], "Type": "CanonicalUser"},
                       "Permission": "READ"}]
    # Explicit grants replace the ACL: the owner keeps only the implicit ACP rights.
    denied(s3.get_object, Bucket=mbucket, Key="obj")
    s3.put_object_acl(Bucket=mbucket, Key="obj", ACL="private")
    assert s3.get_object(Bucket=mbucket, Key="obj")["Body"].read() == b"secret"
    # Write to the bucket by email, through an AccessControlPolicy document.
    acl = s3.get_bucket_acl(Bucket=mbucket)
    policy = {"Owner": acl["Owner"], "Grants": acl["Grants"] + [
        {"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": alt["name"]},
         "Permission": "WRITE"}]}
    denied(other.put_object, Bucket=mbucket, Key="from-alt", Body=b"x")
    s3.put_bucket_acl(Bucket=mbucket, AccessControlPolicy=policy)
    other.put_object(Bucket=mbucket, Key="from-alt", Body=b"x")
    # What alt wrote is alt's (ObjectWriter): the bucket owner may not read it...
    denied(s3.get_object, Bucket=mbucket, Key="from-alt")
    denied(s3.get_object_acl, Bucket=mbucket, Key="from-alt")
    # ...until alt grants it, and the bucket owner may always delete it.
    other.put_object_acl(Bucket=mbucket, Key="from-alt", ACL="bucket-owner-read")
    assert s3.get_object(Bucket=mbucket, Key="from-alt")["Body"].read() == b"x"
    acl = other.get_object_acl(Bucket=mbucket, Key="from-alt")
    assert acl["Owner"]["ID"] == alt_id
    s3.delete_object(Bucket=mbucket, Key="from-alt")


def test_an_acl_without_grants_leaves_the_owner_only_its_acl(main, mbucket):
    s3 = main["client"]
    acl = s3.get_bucket_acl(Bucket=mbucket)
    s3.put_bucket_acl(Bucket=mbucket, AccessControlPolicy={"Owner": acl["Owner"], "Grants": []})
    assert s3.get_bucket_acl(Bucket=mbucket)["Grants"] == []
    # The object keeps its own ACL; the bucket no longer lets even its owner write or list.
    assert s3.get_object(Bucket=mbucket, Key="obj")["Body"].read() == b"secret"
    denied(s3.put_object, Bucket=mbucket, Key="new", Body=b"x")
    denied(s3.list_objects_v2, Bucket=mbucket)
    s3.put_bucket_acl(Bucket=mbucket, AccessControlPolicy={"Owner": acl["Owner"], "Grants": acl["Grants"]})
    s3.put_object(Bucket=mbucket, Key="new", Body=b"x")


@pytest.mark.parametrize("sub,body", [
    ("publicAccessBlock", b"<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls>"
                          b"</PublicAccessBlockConfiguration>"),
    ("publicAccessBlock", b"<PublicAccessBlockConfiguration><BlockPublicAcls>true"),
    ("ownershipControls", b"<OwnershipControls><Rule><ObjectOwnership>Mine</ObjectOwnership></Rule>"
                          b"</OwnershipControls>"),
    ("ownershipControls", b"<OwnershipControls></OwnershipControls>"),
])
def test_bad_configuration_documents_change_nothing(server, main, mbucket, sub, body):
    r = server.signed_request("PUT", f"/{mbucket}", query=[(sub, None)], body=body,
                              access_key=main["ak"], secret_key=main["sk"])
    assert_s3_error_response(r, "MalformedXML", 400)
    r = server.signed_request("GET", f"/{mbucket}", query=[(sub, None)],
                              access_key=main["ak"], secret_key=main["sk"])
    assert r.status_code == 404, r.text


def test_bad_acls_change_nothing(server, main, mbucket):
    s3 = main["client"]
    before = s3.get_bucket_acl(Bucket=mbucket)["Grants"]
    for body in (b"<AccessControlPolicy><Owner>", b"<AccessControlPolicy><AccessControlList><Grant>"
                 b"<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">"
                 b"<ID>x</ID></Grantee><Permission>EVERYTHING</Permission></Grant>"
                 b"</AccessControlList></AccessControlPolicy>"):
        r = server.signed_request("PUT", f"/{mbucket}", query=[("acl", None)], body=body,
                                  access_key=main["ak"], secret_key=main["sk"])
        assert_s3_error_response(r, "MalformedACLError", 400)
    with s3_error("InvalidArgument", 400):
        s3.put_bucket_acl(Bucket=mbucket, GrantRead='id="0000000000000000"')
    with s3_error("UnresolvableGrantByEmailAddress", 400):
        s3.put_bucket_acl(Bucket=mbucket, GrantRead='emailAddress="nobody@example.com"')
    with s3_error("InvalidArgument", 400):
        s3.put_bucket_acl(Bucket=mbucket, ACL="everyone-may")
    with s3_error("InvalidRequest", 400):
        s3.put_bucket_acl(Bucket=mbucket, ACL="public-read", GrantRead=f'uri="{ALL_USERS}"')
    assert s3.get_bucket_acl(Bucket=mbucket)["Grants"] == before


def test_aws_cli_access_commands(server, main, mbucket, tmp_path):
    require_tool("aws")
    env = server.env()
    env.update(AWS_ACCESS_KEY_ID=main["ak"], AWS_SECRET_ACCESS_KEY=main["sk"])
    src = tmp_path / "f.txt"
    src.write_text("cli")
    run(["aws", "s3", "cp", str(src), f"s3://{mbucket}/cli.txt", "--acl", "public-read"], env)
    assert requests.get(f"{server.endpoint}/{mbucket}/cli.txt").text == "cli"
    run(["aws", "s3api", "put-object-acl", "--bucket", mbucket, "--key", "cli.txt", "--acl", "private"], env)
    assert requests.get(f"{server.endpoint}/{mbucket}/cli.txt").status_code == 403
    out = run(["aws", "s3api", "get-bucket-acl", "--bucket", mbucket], env)
    assert json.loads(out.stdout)["Owner"]["DisplayName"] == main["name"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{mbucket}/cli.txt"}]})
    run(["aws", "s3api", "put-bucket-policy", "--bucket", mbucket, "--policy", policy], env)
    assert json.loads(json.loads(run(["aws", "s3api", "get-bucket-policy", "--bucket", mbucket], env)
                                 .stdout)["Policy"]) == json.loads(policy)
    status = json.loads(run(["aws", "s3api", "get-bucket-policy-status", "--bucket", mbucket], env).stdout)
    assert status["PolicyStatus"]["IsPublic"] is True
    assert requests.get(f"{server.endpoint}/{mbucket}/cli.txt").text == "cli"
    bad = run(["aws", "s3api", "put-bucket-policy", "--bucket", mbucket, "--policy", "{"], env, check=False)
    assert bad.returncode != 0 and "MalformedPolicy" in bad.stderr, bad.stderr
    run(["aws", "s3api", "delete-bucket-policy", "--bucket", mbucket], env)
    run(["aws", "s3api", "put-public-access-block", "--bucket", mbucket, "--public-access-block-configuration",
         "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"], env)
    block = json.loads(run(["aws", "s3api", "get-public-access-block", "--bucket", mbucket], env).stdout)
    assert all(block["PublicAccessBlockConfiguration"].values()), block
    denied_put = run(["aws", "s3api", "put-bucket-policy", "--bucket", mbucket, "--policy", policy], env,
                     check=False)
    assert denied_put.returncode != 0 and "AccessDenied" in denied_put.stderr, denied_put.stderr
    run(["aws", "s3api", "delete-public-access-block", "--bucket", mbucket], env)
    run(["aws", "s3api", "put-bucket-ownership-controls", "--bucket", mbucket, "--ownership-controls",
         "Rules=[{ObjectOwnership=BucketOwnerPreferred}]"], env)
    controls = json.loads(run(["aws", "s3api", "get-bucket-ownership-controls", "--bucket", mbucket], env).stdout)
    assert controls["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    run(["aws", "s3api", "delete-bucket-ownership-controls", "--bucket", mbucket], env)


# ------------------------------------------------------------------ bucket policies
def read_only_for(bucket, user):
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "ReadOnly", "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam:::user/{user}"]},
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}


def test_put_get_delete_policy_and_status(main, alt, mbucket):
    s3, other = main["client"], alt["client"]
    with s3_error("NoSuchBucketPolicy", 404):
        s3.get_bucket_policy(Bucket=mbucket)
    policy = json.dumps(read_only_for(mbucket, alt["name"]))
    s3.put_bucket_policy(Bucket=mbucket, Policy=policy)
    assert json.loads(s3.get_bucket_policy(Bucket=mbucket)["Policy"]) == json.loads(policy)
    assert s3.get_bucket_policy_status(Bucket=mbucket)["PolicyStatus"]["IsPublic"] is False
    assert other.get_object(Bucket=mbucket, Key="obj")["Body"].read() == b"secret"
    assert [o["Key"] for o in other.list_objects_v2(Bucket=mbucket)["Contents"]] == ["obj"]
    denied(other.put_object, Bucket=mbucket, Key="x", Body=b"x")
    denied(other.delete_object, Bucket=mbucket, Key="obj")
    denied(other.get_bucket_policy, Bucket=mbucket)
    s3.delete_bucket_policy(Bucket=mbucket)
    denied(other.get_object, Bucket=mbucket, Key="obj")
    # Without a policy, a bucket is public only through its ACL (as RGW answers).
    assert s3.get_bucket_policy_status(Bucket=mbucket)["PolicyStatus"]["IsPublic"] is False


def test_public_prefix_policy(main, anon, mbucket):
    s3 = main["client"]
    s3.put_object(Bucket=mbucket, Key="public/logo.txt", Body=b"logo")
    s3.put_bucket_policy(Bucket=mbucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{mbucket}/public/*"}]}))
    assert s3.get_bucket_policy_status(Bucket=mbucket)["PolicyStatus"]["IsPublic"] is True
    assert anon.get_object(Bucket=mbucket, Key="public/logo.txt")["Body"].read() == b"logo"
    denied(anon.get_object, Bucket=mbucket, Key="obj")


def test_explicit_deny_beats_owner_and_acl(main, alt, mbucket):
    s3 = main["client"]
    s3.put_bucket_acl(Bucket=mbucket, ACL="public-read")
    s3.put_bucket_policy(Bucket=mbucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": "*", "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{mbucket}",
            "Condition": {"StringNotLike": {"s3:prefix": "docs/*"}}}]}))
    denied(s3.list_objects_v2, Bucket=mbucket)
    denied(alt["client"].list_objects_v2, Bucket=mbucket)
    assert s3.list_objects_v2(Bucket=mbucket, Prefix="docs/")["KeyCount"] == 0
    # The owner can always remove the policy that locks it out.
    s3.delete_bucket_policy(Bucket=mbucket)
    s3.list_objects_v2(Bucket=mbucket)


def test_deleting_on_an_etag_needs_read_access_too(main, alt, mbucket):
    """A conditional delete tells whether the ETag matched: as AWS, it needs s3:GetObject
    besides s3:DeleteObject; `If-Match: *` only needs the delete."""
    s3, other = main["client"], alt["client"]
    etags = {k: s3.put_object(Bucket=mbucket, Key=k, Body=k.encode())["ETag"] for k in ("a", "b", "c")}
    delete_only = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam:::user/{alt['name']}"]},
        "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{mbucket}/*"}]}
    s3.put_bucket_policy(Bucket=mbucket, Policy=json.dumps(delete_only))
    denied(other.delete_object, Bucket=mbucket, Key="a", IfMatch=etags["a"])
    r = other.delete_objects(Bucket=mbucket, Delete={"Objects": [{"Key": "b", "ETag": etags["b"]}]})
    assert [e["Code"] for e in r["Errors"]] == ["AccessDenied"]
    other.delete_object(Bucket=mbucket, Key="c", IfMatch="*")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=mbucket)["Contents"]) == ["a", "b", "obj"]
    # The object's own ACL may give the read access, in a DeleteObjects as well.
    s3.put_object_acl(Bucket=mbucket, Key="b", GrantRead=f'id="{canonical_id(other)}"',
                      GrantFullControl=f'id="{canonical_id(s3)}"')
    r = other.delete_objects(Bucket=mbucket, Delete={"Objects": [{"Key": "b", "ETag": etags["b"]}]})
    assert [d["Key"] for d in r["Deleted"]] == ["b"] and "Errors" not in r
    delete_only["Statement"][0]["Action"] = ["s3:DeleteObject", "s3:GetObject"]
    s3.put_bucket_policy(Bucket=mbucket, Policy=json.dumps(delete_only))
    other.delete_object(Bucket=mbucket, Key="a", IfMatch=etags["a"])
    assert s3.list_objects_v2(Bucket=mbucket)["KeyCount"] == 1


@pytest.mark.parametrize("cidr,allowed", [("127.0.0.0/8", True), ("10.0.0.0/8", False)])
def test_source_ip_condition(main, alt, mbucket, cidr, allowed):
    s3, other = main["client"], alt["client"]
    s3.put_bucket_policy(Bucket=mbucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": alt["name"]}, "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{mbucket}/*",
            "Condition": {"IpAddress": {"aws:SourceIp": [cidr]}}}]}))
    if allowed:
        other.get_object(Bucket=mbucket, Key="obj")
    else:
        denied(other.get_object, Bucket=mbucket, Key="obj")


def test_condition_on_canned_acl_header(main, alt, mbucket):
    s3, other = main["client"], alt["client"]
    s3.put_bucket_policy(Bucket=mbucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": [canonical_id(other)]}, "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{mbucket}/*",
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}]}))
    denied(other.put_object, Bucket=mbucket, Key="in", Body=b"x")
    other.put_object(Bucket=mbucket, Key="in", Body=b"x", ACL="bucket-owner-full-control")
    assert s3.get_object(Bucket=mbucket, Key="in")["Body"].read() == b"x"


def test_deny_without_tls_behind_a_trusted_proxy(make_server):
    srv = make_server(extra_args=["--trusted-proxies", "127.0.0.1/32"])
    s3 = srv.client()
    name = unique_bucket_name("tls")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{name}/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    url = f"{srv.endpoint}/{name}/k"
    assert_s3_error_response(requests.get(url), "AccessDenied", 403)
    assert requests.get(url, headers={"X-Forwarded-Proto": "https"}).text == "v"


def test_malformed_and_oversized_policies_change_nothing(main, mbucket):
    s3 = main["client"]
    good = json.dumps(read_only_for(mbucket, "someone"))
    s3.put_bucket_policy(Bucket=mbucket, Policy=good)
    bad = [
        ("{not json", "MalformedPolicy", "invalid Json"),
        (json.dumps({"Version": "2012-10-17"}), "MalformedPolicy", "Statement"),
        (json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                    "Resource": "arn:aws:s3:::another-bucket/*"}]}),
         "MalformedPolicy", "invalid resource"),
        (json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:Fly",
                                    "Resource": f"arn:aws:s3:::{mbucket}/*",
                                    "Condition": {"Sometimes": {"aws:SourceIp": "1.2.3.4"}}}]}),
         "MalformedPolicy", "Condition type"),
        (json.dumps({"Statement": [{"Sid": "x" * 21000, "Effect": "Allow", "Principal": "*",
                                    "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{mbucket}/*"}]}),
         "PolicyTooLarge", ""),
    ]
    for text, code, says in bad:
        with s3_error(code, 400) as holder:
            s3.put_bucket_policy(Bucket=mbucket, Policy=text)
        assert says in holder["Error"]["Message"], holder
    assert s3.get_bucket_policy(Bucket=mbucket)["Policy"] == good


# ------------------------------------------------------------------ ownership
def test_ownership_controls(main, alt, mbucket):
    s3, other = main["client"], alt["client"]
    with s3_error("OwnershipControlsNotFoundError", 404):
        s3.get_bucket_ownership_controls(Bucket=mbucket)
    s3.put_bucket_acl(Bucket=mbucket, ACL="public-read")
    rules = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    with s3_error("InvalidBucketAclWithObjectOwnership", 400):
        s3.put_bucket_ownership_controls(Bucket=mbucket, OwnershipControls=rules)
    s3.put_bucket_acl(Bucket=mbucket, ACL="private")
    s3.put_bucket_ownership_controls(Bucket=mbucket, OwnershipControls=rules)
    got = s3.get_bucket_ownership_controls(Bucket=mbucket)["OwnershipControls"]
    assert got == rules
    with s3_error("AccessControlListNotSupported", 400):
        s3.put_object(Bucket=mbucket, Key="p", Body=b"x", ACL="public-read")
    with s3_error("AccessControlListNotSupported", 400):
        s3.put_bucket_acl(Bucket=mbucket, ACL="public-read")
    s3.put_object(Bucket=mbucket, Key="p", Body=b"x", ACL="bucket-owner-full-control")
    # Grants no longer count: a policy is the only way in for alt.
    s3.put_bucket_policy(Bucket=mbucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": alt["name"]}, "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{mbucket}/*"}]}))
    other.put_object(Bucket=mbucket, Key="by-alt", Body=b"y")
    # ...and what alt writes is the bucket owner's.
    assert s3.get_object_acl(Bucket=mbucket, Key="by-alt")["Owner"]["ID"] == canonical_id(s3)
    listed = s3.list_objects_v2(Bucket=mbucket, Prefix="by-alt", FetchOwner=True)["Contents"]
    assert listed[0]["Owner"]["ID"] == canonical_id(s3)
    assert s3.get_object(Bucket=mbucket, Key="by-alt")["Body"].read() == b"y"
    s3.delete_bucket_ownership_controls(Bucket=mbucket)
    with s3_error("OwnershipControlsNotFoundError", 404):
        s3.get_bucket_ownership_controls(Bucket=mbucket)
    with s3_error("MalformedXML", 400):
        s3.put_bucket_ownership_controls(
            Bucket=mbucket, OwnershipControls={"Rules": [{"ObjectOwnership": "Whoever"}]})


def test_bucket_owner_preferred_takes_what_is_handed_over(main, alt, mbucket):
    s3, other = main["client"], alt["client"]
    s3.put_bucket_ownership_controls(
        Bucket=mbucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    s3.put_bucket_acl(Bucket=mbucket, GrantWrite=f'id="{canonical_id(other)}"',
                      GrantFullControl=f'id="{canonical_id(s3)}"')
    other.put_object(Bucket=mbucket, Key="kept", Body=b"1")
    other.put_object(Bucket=mbucket, Key="given", Body=b"2", ACL="bucket-owner-full-control")
    assert other.get_object_acl(Bucket=mbucket, Key="kept")["Owner"]["ID"] == canonical_id(other)
    assert s3.get_object_acl(Bucket=mbucket, Key="given")["Owner"]["ID"] == canonical_id(s3)


def test_create_bucket_with_object_ownership(main):
    s3 = main["client"]
    name = unique_bucket_name("own")
    with s3_error("InvalidBucketAclWithObjectOwnership", 400):
        s3.create_bucket(Bucket=name, ACL="public-read", ObjectOwnership="BucketOwnerEnforced")
    with s3_error("InvalidArgument", 400):
        s3.create_bucket(Bucket=name, ObjectOwnership="Mine")
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerPreferred")
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    finally:
        s3.delete_bucket(Bucket=name)


def test_aws_2023_defaults_flag(make_server):
    srv = make_server(extra_args=["--new-bucket-defaults", "aws-2023"])
    s3 = srv.client()
    name = unique_bucket_name("new")
    s3.create_bucket(Bucket=name)
    rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                     "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    with s3_error("InvalidBucketAclWithObjectOwnership", 400):
        s3.create_bucket(Bucket=unique_bucket_name(), ACL="public-read")
    # Buckets the administrator makes for a user start the same way.
    user, _, _ = create_user(srv)
    made = unique_bucket_name("adm")
    r = srv.signed_request("POST", "/_kura/admin/v1/buckets", body=json.dumps({"name": made, "owner": user}).encode(),
                           headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    access = r.json()["access"]
    assert access["object_ownership"] == "BucketOwnerEnforced"
    assert access["public_access_block"]["restrict_public_buckets"] is True


# ------------------------------------------------------------------ public access block
def test_public_access_block_settings(main, anon, mbucket):
    s3 = main["client"]
    with s3_error("NoSuchPublicAccessBlockConfiguration", 404):
        s3.get_public_access_block(Bucket=mbucket)
    s3.put_object(Bucket=mbucket, Key="pub", Body=b"p", ACL="public-read")
    public_policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{mbucket}/obj"}]})
    s3.put_bucket_policy(Bucket=mbucket, Policy=public_policy)
    anon.get_object(Bucket=mbucket, Key="pub")
    anon.get_object(Bucket=mbucket, Key="obj")

    def block(**settings):
        config = {"BlockPublicAcls": False, "IgnorePublicAcls": False,
                  "BlockPublicPolicy": False, "RestrictPublicBuckets": False}
        config.update(settings)
        s3.put_public_access_block(Bucket=mbucket, PublicAccessBlockConfiguration=config)
        assert s3.get_public_access_block(Bucket=mbucket)["PublicAccessBlockConfiguration"] == config

    block(IgnorePublicAcls=True)
    denied(anon.get_object, Bucket=mbucket, Key="pub")
    anon.get_object(Bucket=mbucket, Key="obj")
    block(RestrictPublicBuckets=True)
    anon.get_object(Bucket=mbucket, Key="pub")
    denied(anon.get_object, Bucket=mbucket, Key="obj")
    block(BlockPublicAcls=True)
    denied(s3.put_object_acl, Bucket=mbucket, Key="obj", ACL="public-read")
    denied(s3.put_object, Bucket=mbucket, Key="new", Body=b"x", ACL="public-read")
    denied(s3.put_bucket_acl, Bucket=mbucket, GrantRead=f'uri="{ALL_USERS}"')
    block(BlockPublicPolicy=True)
    s3.delete_bucket_policy(Bucket=mbucket)
    denied(s3.put_bucket_policy, Bucket=mbucket, Policy=public_policy)
    with s3_error("NoSuchBucketPolicy", 404):
        s3.get_bucket_policy(Bucket=mbucket)
    s3.delete_public_access_block(Bucket=mbucket)
    with s3_error("NoSuchPublicAccessBlockConfiguration", 404):
        s3.get_public_access_block(Bucket=mbucket)
    s3.put_bucket_policy(Bucket=mbucket, Policy=public_policy)


# ------------------------------------------------------------------ cross-account
def test_bucket_names_are_global(main, alt, mbucket):
    with s3_error("BucketAlreadyExists", 409):
        alt["client"].create_bucket(Bucket=mbucket)


def test_expected_bucket_owner(main, alt, mbucket):
    s3 = main["client"]
    s3.get_object(Bucket=mbucket, Key="obj", ExpectedBucketOwner=canonical_id(s3))
    denied(s3.get_object, Bucket=mbucket, Key="obj", ExpectedBucketOwner=canonical_id(alt["client"]))
    denied(s3.put_object, Bucket=mbucket, Key="obj", Body=b"overwritten",
           ExpectedBucketOwner=canonical_id(alt["client"]))
    assert s3.get_object(Bucket=mbucket, Key="obj")["Body"].read() == b"secret"


def test_copy_and_list_across_users_only_where_granted(main, alt, mbucket):
    s3, other = main["client"], alt["client"]
    theirs = unique_bucket_name("alt")
    other.create_bucket(Bucket=theirs)
    try:
        denied(other.copy_object, Bucket=theirs, Key="stolen", CopySource={"Bucket": mbucket, "Key": "obj"})
        denied(other.list_objects_v2, Bucket=mbucket)
        assert mbucket not in [b["Name"] for b in other.list_buckets()["Buckets"]]
        s3.put_object_acl(Bucket=mbucket, Key="obj", GrantRead=f'id="{canonical_id(other)}"')
        other.copy_object(Bucket=theirs, Key="copied", CopySource={"Bucket": mbucket, "Key": "obj"})
        assert other.get_object(Bucket=theirs, Key="copied")["Body"].read() == b"secret"
        other.delete_object(Bucket=theirs, Key="copied")
    finally:
        other.delete_bucket(Bucket=theirs)


def test_delete_objects_is_authorized_key_by_key(main, alt, mbucket):
    s3, other = main["client"], alt["client"]
    s3.put_object(Bucket=mbucket, Key="tmp/a", Body=b"a")
    s3.put_bucket_policy(Bucket=mbucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": alt["name"]}, "Action": "s3:DeleteObject",
             "Resource": f"arn:aws:s3:::{mbucket}/tmp/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
             "Resource": f"arn:aws:s3:::{mbucket}/obj"}]}))
    out = other.delete_objects(Bucket=mbucket, Delete={"Objects": [{"Key": "tmp/a"}, {"Key": "obj"}]})
    assert [d["Key"] for d in out["Deleted"]] == ["tmp/a"]
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("obj", "AccessDenied")]
    # The explicit deny holds for the owner too, in a batch as alone.
    out = s3.delete_objects(Bucket=mbucket, Delete={"Objects": [{"Key": "obj"}]})
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("obj", "AccessDenied")]
    denied(s3.delete_object, Bucket=mbucket, Key="obj")
    assert s3.get_object(Bucket=mbucket, Key="obj")["Body"].read() == b"secret"


def test_admin_shows_policy_acl_and_public_status(server, kura_bin, main, mbucket):
    s3 = main["client"]
    s3.put_bucket_acl(Bucket=mbucket, ACL="public-read")
    s3.put_bucket_policy(Bucket=mbucket, Policy=json.dumps(read_only_for(mbucket, "someone")))
    s3.put_public_access_block(Bucket=mbucket, PublicAccessBlockConfiguration={"BlockPublicPolicy": True})
    r = server.signed_request("GET", f"/_kura/admin/v1/buckets/{mbucket}")
    access = r.json()["access"]
    assert access["public"] is True and access["public_by_acl"] is True
    assert access["public_by_policy"] is False
    assert access["object_ownership"] == "ObjectWriter"
    assert access["public_access_block"]["block_public_policy"] is True
    assert {"grantee": {"group": ALL_USERS}, "permission": "READ"} in access["acl"]
    assert access["policy"]["Statement"][0]["Sid"] == "ReadOnly"
    env = {"PATH": "/usr/bin:/bin", "KURA_ADMIN_ENDPOINT": server.endpoint,
           "KURA_ADMIN_ACCESS_KEY": server.access_key, "KURA_ADMIN_SECRET_KEY": server.secret_key}
    out = run([str(kura_bin), "admin", "bucket", "info", mbucket], env).stdout
    assert "public:      yes (ACL)" in out, out
    assert "AllUsers READ" in out and "1 statement(s)" in out and "block_public_policy" in out, out
