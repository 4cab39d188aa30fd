"""Helpers of the LLM agent tests: the collision recipe as a lineage of records, git apply."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "fakes"))

from harness.agents.base import AgentContext  # noqa: E402
from harness.recipe_loader import RECIPES_ROOT, load_recipe  # noqa: E402
from harness.types import (  # noqa: E402
    Outcome,
    PhaseUsage,
    Proposal,
    RecipeSpec,
    Trial,
    TrialRecord,
    trial_id,
)

COLLISION = RECIPES_ROOT / "collision"
PLANTED_KEY = "sk-planted-SECRET-0123456789abcdef"


def collision_spec() -> RecipeSpec:
    return load_recipe("collision").spec


def collision_files() -> dict[str, str]:
    spec = collision_spec()
    return {p.name: p.read_text() for p in (COLLISION / "src").iterdir()
            if p.is_file() and spec.is_editable(p.name)}


def collision_tree() -> dict[str, str]:
    """Every file of the collision recipe's source (data.py, protected, included)."""
    return {p.name: p.read_text() for p in (COLLISION / "src").iterdir() if p.is_file()}


class FakeLineage:
    """Trial records with files, handed to agents as the loop would (`read_file` refuses protected paths)."""

    def __init__(self, spec: RecipeSpec | None = None, files: dict[str, str] | None = None,
                 baseline_score: float = 0.70) -> None:
        self.spec = spec or collision_spec()
        self.files: dict[str, dict[str, str]] = {}
        self.records: list[TrialRecord] = []
        self.best_id = "t0000"
        self.add(hypothesis="Baseline", agent="baseline", parent=None, label="keep", score=baseline_score,
                 files=files or collision_files())

    def add(self, *, hypothesis: str = "an idea", label: str | None = "not_improved", score: float | None = None,
            parent: str | None = "t0000", specialist: str | None = None, agent: str = "anthropic",
            explanation: str = "", diff: str = "", phases: list[PhaseUsage] | None = None,
            files: dict[str, str] | None = None, expected_delta: float | None = None,
            notes: list[str] | None = None) -> str:
        tid = trial_id(len(self.records))
        self.files[tid] = dict(files if files is not None else self.files[parent or "t0000"])
        trial = Trial(
            id=tid, run_id="run", parent=parent, fidelity="full", seeds=[0], commit="0" * 40,
            proposal=Proposal(hypothesis=hypothesis, diff=diff, agent=agent, parent=parent,
                              specialist=specialist, expected_delta=expected_delta, notes=notes or []),
        )
        outcome = None
        if label is not None:
            outcome = Outcome(label=label, score=score, explanation=explanation, phases=phases or [],
                              started="2025-01-01T00:00:00Z", finished="2025-01-01T00:01:00Z")
        self.records.append(TrialRecord(trial=trial, outcome=outcome))
        if label == "keep":
            self.best_id = tid
        return tid

    def read_file(self, tid: str, path: str) -> str:
        if not self.spec.is_editable(path):
            raise PermissionError(f"{path} is not on the editable surface")
        return self.files[tid][path]

    def read_tree(self, tid: str, path: str) -> bytes:
        """Any file of the trial's tree (protected ones too), as the loop's `read_tree`."""
        return self.files[tid][path].encode("utf-8", "surrogatepass")

    def ctx(self, specialist: str | None = None, **extra: Any) -> AgentContext:
        return AgentContext(spec=self.spec, records=list(self.records), best=self.best_id,
                            read_file=self.read_file, specialist=specialist, seed=0,
                            trial_number=len(self.records),
                            **{"list_tree": lambda tid: sorted(self.files[tid]), "read_tree": self.read_tree, **extra})


def apply_with_git(root: Path, files: dict[str, str], diff: str) -> subprocess.CompletedProcess:
    """`git apply` of `diff` onto `files` in a fresh repo (returns the process; 0 = applied)."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return subprocess.run(["git", "apply", "-"], cwd=root, input=diff.encode(), capture_output=True)
