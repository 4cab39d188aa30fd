"""The GPU recipes (airbench96, nanochat-d12, parameter-golf, collision-vjepa), checked without a GPU.

* Their specs validate, pin full commits their READMEs cite, and carry the
  specialist partitions and rules the recipes promise.
* Each git recipe materializes from its real upstream at the pin (the shallow
  bundle, through git's `url.<bundle>.insteadOf`), its pinned commit verified,
  everything its `upstream.toml` names is found there, and `recipe check` at
  its default level reports what it could not run without a GPU instead of
  failing. An upstream that lacks a flag the recipe relies on fails the check
  with a message naming it.
* The evaluators' CPU-side pieces (data layout, scoring, size and window
  arithmetic) work on small fake data; collision-vjepa, whose code also runs
  on a CPU, completes a short run on synthetic features.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from harness.recipe_loader import RECIPES_ROOT, load_recipe
from harness.recipe_tools import check_recipe
from harness.types import GitSource
from upstream_bundles import bundle_for, use_bundles

GIT_RECIPES = ["airbench96", "nanochat-d12", "parameter-golf"]
GPU_RECIPES = GIT_RECIPES + ["collision-vjepa"]
SPECIALISTS = {
    "airbench96": {"arch", "opt", "aug", "loss", "reg"},
    "nanochat-d12": {"arch", "opt", "data", "sched", "sys"},
    "parameter-golf": {"arch", "opt", "quant", "reg", "loss", "eval", "tok"},
    "collision-vjepa": {"arch", "opt"},
}
# Paths each recipe relies on in its upstream (editable files, protected ones it names,
# files its driver and evaluator use), as they are at the pinned commits.
UPSTREAM_LAYOUT = {
    "airbench96": ["README.md", "setup.py", "airbench/__init__.py", "airbench/lib_airbench93.py",
                   "airbench/lib_airbench94.py", "airbench/lib_airbench95.py", "airbench/lib_airbench96.py", "airbench/utils.py", "airbench96_faster.py", "legacy/airbench96.py"],
    "nanochat-d12": ["README.md", "pyproject.toml", "nanochat/__init__.py", "nanochat/gpt.py", "nanochat/optim.py",
                     "nanochat/dataloader.py", "nanochat/flash_attention.py", "nanochat/fp8.py",
                     "nanochat/core_eval.py", "nanochat/loss_eval.py", "nanochat/checkpoint_manager.py",
                     "nanochat/common.py", "nanochat/tokenizer.py", "nanochat/dataset.py", "scripts/base_train.py",
                     "scripts/base_eval.py", "tasks/arc.py", "dev/LEADERBOARD.md"],
    "parameter-golf": ["README.md", "requirements.txt", "train_gpt.py", "train_gpt_mlx.py",
                       "data/cached_challenge_fineweb.py", "data/README.md",
                       "records/track_10min_16mb/2026-03-17_NaiveBaseline/README.md"],
}
GIT_ENV = {"GIT_AUTHOR_NAME": "stand-in", "GIT_AUTHOR_EMAIL": "s@example.org",
           "GIT_COMMITTER_NAME": "stand-in", "GIT_COMMITTER_EMAIL": "s@example.org"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def evaluator_module(recipe: str, file: str):
    path = RECIPES_ROOT / recipe / "eval" / file
    spec = importlib.util.spec_from_file_location(f"test_{recipe.replace('-', '_')}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # sibling helpers import while it loads, as the harness does
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))


# -- specs -------------------------------------------------------------------------


@pytest.mark.parametrize("name", GPU_RECIPES)
def test_gpu_recipe_specs_validate_and_document_themselves(name):
    recipe = load_recipe(name)
    spec = recipe.spec
    assert spec.name == name and spec.budgets.gpus >= 1
    assert set(spec.specialists) == SPECIALISTS[name]
    assert (recipe.folder / "README.md").is_file() and (recipe.folder / "Dockerfile").is_file()
    assert spec.sandbox.dockerfile == "Dockerfile"
    assert "{eval}" in spec.phases.eval
    readme = (recipe.folder / "README.md").read_text()
    if name in GIT_RECIPES:
        assert isinstance(spec.source, GitSource) and re.fullmatch(r"[0-9a-f]{40}", spec.source.commit)
        assert spec.source.commit in readme and spec.source.url in readme
        assert spec.phases.train == "python {data}/harness_train.py"
        assert (recipe.evaluator_dir / "harness_train.py").is_file()


def test_airbench96_rules():
    spec = load_recipe("airbench96").spec
    assert (spec.metric.name, spec.metric.direction.value) == ("train_wallclock_s", "minimize")
    [gate] = spec.gates
    n = len(spec.fidelities[spec.default_fidelity].seeds)
    assert (gate.metric, gate.op, gate.threshold, gate.min_seeds) == ("acc", ">=", 0.96, n) and n >= 3
    assert "train_wallclock_s" in evaluator_module("airbench96", "score.py").score.__code__.co_varnames


def test_parameter_golf_rules():
    spec = load_recipe("parameter-golf").spec
    assert (spec.metric.name, spec.metric.direction.value) == ("val_bpb", "minimize")
    [gate] = spec.gates
    assert (gate.metric, gate.op, gate.threshold, gate.on_miss) == ("artifact_bytes", "<=", 16_000_000, "size_failure")
    assert spec.editable == ["train_gpt.py"] and spec.budgets.eval_wallclock_s == 600
    assert spec.fidelities["full"].env["MAX_WALLCLOCK_SECONDS"] == "600" and spec.budgets.train_wallclock_s > 600


def test_nanochat_evaluator_takes_upstream_code_at_the_recipes_pin():
    spec = load_recipe("nanochat-d12").spec
    prepare = evaluator_module("nanochat-d12", "prepare.py")
    assert (prepare.UPSTREAM_URL, prepare.UPSTREAM_COMMIT) == (spec.source.url, spec.source.commit)
    for rel in prepare.PRISTINE_FILES:
        assert not spec.is_editable(rel)
    assert (spec.metric.name, spec.metric.direction.value) == ("core", "maximize")


def test_collision_vjepa_uses_the_cpu_recipes_evaluator_byte_for_byte():
    for file in ("score.py", "predict.py"):
        assert (RECIPES_ROOT / "collision-vjepa" / "eval" / file).read_bytes() == \
            (RECIPES_ROOT / "collision" / "eval" / file).read_bytes(), file
    assert load_recipe("collision-vjepa").spec.metric == load_recipe("collision").spec.metric


# -- stand-in upstreams --------------------------------------------------------------


def stand_in_upstream(root: Path, name: str) -> tuple[Path, str]:
    repo = root / f"upstream-{name}"
    repo.mkdir(parents=True)
    git(repo, "init", "-q")
    for rel in UPSTREAM_LAYOUT[name]:
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# stand-in for upstream's file\n" if rel.endswith(".py") else "stand-in\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "stand-in at the pin")
    pinned = git(repo, "rev-parse", "HEAD")
    (repo / "LATER").write_text("after the pin\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "later")
    return repo, pinned


def recipe_pinned_to(root: Path, name: str, url: str, commit: str) -> Path:
    folder = root / "recipes" / name
    shutil.copytree(RECIPES_ROOT / name, folder, ignore=shutil.ignore_patterns("__pycache__"))
    toml = folder / "recipe.toml"
    real = load_recipe(name).spec.source
    text = toml.read_text().replace(real.url, url).replace(real.commit, commit)
    toml.write_text(text)
    return folder


@pytest.mark.parametrize("name", GIT_RECIPES)
def test_git_recipe_materializes_from_upstream_and_check_reports_the_gpu_gap(monkeypatch, name):
    spec = load_recipe(name).spec
    use_bundles(monkeypatch, [spec.source.url])
    source = load_recipe(name).source_dir
    assert git(source, "rev-parse", "HEAD") == spec.source.commit
    files = {str(p.relative_to(source)) for p in source.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert set(UPSTREAM_LAYOUT[name]) <= files, set(UPSTREAM_LAYOUT[name]) - files

    report = check_recipe(name, gpus_available=0)
    got = {item.name: item for item in report.items}
    assert report.ok, report.items
    assert [got[n].status for n in ("spec", "evaluator", "source", "surface", "isolation", "upstream")] == ["ok"] * 6
    assert f"at {spec.source.commit} (HEAD verified)" in got["source"].detail
    assert got["baseline"].status == "skipped" and "GPU" in got["baseline"].detail
    assert any("data preparation" in w for w in report.not_run) and not report.runs


def test_git_recipe_check_through_the_cli_on_upstream(monkeypatch):
    env = use_bundles(monkeypatch, [load_recipe("parameter-golf").spec.source.url])
    result = subprocess.run([sys.executable, "-m", "harness.cli", "recipe", "check", "parameter-golf"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, **env, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped" in result.stdout and "needs 8 GPU(s)" in result.stdout and "not run:" in result.stdout


def test_an_upstream_that_renamed_a_flag_fails_the_upstream_check(tmp_path):
    """A copy of upstream at the pin with one flag renamed: the check names the flag and the file."""
    source = load_recipe("nanochat-d12").spec.source
    repo = tmp_path / "renamed"
    subprocess.run(["git", "clone", "-q", str(bundle_for(source.url)), str(repo)], capture_output=True)
    if not (repo / "scripts" / "base_train.py").is_file():
        pytest.skip(f"no upstream bundle for {source.url}")
    train = repo / "scripts" / "base_train.py"
    train.write_text(train.read_text().replace('"--depth"', '"--n-layer"'))
    shutil.rmtree(repo / "tasks")
    git(repo, "checkout", "-q", "-b", "renamed")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "rename --depth")
    folder = recipe_pinned_to(tmp_path, "nanochat-d12", repo.as_uri(), git(repo, "rev-parse", "HEAD"))
    report = check_recipe(str(folder), gpus_available=0)
    upstream = next(i for i in report.items if i.name == "upstream")
    assert not report.ok and upstream.status == "fail"
    assert "scripts/base_train.py has no \'\"--depth\"\'" in upstream.detail and "no folder tasks/" in upstream.detail


def test_git_recipe_with_a_pin_upstream_lacks_fails_the_source_check(tmp_path):
    repo, _ = stand_in_upstream(tmp_path, "airbench96")
    missing = "f" * 40
    report = check_recipe(str(recipe_pinned_to(tmp_path, "airbench96", repo.as_uri(), missing)), gpus_available=0)
    source = next(i for i in report.items if i.name == "source")
    assert not report.ok and source.status == "fail" and missing in source.detail


# -- evaluators on CPU ------------------------------------------------------------------


def fake_cifar(folder: Path, n_train_per_batch: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    test_images = None
    for name, n in [(f"data_batch_{i}", n_train_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).tolist()
        planes = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # the archive stores channel planes
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": planes, b"labels": labels}, f)
        if name == "test_batch":
            test_images, test_labels = images, np.array(labels)
    return test_images, test_labels


def test_airbench96_prepare_lays_out_cifar_for_the_phases(tmp_path, monkeypatch):
    import torch

    prepare = evaluator_module("airbench96", "prepare.py")
    monkeypatch.setattr(prepare, "N_TRAIN", 20)
    monkeypatch.setattr(prepare, "N_TEST", 6)
    test_images, test_labels = fake_cifar(tmp_path / "cifar-10-batches-py", 4, 6)
    monkeypatch.setenv("HARNESS_AIRBENCH96_DATA", str(tmp_path))
    train, inputs, labels = tmp_path / "train", tmp_path / "inputs", tmp_path / "labels"
    prepare.prepare(train, inputs, labels)
    data = torch.load(train / "train.pt")
    assert data["images"].shape == (20, 32, 32, 3) and data["images"].dtype == torch.uint8 and len(data["classes"]) == 10
    assert torch.load(train / "test_placeholder.pt")["images"].shape == (0, 32, 32, 3)  # no test image in training
    assert (train / "harness_train.py").read_bytes() == (RECIPES_ROOT / "airbench96/eval/harness_train.py").read_bytes()
    assert np.array_equal(np.load(inputs / "test_images.npy"), test_images)
    assert sorted(p.name for p in inputs.iterdir()) == ["test_images.npy"]
    assert np.array_equal(np.load(labels / "test_labels.npy"), test_labels)


# 10,000 test images at `full`; 500 at `cpu`, whose size the score takes from the labels.
@pytest.mark.parametrize(("images", "wrong", "acc"), [(10_000, 300, 0.97), (500, 10, 0.98)])
def test_airbench96_score_is_the_host_wallclock_and_accuracy(tmp_path, images, wrong, acc):
    score = evaluator_module("airbench96", "score.py")
    labels = np.arange(images) % 10
    np.save(tmp_path / "test_labels.npy", labels)
    preds = labels.copy()
    preds[:wrong] = (preds[:wrong] + 1) % 10
    np.save(tmp_path / "preds.npy", preds)
    assert score.score(tmp_path, tmp_path, train_wallclock_s=31.5) == {"train_wallclock_s": 31.5, "acc": acc}
    np.save(tmp_path / "preds.npy", preds[:100])
    with pytest.raises(ValueError, match=f"{images} predictions"):
        score.score(tmp_path, tmp_path, train_wallclock_s=31.5)


def synthetic_vjepa_data(root: Path) -> Path:
    """Features in the layout the recipe asks users for, from the CPU recipe's simulator (video backbone)."""
    sim = evaluator_module("collision", "prepare.py")
    for split, n, seed in (("train", 600, 1), ("heldout", 300, 2)):
        latents, labels = sim.sample_latents(np.random.default_rng(seed), n)
        feats = sim.backbone_features(latents, "vjepa_l", np.random.default_rng(seed + 10)).astype(np.float16)
        (root / split).mkdir(parents=True)
        np.save(root / split / "features.npy", feats)
        np.save(root / split / "labels.npy", labels)
    (root / "meta.json").write_text(json.dumps({"backbone": "simulated vjepa_l (test)"}))
    return root


