"""Tools for recipe authors: `harness recipe new` and `harness recipe check`.

`new_recipe(name, parent)` copies the scaffold in `harness/recipe_template/`
(a small, real CPU recipe: data, model, training, evaluator, README) into
`parent/name`, with the name filled in. It runs as it is.

`check_recipe(...)` answers "is this recipe ready for a run?" with a list of
named checks, each `ok`, `warn`, `fail` or `skipped`:

* **spec**: recipe.toml validates (file, field and expectation on error);
* **evaluator**: the `prepare` and `score` entry points load and take the
  parameters the harness passes;
* **source**: the starting source materializes (a git source is cloned into
  the recipe cache and its pinned commit verified); the editable and protected
  globs match files; every knob's `NAME = value` line is found exactly once;
* **upstream**: everything `upstream.toml` says the recipe relies on (paths,
  flags, environment variables, output lines) is in the source tree
  (`harness.upstream_conformance`);
* **isolation**: the evaluator cannot be reached from the editable surface:
  its folder lies outside the source tree (so no editable glob can match it
  and no trial tree holds it), no source file imports an evaluator module or
  names the evaluator's folder, and the train command does not name folders
  only the eval phase has;
* **eval-view**: the evaluator files the eval phase sees (`evaluator.eval_files`)
  are code, not data (see `harness.eval_view`): trial code runs there;
* **held-out**: once the data is prepared, no file of the held-out labels
  folder has a copy (same bytes) among the held-out inputs or the train split;
* **baseline**: the baseline runs (data prepared, train, eval, score) and
  every gate metric is produced; then it runs again with other seeds, and
  the spread of the scores gives a suggested `noise_margin` (twice the
  standard deviation; rough with two runs: use `--repeats`);
* **gpu**: a recipe that needs GPUs (`budgets.gpus > 0`, or a sandbox image
  built on CUDA) on a machine without enough of them is not run: the report
  says what could not be checked and why, instead of failing.
"""

from __future__ import annotations

import ast
import inspect
import math
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Literal

from pydantic import BaseModel, Field

from harness.recipe_loader import LoadedRecipe, RecipeError, load_recipe
from harness.types import Knob, RecipeSpec, matches_any

TEMPLATE_DIR = Path(__file__).resolve().parent / "recipe_template"
NAME_PLACEHOLDER = "__RECIPE_NAME__"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
SCORE_EXTRAS = ("train_wallclock_s", "out_dir", "workspace_dir", "seed")
"""Host measurements a score function may name (see `harness.trial_exec.ScoreInputs`)."""
EVAL_ONLY_MOUNTS = ("{eval}", "{heldout}", "{preds}")
CHECK_SEED_OFFSET = 1000
"""Repeat k of the baseline runs with seeds s + 1000 k."""

Status = Literal["ok", "warn", "fail", "skipped"]


# --------------------------------------------------------------------------
# recipe new
# --------------------------------------------------------------------------


def new_recipe(name: str, parent: Path) -> Path:
    """Scaffold a working recipe `parent/name` from the template; returns its folder."""
    if not NAME_PATTERN.match(name):
        raise RecipeError(
            f"recipe name {name!r} must be lowercase letters, digits, '-' or '_', starting with a letter or digit"
        )
    dest = Path(parent) / name
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise RecipeError(f"{dest} already exists and is not empty; choose another name or --dir")
    for path in sorted(TEMPLATE_DIR.rglob("*")):
        rel = path.relative_to(TEMPLATE_DIR)
        if "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        target = dest / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8").replace(NAME_PLACEHOLDER, name), encoding="utf-8")
    load_recipe(str(dest))  # the scaffold must validate as written
    return dest


# --------------------------------------------------------------------------
# recipe check: report types
# --------------------------------------------------------------------------


class CheckItem(BaseModel):
    name: str
    """What was checked (`spec`, `evaluator`, `source`, `isolation`, `baseline`, ...)."""
    status: Status
    """ok, warn (works, but look at it), fail (must be fixed) or skipped (could not be checked here)."""
    detail: str
    """What was found, in words."""


