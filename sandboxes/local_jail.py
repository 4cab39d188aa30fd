"""The local sandbox's mount jail: the host read-only, the run's secrets hidden.

A phase of the local sandbox runs as the harness's user (root in CI). Without
a jail it can read the run's held-out labels and lineage and write anywhere
that user can: the canary next to the run, the installed harness, the
evaluator of the next run. The jail closes that where the kernel allows it.

It is a small program (`JAIL`, run as `python -I -S -c JAIL <config fd> <inner
argv...>`) that runs first, in a new *private* mount namespace where it still
has the privileges to mount (real root, or root of a fresh user namespace),
and then execs the inner `unshare --user --map-root-user --net --pid ...`
that runs the phase. Before that exec it:

1. joins the phase's pids and memory cgroups, when given (before the cgroup file
   system turns read-only);
2. opens every *writable place* (the phase root's `home` and `tmp`, every
   read-write mount's host folder) as an `O_PATH` descriptor, so that hiding
   a folder above it cannot lose it;
3. covers every *hidden* path with an empty tmpfs (a folder) or `/dev/null`
   (a file): the run's lineage, its held-out data, its evaluator copy, other
   trials' folders: whatever the request's `hidden` names;
4. covers every unix socket of the host with `/dev/null`: each one bound in
   the host's network namespace (`/proc/net/unix`) and the usual daemon
   sockets (`HOST_SOCKETS`). A read-only mount does not stop `connect()`, and
   the phase runs as the harness's user (root in CI): the Docker socket would
   give it the host;
5. binds each writable place back at its own path (recursively, so a hidden
   path inside it stays hidden), re-creating the folders leading to it
   inside a hiding tmpfs: the phase sees its mounts where the request said,
   and nothing else of the hidden folders;
6. makes every mount read-only (`mount_setattr(AT_RECURSIVE)`), then only the
   writable places read-write again; `/proc` keeps its flags (the inner
   `--mount-proc` must be allowed to mount a new one) and `/dev/shm` becomes a
   fresh, private, size-capped tmpfs;
7. enters its working directory again by its path (the one it inherited
   still points at the mounts as they were before).

The inner `unshare --user` is what makes this stick: mounts inherited into a
mount namespace owned by a new user namespace are *locked*. The phase, root
of its user namespace, can neither unmount a hiding tmpfs, nor remount a
read-only mount read-write, nor mount anything over the host; the kernel
refuses (EPERM/EINVAL). What it cannot do either: see anything through a
hiding tmpfs but the folder names leading to its own mounts.

The configuration comes through an inherited memory file (`config_fd`), not
the command line: one argument holds at most 128 KiB, and the hidden paths
include every other run folder the harness knows of (harness/run_registry.py).

Errors of the jail are the harness's, not the trial's: the jail reports them
as `error <message>` on the status pipe and exits 125; the sandbox raises
`SandboxError`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import Field

from harness.types import Frozen

JAIL = r"""
import ctypes, json, os, stat, sys
cfd, chunks = int(sys.argv[1]), []
while True:
    chunk = os.read(cfd, 1 << 16)
    if not chunk:
        break
    chunks.append(chunk)
os.close(cfd)
cfg = json.loads(b"".join(chunks))
inner = sys.argv[2:]
sfd = cfg["status_fd"]
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC = 1, 2, 4, 4096, 16384
ATTR_RDONLY, AT_RECURSIVE, AT_FDCWD, SYS_MOUNT_SETATTR = 1, 0x8000, -100, 442

class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]

def fail(message):
    os.write(sfd, ("error jail: " + message).encode()[:4000])
    os._exit(125)

def check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        fail("%s: %s" % (what, os.strerror(err)))

def mount(source, target, fstype, flags, data=None):
    check(libc.mount(source and os.fsencode(source), os.fsencode(target), fstype and fstype.encode(),
                     ctypes.c_ulong(flags), data and data.encode()), "mount %s on %s" % (fstype or source, target))

