"""Tests of the `tinygolf` recipe (CPU twin of parameter golf): spec, codec, data, scoring, one real trial."""

from __future__ import annotations

import ast
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.types import Direction, RecipeSpec

from recipe_testing import file_digests, load_module, load_spec

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tinygolf"
SRC = RECIPE / "src"
EVAL = RECIPE / "eval"




prepare_mod = load_module("tinygolf_eval_prepare", EVAL / "prepare.py")
score_mod = load_module("tinygolf_eval_score", EVAL / "score.py")
codec = load_module("tinygolf_eval_codec", EVAL / "codec.py")


@pytest.fixture(scope="module")
def spec() -> RecipeSpec:
    return load_spec(RECIPE)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tinygolf_data")
    prepare_mod.prepare(root / "train", root / "heldout", root / "labels")
    return root




# ---------------------------------------------------------------- spec


def test_spec_validates_and_encodes_the_golf_rules(spec):
    assert spec.name == RECIPE.name == "tinygolf"
    assert spec.metric.name == "val_bpb" and spec.metric.direction is Direction.minimize
    (gate,) = spec.gates
    assert (gate.metric, gate.op, gate.on_miss) == ("artifact_bytes", "<=", "size_failure")
    assert 50_000 <= gate.threshold <= 200_000
    assert spec.phases.train.startswith("python {data}/") and "{eval}" in spec.phases.eval
    assert spec.budgets.train_wallclock_s <= 120 and spec.budgets.eval_wallclock_s <= 60
    assert {k.kind for k in spec.knobs} == {"arch", "hparam"}
    assert set(spec.specialists) == {"arch", "opt", "quant", "reg", "loss", "eval", "tok"}
    for name, sp in spec.specialists.items():
        assert sp.brief and sp.knobs and all(spec.is_editable(f) for f in sp.files), name
    files = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")}
    assert files == {"config.py", "model.py", "train.py", "loss.py", "quant.py"}
    assert all(spec.is_editable(f) for f in files)
    assert not any(spec.is_editable(f"eval/{p.name}") for p in EVAL.iterdir())


def test_each_knob_is_one_literal_line_with_a_valid_value(spec):
    for knob in spec.knobs:
        matches = list(knob.pattern().finditer((SRC / knob.file).read_text()))
        assert len(matches) == 1, f"{knob.name}: {len(matches)} matching lines in {knob.file}"
        value = ast.literal_eval(matches[0]["value"])
        assert value in knob.choices and type(value) in {type(c) for c in knob.choices}, knob.name


# ---------------------------------------------------------------- codec


def test_codec_round_trip_is_int8_per_row_with_aliases_stored_once():
    torch.manual_seed(0)
    emb = torch.nn.Embedding(256, 32)
    head = torch.nn.Linear(32, 256, bias=False)
    head.weight = emb.weight  # tied
    norm = torch.nn.LayerNorm(32)
    state = {"emb.weight": emb.weight, "head.weight": head.weight, "norm.weight": norm.weight,
             "norm.bias": norm.bias + 0.3, "steps": torch.tensor([7, 8], dtype=torch.int64),
             "empty": torch.zeros(0, 4)}
    blob = codec.encode(state)
    untied = dict(state, **{"head.weight": head.weight.detach().clone()})
    # The alias is not stored twice (zlib's 32 KB window would hide that for small tensors only).
    assert len(zlib.decompress(codec.encode(untied))) >= len(zlib.decompress(blob)) + 256 * 32
    decoded = codec.decode(blob)
    assert list(decoded) == list(state)
    w = emb.weight.detach().numpy()
    step = np.abs(w).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(decoded["emb.weight"] - w) <= step * 0.5 + 1e-3 * step + 1e-6)
    assert decoded["head.weight"] is decoded["emb.weight"]
    assert np.allclose(decoded["norm.bias"], 0.3, atol=0.3 / 254 + 1e-4)
    assert decoded["steps"].dtype == np.int64 and decoded["steps"].tolist() == [7, 8]
    assert decoded["empty"].shape == (0, 4)
    # The blob is exactly: zlib(level 9) of magic + header + float16 scales + int8 values.
    raw = zlib.decompress(blob)
    assert raw[:4] == codec.MAGIC and zlib.compress(raw, 9) == blob


