"""`--agent anthropic`: the Messages API of the official `anthropic` SDK, with the tool `submit_trial`.

The key comes from `ANTHROPIC_API_KEY` only. `base_url` points the client at
another server speaking the Messages API (a proxy, a gateway, the tests' fake);
with a `base_url` and no key a dummy key is sent. The SDK retries 408/409/429/5xx,
connection errors and timeouts with exponential backoff (`max_retries`); what is
left after that raises `LLMUnavailable`.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic

from harness.agents.llm.agent import LLMAgent
from harness.agents.llm.cache import ModelReply, ToolCallData
from harness.agents.llm.prompt import TOOL_DESCRIPTION, TOOL_NAME, TOOL_SCHEMA, Prompt

TOOL = {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": TOOL_SCHEMA}


def _as_object(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return {"raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


class AnthropicAgent(LLMAgent):
    """Claude models through the Messages API."""

    name = "anthropic"
    env_key = "ANTHROPIC_API_KEY"
    default_model = "claude-opus-4-5"
    default_api = "https://api.anthropic.com"
    default_max_tokens = 8192

    def _make_client(self, api_key: str) -> Any:
        kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": self.max_retries, "timeout": self.timeout_s}
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        return anthropic.Anthropic(**kwargs)

    def _begin(self, prompt: Prompt) -> list[dict[str, Any]]:
        return [{"role": "user", "content": prompt.user}]

    def _send(self, prompt: Prompt, messages: list[dict[str, Any]]) -> ModelReply:
        try:
            response = self._client.messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                system=prompt.system,
                messages=messages,
                tools=[TOOL],
                tool_choice={"type": "tool", "name": TOOL_NAME},
            )
        except anthropic.APIError as exc:
            raise self._translate(exc, anthropic) from None
        text = "".join(getattr(block, "text", "") for block in response.content if block.type == "text")
        calls = tuple(
            ToolCallData(id=block.id, name=block.name, arguments=json.dumps(block.input))
            for block in response.content
            if block.type == "tool_use"
        )
        usage = response.usage
        tokens_in = (usage.input_tokens or 0) + (getattr(usage, "cache_creation_input_tokens", None) or 0) \
            + (getattr(usage, "cache_read_input_tokens", None) or 0)
        return ModelReply(text=text, calls=calls, input_tokens=tokens_in, output_tokens=usage.output_tokens or 0,
                          stop_reason=response.stop_reason, model=response.model)

    def _continue(self, messages: list[dict[str, Any]], reply: ModelReply, error: str) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for call in reply.calls:
            content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": _as_object(call.arguments)})
        if not content:
            content.append({"type": "text", "text": "(no answer)"})
        results: list[dict[str, Any]] = [
            {"type": "tool_result", "tool_use_id": call.id, "is_error": True,
             "content": error if i == 0 else "Ignored: submit one trial per answer."}
            for i, call in enumerate(reply.calls)
        ]
        if not results:
            results.append({"type": "text", "text": error})
        return messages + [{"role": "assistant", "content": content}, {"role": "user", "content": results}]
