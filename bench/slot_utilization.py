"""Slot utilization of the scheduler with a simulated model and simulated trials.

A proposer that takes PROPOSE_S seconds and trials that take TRIAL_S seconds, run
through `harness.scheduler.run_slots` with K slots; utilization = time slots were
busy / (K x wall time). Printed side by side in one run: proposals prepared
ahead (the harness) vs proposed only into a free slot (naive), and the ratio.

    python bench/slot_utilization.py [--propose 0.5] [--trial 1.0] [--parallel 2] [--trials 20]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.scheduler import plan_slots, run_slots  # noqa: E402
from harness.types import Label, Outcome, Proposal, Trial, trial_id  # noqa: E402


def measure(parallel: int, trials: int, propose_s: float, trial_s: float, prepare_ahead: bool) -> tuple[float, float]:
    busy = 0.0
    lock = threading.Lock()
    made = 0

    def propose():
        nonlocal made
        time.sleep(propose_s)
        made += 1
        return Trial(id=trial_id(made), run_id="bench", parent="t0000", fidelity="full", seeds=[0],
                     commit="0" * 40, proposal=Proposal(hypothesis="h", diff="", agent="bench"))

    def execute(trial, gpus):
        nonlocal busy
        start = time.monotonic()
        time.sleep(trial_s)
        with lock:
            busy += time.monotonic() - start
        return Outcome(label=Label.not_improved, score=0.0, started="", finished="")

    start = time.monotonic()
    run_slots(plan_slots(parallel, (), 0), [], trials, propose, lambda t: True, execute,
              lambda t, o: None, prepare_ahead=prepare_ahead)
    wall = time.monotonic() - start
    return busy / (parallel * wall), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--propose", type=float, default=0.5, help="seconds per proposal")
    parser.add_argument("--trial", type=float, default=1.0, help="seconds per trial")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    ahead, ahead_wall = measure(args.parallel, args.trials, args.propose, args.trial, True)
    naive, naive_wall = measure(args.parallel, args.trials, args.propose, args.trial, False)
    print(f"proposer {args.propose}s, trials {args.trial}s, --parallel {args.parallel}, {args.trials} trials")
    print(f"{'schedule':<28}{'utilization':>12}{'wall s':>10}")
    print(f"{'prepared ahead (harness)':<28}{ahead:>12.1%}{ahead_wall:>10.2f}")
    print(f"{'only into a free slot':<28}{naive:>12.1%}{naive_wall:>10.2f}")
    print(f"utilization ratio harness/naive: {ahead / naive:.2f}x")


if __name__ == "__main__":
    main()
