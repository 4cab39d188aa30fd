"""A small local Ray cluster for the tests: one head node, 2 CPUs, no dashboard.

`start_head()` runs `ray start --head --block` in a session of its own, with
every port chosen free (so tests never meet another Ray on this machine), the
worktree on PYTHONPATH (workers import this checkout's `sandboxes`) and a
200 MB object store. `RayHead.stop()` ends it by its ids only: SIGTERM to the
`ray start` process (Ray drains and stops what it started), then SIGKILL to
whatever of its session is left. The harness connects over the real protocol,
`ray://127.0.0.1:PORT` (Ray Client).

Without Ray the tests skip, except under `CI=true`, where they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 45.0


def require_ray() -> None:
    """Skip without an importable Ray; under CI=true fail instead."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and Ray is not installed ({exc}); pip install -e '.[test]'", pytrace=False)
        pytest.skip("Ray is not installed (pip install 'harness[cluster]')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayHead:
    address: str
    """`ray://127.0.0.1:PORT`, the Ray Client address."""
    process: subprocess.Popen[bytes]
    """The `ray start --block` process (leader of its own session)."""
    temp_dir: Path
    """Ray's session files and logs."""

    def session_pids(self) -> list[int]:
        """Live processes of the head's session (the cluster's processes and workers)."""
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited while listing
            if int(fields[3]) == self.process.pid and fields[0] != "Z":
                pids.append(int(name))
        return pids

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in self.session_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # exited since the listing
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_head(num_cpus: int = 2, num_gpus: int = 0) -> RayHead:
    """`num_gpus`: logical GPUs Ray hands out (ids 0..n-1), whether the machine has them or not."""
    # A short path: Ray's unix sockets live under it (108-byte limit).
    temp_dir = Path(tempfile.mkdtemp(prefix="hray-", dir="/tmp"))
    client_port = free_port()
    ports = {
        "--port": free_port(),
        "--ray-client-server-port": client_port,
        "--node-manager-port": free_port(),
        "--object-manager-port": free_port(),
        "--dashboard-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--runtime-env-agent-port": free_port(),
        "--metrics-export-port": free_port(),
    }
    argv = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}",
        "--include-dashboard=false", "--disable-usage-stats",
        f"--object-store-memory={200 * 1000 * 1000}", f"--temp-dir={temp_dir}",
        *[f"{flag}={port}" for flag, port in ports.items()],
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    log = open(temp_dir / "head.log", "wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    log.close()
    head = RayHead(address=f"ray://127.0.0.1:{client_port}", process=process, temp_dir=temp_dir)
    import ray.util

    node_ip = ray.util.get_node_ip_address()
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            text = (temp_dir / "head.log").read_text(errors="replace")[-3000:]
            head.stop()
            raise RuntimeError(f"ray start exited with {process.returncode}:\n{text}")
        # Ray Client's per-connection server needs the runtime env agent (on the node's IP): wait for both.
        waiting_for = [
            port for host, port in [("127.0.0.1", client_port), (node_ip, ports["--runtime-env-agent-port"])]
            if not _listens(host, port)
        ]
        if not waiting_for:
            return head
        if time.monotonic() > deadline:
            head.stop()
            raise RuntimeError(f"the Ray head did not listen on {waiting_for} within {START_TIMEOUT_S:.0f} s")
        time.sleep(0.5)


def _listens(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def task_workers(title_prefix: str, busy: bool = False) -> list[int]:
    """Pids of Ray workers running a task whose process title starts with `title_prefix` (`ray::<task name>`).

    `busy`: only workers that have started child processes, i.e. a phase task
    past its placement report, running its watchdog and phase.
    """
    needle = title_prefix.encode()
    found = [pid for pid, cmdline, _ in _processes() if cmdline.startswith(needle)]
    if busy:
        parents = {ppid for _, _, ppid in _processes()}
        found = [pid for pid in found if pid in parents]
    return found


def _processes() -> list[tuple[int, bytes, int]]:
    """(pid, cmdline, parent pid) of every live process."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue  # exited while listing
        out.append((int(name), cmdline, ppid))
    return out
