"""`harness import`: external trajectories become lineages that verify."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from harness.replay import replay
from harness.types import Label
from trajectories.importers import (
    ImportFormatError,
    TrajectoryImportError,
    import_run,
    source_fields,
)
from trajectories.importers.auto_research_recipes import STATUS_LABELS
from trajectories.lineage import Lineage
from trajectories.verify import verify_lineage

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "external" / "auto-research-recipes-cifar"
if not SAMPLE.is_dir():  # the checkout may live elsewhere than /work/main
    SAMPLE = Path("/work/shared/data/external/auto-research-recipes-cifar")

HEADER = [
    "exp_id", "timestamp", "specialist", "parent_exp", "baseline_exp", "domain", "hypothesis", "expected_delta",
    "status", "train_s", "accuracy", "acc_std", "n_seeds", "delta_vs_best", "total_s", "job_name",
    "snapshot_path", "notes",
]


def row(exp: str, status: str, *, parent: str = "000", train_s: str = "", accuracy: str = "", hyp: str = "",
        notes: str = "", specialist: str = "opt", domain: str | None = None, best: str = "000") -> dict[str, str]:
    return {
        "exp_id": exp, "timestamp": f"2026-04-28T12:{int(exp) % 60:02d}:00Z" if exp.isdigit() else "2026-04-28T12:00:00Z",
        "specialist": specialist, "parent_exp": parent, "baseline_exp": best, "domain": domain or specialist,
        "hypothesis": hyp or f"hypothesis of {exp}", "expected_delta": "-0.5", "status": status,
        "train_s": train_s, "accuracy": accuracy, "acc_std": "0.001" if accuracy else "", "n_seeds": "10",
        "delta_vs_best": "", "total_s": train_s or "25.0", "job_name": f"job-{exp}", "snapshot_path": "", "notes": notes,
    }


def write_tsv(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    """Writes the way the blackboard does: csv excel-tab quoting, LF line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, dialect="excel-tab", lineterminator="\n")
    writer.writerow(header)
    for r in rows:
        writer.writerow([r.get(h, "") for h in header])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def baseline_row() -> dict[str, str]:
    r = row("000", "baseline", parent="", train_s="26.356", specialist="baseline", best="")
    r["hypothesis"] = "calibrated baseline"
    return r


# ---------------------------------------------------------------------------
# The CIFAR sample (the done-when)
# ---------------------------------------------------------------------------


def test_cifar_sample_imports_and_verifies(tmp_path: Path) -> None:
    source = SAMPLE / "results.tsv"
    with source.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, dialect="excel-tab"))
    expected = Counter(STATUS_LABELS[r["status"]].value for r in rows)

    result = import_run("auto-research-recipes", source, tmp_path / "cifar")

    assert result.trials == len(rows) == 98
    assert result.labels == dict(expected)
    assert result.original_labels == dict(Counter(r["status"] for r in rows))
    assert (result.best, result.best_score, result.best_source_id) == ("t0070", 25.1464, "070")
    report = replay(tmp_path / "cifar")
    assert report.verified, report.problems
    assert len(report.trials) == 98
    assert Counter(t.label for t in report.trials) == expected
    assert report.best.id == "t0070" and report.best.score == 25.1464
    best = next(t for t in report.trials if t.id == report.best.id)
    assert best.hypothesis.startswith("exp 070: 42ep + lr=11")
    # The only contradiction in the file: exp 006 disqualified at a printed accuracy of 0.960000.
    assert len(result.problems) == 1 and "exp 006" in result.problems[0] and result.problems[0].startswith("line 8")