class BaselineRun(BaseModel):
    seeds: list[int]
    """Seeds of this execution of the baseline."""
    label: str
    """Label the evaluator gave it."""
    score: float | None
    """Its score (None when it failed)."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Every metric (means over seeds)."""
    train_s: float = 0.0
    """Longest train phase, host-measured seconds."""
    eval_s: float = 0.0
    """Longest eval phase, host-measured seconds."""
    explanation: str = ""
    """The evaluator's explanation."""


class NoiseEstimate(BaseModel):
    scores: list[float]
    """Score of each baseline execution."""
    delta: float
    """Largest minus smallest score."""
    std: float
    """Sample standard deviation of the scores."""
    suggested_noise_margin: float
    """Twice the standard deviation, two significant digits."""
    declared_noise_margin: float
    """What recipe.toml declares."""


class CheckReport(BaseModel):
    recipe: str
    """Name (or the path given, when the spec did not load)."""
    folder: str
    """Recipe folder."""
    items: list[CheckItem] = Field(default_factory=list)
    """Every check, in order."""
    runs: list[BaselineRun] = Field(default_factory=list)
    """Baseline executions."""
    noise: NoiseEstimate | None = None
    """Run-to-run noise, when two or more executions scored."""
    not_run: list[str] = Field(default_factory=list)
    """What could not be run on this machine, and why."""

    @property
    def ok(self) -> bool:
        return not any(item.status == "fail" for item in self.items)


# --------------------------------------------------------------------------
# recipe check
# --------------------------------------------------------------------------


def check_recipe(
    name_or_path: str,
    *,
    run_baseline: bool = True,
    repeats: int = 2,
    sandbox_kind: str = "local",
    fidelity: str | None = None,
    work_dir: Path | None = None,
    gpus_available: int | None = None,
    on_item: Callable[[CheckItem], None] | None = None,
) -> CheckReport:
    """Check a recipe (see the module docstring). `gpus_available` overrides GPU detection."""
    report = CheckReport(recipe=str(name_or_path), folder="")

    def add(name: str, status: Status, detail: str) -> None:
        item = CheckItem(name=name, status=status, detail=detail)
        report.items.append(item)
        if on_item is not None:
            on_item(item)

    try:
        recipe = load_recipe(name_or_path)
    except RecipeError as exc:
        add("spec", "fail", str(exc))
        return report
    spec = recipe.spec
    report.recipe, report.folder = spec.name, str(recipe.folder)
    add("spec", "ok", f"{recipe.folder / 'recipe.toml'} validates (metric {spec.metric.name}, "
                      f"{spec.metric.direction.value}; {len(spec.knobs)} knobs, {len(spec.specialists)} specialists)")

    _check_evaluator(recipe, add)
    try:
        source_dir = recipe.source_dir
    except RecipeError as exc:
        add("source", "fail", str(exc))
        return report
    where = (f"{spec.source.url} at {spec.source.commit} (HEAD verified), in {source_dir}"
             if recipe.is_git else str(source_dir))
    files = _source_files(source_dir)
    add("source", "ok" if files else "fail", f"{len(files)} files from {where}")
    if not files:
        return report
    _check_surface(spec, source_dir, files, add)
    _check_isolation(recipe, source_dir, files, add)
    _check_upstream(recipe, source_dir, add)
    _check_eval_view(recipe, add)

    if not run_baseline:
        add("baseline", "skipped", "not run (--no-run)")
        report.not_run.append("the baseline (--no-run)")
        return report
    blockers = _run_blockers(recipe, sandbox_kind, gpus_available, fidelity)
    if blockers:
        add("baseline", "skipped", "not run on this machine: " + "; ".join(blockers))
        report.not_run += [
            f"data preparation ({spec.evaluator.prepare})",
            "the baseline's train, eval and score phases (budgets, gates and artifact size unchecked)",
            f"the noise estimate (the declared noise_margin {spec.metric.noise_margin:g} is unchecked)",
        ]
        return report
    _run_and_measure(recipe, report, add, repeats=max(1, repeats), sandbox_kind=sandbox_kind,
                     fidelity=fidelity, work_dir=work_dir)
    return report


