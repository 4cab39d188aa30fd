"""`harness --help` and each command's `--help` import none of the heavy modules.

Start-up time is shown by bench/cli_startup.py; here the property behind it: the
help paths load click and the CLI module only (no torch, scipy, ray, docker, the
LLM SDKs, rich, pydantic models or git access)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ["torch", "scipy", "numpy", "ray", "docker", "anthropic", "openai", "rich", "pydantic", "jsonschema",
         "harness.types", "harness.recipe_loader", "trajectories.lineage", "sandboxes"]

PROBE = """
import json, sys
sys.argv = ["harness", *sys.argv[1:]]
from harness.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy_roots} or m in {heavy})), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["replay", "--help"], ["run", "--help"], ["report", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    roots = sorted({name.split(".")[0] for name in HEAVY if "." not in name})
    code = PROBE.format(heavy_roots=repr(set(roots)), heavy=repr(set(HEAVY)))
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert "Usage:" in done.stdout, done.stdout + done.stderr
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert loaded == [], f"harness {' '.join(args)} imported {loaded}"


def test_cli_default_recipe_is_the_loaders() -> None:
    from harness import cli, recipe_loader

    assert cli.DEFAULT_RECIPE == recipe_loader.DEFAULT_RECIPE
