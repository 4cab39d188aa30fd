"""The local sandbox: one phase = one fresh process tree on this machine.

`LocalSandbox` runs a phase's command as a child process of the harness, in a
fresh *phase root* folder, and measures it from the host. It is meant for
development, tests and CI; real runs use the Docker sandbox, because this one
shares the machine, the user and the file system with the harness.

Layout of a phase root (a new temporary folder per phase, removed afterwards)::

    <root>/home        HOME, empty
    <root>/tmp         TMPDIR, empty
    <root>/<target>    one entry per `Mount`: a read-only copy, or a symlink
                       to the host folder for a read-write mount

`HARNESS_<TARGET>` holds the real path of each mount (the copy, or the
resolved host folder, visible at that path even inside a hidden folder; a
missing read-write folder is created) and the working
directory is the mount named by `workdir`. Nothing else of the run is placed
in the phase root: the wrapper is passed on the command line and its status
comes back through an inherited pipe. `PhaseRequest.labels` are not needed
here: the sandbox kills its phase's processes itself (see below).

What it protects against
------------------------
* **Environment and secret leakage.** The environment starts empty: only
  PATH, HOME, TMPDIR, LANG, PYTHONDONTWRITEBYTECODE, PYTHONHASHSEED,
  CUDA_VISIBLE_DEVICES, one `HARNESS_<TARGET>` per mount and the request's
  `env` (which may override the first ones but not `HARNESS_<TARGET>` nor
  `CUDA_VISIBLE_DEVICES`, set from `limits.gpus`). API keys of the orchestrator are never inherited. With a PID and
  mount namespace (the default where `unshare` works) the phase gets its own
  `/proc`, so it cannot read the harness's environment through
  `/proc/<pid>/environ` either, nor see or signal any process of the host.
* **Network.** The command runs in a new network namespace (`unshare --net`,
  or `unshare --user --map-root-user --net` when not root): the only
  interface is loopback and it is down, so no connection can be made, not even
  to a service of the host on 127.0.0.1. Where no namespace can be created the
  sandbox runs without one, sets `network_isolated = False` and logs a warning
  once. A request with `network=True` (an outside agent's command, never a
  trial phase) keeps the host's network and every other protection.
* **Runaway time.** The host measures the wallclock with `time.monotonic` and,
  at the cap, SIGKILLs the whole process group (and with it the PID namespace).
* **Leftover processes.** After every phase the process group is SIGKILLed.
  With the PID namespace, the command runs under a tiny init (pid 1 of the
  namespace); when the command exits, init exits and the kernel kills every
  process left in the namespace, including ones that left the process group
  with `setsid` (a double-forked daemon). `pid_isolated` says which applies.
* **Output floods.** stdout and stderr (merged) are read by the host as a
  stream; the log file keeps at most `limits.output_bytes` bytes (the head
  while it fits, the *tail* once it does not: the last bytes explain a crash)
  and memory use is bounded by the same cap. The total is still counted.
* **Memory.** `RLIMIT_DATA` = `limits.memory_mb` for the command and each of
  its descendants (heap and private writable mappings: a `MemoryError`, a
  failed `malloc`). `RLIMIT_AS` is deliberately *not* set: CUDA and glibc's
  per-thread malloc arenas reserve large address ranges they never use, and a
  cap on the address space breaks them long before memory is short. Where a
  memory cgroup can be made (root; `sandboxes.phase_cgroups`: cgroup v2
  `memory.max`, else v1 `memory.limit_in_bytes`), the phase's processes
  together are capped at `memory_mb` too, shared and tmpfs pages included, and
  an OOM kill inside it makes the phase `oom`; `memory_base` says whether this
  applies.
* **Huge files and core dumps.** `RLIMIT_FSIZE` (`max_file_bytes`, 8 GiB by
  default) bounds the size of any one file written; `RLIMIT_CORE` = 0.
* **The host's files (the mount jail).** Where the kernel allows it (root, or
  unprivileged user namespaces), a phase runs in a locked mount namespace
  (`sandboxes.local_jail`): every mount of the host is read-only except the
  phase root's home/ and tmp/ and the read-write mounts, `PhaseRequest.hidden`
  paths (the run's lineage, held-out data, evaluator, other trials) are
  covered by empty mounts, /dev/shm is private, and the phase, root only of
  its own user namespace, cannot undo any of it. `mount_isolated` says whether
  this applies; where it does not, a warning is logged once and the
  limitations below under "Reading files" apply in full.
* **Process count.** Where a pids cgroup can be made (root; cgroup v1 or v2,
  see `sandboxes.pids_cgroup`), each phase gets its own with `pids.max =
  limits.pids`: a fork bomb gets EAGAIN, even as root. `pids_base` says
  whether this applies (in the jail the cgroup file system is read-only, so
  the phase cannot raise its own cap).
* **Writes to read-only inputs.** A read-only mount is a *copy* of the host
  folder (files and folders chmod a-w). chmod does not stop root, so it is the
  copy that matters: whatever the phase does to it, the host original is never
  modified, and the copy is thrown away with the phase root. (A copy costs
  time and disk in proportion to the folder, per phase; a read-only bind mount
  would not, but root inside the phase could remount it read-write, and it
  needs a mount namespace: the copy works everywhere.) Read-write mounts are
  a symlink to the host folder itself, so the phase's outputs land there
  directly (and survive the clean-up).

What it does NOT protect against
--------------------------------
* **Reading files.** The phase runs as the harness's user and can read
  anything that user can except the hidden paths: the harness's installation,
  its configuration, the user's home, run folders the harness does not know
  of (the trial executor hides the registered ones, harness/run_registry.py). Without the jail it can also read the hidden paths and write
  anywhere the user can, the run's lineage included.
* **Root.** In CI the harness runs as root; so does the phase. Root can
  remount, load modules, read `/dev/mem`, kill host processes it can find by
  other means, ... The namespaces raise the bar, they are no security boundary.
* **System calls.** No seccomp filter, no capability dropping, no LSM profile.
* **Process count without a pids cgroup.** `RLIMIT_NPROC` is per *user*,
  counting all of the user's processes, and root ignores it; it is set (to
  `limits.pids` plus what the user already runs) only when not running as
  root. As root without a pids cgroup the pid cap is not enforced at all.
* **Memory accounting without a memory cgroup.** rlimits are per process: each
  worker process may use `memory_mb`; shared memory (`/dev/shm`, `MAP_SHARED`)
  is not counted, and the kernel's OOM killer stays the last resort. GPU memory
  is never counted.
* **CPU.** `limits.cpus` is not enforced (no cgroup, no affinity).
* **GPU isolation.** `CUDA_VISIBLE_DEVICES` hides the GPUs not given to the
  phase from CUDA, but the device files stay reachable.

That is why the Docker sandbox exists for real runs.

OOM detection (a heuristic)
---------------------------
`oom` is True when the phase did not time out and either

* it died of SIGKILL (`exit_code == -9`) or its shell reported 137 = 128+9:
  nothing in the sandbox sends SIGKILL except at the wallclock cap, so this is
  taken to be the kernel's OOM killer (a phase that kills itself with -9 is
  misread as OOM), or
* it exited non-zero and the last 64 KiB of its log name a memory failure:
  `MemoryError` (also numpy's `_ArrayMemoryError`), `OutOfMemoryError`,
  `out of memory` (CUDA), `Cannot allocate memory` (ENOMEM),
  `std::bad_alloc`, `can't allocate memory` (torch's CPU allocator).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import platform
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from sandboxes.base import Limits, PhaseRequest, PhaseResult, substitute_mounts
from sandboxes.errors import SandboxError
from sandboxes.local_jail import (
    JAIL,
    JailConfig,
    check_hidden,
    config_fd,
    interpreter_paths,
)
from sandboxes.phase_cgroups import MemoryBase, PhaseCgroups, find_memory_base
from sandboxes.pids_cgroup import find_pids_base

log = logging.getLogger(__name__)

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH entries after the directory of the harness's interpreter."""

