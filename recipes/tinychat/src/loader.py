"""Training batches: random windows of the train text (the only text a trial sees)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import config


def load_train_bytes(data_dir: Path) -> torch.Tensor:
    """The train split as an int64 tensor of bytes (0..255)."""
    raw = np.frombuffer((Path(data_dir) / "train.txt").read_bytes(), dtype=np.uint8)
    return torch.from_numpy(raw.astype(np.int64))


def batches(data: torch.Tensor, gen: torch.Generator):
    """Endless (inputs, targets) pairs of shape (BATCH_SIZE, BLOCK_SIZE); targets are inputs shifted by one."""
    t = config.BLOCK_SIZE
    offsets = torch.arange(t + 1)
    while True:
        starts = torch.randint(0, len(data) - t - 1, (config.BATCH_SIZE,), generator=gen)
        chunk = data[starts[:, None] + offsets]
        yield chunk[:, :-1], chunk[:, 1:]
