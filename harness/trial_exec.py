"""Run one recorded trial through its phases and let the evaluator label it.

Steps (DESIGN.md, trial loop 4-7): export the trial's commit into a fresh
workspace per seed with protected files restored from the baseline, check
syntax (preflight), train in a sandbox without held-out data, check protected
files and artifact size, predict in a second sandbox with the evaluator's
pristine code and the held-out inputs (never the labels), score on the host
with the evaluator's own code, apply gates and the keep rule.
"""

from __future__ import annotations

import inspect
import shlex
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from evaluators.decision import Decision, decide, gates as evaluate_gates
from evaluators.hashing import changed_files, file_hashes, tree_digest
from evaluators.labels import RunMeasurements, label_run
from evaluators.legality import check_python_syntax
from evaluators.outputs import OutputFinding, ScanLimits, scan_folder
from harness.eval_view import build_view
from harness.evaluator_code import EvaluatorCodeError, load_entry, snapshot_evaluator
from harness.run_registry import hidden_paths
from harness.types import Label, Outcome, PhaseUsage, RecipeSpec, Trial, TrialRecord
from sandboxes.base import Limits, Mount, PhaseRequest, PhaseResult, Sandbox
from trajectories.lineage import Lineage


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunPaths:
    """Where a run keeps its scratch data (never part of the lineage)."""

    run_dir: Path

    @property
    def scratch(self) -> Path:
        return self.run_dir / ".harness"

    @property
    def evaluator(self) -> Path:
        return self.scratch / "evaluator"

    @property
    def data(self) -> Path:
        return self.scratch / "data"

    @property
    def train_data(self) -> Path:
        return self.data / "train"

    @property
    def heldout_inputs(self) -> Path:
        return self.data / "heldout_inputs"

    @property
    def heldout_labels(self) -> Path:
        return self.data / "heldout_labels"

    def trial(self, trial_id: str) -> Path:
        return self.scratch / "trials" / trial_id


