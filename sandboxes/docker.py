"""The Docker sandbox: one phase = one fresh, hardened container (docker SDK for Python).

`DockerSandbox` runs each phase in a new container of one image (the recipe's
image, see `sandboxes.images.ensure_image`; by default the offline base image)
and measures it from the host. It is what real runs use; it needs a Docker
Engine (rootful; see "Caveats").

What a phase's container gets
-----------------------------
* **Mounts**: each `Mount` is a bind mount of the host folder at `/<target>`,
  `ro` or `rw` as `Mount.read_only` says, and `HARNESS_<TARGET>=/<target>`;
  `{target}` in the argv becomes `/<target>`; the working directory is
  `/<workdir>`. Nothing else of the host is visible: held-out data that is not
  mounted does not exist in the container (so `PhaseRequest.hidden` needs no
  work; a hidden path inside a mount is refused, a bind mount would show it). Targets naming system folders
  (`etc`, `usr`, `opt`, `tmp`, `home`, ...) are refused.
* **Root file system** read-only (`ReadonlyRootfs`); writable scratch only in
  two size-limited tmpfs: `/tmp` (TMPDIR) and `/home/harness` (HOME).
* **User**: never root. When the harness runs as a non-root user the container
  runs as that user's uid:gid, so its outputs belong to the harness's user and
  nothing is chowned. When the harness runs as root (CI), the container runs as
  `65534:65534` (nobody:nogroup) and the sandbox chowns each *read-write*
  mount (recursively, without following symlinks) to that uid before the
  phase; those folders and what the phase writes into them stay owned by
  65534 afterwards (root can still read and remove them; a later phase of
  the same trial, running as the same uid, can read files the phase made
  private). Read-only mounts are never changed: they must be readable by
  "others" (the harness's files are, with the usual umask 022).
* **Environment**: empty except PATH (the image's), HOME, TMPDIR, LANG,
  PYTHONDONTWRITEBYTECODE, PYTHONHASHSEED, the request's `env`, one
  `HARNESS_<TARGET>` per mount and `NVIDIA_VISIBLE_DEVICES` (the GPUs given,
  or `void`); the host's environment (API keys) never enters. Docker adds
  HOSTNAME and whatever ENV the image declares (part of the image, which is
  recorded by id).
* **Limits**: `network_mode=none` (only a loopback interface), `cap_drop=ALL`,
  `no-new-privileges`, the engine's default seccomp profile, `init` (docker-init
  as pid 1 reaps and forwards signals), `pids_limit` = `limits.pids`,
  `mem_limit` = `memswap_limit` = `limits.memory_mb` (no swap), `nano_cpus` =
  `limits.cpus` (clamped to the engine's CPUs), `ulimit core=0` and
  `fsize` (8 GiB, like the local sandbox), a private IPC namespace, no
  restart, logging driver `none` (the output is read from the attach stream,
  nothing piles up in /var/lib/docker), labels `harness=1` plus the request's
  `labels` (`harness.run`, `harness.trial`, ... for `reap_orphans`).
* **GPUs**: `limits.gpus` become `DeviceRequest(device_ids=[...],
  capabilities=[["gpu"]])`; inside, they are numbered from 0. An engine
  without the NVIDIA runtime makes the phase raise `SandboxUnavailable` saying
  what to install, not a docker traceback.

The command runs as `/bin/sh -c 'exec timeout -s KILL <cap> "$@" 2>&1'`:
stderr joins stdout in one stream (so the log keeps the order they were
written in), and `timeout` is a last-resort kill inside the container at the
wallclock cap plus `self_kill_grace_s` (60 s), in case the harness died and
nobody reaps the container. The image needs `/bin/sh` and `timeout`
(coreutils/busybox; every Debian image has them).

Measuring
---------
The host measures the wallclock with `time.monotonic` from just before
`start` to the moment `wait` returns; at the cap it kills the container
(SIGKILL to every process in it). `wait` is called with the remaining time
as its read timeout; `requests` then raises `ReadTimeout` or a
`ConnectionError` (for the unix socket), which are both taken as "not yet"
and retried until the deadline; after the deadline the container is killed
whatever the engine said. Output is read from the attach stream (attached
before the start, so nothing is lost) in a thread, into the same capped
log as the local sandbox (the tail is kept, the total counted). The exit
status comes from `wait`; 128+N (what docker-init and `timeout` report for a
command killed by signal N) is reported as -N, like `subprocess`. `oom` is
the container's `State.OOMKilled` (the memory cgroup's OOM killer fired), or
a non-zero exit whose log names a memory failure (`MemoryError`, CUDA `out
of memory`, ...). The container is always removed (`force=True`) in a
`finally`, never by a finalizer; one left by a harness that was SIGKILLed is
removed by `reap_orphans(run_id)`, which the harness calls when a run starts
or resumes.

What it protects against
------------------------
* Reading anything of the host that is not mounted: the harness's files,
  other runs, held-out labels, the orchestrator's environment and /proc (own
  PID namespace).
* Network access of any kind, including to services of the host.
* Writing to read-only inputs (read-only bind mounts; no capability to
  remount) and to the image.
* Privilege: no root, no capabilities, no setuid gains, default seccomp.
* Runaway time, memory (cgroup, counting every process and tmpfs pages),
  process count (pids cgroup), CPU share, output floods, core dumps, single
  huge files; leftover processes (the whole container goes).

What it does NOT protect against
--------------------------------
* **The kernel is shared.** A container is not a VM: a kernel exploit, or a
  bug in runc/containerd, escapes it. There is no gVisor/Kata/user-namespace
  remapping here; for hostile code add one (`runtime="runsc"`) or use VMs.
* **GPU drivers.** With GPUs the NVIDIA hook mounts the host's driver
  libraries and device files into the container; the driver is a large
  attack surface, and GPU memory is not limited by the cgroup.
* **Bind-mounted folders are live host folders.** A read-write mount can be
  filled (no disk quota beyond the 8 GiB per-file cap) or stuffed with
  symlinks pointing anywhere (harmless inside, but host code that follows
  them later must not trust them), and its files end up owned by the
  container's uid.
* **The Docker socket.** Whoever runs the harness can run containers, which
  is root-equivalent on the host. The trial cannot reach the socket.
* **Side channels and resource contention** (CPU caches, disk and memory
  bandwidth, timing) between concurrent trials.
* **The image.** Whatever the image contains runs; recipe images are built
  from the harness's base image and pinned wheels, and recorded by id.

Caveats
-------
* A rootless engine maps uids differently: pass `user="0:0"` there (root in a
  rootless engine is the harness's user) and expect read-write mounts to work
  without chown.
* The `128+N -> -N` mapping cannot tell a command that exits with status 137
  from one killed by SIGKILL.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sandboxes.base import Limits, PhaseRequest, PhaseResult, substitute_mounts
from sandboxes.errors import SandboxError, SandboxUnavailable
from sandboxes.images import SYSTEM_PATH, base_image_tag, connect, image_id
from sandboxes.local import (
    DEFAULT_MAX_FILE_BYTES,
    OOM_MARKERS,
    OOM_SCAN_BYTES,
    TAIL_BYTES,
    _LogSink,
    _validate,
    make_tail,
    mount_env_name,
)

log = logging.getLogger(__name__)

HARNESS_LABEL = "harness"
"""Every container of the sandbox carries `harness=1`."""
RUN_LABEL = "harness.run"
TRIAL_LABEL = "harness.trial"
PHASE_LABEL = "harness.phase"

NOBODY = "65534:65534"
"""Container user when the harness runs as root."""
HOME = "/home/harness"
TMP = "/tmp"
DRAIN_GRACE_S = 2.0
"""After the exit, how long to wait for the rest of the output on the attach stream."""
KILL_WAIT_S = 30.0
"""After a kill, how long to wait for the engine to report the exit."""
REMOVE_TRIES = 3

DOCKER_RESERVED_TARGETS = frozenset(
    {
        "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media", "mnt",
        "opt", "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var",
    }
)
"""Mount targets that would hide part of the image's system (mounts go to `/<target>`)."""

