"""Offline validation of the Kubernetes manifests (k8s/) and the docker files (docker/).

No Kubernetes API server is available here, so every check is offline:

* Built-in kinds (Namespace, ServiceAccount, RBAC, StorageClass, Service, StatefulSet,
  Deployment, Pod, and CustomResourceDefinition itself) are validated with PyPI's
  `kubernetes-validate` against the OpenAPI schemas it bundles for Kubernetes
  K8S_VERSION, in strict mode (unknown fields are errors).  The schemas ship inside
  the package; the validation runs with sockets disabled to prove it needs no network.
* Our CRDs are also checked against the rules the API server applies to a CRD
  (structural schema, names, one storage version, status subresource, printer column
  paths that exist in the schema), and must keep every field of Rook's
  lib-bucket-provisioner CRDs.
* Custom resources (the example ObjectBucketClaim, and the ObjectBucket and claim
  status the provisioner writes, built from docs/contract values below) are checked
  with `jsonschema` against the openAPIV3Schema of our CRDs, converted to JSON Schema
  the way the API server reads it (nullable, and a field not in the schema rejected as
  strict field validation does, unless x-kubernetes-preserve-unknown-fields).
* The ServiceMonitor's CRD is the Prometheus Operator's, not ours: it is checked for
  its required fields and a known subset of its endpoint fields, and its selector must
  pick exactly one Service of ours whose port of that name leads to a container port
  serving /metrics.
* Layout: k8s/base/ holds what both modes share; k8s/ (single node, the StatefulSet)
  and k8s/rados/ (gateways over Ceph RADOS, a Deployment) each include it and add their
  own server, so either one is applied alone.
* Cross-references: kustomizations list existing files and leave none out, Services
  select pods and name existing ports, ServiceAccounts and Secrets referenced exist or
  are documented, RBAC grants exactly what the provisioner needs, env names are ones
  `kura serve --help` / `kura provisioner --help` print, and the StatefulSet's
  configuration really starts `kura serve` and answers its probes.
* docker/compose.yaml parses and is consistent with docker/prometheus.yml, which
  `promtool check config` accepts; the Dockerfile has the expected shape.
* No registry host name appears in any of these files.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

from conftest import REPO_ROOT, free_port, resolve_kura_bin

K8S_VERSION = "1.33"
K8S_DIR = REPO_ROOT / "k8s"
DOCKER_DIR = REPO_ROOT / "docker"
NAMESPACE = "kura-system"
PROVISIONER_NAME = "kura.dev/bucket"
ROOT_SECRET = "kura-root"
ROOT_SECRET_KEYS = {"KURA_ROOT_ACCESS_KEY", "KURA_ROOT_SECRET_KEY"}

# The contract (/work/notes/k8s-contract.md, documented in the README).
CONFIGMAP_KEYS = {"BUCKET_HOST", "BUCKET_PORT", "BUCKET_NAME", "BUCKET_REGION",
                  "BUCKET_SUBREGION", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL",
                  "AWS_REGION", "AWS_DEFAULT_REGION"}
SECRET_KEYS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
STORAGECLASS_PARAMETERS = {"endpoint", "region", "bucketName"}

# Fields of Rook's / lib-bucket-provisioner's CRDs that ours must keep.
ROOK_OBC_SPEC = {"storageClassName", "bucketName", "generateBucketName",
                 "additionalConfig", "objectBucketName"}
ROOK_OB_SPEC = {"storageClassName", "reclaimPolicy", "claimRef", "endpoint",
                "authentication", "additionalState"}
ROOK_OB_ENDPOINT = {"bucketHost", "bucketPort", "bucketName", "region", "subRegion",
                    "additionalConfig"}

# Exactly what `kura provisioner` needs (group, resource, verb).
def _perms(groups, resources, verbs):
    return {(g, r, v) for g in groups for r in resources for v in verbs}


PROVISIONER_PERMISSIONS = (
    _perms(["objectbucket.io"], ["objectbucketclaims"], ["get", "list", "watch", "update", "patch"])
    | _perms(["objectbucket.io"], ["objectbucketclaims/status", "objectbuckets/status"],
             ["update", "patch"])
    | _perms(["objectbucket.io"], ["objectbuckets"],
             ["get", "list", "watch", "create", "update", "patch", "delete"])
    | _perms([""], ["configmaps", "secrets"],
             ["get", "list", "watch", "create", "update", "patch", "delete"])
    | _perms(["storage.k8s.io"], ["storageclasses"], ["get", "list", "watch"])
    | _perms(["", "events.k8s.io"], ["events"], ["create", "patch"])
)

# Env variables that are not flags but that the programs read (documented in README).
SERVE_EXTRA_ENV = {"KURA_ROOT_ACCESS_KEY", "KURA_ROOT_SECRET_KEY", "KURA_LOG"}
PROVISIONER_EXTRA_ENV = {"KURA_LOG", "POD_NAME"}

# Registry host names must never be written in the repository.
REGISTRY_HOSTS = re.compile(
    r"docker\.io|ghcr\.io|quay\.io|gcr\.io|public\.ecr\.aws|amazonaws\.com|registry\.k8s\.io"
    r"|k8s\.gcr|mcr\.microsoft\.com|docker\.com|registry\.gitlab|azurecr\.io|pkg\.dev",
    re.IGNORECASE)

BUILTIN_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                 "RoleBinding", "StorageClass", "Service", "StatefulSet", "Deployment", "Pod",
                 "ConfigMap", "Secret", "CustomResourceDefinition", "PodDisruptionBudget"}


# --------------------------------------------------------------------------- loading

def manifest_files() -> "list[Path]":
    """Every YAML file under k8s/ that is a resource (not a kustomization)."""
    return sorted(p for p in K8S_DIR.rglob("*.yaml") if p.name != "kustomization.yaml")


def load_docs(path: Path) -> "list[dict]":
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def all_docs() -> "list[tuple[Path, dict]]":
    return [(p, d) for p in manifest_files() for d in load_docs(p)]


def doc_id(item) -> str:
    path, doc = item
    return f"{path.relative_to(K8S_DIR)}:{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def find(kind: str, name: "str | None" = None, docs=None) -> "list[dict]":
    docs = all_docs() if docs is None else docs
    return [d for _, d in docs if d["kind"] == kind
            and (name is None or d["metadata"]["name"] == name)]


def one(kind: str, name: "str | None" = None) -> dict:
    found = find(kind, name)
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


def crd_for(kind: str) -> dict:
    crds = [d for d in find("CustomResourceDefinition") if d["spec"]["names"]["kind"] == kind]
    assert len(crds) == 1, f"expected one CRD for {kind}"
    return crds[0]


def containers(workload: dict) -> "list[dict]":
    spec = workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def pod_spec(workload: dict) -> dict:
    return workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]


def pod_labels(workload: dict) -> dict:
    if workload["kind"] == "Pod":
        return workload["metadata"].get("labels", {})
    return workload["spec"]["template"]["metadata"].get("labels", {})


def container_env(container: dict) -> "dict[str, dict]":
    return {e["name"]: e for e in container.get("env", [])}


def workloads() -> "list[dict]":
    return [d for _, d in all_docs() if d["kind"] in ("StatefulSet", "Deployment", "Pod")]


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# --------------------------------------------------------------------------- inventory

def test_every_manifest_is_checked_by_some_validator():
    """Every document has apiVersion/kind/metadata.name and a kind some test below
    validates (a new kind cannot slip in unchecked)."""
    docs = all_docs()
    assert docs, "no manifests found under k8s/"
    ours = {(c["spec"]["group"], c["spec"]["names"]["kind"]) for c in find("CustomResourceDefinition")}
    for item in docs:
        path, doc = item
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), doc_id(item)
        assert doc["metadata"].get("name"), doc_id(item)
        group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
        known = (doc["kind"] in BUILTIN_KINDS or (group, doc["kind"]) in ours
                 or (doc["apiVersion"], doc["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor"))
        assert known, f"{doc_id(item)}: no validator for {doc['apiVersion']} {doc['kind']}"


def test_kubernetes_validate_bundles_the_target_version_offline(no_network):
    versions = kv_utils.all_versions()
    assert any(v.startswith(K8S_VERSION + ".") for v in versions), versions
    # A valid and an invalid object, with the network disabled.
    ok = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    assert kubernetes_validate.validate(ok, K8S_VERSION, strict=True) == K8S_VERSION
    bad = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}, "spek": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


@pytest.mark.parametrize("item", [i for i in all_docs() if i[1].get("kind") in BUILTIN_KINDS],
                         ids=doc_id)
def test_builtin_kind_validates_against_kubernetes_schema(item, no_network):
    path, doc = item
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = ".".join(str(p) for p in e.path)
        pytest.fail(f"{doc_id(item)} invalid for Kubernetes {K8S_VERSION} at {where}: {e.message}",
                    pytrace=False)


def test_no_committed_secrets():
    """The root credentials Secret is created by hand (README), never committed."""
    assert not find("Secret"), "a Secret is committed under k8s/"
    for p in [*K8S_DIR.rglob("*"), *DOCKER_DIR.rglob("*")]:
        if p.is_file():
            text = p.read_text()
            assert not re.search(r"KURA[A-Z0-9]{16}", text), f"{p}: looks like an access key"


# --------------------------------------------------------------------------- CRDs

def structural_errors(node: dict, path: str, top: bool = True) -> "list[str]":
    """The API server's structural-schema rules (and the apiextensions/v1 limits) that
    our schemas can break: every node typed unless int-or-string / preserve-unknown;
    no $ref, definitions, allOf/anyOf/oneOf/not (we use none); properties and
    additionalProperties never together; additionalProperties never false;
    x-kubernetes-preserve-unknown-fields only true; metadata only name/generateName."""
    errs = []
    if not isinstance(node, dict):
        return [f"{path}: not a schema object"]
    for key in ("$ref", "definitions", "dependencies", "allOf", "anyOf", "oneOf", "not",
                "patternProperties", "additionalItems", "id", "$schema"):
        if key in node:
            errs.append(f"{path}: {key} not allowed here")
    typed = node.get("type")
    exempt = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    if not typed and not exempt:
        errs.append(f"{path}: no type")
    if typed not in (None, "object", "array", "string", "integer", "number", "boolean"):
        errs.append(f"{path}: bad type {typed!r}")
    if "x-kubernetes-preserve-unknown-fields" in node and node["x-kubernetes-preserve-unknown-fields"] is not True:
        errs.append(f"{path}: x-kubernetes-preserve-unknown-fields must be true")
    if "properties" in node and "additionalProperties" in node:
        errs.append(f"{path}: properties and additionalProperties together")
    if node.get("additionalProperties") is False:
        errs.append(f"{path}: additionalProperties: false is not allowed")
    if node.get("uniqueItems") is True:
        errs.append(f"{path}: uniqueItems: true is not allowed")
    if ("properties" in node or "additionalProperties" in node) and typed != "object":
        errs.append(f"{path}: properties on a non-object")
    if "items" in node and typed != "array":
        errs.append(f"{path}: items on a non-array")
    if typed == "array" and not isinstance(node.get("items"), dict):
        errs.append(f"{path}: array without one items schema")
    for name, sub in node.get("properties", {}).items():
        if top and name == "metadata":
            extra = set(sub) - {"type", "description", "properties"}
            fields = set(sub.get("properties", {})) - {"name", "generateName"}
            if sub.get("type") != "object" or extra or fields:
                errs.append(f"{path}.metadata: only restrictions of name/generateName allowed")
            continue
        errs += structural_errors(sub, f"{path}.{name}", top=False)
    if isinstance(node.get("additionalProperties"), dict):
        errs += structural_errors(node["additionalProperties"], f"{path}.*", top=False)
    if isinstance(node.get("items"), dict):
        errs += structural_errors(node["items"], f"{path}[]", top=False)
    return errs


def schema_at(schema: dict, json_path: str) -> "dict | None":
    """The schema node a printer column's simple JSONPath (.a.b.c) reaches."""
    node = schema
    for part in json_path.lstrip(".").split("."):
        if part == "metadata" and node is schema:
            return {"type": "object"}  # ObjectMeta: checked by name below
        props = node.get("properties", {})
        if part not in props:
            return None
        node = props[part]
    return node


