"""Helpers that build small lineages through the public API (records made by hand)
and tamper with them the way someone with plain git would."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.types import (
    BASELINE_TRIAL_ID,
    Budgets,
    Direction,
    EvaluatorSpec,
    GateResult,
    GateSpec,
    Label,
    MetricSpec,
    Outcome,
    Phases,
    PhaseUsage,
    Proposal,
    RecipeSpec,
    RunInfo,
    Transcript,
    Trial,
    TrialRecord,
    trial_id,
)
from trajectories._git import git_env
from trajectories.lineage import Lineage, trial_trailers

RUN_ID = "run-test"


def make_recipe() -> RecipeSpec:
    return RecipeSpec(
        name="toy",
        description="A toy recipe for lineage tests.",
        editable=["model.py", "conf/*.toml"],
        phases=Phases(train="python train.py", eval="python {eval}/score.py"),
        evaluator=EvaluatorSpec(prepare="prep.py:prepare", score="score.py:score"),
        metric=MetricSpec(name="acc", direction=Direction.maximize),
        gates=[GateSpec(metric="acc", op=">=", threshold=0.1)],
        budgets=Budgets(train_wallclock_s=60, eval_wallclock_s=60),
    )


def make_source(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.py").write_text("".join(f"LAYER_{i} = {i}\n" for i in range(20)))
    (folder / "train.py").write_text("import model\nprint('train')\n")
    (folder / "run.sh").write_text("#!/bin/sh\npython train.py\n")
    os.chmod(folder / "run.sh", 0o755)
    (folder / "conf").mkdir()
    (folder / "conf" / "a.toml").write_text("lr = 0.1\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0junk")
    (folder / "data").mkdir()
    (folder / "data" / "README").write_text("no data here\n")
    return folder


def make_outcome(label: Label, score: float | None, seeds: list[float] | None = None) -> Outcome:
    seed_scores = seeds if seeds is not None else ([score] if score is not None else [])
    ran = label.ran
    return Outcome(
        label=label,
        explanation=f"test outcome {label.value}",
        score=score,
        seed_scores=seed_scores,
        metrics={"acc": score} if score is not None else {},
        gates=[GateResult(metric="acc", op=">=", threshold=0.1, value=score, passed=True)]
        if score is not None
        else [],
        phases=[
            PhaseUsage(phase="train", seed=0, wallclock_s=1.5, exit_code=0),
            PhaseUsage(phase="eval", seed=0, wallclock_s=0.5, exit_code=0),
        ]
        if ran
        else [],
        evaluator_digest="e" * 64,
        image="local:python3.11",
        compared_to=[],
        started="2024-01-01T00:00:00Z",
        finished="2024-01-01T00:00:02Z",
    )


def edit_diff(lineage: Lineage, parent_commit: str, path: str, line_no: int, new_line: str) -> str:
    """A unified diff replacing one line of `path` (written by hand, git-style)."""
    old = lineage.read_file(parent_commit, path).decode().splitlines(keepends=True)
    new = list(old)
    new[line_no] = new_line + "\n"
    import difflib

    lines = difflib.unified_diff(old, new, f"a/{path}", f"b/{path}", n=3)
    return f"diff --git a/{path} b/{path}\n" + "".join(lines)


class RunBuilder:
    """Builds a run: baseline t0000 (keep), then trials editing model.py."""

    def __init__(self, run_dir: Path, source: Path) -> None:
        self.run_dir = run_dir
        self.recipe = make_recipe()
        self.lineage = Lineage.init(run_dir)
        trailers = trial_trailers(BASELINE_TRIAL_ID, None, "baseline", None, "full")
        self.baseline_commit = self.lineage.commit_baseline(source, "Baseline of the toy recipe.", trailers)
        self.info = RunInfo(
            run_id=RUN_ID,
            recipe=self.recipe,
            recipe_dir="recipes/toy",
            baseline_commit=self.baseline_commit,
            evaluator_digest="e" * 64,
            agent="scripted",
            seed=0,
            created="2024-01-01T00:00:00Z",
            harness_version="0.1.0",
        )
        self.lineage.start(self.info)
        proposal = Proposal(hypothesis="Baseline of the toy recipe.", diff="", agent="baseline")
        trial = Trial(
            id=BASELINE_TRIAL_ID,
            run_id=RUN_ID,
            proposal=proposal,
            fidelity="full",
            seeds=[0],
            commit=self.baseline_commit,
        )
        self.lineage.record_proposed(TrialRecord(trial=trial))
        self.lineage.record_outcome(TrialRecord(trial=trial, outcome=make_outcome(Label.keep, 0.5)))
        self.lineage.set_best(BASELINE_TRIAL_ID)
        self.best_score = 0.5

    def propose(
        self,
        diff: str | None = None,
        *,
        parent: str | None = None,
        hypothesis: str | None = None,
        specialist: str | None = None,
        tree: str | None = None,
        stored_diff: str | None = None,
        transcript: Transcript | None = None,
    ) -> TrialRecord:
        lin = self.lineage
        tid = trial_id(lin.next_trial_number())
        parent = parent or lin.best() or BASELINE_TRIAL_ID
        parent_commit = lin.record(parent).trial.commit
        n = lin.next_trial_number()
        if diff is None:
            diff = edit_diff(lin, parent_commit, "model.py", n % 20, f"LAYER_{n % 20} = {n * 7}")
        hypothesis = hypothesis if hypothesis is not None else f"Trial {tid}: set layer {n % 20} to {n * 7}."
        if tree is None:
            tree = lin.apply_diff(parent_commit, diff)
        trailers = trial_trailers(tid, parent, "scripted", specialist, "full")
        commit = lin.commit_trial(tree, parent_commit, hypothesis, trailers)
        canonical = lin.diff(parent_commit, commit) if stored_diff is None else stored_diff
        proposal = Proposal(
            hypothesis=hypothesis, diff=canonical, parent=parent, agent="scripted", specialist=specialist
        )
        trial = Trial(
            id=tid, run_id=RUN_ID, parent=parent, proposal=proposal, fidelity="full", seeds=[0, 1], commit=commit,
            transcript=transcript.digest() if transcript is not None else None,
        )
        record = TrialRecord(trial=trial)
        lin.record_proposed(record, transcript)
        return record

    def finish(self, record: TrialRecord, label: Label | None = None, score: float | None = None) -> TrialRecord:
        if label is None:
            score = score if score is not None else self.best_score + 0.01
            label = Label.keep if score > self.best_score else Label.not_improved
        if label.ran and score is None and label in (Label.keep, Label.not_improved):
            score = self.best_score
        seeds = [score - 0.01, score + 0.01] if score is not None else []
        done = TrialRecord(trial=record.trial, outcome=make_outcome(label, score, seeds))
        self.lineage.record_outcome(done)
        if label is Label.keep:
            self.lineage.set_best(record.trial.id)
            assert score is not None
            self.best_score = score
        return done

    def trial(self, label: Label | None = None, score: float | None = None, **kw) -> TrialRecord:  # noqa: ANN003
        return self.finish(self.propose(**kw), label, score)


def git(run_dir: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> str:
    """Run git on a lineage the way a tamperer would (plain git commands)."""
    proc = subprocess.run(
        ["git", *args],
        cwd=run_dir,
        input=input,
        env={**git_env(run_dir / ".git"), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=True,
    )
    return proc.stdout.decode()


# ---------------------------------------------------------------------------
# Tampering with plain git
# ---------------------------------------------------------------------------


def _tree_with(run_dir: Path, base_tree: str, edits: dict[str, bytes | None]) -> str:
    """`base_tree` with files replaced (bytes) or removed (None), via a temporary index."""
    index = run_dir / ".harness" / "tamper-index"
    env = {"GIT_INDEX_FILE": str(index)}
    git(run_dir, "read-tree", base_tree, env=env)
    for path, data in edits.items():
        if data is None:
            git(run_dir, "update-index", "--force-remove", path, env=env)
        else:
            blob = git(run_dir, "hash-object", "-w", "--stdin", input=data).strip()
            git(run_dir, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
    tree = git(run_dir, "write-tree", env=env).strip()
    index.unlink()
    return tree


def commit_tree(run_dir: Path, tree: str, parents: list[str], message: str) -> str:
    args = ["commit-tree", tree]
    for p in parents:
        args += ["-p", p]
    return git(run_dir, *args, "-F", "-", input=message.encode()).strip()


def show(run_dir: Path, rev: str) -> bytes:
    return subprocess.run(
        ["git", "cat-file", "-p", rev],
        cwd=run_dir,
        env=git_env(run_dir / ".git"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=True,
    ).stdout


def message_of(run_dir: Path, commit: str) -> str:
    return git(run_dir, "log", "-1", "--format=%B", commit).rstrip("\n") + "\n"


def ledger_append(run_dir: Path, edits: dict[str, bytes | None], message: str) -> str:
    """A new ledger commit on top of the head, changing/removing files."""
    head = git(run_dir, "rev-parse", "refs/heads/ledger").strip()
    tree = _tree_with(run_dir, f"{head}^{{tree}}", edits)
    commit = commit_tree(run_dir, tree, [head], message)
    git(run_dir, "update-ref", "refs/heads/ledger", commit, head)
    return commit


def ledger_rewrite(run_dir: Path, path: str, transform) -> None:  # noqa: ANN001
    """Rebuild the whole ledger chain with `transform(bytes) -> bytes` applied to `path`
    in every commit that holds it (messages kept): a history rewrite."""
    chain = git(run_dir, "rev-list", "--reverse", "refs/heads/ledger").split()
    new_parent: str | None = None
    for sha in chain:
        tree = git(run_dir, "rev-parse", f"{sha}^{{tree}}").strip()
        try:
            data = show(run_dir, f"{sha}:{path}")
        except subprocess.CalledProcessError:
            data = None
        if data is not None:
            tree = _tree_with(run_dir, tree, {path: transform(data)})
        new_parent = commit_tree(run_dir, tree, [new_parent] if new_parent else [], message_of(run_dir, sha))
    assert new_parent is not None
    git(run_dir, "update-ref", "refs/heads/ledger", new_parent)


def edit_json(path_value: list[str], value) -> "callable":  # noqa: ANN001
    """A transform setting one field of a JSON record (no reformatting beyond the stable form)."""
    import json

    def transform(data: bytes) -> bytes:
        doc = json.loads(data)
        node = doc
        for key in path_value[:-1]:
            node = node.get(key)  # fields at their default are not stored
            if node is None:
                return data
        node[path_value[-1]] = value
        return (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode()

    return transform
