"""Object writes of one repository, held back and written together.

Every ledger event writes about five small objects (a record blob, three
trees, a commit); as loose objects that is five files, each created, written
and (with fsync on) flushed to disk. `ObjectWriter` keeps new objects in
memory until something needs them in git: a ref is about to point at them, or
a git process is about to read the repository. Then they are written in one
go: as one pack (two files, `_pack.py`) when there are more than
`LOOSE_AT_MOST`, else loose. Objects go to disk before any ref names them, so
a crash (even one losing the page cache, with `durable` set) leaves refs that
point only at whole objects; what was held back and lost is named by no ref.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

from ._pack import write_pack

LOOSE_AT_MOST = 64
"""Up to this many objects are written loose (one file each); more make a pack (two files).

Per ledger event the loop writes about five objects: loose, since every pack adds to
what a long-lived git process rescans when it misses an object (thousands of small
packs made each ref update slower than the loose files they saved). Bulk writers
(`Lineage.batch()`: the importers) hold back many more and write packs."""
HOLD_AT_MOST = 20_000
"""Held-back objects beyond this are written as a pack at once (bounds the memory of a bulk writer)."""
LOOSE_TEMP_PREFIX = "tmp_obj_"


def framed(kind: str, content: bytes) -> bytes:
    """The bytes git hashes for an object: `<type> <size>\\0<content>`."""
    return f"{kind} {len(content)}\0".encode() + content


class ObjectWriter:
    """Held-back object writes into `objects` (a repository's `objects` folder)."""

    def __init__(self, objects: Path, durable: Callable[[], bool]) -> None:
        self.objects = objects
        self._durable_setting = durable
        self._durable: bool | None = None
        self.pending: dict[str, tuple[str, bytes]] = {}
        """Objects not written yet: sha -> (type, content)."""
        self.unsynced: list[Path] = []
        """Loose objects written for readers, not flushed to disk yet (only when `durable`)."""
        self._stored: set[str] = set()
        """Objects this writer has written (so a repeat is not written twice)."""
        self._files = 0
        """Temporary files made so far (their names must differ)."""
        self._lock = threading.Lock()

    def add(self, kind: str, content: bytes) -> str:
        sha = hashlib.sha1(framed(kind, content)).hexdigest()
        with self._lock:
            if sha not in self._stored and sha not in self.pending:
                self.pending[sha] = (kind, content)
            full = len(self.pending) >= HOLD_AT_MOST
        if full:
            self.flush(for_refs=True)  # a pack, flushed to disk if `durable`: safe at any time
        return sha

    def get(self, sha: str) -> tuple[str, bytes] | None:
        """A held-back object (None when it is not held back)."""
        with self._lock:
            return self.pending.get(sha)

    def flush(self, for_refs: bool) -> None:
        """Write every held-back object (loose files, or a pack for many).

        `for_refs`: a ref is about to name them. With `durable` set, objects
        written only so that git can read them are not flushed to disk then;
        the next write for a ref flushes them too."""
        with self._lock:
            objects = self.pending
            durable = self.durable and for_refs
            if objects:
                self._write(objects, durable)
                self._stored.update(objects)
                self.pending = {}
            if durable:
                for path in self.unsynced:
                    _flush_to_disk(path)
                self.unsynced = []

    def _write(self, objects: dict[str, tuple[str, bytes]], durable: bool) -> None:
        if len(objects) <= LOOSE_AT_MOST:
            for sha, (kind, content) in objects.items():
                path = self._write_loose(sha, kind, content, durable)
                if self.durable and not durable and path is not None:
                    self.unsynced.append(path)
        else:
            self._files += 1
            write_pack(self.objects / "pack", objects, self.durable, self._tag())  # always flushed if durable

    @property
    def durable(self) -> bool:
        """Flush object files to disk before a ref names them (the repository's `core.fsync`)."""
        if self._durable is None:
            self._durable = self._durable_setting()
        return self._durable

    def _tag(self) -> str:
        return f"{os.getpid()}_{id(self):x}_{self._files}"

    def _write_loose(self, sha: str, kind: str, content: bytes, durable: bool) -> Path | None:
        """Write one loose object; its path (None when it was there already)."""
        folder = self.objects / sha[:2]
        path = folder / sha[2:]
        if path.exists():
            return None
        # Created read-only in one call (no mkstemp, no chmod): a loose object is a
        # few hundred bytes and the file system calls were most of its cost.
        self._files += 1
        tmp = folder / f"{LOOSE_TEMP_PREFIX}{self._tag()}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            try:
                fd = os.open(tmp, flags, 0o444)
            except FileNotFoundError:  # a new folder, or one a repack emptied and removed
                folder.mkdir(exist_ok=True)
                fd = os.open(tmp, flags, 0o444)
            try:
                os.write(fd, zlib.compress(framed(kind, content)))
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return path


def _flush_to_disk(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return  # a repack took it into a pack (flushed by git) and removed it
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
