"""Synthetic runs for the lineage benchmarks (a helper module, not a figure).

`plan_trials(n, seed)` makes, in memory and without git, the trials of an n-trial
run of the `collision` recipe that looks like a native one: agents (`random`,
`bayes`, `anthropic`, `openai`) edit the recipe's knobs in `config.py` (real small
diffs), LLM agents work as the `arch` / `opt` specialists, a quarter of the
trials run at the `smoke` fidelity, and every kind of failure label appears
(rejected diffs before running, crashes, timeouts, OOM, ...). Scores come from a
fixed per-knob-value effect plus noise, and keep / not_improved is decided by the
recipe's keep rule (`evaluators.decision.decide`) against the parent and the best,
as the loop does; so `harness replay --verify` accepts the recorded run.

Scored trials are all at the run's fidelity (`full`) and parents are always
scored trials: the keep rule then has the same references whether it compares
within one fidelity level or across all of them.

`record_plan(run_dir, plan)` records a plan through the lineage API with the git
calls `harness.loop.Run` makes per trial (list the parent's files, check and
apply the diff, re-check what git applied, commit the trial, take the canonical
diff, `proposed` event, `outcome` event, move `best` on keep), grouped as the
loop with two or more slots groups them (`LineageRecorder`), or one write per
event (`grouped=False`).
"""

from __future__ import annotations

import random
import statistics
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.decision import decide  # noqa: E402
from evaluators.legality import check_diff  # noqa: E402
from harness.agents.knobs import file_diff, knob_hypothesis, read_knobs, rewrite  # noqa: E402
from harness.recipe_loader import load_recipe  # noqa: E402
from harness.types import (  # noqa: E402
    BASELINE_TRIAL_ID,
    Label,
    Outcome,
    PhaseUsage,
    Proposal,
    RecipeSpec,
    RunInfo,
    Trial,
    TrialRecord,
    trial_id,
)
from trajectories.lineage import Lineage, trial_trailers  # noqa: E402

RECIPE = "collision"
CONFIG = "config.py"
EVALUATOR_DIGEST = "e" * 64
SMOKE_SHARE = 0.25
"""Share of trials proposed at the `smoke` fidelity."""
PRE_RUN_SHARE = 0.08
"""Share of trials rejected before running (illegal edit, apply failure, malformed)."""
RUN_FAILURE_SHARE = 0.12
"""Share of full-fidelity trials that fail while running."""
UNSCORED_FAILURES = [
    Label.crash, Label.oom, Label.budget_overrun, Label.eval_budget_overrun, Label.preflight_crash,
    Label.metric_missing, Label.size_failure, Label.tamper, Label.harness_error,
]
AGENTS = [("random", None), ("bayes", None), ("anthropic", "arch"), ("anthropic", "opt"), ("openai", "arch"),
          ("openai", "opt")]


class PlannedTrial(BaseModel):
    """One synthetic trial, before it is recorded (no commit yet)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    """Trial number (0 is the baseline)."""
    parent: int | None
    """Parent trial number (None for the baseline)."""
    hypothesis: str
    """The proposal's hypothesis (also the trial commit's subject)."""
    diff: str
    """The proposal's diff against the parent's source ("" for the baseline)."""
    config: str
    """`config.py` of the trial's tree (the parent's when the diff is rejected)."""
    agent: str
    """Agent that proposed it."""
    specialist: str | None
    """Specialist the agent worked as, if any."""
    fidelity: str
    """Fidelity level the trial runs at."""
    seeds: list[int]
    """Seeds of that level."""
    knobs: dict[str, bool | int | float | str]
    """Full knob assignment of the trial (what knob agents record)."""
    label: Label
    """The outcome's label."""
    seed_scores: list[float]
    """Per-seed scores (empty for an unscored outcome)."""


def collision_spec() -> RecipeSpec:
    return load_recipe(RECIPE).spec


def source_dir() -> Path:
    return load_recipe(RECIPE).source_dir


def _phases(label: Label) -> list[PhaseUsage]:
    """Phase measurements consistent with the label (what replay checks)."""
    if not label.ran:
        return []
    train = PhaseUsage(phase="train", seed=0, wallclock_s=12.5, exit_code=0, output_bytes=2048,
                       log_tail="epoch 8/8 loss 0.214\n")
    evaluation = PhaseUsage(phase="eval", seed=0, wallclock_s=1.4, exit_code=0, output_bytes=300, log_tail="ok\n")
    if label is Label.budget_overrun:
        return [train.model_copy(update={"timed_out": True, "exit_code": None})]
    if label is Label.eval_budget_overrun:
        return [train, evaluation.model_copy(update={"timed_out": True, "exit_code": None})]
    if label in (Label.crash, Label.preflight_crash):
        return [train.model_copy(update={"exit_code": 1, "log_tail": "Traceback ...\nValueError: shapes\n"})]
    if label is Label.oom:
        return [train.model_copy(update={"oom": True, "exit_code": 137})]
    return [train, evaluation]


