"""Scoring of the airbench96 recipe (evaluator-owned; runs on the host, trusted).

The score is the train phase's wallclock as the host measured it
(`train_wallclock_s`, passed in by the harness), never a time the trial
printed. Accuracy on the 10,000 test images is computed here from the
predicted classes and the labels, which never leave the host; the recipe's
gate requires its mean over the trial's seeds to reach 0.96. The number of
test images is the labels' (10,000 at `full`; the `cpu` level's synthetic set
is smaller).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

N_TEST = 10_000
N_CLASSES = 10


def load_predictions(preds_dir: Path, n_test: int = N_TEST) -> np.ndarray:
    path = Path(preds_dir) / "preds.npy"
    if not path.is_file():
        raise ValueError(f"no predictions: {path.name} is missing")
    try:
        preds = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"cannot read {path.name}: {exc}") from None
    if preds.dtype.kind not in "iu":
        raise ValueError(f"predictions must be integer class ids, got dtype {preds.dtype}")
    if preds.shape != (n_test,):
        raise ValueError(f"expected {n_test} predictions (one class id per test image), got shape {preds.shape}")
    if preds.min() < 0 or preds.max() >= N_CLASSES:
        raise ValueError(f"class ids must lie in 0..{N_CLASSES - 1}")
    return preds.astype(np.int64)


def score(preds_dir: Path, heldout_labels_dir: Path, train_wallclock_s: float) -> dict[str, float]:
    labels = np.load(Path(heldout_labels_dir) / "test_labels.npy", allow_pickle=False)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"broken held-out labels: shape {labels.shape}")
    preds = load_predictions(preds_dir, labels.size)
    if not math.isfinite(train_wallclock_s) or train_wallclock_s <= 0:
        raise ValueError(f"no valid train wallclock ({train_wallclock_s})")
    return {"train_wallclock_s": float(train_wallclock_s), "acc": float(np.mean(preds == labels))}
