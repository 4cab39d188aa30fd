"""Scoring of recipe `__RECIPE_NAME__` (evaluator-owned; runs on the host, trusted).

`score(preds_dir, heldout_labels_dir) -> dict[str, float]` scores one seed. It
must return the recipe's metric (`[metric] name` in recipe.toml) and may return
more (every value is recorded; gates can read them). Predictions it cannot
score raise `ValueError` with the reason: the trial is labelled
`metric_missing` and the reason is shown to agents.

The function may also ask for host measurements by naming them as parameters:
`train_wallclock_s` (seconds the train phase took, measured by the host),
`out_dir` (the train phase's output folder), `workspace_dir` (the trial's code)
and `seed`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_predictions(preds_dir: Path, n: int, classes: int) -> np.ndarray:
    """preds.npy as a float64 (n, classes) array of probabilities, or ValueError saying what is wrong."""
    path = Path(preds_dir) / "preds.npy"
    if not path.is_file():
        raise ValueError(f"no predictions: {path.name} is missing")
    try:
        preds = np.load(path, allow_pickle=False)
    except Exception as exc:  # corrupt file, pickled objects, ...
        raise ValueError(f"cannot read {path.name}: {exc}") from None
    if preds.dtype.kind not in "biuf":
        raise ValueError(f"predictions must be numeric, got dtype {preds.dtype}")
    if preds.shape != (n, classes):
        raise ValueError(f"expected predictions of shape ({n}, {classes}), got {preds.shape}")
    preds = preds.astype(np.float64)
    if not np.all(np.isfinite(preds)):
        raise ValueError("predictions hold NaN or infinite values")
    if preds.min() < 0 or not np.allclose(preds.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("each row of predictions must be class probabilities (non-negative, summing to 1)")
    return preds


def score(preds_dir: Path, heldout_labels_dir: Path) -> dict[str, float]:
    labels = np.load(Path(heldout_labels_dir) / "y.npy", allow_pickle=False)
    classes = int(labels.max()) + 1
    preds = load_predictions(preds_dir, len(labels), classes)
    picked = np.clip(preds[np.arange(len(labels)), labels], 1e-12, 1.0)
    return {
        "acc": float(np.mean(preds.argmax(axis=1) == labels)),
        "log_loss": float(-np.mean(np.log(picked))),
    }