def test_cifar_records_keep_the_source(tmp_path: Path) -> None:
    import_run("auto-research-recipes", SAMPLE, tmp_path / "cifar")  # a folder holding results.tsv
    with Lineage.open(tmp_path / "cifar") as lineage:
        info = lineage.run_info()
        records = {r.trial.id: r for r in lineage.records()}
        assert info.imported is not None and info.imported.format == "auto-research-recipes"
        assert len(info.imported.sha256) == 64
        assert info.recipe.metric.name == "train_s" and info.recipe.metric.direction.value == "minimize"
        # The baseline tree holds the imported file itself, byte for byte.
        assert lineage.read_file(info.baseline_commit, "source/results.tsv") == (SAMPLE / "results.tsv").read_bytes()
        r70 = records["t0070"]
        assert r70.trial.parent == "t0030" and r70.trial.proposal.specialist == "opt"
        assert r70.trial.proposal.agent == "imported:auto-research-recipes"
        assert r70.trial.proposal.diff == "" and r70.trial.proposal.expected_delta == -0.6
        assert r70.outcome.original_label == "keep"
        assert r70.outcome.metrics["accuracy"] == 0.96008 and r70.outcome.metrics["n_seeds"] == 10
        src = source_fields(r70.outcome)
        assert src["domain"] == "opt" and src["job_name"] == "cif-opt-0068" and src["snapshot_path"] == "snapshots/070_opt"
        r72 = records["t0072"]
        assert r72.trial.parent == "t0068"  # parent links follow parent_exp, not the best
        assert r72.outcome.label is Label.gate_miss and not r72.outcome.gates[0].passed
        assert records["t0038"].outcome.label is Label.preflight_crash
        assert "infrastructure sync failure" in source_fields(records["t0038"].outcome)["notes"]
        # Every trial keeps its parent's tree: imported trials carry no code.
        for r in records.values():
            assert lineage.tree_of(r.trial.commit) == lineage.tree_of(info.baseline_commit)


# ---------------------------------------------------------------------------
# Labels, parents, best
# ---------------------------------------------------------------------------


def test_every_status_maps_and_verifies(tmp_path: Path) -> None:
    rows = [baseline_row()]
    statuses = ["keep", "discard", "disqualified", "size_blocked", "eval_budget_overrun", "crash",
                "preflight_crash", "harness_abort", "train_budget_overrun", "exploded"]
    for i, status in enumerate(statuses, start=1):
        good = status in ("keep", "discard")
        rows.append(row(f"{i:03d}", status, train_s=f"{25 - i * 0.1:.3f}" if good else "",
                        accuracy="0.9601" if good or status == "disqualified" else ""))
    path = write_tsv(tmp_path / "src" / "results.tsv", rows)
    result = import_run("auto-research-recipes", path, tmp_path / "run")
    report = verify_lineage(tmp_path / "run")
    assert report.ok, report.problems
    labels = {r.trial.id: r.outcome.label.value for r in report.records}
    assert labels == {
        "t0000": "keep", "t0001": "keep", "t0002": "not_improved", "t0003": "gate_miss", "t0004": "size_failure",
        "t0005": "eval_budget_overrun", "t0006": "crash", "t0007": "preflight_crash", "t0008": "harness_error",
        "t0009": "budget_overrun", "t0010": "harness_error",
    }
    originals = {r.trial.id: r.outcome.original_label for r in report.records}
    assert originals["t0010"] == "exploded" and originals["t0000"] == "baseline"
    assert any("line 12 (exp 010): unknown status 'exploded'" in p for p in result.problems)
    # disqualified at 0.9601 (gate holds as written): recorded with the source's failed gate, and listed.
    assert any("line 5 (exp 003): disqualified although the gate holds" in p for p in result.problems)
    assert result.best == "t0001"


def test_parents_follow_parent_exp_and_fall_back_to_the_baseline(tmp_path: Path) -> None:
    rows = [
        baseline_row(),
        row("001", "keep", train_s="25.9", accuracy="0.961"),
        row("002", "discard", parent="001", train_s="26.0", accuracy="0.961", best="001"),
        row("003", "disqualified", parent="999", accuracy="0.95"),  # unknown parent
        row("004", "disqualified", parent="005", accuracy="0.95"),  # a later row
        row("005", "disqualified", parent="", accuracy="0.95"),  # none
        row("6", "disqualified", parent="2", accuracy="0.95"),  # ids compare as numbers
    ]
    path = write_tsv(tmp_path / "results.tsv", rows)
    result = import_run("auto-research-recipes", path, tmp_path / "run")
    report = verify_lineage(tmp_path / "run")
    assert report.ok, report.problems
    parents = {r.trial.id: r.trial.parent for r in report.records}
    assert parents == {"t0000": None, "t0001": "t0000", "t0002": "t0001", "t0003": "t0000", "t0004": "t0000",
                       "t0005": "t0000", "t0006": "t0002"}
    text = "\n".join(result.problems)
    assert "line 5 (exp 003): parent_exp 999 is not an earlier row; linked to the baseline" in text
    assert "line 6 (exp 004): parent_exp 005 is not an earlier row" in text
    assert "line 7 (exp 005): no parent_exp; linked to the baseline" in text
    assert report.records[2].outcome.compared_to == ["t0001"]


