"""Content hashes of folders: protected-file checks after a run, evaluator digests.

`file_hashes` maps each file's relative posix path to a value that changes
whenever the file's bytes, its executable bit or its kind changes:

- regular file: its sha256 (hex), prefixed `exec:` when the owner exec bit is set;
- symlink: `symlink:` + sha256 of the link target (never followed);
- anything else (fifo, socket, device): `special:<kind>`;
- a file that cannot be read: `unreadable:<error>`.

`changed_files` counts every symlink, special or unreadable entry in `after` as
changed, even when `before` holds the same value, so a symlink standing where a
protected file was is always caught. Folders named `__pycache__` are skipped.
Nothing here raises on what a trial left behind (an unreadable folder simply
hides its files, which then count as removed).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

EXEC_MARKER = "exec:"
SYMLINK_MARKER = "symlink:"
SPECIAL_MARKER = "special:"
UNREADABLE_MARKER = "unreadable:"
ALWAYS_CHANGED = (SYMLINK_MARKER, SPECIAL_MARKER, UNREADABLE_MARKER)
SKIPPED_DIRS = frozenset({"__pycache__"})
_CHUNK = 1 << 20


def _hash_regular(path: str) -> str:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return SPECIAL_MARKER + "changed-kind"
        digest = hashlib.sha256()
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _entry_value(entry: os.DirEntry[str]) -> str:
    try:
        if entry.is_symlink():
            target = os.fsencode(os.readlink(entry.path))
            return SYMLINK_MARKER + hashlib.sha256(target).hexdigest()
        st = entry.stat(follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            kind = {
                stat.S_IFIFO: "fifo",
                stat.S_IFSOCK: "socket",
                stat.S_IFCHR: "char-device",
                stat.S_IFBLK: "block-device",
            }.get(stat.S_IFMT(st.st_mode), "other")
            return SPECIAL_MARKER + kind
        value = _hash_regular(entry.path)
        return EXEC_MARKER + value if st.st_mode & stat.S_IXUSR else value
    except OSError as err:
        return UNREADABLE_MARKER + (os.strerror(err.errno) if err.errno else type(err).__name__)


def _walk(root: str, rel: str, include: Callable[[str], bool] | None, out: dict[str, str]) -> None:
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        path = f"{rel}/{name}" if rel else name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            if name not in SKIPPED_DIRS:
                _walk(entry.path, path, include, out)
            continue
        if include is None or include(path):
            out[path] = _entry_value(entry)


def file_hashes(folder: Path, include: Callable[[str], bool] | None = None) -> dict[str, str]:
    """Hash value of every file under `folder` (relative posix path -> value).

    `include`, when given, picks the relative paths to hash (folders are always
    walked). Symlinks are recorded, never followed.
    """
    out: dict[str, str] = {}
    _walk(os.fspath(folder), "", include, out)
    return dict(sorted(out.items()))


def tree_digest(folder: Path, include: Callable[[str], bool] | None = None) -> str:
    """sha256 over the sorted (path, exec bit / kind, content hash) of the files under `folder`."""
    rows = []
    for path, value in file_hashes(folder, include).items():
        if value.startswith(EXEC_MARKER):
            rows.append([path, "x", value[len(EXEC_MARKER) :]])
        elif ":" in value:
            kind, _, rest = value.partition(":")
            rows.append([path, kind, rest])
        else:
            rows.append([path, "-", value])
    blob = json.dumps(rows, ensure_ascii=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Paths added, removed or modified between two `file_hashes` results, sorted.

    Every symlink, special or unreadable entry of `after` counts as changed.
    """
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    changed |= {p for p, v in after.items() if v.startswith(ALWAYS_CHANGED)}
    return sorted(changed)
