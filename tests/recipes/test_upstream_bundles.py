"""The GPU recipes' real upstreams, from the shallow bundles at the pins, through the
loader's production clone path (git's `url.<bundle>.insteadOf`)."""

from __future__ import annotations

import subprocess

import pytest

from harness.recipe_loader import load_recipe
from upstream_bundles import use_bundles

GIT_RECIPES = ["airbench96", "nanochat-d12", "parameter-golf"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", GIT_RECIPES)
def test_the_pinned_upstream_comes_from_its_shallow_bundle(name, monkeypatch):
    recipe = load_recipe(name)
    use_bundles(monkeypatch, [recipe.spec.source.url])
    source = recipe.source_dir
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, check=True)
    assert head.stdout.strip() == recipe.spec.source.commit
    # the shallow commit is marked so: history stops at the pin instead of failing
    log = subprocess.run(["git", "log", "--format=%H"], cwd=source, capture_output=True, text=True)
    assert log.returncode == 0 and log.stdout.split() == [recipe.spec.source.commit]
    for rel in recipe.spec.editable:
        assert (source / rel).is_file(), f"upstream at the pin has no {rel}"
