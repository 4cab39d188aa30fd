"""Tests of the `collision` recipe: spec, data preparation, scoring, and a real trial end to end."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.types import RecipeSpec

from recipe_testing import file_digests, load_module, load_spec

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "collision"
SRC = RECIPE / "src"
EVAL = RECIPE / "eval"




prepare_mod = load_module("collision_eval_prepare", EVAL / "prepare.py")
score_mod = load_module("collision_eval_score", EVAL / "score.py")


@pytest.fixture(scope="module")
def spec() -> RecipeSpec:
    return load_spec(RECIPE)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("collision_data")
    prepare_mod.prepare(root / "train", root / "heldout", root / "labels")
    return root




# ---------------------------------------------------------------- spec


def test_spec_validates(spec):
    assert spec.name == RECIPE.name == "collision"
    assert spec.metric.name == "ap" and spec.metric.direction.value == "maximize"
    assert spec.metric.noise_margin > 0
    assert "{eval}" in spec.phases.eval
    assert {"full", "smoke"} <= set(spec.fidelities)
    assert spec.fidelities["smoke"].cost < spec.fidelities["full"].cost
    assert {k.kind for k in spec.knobs} == {"arch", "hparam"}
    assert set(spec.specialists) == {"arch", "opt"}
    for name, fn in (("prepare", spec.evaluator.prepare), ("score", spec.evaluator.score)):
        file, func = fn.split(":")
        assert callable(getattr(load_module(f"collision_check_{name}", EVAL / file), func))


def test_source_files_on_the_right_surface(spec):
    files = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")]
    assert "data.py" in files and not spec.is_editable("data.py")
    for f in ("config.py", "model.py", "train.py", "infer.py"):
        assert f in files and spec.is_editable(f)


def test_each_knob_is_one_literal_line_with_a_valid_value(spec):
    for knob in spec.knobs:
        text = (SRC / knob.file).read_text()
        matches = list(knob.pattern().finditer(text))
        assert len(matches) == 1, f"{knob.name}: {len(matches)} matching lines in {knob.file}"
        value = ast.literal_eval(matches[0]["value"])
        assert value in knob.choices, f"{knob.name} = {value!r} not in {knob.choices}"
        assert type(value) in {type(c) for c in knob.choices}, knob.name


# ---------------------------------------------------------------- prepare


def test_prepare_is_deterministic(prepared, tmp_path):
    prepare_mod.prepare(tmp_path / "train", tmp_path / "heldout", tmp_path / "labels")
    assert file_digests(tmp_path) == file_digests(prepared)


def test_prepare_layout_and_no_labels_in_inputs(prepared):
    meta = json.loads((prepared / "heldout" / "meta.json").read_text())
    backbones = meta["backbones"]
    expected_inputs = {f"{b}.npy" for b in backbones} | {"clip_ids.npy", "meta.json"}
    assert {p.name for p in (prepared / "heldout").iterdir()} == expected_inputs
    assert {p.name for p in (prepared / "train").iterdir()} == expected_inputs | {"labels.npy"}
    labels = np.load(prepared / "labels" / "labels.npy")
    assert labels.shape == (meta["n_clips"],) and set(np.unique(labels)) == {0, 1}
    assert np.array_equal(np.load(prepared / "labels" / "clip_ids.npy"), np.load(prepared / "heldout" / "clip_ids.npy"))
    for name, dim in backbones.items():
        x = np.load(prepared / "heldout" / f"{name}.npy")
        assert x.shape == (meta["n_clips"], meta["frames"], dim) and x.dtype == np.float32
    total = sum(p.stat().st_size for p in prepared.rglob("*") if p.is_file())
    assert total < 60_000_000


# ---------------------------------------------------------------- score


def _reference_ap(y: np.ndarray, s: np.ndarray) -> float:
    """Brute force: sum over distinct thresholds of (recall gain) x precision."""
    ap, prev_recall = 0.0, 0.0
    for thr in sorted(set(s.tolist()), reverse=True):
        pred = s >= thr
        tp = np.sum(pred & (y == 1))
        recall = tp / np.sum(y == 1)
        ap += (recall - prev_recall) * tp / np.sum(pred)
        prev_recall = recall
    return ap


def _reference_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    return float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))


@pytest.mark.parametrize(
    "labels, scores, ap",
    [
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),  # perfect ranking
        ([1, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], 0.25),  # the positive ranked last
        ([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4], (1 / 3 + 2 / 4) / 2),  # reversed
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.8333333333333333),  # sklearn's docstring example
        ([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], 0.5),  # all tied: the positive rate
        ([1, 0, 0, 1], [0.9, 0.5, 0.5, 0.1], (1 + 0.5) / 2),  # tie in the middle is one threshold
    ],
)
def test_average_precision_known_cases(labels, scores, ap):
    assert score_mod.average_precision(np.array(labels), np.array(scores, dtype=float)) == pytest.approx(ap)


def test_average_precision_and_auc_match_brute_force_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(2, 40))
        y = rng.integers(0, 2, n)
        y[0], y[1] = 1, 0  # both classes present
        s = rng.integers(0, 5, n) / 4.0  # few distinct values: many ties
        assert score_mod.average_precision(y, s) == pytest.approx(_reference_ap(y, s))
        assert score_mod.roc_auc(y, s) == pytest.approx(_reference_auc(y, s))
        perm = rng.permutation(n)  # order of tied items must not matter
        assert score_mod.average_precision(y[perm], s[perm]) == pytest.approx(score_mod.average_precision(y, s))


def test_auc_known_cases():
    assert score_mod.roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert score_mod.roc_auc(np.array([0, 1, 0, 1]), np.full(4, 0.3)) == pytest.approx(0.5)
    assert score_mod.roc_auc(np.array([1, 1, 0]), np.array([0.0, 0.1, 0.9])) == pytest.approx(0.0)


def _labels_dir(tmp_path: Path, labels) -> Path:
    folder = tmp_path / "labels"
    folder.mkdir()
    np.save(folder / "labels.npy", np.array(labels, dtype=np.int64))
    return folder


def test_score_returns_metrics(tmp_path):
    labels = _labels_dir(tmp_path, [0, 1, 1, 0])
    preds = tmp_path / "preds"
    preds.mkdir()
    np.save(preds / "preds.npy", np.array([0.2, 0.9, 0.4, 0.6]))
    result = score_mod.score(preds, labels)
    assert set(result) == {"ap", "auc", "acc"}
    assert result["ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert result["auc"] == pytest.approx(0.75)
    assert result["acc"] == pytest.approx(0.5)
    assert all(isinstance(v, float) for v in result.values())


@pytest.mark.parametrize(
    "bad, reason",
    [
        (np.array([0.1, 0.2, 0.3]), "expected 4"),
        (np.array([0.1, np.nan, 0.3, 0.4]), "NaN"),
        (np.array([0.1, np.inf, 0.3, 0.4]), "NaN or infinite"),
        (np.full((4, 1), 0.5), "1-D"),
        (np.array([0.1, 1.5, 0.3, 0.4]), "[0, 1]"),
        (np.array([-2.0, 1.0, 0.3, 0.4]), "[0, 1]"),
        (np.array(["a", "b", "c", "d"]), "numeric"),
        (np.array([{}, {}, {}, {}], dtype=object), "cannot read"),
        (None, "missing"),
    ],
)
def test_score_rejects_bad_predictions(tmp_path, bad, reason):
    labels = _labels_dir(tmp_path, [0, 1, 1, 0])
    preds = tmp_path / "preds"
    preds.mkdir()
    if bad is not None:
        np.save(preds / "preds.npy", bad, allow_pickle=bad.dtype == object)
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        score_mod.score(preds, labels)


# ---------------------------------------------------------------- end to end


def _trial(spec: RecipeSpec, prepared: Path, root: Path, knobs: dict, env: dict | None = None) -> tuple[dict, str]:
    """One trial the way the harness runs it: train in a copy of src, predict, score."""
    ws, out, preds = root / "workspace", root / "out", root / "preds"
    shutil.copytree(SRC, ws, ignore=shutil.ignore_patterns("__pycache__"))
    out.mkdir()
    preds.mkdir()
    for name, value in knobs.items():  # edit knob lines exactly as a knob agent would
        knob = spec.knob(name)
        path = ws / knob.file
        text, n = knob.pattern().subn(f"{name} = {value!r}", path.read_text())
        assert n == 1
        path.write_text(text)
    # The sandbox starts from an empty environment; only PATH is passed on.
    base = {"PATH": os.environ.get("PATH", ""), "HARNESS_SEED": "0", **(env or {})}
    train_env = {**base, "HARNESS_DATA": str(prepared / "train"), "HARNESS_OUT": str(out)}
    start = time.monotonic()
    run = subprocess.run(spec.phases.train.replace("python", sys.executable, 1).split(),
                         cwd=ws, env=train_env, capture_output=True, text=True)
    train_s = time.monotonic() - start
    assert run.returncode == 0, run.stderr
    assert train_s < spec.budgets.train_wallclock_s
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) < spec.budgets.artifact_bytes

    eval_env = {**base, "HARNESS_WORKSPACE": str(ws), "HARNESS_OUT": str(out),
                "HARNESS_HELDOUT": str(prepared / "heldout"), "HARNESS_PREDS": str(preds)}
    command = spec.phases.eval.replace("{eval}", str(EVAL)).replace("python", sys.executable, 1).split()
    ev = subprocess.run(command, cwd=ws, env=eval_env, capture_output=True, text=True)
    assert ev.returncode == 0, ev.stderr
    assert [p.name for p in preds.iterdir()] == ["preds.npy"]
    return score_mod.score(preds, prepared / "labels"), run.stdout


def test_end_to_end_baseline_and_better_config(spec, prepared, tmp_path):
    positive_rate = float(np.load(prepared / "labels" / "labels.npy").mean())
    base, _ = _trial(spec, prepared, tmp_path / "base", {})
    assert base["ap"] > positive_rate + 0.1
    better, _ = _trial(spec, prepared, tmp_path / "better", {"BACKBONE": "vjepa_l", "ENCODER": "gru"})
    assert better["ap"] > base["ap"] + 0.15
    assert better["auc"] > base["auc"]


def test_smoke_fidelity_reads_env(spec, prepared, tmp_path):
    env = spec.fidelities["smoke"].env
    result, stdout = _trial(spec, prepared, tmp_path, {}, env)
    n_train = int(np.load(prepared / "train" / "labels.npy").shape[0] * float(env["HARNESS_DATA_FRACTION"]))
    assert f"trained on {n_train} clips" in stdout
    assert 0 <= result["ap"] <= 1
