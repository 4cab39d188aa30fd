"""A whole run with `--sandbox docker` through the CLI, on the live engine.

Skipped without an engine, except under CI=true where it must run (CI starts
dockerd and builds the images in .ci/run)."""

from __future__ import annotations

import json
import os

import pytest

from conftest import git, harness, replay_json
from sandboxes.images import engine_available

pytestmark = pytest.mark.skipif(
    not engine_available() and os.environ.get("CI") != "true", reason="no Docker engine answers"
)


def test_docker_run_records_image_and_limits_and_verifies(tmp_path):
    result = harness("run", "--sandbox", "docker", "--trials", "2", "--fidelity", "smoke",
                     "--out", tmp_path, "--run-id", "d")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sandbox=docker" in result.stdout
    code, report = replay_json(tmp_path / "d")
    assert code == 0, report["problems"]
    run_dir = tmp_path / "d"
    record_path = next(p for p in git(run_dir, "ls-tree", "-r", "--name-only", "ledger").split()
                       if p.endswith("/t0001.json"))
    outcome = json.loads(git(run_dir, "show", f"ledger:{record_path}"))["outcome"]
    assert outcome["image"].startswith("sha256:")
    train = next(p for p in outcome["phases"] if p["phase"] == "train")
    assert train["limits"]["network"] == "none" and train["limits"]["read_only_rootfs"] is True
