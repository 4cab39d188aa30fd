"""Reading the recipe's data folders (protected: identical in every trial).

A split folder holds `<backbone>.npy` (clips, frames, dim) float32 features per
simulated backbone, `clip_ids.npy`, `meta.json` and, for the train split only,
`labels.npy` (1 = collision). Rows are clips, in the same order in every file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def backbones(folder: Path) -> dict[str, int]:
    """Backbone name -> feature dim available in `folder`."""
    return json.loads((Path(folder) / "meta.json").read_text())["backbones"]


def load_features(folder: Path, backbone: str) -> np.ndarray:
    """(clips, frames, dim) float32 features of one backbone."""
    if backbone not in backbones(folder):
        raise ValueError(f"unknown backbone {backbone!r}; have {sorted(backbones(folder))}")
    return np.load(Path(folder) / f"{backbone}.npy", allow_pickle=False).astype(np.float32, copy=False)


def load_labels(folder: Path) -> np.ndarray:
    """(clips,) float32 labels of the train split."""
    return np.load(Path(folder) / "labels.npy", allow_pickle=False).astype(np.float32)
