"""Multi-turn research sessions through the real SDK clients, against the local fake server
(both wire formats): every tool, rejections, the caps, API failures mid-session, thinking,
caching, concurrency."""

from __future__ import annotations

import json
import threading
import time

import pytest

from harness.agents.base import AgentError, make_agent
from harness.types import PhaseUsage
from llm_helpers import FakeLineage, collision_tree
from llm_server import (
    ANTHROPIC_PATH,
    Calls,
    FakeLLMServer,
    Status,
    Text,
    ToolCall,
    anthropic_problem,
    collision_session,
    tool,
    trial_of,
)

PROVIDERS = ["anthropic", "openai"]

GOOD = {
    "hypothesis": "V-JEPA features carry motion",
    "expected_delta": 0.03,
    "edits": [{"file": "config.py", "search": 'BACKBONE = "resnet18"', "replace": 'BACKBONE = "vjepa_l"'}],
}
NOT_FOUND = {**GOOD, "edits": [{"file": "config.py", "search": 'BACKBONE = "resnet50"', "replace": "x"}]}


def make(provider: str, server, **options):
    base_url = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
    return make_agent(provider, proposals_file=None, seed=0, base_url=base_url, **options)


def tool_results(request) -> list[str]:
    """The tool results the newest message of `request` carries, in order (either protocol)."""
    messages = request.body["messages"]
    if request.path == ANTHROPIC_PATH:
        return [block["content"] for block in messages[-1]["content"] if block["type"] == "tool_result"]
    out = []
    for message in reversed(messages):
        if message["role"] != "tool":
            break
        out.append(message["content"])
    return list(reversed(out))


def history_lineage() -> FakeLineage:
    lin = FakeLineage(files=collision_tree())
    lin.add(hypothesis="GRU encoder, wider", label="crash", explanation="train exited with 1",
            diff="diff --git a/model.py b/model.py\n--- a/model.py\n+++ b/model.py\n@@ -1 +1 @@\n-a\n+b\n",
            phases=[PhaseUsage(phase="train", seed=0, wallclock_s=2.5, exit_code=1,
                               log_tail="Traceback (most recent call last):\nRuntimeError: shape mismatch 64 vs 128")])
    return lin


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_session_of_several_turns_uses_every_tool(provider, server):
    lin = history_lineage()
    server.push(
        Calls([tool("list_files"), tool("list_files", path="*.py")], text="Looking around."),
        Calls([tool("read_file", path="config.py"), tool("read_file", path="model.py", offset=3, limit=4),
               tool("read_file", path="data.py")]),
        Calls([tool("grep", pattern=r"^LR = "), tool("grep", pattern="(unclosed"), tool("show_trial", trial_id="t0001")]),
        tool("check_edit", **NOT_FOUND),
        Calls([tool("note", text="t0001 crashed on a width mismatch; keep HIDDEN in step with the encoder"),
               tool("check_edit", **GOOD)]),
        ToolCall(GOOD),
    )
    agent = make(provider, server)
    proposal = agent.propose(lin.ctx())
    assert server.refused == [] and server.pending() == 0 and len(server.requests) == 6
    assert proposal.failure is None and '+BACKBONE = "vjepa_l"' in proposal.diff
    assert proposal.notes == ["t0001 crashed on a width mismatch; keep HIDDEN in step with the encoder"]
    assert proposal.usage.input_tokens == 4 * 1000 + 500 + 1000 and agent.requests_made == 6

    listing, globbed = tool_results(server.requests[1])
    assert listing.startswith("5 files of trial t0000, 4 editable by you:")
    assert "config.py  (editable)" in listing and "\ndata.py\n" in listing + "\n"
    assert globbed.count("\n") == 5
    whole, page, protected = tool_results(server.requests[2])
    assert whole == lin.files["t0000"]["config.py"]  # verbatim, no line numbers
    model_lines = lin.files["t0000"]["model.py"].splitlines(keepends=True)
    assert page.startswith("".join(model_lines[2:6]))
    assert page.endswith(f"[harness: lines 3-6 of {len(model_lines)} of model.py; read_file with offset=7 for more]")
    assert protected == lin.files["t0000"]["data.py"]  # protected files can be read, not edited
    hit, bad_regex, shown = tool_results(server.requests[3])
    assert hit == "config.py:14: LR = 0.003"
    assert bad_regex.startswith(("not a valid Python regular expression", "ERROR: not a valid"))
    assert "FAIL crash" in shown and "RuntimeError: shape mismatch 64 vs 128" in shown and "+b" in shown
    (failed_check,) = tool_results(server.requests[4])
    assert "the edit would fail as apply_failed: edit 1 (config.py): the search text was not found" in failed_check
    noted, checked = tool_results(server.requests[5])
    assert noted.startswith("noted (1 notes")
    assert checked.startswith("ok: the edit applies to t0000") and '+BACKBONE = "vjepa_l"' in checked


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failing_check_then_a_rejected_submit_then_a_fixed_one(provider, server, lineage):
    server.push(tool("check_edit", **NOT_FOUND), ToolCall(NOT_FOUND), ToolCall(GOOD))
    proposal = make(provider, server).propose(lineage.ctx())
    assert proposal.failure is None and '+BACKBONE = "vjepa_l"' in proposal.diff
    (rejected,) = tool_results(server.requests[2])
    assert "submit_trial rejected (it would be labelled apply_failed)" in rejected
    assert "(2 rejections left before the session ends)" in rejected  # a check_edit is no rejection


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_turn_cap_ends_the_session_with_a_clear_failure(provider, server, lineage):
    server.push(*[tool("list_files")] * 3)
    proposal = make(provider, server, max_turns=3).propose(lineage.ctx())
    assert len(server.requests) == 3 and proposal.failure == "malformed_proposal"
    assert "session ended (max_turns): no accepted submit_trial within --max-turns 3" in proposal.failure_reason
    assert proposal.hypothesis.startswith("(no usable proposal from")
    assert "[harness: 2 turns left in this session: call submit_trial before" in tool_results(server.requests[1])[0]
    assert "[harness: 1 turn left in this session: call submit_trial before" in tool_results(server.requests[2])[0]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_cost_cap_ends_the_session(provider, server, lineage):
    server.push(*[ToolCall({"path": "config.py"}, name="read_file", usage=(1000, 200))] * 5)
    agent = make(provider, server, session_cost=0.012 if provider == "anthropic" else 0.004)
    proposal = agent.propose(lineage.ctx())
    assert len(server.requests) == 2  # each turn costs $0.010 (anthropic) / $0.00325 (openai)
    assert proposal.failure == "malformed_proposal" and "session ended (cost_cap)" in proposal.failure_reason
    assert "(--session-cost)" in proposal.failure_reason
    assert "of the session's $" in tool_results(server.requests[1])[0]  # warned before the end


