"""The anthropic and openai agents, with the real SDK clients against the local fake server:
answers, rejections, API failures, the cache, secrets, options (single-turn sessions; the
multi-turn ones are in test_sessions.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from evaluators.legality import check_diff
from harness.agents.base import AgentError, make_agent
from harness.agents.llm.errors import LLMRequestRejected, LLMUnavailable
from harness.agents.llm.pricing import load_prices
from harness.types import Proposal
from llm_helpers import PLANTED_KEY, FakeLineage, apply_with_git, collision_files, collision_spec
from llm_server import ANTHROPIC_PATH, OPENAI_PATH, Slow, Status, Text, ToolCall, start_collision_server

PROVIDERS = ["anthropic", "openai"]
SPEC = collision_spec()
MODES = {p: "100644" for p in collision_files()}

GOOD = {
    "hypothesis": "V-JEPA features carry motion",
    "expected_delta": 0.03,
    "edits": [{"file": "config.py", "search": 'BACKBONE = "resnet18"', "replace": 'BACKBONE = "vjepa_l"'}],
}
NOT_APPLYING = {
    "hypothesis": "Swap the backbone",
    "expected_delta": 0.01,
    "edits": [{"file": "config.py", "search": 'BACKBONE = "resnet50"', "replace": 'BACKBONE = "vjepa_l"'}],
}


def make(provider: str, server, **options):
    base_url = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
    return make_agent(provider, proposals_file=None, seed=0, base_url=base_url, **options)


def path_of(provider: str) -> str:
    return ANTHROPIC_PATH if provider == "anthropic" else OPENAI_PATH


def label_of(proposal: Proposal, tmp_path, files: dict[str, str] | None = None) -> str:
    """The pre-run label the loop gives a proposal ("applies" when none): the agent's
    own `failure` first, then the loop's checks of the diff."""
    if proposal.failure is not None:
        return proposal.failure
    legality = check_diff(proposal.diff, SPEC, MODES)
    if legality.label is not None:
        return legality.label.value
    proc = apply_with_git(tmp_path / "apply", files or collision_files(), proposal.diff)
    return "apply_failed" if proc.returncode != 0 else "applies"