def _check_upstream(recipe: LoadedRecipe, source_dir: Path, add) -> None:
    from harness.upstream_conformance import ContractError, checked_count, contract_problems, load_contract

    try:
        contract = load_contract(recipe.folder)
    except ContractError as exc:
        add("upstream", "fail", str(exc))
        return
    if contract is None:
        return
    problems = contract_problems(contract, source_dir)
    where = (f"{recipe.spec.source.url} at {recipe.spec.source.commit}" if recipe.is_git else str(source_dir))
    if problems:
        add("upstream", "fail", f"{where} lacks what the recipe relies on: " + "; ".join(problems))
    else:
        add("upstream", "ok", f"{checked_count(contract)} paths and strings the recipe relies on are in {where}")


def _check_evaluator(recipe: LoadedRecipe, add) -> None:
    from harness.evaluator_code import EvaluatorCodeError, load_entry

    spec = recipe.spec
    problems = []
    for role, entry in (("prepare", spec.evaluator.prepare), ("score", spec.evaluator.score)):
        try:
            func = load_entry(recipe.evaluator_dir, entry)
        except EvaluatorCodeError as exc:
            problems.append(f"{role}: {exc}")
            continue
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            continue
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        needs = 3 if role == "prepare" else 2
        if len(positional) < needs and not any(p.kind is p.VAR_POSITIONAL for p in params):
            what = ("(train_dir, heldout_inputs_dir, heldout_labels_dir)" if role == "prepare"
                    else "(preds_dir, heldout_labels_dir, ...)")
            problems.append(f"{role}: {entry} must take {what}")
        if role == "score":
            unknown = [p.name for p in positional[2:] if p.name not in SCORE_EXTRAS and p.default is p.empty]
            if unknown:
                problems.append(f"score: {entry} asks for {unknown}, which the harness does not offer "
                                f"(it offers {', '.join(SCORE_EXTRAS)})")
    if problems:
        add("evaluator", "fail", "; ".join(problems))
    else:
        add("evaluator", "ok", f"{recipe.evaluator_dir}: {spec.evaluator.prepare} and {spec.evaluator.score} load")


def _source_files(source_dir: Path) -> list[str]:
    """Files a baseline would hold (as `Lineage.commit_baseline` takes them), posix, relative."""
    found = []
    stack = [source_dir]
    while stack:
        folder = stack.pop()
        for entry in sorted(folder.iterdir()):
            if entry.name in (".git", "__pycache__") or entry.is_symlink():
                continue
            if entry.is_dir():
                stack.append(entry)
            elif entry.is_file():
                found.append(entry.relative_to(source_dir).as_posix())
    return sorted(found)


def _check_surface(spec: RecipeSpec, source_dir: Path, files: list[str], add) -> None:
    editable = [f for f in files if spec.is_editable(f)]
    if not editable:
        add("surface", "fail", f"no file of the source matches the editable globs {spec.editable}")
        return
    warnings = []
    for glob in spec.editable:
        if not any(matches_any(f, [glob]) for f in files):
            warnings.append(f"editable glob {glob!r} matches no file")
    for glob in spec.protected:
        if not any(matches_any(f, [glob]) for f in files):
            warnings.append(f"protected glob {glob!r} matches no file")
    for sname, specialist in spec.specialists.items():
        for glob in specialist.files:
            if not any(matches_any(f, [glob]) for f in editable):
                warnings.append(f"specialist {sname!r}: files glob {glob!r} matches no editable file")
    symlinks = [p for p in source_dir.rglob("*") if p.is_symlink() and ".git" not in p.parts]
    if symlinks:
        warnings.append(f"{len(symlinks)} symlink(s) in the source are left out of the baseline "
                        f"(e.g. {symlinks[0].relative_to(source_dir)})")
    failures = [_knob_problem(knob, source_dir) for knob in spec.knobs]
    failures = [f for f in failures if f]
    detail = f"{len(editable)} editable file(s): {', '.join(editable[:8])}{' ...' if len(editable) > 8 else ''}"
    if failures:
        add("surface", "fail", detail + "; " + "; ".join(failures + warnings))
    elif warnings:
        add("surface", "warn", detail + "; " + "; ".join(warnings))
    else:
        add("surface", "ok", detail + (f"; {len(spec.knobs)} knob line(s) found" if spec.knobs else ""))


