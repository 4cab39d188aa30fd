"""The response cache: a resumed run never pays twice for the same proposal.

One JSON file per trial under the run's cache folder (the harness passes
`RUN/.harness/llm-cache`, scratch space outside the lineage)::

    t0005.json  {"version": 2, "trial": "t0005", "provider": "anthropic",
                 "model": "...", "prompt_sha256": "...", "replies": [reply, ...]}

`replies[i]` is the model's answer to turn `i` of the proposal's session,
stored as soon as it arrives, so the key is (run, trial number, turn). A later
call for the same trial replays those answers (the tools run again on the
lineage) instead of asking the API; only turns past the stored ones make
requests.
Files written by another provider or model are ignored (and overwritten).

Replies hold what the model said (text, tool calls, token counts), never the
request headers: no API key can end up here.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.types import trial_id

CACHE_VERSION = 2


@dataclass(frozen=True)
class ToolCallData:
    """One tool call of a reply."""

    id: str
    name: str
    arguments: str
    """The arguments as JSON text, exactly as received (may be invalid JSON)."""


@dataclass(frozen=True)
class Thinking:
    """One block of the model's extended thinking (Anthropic), sent back unchanged in later turns."""

    text: str = ""
    """The thinking (a summary on models that summarise it); empty when redacted."""
    signature: str = ""
    """The API's signature of the block: the API refuses a history whose thinking was altered."""
    redacted: str = ""
    """The encrypted data of a `redacted_thinking` block (then `text` is empty)."""


@dataclass(frozen=True)
class ModelReply:
    """What one API response said, provider-neutral."""

    text: str = ""
    calls: tuple[ToolCallData, ...] = ()
    input_tokens: int = 0
    """Prompt tokens, the cached ones included."""
    output_tokens: int = 0
    stop_reason: str | None = None
    model: str | None = None
    """The model id the API reported."""
    thinking: tuple[Thinking, ...] = ()
    """Thinking blocks, in the order received (they precede the text and calls)."""
    cache_read_tokens: int = 0
    """Of `input_tokens`: read from the prompt cache."""
    cache_write_tokens: int = 0
    """Of `input_tokens`: written to the prompt cache."""
    reasoning_tokens: int = 0
    """Of `output_tokens`: hidden reasoning (OpenAI reasoning models)."""
    cached: bool = field(default=False, compare=False)
    """True when replayed from the cache (no request was made)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("cached")
        data["calls"] = [asdict(c) for c in self.calls]
        data["thinking"] = [asdict(t) for t in self.thinking]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModelReply":
        calls = tuple(ToolCallData(**c) for c in data.get("calls", []))
        thinking = tuple(Thinking(**t) for t in data.get("thinking", []))
        return cls(
            text=str(data.get("text", "")),
            calls=calls,
            input_tokens=int(data.get("input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            stop_reason=data.get("stop_reason"),
            model=data.get("model"),
            thinking=thinking,
            cache_read_tokens=int(data.get("cache_read_tokens", 0)),
            cache_write_tokens=int(data.get("cache_write_tokens", 0)),
            reasoning_tokens=int(data.get("reasoning_tokens", 0)),
            cached=True,
        )


class ResponseCache:
    """Replies per (trial number, attempt) under `folder`, for one provider and model."""

    def __init__(self, folder: str | Path, provider: str, model: str) -> None:
        self.folder = Path(folder)
        self.provider = provider
        self.model = model

    def path(self, trial_number: int) -> Path:
        return self.folder / f"{trial_id(trial_number)}.json"

    def load(self, trial_number: int) -> list[ModelReply]:
        """The stored replies of one trial, in attempt order; [] when none (or unusable)."""
        path = self.path(trial_number)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        if (
            not isinstance(data, dict)
            or data.get("version") != CACHE_VERSION
            or data.get("provider") != self.provider
            or data.get("model") != self.model
            or not isinstance(data.get("replies"), list)
        ):
            return []
        try:
            return [ModelReply.from_json(r) for r in data["replies"]]
        except (TypeError, ValueError, KeyError):
            return []

    def store(self, trial_number: int, replies: list[ModelReply], prompt_sha256: str, scrub=None) -> None:
        """Write the replies of one trial atomically (`scrub` filters the text written)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {
            "version": CACHE_VERSION,
            "trial": trial_id(trial_number),
            "provider": self.provider,
            "model": self.model,
            "prompt_sha256": prompt_sha256,
            "replies": [r.to_json() for r in replies],
        }
        text = json.dumps(payload, indent=1, sort_keys=True)
        if scrub is not None:
            text = scrub(text)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.path(trial_number))
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
