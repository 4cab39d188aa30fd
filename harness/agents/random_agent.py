"""Random search over the knob space, one or two knobs at a time from the current best."""

from __future__ import annotations

import random

from harness.agents.base import AgentContext, AgentError
from harness.agents.knobs import (
    config_key,
    editable_knobs,
    known_configs,
    full_assignment,
    knob_diff,
    knob_hypothesis,
    knobs_for,
    read_knobs,
    same_value,
)
from harness.types import Proposal

ATTEMPTS = 20
"""Draws tried before settling for a configuration that was already tried."""


class RandomAgent:
    """Changes 1-2 knobs of the current best to other choices, uniformly at random."""

    name = "random"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def propose(self, ctx: AgentContext) -> Proposal | None:
        spec = ctx.spec
        if not spec.knobs:
            raise AgentError(f"recipe {spec.name!r} has no knobs; the random agent needs some")
        parent_text = ctx.reader(ctx.best)
        current = read_knobs(spec, parent_text)
        space, specialist = knobs_for(spec, ctx.specialist)
        present = {k.name for k in editable_knobs(spec, parent_text)}
        candidates = [k for k in space if k.name in present]
        # A knob is only worth picking when it has a choice other than its current value.
        candidates = [
            k for k in candidates if any(not same_value(c, current[k.name]) for c in k.choices)
        ]
        if not candidates:
            raise AgentError(
                f"recipe {spec.name!r}: no knob line found in trial {ctx.best} to edit"
                + (f" for specialist {specialist!r}" if specialist else "")
            )

        rng = random.Random(ctx.seed)
        tried = known_configs(ctx)
        first: dict[str, object] | None = None
        chosen: dict[str, object] | None = None
        for _ in range(ATTEMPTS):
            changes = self._draw(rng, candidates, current)
            if first is None:
                first = changes
            if config_key(full_assignment(current, changes)) not in tried:
                chosen = changes
                break
        changes = chosen if chosen is not None else first
        assert changes is not None

        return Proposal(
            agent=self.name,
            parent=ctx.best,
            knobs=full_assignment(current, changes),
            hypothesis=knob_hypothesis(changes, current),
            diff=knob_diff(spec, parent_text, changes),
            specialist=specialist,
        )

    @staticmethod
    def _draw(rng: random.Random, candidates: list, current: dict[str, object | None]) -> dict[str, object]:
        count = min(rng.choice((1, 2)), len(candidates))
        picked = rng.sample(candidates, count)
        picked.sort(key=lambda k: candidates.index(k))
        changes: dict[str, object] = {}
        for knob in picked:
            options = [c for c in knob.choices if not same_value(c, current[knob.name])]
            changes[knob.name] = rng.choice(options)
        return changes