def plan_trials(n: int, seed: int = 0) -> list[PlannedTrial]:
    """The n trials (t0000 .. t{n-1}) of a synthetic run; the same for the same seed."""
    rng = random.Random(seed)
    spec = collision_spec()
    base_config = (source_dir() / CONFIG).read_text()
    knobs = {k.name: k for k in spec.knobs}
    effect = {(k.name, repr(c)): rng.gauss(0.0, 0.01) for k in spec.knobs for c in k.choices}
    base_knobs = {name: value for name, value in read_knobs(spec, lambda path: base_config).items()
                  if value is not None}
    base = PlannedTrial(number=0, parent=None, hypothesis="Baseline of the collision recipe.", diff="",
                        config=base_config, agent="baseline", specialist=None, fidelity="full",
                        seeds=spec.fidelities["full"].seeds, knobs=base_knobs, label=Label.keep, seed_scores=[0.6])
    plan = [base]
    scored = [0]
    best = 0
    for number in range(1, n):
        parent = plan[best if rng.random() < 0.7 else rng.choice(scored)]
        agent, specialist = rng.choice(AGENTS)
        names = spec.specialists[specialist].knobs if specialist else list(knobs)
        changes = {}
        for name in rng.sample(names, rng.randint(1, 2)):
            choices = [c for c in knobs[name].choices if repr(c) != repr(parent.knobs[name])]
            changes[name] = rng.choice(choices)
        config = parent.config
        for name, value in changes.items():
            config = rewrite(config, knobs[name], value)
        diff = file_diff(CONFIG, parent.config, config)
        hypothesis = knob_hypothesis(changes, parent.knobs)
        fidelity = "smoke" if rng.random() < SMOKE_SHARE else "full"
        draw = rng.random()
        scores: list[float] = []
        if draw < PRE_RUN_SHARE:
            label = rng.choice([Label.illegal_edit, Label.apply_failed, Label.malformed_proposal])
            config = parent.config  # rejected: the trial keeps its parent's tree
            diff = {
                Label.illegal_edit: file_diff("data.py", "SEED = 0\n", "SEED = 1\n"),  # a protected file
                Label.apply_failed: file_diff(CONFIG, "LR = 0.5\n", "LR = 0.1\n"),  # a line that is not there
                Label.malformed_proposal: "--- not a diff\n",
            }[label]
            changes = {}
        elif fidelity == "smoke" or draw < PRE_RUN_SHARE + RUN_FAILURE_SHARE:
            label = rng.choice(UNSCORED_FAILURES)
        else:
            assignment = {**parent.knobs, **changes}
            mean = 0.6 + sum(effect[(k, repr(v))] for k, v in assignment.items())
            scores = [round(mean + rng.gauss(0.0, 0.01), 6) for _ in spec.fidelities[fidelity].seeds]
            decision = decide(spec.metric, scores, plan[parent.number].seed_scores, plan[best].seed_scores)
            label = Label.keep if decision.keep else Label.not_improved
        trial = PlannedTrial(number=number, parent=parent.number, hypothesis=hypothesis, diff=diff, config=config,
                             agent=agent, specialist=specialist, fidelity=fidelity,
                             seeds=spec.fidelities[fidelity].seeds, knobs={**parent.knobs, **changes}, label=label,
                             seed_scores=scores)
        plan.append(trial)
        if scores:
            scored.append(number)
        if label is Label.keep:
            best = number
    return plan


def run_info(spec: RecipeSpec, baseline_commit: str, run_id: str) -> RunInfo:
    return RunInfo(run_id=run_id, recipe=spec, recipe_dir=f"recipes/{RECIPE}", baseline_commit=baseline_commit,
                   evaluator_digest=EVALUATOR_DIGEST, agent="mixed", seed=0, created="2026-01-01T00:00:00+00:00",
                   harness_version="0.1.0")


def outcome_of(planned: PlannedTrial, explanation: str) -> Outcome:
    """The recorded outcome of a planned trial."""
    score = statistics.fmean(planned.seed_scores) if planned.seed_scores else None
    stamp = f"2026-01-01T{planned.number // 3600 % 24:02d}:{planned.number // 60 % 60:02d}:{planned.number % 60:02d}Z"
    return Outcome(label=planned.label, explanation=explanation, score=score, seed_scores=planned.seed_scores,
                   metrics={"ap": score} if score is not None else {}, phases=_phases(planned.label),
                   evaluator_digest=EVALUATOR_DIGEST, image="local:python3.11", started=stamp, finished=stamp)


def proposal_of(planned: PlannedTrial, diff: str) -> Proposal:
    return Proposal(hypothesis=planned.hypothesis, diff=diff,
                    parent=trial_id(planned.parent) if planned.parent is not None else None, agent=planned.agent,
                    specialist=planned.specialist, knobs=planned.knobs)