# Every file holding a CRD, wherever it lives under k8s/ (found by content, so a move
# cannot leave one unchecked).
CRD_FILES = sorted({p for p, d in all_docs() if d["kind"] == "CustomResourceDefinition"})


def test_crd_files_are_found():
    assert [p.name for p in CRD_FILES] == ["crd-objectbucket.yaml", "crd-objectbucketclaim.yaml"], CRD_FILES


@pytest.mark.parametrize("path", CRD_FILES, ids=lambda p: p.name)
def test_crd_is_structural_and_well_formed(path):
    (crd,) = load_docs(path)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    spec, names = crd["spec"], crd["spec"]["names"]
    assert spec["group"] == "objectbucket.io"
    assert crd["metadata"]["name"] == f"{names['plural']}.{spec['group']}"
    assert names["listKind"] == names["kind"] + "List"
    assert names["singular"] == names["kind"].lower()
    versions = spec["versions"]
    assert [v["name"] for v in versions] == ["v1alpha1"]
    assert sum(1 for v in versions if v["storage"]) == 1
    for v in versions:
        assert v["served"] is True
        assert v.get("subresources", {}).get("status") == {}, "status subresource missing"
        schema = v["schema"]["openAPIV3Schema"]
        errs = structural_errors(schema, "openAPIV3Schema")
        assert not errs, "not structural:\n" + "\n".join(errs)
        assert schema["type"] == "object" and {"spec", "status"} <= schema["properties"].keys()
        cols = v.get("additionalPrinterColumns", [])
        assert cols, "printer columns missing"
        for col in cols:
            assert col["type"] in ("integer", "number", "string", "boolean", "date"), col
            if col["jsonPath"].startswith(".metadata."):
                assert col["jsonPath"] in (".metadata.creationTimestamp", ".metadata.name",
                                           ".metadata.namespace"), col
                continue
            target = schema_at(schema, col["jsonPath"])
            assert target is not None, f"printer column {col['name']}: {col['jsonPath']} not in schema"
            want = {"date": "string"}.get(col["type"], col["type"])
            assert target.get("type") == want, f"printer column {col['name']}: type mismatch"