@dataclass(frozen=True)
class TrialExecutor:
    """Everything needed to run and judge trials of one run."""

    spec: RecipeSpec
    lineage: Lineage
    paths: RunPaths
    sandbox: Sandbox
    evaluator_digest: str
    evaluator_source: Path
    baseline_commit: str
    run_id: str
    gpus: tuple[int, ...] = ()

    def execute(
        self,
        trial: Trial,
        parent: TrialRecord | None,
        best: TrialRecord | None,
        scratch_name: str | None = None,
    ) -> Outcome:
        """Run `trial` and judge it; scratch files go to `.harness/trials/<scratch_name or id>`."""
        started = utc_now()
        judge = _Judgement(started=started)
        root = self.paths.trial(scratch_name or trial.id)
        if root.exists():  # leftovers of an interrupted attempt
            shutil.rmtree(root)
        root.mkdir(parents=True)
        fidelity = self.spec.fidelities[trial.fidelity]
        hidden = self._hidden()
        eval_view = self._eval_view(root / "eval-view")

        syntax_error = self._preflight(trial)
        if syntax_error:
            judge.phases.append(
                PhaseUsage(phase="preflight", wallclock_s=0.0, exit_code=1, log_tail=syntax_error)
            )
            return judge.finish(Label.preflight_crash, f"preflight: syntax error in {syntax_error}", self)

        metrics_per_seed: list[dict[str, float]] = []
        score_error: str | None = None
        tampered: list[str] = []
        refused: list[OutputFinding] = []
        artifact_max = 0
        for seed in trial.seeds:
            workspace = root / f"workspace-{seed}"
            out = root / f"out-{seed}"
            preds = root / f"preds-{seed}"
            self._materialise(trial.commit, workspace)
            committed = file_hashes(workspace)
            out.mkdir()
            preds.mkdir()
            env = {"HARNESS_SEED": str(seed), "HARNESS_FIDELITY": trial.fidelity, **fidelity.env}
            labels = {"harness.run": self.run_id, "harness.trial": trial.id, "harness.seed": str(seed)}

            train = self.sandbox.run(
                PhaseRequest(
                    phase="train",
                    command=shlex.split(self.spec.phases.train),
                    workdir="workspace",
                    mounts=[
                        Mount(source=workspace, target="workspace", read_only=False),
                        Mount(source=out, target="out", read_only=False),
                        Mount(source=self.paths.train_data, target="data", read_only=True),
                    ],
                    env=env,
                    limits=self._limits(self.spec.budgets.train_wallclock_s),
                    labels={**labels, "harness.phase": "train"},
                    log_path=root / f"train-{seed}.log",
                    hidden=hidden,
                )
            )
            judge.add("train", seed, train)
            # Before the host reads anything the phase wrote (hashes, sizes, the copies into
            # the eval phase): no links, special files or size tricks (evaluators/outputs.py).
            outputs = scan_folder(out, "out", ScanLimits(max_bytes=None))
            refused += scan_folder(workspace, "workspace").findings + outputs.findings
            artifact_max = max(artifact_max, outputs.total_bytes)
            if refused:
                if self._evaluator_changed():
                    tampered.append("evaluator code (changed during the train phase)")
                break
            # A trial may leave new files in its workspace, but the committed ones
            # (protected, restored from the baseline, and editable alike) must be as
            # committed: the lineage's code is what ran, and what a size cap counts.
            tampered += [
                f"{p} (seed {seed})"
                for p in changed_files(committed, file_hashes(workspace))
                if p in committed
            ]
            if self._evaluator_changed():
                tampered.append("evaluator code (changed during the train phase)")
            if train.timed_out or train.oom or train.exit_code != 0 or tampered:
                break
            if artifact_max > self.spec.budgets.artifact_bytes:
                break

            evaluation = self.sandbox.run(
                PhaseRequest(
                    phase="eval",
                    command=shlex.split(self.spec.phases.eval),
                    workdir="workspace",
                    mounts=[
                        Mount(source=workspace, target="workspace", read_only=True),
                        Mount(source=out, target="out", read_only=True),
                        Mount(source=eval_view, target="eval", read_only=True),
                        Mount(source=self.paths.heldout_inputs, target="heldout", read_only=True),
                        Mount(source=preds, target="preds", read_only=False),
                    ],
                    env=env,
                    limits=self._limits(self.spec.budgets.eval_wallclock_s),
                    labels={**labels, "harness.phase": "eval"},
                    log_path=root / f"eval-{seed}.log",
                    hidden=hidden,
                )
            )
            judge.add("eval", seed, evaluation)
            if self._evaluator_changed():
                tampered.append("evaluator code (changed during the eval phase)")
                break
            if evaluation.timed_out or evaluation.oom or evaluation.exit_code != 0:
                break
            refused += scan_folder(preds, "preds").findings
            if refused:
                break
            try:
                measured = ScoreInputs(
                    train_wallclock_s=train.wallclock_s, out_dir=out, workspace_dir=workspace, seed=seed
                )
                metrics_per_seed.append(self._score(preds, measured))
            except ValueError as exc:
                score_error = f"seed {seed}: {exc}"
                break

        gate_results = evaluate_gates(self.spec.gates, metrics_per_seed) if metrics_per_seed else []
        decision = self._decide(trial, metrics_per_seed, parent, best)
        if not metrics_per_seed and score_error is None and judge.ran_all_phases_ok():
            score_error = "no seed produced predictions"
        measurements = RunMeasurements(
            phases=judge.phases,
            tampered=tampered,
            refused_outputs=refused,
            artifact_bytes=artifact_max,
            score_error=score_error,
            metrics_per_seed=metrics_per_seed,
            seeds=list(trial.seeds[: len(metrics_per_seed)]),
            gates=gate_results,
            decision=decision,
        )
        label, explanation = label_run(measurements, self.spec.budgets, self.spec.metric.name)
        return judge.finish(
            label,
            explanation,
            self,
            metrics_per_seed=metrics_per_seed,
            gates=gate_results,
            artifact_bytes=artifact_max,
            compared_to=[r.trial.id for r in (parent, best) if r is not None and trial.id != "t0000"],
        )

    # -- pieces -------------------------------------------------------------

    def _hidden(self) -> list[Path]:
        return hidden_paths(self.paths.run_dir, self.evaluator_source)

    def _eval_view(self, dest: Path) -> Path:
        """The evaluator files the eval phase sees: the allow-list of `evaluator.eval_files`
        (harness.eval_view), copied from the run's evaluator copy; never data."""
        try:
            return build_view(self.spec, self.paths.evaluator, dest)
        except ValueError as exc:
            raise EvaluatorCodeError(str(exc)) from None

    def _evaluator_changed(self) -> bool:
        """Whether a phase modified the evaluator copy; if so, restore it from the recipe."""
        if tree_digest(self.paths.evaluator) == self.evaluator_digest:
            return False
        restored = snapshot_evaluator(self.evaluator_source, self.paths.evaluator)
        if restored != self.evaluator_digest:
            raise EvaluatorCodeError(
                f"the recipe's evaluator folder {self.evaluator_source} no longer matches the run's "
                "evaluator digest; the run cannot continue with a different evaluator"
            )
        return True

    def _preflight(self, trial: Trial) -> str | None:
        files = {
            path: self.lineage.read_file(trial.commit, path)
            for path in self.lineage.files(trial.commit)
            if path.endswith(".py") and self.spec.is_editable(path)
        }
        return check_python_syntax(files)

    def _materialise(self, commit: str, workspace: Path) -> None:
        """The trial tree, with every protected file taken from the baseline."""
        self.lineage.export(commit, workspace)
        for path, (_mode, _blob) in self.lineage.files(self.baseline_commit).items():
            if not self.spec.is_editable(path):
                target = workspace / path
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink() or target.exists():
                    target.unlink()
                target.write_bytes(self.lineage.read_file(self.baseline_commit, path))

    def _limits(self, wallclock_s: float) -> Limits:
        budgets = self.spec.budgets
        return Limits(
            wallclock_s=wallclock_s,
            memory_mb=budgets.memory_mb,
            output_bytes=budgets.output_bytes,
            pids=budgets.pids,
            cpus=budgets.cpus,
            gpus=list(self.gpus),
        )

    def _score(self, preds: Path, measured: "ScoreInputs") -> dict[str, float]:
        score_fn = load_entry(self.paths.evaluator, self.spec.evaluator.score)
        metrics = score_fn(preds, self.paths.heldout_labels, **_score_extras(score_fn, measured))
        if self.spec.metric.name not in metrics:
            raise EvaluatorCodeError(
                f"the evaluator's score function returned no {self.spec.metric.name!r} metric"
            )
        return {k: float(v) for k, v in metrics.items()}

    def _decide(
        self,
        trial: Trial,
        metrics_per_seed: list[dict[str, float]],
        parent: TrialRecord | None,
        best: TrialRecord | None,
    ) -> Decision | None:
        if not metrics_per_seed:
            return None
        name = self.spec.metric.name
        candidate = [m[name] for m in metrics_per_seed]
        if trial.id == "t0000":
            return Decision(keep=True, reason="baseline")
        return decide(self.spec.metric, candidate, seed_scores(parent), seed_scores(best))


