"""Whole runs on a local Ray cluster (`harness run --cluster ray://...`), through the CLI.

The head (2 CPUs) is started by the tests and reached over Ray Client, as a
remote cluster would be. Trials ask Ray for 1 CPU each (`budgets.cpus = 1` in
a copy of the collision recipe), so `--parallel 2` runs two at once.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import harness, replay_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandboxes"))
from ray_head import free_port, require_ray, start_head, task_workers  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ray_head():
    require_ray()
    head = start_head(num_cpus=2)
    yield head
    head.stop()


@pytest.fixture(scope="module")
def one_cpu_recipe(fast_recipe, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ray-recipe") / "collision"
    shutil.copytree(fast_recipe, folder)
    toml = folder / "recipe.toml"
    text, n = re.subn(r"^memory_mb = 4096$", "memory_mb = 4096\ncpus = 1", toml.read_text(), flags=re.M)
    assert n == 1
    toml.write_text(text)
    return folder


def records(run_dir: Path):
    from trajectories.lineage import Lineage

    with Lineage.open(run_dir) as lineage:
        return {r.trial.id: r for r in lineage.records()}


def test_parallel_run_on_two_ray_workers_replays_clean(ray_head, one_cpu_recipe, tmp_path):
    result = harness("run", one_cpu_recipe, "--cluster", ray_head.address, "--parallel", "2", "--trials", "4",
                     "--fidelity", "smoke", "--seed", "1", "--out", tmp_path, "--run-id", "r")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sandbox=ray+local" in result.stdout
    run_dir = tmp_path / "r"
    code, report = replay_json(run_dir)
    assert code == 0 and report["verified"], report["problems"]
    assert [t["id"] for t in report["trials"]] == ["t0000", "t0001", "t0002", "t0003", "t0004"]
    assert all(t["label"] in ("keep", "not_improved") for t in report["trials"]), report["trials"]
    for record in records(run_dir).values():
        assert record.outcome.infra_errors == []
        assert [p.phase for p in record.outcome.phases] == ["train", "eval"]
    # The workspaces and outputs came back to the driver, where the trial scratch lives.
    assert (run_dir / ".harness" / "trials" / "t0001" / "out-0").is_dir()
    assert any((run_dir / ".harness" / "trials" / "t0001" / "preds-0").iterdir())


def test_lost_workers_are_retried_then_harness_error_and_the_run_replays_clean(ray_head, one_cpu_recipe, tmp_path):
    """t0001's first train worker is killed mid-phase once (the retry succeeds); every worker of
    t0002 is killed mid-phase (its retries run out: harness_error). The lineage names each lost attempt."""
    run = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(one_cpu_recipe), "--cluster", ray_head.address,
         "--trials", "2", "--fidelity", "smoke", "--out", str(tmp_path), "--run-id", "r"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    killed: dict[str, list[int]] = {"t0001": [], "t0002": []}

    def killer() -> None:
        while run.poll() is None:
            if not killed["t0001"]:
                killed["t0001"] += _kill(task_workers("ray::harness:t0001:train", busy=True), killed)
            killed["t0002"] += _kill(task_workers("ray::harness:t0002:", busy=True), killed)
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        output, _ = run.communicate(timeout=480)
    finally:
        if run.poll() is None:
            run.kill()
        thread.join()
    assert run.returncode == 0, output
    assert len(killed["t0001"]) == 1 and len(killed["t0002"]) == 3, (killed, output)
    assert "t0001: infrastructure error (attempt 1: SandboxError: harness:t0001:train" in output

    by_id = records(tmp_path / "r")
    first = by_id["t0001"].outcome
    assert first.label.value in ("keep", "not_improved"), first.explanation
    assert len(first.infra_errors) == 1
    assert "WorkerCrashedError" in first.infra_errors[0]
    assert f"worker pid {killed['t0001'][0]}" in first.infra_errors[0]

    second = by_id["t0002"].outcome
    assert second.label.value == "harness_error"
    assert "not the proposal's fault" in second.explanation
    assert [e.split(":")[0] for e in second.infra_errors] == ["attempt 1", "attempt 2", "attempt 3"]
    for error, pid in zip(second.infra_errors, killed["t0002"]):
        assert f"worker pid {pid}" in error and "Ray lost the phase" in error

    code, report = replay_json(tmp_path / "r")
    assert code == 0 and report["verified"], report["problems"]
    assert [t["label"] for t in report["trials"]][2] == "harness_error"
    shown = harness("show", tmp_path / "r", "t0002").stdout
    assert shown.count("infrastructure error, re-run: attempt") == 3, shown


def _kill(pids: list[int], killed: dict[str, list[int]]) -> list[int]:
    """SIGKILL the pids not killed before (a killed worker can take a moment to die under load)."""
    done = {pid for pids_of_trial in killed.values() for pid in pids_of_trial}
    new = [pid for pid in pids if pid not in done]
    for pid in new:
        os.kill(pid, signal.SIGKILL)
    return new


# -- clear errors, no cluster needed -----------------------------------------


def test_no_cluster_answering_is_one_error_line(tmp_path):
    require_ray()
    address = f"ray://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = harness("run", "--cluster", address, "--trials", "1", "--out", tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip().splitlines()[0]]
    assert result.stderr.startswith(f"error: no Ray cluster answers at {address}")
    assert "Traceback" not in result.stdout + result.stderr
    assert time.monotonic() - started < 60
    assert not any(tmp_path.iterdir())  # nothing was created


def test_auto_follows_ray_address(tmp_path):
    require_ray()
    address = f"ray://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--cluster", "auto", "--trials", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, env={**os.environ, "RAY_ADDRESS": address},
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: no Ray cluster answers at {address}"), result.stderr


def test_without_ray_the_error_names_the_extra(tmp_path):
    # A `ray` package that fails to import, first on the path: what a machine without Ray sees.
    fake = tmp_path / "no-ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--cluster", "auto", "--trials", "1", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, env=env,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --cluster needs Ray on this machine: pip install 'harness[cluster]'"


def test_gpus_of_this_machine_are_refused_with_cluster(tmp_path):
    result = harness("run", "--cluster", "auto", "--gpus", "0,1", "--trials", "1", "--out", tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --gpus names GPUs of this machine; with --cluster Ray assigns GPUs")
    assert "--gpus-per-trial" in result.stderr
