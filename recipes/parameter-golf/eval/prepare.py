"""Data of the parameter-golf recipe (evaluator-owned; runs on the host).

The data is upstream's published FineWeb export with the 1024-token
SentencePiece vocabulary, which the user downloads with upstream's own tool
(`python3 data/cached_challenge_fineweb.py --variant sp1024 [--train-shards N]`
in a checkout of openai/parameter-golf) and names with
`$HARNESS_PARAMETER_GOLF_DATA`: that checkout's `data/` folder (or the checkout
itself), holding `datasets/fineweb10B_sp1024/fineweb_{train,val}_*.bin` and
`tokenizers/fineweb_1024_bpe.model`.

What each phase sees:

* train data (`HARNESS_DATA`): `datasets/fineweb10B_sp1024/` with every
  `fineweb_train_*.bin` and ONE stand-in `fineweb_val_000000.bin` cut from the
  start of the first train shard (upstream's script loads a validation split
  unconditionally; the real one must not be seen while training), the
  tokenizer, and `harness_train.py`, the evaluator's driver of the train phase.
* held-out inputs (eval phase only): `contexts.npy` (M, 1024) uint16 and
  `lengths.npy` (M,): for each of M target tokens of the real validation split,
  the `length` tokens right before it (right-aligned in its row), and the
  tokenizer. `length` is drawn uniformly from 1..1024, the context a token has
  in upstream's non-overlapping 1024-token windows, so the mean loss estimates
  upstream's. Targets lie more than 1024 tokens apart: no context holds a
  target, and the target tokens themselves never enter a sandbox (trial code
  runs in the eval phase).
* held-out labels (host only): `targets.npy` (M,), `target_bytes.npy` (M,),
  the UTF-8 bytes each target stands for after the token before it (the
  tokenizer-agnostic denominator of bits per byte), `positions.npy` (offsets
  in the split, for audits) and `val_meta.json`.

At the `cpu` fidelity (the run's level, passed as `fidelity`) the export is
not read from `$HARNESS_PARAMETER_GOLF_DATA`: a small one is made locally by
upstream's own exporter at the pinned commit (`golf_cpu_data.py`), so the level
runs offline on any machine.

Large files are hard-linked when the data lives on the same file system, else
copied.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

DATA_ENV = "HARNESS_PARAMETER_GOLF_DATA"
DATASET = "fineweb10B_sp1024"
TOKENIZER = "fineweb_1024_bpe.model"
SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
STAND_IN_VAL_TOKENS = (1 << 20) + 1
DRIVER = Path(__file__).with_name("harness_train.py")
CONTEXT = 1024
"""Longest held-out context: upstream's evaluation window (train_seq_len)."""
MAX_TARGETS = 1 << 16
"""Most held-out targets (the split's ~62M tokens give about 60,000 slots of 1,025)."""
TARGET_SEED = 1337
UPSTREAM_URL = "https://github.com/openai/parameter-golf"
UPSTREAM_COMMIT = "4908dc46f21ed3fdd08d2fdca285deb2194b9599"
"""The recipe's pin (recipe.toml `source`); a test keeps the two equal."""
CPU_LEVEL = "cpu"
"""The fidelity whose data is made locally (recipe.toml `[fidelities.cpu]`)."""


def prepare(train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path, fidelity: str | None = None) -> None:
    if fidelity != CPU_LEVEL:
        lay_out(data_root(), train_dir, heldout_inputs_dir, heldout_labels_dir)
        return
    from harness.recipe_loader import git_checkout  # the recipe cache: pristine upstream at the pin

    spec = importlib.util.spec_from_file_location("golf_cpu_data", Path(__file__).with_name("golf_cpu_data.py"))
    cpu_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cpu_data)
    with tempfile.TemporaryDirectory(prefix="parameter-golf-cpu-") as tmp:
        root = cpu_data.make_export(Path(tmp), git_checkout(UPSTREAM_URL, UPSTREAM_COMMIT))
        lay_out(root, train_dir, heldout_inputs_dir, heldout_labels_dir)


