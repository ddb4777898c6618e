"""boto3: ListObjects (v1) and ListObjectsV2 -- prefix, delimiter, max-keys,
marker / continuation-token / start-after, encoding-type=url, fetch-owner,
CommonPrefixes, exact IsTruncated / NextMarker / NextContinuationToken /
KeyCount."""

from urllib.parse import unquote_plus

import pytest

from conftest import empty_and_delete_bucket, s3_error, unique_bucket_name, xml_find_all, xml_text

KEYS = sorted([
    "a.txt",
    "b/1.txt",
    "b/2.txt",
    "b/c/3.txt",
    "b/c/4.txt",
    "d/5.txt",
    "e",
    "e/6.txt",
    "f+g h.txt",
    "z/ünï/7.txt",
], key=lambda k: k.encode())


@pytest.fixture(scope="module")
def lbucket(server):
    """A bucket with KEYS, shared by the (read-only) tests of this module."""
    s3 = server.client()
    name = unique_bucket_name("ls")
    s3.create_bucket(Bucket=name)
    for k in KEYS:
        s3.put_object(Bucket=name, Key=k, Body=k.encode())
    yield name
    empty_and_delete_bucket(s3, name)


def _v2_all(s3, **kw):
    pages, token = [], None
    while True:
        args = dict(kw)
        if token:
            args["ContinuationToken"] = token
        r = s3.list_objects_v2(**args)
        pages.append(r)
        if not r["IsTruncated"]:
            assert "NextContinuationToken" not in r
            return pages
        token = r["NextContinuationToken"]
        assert token
        assert len(pages) < 100


def test_v2_full_listing(s3, lbucket):
    r = s3.list_objects_v2(Bucket=lbucket)
    assert [o["Key"] for o in r["Contents"]] == KEYS   # UTF-8 byte order
    assert r["KeyCount"] == len(KEYS)
    assert r["IsTruncated"] is False
    assert r["MaxKeys"] == 1000
    assert r["Name"] == lbucket
    for o in r["Contents"]:
        assert o["Size"] == len(o["Key"].encode())
        assert o["ETag"].startswith('"') and len(o["ETag"]) == 34
        assert o["StorageClass"] == "STANDARD"
        assert o["LastModified"]
        assert "Owner" not in o   # only with FetchOwner


def test_v2_fetch_owner(s3, lbucket):
    r = s3.list_objects_v2(Bucket=lbucket, FetchOwner=True, MaxKeys=2)
    owner = s3.get_bucket_acl(Bucket=lbucket)["Owner"]["ID"]
    for o in r["Contents"]:
        assert o["Owner"]["ID"] == owner


def test_v2_prefix(s3, lbucket):
    r = s3.list_objects_v2(Bucket=lbucket, Prefix="b/")
    assert [o["Key"] for o in r["Contents"]] == ["b/1.txt", "b/2.txt", "b/c/3.txt", "b/c/4.txt"]
    assert r["Prefix"] == "b/"
    assert r["KeyCount"] == 4
    r = s3.list_objects_v2(Bucket=lbucket, Prefix="nothing-here")
    assert "Contents" not in r
    assert r["KeyCount"] == 0
    assert r["IsTruncated"] is False


