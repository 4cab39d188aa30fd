"""The cgroups of a phase of the local sandbox; its memory cgroup caps all of its processes together.

`RLIMIT_DATA` caps each process on its own: a phase that forks eight workers
may use eight times `memory_mb`, and shared memory (`/dev/shm`, `MAP_SHARED`)
counts nowhere. A memory cgroup counts every page the phase's processes
touch, shared and tmpfs pages included, and the kernel's OOM killer acts
inside it at the cap, never on the host's other processes.

Where it comes from, in order:

1. **cgroup v2** (`/sys/fs/cgroup`, when its `cgroup.subtree_control` lists
   `memory`): `memory.max` = the cap, `memory.swap.max` = 0 (no swap, as the
   Docker sandbox), `memory.oom.group` = 1 (an OOM kill takes the whole phase,
   so a half-killed phase cannot go on as if nothing happened). When the pids
   controller is there too, both caps live in the one phase cgroup.
2. **cgroup v1** (`/sys/fs/cgroup/memory`): `memory.limit_in_bytes` and, with
   swap accounting, `memory.memsw.limit_in_bytes` = the cap.
3. **Neither** (no cgroup file system, or not allowed to make cgroups: not
   root): only the per-process `RLIMIT_DATA` applies; the sandbox says so once
   and `memory_base` is None. That is the documented fallback.

An OOM kill is read from the cgroup's counters (`memory.events` `oom_kill`,
v1 `memory.oom_control` `oom_kill`), so the phase is labelled `oom` even when
the process the kernel killed was a worker and the phase failed afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sandboxes.pids_cgroup import CGROUP_ROOT, PhaseCgroup, read_counter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryBase:
    """Where phase memory cgroups are made."""

    path: Path
    version: int
    """1 or 2."""


def find_memory_base(root: Path = CGROUP_ROOT) -> MemoryBase | None:
    """The hierarchy phase memory cgroups are made in, or None where none can be made here."""
    candidates = []
    try:
        if "memory" in (root / "cgroup.subtree_control").read_text().split():
            candidates.append(MemoryBase(root, 2))
    except OSError:
        pass
    if (root / "memory" / "cgroup.procs").is_file():
        candidates.append(MemoryBase(root / "memory", 1))
    for base in candidates:
        try:
            PhaseCgroup(base.path, settings=memory_settings(base.version, 64 << 20), optional=OPTIONAL).remove()
        except OSError as exc:
            log.debug("memory cgroup: cannot use %s: %s", base.path, exc)
            continue
        return base
    return None


OPTIONAL = frozenset({"memory.swap.max", "memory.oom.group", "memory.memsw.limit_in_bytes"})
"""Control files that exist only with swap accounting or on newer kernels."""


def memory_settings(version: int, limit_bytes: int) -> list[tuple[str, str]]:
    """The control files that cap a cgroup's memory at `limit_bytes`, in the order to write them."""
    if version == 2:
        return [("memory.max", str(limit_bytes)), ("memory.swap.max", "0"), ("memory.oom.group", "1")]
    return [("memory.limit_in_bytes", str(limit_bytes)), ("memory.memsw.limit_in_bytes", str(limit_bytes))]


def oom_kills(cgroup: Path, version: int) -> int:
    """How many processes the OOM killer killed in the cgroup (0 when not reported)."""
    return read_counter(cgroup / ("memory.events" if version == 2 else "memory.oom_control"), "oom_kill")


class PhaseCgroups:
    """The cgroups one phase joins: its pids cgroup and its memory cgroup (the same one on
    cgroup v2 with both controllers), where this machine gives them; removed after the phase."""

    def __init__(self, pids_base: Path | None, memory_base: MemoryBase | None, max_pids: int, memory_bytes: int) -> None:
        self.pids = PhaseCgroup(pids_base, max_pids) if pids_base is not None else None
        self.memory: PhaseCgroup | None = None
        self.memory_version = memory_base.version if memory_base is not None else 0
        self.memory_bytes = memory_bytes
        try:
            if memory_base is not None:
                settings = memory_settings(memory_base.version, memory_bytes)
                if self.pids is not None and memory_base.path == pids_base:
                    self.pids.write(settings, OPTIONAL)
                    self.memory = self.pids
                else:
                    self.memory = PhaseCgroup(memory_base.path, settings=settings, optional=OPTIONAL)
        except OSError:
            self.remove()
            raise

    def _all(self) -> list[PhaseCgroup]:
        return list({id(c): c for c in (self.pids, self.memory) if c is not None}.values())

    @property
    def procs_files(self) -> list[str]:
        """`cgroup.procs` of each cgroup, for the phase to join before anything of the trial runs."""
        return [str(c.procs_file) for c in self._all()]

    def oom_kills(self) -> int:
        return oom_kills(self.memory.path, self.memory_version) if self.memory is not None else 0

    def enforced(self, max_pids: int) -> dict[str, int]:
        """What the cgroups capped, for the phase's recorded limits."""
        out: dict[str, int] = {}
        if self.pids is not None:
            out["pids"] = max_pids
            out["pids_refused"] = self.pids.refused_forks()
        if self.memory is not None:
            out["memory_cgroup_bytes"] = self.memory_bytes
            out["oom_kills"] = self.oom_kills()
        return out

    def remove(self) -> None:
        for cgroup in self._all():
            cgroup.remove()
