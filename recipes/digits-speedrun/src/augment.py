"""Training-time augmentation of a batch (the evaluator never calls it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import config


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Augment a (B, 1, 16, 16) batch with the AUGMENT policy."""
    if config.AUGMENT == "none":
        return x
    if config.AUGMENT not in ("shift", "shift_scale"):
        raise ValueError(f"unknown AUGMENT {config.AUGMENT!r}")
    b = x.shape[0]
    # Random translation by up to SHIFT pixels (and a mild zoom), as one affine grid.
    theta = torch.zeros(b, 2, 3)
    scale = torch.ones(b)
    if config.AUGMENT == "shift_scale":
        scale = 1 + (torch.rand(b, generator=gen) - 0.5) * 0.2
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    shift = (torch.randint(-config.SHIFT, config.SHIFT + 1, (b, 2), generator=gen).float()) * 2 / x.shape[-1]
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
