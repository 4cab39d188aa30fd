"""Lineage at scale: record, replay --verify, analyze and report at two or more run sizes.

For each size N (default 1,000 and 10,469 trials) a synthetic run of the
`collision` recipe (see `bench/synthetic_lineage.py`: real knob diffs, proposed
and outcome events, best moves, a mix of labels, agents, specialists and
fidelities) is recorded through the lineage API the way the loop records it,
then audited the ways a user would:

* record: every trial's git work (the loop's calls, no sandbox), total and per trial,
  written as the loop with two or more slots writes it: the outcome of the trial
  that ended and the proposal that takes its slot in one group commit
  (`Lineage.grouped`);
* record, a write per event: the same with every event written on its own (the
  loop with one slot and one proposer, strictly sequential); not audited;
* replay (API): `harness.replay.replay(run)`, the full verification plus the keep rule;
* replay --verify (CLI): `python -m harness.cli replay RUN --verify`;
* replay (CLI table) and replay --json (CLI): `harness replay RUN` and `harness replay RUN --json`;
* analyze --json (CLI): `python -m harness.cli analyze RUN --json`;
* report --html (CLI): `python -m harness.cli report RUN --html FILE`.

The sizes are measured side by side so that the load of a shared machine hits
them alike: the runs are recorded in `--slices` slices taken in turn (a slice of
the small run, a slice of the large one, ...), and the audits are repeated
`--reps` times in turn (all steps on every size, then again), keeping the median.
Every audit must succeed (the run verifies, the JSON parses, the HTML is
written), else the script stops with an error.

The table shows wall and CPU seconds (CPU: this process and its finished
children, git and the CLI included) and wall milliseconds per trial at each
size, and the growth from the smallest to the largest size next to the size
ratio: growth <= size ratio means at most linear. CLI rows include the start
of a Python interpreter (one to a few seconds: imports).

The figures are compared with issue 18's goals at 10,469 trials (scaled linearly
to the largest size), and with the smaller size (the growth). `--json` prints the
same figures as one object (`record_s`, `verify_s`, `replay_s`, `replay_json_s`,
`analyze_s`, `report_s`, ... at the largest size).

    python bench/lineage_scale.py [--sizes 1000,10469 | --trials N] [--slices 10] [--reps 3] [--seed 0]
                                  [--fsync committed|none] [--json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic_lineage import LineageRecorder, plan_trials  # noqa: E402

import trajectories.lineage as lineage_module  # noqa: E402
from harness.replay import replay  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["record", "record (per event)", "replay (API)", "replay --verify (CLI)", "replay (CLI table)", "replay --json (CLI)",
         "analyze --json (CLI)", "report --html (CLI)"]
JSON_KEYS = {"record": "record_s", "record (per event)": "record_per_event_s", "replay (API)": "replay_api_s", "replay --verify (CLI)": "verify_s",
             "replay (CLI table)": "replay_s", "replay --json (CLI)": "replay_json_s",
             "analyze --json (CLI)": "analyze_s", "report --html (CLI)": "report_s"}
"""`--json` names of the steps' wall seconds (at the largest size)."""
GOALS_S = {"record": 60.0, "record (per event)": 60.0, "replay --verify (CLI)": 5.0, "replay (CLI table)": 5.0, "replay --json (CLI)": 5.0,
           "analyze --json (CLI)": 5.0, "report --html (CLI)": 5.0}
GOAL_TRIALS = 10469
"""Issue 18's goals: wall seconds at 10,469 trials on the 2-core machine (scaled linearly for other sizes)."""


class Clock:
    """Wall seconds and CPU seconds (this process and its finished children, git included) of a block."""

    wall = cpu = 0.0

    @staticmethod
    def _cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    def __enter__(self) -> "Clock":
        self._wall, self._cpu0 = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self._wall, self._cpu() - self._cpu0

    def add(self, other: "Clock") -> None:
        self.wall += other.wall
        self.cpu += other.cpu

    @staticmethod
    def median(clocks: list["Clock"]) -> "Clock":
        """Median wall and median CPU (each on its own)."""
        result = Clock()
        result.wall = statistics.median(c.wall for c in clocks)
        result.cpu = statistics.median(c.cpu for c in clocks)
        return result


