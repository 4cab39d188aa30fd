"""Keep K sandbox slots busy: proposals are prepared while trials run.

Threads, each with one job:
- one proposer thread calls `propose()` (the agent, then the proposal commit);
- K trial threads call `execute(trial, gpus)` (sandbox phases, scoring);
- the calling thread is the single lineage writer of outcomes: it calls
  `record(trial, outcome)` in completion order, so `best` moves under one hand.

With K = 1 the schedule is strictly sequential (propose, run, record, propose
...): the agent sees every outcome before it proposes again. With K > 1 one
proposal is prepared ahead of the free slots, so a slot never waits for the
model when the model is faster than a trial.
"""

from __future__ import annotations

import queue
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable

from harness.types import Outcome, Trial


@dataclass(frozen=True)
class SlotPlan:
    parallel: int
    """Trials running at once."""
    gpu_groups: tuple[tuple[int, ...], ...]
    """The GPUs of each slot (empty tuples when trials get no GPU)."""


def plan_slots(parallel: int, gpus: tuple[int, ...], gpus_per_trial: int) -> SlotPlan:
    """Split the GPU ids into one group per slot; `ValueError` when they do not divide."""
    if parallel < 1:
        raise ValueError("--parallel must be at least 1")
    if not gpus or gpus_per_trial == 0:
        return SlotPlan(parallel, tuple(() for _ in range(parallel)))
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
    return SlotPlan(parallel, groups[:parallel])


def run_slots(
    plan: SlotPlan,
    pending: list[Trial],
    budget: int,
    propose: Callable[[], Trial | None],
    needs_run: Callable[[Trial], bool],
    execute: Callable[[Trial, tuple[int, ...]], Outcome],
    record: Callable[[Trial, Outcome], None],
    prepare_ahead: bool = True,
) -> None:
    """Run `pending` trials, then up to `budget` new proposals, `plan.parallel` at a time.

    `prepare_ahead=False` (for comparison in bench/) proposes only into a free slot.
    An exception from `propose` stops proposing; trials already running are
    finished and recorded before it is raised again, so nothing is lost.
    """
    free_gpus: queue.SimpleQueue[tuple[int, ...]] = queue.SimpleQueue()
    for group in plan.gpu_groups:
        free_gpus.put(group)
    ready: deque[Trial] = deque(pending)
    running: dict[Future[Outcome], tuple[Trial, tuple[int, ...]]] = {}
    proposing: Future[Trial | None] | None = None
    proposed = 0
    stop_proposing = False
    error: BaseException | None = None
    lookahead = 1 if plan.parallel > 1 and prepare_ahead else 0

    with ThreadPoolExecutor(plan.parallel, thread_name_prefix="trial") as pool, ThreadPoolExecutor(
        1, thread_name_prefix="propose"
    ) as proposer:
        while True:
            while ready and len(running) < plan.parallel:
                trial = ready.popleft()
                gpus = free_gpus.get()
                running[pool.submit(execute, trial, gpus)] = (trial, gpus)
            in_flight = len(running) + len(ready)
            if (
                proposing is None
                and not stop_proposing
                and proposed < budget
                and in_flight < plan.parallel + lookahead
            ):
                proposing = proposer.submit(propose)
            waiting = set(running) | ({proposing} if proposing is not None else set())
            if not waiting:
                break
            done, _ = wait(waiting, return_when=FIRST_COMPLETED)
            for future in done:
                if future is proposing:
                    proposing = None
                    try:
                        trial = future.result()
                    except Exception as exc:  # re-raised below, after running trials are recorded
                        error, stop_proposing = exc, True
                        continue
                    if trial is None:
                        stop_proposing = True
                        continue
                    proposed += 1
                    if needs_run(trial):
                        ready.append(trial)
                else:
                    trial, gpus = running.pop(future)
                    free_gpus.put(gpus)
                    record(trial, future.result())
    if error is not None:
        raise error