class Recorder:
    """Writes planned trials into a lineage, one at a time, in plan order."""

    def record(self, planned: PlannedTrial) -> None:
        if planned.number == 0:
            self._baseline(planned)
        else:
            self._trial(planned)

    def _baseline(self, base: PlannedTrial) -> None:
        raise NotImplementedError

    def _trial(self, planned: PlannedTrial) -> None:
        raise NotImplementedError


class LineageRecorder(Recorder):
    """Records planned trials into a new lineage the way the loop does.

    `grouped` (the loop with two or more slots): the outcome of the trial that
    ended and the proposal that takes its slot are one group commit
    (`Lineage.grouped`: one pack and one ref transaction, flushed to disk once),
    as the scheduler writes what it records after each wait. Otherwise (one
    slot, one proposer: strictly sequential) every event is its own write."""

    def __init__(self, run_dir: Path, run_id: str, grouped: bool = True) -> None:
        self.spec = collision_spec()
        self.run_id = run_id
        self.lineage = Lineage.init(run_dir)
        self.commits: dict[int, str] = {}
        self.grouped = grouped
        self._running: tuple[TrialRecord, PlannedTrial, str] | None = None
        """The trial that runs while the next one is proposed (its outcome, its plan, the explanation)."""

    def record(self, planned: PlannedTrial) -> None:
        if not self.grouped or planned.number == 0:
            super().record(planned)
            return
        with self.lineage.grouped():
            self._finish_running()
            self._trial(planned)

    def close(self) -> None:
        if self._running is not None:
            with self.lineage.grouped():
                self._finish_running()
        self.lineage.close()

    def _finish_running(self) -> None:
        if self._running is not None:
            trial_record, planned, explanation = self._running
            self._running = None
            self._outcome(trial_record, planned, explanation)

    def _outcome(self, trial_record: TrialRecord, planned: PlannedTrial, explanation: str) -> None:
        outcome = outcome_of(planned, explanation)
        self.lineage.record_outcome(TrialRecord(trial=trial_record.trial, outcome=outcome))
        if planned.label is Label.keep:
            self.lineage.set_best(trial_record.trial.id)

    def _baseline(self, base: PlannedTrial) -> None:
        lineage = self.lineage
        trailers = trial_trailers(BASELINE_TRIAL_ID, None, base.agent, None, base.fidelity)
        baseline_commit = lineage.commit_baseline(source_dir(), base.hypothesis, trailers)
        lineage.start(run_info(self.spec, baseline_commit, self.run_id))
        self.commits[0] = baseline_commit
        trial = Trial(id=BASELINE_TRIAL_ID, run_id=self.run_id, proposal=proposal_of(base, ""),
                      fidelity=base.fidelity, seeds=base.seeds, commit=baseline_commit)
        lineage.record_proposed(TrialRecord(trial=trial))
        lineage.record_outcome(TrialRecord(trial=trial, outcome=outcome_of(base, "the baseline")))
        lineage.set_best(BASELINE_TRIAL_ID)

    def _trial(self, planned: PlannedTrial) -> None:
        lineage, spec = self.lineage, self.spec
        assert planned.parent is not None
        tid, parent_id = trial_id(planned.number), trial_id(planned.parent)
        parent_commit = self.commits[planned.parent]
        parent_tree = lineage.tree_of(parent_commit)
        modes = {path: mode for path, (mode, _blob) in lineage.files(parent_commit).items()}
        legality = check_diff(planned.diff, spec, modes)
        tree, diff = parent_tree, planned.diff
        if planned.label.ran:
            if legality.label is not None:
                raise AssertionError(f"{tid}: the planned diff is rejected: {legality.reason}")
            tree = lineage.apply_diff(parent_commit, planned.diff)
            applied = check_diff(lineage.diff_trees(parent_tree, tree), spec, modes)
            if applied.label is not None:
                raise AssertionError(f"{tid}: git applied an illegal edit: {applied.reason}")
        trailers = trial_trailers(tid, parent_id, planned.agent, planned.specialist, planned.fidelity)
        commit = lineage.commit_trial(tree, parent_commit, planned.hypothesis, trailers)
        if planned.label.ran:
            diff = lineage.diff(parent_commit, commit)
        trial = Trial(id=tid, run_id=self.run_id, parent=parent_id, proposal=proposal_of(planned, diff),
                      fidelity=planned.fidelity, seeds=planned.seeds, commit=commit)
        proposed = TrialRecord(trial=trial)
        lineage.record_proposed(proposed)
        self.commits[planned.number] = commit
        explanation = legality.reason or f"synthetic {planned.label.value}"
        if self.grouped and planned.label.ran:  # runs while the next trial is proposed
            self._running = (proposed, planned, explanation)
        else:
            self._outcome(proposed, planned, explanation)


def record_plan(run_dir: Path, plan: list[PlannedTrial], run_id: str = "synthetic", grouped: bool = True) -> None:
    """Record `plan` into a new lineage at `run_dir` the way the loop does."""
    recorder = LineageRecorder(run_dir, run_id, grouped)
    try:
        for planned in plan:
            recorder.record(planned)
    finally:
        recorder.close()
