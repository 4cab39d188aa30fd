"""Shared machinery of the importers: a forgiving TSV reader and the lineage writer.

Real trajectory files are dirty: rows with embedded newlines (quoted or not),
unterminated quotes, tabs inside free text, truncated last lines. `parse_tsv`
reads the quoting that Python's `csv` module writes (excel-tab: tab-separated,
fields holding a tab, a quote or a newline wrapped in double quotes, quotes
doubled) and recovers from everything else, one row at a time:

- a quoted field may span lines, but never across a line that looks like the
  start of a new row; an unterminated quote is read literally instead;
- a row with too few fields continues on the next line when that line is not a
  row start (an unquoted newline in a free-text column), else it is padded;
- a row with too many fields (tabs in free text) has the extras merged into the
  free-text column that makes the typed columns (numbers, statuses, timestamps)
  read best.

Every such repair becomes a problem string naming the line(s). Nothing is
dropped: each logical row comes back, repaired as far as possible.

`write_lineage` turns a list of `ImportedTrial` into a real lineage through the
public `Lineage` API, so that `verify_lineage` accepts it.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from harness.types import (
    BASELINE_TRIAL_ID,
    GateResult,
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

from ..lineage import Lineage, LineageError, trial_trailers

try:  # the harness version, without importing the harness package (dependency rule)
    from importlib.metadata import version as _version

    HARNESS_VERSION = _version("harness")
except Exception:  # noqa: BLE001 - not installed (running from a checkout)
    HARNESS_VERSION = "0+unknown"

MAX_QUOTED_SPAN = 200
"""Lines a quoted field may span before its quote counts as unterminated."""
MAX_JOINED_LINES = 50
"""Continuation lines joined onto one unquoted row at most."""
SOURCE_PREFIX = "source: "
"""Line of `Outcome.explanation` holding the source row's fields as JSON (see `source_fields`)."""
FIDELITY = "full"

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}:?\d{2})?$")


class TrajectoryImportError(Exception):
    """An import cannot be done (unknown format, output folder in use, unreadable file)."""


class ImportFormatError(TrajectoryImportError):
    """The file cannot be read as the format at all; the message names the line."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


# ---------------------------------------------------------------------------
# The TSV reader
# ---------------------------------------------------------------------------


@dataclass
class Row:
    line: int
    """First physical line of the row (1-based)."""
    end_line: int
    """Last physical line of the row."""
    values: dict[str, str]
    """Field per column name (missing fields are "")."""
    extra: list[str] = field(default_factory=list)
    """Fields beyond the header that could not be merged anywhere."""
    problems: list[str] = field(default_factory=list)
    """What was repaired, as `line N: ...` / `lines N-M: ...`."""

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.end_line == self.line else f"lines {self.line}-{self.end_line}"


@dataclass
class Table:
    header: list[str]
    rows: list[Row]
    problems: list[str]
    """File-level problems (blank lines inside the data, undecodable bytes, ...)."""


@dataclass
class TableSpec:
    """What a format's rows look like, for row-start detection and realignment."""

    required: Sequence[str]
    """Columns the header must have."""
    id_column: str
    """Column identifying a row; a row starts with a value of `id_pattern` in it."""
    id_pattern: re.Pattern[str]
    text_columns: Sequence[str]
    """Free-text columns where stray tabs may live."""
    validators: dict[str, Callable[[str], bool]]
    """Typed columns: a check of a (stripped, non-empty) value."""
    default_header: Sequence[str] | None = None
    """Columns assumed when the file starts with a data row (None: a header is required)."""


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def decode(data: bytes) -> tuple[str, list[str]]:
    """UTF-8 text of a file (BOM dropped, CRLF -> LF, NUL -> U+FFFD) and problems."""
    problems: list[str] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        bad = [i + 1 for i, line in enumerate(text.split("\n")) if "\ufffd" in line]
        problems.append(
            f"line {bad[0] if bad else 1}: bytes that are not UTF-8 replaced by U+FFFD"
            + (f" (lines {', '.join(map(str, bad[:10]))}{', ...' if len(bad) > 10 else ''})" if len(bad) > 1 else "")
        )
    text = text.removeprefix("\ufeff")
    if "\0" in text:
        problems.append("file holds NUL characters; replaced by U+FFFD")
        text = text.replace("\0", "\ufffd")
    # Lone surrogates cannot come out of a strict or replacing decode; nothing to do.
    return text.replace("\r\n", "\n"), problems


