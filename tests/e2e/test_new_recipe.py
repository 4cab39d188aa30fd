"""docs/adding-a-recipe.md, followed to the letter: scaffold, edit, check, a 5-trial run, a clean replay.

The guide marks its walkthrough with HTML comments the renderer hides:
`<!-- guide: run -->` before a bash block (each line is a command),
`<!-- guide: append PATH -->` before a block to append to PATH, and
`<!-- guide: replace PATH -->` before two blocks (the text, then its replacement).
This test executes them in order, in an empty folder, so the guide cannot drift
from what works.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import replay_json

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "adding-a-recipe.md"
DIRECTIVE = re.compile(r"<!-- guide: (run|append|replace)\s*(\S*)\s*-->")
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)

pytestmark = pytest.mark.e2e


def guide_steps(text: str) -> list[tuple[str, str, list[str]]]:
    """(kind, path, blocks) for every directive, in order."""
    steps = []
    for match in DIRECTIVE.finditer(text):
        kind, path = match.group(1), match.group(2)
        blocks = FENCE.findall(text, match.end())
        wanted = 2 if kind == "replace" else 1
        assert len(blocks) >= wanted, f"directive {match.group(0)} has no code block after it"
        steps.append((kind, path, blocks[:wanted]))
    return steps


def run_command(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(line)
    assert argv[0] == "harness", f"the guide's walkthrough runs only `harness` commands, not {line!r}"
    return subprocess.run([sys.executable, "-m", "harness.cli", *argv[1:]], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def test_the_guide_walkthrough_builds_runs_and_replays(tmp_path):
    steps = guide_steps(GUIDE.read_text(encoding="utf-8"))
    kinds = [k for k, _, _ in steps]
    assert kinds.count("run") >= 3 and "append" in kinds and "replace" in kinds
    commands = []
    for kind, path, blocks in steps:
        if kind == "run":
            for line in blocks[0].splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    result = run_command(line, tmp_path)
                    assert result.returncode == 0, f"`{line}` failed:\n{result.stdout}\n{result.stderr}"
                    commands.append((line, result))
        elif kind == "append":
            target = tmp_path / path
            assert target.is_file(), f"the guide appends to {path}, which the steps before did not create"
            target.write_text(target.read_text() + blocks[0])
        else:
            target = tmp_path / path
            old, new = blocks
            text = target.read_text()
            assert text.count(old) == 1, f"the guide replaces text that {path} holds {text.count(old)} times"
            target.write_text(text.replace(old, new))

    ran = [line for line, _ in commands]
    assert any(line.startswith("harness recipe new") for line in ran)
    run_line = next(line for line in ran if line.startswith("harness run "))
    argv = shlex.split(run_line)
    assert argv[argv.index("--trials") + 1] == "5"
    run_dir = tmp_path / argv[argv.index("--out") + 1] / argv[argv.index("--run-id") + 1]

    # The run replays clean, and it ran the edited recipe: the new knob and the gate are in its spec.
    code, report = replay_json(run_dir)
    assert code == 0 and report["verified"], report["problems"]
    assert report["recipe"] == "spirals"
    assert [t["id"] for t in report["trials"]] == [f"t{i:04d}" for i in range(6)]
    assert report["trials"][0]["label"] == "keep" and report["trials"][0]["score"] > 0.6
    info = json.loads(subprocess.run(["git", "-C", str(run_dir), "show", "ledger:run.json"], capture_output=True,
                                     text=True, check=True).stdout)
    assert "BETA1" in [k["name"] for k in info["recipe"]["knobs"]]
    assert info["recipe"]["gates"][0]["metric"] == "acc"
    baseline_train = subprocess.run(["git", "-C", str(run_dir), "show", "refs/trials/t0000:train.py"],
                                    capture_output=True, text=True, check=True).stdout
    assert "config.BETA1" in baseline_train

    # The first `recipe check` ran the baseline twice and suggested a noise margin.
    first_check = next(result for line, result in commands if line.startswith("harness recipe check"))
    assert "suggested noise_margin" in first_check.stdout and "ready" in first_check.stdout
