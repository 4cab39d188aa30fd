"""Durability of the objects the Python writer adds: with `core.fsync=committed` (a
new lineage's setting) every object file a ref can name has been flushed to disk
by the time the ref moves; with fsync off, nothing is flushed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lineage_helpers import RunBuilder, git

import trajectories.lineage as lineage_module


def flushed_inodes(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """Inodes of the files `os.fsync` is called on from now on (renames keep an inode)."""
    seen: set[int] = set()
    real = os.fsync

    def recording(fd: int) -> None:
        seen.add(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return seen


def object_files(run_dir: Path) -> dict[int, str]:
    """Inode -> path of every loose object, pack and pack index of the run."""
    objects = run_dir / ".git" / "objects"
    files = [p for p in objects.glob("??/*")] + [p for p in (objects / "pack").glob("pack-*") if p.suffix in (".pack", ".idx")]
    return {p.stat().st_ino: str(p.relative_to(objects)) for p in files}


def test_a_new_lineage_flushes_every_object_before_its_refs_name_it(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed = flushed_inodes(monkeypatch)
    builder = RunBuilder(tmp_path / "run", source)  # the handle that created the lineage writes it
    builder.trial(score=0.6)
    builder.trial(score=0.55)
    builder.lineage.close()
    assert git(builder.run_dir, "config", "--get", "core.fsync").strip() == "committed"
    files = object_files(builder.run_dir)
    assert len(files) >= 10
    unflushed = sorted(path for inode, path in files.items() if inode not in flushed)
    assert unflushed == []


def test_a_lineage_without_fsync_flushes_nothing(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lineage_module, "DURABLE_FSYNC", "none")
    flushed = flushed_inodes(monkeypatch)
    builder = RunBuilder(tmp_path / "run", source)
    builder.trial(score=0.6)
    builder.lineage.close()
    assert git(builder.run_dir, "config", "--get", "core.fsync").strip() == "none"
    assert len(object_files(builder.run_dir)) >= 5
    assert flushed == set()
