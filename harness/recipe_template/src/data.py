"""Reading the recipe's data folders (protected: identical in every trial).

A folder holds `x.npy`, (points, 2) float32 inputs, and, in the train split
only, `y.npy`, (points,) int64 class labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_inputs(folder: Path) -> np.ndarray:
    return np.load(Path(folder) / "x.npy", allow_pickle=False).astype(np.float64)


def load_labels(folder: Path) -> np.ndarray:
    return np.load(Path(folder) / "y.npy", allow_pickle=False).astype(np.int64)
