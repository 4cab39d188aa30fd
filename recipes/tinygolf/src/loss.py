"""Training objective: next-byte cross-entropy, plus an optional z-loss on the logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import config


def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    flat = logits.flatten(0, 1)
    loss = F.cross_entropy(flat, targets.flatten())
    if config.Z_LOSS:
        loss = loss + config.Z_LOSS * torch.logsumexp(flat, dim=-1).pow(2).mean()
    return loss
