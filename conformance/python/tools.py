"""Helpers for the command-line client tests (aws CLI, rclone, s3cmd) and the
crash test: running clients as subprocesses with bounded time and readable
failures, deterministic test files and directory trees, tree comparison.

Kept apart from conftest.py (the server harness); import both:

    from conftest import KuraServer
    from tools import run, aws_cmd, make_tree, tree_digests
"""

from __future__ import annotations

import hashlib
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

# Files of a test tree: relative path -> size. Nested directories, names with
# spaces, unicode (NFC), '+', '=', ',', '@', '&', an empty file, a dot-file, and
# files big enough to be uploaded in several parts by clients whose multipart
# threshold is small.
BASE_TREE: "dict[str, int]" = {
    "top.txt": 1000,
    "empty.bin": 0,
    ".hidden": 17,
    "dir one/file with spaces.txt": 2049,
    "dir one/nested/deeper/deepest.dat": 70_000,
    "dir one/nested/plus+sign.txt": 12,
    "ünïcödé/日本語 ファイル.txt": 4096,
    "ünïcödé/emoji-\U0001F600.bin": 333,
    "ünïcödé/Ελληνικά/αρχείο.md": 1,
    "misc/a=b,c@d&e.txt": 100,
    "misc/parens (1).txt": 55,
    "z/last": 65_537,
}

# Extra names that only some clients handle (kept out of BASE_TREE).
AWS_EXTRA_TREE: "dict[str, int]" = {
    "misc/percent%20literal.txt": 21,
    "misc/tilde~and;semicolon.txt": 8,
    "misc/brackets[1]{2}.txt": 9,
}


def venv_bin(name: str) -> str:
    """Path of a console script of the Python running the tests (the venv that
    scripts/test made), else whatever is on PATH."""
    cand = Path(sys.executable).parent / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"`{name}` not found next to {sys.executable} nor on PATH "
                "(run scripts/test, which installs it)", pytrace=False)
    raise AssertionError  # unreachable


def require_tool(name: str) -> str:
    """An external program from PATH; the test fails (not skips) when it is
    missing, because scripts/test installs it."""
    p = shutil.which(name)
    if not p:
        pytest.fail(f"`{name}` is not installed (scripts/test installs it with apt-get)",
                    pytrace=False)
    return p  # type: ignore[return-value]


@dataclass
class Result:
    cmd: "list[str]"
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        def cut(s: str, n: int = 6000) -> str:
            bad = sum(1 for c in s[:4096] if c == "\ufffd" or (not c.isprintable() and c not in "\n\t"))
            if bad > 16:
                return f"<{len(s)} characters of binary output>"
            return s if len(s) <= n else s[:n // 2] + "\n...[cut]...\n" + s[-n // 2:]
        return (f"$ {shlex.join(self.cmd)}\nexit code: {self.returncode}\n"
                f"--- stdout ---\n{cut(self.stdout)}\n--- stderr ---\n{cut(self.stderr)}")


def run(cmd: "list[str]", env: "dict[str, str] | None" = None, *, timeout: float = 300,
        check: bool = True, cwd: "str | os.PathLike | None" = None,
        input: "bytes | None" = None) -> Result:
    """Run a client command with a time limit. check=True fails the test, showing
    the command, exit code, stdout and stderr, when the exit code is not 0."""
    try:
        p = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True,
                           timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        err = (e.stderr or b"").decode(errors="replace")
        pytest.fail(f"timed out after {timeout}s: {shlex.join([str(c) for c in cmd])}\n"
                    f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}", pytrace=False)
    res = Result([str(c) for c in cmd], p.returncode,
                 p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))
    if check and res.returncode != 0:
        pytest.fail("client command failed\n" + res.describe(), pytrace=False)
    return res


def utf8_env(env: "dict[str, str]") -> "dict[str, str]":
    """Make sure child Pythons (aws, s3cmd) use UTF-8 for file names and output."""
    env = dict(env)
    env.setdefault("LANG", "C.UTF-8")
    env["LC_ALL"] = env.get("LC_ALL") or "C.UTF-8"
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUTF8"] = "1"
    return env


# ------------------------------------------------------------------ data
def det_bytes(seed: "str | bytes", size: int) -> bytes:
    """`size` pseudo-random bytes that depend only on `seed`."""
    if isinstance(seed, str):
        seed = seed.encode()
    r = random.Random(int.from_bytes(hashlib.sha256(seed).digest()[:16], "big"))
    return r.randbytes(size)


def write_det_file(path: Path, size: int, seed: "str | None" = None,
                   chunk: int = 8 << 20) -> str:
    """Write a deterministic file of `size` bytes in chunks; returns its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    seed = seed if seed is not None else path.name
    with open(path, "wb") as f:
        done, i = 0, 0
        while done < size:
            n = min(chunk, size - done)
            block = det_bytes(f"{seed}/{i}", n)
            f.write(block)
            h.update(block)
            done += n
            i += 1
    return h.hexdigest()


def sha256_file(path: "str | os.PathLike") -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def md5_file(path: "str | os.PathLike") -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def make_tree(root: Path, files: "dict[str, int] | None" = None) -> "dict[str, str]":
    """Create a directory tree of deterministic files; returns relpath -> sha256."""
    files = BASE_TREE if files is None else files
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for rel, size in files.items():
        out[rel] = write_det_file(root / rel, size, seed=rel)
    return out


def tree_digests(root: Path) -> "dict[str, str]":
    """relpath (with '/') -> sha256 of every regular file below root."""
    out = {}
    root = Path(root)
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            out[p.relative_to(root).as_posix()] = sha256_file(p)
    return out


def assert_same_tree(expected: "dict[str, str]", actual_root: Path, what: str = "") -> None:
    actual = tree_digests(actual_root)
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    differ = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    assert not (missing or extra or differ), (
        f"tree mismatch {what}: missing={missing} extra={extra} content differs={differ}")


def wait_for(what: str, check, timeout: float = 30.0, interval: float = 0.5):
    """Poll check() until it returns something truthy (returned), or fail after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def browser_output(url: str, work_dir: Path) -> dict:
    """Loads `url` in headless Chromium (a fresh profile, so nothing cached answers for
    Kura), lets its scripts run, and returns the JSON the page wrote into its
    `<pre id="out">` element."""
    import json
    import re
    import tempfile

    r = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tempfile.mkdtemp(dir=work_dir)}", "--virtual-time-budget=15000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="out">(.*?)</pre>', r.stdout, re.S)
    assert match and match.group(1) != "pending", f"page did not finish:\n{r.stdout}\n{r.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
