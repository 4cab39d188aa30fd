"""`harness replay`: audit a run's lineage.

`trajectories.verify` checks the lineage itself (ledger chain, refs, trial
commits, diffs, protected files, record consistency, `best`). This module adds
the checks that need the evaluator's rules: every keep / not_improved decision
is re-derived from the recorded seed scores with the recipe's keep rule, and
every outcome must name the evaluator the run started with.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from evaluators.decision import decide, keep_references
from harness.types import BASELINE_TRIAL_ID, Label, TrialRecord
from trajectories.verify import VerifyReport, verify_lineage


class ReplayTrial(BaseModel):
    id: str
    parent: str | None
    agent: str
    specialist: str | None
    fidelity: str = Field(exclude=True)
    """Level the trial ran at: shown in the trial tables, left out of `replay --json`,
    whose trial keys are fixed by DESIGN.md."""
    hypothesis: str
    status: str | None
    label: str | None
    score: float | None
    metrics: dict[str, float]
    has_transcript: bool = Field(default=False, exclude=True)
    """Whether the proposal's agent transcript is stored in the lineage (shown in the table's
    footer, left out of `replay --json`, whose keys are a contract)."""


class ReplayBest(BaseModel):
    id: str | None
    score: float | None


class ReplayReport(BaseModel):
    """The `replay --json` contract of DESIGN.md."""

    run: str
    recipe: str
    verified: bool
    problems: list[str]
    best: ReplayBest
    trials: list[ReplayTrial]


def replay(run_dir: Path) -> ReplayReport:
    return replay_of(run_dir, verify_lineage(run_dir))


def replay_of(run_dir: Path, report: VerifyReport) -> ReplayReport:
    """The replay of a run from its `verify_lineage` report (a caller that needs the
    report's records too reads the run once)."""
    problems = audit_problems(report)
    by_id = {r.trial.id: r for r in report.records}
    best_record = by_id.get(report.best) if report.best else None
    return ReplayReport(
        run=str(run_dir),
        recipe=report.info.recipe.name if report.info else "",
        verified=not problems,
        problems=problems,
        best=ReplayBest(
            id=report.best,
            score=best_record.outcome.score if best_record and best_record.outcome else None,
        ),
        trials=[trial_row(r) for r in report.records],
    )


def audit_problems(report: VerifyReport) -> list[str]:
    """The replay's problems: the lineage's, then the keep decisions' (none: verified)."""
    problems = list(report.problems)
    # An imported run's keep decisions are its source's (recorded, with the original
    # label); only the lineage itself can be verified for it.
    if report.info is not None and report.info.imported is None:
        problems += decision_problems(report)
    return problems


def decision_problems(report: VerifyReport) -> list[str]:
    """Re-derive each keep/discard decision from recorded seed scores, against the
    references the loop used (`keep_references`: both at the trial's own level)."""
    assert report.info is not None
    metric = report.info.recipe.metric
    problems: list[str] = []
    by_id = {r.trial.id: r for r in report.records}
    recorded: set[str] = set()
    level_best: dict[str, str] = {}
    # Walk outcomes in ledger order: with parallel trials, "the best at decision
    # time" is the last keep recorded before this outcome, not the last by id.
    for tid in report.outcome_order:
        record = by_id.get(tid)
        if record is None:
            continue
        outcome = record.outcome
        if outcome is None:
            continue
        if outcome.evaluator_digest != report.info.evaluator_digest:
            problems.append(f"{tid}: scored by evaluator {outcome.evaluator_digest[:12]!r}, "
                            f"but the run's evaluator is {report.info.evaluator_digest[:12]!r}")
        if tid != BASELINE_TRIAL_ID and outcome.label in (Label.keep, Label.not_improved):
            parent, best = keep_references(record.trial, by_id, recorded, level_best)
            decision = decide(metric, list(outcome.seed_scores), _seed_scores(parent), _seed_scores(best))
            if decision.keep != (outcome.label is Label.keep):
                problems.append(
                    f"{tid}: recorded {outcome.label.value}, but the keep rule says "
                    f"{'keep' if decision.keep else 'not_improved'} ({decision.reason})"
                )
        recorded.add(tid)
        if outcome.label is Label.keep:
            level_best[record.trial.fidelity] = tid
    return problems


def trial_row(record: TrialRecord) -> ReplayTrial:
    """One trial as `replay --json` (and the run/replay tables) show it."""
    outcome = record.outcome
    proposal = record.trial.proposal
    return ReplayTrial(
        id=record.trial.id,
        parent=record.trial.parent,
        agent=proposal.agent,
        specialist=proposal.specialist,
        fidelity=record.trial.fidelity,
        hypothesis=proposal.hypothesis,
        status=outcome.status.value if outcome else None,
        label=outcome.label.value if outcome else None,
        score=outcome.score if outcome else None,
        metrics=dict(outcome.metrics) if outcome else {},
        has_transcript=record.trial.transcript is not None,
    )


def _seed_scores(record: TrialRecord | None) -> list[float] | None:
    """Per-seed scores of a recorded trial, None when it has none (as the loop passes them to
    `decide`; not imported from harness.trial_exec, which loads the whole trial machinery)."""
    if record is None or record.outcome is None or not record.outcome.seed_scores:
        return None
    return list(record.outcome.seed_scores)
