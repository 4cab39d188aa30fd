"""Fakes for the agent tests: a small recipe spec, trial files and a lineage."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.agents.base import AgentContext
from harness.types import (
    Budgets,
    EvaluatorSpec,
    Knob,
    MetricSpec,
    Outcome,
    Phases,
    Proposal,
    RecipeSpec,
    Specialist,
    Trial,
    TrialRecord,
    trial_id,
)

CONFIG_TEMPLATE = '''"""Recipe configuration."""

import os

ENCODER = {ENCODER!r}  # sequence encoder
LR = {LR!r}
LAYERS = {LAYERS!r}
USE_NORM = {USE_NORM!r}
BATCH = 64


def lr_schedule(step):
    return LR * min(1.0, step / 100)
'''

MODEL_TEMPLATE = '''import math

DROPOUT = {DROPOUT!r}    # regularisation
HIDDEN={HIDDEN!r}


class Model:
    pass
'''

BASELINE = {
    "ENCODER": "meanpool",
    "LR": 0.001,
    "LAYERS": 2,
    "USE_NORM": True,
    "DROPOUT": 0.1,
    "HIDDEN": 128,
}

KNOBS = [
    Knob(name="ENCODER", file="config.py", kind="arch", choices=["meanpool", "gru", "transformer"]),
    Knob(name="LR", file="config.py", kind="hparam", choices=[0.0003, 0.001, 0.003]),
    Knob(name="LAYERS", file="config.py", kind="arch", choices=[1, 2, 4]),
    Knob(name="USE_NORM", file="config.py", kind="arch", choices=[True, False]),
    Knob(name="DROPOUT", file="model.py", kind="hparam", choices=[0.0, 0.1, 0.3]),
    Knob(name="HIDDEN", file="model.py", kind="arch", choices=[64, 128, 256]),
]


def make_spec(
    knobs: list[Knob] | None = None,
    specialists: dict[str, Specialist] | None = None,
    direction: str = "maximize",
) -> RecipeSpec:
    return RecipeSpec(
        name="fake",
        description="A fake recipe for agent tests.",
        editable=["*.py"],
        phases=Phases(train="python train.py", eval="python eval.py"),
        evaluator=EvaluatorSpec(prepare="prep.py:prepare", score="score.py:score"),
        metric=MetricSpec(name="acc", direction=direction),
        budgets=Budgets(train_wallclock_s=60, eval_wallclock_s=60),
        knobs=KNOBS if knobs is None else knobs,
        specialists=specialists or {},
    )


def render(config: dict[str, Any]) -> dict[str, str]:
    values = {**BASELINE, **config}
    return {
        "config.py": CONFIG_TEMPLATE.format(**values),
        "model.py": MODEL_TEMPLATE.format(**values),
    }


def outcome(label: str, score: float | None) -> Outcome:
    return Outcome(
        label=label,
        score=score,
        started="2024-01-01T00:00:00Z",
        finished="2024-01-01T00:01:00Z",
    )


class Lineage:
    """Trials with files and records, as the harness would hand them to an agent."""

    def __init__(self, spec: RecipeSpec, baseline: dict[str, Any] | None = None, score: float | None = 0.5):
        self.spec = spec
        self.files: dict[str, dict[str, str]] = {}
        self.records: list[TrialRecord] = []
        self.add(
            baseline or {},
            agent="baseline",
            knobs={},
            label="keep",
            score=score,
            parent=None,
        )

    def add(
        self,
        config: dict[str, Any],
        *,
        agent: str = "random",
        knobs: dict[str, Any] | None = None,
        label: str | None = "not_improved",
        score: float | None = None,
        parent: str | None = "t0000",
        diff: str = "",
    ) -> str:
        tid = trial_id(len(self.records))
        self.files[tid] = render(config)
        full = {**BASELINE, **config}
        proposal = Proposal(
            hypothesis=f"trial {tid}",
            diff=diff,
            agent=agent,
            parent=parent,
            knobs=full if knobs is None else knobs,
        )
        trial = Trial(
            id=tid,
            run_id="run",
            parent=parent,
            proposal=proposal,
            fidelity="full",
            seeds=[0],
            commit="0" * 40,
        )
        out = None if label is None else outcome(label, score)
        self.records.append(TrialRecord(trial=trial, outcome=out))
        return tid

    def read_file(self, tid: str, path: str) -> str:
        return self.files[tid][path]

    def best(self) -> str:
        scored = [r for r in self.records if r.outcome is not None and r.outcome.score is not None
                  and r.outcome.status.value != "fail"]
        sign = 1 if self.spec.metric.direction.value == "maximize" else -1
        return max(scored, key=lambda r: sign * r.outcome.score).trial.id

    def ctx(self, *, best: str | None = None, specialist: str | None = None, seed: int = 0) -> AgentContext:
        return AgentContext(
            spec=self.spec,
            records=list(self.records),
            best=best or self.best(),
            read_file=self.read_file,
            specialist=specialist,
            seed=seed,
            trial_number=len(self.records),
        )


def git_apply(root: Path, files: dict[str, str], diff: str) -> dict[str, str]:
    """Apply `diff` with `git apply` in a fresh git repo holding `files`; return the files after."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for name, text in files.items():
        (root / name).write_bytes(text.encode())
    for args in (["git", "apply", "--check", "-"], ["git", "apply", "-"]):
        proc = subprocess.run(args, cwd=root, input=diff.encode(), capture_output=True)
        assert proc.returncode == 0, f"{' '.join(args)} failed: {proc.stderr.decode()}\n{diff}"
    return {name: (root / name).read_bytes().decode() for name in files}


@pytest.fixture
def spec() -> RecipeSpec:
    return make_spec()


@pytest.fixture
def lineage(spec: RecipeSpec) -> Lineage:
    return Lineage(spec)


@pytest.fixture
def fk() -> SimpleNamespace:
    """The helpers of this module, for tests (conftest modules are not imported by name)."""
    return SimpleNamespace(
        BASELINE=BASELINE,
        KNOBS=KNOBS,
        Lineage=Lineage,
        make_spec=make_spec,
        render=render,
        outcome=outcome,
        git_apply=git_apply,
    )
