"""The `tinychat` CPU twin end to end through the CLI.

A short random-agent run of the shipped recipe must complete and replay
clean. One scripted run of a copy with a 20 s train budget proves each rule
of its GPU sibling (nanochat-d12) by a proposal that breaks it, with its
exact label: the train wallclock budget, the output size cap, the
evaluator's immutability, no held-out text in training, and that only the
evaluator's own computation counts (a model that peeks at the next byte
during training gains nothing, since the scored byte is never in its input;
a model that outputs no distribution is not scored).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import edit_diff, harness, replay_json, write_proposals
from harness.recipe_loader import RECIPES_ROOT

RECIPE = RECIPES_ROOT / "tinychat"
TRAIN_BUDGET_S = 20


def edit(path: str, old: str, new: str, base: Path = RECIPE / "src") -> str:
    text = (base / path).read_text()
    assert text.count(old) == 1, f"{old!r} is not a unique line of {path}"
    return edit_diff(path, text, text.replace(old, new))


SAVE = "    torch.save(model.state_dict(), out_dir / \"model.pt\")\n"
CASES = [
    ("budget_overrun", "Pre-train for ten minutes first",
     edit("train.py", "    start = time.time()\n", "    start = time.time()\n    time.sleep(600)\n")),
    ("size_failure", "Ship the optimiser state and a scratch buffer",
     edit("train.py", SAVE, SAVE + "    (out_dir / \"scratch.bin\").write_bytes(b\"0\" * 21_000_000)\n")),
    ("illegal_edit", "Score bits per byte with a friendlier evaluator",
     edit_diff("eval/score.py", (RECIPE / "eval" / "score.py").read_text(),
               (RECIPE / "eval" / "score.py").read_text().replace("mean() / np.log(2)", "mean() / np.log(2) / 2"))),
    ("crash", "Add the held-out fables to the training text", None),  # diff: _held_out_loader() below
    ("metric_missing", "Return NaN logits and hope the evaluator divides by zero",
     edit("model.py", "        return self.head(self.ln_f(x))\n", "        return self.head(self.ln_f(x)) * float(\"nan\")\n")),
    ("not_improved", "Let attention see the next byte while training",
     edit("model.py", "is_causal=True", "is_causal=False")),
]


def _held_out_loader() -> str:
    """loader.py reading the held-out folder, which the train phase does not have."""
    text = (RECIPE / "src" / "loader.py").read_text()
    new = text.replace("from pathlib import Path\n", "import os\nfrom pathlib import Path\n", 1).replace(
        '    raw = np.frombuffer((Path(data_dir) / "train.txt").read_bytes(), dtype=np.uint8)\n',
        '    raw = np.frombuffer((Path(os.environ["HARNESS_HELDOUT"]) / "val.txt").read_bytes(), dtype=np.uint8)\n')
    assert new != text
    return edit_diff("loader.py", text, new)


CASES[3] = (CASES[3][0], CASES[3][1], _held_out_loader())


def test_random_run_of_the_shipped_recipe_completes_and_verifies(tmp_path):
    result = harness("run", "tinychat", "--agent", "random", "--trials", "3", "--fidelity", "smoke",
                     "--out", tmp_path, "--run-id", "r")
    assert result.returncode == 0, result.stdout + result.stderr
    code, report = replay_json(tmp_path / "r")
    assert code == 0 and report["verified"], report["problems"]
    assert report["recipe"] == "tinychat"
    assert [t["id"] for t in report["trials"]] == ["t0000", "t0001", "t0002", "t0003"]
    baseline = report["trials"][0]
    assert baseline["label"] == "keep" and 1.0 < baseline["score"] < 8.0  # better than a uniform guess
    assert all(t["label"] != "harness_error" for t in report["trials"])


@pytest.fixture(scope="module")
def rules_run(tmp_path_factory) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("tinychat_rules")
    recipe = base / "tinychat"
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


def test_peeking_ahead_gains_nothing_and_explanations_name_the_rule(rules_run):
    run_dir, report = rules_run
    baseline, peek = report["trials"][0], report["trials"][-1]
    assert peek["score"] >= baseline["score"] - 0.2, (peek["score"], baseline["score"])  # within the noise margin
    shown = harness("show", run_dir, "t0002").stdout
    assert "size_failure" in shown and "artifact_bytes" in shown
    assert "NaN" in harness("show", run_dir, "t0005").stdout