def test_crds_keep_rooks_fields_and_scopes():
    obc, ob = crd_for("ObjectBucketClaim"), crd_for("ObjectBucket")
    assert obc["spec"]["scope"] == "Namespaced" and ob["spec"]["scope"] == "Cluster"
    assert {"obc"} <= set(obc["spec"]["names"]["shortNames"])
    assert {"ob"} <= set(ob["spec"]["names"]["shortNames"])
    obc_schema = obc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    ob_schema = ob["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert ROOK_OBC_SPEC <= obc_schema["spec"]["properties"].keys()
    assert {"phase", "reason", "message"} <= obc_schema["status"]["properties"].keys()
    assert set(obc_schema["status"]["properties"]["phase"]["enum"]) == {"Pending", "Bound", "Failed", "Released"}
    assert ROOK_OB_SPEC <= ob_schema["spec"]["properties"].keys()
    assert ROOK_OB_ENDPOINT <= ob_schema["spec"]["properties"]["endpoint"]["properties"].keys()
    assert {"apiVersion", "kind", "namespace", "name", "uid"} <= \
        ob_schema["spec"]["properties"]["claimRef"]["properties"].keys()
    assert ob_schema["spec"]["properties"]["endpoint"]["properties"]["bucketPort"]["type"] == "integer"


# --------------------------------------------------------------------------- custom resources

def to_json_schema(node: dict) -> dict:
    """An openAPIV3Schema node as JSON Schema, read the way the API server reads it:
    nullable admits null, and an object with properties rejects other fields (strict
    field validation; they would be pruned) unless it preserves unknown fields."""
    out = {k: v for k, v in node.items()
           if not k.startswith("x-kubernetes-") and k not in ("nullable", "properties",
                                                              "additionalProperties", "items")}
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in node:
        out["properties"] = {k: to_json_schema(v) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = to_json_schema(node["additionalProperties"])
    elif node.get("type") == "object" and "properties" in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if isinstance(node.get("items"), dict):
        out["items"] = to_json_schema(node["items"])
    if node.get("format") == "int32":
        out.update(minimum=-2**31, maximum=2**31 - 1)
    return out


DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def custom_resource_errors(doc: dict) -> "list[str]":
    crd = crd_for(doc["kind"])
    group, scope = crd["spec"]["group"], crd["spec"]["scope"]
    served = {f"{group}/{v['name']}": v for v in crd["spec"]["versions"] if v["served"]}
    if doc["apiVersion"] not in served:
        return [f"apiVersion {doc['apiVersion']} not served by {crd['metadata']['name']}"]
    errs = []
    meta = doc.get("metadata", {})
    if not DNS_SUBDOMAIN.match(meta.get("name", "")):
        errs.append(f"metadata.name {meta.get('name')!r} invalid")
    if scope == "Namespaced" and not DNS_LABEL.match(meta.get("namespace", "")):
        errs.append("metadata.namespace missing or invalid for a namespaced resource")
    if scope == "Cluster" and "namespace" in meta:
        errs.append("metadata.namespace set on a cluster-scoped resource")
    schema = to_json_schema(served[doc["apiVersion"]]["schema"]["openAPIV3Schema"])
    validator = jsonschema.Draft7Validator(schema)
    for e in validator.iter_errors(doc):
        errs.append(f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}")
    return errs


# The ObjectBucket and claim status the provisioner writes (contract values), so the
# CRDs are proven to accept what the provisioner will send.
CONTRACT_OBJECTBUCKET = {
    "apiVersion": "objectbucket.io/v1alpha1",
    "kind": "ObjectBucket",
    "metadata": {"name": "obc-kura-example-photos", "finalizers": ["objectbucket.io/finalizer"],
                 "labels": {"app.kubernetes.io/managed-by": "kura-provisioner",
                            "bucket-provisioner": "kura.dev-bucket"}},
    "spec": {
        "storageClassName": "kura-bucket",
        "reclaimPolicy": "Delete",
        "claimRef": {"apiVersion": "objectbucket.io/v1alpha1", "kind": "ObjectBucketClaim",
                     "namespace": "kura-example", "name": "photos",
                     "uid": "0b6f3c5e-8a55-4c8e-9b8f-2c1d7e1f0a11"},
        "endpoint": {"bucketHost": "kura.kura-system.svc", "bucketPort": 9000,
                     "bucketName": "photos-2c1d7e1f", "region": "us-east-1", "subRegion": "",
                     "additionalConfig": {"maxObjects": "100000", "maxSize": "2Gi"}},
        "additionalState": {"user": "obc-0b6f3c5e-8a55-4c8e-9b8f-2c1d7e1f0a11",
                            "accessKey": "KURAEXAMPLEEXAMPLE", "createdBucket": "true"},
    },
    "status": {"phase": "Bound"},
}


def bound_claim() -> dict:
    claim = copy.deepcopy(one("ObjectBucketClaim"))
    claim["metadata"]["finalizers"] = ["objectbucket.io/finalizer"]
    claim["spec"]["bucketName"] = "photos-2c1d7e1f"
    claim["spec"]["objectBucketName"] = "obc-kura-example-photos"
    claim["status"] = {"phase": "Bound", "reason": "Bound", "message": "bucket photos-2c1d7e1f is ready"}
    return claim


def custom_resources() -> "list[tuple[str, dict]]":
    ours = {c["spec"]["names"]["kind"] for c in find("CustomResourceDefinition")}
    items = [(doc_id(i), i[1]) for i in all_docs() if i[1]["kind"] in ours]
    items.append(("contract:ObjectBucket", CONTRACT_OBJECTBUCKET))
    items.append(("contract:bound ObjectBucketClaim", bound_claim()))
    failed = bound_claim()
    failed["status"] = {"phase": "Failed", "reason": "ProvisioningFailed", "message": "quota invalid"}
    items.append(("contract:failed ObjectBucketClaim", failed))
    numeric = copy.deepcopy(one("ObjectBucketClaim"))
    numeric["spec"]["additionalConfig"] = {"maxObjects": 1000, "maxSize": "500M"}
    items.append(("integer maxObjects ObjectBucketClaim", numeric))
    return items


@pytest.mark.parametrize("name,doc", custom_resources(), ids=[n for n, _ in custom_resources()])
def test_custom_resource_matches_our_crd_schema(name, doc):
    errs = custom_resource_errors(doc)
    assert not errs, f"{name}:\n" + "\n".join(errs)


@pytest.mark.parametrize("mutation,expect", [
    (lambda c: c["spec"].__setitem__("bucketNmae", "typo"), "bucketNmae"),
    (lambda c: c["spec"]["additionalConfig"].__setitem__("maxObjects", True), "maxObjects"),
    (lambda c: c["spec"]["additionalConfig"].__setitem__("maxSize", {"gi": 2}), "maxSize"),
    (lambda c: c.__setitem__("status", {"phase": "Ready"}), "Ready"),
    (lambda c: c["metadata"].pop("namespace"), "namespace"),
    (lambda c: c.__setitem__("apiVersion", "objectbucket.io/v1"), "not served"),
])
def test_custom_resource_check_rejects_bad_claims(mutation, expect):
    """The schema check itself has teeth: broken claims are refused."""
    claim = copy.deepcopy(one("ObjectBucketClaim"))
    mutation(claim)
    errs = custom_resource_errors(claim)
    assert any(expect in e for e in errs), errs


def test_objectbucket_check_rejects_a_string_port():
    ob = copy.deepcopy(CONTRACT_OBJECTBUCKET)
    ob["spec"]["endpoint"]["bucketPort"] = "9000"
    assert any("bucketPort" in e for e in custom_resource_errors(ob))


def test_contract_configmap_and_secret_are_valid_kubernetes_objects(no_network):
    claim = one("ObjectBucketClaim")
    owner = {"apiVersion": "objectbucket.io/v1alpha1", "kind": "ObjectBucketClaim",
             "name": claim["metadata"]["name"], "uid": "0b6f3c5e-8a55-4c8e-9b8f-2c1d7e1f0a11",
             "controller": True, "blockOwnerDeletion": True}
    meta = {"name": claim["metadata"]["name"], "namespace": claim["metadata"]["namespace"],
            "ownerReferences": [owner], "finalizers": ["objectbucket.io/finalizer"],
            "labels": {"app.kubernetes.io/managed-by": "kura-provisioner",
                       "bucket-provisioner": "kura.dev-bucket"}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
          "data": {k: "x" for k in CONFIGMAP_KEYS}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
              "data": {k: "eA==" for k in SECRET_KEYS}}
    for obj in (cm, secret):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


# --------------------------------------------------------------------------- ServiceMonitor

# A subset of the Prometheus Operator's ServiceMonitor v1 fields (its CRD is not ours):
# anything else we write is a typo.
SERVICEMONITOR_SPEC_FIELDS = {"endpoints", "selector", "namespaceSelector", "jobLabel",
                              "targetLabels", "podTargetLabels", "sampleLimit"}
SERVICEMONITOR_ENDPOINT_FIELDS = {"port", "targetPort", "path", "scheme", "interval",
                                  "scrapeTimeout", "honorLabels", "relabelings",
                                  "metricRelabelings", "params", "tlsConfig"}


def test_servicemonitor_scrapes_kuras_ops_port():
    sm = one("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["namespace"] == NAMESPACE
    spec = sm["spec"]
    assert set(spec) <= SERVICEMONITOR_SPEC_FIELDS, set(spec) - SERVICEMONITOR_SPEC_FIELDS
    assert spec["selector"].get("matchLabels"), "selector.matchLabels required"
    assert spec["endpoints"], "endpoints required"
    namespaces = spec.get("namespaceSelector", {}).get("matchNames", [sm["metadata"]["namespace"]])
    services = [s for s in find("Service")
                if s["metadata"]["namespace"] in namespaces
                and selects(spec["selector"]["matchLabels"], s["metadata"].get("labels", {}))]
    assert len(services) == 1, f"selector picks {[s['metadata']['name'] for s in services]}: want one Service"
    (svc,) = services
    for ep in spec["endpoints"]:
        assert set(ep) <= SERVICEMONITOR_ENDPOINT_FIELDS, set(ep) - SERVICEMONITOR_ENDPOINT_FIELDS
        assert ep.get("path", "/metrics") == "/metrics"
        assert ep.get("scheme", "http") == "http"
        ports = {p.get("name"): p for p in svc["spec"]["ports"]}
        assert ep.get("port") in ports, f"ServiceMonitor port {ep.get('port')!r} not a port name of Service {svc['metadata']['name']}"
        target = ports[ep["port"]]["targetPort"]
        server = one("StatefulSet", "kura")
        named = {p["name"]: p["containerPort"] for c in containers(server) for p in c.get("ports", [])}
        container_port = named[target] if isinstance(target, str) else target
        ops = urlsplit("http://" + container_env(containers(server)[0])["KURA_OPS_ADDR"]["value"]).port
        assert container_port == ops, "the scraped port is not Kura's ops listener"


# --------------------------------------------------------------------------- cross-references

KUSTOMIZATIONS = sorted(K8S_DIR.rglob("kustomization.yaml"))
BASE_DIR = K8S_DIR / "base"
RADOS_DIR = K8S_DIR / "rados"


def kustomization_entries(directory: Path) -> "list[Path]":
    """The resources a kustomization directory lists, resolved (files and directories)."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return [(directory / res).resolve() for res in k["resources"]]


def kustomization_files(directory: Path, _seen: "tuple[Path, ...]" = ()) -> "list[Path]":
    """Every manifest file a kustomization directory deploys: its listed files, and
    those of the kustomizations it lists as directories, recursively."""
    directory = directory.resolve()
    assert directory not in _seen, f"kustomization cycle through {directory}"
    out = []
    for target in kustomization_entries(directory):
        if target.is_dir():
            out += kustomization_files(target, _seen + (directory,))
        else:
            out.append(target)
    return out


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_kustomization_lists_existing_files(path):
    k = yaml.safe_load(path.read_text())
    assert k["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and k["kind"] == "Kustomization"
    assert k.get("resources"), "no resources"
    root = path.parent.resolve()
    for res in k["resources"]:
        target = (path.parent / res).resolve()
        if target.is_dir():
            # Another kustomization (a base): kustomize loads it from anywhere, but ours
            # stay under k8s/ and never list themselves.
            assert (target / "kustomization.yaml").is_file(), f"{res}: not a kustomization"
            assert target.is_relative_to(K8S_DIR.resolve()) and target != root, f"{res}: outside k8s/"
        else:
            # A file: kustomize refuses one outside the kustomization root.
            assert target.is_relative_to(root), f"{res}: outside the kustomization root"
            assert target.is_file(), f"{res}: missing"
    for img in k.get("images", []):
        assert img["name"] == "kura"


def kubectl_kustomize(directory: Path) -> "list[dict]":
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (for `kubectl kustomize`) is not installed")
    r = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_kustomize_renders_exactly_the_listed_manifests(path):
    """`kubectl kustomize` (kustomize built into kubectl, offline) renders each directory
    to the documents of the files it lists."""
    rendered = kubectl_kustomize(path.parent)
    key = lambda d: (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
    want = []
    for f in kustomization_files(path.parent):
        want += load_docs(f)
    assert want, "renders nothing"
    assert sorted(map(key, rendered)) == sorted(map(key, want))


@pytest.mark.parametrize("overlay,servers", [
    (".", {("StatefulSet", "kura")}),
    ("rados", {("Deployment", "kura-gateway")}),
], ids=["k8s", "k8s/rados"])
def test_kustomize_edit_set_image_reaches_every_kura_container(tmp_path, overlay, servers):
    """What `kustomize edit set image kura=<registry>/kura:<tag>` writes (README) in
    k8s/ or k8s/rados/ changes the image of that mode's Kura server and of the
    provisioner (which comes from base/), and nothing else."""
    copy_dir = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, copy_dir)
    kfile = copy_dir / overlay / "kustomization.yaml"
    k = yaml.safe_load(kfile.read_text())
    k["images"] = [{"name": "kura", "newName": "myregistry/kura", "newTag": "1.2.3"}]
    kfile.write_text(yaml.safe_dump(k))
    rendered = kubectl_kustomize(kfile.parent)
    images = {(d["kind"], d["metadata"]["name"]): {c["image"] for c in containers(d)}
              for d in rendered if d["kind"] in ("StatefulSet", "Deployment")}
    want = servers | {("Deployment", "kura-provisioner")}
    assert images == {w: {"myregistry/kura:1.2.3"} for w in want}, images


def test_every_manifest_belongs_to_a_kustomization():
    listed = set()
    for path in KUSTOMIZATIONS:
        listed.update(kustomization_files(path.parent))
    orphans = [p for p in manifest_files() if p.resolve() not in listed]
    assert not orphans, f"not in any kustomization.yaml: {orphans}"
    main = set(kustomization_files(K8S_DIR))
    # The single-node deployable set: everything in k8s/ and k8s/base/, that is all but
    # the RADOS overlay and the optional monitoring/ and example/.
    for kind in ("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole",
                 "ClusterRoleBinding", "StorageClass", "Service", "StatefulSet", "Deployment"):
        files = {p.resolve() for p, d in all_docs()
                 if d["kind"] == kind and p.parent in (K8S_DIR, BASE_DIR)}
        assert files and files <= main, f"{kind} not reached from k8s/kustomization.yaml"


def deployed(directory: Path) -> "set[tuple[str, str]]":
    return {(d["kind"], d["metadata"]["name"]) for f in kustomization_files(directory)
            for d in load_docs(f)}


def test_both_modes_include_the_shared_base_and_only_their_own_server():
    """`kubectl apply -k k8s/` (single node) and `kubectl apply -k k8s/rados/` each deploy
    the whole of base/ plus their own server, so neither needs the other: no StatefulSet
    in the RADOS mode, no gateway Deployment on a single node, the image set in each."""
    base_dir = BASE_DIR.resolve()
    for mode in (K8S_DIR, RADOS_DIR):
        assert base_dir in kustomization_entries(mode), f"{mode} does not include base/"
        assert set(kustomization_files(BASE_DIR)) <= set(kustomization_files(mode))
        images = yaml.safe_load((mode / "kustomization.yaml").read_text()).get("images", [])
        assert [i["name"] for i in images] == ["kura"], f"{mode}: no image entry for kura"
    assert not yaml.safe_load((BASE_DIR / "kustomization.yaml").read_text()).get("images"), \
        "the image is set by each mode, not in base/"
    base, single, rados = deployed(BASE_DIR), deployed(K8S_DIR), deployed(RADOS_DIR)
    shared = {("Namespace", NAMESPACE), ("ServiceAccount", "kura"),
              ("ServiceAccount", "kura-provisioner"), ("ClusterRole", "kura-provisioner"),
              ("ClusterRoleBinding", "kura-provisioner"), ("Service", "kura"),
              ("Deployment", "kura-provisioner"),
              ("CustomResourceDefinition", "objectbucketclaims.objectbucket.io"),
              ("CustomResourceDefinition", "objectbuckets.objectbucket.io")}
    assert shared <= base, shared - base
    kinds = {k for k, _ in base}
    assert "StorageClass" in kinds
    assert not kinds & {"StatefulSet", "ConfigMap", "PodDisruptionBudget"}, base
    assert single - base == {("StatefulSet", "kura")}, single - base
    assert rados - base == {("Deployment", "kura-gateway"), ("ConfigMap", "kura-ceph"),
                            ("PodDisruptionBudget", "kura-gateway")}, rados - base


def test_services_select_the_server_and_name_its_ports():
    server = one("StatefulSet", "kura")
    named = {p["name"]: p["containerPort"] for c in containers(server) for p in c.get("ports", [])}
    for svc in find("Service"):
        assert svc["metadata"]["namespace"] == NAMESPACE
        assert selects(svc["spec"]["selector"], pod_labels(server)), svc["metadata"]["name"]
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in named, f"{svc['metadata']['name']}: targetPort {port['targetPort']}"
            assert named[port["targetPort"]] == port["port"]
    headless = one("Service", server["spec"]["serviceName"])
    assert headless["spec"].get("clusterIP") == "None", "StatefulSet serviceName must be headless"
    assert selects(server["spec"]["selector"]["matchLabels"], pod_labels(server))


def server_addr(name: str) -> "tuple[str, int]":
    c = containers(one("StatefulSet", "kura"))[0]
    host, port = container_env(c)[name]["value"].rsplit(":", 1)
    return host, int(port)


def test_server_listens_on_all_interfaces_on_its_named_ports():
    server = one("StatefulSet", "kura")
    (c,) = containers(server)
    named = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert server_addr("KURA_S3_ADDR") == ("0.0.0.0", 9000) and named["s3"] == 9000
    assert server_addr("KURA_OPS_ADDR") == ("0.0.0.0", 9001) and named["ops"] == 9001
    env = container_env(c)
    assert env["KURA_DATA_DIR"]["value"] == "/data"
    assert c["args"] == ["serve"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts["/data"] in {t["metadata"]["name"] for t in server["spec"]["volumeClaimTemplates"]}
    assert c["startupProbe"]["httpGet"]["port"] == "ops"
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}


def test_provisioner_deployment_reaches_kura_through_the_service():
    dep = one("Deployment", "kura-provisioner")
    (c,) = containers(dep)
    assert c["args"] == ["provisioner"]
    env = container_env(c)
    svc = one("Service", "kura")
    for name in ("KURA_ADMIN_ENDPOINT", "KURA_BUCKET_ENDPOINT"):
        url = urlsplit(env[name]["value"])
        assert url.hostname in (f"kura.{NAMESPACE}.svc", f"kura.{NAMESPACE}.svc.cluster.local"), url
        assert url.port in {p["port"] for p in svc["spec"]["ports"] if p["name"] == "s3"}, url
    assert env.get("KURA_PROVISIONER_NAME", {"value": PROVISIONER_NAME})["value"] == PROVISIONER_NAME
    ops_port = int(env["KURA_PROVISIONER_OPS_ADDR"]["value"].rsplit(":", 1)[1])
    named = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert named["ops"] == ops_port == 9002
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}


def test_root_credentials_come_from_the_kura_root_secret():
    for w in (one("StatefulSet", "kura"), one("Deployment", "kura-provisioner")):
        refs = {}
        for c in containers(w):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == ROOT_SECRET, e
                    assert not ref.get("optional"), e
                    refs[e["name"]] = ref["key"]
        assert set(refs.values()) == ROOT_SECRET_KEYS, (w["metadata"]["name"], refs)
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"create secret generic {ROOT_SECRET}" in readme, "README must say how to create kura-root"
    for key in ROOT_SECRET_KEYS:
        assert f"--from-literal={key}=" in readme


def test_service_accounts_and_rbac_bindings():
    sas = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in find("ServiceAccount")}
    for w in workloads():
        if w["metadata"].get("namespace") != NAMESPACE:
            continue
        sa = pod_spec(w).get("serviceAccountName")
        assert (NAMESPACE, sa) in sas, f"{w['metadata']['name']}: ServiceAccount {sa!r} not defined"
    server_sa = pod_spec(one("StatefulSet", "kura"))["serviceAccountName"]
    assert sas[(NAMESPACE, server_sa)].get("automountServiceAccountToken") is False
    assert pod_spec(one("StatefulSet", "kura")).get("automountServiceAccountToken") is False
    roles = {r["metadata"]["name"] for r in find("ClusterRole")}
    bound = set()
    for b in find("ClusterRoleBinding") + find("RoleBinding"):
        assert b["roleRef"]["kind"] == "ClusterRole" and b["roleRef"]["name"] in roles, b["roleRef"]
        for s in b["subjects"]:
            assert s["kind"] == "ServiceAccount" and (s["namespace"], s["name"]) in sas, s
            bound.add(s["name"])
    prov_sa = pod_spec(one("Deployment", "kura-provisioner"))["serviceAccountName"]
    assert bound == {prov_sa}, f"only the provisioner has API access; bound: {bound}"


def granted(role: dict) -> "set[tuple[str, str, str]]":
    out = set()
    for rule in role["rules"]:
        assert not rule.get("nonResourceURLs"), "no non-resource URLs"
        assert not rule.get("resourceNames"), "unexpected resourceNames"
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"wildcard in {field}"
        out |= _perms(rule["apiGroups"], rule["resources"], rule["verbs"])
    return out


def test_provisioner_rbac_is_exactly_what_it_needs():
    (role,) = find("ClusterRole")
    have = granted(role)
    extra = have - PROVISIONER_PERMISSIONS
    missing = PROVISIONER_PERMISSIONS - have
    assert not extra, f"more than the provisioner needs: {sorted(extra)}"
    assert not missing, f"the provisioner would be refused: {sorted(missing)}"
    assert not find("Role"), "no namespaced Roles expected"


def test_storageclasses_name_kuras_provisioner():
    classes = find("StorageClass")
    assert {c.get("reclaimPolicy", "Delete") for c in classes} == {"Delete", "Retain"}
    for sc in classes:
        assert sc["provisioner"] == PROVISIONER_NAME
        assert set(sc.get("parameters", {})) <= STORAGECLASS_PARAMETERS, sc["parameters"]


def test_example_claim_and_pod_fit_together():
    claim = one("ObjectBucketClaim")
    assert claim["spec"]["storageClassName"] in {s["metadata"]["name"] for s in find("StorageClass")}
    ns = claim["metadata"]["namespace"]
    assert ns in {n["metadata"]["name"] for n in find("Namespace")}
    pods = find("Pod")
    assert pods
    for pod in pods:
        assert pod["metadata"]["namespace"] == ns
        (c,) = containers(pod)
        refs = [(k, v["name"]) for e in c["envFrom"] for k, v in e.items()]
        assert sorted(refs) == [("configMapRef", claim["metadata"]["name"]),
                                ("secretRef", claim["metadata"]["name"])], refs
        script = " ".join(c.get("command", []) + c.get("args", []))
        used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", script))
        assert used and used <= CONFIGMAP_KEYS | SECRET_KEYS | {"HOSTNAME", "HOME"}, used
        assert "aws s3" in script and "BUCKET_NAME" in used
        for k in ("maxObjects", "maxSize"):
            assert k in claim["spec"].get("additionalConfig", {})


def test_containers_are_hardened_and_sized():
    for w in workloads():
        ps = pod_spec(w)
        for c in containers(w):
            sc, psc = c.get("securityContext", {}), ps.get("securityContext", {})
            name = f"{w['metadata']['name']}/{c['name']}"
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, name
            assert sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, name
            assert sc.get("readOnlyRootFilesystem") is True, name
            assert sc.get("allowPrivilegeEscalation") is False, name
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], name
            assert c.get("resources", {}).get("requests") and c["resources"].get("limits", {}).get("memory"), name


def test_images_name_no_registry():
    images = [c["image"] for w in workloads() for c in containers(w)]
    compose = yaml.safe_load((DOCKER_DIR / "compose.yaml").read_text())
    images += [s["image"] for s in compose["services"].values() if "image" in s]
    images += re.findall(r"^FROM\s+(\S+)", (DOCKER_DIR / "Dockerfile").read_text(), re.M)
    for image in images:
        first = image.split("/")[0]
        assert "/" not in image or not re.search(r"[.:]|^localhost$", first), f"{image}: names a registry host"
    kura_images = {c["image"] for w in workloads() if w["metadata"].get("namespace") == NAMESPACE
                   for c in containers(w)}
    assert kura_images == {"kura:latest"}


def test_no_registry_host_names_anywhere():
    files = [*K8S_DIR.rglob("*"), *DOCKER_DIR.rglob("*"), REPO_ROOT / ".dockerignore",
             REPO_ROOT / "README.md"]
    for p in files:
        if p.is_file():
            m = REGISTRY_HOSTS.search(p.read_text())
            assert not m, f"{p}: registry host name {m.group(0)!r}"


# --------------------------------------------------------------------------- env vs --help

def help_text(*args: str) -> "str | None":
    kura = resolve_kura_bin()
    if not kura.exists():
        pytest.fail(f"kura binary not found at {kura} (set KURA_BIN)", pytrace=False)
    r = subprocess.run([str(kura), *args, "--help"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return None
    return r.stdout


def flag_env_names(text: str) -> "set[str]":
    return set(re.findall(r"\[env: ([A-Z0-9_]+)[=\]]", text))


def env_names(c: dict) -> "set[str]":
    return {e["name"] for e in c.get("env", [])}


def test_server_env_names_are_kura_serve_settings():
    text = help_text("serve")
    assert text is not None, "kura serve --help failed"
    known = flag_env_names(text)
    assert {"KURA_DATA_DIR", "KURA_S3_ADDR", "KURA_OPS_ADDR"} <= known, known
    readme = (REPO_ROOT / "README.md").read_text()
    for extra in SERVE_EXTRA_ENV:
        assert extra in readme, f"{extra} is not documented"
    allowed = known | SERVE_EXTRA_ENV
    (c,) = containers(one("StatefulSet", "kura"))
    assert env_names(c) <= allowed, env_names(c) - allowed
    compose = yaml.safe_load((DOCKER_DIR / "compose.yaml").read_text())
    compose_env = {e.split("=")[0] for e in compose["services"]["kura"]["environment"]}
    assert compose_env <= allowed, compose_env - allowed
    dockerfile_env = set(re.findall(r"\b(KURA_[A-Z0-9_]+)=", (DOCKER_DIR / "Dockerfile").read_text()))
    assert dockerfile_env and dockerfile_env <= allowed, dockerfile_env - allowed


def test_rados_gateways_are_configured_as_kura_serve_documents_and_fit_together():
    """k8s/rados: the gateways' env names are `kura serve` settings naming the RADOS
    backend; the ceph.conf they mount comes from the ConfigMap and names the keyring
    they mount from a Secret; the Service selects them; the PodDisruptionBudget covers
    them and leaves all but one running; they spread over zones."""
    text = help_text("serve")
    assert text is not None, "kura serve --help failed"
    gateways = one("Deployment", "kura-gateway")
    (c,) = containers(gateways)
    assert env_names(c) <= flag_env_names(text) | SERVE_EXTRA_ENV, env_names(c) - flag_env_names(text)
    env = container_env(c)
    assert env["KURA_BACKEND"]["value"] == "rados"
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(gateways)["volumes"]}
    conf_map = one("ConfigMap", volumes["ceph-conf"]["configMap"]["name"])
    assert mounts["ceph-conf"] == env["KURA_CEPH_CONF"]["value"]
    keyring = re.search(r"keyring\s*=\s*(\S+)", conf_map["data"]["ceph.conf"]).group(1)
    assert mounts["ceph-keyring"] == keyring and "secret" in volumes["ceph-keyring"]
    labels = gateways["spec"]["template"]["metadata"]["labels"]
    assert selects(one("Service", "kura")["spec"]["selector"], labels)
    pdb = one("PodDisruptionBudget", "kura-gateway")
    assert selects(pdb["spec"]["selector"]["matchLabels"], labels)
    assert pdb["spec"]["maxUnavailable"] == 1 and gateways["spec"]["replicas"] >= 3
    spread = pod_spec(gateways)["topologySpreadConstraints"]
    assert any(t["topologyKey"] == "topology.kubernetes.io/zone" for t in spread)
    probes = {p: c[p]["httpGet"] for p in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz" and probes["readinessProbe"]["path"] == "/readyz"
    assert {h["port"] for h in probes.values()} == {"ops"}


def test_provisioner_env_names_are_kura_provisioner_settings():
    text = help_text("provisioner")
    if text is None:
        pytest.skip("this kura binary has no `provisioner` subcommand yet")
    words = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", text))
    known = flag_env_names(text)
    for want in ("KURA_ADMIN_ENDPOINT", "KURA_BUCKET_ENDPOINT", "KURA_PROVISIONER_OPS_ADDR",
                 "KURA_PROVISIONER_NAME", "KURA_REGION", "KURA_ADMIN_ACCESS_KEY",
                 "KURA_ADMIN_SECRET_KEY"):
        assert want in known, f"`kura provisioner --help` has no [env: {want}=]"
    (c,) = containers(one("Deployment", "kura-provisioner"))
    readme = (REPO_ROOT / "README.md").read_text()
    for extra in PROVISIONER_EXTRA_ENV:
        assert extra in readme, f"{extra} is not documented"
    allowed = known | (words & {"KURA_ROOT_ACCESS_KEY", "KURA_ROOT_SECRET_KEY"}) | PROVISIONER_EXTRA_ENV
    assert env_names(c) <= allowed, env_names(c) - allowed


def test_statefulset_configuration_starts_kura_and_answers_its_probes(tmp_path):
    """Run the binary with the StatefulSet's args and env (secrets substituted, the data
    dir and addresses moved to a temp dir and free loopback ports) and call every probe
    path the manifest names, and /metrics as the ServiceMonitor does."""
    kura = resolve_kura_bin()
    (c,) = containers(one("StatefulSet", "kura"))
    s3_port, ops_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KURA_"))}
    for e in c["env"]:
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            env[e["name"]] = {"KURA_ROOT_ACCESS_KEY": "KURAMANIFESTTEST0001",
                              "KURA_ROOT_SECRET_KEY": "manifest-test-secret-0123456789"}[
                e["valueFrom"]["secretKeyRef"]["key"]]
    env.update(KURA_DATA_DIR=str(tmp_path / "data"), KURA_S3_ADDR=f"127.0.0.1:{s3_port}",
               KURA_OPS_ADDR=f"127.0.0.1:{ops_port}")
    log = open(tmp_path / "kura.log", "wb")
    proc = subprocess.Popen([str(kura), *c["args"]], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        probes = [c[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")]
        deadline = time.monotonic() + 30
        pending = set(probes) | {"/metrics"}
        while pending and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "kura.log").read_text()
            for path in sorted(pending):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}{path}", timeout=2) as r:
                        if r.status == 200:
                            pending.discard(path)
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
            time.sleep(0.1)
        assert not pending, f"probe paths never answered 200: {pending}\n" + (tmp_path / "kura.log").read_text()
        log_text = (tmp_path / "kura.log").read_text()
        assert "KURA_ROOT_ACCESS_KEY" in log_text, "root credentials were not taken from the env"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --------------------------------------------------------------------------- docker

def test_compose_file_runs_kura_and_prometheus():
    compose = yaml.safe_load((DOCKER_DIR / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"kura", "prometheus"}
    kura = services["kura"]
    build = kura["build"]
    context = (DOCKER_DIR / build["context"]).resolve()
    assert context == REPO_ROOT.resolve(), "build context must be the repository root"
    assert (context / build["dockerfile"]).is_file()
    env = dict(e.split("=", 1) for e in kura["environment"] if "=" in e)
    # A root key passed without a value is taken from the shell only when set there.
    assert not any(e.startswith("KURA_ROOT_") and "=" in e for e in kura["environment"]), \
        "an empty KURA_ROOT_* value would become the key"
    ops_port = int(env["KURA_OPS_ADDR"].rsplit(":", 1)[1])
    assert env["KURA_DATA_DIR"] in {v.split(":")[1] for v in kura["volumes"]}
    prom = services["prometheus"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prom["volumes"]}
    config_arg = next(a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file="))
    config = DOCKER_DIR / mounts[config_arg]
    assert config.resolve() == (DOCKER_DIR / "prometheus.yml").resolve()
    targets = [t for job in yaml.safe_load(config.read_text())["scrape_configs"]
               for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert f"kura:{ops_port}" in targets, targets


def test_prometheus_config_passes_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run `bash scripts/test` (Debian's prometheus package)",
                    pytrace=False)
    r = subprocess.run([promtool, "check", "config", str(DOCKER_DIR / "prometheus.yml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_shape():
    text = (DOCKER_DIR / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    assert len(froms) >= 2, "multi-stage build expected"
    assert re.search(r"cargo build --release -p kura --locked", text)
    assert re.search(r"^COPY --from=" + froms[0][1], text, re.M)
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root"), "must run as non-root"
    assert re.search(r"^EXPOSE\s+9000\s+9001\s*$", text, re.M)
    assert re.search(r'^ENTRYPOINT \["kura"\]', text, re.M)
    assert re.search(r'^CMD \["serve"\]', text, re.M)
    assert re.search(r"^VOLUME \[\"/data\"\]", text, re.M)
    assert "KURA_DATA_DIR=/data" in text
    ignore = (REPO_ROOT / ".dockerignore").read_text().split()
    assert "target/" in ignore and ".git/" in ignore
    # What the build needs must not be ignored.
    for needed in ("Cargo.toml", "Cargo.lock", "gateway/", "index/", "backend/", "conformance/",
                   "cli/", "admin-client/", "k8s/", "k8s/provisioner/"):
        assert needed not in ignore, needed
    # The workspace's crates under k8s/ are let back in after the manifests are left out.
    if "k8s/*" in ignore:
        assert "!k8s/provisioner/" in ignore[ignore.index("k8s/*"):]
