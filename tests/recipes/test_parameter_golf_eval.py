"""The parameter-golf evaluator on a CPU: the held-out targets never enter the eval phase.

The eval phase runs trial code (the trial's `GPT`), so it gets contexts only:
each ends right before a target, no context holds a target, and the host scores
the next-token distributions against targets kept in the labels folder. A
stand-in `train_gpt.py` with upstream's interface (`Hyperparameters`, `GPT`
whose `forward(input_ids, target_ids)` hands its logits to `F.cross_entropy`,
`dequantize_state_dict_int8`) plays the trial.
"""

from __future__ import annotations

import importlib.util
import io
import math
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from harness.recipe_loader import RECIPES_ROOT

torch = pytest.importorskip("torch")

STAND_IN = '''
import os
import torch
import torch.nn.functional as F
from torch import nn


class Hyperparameters:
    vocab_size = 1024
    model_dim = 8


class GPT(nn.Module):
    def __init__(self, vocab_size, model_dim):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, model_dim)
        self.lm_head = nn.Linear(model_dim, vocab_size, bias=False)

    def forward(self, input_ids, target_ids):
        logits = self.lm_head(self.tok_emb(input_ids)).reshape(-1, self.lm_head.out_features)
        return F.cross_entropy(logits.float(), target_ids.reshape(-1), reduction="mean")


def dequantize_state_dict_int8(obj):
    return obj
'''


def module(file: str):
    path = RECIPES_ROOT / "parameter-golf" / "eval" / file
    spec = importlib.util.spec_from_file_location(f"pg_{path.stem}", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.fixture
def prepared(tmp_path, monkeypatch):
    """prepare() on a fake sp1024 export (byte tables stubbed: no sentencepiece needed)."""
    prepare = module("prepare.py")
    root = tmp_path / "data"
    dataset = root / "datasets" / prepare.DATASET
    dataset.mkdir(parents=True)
    (root / "tokenizers").mkdir()
    (root / "tokenizers" / prepare.TOKENIZER).write_bytes(b"model")
    rng = np.random.default_rng(0)
    prepare.write_shard(dataset / "fineweb_train_000000.bin", rng.integers(0, 1024, 5000).astype(np.uint16))
    val = rng.integers(0, 1024, 20_000).astype(np.uint16)
    prepare.write_shard(dataset / "fineweb_val_000000.bin", val)
    vocab = np.arange(1024)
    monkeypatch.setattr(prepare, "byte_tables", lambda _model: (1 + vocab % 3, vocab % 2 == 0, vocab == 0))
    monkeypatch.setenv(prepare.DATA_ENV, str(root))
    dirs = [tmp_path / d for d in ("train", "inputs", "labels")]
    prepare.prepare(*dirs)
    return prepare, val, dirs


def test_contexts_end_right_before_their_targets_and_hold_no_target(prepared):
    prepare, val, (_train, inputs, labels) = prepared
    contexts = np.load(inputs / "contexts.npy")
    lengths = np.load(inputs / "lengths.npy")
    positions = np.load(labels / "positions.npy")
    targets = np.load(labels / "targets.npy")
    assert len(positions) == 20_000 // (prepare.CONTEXT + 1) and contexts.shape == (len(positions), prepare.CONTEXT)
    assert lengths.min() >= 1 and lengths.max() <= prepare.CONTEXT
    assert np.array_equal(targets, val[positions])
    starts = positions - lengths
    for row, (p, n) in enumerate(zip(positions, lengths)):
        assert np.array_equal(contexts[row, -n:], val[p - n : p])
        assert not contexts[row, :-n].any()  # left of the context: zeros, not more text
    covered = np.zeros(val.size, dtype=bool)
    for s, p in zip(starts, positions):
        covered[s:p] = True
    assert not covered[positions].any(), "a context holds a target token"


def test_the_eval_phase_gets_no_validation_shard_and_no_target(prepared):
    _prepare, _val, (_train, inputs, labels) = prepared
    shown = sorted(p.relative_to(inputs).as_posix() for p in inputs.rglob("*") if p.is_file())
    assert shown == ["contexts.npy", "lengths.npy", "tokenizers/fineweb_1024_bpe.model"]
    assert {p.name for p in labels.iterdir()} >= {"targets.npy", "target_bytes.npy"}


def test_target_bytes_are_those_of_each_target_after_its_previous_token(prepared):
    prepare, val, (_train, _inputs, labels) = prepared
    positions = np.load(labels / "positions.npy")
    vocab = np.arange(1024)
    base, space, boundary = 1 + vocab % 3, vocab % 2 == 0, vocab == 0
    want = base[val[positions]] + (space[val[positions]] & ~boundary[val[positions - 1]])
    assert np.array_equal(np.load(labels / "target_bytes.npy"), want)


def run_predict(tmp_path: Path, inputs: Path, state: dict) -> np.ndarray:
    predict = module("predict.py")
    workspace, out, preds = (tmp_path / d for d in ("ws", "out", "preds"))
    for folder in (workspace, out, preds):
        folder.mkdir()
    (workspace / "train_gpt.py").write_text(STAND_IN)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    (out / "final_model.int8.ptz").write_bytes(zlib.compress(buffer.getvalue()))
    env = {"HARNESS_WORKSPACE": workspace, "HARNESS_OUT": out, "HARNESS_HELDOUT": inputs, "HARNESS_PREDS": preds}
    saved_path = list(sys.path)
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, str(value))
            predict.main()
    finally:
        sys.path[:] = saved_path
    return np.load(preds / "logprobs.npy")


