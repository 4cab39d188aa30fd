"""A run's folder: its lock, its place in the run registry, its prepared data, whether
its creation was cut short, and the name a new run gets."""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from harness.evaluator_code import load_entry, takes_keyword
from harness.run_registry import register, registry_file
from harness.trial_exec import RunPaths
from harness.types import RecipeSpec
from trajectories.lineage import Lineage, LineageError


class RunError(Exception):
    """The run cannot start or continue; the message says why and what to do."""


def prepare_data(spec: RecipeSpec, paths: RunPaths, fidelity: str | None = None) -> None:
    """Run the evaluator's `prepare` into a fresh folder, then move it into place in one
    rename: a run killed while preparing never finds half its data (the held-out labels
    folder exists only once everything is written). A `prepare` that takes a `fidelity`
    keyword is told the run's level (the baseline's), e.g. to make a small data set
    for a CPU level; every trial of the run sees the same data."""
    partial = paths.scratch / "data.partial"
    for folder in (partial, paths.data):
        if folder.exists():
            shutil.rmtree(folder)
    folders = [partial / p.relative_to(paths.data) for p in (paths.train_data, paths.heldout_inputs,
                                                              paths.heldout_labels)]
    for folder in folders:
        folder.mkdir(parents=True)
    prepare = load_entry(paths.evaluator, spec.evaluator.prepare)
    if fidelity is not None and takes_keyword(prepare, "fidelity"):
        prepare(*folders, fidelity=fidelity)
    else:
        prepare(*folders)
    os.rename(partial, paths.data)


def interrupted_creation(run_dir: Path) -> bool:
    """Whether `run_dir` is a run whose creation was cut short: its lock was taken (the
    first thing `Run.create` does) but its ledger never started (no run.json)."""
    if not (RunPaths(run_dir).scratch / "lock").is_file():
        return False
    try:
        with Lineage.open(run_dir) as lineage:
            return lineage.ledger_head() is None
    except LineageError:  # killed before `git init` finished
        return True


def refuse_interrupted_creation(run_dir: Path) -> None:
    """A `RunError` saying what to do when `run_dir`'s creation was cut short."""
    if interrupted_creation(run_dir):
        # A creation still under way holds the lock: that gets "another harness process is running".
        os.close(take_run_lock(RunPaths(run_dir)))
        raise RunError(
            f"{run_dir} was interrupted while it was being created (before its baseline was recorded): "
            f"nothing in it can be resumed; remove it (rm -r {run_dir}) and start it again"
        )


def register_run(run_dir: Path, note: Callable[[str], None]) -> None:
    """Make the run known to the trials of other runs, whose local sandbox then hides it."""
    try:
        register(run_dir)
    except OSError as exc:
        note(f"warning: cannot record this run in {registry_file()} ({exc}); the local sandbox "
                      "of other runs will not hide its held-out data (set HARNESS_STATE_DIR to a writable folder)")


def take_run_lock(paths: RunPaths) -> int:
    """The run's lock (`.harness/lock`, flock), held by whoever writes the run: `run`, `--resume`,
    `replay --rerun`. Returns its descriptor (closing it releases the lock); RunError when taken."""
    paths.scratch.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.scratch / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunError(f"another harness process is running on {paths.run_dir} (lock held)") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {platform.node()}\n".encode())
    return fd


def default_run_id(recipe: str, out: Path) -> str:
    """RECIPE-<UTC time>, with a counter when a run of the same second exists."""
    stem = f"{recipe}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"
    candidate, n = stem, 1
    while (out / candidate).exists():
        n += 1
        candidate = f"{stem}-{n}"
    return candidate
