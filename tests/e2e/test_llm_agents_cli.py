"""`harness run --agent anthropic|openai` end to end through the CLI, against a local
server that speaks both protocols; no API key may reach the run directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fakes"))
from llm_server import start_collision_server  # noqa: E402

from conftest import replay_json  # noqa: E402

PLANTED = "sk-planted-e2e-0123456789abcdef"


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env)


def assert_no_key(run_dir: Path) -> None:
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert PLANTED.encode() not in path.read_bytes(), path
    objects = subprocess.run(["git", "-C", str(run_dir), "cat-file", "--batch-all-objects", "--batch"],
                             capture_output=True, check=True).stdout
    assert PLANTED.encode() not in objects


@pytest.mark.parametrize("provider,key_var", [("anthropic", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY")])
def test_llm_agent_run_resume_and_audit(provider, key_var, tmp_path):
    fake = start_collision_server()
    try:
        env = {**os.environ, key_var: PLANTED}
        base_url = fake.anthropic_base_url if provider == "anthropic" else fake.openai_base_url
        args = ["run", "--agent", provider, "--base-url", base_url, "--fidelity", "smoke",
                "--specialists", "arch,opt", "--out", tmp_path, "--run-id", "r"]
        first = run_cli(*args[:-4], "--trials", "2", "--out", tmp_path, "--run-id", "r", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert len(fake.requests) == 6  # a session of three turns per proposal
        assert "model usage:" in first.stdout
        resumed = run_cli("run", "--resume", tmp_path / "r", "--agent", provider, "--base-url", base_url,
                          "--specialists", "arch,opt", "--fidelity", "smoke", "--trials", "1", env=env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert len(fake.requests) == 9
    finally:
        fake.stop()
    code, report = replay_json(tmp_path / "r")
    assert code == 0, report["problems"]
    trials = report["trials"][1:]
    assert [t["agent"] for t in trials] == [provider] * 3
    assert [t["specialist"] for t in trials] == ["arch", "opt", "arch"]
    assert all(t["label"] in ("keep", "not_improved") for t in trials)
    assert_no_key(tmp_path / "r")


def test_unknown_specialist_is_refused_before_anything_is_created(tmp_path):
    result = run_cli("run", "--agent", "random", "--specialists", "vision", "--out", tmp_path,
                     env=dict(os.environ))
    assert result.returncode == 2 and "no specialist vision" in result.stderr
    assert not any(tmp_path.iterdir())


def test_llm_option_on_an_offline_agent_is_refused(tmp_path):
    result = run_cli("run", "--agent", "random", "--model", "gpt-5", "--out", tmp_path, env=dict(os.environ))
    assert result.returncode == 2 and "does not take the option 'model'" in result.stderr
