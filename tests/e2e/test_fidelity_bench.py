"""bench/fidelity_halving.py in its quick mode: both runs happen, verify, and the
table puts their figures side by side (no timing is asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_compares_halving_with_plain_full_trials(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, ROOT / "bench" / "fidelity_halving.py", "--quick", "--out", tmp_path],
                            capture_output=True, text=True, env=env, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "budget 4 full-trial units, seeds [0]" in out
    rows = {m.group(1): m for m in re.finditer(
        r"^(plain seed 0|halving seed 0|plain mean|halving mean)\s+(\S+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(.*)$", out, re.M)}
    assert set(rows) == {"plain seed 0", "halving seed 0", "plain mean", "halving mean"}, out
    assert float(rows["plain seed 0"].group(3)) == pytest.approx(4.0)  # four full trials
    halving_units = float(rows["halving seed 0"].group(3))
    assert 0 < halving_units <= 4.0
    # the halving run spread its trials over the three levels; the plain one ran full only
    assert rows["plain seed 0"].group(6) == "full 4"
    assert rows["halving seed 0"].group(6) == "tiny 2, smoke 2, full 1"
    assert "halving - plain best full score: mean" in out
    assert (tmp_path / "plain-seed0").is_dir() and (tmp_path / "halving-seed0").is_dir()
