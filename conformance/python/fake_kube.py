"""A small fake Kubernetes API server for tests (Python stdlib only).

It speaks enough of the Kubernetes REST API, with the real API server's
semantics, for kube-rs clients and controllers (list/watch, CRUD, patches,
finalizers, status subresource, garbage collection) to run against it:

    from fake_kube import FakeKube
    fk = FakeKube().start()          # loopback HTTP on a free port
    fk.url                           # http://127.0.0.1:PORT
    fk.write_kubeconfig(path)        # cluster server fk.url, bearer-token user
    fk.create({...}); fk.get("configmaps", "x", "ns"); fk.list("objectbucketclaims")
    fk.delete("objectbucketclaims", "x", "ns"); fk.requests  # request log
    fk.stop()

Storage is generic: any `/api/v1/...` or `/apis/{group}/{version}/...` path
works, namespaced (`namespaces/{ns}/{plural}[/{name}[/{sub}]]`) and
cluster-scoped (`{plural}[/{name}[/{sub}]]`), and `/apis/g/v/{plural}` lists
and watches a namespaced resource across all namespaces.  Objects are stored
per (group, plural); the version in the URL is not interpreted.

Behaviour copied from the real API server:
  * metadata: resourceVersion (one global counter, as a string), uid,
    creationTimestamp, generation (1 at creation, bumped when anything but
    metadata/status changes); empty finalizers/ownerReferences/labels/
    annotations are omitted like Go's omitempty.
  * DELETE of an object with finalizers sets deletionTimestamp and keeps it;
    once its finalizers are empty it is removed.  While deleting, updates may
    remove finalizers but not add new ones (422).  propagationPolicy Orphan
    strips owner references from dependents; Background (default) and
    Foreground delete dependents (Foreground via the `foregroundDeletion`
    finalizer).  Garbage collection: an object whose ownerReferences all
    point at uids that no longer exist is deleted (respecting its finalizers).
  * Status subresource (kinds in STATUS_SUBRESOURCE, e.g. objectbucketclaims,
    objectbuckets): writes to the main resource keep the old status, writes to
    `.../status` change only the status.
  * Secret stringData is merged into base64 data.
  * list: limit/continue, metadata.resourceVersion, labelSelector (=, ==, !=,
    in, notin, exists, !exists), fieldSelector metadata.name/
    metadata.namespace (=, ==, !=).
  * watch (`watch=true|1`): resourceVersion (unset/"0": synthetic ADDED events
    for the current state first), sendInitialEvents (+ the initial-events-end
    bookmark), allowWatchBookmarks (a BOOKMARK every `bookmark_interval`
    seconds), timeoutSeconds; chunked newline-delimited JSON events; selectors
    applied to old and new state (an object leaving the selection is DELETED,
    one entering it ADDED).  A resourceVersion older than the retained
    history gets an ERROR event carrying a 410 Expired Status (what the real
    server's watch cache sends; `compact()` drops history for tests).
  * POST (409 AlreadyExists, generateName), GET (404 NotFound), PUT (409
    Conflict on a stale resourceVersion), PATCH: merge-patch (RFC 7386),
    json-patch (RFC 6902; a failed `test` is 422 Invalid like the real server),
    strategic-merge-patch (treated as a merge patch; 415 for custom resources
    like the real server), apply-patch+yaml (server-side apply with a JSON
    body: create if absent, merge otherwise; fieldManager required).
  * errors are `Status` objects (kind Status, apiVersion v1, status Failure,
    message, reason, details, code).
"""

from __future__ import annotations

import base64
import copy
import datetime as _dt
import json
import os
import random
import re
import secrets
import string
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

# plural -> (group, version, kind, namespaced, has status subresource)
KNOWN_RESOURCES: "dict[tuple[str, str], tuple[str, str, bool, bool]]" = {
    ("", "configmaps"): ("v1", "ConfigMap", True, False),
    ("", "secrets"): ("v1", "Secret", True, False),
    ("", "events"): ("v1", "Event", True, False),
    ("", "namespaces"): ("v1", "Namespace", False, True),
    ("", "pods"): ("v1", "Pod", True, True),
    ("", "services"): ("v1", "Service", True, True),
    ("", "serviceaccounts"): ("v1", "ServiceAccount", True, False),
    ("", "persistentvolumeclaims"): ("v1", "PersistentVolumeClaim", True, True),
    ("", "persistentvolumes"): ("v1", "PersistentVolume", False, True),
    ("", "nodes"): ("v1", "Node", False, True),
    ("storage.k8s.io", "storageclasses"): ("v1", "StorageClass", False, False),
    ("events.k8s.io", "events"): ("v1", "Event", True, False),
    ("apps", "deployments"): ("v1", "Deployment", True, True),
    ("apps", "statefulsets"): ("v1", "StatefulSet", True, True),
    ("coordination.k8s.io", "leases"): ("v1", "Lease", True, False),
    ("apiextensions.k8s.io", "customresourcedefinitions"): ("v1", "CustomResourceDefinition", False, True),
    ("objectbucket.io", "objectbucketclaims"): ("v1alpha1", "ObjectBucketClaim", True, True),
    ("objectbucket.io", "objectbuckets"): ("v1alpha1", "ObjectBucket", False, True),
}
KIND_TO_RESOURCE = {(g, v[1]): (g, p) for (g, p), v in KNOWN_RESOURCES.items()}
# Groups served by the API server itself (strategic merge patch works there;
# custom resources answer 415 to it).
BUILTIN_GROUPS = {"", "apps", "batch", "storage.k8s.io", "events.k8s.io", "coordination.k8s.io",
                  "rbac.authorization.k8s.io", "networking.k8s.io", "policy", "autoscaling",
                  "apiextensions.k8s.io", "admissionregistration.k8s.io", "discovery.k8s.io"}

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's generateName alphabet
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def now_rfc3339() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(code: int, reason: str, message: str, *, name=None, group=None, kind=None,
                causes=None) -> dict:
    details = {}
    if name is not None:
        details["name"] = name
    if group:
        details["group"] = group
    if kind is not None:
        details["kind"] = kind
    if causes:
        details["causes"] = causes
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, **details):
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> dict:
        return status_body(self.code, self.reason, self.message, **self.details)


