"""Host-side scoring of the tinychat recipe (trusted): held-out bits per byte.

`logprobs.npy` must be a finite float array (M, 256): for each held-out
context, in file order, the log-probability of every possible next byte. Each
row must be a distribution (log-sum-exp within `NORM_TOL` of 0); the host
renormalises it exactly in float64 before use, so the tolerance cannot be
turned into a gain. The target bytes come from the evaluator's labels folder,
which never enters a sandbox.

    val_bpb = mean over targets of -log2 p(target byte)

Also reported: `top1`, the fraction of targets that are the row's most likely
byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

VOCAB = 256
NORM_TOL = 1e-3


def load_logprobs(preds_dir: Path, m: int) -> np.ndarray:
    """logprobs.npy as exactly normalised float64 (m, 256) log-probabilities, or ValueError."""
    path = Path(preds_dir) / "logprobs.npy"
    if not path.is_file():
        raise ValueError(f"no predictions: {path.name} is missing")
    try:
        lp = np.load(path, allow_pickle=False)
    except Exception as exc:  # corrupt file, pickled objects, ...
        raise ValueError(f"cannot read {path.name}: {exc}") from None
    if not isinstance(lp, np.ndarray) or lp.dtype.kind != "f":
        raise ValueError(f"log-probabilities must be a float array, got dtype {getattr(lp, 'dtype', type(lp))}")
    if lp.shape != (m, VOCAB):
        raise ValueError(f"expected log-probabilities of shape ({m}, {VOCAB}) (one row per held-out context), got {lp.shape}")
    lp = lp.astype(np.float64)
    if not np.all(np.isfinite(lp)):
        raise ValueError(f"{int(np.sum(~np.isfinite(lp)))} log-probabilities are NaN or infinite")
    norm = _logsumexp(lp)
    worst = int(np.argmax(np.abs(norm)))
    if abs(norm[worst]) > NORM_TOL:
        raise ValueError(
            f"row {worst} is not a distribution: its probabilities sum to {np.exp(norm[worst]):.6g}, not 1"
        )
    return lp - norm[:, None]


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=1)
    return top + np.log(np.exp(x - top[:, None]).sum(axis=1))


def bits_per_byte(logprobs: np.ndarray, targets: np.ndarray) -> float:
    """Mean of -log2 p(target) over the rows."""
    return float(-logprobs[np.arange(len(targets)), targets].mean() / np.log(2))


def score(preds_dir: Path, heldout_labels_dir: Path) -> dict[str, float]:
    targets = np.load(Path(heldout_labels_dir) / "targets.npy", allow_pickle=False).astype(np.int64)
    lp = load_logprobs(preds_dir, len(targets))
    return {
        "val_bpb": bits_per_byte(lp, targets),
        "top1": float(np.mean(lp.argmax(axis=1) == targets)),
    }