def _split_fields(line: str, pos: int = 0) -> list[str]:
    return line[pos:].split("\t")


class _Reader:
    def __init__(self, lines: list[str], spec: TableSpec, header: list[str]) -> None:
        self.lines = lines
        self.spec = spec
        self.header = header
        self.n = len(header)
        self.id_index = header.index(spec.id_column) if spec.id_column in header else 0
        self.ts_index = header.index("timestamp") if "timestamp" in header else None

    def is_start(self, idx: int) -> bool:
        """Whether physical line `idx` looks like the start of a row."""
        line = self.lines[idx]
        if not line.strip():
            return False
        fields = line.split("\t")
        if len(fields) <= self.id_index or not self.spec.id_pattern.fullmatch(fields[self.id_index].strip()):
            return False
        if self.ts_index is not None and self.ts_index < self.n:
            return len(fields) > self.ts_index and bool(TIMESTAMP_RE.match(fields[self.ts_index].strip()))
        return len(fields) >= min(3, self.n)

    def tokenize_line(self, idx: int, pos: int, problems: list[str]) -> tuple[list[str], int]:
        """Fields from line `idx`, column `pos` on; quoted fields may run onto later
        lines. Returns (fields, last line index used)."""
        fields: list[str] = []
        s = self.lines[idx]
        while True:
            if pos < len(s) and s[pos] == '"':
                value, end_idx, end_pos = self._quoted(idx, pos, problems)
                if value is not None:
                    idx, s, pos = end_idx, self.lines[end_idx], end_pos
                    # After the closing quote: a tab, or the end of the line.
                    tab = s.find("\t", pos)
                    tail = s[pos:] if tab < 0 else s[pos:tab]
                    if tail:
                        problems.append(f"line {idx + 1}: text after a closing quote kept in the field")
                        value += tail
                    fields.append(value)
                    if tab < 0:
                        return fields, idx
                    pos = tab + 1
                    continue
                # Unterminated: the quote is read as a literal character.
            tab = s.find("\t", pos)
            if tab < 0:
                fields.append(s[pos:])
                return fields, idx
            fields.append(s[pos:tab])
            pos = tab + 1

    def _quoted(self, idx: int, pos: int, problems: list[str]) -> tuple[str | None, int, int]:
        """Read a quoted field opening at (idx, pos); (value, line, column after the
        closing quote), or (None, idx, pos) when the quote never closes."""
        start = idx
        s = self.lines[idx]
        p = pos + 1
        buf: list[str] = []
        while True:
            q = s.find('"', p)
            if q < 0:
                buf.append(s[p:])
                nxt = idx + 1
                if nxt < len(self.lines) and nxt - start < MAX_QUOTED_SPAN and not self.is_start(nxt):
                    buf.append("\n")
                    idx, s, p = nxt, self.lines[nxt], 0
                    continue
                problems.append(
                    f"line {start + 1}: unterminated quote (column {pos + 1}); the quote is read as a "
                    "literal character and the field ends at the line's end or next tab"
                )
                return None, start, pos
            if q + 1 < len(s) and s[q + 1] == '"':
                buf.append(s[p:q] + '"')
                p = q + 2
                continue
            buf.append(s[p:q])
            return "".join(buf), idx, q + 1

    def read_row(self, idx: int) -> tuple[Row, int]:
        """The row starting at physical line `idx`; returns it and the next line index."""
        problems: list[str] = []
        fields, last = self.tokenize_line(idx, 0, problems)
        joined = 0
        # Too few fields: an unquoted newline inside a field; continue on the next line.
        while len(fields) < self.n and self._continues(last + 1) and joined < MAX_JOINED_LINES:
            more, last = self.tokenize_line(last + 1, 0, problems)
            fields[-1] += "\n" + more[0]
            fields.extend(more[1:])
            joined += 1
        # Complete, but the next line is neither a row nor has any tab: the last
        # column went on over an unquoted newline.
        while (
            len(fields) == self.n
            and self._continues(last + 1)
            and "\t" not in self.lines[last + 1]
            and joined < MAX_JOINED_LINES
        ):
            last += 1
            fields[-1] += "\n" + self.lines[last]
            joined += 1
        where = f"line {idx + 1}" if last == idx else f"lines {idx + 1}-{last + 1}"
        if joined:
            problems.append(f"{where}: a newline without quotes inside a field; {joined + 1} lines joined into one row")
        extra: list[str] = []
        if len(fields) < self.n:
            problems.append(
                f"{where}: truncated row: {len(fields)} of {self.n} fields; "
                f"missing {', '.join(self.header[len(fields):])} left empty"
            )
            fields += [""] * (self.n - len(fields))
        elif len(fields) > self.n:
            fields, merged_into, extra = self._realign(fields)
            if merged_into:
                problems.append(f"{where}: {len(merged_into)} stray tab(s) inside {', '.join(sorted(set(merged_into)))}; fields merged")
            if extra:
                problems.append(f"{where}: {len(extra)} field(s) beyond the header's {self.n} columns kept aside")
        values = dict(zip(self.header, fields))
        return Row(idx + 1, last + 1, values, extra, problems), last + 1

    def _continues(self, idx: int) -> bool:
        return idx < len(self.lines) and bool(self.lines[idx].strip()) and not self.is_start(idx)

    def _realign(self, fields: list[str]) -> tuple[list[str], list[str], list[str]]:
        """Merge surplus fields into free-text columns: try every split of the
        surplus among them and keep the one whose typed columns read best."""
        surplus = len(fields) - self.n
        text_idx = [self.header.index(c) for c in self.spec.text_columns if c in self.header]
        if not text_idx:
            return fields[: self.n], [], fields[self.n :]
        best: tuple[int, int] | None = None
        best_fields: list[str] = fields[: self.n]
        best_merged: list[str] = []
        for split in _splits(surplus, len(text_idx)):
            out: list[str] = []
            merged: list[str] = []
            src = 0
            counts = dict(zip(text_idx, split))
            for col in range(self.n):
                take = 1 + counts.get(col, 0)
                out.append("\t".join(fields[src : src + take]))
                if take > 1:
                    merged += [self.header[col]] * (take - 1)
                src += take
            score = self._typed_score(out)
            # Ties: prefer the surplus in the last free-text column (notes-like).
            key = (score, -sum(i * k for i, k in enumerate(reversed(split))))
            if best is None or key > best:
                best, best_fields, best_merged = key, out, merged
        return best_fields, best_merged, []

    def _typed_score(self, fields: list[str]) -> int:
        score = 0
        for name, check in self.spec.validators.items():
            if name in self.header:
                value = fields[self.header.index(name)].strip()
                score += 1 if (not value or check(value)) else -1
        return score


