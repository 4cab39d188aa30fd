"""Lineage at scale: record, replay --verify, analyze and report at two or more run sizes.

For each size N (default 1,000 and 10,469 trials) a synthetic run of the
`collision` recipe (see `bench/synthetic_lineage.py`: real knob diffs, proposed
and outcome events, best moves, a mix of labels, agents, specialists and
fidelities) is recorded through the lineage API the way the loop records it,
then audited the ways a user would:

* record: every trial's git work (the loop's calls, no sandbox), total and per trial;
* replay (API): `harness.replay.replay(run)`, the full verification plus the keep rule;
* replay --verify (CLI): `python -m harness.cli replay RUN --verify`;
* analyze --json (CLI): `python -m harness.cli analyze RUN --json`;
* report --html (CLI): `python -m harness.cli report RUN --html FILE`.

Every audit must succeed (the run verifies, the JSON parses, the HTML is
written), else the script stops with an error. The table shows seconds and
milliseconds per trial at each size, and the growth from the smallest to the
largest size next to the size ratio: growth <= size ratio means at most linear.
CLI rows include the start of a Python interpreter (about a second).

    python bench/lineage_scale.py [--sizes 1000,10469] [--seed 0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic_lineage import plan_trials, record_plan  # noqa: E402

from harness.replay import replay  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["record", "replay (API)", "replay --verify (CLI)", "analyze --json (CLI)", "report --html (CLI)"]


def cli(*args: str) -> tuple[float, str]:
    """Run `python -m harness.cli ARGS` with this tree first on the path; (seconds, stdout)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: harness {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:] or done.stdout[-2000:]}")
    return seconds, done.stdout


def measure(size: int, seed: int, folder: Path) -> dict[str, float]:
    """Seconds per step for one run of `size` trials."""
    run_dir = folder / f"run-{size}"
    plan = plan_trials(size, seed)
    times: dict[str, float] = {}
    started = time.perf_counter()
    record_plan(run_dir, plan, run_id=f"synthetic-{size}")
    times["record"] = time.perf_counter() - started

    started = time.perf_counter()
    audit = replay(run_dir)
    times["replay (API)"] = time.perf_counter() - started
    if not audit.verified or len(audit.trials) != size:
        raise SystemExit(f"error: the {size}-trial run does not verify: {audit.problems[:5]}")

    times["replay --verify (CLI)"], _ = cli("replay", str(run_dir), "--verify")
    times["analyze --json (CLI)"], out = cli("analyze", str(run_dir), "--json")
    if json.loads(out)["trials"] != size:
        raise SystemExit(f"error: analyze saw {json.loads(out)['trials']} trials, not {size}")
    html = folder / f"report-{size}.html"
    times["report --html (CLI)"], _ = cli("report", str(run_dir), "--html", str(html))
    if html.stat().st_size == 0:
        raise SystemExit("error: the report is empty")
    return times


def table(sizes: list[int], results: dict[int, dict[str, float]]) -> str:
    small, large = sizes[0], sizes[-1]
    size_ratio = large / small
    head = f"{'step':<24}" + "".join(f"{f'{n} trials s':>16}{'ms/trial':>10}" for n in sizes)
    head += f"{'growth':>9}{'size ratio':>12}  verdict"
    lines = [head, "-" * len(head)]
    for step in STEPS:
        row = f"{step:<24}"
        for n in sizes:
            seconds = results[n][step]
            row += f"{seconds:>16.2f}{seconds / n * 1000:>10.2f}"
        growth = results[large][step] / results[small][step]
        verdict = "at most linear" if growth <= size_ratio else "superlinear"
        row += f"{growth:>9.2f}{size_ratio:>12.3f}  {verdict}"
        lines.append(row)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10469", help="comma-separated trial counts, smallest first")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic runs")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs and reports in this folder")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    if len(sizes) < 2 or sizes[0] < 2:
        parser.error("--sizes needs at least two sizes of 2 trials or more")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="harness-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        results = {n: measure(n, args.seed, folder) for n in sizes}
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"lineage at scale: synthetic collision runs, seed {args.seed}, {os.cpu_count()} CPUs")
    print(table(sizes, results))
    print("growth = time(largest) / time(smallest); at most linear when growth <= size ratio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
