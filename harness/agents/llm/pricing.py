"""Prices of model tokens, for the cost of each proposal.

Prices are USD per million tokens, input and output. A model id is looked up
exactly, then as a dated snapshot of a listed model (`claude-sonnet-4-5-20250929`,
`gpt-4.1-2025-04-14`, `...-latest`). A model the table does not know costs 0.0
(local servers are free; for a paid API give a price file, or `--max-cost`
cannot work): `price_for` returns None then, so the caller can warn (see
`LLMAgent.priced`). Newer models than the table knows need a price file.

A price file overrides or extends the table: JSON or TOML (by suffix), either
flat or under a `models` key::

    {"my-model": {"input": 0.5, "output": 1.5}}

    [models."my-model"]
    input = 0.5
    output = 1.5
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from harness.agents.base import AgentError


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000


# List prices (USD per million tokens) as published by the providers; override with a price file.
DEFAULT_PRICES: dict[str, Price] = {
    # Anthropic
    "claude-opus-4-5": Price(5.0, 25.0),
    "claude-opus-4-1": Price(15.0, 75.0),
    "claude-opus-4": Price(15.0, 75.0),
    "claude-sonnet-4-5": Price(3.0, 15.0),
    "claude-sonnet-4": Price(3.0, 15.0),
    "claude-3-7-sonnet": Price(3.0, 15.0),
    "claude-3-5-sonnet": Price(3.0, 15.0),
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-3-5-haiku": Price(0.8, 4.0),
    "claude-3-haiku": Price(0.25, 1.25),
    # OpenAI
    "gpt-5": Price(1.25, 10.0),
    "gpt-5-mini": Price(0.25, 2.0),
    "gpt-5-nano": Price(0.05, 0.4),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.4, 1.6),
    "gpt-4.1-nano": Price(0.1, 0.4),
    "gpt-4o": Price(2.5, 10.0),
    "gpt-4o-mini": Price(0.15, 0.6),
    "o3": Price(2.0, 8.0),
    "o3-mini": Price(1.1, 4.4),
    "o4-mini": Price(1.1, 4.4),
}


_SNAPSHOT = re.compile(r"^(.+?)-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")
"""`claude-sonnet-4-5-20250929`, `gpt-4.1-2025-04-14`, `...-latest`: snapshots priced like their model."""


class PriceTable:
    """Model id -> price, with prefix lookup."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.prices: dict[str, Price] = dict(DEFAULT_PRICES if prices is None else prices)

    def price_for(self, model: str) -> Price | None:
        """The price of `model`: its own entry, or that of the model it is a dated snapshot of."""
        if model in self.prices:
            return self.prices[model]
        found = _SNAPSHOT.match(model)
        if found and found.group(1) in self.prices:
            return self.prices[found.group(1)]
        return None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        price = self.price_for(model)
        return 0.0 if price is None else price.cost(input_tokens, output_tokens)

    def updated(self, extra: Mapping[str, Price]) -> "PriceTable":
        return PriceTable({**self.prices, **extra})


def _parse_prices(data: Any, where: str) -> dict[str, Price]:
    if isinstance(data, dict) and isinstance(data.get("models"), dict):
        data = data["models"]
    if not isinstance(data, dict):
        raise AgentError(f"{where}: expected a mapping of model -> {{input, output}} USD per million tokens")
    out: dict[str, Price] = {}
    for model, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
            raise AgentError(f"{where}: model {model!r} needs exactly 'input' and 'output' (USD per million tokens)")
        values = []
        for key in ("input", "output"):
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise AgentError(f"{where}: model {model!r}: {key!r} must be a non-negative number")
            values.append(float(value))
        out[str(model)] = Price(*values)
    return out


def load_prices(source: str | Path | Mapping[str, Any] | None) -> PriceTable:
    """The default table, overridden by `source`: a JSON/TOML file, or a mapping of the same shape."""
    table = PriceTable()
    if source is None:
        return table
    if isinstance(source, Mapping):
        return table.updated(_parse_prices(dict(source), "price table"))
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentError(f"{path}: cannot read the price file: {exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AgentError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
    return table.updated(_parse_prices(data, str(path)))
