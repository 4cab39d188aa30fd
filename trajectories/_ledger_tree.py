"""The ledger's tree kept encoded, so that an event re-encodes only what it changes.

The ledger tree is `run.json`, `trials/<shard>/<trial>.json` and, for trials proposed with
a transcript, `transcripts/<shard>/<file>`. Every ledger event rewrites the record's shard
(up to a hundred records), the `trials` listing (one entry per hundred trials) and the root;
a transcript adds its shard and the `transcripts` listing. Encoding each of those trees
from (mode, name, sha) lists took ~60 µs a tree, seconds over a 10,000-trial run. Here a tree
keeps its entries encoded and in git's order: a change encodes one entry and joins the rest.

The values are immutable: a change returns a new tree (sharing the unchanged entries), so a
ledger write that fails half-way leaves the lineage's state as it was.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from harness.types import trial_number
from trajectories._git import MODE_FILE, MODE_TREE, encode_tree, tree_sort_key
from trajectories.transcripts import TRANSCRIPTS_DIR, transcript_tid

RUN_FILE = "run.json"
"""The run's `RunInfo`, at the ledger tree's root."""
TRIALS_DIR = "trials"
"""The folder of the trial records (`trials/<shard>/<trial>.json`)."""


def shard_of(tid: str) -> str:
    """The folder of a trial's record: a hundred trials a shard (`t0123` -> `0001`)."""
    return f"{trial_number(tid) // 100:04d}"


def record_path(tid: str) -> str:
    """Path of a trial's record in the ledger tree: `trials/0001/t0123.json`."""
    return f"{TRIALS_DIR}/{shard_of(tid)}/{tid}.json"


WriteTree = Callable[[bytes], str]
"""Writes a tree object from its content; returns its sha."""


class EncodedTree:
    """One tree's entries, encoded and in git's order (see the module docstring)."""

    __slots__ = ("_keys", "_parts", "_entries", "_shas")

    def __init__(self, keys: list[bytes], parts: list[bytes] | None, shas: dict[str, str],
                 entries: list[tuple[str, str, str]] | None = None) -> None:
        self._keys = keys
        """Sort keys of the entries, ascending."""
        self._parts = parts
        """Encoded entries (`mode name\\0<20 bytes>`), in the order of `_keys`; None until first
        needed (then made from `_entries`): a lineage opened to be read never encodes its trees."""
        self._entries = entries
        """The (mode, name, sha) entries in the order of `_keys`, while `_parts` is None."""
        self._shas = shas
        """Name -> sha of each entry."""

    @classmethod
    def of(cls, entries: Iterable[tuple[str, str, str]]) -> EncodedTree:
        """The tree of these (mode, name, sha) entries (names unique, any order)."""
        keyed = sorted((tree_sort_key(mode, name), mode, name, sha) for mode, name, sha in entries)
        if len({name for _key, _mode, name, _sha in keyed}) != len(keyed):
            raise ValueError("a tree entry name is repeated")
        return cls([key for key, *_ in keyed], None, {name: sha for _key, _mode, name, sha in keyed},
                   [(mode, name, sha) for _key, mode, name, sha in keyed])

    def _encoded(self) -> list[bytes]:
        if self._parts is None:
            assert self._entries is not None
            self._parts, self._entries = [encode_tree([entry]) for entry in self._entries], None
        return self._parts

    def with_entry(self, mode: str, name: str, sha: str) -> EncodedTree:
        """This tree with the entry `name` added, or replaced when it is there."""
        part = encode_tree([(mode, name, sha)])  # checks the name
        key = tree_sort_key(mode, name)
        keys, parts = list(self._keys), list(self._encoded())
        at = bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            parts[at] = part
        elif name in self._shas:
            raise ValueError(f"tree entry {name!r} would change from file to folder or back")
        else:
            keys.insert(at, key)
            parts.insert(at, part)
        return EncodedTree(keys, parts, {**self._shas, name: sha})

    def sha_of(self, name: str) -> str | None:
        return self._shas.get(name)

    def content(self) -> bytes:
        """The tree object's content (what `encode_tree` makes of the same entries)."""
        return b"".join(self._encoded())

    def __len__(self) -> int:
        return len(self._keys)


EMPTY = EncodedTree([], [], {})


