"""Data of the tinygolf recipe (evaluator-owned): the shipped corpus, split.

`corpus.txt` (next to this file) holds numbered fables written by
`tools/make_corpus.py` (public domain, see README.md). The last
`VAL_FRACTION` of it, cut at a fable boundary, is the validation text; the
rest is the train text, the only text the train phase ever sees (parameter
golf's "no validation data during training").

Held-out targets are bytes of the held-out text at positions at least
`CONTEXT + 1` apart. For each target the held-out *inputs* hold the `CONTEXT`
bytes before it; the target byte itself is in the held-out *labels* only,
which never enter a sandbox, and no context contains another target, so
nothing inside the eval phase can see any byte the score is computed on.

Files: `train/train.txt`, `train/meta.json`, and the train-phase driver
`train/golf_run.py` + `train/codec.py` (copies of this folder's); held-out inputs
`contexts.npy` (M, CONTEXT) uint8 and `meta.json`; held-out labels
`targets.npy` (M,) uint8 and `positions.npy` (M,) int64 (offsets in the
held-out text, for auditing). Deterministic: two calls write identical bytes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus.txt"
DRIVER = ("golf_run.py", "codec.py")  # the train phase's entry point and the codec, copied next to the train text
VAL_FRACTION = 0.25
CONTEXT = 64
GAP_JITTER = 16  # extra random spacing between targets (0..15 bytes)
TARGET_SEED = 5


def split_corpus(text: bytes) -> tuple[bytes, bytes]:
    """(train, held-out): the held-out part starts at the fable boundary nearest 1 - VAL_FRACTION."""
    cut = text.find(b"\nMoral: ", int(len(text) * (1 - VAL_FRACTION)))
    cut = text.find(b"\n\n", cut + 1) + 2  # the blank line after that moral; the next title starts here
    return text[:cut], text[cut:]


def target_positions(n: int) -> np.ndarray:
    """Offsets of the target bytes in a held-out text of `n` bytes: each has CONTEXT bytes before it and
    no other target among them."""
    rng = np.random.default_rng(TARGET_SEED)
    positions, p = [], CONTEXT + int(rng.integers(GAP_JITTER))
    while p < n:
        positions.append(p)
        p += CONTEXT + 1 + int(rng.integers(GAP_JITTER))
    return np.array(positions, dtype=np.int64)


def prepare(train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path) -> None:
    train_dir, heldout_inputs_dir, heldout_labels_dir = map(Path, (train_dir, heldout_inputs_dir, heldout_labels_dir))
    for folder in (train_dir, heldout_inputs_dir, heldout_labels_dir):
        folder.mkdir(parents=True, exist_ok=True)
    train, val = split_corpus(CORPUS.read_bytes())
    (train_dir / "train.txt").write_bytes(train)
    (train_dir / "meta.json").write_text(json.dumps({"bytes": len(train), "encoding": "ascii"}, indent=2) + "\n")
    for name in DRIVER:
        shutil.copyfile(HERE / name, train_dir / name)

    heldout = np.frombuffer(val, dtype=np.uint8)
    positions = target_positions(len(heldout))
    contexts = np.stack([heldout[p - CONTEXT : p] for p in positions])
    np.save(heldout_inputs_dir / "contexts.npy", contexts)
    meta = {"targets": int(len(positions)), "context": CONTEXT, "vocab": 256}
    (heldout_inputs_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    np.save(heldout_labels_dir / "targets.npy", heldout[positions].copy())
    np.save(heldout_labels_dir / "positions.npy", positions)