def _splits(total: int, parts: int) -> list[tuple[int, ...]]:
    """Every way to write `total` as an ordered sum of `parts` non-negative ints."""
    if parts == 1:
        return [(total,)]
    if total > 64:  # absurd surplus: only the extremes
        return [tuple(total if i == j else 0 for i in range(parts)) for j in range(parts)]
    return [(k, *rest) for k in range(total + 1) for rest in _splits(total - k, parts - 1)]


def parse_tsv(data: bytes, spec: TableSpec) -> Table:
    """Read a tab-separated file into rows (see the module doc). Raises
    `ImportFormatError` (naming the line) only when no header can be found."""
    text, problems = decode(data)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ImportFormatError(1, "the file holds no rows (empty)")
    header_fields = [h.strip().lower() for h in lines[first].split("\t")]
    missing = [c for c in spec.required if c not in header_fields]
    if missing:
        if spec.default_header is None:
            raise ImportFormatError(
                first + 1,
                f"not a header of this format: columns {', '.join(missing)} are missing "
                f"(found {', '.join(repr(h) for h in header_fields[:20])})",
            )
        header = list(spec.default_header)
        data_start = first
        problems.append(f"line {first + 1}: no header line; columns assumed: {', '.join(header)}")
    else:
        header = header_fields
        data_start = first + 1
        dupes = [h for h, n in Counter(header).items() if n > 1]
        if dupes:
            raise ImportFormatError(first + 1, f"the header repeats columns {', '.join(dupes)}")
    reader = _Reader(lines, spec, header)
    rows: list[Row] = []
    idx = data_start
    last_data = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    while idx < len(lines):
        if not lines[idx].strip():
            if idx < last_data:
                problems.append(f"line {idx + 1}: blank line inside the data skipped")
            idx += 1
            continue
        row, idx = reader.read_row(idx)
        if not reader.is_start(row.line - 1):
            row.problems.append(
                f"{row.where}: does not start like a row ({spec.id_column} then the next columns); read as one anyway"
            )
        rows.append(row)
    return Table(header, rows, problems)


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


