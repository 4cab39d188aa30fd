"""The label of a trial that ran, from the host's measurements.

`label_run` walks a fixed table of rules in priority order; the first rule that
fires gives the label and an explanation for agents and auditors. The
explanation names the phase, the seed and the measured against the allowed
numbers. It quotes the tail of the preflight or train log (the trial's own
output, which never sees held-out data) but never anything from the eval
phase, whose process can see the held-out labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pydantic import Field

from evaluators.decision import Decision
from evaluators.outputs import OutputFinding, explain
from harness.types import Budgets, Frozen, GateResult, Label, PhaseUsage

_TAIL_CHARS = 300
_ERROR_CHARS = 300


class RunMeasurements(Frozen):
    """What the host measured while a trial ran (one entry per phase and seed)."""

    phases: list[PhaseUsage] = Field(default_factory=list)
    """Every phase run: preflight, then train and eval per seed."""
    tampered: list[str] = Field(default_factory=list)
    """Protected paths found changed after the train phase (see `hashing.changed_files`)."""
    refused_outputs: list[OutputFinding] = Field(default_factory=list)
    """Entries of the trial's folders refused before reading (see `outputs.scan_folder`)."""
    artifact_bytes: int | None = None
    """Largest train-output size over seeds."""
    score_error: str | None = None
    """Reason the evaluator's score function refused the predictions (its ValueError message)."""
    metrics_per_seed: list[dict[str, float]] = Field(default_factory=list)
    """Metrics the evaluator computed, one dict per seed that was scored."""
    seeds: list[int] = Field(default_factory=list)
    """Seed of each entry of `metrics_per_seed` (for explanations); may be empty."""
    gates: list[GateResult] = Field(default_factory=list)
    """Gate results (see `decision.gates`)."""
    decision: Decision | None = None
    """Keep decision; needed only when no failure rule fires."""


def _where(p: PhaseUsage) -> str:
    return f"{p.phase} phase" + (f" (seed {p.seed})" if p.seed is not None else "")


def _exit(p: PhaseUsage) -> str:
    return (
        "was killed without an exit code"
        if p.exit_code is None
        else f"exited with code {p.exit_code}"
    )


def _tail(p: PhaseUsage) -> str:
    tail = p.log_tail.strip()
    if not tail:
        return ""
    tail = tail[-_TAIL_CHARS:]
    return f"; log tail: {tail}"


def _first(m: RunMeasurements, phase: str, bad: Callable[[PhaseUsage], bool]) -> PhaseUsage | None:
    return next((p for p in m.phases if p.phase == phase and bad(p)), None)


