"""Labels of trials that ran: each label reachable, priority order respected."""

from __future__ import annotations

import pytest

from evaluators.decision import Decision
from evaluators.labels import RunMeasurements, label_run
from harness.types import Budgets, GateResult, Label, PhaseUsage

BUDGETS = Budgets(train_wallclock_s=60, eval_wallclock_s=30, artifact_bytes=1000, memory_mb=2048)
KEEP = Decision(keep=True, reason="keep: ap 0.9 vs parent 0.8 (+0.1 > margin 0)")
NOPE = Decision(keep=False, reason="not improved: ap 0.8 vs parent 0.8 (+0 <= margin 0)")
GATE_OK = GateResult(metric="acc", op=">=", threshold=0.5, value=0.9, passed=True)
GATE_BAD = GateResult(metric="acc", op=">=", threshold=0.95, value=0.9, passed=False)


def phase(name: str, seed: int | None = 0, **kw) -> PhaseUsage:
    kw.setdefault("wallclock_s", 1.0)
    kw.setdefault("exit_code", 0)
    return PhaseUsage(phase=name, seed=seed, **kw)


def good(**over) -> RunMeasurements:
    """A clean two-seed run; `over` replaces fields."""
    base = {
        "phases": [
            phase("preflight", seed=None),
            phase("train", 0),
            phase("train", 1),
            phase("eval", 0),
            phase("eval", 1),
        ],
        "artifact_bytes": 500,
        "metrics_per_seed": [{"ap": 0.9, "acc": 0.9}, {"ap": 0.91, "acc": 0.9}],
        "seeds": [0, 1],
        "gates": [GATE_OK],
        "decision": KEEP,
    }
    return RunMeasurements(**{**base, **over})


def with_phase(m: RunMeasurements, i: int, **kw) -> RunMeasurements:
    phases = list(m.phases)
    phases[i] = phases[i].model_copy(update=kw)
    return m.model_copy(update={"phases": phases})


def label(m: RunMeasurements) -> Label:
    return label_run(m, BUDGETS, "ap")[0]


# Each failure, alone on an otherwise clean run (phase index: 0 preflight, 1-2 train, 3-4 eval).
FAILURES = {
    Label.preflight_crash: lambda m: with_phase(m, 0, exit_code=1, log_tail="SyntaxError: x"),
    Label.budget_overrun: lambda m: with_phase(
        m, 2, timed_out=True, exit_code=None, wallclock_s=60.4
    ),
    Label.oom: lambda m: with_phase(m, 1, oom=True, exit_code=137),
    "train_crash": lambda m: with_phase(m, 1, exit_code=1),
    Label.tamper: lambda m: m.model_copy(update={"tampered": ["eval/score.py"]}),
    Label.size_failure: lambda m: m.model_copy(update={"artifact_bytes": 1001}),
    Label.eval_budget_overrun: lambda m: with_phase(
        m, 4, timed_out=True, exit_code=None, wallclock_s=31.0
    ),
    "eval_crash": lambda m: with_phase(m, 3, exit_code=2, log_tail="held-out label 7"),
    Label.metric_missing: lambda m: m.model_copy(
        update={"metrics_per_seed": [{"ap": 0.9}, {"acc": 1.0}]}
    ),
    Label.gate_miss: lambda m: m.model_copy(update={"gates": [GATE_OK, GATE_BAD]}),
}
PRIORITY = list(FAILURES)


def expected(key) -> Label:
    return Label.crash if key in ("train_crash", "eval_crash") else key


@pytest.mark.parametrize("key", PRIORITY)
def test_each_failure_label_is_reachable(key):
    assert label(FAILURES[key](good())) is expected(key)


@pytest.mark.parametrize("i", range(len(PRIORITY) - 1))
def test_priority_order(i):
    """A failure wins over every failure listed after it."""
    m = good()
    for key in PRIORITY[i:]:
        m = FAILURES[key](m)
    assert label(m) is expected(PRIORITY[i])


def test_keep_and_not_improved_come_from_the_decision():
    assert label_run(good(), BUDGETS, "ap") == (Label.keep, KEEP.reason)
    assert label_run(good(decision=NOPE), BUDGETS, "ap") == (Label.not_improved, NOPE.reason)


def test_no_failure_and_no_decision_is_an_error():
    with pytest.raises(ValueError):
        label_run(good(decision=None), BUDGETS, "ap")


def test_budget_overrun_explanation_names_seed_and_numbers():
    _, why = label_run(FAILURES[Label.budget_overrun](good()), BUDGETS, "ap")
    assert (
        "train phase (seed 1)" in why and "60.4 s" in why and "train_wallclock_s budget 60 s" in why
    )


def test_size_failure_explanation_names_numbers():
    _, why = label_run(FAILURES[Label.size_failure](good()), BUDGETS, "ap")
    assert "1001 bytes" in why and "1000" in why


def test_metric_missing_explanation_names_seed():
    _, why = label_run(FAILURES[Label.metric_missing](good()), BUDGETS, "ap")
    assert "'ap'" in why and "seed 1" in why


def test_score_error_is_metric_missing():
    lab, why = label_run(good(score_error="predictions missing for 3 ids"), BUDGETS, "ap")
    assert lab is Label.metric_missing and "predictions missing for 3 ids" in why


def test_non_finite_score_is_metric_missing():
    m = good(metrics_per_seed=[{"ap": float("nan")}, {"ap": 0.9}])
    assert label(m) is Label.metric_missing


def test_no_metrics_at_all_is_metric_missing():
    assert label(good(metrics_per_seed=[])) is Label.metric_missing


def test_gate_miss_explanation_names_gate():
    _, why = label_run(FAILURES[Label.gate_miss](good()), BUDGETS, "ap")
    assert "acc >= 0.95" in why and "0.9" in why


def test_train_crash_quotes_train_log_but_eval_crash_never_quotes_eval_log():
    _, why = label_run(
        with_phase(good(), 1, exit_code=1, log_tail="Traceback: boom"), BUDGETS, "ap"
    )
    assert "train phase (seed 0) exited with code 1" in why and "boom" in why
    _, why = label_run(FAILURES["eval_crash"](good()), BUDGETS, "ap")
    assert "eval phase (seed 0) exited with code 2" in why
    assert "held-out" not in why


def test_killed_train_without_exit_code_is_crash():
    lab, why = label_run(with_phase(good(), 1, exit_code=None), BUDGETS, "ap")
    assert lab is Label.crash and "without an exit code" in why


def test_preflight_crash_only_preflight_ran():
    m = RunMeasurements(
        phases=[phase("preflight", seed=None, exit_code=1, log_tail="a.py:2: invalid syntax")]
    )
    lab, why = label_run(m, BUDGETS, "ap")
    assert lab is Label.preflight_crash and "a.py:2" in why


def test_missed_size_gate_is_size_failure_not_gate_miss():
    size_gate = GateResult(metric="artifact_bytes", op="<=", threshold=16e6, value=17e6, passed=False,
                           on_miss="size_failure")
    result, why = label_run(good(gates=[size_gate]), BUDGETS, "ap")
    assert result is Label.size_failure and "artifact_bytes <= 1.6e+07" in why


def test_size_gate_outranks_an_ordinary_gate_miss():
    size_gate = GateResult(metric="bytes", op="<=", threshold=1, value=2, passed=False, on_miss="size_failure")
    acc_gate = GateResult(metric="acc", op=">=", threshold=0.95, value=0.5, passed=False)
    assert label(good(gates=[acc_gate, size_gate])) is Label.size_failure
