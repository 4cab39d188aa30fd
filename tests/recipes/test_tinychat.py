"""Tests of the `tinychat` recipe (CPU twin of nanochat-d12): spec, corpus, data, scoring, one real trial."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.types import Direction, RecipeSpec

from recipe_testing import file_digests, load_module, load_spec

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tinychat"
SRC = RECIPE / "src"
EVAL = RECIPE / "eval"




prepare_mod = load_module("tinychat_eval_prepare", EVAL / "prepare.py")
score_mod = load_module("tinychat_eval_score", EVAL / "score.py")


@pytest.fixture(scope="module")
def spec() -> RecipeSpec:
    return load_spec(RECIPE)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tinychat_data")
    prepare_mod.prepare(root / "train", root / "heldout", root / "labels")
    return root




# ---------------------------------------------------------------- spec


def test_spec_validates(spec):
    assert spec.name == RECIPE.name == "tinychat"
    assert spec.metric.name == "val_bpb" and spec.metric.direction is Direction.minimize
    assert spec.metric.noise_margin > 0
    assert "{eval}" in spec.phases.eval
    assert {"full", "smoke"} <= set(spec.fidelities)
    assert spec.fidelities["smoke"].cost < spec.fidelities["full"].cost
    assert {k.kind for k in spec.knobs} == {"arch", "hparam"}
    assert set(spec.specialists) == {"arch", "opt", "data", "sched", "sys"}
    for name, sp in spec.specialists.items():
        assert sp.brief and sp.knobs and all(spec.is_editable(f) for f in sp.files), name
    files = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")}
    assert files == {"config.py", "model.py", "train.py", "loader.py", "optim.py", "schedule.py"}
    assert all(spec.is_editable(f) for f in files)
    assert not any(spec.is_editable(f"eval/{p.name}") for p in EVAL.iterdir())


def test_each_knob_is_one_literal_line_with_a_valid_value(spec):
    for knob in spec.knobs:
        matches = list(knob.pattern().finditer((SRC / knob.file).read_text()))
        assert len(matches) == 1, f"{knob.name}: {len(matches)} matching lines in {knob.file}"
        value = ast.literal_eval(matches[0]["value"])
        assert value in knob.choices and type(value) in {type(c) for c in knob.choices}, knob.name


# ---------------------------------------------------------------- corpus and data


def test_shipped_corpus_is_the_generators_output():
    gen = load_module("tinychat_make_corpus", RECIPE / "tools" / "make_corpus.py")
    shipped = (EVAL / "corpus.txt").read_bytes()
    assert gen.generate().encode("ascii") == shipped
    assert 100_000 <= len(shipped) <= 300_000
    assert shipped.isascii() and b"\r" not in shipped
    assert "public domain" in (RECIPE / "README.md").read_text().lower()


def test_prepare_is_deterministic(prepared, tmp_path):
    prepare_mod.prepare(tmp_path / "train", tmp_path / "heldout", tmp_path / "labels")
    assert file_digests(tmp_path) == file_digests(prepared)


def test_train_and_heldout_split_at_a_fable(prepared):
    corpus = (EVAL / "corpus.txt").read_bytes()
    train = (prepared / "train" / "train.txt").read_bytes()
    assert {p.name for p in (prepared / "train").iterdir()} == {"train.txt", "meta.json"}
    assert corpus.startswith(train) and train.endswith(b"\n\n")
    heldout = corpus[len(train):]
    assert re.fullmatch(rb"[IVXLC]+\. THE [A-Z]+ AND THE [A-Z]+", heldout.split(b"\n", 1)[0])  # a title
    assert 0.2 < len(heldout) / len(corpus) < 0.3


def test_heldout_inputs_never_show_a_target(prepared):
    heldout = (EVAL / "corpus.txt").read_bytes()[(prepared / "train" / "train.txt").stat().st_size:]
    contexts = np.load(prepared / "heldout" / "contexts.npy")
    targets = np.load(prepared / "labels" / "targets.npy")
    positions = np.load(prepared / "labels" / "positions.npy")
    assert {p.name for p in (prepared / "heldout").iterdir()} == {"contexts.npy", "meta.json"}
    m, c = contexts.shape
    assert c == prepare_mod.CONTEXT and m == len(targets) == len(positions) > 800
    assert contexts.dtype == np.uint8 and targets.dtype == np.uint8
    data = np.frombuffer(heldout, dtype=np.uint8)
    assert np.array_equal(targets, data[positions])
    for row, p in zip(contexts, positions):
        assert np.array_equal(row, data[p - c : p])  # the bytes right before the target
    # No context covers another target: the gap between targets exceeds the context.
    assert positions[0] >= c and np.all(np.diff(positions) > c)


# ---------------------------------------------------------------- score


def _write(folder: Path, name: str, arr) -> Path:
    folder.mkdir(exist_ok=True)
    if arr is not None:
        arr = np.asarray(arr)
        np.save(folder / name, arr, allow_pickle=arr.dtype == object)
    return folder


def test_bits_per_byte_by_hand(tmp_path):
    labels = _write(tmp_path / "labels", "targets.npy", np.array([65, 66, 67, 68], dtype=np.uint8))
    lp = np.full((4, 256), np.log(1 / 256))  # uniform: 8 bits per byte
    assert score_mod.score(_write(tmp_path / "p1", "logprobs.npy", lp), labels)["val_bpb"] == pytest.approx(8.0)
    # Half the mass on the right byte for every row: 1 bit per byte; top1 right everywhere.
    lp = np.full((4, 256), np.log(0.5 / 255))
    lp[np.arange(4), [65, 66, 67, 68]] = np.log(0.5)
    result = score_mod.score(_write(tmp_path / "p2", "logprobs.npy", lp.astype(np.float32)), labels)
    assert result == {"val_bpb": pytest.approx(1.0, abs=1e-6), "top1": 1.0}
    # Mass on the wrong byte: the host's labels decide, whatever the trial believes.
    lp = np.full((4, 256), np.log(0.5 / 255))
    lp[:, 0] = np.log(0.5)
    result = score_mod.score(_write(tmp_path / "p3", "logprobs.npy", lp), labels)
    assert result["val_bpb"] == pytest.approx(np.log2(510)) and result["top1"] == 0.0


def test_slightly_unnormalised_rows_are_renormalised_not_rewarded(tmp_path):
    labels = _write(tmp_path / "labels", "targets.npy", np.array([1, 2], dtype=np.uint8))
    lp = np.full((2, 256), np.log(1 / 256) + 0.0009)  # sums to e^0.0009 > 1, within tolerance
    assert score_mod.score(_write(tmp_path / "p", "logprobs.npy", lp), labels)["val_bpb"] == pytest.approx(8.0)


@pytest.mark.parametrize(
    "bad, reason",
    [
        (None, "missing"),
        (np.zeros((2, 256)), "not a distribution"),  # every byte at probability 1
        (np.full((2, 256), np.log(1 / 256) - 0.01), "not a distribution"),
        (np.full((3, 256), np.log(1 / 256)), "shape"),
        (np.full((2, 255), np.log(1 / 255)), "shape"),
        (np.full((2, 256), -np.inf), "NaN or infinite"),
        (np.zeros((2, 256), dtype=np.int64), "float"),
        (np.array([[{}] * 256] * 2, dtype=object), "cannot read"),
    ],
)
def test_score_rejects_bad_predictions(tmp_path, bad, reason):
    labels = _write(tmp_path / "labels", "targets.npy", np.array([1, 2], dtype=np.uint8))
    with pytest.raises(ValueError, match=reason):
        score_mod.score(_write(tmp_path / "p", "logprobs.npy", bad), labels)


# ---------------------------------------------------------------- a real trial


def test_smoke_trial_learns_from_the_checkpoint(spec, prepared, tmp_path):
    ws, out, preds = tmp_path / "workspace", tmp_path / "out", tmp_path / "preds"
    shutil.copytree(SRC, ws, ignore=shutil.ignore_patterns("__pycache__"))
    out.mkdir()
    preds.mkdir()
    base = {"PATH": os.environ.get("PATH", ""), "HARNESS_SEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            **spec.fidelities["smoke"].env}
    run = subprocess.run([sys.executable, "train.py"], cwd=ws, capture_output=True, text=True,
                         env={**base, "HARNESS_DATA": str(prepared / "train"), "HARNESS_OUT": str(out)})
    assert run.returncode == 0, run.stderr
    assert [p.name for p in out.iterdir()] == ["model.pt"]
    command = spec.phases.eval.replace("{eval}", str(EVAL)).replace("python", sys.executable, 1).split()
    ev = subprocess.run(command, cwd=ws, capture_output=True, text=True,
                        env={**base, "HARNESS_WORKSPACE": str(ws), "HARNESS_OUT": str(out),
                             "HARNESS_HELDOUT": str(prepared / "heldout"), "HARNESS_PREDS": str(preds)})
    assert ev.returncode == 0, ev.stderr
    assert [p.name for p in preds.iterdir()] == ["logprobs.npy"]
    result = score_mod.score(preds, prepared / "labels")
    # Even 50 steps beat a uniform guess (8 bits) by a margin.
    assert 2.0 < result["val_bpb"] < 6.0