# ------------------------------------------------------------------ patches
def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


class JsonPatchError(Exception):
    pass


def _ptr_tokens(path: str) -> "list[str]":
    if path == "":
        return []
    if not path.startswith("/"):
        raise JsonPatchError(f"invalid JSON pointer {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


_MISSING = object()


def _ptr_get(doc, tokens):
    cur = doc
    for t in tokens:
        if isinstance(cur, dict):
            if t not in cur:
                return _MISSING
            cur = cur[t]
        elif isinstance(cur, list):
            if not t.isdigit() or int(t) >= len(cur):
                return _MISSING
            cur = cur[int(t)]
        else:
            return _MISSING
    return cur


def _ptr_parent(doc, tokens):
    parent = _ptr_get(doc, tokens[:-1])
    if parent is _MISSING or not isinstance(parent, (dict, list)):
        raise JsonPatchError(f"path /{'/'.join(tokens)}: parent does not exist")
    return parent, tokens[-1]


def _index(parent: list, tok: str, allow_end: bool) -> int:
    if tok == "-" and allow_end:
        return len(parent)
    if not tok.isdigit():
        raise JsonPatchError(f"invalid array index {tok!r}")
    i = int(tok)
    if i > len(parent) or (i == len(parent) and not allow_end):
        raise JsonPatchError(f"array index {i} out of bounds")
    return i


def _op_add(doc, tokens, value):
    if not tokens:
        return copy.deepcopy(value)
    parent, tok = _ptr_parent(doc, tokens)
    if isinstance(parent, dict):
        parent[tok] = copy.deepcopy(value)
    else:
        parent.insert(_index(parent, tok, True), copy.deepcopy(value))
    return doc


def _op_remove(doc, tokens):
    if not tokens:
        raise JsonPatchError("cannot remove the root")
    parent, tok = _ptr_parent(doc, tokens)
    if isinstance(parent, dict):
        if tok not in parent:
            raise JsonPatchError(f"remove: path /{'/'.join(tokens)} does not exist")
        return parent.pop(tok)
    return parent.pop(_index(parent, tok, False))


def json_patch(doc, ops):
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test).  Like the
    apiserver's json-patch library, `test` of a missing path against null
    succeeds."""
    if not isinstance(ops, list):
        raise JsonPatchError("a JSON patch must be an array of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise JsonPatchError(f"invalid operation {op!r}")
        kind, tokens = op["op"], _ptr_tokens(op["path"])
        if kind == "add":
            doc = _op_add(doc, tokens, op.get("value"))
        elif kind == "remove":
            _op_remove(doc, tokens)
        elif kind == "replace":
            if _ptr_get(doc, tokens) is _MISSING:
                raise JsonPatchError(f"replace: path {op['path']} does not exist")
            if not tokens:
                doc = copy.deepcopy(op.get("value"))
            else:
                parent, tok = _ptr_parent(doc, tokens)
                if isinstance(parent, dict):
                    parent[tok] = copy.deepcopy(op.get("value"))
                else:
                    parent[_index(parent, tok, False)] = copy.deepcopy(op.get("value"))
        elif kind in ("move", "copy"):
            src = _ptr_tokens(op.get("from", ""))
            val = _ptr_get(doc, src)
            if val is _MISSING:
                raise JsonPatchError(f"{kind}: from {op.get('from')} does not exist")
            val = copy.deepcopy(val)
            if kind == "move":
                _op_remove(doc, src)
            doc = _op_add(doc, tokens, val)
        elif kind == "test":
            got = _ptr_get(doc, tokens)
            want = op.get("value")
            if got is _MISSING:
                got = None
            if got != want:
                raise JsonPatchError(
                    f"testing value {op['path']} failed: {json.dumps(got)} != {json.dumps(want)}")
        else:
            raise JsonPatchError(f"unknown operation {kind!r}")
    return doc


# ---------------------------------------------------------------- selectors
def _split_selector(sel: str) -> "list[str]":
    terms, depth, cur = [], 0, ""
    for ch in sel:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def parse_label_selector(sel: "str | None"):
    """-> predicate(labels dict) -> bool.  Raises ApiError 400 on bad syntax."""
    if not sel:
        return lambda labels: True
    preds = []
    for term in _split_selector(sel):
        low = f" {term} "
        if " notin " in low or " in " in low:
            neg = " notin " in low
            key, _, rest = term.partition(" notin " if neg else " in ")
            rest = rest.strip()
            if not (rest.startswith("(") and rest.endswith(")")):
                raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
            vals = {v.strip() for v in rest[1:-1].split(",") if v.strip()}
            key = key.strip()
            if neg:
                preds.append(lambda l, k=key, vs=vals: l.get(k) not in vs)
            else:
                preds.append(lambda l, k=key, vs=vals: k in l and l[k] in vs)
        elif "!=" in term:
            k, v = (s.strip() for s in term.split("!=", 1))
            preds.append(lambda l, k=k, v=v: l.get(k) != v)
        elif "==" in term or "=" in term:
            k, v = (s.strip() for s in term.replace("==", "=", 1).split("=", 1))
            preds.append(lambda l, k=k, v=v: l.get(k) == v)
        elif term.startswith("!"):
            k = term[1:].strip()
            preds.append(lambda l, k=k: k not in l)
        else:
            if any(c in term for c in " ()"):
                raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
            preds.append(lambda l, k=term: k in l)
    return lambda labels: all(p(labels or {}) for p in preds)


def parse_field_selector(sel: "str | None"):
    if not sel:
        return lambda obj: True
    preds = []
    for term in _split_selector(sel):
        neg = "!=" in term
        k, v = (s.strip() for s in term.replace("==", "=").split("!=" if neg else "=", 1))
        if k not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, "BadRequest",
                           f'"{k}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        field = k.split(".", 1)[1]
        if neg:
            preds.append(lambda o, f=field, v=v: o["metadata"].get(f, "") != v)
        else:
            preds.append(lambda o, f=field, v=v: o["metadata"].get(f, "") == v)
    return lambda obj: all(p(obj) for p in preds)


# ---------------------------------------------------------------- the store
class Resource:
    """A resource type as addressed by a URL."""

    def __init__(self, group: str, version: str, plural: str):
        self.group, self.version, self.plural = group, version, plural
        info = KNOWN_RESOURCES.get((group, plural))
        self.kind = info[1] if info else None
        self.known_namespaced = info[2] if info else None
        self.has_status = info[3] if info else False

    @property
    def key(self):
        return (self.group, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gr(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


class FakeKube:
    """The fake API server.  All state lives in memory behind one lock."""

    def __init__(self, *, token: "str | None" = None, bookmark_interval: float = 1.0,
                 history_limit: int = 10000, host: str = "127.0.0.1", port: int = 0):
        self.token = token or secrets.token_hex(16)
        self.bookmark_interval = bookmark_interval
        self.history_limit = history_limit
        self._host, self._port = host, port
        self._cond = threading.Condition(threading.RLock())
        self._rv = 0
        self._objects: "dict[tuple, dict[tuple, dict]]" = {}   # (group, plural) -> {(ns, name): obj}
        self._versions: "dict[tuple, str]" = {}                # (group, plural) -> version last used
        self._history: "list[tuple]" = []   # (rv, rkey, type, old_obj|None, new_obj)
        self._history_floor = 0             # events with rv <= floor are gone
        self._stopping = False
        self._httpd: "ThreadingHTTPServer | None" = None
        self._thread: "threading.Thread | None" = None
        self.requests: "list[dict]" = []    # request log
        self.faults: "list" = []            # callables(method, path, query) -> (code, reason) | None

    # ---------------------------------------------------------- lifecycle
    def start(self) -> "FakeKube":
        fake = self

        class Handler(_Handler):
            server_ref = fake

        self._httpd = ThreadingHTTPServer((self._host, self._port), Handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="fake-kube")
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def kubeconfig_text(self, namespace: str = "default") -> str:
        return (
            "apiVersion: v1\nkind: Config\n"
            "clusters:\n- name: fake\n  cluster:\n"
            f"    server: {self.url}\n"
            "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n"
            f"    namespace: {namespace}\n"
            "current-context: fake\n"
            "users:\n- name: fake\n  user:\n"
            f"    token: {self.token}\n"
        )

    def write_kubeconfig(self, path: "str | os.PathLike", namespace: str = "default") -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.kubeconfig_text(namespace))
        return p

    # ------------------------------------------------------ test accessors
    @staticmethod
    def _resource_for(plural_or_kind: str, group: "str | None", version: "str | None" = None) -> Resource:
        if group is None:
            matches = [g for (g, p) in KNOWN_RESOURCES if p == plural_or_kind and g != "events.k8s.io"]
            if not matches:
                matches = [g for (g, k) in KIND_TO_RESOURCE if k == plural_or_kind]
                if matches:
                    plural_or_kind = KIND_TO_RESOURCE[(matches[0], plural_or_kind)][1]
            group = matches[0] if matches else ""
        elif (group, plural_or_kind) in KIND_TO_RESOURCE:
            plural_or_kind = KIND_TO_RESOURCE[(group, plural_or_kind)][1]
        info = KNOWN_RESOURCES.get((group, plural_or_kind))
        return Resource(group, version or (info[0] if info else "v1"), plural_or_kind)

    def get(self, plural: str, name: str, namespace: "str | None" = None, group: "str | None" = None):
        """The stored object (a copy) or None."""
        r = self._resource_for(plural, group)
        with self._cond:
            obj = self._objects.get(r.key, {}).get((namespace or "", name))
            return copy.deepcopy(obj) if obj else None

    def list(self, plural: str, namespace: "str | None" = None, group: "str | None" = None,
             label_selector: "str | None" = None) -> "list[dict]":
        r = self._resource_for(plural, group)
        pred = parse_label_selector(label_selector)
        with self._cond:
            out = [copy.deepcopy(o) for (ns, _n), o in sorted(self._objects.get(r.key, {}).items())
                   if (namespace is None or ns == namespace) and pred(o["metadata"].get("labels"))]
        return out

    def create(self, obj: dict, plural: "str | None" = None) -> dict:
        """Create `obj` (kind/apiVersion decide the resource unless plural is given)."""
        group = obj.get("apiVersion", "v1").rpartition("/")[0]
        version = obj.get("apiVersion", "v1").rpartition("/")[2]
        r = self._resource_for(plural or obj["kind"], group, version)
        ns = obj.get("metadata", {}).get("namespace") or ""
        with self._cond:
            return copy.deepcopy(self._create(r, ns, copy.deepcopy(obj)))

    def delete(self, plural: str, name: str, namespace: "str | None" = None, group: "str | None" = None,
               propagation: str = "Background") -> "dict | None":
        r = self._resource_for(plural, group)
        with self._cond:
            try:
                return copy.deepcopy(self._delete(r, namespace or "", name, propagation))
            except ApiError as e:
                if e.code == 404:
                    return None
                raise

    def patch(self, plural: str, name: str, patch: dict, namespace: "str | None" = None,
              group: "str | None" = None, subresource: "str | None" = None) -> dict:
        """Merge-patch an object (subresource="status" for the status)."""
        r = self._resource_for(plural, group)
        with self._cond:
            cur = self._must_get(r, namespace or "", name)
            new = merge_patch(cur, patch)
            return copy.deepcopy(self._update(r, namespace or "", name, new, subresource, check_rv=False))

    def compact(self) -> None:
        """Forget all watch history (a watch from an older resourceVersion gets 410)."""
        with self._cond:
            self._history.clear()
            self._history_floor = self._rv

    @property
    def resource_version(self) -> int:
        return self._rv

    def requests_matching(self, method: "str | None" = None, path_contains: str = "") -> "list[dict]":
        return [r for r in list(self.requests)
                if (method is None or r["method"] == method) and path_contains in r["path"]]

    # ------------------------------------------------------------ internals
    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _record(self, r: Resource, etype: str, old: "dict | None", new: dict) -> None:
        self._history.append((int(new["metadata"]["resourceVersion"]), r.key, etype,
                              copy.deepcopy(old) if old is not None else None, copy.deepcopy(new)))
        if len(self._history) > self.history_limit:
            drop = len(self._history) - self.history_limit
            self._history_floor = self._history[drop - 1][0]
            del self._history[:drop]
        self._cond.notify_all()

    def _store(self, r: Resource) -> dict:
        return self._objects.setdefault(r.key, {})

    def _must_get(self, r: Resource, ns: str, name: str) -> dict:
        obj = self._store(r).get((ns, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{r.gr} "{name}" not found', name=name, group=r.group,
                           kind=r.plural)
        return obj

    def _kind_of(self, r: Resource, body: "dict | None" = None) -> str:
        if r.kind:
            return r.kind
        if body and body.get("kind"):
            return body["kind"]
        for o in self._store(r).values():
            return o.get("kind", "")
        return r.plural[:1].upper() + r.plural[1:].rstrip("s")

    @staticmethod
    def _normalize(obj: dict, r: Resource) -> None:
        md = obj.setdefault("metadata", {})
        for k in ("finalizers", "ownerReferences", "labels", "annotations"):
            if k in md and not md[k]:
                del md[k]
        if r.key == ("", "secrets"):
            sd = obj.pop("stringData", None)
            if sd:
                data = obj.get("data") or {}
                for k, v in sd.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
                obj["data"] = data
            obj.setdefault("type", "Opaque")

    def _validate_meta(self, r: Resource, obj: dict) -> None:
        """The API server's generic validation: names, label keys/values, owner
        references, ConfigMap/Secret keys."""
        md = obj.get("metadata")
        if not isinstance(md, dict):
            raise ApiError(422, "Invalid", "metadata must be an object", kind=r.kind or r.plural)
        kind = r.kind or obj.get("kind") or r.plural

        def invalid(msg):
            return ApiError(422, "Invalid", f'{kind} "{md.get("name")}" is invalid: {msg}',
                            name=md.get("name"), group=r.group, kind=kind)
        name = md.get("name") or ""
        name_re = _DNS_LABEL if r.key == ("", "namespaces") else _DNS_SUBDOMAIN
        if not name_re.match(name) or len(name) > (63 if name_re is _DNS_LABEL else 253):
            raise invalid(f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 name is required")
        for k, v in (md.get("labels") or {}).items():
            prefix, _, lname = k.rpartition("/")
            if (not _LABEL_NAME.match(lname) or len(lname) > 63
                    or (prefix and (not _DNS_SUBDOMAIN.match(prefix) or len(prefix) > 253))):
                raise invalid(f"metadata.labels: Invalid value: {k!r}: invalid label key")
            if not isinstance(v, str) or len(v) > 63 or (v and not _LABEL_NAME.match(v)):
                raise invalid(f"metadata.labels: Invalid value: {v!r}: a valid label must be 63 characters or "
                              "less, alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric")
        refs = md.get("ownerReferences") or []
        if not isinstance(refs, list):
            raise invalid("metadata.ownerReferences must be a list")
        for ref in refs:
            missing = [f for f in ("apiVersion", "kind", "name", "uid") if not (ref or {}).get(f)]
            if missing:
                raise invalid(f"metadata.ownerReferences: Required value: {missing}")
        if sum(1 for ref in refs if ref.get("controller")) > 1:
            raise invalid("metadata.ownerReferences: Invalid value: only one reference can have Controller set to true")
        if r.key in (("", "configmaps"), ("", "secrets")):
            for k in list((obj.get("data") or {})) + list((obj.get("binaryData") or {})):
                if not _DATA_KEY.match(k) or len(k) > 253:
                    raise invalid(f"data[{k}]: Invalid value: a valid config key must consist of alphanumeric "
                                  "characters, '-', '_' or '.'")
        for k in ("labels", "annotations"):
            v = md.get(k)
            if v is not None and (not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values())):
                raise ApiError(422, "Invalid", f"metadata.{k}: values must be strings",
                               name=md.get("name"), kind=r.kind or r.plural)
        fins = md.get("finalizers")
        if fins is not None and (not isinstance(fins, list) or not all(isinstance(f, str) for f in fins)):
            raise ApiError(422, "Invalid", "metadata.finalizers must be a list of strings",
                           name=md.get("name"), kind=r.kind or r.plural)
        if r.key == ("", "configmaps"):
            data = obj.get("data") or {}
            if not all(isinstance(v, str) for v in data.values()):
                raise ApiError(422, "Invalid", "data values must be strings", name=md.get("name"),
                               kind="ConfigMap")
        if r.key == ("", "secrets"):
            for k, v in (obj.get("data") or {}).items():
                try:
                    base64.b64decode(v, validate=True)
                except Exception:
                    raise ApiError(400, "BadRequest", f"data[{k}]: illegal base64 data") from None

    def _create(self, r: Resource, ns: str, obj: dict) -> dict:
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request is not a JSON object")
        md = obj.setdefault("metadata", {})
        if ns and md.get("namespace") not in (None, "", ns):
            raise ApiError(400, "BadRequest",
                           "the namespace of the provided object does not match the namespace sent on the request")
        if r.known_namespaced is False and ns:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({r.gr})")
        name = md.get("name")
        if not name:
            gen = md.get("generateName")
            if not gen:
                raise ApiError(422, "Invalid", "metadata.name: Required value: name or generateName is required",
                               kind=self._kind_of(r, obj))
            for _ in range(100):
                name = gen + "".join(random.choice(_NAME_CHARS) for _ in range(5))
                if (ns, name) not in self._store(r):
                    break
        if (ns, name) in self._store(r):
            raise ApiError(409, "AlreadyExists", f'{r.gr} "{name}" already exists', name=name, group=r.group,
                           kind=r.plural)
        obj["apiVersion"] = r.api_version
        obj["kind"] = self._kind_of(r, obj)
        md["name"] = name
        if ns:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_rfc3339()
        md["generation"] = 1
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
            md.pop(k, None)
        md["resourceVersion"] = self._next_rv()
        self._normalize(obj, r)
        self._validate_meta(r, obj)
        self._store(r)[(ns, name)] = obj
        self._record(r, "ADDED", None, obj)
        self._gc()
        return obj

    @staticmethod
    def _spec_part(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}

    def _update(self, r: Resource, ns: str, name: str, new: dict, subresource: "str | None",
                check_rv: bool = True) -> dict:
        """Replace object (ns, name) with `new` (the full desired object)."""
        old = self._must_get(r, ns, name)
        if not isinstance(new, dict):
            raise ApiError(400, "BadRequest", "the body of the request is not a JSON object")
        new = copy.deepcopy(new)
        md = new.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise ApiError(422, "Invalid", "metadata must be an object")
        if md.get("name") not in (None, name):
            raise ApiError(400, "BadRequest",
                           f"the name of the object ({md.get('name')}) does not match the name on the URL ({name})")
        if ns and md.get("namespace") not in (None, "", ns):
            raise ApiError(400, "BadRequest",
                           "the namespace of the provided object does not match the namespace sent on the request")
        omd = old["metadata"]
        if check_rv and md.get("resourceVersion") not in (None, "") and md["resourceVersion"] != omd["resourceVersion"]:
            raise ApiError(409, "Conflict",
                           f'Operation cannot be fulfilled on {r.gr} "{name}": the object has been modified; '
                           "please apply your changes to the latest version and try again",
                           name=name, group=r.group, kind=r.plural)
        if subresource == "status":
            if not r.has_status:
                raise ApiError(404, "NotFound", f"the server could not find the requested resource ({r.gr}/status)")
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        elif subresource:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({r.gr}/{subresource})")
        else:
            result = new
            if r.has_status:
                if "status" in old:
                    result["status"] = copy.deepcopy(old["status"])
                else:
                    result.pop("status", None)
        rmd = result["metadata"]
        # server-managed fields
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in omd:
                rmd[k] = omd[k]
            else:
                rmd.pop(k, None)
        rmd["name"] = name
        if ns:
            rmd["namespace"] = ns
        result["apiVersion"] = old["apiVersion"]
        result["kind"] = old["kind"]
        self._normalize(result, r)
        self._validate_meta(r, result)
        if omd.get("deletionTimestamp"):
            added = set(rmd.get("finalizers", [])) - set(omd.get("finalizers", []))
            if added:
                raise ApiError(422, "Invalid",
                               f'{r.kind or r.plural} "{name}" is invalid: metadata.finalizers: Forbidden: '
                               "no new finalizers can be added if the object is being deleted, found new "
                               f"finalizers {sorted(added)}", name=name, group=r.group, kind=r.kind or r.plural)
        if self._spec_part(result) != self._spec_part(old) or (
                not r.has_status and result.get("status") != old.get("status")):
            rmd["generation"] = int(omd.get("generation", 1)) + 1
        rmd["resourceVersion"] = omd["resourceVersion"]
        if result == old:  # no-op: the real server does not bump the resourceVersion
            return old
        rmd["resourceVersion"] = self._next_rv()
        self._store(r)[(ns, name)] = result
        self._record(r, "MODIFIED", old, result)
        self._gc()
        return result

    def _delete(self, r: Resource, ns: str, name: str, propagation: "str | None" = "Background",
                precondition_uid: "str | None" = None, precondition_rv: "str | None" = None) -> dict:
        old = self._must_get(r, ns, name)
        if precondition_uid and precondition_uid != old["metadata"]["uid"]:
            raise ApiError(409, "Conflict", f"Precondition failed: UID in precondition: {precondition_uid}, "
                           f"UID in object meta: {old['metadata']['uid']}", name=name, group=r.group, kind=r.plural)
        if precondition_rv and precondition_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "Precondition failed: resourceVersion mismatch", name=name,
                           group=r.group, kind=r.plural)
        uid = old["metadata"]["uid"]
        if propagation == "Orphan":
            self._orphan_dependents(uid)
        fins = list(old["metadata"].get("finalizers", []))
        if propagation == "Foreground" and self._dependents(uid) and "foregroundDeletion" not in fins:
            fins.append("foregroundDeletion")
        if fins:
            if old["metadata"].get("deletionTimestamp") and fins == old["metadata"].get("finalizers"):
                return old
            new = copy.deepcopy(old)
            new["metadata"]["finalizers"] = fins
            new["metadata"].setdefault("deletionTimestamp", now_rfc3339())
            new["metadata"].setdefault("deletionGracePeriodSeconds", 0)
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
            new["metadata"]["resourceVersion"] = self._next_rv()
            self._store(r)[(ns, name)] = new
            self._record(r, "MODIFIED", old, new)
            self._gc()
            return new
        return self._remove(r, ns, name)

    def _remove(self, r: Resource, ns: str, name: str) -> dict:
        old = self._store(r).pop((ns, name))
        final = copy.deepcopy(old)
        final["metadata"]["resourceVersion"] = self._next_rv()
        self._record(r, "DELETED", old, final)
        self._gc()
        return final

    def _all_objects(self):
        for (g, p), objs in list(self._objects.items()):
            info = KNOWN_RESOURCES.get((g, p))
            r = Resource(g, info[0] if info else self._versions.get((g, p), "v1"), p)
            for (ns, name), obj in list(objs.items()):
                yield r, ns, name, obj

    def _dependents(self, uid: str):
        return [(r, ns, name, o) for r, ns, name, o in self._all_objects()
                if any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences", []))]

    def _orphan_dependents(self, uid: str) -> None:
        for r, ns, name, o in self._dependents(uid):
            new = copy.deepcopy(o)
            new["metadata"]["ownerReferences"] = [x for x in o["metadata"].get("ownerReferences", [])
                                                  if x.get("uid") != uid]
            self._normalize(new, r)
            new["metadata"]["resourceVersion"] = self._next_rv()
            self._store(r)[(ns, name)] = new
            self._record(r, "MODIFIED", o, new)

    _in_gc = False

    def _gc(self) -> None:
        """Remove deleted objects without finalizers, run foreground deletion, and
        delete dependents whose owners are all gone (the garbage collector)."""
        if self._in_gc:
            return
        self._in_gc = True
        try:
            changed = True
            while changed:
                changed = False
                uids = {o["metadata"]["uid"] for _r, _ns, _n, o in self._all_objects()}
                for r, ns, name, o in list(self._all_objects()):
                    if (ns, name) not in self._store(r) or self._store(r)[(ns, name)] is not o:
                        continue
                    md = o["metadata"]
                    if md.get("deletionTimestamp") and not md.get("finalizers"):
                        self._remove(r, ns, name)
                        changed = True
                        continue
                    if md.get("deletionTimestamp") and "foregroundDeletion" in md.get("finalizers", []):
                        deps = self._dependents(md["uid"])
                        if not deps:
                            new = copy.deepcopy(o)
                            new["metadata"]["finalizers"] = [f for f in md["finalizers"] if f != "foregroundDeletion"]
                            self._normalize(new, r)
                            new["metadata"]["resourceVersion"] = self._next_rv()
                            self._store(r)[(ns, name)] = new
                            self._record(r, "MODIFIED", o, new)
                            changed = True
                        else:
                            for dr, dns, dname, d in deps:
                                if not d["metadata"].get("deletionTimestamp"):
                                    self._delete(dr, dns, dname, "Background")
                                    changed = True
                        continue
                    refs = md.get("ownerReferences") or []
                    if refs and not md.get("deletionTimestamp") and not any(x.get("uid") in uids for x in refs):
                        self._delete(r, ns, name, "Background")
                        changed = True
        finally:
            self._in_gc = False

    # ------------------------------------------------------------- listing
    def _select(self, r: Resource, ns: "str | None", label_sel, field_sel) -> "list[tuple]":
        items = sorted(self._store(r).items())
        return [(k, o) for k, o in items
                if (ns is None or k[0] == ns) and label_sel(o["metadata"].get("labels")) and field_sel(o)]

    def _list(self, r: Resource, ns: "str | None", query: dict) -> dict:
        label_sel = parse_label_selector(query.get("labelSelector"))
        field_sel = parse_field_selector(query.get("fieldSelector"))
        items = self._select(r, ns, label_sel, field_sel)
        list_rv = str(self._rv)
        start = None
        if query.get("continue"):
            try:
                tok = json.loads(base64.urlsafe_b64decode(query["continue"].encode()).decode())
                start = tuple(tok["start"])
                list_rv = tok["rv"]
            except Exception:
                raise ApiError(400, "BadRequest", "continue key is not valid") from None
            items = [(k, o) for k, o in items if k > start]
        meta = {"resourceVersion": list_rv}
        limit = int(query.get("limit") or 0)
        if limit > 0 and len(items) > limit:
            rest = len(items) - limit
            items = items[:limit]
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"start": list(items[-1][0]), "rv": list_rv}).encode()).decode()
            meta["remainingItemCount"] = rest
        return {"kind": self._kind_of(r) + "List", "apiVersion": r.api_version, "metadata": meta,
                "items": [copy.deepcopy(o) for _k, o in items]}


# --------------------------------------------------------------- HTTP layer
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # headers and body leave in one write (flushed per request)
    server_ref: FakeKube = None  # type: ignore[assignment]

    def log_message(self, fmt, *args):  # quiet
        pass

    # A client that goes away (a killed controller, a closed watch) is not an error.
    def handle(self):
        try:
            super().handle()
        except OSError:
            self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    # request helpers
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                line = self.rfile.readline().strip()
                n = int(line.split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _as_partial(self) -> bool:
        """Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1
        (kube-rs metadata_watcher / Api::list_metadata) -> metadata-only objects."""
        return "as=PartialObjectMetadata" in (self.headers.get("Accept") or "")

    @staticmethod
    def _partial(obj: dict) -> dict:
        if obj.get("kind") == "Status":
            return obj
        if "items" in obj and obj.get("kind", "").endswith("List"):
            return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"], "items": [_Handler._partial(i) for i in obj["items"]]}
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": copy.deepcopy(obj.get("metadata", {}))}

    def _send_json(self, code: int, body: dict) -> None:
        if code < 400 and self._as_partial():
            body = self._partial(body)
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        self._log["status"] = code
        if code >= 400:
            self._log["error"] = body.get("message")

    def _handle(self) -> None:
        fk = self.server_ref
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body = self._read_body() if self.command in ("POST", "PUT", "PATCH", "DELETE") else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        self._log = {"time": time.time(), "method": self.command, "path": parts.path, "query": query,
                     "content_type": ctype, "accept": self.headers.get("Accept") or "", "body": body.decode(errors="replace")[:4000], "status": None}
        fk.requests.append(self._log)
        try:
            if self.headers.get("Authorization") != f"Bearer {fk.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            for fault in list(fk.faults):
                got = fault(self.command, parts.path, query)
                if got:
                    raise ApiError(got[0], got[1], f"injected fault {got}")
            self._route(parts.path, query, body, ctype)
        except ApiError as e:
            self._send_json(e.code, e.body())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 -- a bug in the fake: answer 500, keep serving
            import traceback
            self._log["traceback"] = traceback.format_exc()
            try:
                self._send_json(500, status_body(500, "InternalError", f"fake apiserver bug: {e!r}"))
            except OSError:
                self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _route(self, path: str, query: dict, body: bytes, ctype: str) -> None:
        fk = self.server_ref
        segs = [s for s in path.split("/") if s]
        if path in ("/version", "/version/"):
            return self._send_json(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
                                         "platform": "linux/amd64"})
        if path in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            self._log["status"] = 200
            return None
        if segs[:1] == ["api"] and len(segs) >= 2:
            group, version, rest = "", segs[1], segs[2:]
        elif segs[:1] == ["apis"] and len(segs) >= 3:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        if not rest:
            raise ApiError(404, "NotFound", "discovery is not implemented by the fake API server")
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], (rest[1] if len(rest) > 1 else None), (rest[2] if len(rest) > 2 else None)
        if len(rest) > 3:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        r = Resource(group, version, plural)
        with fk._cond:
            fk._versions.setdefault(r.key, version)
        if r.known_namespaced is True and ns is None and name is not None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        if r.known_namespaced is False and ns is not None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        m = self.command
        nsk = ns or ""
        if name is None:
            if m == "GET":
                if query.get("watch") in ("true", "1"):
                    return self._watch(r, ns, query)
                with fk._cond:
                    return self._send_json(200, fk._list(r, ns, query))
            if m == "POST":
                obj = self._json(body)
                with fk._cond:
                    if query.get("dryRun"):
                        return self._send_json(201, obj)
                    return self._send_json(201, fk._create(r, nsk, obj))
            if m == "DELETE":
                raise ApiError(405, "MethodNotAllowed", "deletecollection is not implemented by the fake")
            raise ApiError(405, "MethodNotAllowed", f"{m} is not allowed on a collection")
        if m == "GET":
            with fk._cond:
                obj = fk._must_get(r, nsk, name)
                if sub and not (sub == "status" and r.has_status):
                    raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
                return self._send_json(200, obj)
        if m == "PUT":
            obj = self._json(body)
            with fk._cond:
                return self._send_json(200, fk._update(r, nsk, name, obj, sub))
        if m == "PATCH":
            return self._patch(r, nsk, name, sub, query, body, ctype)
        if m == "DELETE":
            if sub:
                raise ApiError(405, "MethodNotAllowed", "DELETE of a subresource")
            opts = self._json(body) if body.strip() else {}
            prop = query.get("propagationPolicy") or opts.get("propagationPolicy") or "Background"
            pre = opts.get("preconditions") or {}
            with fk._cond:
                return self._send_json(200, fk._delete(r, nsk, name, prop, pre.get("uid"),
                                                       pre.get("resourceVersion")))
        raise ApiError(405, "MethodNotAllowed", f"{m} is not allowed")

    @staticmethod
    def _json(body: bytes):
        try:
            return json.loads(body or b"null")
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"the request body is not valid JSON: {e}") from None

    def _patch(self, r: Resource, ns: str, name: str, sub, query, body: bytes, ctype: str) -> None:
        fk = self.server_ref
        patch = self._json(body)
        with fk._cond:
            if ctype == "application/apply-patch+yaml":
                if not query.get("fieldManager"):
                    raise ApiError(400, "BadRequest",
                                   "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                                   "is required for apply patch")
                if not isinstance(patch, dict):
                    raise ApiError(400, "BadRequest", "apply patch body must be an object")
                if not patch.get("apiVersion") or not patch.get("kind"):
                    raise ApiError(400, "BadRequest", "apply patches must set apiVersion and kind")
                if (patch.get("metadata") or {}).get("name") not in (None, name):
                    raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
                if (ns, name) not in fk._store(r):
                    if sub:
                        fk._must_get(r, ns, name)  # raises 404 NotFound
                    obj = copy.deepcopy(patch)
                    obj.setdefault("metadata", {})["name"] = name
                    if ns:
                        obj["metadata"]["namespace"] = ns
                    return self._send_json(201, fk._create(r, ns, obj))
                cur = fk._must_get(r, ns, name)
                new = merge_patch(cur, patch)
                return self._send_json(200, fk._update(r, ns, name, new, sub))
            cur = fk._must_get(r, ns, name)
            if ctype == "application/merge-patch+json":
                new = merge_patch(cur, patch)
            elif ctype == "application/strategic-merge-patch+json":
                if r.group not in BUILTIN_GROUPS:
                    raise ApiError(415, "UnsupportedMediaType",
                                   "the body of the request was in an unknown format - accepted media types "
                                   "include: application/json-patch+json, application/merge-patch+json, "
                                   "application/apply-patch+yaml")
                new = merge_patch(cur, patch)
            elif ctype == "application/json-patch+json":
                try:
                    new = json_patch(cur, patch)
                except JsonPatchError as e:
                    raise ApiError(422, "Invalid", str(e), name=name, group=r.group,
                                   kind=r.kind or r.plural) from None
            else:
                raise ApiError(415, "UnsupportedMediaType",
                               f"the body of the request was in an unknown format ({ctype!r})")
            return self._send_json(200, fk._update(r, ns, name, new, sub))

    # ---------------------------------------------------------------- watch
    def _watch(self, r: Resource, ns: "str | None", query: dict) -> None:
        fk = self.server_ref
        label_sel = parse_label_selector(query.get("labelSelector"))
        field_sel = parse_field_selector(query.get("fieldSelector"))
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(query.get("timeoutSeconds") or 1800)
        rv_q = query.get("resourceVersion") or ""
        initial = query.get("sendInitialEvents") in ("true", "1")

        def matches(obj):
            return obj is not None and (ns is None or obj["metadata"].get("namespace", "") == ns) \
                and label_sel(obj["metadata"].get("labels")) and field_sel(obj)

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self._log["status"] = 200
        self._log["watch"] = True

        partial = self._as_partial()

        def send(etype: str, obj: dict) -> None:
            if partial and etype in ("ADDED", "MODIFIED", "DELETED"):
                obj = self._partial(obj)
            line = json.dumps({"type": etype, "object": obj}).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        def bookmark(rv: int, end_initial: bool = False) -> dict:
            md = {"resourceVersion": str(rv)}
            if end_initial:
                md["annotations"] = {"k8s.io/initial-events-end": "true"}
            return {"kind": fk._kind_of(r), "apiVersion": r.api_version, "metadata": md}

        try:
            with fk._cond:
                pending = []
                if rv_q in ("", "0") or initial:
                    start = fk._rv
                    for _k, o in fk._select(r, ns, label_sel, field_sel):
                        pending.append(("ADDED", copy.deepcopy(o)))
                    if initial and bookmarks:
                        pending.append(("BOOKMARK", bookmark(start, True)))
                else:
                    try:
                        start = int(rv_q)
                    except ValueError:
                        start = -1
                    if start < fk._history_floor:
                        pending.append(("ERROR", status_body(
                            410, "Expired", f"too old resource version: {rv_q} ({fk._history_floor + 1})")))
                        start = None
            for etype, o in pending:
                send(etype, o)
            if start is None:
                return self._end_chunks()
            deadline = time.monotonic() + timeout
            last_bm = time.monotonic()
            pos = start
            while True:
                out = []
                with fk._cond:
                    while True:
                        if fk._stopping:
                            break
                        now = time.monotonic()
                        if now >= deadline:
                            break
                        if fk._rv > pos or (bookmarks and now - last_bm >= fk.bookmark_interval):
                            break
                        wait = deadline - now
                        if bookmarks:
                            wait = min(wait, fk.bookmark_interval - (now - last_bm))
                        fk._cond.wait(max(0.01, wait))
                    if fk._stopping or time.monotonic() >= deadline:
                        break
                    if pos < fk._history_floor:
                        out.append(("ERROR", status_body(410, "Expired",
                                                         f"too old resource version: {pos}")))
                    else:
                        for (erv, rkey, etype, old, new) in fk._history:
                            if erv <= pos or rkey != r.key:
                                continue
                            was, now_in = matches(old), matches(new)
                            if etype == "ADDED" and now_in:
                                out.append(("ADDED", new))
                            elif etype == "DELETED" and was:
                                out.append(("DELETED", new))
                            elif etype == "MODIFIED":
                                if was and now_in:
                                    out.append(("MODIFIED", new))
                                elif now_in:
                                    out.append(("ADDED", new))
                                elif was:
                                    out.append(("DELETED", new))
                    pos = fk._rv
                    if not out and bookmarks and time.monotonic() - last_bm >= fk.bookmark_interval:
                        out.append(("BOOKMARK", bookmark(pos)))
                for etype, o in out:
                    send(etype, o)
                    if etype == "ERROR":
                        return self._end_chunks()
                if out:
                    last_bm = time.monotonic() if any(e == "BOOKMARK" for e, _ in out) else last_bm
            self._end_chunks()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _end_chunks(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
