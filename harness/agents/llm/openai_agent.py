"""`--agent openai`: Chat Completions of the official `openai` SDK, with the function tool `submit_trial`.

Works with OpenAI and with OpenAI-compatible servers through `base_url`
(vLLM `http://host:8000/v1`, llama.cpp server `http://host:8080/v1`, Ollama
`http://host:11434/v1`). The key comes from `OPENAI_API_KEY` only; with a
`base_url` and no key a dummy key is sent. The tool is required
(`tool_choice="required"`); a server that answers in plain text instead is
still understood when the text holds the JSON arguments. The SDK retries
408/409/429/5xx, connection errors and timeouts with exponential backoff
(`max_retries`); what is left after that raises `LLMUnavailable`.
"""

from __future__ import annotations

from typing import Any

import openai

from harness.agents.llm.agent import LLMAgent
from harness.agents.llm.cache import ModelReply, ToolCallData
from harness.agents.llm.prompt import TOOL_DESCRIPTION, TOOL_NAME, TOOL_SCHEMA, Prompt

TOOL = {"type": "function", "function": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": TOOL_SCHEMA}}


class OpenAIAgent(LLMAgent):
    """OpenAI models, or any model behind an OpenAI-compatible server."""

    name = "openai"
    env_key = "OPENAI_API_KEY"
    default_model = "gpt-5"
    default_api = "https://api.openai.com/v1"
    default_max_tokens = None

    def _make_client(self, api_key: str) -> Any:
        kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": self.max_retries, "timeout": self.timeout_s}
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        return openai.OpenAI(**kwargs)

    def _begin(self, prompt: Prompt) -> list[dict[str, Any]]:
        return [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]

    def _send(self, prompt: Prompt, messages: list[dict[str, Any]]) -> ModelReply:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "tools": [TOOL], "tool_choice": "required"}
        if self.max_tokens:
            kwargs["max_completion_tokens"] = self.max_tokens
        try:
            response = self._client.chat.completions.create(**kwargs)
        except openai.APIError as exc:
            raise self._translate(exc, openai) from None
        if not response.choices:
            return ModelReply(model=response.model, stop_reason="no choices")
        choice = response.choices[0]
        message = choice.message
        calls = tuple(
            ToolCallData(id=call.id, name=call.function.name, arguments=call.function.arguments or "")
            for call in (message.tool_calls or [])
            if getattr(call, "function", None) is not None
        )
        usage = response.usage
        return ModelReply(
            text=message.content or "",
            calls=calls,
            input_tokens=(usage.prompt_tokens or 0) if usage else 0,
            output_tokens=(usage.completion_tokens or 0) if usage else 0,
            stop_reason=choice.finish_reason,
            model=response.model,
        )

    def _continue(self, messages: list[dict[str, Any]], reply: ModelReply, error: str) -> list[dict[str, Any]]:
        assistant: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.calls:
            assistant["tool_calls"] = [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in reply.calls
            ]
        elif not reply.text:
            assistant["content"] = "(no answer)"
        follow: list[dict[str, Any]] = [
            {"role": "tool", "tool_call_id": call.id, "content": error if i == 0 else "Ignored: submit one trial per answer."}
            for i, call in enumerate(reply.calls)
        ]
        if not follow:
            follow.append({"role": "user", "content": error})
        return messages + [assistant] + follow
