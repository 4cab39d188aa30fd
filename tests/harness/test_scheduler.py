"""The slot scheduler: concurrency, sequential mode, GPU groups, errors."""

from __future__ import annotations

import threading
import time

import pytest

from harness.scheduler import plan_slots, run_slots
from harness.types import Label, Outcome, Proposal, Trial, trial_id


def make_trial(n: int) -> Trial:
    return Trial(id=trial_id(n), run_id="r", parent="t0000", fidelity="full", seeds=[0], commit="0" * 40,
                 proposal=Proposal(hypothesis=f"h{n}", diff="", agent="test"))


def outcome() -> Outcome:
    return Outcome(label=Label.not_improved, score=0.5, started="s", finished="f")


class Recorder:
    """Fake propose/execute/record that log when each runs."""

    def __init__(self, total: int, propose_s: float = 0.0, run_s: float = 0.05) -> None:
        self.total, self.propose_s, self.run_s = total, propose_s, run_s
        self.count = 0
        self.lock = threading.Lock()
        self.running = 0
        self.max_running = 0
        self.events: list[tuple[str, str]] = []
        self.recorded: list[str] = []
        self.gpus_seen: list[tuple[int, ...]] = []

    def propose(self):
        self.events.append(("propose", str(self.running)))
        time.sleep(self.propose_s)
        if self.count >= self.total:
            return None
        self.count += 1
        return make_trial(self.count)

    def execute(self, trial, gpus):
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.gpus_seen.append(gpus)
        time.sleep(self.run_s)
        with self.lock:
            self.running -= 1
        return outcome()

    def record(self, trial, result):
        assert threading.current_thread() is threading.main_thread()
        self.recorded.append(trial.id)


def go(rec: Recorder, parallel: int, budget: int, gpus=(), per=0, pending=()):
    run_slots(plan_slots(parallel, tuple(gpus), per), list(pending), budget, rec.propose,
              lambda t: True, rec.execute, rec.record)


def test_every_proposal_is_run_and_recorded_once():
    rec = Recorder(total=6)
    go(rec, parallel=3, budget=6)
    assert sorted(rec.recorded) == [trial_id(n) for n in range(1, 7)]


def test_parallel_slots_are_used():
    rec = Recorder(total=6, run_s=0.2)
    go(rec, parallel=3, budget=6)
    assert rec.max_running == 3


def test_parallel_one_is_strictly_sequential():
    rec = Recorder(total=4)
    go(rec, parallel=1, budget=4)
    assert rec.max_running == 1
    assert all(running == "0" for kind, running in rec.events if kind == "propose")


def test_budget_limits_new_proposals():
    rec = Recorder(total=10)
    go(rec, parallel=2, budget=3)
    assert len(rec.recorded) == 3


def test_pending_trials_run_before_new_ones():
    rec = Recorder(total=1)
    go(rec, parallel=1, budget=1, pending=[make_trial(50)])
    assert rec.recorded == ["t0050", "t0001"]


def test_gpu_groups_are_exclusive_per_slot():
    rec = Recorder(total=8, run_s=0.05)
    go(rec, parallel=2, budget=8, gpus=(0, 1, 2, 3), per=2)
    assert set(rec.gpus_seen) == {(0, 1), (2, 3)}


def test_proposer_error_is_raised_after_running_trials_are_recorded():
    rec = Recorder(total=5, run_s=0.2)
    original = rec.propose

    def failing():
        if rec.count == 2:
            raise RuntimeError("model down")
        return original()

    rec.propose = failing
    with pytest.raises(RuntimeError, match="model down"):
        go(rec, parallel=2, budget=5)
    assert sorted(rec.recorded) == ["t0001", "t0002"]


@pytest.mark.parametrize("parallel,gpus,per,message", [
    (2, (0, 1, 2), 2, "do not split"),
    (3, (0, 1), 1, "needs 3 GPUs"),
    (1, (0, 0), 1, "twice"),
])
def test_bad_gpu_plans_are_explained(parallel, gpus, per, message):
    with pytest.raises(ValueError, match=message):
        plan_slots(parallel, gpus, per)
