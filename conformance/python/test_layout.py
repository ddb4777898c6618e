"""Architecture rules of the Kura workspace, checked offline from the sources.

* No module cycles inside any crate (`find_module_cycles`, rules in its
  docstring).  Cycles make modules impossible to move into their own crate and
  hide layering mistakes, so a new one fails here with file:line evidence.
* Crate dependencies go downwards only: the table CRATE_RULES below says which
  workspace crates each package may use and what it must never pull in, even
  transitively.  Edit the table when the architecture changes.

Needs only cargo (metadata and tree, no build) and stdlib Python.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------
# The crate layering.  `may_use`: the only workspace packages it may name as
# normal dependencies (None: any).  `forbid`: packages that must not be in its
# normal dependency tree at all (direct or transitive).
# --------------------------------------------------------------------------
HTTP_S3 = ("axum", "hyper", "http", "quick-xml")  # storage knows nothing of HTTP / S3 XML


@dataclass(frozen=True)
class CrateRule:
    dir: str
    may_use: tuple[str, ...] | None
    forbid: tuple[str, ...] = ()


CRATE_RULES = {
    # The bottom layer: storage primitives.
    "kura-backend": CrateRule("backend", may_use=(), forbid=HTTP_S3),
    "kura-index": CrateRule("index", may_use=("kura-backend",), forbid=HTTP_S3),
    # The S3 + admin HTTP server: no Kubernetes, no admin client.
    "kura-gateway": CrateRule(
        "gateway",
        may_use=("kura-index", "kura-backend"),
        forbid=("kube", "k8s-openapi", "kura-provisioner", "kura-admin-client"),
    ),
    "kura-admin-client": CrateRule(
        "admin-client", may_use=None, forbid=("kura-gateway", "kura-index", "kura-backend", "kube")
    ),
    "kura-provisioner": CrateRule(
        "k8s/provisioner",
        may_use=("kura-admin-client",),
        forbid=("kura-gateway", "kura-index", "kura-backend"),
    ),
    "kura": CrateRule("cli", may_use=None),  # the binary: the top, uses everything
    "kura-conformance": CrateRule("conformance", may_use=None),
}
# Top-level packages: nothing else in the workspace may depend on them.
TOP_PACKAGES = ("kura", "kura-conformance")

# Target kinds that are crates of the product (tests/benches/examples/build.rs are not).
PRODUCT_TARGET_KINDS = {"lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro", "bin"}


def _cargo(*args: str) -> str:
    try:
        return subprocess.run(
            ["cargo", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
        ).stdout
    except subprocess.CalledProcessError as e:
        pytest.fail(f"`cargo {' '.join(args)}` failed ({e.returncode}):\n{e.stderr}")


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------
# Rust source scanning (lexical: good enough for paths, no parser needed)
# --------------------------------------------------------------------------
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_LEX = re.compile(r"""//|/\*|(?<![A-Za-z0-9_])[bc]?r#*"|["']""")
_CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
_CFG_TEST_INNER = re.compile(r"#!\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
_PUB_IN = re.compile(r"\bpub\s*\(\s*in\b[^)]*\)")  # `pub(in crate::a)` is visibility, not use
_INLINE_MOD = re.compile(rf"(?<![\w$])mod\s+({IDENT})\s*\{{")
_MOD_DECL = re.compile(rf"(?<![\w$])mod\s+({IDENT})\s*;")
_PATH_ATTR = re.compile(
    rf"#\s*\[\s*path\s*=\s*([^\]]*)\]\s*(?:#\s*\[[^\]]*\]\s*)*(?:pub\s*(?:\([^)]*\))?\s*)?mod\s+({IDENT})\s*;"
)
_ITEM_KEYWORD = re.compile(
    r"(pub|mod|fn|use|impl|struct|enum|union|const|static|type|trait|extern|unsafe|async|macro_rules)\b"
)
_USE = re.compile(r"(?<![\w$#])use\b")
_USE_TOKEN = re.compile(rf"::|[{{}},*;]|\$?{IDENT}|\S")
# An expression/type path with at least one `::`.  Not preceded by `::` (middle of
# a longer path), `.` (method turbofish) or an identifier character.
_EXPR_PATH = re.compile(rf"(?<![\w$:.'])(\$?{IDENT})((?:\s*::\s*{IDENT})+)")


def _blank(chars: list[str], start: int, end: int) -> None:
    """Overwrite chars[start:end] with spaces, keeping newlines (line numbers stay right)."""
    for k in range(start, min(end, len(chars))):
        if chars[k] != "\n":
            chars[k] = " "


def strip_comments_and_literals(text: str) -> str:
    """Blank comments (nested /* */ too), string, raw string, byte and char
    literals, so that a `crate::x` inside them is no reference.  Same length
    and newlines as `text`, so offsets and line numbers carry over."""
    out = list(text)
    i, n = 0, len(text)
    while (m := _LEX.search(text, i)) is not None:
        i, tok = m.start(), m.group()
        if tok == "//":
            end = text.find("\n", i)
            end = n if end < 0 else end
        elif tok == "/*":  # Rust block comments nest
            depth, end = 0, i
            while end < n:
                if text.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif text.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                    if depth == 0:
                        break
                else:
                    end += 1
        elif tok.endswith('"') and "r" in tok:  # raw string: no escapes, ends at "###
            close = '"' + "#" * tok.count("#")
            end = text.find(close, m.end())
            end = n if end < 0 else end + len(close)
        elif tok == '"':  # also b"..", c"..": the prefix is just skipped as an identifier
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            end += 1
        else:  # "'": a char literal ('x', '"', '\n', '\u{..}') or a lifetime/label ('a)
            if text.startswith("\\", i + 1):
                end = text.find("'", i + 3) + 1 or n
            elif i + 2 < n and text[i + 2] == "'":
                end = i + 3
            else:
                i += 1  # lifetime: leave it, it is never followed by `::`
                continue
        _blank(out, i, end)
        i = end
    return "".join(out)


def _matching(code: str, open_pos: int) -> int:
    """Index just past the bracket that closes the one at open_pos (code is stripped)."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    stack = []
    for k in range(open_pos, len(code)):
        c = code[k]
        if c in pairs:
            stack.append(pairs[c])
        elif stack and c == stack[-1]:
            stack.pop()
            if not stack:
                return k + 1
    return len(code)


def _item_end(code: str, pos: int) -> int:
    """End of what an attribute at pos applies to: an item ends at its `;` or its
    `{...}` block; a field, arm or argument also at `,`; and nothing runs past the
    `}` that closes the enclosing block."""
    k = pos
    while k < len(code) and (code[k].isspace() or code[k] == "#"):  # more attributes
        k = _matching(code, k + 1) if code[k] == "#" else k + 1
    is_item = _ITEM_KEYWORD.match(code, k) is not None  # `fn f<A, B>` has commas
    while k < len(code):
        c = code[k]
        if c in "([":
            k = _matching(code, k)  # (...)/[...] in a signature or type
        elif c == ";" or (c == "," and not is_item):
            return k + 1
        elif c == "{":
            return _matching(code, k)
        elif c == "}":
            return k
        else:
            k += 1
    return k


def prepare_source(text: str) -> str:
    """Source reduced to what can create a module reference: comments and literals
    blanked, and every item under `#[cfg(test)]` blanked (the attribute up to the
    item's `;` or closing brace: `mod tests {..}`, `mod test_support {..}`, a
    test-only `use` or fn) -- test code may use anything, it is not architecture.
    This is finer than cutting the file at `#[cfg(test)] mod tests`: code after
    the test module still counts, and other test-only items do not."""
    code = strip_comments_and_literals(text)
    if _CFG_TEST_INNER.search(code):  # `#![cfg(test)]`: the whole file is test-only
        return re.sub(r"[^\n]", " ", code)
    out = list(code)
    for m in _CFG_TEST.finditer(code):
        _blank(out, m.start(), _item_end(code, m.end()))
    for m in _PUB_IN.finditer(code):
        _blank(out, m.start(), m.end())
    return "".join(out)


# --------------------------------------------------------------------------
# The module graph of one crate
# --------------------------------------------------------------------------
ModPath = tuple[str, ...]  # ("crate", "s3", "bucket")


def _fmt(mp: ModPath) -> str:
    return "::".join(mp)


@dataclass
class _SourceFile:
    path: Path
    code: str
    scopes: list[tuple[int, int, ModPath]]  # (start, end, module); the file module first

    def scope_at(self, pos: int) -> ModPath:
        # Inline modules were appended outer before inner: the last span that holds pos wins.
        return [mp for start, end, mp in self.scopes if start <= pos < end][-1]

    def line(self, pos: int) -> int:
        return self.code.count("\n", 0, pos) + 1


def _load_modules(root_file: Path) -> tuple[list[_SourceFile], dict[ModPath, set[str]]]:
    """Follow `mod` declarations from the crate root the way rustc does (name.rs or
    name/mod.rs, `#[path]`, inline `mod x { .. }` blocks), so that files no crate
    compiles are not scanned and test-only modules are left out."""
    files: list[_SourceFile] = []
    children: dict[ModPath, set[str]] = defaultdict(set)
    todo: list[tuple[ModPath, Path, bool]] = [(("crate",), root_file, True)]
    while todo:
        modpath, path, mod_rs = todo.pop()
        raw = path.read_text(encoding="utf-8")
        code = prepare_source(raw)
        src = _SourceFile(path, code, [(0, len(code) + 1, modpath)])
        for m in _INLINE_MOD.finditer(code):
            parent = src.scope_at(m.start())
            children[parent].add(m.group(1))
            src.scopes.append((m.end() - 1, _matching(code, m.end() - 1), parent + (m.group(1),)))
        # A non-mod-rs file a.rs keeps its children in a/; inline modules add a level each.
        base = path.parent if mod_rs else path.parent / path.stem
        path_attrs = {
            m.end(): raw[m.start(1) : m.end(1)].strip().strip('"') for m in _PATH_ATTR.finditer(code)
        }
        for m in _MOD_DECL.finditer(code):
            parent = src.scope_at(m.start())
            name = m.group(1)
            folder = base.joinpath(*parent[len(modpath) :])
            if m.end() in path_attrs:  # relative to the file's folder (or the inline module's)
                attr = path_attrs[m.end()]
                cands = [(path.parent if parent == modpath else folder) / attr]
            else:
                cands = [folder / f"{name}.rs", folder / name / "mod.rs"]
            found = next((c for c in cands if c.is_file()), None)
            if found is None:
                raise FileNotFoundError(
                    f"{_rel(path)}:{src.line(m.start())}: `mod {name};` but none of "
                    f"{', '.join(_rel(c) for c in cands)} exists"
                )
            children[parent].add(name)
            is_mod_rs = found.name == "mod.rs" or m.end() in path_attrs
            todo.append((parent + (name,), found, is_mod_rs))
        files.append(src)
    return files, children


def _parse_use_tree(toks: list[tuple[str, int]], i: int, prefix: list[str]):
    """Parse one use-tree at toks[i]; returns ([(segments, alias, pos)], next index).
    A glob `a::*` yields (a, None); `a::{self}` yields (a, "a")."""
    segs = list(prefix)
    if toks[i][0] == "::":  # `use ::name`: always an external crate
        segs, i = segs + ["::"], i + 1
    while True:
        tok, pos = toks[i]
        if tok == "{":
            leaves, i = [], i + 1
            while toks[i][0] != "}":
                sub, i = _parse_use_tree(toks, i, segs)
                leaves += sub
                if toks[i][0] == ",":
                    i += 1
                elif toks[i][0] != "}":
                    raise ValueError(tok)
            return leaves, i + 1
        if tok == "*":
            return [(segs, None, pos)], i + 1
        if not re.fullmatch(rf"\$?{IDENT}", tok):
            raise ValueError(tok)
        segs, i = segs + [tok], i + 1
        if toks[i][0] == "::":
            i += 1
            continue
        alias = tok
        if toks[i][0] == "as":
            alias, i = toks[i + 1][0], i + 2
        if tok == "self":  # `b::{self}` imports b itself
            segs = segs[:-1]
            alias = segs[-1] if alias == "self" and segs else alias
        return [(segs, None if alias == "_" else alias, pos)], i


def _use_declarations(code: str):
    """Yield (start, end, leaves) of each parsable `use ...;` in stripped code.  One
    that does not parse (e.g. macro syntax) is left to the expression scan."""
    for m in _USE.finditer(code):
        end = code.find(";", m.end())
        if end < 0:
            continue
        toks = [(t.group(), t.start()) for t in _USE_TOKEN.finditer(code, m.end(), end + 1)]
        try:
            leaves, k = _parse_use_tree(toks, 0, [])
            if toks[k][0] != ";":
                continue
        except (ValueError, IndexError):
            continue
        yield m.start(), end + 1, leaves


# Per module: the names its `use` declarations bind -> (module it leads to, is that module).
Bindings = dict[ModPath, dict[str, tuple[ModPath, bool]]]


def _resolve(segs, scope: ModPath, modules: set[ModPath], children, bindings: Bindings):
    """(module the path lands in, whether the whole path is that module), or None
    for paths outside the crate (std::, other crates, types, ...)."""
    if not segs:
        return None
    head, rest = segs[0], list(segs[1:])
    if head in ("crate", "$crate"):
        base = ("crate",)
    elif head in ("self", "super"):
        base, rest = scope, list(segs)
    elif head in children.get(scope, ()):  # 2018 paths: a child module is in scope
        base, rest = scope, list(segs)
    elif bindings.get(scope, {}).get(head, (0, False))[1]:  # `use crate::s3;` then `s3::x`
        base = bindings[scope][head][0]
    else:
        return None
    while rest and rest[0] in ("self", "super"):
        if rest.pop(0) == "super":
            if len(base) < 2:
                return None
            base = base[:-1]
    target, followed = base, set()
    while rest:
        if target + (rest[0],) in modules:  # the LONGEST known module prefix
            target += (rest.pop(0),)
        elif rest[0] in bindings.get(target, {}) and target not in followed:
            # A name `target` only imports (`pub use error::Result` in lib.rs): the
            # item lives where that import leads, so the path depends on that module.
            followed.add(target)
            target, is_module = bindings[target][rest.pop(0)]
            if not is_module:
                return target, False
        else:
            break
    return target, not rest


Edges = dict[tuple[ModPath, ModPath], tuple[Path, int]]


def module_edges(root_file: Path) -> Edges:
    """Module-to-module references of the crate rooted at root_file, each with
    one (file, line) where it happens.  Rules: see find_module_cycles."""
    files, children = _load_modules(Path(root_file))
    modules = {mp for f in files for _, _, mp in f.scopes}
    uses = {id(f): list(_use_declarations(f.code)) for f in files}

    # What each `use` binds, so that `s3::bucket::f()` after `use crate::s3;` resolves
    # and paths through a re-export reach the defining module.  Imports can chain: a
    # few rounds.
    bindings: Bindings = defaultdict(dict)
    for _ in range(3):
        for f in files:
            for start, _, leaves in uses[id(f)]:
                scope = f.scope_at(start)
                for segs, alias, _ in leaves:
                    r = _resolve(segs, scope, modules, children, bindings)
                    if alias and r:
                        bindings[scope][alias] = r

    edges: Edges = {}

    def add(src: _SourceFile, pos: int, segs) -> None:
        scope = src.scope_at(pos)
        r = _resolve(segs, scope, modules, children, bindings)
        if r and r[0] != scope:
            where, key = (src.path, src.line(pos)), (scope, r[0])
            if key not in edges or where < edges[key]:  # keep the first line
                edges[key] = where

    for f in files:
        code = list(f.code)
        for start, end, leaves in uses[id(f)]:
            for segs, _, pos in leaves:
                add(f, pos, segs)
            _blank(code, start, end)  # so the expression scan does not see it again
        code = "".join(code)
        for m in _EXPR_PATH.finditer(code):
            segs = [m.group(1)] + re.findall(IDENT, m.group(2))
            add(f, m.start(), segs)
    return edges


@dataclass
class ModuleCycle:
    modules: list[ModPath]  # one strongly connected component, sorted
    example: list[ModPath]  # one concrete cycle through modules[0], first == last
    edges: list[tuple[ModPath, ModPath, Path, int]]  # every edge inside the component

    def describe(self) -> str:
        lines = [" -> ".join(map(_fmt, self.example))]
        lines += [f"    {_fmt(a)} -> {_fmt(b)}    {_rel(p)}:{n}" for a, b, p, n in self.edges]
        return "\n".join(lines)


def _strongly_connected(nodes, succ) -> list[list]:
    """Tarjan's algorithm, iterative (no recursion limit)."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(sorted(succ[root])))]
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(succ[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while not comp or comp[-1] != v:
                        comp.append(stack.pop())
                        on_stack.discard(comp[-1])
                    comps.append(comp)
    return comps


def find_module_cycles(root_file: Path) -> list[ModuleCycle]:
    """Module cycles of the crate whose root file (src/lib.rs, src/main.rs) is given.

    Modules: the crate root is `crate`; `mod a;` loads a.rs or a/mod.rs as `crate::a`
    (`#[path]` honoured), `a/b.rs` is `crate::a::b`; inline `mod x { .. }` blocks are
    modules too.  Anything under `#[cfg(test)]` (mod tests, test helpers, test-only
    uses) is ignored, and so are comments and string/char literals.

    Edges M -> N, where M is the module a reference is written in and N the LONGEST
    known module prefix of the referenced path:
      * every leaf of a `use` tree, nested braces and all (`use crate::{a::X, b::{self, Y}}`),
        `pub use` re-exports included (a parent's `pub use child::Z` is parent -> child);
      * every path with `::` in code: `crate::metrics::METRICS.inc()`, `super::foo::bar()`;
      * paths start with `crate::`/`$crate::`, `self::`, `super::` (repeatable, relative
        to M), a child module of M (`bucket::list_buckets()`), or a name M imported
        with `use` that is a module (`use crate::s3;` then `s3::bucket::f()`).
      * `super::Item` with Item defined in the parent file is child -> parent; but a
        name the parent only imports (`pub use error::Result` in lib.rs, then
        `crate::Result` in a child) leads on to the module the import names.
    Not edges: a reference of M to itself, the `mod child;` declaration, `pub(in path)`
    visibility, other crates' paths.  Not seen: names reached only through a glob
    import (`use super::*; x::f()`), paths built by macros, paths in string attributes.

    Returns one ModuleCycle per strongly connected component of more than one module.
    """
    edges = module_edges(root_file)
    succ = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    cycles = []
    for comp in _strongly_connected(sorted(set(succ) | {b for _, b in edges}), succ):
        if len(comp) < 2:
            continue
        members = sorted(comp)
        # Shortest cycle through the first member (BFS inside the component), as an example.
        start, prev, queue = members[0], {}, deque([members[0]])
        while queue:
            v = queue.popleft()
            if start in succ[v]:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                example = path[::-1] + [start]
                break
            for w in sorted(succ[v]):
                if w in comp and w not in prev and w != start:
                    prev[w] = v
                    queue.append(w)
        inner = sorted((a, b, *edges[a, b]) for a, b in edges if a in comp and b in comp)
        cycles.append(ModuleCycle(members, example, inner))
    return sorted(cycles, key=lambda c: c.modules)


# --------------------------------------------------------------------------
# Tests against the real workspace
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workspace() -> dict:
    """`cargo metadata --no-deps`: the workspace's own packages, nothing downloaded."""
    return json.loads(_cargo("metadata", "--format-version", "1", "--no-deps", "--offline"))


def _package(workspace: dict, name: str) -> dict:
    pkgs = {p["name"]: p for p in workspace["packages"]}
    if name not in pkgs:
        pytest.fail(
            f"package `{name}` is missing from the workspace (expected at "
            f"{CRATE_RULES[name].dir}/); workspace packages: {sorted(pkgs)}"
        )
    return pkgs[name]


def test_no_module_cycles(workspace):
    report = []
    for pkg in workspace["packages"]:
        roots = sorted(
            {t["src_path"] for t in pkg["targets"] if PRODUCT_TARGET_KINDS & set(t["kind"])}
        )
        for root in roots:
            for cycle in find_module_cycles(Path(root)):
                report.append(f"{pkg['name']} ({_rel(Path(root))}): {cycle.describe()}")
    assert not report, "module cycles (break them, e.g. move the shared item down):\n" + "\n".join(
        report
    )


@pytest.mark.parametrize("name", sorted(CRATE_RULES))
def test_crate_dependencies(workspace, name):
    rule = CRATE_RULES[name]
    pkg = _package(workspace, name)
    members = {p["name"] for p in workspace["packages"]}
    problems = []

    manifest_dir = Path(pkg["manifest_path"]).parent
    if manifest_dir != REPO_ROOT / rule.dir:
        problems.append(f"lives in {_rel(manifest_dir)}/, expected {rule.dir}/")

    # Declared normal dependencies, optional ones included (a feature must not sneak them in).
    declared = {d["name"] for d in pkg["dependencies"] if d["kind"] is None}
    if rule.may_use is not None:
        extra = sorted((declared & members) - set(rule.may_use))
        if extra:
            problems.append(f"depends on workspace crates {extra}; allowed: {list(rule.may_use)}")

    # Everything it pulls in (normal edges, host platform, default features).
    tree = _cargo("tree", "-e", "normal", "-p", name, "--offline", "--prefix", "none", "-f", "{p}")
    pulled = {line.split()[0] for line in tree.splitlines()[1:] if line.strip()} | declared
    forbidden = set(rule.forbid) | (set(TOP_PACKAGES) - {name})
    for bad in sorted(pulled & forbidden):
        # Only to explain the failure (which path pulls it in): no check=True here.
        why = subprocess.run(
            ["cargo", "tree", "-e", "normal", "-p", name, "-i", bad, "--offline"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        )
        problems.append(f"must not depend on `{bad}`, but does:\n{why.stdout or why.stderr}")
    assert not problems, f"package `{name}`:\n" + "\n".join(problems)


# --------------------------------------------------------------------------
# Self-tests of the cycle checker: it must be able to fail.
# --------------------------------------------------------------------------
def _fake_crate(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path / "lib.rs"


def _names(cycles: list[ModuleCycle]) -> list[list[str]]:
    return [[_fmt(m) for m in c.modules] for c in cycles]


def test_checker_finds_sibling_cycle(tmp_path):
    root = _fake_crate(tmp_path, {
        "lib.rs": "mod a;\nmod b;\n",
        "a.rs": "use crate::b::X;\npub struct Y;\n",
        "b.rs": "pub struct X;\nfn f() { let _ = super::a::Y; }\n",
    })
    cycles = find_module_cycles(root)
    assert _names(cycles) == [["crate::a", "crate::b"]]
    text = cycles[0].describe()
    assert f"crate::a -> crate::b    {tmp_path / 'a.rs'}:1" in text
    assert f"crate::b -> crate::a    {tmp_path / 'b.rs'}:2" in text


def test_checker_parent_child(tmp_path):
    # `mod c;` alone is no reference: c -> p only, no cycle.
    root = _fake_crate(tmp_path, {
        "lib.rs": "mod p;",
        "p/mod.rs": "mod c;\npub struct Item;\n",
        "p/c.rs": "use super::Item;\npub struct Z;\n",
    })
    assert find_module_cycles(root) == []
    assert set(module_edges(root)) == {(("crate", "p", "c"), ("crate", "p"))}
    # A re-export `pub use c::Z` is p -> c: now a cycle.
    (tmp_path / "p/mod.rs").write_text("mod c;\npub use c::Z;\npub struct Item;\n")
    assert _names(find_module_cycles(root)) == [["crate::p", "crate::p::c"]]


def test_checker_follows_reexports(tmp_path):
    # `crate::Result` is error's (a facade re-export): blob -> error, no cycle with the root.
    root = _fake_crate(tmp_path, {
        "lib.rs": "mod blob;\nmod error;\npub use blob::B;\npub use error::Result;\n",
        "blob.rs": "pub struct B;\npub fn f() -> crate::Result<()> { Ok(()) }\n",
        "error.rs": "pub type Result<T> = std::result::Result<T, ()>;\n",
    })
    assert find_module_cycles(root) == []
    assert (("crate", "blob"), ("crate", "error")) in module_edges(root)
    # An item defined in lib.rs itself is the root's: now blob <-> crate is a cycle.
    (tmp_path / "lib.rs").write_text("mod blob;\nmod error;\npub use blob::B;\ntype Result<T> = T;\n")
    assert _names(find_module_cycles(root)) == [["crate", "crate::blob"]]


def test_checker_ignores_comments_strings_and_tests(tmp_path):
    root = _fake_crate(tmp_path, {
        "lib.rs": "mod a;\nmod b;\nmod c;\n",
        "a.rs": "use crate::{b::{self, X}, c};\nfn f() { b::g(); }\n",
        "b.rs": (
            "pub struct X;\n"
            "// crate::a::Y\n/* crate::a::Y /* nested */ crate::a::Y */\n"
            "fn f<'a>(s: &'a str) -> char { let _ = \"crate::a::Y \\\" crate::a::Y\"; '\"' }\n"
            "fn h() -> &'static str { r#\"crate::a \"# }\n"
            "pub fn g() { crate::c::h() }\n"  # a real reference after all that
            "#[cfg(test)]\nmod tests {\n    use crate::a;\n    fn t() { super::super::a::f() }\n}\n"
        ),
        "c.rs": "pub fn h() {}\n",
    })
    assert find_module_cycles(root) == []
    edges = module_edges(root)
    assert set(edges) == {
        (("crate", "a"), ("crate", "b")),
        (("crate", "a"), ("crate", "c")),
        (("crate", "b"), ("crate", "c")),
    }
    assert edges[("crate", "b"), ("crate", "c")] == (tmp_path / "b.rs", 6)
