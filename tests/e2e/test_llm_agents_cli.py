"""`harness run --agent anthropic|openai` end to end through the CLI, against a local
server that speaks both protocols; no API key may reach the run directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fakes"))
from llm_server import start_collision_server  # noqa: E402

from conftest import replay_json  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "trajectories"))
from lineage_helpers import edit_json, ledger_append, ledger_rewrite, show  # noqa: E402

from trajectories.lineage import record_path  # noqa: E402
from trajectories.transcripts import transcript_path  # noqa: E402

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


def test_a_team_mixing_both_providers_lands_with_per_specialist_costs(tmp_path):
    fake = start_collision_server()
    team = tmp_path / "team.toml"
    team.write_text(f"""
[specialists.arch]
provider = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{fake.anthropic_base_url}"
thinking_budget = 2048

[specialists.opt]
provider = "openai"
model = "gpt-5-mini"
base_url = "{fake.openai_base_url}"
reasoning_effort = "low"
focus.files = ["config.py"]
focus.brief = "Only the hyperparameters in config.py."
""")
    try:
        env = {**os.environ, "ANTHROPIC_API_KEY": PLANTED}
        result = run_cli("run", "--team", team, "--fidelity", "smoke", "--trials", "2", "--out", tmp_path,
                         "--run-id", "t", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert fake.refused == [] and len(fake.requests) == 6
        protocols = [r.protocol for r in fake.requests]
        assert protocols == ["anthropic"] * 3 + ["openai"] * 3
        assert all(r.body["thinking"]["budget_tokens"] == 2048 for r in fake.requests[:3])
        assert all(r.body["reasoning_effort"] == "low" for r in fake.requests[3:])
        assert "Only the hyperparameters in config.py." in fake.requests[3].prompt()
    finally:
        fake.stop()
    out = result.stdout
    assert "model usage: 5,400 input + 860 output tokens" in out
    sonnet = (2700 * 3 + 430 * 15) / 1e6  # $3 / $15 per million
    mini = (2700 * 0.25 + 430 * 2) / 1e6  # $0.25 / $2 per million
    assert f"  arch: anthropic claude-sonnet-4-5, 1 proposals, 2,700 input + 430 output tokens, ${sonnet:.4f}" in out
    assert f"  opt: openai gpt-5-mini, 1 proposals, 2,700 input + 430 output tokens, ${mini:.4f}" in out
    run_dir = tmp_path / "t"
    code, report = replay_json(run_dir)
    assert code == 0, report["problems"]
    assert [(t["agent"], t["specialist"]) for t in report["trials"][1:]] == [("anthropic", "arch"), ("openai", "opt")]
    assert_no_key(run_dir)
    check_transcripts_and_notes(run_dir, tmp_path)


def check_transcripts_and_notes(run_dir: Path, tmp_path: Path) -> None:
    """Each session's transcript is stored with its proposal, printed by replay, and covered by
    --verify; the notes (the run notebook) are in the records, and later sessions were shown them."""
    printed = run_cli("replay", run_dir, "--trial", "t0001", "--transcript", env=dict(os.environ))
    assert printed.returncode == 0, printed.stderr
    events = [json.loads(line) for line in printed.stdout.splitlines()]
    assert events[0]["type"] == "session" and events[0]["model"] == "claude-sonnet-4-5"
    assert events[0]["settings"]["thinking_budget"] == 2048 and events[0]["specialist"] == "arch"
    assert [e["type"] for e in events[1:3]] == ["system", "user"]
    turns = [e for e in events if e["type"] == "assistant"]
    assert len(turns) == 3 and all(t["thinking"] == ["Weighing what to look at next."] for t in turns)
    assert [e["name"] for e in events if e["type"] == "tool_result"] == \
        ["list_files", "read_file", "check_edit", "note", "submit_trial"]
    assert events[-1]["type"] == "end" and events[-1]["reason"] == "submitted"
    assert events[-1]["usage"]["input_tokens"] == 2700
    note = show(run_dir, f"refs/heads/ledger:{record_path('t0001')}")
    assert json.loads(note)["trial"]["proposal"]["notes"][0].startswith("trial 1: ")
    opening = run_cli("replay", run_dir, "--trial", "t0002", "--transcript", env=dict(os.environ)).stdout
    assert "# Run notebook" in opening and "- t0001 [arch]: trial 1: " in opening

    edited = tmp_path / "edited"
    shutil.copytree(run_dir, edited)
    ledger_rewrite(edited, transcript_path("t0002", "jsonl"), lambda data: data.replace(b"gpt-5-mini", b"gpt-5"))
    code, report = replay_json(edited)
    assert code != 0 and any("t0002" in p and "transcript" in p for p in report["problems"]), report["problems"]

    renoted = tmp_path / "renoted"
    shutil.copytree(run_dir, renoted)
    record = show(renoted, f"refs/heads/ledger:{record_path('t0001')}")
    ledger_append(renoted, {record_path("t0001"): edit_json(["trial", "proposal", "notes"], ["made up"])(record)},
                  "edit\n\nEvent: outcome\nTrial-Id: t0001\nTrial-Commit: " + "0" * 40 + "\n")
    code, report = replay_json(renoted)
    assert code != 0 and any("t0001" in p for p in report["problems"]), report["problems"]


@pytest.mark.parametrize("text,message", [
    ('[specialists.arch]\nprovider = "gemini"\n', "specialists.arch: Input tag 'gemini' found using 'provider'"),
    ('[specialists.arch]\nprovider = "openai"\nthinking_budget = 4096\n',
     "specialists.arch.thinking_budget: Extra inputs are not permitted"),
    ('[specialists.arch]\nprovider = "anthropic"\nthinking_budget = 10\n',
     "specialists.arch.thinking_budget: Input should be greater than or equal to 1024"),
    ('[specialists.loss]\nprovider = "anthropic"\nbase_url = "http://127.0.0.1:9"\n',
     "specialists.loss: recipe 'collision' has no specialist 'loss', so give focus.files"),
    ('[specialists.arch]\nprovider = "anthropic"\nbase_url = "http://127.0.0.1:9"\nfocus.files = ["data.py"]\n',
     "specialists.arch.focus.files: data.py is not on the recipe's editable surface"),
    ("[specialists]\n", "specialists: Dictionary should have at least 1 item"),
    ("[specialists.arch\n", "not valid TOML"),
])
def test_a_bad_team_file_is_refused_with_a_clear_error(tmp_path, text, message):
    team = tmp_path / "team.toml"
    team.write_text(text)
    out = tmp_path / "runs"
    result = run_cli("run", "--team", team, "--out", out, env=dict(os.environ))
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert not out.exists()
