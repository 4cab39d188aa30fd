"""Replay catches tampering done with ordinary git commands, each in its own test."""

from __future__ import annotations

import json

from conftest import git, replay_json


def trial_json_path(run_dir, tid: str) -> str:
    listing = git(run_dir, "ls-tree", "-r", "--name-only", "ledger")
    return next(p for p in listing.splitlines() if p.endswith(f"/{tid}.json"))


def edit_ledger_record(run_dir, tid: str, change) -> None:
    """Check the ledger out in a worktree, edit one record, commit on top (as a person would)."""
    worktree = run_dir.parent / "wt"
    git(run_dir, "worktree", "add", "-q", str(worktree), "ledger")
    path = worktree / trial_json_path(run_dir, tid)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    git(worktree, "commit", "-q", "-am", f"fix {tid}")


def assert_caught(run_dir, tid: str) -> None:
    code, report = replay_json(run_dir)
    assert code != 0 and not report["verified"]
    assert any(tid in problem for problem in report["problems"]), report["problems"]


def test_untouched_copy_verifies(run_copy):
    code, report = replay_json(run_copy)
    assert code == 0, report["problems"]


def test_amended_trial_commit(run_copy):
    ref = "refs/trials/t0001"
    tree = git(run_copy, "rev-parse", f"{ref}^{{tree}}")
    parent = git(run_copy, "rev-parse", f"{ref}^")
    message = git(run_copy, "log", "-1", "--format=%B", ref)
    forged = git(run_copy, "commit-tree", tree, "-p", parent, "-m", message.replace("GRU", "LSTM"))
    git(run_copy, "update-ref", ref, forged)
    assert_caught(run_copy, "t0001")


def test_edited_ledger_record(run_copy):
    edit_ledger_record(run_copy, "t0002", lambda d: d["trial"]["proposal"].update(hypothesis="harmless"))
    assert_caught(run_copy, "t0002")


def test_rewritten_outcome_score(run_copy):
    def boost(data):
        data["outcome"]["score"] = 0.99
        data["outcome"]["seed_scores"] = [0.99]
        data["outcome"]["metrics"]["ap"] = 0.99

    edit_ledger_record(run_copy, "t0001", boost)
    assert_caught(run_copy, "t0001")


def test_moved_best(run_copy):
    git(run_copy, "update-ref", "refs/heads/best", git(run_copy, "rev-parse", "refs/trials/t0000"))
    code, report = replay_json(run_copy)
    assert code != 0
    assert any("best" in p and "t0001" in p for p in report["problems"]), report["problems"]


def test_deleted_trial(run_copy):
    git(run_copy, "update-ref", "-d", "refs/trials/t0003")
    assert_caught(run_copy, "t0003")
