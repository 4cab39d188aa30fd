"""scripts/gpu-smoke.sh without a GPU: its dry run plans the right commands, writes
proposals that apply to each upstream at the pin, and the script is shellcheck-clean."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from harness.recipe_loader import RECIPES_ROOT, load_recipe
from upstream_bundles import use_bundles

SCRIPT = RECIPES_ROOT.parent / "scripts" / "gpu-smoke.sh"
GPU_RECIPES = ["nanochat-d12", "parameter-golf", "airbench96"]


def test_dry_run_plans_each_recipe_in_docker_with_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    env = use_bundles(monkeypatch, [load_recipe(n).spec.source.url for n in GPU_RECIPES])
    out = tmp_path / "smoke"
    result = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(out)], capture_output=True, text=True,
                            timeout=600, env={**os.environ, **env, "PYTHON": sys.executable, "GPU_SMOKE_GPUS": "2"})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("-m sandboxes.images bootstrap")
    for name in GPU_RECIPES:
        spec = load_recipe(name).spec
        level = "smoke" if "smoke" in spec.fidelities else spec.default_fidelity
        gpus = "0,1" if spec.budgets.gpus >= 2 else "0"
        assert any(line.endswith(f"-m sandboxes.images build recipes/{name}") for line in lines)
        [run] = [line for line in lines if f" run {name} " in line]
        assert f"--fidelity {level} --sandbox docker --gpus {gpus} --agent scripted" in run and "--trials 1" in run
        [proposal] = [json.loads(line) for line in (out / f"{name}.proposals.jsonl").read_text().splitlines()]
        check = subprocess.run(["git", "apply", "--check", "-"], input=proposal["diff"], text=True,
                               capture_output=True, cwd=load_recipe(name).source_dir)
        assert check.returncode == 0, check.stderr


def test_the_script_is_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
