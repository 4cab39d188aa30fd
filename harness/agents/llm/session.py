"""One proposal as a multi-turn session with the model, provider-neutral.

The loop: send the history (the model answers with text, thinking and tool
calls), run each call on the session's `Workbench`, send the results back, and
again, until

- `submit_trial` passes every check (`submitted`),
- `max_rejections` submissions were rejected (`rejected`),
- `max_turns` turns went by without an accepted submission (`max_turns`),
- the session's tokens or cost reached their cap (`token_cap`, `cost_cap`).

The protocol (`SessionClient`: the Anthropic or OpenAI agent) turns the neutral
history into its wire format and back. A session holds all its state itself,
so concurrent sessions of one agent share nothing but the SDK client and the
agent's locked counters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Protocol, Union

from harness.agents.llm.cache import ModelReply
from harness.agents.llm.edits import json_in_text
from harness.agents.llm.prompt import TOOL_NAME, Prompt
from harness.agents.llm.tools import Attempt, Workbench
from harness.agents.llm.transcript import TranscriptRecorder, usage_json
from harness.types import Usage

NUDGE = (f"Your answer called no tool. Use the tools to look at the code and the lineage, and end the session "
         f"with {TOOL_NAME}.")
WARN_TURNS = 3
"""From this many turns left, every tool result reminds the model of the turn cap."""


@dataclass(frozen=True)
class UserText:
    """A user message of plain text (the opening message, a nudge)."""

    text: str


@dataclass(frozen=True)
class ToolOutput:
    """The result of one tool call, as sent back."""

    call_id: str
    name: str
    text: str
    is_error: bool


@dataclass(frozen=True)
class ToolOutputs:
    """The results of every call of one assistant turn (one user message)."""

    outputs: tuple[ToolOutput, ...]


Entry = Union[UserText, ModelReply, ToolOutputs]
"""One message of the neutral history."""


class SessionClient(Protocol):
    """What a session needs of its agent."""

    def send(self, system: str, history: list[Entry]) -> ModelReply:
        """One API request with the whole history (the SDK retries inside)."""
        ...

    def reply_cost(self, reply: ModelReply) -> float:
        ...


@dataclass(frozen=True)
class SessionLimits:
    max_turns: int = 40
    """Model turns at most (one request each)."""
    max_tokens: int | None = None
    """Input plus output tokens of the whole session at most (None: no cap)."""
    max_cost_usd: float | None = None
    """Cost of the whole session at most (None: no cap)."""


@dataclass
class SessionResult:
    """How a session ended and what it left."""

    reason: str
    """submitted, rejected, max_turns, token_cap or cost_cap."""
    note: str
    """The end in words (becomes the failure reason of a proposal that never got submitted)."""
    accepted: Attempt | None
    bench: Workbench
    usage: Usage
    turns: int
    transcript: str
    """JSON lines (see `transcript`), secrets scrubbed."""


def _add(usage: Usage, reply: ModelReply, cost: float) -> Usage:
    return Usage(
        input_tokens=usage.input_tokens + reply.input_tokens,
        output_tokens=usage.output_tokens + reply.output_tokens,
        cost_usd=usage.cost_usd + cost,
        cache_read_tokens=usage.cache_read_tokens + reply.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens + reply.cache_write_tokens,
    )


def _cap(limits: SessionLimits, usage: Usage) -> tuple[str, str] | None:
    tokens = usage.input_tokens + usage.output_tokens
    if limits.max_tokens is not None and tokens >= limits.max_tokens:
        return "token_cap", f"the session used {tokens:,} tokens, its cap is {limits.max_tokens:,} (--session-tokens)"
    if limits.max_cost_usd is not None and usage.cost_usd >= limits.max_cost_usd:
        return "cost_cap", (f"the session cost ${usage.cost_usd:.4f}, its cap is ${limits.max_cost_usd:g} "
                            "(--session-cost)")
    return None


def _reminder(limits: SessionLimits, turn: int, usage: Usage) -> str:
    left = limits.max_turns - turn - 1
    parts = []
    if left <= WARN_TURNS:
        parts.append(f"{left} turn{'s' if left != 1 else ''} left in this session")
    if limits.max_cost_usd is not None and usage.cost_usd >= 0.8 * limits.max_cost_usd:
        parts.append(f"${usage.cost_usd:.4f} of the session's ${limits.max_cost_usd:g} spent")
    if limits.max_tokens is not None and usage.input_tokens + usage.output_tokens >= 0.8 * limits.max_tokens:
        parts.append(f"{usage.input_tokens + usage.output_tokens:,} of the session's {limits.max_tokens:,} tokens used")
    if not parts:
        return ""
    return f"\n[harness: {'; '.join(parts)}: call {TOOL_NAME} before the session ends]"


def run_session(
    client: SessionClient,
    prompt: Prompt,
    bench: Workbench,
    limits: SessionLimits,
    recorder: TranscriptRecorder,
    cached: list[ModelReply],
    store: Callable[[list[ModelReply]], None],
    clean: Callable[[ModelReply], ModelReply],
) -> SessionResult:
    """Run one session to its end. `cached` replies answer the first turns without a request
    (a resumed run); `store` is called with every reply so far after each new one; `clean`
    makes a reply safe to send back (see `agent.echoable`)."""
    history: list[Entry] = [UserText(prompt.user)]
    recorder.text("system", prompt.system)
    recorder.text("user", prompt.user)
    replies: list[ModelReply] = []
    usage = Usage()
    accepted: Attempt | None = None
    reason = note = ""
    turn = 0
    for turn in range(limits.max_turns):
        capped = _cap(limits, usage)
        if capped is not None:
            reason, note = capped
            break
        started = time.monotonic()
        if turn < len(cached):
            reply = cached[turn]
        else:
            reply = client.send(prompt.system, history)
            store(replies + [reply])
        replies.append(reply)
        cost = client.reply_cost(reply)
        usage = _add(usage, reply, cost)
        recorder.assistant(turn, reply, cost, time.monotonic() - started)
        history.append(clean(reply))
        outputs: list[ToolOutput] = []
        written = json_in_text(reply.text) if not reply.calls else None
        if written is not None:  # a server without tool calls that wrote the arguments as text
            result = bench.submit_trial(written)
            recorder.tool_result(turn, "", TOOL_NAME, bench.scrub(result.text), result.is_error)
            accepted = result.accepted
            if accepted is None and not bench.out_of_rejections:
                history.append(UserText(bench.scrub(result.text)))
                continue
        elif not reply.calls:
            history.append(UserText(NUDGE))
            recorder.text("user", NUDGE)
            continue
        for call in reply.calls:
            result = bench.run(call.name, call.arguments)
            text = bench.scrub(result.text)
            recorder.tool_result(turn, call.id, call.name, text, result.is_error)
            outputs.append(ToolOutput(call.id, call.name, text, result.is_error))
            if result.accepted is not None:
                accepted = result.accepted
                break
        if accepted is not None:
            reason, note = "submitted", f"submitted at turn {turn + 1}"
            break
        if bench.out_of_rejections:
            err = bench.last_error
            reason = "rejected"
            note = (f"{TOOL_NAME} was rejected {bench.rejections} times"
                    + (f"; last error: {err.message}" if err is not None else ""))
            break
        reminder = _reminder(limits, turn, usage)
        if reminder and outputs:
            last = outputs[-1]
            outputs[-1] = replace(last, text=last.text + reminder)
        history.append(ToolOutputs(tuple(outputs)))
    else:
        reason = "max_turns"
        note = f"no accepted {TOOL_NAME} within --max-turns {limits.max_turns}"
    turns = len(replies)
    recorder.end(reason, note, turns, usage_json(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens,
                                                 usage.cache_write_tokens), usage.cost_usd)
    return SessionResult(reason=reason, note=note, accepted=accepted, bench=bench, usage=usage, turns=turns,
                         transcript=recorder.render())
