"""`harness analyze` and the report on runs with several fidelity levels."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "harness"))

from fidelity_records import recipe, record  # noqa: E402

from harness.types import FidelityPolicy, Label, RunInfo  # noqa: E402
from trajectories.analysis import analyze, render_text  # noqa: E402
from trajectories.report import report_data  # noqa: E402


def info(policy: FidelityPolicy | None = FidelityPolicy(name="halving", budget=10.0)) -> RunInfo:
    return RunInfo(run_id="r", recipe=recipe(), recipe_dir="x", baseline_commit="0" * 40, evaluator_digest="e",
                   agent="random", seed=0, created="2024-01-01T00:00:00Z", harness_version="0.1.0",
                   fidelity_policy=policy)


def halving_records():
    """Four ideas at smoke; three promoted to short (same order there); two of those to
    full, where the order flips."""
    recs = [
        record("t0000", None, "full", 0.50, Label.keep, seconds=10),
        record("t0001", "t0000", "smoke", 0.30, Label.keep, move="reference", seconds=2),
        record("t0002", "t0000", "short", 0.40, Label.keep, move="reference", seconds=5),
        record("t0003", "t0000", "smoke", 0.31, seconds=2),
        record("t0004", "t0000", "smoke", 0.35, Label.keep, seconds=2),
        record("t0005", "t0000", "smoke", 0.33, seconds=2),
        record("t0006", "t0000", "smoke", None, Label.apply_failed),
        record("t0007", "t0004", "short", 0.47, Label.keep, move="promotion", seconds=5),
        record("t0008", "t0005", "short", 0.45, move="promotion", seconds=5),
        record("t0009", "t0003", "short", 0.41, move="promotion", seconds=5),
        record("t0010", "t0007", "full", 0.55, Label.keep, move="promotion", seconds=10),
        record("t0011", "t0008", "full", 0.58, Label.keep, move="promotion", seconds=10),
    ]
    return recs


def test_rank_correlation_per_pair_of_levels_and_compute_per_level():
    report = analyze(halving_records(), info())
    f = report.fidelity
    assert f is not None and f.levels == ["smoke", "short", "full"] and f.target == "full"
    pairs = {(c.low, c.high): c for c in f.correlations}
    # smoke -> short: the baseline (0.30, 0.40) and three ideas, same order: rho 1
    assert pairs[("smoke", "short")].n == 4 and pairs[("smoke", "short")].spearman == pytest.approx(1.0)
    assert pairs[("smoke", "short")].adjacent
    # short -> full: baseline (0.40 -> 0.50), t0004's idea (0.47 -> 0.55), t0005's (0.45 -> 0.58)
    c = pairs[("short", "full")]
    assert c.n == 3 and c.spearman == pytest.approx(0.5)
    assert not pairs[("smoke", "full")].adjacent and pairs[("smoke", "full")].n == 3
    compute = {c.level: c for c in f.compute}
    assert compute["smoke"].trials == 5 and compute["smoke"].units == pytest.approx(4 * 0.25)  # the apply_failed is free
    assert compute["full"].units == pytest.approx(3.0) and compute["full"].wallclock_s == pytest.approx(30)
    assert f.spent_units == pytest.approx(1.0 + 4 * 0.5 + 2.0) and f.budget == 10.0
    # best and convergence count the run's level only: t0011 at full, not the smoke keeps
    assert report.best.id == "t0011"
    assert report.convergence.best_so_far[:4] == [0.5, 0.5, 0.5, 0.5]
    text = render_text(report)
    assert "smoke -> short        n    4  rho  1.000" in text
    assert "Fidelity (halving policy; run level full): 5 units spent of --budget 10" in text
    assert json.loads(report.model_dump_json())["fidelity"]["correlations"][0]["n"] == 4


def test_one_level_runs_have_no_fidelity_section_and_few_pairs_give_no_correlation():
    one = [record("t0000", None, "full", 0.5, Label.keep), record("t0001", "t0000", "full", 0.6, Label.keep)]
    assert analyze(one, info(None)).fidelity is None
    two = [record("t0000", None, "full", 0.5, Label.keep),
           record("t0001", "t0000", "smoke", 0.3, Label.keep, move="reference")]
    f = analyze(two, info(None)).fidelity
    assert f is not None and f.policy == "fixed" and f.correlations[0].n == 1 and f.correlations[0].spearman is None


def test_the_report_carries_each_trials_level_and_promotion():
    data = report_data(info(), halving_records(), best="t0011", problems=[])
    levels = [name for name, _cost in data["run"]["levels"]]
    assert levels == ["smoke", "short", "full"] and data["run"]["level"] == "full"
    fid = [levels[i] for i in data["trials"]["fid"]]
    assert fid[:3] == ["full", "smoke", "short"] and fid[-1] == "full"
    assert data["trials"]["move"][1] == "reference" and data["trials"]["move"][10] == "promotion"
    assert data["trials"]["move"][3] == ""
    assert data["stats"]["fidelity"]["compute"][0]["level"] == "smoke"
    assert data["run"]["policy"]["name"] == "halving"
