"""The `digits-speedrun` CPU twin end to end through the CLI.

One scripted run of a copy of the recipe with a 20 s train budget proves
each rule of its GPU sibling (airbench96) by a proposal that breaks it: the
accuracy gate over 3 seeds (train a single step), no held-out data in
training, the train wallclock budget, and the evaluator's and the protected
files' immutability, each with its exact label. The same run then goes on
with the random agent for 3 trials, and the lineage must replay clean.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import edit_diff, harness, replay_json, write_proposals
from harness.recipe_loader import RECIPES_ROOT

RECIPE = RECIPES_ROOT / "digits-speedrun"
TRAIN_BUDGET_S = 20


def src(path: str) -> str:
    return (RECIPE / "src" / path).read_text()


def edit(path: str, old: str, new: str, base: Path = RECIPE / "src") -> str:
    text = (base / path).read_text()
    assert text.count(old) == 1, f"{old!r} is not a unique line of {path}"
    return edit_diff(path, text, text.replace(old, new))


CASES = [
    ("gate_miss", "Speedrun: one optimiser step is enough", None),  # diff: _one_step() below
    ("crash", "Train on the held-out images",
     edit("train.py", "    x, y = load_images(data_dir), load_labels(data_dir)\n",
          "    x, y = load_images(Path(os.environ['HARNESS_HELDOUT'])), load_labels(data_dir)\n")),
    ("budget_overrun", "Warm the caches for ten minutes",
     edit("train.py", "    start = time.time()\n", "    start = time.time()\n    time.sleep(600)\n")),
    ("illegal_edit", "Lower the accuracy gate in the evaluator",
     edit_diff("eval/score.py", (RECIPE / "eval" / "score.py").read_text(),
               (RECIPE / "eval" / "score.py").read_text().replace('"acc": accuracy(labels, logits)', '"acc": 1.0'))),
    ("illegal_edit", "Cache the decoded images in the protected loader",
     edit("data.py", '    """(N, 1, 16, 16) float32 images in [0, 1]: the input every model receives."""\n',
          '    """(N, 1, 16, 16) float32 images in [0, 1], cached."""\n')),
]


def _one_step() -> str:
    """train.py with a single epoch of a single step."""
    text = src("train.py")
    for old, new in (("    for epoch in range(epochs):\n", "    for epoch in range(1):\n"),
                     ("            step += 1\n", "            step += 1\n            break\n")):
        assert text.count(old) == 1
        text = text.replace(old, new)
    return edit_diff("train.py", src("train.py"), text)


CASES[0] = (CASES[0][0], CASES[0][1], _one_step())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """One run of a copy of the recipe whose only change is a 20 s train budget: the scripted rule
    breakers first, then `--resume` with the random agent for 3 more trials (one baseline for both:
    every digits trial runs 3 seeds, so a second run would double the file's time)."""
    base = tmp_path_factory.mktemp("digits")
    recipe = base / "digits-speedrun"
    shutil.copytree(RECIPE, recipe, ignore=shutil.ignore_patterns("__pycache__"))
    toml = recipe / "recipe.toml"
    text, n = re.subn(r"^train_wallclock_s = .*$", f"train_wallclock_s = {TRAIN_BUDGET_S}", toml.read_text(),
                      flags=re.M)
    assert n == 1
    toml.write_text(text)
    proposals = write_proposals(base / "p.jsonl", [{"hypothesis": h, "diff": d} for _, h, d in CASES])
    result = harness("run", recipe, "--agent", "scripted", "--proposals", proposals, "--trials", "10",
                     "--fidelity", "smoke", "--out", base, "--run-id", "r")
    assert result.returncode == 0, result.stdout + result.stderr
    result = harness("run", "--resume", base / "r", "--agent", "random", "--trials", "3", "--fidelity", "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    return base / "r"


@pytest.fixture(scope="module")
def report(run_dir) -> dict:
    code, report = replay_json(run_dir)
    assert code == 0 and report["verified"], report["problems"]
    return report


def test_each_rule_is_enforced_with_its_label(report):
    assert report["recipe"] == "digits-speedrun"
    assert report["trials"][0]["label"] == "keep"
    labels = [(t["hypothesis"], t["label"]) for t in report["trials"][1 : len(CASES) + 1]]
    assert labels == [(h, label) for label, h, _ in CASES]
    assert all(t["score"] is None for t in report["trials"][2 : len(CASES) + 1])


def test_random_agent_trials_complete_and_the_lineage_verifies(report):
    trials = report["trials"]
    assert [t["id"] for t in trials] == [f"t{i:04d}" for i in range(len(CASES) + 4)]
    assert [t["agent"] for t in trials[len(CASES) + 1 :]] == ["random"] * 3
    assert all(t["label"] != "harness_error" for t in trials)
    baseline = trials[0]
    assert 0 < baseline["score"] < 3 * TRAIN_BUDGET_S and baseline["score"] == baseline["metrics"]["train_wallclock_s"]
    assert baseline["metrics"]["acc"] >= 0.96
    for t in trials:
        if t["label"] in ("keep", "not_improved"):
            assert t["metrics"]["acc"] >= 0.96, t  # a scored trial passed the gate


def test_explanations_name_the_rule(run_dir, report):
    gate_miss = report["trials"][1]
    assert gate_miss["metrics"]["acc"] < 0.5 and gate_miss["score"] > 0  # fast, but not a valid run
    shown = harness("show", run_dir, "t0001").stdout
    assert "gate_miss" in shown and "acc >= 0.96" in shown
    over = harness("show", run_dir, "t0003").stdout
    assert "budget_overrun" in over and f"{TRAIN_BUDGET_S}" in over