def _payload(header: list, body: bytes) -> bytes:
    head = __import__("json").dumps(header).encode()
    return codec.MAGIC + struct.pack("<I", len(head)) + head + body


@pytest.mark.parametrize(
    "blob, reason",
    [
        (b"not zlib at all", "zlib"),
        (zlib.compress(b"XXXX\x00\x00\x00\x00"), "magic"),
        (zlib.compress(_payload([{"name": "w", "dtype": "float32", "shape": [2, 2], "kind": "row"}], b"\x00" * 4)), "truncated"),
        (zlib.compress(_payload([{"name": "w", "dtype": "float32", "shape": [1], "kind": "tensor"}], b"\x00\x3c\x05" + b"junk")), "trailing"),
        (zlib.compress(_payload([{"name": "w", "dtype": "float32", "shape": [1], "kind": "tensor"}], b"\x00\x3c\x80")), "-128"),
        (zlib.compress(_payload([{"name": "w", "dtype": "float32", "shape": [4], "kind": "raw"}], b"\x00" * 16)), "raw storage"),
        (zlib.compress(_payload([{"name": "w", "dtype": "float32", "shape": [2, 2], "kind": "tensor"}], b"\x00" * 6)), "per row"),
        (zlib.compress(_payload([{"name": "w", "alias": "nope"}], b"")), "alias"),
        (zlib.compress(codec.MAGIC + b"\x00" * (codec.MAX_DECODED_BYTES + 10)), "more than"),
        (zlib.compress(_payload([], b"")) + b"extra", "extra bytes"),
    ],
)
def test_codec_rejects_what_is_not_its_format(blob, reason):
    with pytest.raises(ValueError, match=reason):
        codec.decode(blob)


# ---------------------------------------------------------------- corpus and data


def test_shipped_corpus_is_the_generators_output():
    gen = load_module("tinygolf_make_corpus", RECIPE / "tools" / "make_corpus.py")
    shipped = (EVAL / "corpus.txt").read_bytes()
    assert gen.generate().encode("ascii") == shipped
    assert 100_000 <= len(shipped) <= 300_000 and shipped.isascii()
    assert shipped != (RECIPE.parent / "tinychat" / "eval" / "corpus.txt").read_bytes()[: len(shipped)]


def test_prepare_is_deterministic_and_ships_the_driver(prepared, tmp_path):
    prepare_mod.prepare(tmp_path / "train", tmp_path / "heldout", tmp_path / "labels")
    assert file_digests(tmp_path) == file_digests(prepared)
    assert {p.name for p in (prepared / "train").iterdir()} == {"train.txt", "meta.json", "golf_run.py", "codec.py"}
    for name in ("golf_run.py", "codec.py"):
        assert (prepared / "train" / name).read_bytes() == (EVAL / name).read_bytes()
    assert {p.name for p in (prepared / "heldout").iterdir()} == {"contexts.npy", "meta.json"}
    # The validation text is nowhere in the train folder.
    corpus = (EVAL / "corpus.txt").read_bytes()
    train = (prepared / "train" / "train.txt").read_bytes()
    assert corpus.startswith(train) and len(train) < 0.8 * len(corpus)
    positions = np.load(prepared / "labels" / "positions.npy")
    assert np.all(np.diff(positions) > prepare_mod.CONTEXT)


# ---------------------------------------------------------------- score


def _case(tmp_path: Path, *, blob: bytes | None = None, extra: dict | None = None, code: dict | None = None):
    labels = tmp_path / "labels"
    labels.mkdir()
    np.save(labels / "targets.npy", np.array([10, 20], dtype=np.uint8))
    preds = tmp_path / "preds"
    preds.mkdir()
    np.save(preds / "logprobs.npy", np.full((2, 256), np.log(1 / 256), dtype=np.float32))
    out = tmp_path / "out"
    out.mkdir()
    if blob is not None:
        (out / "model.int8.zlib").write_bytes(blob)
    for name, data in (extra or {}).items():
        (out / name).write_bytes(data)
    ws = tmp_path / "ws"
    ws.mkdir()
    for name, data in (code or {"config.py": b"X = 1\n"}).items():
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_bytes(data)
    return preds, labels, out, ws


