"""Successive halving against plain full-fidelity trials, same agent, same compute budget.

For each seed, two runs of the `random` agent on a recipe (default `collision`),
through the `harness` command line:

- plain:   `harness run RECIPE --agent random --seed S --trials B` (every trial at full);
- halving: `harness run RECIPE --agent random --seed S --fidelity-policy halving --budget B`.

Printed side by side, per seed and as the mean over seeds: the best score at the
full level (`refs/heads/best`), the compute used (cost units and host-measured
phase seconds, the baseline not counted; and the wall time of the whole run),
and the trials per level. Each run's lineage is verified (`harness replay
--verify`); a run that does not verify stops the bench.

    python bench/fidelity_halving.py [--seeds 0,1,2] [--budget 20] [--out DIR] [--recipe collision]
    python bench/fidelity_halving.py --quick        # budget 4, seed 0: a check that it works
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.fidelity import spend_by_level, spent_units
from trajectories.lineage import Lineage

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunFigures:
    kind: str
    seed: int
    best_id: str | None
    best_score: float | None
    units: float
    """Cost units of every trial but the baseline."""
    trial_s: float
    """Host-measured phase seconds of every trial but the baseline."""
    run_s: float
    """Wall time of the whole `harness run` command."""
    per_level: dict[str, int]
    """Trials per level, the baseline not counted."""


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env)


def one_run(kind: str, recipe: str, seed: int, budget: float, out: Path, sandbox: str) -> RunFigures:
    run_id = f"{kind}-seed{seed}"
    args = ["run", recipe, "--agent", "random", "--seed", str(seed), "--sandbox", sandbox, "--out", str(out),
            "--run-id", run_id]
    if kind == "plain":
        args += ["--trials", str(int(budget))]
    else:
        args += ["--fidelity-policy", "halving", "--budget", f"{budget:g}"]
    start = time.monotonic()
    result = harness(*args)
    run_s = time.monotonic() - start
    (out / f"{run_id}.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"{kind} run of seed {seed} failed (exit {result.returncode}); see {out / run_id}.log:\n"
                         + (result.stdout + result.stderr)[-2000:])
    check = harness("replay", str(out / run_id), "--verify")
    if check.returncode != 0:
        raise SystemExit(f"{kind} run of seed {seed} does not verify:\n{check.stdout[-2000:]}")
    with Lineage.open(out / run_id) as lineage:
        records, best, info = lineage.records(), lineage.best(), lineage.run_info()
    best_record = next((r for r in records if r.trial.id == best), None)
    trials = [r for r in records if r.trial.id != "t0000"]
    return RunFigures(
        kind=kind,
        seed=seed,
        best_id=best,
        best_score=best_record.outcome.score if best_record and best_record.outcome else None,
        units=spent_units(info.recipe, records),
        trial_s=sum(p.wallclock_s for r in trials if r.outcome for p in r.outcome.phases),
        run_s=run_s,
        per_level={s.level: s.trials for s in spend_by_level(info.recipe, records)},
    )


def fmt(x: float | None, spec: str = ".4f") -> str:
    return "-" if x is None else format(x, spec)


def row(label: str, best: float | None, units: float, trial_s: float, run_s: float, levels: str) -> str:
    return f"{label:<16} {fmt(best):>10} {units:>8.2f} {trial_s:>9.0f} {run_s:>8.0f}  {levels}"


def table(runs: list[RunFigures]) -> str:
    lines = [
        f"{'run':<16} {'best full':>10} {'units':>8} {'trial s':>9} {'run s':>8}  trials per level (baseline not counted)",
    ]
    for f in runs:
        levels = ", ".join(f"{k} {v}" for k, v in f.per_level.items())
        lines.append(row(f"{f.kind} seed {f.seed}", f.best_score, f.units, f.trial_s, f.run_s, levels))
    for kind in ("plain", "halving"):
        mine = [f for f in runs if f.kind == kind]
        scores = [f.best_score for f in mine if f.best_score is not None]
        counts: dict[str, list[int]] = {}
        for f in mine:
            for level, n in f.per_level.items():
                counts.setdefault(level, []).append(n)
        levels = ", ".join(f"{k} {statistics.fmean(v):.1f}" for k, v in counts.items())
        lines.append(row(f"{kind} mean", statistics.fmean(scores) if scores else None,
                         statistics.fmean(f.units for f in mine), statistics.fmean(f.trial_s for f in mine),
                         statistics.fmean(f.run_s for f in mine), levels))
    pairs = [(h.best_score, p.best_score) for h in runs if h.kind == "halving"
             for p in runs if p.kind == "plain" and p.seed == h.seed
             if h.best_score is not None and p.best_score is not None]
    if pairs:
        wins = sum(1 for h, p in pairs if h > p)
        diff = statistics.fmean(h - p for h, p in pairs)
        lines.append(f"halving - plain best full score: mean {diff:+.4f}; halving higher in {wins} of {len(pairs)} seeds")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="collision", help="recipe to run (name or folder)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated run seeds")
    parser.add_argument("--budget", type=float, default=20.0, help="full-trial units per run")
    parser.add_argument("--out", type=Path, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--sandbox", default="local", choices=["local", "docker", "auto"])
    parser.add_argument("--quick", action="store_true", help="budget 4, first seed only")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    budget = args.budget
    if args.quick:
        seeds, budget = seeds[:1], 4.0
    out = args.out or Path(tempfile.mkdtemp(prefix="fidelity-halving-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"recipe {args.recipe}, agent random, budget {budget:g} full-trial units, seeds {seeds}; runs in {out}",
          flush=True)
    runs: list[RunFigures] = []
    for seed in seeds:
        for kind in ("plain", "halving"):
            figures = one_run(kind, args.recipe, seed, budget, out, args.sandbox)
            runs.append(figures)
            print(f"  {kind} seed {seed}: best {figures.best_id} {fmt(figures.best_score)}, "
                  f"{figures.units:.2f} units, {figures.run_s:.0f} s", flush=True)
    print()
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
