"""`--agent openai`: research sessions over Chat Completions of the official `openai` SDK.

Works with OpenAI and with OpenAI-compatible servers through `base_url` (vLLM
`http://host:8000/v1`, llama.cpp server `http://host:8080/v1`, Ollama
`http://host:11434/v1`, Gemini's OpenAI endpoint). The key comes from
`OPENAI_API_KEY` (or the variable a team file names); with a `base_url` and no
key a dummy key is sent. The SDK retries 408/409/429/5xx, connection errors and
timeouts with exponential backoff (`max_retries`); what is left after that
raises `LLMUnavailable`.

Every turn offers all the session tools with `tool_choice` auto. Prompt caching
is automatic on OpenAI for a repeated prefix: the system message (the stable
brief) comes first, the tools in a fixed order, then the session's messages,
so every turn repeats the previous request's prefix. `--reasoning-effort` is
passed to reasoning models; a server that returns `reasoning_content` (vLLM,
DeepSeek) has it kept in the transcript as the turn's thinking (never sent back).
"""

from __future__ import annotations

from typing import Any

import openai

from harness.agents.base import AgentError
from harness.agents.llm.agent import LLMAgent
from harness.agents.llm.cache import ModelReply, Thinking, ToolCallData
from harness.agents.llm.session import Entry, ToolOutputs, UserText
from harness.agents.llm.tools import TOOLS

WIRE_TOOLS = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                 "parameters": t.schema}} for t in TOOLS]
REASONING_EFFORTS = ("minimal", "low", "medium", "high")


def wire_messages(system: str, history: list[Entry]) -> list[dict[str, Any]]:
    """The neutral history as Chat Completions messages, the system message first."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for entry in history:
        if isinstance(entry, UserText):
            messages.append({"role": "user", "content": entry.text})
        elif isinstance(entry, ToolOutputs):
            messages.extend({"role": "tool", "tool_call_id": out.call_id,
                             "content": ("ERROR: " if out.is_error else "") + out.text} for out in entry.outputs)
        else:
            assistant: dict[str, Any] = {"role": "assistant", "content": entry.text or None}
            if entry.calls:
                assistant["tool_calls"] = [
                    {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                    for call in entry.calls]
            elif not entry.text:
                assistant["content"] = "(no answer)"
            messages.append(assistant)
    return messages


def parse_response(response: Any) -> ModelReply:
    if not response.choices:
        return ModelReply(model=response.model, stop_reason="no choices")
    choice = response.choices[0]
    message = choice.message
    calls = tuple(
        ToolCallData(id=call.id, name=call.function.name, arguments=call.function.arguments or "")
        for call in (message.tool_calls or [])
        if getattr(call, "function", None) is not None
    )
    reasoning = (message.model_extra or {}).get("reasoning_content") if message.model_extra else None
    usage = response.usage
    prompt_details = getattr(usage, "prompt_tokens_details", None) if usage else None
    output_details = getattr(usage, "completion_tokens_details", None) if usage else None
    return ModelReply(
        text=message.content or "",
        calls=calls,
        input_tokens=(usage.prompt_tokens or 0) if usage else 0,
        output_tokens=(usage.completion_tokens or 0) if usage else 0,
        stop_reason=choice.finish_reason,
        model=response.model,
        thinking=(Thinking(text=reasoning),) if isinstance(reasoning, str) and reasoning else (),
        cache_read_tokens=(getattr(prompt_details, "cached_tokens", None) or 0) if prompt_details else 0,
        reasoning_tokens=(getattr(output_details, "reasoning_tokens", None) or 0) if output_details else 0,
    )


class OpenAIAgent(LLMAgent):
    """OpenAI models, or any model behind an OpenAI-compatible server."""

    name = "openai"
    env_key = "OPENAI_API_KEY"
    default_model = "gpt-5"
    default_api = "https://api.openai.com/v1"
    default_max_tokens = None

    def _check_options(self) -> None:
        if self.thinking_budget is not None:
            raise AgentError("--thinking-budget is for the anthropic agent; OpenAI models take --reasoning-effort")
        if self.reasoning_effort is not None and self.reasoning_effort not in REASONING_EFFORTS:
            raise AgentError(f"--reasoning-effort must be one of {', '.join(REASONING_EFFORTS)}, "
                             f"got {self.reasoning_effort!r}")

    def _make_client(self, api_key: str) -> Any:
        kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": self.max_retries, "timeout": self.timeout_s}
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        return openai.OpenAI(**kwargs)

    def send(self, system: str, history: list[Entry]) -> ModelReply:
        kwargs: dict[str, Any] = {"model": self.model, "messages": wire_messages(system, history),
                                  "tools": WIRE_TOOLS, "tool_choice": "auto"}
        if self.max_tokens:
            kwargs["max_completion_tokens"] = self.max_tokens
        if self.reasoning_effort is not None:
            kwargs["reasoning_effort"] = self.reasoning_effort
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        try:
            response = self._client.chat.completions.create(**kwargs)
        except openai.APIError as exc:
            raise self._translate(exc, openai) from None
        return parse_response(response)