def cli(*args: str, ok_codes: tuple[int, ...] = (0,)) -> tuple[Clock, str]:
    """Run `python -m harness.cli ARGS` with this tree first on the path; (its clock, stdout)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    with Clock() as clock:
        done = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env)
    if done.returncode not in ok_codes:
        raise SystemExit(f"error: harness {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:] or done.stdout[-2000:]}")
    return clock, done.stdout


def record_all(sizes: list[int], seed: int, slices: int, folder: Path) -> dict[tuple[int, str], Clock]:
    """Record a run of each size both ways (grouped as the loop does, and a write per event),
    slices of the sizes and ways taken in turn; one summed clock per (size, step)."""
    plans = {n: plan_trials(n, seed) for n in sizes}
    ways = {"record": True, "record (per event)": False}
    recorders = {(n, way): LineageRecorder(folder / (f"run-{n}" if grouped else f"run-{n}-per-event"),
                                           f"synthetic-{n}", grouped)
                 for n in sizes for way, grouped in ways.items()}
    clocks = {key: Clock() for key in recorders}
    try:
        for i in range(slices):
            for key, recorder in recorders.items():
                n = key[0]
                with Clock() as clock:
                    for planned in plans[n][n * i // slices : n * (i + 1) // slices]:
                        recorder.record(planned)
                    if i == slices - 1:
                        recorder.close()  # the last outcome, held for its group, is written
                clocks[key].add(clock)
    finally:
        for recorder in recorders.values():
            recorder.close()
    for n in sizes:  # the per-event runs are only timed
        shutil.rmtree(folder / f"run-{n}-per-event", ignore_errors=True)
    return clocks


def audit(size: int, folder: Path) -> dict[str, Clock]:
    """One clock per audit step of the run of `size` trials."""
    run_dir = folder / f"run-{size}"
    clocks: dict[str, Clock] = {}
    with Clock() as clocks["replay (API)"]:
        report = replay(run_dir)
    if not report.verified or len(report.trials) != size:
        raise SystemExit(f"error: the {size}-trial run does not verify: {report.problems[:5]}")
    clocks["replay --verify (CLI)"], _ = cli("replay", str(run_dir), "--verify")
    clocks["replay (CLI table)"], out = cli("replay", str(run_dir))
    if out.count("\n") < size:
        raise SystemExit(f"error: the replay table has {out.count(chr(10))} lines for {size} trials")
    clocks["replay --json (CLI)"], out = cli("replay", str(run_dir), "--json")
    if len(json.loads(out)["trials"]) != size:
        raise SystemExit("error: replay --json lists the wrong number of trials")
    clocks["analyze --json (CLI)"], out = cli("analyze", str(run_dir), "--json")
    if json.loads(out)["trials"] != size:
        raise SystemExit(f"error: analyze saw {json.loads(out)['trials']} trials, not {size}")
    html = folder / f"report-{size}.html"
    clocks["report --html (CLI)"], _ = cli("report", str(run_dir), "--html", str(html))
    if html.stat().st_size == 0:
        raise SystemExit("error: the report is empty")
    return clocks


def measure(sizes: list[int], seed: int, slices: int, reps: int, folder: Path) -> dict[int, dict[str, Clock]]:
    """Clocks per size and step: record summed over its slices, audits the median of their repetitions."""
    recorded = record_all(sizes, seed, slices, folder)
    audits: dict[int, list[dict[str, Clock]]] = {n: [] for n in sizes}
    for rep in range(reps):
        for n in sizes if rep % 2 == 0 else sizes[::-1]:
            audits[n].append(audit(n, folder))
    return {n: {"record": recorded[(n, "record")], "record (per event)": recorded[(n, "record (per event)")],
                **{step: Clock.median([a[step] for a in audits[n]]) for step in STEPS[2:]}}
            for n in sizes}


def table(sizes: list[int], results: dict[int, dict[str, Clock]]) -> str:
    small, large = sizes[0], sizes[-1]
    size_ratio = large / small
    head = f"{'step':<22}" + "".join(f"{f'{n} wall s':>13}{'cpu s':>9}{'ms/trial':>9}" for n in sizes)
    head += f"{'growth wall':>12}{'cpu':>7}{'size ratio':>11}  verdict (wall, cpu)"
    lines = [head, "-" * len(head)]
    for step in STEPS:
        row = f"{step:<22}"
        for n in sizes:
            clock = results[n][step]
            row += f"{clock.wall:>13.2f}{clock.cpu:>9.2f}{clock.wall / n * 1000:>9.2f}"
        wall = results[large][step].wall / results[small][step].wall
        cpu = results[large][step].cpu / results[small][step].cpu
        verdict = ", ".join("linear or less" if g <= size_ratio else "superlinear" for g in (wall, cpu))
        row += f"{wall:>12.2f}{cpu:>7.2f}{size_ratio:>11.3f}  {verdict}"
        lines.append(row)
    return "\n".join(lines)


def goal_lines(sizes: list[int], results: dict[int, dict[str, Clock]]) -> str:
    large = sizes[-1]
    lines = [f"goals at {large} trials (issue 18's, scaled from {GOAL_TRIALS}): wall s / goal s = ratio"]
    for step, goal in GOALS_S.items():
        scaled = goal * large / GOAL_TRIALS
        wall = results[large][step].wall
        lines.append(f"  {step:<22}{wall:>9.2f} / {scaled:>7.2f} = {wall / scaled:.2f}  "
                     f"{'met' if wall <= scaled else 'MISSED'}")
    return "\n".join(lines)


def as_json(sizes: list[int], results: dict[int, dict[str, Clock]], fsync: str) -> dict:
    small, large = sizes[0], sizes[-1]
    data: dict = {"trials": large, "fsync": fsync, "cpus": os.cpu_count()}
    data.update({JSON_KEYS[step]: round(results[large][step].wall, 3) for step in STEPS})
    data["cpu_s"] = {JSON_KEYS[step]: round(results[large][step].cpu, 3) for step in STEPS}
    data["baseline_trials"] = small
    data["baseline"] = {JSON_KEYS[step]: round(results[small][step].wall, 3) for step in STEPS}
    data["growth"] = {JSON_KEYS[step]: round(results[large][step].wall / results[small][step].wall, 3) for step in STEPS}
    data["size_ratio"] = round(large / small, 3)
    data["goal_ratio"] = {JSON_KEYS[step]: round(results[large][step].wall / (goal * large / GOAL_TRIALS), 3)
                          for step, goal in GOALS_S.items()}
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=None, help="comma-separated trial counts, smallest first "
                        "(default 1000,10469)")
    parser.add_argument("--trials", type=int, default=None,
                        help="the run size of interest: --sizes N/10,N (the smaller one is the baseline of the growth)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the figures instead of tables")
    parser.add_argument("--fsync", choices=["committed", "none"], default=None,
                        help="core.fsync of the recorded runs (default: a new lineage's, committed)")
    parser.add_argument("--slices", type=int, default=10, help="slices each run is recorded in, sizes in turn")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the audits (the median is shown)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic runs")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs and reports in this folder")
    args = parser.parse_args()
    if args.trials is not None and args.sizes is not None:
        parser.error("give --trials or --sizes, not both")
    if args.trials is not None:
        sizes = [max(2, args.trials // 10), args.trials]
    else:
        sizes = sorted(int(x) for x in (args.sizes or "1000,10469").split(","))
    if args.fsync is not None:
        lineage_module.DURABLE_FSYNC = args.fsync
    if len(sizes) < 2 or sizes[0] < 2:
        parser.error("--sizes needs at least two sizes of 2 trials or more")
    if args.slices < 1 or args.slices > sizes[0] or args.reps < 1:
        parser.error("--slices must be between 1 and the smallest size, --reps at least 1")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="harness-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        results = measure(sizes, args.seed, args.slices, args.reps, folder)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(as_json(sizes, results, lineage_module.DURABLE_FSYNC)))
        return 0
    print(f"lineage at scale: synthetic collision runs, seed {args.seed}, {os.cpu_count()} CPUs, "
          f"core.fsync={lineage_module.DURABLE_FSYNC}; recorded in {args.slices} slices in turn, "
          f"audits: median of {args.reps}")
    print(table(sizes, results))
    print(goal_lines(sizes, results))
    print("growth = time(largest) / time(smallest), of the wall clock and of the CPU time (this process and\n"
          "its children: git, the CLI); at most linear when growth <= size ratio. On a shared machine the\n"
          "wall clock also measures the load; the CPU time much less so.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
