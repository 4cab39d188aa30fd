"""The lineage store: creation, code commits, the ledger, refs, reads."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from lineage_helpers import RUN_ID, RunBuilder, edit_diff, git, make_outcome

from harness.types import Label, TrialRecord
from trajectories._git import git_env, parse_message
from trajectories.lineage import (
    DIFF_ARGS,
    ApplyError,
    Lineage,
    LineageError,
    dump_json,
    record_path,
    shard_of,
    trial_trailers,
)


# ---------------------------------------------------------------------------
# init / open
# ---------------------------------------------------------------------------


def test_init_layout(builder: RunBuilder) -> None:
    run = builder.run_dir
    assert (run / ".git").is_dir() and (run / ".harness").is_dir()
    assert "/.harness/" in (run / ".git" / "info" / "exclude").read_text()
    assert git(run, "symbolic-ref", "HEAD").strip() == "refs/heads/best"
    refs = git(run, "for-each-ref", "--format=%(refname)").split()
    assert set(refs) == {"refs/heads/best", "refs/heads/ledger", "refs/trials/t0000"}
    # Nothing is checked out: the run folder holds only .git and .harness.
    assert sorted(p.name for p in run.iterdir()) == [".git", ".harness"]
    git(run, "fsck", "--strict", "--no-dangling")


def test_init_refuses_existing_lineage(builder: RunBuilder) -> None:
    with pytest.raises(LineageError, match="already holds a lineage"):
        Lineage.init(builder.run_dir)


def test_init_refuses_other_repository(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(LineageError, match="git repository"):
        Lineage.init(tmp_path)


def test_open_refuses_non_runs(tmp_path: Path) -> None:
    with pytest.raises(LineageError, match="not a run"):
        Lineage.open(tmp_path / "missing")
    with pytest.raises(LineageError, match="not a run"):
        Lineage.open(tmp_path)
    (tmp_path / "repo").mkdir()
    git(tmp_path / "repo", "init", "-q")
    with pytest.raises(LineageError, match="not a run"):
        Lineage.open(tmp_path / "repo")


def test_open_reloads_the_same_state(small_run: RunBuilder) -> None:
    lin = small_run.lineage
    again = Lineage.open(small_run.run_dir)
    assert again.records() == lin.records()
    assert again.run_info() == lin.run_info() == small_run.info
    assert again.best() == lin.best() == "t0003"
    assert again.ledger_head() == lin.ledger_head()
    assert again.next_trial_number() == 5


def test_ignores_inherited_git_environment(small_run: RunBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/nonexistent")
    monkeypatch.setenv("GIT_INDEX_FILE", "/nonexistent/index")
    lin = Lineage.open(small_run.run_dir)
    assert lin.best() == "t0003"


# ---------------------------------------------------------------------------
# code commits
# ---------------------------------------------------------------------------


def test_baseline_snapshot(builder: RunBuilder) -> None:
    files = builder.lineage.files(builder.baseline_commit)
    assert sorted(files) == ["conf/a.toml", "data/README", "model.py", "run.sh", "train.py"]
    assert files["run.sh"][0] == "100755"
    assert files["model.py"][0] == "100644"
    assert git(builder.run_dir, "cat-file", "-p", builder.baseline_commit).count("parent ") == 0
    msg = git(builder.run_dir, "log", "-1", "--format=%B", builder.baseline_commit)
    hypothesis, trailers = parse_message(msg.rstrip("\n") + "\n")
    assert hypothesis == "Baseline of the toy recipe."
    assert trailers == trial_trailers("t0000", None, "baseline", None, "full")
    assert trailers["Parent-Trial"] == "none" and trailers["Specialist"] == "none"


def test_baseline_skips_git_and_symlinks(tmp_path: Path, source: Path) -> None:
    (source / ".git").mkdir()
    (source / ".git" / "config").write_text("x")
    os.symlink("model.py", source / "link.py")
    lin = Lineage.init(tmp_path / "run")
    commit = lin.commit_baseline(source, "b", {})
    assert ".git/config" not in lin.files(commit) and "link.py" not in lin.files(commit)


def test_apply_diff_and_canonical_diff(builder: RunBuilder) -> None:
    lin = builder.lineage
    base = builder.baseline_commit
    diff = edit_diff(lin, base, "model.py", 3, "LAYER_3 = 33")
    tree = lin.apply_diff(base, diff)
    assert tree != lin.tree_of(base)
    commit = lin.commit_trial(tree, base, "Bigger layer 3.", trial_trailers("t0001", "t0000", "a", "s", "full"))
    assert lin.tree_of(commit) == tree
    assert b"LAYER_3 = 33\n" in lin.read_file(commit, "model.py")
    canonical = lin.diff(base, commit)
    expected = git(builder.run_dir, "diff-tree", *DIFF_ARGS, base, commit)
    assert canonical == expected
    assert canonical.startswith("diff --git a/model.py b/model.py\nindex ")
    assert len(canonical.splitlines()[1].split()[1]) == 82  # full-index: <40>..<40>
    # The canonical diff re-applies to the parent and gives the same tree.
    assert lin.apply_diff(base, canonical) == tree
    assert lin.apply_diff(base, diff.rstrip("\n")) == tree  # a missing final newline is tolerated
    assert lin.tree_of("refs/trials/t0000") == lin.tree_of(base)
    # No refs moved.
    assert git(builder.run_dir, "for-each-ref", "refs/trials/t0001") == ""


def test_apply_diff_keeps_exec_bit_and_handles_new_files(builder: RunBuilder) -> None:
    lin = builder.lineage
    base = builder.baseline_commit
    diff = (
        "diff --git a/conf/b.toml b/conf/b.toml\nnew file mode 100644\n--- /dev/null\n+++ b/conf/b.toml\n"
        "@@ -0,0 +1 @@\n+momentum = 0.9\n"
    )
    tree = lin.apply_diff(base, diff)
    commit = lin.commit_trial(tree, base, "h", {})
    files = lin.files(commit)
    assert files["run.sh"][0] == "100755" and "conf/b.toml" in files


def test_apply_diff_errors_carry_git_text(builder: RunBuilder) -> None:
    lin = builder.lineage
    base = builder.baseline_commit
    bad = "--- a/model.py\n+++ b/model.py\n@@ -1,2 +1,2 @@\n-NOT_THERE = 1\n+X = 2\n LAYER_1 = 1\n"
    with pytest.raises(ApplyError) as err:
        lin.apply_diff(base, bad)
    assert "patch does not apply" in err.value.message
    with pytest.raises(ApplyError, match="No valid patches"):
        lin.apply_diff(base, "this is not a diff\n")
    with pytest.raises(ApplyError):
        lin.apply_diff(base, "--- a/missing.py\n+++ b/missing.py\n@@ -1 +1 @@\n-a\n+b\n")
    assert not any((builder.run_dir / ".harness" / "tmp").iterdir())  # temporary indexes cleaned


def test_commit_trial_refuses_bad_trailers(builder: RunBuilder) -> None:
    lin = builder.lineage
    tree = lin.tree_of(builder.baseline_commit)
    with pytest.raises(LineageError):
        lin.commit_trial(tree, builder.baseline_commit, "h", {"Agent": "two\nlines"})
    with pytest.raises(LineageError):
        lin.commit_trial(tree, "0" * 40, "h", {})
    with pytest.raises(LineageError):
        lin.commit_trial("0" * 40, builder.baseline_commit, "h", {})


def test_hypothesis_round_trips_exactly(builder: RunBuilder) -> None:
    hyp = "Line one.\n\nKey: looks like a trailer\n\nUnicode: \u00e9\u4e2d \U0001f600\n"
    rec = builder.propose(hypothesis=hyp)
    builder.finish(rec)
    msg = builder.lineage._commit_object(rec.trial.commit).message  # noqa: SLF001
    assert parse_message(msg)[0] == hyp
    from trajectories.verify import verify_lineage

    assert verify_lineage(builder.run_dir).problems == []


# ---------------------------------------------------------------------------
# the ledger
# ---------------------------------------------------------------------------


def test_ledger_commits_and_trailers(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    log = git(run, "log", "--reverse", "--format=%P|%B%x00", "refs/heads/ledger").split("\0")
    entries = [e.strip("\n") for e in log if e.strip("\n")]
    assert len(entries) == 1 + 2 * 5
    first_parents, first_msg = entries[0].split("|", 1)
    assert first_parents == "" and "Event: start" in first_msg
    for entry in entries[1:]:
        parents, msg = entry.split("|", 1)
        assert len(parents.split()) == 1
        _, trailers = parse_message(msg + "\n")
        assert trailers["Event"] in ("proposed", "outcome")
        rec = small_run.lineage.record(trailers["Trial-Id"])
        assert trailers["Trial-Commit"] == rec.trial.commit
    assert git(run, "rev-parse", "refs/trials/t0002").strip() == small_run.lineage.record("t0002").trial.commit


def test_record_paths_and_sharding() -> None:
    assert record_path("t0000") == "trials/0000/t0000.json"
    assert record_path("t0099") == "trials/0000/t0099.json"
    assert record_path("t0100") == "trials/0001/t0100.json"
    assert record_path("t10469") == "trials/0104/t10469.json"
    assert shard_of("t123456") == "1234"


def test_json_is_byte_stable(small_run: RunBuilder) -> None:
    lin = small_run.lineage
    for rec in lin.records():
        stored = lin.read_file("refs/heads/ledger", record_path(rec.trial.id))
        assert stored == dump_json(rec)
        assert stored == dump_json(TrialRecord.model_validate_json(stored))
        assert stored.endswith(b"}\n") and stored.startswith(b'{\n "outcome"')
        assert stored == (json.dumps(json.loads(stored), sort_keys=True, indent=1) + "\n").encode()
    run_json = lin.read_file("refs/heads/ledger", "run.json")
    assert run_json == dump_json(small_run.info)


def test_dump_json_refuses_nan(small_run: RunBuilder) -> None:
    rec = small_run.propose()
    bad = TrialRecord(trial=rec.trial, outcome=make_outcome(Label.not_improved, float("nan")))
    with pytest.raises(LineageError, match="NaN"):
        small_run.lineage.record_outcome(bad)
    assert small_run.lineage.record(rec.trial.id).outcome is None


def test_record_proposed_refuses_duplicates(small_run: RunBuilder) -> None:
    lin = small_run.lineage
    rec = lin.record("t0002")
    head = lin.ledger_head()
    with pytest.raises(LineageError, match="already in the ledger"):
        lin.record_proposed(TrialRecord(trial=rec.trial))
    assert lin.ledger_head() == head
    # Also across processes: a fresh handle refuses it too.
    with pytest.raises(LineageError, match="already in the ledger"):
        Lineage.open(small_run.run_dir).record_proposed(TrialRecord(trial=rec.trial))


def test_record_proposed_refuses_inconsistent_records(small_run: RunBuilder) -> None:
    lin = small_run.lineage
    rec = small_run.propose()
    lin_head = lin.ledger_head()
    t = rec.trial
    nxt = "t0006"
    base = {"id": nxt}
    with pytest.raises(LineageError, match="no outcome yet"):
        lin.record_proposed(TrialRecord(trial=t.model_copy(update=base), outcome=make_outcome(Label.keep, 0.9)))
    with pytest.raises(LineageError, match="next trial id is t0006"):
        lin.record_proposed(TrialRecord(trial=t.model_copy(update={"id": "t0009"})))
    with pytest.raises(LineageError, match="is missing"):
        lin.record_proposed(TrialRecord(trial=t.model_copy(update={"id": nxt, "commit": "f" * 40})))
    with pytest.raises(LineageError, match="already belongs to t0005"):
        lin.record_proposed(TrialRecord(trial=t.model_copy(update=base)))
    # A fresh commit whose Trial-Id trailer says t0005 cannot be recorded as t0006.
    parent_commit = lin.record(t.parent).trial.commit
    other = lin.commit_trial(
        lin.tree_of(t.commit),
        parent_commit,
        t.proposal.hypothesis,
        trial_trailers("t0005", t.parent, "other-agent", None, "full"),
    )
    with pytest.raises(LineageError, match="Trial-Id"):
        lin.record_proposed(TrialRecord(trial=t.model_copy(update={"id": nxt, "commit": other})))
    with pytest.raises(LineageError, match="run id"):
        lin.record_proposed(TrialRecord(trial=t.model_copy(update={**base, "run_id": "other"})))
    assert lin.ledger_head() == lin_head


def test_record_outcome_rules(small_run: RunBuilder) -> None:
    lin = small_run.lineage
    rec = small_run.propose()
    with pytest.raises(LineageError, match="no outcome"):
        lin.record_outcome(rec)
    changed = rec.trial.model_copy(update={"fidelity": "smoke"})
    with pytest.raises(LineageError, match="differs from the proposed"):
        lin.record_outcome(TrialRecord(trial=changed, outcome=make_outcome(Label.crash, None)))
    lin.record_outcome(TrialRecord(trial=rec.trial, outcome=make_outcome(Label.crash, None)))
    with pytest.raises(LineageError, match="already recorded"):
        lin.record_outcome(TrialRecord(trial=rec.trial, outcome=make_outcome(Label.crash, None)))
    unknown = rec.trial.model_copy(update={"id": "t0077"})
    with pytest.raises(LineageError, match="not in the ledger"):
        lin.record_outcome(TrialRecord(trial=unknown, outcome=make_outcome(Label.crash, None)))


def test_start_rules(tmp_path: Path, source: Path, builder: RunBuilder) -> None:
    with pytest.raises(LineageError, match="already started"):
        builder.lineage.start(builder.info)
    lin = Lineage.init(tmp_path / "other")
    with pytest.raises(LineageError, match="not started"):
        lin.record_proposed(builder.lineage.record("t0000"))
    with pytest.raises(LineageError, match="does not exist"):
        lin.start(builder.info)  # its baseline commit lives in another repository
    assert lin.ledger_head() is None and lin.best() is None and lin.records() == []
    with pytest.raises(LineageError):
        lin.run_info()


def test_cas_refuses_a_stale_proposal(small_run: RunBuilder) -> None:
    """Two writers: a proposal written on a stale view fails and changes nothing."""
    stale = Lineage.open(small_run.run_dir)
    rec = small_run.propose()  # t0005 through the builder's handle
    head = small_run.lineage.ledger_head()
    with pytest.raises(LineageError, match="moved under us or a ref already exists"):
        stale.record_proposed(TrialRecord(trial=rec.trial))
    assert git(small_run.run_dir, "rev-parse", "refs/heads/ledger").strip() == head
    stale.refresh()
    assert stale.ledger_head() == head and stale.record("t0005") == rec


def test_cas_refuses_a_moved_ledger(small_run: RunBuilder) -> None:
    """The ledger ref moves only from the head the writer read (update-ref new old)."""
    rec = small_run.propose()
    stale = Lineage.open(small_run.run_dir)
    done = small_run.finish(rec, Label.crash, None)  # moves the ledger
    head = small_run.lineage.ledger_head()
    assert stale.ledger_head() != head
    with pytest.raises(LineageError, match="moved under us"):
        stale.record_outcome(done)
    assert git(small_run.run_dir, "rev-parse", "refs/heads/ledger").strip() == head
    # The objects of the failed write exist but nothing names them: a fresh open sees the last good state.
    fresh = Lineage.open(small_run.run_dir)
    assert fresh.ledger_head() == head and fresh.record(rec.trial.id) == done
    from trajectories.verify import verify_lineage

    assert verify_lineage(small_run.run_dir).problems == []


def test_set_best_and_best(small_run: RunBuilder) -> None:
    lin = small_run.lineage
    assert lin.best() == "t0003"
    with pytest.raises(LineageError, match="only a kept trial"):
        lin.set_best("t0002")
    lin.set_best("t0001")
    assert lin.best() == "t0001"
    assert git(small_run.run_dir, "rev-parse", "refs/heads/best").strip() == lin.record("t0001").trial.commit
    assert Lineage.open(small_run.run_dir).best() == "t0001"
    with pytest.raises(KeyError):
        lin.set_best("t0099")
    # A stale handle cannot move best behind our back.
    other = Lineage.open(small_run.run_dir)
    lin.set_best("t0003")
    with pytest.raises(LineageError, match="moved"):
        other.set_best("t0000")


# ---------------------------------------------------------------------------
# reads
# ---------------------------------------------------------------------------


def test_reads(small_run: RunBuilder, tmp_path: Path) -> None:
    lin = small_run.lineage
    assert [r.trial.id for r in lin.records()] == ["t0000", "t0001", "t0002", "t0003", "t0004"]
    with pytest.raises(KeyError):
        lin.record("t0042")
    assert lin.run_info().run_id == RUN_ID
    commit = lin.record("t0003").trial.commit
    with pytest.raises(FileNotFoundError):
        lin.read_file(commit, "nope.py")
    files = lin.files(commit)
    assert files["model.py"][1] == git(small_run.run_dir, "rev-parse", f"{commit}:model.py").strip()
    dest = tmp_path / "export"
    lin.export(commit, dest)
    assert (dest / "model.py").read_bytes() == lin.read_file(commit, "model.py")
    assert (dest / "conf" / "a.toml").exists() and not (dest / "__pycache__").exists()
    assert os.stat(dest / "run.sh").st_mode & stat.S_IXUSR
    assert not os.stat(dest / "model.py").st_mode & stat.S_IXUSR
    with pytest.raises(LineageError, match="empty"):
        lin.export(commit, dest)


def test_pack_keeps_everything_readable(small_run: RunBuilder) -> None:
    lin = small_run.lineage
    lin.pack()
    again = Lineage.open(small_run.run_dir)
    assert again.records() == lin.records()
    small_run.lineage = again
    small_run.trial(score=0.95)
    from trajectories.verify import verify_lineage

    assert verify_lineage(small_run.run_dir).problems == []


def test_works_without_git_identity(small_run: RunBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EMAIL", raising=False)
    lin = Lineage.open(small_run.run_dir)
    small_run.lineage = lin
    small_run.trial(score=0.99)
    author = subprocess.run(
        ["git", "log", "-1", "--format=%an <%ae>", "refs/heads/ledger"],
        cwd=small_run.run_dir,
        stdout=subprocess.PIPE,
        check=True,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home")},
    ).stdout.decode().strip()
    assert author == "harness <harness@localhost>"


def test_hooks_never_run(small_run: RunBuilder) -> None:
    hooks = small_run.run_dir / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in ("reference-transaction", "post-commit", "pre-commit"):
        hook = hooks / name
        hook.write_text("#!/bin/sh\necho hook ran >&2\nexit 1\n")
        hook.chmod(0o755)
    lin = Lineage.open(small_run.run_dir)
    small_run.lineage = lin
    small_run.trial(score=0.97)
    assert lin.best() == "t0005"


def test_copy_of_a_run_opens_and_verifies(small_run: RunBuilder, tmp_path: Path) -> None:
    """A mirror clone (all refs, no local config) is still a lineage; opening writes nothing."""
    copy = tmp_path / "copy"
    copy.mkdir()
    subprocess.run(
        ["git", "clone", "-q", "--mirror", str(small_run.run_dir / ".git"), str(copy / ".git")],
        env=git_env(None),
        check=True,
    )
    before = sorted(p for p in (copy / ".git").rglob("*") if p.is_file())
    lin = Lineage.open(copy)
    assert lin.records() == small_run.lineage.records() and lin.best() == "t0003"
    from trajectories.verify import verify_lineage

    assert verify_lineage(copy).problems == []
    assert sorted(p for p in (copy / ".git").rglob("*") if p.is_file()) == before


def test_spooled_git_runs_give_what_piped_runs_give(small_run: RunBuilder, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from trajectories._git import GitError

    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))
    repo = small_run.lineage.git
    shas = [line.split()[0] for line in repo.text("rev-list", "--objects", "--all").splitlines()] * 50
    batch = "".join(s + "\n" for s in shas).encode()
    piped = repo.run("cat-file", "--batch", input=batch)
    spooled = repo.run("cat-file", "--batch", input=batch, spool=True)
    assert len(piped.stdout) > 100_000 and spooled.stdout == piped.stdout and spooled.returncode == 0
    failed = [repo.run("cat-file", "-t", "f" * 40, check=False, spool=spool) for spool in (False, True)]
    assert failed[0].returncode == failed[1].returncode != 0 and failed[0].stderr == failed[1].stderr != b""
    with pytest.raises(GitError, match="cat-file"):
        repo.run("cat-file", "-t", "f" * 40, spool=True)
    assert list(spool_dir.iterdir()) == []  # the files were never named
