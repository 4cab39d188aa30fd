"""What runs on the Ray node that executes a phase (the driver side is `ray_cluster`).

`run_shipped_phase` is the body of the Ray task. On the node Ray picked it

1. tells the driver's `PlacementBook` where it runs (node, worker pid, GPUs),
   so that a lost worker can be named even though it can no longer speak;
2. unpacks every mount's archive into a private folder `harness-ray-*` of the
   node's temp dir and points the request's mounts, log and phase roots there;
3. runs the inner sandbox (local or Docker, chosen by the driver) with the GPU
   ids *Ray* assigned on this node (`ray.get_gpu_ids()`), never the driver's;
4. packs the read-write mounts back, bounded like the way in, and returns
   them with the `PhaseResult` and the kept log; the private folder goes.

A worker killed mid-phase runs no `finally`: the phase it started would keep
running (the inner sandbox enforces the wallclock from inside the dead
worker) and hold its CPUs or GPUs. So each task starts a small watchdog
process in a session of its own, holding the read end of a pipe whose write end
only the worker has. When the task ends normally it writes `done`; when the
pipe closes without it (the worker died), the watchdog SIGKILLs every process
whose working directory or environment lies in the private folder (with the
local sandbox that includes the phase's PID-namespace init, which takes the
whole namespace with it), removes the Docker containers labelled with the
attempt id, and removes the folder.

Ray is imported lazily: importing this module costs nothing on machines without it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness import __version__
from harness.types import Frozen
from sandboxes.base import PhaseRequest, PhaseResult, Sandbox
from sandboxes.errors import SandboxError, SandboxUnavailable
from sandboxes.local import force_remove
from sandboxes.mount_archive import pack, unpack

log = logging.getLogger(__name__)

ATTEMPT_LABEL = "harness.attempt"
"""Label of a phase's Docker container: the attempt id, for the watchdog."""

PRIVATE_PREFIX = "harness-ray-"
"""Name prefix of the per-task folder in the node's temp dir."""


class InnerSandbox(Frozen):
    """The sandbox that runs the phase on the node."""

    kind: Literal["local", "docker"]
    """`local` (process sandbox) or `docker` (hardened container)."""
    image: str | None = None
    """For `docker`: the image id (the node must hold this very image)."""


class ShippedPhase(Frozen):
    """Everything a node needs besides the mount archives (those travel as task arguments)."""

    request: PhaseRequest
    """The driver's request; its mount sources and log path are the driver's and are rewritten on the node."""
    inner: InnerSandbox
    """Which sandbox runs the phase on the node."""
    attempt: str
    """Unique id of this attempt (placement book key, container label)."""
    max_archive_bytes: int = Field(gt=0)
    """Cap on the read-write mounts packed back (all of them together)."""
    harness_version: str
    """The driver's harness version; the node refuses to run with another one."""


class Placement(Frozen):
    """Where an attempt runs."""

    node_ip: str
    """IP address of the node."""
    node_id: str
    """Ray's node id (hex)."""
    worker_pid: int
    """Pid of the Ray worker process that runs the task."""
    gpus: list[int] = Field(default_factory=list)
    """GPU ids Ray assigned to the task on that node."""

    def describe(self) -> str:
        gpus = f", GPUs {','.join(map(str, self.gpus))}" if self.gpus else ""
        return f"node {self.node_ip} ({self.node_id[:12]}), worker pid {self.worker_pid}{gpus}"


class WrittenMount(Frozen):
    """A read-write mount as the phase left it."""

    target: str
    """The mount's target name."""
    archive: bytes
    """The folder as tar bytes (`sandboxes.mount_archive`)."""


class PhaseReturn(Frozen):
    """What the task returns to the driver."""

    result: PhaseResult
    """The inner sandbox's measurements (its image, its host-measured wallclock)."""
    log: bytes
    """The kept log, as the inner sandbox wrote it (its sha256 is `result.log_sha256`)."""
    written: list[WrittenMount]
    """Every read-write mount of the request, in request order."""
    placement: Placement
    """Where the phase ran."""


class PlacementBook:
    """A Ray actor on the head node: attempt id -> where it runs (see the module docstring)."""

    def __init__(self) -> None:
        self._where: dict[str, Placement] = {}

    def started(self, attempt: str, placement: Placement) -> None:
        self._where[attempt] = placement

    def where(self, attempt: str) -> Placement | None:
        return self._where.get(attempt)

    def forget(self, attempt: str) -> None:
        self._where.pop(attempt, None)


