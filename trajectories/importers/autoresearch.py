"""Importer of karpathy/autoresearch's `results.tsv`.

Columns: `commit  val_bpb  memory_gb  status  description` (tab-separated; a
file without the header line is read with these columns, listed as a problem).
Status is keep, discard or crash; val_bpb is the score (lower is better; 0 on a
crash means "not measured"); memory_gb is kept as a metric.

- The first row is the baseline `t0000` (kept), then every row in file order.
- autoresearch runs on one branch that advances on keep and resets on discard:
  each trial's parent is the latest kept trial before it.
- The commit goes into the hypothesis (`commit <sha>: <description>`) and a
  `Source-Id` trailer; the status is `Outcome.original_label`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from harness.types import (
    Budgets,
    Direction,
    EvaluatorSpec,
    Label,
    MetricSpec,
    Phases,
    RecipeSpec,
)

from .common import (
    ImportedTrial,
    ImportFormatError,
    ImportResult,
    TableSpec,
    clean_text,
    clean_token,
    explanation,
    is_number,
    parse_float,
    parse_tsv,
    settle,
    tagged,
    write_lineage,
)

FORMAT = "autoresearch"
COLUMNS = ("commit", "val_bpb", "memory_gb", "status", "description")
STATUS_LABELS = {"keep": Label.keep, "discard": Label.not_improved, "crash": Label.crash}

TABLE = TableSpec(
    required=("commit", "status"),
    id_column="commit",
    id_pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"),
    text_columns=("description",),
    validators={
        "val_bpb": is_number,
        "memory_gb": is_number,
        "status": lambda v: v.lower() in STATUS_LABELS,
    },
    default_header=COLUMNS,
)

RECIPE = RecipeSpec(
    name="imported-autoresearch",
    description=(
        "Imported karpathy/autoresearch run (results.tsv): nanochat pretraining for a fixed "
        "wallclock, scored by validation bits per byte (lower is better). The trials carry no "
        "code: each trial commit keeps its parent's tree (the imported file and a README); "
        "budgets, phases and the evaluator are placeholders."
    ),
    editable=["README.md"],
    phases=Phases(train="true  # imported: nothing to run", eval="true  # imported: nothing to run"),
    evaluator=EvaluatorSpec(path="eval", prepare="imported:none", score="imported:none"),
    metric=MetricSpec(name="val_bpb", direction=Direction.minimize),
    budgets=Budgets(train_wallclock_s=300, eval_wallclock_s=300),
)


def import_autoresearch(path: Path, out: Path) -> ImportResult:
    path = Path(path)
    if path.is_dir():
        path = path / "results.tsv"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFormatError(0, f"cannot read {path}: {exc.strerror or exc}") from exc
    sha = hashlib.sha256(data).hexdigest()
    problems: list[str] = []
    trials = build_trials(data, problems)
    readme = (
        "# Imported run\n\n"
        f"Imported from `{path.name}` (karpathy/autoresearch format) by `harness import {FORMAT}`.\n\n"
        f"- source file: `{path}`\n- sha256: `{sha}`\n- trials: {len(trials)} (the first row is the baseline)\n\n"
        "Imported trials carry no code: every trial commit keeps its parent's tree (this README and\n"
        "the imported file under `source/`). Parents: the latest kept trial before each row.\n"
    )
    files = {"README.md": readme.encode(), f"source/{path.name}": data}
    return write_lineage(
        out, fmt=FORMAT, source=path, sha256=sha, recipe=RECIPE, trials=trials, problems=problems, files=files
    )


def build_trials(data: bytes, problems: list[str]) -> list[ImportedTrial]:
    """Parse the file and map its rows to trials (the first row is the baseline). Pure: no git."""
    table = parse_tsv(data, TABLE)
    problems.extend(table.problems)
    if not table.rows:
        raise ImportFormatError(1, "the file holds a header but no rows; the first row would be the baseline")
    trials: list[ImportedTrial] = []
    last_keep = 0
    for index, row in enumerate(table.rows):
        v = {k: clean_text(x) for k, x in row.values.items()}
        commit = clean_token(v.get("commit", ""), 64)
        where = f"{row.where} (commit {commit})" if commit else row.where
        if not commit:
            commit = f"line{row.line}"
            problems.append(f"{where}: no commit; the row is called {commit}")
        problems.extend(tagged(p, f"commit {commit}") for p in row.problems)
        status = " ".join(v.get("status", "").split()).lower()
        is_baseline = index == 0
        if status in STATUS_LABELS:
            label = STATUS_LABELS[status]
        else:
            label = Label.harness_error
            problems.append(f"{where}: unknown status {status!r}; recorded as harness_error")
        if is_baseline and label is not Label.keep:
            problems.append(f"{where}: the first row is the baseline, but its status is {status!r}; recorded as kept")
            label = Label.keep
        metrics: dict[str, float] = {}
        for column in ("val_bpb", "memory_gb"):
            raw = v.get(column, "")
            if not raw.strip():
                continue
            number = parse_float(raw)
            if number is None:
                problems.append(f"{where}: {column} {clean_token(raw, 40)!r} is not a finite number; left out")
            elif column == "val_bpb" and number <= 0:
                pass  # 0.000000 is how autoresearch writes "not measured" (crashes)
            else:
                metrics[column] = number
        score = metrics.get("val_bpb")
        settled = settle(
            label, score=score, metrics=metrics, gate_specs=(), is_baseline=is_baseline, where=where,
            problems=problems,
        )
        parent = None if is_baseline else last_keep
        head = f"Imported from {row.where}: the source's status {status or '(empty)'!r} maps to {settled.label.value}."
        fields = dict(v)
        fields.pop("description", None)
        if row.extra:
            fields["(extra fields)"] = "\t".join(row.extra)
        trials.append(
            ImportedTrial(
                source_id=commit,
                line=row.line,
                hypothesis=f"commit {commit}: {v.get('description', '')}",
                label=settled.label,
                original_label=status,
                parent=parent,
                score=score if settled.label is not Label.metric_missing else None,
                metrics=metrics,
                gates=settled.gates,
                phases=settled.phases,
                explanation=explanation(head, settled.notes + [p.split(": ", 1)[-1] for p in row.problems], fields),
                compared_to=[] if parent is None else [parent],
                trailers={"Source-Id": commit, "Source-Line": str(row.line)},
            )
        )
        if settled.label is Label.keep:
            last_keep = index
    return trials
