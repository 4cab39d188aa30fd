"""The keep rule (noise margin, Welch test) and the gates."""

from __future__ import annotations

import math

from evaluators.decision import Decision, decide, gates
from harness.types import GateSpec, MetricSpec

MAX = MetricSpec(name="ap", direction="maximize", noise_margin=0.5)
MIN = MetricSpec(name="val_bpb", direction="minimize", noise_margin=0.5)


def test_single_seed_beats_parent_and_best_by_more_than_margin():
    d = decide(MAX, [2.0], [1.0], [1.25])
    assert d == Decision(keep=True, reason=d.reason)
    assert d.reason.startswith("keep: ap 2.0000 vs parent 1.0000 (+1 > margin 0.5)")
    assert "best 1.2500 (+0.75 > margin 0.5)" in d.reason


def test_gain_equal_to_margin_is_not_kept():
    d = decide(MAX, [1.5], [1.0], None)
    assert not d.keep
    assert "(+0.5 <= margin 0.5)" in d.reason and d.reason.startswith("not improved: ")


def test_gain_just_above_margin_is_kept():
    assert decide(MAX, [1.5000001], [1.0], [1.0]).keep


def test_beating_parent_but_not_best_is_not_kept():
    d = decide(MAX, [2.0], [1.0], [1.8])
    assert not d.keep
    assert "best 1.8000" in d.reason


def test_zero_margin_needs_a_strict_improvement():
    spec = MetricSpec(name="ap", direction="maximize")
    assert not decide(spec, [1.0], [1.0], None).keep
    assert decide(spec, [1.0001], [1.0], None).keep


def test_direction_minimize():
    assert decide(MIN, [1.0], [2.0], [1.6]).keep
    d = decide(MIN, [1.0], [1.4], None)
    assert not d.keep
    assert "(-0.4 >= -margin 0.5)" in d.reason
    assert not decide(MIN, [3.0], [2.0], None).keep


def test_missing_references_are_skipped():
    d = decide(MAX, [1.0], None, None)
    assert d.keep
    assert "no parent to compare" in d.reason and "no best to compare" in d.reason
    assert decide(MAX, [2.0], [], [1.0]).keep
    assert not decide(MAX, [2.0], None, [1.9]).keep


def test_empty_or_non_finite_candidate_is_not_kept():
    assert not decide(MAX, [], [1.0], None).keep
    assert not decide(MAX, [math.nan], None, None).keep


def test_multi_seed_significant_improvement_is_kept():
    spec = MetricSpec(name="ap", direction="maximize", noise_margin=0.01, significance=0.05)
    d = decide(spec, [0.90, 0.91, 0.92], [0.80, 0.81, 0.82], [0.85, 0.86, 0.84])
    assert d.keep, d.reason
    assert "Welch p=" in d.reason and "< 0.05" in d.reason


def test_multi_seed_noisy_improvement_is_not_kept():
    spec = MetricSpec(name="ap", direction="maximize", noise_margin=0.01, significance=0.05)
    d = decide(spec, [0.60, 0.99, 0.70], [0.70, 0.71, 0.69], None)
    assert not d.keep  # mean 0.763 beats 0.70 by more than the margin, but not significantly
    assert "Welch p=" in d.reason and ">= 0.05" in d.reason


def test_multi_seed_significant_but_within_margin_is_not_kept():
    spec = MetricSpec(name="ap", direction="maximize", noise_margin=0.05)
    d = decide(spec, [0.801, 0.802, 0.803], [0.790, 0.791, 0.792], None)
    assert not d.keep
    assert "<= margin 0.05" in d.reason


def test_multi_seed_minimize_uses_the_lower_tail():
    spec = MetricSpec(name="val_bpb", direction="minimize", noise_margin=0.0)
    assert decide(spec, [1.00, 1.01, 0.99], [1.10, 1.11, 1.09], None).keep
    assert not decide(spec, [1.10, 1.11, 1.09], [1.00, 1.01, 0.99], None).keep


def test_multi_seed_constant_samples():
    spec = MetricSpec(name="ap", direction="maximize")
    assert decide(spec, [2.0, 2.0], [1.0, 1.0], None).keep
    assert not decide(spec, [1.0, 1.0], [1.0, 1.0], None).keep


def test_one_seed_reference_falls_back_to_means():
    d = decide(MAX, [2.0, 2.2], [1.0], None)
    assert d.keep and "Welch" not in d.reason


def test_gates_use_the_mean_over_seeds():
    spec = [GateSpec(metric="acc", op=">=", threshold=0.9)]
    (g,) = gates(spec, [{"acc": 0.88}, {"acc": 0.94}])
    assert g.value == 0.91 or math.isclose(g.value, 0.91)
    assert g.passed


def test_gate_fails_below_threshold():
    (g,) = gates([GateSpec(metric="acc", op=">", threshold=0.9)], [{"acc": 0.9}])
    assert g.value == 0.9 and not g.passed


def test_gate_with_too_few_seeds_fails():
    spec = [GateSpec(metric="acc", op=">=", threshold=0.5, min_seeds=2)]
    (g,) = gates(spec, [{"acc": 0.9}, {"other": 1.0}])
    assert g.value is None and not g.passed


def test_gate_on_missing_metric_fails():
    (g,) = gates([GateSpec(metric="acc", op="<=", threshold=1.0)], [{"ap": 0.5}])
    assert g.value is None and not g.passed
    (g,) = gates([GateSpec(metric="acc", op="<=", threshold=1.0)], [])
    assert g.value is None and not g.passed