def run_shipped_phase(shipped: ShippedPhase, book: Any, *archives: bytes) -> PhaseReturn:
    """The Ray task: run one phase on this node (module docstring, steps 1-4)."""
    import ray

    gpus = _assigned_gpus(ray.get_gpu_ids())
    placement = Placement(
        node_ip=ray.util.get_node_ip_address(),
        node_id=ray.get_runtime_context().get_node_id(),
        worker_pid=os.getpid(),
        gpus=gpus,
    )
    ray.get(book.started.remote(shipped.attempt, placement))
    if shipped.harness_version != __version__:
        raise SandboxUnavailable(
            f"{placement.describe()} has harness {__version__}, the driver {shipped.harness_version}; "
            "install the same version on every node"
        )
    request = shipped.request
    if len(archives) != len(request.mounts):
        raise SandboxError(f"{len(archives)} archives shipped for {len(request.mounts)} mounts")
    private = Path(tempfile.mkdtemp(prefix=PRIVATE_PREFIX))
    watchdog = _start_watchdog(private, shipped)
    try:
        mounts = []
        for mount, archive in zip(request.mounts, archives):
            place = private / "mounts" / mount.target
            unpack(archive, place, f"mount {mount.target!r}")
            mounts.append(mount.model_copy(update={"source": place}))
        here = request.model_copy(
            update={
                "mounts": mounts,
                "log_path": private / "phase.log",
                "limits": request.limits.model_copy(update={"gpus": gpus}),
                "labels": {**request.labels, ATTEMPT_LABEL: shipped.attempt},
            }
        )
        result = _inner_sandbox(shipped.inner, private / "roots").run(here)
        written = []
        budget = shipped.max_archive_bytes
        for mount in mounts:
            if not mount.read_only:
                archive = pack(Path(mount.source), budget, f"read-write mount {mount.target!r} after the phase")
                budget -= len(archive)
                written.append(WrittenMount(target=mount.target, archive=archive))
        log = Path(here.log_path).read_bytes()
        return PhaseReturn(result=result, log=log, written=written, placement=placement)
    finally:
        _stop_watchdog(watchdog)
        force_remove(private)


def _assigned_gpus(ids: list[Any]) -> list[int]:
    try:
        return [int(g) for g in ids]
    except ValueError:
        raise SandboxError(f"Ray assigned GPUs {ids} that are not numeric ids") from None


def _inner_sandbox(inner: InnerSandbox, roots: Path) -> Sandbox:
    from sandboxes import make_sandbox

    if inner.kind == "local":
        roots.mkdir()
        return make_sandbox("local", root_dir=roots)
    return make_sandbox("docker", image=inner.image)


# ----------------------------------------------------------------------
# The watchdog
# ----------------------------------------------------------------------


def _start_watchdog(private: Path, shipped: ShippedPhase) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "sandboxes.ray_node", str(private), shipped.attempt, shipped.inner.kind]
    # The watchdog imports this module from wherever this worker imported it.
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    try:
        # Its own session: Ray cleans up a dead worker's process group, which must not take the watchdog along.
        return subprocess.Popen(argv, stdin=subprocess.PIPE, start_new_session=True, close_fds=True, env=env)
    except OSError as exc:
        raise SandboxError(f"cannot start the phase watchdog: {exc}") from exc


def _stop_watchdog(watchdog: subprocess.Popen[bytes]) -> None:
    assert watchdog.stdin is not None
    try:
        watchdog.stdin.write(b"done")
        watchdog.stdin.close()
    except BrokenPipeError:
        # Only a watchdog that failed on its own closes the pipe first: say so, the phase itself is fine.
        log.warning("the phase watchdog exited early (status %s)", watchdog.poll())
    watchdog.wait()


def watch(private: Path, attempt: str, inner_kind: str) -> int:
    """The watchdog's body: wait for the worker; if it died mid-phase, clean up after it."""
    if sys.stdin.buffer.read() == b"done":
        return 0
    killed = _kill_processes_in(private)
    removed = _remove_containers(attempt) if inner_kind == "docker" else []
    force_remove(private)
    print(
        f"harness watchdog: the worker of attempt {attempt} died mid-phase; killed pids {killed}, "
        f"removed containers {removed}, removed {private}",
        file=sys.stderr,
    )
    return 0


def _kill_processes_in(private: Path, rounds: int = 50) -> list[int]:
    """SIGKILL every process whose cwd or environment lies in `private`, until none is left."""
    killed: list[int] = []
    for _ in range(rounds):
        found = [pid for pid in _pids() if pid != os.getpid() and _lives_in(pid, private)]
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass  # exited between the scan and the kill
        time.sleep(0.1)
    return killed


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _lives_in(pid: int, private: Path) -> bool:
    prefix = str(private) + os.sep
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:
        return False  # gone, or not ours to inspect (another user's process)
    return cwd == str(private) or cwd.startswith(prefix) or b"=" + prefix.encode() in environ


def _remove_containers(attempt: str) -> list[str]:
    from sandboxes.images import connect

    client = connect(30.0)
    try:
        removed = []
        for container in client.containers.list(all=True, filters={"label": f"{ATTEMPT_LABEL}={attempt}"}):
            container.remove(force=True)
            removed.append(container.short_id)
        return removed
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(watch(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
