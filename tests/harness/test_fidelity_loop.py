"""Halving runs through the loop on a fast recipe (the scaffold's spirals with three
levels): promotions with the right parents and levels, the budget never exceeded,
and a resumed run (stopped between trials, or with a proposal recorded but never
run) continuing the schedule exactly as an uninterrupted run would."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.agents.base import make_agent
from harness.fidelity import spent_units
from harness.loop import Run, RunError
from harness.recipe_loader import load_recipe
from harness.recipe_tools import new_recipe
from harness.replay import replay
from harness.types import BASELINE_TRIAL_ID, FidelityPolicy, Label
from sandboxes import make_sandbox
from trajectories.lineage import Lineage

POLICY = FidelityPolicy(name="halving", budget=4.0, eta=3)
"""With costs tiny 0.25, smoke 0.5, full 1: references 0.75, then one bracket of
5 tiny, 2 smoke, 1 full (3.25)."""


@pytest.fixture(scope="module")
def spirals(tmp_path_factory) -> Path:
    """The scaffolded recipe with a third, cheaper level."""
    folder = new_recipe("spirals", tmp_path_factory.mktemp("recipes"))
    toml = folder / "recipe.toml"
    text = toml.read_text()
    assert "[fidelities.smoke]" in text
    toml.write_text(text + '\n[fidelities.tiny]\nenv = { HARNESS_EPOCH_SCALE = "0.25" }\nseeds = [0]\ncost = 0.25\n')
    return folder


class Quiet:
    """A reporter that says nothing; `stop_at` interrupts the run once that trial is proposed."""

    def __init__(self, stop_at: str | None = None) -> None:
        self.stop_at = stop_at

    def trial_started(self, trial) -> None:  # noqa: ANN001
        if trial.id == self.stop_at:
            raise KeyboardInterrupt(f"interrupted after proposing {trial.id}")

    def trial_finished(self, record, best) -> None:  # noqa: ANN001
        pass

    def note(self, text: str) -> None:
        pass


def start(recipe: Path, run_dir: Path, reporter: Quiet, policy: FidelityPolicy | None = POLICY) -> Run:
    return Run.create(load_recipe(recipe), run_dir, agent=make_agent("random", seed=3), sandbox=make_sandbox("local"),
                      reporter=reporter, seed=3, policy=policy)


def resume(recipe: Path, run_dir: Path) -> Run:
    return Run.resume(load_recipe(recipe), run_dir, agent=make_agent("random", seed=3), sandbox=make_sandbox("local"),
                      reporter=Quiet())


def sequence(run_dir: Path) -> list[tuple]:
    with Lineage.open(run_dir) as lineage:
        return [(r.trial.id, r.trial.parent, r.trial.fidelity, r.trial.fidelity_move, r.trial.proposal.agent,
                 r.trial.proposal.hypothesis, r.outcome.label if r.outcome else None) for r in lineage.records()]


@pytest.fixture(scope="module")
def whole_run(spirals, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "whole"
    run = start(spirals, run_dir, Quiet())
    try:
        run.run(100)
    finally:
        run.close()
    return run_dir


def test_halving_run_promotes_the_best_upward_within_the_budget(whole_run):
    with Lineage.open(whole_run) as lineage:
        records, best, info = lineage.records(), lineage.best(), lineage.run_info()
    assert info.fidelity_policy == POLICY
    by_id = {r.trial.id: r for r in records}
    assert [(r.trial.fidelity, r.trial.fidelity_move) for r in records[1:3]] == [("tiny", "reference"),
                                                                                  ("smoke", "reference")]
    ideas = [r for r in records if r.trial.proposal.agent == "random"]
    promotions = [r for r in records if r.trial.fidelity_move == "promotion"]
    assert len(ideas) == 5 and all(r.trial.fidelity == "tiny" for r in ideas)
    assert [r.trial.fidelity for r in promotions] == ["smoke", "smoke", "full"]
    scored = sorted((r for r in ideas if r.outcome.score is not None and r.outcome.status.value != "fail"),
                    key=lambda r: -r.outcome.score)
    assert [p.trial.parent for p in promotions[:2]] == [r.trial.id for r in scored[:2]]
    top = promotions[2]
    assert top.trial.parent == max(promotions[:2], key=lambda r: r.outcome.score).trial.id
    for p in promotions:
        parent = by_id[p.trial.parent]
        assert p.trial.proposal.diff == "" and p.trial.proposal.agent == "promotion"
        assert parent.outcome is not None and parent.outcome.score is not None
    assert spent_units(info.recipe, records) <= POLICY.budget
    # New ideas build on the best kept so far at their (the lowest) level, not on the full-level best.
    tiny_best = None
    for r in records:
        if r.trial.proposal.agent == "random":
            assert r.trial.parent == tiny_best, (r.trial.id, r.trial.parent, tiny_best)
        if r.trial.fidelity == "tiny" and r.outcome.label is Label.keep:
            tiny_best = r.trial.id
    assert tiny_best is not None
    # best is a full-level trial: the baseline or the promoted idea, never a tiny or smoke score
    assert by_id[best].trial.fidelity == "full"
    assert replay(whole_run).verified


def test_resume_between_trials_continues_the_bracket(spirals, whole_run, tmp_path):
    run_dir = tmp_path / "stopped"
    run = start(spirals, run_dir, Quiet())
    try:
        run.run(5)  # 2 references + 3 of the 5 tiny ideas: the rung is not full yet
    finally:
        run.close()
    assert len(sequence(run_dir)) == 6
    again = resume(spirals, run_dir)
    try:
        again.run(100)
    finally:
        again.close()
    assert sequence(run_dir) == sequence(whole_run)
    assert replay(run_dir).verified


def test_resume_with_a_promotion_proposed_but_never_run(spirals, whole_run, tmp_path):
    run_dir = tmp_path / "crashed"
    first_promotion = next(t for t in sequence(whole_run) if t[3] == "promotion")[0]
    run = start(spirals, run_dir, Quiet(stop_at=first_promotion))
    with pytest.raises(KeyboardInterrupt):
        try:
            run.run(100)
        finally:
            run.close()
    with Lineage.open(run_dir) as lineage:
        assert lineage.record(first_promotion).outcome is None
    again = resume(spirals, run_dir)
    try:
        again.run(100)
    finally:
        again.close()
    assert sequence(run_dir) == sequence(whole_run)  # nothing duplicated, nothing skipped


def test_resume_refuses_other_policy_options_and_halving_refuses_parallel(spirals, whole_run, tmp_path):
    with pytest.raises(RunError, match="was started with --fidelity-policy halving --budget 4 --eta 3"):
        Run.resume(load_recipe(spirals), whole_run, agent=make_agent("random"), sandbox=make_sandbox("local"),
                   reporter=Quiet(), policy=FidelityPolicy(name="halving", budget=9.0))
    from harness.scheduler import plan_slots

    run = start(spirals, tmp_path / "par", Quiet())
    try:
        with pytest.raises(RunError, match="use --parallel 1"):
            run.run(3, plan_slots(2, (), 0))
    finally:
        run.close()


def test_fixed_policy_budget_stops_the_run(spirals, tmp_path):
    run_dir = tmp_path / "fixed"
    run = start(spirals, run_dir, Quiet(), policy=FidelityPolicy(name="fixed", budget=2.0))
    try:
        run.run(10)
    finally:
        run.close()
    with Lineage.open(run_dir) as lineage:
        records = lineage.records()
    assert len(records) == 3  # the baseline, then two full trials of cost 1
    assert spent_units(load_recipe(spirals).spec, records) == pytest.approx(2.0)
    assert records[0].outcome.label is Label.keep and records[0].trial.id == BASELINE_TRIAL_ID