def test_v2_delimiter(s3, lbucket):
    r = s3.list_objects_v2(Bucket=lbucket, Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a.txt", "e", "f+g h.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/", "d/", "e/", "z/"]
    assert r["KeyCount"] == 7   # keys + common prefixes
    assert r["Delimiter"] == "/"


def test_v2_prefix_and_delimiter(s3, lbucket):
    r = s3.list_objects_v2(Bucket=lbucket, Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["b/1.txt", "b/2.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/c/"]
    assert r["KeyCount"] == 3


def test_v2_non_slash_delimiter(s3, lbucket):
    r = s3.list_objects_v2(Bucket=lbucket, Delimiter=".")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == [
        "a.", "b/1.", "b/2.", "b/c/3.", "b/c/4.", "d/5.", "e/6.", "f+g h.", "z/ünï/7."]
    assert [o["Key"] for o in r["Contents"]] == ["e"]


def test_v2_max_keys_pagination_exact(s3, lbucket):
    pages = _v2_all(s3, Bucket=lbucket, MaxKeys=3)
    assert [len(p.get("Contents", [])) for p in pages] == [3, 3, 3, 1]
    assert [p["KeyCount"] for p in pages] == [3, 3, 3, 1]
    assert [p["IsTruncated"] for p in pages] == [True, True, True, False]
    assert [o["Key"] for p in pages for o in p["Contents"]] == KEYS
    assert pages[1]["ContinuationToken"] == pages[0]["NextContinuationToken"]


def test_v2_exact_multiple_not_truncated(s3, lbucket):
    # 10 keys, MaxKeys=5: the second page is the last and must say so
    pages = _v2_all(s3, Bucket=lbucket, MaxKeys=5)
    assert [p["IsTruncated"] for p in pages] == [True, False]
    r = s3.list_objects_v2(Bucket=lbucket, MaxKeys=len(KEYS))
    assert r["IsTruncated"] is False
    assert "NextContinuationToken" not in r


def test_v2_pagination_with_delimiter_counts_prefixes(s3, lbucket):
    pages = _v2_all(s3, Bucket=lbucket, Delimiter="/", MaxKeys=2)
    entries = []
    for p in pages:
        n = len(p.get("Contents", [])) + len(p.get("CommonPrefixes", []))
        assert n == p["KeyCount"]
        assert n <= 2
        entries += [o["Key"] for o in p.get("Contents", [])]
        entries += [c["Prefix"] for c in p.get("CommonPrefixes", [])]
    assert sorted(entries, key=lambda k: k.encode()) == ["a.txt", "b/", "d/", "e", "e/", "f+g h.txt", "z/"]
    assert len(entries) == 7  # no prefix repeated across pages
    assert [p["IsTruncated"] for p in pages] == [True, True, True, False]


def test_v2_start_after(s3, lbucket):
    r = s3.list_objects_v2(Bucket=lbucket, StartAfter="b/c/3.txt")
    assert [o["Key"] for o in r["Contents"]] == KEYS[KEYS.index("b/c/3.txt") + 1:]
    assert r["StartAfter"] == "b/c/3.txt"
    r = s3.list_objects_v2(Bucket=lbucket, StartAfter="b/c/4.txt", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["d/", "e/", "z/"]
    assert [o["Key"] for o in r["Contents"]] == ["e", "f+g h.txt"]
    r = s3.list_objects_v2(Bucket=lbucket, StartAfter="zzz")
    assert r["KeyCount"] == 0 and "Contents" not in r


def test_v2_invalid_continuation_token(s3, lbucket):
    with s3_error("InvalidArgument", 400):
        s3.list_objects_v2(Bucket=lbucket, ContinuationToken="not-a-valid-token!!")


def test_v2_max_keys_zero(s3, lbucket):
    r = s3.list_objects_v2(Bucket=lbucket, MaxKeys=0)
    assert r["KeyCount"] == 0
    assert "Contents" not in r


def test_v2_encoding_type_url_raw(s3, lbucket):
    # explicit EncodingType: boto3 does not decode, we see what the server sent
    r = s3.list_objects_v2(Bucket=lbucket, EncodingType="url", Prefix="f")
    assert r["EncodingType"] == "url"
    raw_keys = [o["Key"] for o in r["Contents"]]
    assert len(raw_keys) == 1
    assert " " not in raw_keys[0]
    assert unquote_plus(raw_keys[0]) == "f+g h.txt"
    r = s3.list_objects_v2(Bucket=lbucket, EncodingType="url", Prefix="z/ü")
    raw = r["Contents"][0]["Key"]
    assert raw.isascii(), raw
    assert unquote_plus(raw) == "z/ünï/7.txt"
    assert unquote_plus(r["Prefix"]) == "z/ü"


def test_v2_encoding_type_url_common_prefixes(s3, lbucket, server):
    r = server.signed_request("GET", f"/{lbucket}", query=[
        ("list-type", "2"), ("delimiter", "/"), ("prefix", "z/"), ("encoding-type", "url")])
    assert r.status_code == 200, r.content
    prefixes = [p.text for cp in xml_find_all(r.content, "CommonPrefixes")
                for p in cp if p.tag.endswith("Prefix")]
    assert len(prefixes) == 1
    assert prefixes[0].isascii()
    assert unquote_plus(prefixes[0]) == "z/ünï/"
    assert xml_text(r.content, "EncodingType") == "url"


def test_v2_default_boto3_decodes(s3, lbucket):
    # default boto3 sends encoding-type=url and decodes: keys round-trip
    r = s3.list_objects_v2(Bucket=lbucket, Prefix="z/")
    assert [o["Key"] for o in r["Contents"]] == ["z/ünï/7.txt"]


def test_v2_invalid_encoding_type(server, lbucket):
    r = server.signed_request("GET", f"/{lbucket}", query=[("list-type", "2"), ("encoding-type", "base64")])
    assert r.status_code == 400
    assert xml_text(r.content, "Code") == "InvalidArgument"


def test_list_missing_bucket(s3):
    with s3_error("NoSuchBucket", 404):
        s3.list_objects_v2(Bucket=unique_bucket_name("missing"))
    with s3_error("NoSuchBucket", 404):
        s3.list_objects(Bucket=unique_bucket_name("missing"))


def test_paginator_v2(s3, lbucket):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=lbucket, PaginationConfig={"PageSize": 4}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == KEYS


# ------------------------------------------------------------------- v1
def test_v1_full_listing(s3, lbucket):
    r = s3.list_objects(Bucket=lbucket)
    assert [o["Key"] for o in r["Contents"]] == KEYS
    assert r["IsTruncated"] is False
    assert r["MaxKeys"] == 1000
    assert "NextMarker" not in r


def test_v1_marker_pagination(s3, lbucket):
    r = s3.list_objects(Bucket=lbucket, MaxKeys=4)
    assert r["IsTruncated"] is True
    assert [o["Key"] for o in r["Contents"]] == KEYS[:4]
    # without a delimiter S3 returns no NextMarker; the client uses the last key
    marker = r.get("NextMarker", r["Contents"][-1]["Key"])
    assert marker == KEYS[3]
    r2 = s3.list_objects(Bucket=lbucket, MaxKeys=4, Marker=marker)
    assert r2["Marker"] == marker
    assert [o["Key"] for o in r2["Contents"]] == KEYS[4:8]
    r3 = s3.list_objects(Bucket=lbucket, MaxKeys=4, Marker=KEYS[7])
    assert [o["Key"] for o in r3["Contents"]] == KEYS[8:]
    assert r3["IsTruncated"] is False


def test_v1_next_marker_with_delimiter(s3, lbucket):
    r = s3.list_objects(Bucket=lbucket, Delimiter="/", MaxKeys=2)
    assert r["IsTruncated"] is True
    assert [o["Key"] for o in r.get("Contents", [])] == ["a.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/"]
    # with a delimiter NextMarker is returned: the last key or prefix of the page
    assert r["NextMarker"] == "b/"
    r2 = s3.list_objects(Bucket=lbucket, Delimiter="/", MaxKeys=2, Marker=r["NextMarker"])
    got = [o["Key"] for o in r2.get("Contents", [])] + [p["Prefix"] for p in r2.get("CommonPrefixes", [])]
    assert sorted(got) == ["d/", "e"]
    assert r2["NextMarker"] == "e"
    r3 = s3.list_objects(Bucket=lbucket, Delimiter="/", MaxKeys=2, Marker="e")
    got = [o["Key"] for o in r3.get("Contents", [])] + [p["Prefix"] for p in r3.get("CommonPrefixes", [])]
    assert sorted(got) == ["e/", "f+g h.txt"]
    assert r3["IsTruncated"] is True
    r4 = s3.list_objects(Bucket=lbucket, Delimiter="/", MaxKeys=2, Marker=r3["NextMarker"])
    assert [p["Prefix"] for p in r4["CommonPrefixes"]] == ["z/"]
    assert r4["IsTruncated"] is False
    assert "NextMarker" not in r4


def test_v1_prefix_delimiter(s3, lbucket):
    r = s3.list_objects(Bucket=lbucket, Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["b/1.txt", "b/2.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/c/"]
    assert r["Prefix"] == "b/"
    assert r["Delimiter"] == "/"


def test_v1_encoding_type_url(s3, lbucket):
    r = s3.list_objects(Bucket=lbucket, EncodingType="url", Prefix="z/")
    raw = r["Contents"][0]["Key"]
    assert raw.isascii(), raw
    assert unquote_plus(raw) == "z/ünï/7.txt"


def test_paginator_v1(s3, lbucket):
    keys = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=lbucket, PaginationConfig={"PageSize": 3}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == KEYS


def test_listing_many_keys_pages(s3, bucket):
    """1,100 keys: ListObjectsV2 caps a page at 1000 and paginates exactly."""
    from concurrent.futures import ThreadPoolExecutor
    keys = [f"many/{i:05d}" for i in range(1100)]
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b""), keys))
    r = s3.list_objects_v2(Bucket=bucket)
    assert r["KeyCount"] == 1000
    assert r["IsTruncated"] is True
    r2 = s3.list_objects_v2(Bucket=bucket, ContinuationToken=r["NextContinuationToken"])
    assert r2["KeyCount"] == 100
    assert r2["IsTruncated"] is False
    assert [o["Key"] for o in r["Contents"] + r2["Contents"]] == keys
    # MaxKeys above 1000 is capped at 1000
    r = s3.list_objects_v2(Bucket=bucket, MaxKeys=5000)
    assert r["KeyCount"] == 1000
