"""What LLM agents see and say about fidelity levels: the cross-fidelity record in the
lineage view, the levels and the policy in the brief, a level asked for in the answer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from llm_helpers import FakeLineage  # noqa: E402

from harness.agents.llm.edits import parse_answer  # noqa: E402
from harness.agents.llm.edits import AnswerError  # noqa: E402
from harness.agents.llm.prompt import build_prompt  # noqa: E402
from harness.agents.llm.view import render_view  # noqa: E402


def leveled() -> FakeLineage:
    lin = FakeLineage(baseline_score=0.45)
    steps = [  # (parent, level, move, agent, label, score, hypothesis)
        ("t0000", "tiny", "reference", "reference", "keep", 0.30, "Reference: the baseline's code at tiny"),
        ("t0000", "tiny", None, "anthropic", "keep", 0.81, "A GRU over V-JEPA features"),
        ("t0002", "smoke", "promotion", "promotion", "keep", 0.86, "Promote t0002 (tiny) to smoke"),
        ("t0003", "full", "promotion", "promotion", "keep", 0.90, "Promote t0003 (smoke) to full"),
        ("t0000", "tiny", None, "anthropic", "not_improved", 0.28, "Focal loss"),
    ]
    for parent, level, move, agent, label, score, hypothesis in steps:
        lin.add(hypothesis=hypothesis, parent=parent, agent=agent, label=label, score=score)
        rec = lin.records[-1]
        lin.records[-1] = rec.model_copy(update={"trial": rec.trial.model_copy(
            update={"fidelity": level, "fidelity_move": move})})
    lin.best_id = "t0004"  # the best at full (keeps at other levels never become the best)
    return lin


def test_the_view_shows_each_idea_at_every_level_it_reached():
    lin = leveled()
    view = render_view(lin.ctx(fidelity="tiny", fidelity_policy="halving"))
    assert "- t0002 tiny 0.8100 -> t0003 smoke 0.8600 -> t0004 full 0.9000: A GRU over V-JEPA features" in view
    assert "- t0000 full 0.4500 -> t0001 tiny 0.3000: baseline (the recipe as shipped)" in view
    assert "Current best: t0004 @full ap=0.9000" in view
    assert "this proposal runs at tiny (halving policy)" in view
    # headlines name the level; a delta against a parent at another level is not shown
    assert "### t0003 <- t0002 @smoke: KEEP keep ap=0.8600\n" in view
    assert "### t0005 <- t0000 @tiny: DISCARD not_improved ap=0.2800\n" in view
    # the leaderboard ranks the run's level only
    board = view.split("## Leaderboard")[1].split("##")[0]
    assert "t0004 @full" in board and "t0002" not in board


def test_one_level_views_are_unchanged():
    lin = FakeLineage(baseline_score=0.45)
    lin.add(hypothesis="An idea", label="keep", score=0.6)
    view = render_view(lin.ctx())
    assert "@full" not in view and "several fidelity levels" not in view and "Fidelity:" not in view
    assert "### t0001 <- t0000: KEEP keep ap=0.6000 (+0.1500 vs t0000, better)" in view


def test_the_brief_explains_the_levels_and_the_policy():
    lin = leveled()
    halving = build_prompt(lin.ctx(fidelity="tiny", fidelity_policy="halving")).system
    assert "## Fidelity levels (cheapest first; cost relative to full = 1)" in halving
    assert "successive halving: your new idea runs at the lowest level (tiny)" in halving
    assert "You cannot choose the level" in halving
    fixed = build_prompt(lin.ctx(fidelity="full")).system
    assert "Your trial runs at full unless you set `fidelity` to another level" in fixed
    assert "- tiny: cost 0.6, 1 seed(s), HARNESS_DATA_FRACTION=0.25, HARNESS_EPOCH_SCALE=0.25" in fixed


def test_an_answer_may_ask_for_a_level():
    answer = parse_answer({"hypothesis": "h", "expected_delta": 0.1, "diff": "x", "fidelity": "short"})
    assert answer.fidelity == "short"
    assert parse_answer({"hypothesis": "h", "expected_delta": 0.1, "diff": "x"}).fidelity is None
    with pytest.raises(AnswerError, match="'fidelity' must be the name of a level"):
        parse_answer({"hypothesis": "h", "expected_delta": 0.1, "diff": "x", "fidelity": 3})
