"""Bulk reads of a lineage for its verification: a handful of git processes for a whole run.

`git cat-file --batch` reads many objects, `git diff-tree --stdin` diffs many
pairs of trees, each in one process. `ahead()` runs such reads for the next
slices of the ledger in a background thread while the caller checks the slice
before: git works on the other core while Python checks records (the thread
mostly waits on git's output, so it hardly competes for the interpreter).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from ._git import SHA_RE, Git
from .lineage import DIFF_ARGS

_PAIR_RE = re.compile(rb"^([0-9a-f]{40}) ([0-9a-f]{40})\n$")
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Change:
    """One changed path between two trees (`git diff-tree -r --raw`)."""

    old_mode: str
    new_mode: str
    old_sha: str
    new_sha: str
    status: str
    path: str


def read_blobs(git: Git, shas: list[str]) -> dict[str, bytes | None]:
    """Content of each blob (None when missing or not a blob), one `cat-file --batch`."""
    todo = [s for s in dict.fromkeys(shas) if SHA_RE.match(s)]
    return {sha: obj[1] if obj is not None and obj[0] == "blob" else None for sha, obj in git.cat_batch(todo).items()}


def raw_diffs(git: Git, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], list[Change]]:
    """Changed files per (tree, tree) pair, via one `git diff-tree --stdin`."""
    todo = list(dict.fromkeys(p for p in pairs if p[0] != p[1]))
    result: dict[tuple[str, str], list[Change]] = {p: [] for p in pairs}
    if not todo:
        return result
    stdin = "".join(f"{a} {b}\n" for a, b in todo).encode()
    out = git.run("diff-tree", "--stdin", "-r", "-z", "--no-renames", "--no-abbrev", input=stdin, spool=True).stdout
    pos = 0
    key: tuple[str, str] | None = None
    while pos < len(out):
        if out[pos : pos + 1] == b":":
            meta_end = out.index(b"\0", pos)
            path_end = out.index(b"\0", meta_end + 1)
            om, nm, osha, nsha, status = out[pos + 1 : meta_end].decode().split(" ")
            path = out[meta_end + 1 : path_end].decode("utf-8", "surrogateescape")
            assert key is not None
            result[key].append(Change(om, nm, osha, nsha, status[:1], path))
            pos = path_end + 1
        else:
            nl = out.index(b"\n", pos)
            a, b = out[pos:nl].decode().split(" ")
            key = (a, b)
            result.setdefault(key, [])
            pos = nl + 1
    return result


def patches(git: Git, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Canonical diff text per (tree, tree) pair, via one `git diff-tree --stdin -p`."""
    todo = list(dict.fromkeys(p for p in pairs if p[0] != p[1]))
    result = {p: "" for p in pairs}
    if not todo:
        return result
    stdin = "".join(f"{a} {b}\n" for a, b in todo).encode()
    out = git.run("diff-tree", "--stdin", *DIFF_ARGS, input=stdin, spool=True).stdout
    chunks: dict[tuple[str, str], list[bytes]] = {}
    current: list[bytes] | None = None
    for line in out.splitlines(keepends=True):
        m = _PAIR_RE.match(line)
        if m:
            current = chunks.setdefault((m.group(1).decode(), m.group(2).decode()), [])
        elif current is not None:
            current.append(line)
    for key, lines in chunks.items():
        result[key] = b"".join(lines).decode("utf-8", "surrogateescape")
    return result


def ahead(slices: list[T], read: Callable[[T], R]) -> Iterator[tuple[T, R]]:
    """(slice, read(slice)) in order, the reads running in a background thread ahead of the caller.

    An exception of a read is raised when its slice is reached; leaving the loop early waits for
    the read under way, and the ones not started are cancelled."""
    with ThreadPoolExecutor(1, thread_name_prefix="verify-read") as pool:
        futures = [pool.submit(read, piece) for piece in slices]
        try:
            for piece, future in zip(slices, futures):
                yield piece, future.result()
        finally:
            for future in futures:
                future.cancel()