def clean_token(value: str, limit: int = 200) -> str:
    """A value fit for a commit trailer: one line, no surrounding blanks, bounded."""
    text = " ".join(value.replace("\0", " ").split())
    return text[:limit]


def clean_text(value: str) -> str:
    """Free text for a record: NUL replaced (git messages cannot hold it)."""
    return value.replace("\0", "\ufffd")


def parse_float(value: str) -> float | None:
    """A finite float, or None when empty or not a number."""
    text = value.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_time(value: str) -> str:
    """An ISO 8601 time string for `Outcome.started` ("" when the value is none)."""
    text = clean_token(value, 64)
    return text if TIMESTAMP_RE.match(text) else ""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def source_fields(outcome: Outcome | None) -> dict[str, str]:
    """The source row's fields an importer stored in an outcome's explanation
    (`source: {json}` line); {} for a native trial."""
    if outcome is None:
        return {}
    for line in outcome.explanation.split("\n"):
        if line.startswith(SOURCE_PREFIX):
            try:
                data = json.loads(line[len(SOURCE_PREFIX) :])
            except ValueError:
                return {}
            if isinstance(data, dict):
                return {str(k): str(v) for k, v in data.items()}
    return {}


# ---------------------------------------------------------------------------
# The lineage writer
# ---------------------------------------------------------------------------


@dataclass
class ImportedTrial:
    """One trial to write: the baseline first, then every row in file order."""

    source_id: str
    """The row's own id (exp_id, commit)."""
    line: int
    """Line of the row in the file (0 for a synthetic baseline)."""
    hypothesis: str
    label: Label
    original_label: str
    parent: int | None = None
    """Index of the parent in the trial list (None for the baseline)."""
    specialist: str | None = None
    expected_delta: float | None = None
    score: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    gates: list[GateResult] = field(default_factory=list)
    phases: list[PhaseUsage] = field(default_factory=list)
    explanation: str = ""
    timestamp: str = ""
    compared_to: list[int] = field(default_factory=list)
    """Indexes of the trials the source's decision compared against."""
    trailers: dict[str, str] = field(default_factory=dict)
    """Extra trailers of the trial commit (`Source-Id`, `Source-Line`)."""


class ImportResult(BaseModel):
    """What `import_run` wrote."""

    run_dir: str
    run_id: str
    format: str
    source: str
    sha256: str
    trials: int
    """Trials in the lineage (the baseline included)."""
    labels: dict[str, int]
    """Our labels, counted."""
    original_labels: dict[str, int]
    """The source's statuses, counted."""
    best: str | None
    best_score: float | None
    best_source_id: str | None
    problems: list[str]
    trial_ids: dict[str, str]
    """Trial id -> the source row's id."""


