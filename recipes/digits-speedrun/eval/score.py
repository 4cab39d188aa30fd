"""Host-side scoring of the digits-speedrun recipe (trusted).

The score is the train phase's wallclock **as the harness measured it**
(`train_wallclock_s`, from process start to exit): nothing the trial prints
counts. The accuracy on the held-out digits feeds the recipe's gate (mean over
the seeds >= the threshold in recipe.toml), so a faster trial only counts when
it still classifies well.

Predictions: `logits.npy`, a finite float array (N, 10), one row per held-out
image in file order; the predicted class is the row's argmax. Anything else
raises ValueError with the reason.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

CLASSES = 10


def load_logits(preds_dir: Path, n: int) -> np.ndarray:
    """logits.npy as float64 (n, 10), or ValueError saying what is wrong."""
    path = Path(preds_dir) / "logits.npy"
    if not path.is_file():
        raise ValueError(f"no predictions: {path.name} is missing")
    try:
        logits = np.load(path, allow_pickle=False)
    except Exception as exc:  # corrupt file, pickled objects, ...
        raise ValueError(f"cannot read {path.name}: {exc}") from None
    if not isinstance(logits, np.ndarray) or logits.dtype.kind != "f":
        raise ValueError(f"logits must be a float array, got dtype {getattr(logits, 'dtype', type(logits))}")
    if logits.shape != (n, CLASSES):
        raise ValueError(f"expected logits of shape ({n}, {CLASSES}) (one row per held-out image), got {logits.shape}")
    logits = logits.astype(np.float64)
    if not np.all(np.isfinite(logits)):
        raise ValueError(f"{int(np.sum(~np.isfinite(logits)))} logits are NaN or infinite")
    return logits


def accuracy(labels: np.ndarray, logits: np.ndarray) -> float:
    """Fraction of rows whose argmax is the label (ties go to the lowest class)."""
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def score(preds_dir: Path, heldout_labels_dir: Path, train_wallclock_s: float) -> dict[str, float]:
    labels = np.load(Path(heldout_labels_dir) / "labels.npy", allow_pickle=False)
    logits = load_logits(preds_dir, len(labels))
    if not (isinstance(train_wallclock_s, (int, float)) and math.isfinite(train_wallclock_s) and train_wallclock_s > 0):
        raise ValueError(f"train wallclock must be a positive number of seconds, got {train_wallclock_s!r}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    nll = -(shifted[np.arange(len(labels)), labels] - np.log(np.exp(shifted).sum(axis=1)))
    return {
        "train_wallclock_s": float(train_wallclock_s),
        "acc": accuracy(labels, logits),
        "nll": float(nll.mean()),
    }
