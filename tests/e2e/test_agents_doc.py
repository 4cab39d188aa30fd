"""The shell-script agent of docs/agents.md, run exactly as documented."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "agents.md"


def doc_block(name: str) -> str:
    m = re.search(rf"<!-- tested: {re.escape(name)} -->\n```sh\n(.*?)```", DOC.read_text(), re.S)
    assert m, f"docs/agents.md has no tested block {name!r}"
    return m.group(1)


def test_documented_shell_agent_runs_and_verifies(tmp_path):
    (tmp_path / "agent.sh").write_text(doc_block("agent.sh"))
    outputs = []
    for line in doc_block("run").splitlines():
        argv = shlex.split(line.replace("$PWD", str(tmp_path)))
        assert argv[0] == "harness"
        done = subprocess.run([sys.executable, "-m", "harness.cli", *argv[1:]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=900, env={**os.environ, "COLUMNS": "200"})
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    run_output, verify_output, transcript = outputs
    assert "agent=command" in run_output
    assert "verified" in verify_output and "NOT verified" not in verify_output
    assert transcript.startswith("Current best: t0000") and " config.py | 2 +-" in transcript
