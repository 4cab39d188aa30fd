"""The ledger tree kept encoded answers what git answers: an `EncodedTree` changed entry by
entry has the bytes `encode_tree` gives the same entries (git's order included), the trees a
`LedgerTree` writes are the ones git reads back, and a listing the ledger never holds is refused."""

from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trajectories._git import MODE_FILE, MODE_TREE, Git, encode_tree
from trajectories._ledger_tree import EncodedTree, LedgerTree, read_ledger_tree

SHA = st.binary(min_size=20, max_size=20).map(bytes.hex)
# Names whose order differs between plain and folder sorting ('a-b' < 'a/' < 'ab'), and non-ASCII.
NAME = st.sampled_from(["a", "a-b", "a.b", "ab", "a0", "b", "t0001.json", "0001", "é", "z~"])
ENTRY = st.tuples(st.sampled_from([MODE_FILE, MODE_TREE]), NAME, SHA)


@given(st.lists(ENTRY, max_size=30))
def test_entry_by_entry_equals_encoding_the_whole_tree(changes: list[tuple[str, str, str]]) -> None:
    tree, final = EncodedTree.of([]), {}
    for mode, name, sha in changes:
        if name in final and final[name][0] != mode:
            with pytest.raises(ValueError, match="file to folder"):
                tree.with_entry(mode, name, sha)
            continue
        tree = tree.with_entry(mode, name, sha)
        final[name] = (mode, sha)
    entries = [(mode, name, sha) for name, (mode, sha) in final.items()]
    assert tree.content() == encode_tree(entries)
    assert tree.content() == EncodedTree.of(entries).content()
    assert all(tree.sha_of(name) == sha for _mode, name, sha in entries) and len(tree) == len(entries)


def test_a_change_leaves_the_old_tree_as_it_was() -> None:
    old = EncodedTree.of([(MODE_FILE, "a", "1" * 40)])
    new = old.with_entry(MODE_FILE, "a", "2" * 40).with_entry(MODE_FILE, "b", "3" * 40)
    assert old.content() == encode_tree([(MODE_FILE, "a", "1" * 40)])
    assert old.sha_of("a") == "1" * 40 and old.sha_of("b") is None and len(old) == 1
    assert new.sha_of("a") == "2" * 40 and len(new) == 2


def test_bad_names_and_repeated_names_are_refused() -> None:
    for bad in ("", "a/b", "a\0b"):
        with pytest.raises(ValueError):
            EncodedTree.of([]).with_entry(MODE_FILE, bad, "1" * 40)
    with pytest.raises(ValueError, match="repeated"):
        EncodedTree.of([(MODE_FILE, "a", "1" * 40), (MODE_FILE, "a", "2" * 40)])


def ls_tree(git_dir: Path, tree: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(git_dir), "ls-tree", "-r", "-t", "-z", "--full-tree", tree],
                          capture_output=True, check=True).stdout


def test_written_trees_read_back_through_git(tmp_path: Path) -> None:
    git_dir = tmp_path / "repo.git"
    subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
    git = Git(git_dir, tmp_path)
    tree = LedgerTree(git.write_blob(b"{}\n"))
    blobs = {}
    for n in (5, 150, 7, 5):  # a replaced record, two shards, a transcript in one of them
        blobs[f"t{n:04d}"] = git.write_blob(f"record {n} {len(blobs)}\n".encode())
        transcript = (f"t{n:04d}.jsonl", git.write_blob(b"turns\n")) if n == 7 else None
        record = (f"t{n:04d}.json", blobs[f"t{n:04d}"])
        tree, root = tree.with_record(partial(git.write_object, "tree"), f"{n // 100:04d}", record, transcript)
    git.flush()
    subprocess.run(["git", "--git-dir", str(git_dir), "fsck", "--strict", "--no-dangling"], check=True,
                   capture_output=True)
    read, records = read_ledger_tree(ls_tree(git_dir, root))
    assert records == blobs
    assert read.trials.content() == tree.trials.content()
    assert read.transcript_blob("0000", "t0007.jsonl") == tree.transcript_blob("0000", "t0007.jsonl") is not None
    assert read.run_blob == tree.run_blob


@pytest.mark.parametrize("path", ["notes.txt", "trials/t0001.json", "trials/0000/t0001.txt", "trials/0001/t0001.json"])
def test_a_file_the_ledger_never_holds_is_refused(path: str) -> None:
    listing = f"{MODE_FILE} blob {'1' * 40}\trun.json\0{MODE_FILE} blob {'2' * 40}\t{path}\0".encode()
    with pytest.raises(ValueError, match="unexpected file"):
        read_ledger_tree(listing)


def test_a_ledger_without_run_json_is_refused() -> None:
    with pytest.raises(ValueError, match="run.json"):
        read_ledger_tree(f"{MODE_FILE} blob {'2' * 40}\ttrials/0000/t0001.json\0".encode())
