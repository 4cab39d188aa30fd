"""The slot scheduler: slots and proposers in flight, start order, sequential mode, GPU groups, errors."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from harness.scheduler import WAIT, plan_slots, run_slots
from harness.slot_timeline import SlotTimeline, pace_note, proposers_to_keep_pace
from harness.types import Label, Outcome, Proposal, Trial, trial_id


def make_trial(n: int) -> Trial:
    return Trial(id=trial_id(n), run_id="r", parent="t0000", fidelity="full", seeds=[0], commit="0" * 40,
                 proposal=Proposal(hypothesis=f"h{n}", diff="", agent="test"))


def outcome() -> Outcome:
    return Outcome(label=Label.not_improved, score=0.5, started="s", finished="f")


@dataclass(frozen=True)
class Draft:
    number: int
    attempt_seen: int
    """Outcomes recorded when the proposal started (what it was prepared on)."""


class Source:
    """A `ProposalSource` with fake propose/execute/record that log what happens when."""

    def __init__(self, total: int, propose_s: float = 0.0, run_s: float = 0.05) -> None:
        self.total, self.propose_s, self.run_s = total, propose_s, run_s
        self.lock = threading.Lock()
        self.next_number = 1
        self.running = self.max_running = 0
        self.preparing = self.max_preparing = 0
        self.began: list[tuple[int, int, int]] = []
        """(trial number, trials running, outcomes recorded) at each begin."""
        self.finished: list[int] = []
        self.recorded: list[str] = []
        self.gpus_seen: list[tuple[int, ...]] = []
        self.failures: list[tuple[int, int]] = []
        self.dropped_numbers: list[int] = []
        self.retry = True

    # -- ProposalSource -------------------------------------------------------
    def begin(self, earlier: int):
        assert threading.current_thread() is threading.main_thread()
        number = self.next_number + earlier
        if number > self.total:
            return None
        self.began.append((number, self.running, len(self.recorded)))
        return Draft(number, len(self.recorded))

    def prepare(self, draft: Draft):
        with self.lock:
            self.preparing += 1
            self.max_preparing = max(self.max_preparing, self.preparing)
        try:
            time.sleep(self.delay(draft))
            return make_trial(draft.number)
        finally:
            with self.lock:
                self.preparing -= 1

    def delay(self, draft: Draft) -> float:
        return self.propose_s

    def finish(self, draft: Draft, trial: Trial):
        assert threading.current_thread() is threading.main_thread()
        assert draft.number == self.next_number, "recorded out of start order"
        self.next_number += 1
        self.finished.append(draft.number)
        return trial

    def failed(self, draft: Draft, error: Exception, attempt: int) -> bool:
        self.failures.append((draft.number, attempt))
        return self.retry

    def dropped(self, draft: Draft) -> None:
        self.dropped_numbers.append(draft.number)

    # -- the trials -----------------------------------------------------------
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


def go(src: Source, parallel: int, budget: int, gpus=(), per=0, pending=(), proposers=None, timeline=None):
    run_slots(plan_slots(parallel, tuple(gpus), per, proposers), list(pending), budget, src,
              lambda t: True, src.execute, src.record, timeline)


def test_every_proposal_is_run_and_recorded_once():
    src = Source(total=6)
    go(src, parallel=3, budget=6)
    assert sorted(src.recorded) == [trial_id(n) for n in range(1, 7)]


def test_parallel_slots_are_used():
    src = Source(total=6, run_s=0.2)
    go(src, parallel=3, budget=6)
    assert src.max_running == 3


def test_parallel_one_is_strictly_sequential():
    src = Source(total=4)
    go(src, parallel=1, budget=4)
    assert src.max_running == 1
    # Each proposal starts with nothing running and every earlier outcome recorded.
    assert src.began == [(n, 0, n - 1) for n in range(1, 5)]


def test_proposers_really_overlap():
    """Four proposers all inside `prepare` at once: a barrier of four only opens then."""
    barrier = threading.Barrier(4, timeout=5)
    src = Source(total=8, run_s=0.01)
    src.delay = lambda draft: barrier.wait() * 0 if draft.number <= 4 else 0.0
    go(src, parallel=2, budget=8, proposers=4)
    assert src.max_preparing == 4
    assert sorted(src.recorded) == [trial_id(n) for n in range(1, 9)]


def test_proposals_are_recorded_in_start_order_whatever_their_latency():
    src = Source(total=6, run_s=0.01)
    src.delay = lambda draft: 0.35 - 0.05 * draft.number  # the later the proposal, the sooner it is ready
    go(src, parallel=2, budget=6, proposers=3)
    assert src.finished == [1, 2, 3, 4, 5, 6]


def test_later_proposals_start_on_what_is_recorded_then():
    src = Source(total=9, propose_s=0.05, run_s=0.1)
    go(src, parallel=3, budget=9, proposers=3)
    seen = [recorded for _n, _running, recorded in src.began]
    assert seen == sorted(seen) and seen[0] == 0 and seen[-1] > 0  # fresh state, never older than before


def test_budget_limits_new_proposals_with_many_proposers():
    src = Source(total=10)
    go(src, parallel=2, budget=3, proposers=5)
    assert len(src.recorded) == 3 and len(src.began) == 3


def test_pending_trials_run_before_new_ones():
    src = Source(total=1)
    go(src, parallel=1, budget=1, pending=[make_trial(50)])
    assert src.recorded == ["t0050", "t0001"]


def test_gpu_groups_are_exclusive_per_slot():
    src = Source(total=8, run_s=0.05)
    go(src, parallel=2, budget=8, gpus=(0, 1, 2, 3), per=2)
    assert set(src.gpus_seen) == {(0, 1), (2, 3)}


def test_an_error_in_one_proposer_does_not_stop_the_run():
    src = Source(total=6, propose_s=0.02, run_s=0.05)
    original = src.prepare
    raised: list[int] = []

    def flaky(draft):
        if draft.number == 3 and not raised:
            raised.append(draft.number)
            raise RuntimeError("model down")
        return original(draft)

    src.prepare = flaky
    go(src, parallel=2, budget=6, proposers=3)
    assert src.failures == [(3, 1)]
    assert sorted(src.recorded) == [trial_id(n) for n in range(1, 7)]
    assert [n for n, _r, _o in src.began].count(3) == 2  # started again, on the lineage as it stood then


def test_an_error_not_retried_is_raised_after_running_trials_are_recorded():
    src = Source(total=8, propose_s=0.05, run_s=0.2)
    src.retry = False
    original = src.prepare

    def failing(draft):
        if draft.number == 3:
            raise RuntimeError("model down")
        return original(draft)

    src.prepare = failing
    with pytest.raises(RuntimeError, match="model down"):
        go(src, parallel=2, budget=8, proposers=3)
    assert sorted(src.recorded) == ["t0001", "t0002"]
    assert src.dropped_numbers and min(src.dropped_numbers) == 3  # it and every later one


def test_a_stop_drops_the_proposals_started_after_it():
    src = Source(total=10, propose_s=0.02, run_s=0.02)
    original = src.finish
    src.finish = lambda draft, trial: None if draft.number == 4 else original(draft, trial)
    go(src, parallel=2, budget=10, proposers=3)
    assert src.finished == [1, 2, 3]
    assert sorted(src.recorded) == ["t0001", "t0002", "t0003"]
    assert all(n > 4 for n in src.dropped_numbers) and 4 not in src.finished


def test_wait_holds_a_proposal_until_the_earlier_ones_are_recorded():
    src = Source(total=4, propose_s=0.05, run_s=0.01)
    original = src.begin
    src.begin = lambda earlier: WAIT if earlier else original(earlier)
    go(src, parallel=2, budget=4, proposers=3)
    assert src.finished == [1, 2, 3, 4]
    assert all(n == m for (n, _r, _o), m in zip(src.began, range(1, 5)))


def test_timeline_accounts_for_every_slot_second():
    src = Source(total=6, propose_s=0.05, run_s=0.1)
    timeline = SlotTimeline(2)
    go(src, parallel=2, budget=6, proposers=2, timeline=timeline)
    for slot in range(2):
        total = timeline.busy[slot] + sum(timeline.idle_by_cause(slot).values())
        assert total == pytest.approx(timeline.wall_s, abs=1e-6)
    assert sum(timeline.trials.values()) == 6
    assert timeline.idle_by_cause()["start-up"] >= 2 * 0.05 * 0.9
    assert 0 < timeline.steady_utilization() <= 1 and 0 < timeline.utilization() <= timeline.steady_utilization()


@pytest.mark.parametrize("parallel,gpus,per,message", [
    (2, (0, 1, 2), 2, "do not split"),
    (3, (0, 1), 1, "needs 3 GPUs"),
    (1, (0, 0), 1, "twice"),
])
def test_bad_gpu_plans_are_explained(parallel, gpus, per, message):
    with pytest.raises(ValueError, match=message):
        plan_slots(parallel, gpus, per)


def test_proposers_default_to_the_slots():
    assert plan_slots(3, (), 0).proposers == 3
    assert plan_slots(3, (), 0, 7).proposers == 7
    with pytest.raises(ValueError, match="--proposers"):
        plan_slots(1, (), 0, 0)


def test_a_run_whose_slots_wait_for_the_agent_is_told_how_many_proposers_keep_pace():
    src = Source(total=8, propose_s=0.15, run_s=0.05)
    timeline = SlotTimeline(2)
    go(src, parallel=2, budget=8, proposers=1, timeline=timeline)
    note = pace_note(timeline, 1)
    assert note is not None and note.startswith("the slots waited for the agent")
    wanted = int(note.split("--proposers ")[1].split()[0])
    assert wanted == proposers_to_keep_pace(2, timeline.mean_proposal_s(), timeline.mean_trial_s()) and wanted >= 7
    assert pace_note(timeline, wanted) is None


def test_no_pace_note_for_a_sequential_run_or_busy_slots():
    src = Source(total=3, propose_s=0.05, run_s=0.01)
    timeline = SlotTimeline(1)
    go(src, parallel=1, budget=3, proposers=1, timeline=timeline)
    assert pace_note(timeline, 1) is None
    src = Source(total=8, propose_s=0.0, run_s=0.05)
    timeline = SlotTimeline(2)
    go(src, parallel=2, budget=8, proposers=2, timeline=timeline)
    assert pace_note(timeline, 2) is None