DEFAULT_MAX_FILE_BYTES = 8 << 30
"""RLIMIT_FSIZE: no file a phase writes may grow beyond this (8 GiB)."""

PHASE_ROOT_PREFIX = "harness-phase-"
"""Name prefix of the temporary folder each phase runs in (`--resume` finds a dead run's by it)."""
TAIL_LINES = 40
TAIL_BYTES = 4096
OOM_SCAN_BYTES = 64 * 1024
OOM_MARKERS = (
    "MemoryError",
    "OutOfMemoryError",
    "out of memory",
    "Cannot allocate memory",
    "std::bad_alloc",
    "can't allocate memory",
)
READ_CHUNK = 64 * 1024
SHM_BYTES = 64 << 20
"""Size of the private /dev/shm of a jailed phase (the Docker sandbox's default too)."""
DRAIN_GRACE_S = 2.0
"""After the phase exited, how long to keep reading output held open by an escaped process."""

RESERVED_TARGETS = frozenset({"home", "tmp"})
TARGET_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

# The wrapper between `unshare` and the command. It runs as
# `python -I -S -c _SHIM <config json> <argv...>` (isolated mode: the
# workspace in the cwd cannot shadow the modules it imports). In a PID
# namespace it is pid 1: it forks the command (so the command is an ordinary
# process: pid 1 ignores signals it has no handler for, even its own), applies
# the rlimits in that child only, forwards polite signals, reaps orphans, and
# reports the command's exact status through the status pipe. When it exits,
# the kernel kills whatever is left in the namespace.
_SHIM = r"""
import os, signal, sys, json, resource
cfg = json.loads(sys.argv[1])
argv = sys.argv[2:]
sfd = cfg["status_fd"]
for procs in cfg.get("cgroup_procs") or []:
    try:
        with open(procs, "w") as f:
            f.write("0")
    except OSError as exc:
        os.write(sfd, ("error cannot join the phase's cgroup %s: %s" % (procs, exc)).encode())
        os._exit(125)
pid = os.fork()
if pid == 0:
    try:
        os.close(sfd)
        for s in ("SIGPIPE", "SIGXFSZ"):
            signal.signal(getattr(signal, s), signal.SIG_DFL)
        for res, soft, hard in cfg["rlimits"]:
            try:
                resource.setrlimit(res, (soft, hard))
            except (ValueError, OSError) as exc:
                os.write(2, ("harness sandbox: cannot set rlimit %d to %d: %s\n" % (res, soft, exc)).encode())
                os._exit(126)
        os.execvp(argv[0], argv)
    except BaseException as exc:
        try:
            os.write(2, ("harness sandbox: cannot run %r: %s\n" % (argv[0], exc)).encode())
        finally:
            os._exit(127 if isinstance(exc, FileNotFoundError) else 126)

def forward(sig, frame):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass

for s in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"):
    signal.signal(getattr(signal, s), forward)
while True:
    try:
        p, status = os.wait()
    except ChildProcessError:
        os._exit(125)
    if p == pid:
        break
if os.WIFSIGNALED(status):
    sig = os.WTERMSIG(status)
    os.write(sfd, b"signal %d" % sig)
    os._exit(128 + sig)
code = os.waitstatus_to_exitcode(status)
os.write(sfd, b"exit %d" % code)
os._exit(code)
"""