def test_baseline_row_anywhere_becomes_t0000(tmp_path: Path) -> None:
    rows = [row("001", "keep", train_s="25.9", accuracy="0.961"), baseline_row()]
    path = write_tsv(tmp_path / "results.tsv", rows)
    result = import_run("auto-research-recipes", path, tmp_path / "run")
    assert result.trial_ids == {"t0000": "000", "t0001": "001"}
    assert verify_lineage(tmp_path / "run").ok


def test_no_baseline_row_gets_a_synthetic_baseline(tmp_path: Path) -> None:
    rows = [row("001", "discard", train_s="25.9", accuracy="0.961"), row("002", "crash")]
    path = write_tsv(tmp_path / "results.tsv", rows)
    result = import_run("auto-research-recipes", path, tmp_path / "run")
    assert result.trials == 3 and result.trial_ids["t0000"] == "(synthetic)"
    assert any("no baseline row" in p for p in result.problems)
    report = verify_lineage(tmp_path / "run")
    assert report.ok, report.problems
    assert report.records[0].outcome.score is None and report.best == "t0000"


def test_keep_contradicting_the_gate_is_kept_and_listed(tmp_path: Path) -> None:
    rows = [baseline_row(), row("001", "keep", train_s="25.0", accuracy="0.95"), row("002", "keep", accuracy="0.97")]
    path = write_tsv(tmp_path / "results.tsv", rows)
    result = import_run("auto-research-recipes", path, tmp_path / "run")
    report = verify_lineage(tmp_path / "run")
    assert report.ok, report.problems
    labels = [r.outcome.label for r in report.records]
    assert labels == [Label.keep, Label.keep, Label.metric_missing]
    assert any("exp 001): the source's keep decision contradicts the gate" in p for p in result.problems)
    assert any("exp 002): status keep without a score; recorded as metric_missing" in p for p in result.problems)
    assert report.records[2].outcome.original_label == "keep"


def test_best_json_naming_an_earlier_keep_is_recorded_last(tmp_path: Path) -> None:
    rows = [
        baseline_row(),
        row("001", "keep", train_s="25.0", accuracy="0.961"),
        row("002", "keep", parent="001", train_s="25.5", accuracy="0.961", best="001"),
        row("003", "discard", parent="002", train_s="25.6", accuracy="0.961", best="002"),
    ]
    path = write_tsv(tmp_path / "src" / "results.tsv", rows)
    (tmp_path / "src" / "best.json").write_text(json.dumps({"exp_id": "001", "train_s": 25.0}))
    result = import_run("auto-research-recipes", path, tmp_path / "run")
    report = verify_lineage(tmp_path / "run")
    assert report.ok, report.problems
    assert result.best == report.best == "t0001"
    assert report.outcome_order[-1] == "t0001"
    assert any("best.json names exp 001, not the last keep" in p for p in result.problems)


def test_best_json_picks_the_score_column(tmp_path: Path) -> None:
    header = [h if h != "train_s" else "val_bpb" for h in HEADER] + ["train_s"]
    rows = [
        {**baseline_row(), "val_bpb": "1.10", "train_s": "300"},
        {**row("001", "keep", accuracy=""), "val_bpb": "1.05", "train_s": "299"},
    ]
    path = write_tsv(tmp_path / "src" / "results.tsv", rows, header=header)
    (tmp_path / "src" / "best.json").write_text(json.dumps({"exp_id": "001", "val_bpb": 1.05}))
    result = import_run("auto-research-recipes", path, tmp_path / "run")
    with Lineage.open(tmp_path / "run") as lineage:
        assert lineage.run_info().recipe.metric.name == "val_bpb"
        assert lineage.run_info().recipe.gates == []
    assert result.best_score == 1.05 and verify_lineage(tmp_path / "run").ok


# ---------------------------------------------------------------------------
# Dirty files
# ---------------------------------------------------------------------------