GPU_HELP = (
    "the Docker engine cannot give GPUs to containers: it has no NVIDIA runtime. "
    "Install the NVIDIA driver and nvidia-container-toolkit on the host "
    "(https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/install-guide.html), "
    "run `nvidia-ctk runtime configure --runtime=docker` and restart dockerd; "
    "check with `docker run --rm --gpus all <image> nvidia-smi`"
)

# Runs the argv: stderr into stdout (one ordered stream), and a last-resort
# kill at the cap + grace inside the container, in case the harness is gone.
_WRAP_TIMEOUT = 'limit=$1; shift; exec timeout -s KILL "$limit" "$@" 2>&1'
_WRAP_PLAIN = 'shift; exec "$@" 2>&1'


def _transient_errors() -> tuple[type[BaseException], ...]:
    import requests

    errors: list[type[BaseException]] = [requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError]
    try:
        import urllib3.exceptions

        errors += [urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError]
    except ImportError:  # pragma: no cover
        pass
    errors.append(TimeoutError)
    return tuple(errors)


class DockerSandbox:
    """Run phases in hardened containers; see the module docstring.

    Options: `image` (tag or id; default the base image `harness-base:...`),
    `user` ("uid:gid"; default see the docstring), `tmp_mb` / `home_mb`
    (tmpfs sizes), `shm_mb` (/dev/shm), `max_file_bytes` (RLIMIT_FSIZE),
    `self_kill_grace_s` (None: no in-container timeout), `api_timeout_s`.
    `network_isolated`, `pid_isolated` and `fs_isolated` are always True.
    """

    name = "docker"
    network_isolated = True
    pid_isolated = True
    fs_isolated = True

    def __init__(
        self,
        image: str | None = None,
        *,
        user: str | None = None,
        tmp_mb: int = 512,
        home_mb: int = 256,
        shm_mb: int = 64,
        max_file_bytes: int | None = DEFAULT_MAX_FILE_BYTES,
        self_kill_grace_s: float | None = 60.0,
        api_timeout_s: float = 60.0,
    ) -> None:
        client = connect(api_timeout_s)
        try:
            ref = image or base_image_tag()
            found = image_id(client, ref)
            if found is None:
                hint = (
                    "make it with `harness sandbox bootstrap` (python -m sandboxes.images bootstrap)"
                    if image is None
                    else "build it with sandboxes.images.ensure_image(recipe_dir) or `docker load` it"
                )
                raise SandboxUnavailable(f"the Docker engine has no image {ref!r}; {hint}")
            attrs = client.images.get(found).attrs
            info = client.info()
            self._api_version = client.api.api_version
        finally:
            client.close()
        self.image: str = found
        """The image id (`sha256:...`) every phase runs in; reported as `PhaseResult.image`."""
        self.image_ref = ref
        image_env = dict(
            item.split("=", 1) for item in (attrs.get("Config") or {}).get("Env") or [] if "=" in item
        )
        self.path = image_env.get("PATH", SYSTEM_PATH)
        self.engine_cpus = int(info.get("NCPU") or os.cpu_count() or 1)
        self.engine_runtimes = sorted((info.get("Runtimes") or {}).keys())
        self.user = user or (NOBODY if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}")
        uid, _, gid = self.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise SandboxError(f"user must be numeric uid[:gid], got {self.user!r}")
        self.uid, self.gid = int(uid), int(gid or uid)
        if self.uid == 0 and user is None:
            raise SandboxError("refusing to run containers as root")
        self.tmp_mb = tmp_mb
        self.home_mb = home_mb
        self.shm_mb = shm_mb
        self.max_file_bytes = max_file_bytes
        self.self_kill_grace_s = self_kill_grace_s
        self.api_timeout_s = api_timeout_s

    # ------------------------------------------------------------------
    # Engine access
    # ------------------------------------------------------------------

    def client(self) -> Any:
        """A fresh client (one per phase: the attach stream holds its connection)."""
        import docker

        kwargs = docker.utils.kwargs_from_env()
        return docker.DockerClient(version=self._api_version, timeout=int(self.api_timeout_s), **kwargs)

    def reap_orphans(self, run_id: str, live: Iterable[str] = frozenset()) -> list[str]:
        """`reap_orphans` (below) on this sandbox's engine; the loop calls it on start and resume."""
        client = self.client()
        try:
            return reap_orphans(run_id, live, client=client)
        finally:
            client.close()

    # ------------------------------------------------------------------
    # Running a phase
    # ------------------------------------------------------------------

    def run(self, request: PhaseRequest) -> PhaseResult:
        """Run one phase in a new container and remove the container, whatever happens."""
        _validate(request)
        _validate_docker_targets(request)
        limits = request.limits
        log_path = Path(request.log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        sink = _SharedSink(_LogSink(log_path, limits.output_bytes))
        client = self.client()
        cid: str | None = None
        stream: Any = None
        reader: threading.Thread | None = None
        try:
            cid = self.create(client, request)
            stream = client.api.attach(cid, stdout=True, stderr=True, stream=True, logs=False)
            reader = threading.Thread(target=sink.pump, args=(stream,), name=f"docker-log-{cid[:12]}", daemon=True)
            reader.start()
            start = time.monotonic()
            self._start(client, cid, request)
            end, timed_out, status = self._supervise(client, cid, start, limits.wallclock_s)
            reader.join(DRAIN_GRACE_S)
            state = self._state(client, cid)
            if status is None:
                status = state.get("ExitCode") if state.get("Status") == "exited" else None
        finally:
            if stream is not None:
                _close_quietly(stream)
            if reader is not None:
                reader.join(DRAIN_GRACE_S)
            if cid is not None:
                self._remove(client, cid)
            client.close()
            sink.close()

        exit_code = _exit_code(status)
        kept = sink.inner.kept_tail(max(OOM_SCAN_BYTES, TAIL_BYTES))
        log_end = kept[-OOM_SCAN_BYTES:].decode("utf-8", "replace")
        oom = bool(state.get("OOMKilled")) or (
            not timed_out and exit_code not in (0, None) and any(m in log_end for m in OOM_MARKERS)
        )
        return PhaseResult(
            exit_code=exit_code,
            wallclock_s=end - start,
            timed_out=timed_out,
            oom=oom,
            output_bytes=sink.inner.total,
            output_truncated=sink.inner.truncated,
            log_sha256=sink.inner.sha256,
            log_tail=make_tail(kept),
            image=self.image,
            limits=self.effective_limits(limits),
        )

    def create(self, client: Any, request: PhaseRequest) -> str:
        """Create (not start) the phase's container; returns its id. The caller removes it."""
        import docker

        kwargs = self.container_config(request)
        try:
            container = client.api.create_container(**kwargs)
        except docker.errors.ImageNotFound as exc:
            raise SandboxUnavailable(f"the image {self.image_ref} ({self.image[:19]}) is gone from the engine") from exc
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot create the {request.phase} container: {_explain(exc)}") from exc
        return container["Id"]

    def container_config(self, request: PhaseRequest) -> dict[str, Any]:
        """Arguments of `APIClient.create_container` for a request (prepares the mounts)."""
        import docker

        limits = request.limits
        mounts = self._mounts(request)
        env = self._environment(request)
        argv = substitute_mounts(request, lambda target: "/" + target)
        if self.self_kill_grace_s is None:
            command = ["/bin/sh", "-c", _WRAP_PLAIN, "harness-phase", "-", *argv]
        else:
            cap = math.ceil(limits.wallclock_s + self.self_kill_grace_s)
            command = ["/bin/sh", "-c", _WRAP_TIMEOUT, "harness-phase", str(cap), *argv]
        memory = limits.memory_mb * 1024 * 1024
        ulimits = [docker.types.Ulimit(name="core", soft=0, hard=0)]
        if self.max_file_bytes is not None:
            ulimits.append(docker.types.Ulimit(name="fsize", soft=self.max_file_bytes, hard=self.max_file_bytes))
        device_requests = None
        if limits.gpus:
            device_requests = [
                docker.types.DeviceRequest(device_ids=[str(g) for g in limits.gpus], capabilities=[["gpu"]])
            ]
        host_config = docker.types.HostConfig(
            version=self._api_version,
            mounts=mounts,
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            privileged=False,
            read_only=True,
            tmpfs={
                TMP: f"rw,nosuid,nodev,size={self.tmp_mb}m,mode=1777",
                HOME: f"rw,nosuid,nodev,size={self.home_mb}m,uid={self.uid},gid={self.gid},mode=0700",
            },
            shm_size=f"{self.shm_mb}m",
            init=True,
            pids_limit=limits.pids,
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=self._nano_cpus(limits.cpus),
            ulimits=ulimits,
            ipc_mode="private",
            device_requests=device_requests,
            log_config=docker.types.LogConfig(type="none"),
            restart_policy={"Name": "no"},
            auto_remove=False,
        )
        labels = {k: str(v) for k, v in request.labels.items()}
        labels[HARNESS_LABEL] = "1"
        labels.setdefault(PHASE_LABEL, request.phase)
        return {
            "image": self.image,
            "command": command,
            "user": self.user,
            "working_dir": "/" + request.workdir,
            "environment": env,
            "labels": labels,
            "name": _container_name(request),
            "host_config": host_config,
            "stdin_open": False,
            "tty": False,
            "detach": True,
            "hostname": "sandbox",
        }

    def effective_limits(self, limits: Limits) -> dict[str, str | int | float | bool]:
        """What a container of these limits is given (recorded with every phase result)."""
        memory = limits.memory_mb * 1024 * 1024
        out: dict[str, str | int | float | bool] = {
            "memory_bytes": memory,
            "memory_swap_bytes": memory,
            "nano_cpus": self._nano_cpus(limits.cpus),
            "pids": limits.pids,
            "wallclock_s": limits.wallclock_s,
            "output_bytes": limits.output_bytes,
            "tmp_bytes": self.tmp_mb << 20,
            "home_bytes": self.home_mb << 20,
            "network": "none",
            "user": self.user,
            "cap_drop": "ALL",
            "no_new_privileges": True,
            "read_only_rootfs": True,
            "gpus": ",".join(str(g) for g in limits.gpus),
        }
        if self.max_file_bytes is not None:
            out["file_bytes"] = self.max_file_bytes
        return out

    # -- pieces -------------------------------------------------------------

    def _nano_cpus(self, cpus: float) -> int:
        return int(min(cpus, float(self.engine_cpus)) * 1e9)

    def _mounts(self, request: PhaseRequest) -> list[Any]:
        import docker

        out = []
        chown = os.geteuid() == 0 and self.uid != 0
        for mount in request.mounts:
            source = Path(mount.source)
            if mount.read_only:
                if not source.is_dir():
                    raise SandboxError(f"read-only mount {mount.target!r}: {source} is not a folder")
            else:
                try:
                    source.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise SandboxError(f"read-write mount {mount.target!r}: {exc}") from exc
                if not source.is_dir():
                    raise SandboxError(f"read-write mount {mount.target!r}: {source} is not a folder")
                if chown:
                    _chown_tree(source.resolve(), self.uid, self.gid)
            out.append(
                docker.types.Mount(
                    target="/" + mount.target,
                    source=str(source.resolve()),
                    type="bind",
                    read_only=mount.read_only,
                    propagation="rprivate",
                )
            )
        return out

    def _environment(self, request: PhaseRequest) -> dict[str, str]:
        env = {
            "PATH": self.path,
            "HOME": HOME,
            "TMPDIR": TMP,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }
        env.update(request.env)
        # Set after request.env: the mounts' locations and the GPUs given are not negotiable.
        for mount in request.mounts:
            env[mount_env_name(mount.target)] = "/" + mount.target
        gpus = request.limits.gpus
        env["NVIDIA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus) if gpus else "void"
        env.pop("CUDA_VISIBLE_DEVICES", None)
        return env

    def _start(self, client: Any, cid: str, request: PhaseRequest) -> None:
        import docker

        try:
            client.api.start(cid)
        except docker.errors.APIError as exc:
            text = _explain(exc)
            if request.limits.gpus and _is_gpu_error(text):
                raise SandboxUnavailable(f"{GPU_HELP} (engine said: {text})") from exc
            raise SandboxError(f"cannot start the {request.phase} container: {text}") from exc

    def _supervise(self, client: Any, cid: str, start: float, wallclock_s: float) -> tuple[float, bool, int | None]:
        """Wait for the exit, killing at the deadline. Returns (exit time, timed out, status)."""
        transient = _transient_errors()
        deadline = start + wallclock_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            asked = time.monotonic()
            try:
                answer = client.api.wait(cid, timeout=max(remaining, 0.05))
                return time.monotonic(), False, answer.get("StatusCode")
            except transient as exc:
                # The read timed out (the phase still runs) or the connection broke:
                # ask again until the deadline; do not spin when the engine is down.
                if time.monotonic() - asked < min(0.5, remaining):
                    log.warning("docker sandbox: waiting for %s: %s", cid[:12], _short(exc))
                    time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        self._kill(client, cid)
        until = time.monotonic() + KILL_WAIT_S
        status: int | None = None
        while time.monotonic() < until:
            try:
                status = client.api.wait(cid, timeout=max(1.0, until - time.monotonic())).get("StatusCode")
                break
            except transient:
                time.sleep(0.2)
                self._kill(client, cid)
        return time.monotonic(), True, status

    @staticmethod
    def _kill(client: Any, cid: str) -> None:
        import docker

        try:
            client.api.kill(cid)
        except docker.errors.APIError as exc:  # not running any more, or gone
            log.debug("docker sandbox: kill %s: %s", cid[:12], _short(exc))
        except _transient_errors() as exc:
            log.warning("docker sandbox: kill %s: %s", cid[:12], _short(exc))

    @staticmethod
    def _state(client: Any, cid: str) -> dict[str, Any]:
        import docker

        for attempt in range(REMOVE_TRIES):
            try:
                return client.api.inspect_container(cid).get("State") or {}
            except docker.errors.NotFound:
                return {}
            except (docker.errors.APIError, *_transient_errors()) as exc:
                log.warning("docker sandbox: inspect %s: %s", cid[:12], _short(exc))
                time.sleep(0.2 * (attempt + 1))
        return {}

    @staticmethod
    def _remove(client: Any, cid: str) -> None:
        import docker

        for attempt in range(REMOVE_TRIES):
            try:
                client.api.remove_container(cid, force=True, v=True)
                return
            except docker.errors.NotFound:
                return
            except (docker.errors.APIError, *_transient_errors()) as exc:
                if "already in progress" in str(exc):
                    return
                log.warning("docker sandbox: remove %s (try %d): %s", cid[:12], attempt + 1, _short(exc))
                time.sleep(0.5 * (attempt + 1))
        log.error("docker sandbox: container %s was not removed; reap_orphans will", cid[:12])


# ----------------------------------------------------------------------
# Orphans
# ----------------------------------------------------------------------


def reap_orphans(run_id: str, live: Iterable[str] = frozenset(), *, client: Any = None) -> list[str]:
    """Kill and remove the containers of run `run_id` that no live trial owns.

    A container belongs to the run when it carries `harness=1` and
    `harness.run=<run_id>`; it is kept when its `harness.trial` label, or its
    id, is in `live`. Call it when a run starts or resumes (with the trials
    this process is running, usually none). Returns the names removed; a
    missing engine raises `SandboxUnavailable`.
    """
    import docker

    live = set(live)
    own = client is None
    client = client or connect()
    removed = []
    try:
        found = client.api.containers(all=True, filters={"label": [f"{HARNESS_LABEL}=1", f"{RUN_LABEL}={run_id}"]})
        for info in found:
            labels = info.get("Labels") or {}
            if labels.get(TRIAL_LABEL) in live or info["Id"] in live:
                continue
            try:
                client.api.remove_container(info["Id"], force=True, v=True)
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    raise SandboxError(f"cannot remove orphan container {info['Id'][:12]}: {_short(exc)}") from exc
            names = info.get("Names") or [info["Id"][:12]]
            removed.append(names[0].lstrip("/"))
    finally:
        if own:
            client.close()
    if removed:
        log.warning("docker sandbox: removed %d orphan container(s) of run %s: %s", len(removed), run_id, removed)
    return removed


# ----------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------


class _SharedSink:
    """The capped log, written by the reader thread, closed by the phase's thread."""

    def __init__(self, inner: _LogSink) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._closed = False
        self.error: BaseException | None = None

    def pump(self, stream: Iterable[bytes]) -> None:
        try:
            for chunk in stream:
                with self._lock:
                    if self._closed:
                        return
                    self.inner.write(chunk)
        except Exception as exc:  # noqa: BLE001 - the stream was closed under us, or broke
            if not self._closed:
                self.error = exc
                log.debug("docker sandbox: output stream ended: %s", _short(exc))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.inner.close()


def _validate_docker_targets(request: PhaseRequest) -> None:
    if request.network:
        raise SandboxError("the Docker sandbox runs phases without network; run this phase in the local sandbox")
    # A container sees only its mounts, so `hidden` needs no work here, except inside a
    # mount, where a bind mount would show it.
    for mount in request.mounts:
        source = Path(mount.source).resolve()
        for path in request.hidden:
            if source == Path(path).resolve() or source in Path(path).resolve().parents:
                raise SandboxError(f"cannot hide {path}: it is inside the mount {mount.target!r}")
    for mount in request.mounts:
        if mount.target.lower() in DOCKER_RESERVED_TARGETS:
            raise SandboxError(
                f"mount target {mount.target!r} would hide /{mount.target} of the image; "
                f"choose another name (not one of {sorted(DOCKER_RESERVED_TARGETS)})"
            )


def _container_name(request: PhaseRequest) -> str:
    parts = [request.labels.get(RUN_LABEL, ""), request.labels.get(TRIAL_LABEL, ""), request.phase]
    if "harness.seed" in request.labels:
        parts.append("s" + request.labels["harness.seed"])
    stem = "-".join(re.sub(r"[^A-Za-z0-9_.-]", "_", p) for p in parts if p)[:80]
    return f"harness-{stem}-{uuid.uuid4().hex[:8]}" if stem else f"harness-{uuid.uuid4().hex[:12]}"


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    """Give `top` and everything under it to uid:gid (symlinks themselves, never followed)."""

    def give(path: str) -> None:
        st = os.lstat(path)
        if st.st_uid != uid or st.st_gid != gid:
            os.lchown(path, uid, gid)

    try:
        give(str(top))
        for folder, dirs, files in os.walk(top):
            for name in dirs + files:
                give(os.path.join(folder, name))
    except OSError as exc:
        raise SandboxError(f"cannot hand {top} to the container user {uid}:{gid}: {exc}") from exc


def _exit_code(status: int | None) -> int | None:
    """Docker's status, with 128+N (killed by signal N) as -N like subprocess."""
    if status is None or status < 0:
        return None
    if 128 < status <= 128 + 64:
        return -(status - 128)
    return status


def _is_gpu_error(text: str) -> bool:
    lowered = text.lower()
    return any(
        marker in lowered
        for marker in ("could not select device driver", "nvidia", "unknown or invalid runtime", "gpu")
    )


def _explain(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)[:1000]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


def _close_quietly(stream: Any) -> None:
    try:
        stream.close()
    except Exception:  # noqa: BLE001
        pass
