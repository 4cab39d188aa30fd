"""Scoring of the parameter-golf recipe (evaluator-owned; runs on the host, trusted).

* `val_bpb` (the score, minimize): summed validation loss in nats (from the
  eval phase) / ln 2 / the UTF-8 bytes of exactly the targets it scored,
  counted here from the evaluator's tables; the eval phase must have scored
  the first n targets of the split, n being what its window and stride cover
  (no skipping of hard text).
* `artifact_bytes`: code bytes (the trial's `train_gpt.py`) + compressed
  model bytes (`final_model.int8.ptz` in the train phase's output), as
  upstream counts a submission; the recipe's gate caps it at 16,000,000
  (decimal) and labels a miss `size_failure`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

ARTIFACT = "final_model.int8.ptz"
CODE = "train_gpt.py"


def expected_targets(n_tokens: int, length: int, stride: int) -> int:
    """Targets scored by windows of `length` advancing by `stride` (first window: all of its targets)."""
    if n_tokens - 1 < length:
        return 0
    windows = (n_tokens - 1 - length) // stride + 1
    return length + (windows - 1) * stride


def score(preds_dir: Path, heldout_labels_dir: Path, out_dir: Path, workspace_dir: Path) -> dict[str, float]:
    path = Path(preds_dir) / "result.json"
    if not path.is_file():
        raise ValueError("no result.json from the eval phase")
    try:
        result = json.loads(path.read_text())
        loss_sum = float(result["loss_sum_nats"])
        n = int(result["n_targets"])
        length = int(result["eval_seq_len"])
        stride = int(result["eval_stride"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"result.json is malformed: {exc}") from None
    meta = json.loads((Path(heldout_labels_dir) / "val_meta.json").read_text())
    bytes_per_target = np.load(Path(heldout_labels_dir) / "val_target_bytes.npy", mmap_mode="r")
    if not (1 <= stride <= length):
        raise ValueError(f"bad window {length} / stride {stride}")
    want = expected_targets(int(meta["n_tokens"]), length, stride)
    if n != want or n <= 0:
        raise ValueError(f"the eval phase scored {n} targets; windows of {length} by {stride} cover {want}")
    if not math.isfinite(loss_sum) or loss_sum <= 0:
        raise ValueError(f"summed loss {loss_sum} is not a positive number")
    total_bytes = int(np.asarray(bytes_per_target[:n], dtype=np.int64).sum())
    model_bytes = (Path(out_dir) / ARTIFACT).stat().st_size if (Path(out_dir) / ARTIFACT).is_file() else None
    if model_bytes is None:
        raise ValueError(f"no {ARTIFACT} in the train phase's output")
    code_bytes = len((Path(workspace_dir) / CODE).read_bytes())
    return {
        "val_bpb": loss_sum / math.log(2) / total_bytes,
        "val_loss": loss_sum / n,
        "artifact_bytes": float(model_bytes + code_bytes),
        "model_bytes": float(model_bytes),
        "code_bytes": float(code_bytes),
    }
