"""`canonical_json` writes exactly what `json.dumps(sort_keys=True, indent=1, ensure_ascii=True,
allow_nan=False)` writes (the canonical record bytes replay checks), on seeded random data."""

from __future__ import annotations

import json
import math
import random

import pytest

from trajectories.canonical_json import canonical_json

STRINGS = ["", "plain", "ünïcödé ✓ 🚀", "quote \" backslash \\ slash /", "ctrl \x00\x01\x1f\x7f tab\t nl\n cr\r",
           "\u2028\u2029", "\ud800 lone surrogate"]
NUMBERS = [0, -1, 2**70, -(2**63), 0.0, -0.0, 1.5, 1e16, 1e-7, 123456789.123456789, 5e-324, 1.7976931348623157e308]


def random_value(rng: random.Random, depth: int = 0):
    pick = rng.random()
    if depth > 4 or pick < 0.45:
        return rng.choice([*STRINGS, *NUMBERS, True, False, None, rng.random(), rng.randint(-10**6, 10**6)])
    if pick < 0.75:
        return {rng.choice(STRINGS) + str(rng.randint(0, 9)): random_value(rng, depth + 1)
                for _ in range(rng.randint(0, 5))}
    return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]


def reference(data) -> str:
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=True, allow_nan=False)


def test_same_text_as_json_dumps() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        data = random_value(rng)
        assert canonical_json(data) == reference(data)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"a": [1, math.nan]}])
def test_non_finite_floats_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        reference(bad)
    with pytest.raises(ValueError):
        canonical_json(bad)


def test_unusual_values_fall_back_to_json() -> None:
    data = {1: "int key", 2: (1, 2)}
    assert canonical_json(data) == reference(data)