def set_read_only(path, read_only, recursive):
    attr = MountAttr(ATTR_RDONLY if read_only else 0, 0 if read_only else ATTR_RDONLY, 0, 0)
    check(libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(AT_FDCWD), os.fsencode(path),
                       ctypes.c_uint(AT_RECURSIVE if recursive else 0), ctypes.byref(attr),
                       ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr %s" % path)

def unix_sockets():  # paths of the unix sockets bound in this (the host's) network namespace
    try:
        with open("/proc/net/unix") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return []
    fields = [row.split(None, 7) for row in rows]
    return [f[7] for f in fields if len(f) == 8 and f[7].startswith("/")]

try:
    for procs in cfg["cgroup_procs"]:
        with open(procs, "w") as f:
            f.write("0")
    held = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in cfg["writable"]]
    for path in cfg["hidden"]:
        if os.path.isdir(path) and not os.path.islink(path):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
        elif os.path.lexists(path):
            mount("/dev/null", path, None, MS_BIND)
    for path in cfg["sockets"] + unix_sockets():  # the Docker socket, a session bus, ...: a host service
        try:
            is_socket = stat.S_ISSOCK(os.lstat(path).st_mode)
        except OSError:
            continue  # gone, or inside a hidden folder
        if is_socket:
            mount("/dev/null", path, None, MS_BIND)
    for path, fd in held:
        os.makedirs(path, exist_ok=True)  # inside a hiding tmpfs: the way to a writable place
        mount("/proc/self/fd/%d" % fd, path, None, MS_BIND | MS_REC)
        os.close(fd)
    set_read_only("/", True, True)
    set_read_only("/proc", False, True)
    for path, _ in held:
        set_read_only(path, False, False)
    if os.path.isdir("/dev/shm"):
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=%d,mode=1777" % cfg["shm_bytes"])
    # The working directory still points into the mounts as they were: enter it again by its path.
    os.chdir(os.getcwd())
except OSError as exc:
    fail(str(exc))
try:
    os.execvp(inner[0], inner)
except OSError as exc:
    fail("cannot run %s: %s" % (inner[0], exc))
"""


HOST_SOCKETS = (
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/run/dbus/system_bus_socket",
)
"""Sockets of host services always covered (also when their daemon runs in another network namespace)."""


class JailConfig(Frozen):
    """What the jail of one phase does (serialised as its first argument)."""

    status_fd: int
    """Descriptor of the status pipe: where the jail reports its own failure."""
    cgroup_procs: list[str] = Field(default_factory=list)
    """`cgroup.procs` of each of the phase's cgroups (pids, memory) to join first."""
    writable: list[str] = Field(default_factory=list)
    """Host folders that stay writable (and visible) at their own paths."""
    hidden: list[str] = Field(default_factory=list)
    """Host paths covered by an empty tmpfs (folders) or /dev/null (files)."""
    sockets: list[str] = Field(default_factory=lambda: list(HOST_SOCKETS))
    """Unix sockets covered with /dev/null besides those bound in the host's network namespace
    (listed in /proc/net/unix when the jail starts)."""
    shm_bytes: int = Field(default=64 << 20, gt=0)
    """Size of the phase's private /dev/shm."""


def config_fd(config: JailConfig) -> int:
    """A memory file holding `config`, positioned at its start: the jail's first argument is its
    number. The caller passes it to the jail (`pass_fds`) and closes its own copy afterwards."""
    fd = os.memfd_create("harness-jail-config", os.MFD_CLOEXEC)
    try:
        data = memoryview(config.model_dump_json().encode())
        while data:
            data = data[os.write(fd, data):]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def interpreter_paths() -> list[Path]:
    """The Python installation every phase runs with: no hidden path may cover it."""
    return [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent]


def covers(folder: Path, path: Path) -> bool:
    """Whether hiding `folder` hides `path` (both resolved): it is `path` or holds it."""
    return folder == path or folder in path.parents


def check_hidden(hidden: list[Path], keep_visible: list[Path]) -> list[str]:
    """Absolute hidden paths as strings; raises ValueError for one that would hide what a phase needs.

    A hidden path must not be, or contain, the phase root or the interpreter's
    installation (both must stay visible for the phase to run at all).
    """
    out = []
    needed_paths = [Path(p).resolve() for p in keep_visible]
    for given in hidden:
        if not Path(given).is_absolute():
            raise ValueError(f"hidden path {given} is not absolute")
        path = Path(given).resolve()
        for needed in needed_paths:
            if covers(path, needed):
                raise ValueError(f"hidden path {path} would hide {needed}, which the phase needs")
        out.append(str(path))
    return out
