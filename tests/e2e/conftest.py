"""Whole runs through the CLI: helpers to call `harness`, write proposals and tamper with lineages."""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.recipe_loader import RECIPES_ROOT

COLLISION_SRC = RECIPES_ROOT / "collision" / "src"


def harness(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the `harness` command as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def git(run_dir: Path, *args: str, **kwargs) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "mallory", "GIT_AUTHOR_EMAIL": "m@x",
           "GIT_COMMITTER_NAME": "mallory", "GIT_COMMITTER_EMAIL": "m@x"}
    return subprocess.run(["git", "-C", str(run_dir), *args], check=True, capture_output=True,
                          text=True, env=env, **kwargs).stdout.strip()


def edit_diff(path: str, old: str, new: str) -> str:
    """A git-style unified diff turning `old` into `new` for `path`."""
    body = difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}", n=3)
    return f"diff --git a/{path} b/{path}\n" + "".join(body)


def src(path: str) -> str:
    return (COLLISION_SRC / path).read_text()


def set_knob(text: str, name: str, value: object) -> str:
    return re.sub(rf"^{name} = [^#\n]*?(\s*#|$)", lambda m: f"{name} = {value!r}{m.group(1)}", text,
                  count=1, flags=re.M)


def insert_after_imports(text: str, code: str) -> str:
    """Put `code` right after `from model import ...` (train.py's last import)."""
    anchor = "from model import build_model, loss_fn\n"
    assert anchor in text
    return text.replace(anchor, anchor + code, 1)


def write_proposals(path: Path, proposals: list[dict]) -> Path:
    path.write_text("".join(json.dumps(p) + "\n" for p in proposals))
    return path


@pytest.fixture(scope="session")
def fast_recipe(tmp_path_factory) -> Path:
    """The collision recipe with a 25 s train budget, so a timeout test waits 25 s, not 60."""
    folder = tmp_path_factory.mktemp("recipes") / "collision"
    shutil.copytree(RECIPES_ROOT / "collision", folder, ignore=shutil.ignore_patterns("__pycache__"))
    toml = folder / "recipe.toml"
    text = toml.read_text()
    text, n = re.subn(r"^train_wallclock_s = .*$", "train_wallclock_s = 25", text, flags=re.M)
    assert n == 1
    toml.write_text(text)
    return folder


def scripted_proposals() -> list[dict]:
    config = src("config.py")
    better = set_knob(set_knob(config, "BACKBONE", "vjepa_l"), "ENCODER", "gru")
    train = src("train.py")
    return [
        {"hypothesis": "V-JEPA features and a GRU see the approach dynamics",
         "diff": edit_diff("config.py", config, better)},
        {"hypothesis": "Crash on purpose",
         "diff": edit_diff("train.py", train, insert_after_imports(train, "raise RuntimeError('boom')\n"))},
        {"hypothesis": "Train forever",
         "diff": edit_diff("train.py", train, insert_after_imports(train, "import time\ntime.sleep(600)\n"))},
        {"hypothesis": "Peek into the data loader",
         "diff": edit_diff("data.py", src("data.py"), src("data.py") + "\nLEAK = True\n")},
        {"hypothesis": "A diff against code that does not exist",
         "diff": "diff --git a/model.py b/model.py\n--- a/model.py\n+++ b/model.py\n"
                 "@@ -1,2 +1,2 @@\n-this line is not in model.py\n+nor is this one\n context\n"},
    ]


EXPECTED_LABELS = ["keep", "keep", "crash", "budget_overrun", "illegal_edit", "apply_failed"]


@pytest.fixture(scope="session")
def scripted_run(tmp_path_factory, fast_recipe) -> Path:
    """One scripted run (baseline + the five proposals above), shared read-only by tests."""
    base = tmp_path_factory.mktemp("scripted")
    proposals = write_proposals(base / "proposals.jsonl", scripted_proposals())
    result = harness("run", fast_recipe, "--agent", "scripted", "--proposals", proposals,
                     "--trials", "10", "--fidelity", "smoke", "--out", base / "runs", "--run-id", "r")
    assert result.returncode == 0, result.stdout + result.stderr
    return base / "runs" / "r"


@pytest.fixture
def run_copy(scripted_run, tmp_path) -> Path:
    """A private copy of the scripted run to tamper with."""
    dest = tmp_path / "r"
    shutil.copytree(scripted_run, dest, symlinks=True)
    return dest


def replay_json(run_dir: Path) -> tuple[int, dict]:
    result = harness("replay", run_dir, "--verify", "--json")
    return result.returncode, json.loads(result.stdout)


def cpu_check_on_upstream(recipe: str, commit: str) -> dict:
    """`harness recipe check RECIPE --fidelity cpu` on the local sandbox, one repeat: asserts it
    passed, that upstream conformance held, that the source came from `commit` and that the
    baseline item is ok or a warning; returns the baseline run of the JSON report."""
    result = harness("recipe", "check", recipe, "--fidelity", "cpu", "--sandbox", "local", "--repeats", "1", "--json",
                     timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    items = {item["name"]: item for item in report["items"]}
    assert items["upstream"]["status"] == "ok" and commit in items["source"]["detail"]
    assert re.match(r"ok|warn", items["baseline"]["status"])
    [run] = report["runs"]
    return run
