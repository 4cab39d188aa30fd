"""Training objective (the evaluator scores accuracy, not this loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import config


def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, label_smoothing=config.LABEL_SMOOTHING)