# Prints the network interfaces the probe sees (must be only `lo` inside a netns).
_PROBE = "import socket; print(','.join(sorted(n for _, n in socket.if_nameindex())))"

# Run inside the jail by the probe: the hidden folder must look empty and a host file
# outside the writable places must refuse writes; prints the interfaces like _PROBE.
_JAIL_PROBE = r"""
import os, socket, sys
hidden, canary = sys.argv[1], sys.argv[2]
assert os.listdir(hidden) == [], os.listdir(hidden)
try:
    open(canary, "w").close()
except OSError:
    pass
else:
    raise SystemExit("the host file system is writable")
print(",".join(sorted(n for _, n in socket.if_nameindex())))
"""


@dataclass(frozen=True)
class Isolation:
    """How the local sandbox wraps commands on this machine."""

    prefix: tuple[str, ...]
    """argv placed before the wrapper (`unshare ...`), empty for none."""
    network: bool
    """Whether the phase gets its own (empty) network namespace."""
    pids: bool
    """Whether the phase gets its own PID namespace and /proc."""
    description: str
    jail: tuple[str, ...] = ()
    """argv placed before the mount jail (`unshare --mount ...`), which then runs `prefix`;
    empty for no jail (see `sandboxes.local_jail`)."""

    @property
    def mounts(self) -> bool:
        """Whether the phase sees the host read-only, with the request's hidden paths hidden."""
        return bool(self.jail)


