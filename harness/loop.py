"""The trial loop: propose -> check -> record -> run -> evaluate -> record.

Write-ahead: a trial's proposal is committed to the lineage before anything
runs, and its outcome is appended afterwards; `best` moves only after the
outcome is recorded. A run interrupted between the two is finished by
`--resume`, which re-runs the trials that have a proposal but no outcome.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from evaluators.decision import decide, keep_references
from evaluators.legality import check_diff
from harness import __version__
from harness.agents.base import Agent, AgentContext
from harness.eval_view import view_problems
from harness.evaluator_code import EvaluatorCodeError, snapshot_evaluator
from harness.fidelity import Policy, PolicyError, SameCode, Stop, kept_by_level, make_policy
from harness.recipe_loader import LoadedRecipe
from harness.recovery import repair_best, stop_stray_phases
from harness.run_folder import (  # noqa: F401 - RunError and the folder helpers are used from here too
    RunError,
    default_run_id,
    interrupted_creation,
    prepare_data,
    refuse_interrupted_creation,
    register_run,
    take_run_lock,
)
from harness.proposing import Draft, RunProposals, budget_wait, lineage_state
from harness.scheduler import WAIT, SlotPlan, Wait, plan_slots, run_slots
from harness.slot_timeline import SlotTimeline, pace_note
from harness.trial_exec import RunPaths, TrialExecutor, seed_scores, utc_now
from harness.types import (
    BASELINE_TRIAL_ID,
    FidelityPolicy,
    Label,
    LineageState,
    Outcome,
    Proposal,
    RecipeSpec,
    RunInfo,
    Trial,
    TrialRecord,
    trial_id,
)
from sandboxes.base import Sandbox
from sandboxes.errors import SandboxError, SandboxUnavailable
from trajectories.lineage import ApplyError, Lineage, trial_trailers

BASELINE_HYPOTHESIS = "Baseline: the recipe's starting source"

HARNESS_ERROR_RETRIES = 2
"""Infrastructure failures are retried this many times before `harness_error` is recorded."""


class Reporter(Protocol):
    def trial_started(self, trial: Trial) -> None: ...

    def trial_finished(self, record: TrialRecord, best: TrialRecord) -> None: ...

    def note(self, text: str) -> None: ...


@dataclass
class Run:
    """One run: its lineage, its recipe, its agent and sandbox."""

    recipe: LoadedRecipe
    lineage: Lineage
    paths: RunPaths
    info: RunInfo
    sandbox: Sandbox
    agent: Agent
    reporter: Reporter
    fidelity: str
    gpus: tuple[int, ...] = ()
    _lock: int | None = field(default=None, repr=False)
    specialists: tuple[str, ...] = ()
    """Specialist partitions that take turns proposing (empty: no specialist)."""
    max_cost_usd: float | None = None
    """Stop proposing once the run's recorded proposals cost this much."""
    _stop_reason: str | None = field(default=None, repr=False)
    policy: Policy | None = field(default=None, repr=False)
    """Which level the next trial runs at, and when the budget is spent (from `info`)."""
    _level_best: dict[str, str] = field(default_factory=dict, repr=False)
    """Level -> the last trial kept at that level (the keep rule's `best` reference)."""

    @property
    def spec(self) -> RecipeSpec:
        return self.info.recipe

    @property
    def target_level(self) -> str:
        """The baseline's level: `best` is the best kept trial at this level."""
        return self.lineage.record(BASELINE_TRIAL_ID).trial.fidelity

    # -- creation -----------------------------------------------------------

    @classmethod
    def create(
        cls,
        recipe: LoadedRecipe,
        run_dir: Path,
        *,
        agent: Agent,
        sandbox: Sandbox,
        reporter: Reporter,
        seed: int,
        fidelity: str | None = None,
        gpus: tuple[int, ...] = (),
        policy: FidelityPolicy | None = None,
    ) -> "Run":
        refuse_interrupted_creation(run_dir)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise RunError(f"{run_dir} already exists and is not empty; choose another --run-id or --out")
        fidelity = _check_fidelity(recipe.spec, fidelity)
        exposed = view_problems(recipe.spec, recipe.evaluator_dir)
        if exposed:  # trial code runs in the eval phase: it must not find data there
            raise RunError(f"recipe {recipe.spec.name!r}: evaluator.eval_files: " + "; ".join(exposed))
        try:  # refuse a policy the recipe cannot serve before anything is created
            make_policy(recipe.spec, fidelity, policy)
        except PolicyError as exc:
            raise RunError(str(exc)) from None
        run_dir.mkdir(parents=True, exist_ok=True)
        paths = RunPaths(run_dir)
        # The lock comes first: it also marks the folder as a run being created, so a
        # creation cut short is recognised (see `interrupted_creation`).
        lock = take_run_lock(paths)
        register_run(run_dir, reporter.note)
        lineage = Lineage.init(run_dir)
        reporter.note(f"preparing data with the evaluator of recipe {recipe.spec.name!r}")
        digest = snapshot_evaluator(recipe.evaluator_dir, paths.evaluator)
        prepare_data(recipe.spec, paths, fidelity)
        baseline_commit = lineage.commit_baseline(
            recipe.source_dir,
            BASELINE_HYPOTHESIS,
            trial_trailers(BASELINE_TRIAL_ID, None, "baseline", None, fidelity),
        )
        info = RunInfo(
            run_id=run_dir.name,
            recipe=recipe.spec,
            recipe_dir=str(recipe.folder),
            baseline_commit=baseline_commit,
            evaluator_digest=digest,
            agent=agent.name,
            seed=seed,
            created=utc_now(),
            harness_version=__version__,
            fidelity_policy=policy,
        )
        lineage.start(info)
        run = cls(recipe, lineage, paths, info, sandbox, agent, reporter, fidelity, gpus, lock)
        run.reap_orphans()
        run._propose_baseline()
        return run

    @classmethod
    def resume(
        cls,
        recipe: LoadedRecipe,
        run_dir: Path,
        *,
        agent: Agent,
        sandbox: Sandbox,
        reporter: Reporter,
        fidelity: str | None = None,
        gpus: tuple[int, ...] = (),
        policy: FidelityPolicy | None = None,
    ) -> "Run":
        refuse_interrupted_creation(run_dir)
        lineage = Lineage.open(run_dir)
        if policy is not None and policy != (lineage.run_info().fidelity_policy or FidelityPolicy(name="fixed")):
            raise RunError(f"{run_dir} was started with {describe_policy(lineage.run_info().fidelity_policy)}; "
                           "a resumed run keeps it (leave out the fidelity policy options)")
        paths = RunPaths(run_dir)
        lock = take_run_lock(paths)
        register_run(run_dir, reporter.note)  # runs made before the registry existed join it here
        for leftover in lineage.discard_interrupted_writes():
            reporter.note(f"removed {leftover} (a write cut short)")
        lineage.refresh()  # opened before the lock was ours: a dying writer may have moved the ledger since
        info = lineage.run_info()
        # Default: carry on at the run's own level (the baseline's), not the recipe's default.
        baseline = next((r for r in lineage.records()[:1] if r.trial.id == BASELINE_TRIAL_ID), None)
        fidelity = _check_fidelity(info.recipe, fidelity or (baseline.trial.fidelity if baseline else None))
        digest = snapshot_evaluator(recipe.evaluator_dir, paths.evaluator)
        if digest != info.evaluator_digest:
            raise RunError(
                f"the evaluator of recipe {info.recipe.name!r} changed since the run started "
                f"({info.evaluator_digest[:12]} -> {digest[:12]}); a run cannot change its evaluator"
            )
        if not paths.heldout_labels.is_dir():
            prepare_data(info.recipe, paths, baseline.trial.fidelity if baseline else fidelity)
        run = cls(recipe, lineage, paths, info, sandbox, agent, reporter, fidelity, gpus, lock)
        run.reap_orphans()
        run._repair()
        return run

    def _repair(self) -> None:
        """Bring a run that stopped mid-trial back to a state the loop continues from
        (harness/recovery.py says what a kill can leave)."""
        for name, aside in self.lineage.set_aside_stray_trial_refs().items():
            self.reporter.note(f"{name} has no ledger record (a proposal cut short): kept as {aside}")
        if BASELINE_TRIAL_ID not in {r.trial.id for r in self.lineage.records()}:
            self.reporter.note("the run stopped before its baseline was proposed; proposing it now")
            self._propose_baseline()
        note = repair_best(self.lineage, self.target_level)
        if note:
            self.reporter.note(note)

    def _propose_baseline(self) -> None:
        baseline = Trial(
            id=BASELINE_TRIAL_ID,
            run_id=self.info.run_id,
            parent=None,
            proposal=Proposal(hypothesis=BASELINE_HYPOTHESIS, diff="", agent="baseline"),
            fidelity=self.fidelity,
            seeds=self.spec.fidelities[self.fidelity].seeds,
            commit=self.info.baseline_commit,
        )
        self.lineage.record_proposed(TrialRecord(trial=baseline))

    def reap_orphans(self) -> None:
        """Remove sandboxes of this run left by a crashed orchestrator (only with the run's lock held)."""
        reap = getattr(self.sandbox, "reap_orphans", None)
        if reap is not None:
            removed = reap(self.info.run_id)
            if removed:
                self.reporter.note(f"removed {len(removed)} orphaned sandbox(es) of this run: {', '.join(removed)}")
        stopped = stop_stray_phases(self.paths.scratch / "trials", getattr(self.sandbox, "root_dir", None))
        if stopped:
            self.reporter.note(f"stopped what a killed run left running: {', '.join(stopped)}")

    def close(self) -> None:
        self.lineage.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # -- the loop -----------------------------------------------------------

    def run(self, trials: int, slots: SlotPlan | None = None) -> None:
        """Finish interrupted trials, then propose and run up to `trials` new ones."""
        slots = slots or plan_slots(1, self.gpus, len(self.gpus))
        if self._fidelity_policy().name == "halving" and (slots.parallel > 1 or slots.proposers > 1):
            raise RunError("--fidelity-policy halving runs one trial at a time (a rung is ranked once all its "
                           "trials are recorded): use --parallel 1 --proposers 1")
        self._level_best = kept_by_level(self.lineage)
        pending = [r.trial for r in self.lineage.records() if r.outcome is None]
        if pending and pending[0].id == BASELINE_TRIAL_ID:
            baseline_trial = pending.pop(0)
            self.reporter.trial_started(baseline_trial)
            self._record_outcome(baseline_trial, self._execute(baseline_trial, slots.gpu_groups[0]))
        baseline = self.lineage.record(BASELINE_TRIAL_ID).outcome
        if baseline is None or baseline.label is not Label.keep:
            label = baseline.label.value if baseline else "no outcome"
            raise RunError(
                f"the baseline trial failed ({label}): {baseline.explanation if baseline else ''}\n"
                f"No trial can be judged against a broken baseline; see `harness show {self.paths.run_dir} t0000`."
            )
        for trial in pending:
            self.reporter.note(f"{trial.id}: proposal recorded but never evaluated; running it now")
        timeline = SlotTimeline(slots.parallel)
        run_slots(
            slots,
            pending,
            trials,
            RunProposals(self),
            needs_run=lambda trial: self.lineage.record(trial.id).outcome is None,
            execute=self._execute,
            record=self._record_outcome,
            timeline=timeline,
            writes=self.lineage.grouped,
        )
        if self._stop_reason:
            self.reporter.note(self._stop_reason)
        advice = pace_note(timeline, slots.proposers)
        if advice:
            self.reporter.note(advice)

    def configure(self, specialists: tuple[str, ...] = (), max_cost_usd: float | None = None,
                  defined: tuple[str, ...] = ()) -> None:
        """Choose the specialists that take turns and the cost limit (checked against the recipe;
        `defined` names specialists a team file defines beyond the recipe's)."""
        check_specialists(self.spec, specialists, defined)
        self.specialists = specialists
        self.max_cost_usd = max_cost_usd

    def spent_usd(self) -> float:
        """Cost of every proposal recorded in the lineage (so it survives resumes)."""
        return sum(r.trial.proposal.usage.cost_usd for r in self.lineage.records())

    def _fidelity_policy(self) -> Policy:
        """The run's fidelity policy (made once, from the choice stored in run.json)."""
        if self.policy is None:
            chosen = self.info.fidelity_policy
            if chosen is not None and chosen.name == "halving" and self.fidelity != self.target_level:
                raise RunError(f"this halving run promotes up to {self.target_level!r} (its baseline's level); "
                               f"it cannot continue at --fidelity {self.fidelity}")
            try:
                self.policy = make_policy(self.spec, self.fidelity, chosen)
            except PolicyError as exc:
                raise RunError(str(exc)) from None
        return self.policy

    def _best_to_build_on(self, policy: str, level: str | None) -> str:
        """The trial an agent builds on by default: the run's best; under halving, where new
        ideas run at the lowest level, the best kept at that level (climbing there, rather
        than waiting for a promotion to reach the top before the next idea can use a gain)."""
        if policy == "halving" and level in self._level_best:
            return self._level_best[level]
        return self.lineage.best() or BASELINE_TRIAL_ID

    def _propose_and_record(self) -> Trial | None:
        """Propose one trial and record it, start to end (no other proposal under way)."""
        proposals = RunProposals(self)
        draft = proposals.begin(0)
        if not isinstance(draft, Draft):
            return None
        return proposals.finish(draft, proposals.prepare(draft))

    def _begin_proposal(self, earlier: int, in_flight_units: float = 0.0) -> Draft | Wait | None:
        """Start the proposal that follows the `earlier` ones under way (`harness.proposing`):
        None once proposing stops, `WAIT` while the budget waits on the ones under way."""
        if self.max_cost_usd is not None:
            spent = self.spent_usd()
            if spent >= self.max_cost_usd:
                self._stop_reason = f"cost limit reached: ${spent:.4f} spent of --max-cost ${self.max_cost_usd:g}"
                return None
        records = self.lineage.records()
        policy = self._fidelity_policy()
        step = policy.next_step(records)
        if isinstance(step, Stop):
            self._stop_reason = step.reason
            return None
        if budget_wait(policy, records, step.level, in_flight_units) is not None:
            return WAIT
        number = self.lineage.next_trial_number() + earlier
        head = self.lineage.ledger_head()
        if head is None:
            raise RunError("the run has no ledger yet: nothing can be proposed")
        state = lineage_state(head, records)
        if isinstance(step, SameCode):
            return Draft(number, step, policy, state)
        best = self._best_to_build_on(policy.name, step.level)
        ctx = AgentContext(
            spec=self.spec,
            records=records,
            best=best,
            read_file=self._read_editable,
            list_files=self._list_editable,
            export_files=self._export_trial,
            specialist=self._next_specialist(number),
            seed=_derive_seed(self.info.seed, number),
            trial_number=number,
            fidelity=step.level,
            fidelity_policy=policy.name,
            list_tree=self._list_tree,
            read_tree=self._read_tree,
            knowledge=self._knowledge,
        )
        return Draft(number, step, policy, state, best, ctx)

    def _finish_proposal(self, draft: Draft, proposal: Proposal | None) -> Trial | None:
        """Check and record a prepared proposal (the proposals started before it are recorded)."""
        if draft.number != self.lineage.next_trial_number():
            raise RunError(f"{draft.trial} is recorded out of turn (the next trial is "
                           f"{trial_id(self.lineage.next_trial_number())})")
        if isinstance(draft.step, SameCode):
            return self._record_same_code(draft.step, draft.state)
        if proposal is None:
            self._stop_reason = f"agent {self.agent.name!r} has no more proposals"
            return None
        records, best, policy, step, tid = self.lineage.records(), draft.best, draft.policy, draft.step, draft.trial
        by_id = {r.trial.id: r for r in records}
        parent_id = proposal.parent or best
        proposal = proposal.model_copy(update={"parent": parent_id if parent_id in by_id else None,
                                               "based_on": draft.state})
        fidelity, level_problem = policy.level_for(step, proposal.fidelity, records)

        failure = None
        if parent_id not in by_id:
            failure = (Label.malformed_proposal, f"parent trial {parent_id!r} does not exist in this run")
            parent_id = best
        if failure is None and level_problem is not None:
            failure = (Label.malformed_proposal, level_problem)
        parent_commit = by_id[parent_id].trial.commit
        tree = self.lineage.tree_of(parent_commit)
        if failure is None and proposal.failure is not None:
            failure = (Label(proposal.failure), proposal.failure_reason or "the agent's answer was rejected")
        if failure is None and not proposal.hypothesis.strip():
            failure = (Label.malformed_proposal, "the proposal has no hypothesis")
        if failure is None:
            modes = {path: mode for path, (mode, _blob) in self.lineage.files(parent_commit).items()}
            legality = check_diff(proposal.diff, self.spec, modes)
            if legality.label is not None:
                failure = (legality.label, legality.reason)
        if failure is None:
            try:
                tree = self.lineage.apply_diff(parent_commit, proposal.diff)
            except ApplyError as exc:
                failure = (Label.apply_failed, f"the diff does not apply to {parent_id}: {exc}")
        if failure is None and tree == self.lineage.tree_of(parent_commit):
            failure = (Label.malformed_proposal, "the diff changes nothing")
        if failure is None:
            # Belt and braces: judge what git actually did, not only what the text said.
            applied = check_diff(self.lineage.diff_trees(self.lineage.tree_of(parent_commit), tree), self.spec, modes)
            if applied.label is not None:
                failure = (Label.illegal_edit, f"as applied by git: {applied.reason}")

        trailers = trial_trailers(tid, parent_id, proposal.agent, proposal.specialist, fidelity)
        commit = self.lineage.commit_trial(tree, parent_commit, proposal.hypothesis, trailers)
        if failure is None:
            proposal = proposal.model_copy(update={"diff": self.lineage.diff(parent_commit, commit)})
        trial = self._record_proposed(tid, parent_id, proposal, fidelity, commit)
        if failure is not None:
            now = utc_now()
            outcome = Outcome(
                label=failure[0],
                explanation=failure[1],
                evaluator_digest=self.info.evaluator_digest,
                started=now,
                finished=now,
            )
            self._record_outcome(trial, outcome)
        return trial

    def _record_same_code(self, step: SameCode, state: LineageState | None = None) -> Trial:
        """A trial the harness makes: the parent's code, unchanged, at another level."""
        tid = trial_id(self.lineage.next_trial_number())
        parent_commit = self.lineage.record(step.parent).trial.commit
        trailers = trial_trailers(tid, step.parent, step.move, None, step.level, step.move)
        commit = self.lineage.commit_trial(self.lineage.tree_of(parent_commit), parent_commit, step.hypothesis, trailers)
        proposal = Proposal(hypothesis=step.hypothesis, diff="", agent=step.move, based_on=state)
        return self._record_proposed(tid, step.parent, proposal, step.level, commit, step.move)

    def _record_proposed(
        self, tid: str, parent_id: str, proposal: Proposal, fidelity: str, commit: str, move: str | None = None
    ) -> Trial:
        transcript = proposal.transcript  # its bytes go into the lineage, its digest into the record
        trial = Trial(
            id=tid,
            run_id=self.info.run_id,
            parent=parent_id,
            proposal=proposal.model_copy(update={"parent": parent_id, "transcript": None}),
            fidelity=fidelity,
            seeds=self.spec.fidelities[fidelity].seeds,
            commit=commit,
            fidelity_move=move,
            transcript=transcript.digest() if transcript is not None else None,
        )
        self.lineage.record_proposed(TrialRecord(trial=trial), transcript)
        self.reporter.trial_started(trial)
        return trial

    def _execute(self, trial: Trial, gpus: tuple[int, ...]) -> Outcome:
        """Run one trial (in a trial thread); infrastructure failures are retried, then `harness_error`."""
        parent, best = self._references(trial)
        executor = TrialExecutor(
            spec=self.spec,
            lineage=self.lineage,
            paths=self.paths,
            sandbox=self.sandbox,
            evaluator_digest=self.info.evaluator_digest,
            evaluator_source=self.recipe.evaluator_dir,
            baseline_commit=self.info.baseline_commit,
            run_id=self.info.run_id,
            gpus=gpus,
        )
        errors: list[str] = []
        for attempt in range(1 + HARNESS_ERROR_RETRIES):
            try:
                outcome = executor.execute(trial, parent, best)
            except SandboxUnavailable:
                raise  # e.g. no NVIDIA runtime: retrying cannot help, and it is no trial's fault
            except (SandboxError, EvaluatorCodeError, OSError) as exc:
                errors.append(f"attempt {attempt + 1}: {type(exc).__name__}: {exc}")
                self.reporter.note(f"{trial.id}: infrastructure error ({errors[-1]})")
                continue
            # The lineage shows that the trial was re-run, and why.
            return outcome.model_copy(update={"infra_errors": errors}) if errors else outcome
        now = utc_now()
        return Outcome(
            label=Label.harness_error,
            explanation=f"the harness failed {1 + HARNESS_ERROR_RETRIES} times running this trial "
            f"(not the proposal's fault): {errors[-1]}",
            evaluator_digest=self.info.evaluator_digest,
            started=now,
            finished=now,
            infra_errors=errors,
        )

    def _record_outcome(self, trial: Trial, outcome: Outcome) -> None:
        """The single writer of outcomes; the keep rule is applied against the best *now*."""
        outcome = self._decide_now(trial, outcome)
        record = TrialRecord(trial=trial, outcome=outcome)
        self.lineage.record_outcome(record)
        if outcome.label is Label.keep:
            self._level_best[trial.fidelity] = trial.id
            if trial.fidelity == self.target_level:
                self.lineage.set_best(trial.id)
        best_id = self.lineage.best() or BASELINE_TRIAL_ID
        self.reporter.trial_finished(record, self.lineage.record(best_id))

    def _references(self, trial: Trial) -> tuple[TrialRecord | None, TrialRecord | None]:
        """The keep rule's references at the trial's level (`keep_references`), as of now."""
        records = {r.trial.id: r for r in self.lineage.records()}
        recorded = {tid for tid, r in records.items() if r.outcome is not None}
        return keep_references(trial, records, recorded, self._level_best)

    def _decide_now(self, trial: Trial, outcome: Outcome) -> Outcome:
        """Re-apply the keep rule at record time: with parallel trials the best may
        have moved since this trial started."""
        if trial.id == BASELINE_TRIAL_ID or outcome.label not in (Label.keep, Label.not_improved):
            return outcome
        parent, best = self._references(trial)
        decision = decide(self.spec.metric, list(outcome.seed_scores), seed_scores(parent), seed_scores(best))
        label = Label.keep if decision.keep else Label.not_improved
        return outcome.model_copy(
            update={
                "label": label,
                "status": label.status,
                "explanation": decision.reason,
                "compared_to": [r.trial.id for r in (parent, best) if r is not None],
            }
        )

    def _list_editable(self, tid: str) -> list[str]:
        commit = self.lineage.record(tid).trial.commit
        return sorted(path for path in self.lineage.files(commit) if self.spec.is_editable(path))

    def _export_trial(self, tid: str, folder: Path) -> None:
        self.lineage.export(self.lineage.record(tid).trial.commit, folder)

    def _next_specialist(self, number: int) -> str | None:
        """Round robin over the run's specialists (one agent per partition, one lineage)."""
        if not self.specialists:
            return None
        return self.specialists[(number - 1) % len(self.specialists)]

    def _list_tree(self, tid: str) -> list[str]:
        return sorted(self.lineage.files(self.lineage.record(tid).trial.commit))

    def _read_tree(self, tid: str, path: str) -> bytes:
        return self.lineage.read_file(self.lineage.record(tid).trial.commit, path)

    @functools.cached_property
    def _knowledge(self) -> dict[str, str]:
        """The recipe's knowledge files, read once per run."""
        return self.recipe.knowledge()

    def _read_editable(self, tid: str, path: str) -> str:
        if not self.spec.is_editable(path):
            raise PermissionError(f"{path} is not on the editable surface")
        commit = self.lineage.record(tid).trial.commit
        return self.lineage.read_file(commit, path).decode("utf-8", errors="replace")


