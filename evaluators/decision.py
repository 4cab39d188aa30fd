"""The keep rule and the gates.

A trial is kept only when it beats its parent AND the current best by more than
the recipe's noise margin. When the candidate and a reference both have two or
more seeds, the difference must also pass a one-sided Welch t-test at the
recipe's significance level. A missing reference (the baseline has no parent;
a run may have no best yet) is skipped.

With several fidelity levels in one run a smoke score is never compared with a
full one: `keep_references` picks both references at the trial's own level. The
loop (at record time) and replay (re-deriving every decision) both call it.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Container, Mapping

from harness.types import Direction, Frozen, GateResult, GateSpec, MetricSpec, Trial, TrialRecord


class Decision(Frozen):
    keep: bool
    """Whether the candidate beats every reference."""
    reason: str
    """The numbers behind the decision, in words."""


def _fmt(x: float) -> str:
    return f"{x:.4f}" if x == 0 or 1e-3 <= abs(x) < 1e6 else f"{x:.4g}"


def _welch_p(spec: MetricSpec, cand: list[float], ref: list[float]) -> float:
    """One-sided p-value that the candidate is better than the reference."""
    maximize = spec.direction is Direction.maximize
    if statistics.pvariance(cand) == 0 and statistics.pvariance(ref) == 0:
        diff = statistics.fmean(cand) - statistics.fmean(ref)
        return 0.0 if (diff > 0 if maximize else diff < 0) else 1.0
    from scipy import stats  # heavy; only needed for multi-seed recipes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(
            cand, ref, equal_var=False, alternative="greater" if maximize else "less"
        )
    p = float(result.pvalue)
    return 1.0 if math.isnan(p) else p


def _compare(spec: MetricSpec, cand: list[float], name: str, ref: list[float]) -> tuple[bool, str]:
    c, r = statistics.fmean(cand), statistics.fmean(ref)
    delta = c - r
    margin = spec.noise_margin
    beats = spec.better(c, r)
    if spec.direction is Direction.maximize:
        margin_text = f"{'>' if beats else '<='} margin {margin:g}"
    else:
        margin_text = f"{'<' if beats else '>='} -margin {margin:g}"
    multi = len(cand) >= 2 and len(ref) >= 2
    if not multi:
        return beats, f"{name} {_fmt(r)} ({delta:+.4g} {margin_text})"
    p = _welch_p(spec, cand, ref)
    significant = p < spec.significance
    test = f"Welch p={p:.3g} {'<' if significant else '>='} {spec.significance:g}"
    return (
        beats and significant,
        f"{name} mean {_fmt(r)} (n={len(ref)}; {delta:+.4g} {margin_text}, {test})",
    )


def decide(
    spec: MetricSpec,
    candidate: list[float],
    parent: list[float] | None,
    best: list[float] | None,
) -> Decision:
    """Keep `candidate` (its per-seed scores) only if it beats `parent` and `best`.

    With one value on either side the means are compared with `spec.better`
    (strictly more than the noise margin); with two or more on both sides a
    one-sided Welch t-test at `spec.significance` must also pass. A None or
    empty reference is skipped.
    """
    if not candidate:
        return Decision(keep=False, reason=f"no {spec.name} score for the candidate")
    if not all(math.isfinite(x) for x in candidate):
        return Decision(keep=False, reason=f"candidate {spec.name} is not finite: {candidate}")
    mean = statistics.fmean(candidate)
    head = f"{spec.name} {_fmt(mean)}"
    if len(candidate) > 1:
        head = f"{spec.name} mean {_fmt(mean)} (n={len(candidate)})"
    clauses: list[str] = []
    keep = True
    for name, ref in (("parent", parent), ("best", best)):
        if not ref:
            clauses.append(f"no {name} to compare")
            continue
        if not all(math.isfinite(x) for x in ref):
            clauses.append(f"{name} score is not finite, skipped")
            continue
        ok, text = _compare(spec, candidate, name, ref)
        keep = keep and ok
        clauses.append(text)
    verdict = "keep" if keep else "not improved"
    return Decision(keep=keep, reason=f"{verdict}: {head} vs {' and '.join(clauses)}")


def keep_references(
    trial: Trial,
    records: Mapping[str, TrialRecord],
    recorded: Container[str],
    level_best: Mapping[str, str],
) -> tuple[TrialRecord | None, TrialRecord | None]:
    """The two references of the keep rule for `trial`, both at its level L.

    - ancestor: the nearest ancestor (walking trial parents) at level L, provided
      its outcome is among `recorded` (the outcomes recorded before this one);
      with one level in the run this is the parent. Ancestors at other levels are
      walked past: a promoted trial is compared with the code it came from at L.
    - best: `level_best[L]`, the last trial kept at level L before this outcome.

    Either is None when there is none; `decide` skips a reference without scores.
    """
    level = trial.fidelity
    ancestor: TrialRecord | None = None
    seen: set[str] = set()
    tid = trial.parent
    while tid is not None and tid not in seen:  # a damaged lineage may hold a cycle
        seen.add(tid)
        record = records.get(tid)
        if record is None:
            break
        if record.trial.fidelity == level:
            ancestor = record if tid in recorded else None
            break
        tid = record.trial.parent
    best_id = level_best.get(level)
    return ancestor, records.get(best_id) if best_id is not None else None


def gates(spec_gates: list[GateSpec], metrics_per_seed: list[dict[str, float]]) -> list[GateResult]:
    """Evaluate each gate on the mean of its metric over the seeds that produced it.

    Non-finite values count as missing. With fewer values than `min_seeds` the
    gate's value is None and it does not pass.
    """
    results = []
    for gate in spec_gates:
        values = [
            float(m[gate.metric])
            for m in metrics_per_seed
            if gate.metric in m and math.isfinite(m[gate.metric])
        ]
        value = statistics.fmean(values) if values and len(values) >= gate.min_seeds else None
        results.append(
            GateResult(
                metric=gate.metric,
                op=gate.op,
                threshold=gate.threshold,
                value=value,
                passed=value is not None and gate.passes(value),
                on_miss=gate.on_miss,
            )
        )
    return results
