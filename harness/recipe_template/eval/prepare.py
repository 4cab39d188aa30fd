"""Data of recipe `__RECIPE_NAME__` (evaluator-owned; runs on the host, never in a sandbox).

`prepare(train_dir, heldout_inputs_dir, heldout_labels_dir)` is called once per
run, before the baseline. It must be deterministic: two calls write the same
bytes. What it writes goes to three places that trials see differently:

* `train_dir`: the train split, mounted read-only in the train phase (HARNESS_DATA);
* `heldout_inputs_dir`: held-out *inputs*, mounted read-only in the eval phase only
  (HARNESS_HELDOUT);
* `heldout_labels_dir`: held-out labels, read only by `score.py` on the host; they
  never enter a sandbox.

The scaffold's data: three noisy interleaved spirals in the plane (a classic
small problem where the width of the hidden layer, the learning rate and the
training length all matter). Replace `make_data` with your own data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_TRAIN = 1500
N_HELDOUT = 1500
CLASSES = 3
NOISE = 0.5  # angular noise: arms overlap, so no classifier reaches 100%
TURNS = 3.5  # how far each arm winds
SEEDS = {"train": 11, "heldout": 22}


def make_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) float32 points and (n,) int64 labels: CLASSES spiral arms with noise."""
    labels = rng.integers(0, CLASSES, size=n)
    radius = rng.uniform(0.05, 1.0, size=n)
    angle = TURNS * radius + 2 * np.pi * labels / CLASSES + rng.normal(0, NOISE, size=n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return points.astype(np.float32), labels.astype(np.int64)


def prepare(train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path) -> None:
    for folder in (train_dir, heldout_inputs_dir, heldout_labels_dir):
        Path(folder).mkdir(parents=True, exist_ok=True)
    x, y = make_data(np.random.default_rng(SEEDS["train"]), N_TRAIN)
    np.save(Path(train_dir) / "x.npy", x)
    np.save(Path(train_dir) / "y.npy", y)
    x, y = make_data(np.random.default_rng(SEEDS["heldout"]), N_HELDOUT)
    np.save(Path(heldout_inputs_dir) / "x.npy", x)
    np.save(Path(heldout_labels_dir) / "y.npy", y)
