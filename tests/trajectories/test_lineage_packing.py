"""The lineage's performance devices keep every guarantee: automatic packing never
loses an object (not even one written before any ref names it), and the small
caches of file listings and diffs answer what git answers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from lineage_helpers import RunBuilder, edit_diff, git

import trajectories.lineage as lineage_module
from harness.types import Label
from trajectories._pack import pack_entry, write_pack
from trajectories.lineage import Lineage, trial_trailers
from trajectories.verify import verify_lineage


def loose_objects(run_dir: Path) -> int:
    return sum(int(line.split(": ")[1]) for line in git(run_dir, "count-objects", "-v").splitlines()
               if line.startswith("count: "))


def packs(run_dir: Path) -> int:
    return len(list((run_dir / ".git" / "objects" / "pack").glob("*.pack")))


def count_repacks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record each `Lineage.pack` call (git's geometric repack) as it happens."""
    calls: list[int] = []
    real = Lineage.pack

    def counting(self: Lineage) -> None:
        calls.append(1)
        real(self)

    monkeypatch.setattr(Lineage, "pack", counting)
    return calls


def test_packs_every_few_ledger_commits_and_still_verifies(
    builder: RunBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lineage_module, "AUTO_PACK_EVERY", 5)
    repacks = count_repacks(monkeypatch)
    lin = builder.lineage
    # A trial commit written but not yet named by any ref when the packs run.
    parent_commit = lin.record("t0000").trial.commit
    tree = lin.apply_diff(parent_commit, edit_diff(lin, parent_commit, "model.py", 3, "LAYER_3 = 333"))
    unnamed = lin.commit_trial(tree, parent_commit, "Not recorded yet.", trial_trailers("t9999", "t0000", "x", None, "full"))
    builder.trial(score=None, label=Label.crash)  # ledger commits 4 and 5 (start, t0000 twice before): a repack
    assert len(repacks) == 1
    assert loose_objects(builder.run_dir) == 0
    assert git(builder.run_dir, "cat-file", "-t", unnamed).strip() == "commit"
    assert git(builder.run_dir, "cat-file", "-t", tree).strip() == "tree"
    record = builder.propose()
    for _ in range(3):
        builder.trial(score=0.4)
    builder.finish(record, score=0.99)
    assert len(repacks) >= 2
    report = verify_lineage(builder.run_dir)
    assert report.ok, report.problems
    assert len(report.records) == 6
    again = Lineage.open(builder.run_dir)
    assert again.records() == lin.records()
    assert again.best() == record.trial.id


def test_batch_packs_when_it_ends(builder: RunBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lineage_module, "AUTO_PACK_EVERY", 4)
    repacks = count_repacks(monkeypatch)
    with builder.lineage.batch():
        for _ in range(3):
            builder.trial(score=None, label=Label.oom)
        assert repacks == []  # never inside a batch: its refs have not moved yet
    assert len(repacks) == 1
    assert verify_lineage(builder.run_dir).ok


def test_file_listing_cache_answers_like_git(small_run: RunBuilder) -> None:
    lin = small_run.lineage
    commit = lin.record("t0001").trial.commit
    first = lin.files(commit)
    first["model.py"] = ("100755", "0" * 40)  # a caller's edit must not reach the cache
    again = lin.files(commit)
    fresh = Lineage.open(small_run.run_dir).files(commit)
    assert again == fresh and again["model.py"] != ("100755", "0" * 40)
    best = lin.record(lin.best()).trial.commit
    assert lin.files("refs/heads/best") == Lineage.open(small_run.run_dir).files(best)  # a ref name works too


def test_diff_cache_answers_like_git(small_run: RunBuilder) -> None:
    lin = small_run.lineage
    base = lin.record("t0000").trial.commit
    for tid in ("t0001", "t0002", "t0003"):
        commit = lin.record(tid).trial.commit
        assert lin.diff(base, commit) == lin.diff(base, commit) == Lineage.open(small_run.run_dir).diff(base, commit)
        assert lin.diff(base, commit) != lin.diff(commit, base)


def test_an_import_writes_packs_not_loose_objects(tmp_path: Path) -> None:
    from trajectories.importers import import_run

    source = Path(__file__).resolve().parents[3] / "shared" / "data" / "external" / "auto-research-recipes-cifar"
    source = source / "results.tsv"
    run_dir = tmp_path / "imported"
    result = import_run("auto-research-recipes", source, run_dir)
    assert result.trials > 50
    # About ten objects per trial, held back through the import's batch and written as packs;
    # only the baseline's snapshot and the start event (written before the batch) may be loose.
    assert loose_objects(run_dir) <= 20
    assert packs(run_dir) >= 1
    assert verify_lineage(run_dir).ok


def test_small_packs_are_merged_and_nothing_is_lost(builder: RunBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    import trajectories._objects as objects_module

    monkeypatch.setattr(objects_module, "MERGE_EVERY", 3)
    monkeypatch.setattr(lineage_module, "AUTO_PACK_EVERY", 10_000)  # only the writer's own merges
    before = packs(builder.run_dir)
    for _ in range(4):  # 8 ref moves: two merges of three small packs
        builder.trial(score=0.4)
    assert packs(builder.run_dir) <= before + 4  # two merged packs and the small ones since
    assert loose_objects(builder.run_dir) == 0
    report = verify_lineage(builder.run_dir)
    assert report.ok, report.problems
    assert len(report.records) == 5
    assert git(builder.run_dir, "fsck", "--no-dangling").strip() == ""


def test_stopped_git_processes_are_reaped_when_the_lineage_closes(small_run: RunBuilder) -> None:
    lineage = Lineage.open(small_run.run_dir)
    lineage.git.update_refs([("refs/heads/probe", lineage.ledger_head(), None)])  # starts `update-ref --stdin`
    updater = lineage.git._updater
    assert updater is not None and updater.poll() is None
    lineage.git.stop_processes()
    assert lineage.git._updater is None
    lineage.close()
    assert updater.returncode == 0  # exited at the end of its input, and reaped (no zombie left)


def test_a_pack_is_written_when_the_pack_folder_is_missing(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    (repo / "objects" / "pack").rmdir()
    sha = "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object` of b"hello\n"
    pack = write_pack(repo / "objects" / "pack", [pack_entry(sha, "blob", b"hello\n")], durable=True, tag="t")
    assert pack.exists() and pack.with_suffix(".idx").exists()
    shown = subprocess.run(["git", "--git-dir", str(repo), "cat-file", "-p", sha], capture_output=True, check=True)
    assert shown.stdout == b"hello\n"
