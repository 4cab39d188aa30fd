"""The `tinygolf` CPU twin end to end through the CLI.

A short random-agent run of the shipped recipe must complete and replay
clean. One scripted run of a copy with a 20 s train budget proves each rule
of its GPU sibling (parameter golf) by a proposal that breaks it, with its
exact label: the artifact cap measured by the evaluator (a bigger model,
padding in the source, full-precision weights smuggled next to the int8
artifact: each `size_failure`), the train wallclock budget, no validation
text during training, and the evaluator's immutability (its codec).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import edit_diff, harness, replay_json, set_knob, write_proposals
from harness.recipe_loader import RECIPES_ROOT

RECIPE = RECIPES_ROOT / "tinygolf"
TRAIN_BUDGET_S = 20


def src(path: str) -> str:
    return (RECIPE / "src" / path).read_text()


def edit(path: str, old: str, new: str) -> str:
    text = src(path)
    assert text.count(old) == 1, f"{old!r} is not a unique line of {path}"
    return edit_diff(path, text, text.replace(old, new))


def knobs(**values) -> str:
    text = src("config.py")
    for name, value in values.items():
        text = set_knob(text, name, value)
    assert text != src("config.py")
    return edit_diff("config.py", src("config.py"), text)


RETURN = "    return model.state_dict()\n"
CASES = [
    ("size_failure", "A three-layer, 80-wide model learns more per step",
     knobs(N_LAYER=3, N_EMBD=80, MLP_RATIO=4, STEPS=50)),
    ("size_failure", "Document the model thoroughly",
     edit_diff("config.py", src("config.py"), src("config.py") + "\n# " + "golf " * 24_000 + "\n")),
    ("size_failure", "Keep the full-precision weights next to the int8 artifact",
     edit("train.py", RETURN, "    torch.save(model.state_dict(), Path(os.environ['HARNESS_OUT']) / 'fp32.pt')\n"
          + RETURN)),
    ("budget_overrun", "Anneal for ten minutes",
     edit("train.py", "    start = time.time()\n", "    start = time.time()\n    time.sleep(600)\n")),
    ("crash", "Train on the validation fables too",
     edit("train.py", '    raw = (Path(os.environ["HARNESS_DATA"]) / "train.txt").read_bytes()\n',
          '    raw = (Path(os.environ["HARNESS_HELDOUT"]) / "contexts.npy").read_bytes()\n')),
    ("illegal_edit", "Store weights in float16 in the evaluator's codec",
     edit_diff("eval/codec.py", (RECIPE / "eval" / "codec.py").read_text(),
               (RECIPE / "eval" / "codec.py").read_text().replace("zlib.compress(MAGIC", "zlib.compress(MAGIC * 1"))),
]


def test_random_run_of_the_shipped_recipe_completes_and_verifies(tmp_path):
    result = harness("run", "tinygolf", "--agent", "random", "--trials", "3", "--fidelity", "smoke",
                     "--out", tmp_path, "--run-id", "r")
    assert result.returncode == 0, result.stdout + result.stderr
    code, report = replay_json(tmp_path / "r")
    assert code == 0 and report["verified"], report["problems"]
    assert report["recipe"] == "tinygolf"
    assert [t["id"] for t in report["trials"]] == ["t0000", "t0001", "t0002", "t0003"]
    baseline = report["trials"][0]
    assert baseline["label"] == "keep" and 1.0 < baseline["score"] < 8.0
    metrics = baseline["metrics"]
    assert metrics["artifact_bytes"] == metrics["code_bytes"] + metrics["model_bytes"] + metrics["other_bytes"]
    assert metrics["other_bytes"] == 0 and metrics["artifact_bytes"] <= 100_000
    assert all(t["label"] != "harness_error" for t in report["trials"])


@pytest.fixture(scope="module")
def rules_run(tmp_path_factory) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("tinygolf_rules")
    recipe = base / "tinygolf"
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
    code, report = replay_json(base / "r")
    assert code == 0 and report["verified"], report["problems"]
    return base / "r", report


def test_each_rule_is_enforced_with_its_label(rules_run):
    _, report = rules_run
    assert report["trials"][0]["label"] == "keep"
    labels = [(t["hypothesis"], t["label"]) for t in report["trials"][1:]]
    assert labels == [(h, label) for label, h, _ in CASES]


def test_the_size_failures_name_the_evaluators_measurement(rules_run):
    run_dir, _ = rules_run
    for tid in ("t0001", "t0002", "t0003"):
        shown = harness("show", run_dir, tid).stdout
        assert "size_failure" in shown and "artifact_bytes <= 100000" in shown, shown