@dataclass(frozen=True)
class ScoreInputs:
    """What the host measured, offered to the evaluator's score function.

    A score function receives those of these it names as keyword parameters,
    e.g. `def score(preds_dir, labels_dir, train_wallclock_s)` for a recipe whose
    score is the harness-timed training time, or `out_dir` / `workspace_dir` to
    measure artifact bytes itself. Nothing here comes from the trial's own words.
    """

    train_wallclock_s: float
    out_dir: Path
    workspace_dir: Path
    seed: int


def _score_extras(score_fn, measured: ScoreInputs) -> dict[str, object]:
    params = inspect.signature(score_fn).parameters
    offered = {
        "train_wallclock_s": measured.train_wallclock_s,
        "out_dir": measured.out_dir,
        "workspace_dir": measured.workspace_dir,
        "seed": measured.seed,
    }
    return {name: value for name, value in offered.items() if name in params}


def seed_scores(record: TrialRecord | None) -> list[float] | None:
    """The per-seed scores of a recorded trial (None when it has none)."""
    if record is None or record.outcome is None or not record.outcome.seed_scores:
        return None
    return list(record.outcome.seed_scores)


@dataclass
class _Judgement:
    """Collects measurements while a trial runs and builds its Outcome."""

    started: str
    image: str = ""

    def __post_init__(self) -> None:
        self.phases: list[PhaseUsage] = []

    def add(self, phase: str, seed: int, result: PhaseResult) -> None:
        self.image = result.image
        self.phases.append(
            PhaseUsage(
                phase=phase,
                seed=seed,
                wallclock_s=round(result.wallclock_s, 3),
                exit_code=result.exit_code,
                timed_out=result.timed_out,
                oom=result.oom,
                output_bytes=result.output_bytes,
                log_sha256=result.log_sha256,
                log_tail=result.log_tail,
                limits=dict(result.limits),
            )
        )

    def ran_all_phases_ok(self) -> bool:
        return all(p.exit_code == 0 and not p.timed_out and not p.oom for p in self.phases)

    def finish(
        self,
        label: Label,
        explanation: str,
        executor: TrialExecutor,
        *,
        metrics_per_seed: list[dict[str, float]] | None = None,
        gates: list | None = None,
        artifact_bytes: int | None = None,
        compared_to: list[str] | None = None,
    ) -> Outcome:
        metrics_per_seed = metrics_per_seed or []
        name = executor.spec.metric.name
        seed_scores = [m[name] for m in metrics_per_seed if name in m]
        keys = sorted({k for m in metrics_per_seed for k in m})
        means = {
            k: sum(m[k] for m in metrics_per_seed if k in m)
            / sum(1 for m in metrics_per_seed if k in m)
            for k in keys
        }
        score = means.get(name)
        if label.ran is False or label in _NO_SCORE_LABELS:
            score, seed_scores, means = None, [], {}
        return Outcome(
            label=label,
            explanation=explanation,
            score=score,
            seed_scores=seed_scores if score is not None else [],
            metrics=means if score is not None else {},
            gates=gates or [],
            phases=self.phases,
            artifact_bytes=artifact_bytes,
            evaluator_digest=executor.evaluator_digest,
            image=self.image or f"{executor.sandbox.name}",
            compared_to=compared_to or [],
            started=self.started,
            finished=utc_now(),
        )


# Labels whose trial produced no trustworthy score: a partial score of a crashed
# or over-budget trial is not recorded, so nothing can mistake it for a result.
_NO_SCORE_LABELS = frozenset(
    {
        Label.preflight_crash,
        Label.crash,
        Label.budget_overrun,
        Label.eval_budget_overrun,
        Label.oom,
        Label.size_failure,
        Label.metric_missing,
        Label.tamper,
        Label.harness_error,
    }
)
