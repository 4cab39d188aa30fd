"""The Ray sandbox: each phase is a Ray task on whichever node Ray picks.

`RaySandbox` implements the Sandbox protocol on the driver (the machine that
runs `harness run` and owns the lineage):

* **What travels.** Each mount's folder is packed into a tar archive
  (`sandboxes.mount_archive`) and sent with the task; identical read-only
  archives (the training data, the evaluator, held-out inputs) are put into
  the object store once and reused (at most `max_archive_bytes` of them
  stay). The lineage never travels: trials are materialised on the driver,
  and only the workspace of one seed goes out.
  The node unpacks, runs the inner sandbox and packs the read-write mounts
  back (`sandboxes.ray_node`); the driver makes each host folder of a
  read-write mount hold exactly what came back and writes the kept log to
  `request.log_path`. Read-only mounts are never written back. Archives over
  `max_archive_bytes` (per direction, all mounts together; default
  `HARNESS_RAY_MAX_ARCHIVE_MB`, else 512 MiB) are refused with the sizes named.
* **Resources.** The task asks Ray for `num_cpus = limits.cpus`, `memory =
  limits.memory_mb` and `num_gpus = gpus_per_phase` (or, when not given,
  `len(limits.gpus)`); on the node the inner sandbox gets the GPU ids Ray
  assigned there. A request that no alive node could ever satisfy is
  refused at once (`SandboxUnavailable`) instead of waiting forever.
* **Failures.** Ray's own task retries are off (`max_retries=0`): the harness
  owns retries. A lost worker or node, a lost object, a task that did not
  finish within `wallclock_s + queue_grace_s`, or an error on the node
  raises `SandboxError` naming the node and worker pid (from the
  `PlacementBook` actor on the head node, to which every task reports first),
  so the loop retries the trial and finally records `harness_error`. A node
  with another harness version, a missing Docker image or no NVIDIA runtime
  raises `SandboxUnavailable` (the run stops; retrying cannot help), and so
  does a lost connection to the cluster (`--resume` continues the run).

Ray is imported lazily: without it, only `connect` fails, with the extra to install.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

from harness import __version__
from sandboxes.base import Mount, PhaseRequest, PhaseResult
from sandboxes.errors import SandboxError, SandboxUnavailable
from sandboxes.mount_archive import pack, replace_contents
from sandboxes.ray_node import InnerSandbox, PhaseReturn, Placement, PlacementBook, ShippedPhase, run_shipped_phase

DEFAULT_MAX_ARCHIVE_MB = 512
"""Cap on the archives of one phase, per direction, unless HARNESS_RAY_MAX_ARCHIVE_MB says otherwise."""

DEFAULT_QUEUE_GRACE_S = 300.0
"""Beyond the wallclock cap, how long a phase may wait for a node and for its transfers."""

INSTALL_HINT = "pip install 'harness[cluster]'"
"""How to get Ray on the driver."""


HEAD_NODE_RESOURCE = "node:__internal_head__"
"""Ray's resource that only the head node has: the placement book lives there."""


CLIENT_INIT_ATTEMPTS = 3
"""Tries of a Ray Client connection whose server-side initialisation failed."""


def connect(address: str, connect_timeout_s: float = 10.0) -> str:
    """Connect this process to a Ray cluster; returns what was connected to, for messages.

    `address`: `ray://HOST:PORT` (Ray Client), or `auto`: the cluster in
    `RAY_ADDRESS`, else a cluster started on this machine with `ray start`.
    Raises `SandboxUnavailable` with one clear sentence when Ray is missing
    or no cluster answers.
    """
    try:
        import ray
    except ImportError:
        raise SandboxUnavailable(f"--cluster needs Ray on this machine: {INSTALL_HINT}") from None
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS") or "auto"
    if address.startswith("ray://"):
        _check_reachable(address, connect_timeout_s)
    elif address != "auto":
        raise SandboxUnavailable(f"--cluster wants ray://HOST:PORT or auto, not {address!r}")
    if ray.is_initialized():
        return address
    try:
        for attempt in range(CLIENT_INIT_ATTEMPTS):
            try:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
                break
            except ConnectionError as exc:
                # A busy head's client server may fail to start this client's server on the
                # first try ("Initialization failure from server"); that one is worth another go.
                if "Initialization failure" not in str(exc) or attempt + 1 == CLIENT_INIT_ATTEMPTS:
                    raise
                time.sleep(2.0)
    except ConnectionError as exc:
        why = "RAY_ADDRESS is unset and no `ray start` cluster runs on this machine" if address == "auto" else ""
        raise SandboxUnavailable(f"no Ray cluster answers at {address}: {why or _first_line(exc)}") from None
    except (RuntimeError, ValueError) as exc:  # e.g. Ray versions of driver and cluster differ
        raise SandboxUnavailable(f"cannot use the Ray cluster at {address}: {_first_line(exc)}") from None
    return address


