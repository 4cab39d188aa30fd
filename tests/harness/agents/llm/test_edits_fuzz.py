"""Fuzzed model answers: whatever a model sends as `submit_trial` arguments (or as text),
the session turns it into a proposal whose diff is legal and applies to exactly the edited
texts, or into an error for the model (a tool result) and in the end a failure label; it
never raises."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from evaluators.legality import check_diff
from harness.agents.llm.agent import LLMAgent
from harness.agents.llm.cache import ModelReply, ToolCallData
from harness.agents.llm.edits import Change, json_in_text, render_diff
from harness.agents.llm.prompt import TOOL_NAME, Surface
from harness.agents.llm.tools import Attempt, Workbench
from harness.types import Proposal
from llm_helpers import FakeLineage, apply_with_git, collision_files, collision_spec
from llm_server import FakeLLMServer, ToolCall

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stored import assert_stored_intact  # noqa: E402

SPEC = collision_spec()
FILES = collision_files()
MODES = {path: "100644" for path in FILES}
LABELS = ("malformed_proposal", "apply_failed", "illegal_edit")
TRICKY = "\u2028\u2029\x85\x0b\x0c\x1c\r\t\n\0\ufeff\"\\\ud800\udc80"
"""Characters that line splitting, JSON, git and commit messages treat specially."""


def texts(max_size: int, leave_out: str = "") -> st.SearchStrategy[str]:
    """Text with the tricky characters far more often than uniform sampling gives them."""
    tricky = st.sampled_from([c for c in TRICKY if c not in leave_out])
    return st.lists(st.characters(exclude_characters=leave_out) | tricky, max_size=max_size).map("".join)


storable_text = texts(40, leave_out="\0\ud800\udc80")
"""Text a well-formed answer may hold anywhere."""


numbers = st.integers() | st.integers(min_value=2**1024) | st.floats() | st.sampled_from(["0.5", "inf", "x"])
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts(20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
file_lines = [line for text in FILES.values() for line in text.splitlines(keepends=True) if line.strip()]
paths = st.sampled_from(
    sorted(FILES) + ["data.py", "eval/score.py", "../config.py", "/etc/passwd", ".git/config", "./config.py",
                     "config.py\0", "new.py", "sub/new.py", " config.py ", "a\\b.py", "CONFIG.PY"]
) | texts(12)
searches = (st.lists(st.sampled_from(file_lines), min_size=1, max_size=2).map("".join)
            | st.sampled_from(file_lines).map(lambda line: line.strip()) | st.just("") | texts(20))
any_edits = st.fixed_dictionaries({"file": paths, "search": searches, "replace": texts(40)})


@st.composite
def edits(draw: st.DrawFn) -> dict[str, str]:
    """Mostly an edit that applies (1-3 consecutive lines of an editable file replaced), else any edit."""
    if draw(st.integers(0, 3)) == 0:
        return draw(any_edits)
    path = draw(st.sampled_from(sorted(FILES)))
    lines = FILES[path].splitlines(keepends=True)
    start = draw(st.integers(0, len(lines) - 1))
    search = "".join(lines[start:start + draw(st.integers(1, 3))])
    return {"file": path, "search": search if draw(st.booleans()) else search.strip(), "replace": draw(storable_text)}
DIFF_FRAGMENTS = [
    "diff --git a/config.py b/config.py", "diff --git a/data.py b/data.py", "--- a/config.py", "+++ b/config.py",
    "--- /dev/null", "+++ b/new.py", "+++ b/../x.py", "+++ /etc/x", "new file mode 120000", "new file mode 100755",
    "old mode 100644", "new mode 100755", "rename from config.py", "rename to data.py", "GIT binary patch",
    "Binary files a/x and b/x differ", "@@ -1 +1 @@", "@@ -8,3 +8,3 @@", "@@ -0,0 +1 @@", "-x", "+y", " ctx",
    "\\ No newline at end of file", "",
]


@st.composite
def diffs(draw: st.DrawFn) -> str:
    """A real diff of one edit with lines dropped, repeated or replaced, or made of fragments."""
    if draw(st.booleans()):
        return "\n".join(draw(st.lists(st.sampled_from(DIFF_FRAGMENTS) | texts(20), max_size=10)))
    line = draw(st.sampled_from([ln for ln in FILES["config.py"].splitlines(keepends=True) if "=" in ln]))
    new = FILES["config.py"].replace(line, draw(storable_text) + "\n", 1)
    lines = render_diff([Change("config.py", FILES["config.py"], new)]).split("\n")
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3]))):
        at = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["drop", "insert", "replace"]))
        fragment = draw(st.sampled_from(DIFF_FRAGMENTS) | texts(20))
        if action == "drop" and at < len(lines):
            del lines[at]
        elif action == "insert":
            lines.insert(at, fragment)
        elif at < len(lines):
            lines[at] = fragment
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@st.composite
def argument_objects(draw: st.DrawFn) -> dict[str, Any]:
    keys = {
        "hypothesis": texts(40) | json_values,
        "expected_delta": numbers | json_values,
        "parent": st.sampled_from(["t0000", "t0001", "t9999", "", "best"]) | json_values,
        "edits": st.lists(any_edits | json_values, max_size=3) | json_values,
        "diff": diffs() | json_values,
    }
    if draw(st.booleans()):  # any keys, any values
        chosen = draw(st.lists(st.sampled_from(sorted(keys)), unique=True))
        return {key: draw(keys[key]) for key in chosen}
    # Well-shaped: a hypothesis and one kind of change, so that most answers reach git apply.
    obj: dict[str, Any] = {"hypothesis": draw(storable_text.filter(str.strip))}
    if draw(st.booleans()):
        obj["expected_delta"] = draw(st.floats(-1, 1))
    if draw(st.booleans()):
        obj["parent"] = draw(st.sampled_from(["t0000", "t0001"]))
    if draw(st.booleans()):
        obj["edits"] = draw(st.lists(edits(), min_size=1, max_size=3))
    else:
        obj["diff"] = draw(diffs())
    return obj


def as_json(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


@st.composite
def replies(draw: st.DrawFn) -> ModelReply:
    """A tool call with the arguments as JSON text (or raw garbage), or plain text holding JSON."""
    obj = draw(argument_objects())
    how = draw(st.sampled_from(["call"] * 6 + ["raw", "text", "other_tool", "cut"]))
    if how == "text":
        return ModelReply(text=draw(texts(20)) + "```json\n" + as_json(obj) + "\n```" + draw(texts(20)))
    arguments = draw(texts(60)) if how == "raw" else as_json(obj)
    name = draw(texts(10)) if how == "other_tool" else TOOL_NAME
    return ModelReply(calls=(ToolCallData("call_1", name, arguments),), stop_reason="length" if how == "cut" else None)


class ReplayedModel(LLMAgent):
    """An LLM agent whose 'API' hands out the given replies in order (no client, no network)."""

    name = "anthropic"

    def __init__(self, answers: list[ModelReply]) -> None:
        self.answers = list(answers)
        super().__init__(base_url="http://model.invalid", max_repairs=len(answers) - 1, max_turns=len(answers))

    def _make_client(self, api_key: str) -> None:
        return None

    def send(self, system: str, history: list[Any]) -> ModelReply:
        return self.answers.pop(0)


@pytest.fixture(scope="module")
def lineage() -> FakeLineage:
    fake = FakeLineage()
    fake.add(hypothesis="a second trial")  # t0001 exists: answers may name it as parent
    return fake


def check_attempt(attempt: Attempt, root: Path) -> None:
    """The canonical diff is legal, touches only what the agent may edit, and git applies it
    to exactly the edited texts."""
    assert all(SPEC.is_editable(c.path) for c in attempt.changes)
    legality = check_diff(attempt.diff, SPEC, MODES)
    assert legality.legal, (legality.reason, attempt.diff)
    applied = apply_with_git(root, FILES, attempt.diff)
    assert applied.returncode == 0, (applied.stderr, attempt.diff)
    for change in attempt.changes:
        assert (root / change.path).read_bytes() == change.new.encode("utf-8", "surrogatepass"), change.path


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reply=replies())
@example(reply=ModelReply(calls=(ToolCallData("c", TOOL_NAME, '{"hypothesis": "h", "expected_delta": 1' + "0" * 400
                                                + ', "diff": "x"}'),)))
@example(reply=ModelReply(calls=(ToolCallData("c", TOOL_NAME, "[" * 50_000 + "]" * 50_000),)))
@example(reply=ModelReply(text='{"hypothesis": ' + "1" * 5000 + "}"))
@example(reply=ModelReply(calls=(ToolCallData("c", TOOL_NAME, as_json({"hypothesis": "h", "edits": "[" * 50_000})),)))
@example(reply=ModelReply(calls=(ToolCallData("c", TOOL_NAME, as_json(
    {"hypothesis": "h\ud800", "edits": [{"file": "config.py", "search": "LR = 0.003", "replace": "LR = 0.01"}]})),)))
@example(reply=ModelReply(calls=(ToolCallData("c", TOOL_NAME, as_json(
    {"hypothesis": "h", "edits": [{"file": "config.py", "search": "LR = 0.003", "replace": "LR = 0.01\u2028x\ry"}]})),)))
@example(reply=ModelReply(calls=(ToolCallData("c", TOOL_NAME, as_json(
    {"hypothesis": "h", "diff": "diff --git a/new.py b/new.py\nnew file mode 120000\n--- /dev/null\n+++ b/new.py\n"
                                "@@ -0,0 +1 @@\n+/etc/hostname\n\\ No newline at end of file\n"})),)))
def test_any_answer_becomes_a_legal_diff_or_an_error_for_the_model(reply: ModelReply, lineage: FakeLineage,
                                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    ctx = lineage.ctx()
    bench = Workbench(ctx=ctx, surface=Surface(ctx.spec), parent=ctx.best)
    if reply.calls:
        result = bench.run(reply.calls[0].name, reply.calls[0].arguments)
    else:
        found = json_in_text(reply.text)
        result = bench.submit_trial(found) if found is not None else None
    if result is None or result.accepted is None:
        assert result is None or (result.is_error and result.text.strip())
        if bench.last_error is not None:
            assert bench.last_error.kind in LABELS
        event(bench.last_error.kind if bench.last_error is not None else "not a submission")
        return
    attempt = result.accepted
    event("proposal")
    check_attempt(attempt, tmp_path_factory.mktemp("apply"))
    assert_stored_intact(Proposal(hypothesis=attempt.answer.hypothesis, diff=attempt.diff, parent=attempt.parent,
                                  expected_delta=attempt.answer.expected_delta, agent="anthropic"))


@given(st.lists(replies(), min_size=1, max_size=3))
def test_propose_always_returns_a_proposal_that_stores_intact(answers: list[ModelReply]) -> None:
    lineage = FakeLineage()
    agent = ReplayedModel(answers)
    proposal = agent.propose(lineage.ctx())
    assert isinstance(proposal, Proposal)
    assert_stored_intact(proposal)
    event(proposal.failure or "proposal")
    if proposal.failure is not None:
        assert proposal.failure in LABELS and proposal.failure_reason.strip()
    else:
        assert check_diff(proposal.diff, SPEC, MODES).legal
    assert not agent.answers or proposal.failure is None  # the session stops at the first accepted submission


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@settings(max_examples=5, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=st.lists(argument_objects(), min_size=3, max_size=3))
@example(arguments=[{"hypothesis": "h\ud800", "diff": "x"}] * 3)
def test_garbage_through_the_real_sdks_ends_as_a_labelled_proposal(provider: str, arguments: list[dict],
                                                                    lineage: FakeLineage) -> None:
    """End to end through the SDK clients and the fake server: up to three turns, each
    rejected submission sent back as a tool result with its error."""
    from harness.agents.base import make_agent

    with FakeLLMServer() as server:  # one per example: answers left unused must not leak into the next
        server.push(*[ToolCall(a) for a in arguments])
        base_url = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
        agent = make_agent(provider, proposals_file=None, seed=0, base_url=base_url, max_retries=0, max_turns=3)
        proposal = agent.propose(lineage.ctx())
        assert server.count() == 3 - server.pending()
    assert_stored_intact(proposal)
    assert proposal.failure in (None, *LABELS)
    if proposal.failure is None:
        assert check_diff(proposal.diff, SPEC, MODES).legal
    else:
        assert server.pending() == 0
