"""Multi-fidelity through the CLI: a halving run, its audit, analysis and report;
levels asked for by scripted proposals; the errors of wrong fidelity options."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness.recipe_tools import new_recipe
from trajectories.lineage import Lineage

from conftest import edit_diff, harness, write_proposals

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def spirals(tmp_path_factory) -> Path:
    folder = new_recipe("spirals", tmp_path_factory.mktemp("recipes"))
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text()
                    + '\n[fidelities.tiny]\nenv = { HARNESS_EPOCH_SCALE = "0.25" }\nseeds = [0]\ncost = 0.25\n')
    return folder


@pytest.fixture(scope="module")
def halving_run(spirals, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("runs")
    result = harness("run", spirals, "--fidelity-policy", "halving", "--budget", "4", "--seed", "1",
                     "--out", out, "--run-id", "h")
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "h", result.stdout


def test_halving_run_summary_names_levels_and_compute(halving_run):
    run_dir, stdout = halving_run
    assert "(--fidelity-policy halving --budget 4 --eta 3)" in stdout
    assert "reference @tiny" in stdout and "promotion @smoke" in stdout
    assert "compute: 4 units spent of --budget 4 (baseline not counted); per level: tiny 1.5 (6 trials), " \
           "smoke 1.5 (3 trials), full 1 (1 trial)" in stdout
    best_line = next(line for line in stdout.splitlines() if line.startswith("best: "))
    assert best_line.endswith("(at full)")


def test_halving_run_verifies_and_replay_shows_each_level(halving_run):
    run_dir, _ = halving_run
    result = harness("replay", run_dir, "--verify", "--json")
    assert result.returncode == 0, result.stdout
    data = json.loads(result.stdout)
    assert data["verified"] and data["problems"] == []
    assert set(data["trials"][0]) == {"id", "parent", "agent", "specialist", "hypothesis", "status", "label",
                                      "score", "metrics"}  # the DESIGN contract, unchanged
    with Lineage.open(run_dir) as lineage:
        records = {r.trial.id: r.trial for r in lineage.records()}
    levels = [t.fidelity for t in records.values()]
    assert levels[:3] == ["full", "tiny", "smoke"] and levels.count("full") == 2
    promotions = [t for t in records.values() if t.fidelity_move == "promotion"]
    assert [records[p.parent].fidelity for p in promotions] == ["tiny", "tiny", "smoke"]
    table = harness("replay", run_dir).stdout
    assert "fidelity" in table and "promotion" in table


def test_analyze_and_report_of_a_halving_run(halving_run, tmp_path):
    run_dir, _ = halving_run
    result = harness("analyze", run_dir, "--json")
    assert result.returncode == 0, result.stderr
    fidelity = json.loads(result.stdout)["fidelity"]
    assert [c["level"] for c in fidelity["compute"]] == ["tiny", "smoke", "full"]
    assert {(c["low"], c["high"]) for c in fidelity["correlations"]} == {("tiny", "smoke"), ("tiny", "full"),
                                                                          ("smoke", "full")}
    text = harness("analyze", run_dir).stdout
    assert "How well a level predicts another" in text
    html = tmp_path / "r.html"
    result = harness("report", run_dir, "--html", html)
    assert result.returncode == 0 and "verified" in result.stdout
    assert '"move":["","reference","reference"' in html.read_text()


def test_resume_of_a_finished_halving_run_spends_nothing_more(halving_run, tmp_path):
    run_dir, _ = halving_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    result = harness("run", "--resume", copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "budget spent" in result.stdout
    with Lineage.open(copy) as a, Lineage.open(run_dir) as b:
        assert len(a.records()) == len(b.records())
    result = harness("run", "--resume", copy, "--budget", "9")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "was started with --fidelity-policy halving" in result.stderr


def test_scripted_proposals_may_ask_for_a_level(spirals, tmp_path):
    config = (spirals / "src" / "config.py").read_text()
    wider = re.sub(r"^HIDDEN = \d+", "HIDDEN = 32", config, flags=re.M)
    assert wider != config
    diff = edit_diff("config.py", config, wider)
    proposals = write_proposals(tmp_path / "p.jsonl", [
        {"hypothesis": "Wider, cheaply first", "diff": diff, "fidelity": "tiny"},
        {"hypothesis": "At a level that does not exist", "diff": diff, "fidelity": "huge"},
        {"hypothesis": "Wider at full", "diff": diff, "parent": "t0000"},
    ])
    result = harness("run", spirals, "--agent", "scripted", "--proposals", proposals, "--out", tmp_path,
                     "--run-id", "s", "--budget", "1.5")
    assert result.returncode == 0, result.stdout + result.stderr
    with Lineage.open(tmp_path / "s") as lineage:
        records = lineage.records()
    assert [r.trial.fidelity for r in records] == ["full", "tiny", "full", "full"]
    assert records[1].outcome.label.ran
    bad = records[2].outcome
    assert bad.label.value == "malformed_proposal"
    assert "asks for fidelity 'huge'; the recipe's levels are tiny, smoke, full" in bad.explanation
    # 0.25 spent, 1 more for the full trial: within --budget 1.5
    assert records[3].outcome.label.ran
    assert harness("replay", tmp_path / "s", "--verify").returncode == 0


def test_wrong_fidelity_options_are_one_error_line(spirals, tmp_path):
    cases = [
        (["--fidelity-policy", "halving", "--parallel", "2"], "use --parallel 1"),
        (["--fidelity-policy", "halving", "--proposers", "2"], "use --parallel 1 --proposers 1"),
        (["--eta", "2"], "--eta and --bracket go with --fidelity-policy halving"),
        (["--fidelity-policy", "halving", "--fidelity", "tiny"], "needs a level cheaper than 'tiny'"),
    ]
    for args, message in cases:
        result = harness("run", spirals, "--out", tmp_path, "--run-id", "x", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (args, result.stderr)
        assert not (tmp_path / "x").exists()
