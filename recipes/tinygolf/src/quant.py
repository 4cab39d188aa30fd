"""Quantization-aware training: fake-quantize matrices the way the evaluator's codec will.

During the last QAT_FRACTION of the steps, every weight matrix is rounded to
int8 per row in the forward pass (straight-through gradient), so the model
learns weights that survive the evaluator's int8 round trip.
"""

from __future__ import annotations

import torch
from torch import nn

import config


def fake_quant_rows(w: torch.Tensor) -> torch.Tensor:
    scale = w.detach().abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / 127
    q = torch.clamp(torch.round(w / scale), -127, 127) * scale
    return w + (q - w).detach()


class QAT:
    """Context manager swapping each Linear/Embedding weight for its fake-quantized copy."""

    def __init__(self, model: nn.Module, active: bool):
        self.model, self.active, self.saved = model, active, []

    def __enter__(self):
        if self.active:
            for m in self.model.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    w = m.weight
                    self.saved.append((m, w))
                    del m.weight
                    m.weight = fake_quant_rows(w)
        return self

    def __exit__(self, *exc):
        for m, w in reversed(self.saved):
            del m.weight
            m.weight = w
        self.saved.clear()


def qat_active(step: int, total: int) -> bool:
    return config.QAT_FRACTION > 0 and step >= total * (1 - config.QAT_FRACTION)
