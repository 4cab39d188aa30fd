"""`--agent command` end to end: a shell-script agent proposes several trials through the CLI.

One run, one script, a different behaviour per trial (`$HARNESS_TRIAL`): a real
edit that also calls a service on the host (the network is allowed), an attack
on the evaluator and the held-out data (which fails), an edit of a protected
file, no change, no hypothesis, a non-zero exit and a timeout. Then replay
verifies the run and prints each transcript.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest
from conftest import harness, replay_json

from harness.recipe_loader import RECIPES_ROOT

AGENT_SCRIPT = r"""#!/bin/sh
# A scripted outside agent: what it does depends on the trial it is asked for.
echo "agent for $HARNESS_TRIAL on parent $HARNESS_PARENT in $(pwd)"
test -f "$HARNESS_BRIEF" || { echo "no brief"; exit 9; }
case "$HARNESS_TRIAL" in
t0001)
  grep -q "^## Your task" "$HARNESS_BRIEF" && echo "brief has the task"
  grep -q "Score: \`ap\`, to maximize" "$HARNESS_BRIEF" && echo "brief has the metric"
  grep -q "editable surface: config.py, model.py, train.py, infer.py" "$HARNESS_BRIEF" && echo "brief has the surface"
  grep -q "^# Lineage: 1 trials so far" "$HARNESS_BRIEF" && echo "brief has the lineage"
  python -c "import os, socket; s = socket.create_connection(('127.0.0.1', int(os.environ['AGENT_API_PORT'])), timeout=5); print('api says', s.recv(64).decode())"
  echo "the key is $FAKE_API_KEY"
  git status --short | grep -q . && echo "dirty before editing"
  sed -i 's/^ENCODER = "meanpool"/ENCODER = "gru"/' config.py
  git diff --stat
  echo "A GRU encoder sees the order of events in the clip." > "$HARNESS_HYPOTHESIS"
  ;;
t0002)
  for path in $PROBE_PATHS; do
    if cat "$path" > /dev/null 2>&1 || [ -n "$(ls -A "$path" 2>/dev/null)" ]; then
      echo "READ OK $path"
    else
      echo "READ FAILED $path"
    fi
  done
  env | sort
  echo "touched" > /etc/harness-agent-canary 2>/dev/null && echo "WROTE /etc"
  echo "# more dropout" >> model.py
  echo "Probe the jail, then a comment." > "$HARNESS_HYPOTHESIS"
  ;;
t0003)
  echo "LEAK = True" >> data.py
  echo "Edit the protected data loader." > "$HARNESS_HYPOTHESIS"
  ;;
t0004)
  echo "Nothing to change." > "$HARNESS_HYPOTHESIS"
  ;;
t0005)
  sed -i 's/^HEAD = "linear"/HEAD = "mlp"/' config.py
  ;;
t0006)
  echo "giving up" >&2
  exit 3
  ;;
t0007)
  echo "thinking for a long time"
  sleep 120
  ;;
*)
  exit 0
  ;;
esac
"""


@pytest.fixture
def api_server():
    """A TCP service on the host standing in for the agent's model API."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"hello agent")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_shell_agent_through_several_trials(tmp_path, api_server, monkeypatch):
    script = tmp_path / "agent.sh"
    script.write_text(AGENT_SCRIPT)
    run_dir = tmp_path / "runs" / "cmd"
    labels = run_dir / ".harness" / "data" / "heldout_labels"
    probes = [RECIPES_ROOT / "collision" / "eval" / "score.py", RECIPES_ROOT / "collision" / "eval", labels,
              run_dir / ".harness" / "evaluator", run_dir / ".git" / "HEAD"]
    monkeypatch.setenv("FAKE_API_KEY", "sk-fake-0123456789")
    monkeypatch.setenv("AGENT_API_PORT", str(api_server))
    monkeypatch.setenv("PROBE_PATHS", " ".join(map(str, probes)))
    monkeypatch.setenv("HARNESS_ORCHESTRATOR_SECRET", "orchestrator-only-4242")
    result = harness("run", "collision", "--agent", "command", "--agent-cmd", f"sh {script}",
                     "--agent-env", "FAKE_API_KEY", "--agent-env", "AGENT_API_PORT", "--agent-env", "PROBE_PATHS",
                     "--agent-timeout", "8", "--trials", "7", "--fidelity", "smoke",
                     "--out", tmp_path / "runs", "--run-id", "cmd")
    assert result.returncode == 0, result.stdout + result.stderr
    assert labels.is_dir() and any(labels.iterdir())  # the labels the attack looked for exist

    code, report = replay_json(run_dir)
    assert code == 0 and report["verified"], report["problems"]
    trials = {t["id"]: t for t in report["trials"]}
    assert all(t["agent"] == "command" for tid, t in trials.items() if tid != "t0000")
    assert trials["t0001"]["label"] in ("keep", "not_improved") and trials["t0001"]["score"] > 0
    assert trials["t0001"]["hypothesis"] == "A GRU encoder sees the order of events in the clip."
    assert trials["t0002"]["label"] in ("keep", "not_improved")
    assert trials["t0003"]["label"] == "illegal_edit"
    for tid in ("t0004", "t0005", "t0006", "t0007"):
        assert trials[tid]["label"] == "malformed_proposal", trials[tid]

    def explanation(tid: str) -> str:
        return " ".join(harness("show", run_dir, tid).stdout.split())

    assert "data.py" in explanation("t0003") and "--trial t0003 --transcript" in explanation("t0003")
    assert "changed no file of the work tree" in explanation("t0004")
    assert "wrote no hypothesis to $HARNESS_HYPOTHESIS" in explanation("t0005")
    assert "exited with status 3" in explanation("t0006") and "giving up" in explanation("t0006")
    assert "timed out after 8 s (--agent-timeout)" in explanation("t0007")

    def transcript(tid: str) -> str:
        shown = subprocess.run([sys.executable, "-m", "harness.cli", "replay", str(run_dir), "--trial", tid,
                                "--transcript"], capture_output=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        return shown.stdout.decode()

    first = transcript("t0001")
    for line in ("brief has the task", "brief has the metric", "brief has the surface", "brief has the lineage",
                 "api says hello agent", "the key is [FAKE_API_KEY]", " config.py | 2 +-"):
        assert line in first, first
    assert "sk-fake-0123456789" not in first and "dirty before editing" not in first

    attack = transcript("t0002")
    for path in probes:
        assert f"READ FAILED {path}" in attack, attack
    assert "READ OK" not in attack and "WROTE /etc" not in attack
    assert "orchestrator-only-4242" not in attack and "HARNESS_ORCHESTRATOR_SECRET" not in attack
    assert "PROBE_PATHS=" in attack  # passed with --agent-env: the only variables it has
    assert "thinking for a long time" in transcript("t0007")
    assert "giving up" in transcript("t0006")

    listed = harness("replay", run_dir)
    assert "transcripts stored with 7 proposal(s): t0001, t0002, t0003, t0004, t0005, t0006, t0007" in \
        " ".join(listed.stdout.split())
    record = json.loads(subprocess.run(["git", "-C", str(run_dir), "show", "ledger:trials/0000/t0001.json"],
                                       capture_output=True, text=True, check=True).stdout)
    assert record["trial"]["transcript"]["format"] == "text"
