"""The audited transcript of one session: every message, tool call and result, as JSON lines.

One JSON object per line, in order::

    {"type": "session", "trial", "agent", "model", "api", "specialist", "parent", "settings", "started"}
    {"type": "system", "text"}                      the standing brief (recipe, rules, knowledge)
    {"type": "user", "text"}                        the opening message, and any nudge
    {"type": "assistant", "turn", "model", "stop_reason", "thinking": [str], "text",
     "calls": [{"id", "name", "arguments"}], "usage": {...}, "cost_usd", "seconds", "replayed"}
    {"type": "tool_result", "turn", "call_id", "name", "is_error", "text"}
    {"type": "end", "reason", "note", "turns", "usage": {...}, "cost_usd", "seconds"}

`thinking` holds what the API returned of the model's thinking (a summary on
models that summarise it, "[redacted]" for encrypted blocks); signatures are
not kept. `replayed` marks a turn answered from the run's response cache
(after a resume) rather than by a request. API keys are scrubbed from the
whole text before it leaves the agent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from harness.agents.llm.cache import ModelReply

TRANSCRIPT_FORMAT = "jsonl"
RESULT_CHARS = 100_000
"""Characters of one tool result kept in the transcript (what the model read beyond that is cut, and said so)."""


def usage_json(input_tokens: int, output_tokens: int, cache_read: int, cache_write: int,
               reasoning: int = 0) -> dict[str, int]:
    data = {"input_tokens": input_tokens, "output_tokens": output_tokens, "cache_read_tokens": cache_read,
            "cache_write_tokens": cache_write}
    if reasoning:
        data["reasoning_tokens"] = reasoning
    return data


@dataclass
class TranscriptRecorder:
    """Collects the events of one session."""

    scrub: Callable[[str], str]
    events: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def session(self, **header: Any) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.events.append({"type": "session", **header, "started": stamp})

    def text(self, kind: str, text: str) -> None:
        self.events.append({"type": kind, "text": text})

    def assistant(self, turn: int, reply: ModelReply, cost_usd: float, seconds: float) -> None:
        self.events.append({
            "type": "assistant",
            "turn": turn,
            "model": reply.model,
            "stop_reason": reply.stop_reason,
            "thinking": [t.text if not t.redacted else "[redacted]" for t in reply.thinking],
            "text": reply.text,
            "calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.calls],
            "usage": usage_json(reply.input_tokens, reply.output_tokens, reply.cache_read_tokens,
                                reply.cache_write_tokens, reply.reasoning_tokens),
            "cost_usd": round(cost_usd, 8),
            "seconds": round(seconds, 3),
            "replayed": reply.cached,
        })

    def tool_result(self, turn: int, call_id: str, name: str, text: str, is_error: bool) -> None:
        kept = text if len(text) <= RESULT_CHARS else (
            text[:RESULT_CHARS] + f"\n[transcript: cut at {RESULT_CHARS:,} of {len(text):,} characters]")
        self.events.append({"type": "tool_result", "turn": turn, "call_id": call_id, "name": name,
                            "is_error": is_error, "text": kept})

    def end(self, reason: str, note: str, turns: int, usage: dict[str, int], cost_usd: float) -> None:
        self.events.append({"type": "end", "reason": reason, "note": note, "turns": turns, "usage": usage,
                            "cost_usd": round(cost_usd, 8), "seconds": round(time.monotonic() - self.started, 3)})

    def render(self) -> str:
        """The JSON lines, secrets scrubbed."""
        lines = [json.dumps(event, sort_keys=True, ensure_ascii=True) for event in self.events]
        return self.scrub("\n".join(lines) + "\n")
