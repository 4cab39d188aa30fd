"""The optimiser: AdamW, with weight decay on matrices only."""

from __future__ import annotations

import torch
from torch import nn

import config


def build_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.LR, betas=(0.9, config.BETA2))


def clip(model: nn.Module) -> None:
    if config.GRAD_CLIP > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.GRAD_CLIP)
