"""Synthetic trial records at several fidelity levels (no lineage, no runs), for the
pure functions: the keep rule's references, the halving schedule, analysis."""

from __future__ import annotations

from harness.types import (
    Budgets,
    Direction,
    EvaluatorSpec,
    FidelitySpec,
    Label,
    MetricSpec,
    Outcome,
    Phases,
    PhaseUsage,
    Proposal,
    RecipeSpec,
    Trial,
    TrialRecord,
    trial_number,
)

LEVELS = {"smoke": 0.25, "short": 0.5, "full": 1.0}


def recipe(levels: dict[str, float] = LEVELS, direction: Direction = Direction.maximize) -> RecipeSpec:
    return RecipeSpec(
        name="toy",
        description="A toy recipe with three fidelity levels.",
        editable=["model.py"],
        phases=Phases(train="python train.py", eval="python {eval}/predict.py"),
        evaluator=EvaluatorSpec(prepare="prepare.py:prepare", score="score.py:score"),
        metric=MetricSpec(name="acc", direction=direction, noise_margin=0.01),
        budgets=Budgets(train_wallclock_s=60, eval_wallclock_s=60),
        fidelities={name: FidelitySpec(cost=cost) for name, cost in levels.items()},
    )


def record(
    tid: str,
    parent: str | None,
    level: str,
    score: float | None = None,
    label: Label | None = None,
    *,
    move: str | None = None,
    agent: str | None = None,
    pending: bool = False,
    seconds: float = 1.0,
) -> TrialRecord:
    """One record; `label` defaults to not_improved with a score and crash without one."""
    agent = agent or move or ("baseline" if parent is None else "random")
    trial = Trial(
        id=tid,
        run_id="r",
        parent=parent,
        proposal=Proposal(hypothesis=f"trial {tid}", diff="", agent=agent, parent=parent),
        fidelity=level,
        seeds=[0],
        commit=f"{trial_number(tid):040x}",
        fidelity_move=move,
    )
    if pending:
        return TrialRecord(trial=trial)
    if label is None:
        label = Label.not_improved if score is not None else Label.crash
    outcome = Outcome(
        label=label,
        score=score,
        seed_scores=[score] if score is not None else [],
        metrics={"acc": score} if score is not None else {},
        phases=[PhaseUsage(phase="train", seed=0, wallclock_s=seconds, exit_code=0)] if label.ran else [],
        started="2024-01-01T00:00:00Z",
        finished="2024-01-01T00:00:01Z",
    )
    return TrialRecord(trial=trial, outcome=outcome)
