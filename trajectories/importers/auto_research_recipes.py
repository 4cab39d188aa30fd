"""Importer of the Auto-Research-Recipes blackboard (`results.tsv`).

Columns (any order; unknown ones are kept in each trial's source fields):
exp_id, timestamp, specialist, parent_exp, baseline_exp, domain, hypothesis,
expected_delta, status, train_s | val_bpb | core_metric, accuracy, acc_std,
n_seeds, delta_vs_best, total_s, job_name, snapshot_path, notes.

- Trial ids: `t0000` is the `baseline` row, then every other row in file order.
- Labels: see `STATUS_LABELS`; the source's status is `Outcome.original_label`.
- Parents follow `parent_exp` (the latest earlier row with that id); a missing,
  unknown or later parent becomes the baseline, listed as a problem.
- The score is the run's score column: `train_s` (seconds, minimize, gate mean
  accuracy >= 0.96: Airbench96), `val_bpb` (minimize) or `core_metric`
  (maximize); `best.json` beside the file names it when present.
- `best` is the last keep, unless `best.json` names another kept row: that
  row's outcome is then recorded last, so the lineage's best rule agrees.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from harness.types import (
    Budgets,
    Direction,
    EvaluatorSpec,
    GateSpec,
    Label,
    MetricSpec,
    Phases,
    RecipeSpec,
)

from .arr_recovery import recover_columns
from .common import (
    TIMESTAMP_RE,
    ImportedTrial,
    ImportFormatError,
    ImportResult,
    Row,
    TableSpec,
    clean_text,
    clean_token,
    explanation,
    is_number,
    parse_float,
    parse_time,
    parse_tsv,
    settle,
    tagged,
    write_lineage,
)

FORMAT = "auto-research-recipes"

STATUS_LABELS: dict[str, Label] = {
    "baseline": Label.keep,
    "keep": Label.keep,
    "discard": Label.not_improved,
    "disqualified": Label.gate_miss,
    "size_blocked": Label.size_failure,
    "eval_budget_overrun": Label.eval_budget_overrun,
    "crash": Label.crash,
    "preflight_crash": Label.preflight_crash,
    "harness_abort": Label.harness_error,
    "train_budget_overrun": Label.budget_overrun,
}
"""Source status -> our label (`baseline` is the baseline trial, kept)."""


@dataclass(frozen=True)
class Profile:
    metric: str
    direction: Direction
    gates: tuple[GateSpec, ...]
    description: str


PROFILES: dict[str, Profile] = {
    "train_s": Profile(
        "train_s",
        Direction.minimize,
        (GateSpec(metric="accuracy", op=">=", threshold=0.96),),
        "Airbench96 on CIFAR-10: seconds of training (mean over the seeds) under the gate "
        "mean accuracy >= 0.96",
    ),
    "val_bpb": Profile("val_bpb", Direction.minimize, (), "validation bits per byte, lower is better"),
    "core_metric": Profile("core_metric", Direction.maximize, (), "CORE metric, higher is better"),
}
"""Score columns the release uses, in the order they are looked for."""

NUMERIC_COLUMNS = (
    "train_s", "val_bpb", "core_metric", "accuracy", "acc_std", "n_seeds", "delta_vs_best", "total_s", "memory_gb",
)
"""Columns stored as metrics when they hold a number."""

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_TOKEN_RE = re.compile(r"[^\s]{1,200}")


def _is_status(value: str) -> bool:
    return value.lower() in STATUS_LABELS or bool(re.fullmatch(r"[a-z_]{2,40}", value))


TABLE = TableSpec(
    required=("exp_id", "status"),
    id_column="exp_id",
    id_pattern=ID_RE,
    text_columns=("hypothesis", "notes"),
    validators={
        "timestamp": lambda v: bool(TIMESTAMP_RE.match(v)),
        "specialist": lambda v: bool(_TOKEN_RE.fullmatch(v)),
        "parent_exp": lambda v: bool(ID_RE.fullmatch(v)),
        "baseline_exp": lambda v: bool(ID_RE.fullmatch(v)),
        "domain": lambda v: bool(_TOKEN_RE.fullmatch(v)),
        "expected_delta": is_number,
        "status": _is_status,
        **{c: is_number for c in NUMERIC_COLUMNS},
        "job_name": lambda v: bool(_TOKEN_RE.fullmatch(v)),
        "snapshot_path": lambda v: bool(_TOKEN_RE.fullmatch(v)),
    },
)


def choose_profile(header: list[str], best: dict | None, header_line: int) -> Profile:
    if best:
        for name in PROFILES:
            if name in best and name in header:
                return PROFILES[name]
    for name in PROFILES:
        if name in header:
            return PROFILES[name]
    raise ImportFormatError(
        header_line, f"no score column: expected one of {', '.join(PROFILES)} in the header"
    )


def recipe_for(profile: Profile) -> RecipeSpec:
    return RecipeSpec(
        name="imported-auto-research-recipes",
        description=(
            "Imported Auto-Research-Recipes blackboard run (results.tsv). Score: "
            f"{profile.metric} ({profile.description}). The trials carry no code: each trial "
            "commit keeps its parent's tree (the imported file and a README); budgets, phases "
            "and the evaluator are placeholders."
        ),
        editable=["README.md"],
        phases=Phases(train="true  # imported: nothing to run", eval="true  # imported: nothing to run"),
        evaluator=EvaluatorSpec(path="eval", prepare="imported:none", score="imported:none"),
        metric=MetricSpec(name=profile.metric, direction=profile.direction),
        gates=list(profile.gates),
        budgets=Budgets(train_wallclock_s=3600, eval_wallclock_s=3600),
    )


def _id_key(value: str) -> str:
    """Ids compare as numbers when numeric (`70` is `070`)."""
    text = value.strip()
    # Not int(): "²".isdigit() holds, and ids past 4300 digits are past int()'s limit.
    return (text.lstrip("0") or "0") if text.isascii() and text.isdigit() else text


def import_auto_research_recipes(path: Path, out: Path) -> ImportResult:
    path = Path(path)
    if path.is_dir():
        path = path / "results.tsv"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFormatError(0, f"cannot read {path}: {exc.strerror or exc}") from exc
    sha = hashlib.sha256(data).hexdigest()
    problems: list[str] = []
    best_json, best_bytes = _read_best(path.parent / "best.json", problems)
    trials, best_index, recipe = build_trials(data, path.name, best_json, problems)
    files = {"README.md": _readme(path, sha, len(trials)).encode(), f"source/{path.name}": data}
    if best_bytes is not None:
        files["source/best.json"] = best_bytes
    return write_lineage(
        out, fmt=FORMAT, source=path, sha256=sha, recipe=recipe, trials=trials,
        problems=problems, files=files, best_index=best_index,
    )


def _read_best(path: Path, problems: list[str]) -> tuple[dict | None, bytes | None]:
    if not path.is_file():
        return None, None
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8", "replace"))
    except ValueError as exc:  # JSONDecodeError, or an integer past Python's digit limit
        problems.append(f"best.json: not valid JSON ({str(exc).split(';')[0]}); ignored")
        return None, raw
    except RecursionError:
        problems.append("best.json: not valid JSON (nested too deeply); ignored")
        return None, raw
    if not isinstance(data, dict):
        problems.append("best.json: not a JSON object; ignored")
        return None, raw
    return data, raw


def build_trials(
    data: bytes, name: str, best: dict | None, problems: list[str]
) -> tuple[list[ImportedTrial], int | None, RecipeSpec]:
    """Parse the file and map its rows to trials (baseline first). Pure: no git."""
    table = parse_tsv(data, TABLE)
    problems.extend(table.problems)
    header_line = 1
    profile = choose_profile(table.header, best, header_line)
    rows = table.rows

    base_pos = next((i for i, r in enumerate(rows) if r.values.get("status", "").strip().lower() == "baseline"), None)
    order = ([base_pos] if base_pos is not None else []) + [i for i in range(len(rows)) if i != base_pos]
    trials: list[ImportedTrial] = []
    if base_pos is None:
        problems.append(f"{name}: no baseline row; a synthetic baseline t0000 (no score) stands for the source's start")
        trials.append(
            ImportedTrial(
                source_id="(synthetic)",
                line=0,
                hypothesis=f"Synthetic baseline: {name} has no baseline row",
                label=Label.keep,
                original_label="(none)",
                explanation="Synthetic baseline of the import: the source has no baseline row.",
            )
        )
    seen: dict[str, int] = {}
    """Id key -> index of the latest trial so far with that id."""
    ids_in_file: dict[str, int] = {}
    for pos in order:
        row = rows[pos]
        index = len(trials)
        is_baseline = index == 0
        trials.append(_row_trial(row, index, is_baseline, profile, seen, ids_in_file, problems))
        seen[_id_key(trials[-1].source_id)] = index
    best_index = _best_index(best, trials, profile, problems)
    return trials, best_index, recipe_for(profile)


def _row_trial(
    row: Row,
    index: int,
    is_baseline: bool,
    profile: Profile,
    seen: dict[str, int],
    ids_in_file: dict[str, int],
    problems: list[str],
) -> ImportedTrial:
    v = {k: clean_text(val) for k, val in row.values.items()}
    exp = clean_token(v.get("exp_id", ""), 64)
    where = f"{row.where} (exp {exp})" if exp else row.where
    if not exp:
        exp = f"line{row.line}"
        problems.append(f"{where}: no exp_id; the row is called {exp}")
    problems.extend(tagged(p, f"exp {exp}") for p in row.problems)
    key = _id_key(exp)
    if key in ids_in_file:
        problems.append(f"{where}: exp_id {exp} repeats line {ids_in_file[key]}; later rows naming it link here")
    ids_in_file[key] = row.line

    recovered = recover_columns(v, "hypothesis", frozenset(STATUS_LABELS), TABLE.validators)
    if recovered is not None:
        v = {**v, **recovered.values, "hypothesis": recovered.hypothesis}
        problems.append(
            f"{where}: status {recovered.values['status']!r} and the columns after it recovered from "
            "the hypothesis's text (separated by spaces, not tabs); that text is kept in the record"
        )
    status = " ".join(v.get("status", "").split()).lower()
    if status in STATUS_LABELS:
        label = STATUS_LABELS[status]
    elif not status:
        label = Label.harness_error
        problems.append(f"{where}: no status, and none could be read from the row's text; recorded as harness_error")
    else:
        label = Label.harness_error
        problems.append(f"{where}: unknown status {status!r}; recorded as harness_error")
    if not is_baseline and status == "baseline":
        label = Label.not_improved
        problems.append(f"{where}: a second baseline row; recorded as a trial (not_improved when scored)")

    metrics: dict[str, float] = {}
    for column in NUMERIC_COLUMNS:
        raw = v.get(column, "")
        if not raw.strip():
            continue
        number = parse_float(raw)
        if number is None:
            problems.append(f"{where}: {column} {clean_token(raw, 40)!r} is not a finite number; left out")
        else:
            metrics[column] = number
    score = metrics.get(profile.metric)

    parent: int | None = None
    compared: list[int] = []
    if not is_baseline:
        parent_raw = clean_token(v.get("parent_exp", ""), 64)
        if parent_raw and _id_key(parent_raw) in seen:
            parent = seen[_id_key(parent_raw)]
        else:
            parent = 0
            why = "no parent_exp" if not parent_raw else f"parent_exp {parent_raw} is not an earlier row"
            problems.append(f"{where}: {why}; linked to the baseline")
        compared.append(parent)
        base_raw = clean_token(v.get("baseline_exp", ""), 64)
        if base_raw and _id_key(base_raw) in seen and seen[_id_key(base_raw)] not in compared:
            compared.append(seen[_id_key(base_raw)])

    expected_raw = v.get("expected_delta", "")
    expected = parse_float(expected_raw)
    if expected is None and expected_raw.strip():
        problems.append(f"{where}: expected_delta {clean_token(expected_raw, 40)!r} is not a number; left out")

    settled = settle(
        label, score=score, metrics=metrics, gate_specs=profile.gates, is_baseline=is_baseline,
        where=where, problems=problems,
    )
    head = f"Imported from {row.where}: the source's status {status or '(empty)'!r} maps to {settled.label.value}."
    notes = settled.notes + [p.split(": ", 1)[-1] for p in row.problems]
    fields = dict(row.values)
    fields.pop("hypothesis", None)
    if row.extra:
        fields["(extra fields)"] = "\t".join(row.extra)
    if recovered is not None:
        fields.update(recovered.values)
        fields["(columns recovered from the hypothesis)"] = recovered.text
    specialist = clean_token(v.get("specialist", ""), 100) or None
    hypothesis = v.get("hypothesis", "")
    return ImportedTrial(
        source_id=exp,
        line=row.line,
        hypothesis=f"exp {exp}: {hypothesis}",
        label=settled.label,
        original_label=status,
        parent=parent,
        specialist=specialist,
        expected_delta=expected,
        score=score if settled.label is not Label.metric_missing else None,
        metrics=metrics,
        gates=settled.gates,
        phases=settled.phases,
        explanation=explanation(head, notes, {k: clean_text(x) for k, x in fields.items()}),
        timestamp=parse_time(v.get("timestamp", "")),
        compared_to=compared,
        trailers={"Source-Id": clean_token(exp, 64), "Source-Line": str(row.line)},
    )


def _best_index(best: dict | None, trials: list[ImportedTrial], profile: Profile, problems: list[str]) -> int | None:
    if not best:
        return None
    exp = str(best.get("exp_id", "")).strip()
    matches = [i for i, t in enumerate(trials) if exp and _id_key(t.source_id) == _id_key(exp)]
    if not matches:
        shown = exp if len(exp) <= 64 else exp[:61] + "..."
        problems.append(f"best.json: exp_id {shown!r} is no row of the file; best is the last keep")
        return None
    index = matches[-1]
    item = trials[index]
    if item.label is not Label.keep:
        problems.append(f"best.json: exp {exp} is not a kept row ({item.original_label}); best is the last keep")
        return None
    claimed = parse_float(str(best.get(profile.metric, "")))
    if claimed is not None and item.score is not None and abs(claimed - item.score) > 1e-9 * max(1.0, abs(claimed)):
        problems.append(f"best.json: {profile.metric} {claimed} differs from the row's {item.score}")
    last_keep = max((i for i, t in enumerate(trials) if t.label is Label.keep), default=None)
    if last_keep != index:
        problems.append(
            f"best.json names exp {exp}, not the last keep (exp {trials[last_keep].source_id}); "
            "its outcome is recorded last so that best is it"
        )
    return index


def _readme(path: Path, sha: str, n: int) -> str:
    return (
        "# Imported run\n\n"
        f"Imported from `{path.name}` (Auto-Research-Recipes blackboard format) by `harness import {FORMAT}`.\n\n"
        f"- source file: `{path}`\n- sha256: `{sha}`\n- trials: {n} (the baseline included)\n\n"
        "Imported trials carry no code: every trial commit keeps its parent's tree, which is this\n"
        "README and the imported file under `source/`. Each trial's record holds the source row\n"
        "(hypothesis, status as `original_label`, metrics, and the other columns in the outcome's\n"
        "explanation, `source: {...}` line).\n"
    )
