"""The agent interface: context, protocol, factory."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

import harness.agents
from harness.agents.base import AGENTS, Agent, AgentContext, AgentError, make_agent, proposal_seed

AGENTS_DIR = Path(harness.agents.__file__).parent


def test_known_agents_are_made(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"hypothesis": "h", "diff": ""}) + "\n")
    for name in ("random", "bayes", "scripted"):
        agent = make_agent(name, proposals_file=path if name == "scripted" else None, seed=3)
        assert agent.name == name
        assert isinstance(agent, Agent)
        assert agent.seed == 3


def test_unknown_agent_lists_the_known_ones():
    with pytest.raises(AgentError, match=r"unknown agent 'gpt'; known agents: anthropic, bayes, command, openai, random, scripted"):
        make_agent("gpt", proposals_file=None, seed=0)


def test_scripted_needs_a_file_and_others_refuse_one(tmp_path):
    with pytest.raises(AgentError, match="needs a proposals file"):
        make_agent("scripted", proposals_file=None, seed=0)
    with pytest.raises(AgentError, match="nope.jsonl"):
        make_agent("scripted", proposals_file=tmp_path / "nope.jsonl", seed=0)
    with pytest.raises(AgentError, match="does not take the option 'proposals_file'"):
        make_agent("random", proposals_file=tmp_path / "p.jsonl", seed=0)


def test_registry_entries_are_module_class():
    for name, target in AGENTS.items():
        module, _, cls = target.partition(":")
        assert module.startswith("harness.agents.") and cls, name


def test_optuna_is_imported_only_by_bayes():
    code = (
        "import sys\n"
        "from harness.agents import make_agent\n"
        "make_agent('random', proposals_file=None, seed=0)\n"
        "assert 'optuna' not in sys.modules, 'random imported optuna'\n"
        "make_agent('bayes', proposals_file=None, seed=0)\n"
        "assert 'optuna' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_agent_module_imports_evaluators():
    for path in AGENTS_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "evaluators" or n.startswith("evaluators.") for n in names), path
        assert "importlib" not in path.read_text() or path.name == "base.py"


def test_context_is_frozen_and_strict(lineage):
    ctx = lineage.ctx()
    with pytest.raises(pydantic.ValidationError):
        ctx.best = "t0001"
    with pytest.raises(pydantic.ValidationError):
        AgentContext(**{**ctx.__dict__, "extra": 1})
    assert ctx.reader("t0000")("config.py") == lineage.files["t0000"]["config.py"]
    assert ctx.record("t0000") is lineage.records[0]
    assert ctx.record("t0099") is None


def test_proposal_seed_is_stable_and_spread():
    assert proposal_seed(0, 1) == proposal_seed(0, 1)
    seeds = {proposal_seed(r, n) for r in range(5) for n in range(50)}
    assert len(seeds) == 250
    assert all(0 <= s < 2**63 for s in seeds)