def _knob_problem(knob: Knob, source_dir: Path) -> str | None:
    path = source_dir / knob.file
    if not path.is_file():
        return f"knob {knob.name}: {knob.file} does not exist"
    matches = knob.pattern().findall(path.read_text(encoding="utf-8", errors="replace"))
    if len(matches) != 1:
        return f"knob {knob.name}: expected one `{knob.name} = <literal>` line in {knob.file}, found {len(matches)}"
    return None


def _check_isolation(recipe: LoadedRecipe, source_dir: Path, files: list[str], add) -> None:
    spec = recipe.spec
    evaluator = recipe.evaluator_dir.resolve()
    source = source_dir.resolve()
    fails, warns = [], []
    if evaluator == source or evaluator.is_relative_to(source):
        rel = evaluator.relative_to(source).as_posix() if evaluator != source else "."
        reachable = [f for f in files if (f == rel or f.startswith(rel.rstrip("/") + "/") or rel == ".")
                     and spec.is_editable(f)]
        fails.append(f"the evaluator folder {evaluator} lies inside the source tree ({rel}): it would be "
                     f"copied into every trial's tree" + (f", and {reachable[:3]} would be editable" if reachable else ""))
    if source.is_relative_to(evaluator):
        fails.append(f"the source folder {source} lies inside the evaluator folder {evaluator}")
    for glob in spec.editable:
        if glob.startswith("/") or ".." in Path(glob).parts:
            fails.append(f"editable glob {glob!r} reaches outside the source tree")
    eval_modules = {p.stem for p in recipe.evaluator_dir.glob("*.py")} | {
        p.name for p in recipe.evaluator_dir.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    own_modules = {Path(f).parts[0].removesuffix(".py") for f in files}
    foreign = eval_modules - own_modules
    eval_name = recipe.evaluator_dir.name
    for rel in files:
        if not rel.endswith(".py"):
            continue
        text = (source_dir / rel).read_text(encoding="utf-8", errors="replace")
        for name in sorted(_imported_modules(text) & foreign):
            fails.append(f"{rel} imports {name!r}, a module of the evaluator folder")
        if "HARNESS_EVAL" in text or str(evaluator) in text:
            warns.append(f"{rel} refers to the evaluator's folder (HARNESS_EVAL or its path)")
        elif re.search(rf"""["'](\.\./)+{re.escape(eval_name)}\b""", text):
            warns.append(f"{rel} names a path into ../{eval_name}")
    for mount in EVAL_ONLY_MOUNTS:
        if mount in spec.phases.train:
            fails.append(f"phases.train names {mount}, a folder only the eval phase has")
    if "{eval}" not in spec.phases.eval:
        warns.append("phases.eval does not run evaluator code ({eval}): predictions come from trial code alone")
    detail = (f"evaluator {evaluator} is outside the source tree; no source file imports "
              f"{sorted(foreign) or 'its modules'}")
    if fails:
        add("isolation", "fail", "; ".join(fails + warns))
    elif warns:
        add("isolation", "warn", detail + "; " + "; ".join(warns))
    else:
        add("isolation", "ok", detail)


def _check_eval_view(recipe: LoadedRecipe, add) -> None:
    from harness.eval_view import view_files, view_problems

    problems = view_problems(recipe.spec, recipe.evaluator_dir)
    if problems:
        add("eval-view", "fail", "the eval phase runs trial code and would see data: " + "; ".join(problems))
    else:
        add("eval-view", "ok", f"the eval phase sees {', '.join(view_files(recipe.spec))} of the evaluator "
                               "folder, code only")


def _check_label_copies(paths, add) -> None:  # noqa: ANN001 - RunPaths
    from harness.eval_view import label_copies

    copies = label_copies(paths.heldout_labels, [paths.heldout_inputs, paths.train_data])
    if copies:
        add("held-out", "fail", "a phase sees files of the held-out labels folder: " + "; ".join(copies[:5]))
    else:
        add("held-out", "ok", "no file of the held-out labels folder is among the held-out inputs or the train split")


def _imported_modules(text: str) -> set[str]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value.split(".")[0])
    return names


# --------------------------------------------------------------------------
# GPUs and the baseline
# --------------------------------------------------------------------------


