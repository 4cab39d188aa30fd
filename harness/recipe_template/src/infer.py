"""Inference for the evaluator: class probabilities for every held-out point."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data import load_inputs
from model import forward


def predict(out_dir: Path, inputs_dir: Path) -> np.ndarray:
    """(points, classes) probabilities, in the row order of the held-out inputs."""
    with np.load(Path(out_dir) / "params.npz") as saved:
        params = {k: saved[k] for k in saved.files}
    probs, _ = forward(params, load_inputs(inputs_dir))
    return probs
