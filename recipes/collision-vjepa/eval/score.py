"""Host-side scoring of the collision recipe (trusted).

Predictions must be a 1-D array with one finite value in [0, 1] per held-out
clip (a probability of collision). AP and AUC only use the ranking, but the
range check keeps `acc` (threshold 0.5) meaningful and catches outputs that
are logits by mistake, so such files are rejected rather than guessed about.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_predictions(preds_dir: Path, n: int) -> np.ndarray:
    """preds.npy as float64 (n,), or ValueError saying what is wrong."""
    path = Path(preds_dir) / "preds.npy"
    if not path.is_file():
        raise ValueError(f"no predictions: {path.name} is missing")
    try:
        preds = np.load(path, allow_pickle=False)
    except Exception as exc:  # corrupt file, pickled objects, ...
        raise ValueError(f"cannot read {path.name}: {exc}") from None
    if not isinstance(preds, np.ndarray) or preds.dtype.kind not in "biuf":
        raise ValueError(f"predictions must be a numeric array, got dtype {getattr(preds, 'dtype', type(preds))}")
    if preds.ndim != 1:
        raise ValueError(f"predictions must be 1-D, got shape {preds.shape}")
    if preds.shape[0] != n:
        raise ValueError(f"expected {n} predictions (one per held-out clip), got {preds.shape[0]}")
    preds = preds.astype(np.float64)
    if not np.all(np.isfinite(preds)):
        raise ValueError(f"{int(np.sum(~np.isfinite(preds)))} predictions are NaN or infinite")
    if preds.min() < 0 or preds.max() > 1:
        raise ValueError(f"predictions must be probabilities in [0, 1], got range [{preds.min():.4g}, {preds.max():.4g}]")
    return preds


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Step-wise AP: sum over thresholds of (R_k - R_{k-1}) * P_k, as sklearn.

    Tied scores form one threshold, so their order cannot change the result."""
    labels = np.asarray(labels, dtype=np.float64)
    if labels.sum() == 0:
        raise ValueError("AP is undefined without positive labels")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability a positive outranks a negative (ties count one half), via mid-ranks."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both classes")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s))
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    for a, b in zip(starts, ends):  # average rank (1-based) within each tie group
        ranks[a:b] = (a + b + 1) / 2
    r = np.empty(len(s))
    r[order] = ranks
    return float((r[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score(preds_dir: Path, heldout_labels_dir: Path) -> dict[str, float]:
    labels = np.load(Path(heldout_labels_dir) / "labels.npy", allow_pickle=False)
    preds = load_predictions(preds_dir, len(labels))
    return {
        "ap": average_precision(labels, preds),
        "auc": roc_auc(labels, preds),
        "acc": float(np.mean((preds >= 0.5) == (labels == 1))),
    }