class LocalSandbox:
    """Run phases as local processes; see the module docstring for what that isolates.

    `network_isolated` and `pid_isolated` (instance attributes) say which
    namespaces this machine allowed. Options: `root_dir` (where phase roots
    are created, default the system temp folder), `max_file_bytes`
    (RLIMIT_FSIZE, None for no cap), `namespaces=False` to run without
    `unshare` (everything else still applies).
    """

    name = "local"

    _probe_lock = threading.Lock()
    _probed: dict[bool, Isolation] = {}
    _pids_base: list[Path | None] = []
    _memory_base: list[MemoryBase | None] = []
    _warned: set[str] = set()

    def __init__(
        self,
        root_dir: str | os.PathLike[str] | None = None,
        max_file_bytes: int | None = DEFAULT_MAX_FILE_BYTES,
        namespaces: bool = True,
    ) -> None:
        self.root_dir = Path(root_dir) if root_dir is not None else None
        self.max_file_bytes = max_file_bytes
        self.isolation = self.probe(namespaces)
        self.network_isolated: bool = self.isolation.network
        self.pid_isolated: bool = self.isolation.pids
        self.mount_isolated: bool = self.isolation.mounts
        """The host is read-only to the phase and `PhaseRequest.hidden` is hidden (the jail)."""
        self.pids_base: Path | None = self.probe_pids_cgroup() if namespaces else None
        """Where the phase's pids cgroup is made; None: the process cap is not enforced as root."""
        self.memory_base: MemoryBase | None = self.probe_memory_cgroup() if namespaces else None
        """Where the phase's memory cgroup is made; None: only the per-process RLIMIT_DATA applies."""
        self.image = f"local:python{platform.python_version()}"

    # ------------------------------------------------------------------
    # Probing the namespaces (once per process)
    # ------------------------------------------------------------------

    @classmethod
    def probe(cls, namespaces: bool = True) -> Isolation:
        """The strongest wrapping that works here; probed once, then cached."""
        with cls._probe_lock:
            if namespaces not in cls._probed:
                cls._probed[namespaces] = cls._probe(namespaces)
            iso = cls._probed[namespaces]
        if namespaces:
            if not iso.network:
                cls._warn_once(
                    "network",
                    "local sandbox: cannot create a network namespace here; phases run "
                    "WITH network access (network_isolated=False)",
                )
            if not iso.pids:
                cls._warn_once(
                    "pids",
                    "local sandbox: cannot create a PID namespace here; phases see the "
                    "host's /proc and processes that leave their process group survive "
                    "(pid_isolated=False)",
                )
            if not iso.mounts:
                cls._warn_once(
                    "mounts",
                    "local sandbox: cannot create a locked mount namespace here; phases can "
                    "read the run's held-out labels and lineage and write outside their "
                    "mounts (mount_isolated=False)",
                )
        return iso

    @classmethod
    def probe_pids_cgroup(cls) -> Path | None:
        """The pids cgroup hierarchy phases are capped in (probed once); None where none can be made."""
        with cls._probe_lock:
            if not cls._pids_base:
                cls._pids_base.append(find_pids_base())
            base = cls._pids_base[0]
        if base is None and os.geteuid() == 0:
            cls._warn_once(
                "pids-cgroup",
                "local sandbox: cannot create a pids cgroup here; as root, the number of "
                "processes of a phase is not capped",
            )
        return base

    @classmethod
    def probe_memory_cgroup(cls) -> MemoryBase | None:
        """The memory cgroup hierarchy phases are capped in (probed once); None where none can be made."""
        with cls._probe_lock:
            if not cls._memory_base:
                cls._memory_base.append(find_memory_base())
            base = cls._memory_base[0]
        if base is None:
            cls._warn_once(
                "memory-cgroup",
                "local sandbox: cannot create a memory cgroup here; memory is capped per process "
                "(RLIMIT_DATA), not per phase",
            )
        return base

    @classmethod
    def _warn_once(cls, key: str, message: str) -> None:
        if key not in cls._warned:
            cls._warned.add(key)
            log.warning(message)

    @staticmethod
    def _probe(namespaces: bool) -> Isolation:
        none = Isolation((), False, False, "no namespaces")
        unshare = shutil.which("unshare")
        if not namespaces or unshare is None:
            return none
        user = () if os.geteuid() == 0 else ("--user", "--map-root-user")
        pid = ("--pid", "--fork", "--kill-child", "--mount-proc")
        # The jail's inner namespaces always include a user namespace: it locks the jail's mounts.
        locked = ("--user", "--map-root-user", "--mount")
        jail = (unshare, *user, "--mount", "--propagation", "private")
        candidates = [
            Isolation(
                (unshare, *locked, "--net", *pid), True, True,
                "network, PID, user and mount namespaces; host read-only", jail,
            ),
            Isolation((unshare, *user, "--net", *pid), True, True, "network, PID and mount namespaces"),
            Isolation((unshare, *user, "--net"), True, False, "network namespace"),
            Isolation((unshare, *user, *pid), False, True, "PID and mount namespaces"),
        ]
        for cand in candidates:
            try:
                done = _run_probe(cand)
            except (OSError, subprocess.SubprocessError, SandboxError) as exc:
                log.debug("local sandbox: probe %s failed: %s", cand.description, exc)
                continue
            interfaces = done.stdout.decode(errors="replace").strip()
            if done.returncode != 0:
                log.debug("local sandbox: probe %s failed: %s", cand.description, done.stderr[-500:])
                continue
            if cand.network and interfaces != "lo":
                log.debug("local sandbox: probe %s sees interfaces %s", cand.description, interfaces)
                continue
            return cand
        return none

    # ------------------------------------------------------------------
    # Running a phase
    # ------------------------------------------------------------------

    def run(self, request: PhaseRequest) -> PhaseResult:
        """Run one phase to completion (or to its limits) and remove its phase root."""
        _validate(request)
        root = Path(tempfile.mkdtemp(prefix=PHASE_ROOT_PREFIX, dir=self.root_dir))
        cgroup: PhaseCgroups | None = None
        try:
            env, cwd = self._prepare(root, request)
            if self.pids_base is not None or self.memory_base is not None:
                try:
                    cgroup = PhaseCgroups(
                        self.pids_base, self.memory_base, request.limits.pids, request.limits.memory_mb << 20
                    )
                except OSError as exc:
                    raise SandboxError(f"cannot create the phase's cgroups: {exc}") from exc
            return self._execute(request, env, cwd, root, cgroup)
        finally:
            if cgroup is not None:
                cgroup.remove()
            force_remove(root)

    def _prepare(self, root: Path, request: PhaseRequest) -> tuple[dict[str, str], Path]:
        (root / "home").mkdir()
        (root / "tmp").mkdir()
        real: dict[str, Path] = {}
        for mount in request.mounts:
            source = Path(mount.source)
            place = root / mount.target
            if mount.read_only:
                if not source.is_dir():
                    raise SandboxError(f"read-only mount {mount.target!r}: {source} is not a folder")
                try:
                    shutil.copytree(source, place, symlinks=True)
                except (OSError, shutil.Error) as exc:
                    raise SandboxError(f"cannot copy {source} for mount {mount.target!r}: {exc}") from exc
                _make_read_only(place)
                real[mount.target] = place
            else:
                try:
                    source.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise SandboxError(f"read-write mount {mount.target!r}: {exc}") from exc
                if not source.is_dir():
                    raise SandboxError(f"read-write mount {mount.target!r}: {source} is not a folder")
                resolved = source.resolve()
                place.symlink_to(resolved, target_is_directory=True)
                real[mount.target] = resolved
        # The phase may write into home/ and tmp/ but not rearrange the root (as non-root).
        os.chmod(root, 0o555)

        env = {
            "PATH": f"{os.path.dirname(sys.executable)}:{SYSTEM_PATH}",
            "HOME": str(root / "home"),
            "TMPDIR": str(root / "tmp"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }
        env.update(request.env)
        # Set after request.env: the mounts' locations and the GPUs given are not negotiable.
        for target, path in real.items():
            env[mount_env_name(target)] = str(path)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in request.limits.gpus)
        return env, real[request.workdir]

    def _rlimits(self, limits: Limits) -> list[tuple[int, int, int]]:
        wanted = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_DATA, limits.memory_mb * 1024 * 1024),
        ]
        if self.max_file_bytes is not None:
            wanted.append((resource.RLIMIT_FSIZE, self.max_file_bytes))
        if os.geteuid() != 0:
            # Per user, not per phase: leave room for what the user already runs.
            wanted.append((resource.RLIMIT_NPROC, _user_tasks(os.getuid()) + limits.pids))
        out = []
        for res, value in wanted:
            _, hard = resource.getrlimit(res)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            out.append((res, value, value))
        return out

    def _wrap(
        self, request: PhaseRequest, root: Path, argv: list[str], status_fd: int, cgroup: PhaseCgroups | None
    ) -> tuple[list[str], tuple[int, ...]]:
        """The argv that runs `argv`: [jail ->] namespaces -> wrapper -> command; and the
        descriptors it needs passed (the jail's configuration)."""
        procs = cgroup.procs_files if cgroup is not None else []
        config = {
            "status_fd": status_fd,
            "rlimits": self._rlimits(request.limits),
            "cgroup_procs": [] if self.isolation.jail else procs,
        }
        # A phase granted the network keeps the host's network namespace, and every other namespace.
        prefix = [arg for arg in self.isolation.prefix if not (request.network and arg == "--net")]
        wrapped = [*prefix, sys.executable, "-I", "-S", "-c", _SHIM, json.dumps(config), *argv]
        if not self.isolation.jail:
            return wrapped, ()
        needed = [root, *interpreter_paths()]
        try:
            hidden = check_hidden(list(request.hidden), needed)
        except ValueError as exc:
            raise SandboxError(str(exc)) from exc
        writable = [root / "home", root / "tmp"] + [
            Path(m.source).resolve() for m in request.mounts if not m.read_only
        ]
        jail = JailConfig(
            status_fd=status_fd,
            cgroup_procs=procs,
            writable=[str(p) for p in writable],
            hidden=hidden,
            shm_bytes=SHM_BYTES,
        )
        jail_fd = config_fd(jail)
        return [*self.isolation.jail, sys.executable, "-I", "-S", "-c", JAIL, str(jail_fd), *wrapped], (jail_fd,)

    def _enforced(self, request: PhaseRequest, cgroup: PhaseCgroups | None) -> dict[str, str | int | float | bool]:
        """What this phase was given (recorded with its result)."""
        limits = request.limits
        out: dict[str, str | int | float | bool] = {
            "wallclock_s": limits.wallclock_s,
            "memory_data_bytes": limits.memory_mb << 20,
            "output_bytes": limits.output_bytes,
            "network": "none" if self.network_isolated and not request.network else "host",
            "host_read_only": self.mount_isolated,
            "hidden_paths": len(request.hidden) if self.mount_isolated else 0,
        }
        if cgroup is not None:
            out.update(cgroup.enforced(limits.pids))
        return out

    def _execute(
        self, request: PhaseRequest, env: dict[str, str], cwd: Path, root: Path, cgroup: PhaseCgroups | None
    ) -> PhaseResult:
        limits = request.limits
        argv = substitute_mounts(request, lambda target: env[mount_env_name(target)])
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable

        log_path = Path(request.log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        sink = _LogSink(log_path, limits.output_bytes)

        out_r, out_w = os.pipe()
        st_r, st_w = os.pipe()
        try:
            wrapped, config_fds = self._wrap(request, root, argv, st_w, cgroup)
        except BaseException:
            for fd in (out_r, out_w, st_r, st_w):
                os.close(fd)
            raise
        exit_fd = -1
        waiter_w = -1
        try:
            start = time.monotonic()
            try:
                proc = subprocess.Popen(
                    wrapped,
                    stdin=subprocess.DEVNULL,
                    stdout=out_w,
                    stderr=out_w,
                    cwd=cwd,
                    env=env,
                    close_fds=True,
                    pass_fds=(st_w, *config_fds),
                    start_new_session=True,
                )
            except OSError as exc:
                raise SandboxError(f"cannot start the phase: {exc}") from exc
            finally:
                for fd in (out_w, st_w, *config_fds):
                    os.close(fd)
            pgid = proc.pid  # start_new_session: the child leads its own group
            try:
                exit_fd = os.pidfd_open(proc.pid)
            except (AttributeError, OSError):
                exit_fd, waiter_w = os.pipe()
                threading.Thread(
                    target=_wait_no_reap, args=(proc.pid, waiter_w), daemon=True
                ).start()

            try:
                end, timed_out = self._supervise(proc, out_r, exit_fd, sink, start, limits.wallclock_s)
            except BaseException:
                # The harness failed (or was interrupted) mid-phase: leave nothing running.
                _killpg(pgid)
                proc.wait()
                raise
            returncode = proc.wait()
            status = _read_status(st_r)
        finally:
            for fd in (out_r, st_r, exit_fd, waiter_w):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            sink.close()

        exit_code = status if status is not None else returncode
        wallclock = end - start
        kept = sink.kept_tail(max(OOM_SCAN_BYTES, TAIL_BYTES))
        return PhaseResult(
            exit_code=exit_code,
            wallclock_s=wallclock,
            timed_out=timed_out,
            oom=detect_oom(exit_code, timed_out, kept[-OOM_SCAN_BYTES:].decode("utf-8", "replace"))
            or (exit_code != 0 and not timed_out and cgroup is not None and cgroup.oom_kills() > 0),
            output_bytes=sink.total,
            output_truncated=sink.truncated,
            log_sha256=sink.sha256,
            log_tail=make_tail(kept),
            image=self.image,
            limits=self._enforced(request, cgroup),
        )

    @staticmethod
    def _supervise(
        proc: subprocess.Popen[bytes],
        out_r: int,
        exit_fd: int,
        sink: "_LogSink",
        start: float,
        wallclock_s: float,
    ) -> tuple[float, bool]:
        """Stream the output until the phase has exited (killing it at the deadline).

        Returns the host time of the exit and whether the deadline was hit.
        """
        pgid = proc.pid  # start_new_session: the child leads its own group
        poller = select.poll()
        poller.register(out_r, select.POLLIN)
        poller.register(exit_fd, select.POLLIN)
        deadline = start + wallclock_s
        timed_out = False
        end: float | None = None
        drain_until = math.inf
        out_open = True
        while out_open or end is None:
            now = time.monotonic()
            if end is None and not timed_out and now >= deadline:
                timed_out = True
                _killpg(pgid)
            if end is None:
                wait_s = None if timed_out else deadline - now
            else:
                if now >= drain_until:
                    break
                wait_s = drain_until - now
            timeout_ms = None if wait_s is None else max(0, math.ceil(wait_s * 1000))
            for fd, _ in poller.poll(timeout_ms):
                if fd == out_r:
                    data = os.read(out_r, READ_CHUNK)
                    if data:
                        sink.write(data)
                    else:
                        out_open = False
                        poller.unregister(out_r)
                elif fd == exit_fd and end is None:
                    # Exited but not reaped yet: its pid and group id cannot be reused,
                    # so killing the group reaches only its leftover members.
                    end = time.monotonic()
                    poller.unregister(exit_fd)
                    _killpg(pgid)
                    drain_until = end + DRAIN_GRACE_S
        assert end is not None
        return end, timed_out


# ----------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------


def _run_probe(cand: Isolation) -> subprocess.CompletedProcess[bytes]:
    """Run the probe under one candidate wrapping (with its jail: a hidden folder and a canary)."""
    run = functools.partial(
        subprocess.run,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env={"PATH": SYSTEM_PATH},
        timeout=30,
        start_new_session=True,
    )
    if not cand.jail:
        return run([*cand.prefix, sys.executable, "-I", "-S", "-c", _PROBE])
    with tempfile.TemporaryDirectory(prefix="harness-probe-") as folder:
        hidden, canary = Path(folder, "hidden"), Path(folder, "canary")
        hidden.mkdir()
        (hidden / "secret").write_text("secret\n")
        canary.write_text("canary\n")
        st_r, st_w = os.pipe()
        jail_fd = -1
        try:
            jail_fd = config_fd(JailConfig(status_fd=st_w, hidden=[str(hidden)]))
            done = run(
                [*cand.jail, sys.executable, "-I", "-S", "-c", JAIL, str(jail_fd),
                 *cand.prefix, sys.executable, "-I", "-S", "-c", _JAIL_PROBE, str(hidden), str(canary)],
                pass_fds=(st_w, jail_fd),
            )
        finally:
            for fd in (st_w, st_r, jail_fd):
                if fd >= 0:
                    os.close(fd)
        if canary.read_text() != "canary\n":
            raise SandboxError("the jail probe changed a host file: the jail does not hold here")
    return done


def mount_env_name(target: str) -> str:
    """`HARNESS_<TARGET>`: the target upper-cased, other characters than [A-Z0-9_] as `_`."""
    return "HARNESS_" + re.sub(r"[^A-Z0-9_]", "_", target.upper())


def detect_oom(exit_code: int | None, timed_out: bool, log_end: str) -> bool:
    """The OOM heuristic of the module docstring."""
    if timed_out or exit_code == 0 or exit_code is None:
        return False
    if exit_code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return True
    return any(marker in log_end for marker in OOM_MARKERS)


def make_tail(data: bytes) -> str:
    """Last TAIL_LINES lines, at most TAIL_BYTES bytes, of a log."""
    text = data[-TAIL_BYTES:].decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-TAIL_LINES:])