def test_the_token_cap_ends_the_session(server, lineage):
    server.push(*[tool("list_files")] * 5)  # 550 tokens a turn
    proposal = make("openai", server, session_tokens=1500).propose(lineage.ctx())
    assert len(server.requests) == 3 and "session ended (token_cap)" in proposal.failure_reason


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_429_and_a_500_mid_session_are_retried_by_the_sdk(provider, server, lineage):
    server.push(tool("list_files"), Status(429, "slow down"), tool("read_file", path="config.py"),
                Status(500, "boom"), ToolCall(GOOD))
    proposal = make(provider, server, max_retries=2).propose(lineage.ctx())
    assert proposal.failure is None and len(server.requests) == 5
    assert server.requests[1].raw == server.requests[2].raw  # the SDK sent the same turn again
    assert server.requests[3].raw == server.requests[4].raw
    assert proposal.usage.input_tokens == 500 + 500 + 1000


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_plain_text_turn_is_nudged_and_the_session_goes_on(provider, server, lineage):
    server.push(Text("Let me think about the backbone."), ToolCall(GOOD))
    proposal = make(provider, server).propose(lineage.ctx())
    assert proposal.failure is None
    assert "Your answer called no tool" in server.requests[1].prompt()


def test_anthropic_thinking_stays_in_the_history_with_its_signature(server, lineage):
    server.push(
        Calls([tool("read_file", path="config.py")], thinking="The encoder ignores frame order."),
        ToolCall({"path": "model.py"}, name="read_file", thinking="A GRU would see the order.", usage=(500, 50)),
        ToolCall(GOOD, thinking="Submit the backbone change first."),
    )
    agent = make("anthropic", server, thinking_budget=2048)
    proposal = agent.propose(lineage.ctx())
    assert server.refused == [] and proposal.failure is None
    body = server.requests[2].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["tool_choice"] == {"type": "auto"} and body["max_tokens"] > 2048
    assert "interleaved-thinking" in server.requests[2].headers["anthropic-beta"]
    assistants = [m for m in body["messages"] if m["role"] == "assistant"]
    assert [m["content"][0]["type"] for m in assistants] == ["thinking", "thinking"]
    assert assistants[1]["content"][0]["thinking"] == "A GRU would see the order."


def test_the_fake_refuses_a_history_that_drops_or_alters_thinking():
    """The check above can fail: the fake answers 400 like the real API."""
    use = {"type": "tool_use", "id": "t1", "name": "list_files", "input": {}}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}
    body = {"thinking": {"type": "enabled", "budget_tokens": 2048}, "tool_choice": {"type": "auto"},
            "messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": [use]}, result]}
    assert "must start with a thinking block" in anthropic_problem(body)
    altered = {"type": "thinking", "thinking": "edited", "signature": "0" * 64}
    body["messages"][1]["content"] = [altered, use]
    assert "Invalid `signature`" in anthropic_problem(body)
    body["messages"] = body["messages"][:2]
    body["messages"][1]["content"] = [use]
    assert "without `tool_result` blocks" in anthropic_problem(body)
    assert "forces tool use" in anthropic_problem({**body, "tool_choice": {"type": "tool", "name": "x"}})


