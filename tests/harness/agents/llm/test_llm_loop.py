"""The LLM agents inside the real trial loop (local sandbox, collision recipe at smoke fidelity)."""

from __future__ import annotations

import subprocess

import pytest

from harness.agents.base import AGENTS, make_agent
from harness.agents.llm import LLM_AGENT_NAMES
from harness.loop import Run
from harness.recipe_loader import load_recipe
from llm_helpers import PLANTED_KEY
from llm_server import ToolCall, start_collision_server
from sandboxes import make_sandbox


class Quiet:
    def trial_started(self, trial) -> None:
        pass

    def trial_finished(self, record, best) -> None:
        pass

    def note(self, text: str) -> None:
        pass


def test_llm_agent_names_are_registered():
    assert LLM_AGENT_NAMES <= set(AGENTS)


@pytest.mark.parametrize("provider", ["anthropic"])  # ~30 s a run; the protocols are covered in test_llm_agents
def test_a_run_learns_from_its_lineage_and_keeps_no_key(provider, tmp_path, monkeypatch):
    monkeypatch.setenv(f"{provider.upper()}_API_KEY", PLANTED_KEY)
    fake = start_collision_server()
    bad = {"hypothesis": "Edit a line that is not there", "expected_delta": 0.1,
           "edits": [{"file": "config.py", "search": "NO SUCH LINE", "replace": "x"}]}
    fake.push(*[ToolCall(bad)] * 3)  # t0001: never applies -> apply_failed; then good edits
    run_dir = tmp_path / "run"
    base_url = fake.anthropic_base_url if provider == "anthropic" else fake.openai_base_url
    try:
        agent = make_agent(provider, proposals_file=None, seed=0, base_url=base_url,
                           cache_dir=run_dir / ".harness" / "llm-cache")
        run = Run.create(load_recipe("collision"), run_dir, agent=agent, sandbox=make_sandbox("local"),
                         reporter=Quiet(), seed=0, fidelity="smoke")
        try:
            run.run(2)
            records = run.lineage.records()
        finally:
            run.close()
    finally:
        fake.stop()

    labels = [r.outcome.label.value for r in records]
    assert labels[:2] == ["keep", "apply_failed"]
    assert labels[2] in ("keep", "not_improved")
    t2 = records[2].trial.proposal
    assert t2.agent == provider and t2.usage.input_tokens == 2700 and t2.model == agent.model
    # the session of t0002 (three turns) opened with the failure of t0001
    assert len(fake.requests) == 6
    prompt = fake.requests[3].prompt()
    system = fake.requests[0].body["system"][0]["text"]  # the recipe's knowledge files reach the brief
    assert "## Recipe knowledge: knowledge/rules.md" in system and "vjepa_l + tcn" in system
    assert "### t0001 <- t0000: FAIL apply_failed" in prompt
    assert "evaluator: " in prompt and "submit_trial was rejected 3 times" in prompt
    # the key reached the server's auth header only: not the lineage (objects included) nor the scratch space
    objects = subprocess.run(["git", "-C", str(run_dir), "cat-file", "--batch-all-objects", "--batch"],
                             capture_output=True, check=True).stdout
    assert b"apply_failed" in objects and PLANTED_KEY.encode() not in objects
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert PLANTED_KEY.encode() not in path.read_bytes(), path
    assert sorted(p.name for p in (run_dir / ".harness" / "llm-cache").iterdir()) == ["t0001.json", "t0002.json"]