def _validate(request: PhaseRequest) -> None:
    if not request.command:
        raise SandboxError("empty command")
    targets = [m.target for m in request.mounts]
    for target in targets:
        if not TARGET_PATTERN.match(target) or target in RESERVED_TARGETS:
            raise SandboxError(
                f"mount target {target!r} is not allowed (a plain name, not one of "
                f"{sorted(RESERVED_TARGETS)})"
            )
    if len({mount_env_name(t) for t in targets}) != len(targets):
        raise SandboxError(f"mount targets are not unique: {targets}")
    if request.workdir not in targets:
        raise SandboxError(f"workdir {request.workdir!r} is not one of the mounts {targets}")


def _make_read_only(top: Path) -> None:
    """chmod a-w everything under `top` (symlinks untouched), folders last."""
    for folder, dirs, files in os.walk(top, topdown=False):
        for name in files + dirs:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode
            os.chmod(path, mode & ~0o222)
    os.chmod(top, os.stat(top).st_mode & ~0o222)


def force_remove(root: Path) -> None:
    """Remove a phase root whatever the phase did to permissions; never follows symlinks."""
    if not os.path.lexists(root):
        return
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            os.chmod(folder, 0o700)
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
            except OSError:
                pass
    try:
        shutil.rmtree(root)
    except OSError as exc:
        log.warning("local sandbox: could not remove phase root %s: %s", root, exc)