def lay_out(root: Path, train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path) -> None:
    dataset = root / "datasets" / DATASET
    tokenizer = root / "tokenizers" / TOKENIZER
    train_shards = sorted(dataset.glob("fineweb_train_*.bin"))
    val_shards = sorted(dataset.glob("fineweb_val_*.bin"))
    if not train_shards or not val_shards or not tokenizer.is_file():
        raise ValueError(
            f"{root} lacks the sp1024 export: need datasets/{DATASET}/fineweb_train_*.bin, "
            f"fineweb_val_*.bin and tokenizers/{TOKENIZER} (run upstream's "
            "`python3 data/cached_challenge_fineweb.py --variant sp1024`)"
        )
    train_dir, heldout_inputs_dir, heldout_labels_dir = map(Path, (train_dir, heldout_inputs_dir, heldout_labels_dir))
    train_data = train_dir / "datasets" / DATASET
    for folder in (train_data, train_dir / "tokenizers", heldout_inputs_dir / "tokenizers", heldout_labels_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for shard in train_shards:
        link_or_copy(shard, train_data / shard.name)
    write_shard(train_data / "fineweb_val_000000.bin", read_shard(train_shards[0])[:STAND_IN_VAL_TOKENS])
    for folder in (train_dir, heldout_inputs_dir):
        link_or_copy(tokenizer, folder / "tokenizers" / TOKENIZER)
    shutil.copyfile(DRIVER, train_dir / "harness_train.py")
    tokens = np.concatenate([read_shard(s) for s in val_shards])
    positions, lengths = target_positions(tokens.size)
    contexts = np.zeros((positions.size, CONTEXT), dtype=np.uint16)
    for row, (p, n) in enumerate(zip(positions.tolist(), lengths.tolist())):
        contexts[row, CONTEXT - n :] = tokens[p - n : p]
    np.save(heldout_inputs_dir / "contexts.npy", contexts)
    np.save(heldout_inputs_dir / "lengths.npy", lengths)
    base, leading_space, boundary = byte_tables(tokenizer)
    every = target_bytes(tokens, base, leading_space, boundary)  # every[i]: bytes of tokens[i + 1]
    np.save(heldout_labels_dir / "targets.npy", tokens[positions].astype(np.int64))
    np.save(heldout_labels_dir / "target_bytes.npy", every[positions - 1].astype(np.int64))
    np.save(heldout_labels_dir / "positions.npy", positions)
    (heldout_labels_dir / "val_meta.json").write_text(json.dumps({
        "n_tokens": int(tokens.size),
        "targets": int(positions.size),
        "context": CONTEXT,
        "val_shards": [s.name for s in val_shards],
        "train_shards": len(train_shards),
        "tokenizer": TOKENIZER,
    }, indent=1) + "\n")


def target_positions(n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, context lengths) of the held-out targets in a split of `n_tokens`: the split is
    cut into slots of at least CONTEXT + 1 tokens, at most MAX_TARGETS of them; each slot's last
    token is a target and its context is the 1..CONTEXT tokens before it (uniform), inside the slot."""
    slot = max(CONTEXT + 1, n_tokens // MAX_TARGETS)
    count = min(MAX_TARGETS, n_tokens // slot)
    if count < 1:
        raise ValueError(f"the validation split has {n_tokens} tokens; it needs at least {CONTEXT + 1}")
    rng = np.random.default_rng(TARGET_SEED)
    positions = np.arange(count, dtype=np.int64) * slot + slot - 1
    lengths = rng.integers(1, CONTEXT + 1, size=count).astype(np.int64)
    return positions, lengths


def data_root() -> Path:
    given = os.environ.get(DATA_ENV)
    if not given:
        raise ValueError(
            f"set {DATA_ENV} to the data/ folder of a parameter-golf checkout where "
            "`python3 data/cached_challenge_fineweb.py --variant sp1024` was run"
        )
    root = Path(given).expanduser()
    if (root / "data" / "datasets").is_dir() and not (root / "datasets").is_dir():
        root = root / "data"
    if not root.is_dir():
        raise ValueError(f"{DATA_ENV}={given} is not a folder")
    return root


def read_shard(path: Path) -> np.ndarray:
    """Tokens (uint16) of one shard: a 256 x int32 header (magic, version, count), then the tokens."""
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    if header.size != HEADER_INTS or header[0] != SHARD_MAGIC or header[1] != SHARD_VERSION:
        raise ValueError(f"{path} is not a token shard (bad header)")
    count = int(header[2])
    expected = HEADER_INTS * 4 + count * 2
    if path.stat().st_size != expected:
        raise ValueError(f"{path} has {path.stat().st_size} bytes, its header says {expected}")
    return np.fromfile(path, dtype="<u2", count=count, offset=HEADER_INTS * 4)


def write_shard(path: Path, tokens: np.ndarray) -> None:
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = (SHARD_MAGIC, SHARD_VERSION, tokens.size)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.asarray(tokens, dtype="<u2").tobytes())


def byte_tables(tokenizer_model: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per token id: UTF-8 bytes of its text without a leading word marker, whether it
    carries a leading word marker (a space, unless it follows a boundary token), and
    whether it is a boundary token (control, unknown or unused: no text)."""
    try:
        import sentencepiece as spm
    except ImportError as exc:
        raise ValueError("preparing parameter-golf data needs `pip install sentencepiece` on the host") from exc
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_model))
    size = int(sp.vocab_size())
    base = np.zeros(size, dtype=np.int64)
    leading_space = np.zeros(size, dtype=bool)
    boundary = np.ones(size, dtype=bool)
    for tid in range(size):
        if sp.is_control(tid) or sp.is_unknown(tid) or sp.is_unused(tid):
            continue
        boundary[tid] = False
        if sp.is_byte(tid):
            base[tid] = 1
            continue
        piece = sp.id_to_piece(tid)
        if piece.startswith("\u2581"):
            leading_space[tid] = True
            piece = piece[1:]
        base[tid] = len(piece.encode("utf-8"))
    return base, leading_space, boundary


def target_bytes(tokens: np.ndarray, base: np.ndarray, leading_space: np.ndarray, boundary: np.ndarray) -> np.ndarray:
    """Bytes of each target tokens[1:], given the token before it (uint16)."""
    prev, tgt = tokens[:-1].astype(np.int64), tokens[1:].astype(np.int64)
    counts = base[tgt] + (leading_space[tgt] & ~boundary[prev])
    return counts.astype(np.uint16)


def link_or_copy(src: Path, dest: Path) -> None:
    if dest.exists():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