def _preflight(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
    p = _first(m, "preflight", lambda p: p.exit_code != 0 or p.timed_out or p.oom)
    if p is None:
        return None
    what = "timed out" if p.timed_out else "ran out of memory" if p.oom else _exit(p)
    return f"{_where(p)} {what} after {p.wallclock_s:.1f} s{_tail(p)}"


def _train_timeout(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
    p = _first(m, "train", lambda p: p.timed_out)
    if p is None:
        return None
    return (
        f"{_where(p)} was killed at the wallclock cap: ran {p.wallclock_s:.1f} s, "
        f"train_wallclock_s budget {b.train_wallclock_s:g} s"
    )


def _oom(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
    p = next((p for p in m.phases if p.oom), None)
    return None if p is None else f"{_where(p)} ran out of memory (memory_mb budget {b.memory_mb})"


def _train_crash(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
    p = _first(m, "train", lambda p: p.exit_code != 0)
    return None if p is None else f"{_where(p)} {_exit(p)} after {p.wallclock_s:.1f} s{_tail(p)}"


def _tamper(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
    if not m.tampered:
        return None
    shown = ", ".join(m.tampered[:10]) + (
        f" and {len(m.tampered) - 10} more" if len(m.tampered) > 10 else ""
    )
    return f"protected files changed during the run: {shown}"


def _refused(label: Label) -> Callable[[RunMeasurements, Budgets, str], str | None]:
    def rule(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
        found = [f for f in m.refused_outputs if f.label is label]
        return explain(found) if found else None

    return rule


def _size(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
    if m.artifact_bytes is None or m.artifact_bytes <= b.artifact_bytes:
        return None
    return f"train output is {m.artifact_bytes} bytes, over the artifact_bytes cap of {b.artifact_bytes}"


def _eval_timeout(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
    p = _first(m, "eval", lambda p: p.timed_out)
    if p is None:
        return None
    return (
        f"{_where(p)} was killed at the wallclock cap: ran {p.wallclock_s:.1f} s, "
        f"eval_wallclock_s budget {b.eval_wallclock_s:g} s"
    )


def _eval_crash(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
    p = _first(m, "eval", lambda p: p.exit_code != 0)
    return (
        None if p is None else f"{_where(p)} {_exit(p)} after {p.wallclock_s:.1f} s"
    )  # no eval log: held-out data


def _seed_name(m: RunMeasurements, i: int) -> str:
    return f"seed {m.seeds[i]}" if i < len(m.seeds) else f"seed #{i}"


def _metric_missing(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
    if m.score_error is not None:
        return f"the evaluator could not score the predictions: {m.score_error[:_ERROR_CHARS]}"
    if not m.metrics_per_seed:
        return f"no metrics were computed (score {metric!r} missing)"
    for i, metrics in enumerate(m.metrics_per_seed):
        value = metrics.get(metric)
        if value is None or not math.isfinite(value):
            got = "missing" if value is None else f"not finite ({value})"
            return f"score {metric!r} is {got} for {_seed_name(m, i)}"
    return None


def _missed_gates(m: RunMeasurements, on_miss: str) -> list[str]:
    return [
        f"{g.metric} {g.op} {g.threshold:g} "
        + ("(not enough seeds produced it)" if g.value is None else f"(measured {g.value:.4g})")
        for g in m.gates
        if not g.passed and g.on_miss == on_miss
    ]


def _measured_size(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
    missed = _missed_gates(m, "size_failure")
    return ("size cap missed, as measured by the evaluator: " + "; ".join(missed)) if missed else None


def _gate_miss(m: RunMeasurements, b: Budgets, metric: str) -> str | None:
    missed = _missed_gates(m, "gate_miss")
    return ("gate missed: " + "; ".join(missed)) if missed else None


_RULES: tuple[tuple[Label, Callable[[RunMeasurements, Budgets, str], str | None]], ...] = (
    (Label.preflight_crash, _preflight),
    (Label.budget_overrun, _train_timeout),
    (Label.oom, _oom),
    (Label.crash, _train_crash),
    (Label.tamper, _refused(Label.tamper)),
    (Label.size_failure, _refused(Label.size_failure)),
    (Label.tamper, _tamper),
    (Label.size_failure, _size),
    (Label.eval_budget_overrun, _eval_timeout),
    (Label.crash, _eval_crash),
    (Label.metric_missing, _metric_missing),
    (Label.size_failure, _measured_size),
    (Label.gate_miss, _gate_miss),
)
"""Failure rules in priority order; the first that fires labels the trial."""


def label_run(measurements: RunMeasurements, budgets: Budgets, metric: str) -> tuple[Label, str]:
    """Label a trial that ran, with an explanation; `metric` is the score's name.

    Priority: preflight_crash, budget_overrun, oom, crash (train), tamper (a
    refused output entry), size_failure (a refused output size), tamper,
    size_failure, eval_budget_overrun, crash (eval), metric_missing,
    size_failure (a missed gate marked `on_miss = "size_failure"`), gate_miss,
    then keep / not_improved from `measurements.decision`. Raises ValueError when
    no failure rule fires and no decision was given.
    """
    for label, rule in _RULES:
        found = rule(measurements, budgets, metric)
        if found:
            return label, found
    if measurements.decision is None:
        raise ValueError("label_run: no failure found and no keep decision given")
    decision = measurements.decision
    return (Label.keep if decision.keep else Label.not_improved), decision.reason