def write_lineage(
    out: Path,
    *,
    fmt: str,
    source: Path,
    sha256: str,
    recipe: RecipeSpec,
    trials: list[ImportedTrial],
    problems: list[str],
    files: dict[str, bytes],
    best_index: int | None = None,
) -> ImportResult:
    """Write `trials` (the baseline first) as a lineage in `out` (missing or empty).

    Every trial commit has its parent's tree: imported trials carry no code. The
    baseline tree holds `files` (a README and the imported file itself). Outcomes
    are recorded in trial order, except that `best_index` (when given and kept)
    is recorded last, so that `best` (the last keep in outcome order) is it.
    On failure the folder is removed again when this call created it."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TrajectoryImportError(f"{out} already exists and is not empty; choose another --out")
    created = not out.exists()
    try:
        return _write(out, fmt, source, sha256, recipe, trials, problems, files, best_index)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _write(
    out: Path,
    fmt: str,
    source: Path,
    sha256: str,
    recipe: RecipeSpec,
    trials: list[ImportedTrial],
    problems: list[str],
    files: dict[str, bytes],
    best_index: int | None,
) -> ImportResult:
    from harness.types import ImportSource

    agent = f"imported:{fmt}"
    run_id = out.resolve().name
    ids = [trial_id(i) for i in range(len(trials))]
    try:
        lineage = Lineage.init(out)
    except LineageError as exc:
        raise TrajectoryImportError(str(exc)) from exc
    with lineage, tempfile.TemporaryDirectory(prefix="import-") as tmp:
        base_dir = Path(tmp)
        for rel, data in files.items():
            target = base_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        base = trials[0]
        base_commit = lineage.commit_baseline(
            base_dir, base.hypothesis, {**trial_trailers(BASELINE_TRIAL_ID, None, agent, base.specialist, FIDELITY), **base.trailers}
        )
        info = RunInfo(
            run_id=run_id,
            recipe=recipe,
            recipe_dir="",
            baseline_commit=base_commit,
            evaluator_digest=sha256,
            agent=agent,
            seed=0,
            created=utc_now(),
            harness_version=HARNESS_VERSION,
            imported=ImportSource(format=fmt, path=str(source), sha256=sha256, problems=list(problems)),
        )
        lineage.start(info)
        tree = lineage.tree_of(base_commit)
        commits: list[str] = []
        deferred: list[TrialRecord] = []
        last_keep: str | None = None
        with lineage.batch():  # one ref transaction for the whole import
            for i, item in enumerate(trials):
                tid = ids[i]
                parent = None if i == 0 else ids[item.parent if item.parent is not None else 0]
                if i == 0:
                    commit = base_commit
                else:
                    trailers = {**trial_trailers(tid, parent, agent, item.specialist, FIDELITY), **item.trailers}
                    commit = lineage.commit_trial(tree, commits[item.parent or 0], item.hypothesis, trailers)
                commits.append(commit)
                proposal = Proposal(
                    hypothesis=item.hypothesis,
                    diff="",
                    parent=parent,
                    expected_delta=item.expected_delta,
                    agent=agent,
                    specialist=item.specialist,
                )
                trial = Trial(id=tid, run_id=run_id, parent=parent, proposal=proposal, fidelity=FIDELITY, seeds=[], commit=commit)
                lineage.record_proposed(TrialRecord(trial=trial))
                outcome = Outcome(
                    label=item.label,
                    explanation=item.explanation,
                    score=item.score,
                    metrics=item.metrics,
                    gates=item.gates,
                    phases=item.phases,
                    evaluator_digest=sha256,
                    image=f"imported:{fmt}",
                    compared_to=[ids[j] for j in item.compared_to],
                    started=item.timestamp,
                    finished=item.timestamp,
                    original_label=item.original_label,
                )
                record = TrialRecord(trial=trial, outcome=outcome)
                if i == best_index and item.label is Label.keep:
                    deferred.append(record)
                    continue
                lineage.record_outcome(record)
                if item.label is Label.keep:
                    last_keep = tid
            for record in deferred:
                lineage.record_outcome(record)
                last_keep = record.trial.id
        if last_keep is not None:
            lineage.set_best(last_keep)
    labels = Counter(t.label.value for t in trials)
    originals = Counter(t.original_label for t in trials)
    best_item = trials[ids.index(last_keep)] if last_keep else None
    return ImportResult(
        run_dir=str(out),
        run_id=run_id,
        format=fmt,
        source=str(source),
        sha256=sha256,
        trials=len(trials),
        labels=dict(sorted(labels.items())),
        original_labels=dict(sorted(originals.items())),
        best=last_keep,
        best_score=best_item.score if best_item else None,
        best_source_id=best_item.source_id if best_item else None,
        problems=list(problems),
        trial_ids={ids[i]: t.source_id for i, t in enumerate(trials)},
    )


# ---------------------------------------------------------------------------
# Outcome consistency
# ---------------------------------------------------------------------------


@dataclass
class Settled:
    label: Label
    gates: list[GateResult]
    phases: list[PhaseUsage]
    notes: list[str]
    """Sentences for the explanation (also listed as problems when `problem`)."""


SOURCE_GATE = "source_verdict"
"""Gate standing for a source's own gate, whose rule the import does not know."""


