"""Object writes of one repository, held back and written together.

Every ledger event writes about five small objects (a record blob, three
trees, a commit), a trial's code a few more. `ObjectWriter` keeps new objects
in memory until something needs them in git, then writes them in one go:

- a ref is about to name them (`flush()`): one pack (two files,
  `_pack.py`), flushed to disk first when the repository asks for it
  (`core.fsync`), so a crash, even one losing the page cache, leaves refs that
  point only at whole objects; what was held back and lost is named by no ref.
  Two files flushed per ref move, where loose objects cost one per object;
- a git process is about to read them (`flush_for_reader()`, e.g. the
  canonical diff of a new tree): loose files, not flushed. Their content is
  kept until the next write for a ref puts them in its pack, flushed with it,
  and the loose copies are removed (so a later repack does not read them back).

The packs of single ref moves are small; every `MERGE_EVERY` of them are
rolled into one (their entries are kept in memory, so no object is compressed
twice), the merged pack written and flushed before the small ones go. Git's
geometric repack (`Lineage.pack`) rolls the merged packs up in turn.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

from ._pack import PackEntry, pack_entry, remove_pack, write_pack

SMALL_PACK_AT_MOST = 512
"""Packs of up to this many objects are rolled into a merged pack later (bigger ones stay as written)."""
MERGE_EVERY = 128
"""Small packs written before they are rolled into one: a long-lived git process rescans the pack
folder when it misses an object, and thousands of small packs made every ref update slower; at 32
the merges themselves (a pack written, the small ones removed) cost more (bench/lineage_scale.py,
2,000 trials: 15.5 to 16.8 s at 32, 12.3 to 13.6 s at 128)."""
HOLD_AT_MOST = 20_000
"""Held-back objects beyond this are written as a pack at once (bounds the memory of a bulk writer)."""
LOOSE_TEMP_PREFIX = "tmp_obj_"


def framed(kind: str, content: bytes) -> bytes:
    """The bytes git hashes for an object: `<type> <size>\\0<content>`."""
    return f"{kind} {len(content)}\0".encode() + content


class ObjectWriter:
    """Held-back object writes into `objects` (a repository's `objects` folder)."""

    def __init__(self, objects: Path, durable: Callable[[], bool], packs_removed: Callable[[], None]) -> None:
        self.objects = objects
        self._durable_setting = durable
        self._packs_removed = packs_removed
        """Called after a merge removed packs (long-lived git processes keep listing them: restart them)."""
        self._durable: bool | None = None
        self.pending: dict[str, tuple[str, bytes]] = {}
        """Objects not written yet: sha -> (type, content)."""
        self.loose_for_readers: dict[str, tuple[str, bytes]] = {}
        """Objects written loose for a reader and not yet in a pack of this writer."""
        self._stored: set[str] = set()
        """Objects this writer has written (so a repeat is not written twice)."""
        self._small: list[tuple[Path, list[PackEntry]]] = []
        """Small packs written since the last merge, with their entries (see `MERGE_EVERY`)."""
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
            self.flush()  # a pack, flushed to disk if `durable`: safe at any time
        return sha

    def get(self, sha: str) -> tuple[str, bytes] | None:
        """A held-back object (None when it is not held back)."""
        with self._lock:
            return self.pending.get(sha)

    def flush_for_reader(self, roots: list[str] | None = None) -> None:
        """Write loose (not flushed to disk) the held-back objects a git process may read:
        those reachable from `roots` through held-back trees, or all of them (None).

        The loop diffs a new tree while other events' objects are held back; only
        the tree and what it brings go to disk for git's diff."""
        with self._lock:
            if roots is None:
                chosen = list(self.pending)
            else:
                chosen, queue = [], [sha for sha in roots if sha in self.pending]
                while queue:
                    sha = queue.pop()
                    if sha in chosen:
                        continue
                    chosen.append(sha)
                    kind, content = self.pending[sha]
                    if kind == "tree":
                        queue += [child for child in _tree_children(content) if child in self.pending]
            for sha in chosen:
                kind, content = self.pending.pop(sha)
                if self._write_loose(sha, kind, content):
                    self.loose_for_readers[sha] = (kind, content)
                self._stored.add(sha)

    def flush(self) -> None:
        """Write every held-back object: one pack, before a ref names them.

        The pack also takes the objects written loose for readers since the last
        one (flushed to disk with it when `durable`), whose loose copies are
        removed."""
        with self._lock:
            objects = {**self.loose_for_readers, **self.pending}
            if not objects:
                return
            entries = [pack_entry(sha, kind, content) for sha, (kind, content) in objects.items()]
            self._files += 1
            pack = write_pack(self.objects / "pack", entries, self.durable, self._tag())
            self._stored.update(self.pending)
            self.pending = {}
            for sha in self.loose_for_readers:  # in the pack now: the loose copy is a duplicate
                _remove(self.objects / sha[:2] / sha[2:])
            self.loose_for_readers = {}
            if len(entries) <= SMALL_PACK_AT_MOST:
                self._small.append((pack, entries))
                if len(self._small) >= MERGE_EVERY:
                    self._merge_small_packs()

    def _merge_small_packs(self) -> None:
        """Roll the small packs into one: written (and flushed) before they are removed."""
        merged: dict[bytes, bytes] = {}
        for _pack, entries in self._small:
            merged.update(entries)
        self._files += 1
        kept = write_pack(self.objects / "pack", list(merged.items()), self.durable, self._tag())
        for pack, _entries in self._small:
            if pack != kept:
                remove_pack(pack)
        self._small = []
        self._packs_removed()

    def forget_small_packs(self) -> None:
        """After a repack: the small packs written so far are left as they are (a repack may
        have rolled them up already; merging them again would only copy their objects)."""
        with self._lock:
            self._small = []

    @property
    def durable(self) -> bool:
        """Flush object files to disk before a ref names them (the repository's `core.fsync`)."""
        if self._durable is None:
            self._durable = self._durable_setting()
        return self._durable

    def _tag(self) -> str:
        return f"{os.getpid()}_{id(self):x}_{self._files}"

    def _write_loose(self, sha: str, kind: str, content: bytes) -> bool:
        """Write one loose object, not flushed to disk; False when it was there already."""
        folder = self.objects / sha[:2]
        path = folder / sha[2:]
        if path.exists():
            return False
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
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            _remove(tmp)
            raise
        return True


def _tree_children(content: bytes) -> list[str]:
    """Object ids a tree's content names (see `_git.decode_tree`)."""
    children, i = [], 0
    while i < len(content):
        nul = content.index(b"\0", i)
        children.append(content[nul + 1 : nul + 21].hex())
        i = nul + 21
    return children


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # a repack took it into a pack and removed it
