"""Prices of model tokens, for the cost of each proposal.

Prices are USD per million tokens: input, output, and prompt-cache reads and
writes (Anthropic: reads 0.1x and 5-minute writes 1.25x the input price;
OpenAI: cached input at its listed price, writes at the input price). Token
counts follow `Usage`: `input_tokens` includes the cached ones, so only the
rest is priced as plain input. A model id is looked up
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
    cache_read = 0.05     # optional, default: the input price
    cache_write = 0.625   # optional, default: the input price
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
    cache_read: float | None = None
    """Prompt tokens read from the cache (None: the input price)."""
    cache_write: float | None = None
    """Prompt tokens written to the cache (None: the input price)."""

    def cost(self, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0) -> float:
        """`input_tokens` counts all prompt tokens, the cached ones included."""
        plain = max(0, input_tokens - cache_read - cache_write)
        read = self.input if self.cache_read is None else self.cache_read
        write = self.input if self.cache_write is None else self.cache_write
        return (plain * self.input + cache_read * read + cache_write * write + output_tokens * self.output) / 1_000_000


def _claude(input_price: float, output_price: float) -> Price:
    """Anthropic's rule: cache reads 0.1x, 5-minute cache writes 1.25x the input price."""
    return Price(input_price, output_price, cache_read=input_price * 0.1, cache_write=input_price * 1.25)


# List prices (USD per million tokens) as published by the providers; override with a price file.
DEFAULT_PRICES: dict[str, Price] = {
    # Anthropic
    "claude-opus-4-5": _claude(5.0, 25.0),
    "claude-opus-4-1": _claude(15.0, 75.0),
    "claude-opus-4": _claude(15.0, 75.0),
    "claude-sonnet-4-5": _claude(3.0, 15.0),
    "claude-sonnet-4": _claude(3.0, 15.0),
    "claude-3-7-sonnet": _claude(3.0, 15.0),
    "claude-3-5-sonnet": _claude(3.0, 15.0),
    "claude-haiku-4-5": _claude(1.0, 5.0),
    "claude-3-5-haiku": _claude(0.8, 4.0),
    "claude-3-haiku": _claude(0.25, 1.25),
    # OpenAI (cached input as listed; no charge for writing the cache)
    "gpt-5": Price(1.25, 10.0, cache_read=0.125),
    "gpt-5-mini": Price(0.25, 2.0, cache_read=0.025),
    "gpt-5-nano": Price(0.05, 0.4, cache_read=0.005),
    "gpt-4.1": Price(2.0, 8.0, cache_read=0.5),
    "gpt-4.1-mini": Price(0.4, 1.6, cache_read=0.1),
    "gpt-4.1-nano": Price(0.1, 0.4, cache_read=0.025),
    "gpt-4o": Price(2.5, 10.0, cache_read=1.25),
    "gpt-4o-mini": Price(0.15, 0.6, cache_read=0.075),
    "o3": Price(2.0, 8.0, cache_read=0.5),
    "o3-mini": Price(1.1, 4.4, cache_read=0.55),
    "o4-mini": Price(1.1, 4.4, cache_read=0.275),
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

    def cost(self, model: str, input_tokens: int, output_tokens: int, cache_read: int = 0,
             cache_write: int = 0) -> float:
        price = self.price_for(model)
        return 0.0 if price is None else price.cost(input_tokens, output_tokens, cache_read, cache_write)

    def updated(self, extra: Mapping[str, Price]) -> "PriceTable":
        return PriceTable({**self.prices, **extra})


_PRICE_KEYS = ("input", "output", "cache_read", "cache_write")


def _parse_prices(data: Any, where: str) -> dict[str, Price]:
    if isinstance(data, dict) and isinstance(data.get("models"), dict):
        data = data["models"]
    if not isinstance(data, dict):
        raise AgentError(f"{where}: expected a mapping of model -> {{input, output}} USD per million tokens")
    out: dict[str, Price] = {}
    for model, entry in data.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= set(entry) <= set(_PRICE_KEYS):
            raise AgentError(f"{where}: model {model!r} needs 'input' and 'output' and optionally 'cache_read' "
                             "and 'cache_write' (USD per million tokens)")
        values: dict[str, float] = {}
        for key in _PRICE_KEYS:
            if key not in entry:
                continue
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise AgentError(f"{where}: model {model!r}: {key!r} must be a non-negative number")
            values[key] = float(value)
        out[str(model)] = Price(**values)
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
