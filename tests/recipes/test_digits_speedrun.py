"""Tests of the `digits-speedrun` recipe (CPU twin of airbench96): spec, data, scoring, one real trial."""

from __future__ import annotations

import ast
import inspect
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.types import Direction, RecipeSpec

from recipe_testing import file_digests, load_module, load_spec

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "digits-speedrun"
SRC = RECIPE / "src"
EVAL = RECIPE / "eval"




prepare_mod = load_module("digits_eval_prepare", EVAL / "prepare.py")
score_mod = load_module("digits_eval_score", EVAL / "score.py")


@pytest.fixture(scope="module")
def spec() -> RecipeSpec:
    return load_spec(RECIPE)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits_data")
    prepare_mod.prepare(root / "train", root / "heldout", root / "labels")
    return root




# ---------------------------------------------------------------- spec


def test_spec_validates_and_encodes_the_airbench_rules(spec):
    assert spec.name == RECIPE.name == "digits-speedrun"
    assert spec.metric.name == "train_wallclock_s" and spec.metric.direction is Direction.minimize
    assert spec.metric.noise_margin > 0
    (gate,) = spec.gates
    assert (gate.metric, gate.op, gate.threshold, gate.on_miss) == ("acc", ">=", 0.96, "gate_miss")
    # Every fidelity runs at least the seeds the gate needs; full runs exactly n.
    assert gate.min_seeds == 3 and len(spec.fidelities["full"].seeds) == gate.min_seeds
    assert all(len(f.seeds) >= gate.min_seeds for f in spec.fidelities.values())
    assert spec.fidelities["smoke"].cost < spec.fidelities["full"].cost
    assert "{eval}" in spec.phases.eval
    assert {k.kind for k in spec.knobs} == {"arch", "hparam"}
    assert set(spec.specialists) == {"arch", "opt", "aug", "loss", "reg"}
    for name, sp in spec.specialists.items():
        assert sp.brief and sp.knobs, name
        assert all(spec.is_editable(f) for f in sp.files), name


def test_score_takes_the_harness_timed_wallclock(spec):
    file, func = spec.evaluator.score.split(":")
    params = inspect.signature(getattr(load_module("digits_check_score", EVAL / file), func)).parameters
    assert "train_wallclock_s" in params


def test_source_files_on_the_right_surface(spec):
    files = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")}
    assert files == {"config.py", "data.py", "model.py", "train.py", "augment.py", "loss.py"}
    assert not spec.is_editable("data.py")
    for f in files - {"data.py"}:
        assert spec.is_editable(f), f
    assert not any(spec.is_editable(f"eval/{p.name}") for p in EVAL.iterdir())


def test_each_knob_is_one_literal_line_with_a_valid_value(spec):
    for knob in spec.knobs:
        text = (SRC / knob.file).read_text()
        matches = list(knob.pattern().finditer(text))
        assert len(matches) == 1, f"{knob.name}: {len(matches)} matching lines in {knob.file}"
        value = ast.literal_eval(matches[0]["value"])
        assert value in knob.choices, f"{knob.name} = {value!r} not in {knob.choices}"
        assert type(value) in {type(c) for c in knob.choices}, knob.name
    for sp in spec.specialists.values():
        assert "config.py" in sp.files


# ---------------------------------------------------------------- prepare


def test_prepare_is_deterministic(prepared, tmp_path):
    prepare_mod.prepare(tmp_path / "train", tmp_path / "heldout", tmp_path / "labels")
    assert file_digests(tmp_path) == file_digests(prepared)


def test_prepare_layout_and_no_labels_in_inputs(prepared):
    assert {p.name for p in (prepared / "train").iterdir()} == {"images.npy", "labels.npy", "meta.json"}
    assert {p.name for p in (prepared / "heldout").iterdir()} == {"images.npy", "meta.json"}
    assert {p.name for p in (prepared / "labels").iterdir()} == {"labels.npy"}
    for split, n in (("train", prepare_mod.N_TRAIN), ("heldout", prepare_mod.N_HELDOUT)):
        images = np.load(prepared / split / "images.npy")
        assert images.shape == (n, 16, 16) and images.dtype == np.uint8
        assert images.max() == 255 and images.mean() > 10
    labels = np.load(prepared / "labels" / "labels.npy")
    assert labels.shape == (prepare_mod.N_HELDOUT,) and set(np.unique(labels)) == set(range(10))
    counts = np.bincount(np.load(prepared / "train" / "labels.npy"), minlength=10)
    assert counts.min() > 0.07 * prepare_mod.N_TRAIN  # roughly balanced classes
    # Train and held-out images are different draws.
    train, held = np.load(prepared / "train" / "images.npy"), np.load(prepared / "heldout" / "images.npy")
    assert not {a.tobytes() for a in held} & {a.tobytes() for a in train}


# ---------------------------------------------------------------- score


