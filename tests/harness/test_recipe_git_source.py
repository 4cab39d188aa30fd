"""Git-sourced recipes: cloned into the recipe cache at the pinned commit, verified, never into the tree.

A local git repository built in tmp_path stands in for upstream: two commits,
the recipe pinned to the first, so every test can tell the pin from the tip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.recipe_loader import (
    RECIPES_ROOT,
    RecipeError,
    cache_root,
    checkout_path,
    git_checkout,
    load_recipe,
    verify_checkout,
)
from harness.recipe_tools import TEMPLATE_DIR, new_recipe

GIT_ENV = {"GIT_AUTHOR_NAME": "upstream", "GIT_AUTHOR_EMAIL": "u@example.org",
           "GIT_COMMITTER_NAME": "upstream", "GIT_COMMITTER_EMAIL": "u@example.org"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Every test gets its own recipe cache."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "recipes"


@pytest.fixture
def upstream(tmp_path):
    """A stand-in upstream: the scaffold's training code under `pkg/`; the pin is commit 1, the tip commit 2."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q")
    shutil.copytree(TEMPLATE_DIR / "src", repo / "pkg")
    for path in (repo / "pkg").rglob("*.py"):
        path.write_text(path.read_text().replace("__RECIPE_NAME__", "upstream"))
    (repo / "README.md").write_text("stand-in upstream\n")
    pin = commit_all(repo, "the pinned state")
    (repo / "pkg" / "config.py").write_text((repo / "pkg" / "config.py").read_text().replace("HIDDEN = 16", "HIDDEN = 99"))
    (repo / "NEWS").write_text("after the pin\n")
    tip = commit_all(repo, "a later change")
    return {"path": repo, "url": repo.as_uri(), "pin": pin, "tip": tip}


def git_recipe(tmp_path: Path, url: str, commit: str, subdir: str = "pkg") -> Path:
    """The scaffold recipe, its source replaced by the stand-in upstream at `commit`."""
    folder = new_recipe("fromgit", tmp_path / "recipes")
    shutil.rmtree(folder / "src")
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace(
        'source = { type = "local", path = "src" }',
        f'source = {{ type = "git", url = "{url}", commit = "{commit}", subdir = "{subdir}" }}'))
    return folder


def test_git_source_materializes_at_the_pin_in_the_cache(tmp_path, upstream, cache):
    folder = git_recipe(tmp_path, upstream["url"], upstream["pin"])
    recipe = load_recipe(str(folder))
    source = recipe.source_dir
    assert source == checkout_path(upstream["url"], upstream["pin"]) / "pkg"
    assert source.is_relative_to(cache) and cache == cache_root()
    assert "HIDDEN = 16" in (source / "config.py").read_text()  # the pin, not the tip
    assert not (source.parent / "NEWS").exists()
    assert git(source.parent, "rev-parse", "HEAD") == upstream["pin"]
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "eval", "recipe.toml"]  # nothing fetched here
    assert not (RECIPES_ROOT / "fromgit").exists()


def test_cache_is_reused_without_the_network(tmp_path, upstream):
    folder = git_recipe(tmp_path, upstream["url"], upstream["pin"])
    first = load_recipe(str(folder)).source_dir
    shutil.rmtree(upstream["path"])  # upstream gone: the verified cache entry still serves
    assert load_recipe(str(folder)).source_dir == first


def test_a_modified_cache_entry_is_cloned_again(tmp_path, upstream):
    folder = git_recipe(tmp_path, upstream["url"], upstream["pin"])
    source = load_recipe(str(folder)).source_dir
    (source / "config.py").write_text("HIDDEN = 1\n")
    (source / "stray.py").write_text("x = 1\n")
    assert "differs from the commit" in verify_checkout(source.parent, upstream["pin"])
    again = load_recipe(str(folder)).source_dir
    assert "HIDDEN = 16" in (again / "config.py").read_text() and not (again / "stray.py").exists()
    assert verify_checkout(again.parent, upstream["pin"]) is None


def test_a_checkout_at_another_commit_is_detected(upstream, tmp_path):
    dest = git_checkout(upstream["url"], upstream["pin"])
    git(dest, "fetch", "-q", upstream["url"], upstream["tip"])
    git(dest, "-c", "advice.detachedHead=false", "checkout", "-q", upstream["tip"])
    assert "not the pinned commit" in verify_checkout(dest, upstream["pin"])
    assert verify_checkout(git_checkout(upstream["url"], upstream["pin"]), upstream["pin"]) is None


def test_a_commit_upstream_does_not_have_is_a_clear_error(tmp_path, upstream):
    missing = "0123456789abcdef0123456789abcdef01234567"
    recipe = load_recipe(str(git_recipe(tmp_path, upstream["url"], missing)))
    with pytest.raises(RecipeError) as err:
        recipe.source_dir
    assert missing in str(err.value) and upstream["url"] in str(err.value)
    assert not checkout_path(upstream["url"], missing).exists()


def test_an_unreachable_repository_is_a_clear_error(tmp_path, upstream):
    url = (tmp_path / "no-such-repo").as_uri()
    recipe = load_recipe(str(git_recipe(tmp_path, url, upstream["pin"])))
    with pytest.raises(RecipeError, match="cannot fetch the recipe source"):
        recipe.source_dir


def test_subdir_must_exist_and_stay_inside(tmp_path, upstream):
    recipe = load_recipe(str(git_recipe(tmp_path, upstream["url"], upstream["pin"], subdir="nope")))
    with pytest.raises(RecipeError, match="source.subdir"):
        recipe.source_dir
    shutil.rmtree(tmp_path / "recipes")
    with pytest.raises(RecipeError, match="relative path inside"):
        load_recipe(str(git_recipe(tmp_path, upstream["url"], upstream["pin"], subdir="../escape")))


def test_short_sha_is_refused_by_the_spec(tmp_path, upstream):
    with pytest.raises(RecipeError, match="source"):
        load_recipe(str(git_recipe(tmp_path, upstream["url"], upstream["pin"][:12])))


def test_a_mirror_stands_in_through_git_insteadof(tmp_path, upstream, monkeypatch):
    """Git's own url rewriting: recipes keep the upstream URL, a mirror serves it."""
    fake = "https://example.invalid/upstream/repo"
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.{upstream['url']}.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", fake)
    source = load_recipe(str(git_recipe(tmp_path, fake, upstream["pin"]))).source_dir
    assert source == checkout_path(fake, upstream["pin"]) / "pkg" and (source / "train.py").is_file()


@pytest.mark.e2e
def test_a_run_of_a_git_recipe_records_upstream_at_the_pin_and_replays(tmp_path, upstream):
    folder = git_recipe(tmp_path, upstream["url"], upstream["pin"])
    runs = tmp_path / "runs"
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(folder), "--trials", "2",
                             "--fidelity", "smoke", "--out", str(runs), "--run-id", "g"],
                            capture_output=True, text=True, timeout=600, env=os.environ)
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = runs / "g"
    files = git(run_dir, "ls-tree", "-r", "--name-only", "refs/trials/t0000").split()
    assert sorted(files) == sorted(p.name for p in (upstream["path"] / "pkg").iterdir() if p.is_file())
    assert "HIDDEN = 16" in git(run_dir, "show", "refs/trials/t0000:config.py")
    replay = subprocess.run([sys.executable, "-m", "harness.cli", "replay", str(run_dir), "--verify"],
                            capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0, replay.stdout + replay.stderr
