"""verify_lineage: a clean run verifies; every kind of tampering is named by trial."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from lineage_helpers import (
    RunBuilder,
    _tree_with,
    commit_tree,
    edit_diff,
    edit_json,
    git,
    ledger_append,
    ledger_rewrite,
    make_outcome,
    message_of,
)

from harness.types import Label, Outcome, PhaseUsage, TrialRecord
from trajectories.lineage import Lineage, record_path
from trajectories.verify import verify_lineage


def names(report, tid: str) -> list[str]:  # noqa: ANN001
    return [p for p in report.problems if p.startswith(f"{tid}:")]


def assert_named(run_dir: Path, tid: str, needle: str = "") -> list[str]:
    report = verify_lineage(run_dir)
    assert not report.ok
    hits = [p for p in names(report, tid) if needle in p]
    assert hits, f"no problem naming {tid} with {needle!r}: {report.problems}"
    return report.problems


# ---------------------------------------------------------------------------
# Clean runs
# ---------------------------------------------------------------------------


def test_happy_path_verifies_clean(small_run: RunBuilder) -> None:
    report = verify_lineage(small_run.run_dir)
    assert report.problems == []
    assert report.ok
    assert [r.trial.id for r in report.records] == ["t0000", "t0001", "t0002", "t0003", "t0004"]
    assert report.best == "t0003"
    assert report.info == small_run.info
    assert report.records == small_run.lineage.records()


def test_verify_after_reopen_and_more_trials(small_run: RunBuilder) -> None:
    lineage = Lineage.open(small_run.run_dir)
    small_run.lineage = lineage
    small_run.trial(score=0.9, specialist="optimizer")
    small_run.trial(score=0.1)
    assert verify_lineage(small_run.run_dir).problems == []


def test_verify_across_shards(builder: RunBuilder) -> None:
    """More than 100 trials: records spread over trials/0000 and trials/0001."""
    lin = builder.lineage
    for _ in range(101):
        parent = lin.best()
        tree = lin.tree_of(lin.record(parent).trial.commit)
        rec = builder.propose(diff="junk", tree=tree, stored_diff="junk")
        builder.finish(rec, Label.malformed_proposal, None)
    builder.trial(score=0.8)
    assert lin.next_trial_number() == 103
    files = git(builder.run_dir, "ls-tree", "-r", "--name-only", "refs/heads/ledger").split()
    assert "trials/0001/t0102.json" in files and "trials/0000/t0099.json" in files
    report = verify_lineage(builder.run_dir)
    assert report.problems == []
    assert report.best == "t0102"


def test_interrupted_run_is_named(small_run: RunBuilder) -> None:
    small_run.propose()
    problems = assert_named(small_run.run_dir, "t0005", "proposed but no outcome")
    assert "t0005: proposed but no outcome (interrupted run?)" in problems


def test_not_a_run_never_raises(tmp_path: Path) -> None:
    report = verify_lineage(tmp_path / "nowhere")
    assert not report.ok and report.problems[0].startswith("run:")
    (tmp_path / "repo").mkdir()
    git(tmp_path / "repo", "init", "-q")
    report = verify_lineage(tmp_path / "repo")
    assert report.problems == ["ledger: refs/heads/ledger is missing"]


def corrupt_packed_object(run: Path, sha: str) -> None:
    """Overwrite the compressed data of a packed object with garbage (the pack stays in place)."""
    for index in (run / ".git" / "objects" / "pack").glob("*.idx"):
        listing = subprocess.run(["git", "show-index"], stdin=index.open("rb"), capture_output=True, text=True,
                                 check=True).stdout
        offsets = {line.split()[1]: int(line.split()[0]) for line in listing.splitlines()}
        if sha in offsets:
            pack = index.with_suffix(".pack")
            pack.chmod(0o644)
            with pack.open("r+b") as fh:
                fh.seek(offsets[sha] + 2)
                fh.write(b"garbage garbage")
            return
    raise AssertionError(f"{sha} is in no pack")


def test_corrupt_object_never_raises(small_run: RunBuilder) -> None:
    record = small_run.lineage.record("t0002")
    small_run.lineage.close()
    corrupt_packed_object(small_run.run_dir, record.trial.commit)
    report = verify_lineage(small_run.run_dir)
    assert not report.ok


# ---------------------------------------------------------------------------
# (a) amended trial commit
# ---------------------------------------------------------------------------


def test_amended_trial_commit(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    rec = small_run.lineage.record("t0002")
    parent = small_run.lineage.record(rec.trial.parent).trial.commit
    tree = _tree_with(run, rec.trial.commit + "^{tree}", {"model.py": b"LAYER_0 = 999\n"})
    amended = commit_tree(run, tree, [parent], message_of(run, rec.trial.commit))
    git(run, "update-ref", "refs/trials/t0002", amended)
    assert_named(run, "t0002", "refs/trials/t0002 points at")


def test_amended_trial_commit_with_rewritten_ledger(small_run: RunBuilder) -> None:
    """The tamperer also rewrites the ledger to name the amended commit: the diff no longer matches."""
    run = small_run.run_dir
    rec = small_run.lineage.record("t0002")
    parent = small_run.lineage.record(rec.trial.parent).trial.commit
    tree = _tree_with(run, rec.trial.commit + "^{tree}", {"model.py": b"LAYER_0 = 999\n"})
    amended = commit_tree(run, tree, [parent], message_of(run, rec.trial.commit))
    git(run, "update-ref", "refs/trials/t0002", amended)
    ledger_rewrite(run, record_path("t0002"), edit_json(["trial", "commit"], amended))
    problems = assert_named(run, "t0002", "stored diff differs")
    assert any(p.startswith("t0002:") and "names trial commit" in p for p in problems)


# ---------------------------------------------------------------------------
# (b) edited ledger record
# ---------------------------------------------------------------------------


def test_ledger_commit_on_top_edits_hypothesis(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    path = record_path("t0001")
    data = small_run.lineage.read_file("refs/heads/ledger", path)
    rec = small_run.lineage.record("t0001")
    msg = f"outcome t0001\n\nEvent: outcome\nTrial-Id: t0001\nTrial-Commit: {rec.trial.commit}\n"
    ledger_append(run, {path: edit_json(["trial", "proposal", "hypothesis"], "Something nicer.")(data)}, msg)
    problems = assert_named(run, "t0001", "changes more than the outcome")
    assert any(p.startswith("t0001:") and "hypothesis differs" in p for p in problems)
    assert any(p.startswith("t0001:") and "2 outcome events" in p for p in problems)
    assert not any(p.startswith("best:") for p in problems)  # the first outcome event counts


def test_ledger_commit_without_trailers_edits_record(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    path = record_path("t0001")
    data = small_run.lineage.read_file("refs/heads/ledger", path)
    ledger_append(run, {path: edit_json(["trial", "proposal", "hypothesis"], "Nicer.")(data)}, "fix typo\n")
    assert_named(run, "t0001", "no valid Trial-Id")


def test_rewritten_ledger_history_hypothesis(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    ledger_rewrite(run, record_path("t0001"), edit_json(["trial", "proposal", "hypothesis"], "Rewritten."))
    problems = assert_named(run, "t0001", "hypothesis differs")
    # The rewrite itself is internally consistent: only the cross-check with the trial commit fails.
    assert all(p.startswith("t0001:") for p in problems), problems


# ---------------------------------------------------------------------------
# (c) rewritten outcome score
# ---------------------------------------------------------------------------


def test_score_changed_by_new_ledger_commit(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    path = record_path("t0002")
    data = small_run.lineage.read_file("refs/heads/ledger", path)
    rec = small_run.lineage.record("t0002")
    msg = f"outcome t0002\n\nEvent: outcome\nTrial-Id: t0002\nTrial-Commit: {rec.trial.commit}\n"
    ledger_append(run, {path: edit_json(["outcome", "score"], 0.99)(data)}, msg)
    problems = assert_named(run, "t0002", "rewrites an outcome already recorded")
    assert any(p.startswith("t0002:") and "not the mean of seed_scores" in p for p in problems)


def test_score_changed_by_history_rewrite(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    ledger_rewrite(run, record_path("t0002"), edit_json(["outcome", "score"], 0.99))
    assert_named(run, "t0002", "not the mean of seed_scores")
    assert_named(run, "t0002", "metrics['acc']")


# ---------------------------------------------------------------------------
# (d) moved best
# ---------------------------------------------------------------------------


def test_moved_best(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    git(run, "update-ref", "refs/heads/best", small_run.lineage.record("t0002").trial.commit)
    report = verify_lineage(run)
    assert "best: points at t0002 but the best kept trial is t0003" in report.problems
    assert report.best == "t0002"


def test_best_missing_or_not_a_trial(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    git(run, "update-ref", "refs/heads/best", git(run, "rev-parse", "refs/heads/ledger").strip())
    assert any("t0003" in p for p in verify_lineage(run).problems if p.startswith("best:"))
    git(run, "update-ref", "-d", "refs/heads/best")
    assert any("t0003" in p for p in verify_lineage(run).problems if p.startswith("best:"))


# ---------------------------------------------------------------------------
# (e) deleted trial
# ---------------------------------------------------------------------------


def test_deleted_trial_ref(small_run: RunBuilder) -> None:
    git(small_run.run_dir, "update-ref", "-d", "refs/trials/t0002")
    assert_named(small_run.run_dir, "t0002", "refs/trials/t0002 is missing")


def test_deleted_record_file(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    ledger_append(run, {record_path("t0002"): None}, "drop t0002\n")
    problems = assert_named(run, "t0002", "deletes its record")
    assert any(p.startswith("t0002:") and "refs/trials/t0002 has no record" in p for p in problems)
    assert [r.trial.id for r in verify_lineage(run).records] == ["t0000", "t0001", "t0003", "t0004"]


def test_record_removed_from_history(small_run: RunBuilder) -> None:
    """A rewrite that drops the last trial entirely still leaves its trial ref behind."""
    run = small_run.run_dir
    chain = git(run, "rev-list", "refs/heads/ledger").split()
    git(run, "update-ref", "refs/heads/ledger", chain[2])  # drop t0004's two events
    assert_named(run, "t0004", "has no record in the ledger")


def test_extra_trial_ref(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    git(run, "update-ref", "refs/trials/t0042", small_run.lineage.record("t0001").trial.commit)
    assert_named(run, "t0042", "has no record")


# ---------------------------------------------------------------------------
# (f) protected file changed, (g) stored diff differs
# ---------------------------------------------------------------------------


def test_trial_changes_protected_file(small_run: RunBuilder) -> None:
    lin = small_run.lineage
    parent_commit = lin.record("t0003").trial.commit
    diff = edit_diff(lin, parent_commit, "train.py", 1, "print('cheat')")
    rec = small_run.propose(diff=diff)
    small_run.finish(rec, Label.not_improved, 0.5)
    assert_named(small_run.run_dir, "t0005", "protected path 'train.py' changed")


def test_trial_adds_file_outside_surface(small_run: RunBuilder) -> None:
    diff = (
        "diff --git a/extra.py b/extra.py\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/extra.py\n@@ -0,0 +1 @@\n+x = 1\n"
    )
    rec = small_run.propose(diff=diff)
    small_run.finish(rec, Label.not_improved, 0.5)
    assert_named(small_run.run_dir, "t0005", "protected path 'extra.py' added")


def test_stored_diff_differs(small_run: RunBuilder) -> None:
    lin = small_run.lineage
    parent_commit = lin.record("t0003").trial.commit
    diff = edit_diff(lin, parent_commit, "model.py", 4, "LAYER_4 = 44")
    rec = small_run.propose(diff=diff, stored_diff=diff)  # the agent's diff, not git's canonical one
    small_run.finish(rec, Label.not_improved, 0.5)
    assert_named(small_run.run_dir, "t0005", "stored diff differs")


def test_pre_run_label_with_changed_tree(small_run: RunBuilder) -> None:
    rec = small_run.propose()
    small_run.finish(rec, Label.illegal_edit, None)
    assert_named(small_run.run_dir, "t0005", "decided before running")


# ---------------------------------------------------------------------------
# Outcome consistency
# ---------------------------------------------------------------------------


def _finish_raw(builder: RunBuilder, **changes) -> str:  # noqa: ANN003
    rec = builder.propose()
    base = make_outcome(Label.not_improved, 0.5, [0.49, 0.51])
    outcome = Outcome.model_validate({**base.model_dump(mode="json"), **changes})
    builder.lineage.record_outcome(TrialRecord(trial=rec.trial, outcome=outcome))
    return rec.trial.id


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"score": None}, "without a score"),
        ({"seed_scores": [0.1, 0.2]}, "not the mean of seed_scores"),
        ({"metrics": {"other": 1.0}}, "missing from metrics"),
        ({"label": "gate_miss", "status": "fail"}, "no gate failed"),
        ({"label": "budget_overrun", "status": "fail"}, "no train phase timed out"),
        ({"label": "eval_budget_overrun", "status": "fail"}, "no eval phase timed out"),
        (
            {"gates": [{"metric": "acc", "op": ">=", "threshold": 0.9, "value": 0.5, "passed": False}]},
            "gates failed",
        ),
    ],
)
def test_outcome_inconsistencies(small_run: RunBuilder, changes: dict, needle: str) -> None:
    tid = _finish_raw(small_run, **changes)
    assert_named(small_run.run_dir, tid, needle)


def test_consistent_failure_labels_verify(small_run: RunBuilder) -> None:
    rec = small_run.propose()
    timed_out = make_outcome(Label.budget_overrun, None).model_copy(
        update={"phases": [PhaseUsage(phase="train", seed=0, wallclock_s=61, exit_code=None, timed_out=True)]}
    )
    small_run.lineage.record_outcome(TrialRecord(trial=rec.trial, outcome=timed_out))
    rec = small_run.propose()
    small_run.finish(rec, Label.crash, None)
    assert verify_lineage(small_run.run_dir).problems == []


def test_baseline_must_be_kept(small_run: RunBuilder) -> None:
    run = small_run.run_dir

    def demote(data: bytes) -> bytes:
        doc = json.loads(data)
        if doc.get("outcome"):
            doc["outcome"]["label"] = "not_improved"
            doc["outcome"]["status"] = "discard"
        return (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode()

    ledger_rewrite(run, record_path("t0000"), demote)
    assert_named(run, "t0000", "baseline must be kept")


def test_non_linear_ledger(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    chain = git(run, "rev-list", "refs/heads/ledger").split()
    head = chain[0]
    merge = commit_tree(run, head + "^{tree}", [head, chain[3]], message_of(run, head))
    git(run, "update-ref", "refs/heads/ledger", merge)
    report = verify_lineage(run)
    assert any("parents" in p for p in report.problems)


def test_invalid_record_names_trial(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    ledger_rewrite(run, record_path("t0003"), edit_json(["trial", "fidelity"], 7))
    assert_named(run, "t0003", "does not validate")


def test_non_canonical_json_names_trial(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    ledger_rewrite(run, record_path("t0003"), lambda data: json.dumps(json.loads(data)).encode())
    assert_named(run, "t0003", "canonical JSON")


def test_non_canonical_trial_part_of_an_outcome_record_names_trial(small_run: RunBuilder) -> None:
    """The proposed record stays canonical; only the outcome event's copy of the trial is spaced
    differently (the verifier reuses the proposed record's text of an unchanged trial)."""
    run = small_run.run_dir

    def respace_trial(data: bytes) -> bytes:
        if not data.startswith(b'{\n "outcome"'):
            return data
        head, sep, trial = data.partition(b'\n "trial": ')
        assert sep and b'\n  "fidelity": ' in trial
        return head + sep + trial.replace(b'\n  "fidelity": ', b'\n  "fidelity":  ', 1)

    ledger_rewrite(run, record_path("t0003"), respace_trial)
    problems = assert_named(run, "t0003", "canonical JSON")
    assert not any("changes more than the outcome" in p for p in problems)


def _proposed_only(transform):  # noqa: ANN001, ANN202
    """`transform` applied to the proposed version of a record only (the outcome version kept)."""
    return lambda data: transform(data) if data.startswith(b'{\n "trial": ') else data


def test_non_canonical_proposed_record_is_named_though_its_outcome_record_is_canonical(
        small_run: RunBuilder) -> None:
    """The verifier settles a proposed record by its outcome record's trial text: a proposed
    record spaced differently must still be checked and named at its own event."""
    run = small_run.run_dir
    ledger_rewrite(run, record_path("t0003"),
                   _proposed_only(lambda data: data.replace(b'\n  "fidelity": ', b'\n  "fidelity":  ', 1)))
    problems = assert_named(run, "t0003", "canonical JSON")
    assert any("proposed event" in p and "canonical JSON" in p for p in problems), problems


def test_proposed_record_with_another_trial_is_named(small_run: RunBuilder) -> None:
    """A hypothesis changed in the proposed record only: the outcome event then changes more
    than the outcome (the proposed record is valid and canonical, but not the outcome record's trial)."""
    run = small_run.run_dir
    ledger_rewrite(run, record_path("t0003"), _proposed_only(edit_json(["trial", "proposal", "hypothesis"], "other")))
    problems = assert_named(run, "t0003", "changes more than the outcome")
    assert not any("canonical JSON" in p for p in problems), problems


def test_proposed_record_that_already_holds_an_outcome_is_named(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    final = small_run.lineage.read_file("refs/heads/ledger", record_path("t0003"))
    ledger_rewrite(run, record_path("t0003"), _proposed_only(lambda _data: final))
    assert_named(run, "t0003", "already holds an outcome")


def test_absurd_trial_number_stays_bounded(small_run: RunBuilder) -> None:
    run = small_run.run_dir
    data = small_run.lineage.read_file("refs/heads/ledger", record_path("t0001"))
    data = edit_json(["trial", "id"], "t999999999")(data)
    ledger_append(run, {record_path("t999999999"): data}, "sneak\n")
    report = verify_lineage(run)
    assert any(p.startswith("t999999999:") for p in report.problems)
    assert any(p.startswith("ledger:") and "more trial ids" in p for p in report.problems)
    assert len(report.problems) < 100
