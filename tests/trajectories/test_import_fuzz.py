"""Property tests of the importers' reader: clean files read exactly, damaged
files keep every row and name the damage, arbitrary input never crashes."""

from __future__ import annotations

import csv
import json
import io
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trajectories.importers import FORMATS, ImportFormatError, import_run
from trajectories.importers import auto_research_recipes as arr
from trajectories.importers import autoresearch as ar
from trajectories.importers.common import parse_tsv
from trajectories.verify import verify_lineage

HEADER = [
    "exp_id", "timestamp", "specialist", "parent_exp", "baseline_exp", "domain", "hypothesis", "expected_delta",
    "status", "train_s", "accuracy", "acc_std", "n_seeds", "delta_vs_best", "total_s", "job_name",
    "snapshot_path", "notes",
]
STATUSES = list(arr.STATUS_LABELS) + ["weird", ""]

free_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0\r"), max_size=60
)
"""Hypotheses and notes: anything (tabs, quotes, newlines, unicode) but NUL and CR."""
number = st.one_of(
    st.just(""), st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda x: f"{x:.6f}")
)
token = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8)


@st.composite
def tables(draw: st.DrawFn, min_rows: int = 1, max_rows: int = 8) -> list[dict[str, str]]:
    n = draw(st.integers(min_rows, max_rows))
    rows = []
    for i in range(n):
        rows.append({
            "exp_id": f"{i:03d}",
            "timestamp": f"2026-04-28T12:{i % 60:02d}:00Z",
            "specialist": draw(token),
            "parent_exp": "" if i == 0 else f"{draw(st.integers(0, i + 1)):03d}",
            "baseline_exp": "" if i == 0 else "000",
            "domain": draw(token),
            "hypothesis": draw(free_text),
            "expected_delta": draw(number),
            "status": "baseline" if i == 0 and draw(st.booleans()) else draw(st.sampled_from(STATUSES)),
            "train_s": draw(number),
            "accuracy": draw(st.sampled_from(["", "0.955", "0.96", "0.9612"])),
            "acc_std": "",
            "n_seeds": draw(st.sampled_from(["", "0", "10"])),
            "delta_vs_best": "",
            "total_s": draw(number),
            "job_name": draw(st.sampled_from(["", "cif-opt-0001"])),
            "snapshot_path": "",
            "notes": draw(free_text),
        })
    return rows


def to_tsv(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, dialect="excel-tab", lineterminator="\n")
    writer.writerow(HEADER)
    for r in rows:
        writer.writerow([r[h] for h in HEADER])
    return buf.getvalue()


@given(tables())
def test_clean_files_read_exactly_like_csv(rows: list[dict[str, str]]) -> None:
    text = to_tsv(rows)
    table = parse_tsv(text.encode("utf-8"), arr.TABLE)
    assert table.problems == []
    assert [r.problems for r in table.rows] == [[] for _ in rows]
    assert [r.values for r in table.rows] == rows
    # The line numbers are where csv's reader found each row.
    reader = csv.reader(io.StringIO(text, newline=""), dialect="excel-tab")
    next(reader)
    starts, line = [], 1
    for _ in reader:
        starts.append(line + 1)
        line = reader.line_num
    assert [r.line for r in table.rows] == starts


DAMAGE = ("unquoted_newline", "unterminated_quote", "stray_tab", "truncate", "lone_quote")


@given(tables(min_rows=2), st.data())
def test_damaged_files_keep_every_row_and_name_the_line(rows: list[dict[str, str]], data: st.DataObject) -> None:
    # Simple free text, so that the damage is the only thing wrong.
    for r in rows:
        r["hypothesis"] = "".join(c for c in r["hypothesis"] if c not in '\t\n"') or "h"
        r["notes"] = "".join(c for c in r["notes"] if c not in '\t\n"')
    target = data.draw(st.integers(1, len(rows) - 1))  # never the header, and a row to damage
    kind = data.draw(st.sampled_from(DAMAGE))
    lines = to_tsv(rows).split("\n")
    fields = lines[target + 1].split("\t")
    hyp = HEADER.index("hypothesis")
    if kind == "unquoted_newline":
        fields[hyp] = fields[hyp][:1] + "\nwrapped " + fields[hyp][1:]
    elif kind == "unterminated_quote":
        fields[hyp] = '"' + fields[hyp]
    elif kind == "stray_tab":
        fields[hyp] = fields[hyp] + "\tmore"
    elif kind == "truncate":
        fields = fields[: data.draw(st.integers(2, len(fields) - 1))]
    else:
        fields[HEADER.index("notes")] += ' "quoted" tail'
    lines[target + 1] = "\t".join(fields)
    table = parse_tsv("\n".join(lines).encode("utf-8"), arr.TABLE)
    assert [r.values["exp_id"] for r in table.rows] == [r["exp_id"] for r in rows]
    damaged = table.rows[target]
    if kind != "lone_quote":  # a quote inside an unquoted field is read literally: no damage
        assert damaged.problems, kind
        assert damaged.problems[0].startswith((f"line {target + 2}", f"lines {target + 2}-"))
    others = [r.problems for i, r in enumerate(table.rows) if i != target]
    assert others == [[] for _ in others]
    if kind in ("unterminated_quote", "stray_tab", "unquoted_newline"):
        # The typed columns survive the damage.
        assert damaged.values["status"] == rows[target]["status"]
        assert damaged.values["train_s"] == rows[target]["train_s"]


