"""Folder hashes: digests, per-file hashes and change detection (tamper checks)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from evaluators import hashing
from evaluators.hashing import SYMLINK_MARKER, changed_files, file_hashes, tree_digest


def make_tree(root: Path) -> Path:
    (root / "eval").mkdir(parents=True)
    (root / "eval" / "score.py").write_text("def score(): ...\n")
    (root / "model.py").write_text("x = 1\n")
    return root


def test_file_hashes_are_sha256_of_content(tmp_path):
    make_tree(tmp_path)
    hashes = file_hashes(tmp_path)
    assert hashes == {
        "eval/score.py": hashlib.sha256(b"def score(): ...\n").hexdigest(),
        "model.py": hashlib.sha256(b"x = 1\n").hexdigest(),
    }


def test_include_filters_relative_posix_paths(tmp_path):
    make_tree(tmp_path)
    assert list(file_hashes(tmp_path, lambda p: p.startswith("eval/"))) == ["eval/score.py"]


def test_digest_is_stable_and_ignores_pycache(tmp_path):
    make_tree(tmp_path)
    before = tree_digest(tmp_path)
    (tmp_path / "eval" / "__pycache__").mkdir()
    (tmp_path / "eval" / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"\0")
    assert tree_digest(tmp_path) == before


def test_digest_changes_with_content_name_and_exec_bit(tmp_path):
    make_tree(tmp_path)
    base = tree_digest(tmp_path)
    (tmp_path / "model.py").write_text("x = 2\n")
    changed = tree_digest(tmp_path)
    assert changed != base
    (tmp_path / "model.py").chmod(0o755)
    assert tree_digest(tmp_path) != changed
    (tmp_path / "model.py").chmod(0o644)
    (tmp_path / "model.py").rename(tmp_path / "model2.py")
    assert tree_digest(tmp_path) != changed


def test_changed_files_lists_added_removed_modified(tmp_path):
    make_tree(tmp_path)
    before = file_hashes(tmp_path)
    (tmp_path / "model.py").write_text("x = 2\n")
    (tmp_path / "eval" / "score.py").unlink()
    (tmp_path / "new.py").write_text("")
    assert changed_files(before, file_hashes(tmp_path)) == ["eval/score.py", "model.py", "new.py"]


def test_unchanged_tree_has_no_changes(tmp_path):
    make_tree(tmp_path)
    assert changed_files(file_hashes(tmp_path), file_hashes(tmp_path)) == []


def test_symlink_replacing_protected_file_is_caught(tmp_path):
    make_tree(tmp_path)
    protected = lambda p: p.startswith("eval/")
    before = file_hashes(tmp_path, protected)
    target = tmp_path / "elsewhere.py"
    target.write_text("def score(): ...\n")  # same bytes behind the link
    (tmp_path / "eval" / "score.py").unlink()
    (tmp_path / "eval" / "score.py").symlink_to(target)
    after = file_hashes(tmp_path, protected)
    assert after["eval/score.py"].startswith(SYMLINK_MARKER)
    assert changed_files(before, after) == ["eval/score.py"]


def test_symlinks_always_count_as_changes(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "link").symlink_to("model.py")
    (tmp_path / "dirlink").symlink_to("eval")
    hashes = file_hashes(tmp_path)
    assert changed_files(hashes, hashes) == ["dirlink", "link"]
    assert "dirlink/score.py" not in hashes  # never followed


def test_unreadable_file_counts_as_changed(tmp_path, monkeypatch):
    make_tree(tmp_path)
    before = file_hashes(tmp_path)
    real = hashing._hash_regular

    def refuse(path: str) -> str:
        if path.endswith("model.py"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(hashing, "_hash_regular", refuse)
    after = file_hashes(tmp_path)
    assert after["model.py"] == "unreadable:Permission denied"
    assert changed_files(before, after) == ["model.py"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs fifos")
def test_fifo_is_recorded_without_blocking(tmp_path):
    make_tree(tmp_path)
    before = file_hashes(tmp_path)
    (tmp_path / "model.py").unlink()
    os.mkfifo(tmp_path / "model.py")
    after = file_hashes(tmp_path)
    assert after["model.py"] == "special:fifo"
    assert changed_files(before, after) == ["model.py"]