def test_score_measures_code_model_and_everything_else(tmp_path):
    blob = codec.encode({"w": torch.ones(3, 4)})
    code = {"config.py": b"A = 1\n" * 10, "model.py": b"# model\n", "sub/notes.txt": b"n" * 100}
    preds, labels, out, ws = _case(tmp_path, blob=blob, extra={"fp32.pt": b"\0" * 1234}, code=code)
    result = score_mod.score(preds, labels, out_dir=out, workspace_dir=ws)
    assert result["val_bpb"] == pytest.approx(8.0)
    assert result["code_bytes"] == 60 + 8 + 100
    assert result["model_bytes"] == len(blob)
    assert result["other_bytes"] == 1234
    assert result["artifact_bytes"] == 60 + 8 + 100 + len(blob) + 1234


def test_score_refuses_symlinks_out_of_the_measured_folders(tmp_path):
    preds, labels, out, ws = _case(tmp_path, blob=codec.encode({"w": torch.ones(2)}))
    (tmp_path / "elsewhere.bin").write_bytes(b"w" * 500_000)
    (ws / "weights.bin").symlink_to(tmp_path / "elsewhere.bin")
    with pytest.raises(ValueError, match="symlink"):
        score_mod.score(preds, labels, out_dir=out, workspace_dir=ws)


@pytest.mark.parametrize("blob, reason", [(None, "no model.int8.zlib"), (b"garbage", "codec")])
def test_score_rejects_a_missing_or_foreign_model(tmp_path, blob, reason):
    preds, labels, out, ws = _case(tmp_path, blob=blob)
    with pytest.raises(ValueError, match=reason):
        score_mod.score(preds, labels, out_dir=out, workspace_dir=ws)


@pytest.mark.parametrize("bad, reason", [(np.zeros((2, 256)), "not a distribution"), (np.zeros((1, 256)), "shape")])
def test_score_rejects_bad_predictions(tmp_path, bad, reason):
    preds, labels, out, ws = _case(tmp_path, blob=codec.encode({"w": torch.ones(2)}))
    np.save(preds / "logprobs.npy", bad)
    with pytest.raises(ValueError, match=reason):
        score_mod.score(preds, labels, out_dir=out, workspace_dir=ws)


# ---------------------------------------------------------------- a real trial


def test_smoke_trial_round_trips_through_the_evaluator(spec, prepared, tmp_path):
    ws, out, preds = tmp_path / "workspace", tmp_path / "out", tmp_path / "preds"
    shutil.copytree(SRC, ws, ignore=shutil.ignore_patterns("__pycache__"))
    out.mkdir()
    preds.mkdir()
    base = {"PATH": os.environ.get("PATH", ""), "HARNESS_SEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            **spec.fidelities["smoke"].env}
    data = prepared / "train"
    command = spec.phases.train.replace("{data}", str(data)).replace("python", sys.executable, 1).split()
    run = subprocess.run(command, cwd=ws, capture_output=True, text=True,
                         env={**base, "HARNESS_DATA": str(data), "HARNESS_OUT": str(out), "HARNESS_WORKSPACE": str(ws)})
    assert run.returncode == 0, run.stderr
    assert [p.name for p in out.iterdir()] == ["model.int8.zlib"]  # no full-precision weights leave training
    command = spec.phases.eval.replace("{eval}", str(EVAL)).replace("python", sys.executable, 1).split()
    ev = subprocess.run(command, cwd=ws, capture_output=True, text=True,
                        env={**base, "HARNESS_WORKSPACE": str(ws), "HARNESS_OUT": str(out),
                             "HARNESS_HELDOUT": str(prepared / "heldout"), "HARNESS_PREDS": str(preds)})
    assert ev.returncode == 0, ev.stderr
    result = score_mod.score(preds, prepared / "labels", out_dir=out, workspace_dir=ws)
    assert 2.0 < result["val_bpb"] < 6.0
    assert result["code_bytes"] == sum(p.stat().st_size for p in SRC.glob("*.py"))
    assert result["artifact_bytes"] <= spec.gates[0].threshold