@dataclass(frozen=True)
class LedgerTree:
    """The ledger tree of one ledger commit, folder by folder."""

    run_blob: str
    """Blob of `run.json`."""
    shards: dict[str, EncodedTree] = field(default_factory=dict)
    """Shard -> its records (`trials/<shard>`: `<trial>.json` -> blob)."""
    trials: EncodedTree = EMPTY
    """The `trials` folder: shard -> tree sha."""
    transcripts: dict[str, EncodedTree] = field(default_factory=dict)
    """Shard -> its transcripts (`transcripts/<shard>`: file name -> blob)."""
    transcript_listing: EncodedTree = EMPTY
    """The `transcripts` folder: shard -> tree sha (empty while no trial has a transcript)."""

    def transcript_blob(self, shard: str, name: str) -> str | None:
        files = self.transcripts.get(shard)
        return files.sha_of(name) if files is not None else None

    def with_record(
        self,
        write_tree: WriteTree,
        shard: str,
        record: tuple[str, str],
        transcript: tuple[str, str] | None = None,
    ) -> tuple[LedgerTree, str]:
        """This tree with a record (file name, blob) in `trials/<shard>` and, optionally, a
        transcript (file name, blob) in `transcripts/<shard>`; the trees that change are
        written through `write_tree`. Returns the new tree and its root's sha."""
        records = self.shards.get(shard, EMPTY).with_entry(MODE_FILE, *record)
        trials = self.trials.with_entry(MODE_TREE, shard, write_tree(records.content()))
        transcripts, listing = self.transcripts, self.transcript_listing
        if transcript is not None:
            files = transcripts.get(shard, EMPTY).with_entry(MODE_FILE, *transcript)
            transcripts = {**transcripts, shard: files}
            listing = listing.with_entry(MODE_TREE, shard, write_tree(files.content()))
        root = [(MODE_FILE, RUN_FILE, self.run_blob), (MODE_TREE, TRIALS_DIR, write_tree(trials.content()))]
        if len(listing):
            root.append((MODE_TREE, TRANSCRIPTS_DIR, write_tree(listing.content())))
        new = LedgerTree(self.run_blob, {**self.shards, shard: records}, trials, transcripts, listing)
        return new, write_tree(encode_tree(root))


def read_ledger_tree(listing: bytes) -> tuple[LedgerTree, dict[str, str]]:
    """The ledger tree from `git ls-tree -r -t -z --full-tree` of a ledger commit, and the
    record blob of each trial (trial id -> blob); raises ValueError on anything the ledger
    never holds (an unknown file or folder, a record under the wrong name)."""
    shards: dict[str, list[tuple[str, str, str]]] = {}
    transcripts: dict[str, list[tuple[str, str, str]]] = {}
    listings: dict[str, list[tuple[str, str, str]]] = {TRIALS_DIR: [], TRANSCRIPTS_DIR: []}
    run_blob: str | None = None
    records: dict[str, str] = {}
    for item in listing.split(b"\0"):
        if not item:
            continue
        meta, _, path = item.decode("utf-8", "surrogateescape").partition("\t")
        mode, kind, sha = meta.split(" ")
        parts = path.split("/")
        if kind == "tree":
            if len(parts) == 2 and parts[0] in listings:
                listings[parts[0]].append((MODE_TREE, parts[1], sha))
            elif path not in listings:
                raise ValueError(f"unexpected folder {path!r} in the ledger")
        elif path == RUN_FILE:
            run_blob = sha
        elif parts[0] == TRANSCRIPTS_DIR:
            if transcript_tid(path) is None or mode != MODE_FILE:
                raise ValueError(f"unexpected file {path!r} in the ledger")
            transcripts.setdefault(parts[1], []).append((mode, parts[2], sha))
        else:
            tid = parts[-1].removesuffix(".json")
            if mode != MODE_FILE or len(parts) != 3 or not parts[-1].endswith(".json") or record_path(tid) != path:
                raise ValueError(f"unexpected file {path!r} in the ledger")
            shards.setdefault(parts[1], []).append((mode, parts[2], sha))
            records[tid] = sha
    if run_blob is None:
        raise ValueError(f"the ledger has no {RUN_FILE}")
    tree = LedgerTree(
        run_blob,
        {shard: EncodedTree.of(entries) for shard, entries in shards.items()},
        EncodedTree.of(listings[TRIALS_DIR]),
        {shard: EncodedTree.of(entries) for shard, entries in transcripts.items()},
        EncodedTree.of(listings[TRANSCRIPTS_DIR]),
    )
    return tree, records