def _dirty_sample() -> tuple[bytes, dict[str, int]]:
    """The CIFAR sample with the damage real files show; returns (bytes, exp -> line damaged)."""
    lines = (SAMPLE / "results.tsv").read_text(encoding="utf-8").split("\n")

    def fields(i: int) -> list[str]:
        return lines[i].split("\t")

    f = fields(6)  # exp 005, line 7: an unquoted newline inside the hypothesis
    f[6] = f[6][:40] + "\n" + f[6][40:]
    lines[6] = "\t".join(f)
    f = fields(11)  # exp 010, line 12: an unterminated quote opening the notes
    f[17] = '"the note never closes its quote'
    lines[11] = "\t".join(f)
    f = fields(21)  # exp 020, line 22: a tab inside the hypothesis
    f[6] = f[6][:30] + "\t" + f[6][30:]
    lines[21] = "\t".join(f)
    f = fields(31)  # exp 030, line 32: the notes go on over an unquoted newline
    f[17] = "first line of the note\nsecond line of the note"
    lines[31] = "\t".join(f)
    f = fields(41)  # exp 040, line 42: a quoted field with an embedded newline (valid quoting)
    f[6] = '"quoted ""hypothesis""\nspanning two lines"'
    lines[41] = "\t".join(f)
    lines[98] = lines[98][:150]  # exp 097: the file was cut inside the last row
    return "\n".join(lines).encode("utf-8"), {}


def test_dirty_sample_keeps_every_row(tmp_path: Path) -> None:
    data, _ = _dirty_sample()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "results.tsv").write_bytes(data)
    result = import_run("auto-research-recipes", tmp_path / "src" / "results.tsv", tmp_path / "run")
    assert result.trials == 98
    assert sorted(result.trial_ids.values()) == [f"{i:03d}" for i in range(98)]
    text = "\n".join(result.problems)
    # Line numbers are the file's physical lines (each repair shifts the later ones by one).
    assert "lines 7-8 (exp 005): a newline without quotes inside a field" in text
    assert "line 13 (exp 010): unterminated quote" in text
    assert "line 23 (exp 020): 1 stray tab(s) inside hypothesis" in text
    assert "lines 33-34 (exp 030): a newline without quotes inside a field" in text
    assert "exp 040" not in text  # valid quoting is no problem
    assert "(exp 097): truncated row" in text
    report = replay(tmp_path / "run")
    assert report.verified, report.problems
    by_id = {t.id: t for t in report.trials}
    assert "\n" in by_id["t0005"].hypothesis and by_id["t0005"].label == "gate_miss"
    assert by_id["t0020"].label == "not_improved" and by_id["t0020"].score == 25.5908  # realigned
    assert by_id["t0040"].hypothesis == 'exp 040: quoted "hypothesis"\nspanning two lines'
    assert by_id["t0070"].label == "keep" and report.best.id == "t0070"
    with Lineage.open(tmp_path / "run") as lineage:
        assert lineage.run_info().imported.problems == result.problems
        notes = source_fields(lineage.record("t0030").outcome)["notes"]
        assert notes == "first line of the note\nsecond line of the note"
        assert source_fields(lineage.record("t0010").outcome)["notes"].startswith('"the note never')


def test_encoding_crlf_blank_lines_and_nul(tmp_path: Path) -> None:
    rows = [baseline_row(), row("001", "keep", train_s="25.0", accuracy="0.961", hyp="caf\u00e9 \u2192 fast")]
    path = write_tsv(tmp_path / "results.tsv", rows)
    data = path.read_bytes().replace(b"\n", b"\r\n").replace("caf\u00e9".encode(), b"caf\xe9\x00")
    data = data.replace(b"\r\n001", b"\r\n\r\n001")
    path.write_bytes(b"\xef\xbb\xbf" + data + b"\r\n\r\n")
    result = import_run("auto-research-recipes", path, tmp_path / "run")
    assert result.trials == 2 and result.labels == {"keep": 2}
    text = "\n".join(result.problems)
    assert "not UTF-8" in text and "NUL" in text and "line 3: blank line" in text
    assert verify_lineage(tmp_path / "run").ok


