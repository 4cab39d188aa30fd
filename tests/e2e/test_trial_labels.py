"""Each failure label that needs a run, reached by a real proposal through the CLI.

One scripted run of a gated copy of the collision recipe (auc >= 0.6, a 15 s
eval budget); every proposal fails in one way and must get exactly its label,
and the lineage must still verify afterwards.
"""

from __future__ import annotations

import re
import shutil

import pytest

from conftest import edit_diff, harness, insert_after_imports, replay_json, src, write_proposals
from harness.recipe_loader import RECIPES_ROOT
from sandboxes.local import LocalSandbox

EVALUATOR_ESCAPE = (
    "import os, pathlib\n"
    "_ev = pathlib.Path(os.path.realpath(os.environ['HARNESS_WORKSPACE'])).parents[2] / 'evaluator' / 'score.py'\n"
    "_ev.write_text(_ev.read_text() + '\\n# rewritten by a trial\\n')\n"
)


# In the local sandbox's mount jail the run folder is hidden from the trial, so the write
# fails (crash); without a jail it succeeds and is caught after the phase (tamper).
EVALUATOR_ESCAPE_LABEL = "crash" if LocalSandbox().mount_isolated else "tamper"


def append(path: str, code: str) -> str:
    return edit_diff(path, src(path), src(path) + code)


def in_train(code: str) -> str:
    return edit_diff("train.py", src("train.py"), insert_after_imports(src("train.py"), code))


CASES = [
    ("tamper", "Rewrite the protected data loader at run time",
     in_train("open('data.py', 'a').write('# changed at run time\\n')\n")),
    (EVALUATOR_ESCAPE_LABEL, "Rewrite the evaluator's scorer at run time", in_train(EVALUATOR_ESCAPE)),
    ("size_failure", "Ship a 6 MB artifact",
     in_train("import os, pathlib\n(pathlib.Path(os.environ['HARNESS_OUT']) / 'pad.bin').write_bytes(b'0' * 6_000_000)\n")),
    ("metric_missing", "Predict only ten clips",
     append("infer.py", "\n_predict = predict\n\ndef predict(out_dir, inputs_dir):\n    return _predict(out_dir, inputs_dir)[:10]\n")),
    ("eval_budget_overrun", "Think very hard at inference", append("infer.py", "\nimport time\ntime.sleep(600)\n")),
    ("oom", "Allocate 64 GiB", in_train("_hog = bytearray(64 * 2**30)\n")),
    ("preflight_crash", "A syntax error", append("model.py", "\ndef broken(:\n    pass\n")),
    ("malformed_proposal", "Not a diff at all", "this is not a unified diff\n"),
    ("gate_miss", "Predict a constant",
     append("infer.py", "\n_predict = predict\n\ndef predict(out_dir, inputs_dir):\n"
                        "    return np.full(len(_predict(out_dir, inputs_dir)), 0.5)\n")),
    ("tamper", "Shrink my own editable code once it is imported", in_train("open('model.py', 'w').close()\n")),
]


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("labels")
    recipe = base / "collision"
    shutil.copytree(RECIPES_ROOT / "collision", recipe, ignore=shutil.ignore_patterns("__pycache__"))
    toml = recipe / "recipe.toml"
    text = re.sub(r"^eval_wallclock_s = .*$", "eval_wallclock_s = 15", toml.read_text(), flags=re.M)
    toml.write_text(text + '\n[[gates]]\nmetric = "auc"\nop = ">="\nthreshold = 0.6\n')
    proposals = write_proposals(base / "p.jsonl", [{"hypothesis": h, "diff": d} for _, h, d in CASES])
    result = harness("run", recipe, "--agent", "scripted", "--proposals", proposals, "--trials", "20",
                     "--fidelity", "smoke", "--out", base, "--run-id", "r")
    assert result.returncode == 0, result.stdout + result.stderr
    return base / "r"


def test_every_proposal_gets_its_label(labelled_run):
    code, report = replay_json(labelled_run)
    labels = [(t["hypothesis"], t["label"]) for t in report["trials"][1:]]
    assert labels == [(h, label) for label, h, _ in CASES]
    assert code == 0, report["problems"]


def test_the_evaluator_is_restored_after_a_trial_rewrote_it(labelled_run):
    code, report = replay_json(labelled_run)
    gate_miss = report["trials"][-2]
    assert gate_miss["label"] == "gate_miss" and gate_miss["metrics"]["auc"] == pytest.approx(0.5)
    scorer = labelled_run / ".harness" / "evaluator" / "score.py"
    assert "rewritten by a trial" not in scorer.read_text()


def test_explanations_name_the_measurement(labelled_run):
    shown = [harness("show", labelled_run, f"t{i + 1:04d}").stdout for i in range(len(CASES))]
    assert "data.py" in shown[0]
    assert "evaluator" in shown[1]
    assert "artifact" in shown[2]
    assert "auc" in shown[8] and "0.6" in shown[8]
