"""`harness replay --rerun`: re-execute recorded trials and check their scores reproduce.

Each chosen trial's commit runs again in a fresh sandbox with new seeds (at
least three), under the run's own evaluator. The recorded score reproduces when
it lies within the larger of the recipe's noise margin and the prediction
interval that the rerun's seeds give for a score like the recorded one (two
sided, at the recipe's significance level): a single lucky seed is caught, an
honest noisy recipe is not accused. The verdicts are
appended to `refs/heads/replays`; the ledger is never rewritten.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path

from pydantic import BaseModel
from scipy import stats

from harness.evaluator_code import snapshot_evaluator
from harness.recipe_loader import LoadedRecipe
from harness.trial_exec import RunPaths, TrialExecutor, utc_now
from harness.types import Label, RunInfo, TrialRecord
from sandboxes.base import Sandbox
from trajectories.lineage import Lineage

RERUN_SEED_OFFSET = 1000
"""Rerun seeds are 1000, 1001, ...: new to the trial, and the same on every rerun."""


class RerunError(Exception):
    """The trials to rerun cannot be chosen or the run cannot be re-executed."""


class RerunVerdict(BaseModel):
    trial: str
    """Trial re-executed."""
    recorded_score: float | None
    """Score in the ledger."""
    rerun_score: float | None
    """Score of the re-execution (None when it failed)."""
    rerun_label: str
    """Label the re-execution got."""
    seeds: list[int]
    """Seeds of the re-execution."""
    tolerance: float
    """Largest |recorded - rerun mean| accepted: max(noise margin, prediction half-width)."""
    reproduced: bool
    """Whether the score reproduced within noise."""
    reason: str
    """The numbers behind the verdict."""


class RerunReport(BaseModel):
    run: str
    """Run folder."""
    when: str
    """UTC time of the replay."""
    verdicts: list[RerunVerdict]
    """One per re-executed trial."""


def choose_trials(records: list[TrialRecord], best: str | None, targets: list[str], maximize: bool) -> list[str]:
    """Resolve `best`, `top:K` and explicit trial ids into trial ids with a score."""
    scored = [r for r in records if r.outcome is not None and r.outcome.score is not None]
    by_id = {r.trial.id: r for r in records}
    chosen: list[str] = []
    for target in targets:
        if target == "best":
            if best is None:
                raise RerunError("the run has no best trial")
            ids = [best]
        elif target.startswith("top:"):
            try:
                k = int(target[4:])
            except ValueError:
                raise RerunError(f"--rerun {target!r}: expected top:K with a whole number K") from None
            ranked = sorted(scored, key=lambda r: r.outcome.score, reverse=maximize)  # type: ignore[union-attr]
            ids = [r.trial.id for r in ranked[:k]]
        elif target in by_id:
            ids = [target]
        else:
            raise RerunError(f"--rerun {target!r}: no such trial (use a trial id, best or top:K)")
        chosen += [i for i in ids if i not in chosen]
    return chosen


def rerun_trials(
    run_dir: Path,
    recipe: LoadedRecipe,
    sandbox: Sandbox,
    targets: list[str],
    seeds: int = 3,
    on_verdict=None,
) -> RerunReport:
    from harness.loop import RunError, take_run_lock

    paths = RunPaths(Path(run_dir).resolve())
    try:  # a rerun writes the run (evaluator copy, data, trial scratch, refs/heads/replays)
        lock = take_run_lock(paths)
    except RunError as exc:
        raise RerunError(f"{exc}: rerun once it has stopped") from None
    try:
        return _rerun_locked(run_dir, paths, recipe, sandbox, targets, seeds, on_verdict)
    finally:
        os.close(lock)


def _rerun_locked(run_dir: Path, paths: RunPaths, recipe: LoadedRecipe, sandbox: Sandbox, targets: list[str],
                  seeds: int, on_verdict) -> RerunReport:
    with Lineage.open(run_dir) as lineage:
        info = lineage.run_info()
        if info.imported is not None:
            raise RerunError("an imported run carries no code to re-execute")
        digest = snapshot_evaluator(recipe.evaluator_dir, paths.evaluator)
        if digest != info.evaluator_digest:
            raise RerunError(
                f"the evaluator of recipe {info.recipe.name!r} is not the one the run used "
                f"({digest[:12]} != {info.evaluator_digest[:12]}); a rerun must use the run's evaluator"
            )
        if not paths.heldout_labels.is_dir():
            from harness.loop import prepare_data

            records = lineage.records()
            prepare_data(info.recipe, paths, records[0].trial.fidelity if records else None)
        records = lineage.records()
        maximize = info.recipe.metric.direction.value == "maximize"
        chosen = choose_trials(records, lineage.best(), targets, maximize)
        executor = TrialExecutor(
            spec=info.recipe,
            lineage=lineage,
            paths=paths,
            sandbox=sandbox,
            evaluator_digest=info.evaluator_digest,
            evaluator_source=recipe.evaluator_dir,
            baseline_commit=info.baseline_commit,
            run_id=info.run_id,
        )
        by_id = {r.trial.id: r for r in records}
        verdicts = []
        for tid in chosen:
            verdict = _rerun_one(executor, info, by_id[tid], seeds)
            verdicts.append(verdict)
            if on_verdict is not None:
                on_verdict(verdict)
        report = RerunReport(run=str(run_dir), when=utc_now(), verdicts=verdicts)
        lineage.append_verdict(
            (json.dumps(report.model_dump(mode="json"), indent=1, sort_keys=True) + "\n").encode(),
            f"replay --rerun {' '.join(chosen)}: "
            f"{sum(v.reproduced for v in verdicts)}/{len(verdicts)} reproduced",
        )
        return report


def _rerun_one(executor: TrialExecutor, info: RunInfo, record: TrialRecord, n_seeds: int) -> RerunVerdict:
    trial = record.trial
    count = max(n_seeds, len(trial.seeds))
    seeds = [RERUN_SEED_OFFSET + i for i in range(count)]
    again = trial.model_copy(update={"seeds": seeds})
    outcome = executor.execute(again, None, None, scratch_name=f"rerun-{trial.id}")
    recorded = record.outcome.score if record.outcome else None
    recorded_n = max(1, len(record.outcome.seed_scores)) if record.outcome else 1
    margin = info.recipe.metric.noise_margin
    new = outcome.score
    if new is None or recorded is None or outcome.label not in (Label.keep, Label.not_improved, Label.gate_miss):
        return RerunVerdict(
            trial=trial.id, recorded_score=recorded, rerun_score=new, rerun_label=outcome.label.value,
            seeds=seeds, tolerance=margin, reproduced=False,
            reason=f"the re-execution ended {outcome.label.value}: {outcome.explanation[:200]}",
        )
    tolerance = max(margin, prediction_half_width(list(outcome.seed_scores), recorded_n,
                                                  info.recipe.metric.significance))
    delta = recorded - new
    reproduced = abs(delta) <= tolerance
    reason = (
        f"recorded {info.recipe.metric.name} {recorded:.4f} vs rerun mean {new:.4f} over {count} seed(s) "
        f"(|{delta:+.4f}| {'<=' if reproduced else '>'} tolerance {tolerance:.4f})"
    )
    return RerunVerdict(
        trial=trial.id, recorded_score=recorded, rerun_score=new, rerun_label=outcome.label.value,
        seeds=seeds, tolerance=tolerance, reproduced=reproduced, reason=reason,
    )


def prediction_half_width(rerun_scores: list[float], recorded_n: int, significance: float) -> float:
    """Half-width of the two-sided prediction interval, from the rerun's seeds, for the
    mean of `recorded_n` further seeds: t(1 - a/2, n-1) * s * sqrt(1/n + 1/recorded_n).

    0 with fewer than two rerun seeds (no spread to estimate: only the margin applies)."""
    n = len(rerun_scores)
    if n < 2:
        return 0.0
    spread = statistics.stdev(rerun_scores)
    return float(stats.t.ppf(1 - significance / 2, n - 1)) * spread * math.sqrt(1 / n + 1 / recorded_n)