def test_not_the_format_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text("\n\nthis is not a header\n1\t2\n")
    with pytest.raises(ImportFormatError, match="^line 3: not a header of this format"):
        import_run("auto-research-recipes", path, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing left behind
    path.write_text("")
    with pytest.raises(ImportFormatError, match="^line 1: the file holds no rows"):
        import_run("auto-research-recipes", path, tmp_path / "run")


def test_import_run_refuses(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "results.tsv", [baseline_row()])
    with pytest.raises(TrajectoryImportError, match="unknown import format 'nope'"):
        import_run("nope", path, tmp_path / "run")
    with pytest.raises(TrajectoryImportError, match="does not exist"):
        import_run("autoresearch", tmp_path / "missing.tsv", tmp_path / "run")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(TrajectoryImportError, match="not empty"):
        import_run("auto-research-recipes", path, tmp_path / "busy")
    import_run("auto-research-recipes", path, tmp_path / "run")
    with pytest.raises(TrajectoryImportError):
        import_run("auto-research-recipes", path, tmp_path / "run")


# ---------------------------------------------------------------------------
# autoresearch
# ---------------------------------------------------------------------------

AUTORESEARCH = """commit\tval_bpb\tmemory_gb\tstatus\tdescription
a1b2c3d\t0.997900\t44.0\tkeep\tbaseline
b2c3d4e\t0.993200\t44.2\tkeep\tincrease LR to 0.04
c3d4e5f\t1.005000\t44.0\tdiscard\tswitch to GeLU activation
d4e5f6g\t0.000000\t0.0\tcrash\tdouble model width (OOM)
e5f6g7h\t0.991000\t44.1\tkeep\tadd a warmup of 200 steps
f6g7h8i\t0.992500\t44.1\tdiscard\ttry\ttabs in the description
"""


def test_autoresearch_imports(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(AUTORESEARCH)
    result = import_run("autoresearch", path, tmp_path / "run")
    report = replay(tmp_path / "run")
    assert report.verified, report.problems
    assert [t.label for t in report.trials] == ["keep", "keep", "not_improved", "crash", "keep", "not_improved"]
    assert [t.parent for t in report.trials] == [None, "t0000", "t0001", "t0001", "t0001", "t0004"]
    assert report.trials[3].score is None and report.trials[3].metrics == {"memory_gb": 0.0}
    assert report.trials[1].hypothesis == "commit b2c3d4e: increase LR to 0.04"
    assert report.trials[5].hypothesis == "commit f6g7h8i: try\ttabs in the description"
    assert report.best.id == "t0004" and report.best.score == 0.991
    assert report.recipe == "imported-autoresearch"
    assert result.problems == ["line 7 (commit f6g7h8i): 1 stray tab(s) inside description; fields merged"]


def test_autoresearch_without_header_and_with_junk(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    body = AUTORESEARCH.split("\n", 1)[1] + "g7h8i9j\tnan\t44\tweird\tstatus nobody knows\n"
    path.write_text(body)
    result = import_run("autoresearch", path, tmp_path / "run")
    assert result.trials == 7
    text = "\n".join(result.problems)
    assert "line 1: no header line" in text
    assert "line 7 (commit g7h8i9j): val_bpb 'nan' is not a finite number" in text
    assert "unknown status 'weird'; recorded as harness_error" in text
    assert verify_lineage(tmp_path / "run").ok


# ---------------------------------------------------------------------------
# Lineage.batch (the importers' bulk path)
# ---------------------------------------------------------------------------


def test_batch_moves_the_refs_once_and_rolls_back(tmp_path: Path) -> None:
    import subprocess

    from lineage_helpers import RunBuilder, make_source

    builder = RunBuilder(tmp_path / "run", make_source(tmp_path / "src"))
    lin = builder.lineage
    head = lin.ledger_head()
    with pytest.raises(RuntimeError), lin.batch():
        builder.trial(score=0.6)
        assert lin.git.ref("refs/heads/ledger") == head  # nothing moved yet
        raise RuntimeError("stop")
    assert lin.ledger_head() == head and [r.trial.id for r in lin.records()] == ["t0000"]
    assert lin.git.ref("refs/trials/t0001") is None
    with lin.batch():
        rec = builder.propose()
        builder.finish(rec, Label.not_improved, 0.4)
        builder.propose()
    assert lin.git.ref("refs/heads/ledger") == lin.ledger_head() != head
    assert lin.git.ref("refs/trials/t0002") is not None
    log = subprocess.run(["git", "-C", str(tmp_path / "run"), "reflog", "show", "--format=%H", "refs/heads/ledger"],
                         capture_output=True, text=True).stdout.split()
    assert len(log) == 4  # start, t0000 proposed, t0000 outcome, then one move for the batch
    report = verify_lineage(tmp_path / "run")
    assert [p for p in report.problems if "no outcome" not in p] == []
