"""Several proposers in one run (`--proposers`): what each proposal saw is recorded and
verifies, trial ids follow start order, an agent error costs one attempt and not the
run, a configuration error stops it cleanly, and the compute budget is never overrun
by the proposals under way."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest

from harness.agents.base import AgentContext, AgentError, make_agent
from harness.fidelity import spent_units
from harness.loop import Run
from harness.recipe_loader import load_recipe
from harness.recipe_tools import new_recipe
from harness.replay import replay
from harness.scheduler import plan_slots
from harness.types import FidelityPolicy, Label, trial_number
from sandboxes import make_sandbox
from trajectories.lineage import Lineage


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    """The scaffolded recipe with few epochs (a trial takes about a second)."""
    folder = new_recipe("quick", tmp_path_factory.mktemp("recipes"))
    config = folder / "src" / "config.py"
    text, n = re.subn(r"^EPOCHS = \d+", "EPOCHS = 10", config.read_text(), flags=re.M)
    assert n == 1
    config.write_text(text)
    return folder


class Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def trial_started(self, trial) -> None:  # noqa: ANN001
        pass

    def trial_finished(self, record, best) -> None:  # noqa: ANN001
        pass

    def note(self, text: str) -> None:
        self.notes.append(text)


class Watched:
    """Wraps an agent: counts how many of its proposals are being written at once, and
    can fail chosen trial numbers (`fail[number]` = the errors to raise, one per attempt)."""

    def __init__(self, inner, delay_s: float = 0.0, fail: dict[int, list[Exception]] | None = None) -> None:  # noqa: ANN001
        self.inner, self.name, self.delay_s = inner, inner.name, delay_s
        self.fail = fail or {}
        self.lock = threading.Lock()
        self.writing = self.most_at_once = 0

    def propose(self, ctx: AgentContext):
        with self.lock:
            self.writing += 1
            self.most_at_once = max(self.most_at_once, self.writing)
            errors = self.fail.get(ctx.trial_number)
            error = errors.pop(0) if errors else None
        try:
            time.sleep(self.delay_s)
            if error is not None:
                raise error
            return self.inner.propose(ctx)
        finally:
            with self.lock:
                self.writing -= 1


def lines_file(tmp_path: Path, count: int) -> Path:
    """Scripted proposals whose diffs change nothing: each is recorded (malformed) without running."""
    path = tmp_path / "lines.jsonl"
    path.write_text("".join(json.dumps({"hypothesis": f"line {i}", "diff": ""}) + "\n" for i in range(1, count + 1)))
    return path


def start(recipe: Path, run_dir: Path, agent, notes: Notes, policy: FidelityPolicy | None = None) -> Run:  # noqa: ANN001
    return Run.create(load_recipe(recipe), run_dir, agent=agent, sandbox=make_sandbox("local"), reporter=notes,
                      seed=1, policy=policy)


def records_of(run_dir: Path):  # noqa: ANN201
    with Lineage.open(run_dir) as lineage:
        return lineage.records()


def test_each_proposal_records_the_lineage_it_was_prepared_on(quick, tmp_path):
    agent = Watched(make_agent("random", seed=1), delay_s=0.4)
    run = start(quick, tmp_path / "r", agent, Notes())
    try:
        run.run(6, plan_slots(2, (), 0, 3))
    finally:
        run.close()
    assert agent.most_at_once >= 2  # proposals were really written side by side
    report = replay(tmp_path / "r")
    assert report.verified, report.problems
    records = records_of(tmp_path / "r")
    assert len(records) == 7
    with Lineage.open(tmp_path / "r") as lineage:
        ledger = set(lineage.git.text("rev-list", "ledger").split())
    seen = []
    for record in records[1:]:
        state = record.trial.proposal.based_on
        assert state is not None and state.ledger_head in ledger
        assert 1 <= state.trials <= trial_number(record.trial.id) and state.outcomes <= state.trials
        seen.append(state.trials)
    assert seen == sorted(seen)  # a later proposal never starts on an older lineage
    assert any(n < trial_number(r.trial.id) for n, r in zip(seen, records[1:]))  # some began before the last was in


def run_lines(recipe: Path, tmp_path: Path, lines: int, proposers: int, fail=None):  # noqa: ANN001, ANN201
    """A run of `lines` scripted proposals over 2 slots; returns (notes, records, the error raised or None)."""
    agent = Watched(make_agent("scripted", proposals_file=lines_file(tmp_path, lines)), delay_s=0.05, fail=fail)
    notes = Notes()
    run = start(recipe, tmp_path / "r", agent, notes)
    error = None
    try:
        run.run(20, plan_slots(2, (), 0, proposers))
    except Exception as exc:  # noqa: BLE001 - the tests look at what was raised
        error = exc
    finally:
        run.close()
    assert replay(tmp_path / "r").verified
    return notes.notes, records_of(tmp_path / "r"), error


def test_scripted_lines_are_proposed_once_each_and_in_order(quick, tmp_path):
    _notes, records, error = run_lines(quick, tmp_path, 8, proposers=4)
    assert error is None
    assert [r.trial.proposal.hypothesis for r in records[1:]] == [f"line {i}" for i in range(1, 9)]
    assert all(r.outcome.label is Label.malformed_proposal for r in records[1:])


def test_an_agent_error_costs_one_attempt_not_the_run(quick, tmp_path):
    notes, records, error = run_lines(quick, tmp_path, 6, proposers=3, fail={3: [RuntimeError("connection reset")]})
    assert error is None
    assert [r.trial.proposal.hypothesis for r in records[1:]] == [f"line {i}" for i in range(1, 7)]
    assert "t0003: the agent failed (attempt 1 of 3): RuntimeError: connection reset; asking again" in notes, notes


def test_an_agent_that_keeps_failing_stops_the_run_after_its_attempts(quick, tmp_path):
    notes, records, error = run_lines(quick, tmp_path, 6, proposers=2,
                                      fail={2: [RuntimeError(f"reset {i}") for i in range(3)]})
    assert isinstance(error, RuntimeError) and str(error) == "reset 2"
    assert [r.trial.id for r in records] == ["t0000", "t0001"]
    failed = [n for n in notes if "the agent failed" in n]
    assert failed == [f"t0002: the agent failed (attempt {i + 1} of 3): RuntimeError: reset {i}; "
                      + ("asking again" if i < 2 else "proposing stops") for i in range(3)], notes


def test_a_configuration_error_stops_proposing_and_keeps_what_is_recorded(quick, tmp_path):
    notes, records, error = run_lines(quick, tmp_path, 8, proposers=3,
                                      fail={3: [AgentError("the proposals file went away")]})
    assert error is not None and "went away" in str(error)
    assert [r.trial.id for r in records] == ["t0000", "t0001", "t0002"]
    assert any(n.startswith("t0003: the agent failed (attempt 1 of 3)") and n.endswith("proposing stops")
               for n in notes), notes


def test_proposals_under_way_never_overrun_the_budget(quick, tmp_path):
    agent = Watched(make_agent("random", seed=2), delay_s=0.2)
    run = start(quick, tmp_path / "r", agent, Notes(), FidelityPolicy(name="fixed", budget=2.0))
    try:
        run.run(10, plan_slots(2, (), 0, 4))
    finally:
        run.close()
    records = records_of(tmp_path / "r")
    assert spent_units(load_recipe(quick).spec, records) <= 2.0
    assert len(records) == 3  # the baseline, then two full trials of cost 1
