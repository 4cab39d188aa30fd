"""Data of the collision-vjepa recipe (evaluator-owned; runs on the host).

The features are the user's: per-frame features of real dashcam clips from a
frozen video backbone (V-JEPA 2 in the recipe's name and README, any backbone
in practice), computed once outside the harness. `$HARNESS_COLLISION_VJEPA_DATA`
names a folder laid out as:

    train/features.npy     (N, T, D) float16 or float32, one row per clip
    train/labels.npy       (N,) 0/1, 1 = the clip contains a collision
    heldout/features.npy   (M, T, D), same T and D
    heldout/labels.npy     (M,) 0/1, both classes present
    meta.json              optional: where the features came from (backbone,
                           checkpoint, frames, preprocessing); copied for the record

`prepare` validates the folder (shapes, dtypes, finite values, binary labels)
and lays it out for the phases, in the same split of roles as the CPU
`collision` recipe:

* train data: `features.npy`, `labels.npy`, `meta.json` (`n_clips`, `frames`, `dim`, ...);
* held-out inputs (eval phase only): `features.npy`, `meta.json`: no labels;
* held-out labels (host only): `labels.npy`, read by `score.py` (the CPU
  collision recipe's scorer, byte for byte).

Feature files are hard-linked when they live on the same file system, else copied.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

DATA_ENV = "HARNESS_COLLISION_VJEPA_DATA"
CHUNK = 1024


def prepare(train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path) -> None:
    given = os.environ.get(DATA_ENV)
    if not given:
        raise ValueError(f"set {DATA_ENV} to the folder of precomputed clip features (see the recipe's README)")
    root = Path(given).expanduser()
    provenance = json.loads((root / "meta.json").read_text()) if (root / "meta.json").is_file() else {}
    train = check_split(root / "train", require_both_classes=False)
    heldout = check_split(root / "heldout", require_both_classes=True)
    if train["frames"] != heldout["frames"] or train["dim"] != heldout["dim"]:
        raise ValueError(f"train clips are {train['frames']} x {train['dim']}, held-out clips "
                         f"{heldout['frames']} x {heldout['dim']}: they must match")

    train_dir, heldout_inputs_dir, heldout_labels_dir = map(Path, (train_dir, heldout_inputs_dir, heldout_labels_dir))
    for folder in (train_dir, heldout_inputs_dir, heldout_labels_dir):
        folder.mkdir(parents=True, exist_ok=True)
    link_or_copy(root / "train" / "features.npy", train_dir / "features.npy")
    np.save(train_dir / "labels.npy", load_labels(root / "train"))
    link_or_copy(root / "heldout" / "features.npy", heldout_inputs_dir / "features.npy")
    np.save(heldout_labels_dir / "labels.npy", load_labels(root / "heldout"))
    # The held-out count of positives is a statistic of the labels: it stays out of the eval phase.
    shown = {key: value for key, value in heldout.items() if key != "positives"}
    for folder, info in ((train_dir, train), (heldout_inputs_dir, shown)):
        (folder / "meta.json").write_text(json.dumps({**info, "source": provenance}, indent=1) + "\n")


def check_split(folder: Path, require_both_classes: bool) -> dict:
    features_path, labels_path = folder / "features.npy", folder / "labels.npy"
    if not features_path.is_file() or not labels_path.is_file():
        raise ValueError(f"{folder} must hold features.npy and labels.npy")
    features = np.load(features_path, mmap_mode="r", allow_pickle=False)
    if features.ndim != 3 or features.dtype not in (np.float16, np.float32):
        raise ValueError(f"{features_path}: expected a (clips, frames, dim) float16/float32 array, "
                         f"got {features.dtype} {features.shape}")
    for start in range(0, features.shape[0], CHUNK):
        if not np.all(np.isfinite(features[start : start + CHUNK])):
            raise ValueError(f"{features_path}: clips {start}..{start + CHUNK - 1} hold NaN or infinite values")
    labels = load_labels(folder)
    if labels.shape != (features.shape[0],):
        raise ValueError(f"{labels_path}: {labels.shape[0]} labels for {features.shape[0]} clips")
    if require_both_classes and len(set(labels.tolist())) < 2:
        raise ValueError(f"{labels_path}: the held-out split needs collisions and non-collisions")
    return {"n_clips": int(features.shape[0]), "frames": int(features.shape[1]), "dim": int(features.shape[2]),
            "dtype": str(features.dtype), "positives": int(labels.sum())}


def load_labels(folder: Path) -> np.ndarray:
    labels = np.load(folder / "labels.npy", allow_pickle=False)
    if labels.ndim != 1 or not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{folder / 'labels.npy'}: labels must be a 1-D array of 0 and 1")
    return labels.astype(np.int64)


def link_or_copy(src: Path, dest: Path) -> None:
    if dest.exists():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