def test_collision_vjepa_prepare_validates_user_features(tmp_path, monkeypatch):
    prepare = evaluator_module("collision-vjepa", "prepare.py")
    data = synthetic_vjepa_data(tmp_path / "user")
    monkeypatch.setenv("HARNESS_COLLISION_VJEPA_DATA", str(data))
    train, inputs, labels = tmp_path / "train", tmp_path / "inputs", tmp_path / "labels"
    prepare.prepare(train, inputs, labels)
    assert sorted(p.name for p in inputs.iterdir()) == ["features.npy", "meta.json"]
    assert json.loads((train / "meta.json").read_text())["frames"] == 24
    assert "positives" not in json.loads((inputs / "meta.json").read_text())  # a statistic of the labels
    assert np.load(labels / "labels.npy").shape == (300,)
    bad = np.load(data / "heldout" / "features.npy")
    bad[3, 2, 1] = np.nan
    np.save(data / "heldout" / "features.npy", bad)
    with pytest.raises(ValueError, match="NaN"):
        prepare.prepare(train, inputs, labels)
    monkeypatch.delenv("HARNESS_COLLISION_VJEPA_DATA")
    with pytest.raises(ValueError, match="HARNESS_COLLISION_VJEPA_DATA"):
        prepare.prepare(train, inputs, labels)


@pytest.mark.e2e
def test_collision_vjepa_runs_on_a_cpu_with_synthetic_features(tmp_path):
    data = synthetic_vjepa_data(tmp_path / "user")
    env = {**os.environ, "HARNESS_COLLISION_VJEPA_DATA": str(data)}
    run = subprocess.run([sys.executable, "-m", "harness.cli", "run", "collision-vjepa", "--trials", "2",
                          "--fidelity", "smoke", "--out", str(tmp_path / "runs"), "--run-id", "v"],
                         capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    replay = subprocess.run([sys.executable, "-m", "harness.cli", "replay", str(tmp_path / "runs" / "v"), "--json"],
                            capture_output=True, text=True, timeout=300)
    report = json.loads(replay.stdout)
    assert replay.returncode == 0 and report["verified"], report["problems"]
    assert report["trials"][0]["label"] == "keep" and 0.28 < report["trials"][0]["score"] <= 1.0
