"""Auto-Research-Recipes rows whose columns ran into the hypothesis (the released Parameter
Golf run has 46): their status is read back from the text, which the record keeps verbatim."""

from __future__ import annotations

from pathlib import Path

from harness.replay import replay
from trajectories.importers import import_run, source_fields
from trajectories.importers.arr_recovery import recover_columns
from trajectories.importers.auto_research_recipes import STATUS_LABELS, TABLE
from trajectories.lineage import Lineage

HEADER = ["exp_id", "timestamp", "specialist", "parent_exp", "baseline_exp", "domain", "hypothesis",
          "expected_delta", "status", "val_bpb", "delta_vs_best", "artifact_bytes", "train_s", "eval_s",
          "total_s", "job_name", "snapshot_path", "notes"]


def good(exp: str, status: str, bpb: str) -> str:
    return "\t".join([exp, "2026-04-22T06:00:00Z", "opt", "000", "000", "opt", f"hypothesis {exp}", "-0.001",
                      status, bpb, "", "15990000", "600.1", "700.2", "1400.0", f"job-{exp}", "", ""])


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "src" / "results.tsv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(["\t".join(HEADER), good("000", "baseline", "1.08"), good("001", "keep", "1.07"),
                               *lines]) + "\n")
    (path.parent / "best.json").write_text('{"exp_id": "001", "val_bpb": 1.07}')  # the score column
    return path


RAN_IN = ('"Raise the weight decay: the notes <parameter name=""notes"">were here; 0.5 keep me in mind." '
          "-0.0003 discard 1.078442 +0.001577 15996367 600.122000 756.878000 1471.000000 job-002  ")
ABORTED = ('"Shrink the matrices 0.095 to 0.115 (+21%)." -0.001 harness_abort   15999615   1479.000000 '
           "job-003   [QUARANTINED: the supervisor failed]")


def test_status_and_columns_are_read_back_from_the_text(tmp_path: Path) -> None:
    path = write(tmp_path, "\t".join(["002", "2026-04-22T06:45:14Z", "reg", "001", "001", "reg", RAN_IN]),
                 "\t".join(["003", "2026-04-22T06:46:14Z", "reg", "001", "001", "reg", ABORTED]))
    result = import_run("auto-research-recipes", path, tmp_path / "run")
    report = replay(tmp_path / "run")
    assert report.verified, report.problems
    by_id = {t.id: t for t in report.trials}
    ran, aborted = by_id["t0002"], by_id["t0003"]
    assert ran.label == "not_improved" and ran.score == 1.078442
    assert ran.metrics["train_s"] == 600.122 and ran.metrics["total_s"] == 1471.0
    # The hypothesis ends where the columns began ("0.5 keep me" inside it is no status: what follows
    # it does not fit the columns).
    assert ran.hypothesis == 'exp 002: Raise the weight decay: the notes <parameter name="notes">were here; 0.5 keep me in mind.'
    assert aborted.label == "harness_error" and aborted.score is None
    text = "\n".join(result.problems)
    assert "(exp 002): status 'discard' and the columns after it recovered from the hypothesis's text" in text
    assert "(exp 003): status 'harness_abort' and the columns after it recovered" in text
    assert "no status" not in text
    with Lineage.open(tmp_path / "run") as lineage:
        record = lineage.record("t0003")
        fields = source_fields(record.outcome)
        assert record.outcome.original_label == "harness_abort"
    assert fields["(columns recovered from the hypothesis)"] == ABORTED.split('." ', 1)[1]
    assert fields["notes"] == "[QUARANTINED: the supervisor failed]" and fields["total_s"] == "1479.000000"


def test_a_row_whose_text_names_no_status_stays_harness_error_with_its_reason(tmp_path: Path) -> None:
    path = write(tmp_path, "\t".join(["002", "2026-04-22T06:45:14Z", "reg", "001", "001", "reg",
                                      '"cut short before any column -0.001 exploded 1.07']))
    result = import_run("auto-research-recipes", path, tmp_path / "run")
    row = {t.id: t for t in replay(tmp_path / "run").trials}["t0002"]
    assert row.label == "harness_error"
    assert any("(exp 002): no status, and none could be read from the row's text; recorded as harness_error" in p
               for p in result.problems)


def test_only_rows_that_lost_their_columns_are_read_back() -> None:
    values = {c: "" for c in HEADER}
    values.update(exp_id="1", hypothesis="x -0.1 keep 1.0", status="discard")
    assert recover_columns(values, "hypothesis", frozenset(STATUS_LABELS), TABLE.validators) is None
    values.update(status="", notes="kept")
    assert recover_columns(values, "hypothesis", frozenset(STATUS_LABELS), TABLE.validators) is None
    values.update(notes="")
    got = recover_columns(values, "hypothesis", frozenset(STATUS_LABELS), TABLE.validators)
    assert got is not None and got.hypothesis == "x" and got.values["status"] == "keep"
    assert got.values["val_bpb"] == "1.0" and got.text == "-0.1 keep 1.0"