def _user_tasks(uid: int) -> int:
    """How many tasks (threads) the user runs now, as RLIMIT_NPROC counts them."""
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid == uid:
                count += len(os.listdir(f"/proc/{name}/task"))
        except OSError:
            pass
    return count


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_no_reap(pid: int, notify_fd: int) -> None:
    """Fallback for kernels without pidfd: wait for the exit, leave the zombie, notify."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        pass
    try:
        os.write(notify_fd, b"x")
    except OSError:
        pass


def _read_status(fd: int) -> int | None:
    """The command's status as the wrapper reported it (negative for a signal).

    Raises SandboxError when the jail or the wrapper reported that it could not set
    the phase up (`error <message>`): the harness's failure, not the trial's."""
    os.set_blocking(fd, False)
    try:
        raw = os.read(fd, 4096).decode("utf-8", "replace")
    except (BlockingIOError, OSError):
        return None
    if raw.startswith("error "):
        raise SandboxError(f"local sandbox: {raw[len('error '):]}")
    text = raw.split()
    if len(text) == 2 and text[1].lstrip("-").isdigit():
        if text[0] == "exit":
            return int(text[1])
        if text[0] == "signal":
            return -int(text[1])
    return None


class _LogSink:
    """Writes a phase's output to its log, keeping at most `cap` bytes.

    While the output fits, it goes straight to the file (which can be followed
    live). Once it does not, the last `cap` bytes are kept in memory (chunks in
    a deque, so memory stays bounded by the cap plus one chunk) and the file is
    rewritten at the end as a one-line marker plus the tail, `cap` bytes at most.
    """

    def __init__(self, path: Path, cap: int) -> None:
        self.path = path
        self.cap = cap
        self.total = 0
        self.sha256 = ""
        self._file = open(path, "wb", buffering=0)  # followable live
        self._written = 0
        self._hash = hashlib.sha256()
        self._tail: deque[bytes] | None = None
        self._tail_len = 0
        self._kept: bytes | None = None

    @property
    def truncated(self) -> bool:
        return self._tail is not None

    def write(self, data: bytes) -> None:
        self.total += len(data)
        if self._tail is None:
            if self._written + len(data) <= self.cap:
                self._file.write(data)
                self._hash.update(data)
                self._written += len(data)
                return
            self._file.close()
            self._tail = deque([self.path.read_bytes()])
            self._tail_len = self._written
        self._tail.append(data)
        self._tail_len += len(data)
        while self._tail and self._tail_len - len(self._tail[0]) >= self.cap:
            self._tail_len -= len(self._tail.popleft())

    def close(self) -> None:
        if self.sha256:
            return
        if self._tail is None:
            self._file.close()
            self.sha256 = self._hash.hexdigest()
            return
        marker = (
            f"[harness: output truncated: {self.total} bytes written, "
            f"only the last ones are kept]\n"
        ).encode()
        if len(marker) * 2 > self.cap:
            marker = b""
        tail = b"".join(self._tail)[-(self.cap - len(marker)) :]
        self._tail = deque()
        kept = marker + tail
        tmp = self.path.with_name(self.path.name + ".partial")
        with open(tmp, "wb") as f:
            f.write(kept)
        os.replace(tmp, self.path)
        self._kept = kept
        self.sha256 = hashlib.sha256(kept).hexdigest()

    def kept_tail(self, n: int) -> bytes:
        """The last `n` bytes of the kept log (after `close`)."""
        if self._kept is not None:
            return self._kept[-n:]
        with open(self.path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - n))
            return f.read()