def _derive_seed(run_seed: int, number: int) -> int:
    digest = hashlib.sha256(f"{run_seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def describe_policy(policy: FidelityPolicy | None) -> str:
    """The policy options as a user gives them."""
    if policy is None:
        return "--fidelity-policy fixed"
    words = [f"--fidelity-policy {policy.name}"]
    if policy.budget is not None:
        words.append(f"--budget {policy.budget:g}")
    if policy.name == "halving":
        words.append(f"--eta {policy.eta}")
        if policy.bracket is not None:
            words.append(f"--bracket {policy.bracket}")
    return " ".join(words)


def _check_fidelity(spec: RecipeSpec, fidelity: str | None) -> str:
    fidelity = fidelity or spec.default_fidelity
    if fidelity not in spec.fidelities:
        raise RunError(f"recipe {spec.name!r} has no fidelity {fidelity!r} (it has {sorted(spec.fidelities)})")
    return fidelity


def check_specialists(spec: RecipeSpec, names: tuple[str, ...], defined: tuple[str, ...] = ()) -> None:
    unknown = [name for name in names if name not in spec.specialists and name not in defined]
    if unknown:
        known = ", ".join(sorted(spec.specialists)) or "none"
        raise RunError(f"recipe {spec.name!r} has no specialist {', '.join(unknown)} (it has: {known})")
