"""Tests of the fake Kubernetes API server (fake_kube.py) itself, over HTTP with
`requests`: CRUD and Status errors, patches, finalizers and deletion, the status
subresource, garbage collection, list paging and selectors, watch semantics.
Each test fails if the behaviour it names breaks."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
import requests

from fake_kube import FakeKube, json_patch, merge_patch, parse_label_selector

CM = "/api/v1/namespaces/ns1/configmaps"
OBC = "/apis/objectbucket.io/v1alpha1/namespaces/ns1/objectbucketclaims"


class Client:
    def __init__(self, fk: FakeKube):
        self.fk = fk
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {fk.token}"

    def req(self, method, path, body=None, ctype="application/json", **params):
        data = None if body is None else json.dumps(body)
        return self.s.request(method, self.fk.url + path, data=data, params=params or None,
                              headers={"Content-Type": ctype}, timeout=10)

    def get(self, path, **params):
        return self.req("GET", path, **params)

    def post(self, path, body, **params):
        return self.req("POST", path, body, **params)

    def put(self, path, body):
        return self.req("PUT", path, body)

    def patch(self, path, body, kind="merge", **params):
        ctype = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json",
                 "apply": "application/apply-patch+yaml"}[kind]
        return self.req("PATCH", path, body, ctype, **params)

    def delete(self, path, body=None, **params):
        return self.req("DELETE", path, body, **params)


@pytest.fixture
def fk():
    f = FakeKube(bookmark_interval=0.3).start()
    yield f
    f.stop()


@pytest.fixture
def c(fk):
    return Client(fk)


def assert_status(r, code, reason):
    assert r.status_code == code, (r.status_code, r.text)
    b = r.json()
    assert b["kind"] == "Status" and b["apiVersion"] == "v1" and b["status"] == "Failure", b
    assert b["code"] == code and b["reason"] == reason and b["message"], b
    return b


def cm(name, **meta):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": {"k": "v"}}


def obc(name, **spec):
    return {"apiVersion": "objectbucket.io/v1alpha1", "kind": "ObjectBucketClaim",
            "metadata": {"name": name}, "spec": {"storageClassName": "sc", **spec}}


# ------------------------------------------------------------------- CRUD
def test_auth_required(fk):
    r = requests.get(fk.url + CM, timeout=5)
    assert_status(r, 401, "Unauthorized")
    r = requests.get(fk.url + CM, headers={"Authorization": "Bearer wrong"}, timeout=5)
    assert_status(r, 401, "Unauthorized")


def test_create_get_metadata_and_errors(c):
    r = c.post(CM, cm("a"))
    assert r.status_code == 201, r.text
    o = r.json()
    md = o["metadata"]
    assert o["kind"] == "ConfigMap" and o["apiVersion"] == "v1"
    assert md["namespace"] == "ns1" and md["uid"] and md["creationTimestamp"].endswith("Z")
    assert isinstance(md["resourceVersion"], str) and md["generation"] == 1
    assert c.get(CM + "/a").json() == o
    b = assert_status(c.post(CM, cm("a")), 409, "AlreadyExists")
    assert b["details"]["name"] == "a" and b["details"]["kind"] == "configmaps"
    b = assert_status(c.get(CM + "/nope"), 404, "NotFound")
    assert b["details"]["name"] == "nope"
    assert_status(c.delete(CM + "/nope"), 404, "NotFound")
    # resourceVersion is one global counter
    r2 = c.post("/api/v1/namespaces/ns2/configmaps", cm("b")).json()
    assert int(r2["metadata"]["resourceVersion"]) > int(md["resourceVersion"])
    # namespace mismatch between body and URL
    assert_status(c.post(CM, cm("x", namespace="other")), 400, "BadRequest")


def test_generate_name(c):
    body = cm("")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "gen-"
    names = {c.post(CM, body).json()["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3 and all(n.startswith("gen-") and len(n) == 9 for n in names)


def test_cluster_scoped_and_all_namespaces(c):
    sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
          "provisioner": "kura.dev/bucket"}
    r = c.post("/apis/storage.k8s.io/v1/storageclasses", sc)
    assert r.status_code == 201 and "namespace" not in r.json()["metadata"]
    assert c.get("/apis/storage.k8s.io/v1/storageclasses/fast").json()["provisioner"] == "kura.dev/bucket"
    c.post(OBC, obc("one"))
    c.post("/apis/objectbucket.io/v1alpha1/namespaces/ns2/objectbucketclaims", obc("two"))
    items = c.get("/apis/objectbucket.io/v1alpha1/objectbucketclaims").json()["items"]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items] == [("ns1", "one"), ("ns2", "two")]
    assert [i["metadata"]["name"] for i in c.get(OBC).json()["items"]] == ["one"]


def test_put_conflict_and_generation(c):
    o = c.post(OBC, obc("a")).json()
    o["spec"]["bucketName"] = "b1"
    r = c.put(OBC + "/a", o)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["generation"] == 2
    # stale resourceVersion -> 409 Conflict
    assert_status(c.put(OBC + "/a", o), 409, "Conflict")
    # metadata-only change does not bump generation
    cur = r.json()
    cur["metadata"]["labels"] = {"x": "y"}
    r2 = c.put(OBC + "/a", cur)
    assert r2.status_code == 200 and r2.json()["metadata"]["generation"] == 2
    assert int(r2.json()["metadata"]["resourceVersion"]) > int(cur["metadata"]["resourceVersion"])


def test_secret_string_data(c):
    r = c.post("/api/v1/namespaces/ns1/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"A": base64.b64encode(b"1").decode()}, "stringData": {"B": "two"}})
    o = r.json()
    assert "stringData" not in o and o["type"] == "Opaque"
    assert {k: base64.b64decode(v).decode() for k, v in o["data"].items()} == {"A": "1", "B": "two"}
    o = c.patch("/api/v1/namespaces/ns1/secrets/s", {"stringData": {"A": "new"}}).json()
    assert base64.b64decode(o["data"]["A"]) == b"new" and "stringData" not in o


# ---------------------------------------------------------------- patches
def test_merge_patch_and_json_patch_units():
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None, "d": 3}, "l": [2]}) == \
        {"a": {"c": 2, "d": 3}, "l": [2]}
    doc = {"m": {"f": ["x"]}}
    assert json_patch(doc, [{"op": "add", "path": "/m/f/-", "value": "y"}]) == {"m": {"f": ["x", "y"]}}
    assert json_patch(doc, [{"op": "test", "path": "/m/g", "value": None},
                            {"op": "add", "path": "/m/g", "value": [1]}]) == {"m": {"f": ["x"], "g": [1]}}
    assert json_patch({"a/b": {"~": 1}}, [{"op": "replace", "path": "/a~1b/~0", "value": 2}]) == {"a/b": {"~": 2}}
    assert json_patch({"a": 1}, [{"op": "move", "from": "/a", "path": "/b"}]) == {"b": 1}
    sel = parse_label_selector("app in (a, b),!gone,tier,env!=prod")
    assert sel({"app": "a", "tier": "x"}) and not sel({"app": "c", "tier": "x"})
    assert not sel({"app": "a", "tier": "x", "gone": "1"}) and not sel({"app": "a"})
    assert not sel({"app": "b", "tier": "1", "env": "prod"})


def test_patch_kinds(c):
    c.post(OBC, obc("a"))
    r = c.patch(OBC + "/a", {"metadata": {"labels": {"l": "1"}}, "spec": {"bucketName": "bk"}})
    assert r.json()["metadata"]["labels"] == {"l": "1"} and r.json()["spec"]["bucketName"] == "bk"
    r = c.patch(OBC + "/a", {"spec": {"bucketName": None}})
    assert "bucketName" not in r.json()["spec"]
    # JSON patch: the finalizer helper of kube-runtime (test null, add)
    r = c.patch(OBC + "/a", [{"op": "test", "path": "/metadata/finalizers", "value": None},
                             {"op": "add", "path": "/metadata/finalizers", "value": ["f/1"]}], "json")
    assert r.status_code == 200 and r.json()["metadata"]["finalizers"] == ["f/1"]
    # a failed test -> 422 Invalid, nothing changed
    rv = r.json()["metadata"]["resourceVersion"]
    r = c.patch(OBC + "/a", [{"op": "test", "path": "/metadata/finalizers", "value": None},
                             {"op": "add", "path": "/metadata/finalizers", "value": ["f/2"]}], "json")
    assert_status(r, 422, "Invalid")
    assert c.get(OBC + "/a").json()["metadata"]["resourceVersion"] == rv
    # strategic merge patch: 415 for custom resources, merge for built-ins
    assert_status(c.patch(OBC + "/a", {"spec": {}}, "strategic"), 415, "UnsupportedMediaType")
    c.post(CM, cm("m"))
    r = c.patch(CM + "/m", {"data": {"k2": "v2"}}, "strategic")
    assert r.json()["data"] == {"k": "v", "k2": "v2"}
    # merge patch with a stale resourceVersion -> 409
    assert_status(c.patch(CM + "/m", {"metadata": {"resourceVersion": "1"}, "data": {"x": "y"}}),
                  409, "Conflict")
    assert_status(c.patch(CM + "/none", {"data": {}}), 404, "NotFound")


def test_server_side_apply(c):
    body = cm("applied")
    r = c.patch(CM + "/applied", body, "apply")
    assert_status(r, 400, "BadRequest")  # fieldManager is required
    r = c.patch(CM + "/applied", body, "apply", fieldManager="t", force="true")
    assert r.status_code == 201, r.text
    uid = r.json()["metadata"]["uid"]
    body["data"] = {"k": "v2"}
    r = c.patch(CM + "/applied", body, "apply", fieldManager="t", force="true")
    assert r.status_code == 200 and r.json()["data"] == {"k": "v2"} and r.json()["metadata"]["uid"] == uid


# --------------------------------------------------------- status subresource
def test_status_subresource(c):
    c.post(OBC, obc("a"))
    # main resource writes ignore status
    r = c.patch(OBC + "/a", {"status": {"phase": "Bound"}, "spec": {"bucketName": "x"}})
    assert "status" not in r.json() and r.json()["spec"]["bucketName"] == "x"
    # status writes change only the status
    r = c.patch(OBC + "/a/status", {"status": {"phase": "Bound"}, "spec": {"bucketName": "y"}})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == {"phase": "Bound"} and r.json()["spec"]["bucketName"] == "x"
    assert r.json()["metadata"]["generation"] == 2  # status does not bump it
    assert c.get(OBC + "/a/status").json()["status"]["phase"] == "Bound"
    o = c.get(OBC + "/a").json()
    o["status"] = {"phase": "Failed"}
    assert "status" in c.put(OBC + "/a", o).json()
    assert c.get(OBC + "/a").json()["status"] == {"phase": "Bound"}
    # no status subresource on configmaps
    c.post(CM, cm("m"))
    assert_status(c.patch(CM + "/m/status", {"status": {}}), 404, "NotFound")


# ------------------------------------------------------ finalizers, deletion
def test_finalizer_deletion(c):
    c.post(CM, cm("f", finalizers=["a/x", "b/y"]))
    r = c.delete(CM + "/f", {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
    assert r.status_code == 200 and r.json()["metadata"]["deletionTimestamp"]
    assert c.get(CM + "/f").json()["metadata"]["deletionTimestamp"]
    # no new finalizers while deleting
    assert_status(c.patch(CM + "/f", {"metadata": {"finalizers": ["a/x", "b/y", "c/z"]}}), 422, "Invalid")
    # other updates still work
    assert c.patch(CM + "/f", {"data": {"k": "changed"}}).status_code == 200
    r = c.patch(CM + "/f", [{"op": "test", "path": "/metadata/finalizers/0", "value": "a/x"},
                            {"op": "remove", "path": "/metadata/finalizers/0"}], "json")
    assert r.status_code == 200 and r.json()["metadata"]["finalizers"] == ["b/y"]
    assert c.get(CM + "/f").status_code == 200
    c.patch(CM + "/f", {"metadata": {"finalizers": None}})
    assert_status(c.get(CM + "/f"), 404, "NotFound")
    # without finalizers DELETE removes at once
    c.post(CM, cm("g"))
    assert c.delete(CM + "/g").status_code == 200
    assert c.get(CM + "/g").status_code == 404


def test_owner_reference_cascade(c, fk):
    owner = c.post(OBC, obc("own")).json()
    ref = {"apiVersion": "objectbucket.io/v1alpha1", "kind": "ObjectBucketClaim", "name": "own",
           "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    c.post(CM, cm("dep1", ownerReferences=[ref]))
    c.post(CM, cm("dep2", ownerReferences=[ref], finalizers=["keep/me"]))
    c.post(CM, cm("other"))
    c.post(CM, cm("orphan", ownerReferences=[{**ref, "uid": "uid-of-nothing"}]))
    # an owner reference to a uid that does not exist is garbage-collected (real GC does that too)
    assert c.get(CM + "/orphan").status_code == 404
    c.patch(OBC + "/own", {"metadata": {"finalizers": ["x/y"]}})
    c.delete(OBC + "/own")
    # owner still exists (being deleted): dependents stay
    assert c.get(CM + "/dep1").status_code == 200
    c.patch(OBC + "/own", {"metadata": {"finalizers": []}})
    assert c.get(OBC + "/own").status_code == 404
    assert c.get(CM + "/dep1").status_code == 404
    dep2 = c.get(CM + "/dep2").json()
    assert dep2["metadata"]["deletionTimestamp"], "dependent with a finalizer is marked, not removed"
    c.patch(CM + "/dep2", {"metadata": {"finalizers": None}})
    assert c.get(CM + "/dep2").status_code == 404
    assert c.get(CM + "/other").status_code == 200


def test_orphan_propagation(c):
    owner = c.post(OBC, obc("o")).json()
    ref = {"apiVersion": "objectbucket.io/v1alpha1", "kind": "ObjectBucketClaim", "name": "o",
           "uid": owner["metadata"]["uid"]}
    c.post(CM, cm("d", ownerReferences=[ref]))
    c.delete(OBC + "/o", {"propagationPolicy": "Orphan"})
    d = c.get(CM + "/d")
    assert d.status_code == 200 and "ownerReferences" not in d.json()["metadata"]


# ------------------------------------------------------------ list, selectors
def test_list_paging_and_selectors(c):
    for i in range(7):
        c.post(CM, cm(f"c{i}", labels={"app": "a" if i % 2 else "b", **({"x": "1"} if i < 2 else {})}))
    r = c.get(CM, limit="3").json()
    assert len(r["items"]) == 3 and r["metadata"]["continue"] and r["metadata"]["resourceVersion"]
    names = [i["metadata"]["name"] for i in r["items"]]
    while r["metadata"].get("continue"):
        r = c.get(CM, limit="3", **{"continue": r["metadata"]["continue"]}).json()
        names += [i["metadata"]["name"] for i in r["items"]]
    assert names == [f"c{i}" for i in range(7)]
    sel = lambda **q: [i["metadata"]["name"] for i in c.get(CM, **q).json()["items"]]  # noqa: E731
    assert sel(labelSelector="app=a") == ["c1", "c3", "c5"]
    assert sel(labelSelector="app in (a,b),x") == ["c0", "c1"]
    assert sel(labelSelector="app notin (a),!x") == ["c2", "c4", "c6"]
    assert sel(fieldSelector="metadata.name=c4") == ["c4"]
    assert sel(fieldSelector="metadata.namespace=ns1,metadata.name!=c0", labelSelector="x") == ["c1"]
    assert c.get(CM, fieldSelector="spec.x=1").status_code == 400


# ------------------------------------------------------------------- watch
class Watch:
    """Reads a watch stream on a thread into a list of events."""

    def __init__(self, c: Client, path: str, **params):
        self.events: "list[dict]" = []
        self.done = threading.Event()
        self.resp = c.s.get(c.fk.url + path, params={"watch": "true", **params}, stream=True, timeout=30)
        assert self.resp.status_code == 200
        assert self.resp.headers.get("Transfer-Encoding") == "chunked"
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            for line in self.resp.iter_lines():
                if line:
                    self.events.append(json.loads(line))
        except Exception:
            pass
        self.done.set()

    def wait(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.events):
                return self.events
            time.sleep(0.02)
        raise AssertionError(f"watch events: {[(e['type'], e['object'].get('metadata', {}).get('name')) for e in self.events]}")

    def typed(self, skip_bookmarks=True):
        return [(e["type"], e["object"]["metadata"].get("name")) for e in self.events
                if not (skip_bookmarks and e["type"] == "BOOKMARK")]

    def close(self):
        """Nothing to do: FakeKube.stop() (fixture teardown) ends every watch."""


def test_watch_from_resource_version(c):
    c.post(CM, cm("before"))
    rv = c.get(CM).json()["metadata"]["resourceVersion"]
    w = Watch(c, CM, resourceVersion=rv, timeoutSeconds="10")
    c.post(CM, cm("w1"))
    c.patch(CM + "/w1", {"data": {"k": "2"}})
    c.post("/api/v1/namespaces/other/configmaps", cm("elsewhere"))  # other namespace: not seen
    c.delete(CM + "/w1")
    w.wait(lambda ev: len([e for e in ev if e["type"] != "BOOKMARK"]) >= 3)
    time.sleep(0.2)
    assert w.typed() == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in w.events if e["type"] != "BOOKMARK"]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    w.close()


def test_watch_initial_state_bookmarks_and_timeout(c):
    c.post(CM, cm("x"))
    t0 = time.monotonic()
    w = Watch(c, CM, allowWatchBookmarks="true", timeoutSeconds="1")
    assert w.done.wait(5), "watch did not end at timeoutSeconds"
    assert 0.8 < time.monotonic() - t0 < 3
    assert w.typed() == [("ADDED", "x")]
    bms = [e for e in w.events if e["type"] == "BOOKMARK"]
    assert bms and bms[0]["object"]["metadata"]["resourceVersion"], w.events
    # sendInitialEvents -> initial-events-end bookmark
    w2 = Watch(c, CM, allowWatchBookmarks="true", sendInitialEvents="true",
               resourceVersionMatch="NotOlderThan", timeoutSeconds="1")
    w2.wait(lambda ev: any(e["type"] == "BOOKMARK" for e in ev))
    bm = [e for e in w2.events if e["type"] == "BOOKMARK"][0]
    assert bm["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    w2.close()


def test_watch_label_selector_transitions(c):
    c.post(CM, cm("s"))
    rv = c.get(CM).json()["metadata"]["resourceVersion"]
    w = Watch(c, CM, resourceVersion=rv, labelSelector="sel=yes", timeoutSeconds="10")
    c.patch(CM + "/s", {"metadata": {"labels": {"sel": "yes"}}})
    c.patch(CM + "/s", {"data": {"k": "3"}})
    c.patch(CM + "/s", {"metadata": {"labels": {"sel": "no"}}})
    w.wait(lambda ev: len(ev) >= 3)
    assert w.typed() == [("ADDED", "s"), ("MODIFIED", "s"), ("DELETED", "s")]
    w.close()


def test_watch_expired_resource_version(c, fk):
    c.post(CM, cm("a"))
    old_rv = c.get(CM).json()["metadata"]["resourceVersion"]
    c.post(CM, cm("b"))
    fk.compact()
    w = Watch(c, CM, resourceVersion=old_rv, timeoutSeconds="5")
    assert w.done.wait(5)
    assert len(w.events) == 1 and w.events[0]["type"] == "ERROR", w.events
    st = w.events[0]["object"]
    assert st["kind"] == "Status" and st["code"] == 410 and st["reason"] == "Expired"
    # a watch from the current resourceVersion works
    w2 = Watch(c, CM, resourceVersion=str(fk.resource_version), timeoutSeconds="5")
    c.post(CM, cm("c"))
    w2.wait(lambda ev: ev)
    assert w2.typed() == [("ADDED", "c")]
    w2.close()


def test_watch_sees_finalizer_deletion(c):
    c.post(CM, cm("fd", finalizers=["a/b"]))
    rv = c.get(CM).json()["metadata"]["resourceVersion"]
    w = Watch(c, CM, resourceVersion=rv, timeoutSeconds="10")
    c.delete(CM + "/fd")
    c.patch(CM + "/fd", {"metadata": {"finalizers": None}})
    w.wait(lambda ev: any(e["type"] == "DELETED" for e in ev))
    types = [t for t, _ in w.typed()]
    assert types[0] == "MODIFIED" and w.events[0]["object"]["metadata"]["deletionTimestamp"]
    assert types[-1] == "DELETED"
    w.close()


def test_events_storage_and_request_log(c, fk):
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"generateName": "x-"},
          "reason": "Bound", "note": "n", "type": "Normal", "action": "Provision",
          "regarding": {"kind": "ObjectBucketClaim", "name": "a", "namespace": "ns1"}}
    r = c.post("/apis/events.k8s.io/v1/namespaces/ns1/events", ev)
    assert r.status_code == 201
    name = r.json()["metadata"]["name"]
    r = c.patch(f"/apis/events.k8s.io/v1/namespaces/ns1/events/{name}", {"series": {"count": 2}}, "strategic")
    assert r.status_code == 200 and r.json()["series"] == {"count": 2}
    assert [e["reason"] for e in fk.list("events", "ns1", group="events.k8s.io")] == ["Bound"]
    c.post("/api/v1/namespaces/ns1/events", {"metadata": {"name": "core"}, "reason": "R"})
    assert fk.get("events", "core", "ns1")["reason"] == "R"
    log = fk.requests_matching("PATCH", "/events/")
    assert log and log[-1]["content_type"] == "application/strategic-merge-patch+json" and log[-1]["status"] == 200


def test_direct_accessors(fk, c):
    o = fk.create({**obc("d"), "metadata": {"name": "d", "namespace": "ns1"}})
    assert c.get(OBC + "/d").json()["metadata"]["uid"] == o["metadata"]["uid"]
    fk.patch("objectbucketclaims", "d", {"status": {"phase": "Bound"}}, "ns1", subresource="status")
    assert fk.get("objectbucketclaims", "d", "ns1")["status"]["phase"] == "Bound"
    assert [x["metadata"]["name"] for x in fk.list("objectbucketclaims")] == ["d"]
    fk.delete("objectbucketclaims", "d", "ns1")
    assert fk.get("objectbucketclaims", "d", "ns1") is None
    assert fk.delete("objectbucketclaims", "d", "ns1") is None


def test_partial_object_metadata(c):
    """kube-rs metadata watches ask for PartialObjectMetadata[List] in Accept."""
    c.post(CM, cm("pm", labels={"a": "b"}))
    acc = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"}
    r = c.s.get(c.fk.url + CM, headers=acc, timeout=5).json()
    assert r["kind"] == "PartialObjectMetadataList" and r["apiVersion"] == "meta.k8s.io/v1"
    assert r["items"][0] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": c.get(CM + "/pm").json()["metadata"]}
    resp = c.s.get(c.fk.url + CM, params={"watch": "true", "timeoutSeconds": "1"}, headers=acc,
                   stream=True, timeout=5)
    ev = json.loads(next(resp.iter_lines()))
    assert ev["type"] == "ADDED" and ev["object"]["kind"] == "PartialObjectMetadata" and "data" not in ev["object"]
    resp.close()


def test_validation_like_the_apiserver(c):
    assert_status(c.post(CM, cm("Bad_Name")), 422, "Invalid")
    assert_status(c.post(CM, cm("ok", labels={"x": "kura.dev/bucket"})), 422, "Invalid")  # '/' in a value
    assert_status(c.post(CM, cm("ok", labels={"x" * 64: "v"})), 422, "Invalid")
    assert c.post(CM, cm("ok", labels={"app.kubernetes.io/managed-by": "kura-provisioner", "e": ""})).status_code == 201
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ok", "uid": "u"}
    assert_status(c.post(CM, cm("r1", ownerReferences=[{**ref, "uid": ""}])), 422, "Invalid")
    assert_status(c.post(CM, cm("r2", ownerReferences=[{**ref, "controller": True},
                                                       {**ref, "uid": "v", "controller": True}])), 422, "Invalid")
    bad = cm("k")
    bad["data"] = {"no spaces": "x"}
    assert_status(c.post(CM, bad), 422, "Invalid")
    # apply requires apiVersion and kind in the body
    assert_status(c.patch(CM + "/ap", {"metadata": {"name": "ap"}}, "apply", fieldManager="t"), 400, "BadRequest")
