"""Learning-rate schedule: warm-up, then cosine / linear decay (or constant)."""

from __future__ import annotations

import math

import config


def lr_factor(step: int, total: int) -> float:
    """Multiplier of LR at `step` (0-based) of `total` steps."""
    warmup = min(config.WARMUP_STEPS, max(total - 1, 0))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if config.SCHEDULE == "cosine":
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
    if config.SCHEDULE == "linear":
        return 0.1 + 0.9 * (1 - progress)
    if config.SCHEDULE == "constant":
        return 1.0
    raise ValueError(f"unknown SCHEDULE {config.SCHEDULE!r}")
