"""The in-memory applier gives `git apply --cached`'s result, or leaves the patch to git.

Property: for every patch, `apply_plain` either returns None, or returns exactly
the contents git writes for it (and git accepts the patch). Patches come from a
seeded generator: edits of a few files, made with 0 to 3 context lines, as git
or plain `---`/`+++` patches, some against a shifted copy (git needs an offset),
some with wrong context, some on files without a final newline or with CRLF lines.
"""

from __future__ import annotations

import difflib
import random
import subprocess
from pathlib import Path

import pytest

from trajectories._git import git_env
from trajectories.fast_apply import apply_plain

FILES = {
    "config.py": "".join(f"KNOB_{i} = {i}\n" for i in range(40)),
    "src/model.py": "".join(f"    layer_{i} = Linear({i}, {i + 1})\n" for i in range(25)) + "\n\nreturn x\n",
    "crlf.txt": "".join(f"row {i}\r\n" for i in range(12)),
    "short.txt": "one\ntwo\n",
    "no_newline.txt": "alpha\nbeta\ngamma",
}


def _git(repo: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, env=git_env(repo / ".git"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("fast-apply")
    assert _git(repo, "init", "-q").returncode == 0
    for path, text in FILES.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(text.encode())
    assert _git(repo, "add", "-A").returncode == 0
    assert _git(repo, "commit", "-q", "-m", "base").returncode == 0
    return repo


def listing(repo: Path) -> dict[str, tuple[str, str]]:
    out = _git(repo, "ls-tree", "-r", "HEAD").stdout.decode()
    files = {}
    for line in out.splitlines():
        meta, path = line.split("\t")
        mode, _kind, sha = meta.split()
        files[path] = (mode, sha)
    return files


def git_result(repo: Path, patch: bytes) -> dict[str, bytes] | None:
    """Contents of every file after `git apply --cached` (None when git refuses)."""
    assert _git(repo, "read-tree", "HEAD").returncode == 0
    if _git(repo, "apply", "--cached", "--whitespace=nowarn", "-p1", "-", input=patch).returncode != 0:
        return None
    return {path: _git(repo, "show", f":{path}").stdout for path in listing_of_index(repo)}


def listing_of_index(repo: Path) -> list[str]:
    return _git(repo, "ls-files").stdout.decode().splitlines()


def random_patch(rng: random.Random) -> bytes:
    path = rng.choice(sorted(FILES))
    old = FILES[path]
    lines = old.splitlines(keepends=True)
    new = list(lines)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(new) + 1)
        action = rng.choice(["replace", "insert", "delete"])
        if action == "replace" and at < len(new):
            new[at] = f"EDITED = {rng.randint(0, 99)}\n"
        elif action == "delete" and at < len(new) and len(new) > 1:
            del new[at]
        else:
            new.insert(at, f"ADDED = {rng.randint(0, 99)}\n")
    base = lines
    if rng.random() < 0.15:  # made against a shifted copy: git needs an offset
        base = ["# header\n"] + lines
        new = ["# header\n"] + new
    if rng.random() < 0.1 and len(base) > 3:  # wrong context: git refuses
        base = list(base)
        base[rng.randrange(len(base))] = "NOT IN THE FILE\n"
    context = rng.choice([0, 1, 3, 3, 3])
    body = "".join(difflib.unified_diff(base, new, f"a/{path}", f"b/{path}", n=context, lineterm="\n"))
    if not body:
        return b""
    header = f"diff --git a/{path} b/{path}\n" if rng.random() < 0.6 else ""
    return (header + body).encode()


def test_fast_apply_agrees_with_git_apply(repo: Path) -> None:
    rng = random.Random(20261203)
    files = listing(repo)

    def read_blob(sha: str) -> bytes:
        return _git(repo, "cat-file", "blob", sha).stdout

    fast_count = 0
    for _ in range(200):
        patch = random_patch(rng)
        if not patch:
            continue
        fast = apply_plain(patch, files, read_blob)
        if fast is None:
            continue
        fast_count += 1
        expected = git_result(repo, patch)
        assert expected is not None, f"git refuses a patch applied in memory:\n{patch.decode()}"
        whole = {path: read_blob(sha) for path, (_mode, sha) in files.items()}
        whole.update(fast)
        assert whole == expected, patch.decode()
    assert fast_count >= 60  # the plain kind is the common one


@pytest.mark.parametrize(
    "patch",
    [
        "--- a/config.py\n+++ b/config.py\n@@ -1,2 +1,2 @@\n-NOT_THERE = 1\n+X = 2\n KNOB_1 = 1\n",  # git refuses
        "--- a/config.py\n+++ b/config.py\n@@ -3,2 +3,2 @@\n-KNOB_1 = 1\n+X = 2\n KNOB_2 = 2\n",  # needs an offset
        "--- a/config.py\n+++ b/config.py\n@@ -1,2 +1,2 @@\n-KNOB_0 = 0\n+X = 2\n",  # counts do not match
        "--- a/missing.py\n+++ b/missing.py\n@@ -1 +1 @@\n-a\n+b\n",  # no such file
        "diff --git a/n.py b/n.py\nnew file mode 100644\n--- /dev/null\n+++ b/n.py\n@@ -0,0 +1 @@\n+x\n",
        "--- a/no_newline.txt\n+++ b/no_newline.txt\n@@ -1,3 +1,3 @@\n-alpha\n+ALPHA\n beta\n gamma\n"
        "\\ No newline at end of file\n",
        "--- a/config.py\t2026-01-01\n+++ b/config.py\t2026-01-01\n@@ -1 +1 @@\n-KNOB_0 = 0\n+X = 1\n",
        "--- a/config.py\n+++ b/config.py\n@@ -1,1 +1,1 @@\n-KNOB_0 = 0\n+X = 1\ngarbage after the hunk\n",
        "--- a/short.txt\n+++ b/short.txt\n@@ -1,1 +1,1 @@\n-one\n+ONE\n",  # no trailing context, not at the end
        "diff --git a/config.py b/config.py\nold mode 100644\nnew mode 100755\n",
        "this is not a diff\n",
    ],
)
def test_other_patches_are_left_to_git(repo: Path, patch: str) -> None:
    files = listing(repo)
    assert apply_plain(patch.encode(), files, lambda sha: _git(repo, "cat-file", "blob", sha).stdout) is None
