"""Host-side scoring of the tinygolf recipe (trusted): bits per byte after the
int8 + zlib round trip, and the artifact the evaluator measures itself.

* `val_bpb`: from `logprobs.npy`, (M, 256) finite log-probabilities of the next
  byte of each held-out context (rows must be distributions; renormalised
  exactly here), against the held-out target bytes, which never enter a
  sandbox: mean of -log2 p(target).
* `model_bytes`: size of `model.int8.zlib` in the train output, which must
  decode with the evaluator's codec (int8 per row / per tensor, float16
  scales; nothing else is accepted).
* `code_bytes`: every file of the trial workspace (the recipe's source as the
  trial left it).
* `other_bytes`: every other file the train phase left in its output folder;
  the eval phase can read them, so they count.
* `artifact_bytes` = code + model + other: gated by recipe.toml
  (`<= cap`, a miss is `size_failure`), like parameter golf's 16,000,000.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

VOCAB = 256
NORM_TOL = 1e-3
ARTIFACT = "model.int8.zlib"


def _codec():
    """The evaluator's codec, loaded by path (no bytecode cache written into the evaluator folder)."""
    spec = importlib.util.spec_from_file_location("tinygolf_score_codec", Path(__file__).resolve().parent / "codec.py")
    module = importlib.util.module_from_spec(spec)
    old, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = old
    return module


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
    top = lp.max(axis=1)
    norm = top + np.log(np.exp(lp - top[:, None]).sum(axis=1))
    worst = int(np.argmax(np.abs(norm)))
    if abs(norm[worst]) > NORM_TOL:
        raise ValueError(f"row {worst} is not a distribution: its probabilities sum to {np.exp(norm[worst]):.6g}, not 1")
    return lp - norm[:, None]


def folder_bytes(folder: Path, skip: str | None = None) -> int:
    """Bytes of every file under `folder` but `skip`; ValueError on a symlink (it could point at
    bytes outside the measured folders)."""
    total = 0
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            raise ValueError(f"{Path(folder).name}/{rel} is a symlink: the artifact is measured as regular files only")
        if path.is_file() and rel != skip:
            total += path.stat().st_size
    return total


def artifact_sizes(out_dir: Path, workspace_dir: Path) -> dict[str, float]:
    """code, model and other bytes as the evaluator measures them; ValueError when the model is unusable."""
    blob_path = Path(out_dir) / ARTIFACT
    if not blob_path.is_file() or blob_path.is_symlink():
        raise ValueError(f"no {ARTIFACT} in the train output (the evaluator's train driver golf_run.py writes it)")
    blob = blob_path.read_bytes()
    try:
        _codec().decode(blob)
    except ValueError as exc:
        raise ValueError(f"{ARTIFACT} is not an int8 artifact of the evaluator's codec: {exc}") from None
    code = folder_bytes(workspace_dir)
    other = folder_bytes(out_dir, skip=ARTIFACT)
    return {
        "code_bytes": float(code),
        "model_bytes": float(len(blob)),
        "other_bytes": float(other),
        "artifact_bytes": float(code + len(blob) + other),
    }


def score(preds_dir: Path, heldout_labels_dir: Path, out_dir: Path, workspace_dir: Path) -> dict[str, float]:
    targets = np.load(Path(heldout_labels_dir) / "targets.npy", allow_pickle=False).astype(np.int64)
    lp = load_logprobs(preds_dir, len(targets))
    return {
        "val_bpb": float(-lp[np.arange(len(targets)), targets].mean() / np.log(2)),
        "top1": float(np.mean(lp.argmax(axis=1) == targets)),
        **artifact_sizes(out_dir, workspace_dir),
    }
