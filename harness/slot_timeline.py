"""What each slot of a run did, and why it stood idle (kept by `harness.scheduler`).

A slot is idle between two trials, before its first trial and after its last.
Each idle stretch is cut into its causes:

- `start-up`: before the slot's first trial, while the first proposals were prepared;
- `waiting for the agent`: no proposal was ready (every proposer still at work);
- `waiting for an earlier proposal`: a proposal was ready but is recorded only after
  the proposals started before it (trial ids follow the order proposals start in);
- `hand-off`: a trial was ready to run; the scheduler was recording another
  proposal or outcome (the harness's own time);
- `drain`: after the slot's last trial, when the run had nothing more to start.

`steady_utilization` leaves out start-up and drain: what a long run converges to.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

CAUSES = ("start-up", "waiting for the agent", "waiting for an earlier proposal", "hand-off", "drain")
"""Idle causes, in the order a report lists them."""


@dataclass
class SlotTimeline:
    """Busy and idle seconds per slot, filled in while `run_slots` runs."""

    slots: int
    """Slots the run had."""
    started: float = field(default_factory=time.monotonic)
    """When the schedule started (monotonic seconds)."""
    ended: float | None = None
    """When it ended."""
    busy: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    """Slot -> seconds a trial ran in it."""
    idle: dict[int, dict[str, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    """Slot -> cause -> idle seconds."""
    trials: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    """Slot -> trials it ran."""
    proposal_s: list[float] = field(default_factory=list)
    """How long each proposal took to prepare (the agent's latency)."""
    _free_since: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for slot in range(self.slots):
            self._free_since[slot] = self.started

    def trial_started(self, slot: int, now: float, prepared: float, ready: float) -> None:
        """A trial enters `slot` at `now`; its proposal was prepared at `prepared` and
        recorded (ready to run) at `ready`. Splits the idle stretch before it."""
        with self._lock:
            since = self._free_since.pop(slot)
            idle = self.idle[slot]
            if self.trials[slot] == 0:
                idle["start-up"] += now - since
            else:
                prepared = min(max(prepared, since), now)
                ready = min(max(ready, prepared), now)
                idle["waiting for the agent"] += prepared - since
                idle["waiting for an earlier proposal"] += ready - prepared
                idle["hand-off"] += now - ready
            self.trials[slot] += 1

    def trial_finished(self, slot: int, started: float, now: float) -> None:
        with self._lock:
            self.busy[slot] += now - started
            self._free_since[slot] = now

    def proposal_prepared(self, seconds: float) -> None:
        with self._lock:
            self.proposal_s.append(seconds)

    def finish(self, now: float | None = None) -> None:
        """The schedule ended: what is left of every free slot's idle time is drain."""
        with self._lock:
            self.ended = time.monotonic() if now is None else now
            for slot, since in self._free_since.items():
                self.idle[slot]["drain"] += self.ended - since
            self._free_since.clear()

    # -- figures ---------------------------------------------------------------

    @property
    def wall_s(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def utilization(self) -> float:
        """Busy seconds / (slots x wall seconds)."""
        return sum(self.busy.values()) / (self.slots * self.wall_s) if self.wall_s > 0 else 0.0

    def steady_utilization(self) -> float:
        """Busy / (busy + idle other than start-up and drain)."""
        busy = sum(self.busy.values())
        idle = sum(s for causes in self.idle.values() for c, s in causes.items() if c not in ("start-up", "drain"))
        return busy / (busy + idle) if busy + idle > 0 else 0.0

    def idle_by_cause(self, slot: int | None = None) -> dict[str, float]:
        """Idle seconds per cause, of one slot or summed over all."""
        chosen = [self.idle[slot]] if slot is not None else list(self.idle.values())
        return {cause: sum(causes.get(cause, 0.0) for causes in chosen) for cause in CAUSES}

    def mean_trial_s(self) -> float | None:
        trials = sum(self.trials.values())
        return sum(self.busy.values()) / trials if trials else None

    def mean_proposal_s(self) -> float | None:
        return sum(self.proposal_s) / len(self.proposal_s) if self.proposal_s else None


def proposers_to_keep_pace(slots: int, proposal_s: float, trial_s: float, spread: float = 0.0) -> int:
    """Proposers that keep `slots` busy when proposals take `proposal_s` (the slowest up to
    `1 + spread` times that) and trials `trial_s`: K x proposal time / trial time are under way
    at any moment, plus one per slot of slack."""
    return math.ceil(slots * proposal_s * (1.0 + spread) / trial_s - 1e-9) + slots if trial_s > 0 else slots


PACE_NOTE_SHARE = 0.1
"""Slots waiting for the agent this share of their time or more get a note saying what would help."""


def pace_note(timeline: SlotTimeline, proposers: int) -> str | None:
    """A line for the end of a run whose slots waited for the agent, with the `--proposers`
    that would have kept them busy; None when they did not (or the run is sequential)."""
    proposal_s, trial_s = timeline.mean_proposal_s(), timeline.mean_trial_s()
    if proposal_s is None or trial_s is None or (timeline.slots == 1 and proposers == 1):
        return None
    waited = timeline.idle_by_cause()["waiting for the agent"]
    share = waited / (timeline.slots * timeline.wall_s) if timeline.wall_s > 0 else 0.0
    enough = proposers_to_keep_pace(timeline.slots, proposal_s, trial_s)
    if share < PACE_NOTE_SHARE or enough <= proposers:
        return None
    return (f"the slots waited for the agent {share:.0%} of the time (proposals took {proposal_s:.1f} s, trials "
            f"{trial_s:.1f} s on average): --proposers {enough} would keep {timeline.slots} slot(s) busy")