def _labels_dir(tmp_path: Path, labels) -> Path:
    folder = tmp_path / "labels"
    folder.mkdir()
    np.save(folder / "labels.npy", np.array(labels, dtype=np.int64))
    return folder


def _preds_dir(tmp_path: Path, logits) -> Path:
    folder = tmp_path / "preds"
    folder.mkdir()
    if logits is not None:
        arr = np.asarray(logits)
        np.save(folder / "logits.npy", arr, allow_pickle=arr.dtype == object)
    return folder


def test_score_is_the_measured_wallclock_and_accuracy(tmp_path):
    labels = _labels_dir(tmp_path, [3, 1, 4, 1])
    logits = np.zeros((4, 10), dtype=np.float32)
    logits[0, 3] = 5.0  # right
    logits[1, 1] = 2.0  # right
    logits[2, 0] = 1.0  # wrong (says 0)
    # row 3: all tied -> argmax is class 0 -> wrong
    result = score_mod.score(_preds_dir(tmp_path, logits), labels, train_wallclock_s=7.25)
    assert set(result) == {"train_wallclock_s", "acc", "nll"}
    assert result["train_wallclock_s"] == 7.25  # the host's number, nothing from the trial
    assert result["acc"] == pytest.approx(0.5)
    expected_nll = np.mean([
        -(5 - np.log(np.exp(5) + 9)), -(2 - np.log(np.exp(2) + 9)), np.log(np.e + 9), np.log(10)])
    assert result["nll"] == pytest.approx(expected_nll)
    assert all(isinstance(v, float) for v in result.values())


@pytest.mark.parametrize(
    "bad, reason",
    [
        (None, "missing"),
        (np.zeros((3, 10)), "shape"),
        (np.zeros((4, 9)), "shape"),
        (np.zeros(4), "shape"),
        (np.array([[0.0] * 9 + [np.nan]] * 4), "NaN"),
        (np.array([[0.0] * 9 + [np.inf]] * 4), "infinite"),
        (np.zeros((4, 10), dtype=np.int64), "float"),
        (np.array([[{}] * 10] * 4, dtype=object), "cannot read"),
    ],
)
def test_score_rejects_bad_predictions(tmp_path, bad, reason):
    labels = _labels_dir(tmp_path, [0, 1, 2, 3])
    with pytest.raises(ValueError, match=reason):
        score_mod.score(_preds_dir(tmp_path, bad), labels, train_wallclock_s=5.0)


# ---------------------------------------------------------------- a real trial


def _trial(spec: RecipeSpec, prepared: Path, root: Path, seed: int, env: dict, edit=None) -> tuple[dict, float]:
    """One seed the way the harness runs it: train in a copy of src, predict, score."""
    ws, out, preds = root / "workspace", root / "out", root / "preds"
    shutil.copytree(SRC, ws, ignore=shutil.ignore_patterns("__pycache__"))
    out.mkdir()
    preds.mkdir()
    if edit:
        edit(ws)
    base = {"PATH": os.environ.get("PATH", ""), "HARNESS_SEED": str(seed), "PYTHONDONTWRITEBYTECODE": "1", **env}
    start = time.monotonic()
    run = subprocess.run([sys.executable, "train.py"], cwd=ws, capture_output=True, text=True,
                         env={**base, "HARNESS_DATA": str(prepared / "train"), "HARNESS_OUT": str(out)})
    train_s = time.monotonic() - start
    assert run.returncode == 0, run.stderr
    assert [p.name for p in out.iterdir()] == ["model.pt"]
    assert out.joinpath("model.pt").stat().st_size < spec.budgets.artifact_bytes
    command = spec.phases.eval.replace("{eval}", str(EVAL)).replace("python", sys.executable, 1).split()
    ev = subprocess.run(command, cwd=ws, capture_output=True, text=True,
                        env={**base, "HARNESS_WORKSPACE": str(ws), "HARNESS_OUT": str(out),
                             "HARNESS_HELDOUT": str(prepared / "heldout"), "HARNESS_PREDS": str(preds)})
    assert ev.returncode == 0, ev.stderr
    assert [p.name for p in preds.iterdir()] == ["logits.npy"]
    return score_mod.score(preds, prepared / "labels", train_wallclock_s=train_s), train_s


def test_smoke_baseline_passes_the_gate_and_one_step_misses_it(spec, prepared, tmp_path):
    env = spec.fidelities["smoke"].env
    result, train_s = _trial(spec, prepared, tmp_path / "base", 0, env)
    assert result["train_wallclock_s"] == train_s and train_s < spec.budgets.train_wallclock_s
    assert result["acc"] >= spec.gates[0].threshold + 0.003

    def one_step(ws: Path) -> None:
        text = (ws / "train.py").read_text()
        anchor = "            step += 1\n"
        assert anchor in text
        (ws / "train.py").write_text(text.replace(anchor, anchor + "            break\n", 1))

    lazy, _ = _trial(spec, prepared, tmp_path / "lazy", 0, env, edit=one_step)
    assert lazy["acc"] < 0.5
