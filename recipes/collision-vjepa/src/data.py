"""Reading the recipe's data folders (protected: identical in every trial).

A split folder holds `features.npy`, (clips, frames, dim) float16 or float32
per-frame features of a frozen video backbone (V-JEPA, precomputed by the
user), `meta.json` (`n_clips`, `frames`, `dim`, `backbone`) and, for the train
split only, `labels.npy` (1 = collision). Rows are clips, in the same order in
every file. Features are memory-mapped: real feature sets can be large.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def meta(folder: Path) -> dict:
    return json.loads((Path(folder) / "meta.json").read_text())


def load_features(folder: Path) -> np.ndarray:
    """(clips, frames, dim) features, memory-mapped (convert slices with np.asarray)."""
    return np.load(Path(folder) / "features.npy", mmap_mode="r", allow_pickle=False)


def load_labels(folder: Path) -> np.ndarray:
    """(clips,) float32 labels of the train split."""
    return np.load(Path(folder) / "labels.npy", allow_pickle=False).astype(np.float32)
