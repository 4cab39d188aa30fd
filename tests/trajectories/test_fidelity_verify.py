"""Replay and verify across fidelity levels: the per-level keep rule, promotions
(same code, a level up, after the parent's scored outcome), `best` at the
baseline's level, and damage to any of these named by trial."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lineage_helpers import RUN_ID, _tree_with, commit_tree, edit_diff, git, make_outcome, make_recipe, make_source  # noqa: E402

from harness.replay import replay  # noqa: E402
from harness.types import (  # noqa: E402
    BASELINE_TRIAL_ID,
    FidelityPolicy,
    FidelitySpec,
    Label,
    Proposal,
    RunInfo,
    Trial,
    TrialRecord,
    trial_id,
)
from trajectories.lineage import Lineage, trial_trailers  # noqa: E402
from trajectories.verify import verify_lineage  # noqa: E402


class LevelsBuilder:
    """A lineage with levels smoke (0.25) and full (1), written through the public API."""

    def __init__(self, run_dir: Path, source: Path, budget: float | None = None) -> None:
        recipe = make_recipe().model_copy(update={"fidelities": {"full": FidelitySpec(cost=1.0),
                                                                "smoke": FidelitySpec(cost=0.25)}})
        self.lineage = lin = Lineage.init(run_dir)
        commit = lin.commit_baseline(source, "Baseline.", trial_trailers(BASELINE_TRIAL_ID, None, "baseline", None, "full"))
        lin.start(RunInfo(run_id=RUN_ID, recipe=recipe, recipe_dir="recipes/toy", baseline_commit=commit,
                          evaluator_digest="e" * 64, agent="random", seed=0, created="2024-01-01T00:00:00Z",
                          harness_version="0.1.0",
                          fidelity_policy=FidelityPolicy(name="halving", budget=budget) if budget else None))
        base = Trial(id=BASELINE_TRIAL_ID, run_id=RUN_ID, proposal=Proposal(hypothesis="Baseline.", diff="",
                     agent="baseline"), fidelity="full", seeds=[0], commit=commit)
        lin.record_proposed(TrialRecord(trial=base))
        self.finish(base, Label.keep, 0.5)

    def propose(self, parent: str, level: str, move: str | None = None) -> Trial:
        lin = self.lineage
        n = lin.next_trial_number()
        tid = trial_id(n)
        parent_commit = lin.record(parent).trial.commit
        if move is None:
            diff = edit_diff(lin, parent_commit, "model.py", n % 20, f"LAYER_{n % 20} = {n * 7}")
            tree = lin.apply_diff(parent_commit, diff)
        else:
            tree = lin.tree_of(parent_commit)
        agent = move or "random"
        commit = lin.commit_trial(tree, parent_commit, f"Trial {tid}.",
                                  trial_trailers(tid, parent, agent, None, level, move))
        proposal = Proposal(hypothesis=f"Trial {tid}.", diff=lin.diff(parent_commit, commit), parent=parent, agent=agent)
        trial = Trial(id=tid, run_id=RUN_ID, parent=parent, proposal=proposal, fidelity=level, seeds=[0],
                      commit=commit, fidelity_move=move)
        lin.record_proposed(TrialRecord(trial=trial))
        return trial

    def finish(self, trial: Trial, label: Label, score: float | None, *, move_best: bool = True) -> None:
        self.lineage.record_outcome(TrialRecord(trial=trial, outcome=make_outcome(label, score)))
        if label is Label.keep and move_best and trial.fidelity == "full":
            self.lineage.set_best(trial.id)

    def trial(self, parent: str, level: str, label: Label, score: float | None, move: str | None = None) -> Trial:
        trial = self.propose(parent, level, move)
        self.finish(trial, label, score)
        return trial


@pytest.fixture
def halving(tmp_path) -> tuple[Path, LevelsBuilder]:
    """t0001 smoke reference, t0002/t0003 smoke ideas, t0004 promotion of t0003 to full."""
    run_dir = tmp_path / "run"
    b = LevelsBuilder(run_dir, make_source(tmp_path / "src"), budget=3.0)
    b.trial(BASELINE_TRIAL_ID, "smoke", Label.keep, 0.30, move="reference")
    b.trial(BASELINE_TRIAL_ID, "smoke", Label.not_improved, 0.29)
    # 0.40 beats the smoke best (0.30) but not the full best (0.5): kept at smoke, as it should be
    b.trial(BASELINE_TRIAL_ID, "smoke", Label.keep, 0.40)
    b.trial("t0003", "full", Label.keep, 0.60, move="promotion")
    return run_dir, b


def problems(run_dir: Path) -> list[str]:
    return replay(run_dir).problems


def test_a_halving_lineage_verifies(halving):
    run_dir, _ = halving
    report = replay(run_dir)
    assert report.verified, report.problems
    assert report.best.id == "t0004"
    assert [t.fidelity for t in report.trials] == ["full", "smoke", "smoke", "smoke", "full"]


def test_a_keep_judged_across_levels_is_a_problem(tmp_path):
    b = LevelsBuilder(tmp_path / "run", make_source(tmp_path / "src"))
    b.trial(BASELINE_TRIAL_ID, "smoke", Label.keep, 0.30, move="reference")
    b.trial(BASELINE_TRIAL_ID, "smoke", Label.keep, 0.31)  # beats the smoke best 0.30 (the full 0.5 does not count)
    b.trial(BASELINE_TRIAL_ID, "smoke", Label.keep, 0.305)  # below the smoke best 0.31: not a keep
    found = problems(tmp_path / "run")
    assert any(p.startswith("t0003: recorded keep, but the keep rule says not_improved") for p in found), found
    assert not any(p.startswith("t0002:") for p in found)


def test_a_promotion_whose_code_differs_from_its_parent_is_named(halving, tmp_path):
    run_dir, b = halving
    lin = b.lineage
    parent = lin.record("t0003").trial
    promo = b.propose("t0003", "smoke")  # a second, honest-looking trial to tamper with
    b.finish(promo, Label.not_improved, 0.35)
    # Rewrite t0005 as a "promotion" whose tree is not its parent's: the record, the commit and the ref.
    tree = _tree_with(run_dir, lin.tree_of(parent.commit), {"model.py": b"LAYER_0 = 999\n"})
    forged = commit_tree(run_dir, tree, [parent.commit],
                         "Trial t0005.\n\nTrial-Id: t0005\nParent-Trial: t0003\nAgent: promotion\nSpecialist: none\n"
                         "Fidelity: full\nFidelity-Move: promotion\n")
    git(run_dir, "update-ref", "refs/trials/t0005", forged)
    found = problems(run_dir)
    assert any(p.startswith("t0005: refs/trials/t0005 points at") for p in found)
    # the same damage through the record: a promotion that changes the code
    run2 = tmp_path / "run2"
    c = LevelsBuilder(run2, make_source(tmp_path / "src2"), budget=3.0)
    c.trial(BASELINE_TRIAL_ID, "smoke", Label.keep, 0.3)
    lin2 = c.lineage
    pc = lin2.record("t0001").trial.commit
    diff = edit_diff(lin2, pc, "model.py", 3, "LAYER_3 = 1234")
    commit = lin2.commit_trial(lin2.apply_diff(pc, diff), pc, "Promote t0001.",
                               trial_trailers("t0002", "t0001", "promotion", None, "full", "promotion"))
    trial = Trial(id="t0002", run_id=RUN_ID, parent="t0001", fidelity="full", seeds=[0], commit=commit,
                  fidelity_move="promotion",
                  proposal=Proposal(hypothesis="Promote t0001.", diff=lin2.diff(pc, commit), parent="t0001",
                                    agent="promotion"))
    lin2.record_proposed(TrialRecord(trial=trial))
    c.finish(trial, Label.keep, 0.7)
    found = problems(run2)
    assert "t0002: promotion trial's code differs from its parent t0001's" in found


def test_a_promotion_proposed_before_its_parent_had_an_outcome_is_named(tmp_path):
    b = LevelsBuilder(tmp_path / "run", make_source(tmp_path / "src"))
    idea = b.propose(BASELINE_TRIAL_ID, "smoke")
    promo = b.propose(idea.id, "full", move="promotion")  # the idea is not scored yet
    b.finish(idea, Label.keep, 0.3)
    b.finish(promo, Label.keep, 0.6)
    found = problems(tmp_path / "run")
    assert "t0002: promotion of t0001, which had no scored outcome recorded before this trial was proposed" in found
    # a promotion of a failed trial is named the same way
    b2 = LevelsBuilder(tmp_path / "run2", make_source(tmp_path / "src2"))
    failed = b2.trial(BASELINE_TRIAL_ID, "smoke", Label.crash, None)
    b2.trial(failed.id, "full", Label.keep, 0.6, move="promotion")
    assert any(p.startswith("t0002: promotion of t0001, which had no scored outcome") for p in problems(tmp_path / "run2"))


def test_a_promotion_must_go_up_and_a_reference_down_from_the_baseline(tmp_path):
    b = LevelsBuilder(tmp_path / "run", make_source(tmp_path / "src"))
    b.trial(BASELINE_TRIAL_ID, "full", Label.not_improved, 0.45, move="promotion")
    b.trial(BASELINE_TRIAL_ID, "full", Label.not_improved, 0.45, move="reference")
    found = problems(tmp_path / "run")
    assert "t0001: promotion to full is not above its parent t0000's level full" in found
    assert "t0002: reference run at full must repeat the baseline at a lower level (parent t0000 at full)" in found


def test_best_at_another_level_is_a_problem(halving):
    run_dir, b = halving
    b.lineage.set_best("t0003")  # kept, but at smoke
    found = problems(run_dir)
    assert "best: points at t0003 but the best kept trial is t0004" in found


def test_a_trial_running_its_parents_code_must_be_a_promotion(tmp_path):
    b = LevelsBuilder(tmp_path / "run", make_source(tmp_path / "src"))
    lin = b.lineage
    pc = lin.record(BASELINE_TRIAL_ID).trial.commit
    commit = lin.commit_trial(lin.tree_of(pc), pc, "Same again.",
                              trial_trailers("t0001", BASELINE_TRIAL_ID, "random", None, "smoke"))
    trial = Trial(id="t0001", run_id=RUN_ID, parent=BASELINE_TRIAL_ID, fidelity="smoke", seeds=[0], commit=commit,
                  proposal=Proposal(hypothesis="Same again.", diff="", parent=BASELINE_TRIAL_ID, agent="random"))
    lin.record_proposed(TrialRecord(trial=trial))
    b.finish(trial, Label.keep, 0.3)
    assert "t0001: runs the code of its parent t0000 unchanged but is not a promotion" in problems(tmp_path / "run")


def test_spending_over_the_budget_and_unknown_levels_are_problems(tmp_path):
    b = LevelsBuilder(tmp_path / "run", make_source(tmp_path / "src"), budget=1.0)
    b.trial(BASELINE_TRIAL_ID, "full", Label.not_improved, 0.45)
    b.trial(BASELINE_TRIAL_ID, "smoke", Label.keep, 0.3)
    b.trial(BASELINE_TRIAL_ID, "huge", Label.keep, 0.9)
    found = verify_lineage(tmp_path / "run").problems
    assert "run: trials cost 1.25 units, over the run's --budget 1" in found
    assert "t0003: fidelity 'huge' is not a level of the recipe (smoke, full)" in found


def test_the_fidelity_move_trailer_must_match_the_record(halving):
    run_dir, b = halving
    # A commit claiming to be a promotion while its record says it is an agent's trial.
    lin = b.lineage
    record = lin.record("t0002").trial
    message = "Trial t0002.\n\n" + "".join(
        f"{k}: {v}\n" for k, v in trial_trailers("t0002", "t0000", "random", None, "smoke", "promotion").items())
    parent_commit = lin.record("t0000").trial.commit
    forged = commit_tree(run_dir, lin.tree_of(record.commit), [parent_commit], message)
    git(run_dir, "update-ref", "refs/trials/t0002", forged)
    assert any("refs/trials/t0002 points at" in p for p in problems(run_dir))