def max_archive_bytes_from_env() -> int:
    """HARNESS_RAY_MAX_ARCHIVE_MB in bytes (default 512 MiB)."""
    text = os.environ.get("HARNESS_RAY_MAX_ARCHIVE_MB", str(DEFAULT_MAX_ARCHIVE_MB))
    if not text.isdigit() or int(text) == 0:
        raise SandboxUnavailable(f"HARNESS_RAY_MAX_ARCHIVE_MB must be a positive whole number of MiB, not {text!r}")
    return int(text) << 20


def _check_reachable(address: str, timeout_s: float) -> None:
    """Fail in seconds, not after Ray Client's 30 s of retries, when nothing listens."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise SandboxUnavailable(f"--cluster wants ray://HOST:PORT, not {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise SandboxUnavailable(f"no Ray cluster answers at {address}: {exc}") from None


class RaySandbox:
    """Runs each phase as a Ray task (module docstring). Connect first with `connect`."""

    def __init__(
        self,
        inner: InnerSandbox,
        *,
        address: str = "auto",
        gpus_per_phase: int | None = None,
        max_archive_bytes: int | None = None,
        queue_grace_s: float = DEFAULT_QUEUE_GRACE_S,
    ) -> None:
        self.address = connect(address)  # first: without Ray, or without a cluster, say so at once
        import ray

        self.inner = inner
        self.name = f"ray+{inner.kind}"
        self.gpus_per_phase = gpus_per_phase
        self.max_archive_bytes = max_archive_bytes or max_archive_bytes_from_env()
        self.queue_grace_s = queue_grace_s
        self._task = ray.remote(run_shipped_phase)
        self._book = (
            ray.remote(PlacementBook)
            .options(num_cpus=0, resources={HEAD_NODE_RESOURCE: 0.001}, max_restarts=0)
            .remote()
        )
        self._read_only: OrderedDict[bytes, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def run(self, request: PhaseRequest) -> PhaseResult:
        """Ship the phase to a node, wait for it, write its read-write mounts back."""
        import ray
        import ray.exceptions as rex

        gpus = self.gpus_per_phase if self.gpus_per_phase is not None else len(request.limits.gpus)
        self._check_feasible(request, gpus)
        attempt = uuid.uuid4().hex
        archives = self._pack_mounts(request)
        shipped = ShippedPhase(
            request=request,
            inner=self.inner,
            attempt=attempt,
            max_archive_bytes=self.max_archive_bytes,
            harness_version=__version__,
        )
        name = _task_name(request)
        ref = self._task.options(
            name=name,
            max_retries=0,
            retry_exceptions=False,
            num_cpus=request.limits.cpus,
            num_gpus=gpus,
            memory=request.limits.memory_mb << 20,
        ).remote(shipped, self._book, *archives)
        timeout = request.limits.wallclock_s + self.queue_grace_s
        try:
            returned: PhaseReturn = ray.get(ref, timeout=timeout)
        except rex.GetTimeoutError:
            ray.cancel(ref, force=True)
            raise SandboxError(
                f"{name}: no result within {timeout:.0f} s (wallclock cap + {self.queue_grace_s:.0f} s "
                f"for a free node and transfers) {self._where(attempt)}; the task was cancelled"
            ) from None
        except rex.RayTaskError as exc:
            raise _node_error(name, exc, self._where(attempt)) from None
        except rex.RayError as exc:
            # Worker or node lost, object lost, owner died, task cancelled ...: never the trial's fault.
            raise SandboxError(
                f"{name}: Ray lost the phase {self._where(attempt)}: {type(exc).__name__}: {_first_line(exc)}"
            ) from None
        except ConnectionError as exc:
            raise SandboxUnavailable(
                f"lost the connection to the Ray cluster at {self.address} ({exc}); "
                "continue the run with --resume once it is back"
            ) from None
        finally:
            self._book.forget.remote(attempt)
        self._write_back(request, returned)
        return returned.result

    # -- pieces -------------------------------------------------------------

    def _check_feasible(self, request: PhaseRequest, gpus: int) -> None:
        """Refuse at once what no alive node has, rather than queueing forever."""
        import ray

        limits = request.limits
        wanted = {"CPU": limits.cpus, "GPU": float(gpus), "memory": float(limits.memory_mb << 20)}
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        if any(all(res.get(key, 0.0) >= amount for key, amount in wanted.items() if amount) for res in nodes):
            return
        have = "; ".join(
            f"{res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs, {res.get('memory', 0) / (1 << 20):.0f} MB"
            for res in nodes
        )
        raise SandboxUnavailable(
            f"no node of the Ray cluster at {self.address} has {limits.cpus:g} CPUs, {gpus} GPUs and "
            f"{limits.memory_mb} MB memory for one phase (nodes: {have or 'none alive'})"
        )

    def _pack_mounts(self, request: PhaseRequest) -> list[Any]:
        """One archive per mount, in request order; read-only ones as shared object refs."""
        archives: list[Any] = []
        left = self.max_archive_bytes
        for mount in request.mounts:
            source = Path(mount.source)
            what = f"mount {mount.target!r} ({source})"
            if mount.read_only and not source.is_dir():
                raise SandboxError(f"read-only mount {mount.target!r}: {source} is not a folder")
            archive = pack(source, left, what)
            left -= len(archive)
            archives.append(self._shared(archive) if mount.read_only else archive)
        return archives

    def _shared(self, archive: bytes) -> Any:
        """The object ref of a read-only archive, put once while it is among the recently used.

        What stays pinned in the object store is bounded by `max_archive_bytes`;
        the least recently used archives go first.
        """
        import hashlib

        import ray

        key = hashlib.sha256(archive).digest()
        with self._lock:
            if key not in self._read_only:
                self._read_only[key] = (ray.put(archive), len(archive))
            self._read_only.move_to_end(key)
            ref = self._read_only[key][0]
            while sum(size for _, size in self._read_only.values()) > self.max_archive_bytes:
                self._read_only.popitem(last=False)
        return ref

    def _where(self, attempt: str) -> str:
        """`on node ... worker pid ...`, as the task reported it, or why that is unknown."""
        import ray

        try:
            placement: Placement | None = ray.get(self._book.where.remote(attempt), timeout=10)
        except (ray.exceptions.RayError, ConnectionError) as exc:
            return f"(node unknown: the placement book did not answer: {type(exc).__name__})"
        return f"on {placement.describe()}" if placement else "(node unknown: the task had not reported it yet)"

    @staticmethod
    def _write_back(request: PhaseRequest, returned: PhaseReturn) -> None:
        by_target: dict[str, Mount] = {m.target: m for m in request.mounts if not m.read_only}
        if sorted(w.target for w in returned.written) != sorted(by_target):
            raise SandboxError(
                f"the node returned mounts {[w.target for w in returned.written]}, expected {sorted(by_target)}"
            )
        for written in returned.written:
            mount = by_target[written.target]
            replace_contents(Path(mount.source), written.archive, f"read-write mount {mount.target!r} from the node")
        log_path = Path(request.log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(returned.log)


def _task_name(request: PhaseRequest) -> str:
    """`harness:<trial>:<phase>[:s<seed>]`: what `ray::...` process titles and errors show."""
    parts = ["harness", request.labels.get("harness.trial", "-"), request.phase]
    if "harness.seed" in request.labels:
        parts.append("s" + request.labels["harness.seed"])
    return ":".join(parts)


def _node_error(name: str, exc: Any, where: str) -> SandboxError:
    """The node raised: keep `SandboxUnavailable` (not worth a retry), everything else is a `SandboxError`."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, SandboxUnavailable):
        return SandboxUnavailable(f"{name} {where}: {cause}")
    if isinstance(cause, SandboxError):
        return SandboxError(f"{name} {where}: {cause}")
    what = f"{type(cause).__name__}: {cause}" if cause is not None else _first_line(exc)
    return SandboxError(f"{name} failed {where}: {what}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
