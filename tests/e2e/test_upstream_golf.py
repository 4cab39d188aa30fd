"""parameter-golf at its `cpu` fidelity on the real upstream code, offline, through the CLI.

The pinned upstream comes from its shallow bundle through git's
`url.<bundle>.insteadOf`. `recipe check --fidelity cpu` makes the small sp1024
export with upstream's own exporter, trains the trial's model on the CPU, and
scores val bpb with the artifact-size gate, as at `full`.
"""

from __future__ import annotations

import pytest

from conftest import cpu_check_on_upstream
from harness.recipe_loader import load_recipe
from upstream_bundles import recipe_upstream

RECIPE = "parameter-golf"


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    return recipe_upstream(monkeypatch, tmp_path / "cache", RECIPE)


def test_recipe_check_runs_the_cpu_baseline_on_upstream_code(upstream):
    run = cpu_check_on_upstream(RECIPE, upstream.commit)
    assert run["label"] == "keep" and 0 < run["score"] < 10
    assert run["metrics"]["artifact_bytes"] <= 16_000_000
    assert run["metrics"]["code_bytes"] == len((load_recipe(RECIPE).source_dir / "train_gpt.py").read_bytes())
