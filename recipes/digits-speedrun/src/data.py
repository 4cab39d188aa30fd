"""Reading the recipe's data folders (protected: identical in every trial).

A split folder holds `images.npy` (N, 16, 16) uint8 grey images (ink bright on
a dark background), `meta.json` and, for the train split only, `labels.npy`
(N,) int64 digit classes. The held-out split is never available to training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def load_images(folder: Path) -> torch.Tensor:
    """(N, 1, 16, 16) float32 images in [0, 1]: the input every model receives."""
    images = np.load(Path(folder) / "images.npy", allow_pickle=False)
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)


def load_labels(folder: Path) -> torch.Tensor:
    """(N,) int64 labels of the train split."""
    return torch.from_numpy(np.load(Path(folder) / "labels.npy", allow_pickle=False).astype(np.int64))