def settle(
    label: Label,
    *,
    score: float | None,
    metrics: dict[str, float],
    gate_specs: Sequence,  # GateSpec
    is_baseline: bool,
    where: str,
    problems: list[str],
) -> Settled:
    """Make a mapped label, the score and synthesized gate results agree with
    the outcome rules `verify_lineage` checks, without dropping the row: what
    the data contradicts is adjusted as little as possible and listed in
    `problems` (prefixed with `where`)."""
    notes: list[str] = []

    def problem(text: str) -> None:
        problems.append(f"{where}: {text}")
        notes.append(text[0].upper() + text[1:] + ".")

    computed = []
    for spec in gate_specs:
        value = metrics.get(spec.metric)
        computed.append(
            GateResult(
                metric=spec.metric,
                op=spec.op,
                threshold=spec.threshold,
                value=value,
                passed=value is not None and spec.passes(value),
            )
        )
    present = [g for g in computed if g.value is not None]
    gates: list[GateResult] = present
    phases: list[PhaseUsage] = []
    wallclock = next((metrics[k] for k in ("train_s", "total_s") if k in metrics and metrics[k] >= 0), 0.0)

    if label in (Label.keep, Label.not_improved):
        if score is None:
            if is_baseline:
                problem("the baseline has no score")
            else:
                problem(f"status {label.value} without a score; recorded as metric_missing")
                label = Label.metric_missing
        failing = [g for g in present if not g.passed]
        if failing and label in (Label.keep, Label.not_improved):
            what = ", ".join(f"{g.metric} {g.value:g} (needs {g.op} {g.threshold:g})" for g in failing)
            problem(f"the source's {label.value} decision contradicts the gate: {what}; the gate result is left out")
            gates = [g for g in present if g.passed]
        missing = [g.metric for g in computed if g.value is None]
        if missing and not is_baseline and label in (Label.keep, Label.not_improved):
            problem(f"gate metric {', '.join(missing)} missing: the gate could not be checked")
    elif label is Label.gate_miss:
        gates = computed
        if all(g.passed for g in computed):
            if computed:
                what = ", ".join(f"{g.metric} {g.value:g} {g.op} {g.threshold:g}" for g in computed)
                problem(f"disqualified although the gate holds as written ({what}; a rounded value?); "
                        f"recorded with a failed {SOURCE_GATE} gate")
            else:
                notes.append(f"The source's own gate failed (recorded as the {SOURCE_GATE} gate).")
            gates = computed + [GateResult(metric=SOURCE_GATE, op=">=", threshold=1.0, value=0.0, passed=False)]
    elif label is Label.budget_overrun:
        phases = [PhaseUsage(phase="train", wallclock_s=wallclock, exit_code=None, timed_out=True)]
        notes.append("The source reports a train budget overrun (phase synthesized from it).")
    elif label is Label.eval_budget_overrun:
        phases = [PhaseUsage(phase="eval", wallclock_s=wallclock, exit_code=None, timed_out=True)]
        notes.append("The source reports an eval budget overrun (phase synthesized from it).")
    return Settled(label, gates, phases, notes)


def tagged(problem: str, tag: str) -> str:
    """`line 13: text` -> `line 13 (exp 010): text`."""
    where, sep, text = problem.partition(": ")
    return f"{where} ({tag}){sep}{text}" if sep else problem


def source_line(values: dict[str, str]) -> str:
    """The `source: {json}` explanation line (one line; see `source_fields`)."""
    kept = {k: v for k, v in values.items() if v.strip()}
    return SOURCE_PREFIX + json.dumps(kept, ensure_ascii=False, sort_keys=False)


def explanation(head: str, notes: list[str], values: dict[str, str]) -> str:
    return "\n".join([head, *notes, source_line(values)])