def gpu_needs(recipe: LoadedRecipe) -> list[str]:
    """Why a recipe needs a GPU (empty when it does not)."""
    spec = recipe.spec
    reasons = []
    if spec.budgets.gpus > 0:
        reasons.append(f"budgets.gpus = {spec.budgets.gpus}")
    cuda = re.compile(r"cuda|nvidia|\bcu1[0-9]{2}\b", re.I)
    if spec.sandbox.image and cuda.search(spec.sandbox.image):
        reasons.append(f"sandbox image {spec.sandbox.image} is a CUDA image")
    if spec.sandbox.dockerfile:
        folder = (recipe.folder / spec.sandbox.dockerfile).parent
        texts = [p.read_text(errors="replace") for p in (recipe.folder / spec.sandbox.dockerfile,
                                                          folder / "requirements.txt") if p.is_file()]
        if any(cuda.search(t) for t in texts):
            reasons.append(f"sandbox {spec.sandbox.dockerfile} installs CUDA builds")
    return reasons


def count_gpus() -> tuple[int, str]:
    """GPUs on this machine (by `nvidia-smi -L`) and how that was found out."""
    if shutil.which("nvidia-smi") is None:
        return 0, "nvidia-smi not found"
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 0, f"nvidia-smi failed: {exc}"
    if out.returncode != 0:
        return 0, f"nvidia-smi failed: {(out.stderr or out.stdout).strip()[:120]}"
    count = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    return count, f"nvidia-smi lists {count}"


def _run_blockers(recipe: LoadedRecipe, sandbox_kind: str, gpus_available: int | None,
                  fidelity: str | None = None) -> list[str]:
    blockers = []
    level = recipe.spec.fidelities.get(fidelity or recipe.spec.default_fidelity)
    needs = [] if level is not None and level.gpus == 0 else gpu_needs(recipe)
    if needs:
        if gpus_available is None:
            have, how = count_gpus()
        else:
            have, how = gpus_available, "as given"
        wanted = max(1, recipe.spec.budgets.gpus if level is None or level.gpus is None else level.gpus)
        if have < wanted:
            blockers.append(f"needs {wanted} GPU(s) ({'; '.join(needs)}), this machine has {have} ({how})")
    if sandbox_kind != "local":
        try:
            from sandboxes import make_sandbox

            make_sandbox(sandbox_kind)
        except Exception as exc:  # noqa: BLE001 - any reason the sandbox cannot be had is reported
            blockers.append(f"the {sandbox_kind} sandbox is not available: {exc}")
    return blockers


class _NoAgent:
    name = "check"

    def propose(self, ctx):  # noqa: ANN001 - Agent protocol
        return None


class _Quiet:
    def trial_started(self, trial) -> None:  # noqa: ANN001
        pass

    def trial_finished(self, record, best) -> None:  # noqa: ANN001
        pass

    def note(self, text: str) -> None:
        pass


def _baseline_run(outcome, seeds: list[int]) -> BaselineRun:
    train = [p.wallclock_s for p in outcome.phases if p.phase == "train"]
    evals = [p.wallclock_s for p in outcome.phases if p.phase == "eval"]
    return BaselineRun(seeds=list(seeds), label=outcome.label.value, score=outcome.score,
                       metrics=dict(outcome.metrics), train_s=max(train, default=0.0),
                       eval_s=max(evals, default=0.0), explanation=outcome.explanation)


