"""Synthetic runs for the report and analysis tests (records in memory, no git; no tests here).

`synthetic_run(n)` makes a run of n trials that looks like a native one: knob
edits with canonical-looking diffs, several agents and specialists, every kind
of label, phase measurements with log tails.
"""

from __future__ import annotations

import hashlib
import random

from harness.recipe_loader import load_recipe
from harness.types import (
    BASELINE_TRIAL_ID,
    GateResult,
    Label,
    Outcome,
    PhaseUsage,
    Proposal,
    RunInfo,
    Trial,
    TrialRecord,
    trial_id,
)

LABEL_WEIGHTS = {
    Label.keep: 4, Label.not_improved: 50, Label.crash: 8, Label.gate_miss: 6, Label.budget_overrun: 4,
    Label.preflight_crash: 5, Label.illegal_edit: 4, Label.apply_failed: 3, Label.oom: 3, Label.metric_missing: 2,
    Label.eval_budget_overrun: 2, Label.size_failure: 2, Label.tamper: 1, Label.harness_error: 2,
    Label.malformed_proposal: 2,
}


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def synthetic_run(n: int, seed: int = 0, hypothesis: str | None = None) -> tuple[RunInfo, list[TrialRecord]]:
    rng = random.Random(seed)
    spec = load_recipe("collision").spec
    info = RunInfo(
        run_id=f"synthetic-{n}",
        recipe=spec,
        recipe_dir="recipes/collision",
        baseline_commit=_sha("base"),
        evaluator_digest="e" * 64,
        agent="anthropic",
        seed=seed,
        created="2026-01-01T00:00:00+00:00",
        harness_version="0.1.0",
    )
    knobs = {k.name: k.choices[0] for k in spec.knobs}
    assignments = {BASELINE_TRIAL_ID: dict(knobs)}
    records: list[TrialRecord] = []
    best, best_id = 0.30, BASELINE_TRIAL_ID
    labels = list(LABEL_WEIGHTS)
    weights = [LABEL_WEIGHTS[label] for label in labels]
    for i in range(n):
        tid = trial_id(i)
        if i == 0:
            parent, label, changed = None, Label.keep, []
            assignment = dict(knobs)
            hyp = "Baseline: the recipe's starting source"
            agent, specialist = "baseline", None
        else:
            parent = best_id if rng.random() < 0.7 else trial_id(rng.randrange(i))
            label = rng.choices(labels, weights)[0]
            assignment = dict(assignments[parent])
            changed = rng.sample(spec.knobs, rng.randint(1, 3))
            for k in changed:
                assignment[k.name] = rng.choice(k.choices)
            specialist = rng.choice(["arch", "opt"])
            agent = rng.choice(["anthropic", "openai"])
            hyp = hypothesis if hypothesis is not None else (
                f"Trial {i}: " + "; ".join(f"set {k.name} to {assignment[k.name]!r}" for k in changed)
                + ". The temporal encoder should see the approach dynamics better, and a lower learning "
                "rate with more epochs keeps the optimisation stable on the hard negatives "
                "(near misses, hard braking) that the baseline confuses with collisions."
            )
        assignments[tid] = assignment if label.ran else dict(assignments[parent or BASELINE_TRIAL_ID])
        diff = ""
        if changed:
            body = "".join(
                f"@@ -{3 + j * 4},7 +{3 + j * 4},7 @@ context line {j}\n ctx a\n ctx b\n ctx c\n"
                f"-{k.name} = {assignments[parent][k.name]!r}\n+{k.name} = {assignment[k.name]!r}\n ctx d\n ctx e\n"
                for j, k in enumerate(changed)
            )
            diff = (
                "diff --git a/config.py b/config.py\n"
                f"index {_sha(tid + 'a')}..{_sha(tid + 'b')} 100644\n--- a/config.py\n+++ b/config.py\n" + body
            )
        score = None
        if label in (Label.keep, Label.not_improved, Label.gate_miss):
            if label is Label.keep:
                best = min(0.95, best + rng.uniform(0.001, 0.02))
                score = best
                best_id = tid
            else:
                score = max(0.0, best - rng.uniform(0.0, 0.2))
        log = "\n".join(f"epoch {e}/16 loss {1 / (e + 1):.4f} lr 0.001 step {e * 31}" for e in range(16))
        phases = []
        if label.ran:
            phases = [
                PhaseUsage(phase="train", seed=0, wallclock_s=rng.uniform(3, 70), exit_code=0 if label is not Label.crash else 1,
                           timed_out=label is Label.budget_overrun, oom=label is Label.oom, output_bytes=len(log), log_sha256="0" * 64,
                           log_tail=log + ("\nTraceback (most recent call last):\n  RuntimeError: boom" if label is Label.crash else "")),
                PhaseUsage(phase="eval", seed=0, wallclock_s=rng.uniform(1, 5), exit_code=0,
                           timed_out=label is Label.eval_budget_overrun, output_bytes=26, log_sha256="0" * 64,
                           log_tail="wrote (1000,) predictions"),
            ]
        gates = []
        if score is not None:
            gates = [GateResult(metric="ap", op=">=", threshold=0.1, value=score, passed=label is not Label.gate_miss)]
        proposal = Proposal(
            hypothesis=hyp, diff=diff, parent=parent, agent=agent, specialist=specialist,
            knobs={k: v for k, v in assignment.items()} if i else {},
        )
        trial = Trial(id=tid, run_id=info.run_id, parent=parent, proposal=proposal, fidelity="full", seeds=[0], commit=_sha(tid))
        outcome = Outcome(
            label=label,
            explanation=f"{label.value}: synthetic outcome of {tid}",
            score=score,
            seed_scores=[score] if score is not None else [],
            metrics={"ap": score, "acc": 0.7} if score is not None else {},
            gates=gates,
            phases=phases,
            artifact_bytes=170000 if label.ran else None,
            evaluator_digest="e" * 64,
            image="local:python3.11",
            compared_to=[parent] if parent else [],
            started="2026-01-01T00:00:00+00:00",
            finished="2026-01-01T00:00:09+00:00",
        )
        records.append(TrialRecord(trial=trial, outcome=outcome))
    return info, records
