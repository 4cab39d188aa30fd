"""Collision classifier: per-frame features -> temporal encoder -> head -> logit."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MeanPool(nn.Module):
    """Bag of frames: a per-frame MLP averaged over time (ignores order)."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.frame = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame(x).mean(dim=1)


class GRUEncoder(nn.Module):
    """Recurrent encoder; the final state summarises the clip."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.gru = nn.GRU(hidden, hidden, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(self.proj(x))
        return h[-1]


class TCN(nn.Module):
    """Dilated 1-D convolutions, max-pooled over time (an event detector)."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        layers, width = [], dim
        for dilation in (1, 2, 4):
            layers += [nn.Conv1d(width, hidden, 3, padding=dilation, dilation=dilation), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(1, 2)).amax(dim=2)


class TransformerEncoder(nn.Module):
    """One self-attention layer with learned positions, mean-pooled."""

    def __init__(self, dim: int, hidden: int, dropout: float, max_frames: int = 64):
        super().__init__()
        self.proj = nn.Linear(dim, hidden)
        self.pos = nn.Parameter(torch.zeros(1, max_frames, hidden))
        self.layer = nn.TransformerEncoderLayer(
            hidden, nhead=4, dim_feedforward=2 * hidden, dropout=dropout, batch_first=True
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x) + self.pos[:, : x.shape[1]]
        return self.layer(h).mean(dim=1)


ENCODERS = {"meanpool": MeanPool, "gru": GRUEncoder, "tcn": TCN, "transformer": TransformerEncoder}


class CollisionModel(nn.Module):
    def __init__(self, dim: int, encoder: str, head: str, hidden: int, dropout: float):
        super().__init__()
        self.encoder = ENCODERS[encoder](dim, hidden, dropout)
        if head == "linear":
            self.head = nn.Linear(hidden, 1)
        elif head == "mlp":
            self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1))
        else:
            raise ValueError(f"unknown head {head!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, frames, dim) features -> (batch,) collision logits."""
        return self.head(self.encoder(x)).squeeze(-1)


def build_model(cfg: dict, dim: int) -> CollisionModel:
    """Build the model described by a config dict (see train.py's `config_dict`)."""
    if cfg["ENCODER"] not in ENCODERS:
        raise ValueError(f"unknown encoder {cfg['ENCODER']!r}")
    return CollisionModel(dim, cfg["ENCODER"], cfg["HEAD"], cfg["HIDDEN"], cfg["DROPOUT"])


def loss_fn(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Training objective selected by the LOSS knob."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, y)
    if kind == "focal":  # gamma 2 down-weights easy clips; no class reweighting
        bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
        p_true = torch.exp(-bce)
        # x2 keeps the gradient scale near BCE's so the same LR choices apply
        return 2 * ((1 - p_true) ** 2 * bce).mean()
    raise ValueError(f"unknown loss {kind!r}")
