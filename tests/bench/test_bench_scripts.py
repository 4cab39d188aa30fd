"""Each bench script runs in its quick mode and prints a table that parses.

No timing is asserted (the machine may be busy): only that every script
finishes, measures what its table says and prints the sizes and ratios."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def bench(script: str, *args: str, timeout: int = 600) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:] or done.stdout[-3000:]
    return done.stdout


def test_lineage_scale_quick() -> None:
    out = bench("lineage_scale.py", "--sizes", "12,40", "--slices", "2", "--reps", "1")
    head = next(line for line in out.splitlines() if line.startswith("step"))
    assert "12 wall s" in head and "40 wall s" in head
    steps = ["record", "replay (API)", "replay --verify (CLI)", "analyze --json (CLI)", "report --html (CLI)"]
    for step in steps:
        line = next(line for line in out.splitlines() if line.startswith(step + " "))
        numbers = re.findall(NUMBER, line[len(step):])
        assert len(numbers) == 9, line  # 3 per size, wall and CPU growth, size ratio
        assert float(numbers[-1]) == pytest.approx(40 / 12, abs=1e-3)
        assert all(float(x) > 0 for x in numbers[:8]), line
        assert re.search(r"(linear or less|superlinear), (linear or less|superlinear)$", line)


def test_lineage_scale_json() -> None:
    import json

    data = json.loads(bench("lineage_scale.py", "--trials", "20", "--slices", "2", "--reps", "1", "--json"))
    keys = ["record_s", "verify_s", "replay_s", "replay_json_s", "analyze_s", "report_s"]
    assert data["trials"] == 20 and data["baseline_trials"] == 2 and data["size_ratio"] == 10
    for key in keys:
        assert data[key] > 0 and data["baseline"][key] > 0
        # every figure is rounded to 3 decimals, so the growth is checked against the range of
        # ratios the rounded seconds allow (a tiny baseline makes 1% too tight a tolerance)
        half = 0.0005
        low = (data[key] - half) / (data["baseline"][key] + half) - half
        high = (data[key] + half) / max(data["baseline"][key] - half, 1e-9) + half
        assert low <= data["growth"][key] <= high, (key, data)
        assert data["goal_ratio"][key] > 0


def test_naive_lineage_quick() -> None:
    out = bench("naive_lineage.py", "--trials", "16", "--slices", "2")
    real = re.search(rf"^real \(trajectories\.lineage\)\s+({NUMBER})\s+({NUMBER}) ({NUMBER})$", out, re.M)
    naive = re.search(rf"^naive \(GitPython porcelain per trial\)\s+({NUMBER})\s+({NUMBER}) ({NUMBER})$", out, re.M)
    ratio = re.search(rf"^ratio naive/real: ({NUMBER})x$", out, re.M)
    assert real and naive and ratio, out
    assert float(ratio.group(1)) == pytest.approx(float(naive.group(1)) / float(real.group(1)), rel=0.02)


def test_trial_overhead_quick() -> None:
    out = bench("trial_overhead.py", "--trials", "2", "--block", "1", "--train-s", "0.2", "--sandboxes", "local")
    row = re.search(rf"^local\s+({NUMBER})\s+({NUMBER})\s+([+-]{NUMBER})\s+(-?{NUMBER})%\s+2\s+2$", out, re.M)
    assert row, out
    bare, harness, overhead = (float(row.group(i)) for i in (1, 2, 3))
    assert bare >= 0.2 and harness >= 0.2  # both really ran the sleeping train phase
    assert overhead == pytest.approx(harness - bare, abs=0.002)
    assert float(row.group(4)) == pytest.approx(100 * (harness - bare) / bare, abs=0.1 + 100 * 0.002 / bare)


def test_slot_utilization_quick() -> None:
    quick = ("--slots", "2", "--ratios", "0,1", "--trial", "0.05", "--per-slot", "4", "--baseline-per-slot", "2")
    out = bench("slot_utilization.py", *quick)
    rows = re.findall(rf"^ 2\s+({NUMBER})  (1 proposer|default|\d+ proposers)\s+(\d+)\s+(\d+)\s+({NUMBER})%"
                      rf"\s+({NUMBER})%\s+({NUMBER})  (.+)$", out, re.M)
    assert [(r[0], r[1]) for r in rows] == [("0", "1 proposer"), ("0", "default"), ("0", "2 proposers"),
                                              ("1", "1 proposer"), ("1", "default"), ("1", "5 proposers")], out
    for ratio, _name, proposers, trials, overall, steady, wall, idle in rows:
        assert int(trials) in (4, 8) and 0 < float(overall) <= float(steady) <= 100 and float(wall) > 0
    assert re.search(rf"^  K=2 ratio=1: ({NUMBER})% vs ({NUMBER})% \(({NUMBER})x\)$", out, re.M), out
    assert re.search(r"^goal steady >= 98% with N proposers for every K and ratio: (met|NOT met)", out, re.M)

    data = json.loads(bench("slot_utilization.py", *quick, "--json"))
    assert [(r["slots"], r["ratio"]) for r in data["results"]] == [(2, 0.0), (2, 1.0)]
    for result in data["results"]:
        assert [s["proposers"] for s in result["schedules"]][:2] == [1, 2]
        for schedule in result["schedules"]:
            for slot in schedule["slots"]:  # every second of every slot is busy or idle for a named cause
                total = slot["busy_s"] + sum(slot["idle_s"].values())
                assert total == pytest.approx(schedule["wall_s"], abs=0.01)
            assert sum(s["trials"] for s in schedule["slots"]) == schedule["trials"]


def test_docker_overhead_quick() -> None:
    from sandboxes.images import engine_available

    if not engine_available():
        pytest.skip("no Docker engine answers")
    out = bench("docker_overhead.py", "--reps", "1", "--sleep", "0.1")
    rows = re.findall(rf"^(python -c pass|sleep 0\.1 \(python\))\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})",
                      out, re.M)
    assert [r[0] for r in rows] == ["python -c pass", "sleep 0.1 (python)"], out
