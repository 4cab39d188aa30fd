"""The digit classifier: two conv stages and a linear head.

Contract with the evaluator (eval/predict.py): `build_model()` takes no
arguments (it reads config.py), and the model maps a (B, 1, 16, 16) float
batch in [0, 1] to (B, 10) logits. The evaluator loads `model.pt` (the
state_dict) into `build_model()` and runs it in eval mode without gradients.
"""

from __future__ import annotations

import torch
from torch import nn

import config


def _stage(c_in: int, c_out: int, blocks: int, norm: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(blocks):
        layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=norm == "none"))
        if norm == "batch":
            layers.append(nn.BatchNorm2d(c_out))
        elif norm != "none":
            raise ValueError(f"unknown NORM {norm!r}")
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class DigitNet(nn.Module):
    def __init__(self, width: int, blocks: int, norm: str, dropout: float):
        super().__init__()
        self.features = nn.Sequential(
            _stage(1, width, blocks, norm),  # 16x16 -> 8x8
            _stage(width, 2 * width, blocks, norm),  # 8x8 -> 4x4
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * width * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x - 0.5)
        return self.head(self.dropout(h.flatten(1)))


def build_model() -> DigitNet:
    return DigitNet(config.WIDTH, config.BLOCKS, config.NORM, config.DROPOUT)
