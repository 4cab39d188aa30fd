"""A pids cgroup per phase of the local sandbox: a process cap that holds for root.

`RLIMIT_NPROC` counts per user and root ignores it, so a fork bomb of a phase
running as root (CI) would fill the host's process table. A pids cgroup caps
the number of tasks of one phase whoever runs it: `fork` fails with EAGAIN at
`pids.max`. Found at the root of the pids hierarchy: cgroup v1
(`/sys/fs/cgroup/pids`) or v2 (`/sys/fs/cgroup`, when its `subtree_control`
lists `pids`). Needs the right to create cgroups there (root, in practice);
`find_pids_base` returns None where that fails, and the sandbox then runs
without the cap (and says so once).

The phase joins its cgroup itself (the jail, or the sandbox's wrapper, writes
`0` to `cgroup.procs` before anything of the trial runs), so every process of
the phase is in it from the start. Only the jail makes that binding: without
it the cgroup file system stays writable and root in the phase could raise its
own `pids.max`.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
REMOVE_WAIT_S = 5.0
"""After the phase, how long to wait for its last tasks to be gone before giving up on the cgroup."""


def find_pids_base(root: Path = CGROUP_ROOT) -> Path | None:
    """The folder phase cgroups are made in, or None when none can be made here."""
    candidates = []
    if (root / "pids" / "cgroup.procs").is_file():
        candidates.append(root / "pids")
    try:
        if "pids" in (root / "cgroup.subtree_control").read_text().split():
            candidates.append(root)
    except OSError:
        pass
    for base in candidates:
        try:
            PhaseCgroup(base, 1).remove()
        except OSError as exc:
            log.debug("pids cgroup: cannot use %s: %s", base, exc)
            continue
        return base
    return None


class PhaseCgroup:
    """One phase's cgroup (pids, by default): made with its caps, joined by the phase, removed after it.

    `settings` are (control file, value) pairs written in order; a file that does not
    exist is skipped when its name is in `optional` (e.g. swap accounting turned off)."""

    def __init__(
        self,
        base: Path,
        max_pids: int | None = None,
        settings: list[tuple[str, str]] | None = None,
        optional: frozenset[str] = frozenset(),
    ) -> None:
        self.path = base / f"harness-phase-{uuid.uuid4().hex[:12]}"
        self.path.mkdir()
        wanted = ([("pids.max", str(max_pids))] if max_pids is not None else []) + list(settings or [])
        try:
            self.write(wanted, optional)
        except OSError:
            self.path.rmdir()
            raise

    def write(self, settings: list[tuple[str, str]], optional: frozenset[str] = frozenset()) -> None:
        """Write control files in order (an absent optional one is skipped)."""
        for name, value in settings:
            if name in optional and not (self.path / name).exists():
                continue
            (self.path / name).write_text(value)

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def refused_forks(self) -> int:
        """How many forks the cap refused (`pids.events`: `max N`); 0 when not reported."""
        return read_counter(self.path / "pids.events", "max")

    def remove(self) -> None:
        """SIGKILL whatever is left in the cgroup and remove it (a warning if it stays busy)."""
        deadline = time.monotonic() + REMOVE_WAIT_S
        while True:
            for pid in self._pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    log.warning("pids cgroup: cannot remove %s: %s", self.path, exc)
                    return
            time.sleep(0.05)

    def _pids(self) -> list[int]:
        try:
            return [int(line) for line in self.procs_file.read_text().split()]
        except (OSError, ValueError):
            return []


def read_counter(file: Path, key: str) -> int:
    """The value of the `key N` line of a cgroup's flat-keyed file; 0 when absent or unreadable."""
    try:
        for line in file.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0
