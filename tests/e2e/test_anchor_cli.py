"""Anchors through the CLI: `harness anchor`, `replay --verify --anchor`, `run --anchor-to`.

An anchor pins a run's ledger head and trial count; replay must fail with a tamper
finding unless the lineage extends that state. A resumed run extends it; a history
made anew (here: another run of the same recipe, proposals and run id copied over
the first one's folder, which verifies on its own) does not.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import harness, replay_json, scripted_proposals, write_proposals
from harness.recipe_loader import RECIPES_ROOT


@pytest.fixture(scope="module")
def fast_recipe(tmp_path_factory) -> Path:
    """The collision recipe with a roomy train budget: no test here is about time, and a busy
    machine must not turn the baseline into a budget_overrun."""
    folder = tmp_path_factory.mktemp("recipes") / "collision"
    shutil.copytree(RECIPES_ROOT / "collision", folder, ignore=shutil.ignore_patterns("__pycache__"))
    toml = folder / "recipe.toml"
    text, n = re.subn(r"^train_wallclock_s = .*$", "train_wallclock_s = 300", toml.read_text(), flags=re.M)
    assert n == 1
    toml.write_text(text)
    return folder


def run_scripted(fast_recipe: Path, out: Path, trials: int, *extra: object) -> Path:
    proposals = write_proposals(out.parent / f"{out.name}-proposals.jsonl", scripted_proposals()[:1])
    result = harness("run", fast_recipe, "--agent", "scripted", "--proposals", proposals, "--trials", trials,
                     "--fidelity", "smoke", "--out", out, "--run-id", "r", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "r"


def anchor_line(run_dir: Path, *extra: object) -> str:
    result = harness("anchor", run_dir, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def replay_with(run_dir: Path, *anchor_args: object) -> tuple[int, dict]:
    result = harness("replay", run_dir, "--verify", "--json", *anchor_args)
    return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module")
def anchored(tmp_path_factory, fast_recipe):
    """A run of the baseline alone, its anchor, and an anchor file written by --anchor-to."""
    base = tmp_path_factory.mktemp("anchored")
    anchors = base / "elsewhere" / "anchors.txt"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "run", "-f", str(base / "runkey")],
                   check=True)
    run_dir = run_scripted(fast_recipe, base / "runs", 0, "--anchor-to", anchors, "--anchor-every", "1",
                           "--anchor-sign", base / "runkey")
    return run_dir, anchor_line(run_dir), anchors


def test_anchor_line_names_the_ledger_head_and_trial_count(anchored):
    run_dir, line, _ = anchored
    head = subprocess.run(["git", "-C", str(run_dir), "rev-parse", "refs/heads/ledger"], capture_output=True,
                          text=True, check=True).stdout.strip()
    fields = dict(word.split("=", 1) for word in line.split()[1:])
    assert line.startswith("harness-anchor/1 ")
    assert fields["run"] == "r" and fields["ledger"] == head and fields["trials"] == "1"


def test_the_run_verifies_against_its_own_anchor(anchored):
    run_dir, line, _ = anchored
    code, report = replay_with(run_dir, "--anchor", line)
    assert code == 0 and report["verified"], report["problems"]


def test_anchor_to_appended_one_line_per_trial_outside_the_run(anchored):
    run_dir, line, anchors = anchored
    lines = anchors.read_text().splitlines()
    assert len(lines) == 1 and lines[0].split(" at=")[0] == line.split(" at=")[0]
    assert " sig=" in lines[0]  # --anchor-sign
    code, report = replay_with(run_dir, "--anchor", anchors, "--anchor-key", anchors.parent.parent / "runkey.pub")
    assert code == 0, report["problems"]


def test_anchor_to_inside_the_run_folder_is_refused(tmp_path, fast_recipe):
    out = tmp_path / "runs"
    result = harness("run", fast_recipe, "--trials", "0", "--out", out, "--run-id", "r",
                     "--anchor-to", out / "r" / "anchors.txt")
    assert result.returncode == 2 and "inside the run folder" in result.stdout + result.stderr
    assert not (out / "r").exists()


def test_a_resumed_run_still_verifies_against_an_earlier_anchor(anchored, tmp_path, fast_recipe):
    run_dir, line, anchors = anchored
    copy = tmp_path / "r"
    shutil.copytree(run_dir, copy, symlinks=True)
    proposals = write_proposals(tmp_path / "more.jsonl", scripted_proposals()[:1])
    resumed = harness("run", "--resume", copy, "--agent", "scripted", "--proposals", proposals, "--trials", "1",
                      "--anchor-to", anchors, "--anchor-every", "1")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    code, report = replay_with(copy, "--anchor", line, "--anchor", anchors)
    assert code == 0 and report["verified"], report["problems"]
    assert len(report["trials"]) == 2
    assert len(anchors.read_text().splitlines()) == 2


def test_a_replaced_history_that_verifies_fails_against_the_anchor(anchored, tmp_path, fast_recipe):
    run_dir, line, _ = anchored
    forged = run_scripted(fast_recipe, tmp_path / "forger", 0)  # the same recipe, proposals and run id
    victim = tmp_path / "victim"
    shutil.copytree(run_dir, victim, symlinks=True)
    shutil.rmtree(victim / ".git")
    shutil.copytree(forged / ".git", victim / ".git", symlinks=True)
    code, report = replay_json(victim)
    assert code == 0 and report["verified"], "the replaced history verifies on its own"
    code, report = replay_with(victim, "--anchor", line)
    assert code == 1 and not report["verified"]
    assert any(p.startswith("tamper: anchor ") and "history was replaced" in p for p in report["problems"])


def test_an_anchor_with_another_trial_count_is_a_tamper_finding(anchored):
    run_dir, line, _ = anchored
    code, report = replay_with(run_dir, "--anchor", line.replace("trials=1", "trials=2"))
    assert code == 1 and any("holds 1 trial records, the anchor says 2" in p for p in report["problems"])


def test_a_malformed_anchor_is_a_clear_error(anchored):
    run_dir, _, _ = anchored
    result = harness("replay", run_dir, "--verify", "--anchor", "harness-anchor/1 run=r ledger=xyz")
    assert result.returncode == 2 and "anchor line" in result.stderr and "Traceback" not in result.stderr


def test_signed_anchor_verifies_with_the_key_and_not_with_another(anchored, tmp_path):
    run_dir, _, _ = anchored
    for name in ("key", "other"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(tmp_path / name)],
                       check=True)
    line = anchor_line(run_dir, "--sign", tmp_path / "key")
    assert " sig=" in line
    code, report = replay_with(run_dir, "--anchor", line, "--anchor-key", tmp_path / "key.pub")
    assert code == 0, report["problems"]
    code, report = replay_with(run_dir, "--anchor", line, "--anchor-key", tmp_path / "other.pub")
    assert code == 1 and any("signature does not verify" in p for p in report["problems"])
    unsigned = line.split(" sig=")[0]
    code, report = replay_with(run_dir, "--anchor", unsigned, "--anchor-key", tmp_path / "key.pub")
    assert code == 1 and any("not signed" in p for p in report["problems"])
    edited = line.replace("trials=1", "trials=0")  # a signed line whose state is changed
    code, report = replay_with(run_dir, "--anchor", edited, "--anchor-key", tmp_path / "key.pub")
    assert code == 1 and any("signature does not verify" in p for p in report["problems"])
