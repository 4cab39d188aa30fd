"""parameter-golf at its `cpu` fidelity on the real upstream code, offline, through the CLI.

The pinned upstream comes from its shallow bundle through git's
`url.<bundle>.insteadOf`. `recipe check --fidelity cpu` makes the small sp1024
export with upstream's own exporter, trains the trial's model on the CPU, and
scores val bpb with the artifact-size gate, as at `full`.
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import harness
from harness.recipe_loader import load_recipe
from upstream_bundles import recipe_upstream

RECIPE = "parameter-golf"


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    return recipe_upstream(monkeypatch, tmp_path / "cache", RECIPE)


def test_recipe_check_runs_the_cpu_baseline_on_upstream_code(upstream):
    result = harness("recipe", "check", RECIPE, "--fidelity", "cpu", "--sandbox", "local", "--repeats", "1", "--json",
                     timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    items = {item["name"]: item for item in report["items"]}
    assert items["upstream"]["status"] == "ok" and upstream.commit in items["source"]["detail"]
    [run] = report["runs"]
    assert run["label"] == "keep" and 0 < run["score"] < 10
    assert run["metrics"]["artifact_bytes"] <= 16_000_000
    assert run["metrics"]["code_bytes"] == len((load_recipe(RECIPE).source_dir / "train_gpt.py").read_bytes())
    assert re.match(r"ok|warn", items["baseline"]["status"])
