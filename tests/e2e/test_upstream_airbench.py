"""airbench96 at its `cpu` fidelity on the real upstream code, offline, through the CLI.

The pinned upstream comes from its shallow bundle through git's
`url.<bundle>.insteadOf`. `recipe check --fidelity cpu` makes the small
synthetic CIFAR-shaped set, runs upstream's `train96()` and `infer()` on the
CPU (the driver's run-time CPU adaptation, `eval/airbench_cpu.py`) for the
level's 5 seeds, and scores as at `full`: the host-timed train wallclock,
with the accuracy the host computes from the held-out labels gated at 0.96.
"""

from __future__ import annotations

import pytest

from conftest import cpu_check_on_upstream
from harness.recipe_loader import load_recipe
from upstream_bundles import recipe_upstream

RECIPE = "airbench96"


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    return recipe_upstream(monkeypatch, tmp_path / "cache", RECIPE)


def test_recipe_check_runs_the_cpu_baseline_on_upstream_code(upstream):
    run = cpu_check_on_upstream(RECIPE, upstream.commit)
    level = load_recipe(RECIPE).spec.fidelities["cpu"]
    assert run["label"] == "keep" and run["seeds"] == level.seeds
    [gate] = load_recipe(RECIPE).spec.gates
    assert run["metrics"]["acc"] >= gate.threshold
    # the score is the host's clock of the train phase, which it measured for every seed
    assert run["score"] == pytest.approx(run["metrics"]["train_wallclock_s"]) and 0 < run["score"] < 120
