"""Team files: validation with the field named, per-member options, dispatch by specialist."""

from __future__ import annotations

import pytest

from harness.agents.base import AgentError, make_agent
from llm_server import ANTHROPIC_PATH, OPENAI_PATH, ToolCall

GOOD = {"hypothesis": "MLP head", "expected_delta": 0.02,
        "edits": [{"file": "config.py", "search": 'HEAD = "linear"', "replace": 'HEAD = "mlp"'}]}


def team_file(tmp_path, text: str):
    path = tmp_path / "team.toml"
    path.write_text(text)
    return path


def test_members_get_their_own_protocol_model_and_focus(tmp_path, server, lineage):
    path = team_file(tmp_path, f"""
[specialists.arch]
provider = "anthropic"
model = "claude-haiku-4-5"
base_url = "{server.anthropic_base_url}"
max_turns = 5

[specialists.heads]
provider = "openai"
model = "gpt-4.1-mini"
base_url = "{server.openai_base_url}"
temperature = 0.4
focus.files = ["config.py"]
focus.brief = "Heads and losses only."
""")
    team = make_agent("team", team_file=path, max_turns=30, thinking_budget=2048, reasoning_effort="low")
    arch, heads = team.members["arch"], team.members["heads"]
    assert team.specialists == ("arch", "heads")
    assert (arch.model, arch.limits.max_turns, arch.thinking_budget) == ("claude-haiku-4-5", 5, 2048)
    assert (heads.model, heads.limits.max_turns, heads.reasoning_effort, heads.temperature) == \
        ("gpt-4.1-mini", 30, "low", 0.4)
    assert heads.thinking_budget is None and arch.reasoning_effort is None  # the other protocol's defaults
    assert team.model == "arch=claude-haiku-4-5, heads=gpt-4.1-mini" and team.priced

    server.push(ToolCall(GOOD), ToolCall(GOOD))
    first = team.propose(lineage.ctx(specialist="arch"))
    second = team.propose(lineage.ctx(specialist="heads"))
    assert [r.path for r in server.requests] == [ANTHROPIC_PATH, OPENAI_PATH]
    assert (first.agent, first.specialist, first.model) == ("anthropic", "arch", "claude-haiku-4-5")
    assert (second.agent, second.specialist, second.model) == ("openai", "heads", "gpt-4.1-mini")
    system = server.requests[1].body["messages"][0]["content"]
    assert "## Your specialty: heads\nHeads and losses only.\nYou may edit only config.py." in system
    with pytest.raises(AgentError, match="has no specialist 'opt' \\(it has: arch, heads\\)"):
        team.propose(lineage.ctx(specialist="opt"))


def test_a_member_the_sdk_cannot_make_names_the_specialist(tmp_path, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    path = team_file(tmp_path, '[specialists.arch]\nprovider = "openai"\napi_key_env = "GEMINI_API_KEY"\n')
    with pytest.raises(AgentError, match="specialists.arch: --agent openai needs the API key in the environment "
                                         "variable GEMINI_API_KEY"):
        make_agent("team", team_file=path)


@pytest.mark.parametrize("text,message", [
    ('[specialists.arch]\nprovider = "openai"\nreasoning_effort = "max"\n',
     "specialists.arch.reasoning_effort: Input should be 'minimal', 'low', 'medium' or 'high'"),
    ('[specialists.arch]\nprovider = "openai"\ntemperature = 3\n',
     "specialists.arch.temperature: Input should be less than or equal to 2"),
    ('[specialists.arch]\nmodel = "x"\n', "specialists.arch: Unable to extract tag using discriminator 'provider'"),
    ('[specialist.arch]\nprovider = "openai"\n', "specialist: Extra inputs are not permitted"),
])
def test_bad_fields_are_named(tmp_path, text, message):
    with pytest.raises(AgentError, match="team.toml: .*" + message.replace("(", "\\(").replace(")", "\\)")):
        make_agent("team", team_file=team_file(tmp_path, text))
