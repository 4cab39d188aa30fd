"""Keep K sandbox slots busy: up to N proposals are prepared while trials run.

Threads, each with one job:
- up to N proposer threads prepare proposals (`ProposalSource.prepare`: the
  agent, the slow part; it reads the lineage, never writes it);
- K trial threads call `execute(trial, gpus)` (sandbox phases, scoring);
- the calling thread is the single lineage writer. It starts each proposal
  (`begin`: the lineage as it stands then is what the proposal is prepared on),
  records prepared proposals (`finish`) in the order they started, so trial ids
  follow start order whatever the agent's latency, and records outcomes in
  completion order, so `best` moves under one hand. What it records after one
  wait (outcomes of the trials that ended, the proposals that became ready) is
  one group (`writes`, the lineage's group commit), ended before any of those
  trials starts.

With K = 1 and N = 1 the schedule is strictly sequential (propose, run, record,
propose ...): the agent sees every outcome before it proposes again. Otherwise
up to N proposals are under way ahead of the slots: no slot waits for the agent
once the N proposers together keep pace with the K slots (N >= K x proposal
time / trial time).

An error in one proposer costs that proposal, not the run: `failed` says whether
to start it again (on the lineage as it stands then); the other proposers and
the running trials carry on. When it is not retried, proposing stops, what runs
is finished and recorded, proposals started after it are dropped (`dropped`),
and the error is raised again.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from contextlib import AbstractContextManager, nullcontext
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Protocol, TypeVar

from harness.slot_timeline import SlotTimeline
from harness.types import Outcome, Trial, trial_number

D = TypeVar("D")


class Wait:
    """`begin`'s answer for "not now": ask again once something in flight ends."""


WAIT = Wait()


@dataclass(frozen=True)
class SlotPlan:
    parallel: int
    """Trials running at once."""
    gpu_groups: tuple[tuple[int, ...], ...]
    """The GPUs of each slot (empty tuples when trials get no GPU)."""
    proposers: int = 1
    """Proposals prepared at once (`--proposers`)."""


def plan_slots(parallel: int, gpus: tuple[int, ...], gpus_per_trial: int, proposers: int | None = None) -> SlotPlan:
    """Split the GPU ids into one group per slot; `ValueError` when they do not divide.
    `proposers` defaults to one per slot."""
    if parallel < 1:
        raise ValueError("--parallel must be at least 1")
    proposers = parallel if proposers is None else proposers
    if proposers < 1:
        raise ValueError("--proposers must be at least 1")
    if not gpus or gpus_per_trial == 0:
        return SlotPlan(parallel, tuple(() for _ in range(parallel)), proposers)
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"--gpus lists a GPU twice: {','.join(map(str, gpus))}")
    groups = tuple(gpus[i : i + gpus_per_trial] for i in range(0, len(gpus), gpus_per_trial))
    if len(groups[-1]) != gpus_per_trial:
        raise ValueError(f"{len(gpus)} GPUs do not split into groups of {gpus_per_trial}")
    if len(groups) < parallel:
        raise ValueError(
            f"--parallel {parallel} needs {parallel * gpus_per_trial} GPUs at {gpus_per_trial} per trial; "
            f"--gpus gives {len(gpus)}"
        )
    return SlotPlan(parallel, groups[:parallel], proposers)


class ProposalSource(Protocol[D]):
    """Where `run_slots` gets new trials from, in three steps."""

    def begin(self, earlier: int) -> D | Wait | None:
        """(Scheduler thread.) Start a proposal on the lineage as it stands; `earlier`
        proposals started before this one are not recorded yet. None: propose nothing
        more; `WAIT`: not now."""
        ...

    def prepare(self, draft: D) -> Any:
        """(A proposer thread.) The slow part: what the agent answers."""
        ...

    def finish(self, draft: D, prepared: Any) -> Trial | None:
        """(Scheduler thread, in start order.) Record the proposal; None: propose nothing more."""
        ...

    def failed(self, draft: D, error: Exception, attempt: int) -> bool:
        """(Scheduler thread.) `prepare` raised on its `attempt`-th try: True to start it again."""
        ...

    def dropped(self, draft: D) -> None:
        """(Scheduler thread.) A proposal started after the one that stopped proposing: never recorded."""
        ...


@dataclass
class _Ticket(Generic[D]):
    """One proposal under way: started, being prepared, or prepared and waiting for its turn."""

    draft: D
    future: Future[Any]
    attempt: int = 1
    prepared_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)


@dataclass
class _Ready:
    trial: Trial
    prepared_at: float
    ready_at: float = field(default_factory=time.monotonic)