def test_predict_writes_the_next_token_distribution_of_the_last_context_token(prepared, tmp_path):
    _prepare, _val, (_train, inputs, labels) = prepared
    gen = torch.Generator().manual_seed(0)
    state = {"tok_emb.weight": torch.randn(1024, 8, generator=gen), "lm_head.weight": torch.randn(1024, 8, generator=gen)}
    logprobs = run_predict(tmp_path, inputs, state)
    contexts = np.load(inputs / "contexts.npy")
    last = torch.from_numpy(contexts[:, -1].astype(np.int64))
    want = torch.log_softmax((state["tok_emb.weight"][last] @ state["lm_head.weight"].T).double(), -1).numpy()
    assert logprobs.shape == (len(contexts), 1024) and np.allclose(logprobs, want, atol=1e-5)

    score = module("score.py")
    ws = tmp_path / "ws"
    got = score.score(tmp_path / "preds", labels, tmp_path / "out", ws)
    targets = np.load(labels / "targets.npy")
    nats = -want[np.arange(len(targets)), targets]
    assert got["val_loss"] == pytest.approx(nats.mean())
    assert got["val_bpb"] == pytest.approx(nats.sum() / math.log(2) / np.load(labels / "target_bytes.npy").sum())
    assert got["artifact_bytes"] == (tmp_path / "out" / "final_model.int8.ptz").stat().st_size + len(STAND_IN)


def test_score_refuses_rows_that_are_not_distributions(prepared, tmp_path):
    _prepare, _val, (_train, _inputs, labels) = prepared
    score = module("score.py")
    preds, out, ws = tmp_path / "p", tmp_path / "o", tmp_path / "w"
    for folder in (preds, out, ws):
        folder.mkdir()
    (out / "final_model.int8.ptz").write_bytes(b"x")
    (ws / "train_gpt.py").write_text("x")
    m = len(np.load(labels / "targets.npy"))
    np.save(preds / "logprobs.npy", np.zeros((m, 1024), dtype=np.float32))  # p = 1 for every token
    with pytest.raises(ValueError, match="not a distribution"):
        score.score(preds, labels, out, ws)
    np.save(preds / "logprobs.npy", np.zeros((m - 1, 1024), dtype=np.float32))
    with pytest.raises(ValueError, match="one row per held-out context"):
        score.score(preds, labels, out, ws)


def test_shards_round_trip_and_word_markers_count_one_byte_unless_after_a_boundary(tmp_path):
    prepare = module("prepare.py")
    tokens = np.array([0, 5, 6, 7, 5], dtype=np.uint16)
    prepare.write_shard(tmp_path / "fineweb_val_000000.bin", tokens)
    assert np.array_equal(prepare.read_shard(tmp_path / "fineweb_val_000000.bin"), tokens)
    base = np.array([0, 0, 0, 0, 0, 3, 1, 2])
    space = np.array([0, 0, 0, 0, 0, 1, 0, 1], dtype=bool)
    boundary = np.array([1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    assert prepare.target_bytes(tokens, base, space, boundary).tolist() == [3, 1, 3, 4]
