"""`harness import`, `analyze` and `report` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import harness, replay_json

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "external" / "auto-research-recipes-cifar"


def test_import_cifar_sample_then_replay_analyze_report(tmp_path):
    run_dir = tmp_path / "imported"
    result = harness("import", "auto-research-recipes", SAMPLE / "results.tsv", "--out", run_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imported 98 trials" in result.stdout
    code, report = replay_json(run_dir)
    assert code == 0, report["problems"]
    assert len(report["trials"]) == 98
    assert report["best"] == {"id": "t0070", "score": 25.1464}
    counts = {}
    for trial in report["trials"]:
        counts[trial["label"]] = counts.get(trial["label"], 0) + 1
    assert counts == {"keep": 5, "not_improved": 5, "gate_miss": 81, "preflight_crash": 7}

    analysis = harness("analyze", run_dir, "--json")
    assert analysis.returncode == 0, analysis.stderr
    assert json.loads(analysis.stdout)

    html = tmp_path / "r.html"
    rendered = harness("report", run_dir, "--html", html)
    assert rendered.returncode == 0, rendered.stderr
    assert html.stat().st_size > 10_000 and "verified" in rendered.stdout


def test_import_of_a_missing_format_is_a_usage_error(tmp_path):
    result = harness("import", "nope", SAMPLE / "results.tsv", "--out", tmp_path / "x")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_analyze_at_without_compare_is_refused(scripted_run):
    result = harness("analyze", scripted_run, "--at", "3")
    assert result.returncode == 2 and "--compare" in result.stderr
