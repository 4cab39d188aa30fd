"""The upstream repositories of the GPU recipes, offline: shallow git bundles at the pins.

`../shared/data/upstream/` (beside the repository; `HARNESS_UPSTREAM_BUNDLES`
names another folder) holds one bundle per upstream, named `OWNER+NAME.bundle`
for `https://github.com/OWNER/NAME`. Tests do not copy them by hand: git itself
substitutes each bundle for its network URL through `url.<bundle>.insteadOf`,
set in the environment (`GIT_CONFIG_COUNT`, `GIT_CONFIG_KEY_n`,
`GIT_CONFIG_VALUE_n`), so the recipe loader's production clone path is the one
that runs. Without the bundles a test skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLES_ENV = "HARNESS_UPSTREAM_BUNDLES"


def bundles_dir() -> Path:
    given = os.environ.get(BUNDLES_ENV)
    return Path(given) if given else REPO_ROOT.parent / "shared" / "data" / "upstream"


def bundle_for(url: str) -> Path:
    """The bundle standing in for a `https://github.com/OWNER/NAME` URL (may not exist)."""
    owner, name = url.rstrip("/").removesuffix(".git").split("/")[-2:]
    return bundles_dir() / f"{owner}+{name}.bundle"


def bundle_git_env(urls: list[str]) -> dict[str, str]:
    """Environment that makes git fetch each URL from its bundle; skips (fails under CI)
    when a bundle is missing."""
    env: dict[str, str] = {}
    for i, url in enumerate(urls):
        bundle = bundle_for(url)
        if not bundle.is_file():
            message = f"no upstream bundle {bundle} for {url} (see ../shared/data/upstream/README.md)"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        env[f"GIT_CONFIG_KEY_{i}"] = f"url.{bundle}.insteadOf"
        env[f"GIT_CONFIG_VALUE_{i}"] = url
    env["GIT_CONFIG_COUNT"] = str(len(urls))
    return env


def use_bundles(monkeypatch: pytest.MonkeyPatch, urls: list[str]) -> dict[str, str]:
    """Set `bundle_git_env(urls)` in this test's environment; returns it (for subprocesses)."""
    env = bundle_git_env(urls)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def recipe_upstream(monkeypatch: pytest.MonkeyPatch, cache: Path, recipe: str):
    """The git source of a shipped recipe, reachable from its bundle, with a fresh recipe cache."""
    from harness.recipe_loader import load_recipe

    monkeypatch.setenv("HARNESS_CACHE", str(cache))
    source = load_recipe(recipe).spec.source
    use_bundles(monkeypatch, [source.url])
    return source
