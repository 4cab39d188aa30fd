"""The Sandbox protocol: run one phase of one trial, isolated, and measure it.

A sandbox gets a `PhaseRequest` (command, folders with their access, limits)
and returns a `PhaseResult` measured by the host. It never decides a label:
the evaluator reads the result and decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from pydantic import Field

from harness.types import Frozen


class Mount(Frozen):
    source: Path
    """Folder on the host."""
    target: str
    """Name the phase sees it under: `workspace`, `out`, `eval`, `heldout`, `preds` ...

    The local sandbox places it at `<phase root>/<target>`; the Docker sandbox at
    `/<target>`. Commands refer to it through the environment variable
    `HARNESS_<TARGET>` (upper-cased) that the sandbox sets to its real path.
    """
    read_only: bool = True
    """Whether the phase may write into it."""


class Limits(Frozen):
    wallclock_s: float = Field(gt=0)
    """Kill the phase (its whole process group or container) after this many host seconds."""
    memory_mb: int = Field(gt=0)
    """Memory cap."""
    output_bytes: int = Field(gt=0)
    """Keep at most this many bytes of stdout+stderr (the tail is kept)."""
    pids: int = Field(default=256, gt=0)
    """Process cap, where enforceable."""
    cpus: float = Field(default=2.0, gt=0)
    """CPU cap, where enforceable."""
    gpus: list[int] = Field(default_factory=list)
    """GPU ids given to the phase."""


class PhaseRequest(Frozen):
    phase: str
    """`preflight`, `train` or `eval` (for labels and logs)."""
    command: list[str]
    """argv; `python` is the sandbox's interpreter, and `{target}` in an element is
    replaced by the real path of the mount with that target (e.g. `{eval}/predict.py`)."""
    workdir: str
    """Target name of the mount that is the working directory."""
    mounts: list[Mount]
    """Folders the phase sees; nothing else of the run is visible."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment (never secrets: the sandbox starts from an empty environment)."""
    limits: Limits
    """Limits the sandbox enforces."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Run and trial id etc., for finding orphans."""
    hidden: list[Path] = Field(default_factory=list)
    """Host paths the phase must not see even by their path (the run's lineage, held-out
    data, evaluator copy, other trials). The Docker sandbox shows nothing but the mounts
    anyway; the local sandbox covers these with empty read-only mounts where it can
    (`LocalSandbox.mount_isolated`). Mounts inside a hidden folder stay visible."""
    log_path: Path
    """Host file where the (capped) log is written."""
    network: bool = False
    """Whether the phase may reach the network. Trial phases never do; an outside agent's command
    does (its model API). Only the local sandbox grants it; the Docker sandbox refuses such a request."""


class PhaseResult(Frozen):
    exit_code: int | None
    """Exit status; negative for a signal (as in subprocess), None if unknown."""
    wallclock_s: float
    """Host-measured seconds from start to exit."""
    timed_out: bool
    """Killed because the wallclock cap was reached."""
    oom: bool
    """Killed or failed for lack of memory."""
    output_bytes: int
    """Bytes the phase wrote to stdout+stderr in total."""
    output_truncated: bool
    """True when more than the cap was written (the log keeps the tail)."""
    log_sha256: str
    """sha256 of the kept log file."""
    log_tail: str
    """Last ~40 lines (at most 4 KB) of the kept log."""
    image: str
    """What ran it: `local:<python version>` or a Docker image id."""
    limits: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """What the sandbox actually enforced (the Docker sandbox: the container's
    memory, swap, CPUs, pids, tmpfs sizes, user, ...); empty where not reported."""


def substitute_mounts(request: PhaseRequest, real_path: Callable[[str], str]) -> list[str]:
    """argv with each `{target}` of a mount replaced by where the sandbox placed it."""
    argv = list(request.command)
    for mount in request.mounts:
        placeholder = "{" + mount.target + "}"
        argv = [arg.replace(placeholder, real_path(mount.target)) for arg in argv]
    return argv


@runtime_checkable
class Sandbox(Protocol):
    name: str

    def run(self, request: PhaseRequest) -> PhaseResult:
        """Run one phase to completion (or to its limits) and clean up after it."""
        ...
