"""`replay --rerun` writes the run (evaluator copy, data, trial scratch, refs/heads/replays), so it
holds the run lock as `run` and `--resume` do: refused while another process holds it, and
held for the whole re-execution."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.loop import RunError, take_run_lock
from harness.recipe_loader import load_recipe
from harness.rerun import RerunError, rerun_trials
from harness.trial_exec import RunPaths
from sandboxes.local import LocalSandbox


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def git(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(run_dir), *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rerun-lock")
    made = cli("run", "collision", "--trials", "0", "--fidelity", "smoke", "--sandbox", "local",
               "--out", out, "--run-id", "r")
    assert made.returncode == 0, made.stdout + made.stderr
    return out / "r"


class LockProbingSandbox:
    """The local sandbox, trying the run lock whenever a phase starts."""

    def __init__(self, run_dir: Path) -> None:
        self.inner = LocalSandbox()
        self.paths = RunPaths(run_dir)
        self.lock_free_during: list[str] = []
        self.lock_held_during: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def run(self, request):
        try:
            os.close(take_run_lock(self.paths))
            self.lock_free_during.append(request.phase)
        except RunError:
            self.lock_held_during.append(request.phase)
        return self.inner.run(request)


def test_a_rerun_is_refused_while_the_run_lock_is_held(baseline_run):
    fd = take_run_lock(RunPaths(baseline_run))
    try:
        result = cli("replay", baseline_run, "--rerun", "t0000", "--rerun-seeds", "1", "--sandbox", "local")
    finally:
        os.close(fd)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "lock held" in result.stderr and "rerun once it has stopped" in result.stderr
    assert "Traceback" not in result.stderr
    assert git(baseline_run, "rev-parse", "--verify", "-q", "refs/heads/replays").returncode != 0
    assert not (baseline_run / ".harness" / "trials" / "rerun-t0000").exists()


def test_the_run_lock_is_held_for_the_whole_rerun_and_released_after(baseline_run):
    sandbox = LockProbingSandbox(baseline_run)
    report = rerun_trials(baseline_run, load_recipe("collision"), sandbox, ["t0000"], seeds=1)
    assert [v.trial for v in report.verdicts] == ["t0000"]
    assert sandbox.lock_free_during == [] and sandbox.lock_held_during == ["train", "eval"]
    assert git(baseline_run, "rev-parse", "--verify", "-q", "refs/heads/replays").returncode == 0
    os.close(take_run_lock(RunPaths(baseline_run)))  # released


def test_rerun_error_names_the_run(baseline_run):
    fd = take_run_lock(RunPaths(baseline_run))
    try:
        with pytest.raises(RerunError, match=f"another harness process is running on .*{baseline_run.name}"):
            rerun_trials(baseline_run, load_recipe("collision"), LocalSandbox(), ["t0000"], seeds=1)
    finally:
        os.close(fd)