def run_slots(
    plan: SlotPlan,
    pending: list[Trial],
    budget: int,
    proposals: ProposalSource[Any],
    needs_run: Callable[[Trial], bool],
    execute: Callable[[Trial, tuple[int, ...]], Outcome],
    record: Callable[[Trial, Outcome], None],
    timeline: SlotTimeline | None = None,
    writes: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> None:
    """Run `pending` trials, then up to `budget` new proposals, `plan.parallel` at a time.

    `writes()` wraps what is recorded after each wait (`Lineage.grouped`: one durable write)."""
    _Schedule(plan, budget, proposals, needs_run, execute, record, timeline, writes).run(pending)


class _Schedule:
    def __init__(self, plan, budget, proposals, needs_run, execute, record, timeline, writes) -> None:  # noqa: ANN001
        self.plan, self.budget, self.source = plan, budget, proposals
        self.needs_run, self.execute, self.record = needs_run, execute, record
        self.timeline, self.writes = timeline, writes
        self.free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(plan.parallel):
            self.free.put(slot)
        self.ready: deque[_Ready] = deque()
        self.running: dict[Future[Outcome], tuple[Trial, int, float]] = {}
        self.tickets: deque[_Ticket[Any]] = deque()
        """Proposals started and not yet recorded, in start order."""
        self.recorded = 0
        self.stopped = False
        self.error: BaseException | None = None
        # Proposals under way beyond the slots: with one slot and one proposer none (sequential).
        self.ahead = plan.proposers if plan.parallel > 1 else plan.proposers - 1

    def run(self, pending: list[Trial]) -> None:
        now = time.monotonic()
        self.ready.extend(_Ready(trial, now, now) for trial in pending)
        with ThreadPoolExecutor(self.plan.parallel, thread_name_prefix="trial") as self.pool, ThreadPoolExecutor(
            self.plan.proposers, thread_name_prefix="propose"
        ) as self.proposers:
            try:
                self.loop()
            finally:
                for ticket in self.tickets:  # only after an error: their answers are never used
                    ticket.future.cancel()
        if self.timeline is not None:
            self.timeline.finish()
        if self.error is not None:
            raise self.error

    def loop(self) -> None:
        while True:
            self.dispatch()
            self.start_proposals()
            waiting = set(self.running) | {t.future for t in self.tickets if t.prepared_at is None}
            if not waiting:
                if self.tickets:  # cannot happen: every ticket is either under way or recorded
                    raise RuntimeError("scheduler: a prepared proposal was never recorded")
                return
            done, _ = wait(waiting, return_when=FIRST_COMPLETED)
            # Trials finished together are recorded in id order: the same for every run.
            finished = sorted((f for f in done if f in self.running), key=lambda f: trial_number(self.running[f][0].id))
            entries = [self.running.pop(f) for f in finished]
            for _trial, slot, started in entries:  # free the slots first, so the next trials start
                self.free.put(slot)
                if self.timeline is not None:
                    self.timeline.trial_finished(slot, started, time.monotonic())
            self.dispatch()
            with self.writes():  # ends (durable) before the loop's next dispatch starts what it recorded
                for future, (trial, _slot, _started) in zip(finished, entries):
                    self.record(trial, future.result())
                self.collect(done)
                self.commit_in_order()

    def dispatch(self) -> None:
        while self.ready and len(self.running) < self.plan.parallel:
            entry = self.ready.popleft()
            slot = self.free.get()
            started = time.monotonic()
            if self.timeline is not None:
                self.timeline.trial_started(slot, started, entry.prepared_at, entry.ready_at)
            future = self.pool.submit(self.execute, entry.trial, self.plan.gpu_groups[slot])
            self.running[future] = (entry.trial, slot, started)

    def start_proposals(self) -> None:
        while (
            not self.stopped
            and len(self.tickets) < self.plan.proposers
            and self.recorded + len(self.tickets) < self.budget
            and len(self.running) + len(self.ready) + len(self.tickets) < self.plan.parallel + self.ahead
        ):
            draft = self.begin(len(self.tickets))
            if draft is None or (draft is WAIT and not self.tickets):
                self.stopped = True
                return
            if draft is WAIT:
                return
            self.tickets.append(_Ticket(draft, self.proposers.submit(self.source.prepare, draft)))

    def begin(self, earlier: int) -> Any:
        try:
            return self.source.begin(earlier)
        except Exception as exc:  # raised after the running trials are recorded
            if self.error is None:
                self.error = exc
            self.stopped = True
            return None

    def collect(self, done: set[Future[Any]]) -> None:
        """Note which proposals are prepared; start a failed one again or stop."""
        for index, ticket in enumerate(list(self.tickets)):
            if ticket.future not in done:
                continue
            error = ticket.future.exception()
            if error is None:
                ticket.prepared_at = time.monotonic()
                if self.timeline is not None:
                    self.timeline.proposal_prepared(ticket.prepared_at - ticket.started_at)
                continue
            if not isinstance(error, Exception) or self.stopped:
                self.stop(index, error)
                continue
            if not self.source.failed(ticket.draft, error, ticket.attempt):
                self.stop(index, error)
                continue
            draft = self.begin(index)  # on the lineage as it stands now
            if draft is None or draft is WAIT:
                self.stop(index, None)
                continue
            ticket.draft, ticket.attempt, ticket.started_at = draft, ticket.attempt + 1, time.monotonic()
            ticket.future = self.proposers.submit(self.source.prepare, draft)

    def stop(self, index: int, error: BaseException | None) -> None:
        """Propose nothing more: the proposal at `index` and every later one are dropped."""
        self.stopped = True
        if error is not None and self.error is None:
            self.error = error
        while len(self.tickets) > index:
            ticket = self.tickets.pop()
            ticket.future.cancel()
            self.source.dropped(ticket.draft)

    def commit_in_order(self) -> None:
        while self.tickets and self.tickets[0].prepared_at is not None:
            ticket = self.tickets.popleft()
            try:
                trial = self.source.finish(ticket.draft, ticket.future.result())
            except Exception as exc:  # raised after the running trials are recorded
                self.tickets.appendleft(ticket)
                self.stop(0, exc)
                return
            if trial is None:
                self.stop(0, None)
                return
            self.recorded += 1
            if self.needs_run(trial):
                self.ready.append(_Ready(trial, ticket.prepared_at))
