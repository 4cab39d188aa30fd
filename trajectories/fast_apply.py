"""Applying the plain kind of unified diff in memory, with `git apply`'s result.

`Lineage.apply_diff` runs `git apply --cached` (three git processes: read-tree,
apply, write-tree) for every proposal; at 10,000 trials that was the largest
share of recording a run. Nearly every proposal is the simplest kind of patch:
text hunks changing files that exist, every hunk matching exactly where its
header says. For that kind, `git apply` has exactly one possible result, and
this module computes it without a process. Anything else (new, deleted,
renamed or binary files, mode changes, quoted or timestamped names, a missing
final newline, a hunk that would need an offset, trailing garbage) returns None
and the caller asks git, which then also words any error.

Rules taken from git's `apply.c` that decide whether a patch of this kind
applies: header line counts must match the hunk body; a hunk starting at old
line 0 or 1 must match at the start of the file, and a hunk without trailing
context must match at its end; hunks come in order and do not overlap; a name
is `a/<path>` / `b/<path>` (`-p1`) of a regular file of the parent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

_HUNK_RE = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(?: .*)?$")
_INDEX_RE = re.compile(rb"^index [0-9a-f]{7,40}\.\.[0-9a-f]{7,40}(?: (100644|100755))?$")
REGULAR_MODES = ("100644", "100755")


@dataclass
class _Hunk:
    old_start: int
    old_lines: list[bytes] = field(default_factory=list)
    new_lines: list[bytes] = field(default_factory=list)
    leading: int = 0
    trailing: int = 0


@dataclass
class _FilePatch:
    path: str
    mode: str | None
    """The mode an `index` line names, if any (it must be the file's)."""
    hunks: list[_Hunk] = field(default_factory=list)


class _NotPlain(Exception):
    """The patch is not of the plain kind: leave it to git."""


def _name(line: bytes, prefix: bytes, side: bytes) -> str:
    rest = line[len(prefix) :]
    if not rest.startswith(side) or b"\t" in rest or b'"' in rest or rest.endswith(b" "):
        raise _NotPlain
    path = rest[len(side) :].decode("utf-8", "surrogateescape")
    if not path or path.startswith("/") or any(p in ("", ".", "..", ".git") for p in path.split("/")):
        raise _NotPlain
    return path


def _parse(data: bytes) -> list[_FilePatch]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    else:
        raise _NotPlain
    patches: list[_FilePatch] = []
    i = 0
    while i < len(lines):
        git_path = None
        index_mode: bytes | None = None
        if lines[i].startswith(b"diff --git "):
            head = lines[i][len(b"diff --git ") :]
            half = (len(head) - 1) // 2
            if len(head) % 2 == 0 or head[half : half + 1] != b" ":
                raise _NotPlain
            git_path = _name(b"x" + head[:half], b"x", b"a/")
            if _name(b"x" + head[half + 1 :], b"x", b"b/") != git_path:
                raise _NotPlain
            i += 1
            index = _INDEX_RE.match(lines[i]) if i < len(lines) else None
            if index is not None:
                index_mode = index[1]
                i += 1
        if i + 1 >= len(lines) or not lines[i].startswith(b"--- ") or not lines[i + 1].startswith(b"+++ "):
            raise _NotPlain
        path = _name(lines[i], b"--- ", b"a/")
        if _name(lines[i + 1], b"+++ ", b"b/") != path or (git_path is not None and git_path != path):
            raise _NotPlain
        patch = _FilePatch(path, None if index_mode is None else index_mode.decode())
        i += 2
        while i < len(lines) and lines[i].startswith(b"@@ "):
            i = _parse_hunk(lines, i, patch)
        if not patch.hunks:
            raise _NotPlain
        patches.append(patch)
    if not patches or len({p.path for p in patches}) != len(patches):
        raise _NotPlain
    return patches


def _parse_hunk(lines: list[bytes], i: int, patch: _FilePatch) -> int:
    match = _HUNK_RE.match(lines[i])
    if match is None:
        raise _NotPlain
    old_start, old_count = int(match[1]), int(match[2] if match[2] is not None else 1)
    new_count = int(match[4] if match[4] is not None else 1)
    hunk = _Hunk(old_start)
    i += 1
    old_seen = new_seen = 0
    changed = False
    while old_seen < old_count or new_seen < new_count:
        if i >= len(lines) or not lines[i]:
            raise _NotPlain  # a short hunk, or a bare empty line (git reads it as context; leave that to git)
        kind, text = lines[i][:1], lines[i][1:] + b"\n"
        if kind == b" ":
            hunk.old_lines.append(text)
            hunk.new_lines.append(text)
            old_seen += 1
            new_seen += 1
            if changed:
                hunk.trailing += 1
            else:
                hunk.leading += 1
        elif kind in (b"-", b"+"):
            changed = True
            hunk.trailing = 0  # context between two changes is neither leading nor trailing
            (hunk.old_lines if kind == b"-" else hunk.new_lines).append(text)
            if kind == b"-":
                old_seen += 1
            else:
                new_seen += 1
        else:
            raise _NotPlain
        i += 1
    if old_seen != old_count or new_seen != new_count or not changed:
        raise _NotPlain
    if old_count == 0 and old_start == 0:
        raise _NotPlain
    patch.hunks.append(hunk)
    return i


def _apply_file(content: bytes, hunks: list[_Hunk]) -> bytes:
    if not content.endswith(b"\n"):
        raise _NotPlain
    old = content.split(b"\n")[:-1]
    old = [line + b"\n" for line in old]
    out: list[bytes] = []
    pos = 0
    for hunk in hunks:
        start = hunk.old_start - 1 if hunk.old_lines else hunk.old_start
        end = start + len(hunk.old_lines)
        if start < pos or end > len(old) or old[start:end] != hunk.old_lines:
            raise _NotPlain  # git may still find it at an offset, or refuse it: its call
        if hunk.old_start <= 1 and start != 0:
            raise _NotPlain
        if hunk.trailing == 0 and end != len(old):
            raise _NotPlain
        out.extend(old[pos:start])
        out.extend(hunk.new_lines)
        pos = end
    out.extend(old[pos:])
    result = b"".join(out)
    if not result:
        raise _NotPlain
    return result


def apply_plain(
    diff: bytes, files: Mapping[str, tuple[str, str]], read_blob: Callable[[str], bytes]
) -> dict[str, bytes] | None:
    """The new contents (path -> bytes) of the files `diff` changes, or None when the
    diff is not of the plain kind (see the module docstring) and git must apply it.

    `files` is the parent's listing (path -> (mode, blob sha)); `read_blob` reads a blob."""
    try:
        patches = _parse(diff)
        result = {}
        for patch in patches:
            entry = files.get(patch.path)
            if entry is None or entry[0] not in REGULAR_MODES or patch.mode not in (None, entry[0]):
                return None
            result[patch.path] = _apply_file(read_blob(entry[1]), patch.hunks)
        return result
    except _NotPlain:
        return None


def build_tree(files: Mapping[str, tuple[str, str]], store_tree: Callable[[list[tuple[str, str, str]]], str]) -> str:
    """Root tree id of a flat listing (path -> (mode, sha)); `store_tree` encodes, hashes and
    (if it wants) writes one tree from its (mode, name, sha) entries and returns its id."""
    root: dict = {}
    for path, (mode, sha) in files.items():
        *folders, name = path.split("/")
        node = root
        for folder in folders:
            node = node.setdefault(folder, {})
            if not isinstance(node, dict):
                raise ValueError(f"{path}: a file and a folder share a name")
        node[name] = (mode, sha)

    def store(node: dict) -> str:
        entries = []
        for name, value in node.items():
            if isinstance(value, dict):
                entries.append(("40000", name, store(value)))
            else:
                entries.append((value[0], name, value[1]))
        return store_tree(entries)

    return store(root)