# -- answers ---------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_good_edit_becomes_a_canonical_diff_with_usage_and_cost(provider, server, lineage, tmp_path):
    server.push(ToolCall(GOOD, usage=(1000, 200)))
    agent = make(provider, server)
    proposal = agent.propose(lineage.ctx())
    assert proposal.agent == provider
    assert proposal.model == ("claude-opus-4-5" if provider == "anthropic" else "gpt-5")
    assert proposal.hypothesis == GOOD["hypothesis"] and proposal.expected_delta == 0.03
    assert proposal.parent == "t0000" and proposal.specialist is None
    assert proposal.diff.startswith("diff --git a/config.py b/config.py\n")
    assert '+BACKBONE = "vjepa_l"' in proposal.diff
    assert label_of(proposal, tmp_path) == "applies"
    assert (proposal.usage.input_tokens, proposal.usage.output_tokens) == (1000, 200)
    expected_cost = 0.010 if provider == "anthropic" else 0.00325  # $5/$25 and $1.25/$10 per million
    assert proposal.usage.cost_usd == pytest.approx(expected_cost)
    assert agent.requests_made == 1 and agent.spent.cost_usd == pytest.approx(expected_cost)

    (request,) = server.requests
    assert request.path == path_of(provider)
    body = request.body
    names = ["list_files", "read_file", "grep", "show_trial", "check_edit", "note", "submit_trial"]
    if provider == "anthropic":
        assert [t["name"] for t in body["tools"]] == names
        assert body["tool_choice"] == {"type": "auto"}
        (system,) = body["system"]
        assert "research agent" in system["text"] and system["cache_control"] == {"type": "ephemeral"}
        assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
        assert body["max_tokens"] == 8192 and "thinking" not in body
    else:
        assert [t["function"]["name"] for t in body["tools"]] == names
        assert body["tool_choice"] == "auto"
        assert body["messages"][0]["role"] == "system" and "reasoning_effort" not in body
    assert "# Files of the parent trial t0000" in request.prompt()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_rejected_answer_goes_back_with_the_exact_error(provider, server, lineage):
    server.push(ToolCall(NOT_APPLYING, usage=(1000, 100)), ToolCall(GOOD, usage=(1200, 150)))
    proposal = make(provider, server).propose(lineage.ctx())
    assert '+BACKBONE = "vjepa_l"' in proposal.diff
    assert (proposal.usage.input_tokens, proposal.usage.output_tokens) == (2200, 250)
    assert len(server.requests) == 2
    messages = server.requests[1].body["messages"]
    error = "edit 1 (config.py): the search text was not found in config.py of trial t0000."
    if provider == "anthropic":
        assistant, result = messages[-2], messages[-1]
        tool_use = assistant["content"][-1]
        assert tool_use["type"] == "tool_use" and tool_use["input"] == NOT_APPLYING
        block = result["content"][0]
        assert block["type"] == "tool_result" and block["is_error"] is True
        assert block["tool_use_id"] == tool_use["id"]
        assert error in block["content"] and "(2 rejections left before the session ends)" in block["content"]
    else:
        assistant, tool = messages[-2], messages[-1]
        call = assistant["tool_calls"][0]
        assert json.loads(call["function"]["arguments"]) == NOT_APPLYING
        assert tool["role"] == "tool" and tool["tool_call_id"] == call["id"]
        assert error in tool["content"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_edits_that_never_apply_end_as_apply_failed(provider, server, lineage, tmp_path):
    server.push(*[ToolCall(NOT_APPLYING)] * 3)
    proposal = make(provider, server, max_repairs=2).propose(lineage.ctx())
    assert len(server.requests) == 3 and server.pending() == 0
    assert proposal.hypothesis == "Swap the backbone"
    assert label_of(proposal, tmp_path) == "apply_failed"
    assert "the search text was not found" in proposal.failure_reason
    assert proposal.usage.input_tokens == 3000


@pytest.mark.parametrize("provider", PROVIDERS)
def test_answers_that_never_parse_end_as_malformed(provider, server, lineage, tmp_path):
    bad = "{this is not json" if provider == "openai" else {"expected_delta": 0.1}
    server.push(*[ToolCall(bad)] * 2)
    proposal = make(provider, server, max_repairs=1).propose(lineage.ctx())
    assert len(server.requests) == 2
    assert proposal.diff == ""
    assert label_of(proposal, tmp_path) == "malformed_proposal"
    assert proposal.hypothesis.startswith("(no usable proposal from")
    error = server.requests[1].prompt()
    assert ("not valid JSON" in error) if provider == "openai" else ("'hypothesis' must be a non-empty string" in error)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_text_answer_without_tool_call_is_repaired(provider, server, lineage):
    server.push(Text("I think we should use a GRU."), ToolCall(GOOD))
    proposal = make(provider, server).propose(lineage.ctx())
    assert proposal.hypothesis == GOOD["hypothesis"]
    assert "Your answer called no tool" in server.requests[1].prompt()


def test_json_written_as_text_is_accepted(server, lineage):
    server.push(Text("```json\n" + json.dumps(GOOD) + "\n```"))
    proposal = make("openai", server).propose(lineage.ctx())
    assert '+BACKBONE = "vjepa_l"' in proposal.diff and len(server.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_editing_a_protected_file_ends_as_illegal_edit(provider, server, lineage, tmp_path):
    evil = {"hypothesis": "Leak", "expected_delta": 1.0,
            "edits": [{"file": "data.py", "search": "x", "replace": "y"}]}
    server.push(*[ToolCall(evil)] * 3)
    proposal = make(provider, server).propose(lineage.ctx())
    assert "data.py is not on the editable surface" in server.requests[1].prompt()
    assert label_of(proposal, tmp_path) == "illegal_edit"


def test_a_specialist_is_held_to_its_files(server, lineage):
    outside = {"hypothesis": "Tune the optimiser", "expected_delta": 0.01,
               "edits": [{"file": "train.py", "search": "import math\n", "replace": "import math  # x\n"}]}
    server.push(ToolCall(outside), ToolCall(GOOD))
    proposal = make("anthropic", server).propose(lineage.ctx(specialist="arch"))
    assert proposal.specialist == "arch"
    assert "train.py is outside your specialty 'arch', which may edit only model.py, infer.py, config.py" \
        in server.requests[1].prompt()
    assert "## Your specialty: arch" in server.requests[0].body["system"][0]["text"]


def test_a_syntax_error_is_sent_back_and_kept_when_never_fixed(server, lineage, tmp_path):
    broken = {"hypothesis": "Typo", "expected_delta": 0.0,
              "edits": [{"file": "config.py", "search": "LR = 0.003", "replace": "LR = = 0.003"}]}
    server.push(ToolCall(broken), ToolCall(GOOD))
    assert '+BACKBONE = "vjepa_l"' in make("openai", server).propose(lineage.ctx()).diff
    assert "the edited code does not compile: config.py line 14" in server.requests[1].prompt()

    server.push(*[ToolCall(broken)] * 3)
    proposal = make("openai", server).propose(lineage.ctx())
    assert proposal.hypothesis == "Typo"
    assert label_of(proposal, tmp_path) == "applies"  # the harness's preflight labels it preflight_crash


def test_a_unified_diff_answer_is_made_canonical(server, lineage):
    diff = ("--- a/config.py\n+++ b/config.py\n@@ -14 +14 @@\n-LR = 0.003\n+LR = 0.01\n")
    server.push(ToolCall({"hypothesis": "Higher LR", "expected_delta": 0.01, "diff": diff}))
    proposal = make("anthropic", server).propose(lineage.ctx())
    assert proposal.diff.startswith("diff --git a/config.py b/config.py\n--- a/config.py\n+++ b/config.py\n@@ -11,7 +11,7 @@")


def test_the_model_may_name_another_parent(server):
    lin = FakeLineage()
    files = dict(collision_files())
    files["config.py"] = files["config.py"].replace('HEAD = "linear"', 'HEAD = "mlp"')
    lin.add(hypothesis="MLP head", label="not_improved", score=0.69, files=files)
    edit = {"hypothesis": "MLP head plus GRU", "expected_delta": 0.02, "parent": "t0001",
            "edits": [{"file": "config.py", "search": 'HEAD = "mlp"', "replace": 'HEAD = "mlp"\nX = 1'}]}
    server.push(ToolCall({**edit, "parent": "t0099"}), ToolCall(edit))
    proposal = make("anthropic", server).propose(lin.ctx())
    assert "parent t0099 is not a trial of this run (trials: t0000..t0001)" in server.requests[1].prompt()
    assert proposal.parent == "t0001" and "+X = 1" in proposal.diff


def test_failure_fields_are_used_once_proposal_has_them(server, lineage, monkeypatch):
    import harness.agents.llm.agent as agent_module

    class ProposalWithFailure(Proposal):
        failure: str | None = None
        failure_reason: str = ""

    monkeypatch.setattr(agent_module, "Proposal", ProposalWithFailure)
    server.push(*[ToolCall(NOT_APPLYING)] * 3)
    proposal = make("anthropic", server).propose(lineage.ctx())
    assert proposal.failure == "apply_failed"
    assert proposal.failure_reason.startswith("anthropic model claude-opus-4-5: session ended (rejected): "
                                              "submit_trial was rejected 3 times; last error: edit 1 (config.py): "
                                              "the search text was not found")
    assert proposal.diff == ""


# -- the API misbehaving ---------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_then_success_is_retried_by_the_sdk(provider, server, lineage):
    server.push(Status(429, "slow down"), ToolCall(GOOD))
    proposal = make(provider, server, max_retries=2).propose(lineage.ctx())
    assert '+BACKBONE = "vjepa_l"' in proposal.diff
    assert len(server.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_500s_until_the_retries_run_out_raise_llm_unavailable(provider, server, lineage):
    server.push(*[Status(500, "boom")] * 3)
    agent = make(provider, server, max_retries=2)
    with pytest.raises(LLMUnavailable, match=r"answered HTTP 500 \(with up to 2 retries\)") as info:
        agent.propose(lineage.ctx())
    assert isinstance(info.value, AgentError)
    assert len(server.requests) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_slow_answer_past_the_timeout_raises_llm_unavailable(provider, server, lineage):
    server.push(Slow(30, then=ToolCall(GOOD)), Slow(30, then=ToolCall(GOOD)))
    agent = make(provider, server, max_retries=1, timeout_s=0.4)
    start = time.monotonic()
    with pytest.raises(LLMUnavailable, match=r"timed out \(0.4 s per attempt, with up to 1 retries\)"):
        agent.propose(lineage.ctx())
    assert time.monotonic() - start < 10
    assert len(server.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refused_request_raises_llm_request_rejected(provider, server, lineage):
    server.push(Status(401, "invalid x-api-key", headers={}))
    with pytest.raises(LLMRequestRejected, match="rejected the request \\(HTTP 401\\): .*invalid x-api-key"):
        make(provider, server).propose(lineage.ctx())
    assert len(server.requests) == 1


# -- cache -----------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_cached_answer_makes_no_request(provider, server, lineage, tmp_path):
    cache = tmp_path / "run" / ".harness" / "llm-cache"
    server.push(ToolCall(NOT_APPLYING), ToolCall(GOOD))
    first = make(provider, server, cache_dir=cache).propose(lineage.ctx())
    assert len(server.requests) == 2
    stored = json.loads((cache / "t0001.json").read_text())
    assert stored["trial"] == "t0001" and len(stored["replies"]) == 2

    again = make(provider, server, cache_dir=cache)  # a resumed run: a new process, the same cache
    second = again.propose(lineage.ctx())
    assert len(server.requests) == 2  # no new request
    assert again.requests_made == 0
    # same diff, hypothesis and usage (paid once, recorded once); the transcript says the turns were replayed
    assert second.model_copy(update={"transcript": None}) == first.model_copy(update={"transcript": None})
    turns = [json.loads(line) for line in second.transcript.content.decode().splitlines()]
    assert [t["replayed"] for t in turns if t["type"] == "assistant"] == [True, True]


def test_a_run_stopped_mid_repair_resumes_from_the_cached_attempts(server, lineage, tmp_path):
    cache = tmp_path / "llm-cache"
    server.push(ToolCall(NOT_APPLYING), Status(400, "context too long", headers={}))
    with pytest.raises(LLMRequestRejected):
        make("openai", server, cache_dir=cache).propose(lineage.ctx())
    assert len(server.requests) == 2
    server.push(ToolCall(GOOD))
    proposal = make("openai", server, cache_dir=cache).propose(lineage.ctx())
    assert len(server.requests) == 3  # attempt 0 replayed from the cache, attempt 1 asked
    assert "the search text was not found" in server.requests[2].prompt()  # the tool result, rebuilt from the cache
    assert '+BACKBONE = "vjepa_l"' in proposal.diff


def test_a_cache_of_another_model_is_not_used(server, lineage, tmp_path):
    cache = tmp_path / "llm-cache"
    server.push(ToolCall(GOOD), ToolCall(GOOD))
    make("anthropic", server, cache_dir=cache, model="claude-haiku-4-5").propose(lineage.ctx())
    make("anthropic", server, cache_dir=cache, model="claude-opus-4-1").propose(lineage.ctx())
    assert len(server.requests) == 2


# -- secrets ---------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_api_key_never_lands_in_prompts_cache_proposal_or_errors(provider, server, lineage, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", PLANTED_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)

    def echo_key(request):  # a hostile server that puts the key into the answer
        key = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        return ToolCall({**GOOD, "hypothesis": f"my key is {key}"})

    cache = tmp_path / "cache"
    server.push(ToolCall(NOT_APPLYING), echo_key, Status(500, f"bad key {PLANTED_KEY}", headers={}))
    agent = make(provider, server, cache_dir=cache, max_retries=0)
    proposal = agent.propose(lineage.ctx())
    with pytest.raises(LLMUnavailable) as info:
        agent.propose(lineage.ctx().model_copy(update={"trial_number": 7}))

    used = [r.headers.get("x-api-key", "") + r.headers.get("authorization", "") for r in server.requests]
    assert all(PLANTED_KEY in h for h in used)  # the key did authenticate the requests...
    for request in server.requests:
        assert PLANTED_KEY not in request.raw  # ...but never entered a prompt
    for path in cache.rglob("*"):
        assert PLANTED_KEY not in path.read_text()
    assert PLANTED_KEY not in proposal.model_dump_json()
    transcript = proposal.transcript.content.decode()
    assert PLANTED_KEY not in transcript and "my key is [redacted]" in transcript
    assert proposal.hypothesis == "my key is [redacted]"
    assert PLANTED_KEY not in str(info.value)
    assert PLANTED_KEY not in repr(agent)


def test_no_key_and_no_base_url_is_a_clear_error():
    with pytest.raises(AgentError, match="needs the API key in the environment variable ANTHROPIC_API_KEY"):
        make_agent("anthropic", proposals_file=None, seed=0)
    with pytest.raises(AgentError, match="OPENAI_API_KEY"):
        make_agent("openai", proposals_file=None, seed=0)


def test_a_base_url_server_gets_a_dummy_key_when_none_is_set(server, lineage):
    server.push(ToolCall(GOOD))
    make("openai", server).propose(lineage.ctx())
    assert server.requests[0].headers["authorization"] == "Bearer harness-no-key"


# -- options, pricing, imports --------------------------------------------


def test_make_agent_passes_the_options(server, tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."local-llama"]\ninput = 0.5\noutput = 1.5\n')
    agent = make("openai", server, model="local-llama", max_retries=1, timeout_s=5, max_repairs=3,
                 token_budget=1234, cache_dir=tmp_path / "c", prices=prices, max_tokens=999)
    assert (agent.model, agent.max_retries, agent.timeout_s, agent.max_repairs, agent.token_budget,
            agent.max_tokens) == ("local-llama", 1, 5.0, 3, 1234, 999)
    assert agent.prices.cost("local-llama", 1_000_000, 1_000_000) == 2.0 and agent.priced
    assert not make("openai", server, model="qwen3-coder").priced
    with pytest.raises(AgentError, match="does not take the option 'model'"):
        make_agent("random", proposals_file=None, seed=0, model="x")
    with pytest.raises(AgentError, match="max_repairs must be >= 0"):
        make("anthropic", server, max_repairs=-1)


def test_price_table_lookup_and_override(tmp_path):
    table = load_prices(None)
    assert table.price_for("claude-sonnet-4-5-20250929").input == 3.0
    assert table.price_for("gpt-4o-mini-2024-07-18").input == 0.15  # a snapshot of gpt-4o-mini, not gpt-4o
    assert table.price_for("gpt-4o-2024-11-20").input == 2.5
    assert table.price_for("llama3:8b") is None and table.cost("llama3:8b", 10**6, 10**6) == 0.0
    assert table.price_for("claude-sonnet-4-7") is None  # an unknown newer model is not guessed
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"models": {"gpt-4.1": {"input": 1, "output": 1}}}))
    assert load_prices(path).cost("gpt-4.1", 10**6, 0) == 1.0
    path.write_text(json.dumps({"gpt-4.1": {"input": -1, "output": 1}}))
    with pytest.raises(AgentError, match="non-negative"):
        load_prices(path)
    assert load_prices({"m": {"input": 2, "output": 4}}).cost("m", 10**6, 10**6) == 6.0


def test_importing_the_llm_package_imports_no_sdk():
    code = ("import sys\nimport harness.agents.llm, harness.agents.llm.agent, harness.agents.llm.view\n"
            "assert 'anthropic' not in sys.modules and 'openai' not in sys.modules, 'SDK imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_collision_e2e_server_keeps_giving_edits_that_apply(provider, tmp_path):
    fake = start_collision_server()
    try:
        lin = FakeLineage()
        agent = make(provider, fake)
        for _ in range(3):
            proposal = agent.propose(lin.ctx())
            assert label_of(proposal, tmp_path / lin.best_id, lin.files[lin.best_id]) == "applies"
            proc = apply_with_git(tmp_path / f"new{len(lin.records)}", lin.files[lin.best_id], proposal.diff)
            assert proc.returncode == 0
            new_files = {p: (tmp_path / f"new{len(lin.records)}" / p).read_text() for p in lin.files[lin.best_id]}
            lin.add(hypothesis=proposal.hypothesis, label="keep", score=0.8 + len(lin.records) / 100,
                    parent=lin.best_id, files=new_files, diff=proposal.diff)
            assert proposal.notes and proposal.notes[0].startswith(f"trial {len(lin.records) - 1}: ")
        assert len(fake.requests) == 9 and fake.refused == []  # three turns a session
    finally:
        fake.stop()
