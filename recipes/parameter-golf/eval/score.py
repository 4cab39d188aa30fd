"""Scoring of the parameter-golf recipe (evaluator-owned; runs on the host, trusted).

* `val_bpb` (the score, minimize): for every held-out target, -log p(target)
  in nats under the distribution the eval phase gave after its context
  (`logprobs.npy`, each row checked to be a distribution and renormalised
  exactly in float64, so the tolerance cannot be turned into a gain), summed,
  divided by ln 2 and by the UTF-8 bytes of those targets, counted from the
  evaluator's own tables. The targets never entered the sandbox.
* `val_loss`: the mean of those nats.
* `artifact_bytes`: code bytes (the trial's `train_gpt.py`) + compressed
  model bytes (`final_model.int8.ptz` in the train phase's output), as
  upstream counts a submission; the recipe's gate caps it at 16,000,000
  (decimal) and labels a miss `size_failure`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

ARTIFACT = "final_model.int8.ptz"
CODE = "train_gpt.py"
VOCAB = 1024
NORM_TOL = 1e-3


def load_logprobs(preds_dir: Path, m: int) -> np.ndarray:
    """logprobs.npy as exactly normalised float64 (m, VOCAB) log-probabilities, or ValueError."""
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
        raise ValueError(f"expected log-probabilities of shape ({m}, {VOCAB}) (one row per held-out context), "
                         f"got {lp.shape}")
    lp = lp.astype(np.float64)
    if not np.all(np.isfinite(lp)):
        raise ValueError(f"{int(np.sum(~np.isfinite(lp)))} log-probabilities are NaN or infinite")
    top = lp.max(axis=1)
    norm = top + np.log(np.exp(lp - top[:, None]).sum(axis=1))
    worst = int(np.argmax(np.abs(norm)))
    if abs(norm[worst]) > NORM_TOL:
        raise ValueError(f"row {worst} is not a distribution: its probabilities sum to {np.exp(norm[worst]):.6g}, not 1")
    return lp - norm[:, None]


def score(preds_dir: Path, heldout_labels_dir: Path, out_dir: Path, workspace_dir: Path) -> dict[str, float]:
    labels = Path(heldout_labels_dir)
    targets = np.load(labels / "targets.npy", allow_pickle=False).astype(np.int64)
    nbytes = np.load(labels / "target_bytes.npy", allow_pickle=False).astype(np.int64)
    lp = load_logprobs(preds_dir, len(targets))
    nats = -lp[np.arange(len(targets)), targets]
    total_bytes = int(nbytes.sum())
    if total_bytes <= 0:
        raise ValueError("the held-out targets stand for no bytes (a broken labels folder)")
    model_bytes = (Path(out_dir) / ARTIFACT).stat().st_size if (Path(out_dir) / ARTIFACT).is_file() else None
    if model_bytes is None:
        raise ValueError(f"no {ARTIFACT} in the train phase's output")
    code_bytes = len((Path(workspace_dir) / CODE).read_bytes())
    return {
        "val_bpb": float(nats.sum() / math.log(2) / total_bytes),
        "val_loss": float(nats.mean()),
        "artifact_bytes": float(model_bytes + code_bytes),
        "model_bytes": float(model_bytes),
        "code_bytes": float(code_bytes),
    }