def _run_and_measure(recipe: LoadedRecipe, report: CheckReport, add, *, repeats: int, sandbox_kind: str,
                     fidelity: str | None, work_dir: Path | None) -> None:
    from harness.loop import Run, RunError
    from harness.trial_exec import TrialExecutor
    from sandboxes import make_sandbox

    spec = recipe.spec
    scratch = Path(tempfile.mkdtemp(prefix="harness-check-", dir=work_dir))
    run_dir = scratch / f"check-{spec.name}"
    started = time.monotonic()
    try:
        sandbox = make_sandbox(sandbox_kind)
        try:
            the_run = Run.create(recipe, run_dir, agent=_NoAgent(), sandbox=sandbox, reporter=_Quiet(),
                                 seed=0, fidelity=fidelity)
        except Exception as exc:  # noqa: BLE001 - a broken prepare() is the recipe's problem, reported
            add("baseline", "fail", f"could not prepare the run (data preparation or baseline commit): "
                                    f"{type(exc).__name__}: {exc}")
            return
        _check_label_copies(the_run.paths, add)
        try:
            try:
                the_run.run(0)
            except RunError:
                pass  # the outcome below says why
            record = the_run.lineage.record("t0000")
            outcome = record.outcome
            trial = record.trial
            if outcome is None:
                add("baseline", "fail", "the baseline produced no outcome")
                return
            report.runs.append(_baseline_run(outcome, trial.seeds))
            if outcome.label.value != "keep":
                tail = next((p.log_tail for p in reversed(outcome.phases) if p.log_tail and p.exit_code != 0), "")
                add("baseline", "fail", f"the baseline ended {outcome.label.value}: {outcome.explanation}"
                                        + (f"\n{tail[-1500:]}" if tail else ""))
                return
            executor = TrialExecutor(
                spec=spec, lineage=the_run.lineage, paths=the_run.paths, sandbox=sandbox,
                evaluator_digest=the_run.info.evaluator_digest, evaluator_source=recipe.evaluator_dir,
                baseline_commit=the_run.info.baseline_commit, run_id=the_run.info.run_id,
            )
            for k in range(1, repeats):
                seeds = [s + CHECK_SEED_OFFSET * k for s in trial.seeds]
                again = executor.execute(trial.model_copy(update={"seeds": seeds}), None, None,
                                         scratch_name=f"check-{k}")
                report.runs.append(_baseline_run(again, seeds))
        finally:
            the_run.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    took = time.monotonic() - started
    _judge_runs(spec, report, add, took)


def _judge_runs(spec: RecipeSpec, report: CheckReport, add, took: float) -> None:
    first = report.runs[0]
    budgets = spec.budgets
    name = spec.metric.name
    problems, notes = [], []
    for run in report.runs[1:]:
        if run.label not in ("keep", "not_improved"):
            problems.append(f"the repeat with seeds {run.seeds} ended {run.label}: {run.explanation[:300]}")
    missing = sorted({g.metric for g in spec.gates} - set(first.metrics))
    if missing:
        problems.append(f"the score function returns no {missing} for the gates")
    if first.train_s > 0.5 * budgets.train_wallclock_s:
        notes.append(f"the baseline's train phase uses {first.train_s:.1f} s of the {budgets.train_wallclock_s:g} s "
                     "budget: trials have little headroom")
    if first.eval_s > 0.5 * budgets.eval_wallclock_s:
        notes.append(f"the baseline's eval phase uses {first.eval_s:.1f} s of the {budgets.eval_wallclock_s:g} s budget")
    runs = "; ".join(f"seeds {r.seeds}: {r.label} {name}={_fmt(r.score)} (train {r.train_s:.1f} s, "
                     f"eval {r.eval_s:.1f} s)" for r in report.runs)
    status: Status = "fail" if problems else "warn" if notes else "ok"
    add("baseline", status, f"{runs}; {took:.0f} s in all" + "".join(f"; {p}" for p in problems + notes))

    scores = [r.score for r in report.runs if r.score is not None and r.label in ("keep", "not_improved")]
    if len(scores) < 2:
        add("noise", "skipped", "needs two scored baseline runs (use --repeats 2 or more)")
        return
    std = statistics.stdev(scores)
    suggested = _round_sig(2 * std)
    declared = spec.metric.noise_margin
    report.noise = NoiseEstimate(scores=scores, delta=max(scores) - min(scores), std=std,
                                 suggested_noise_margin=suggested, declared_noise_margin=declared)
    detail = (f"{len(scores)} runs: delta {max(scores) - min(scores):.4g}, std {std:.4g}; suggested "
              f"noise_margin = {suggested:g} (2 x std; declared {declared:g})")
    if len(scores) == 2:
        detail += "; two runs give a rough estimate, use --repeats 5 for a better one"
    add("noise", "warn" if declared < std else "ok",
        detail + ("; the declared margin is below the measured noise: lucky runs would be kept"
                  if declared < std else ""))


def _round_sig(x: float, digits: int = 2) -> float:
    if x == 0 or not math.isfinite(x):
        return 0.0
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"
