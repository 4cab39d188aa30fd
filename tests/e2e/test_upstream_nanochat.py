"""nanochat-d12 at its `cpu` fidelity on the real upstream code, offline, through the CLI.

The pinned upstream comes from its shallow bundle through git's
`url.<bundle>.insteadOf` (the production clone path). `recipe check` runs the
baseline; a two-trial run scores the baseline and one scripted proposal and
replays clean; the code that ran is upstream's at the pin: the baseline trial's
commit has upstream's tree, file for file (same blob ids), and the run records
the pinned commit.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import edit_diff, harness, replay_json, write_proposals
from harness.recipe_loader import load_recipe
from upstream_bundles import bundle_for, recipe_upstream

RECIPE = "nanochat-d12"


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    return recipe_upstream(monkeypatch, tmp_path / "cache", RECIPE)


def git_lines(repo: Path, *args: str) -> list[str]:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.splitlines()


def test_recipe_check_runs_the_cpu_baseline_on_upstream_code(upstream):
    result = harness("recipe", "check", RECIPE, "--fidelity", "cpu", "--sandbox", "local", "--repeats", "1",
                     timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"at {upstream.commit} (HEAD verified)" in result.stdout
    baseline = next(line for line in result.stdout.splitlines() if "baseline:" in line)
    assert baseline.startswith("ok") and "keep core=" in baseline, result.stdout
    assert "ready" in result.stdout


def test_two_trial_cpu_run_scores_upstream_code_and_replays_clean(upstream, tmp_path):
    source = load_recipe(RECIPE).source_dir
    text = (source / "scripts" / "base_train.py").read_text()
    old = 'parser.add_argument("--warmdown-ratio", type=float, default=0.65,'
    assert text.count(old) == 1, "upstream's base_train.py has no --warmdown-ratio default of 0.65"
    proposals = write_proposals(tmp_path / "p.jsonl", [{
        "hypothesis": "A shorter warmdown keeps the learning rate up for longer in a short run",
        "diff": edit_diff("scripts/base_train.py", text, text.replace(old, old.replace("0.65", "0.3"))),
    }])
    result = harness("run", RECIPE, "--fidelity", "cpu", "--sandbox", "local", "--agent", "scripted",
                     "--proposals", proposals, "--trials", "2", "--out", tmp_path / "runs", "--run-id", "r",
                     timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    run = tmp_path / "runs" / "r"

    code, replay = replay_json(run)
    assert code == 0 and replay["verified"], replay["problems"]
    trials = {t["id"]: t for t in replay["trials"]}
    assert set(trials) == {"t0000", "t0001"}
    baseline = trials["t0000"]
    assert baseline["status"] == "keep" and isinstance(baseline["score"], float)
    assert -1.0 <= baseline["score"] <= 1.0 and baseline["metrics"]["core"] == baseline["score"]
    assert trials["t0001"]["label"] in ("keep", "not_improved"), trials["t0001"]

    # provenance: the recorded pin, and upstream's files at it (blob ids) as the baseline's code
    info = json.loads(subprocess.run(["git", "-C", str(run), "show", "ledger:run.json"], check=True,
                                     capture_output=True, text=True).stdout)
    recorded = info["recipe"]["source"]
    assert (recorded["type"], recorded["url"], recorded["commit"]) == ("git", upstream.url, upstream.commit)
    clone = tmp_path / "from-bundle"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(bundle_for(upstream.url)), str(clone)],
                   capture_output=True, text=True)
    assert git_lines(clone, "rev-parse", "HEAD") == [upstream.commit]
    upstream_files = git_lines(clone, "ls-tree", "-r", upstream.commit)
    assert git_lines(run, "ls-tree", "-r", "refs/trials/t0000") == upstream_files
    train_py = next(line for line in upstream_files if line.endswith("\tscripts/base_train.py"))
    trial_files = git_lines(run, "ls-tree", "-r", "refs/trials/t0001")
    assert train_py not in trial_files and len(trial_files) == len(upstream_files)
    log = "\n".join(git_lines(run, "log", "-1", "--format=%B", "refs/trials/t0000"))
    assert "Trial-Id: t0000" in log
