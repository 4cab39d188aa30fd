"""`--agent anthropic`: research sessions over the Messages API of the official `anthropic` SDK.

The key comes from `ANTHROPIC_API_KEY` (or the variable a team file names).
`base_url` points the client at another server speaking the Messages API (a
proxy, a gateway, the tests' fake); with a `base_url` and no key a dummy key is
sent. The SDK retries 408/409/429/5xx, connection errors and timeouts with
exponential backoff (`max_retries`); what is left after that raises
`LLMUnavailable`.

Every turn offers all the session tools with `tool_choice` auto. Prompt caching:
a `cache_control` breakpoint on the system text (tools and system: the stable
prefix of every session of the run) and one on the newest message (the session
so far), so each turn reads the earlier ones from the cache. `--thinking-budget N`
turns on extended thinking interleaved with tool use; the thinking blocks stay in
the history with their signatures, unchanged, as the API requires.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic

from harness.agents.base import AgentError
from harness.agents.llm.agent import LLMAgent
from harness.agents.llm.cache import ModelReply, Thinking, ToolCallData
from harness.agents.llm.session import Entry, ToolOutputs, UserText
from harness.agents.llm.tools import TOOLS

WIRE_TOOLS = [{"name": t.name, "description": t.description, "input_schema": t.schema} for t in TOOLS]
INTERLEAVED_THINKING_BETA = "interleaved-thinking-2025-05-14"
MIN_THINKING_BUDGET = 1024
EPHEMERAL = {"type": "ephemeral"}


def _as_object(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return {"raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


def _assistant(reply: ModelReply) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in reply.thinking:
        if block.redacted:
            content.append({"type": "redacted_thinking", "data": block.redacted})
        else:
            content.append({"type": "thinking", "thinking": block.text, "signature": block.signature})
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for call in reply.calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": _as_object(call.arguments)})
    if not content:
        content.append({"type": "text", "text": "(no answer)"})
    return {"role": "assistant", "content": content}


def wire_messages(history: list[Entry]) -> list[dict[str, Any]]:
    """The neutral history as Messages API messages, the newest block marked for the cache."""
    messages: list[dict[str, Any]] = []
    for entry in history:
        if isinstance(entry, UserText):
            messages.append({"role": "user", "content": [{"type": "text", "text": entry.text}]})
        elif isinstance(entry, ToolOutputs):
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": out.call_id, "content": out.text, "is_error": out.is_error}
                for out in entry.outputs]})
        else:
            messages.append(_assistant(entry))
    last = messages[-1]["content"][-1]
    messages[-1]["content"][-1] = {**last, "cache_control": EPHEMERAL}
    return messages


def parse_response(response: Any) -> ModelReply:
    text: list[str] = []
    thinking: list[Thinking] = []
    calls: list[ToolCallData] = []
    for block in response.content:
        if block.type == "text":
            text.append(block.text)
        elif block.type == "thinking":
            thinking.append(Thinking(text=block.thinking, signature=block.signature))
        elif block.type == "redacted_thinking":
            thinking.append(Thinking(redacted=block.data))
        elif block.type == "tool_use":
            calls.append(ToolCallData(id=block.id, name=block.name, arguments=json.dumps(block.input)))
    usage = response.usage
    written = getattr(usage, "cache_creation_input_tokens", None) or 0
    read = getattr(usage, "cache_read_input_tokens", None) or 0
    return ModelReply(text="".join(text), calls=tuple(calls), input_tokens=(usage.input_tokens or 0) + written + read,
                      output_tokens=usage.output_tokens or 0, stop_reason=response.stop_reason, model=response.model,
                      thinking=tuple(thinking), cache_read_tokens=read, cache_write_tokens=written)


class AnthropicAgent(LLMAgent):
    """Claude models through the Messages API."""

    name = "anthropic"
    env_key = "ANTHROPIC_API_KEY"
    default_model = "claude-opus-4-5"
    default_api = "https://api.anthropic.com"
    default_max_tokens = 8192

    def _check_options(self) -> None:
        if self.reasoning_effort is not None:
            raise AgentError("--reasoning-effort is for the openai agent; Anthropic models take --thinking-budget")
        if self.thinking_budget is not None:
            if self.thinking_budget < MIN_THINKING_BUDGET:
                raise AgentError(f"--thinking-budget must be at least {MIN_THINKING_BUDGET} tokens "
                                 f"(the API's minimum), got {self.thinking_budget}")
            if self.temperature is not None and self.temperature != 1:
                raise AgentError("extended thinking runs at temperature 1 only: leave the temperature out "
                                 "or drop --thinking-budget")

    def _make_client(self, api_key: str) -> Any:
        kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": self.max_retries, "timeout": self.timeout_s}
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        return anthropic.Anthropic(**kwargs)

    def send(self, system: str, history: list[Entry]) -> ModelReply:
        max_tokens = self.max_tokens or self.default_max_tokens
        kwargs: dict[str, Any] = {
            "model": self.model,
            "system": [{"type": "text", "text": system, "cache_control": EPHEMERAL}],
            "messages": wire_messages(history),
            "tools": WIRE_TOOLS,
            "tool_choice": {"type": "auto"},
        }
        if self.thinking_budget is not None:
            if max_tokens <= self.thinking_budget:  # the answer needs room beyond the thinking
                max_tokens = self.thinking_budget + (self.default_max_tokens or 8192)
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": self.thinking_budget}
            kwargs["extra_headers"] = {"anthropic-beta": INTERLEAVED_THINKING_BETA}
        if self.temperature is not None:
            # This SDK's `create` has no temperature argument; the API takes it in the body on
            # the models that still support it.
            kwargs["extra_body"] = {"temperature": self.temperature}
        try:
            response = self._client.messages.create(max_tokens=max_tokens, **kwargs)
        except anthropic.APIError as exc:
            raise self._translate(exc, anthropic) from None
        return parse_response(response)
