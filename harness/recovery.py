"""What `--resume` repairs after an orchestrator died (SIGKILL, power loss) mid-run.

The loop is write-ahead (DESIGN.md, trial loop): a trial's proposal is one
atomic ledger transaction that also creates `refs/trials/<id>`, its outcome
another, and `best` moves after the outcome. So a kill leaves the lineage in
one of a few consistent states, and what is left to do here is small:

* writes cut short: git's temporary object files, the scratch index files of
  `git apply`, ref lock files (a whole process group killed takes its `git
  update-ref` with it); nothing references them, they are removed;
* phases of the killed orchestrator still running (the local sandbox's process
  trees outlive it; Docker containers are reaped by the Docker sandbox): they
  would write into the folders of the trial's re-run, so they are killed, and
  their phase roots removed;
* `best` not moved after a recorded keep: moved to the last kept trial at the
  run's level;
* a trial ref without its ledger event (not made by this version, which
  writes both in one transaction; a lineage copied mid-write could hold one):
  set aside under `refs/stray/`, so that the trial id can be proposed again and
  nothing is lost.

Every function runs only with the run's lock held: then no other harness
process writes to the run.
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
import time
from pathlib import Path

from harness.fidelity import kept_by_level
from harness.types import TRIAL_ID_PATTERN
from sandboxes.local import PHASE_ROOT_PREFIX, force_remove
from trajectories.lineage import Lineage

STRAGGLER_WAIT_S = 5.0
"""How long a killed phase process or a dying `git` may take to go away."""


def stop_stray_phases(trials_scratch: Path, phase_roots_dir: Path | None = None) -> list[str]:
    """Kill the phase processes of a dead orchestrator and remove their phase roots.

    A phase of the local sandbox is found by its environment: its read-write
    mounts (`HARNESS_WORKSPACE`, `HARNESS_OUT`, `HARNESS_PREDS`) are in a
    trial's folder of `trials_scratch`, which no other run shares (a run id
    can repeat across folders, a run folder cannot). A phase root is found by a mount link into
    `trials_scratch` (`phase_roots_dir`: where the sandbox makes them, the
    system temp folder by default). Returns what was stopped or removed.
    """
    trials_scratch = trials_scratch.resolve()
    stopped: list[str] = []
    pids = _phase_processes(trials_scratch)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            stopped.append(f"process {pid}")
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STRAGGLER_WAIT_S
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    roots_dir = phase_roots_dir or Path(tempfile.gettempdir())
    for root in roots_dir.glob(PHASE_ROOT_PREFIX + "*"):
        if _links_into(root, trials_scratch):
            force_remove(root)
            stopped.append(f"phase root {root}")
    return stopped


def _phase_processes(trials_scratch: Path) -> list[int]:
    """Processes with a `HARNESS_*` mount variable inside a trial folder of `trials_scratch`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone already, or not ours to read
            continue
        for var in environ.split(b"\0"):
            name, _, value = var.partition(b"=")
            if name.startswith(b"HARNESS_") and _in_trial_folder(Path(os.fsdecode(value)), trials_scratch):
                pids.append(int(entry.name))
                break
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has stopped: only its parent's wait is missing


def _in_trial_folder(path: Path, trials_scratch: Path) -> bool:
    """Whether `path` lies in a trial's scratch folder (`<trials>/t0003/...`); the folders of
    `replay --rerun` (`rerun-t0003`), which runs beside a run without its lock, are not."""
    if trials_scratch not in path.parents:
        return False
    return re.match(TRIAL_ID_PATTERN, path.relative_to(trials_scratch).parts[0]) is not None


def _links_into(root: Path, trials_scratch: Path) -> bool:
    try:
        entries = list(os.scandir(root))
    except OSError:  # removed meanwhile by the phase's own sandbox
        return False
    return any(entry.is_symlink() and _in_trial_folder(Path(os.readlink(entry.path)), trials_scratch)
               for entry in entries)


def repair_best(lineage: Lineage, level: str) -> str | None:
    """Move `best` to the last trial kept at the run's level (the baseline's) when a kill
    came between that keep and the move of `best`; returns a note. Keeps at other
    fidelity levels never become `best` (docs/multi-fidelity.md)."""
    expected = kept_by_level(lineage).get(level)
    current = lineage.best()
    if expected is None or current == expected:
        return None
    lineage.set_best(expected)
    return (
        f"best was {current or 'unset'} but the last kept trial at level {level!r} is {expected} (the run "
        f"stopped after recording its outcome, before moving best): best now points at {expected}"
    )