@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_never_crash_the_readers(data: bytes) -> None:
    for build in (
        lambda d: arr.build_trials(d, "results.tsv", None, []),
        lambda d: ar.build_trials(d, []),
    ):
        try:
            build(data)
        except ImportFormatError as exc:
            assert str(exc).startswith("line ")


@given(st.lists(st.text(alphabet='\t\n"x01 .-ab', max_size=30), max_size=12))
def test_arbitrary_tsv_shapes_never_crash(chunks: list[str]) -> None:
    header = "\t".join(HEADER) + "\n"
    data = (header + "".join(chunks)).encode()
    trials, _best, _recipe = arr.build_trials(data, "results.tsv", None, problems := [])
    assert len(trials) >= 1
    for line in problems:
        assert line.startswith(("line", "results.tsv:", "best.json"))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tables(max_rows=6))
def test_any_table_imports_into_a_lineage_that_verifies(tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, str]]) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "results.tsv"
    path.write_text(to_tsv(rows), encoding="utf-8")
    result = import_run("auto-research-recipes", path, folder / "run")
    has_baseline = any(r["status"] == "baseline" for r in rows)
    assert result.trials == len(rows) + (0 if has_baseline else 1)
    report = verify_lineage(folder / "run")
    assert report.ok, (report.problems, result.problems)


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(
    st.tuples(st.sampled_from(["keep", "discard", "crash", "odd"]), st.sampled_from(["", "0.000000", "0.99", "1.2", "x"]), free_text),
    min_size=1, max_size=6,
))
def test_any_autoresearch_file_imports_and_verifies(tmp_path_factory: pytest.TempPathFactory, rows: list) -> None:
    folder = tmp_path_factory.mktemp("ar")
    path = folder / "results.tsv"
    lines = ["commit\tval_bpb\tmemory_gb\tstatus\tdescription"]
    lines += [f"{i:07x}\t{bpb}\t40.0\t{status}\t{text}" for i, (status, bpb, text) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_run("autoresearch", path, folder / "run")
    report = verify_lineage(Path(folder / "run"))
    assert report.ok, report.problems


# ---------------------------------------------------------------------------
# Whole imports of any bytes, in every format (lineage written and verified)
# ---------------------------------------------------------------------------

SAMPLE_HEADERS = {
    "auto-research-recipes": "\t".join(HEADER) + "\n",
    "autoresearch": "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n",
}
"""A real header per format, so that fuzzed rows get past the header check."""
assert set(SAMPLE_HEADERS) == set(FORMATS)  # a new format must get fuzzed too

row_soup = st.lists(
    st.sampled_from(["\t", "\n", "\r\n", '"', "000", "001", "abc1234", "keep", "discard", "crash", "baseline",
                     "0.96", "1e999", "nan", "-1", "\0", "\xff", "ü", " "]) | st.text(max_size=8),
    max_size=30,
).map("".join)


def import_or_error(fmt: str, folder: Path, data: bytes) -> None:
    """Import `data`: the run verifies and every problem names its place, or one error names the line."""
    path = folder / "results.tsv"
    path.write_bytes(data)
    try:
        result = import_run(fmt, path, folder / "run")
    except ImportFormatError as exc:
        assert str(exc).startswith("line ") and "\n" not in str(exc), str(exc)
        assert not (folder / "run").exists()  # nothing half-written is left behind
        return
    report = verify_lineage(folder / "run")
    assert report.ok, (report.problems, result.problems)
    assert result.trials >= 1
    assert all(p.startswith(("line", "results.tsv", "best.json", "file holds")) for p in result.problems), \
        result.problems


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200) | row_soup.map(lambda t: t.encode("utf-8", "surrogatepass")),
       with_header=st.booleans())
@example(data=b"9" * 5000 + b"\t\t\t\t\t\t\t\tkeep\t1.0\n", with_header=True)
@example(data=b"001\t\t\t\xc2\xb2\t\t\t\t\tkeep\t1.0\n", with_header=True)
def test_any_file_imports_into_a_lineage_that_verifies_or_names_the_line(
    fmt: str, data: bytes, with_header: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    header = SAMPLE_HEADERS[fmt].encode() if with_header else b""
    import_or_error(fmt, tmp_path_factory.mktemp("any"), header + data)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(best=st.binary(max_size=80) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
    | st.sampled_from(["000", "001", "002", 1, "0.955"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["exp_id", "train_s", "x"]), inner),
    max_leaves=6,
).map(lambda v: json.dumps(v).encode()))
@example(best=b"[" * 100_000)
@example(best=b'{"exp_id": "' + b"9" * 100_000 + b'"}')
def test_any_best_json_imports_or_is_ignored_with_a_reason(best: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("best")
    (folder / "best.json").write_bytes(best)
    rows = [dict(zip(HEADER, [f"{i:03d}", "2026-04-28T12:00:00Z", "arch", "" if i == 0 else "000", "", "d", "h", "",
                              "baseline" if i == 0 else "keep", f"{10 - i}.0", "0.961", "", "1", "", "", "", "", ""]))
            for i in range(3)]
    path = folder / "results.tsv"
    path.write_text(to_tsv(rows), encoding="utf-8")
    result = import_run("auto-research-recipes", folder, folder / "run")
    assert verify_lineage(folder / "run").ok
    assert all(len(p) < 500 for p in result.problems), result.problems