def test_openai_reasoning_effort_and_reasoning_content(server, lineage):
    server.push(Calls([tool("list_files")], thinking="Look at the files first."), ToolCall(GOOD))
    proposal = make("openai", server, reasoning_effort="high").propose(lineage.ctx())
    assert proposal.failure is None
    assert all(r.body["reasoning_effort"] == "high" for r in server.requests)
    assistant = server.requests[1].body["messages"][-2]
    assert "reasoning_content" not in assistant  # kept in the transcript, never sent back


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cache_reads_and_writes_are_counted_and_priced(provider, server, lineage):
    server.push(ToolCall(GOOD, usage=(1000, 200), cache=(3000, 500)))
    proposal = make(provider, server).propose(lineage.ctx())
    usage = proposal.usage
    if provider == "anthropic":  # $5 input, $0.50 cache read, $6.25 cache write, $25 output per million
        assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (4500, 3000, 500)
        assert usage.cost_usd == pytest.approx((1000 * 5 + 3000 * 0.5 + 500 * 6.25 + 200 * 25) / 1e6)
    else:  # OpenAI reports no cache writes; $1.25 input, $0.125 cached, $10 output
        assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (4000, 3000, 0)
        assert usage.cost_usd == pytest.approx((1000 * 1.25 + 3000 * 0.125 + 200 * 10) / 1e6)


def test_the_system_prefix_is_the_same_for_every_session_of_a_run(server):
    lin = FakeLineage()
    server.push(ToolCall(GOOD), ToolCall(GOOD))
    agent = make("anthropic", server)
    agent.propose(lin.ctx(knowledge={"rules.md": "# Rules\nNever train past 50 s."}))
    lin.add(hypothesis="another idea", notes=["HEAD=mlp overfits at 8 epochs"])
    agent.propose(lin.ctx(knowledge={"rules.md": "# Rules\nNever train past 50 s."}))
    first, second = (r.body["system"][0]["text"] for r in server.requests)
    assert first == second and "## Recipe knowledge: knowledge/rules.md\n# Rules\nNever train past 50 s." in first
    opening = server.requests[1].body["messages"][0]["content"][0]["text"]
    assert "# Run notebook" in opening and "- t0001: HEAD=mlp overfits at 8 epochs" in opening


@pytest.mark.parametrize("provider", PROVIDERS)
def test_concurrent_sessions_of_one_agent_share_nothing(provider):
    def slow_session(request):
        time.sleep(0.15)  # keep the sessions overlapping
        return collision_session(request)

    lin = FakeLineage()
    with FakeLLMServer(default=slow_session) as server:
        agent = make(provider, server)
        contexts = [lin.ctx().model_copy(update={"trial_number": n}) for n in range(1, 7)]
        results: dict[int, object] = {}

        def work(ctx):
            results[ctx.trial_number] = agent.propose(ctx)

        threads = [threading.Thread(target=work, args=(ctx,)) for ctx in contexts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert server.max_in_flight >= 3 and server.refused == []
    assert sorted(results) == list(range(1, 7))
    for number, proposal in results.items():
        assert proposal.failure is None
        assert proposal.notes == [f"trial {number}: {proposal.hypothesis}"]  # its own session's note
    sessions = {}
    for request in server.requests:
        sessions.setdefault(trial_of(request), []).append(request)
    assert all(len(requests) == 3 for requests in sessions.values())
    assert agent.requests_made == 18
    assert agent.spent.input_tokens == sum(p.usage.input_tokens for p in results.values())


def test_options_that_do_not_fit_the_protocol_are_refused(server):
    with pytest.raises(AgentError, match="--thinking-budget is for the anthropic agent"):
        make("openai", server, thinking_budget=2048)
    with pytest.raises(AgentError, match="--reasoning-effort is for the openai agent"):
        make("anthropic", server, reasoning_effort="high")
    with pytest.raises(AgentError, match="at least 1024 tokens"):
        make("anthropic", server, thinking_budget=100)
    with pytest.raises(AgentError, match="temperature 1 only"):
        make("anthropic", server, thinking_budget=2048, temperature=0.2)
    with pytest.raises(AgentError, match="must be one of minimal, low, medium, high"):
        make("openai", server, reasoning_effort="max")
    with pytest.raises(AgentError, match="max_turns must be at least 1"):
        make("openai", server, max_turns=0)


def test_temperature_is_sent_when_set(server, lineage):
    server.push(ToolCall(GOOD), ToolCall(GOOD))
    make("anthropic", server, temperature=0.3).propose(lineage.ctx())
    make("openai", server, temperature=0.7).propose(lineage.ctx())
    assert [r.body.get("temperature") for r in server.requests] == [0.3, 0.7]
    assert json.loads(server.requests[0].raw)["tool_choice"] == {"type": "auto"}
