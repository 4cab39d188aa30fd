"""The fidelity policies as pure functions of the trial records: the halving
schedule (references, rungs, promotions, brackets, budget) and the fixed policy."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fidelity_records import recipe, record  # noqa: E402

from harness.fidelity import (  # noqa: E402
    FixedPolicy,
    HalvingPolicy,
    NewProposal,
    PolicyError,
    SameCode,
    Stop,
    make_policy,
    spend_by_level,
    spent_units,
)
from harness.types import Direction, FidelityPolicy, Label, trial_id  # noqa: E402

SPEC = recipe()  # smoke 0.25, short 0.5, full 1


def baseline():
    return [record("t0000", None, "full", 0.5, Label.keep)]


def simulate(policy: HalvingPolicy, scores, limit: int = 200):
    """Drive the policy like the loop does (one trial at a time); a new idea's score is
    scores(n) at its level, a same-code trial's is its parent's plus a level bonus."""
    records = baseline()
    steps = []
    for _ in range(limit):
        step = policy.next_step(records)
        steps.append(step)
        if isinstance(step, Stop):
            return records, steps
        tid = trial_id(len(records))
        if isinstance(step, NewProposal):
            records.append(record(tid, "t0000", step.level, scores(len(records))))
        else:
            parent = next(r for r in records if r.trial.id == step.parent)
            base = parent.outcome.score
            records.append(record(tid, step.parent, step.level, base + 0.1, move=step.move))
    raise AssertionError("the policy never stopped")


def test_reference_runs_first_then_a_rung_of_eta_squared_proposals_at_the_lowest_level():
    policy = HalvingPolicy(SPEC, "full", budget=20, eta=3)
    assert policy.levels == ["smoke", "short", "full"] and policy.bracket == 9
    assert policy.rung_sizes(9) == [9, 3, 1]
    assert policy.bracket_cost(9) == pytest.approx(9 * 0.25 + 3 * 0.5 + 1)
    step = policy.next_step(baseline())
    assert step == SameCode("t0000", "smoke", "reference", step.hypothesis)
    records = baseline() + [record("t0001", "t0000", "smoke", 0.3, move="reference")]
    step = policy.next_step(records)
    assert isinstance(step, SameCode) and (step.level, step.move) == ("short", "reference")
    records.append(record("t0002", "t0000", "short", 0.4, move="reference"))
    assert policy.next_step(records) == NewProposal("smoke")


def test_the_best_third_of_a_rung_is_promoted_in_rank_order_and_failures_never():
    policy = HalvingPolicy(SPEC, "full", budget=20, eta=3)
    records = baseline() + [record("t0001", "t0000", "smoke", 0.3, move="reference"),
                            record("t0002", "t0000", "short", 0.4, move="reference")]
    scores = [0.31, None, 0.50, 0.20, 0.45, 0.33, None, 0.46, 0.10]  # t0003..t0011; None = crash
    for n, score in enumerate(scores, start=3):
        records.append(record(trial_id(n), "t0000", "smoke", score))
    promoted = []
    for n in range(12, 15):
        step = policy.next_step(records)
        assert isinstance(step, SameCode) and step.move == "promotion" and step.level == "short"
        promoted.append(step.parent)
        records.append(record(trial_id(n), step.parent, "short", 0.5 + n / 100, move="promotion"))
    assert promoted == ["t0005", "t0010", "t0007"]  # 0.50, 0.46, 0.45
    assert "rank 1/9" in HalvingPolicy(SPEC, "full", 20)._promotion_text(records[5], 1, 9, "short")
    step = policy.next_step(records)
    assert step.move == "promotion" and step.level == "full" and step.parent == "t0014"  # best short score
    records.append(record("t0015", "t0014", "full", 0.7, move="promotion"))
    assert policy.next_step(records) == NewProposal("smoke")  # the next bracket


def test_minimising_metrics_promote_the_lowest_scores():
    spec = recipe(direction=Direction.minimize)
    policy = HalvingPolicy(spec, "full", budget=20, eta=3)
    rung = [record(trial_id(n), "t0000", "smoke", s) for n, s in enumerate([0.9, 0.1, 0.5], start=3)]
    assert [r.trial.id for r in policy.ranked(rung)] == ["t0004", "t0005", "t0003"]


def test_the_budget_is_never_exceeded_and_brackets_shrink_to_fit():
    for budget in (1.0, 2.3, 4.0, 7.5, 20.0):
        policy = HalvingPolicy(SPEC, "full", budget=budget, eta=3)
        records, steps = simulate(policy, lambda n: (n * 37 % 11) / 10)
        assert spent_units(SPEC, records) <= budget + 1e-9
        assert steps[-1].reason.startswith("budget spent")
        # nothing affordable is left: not even the smallest bracket (1 trial per level)
        assert policy.fitting_bracket(budget - spent_units(SPEC, records)) == 0
    policy = HalvingPolicy(SPEC, "full", budget=4.0, eta=3)
    records, _ = simulate(policy, lambda n: n / 100)
    # 0.75 for the references, then 3.25 left: a bracket of 5 smoke, 2 short, 1 full (3.25)
    per_level = {s.level: s.trials for s in spend_by_level(SPEC, records)}
    assert per_level == {"smoke": 6, "short": 3, "full": 1}


def test_pre_run_failures_cost_nothing_and_take_their_place_in_the_rung():
    policy = HalvingPolicy(SPEC, "full", budget=20, eta=3)
    records = baseline() + [record("t0001", "t0000", "smoke", 0.3, move="reference"),
                            record("t0002", "t0000", "short", 0.4, move="reference"),
                            record("t0003", "t0000", "smoke", None, Label.apply_failed)]
    assert spent_units(SPEC, records) == pytest.approx(0.75)
    for n in range(4, 12):
        records.append(record(trial_id(n), "t0000", "smoke", 0.2))
    assert isinstance(policy.next_step(records), SameCode)  # t0003..t0011 fill the rung of 9


def test_a_rung_with_an_unrecorded_trial_waits():
    policy = HalvingPolicy(SPEC, "full", budget=20, eta=2, bracket=2)
    records = baseline() + [record("t0001", "t0000", "smoke", 0.3, move="reference"),
                            record("t0002", "t0000", "short", 0.4, move="reference"),
                            record("t0003", "t0000", "smoke", 0.5), record("t0004", "t0000", "smoke", pending=True)]
    step = policy.next_step(records)
    assert isinstance(step, Stop) and "t0004" in step.reason


def test_halving_needs_a_cheaper_level_and_a_budget():
    with pytest.raises(PolicyError, match="needs a level cheaper than 'full'"):
        HalvingPolicy(recipe({"full": 1.0}), "full", budget=5)
    with pytest.raises(PolicyError, match="needs a --budget"):
        make_policy(SPEC, "full", FidelityPolicy(name="halving"))
    # the run's level caps the levels: from short, only smoke is below
    assert HalvingPolicy(SPEC, "short", budget=5).levels == ["smoke", "short"]


def test_fixed_policy_honours_a_requested_level_and_enforces_the_budget():
    policy = FixedPolicy(SPEC, "full", budget=1.5)
    records = baseline()
    assert policy.next_step(records) == NewProposal("full")
    assert policy.level_for(NewProposal("full"), None, records) == ("full", None)
    assert policy.level_for(NewProposal("full"), "smoke", records) == ("smoke", None)
    level, problem = policy.level_for(NewProposal("full"), "tiny", records)
    assert level == "full" and "levels are smoke, short, full" in problem
    records.append(record("t0001", "t0000", "full", 0.6))
    level, problem = policy.level_for(NewProposal("full"), "full", records)
    assert "costs 1 units; 0.5 of --budget 1.5 remain" in problem
    step = policy.next_step(records)
    assert isinstance(step, Stop) and "1 of --budget 1.5" in step.reason
    assert FixedPolicy(SPEC, "full").next_step(records * 50) == NewProposal("full")  # no budget, no stop
