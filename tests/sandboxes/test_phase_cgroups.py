"""The local sandbox's memory cap per phase (a memory cgroup), not per process.

Skipped where this machine cannot make a memory cgroup (the sandbox then says so
in `memory_base`, and only RLIMIT_DATA applies), except under CI=true.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandboxes import Limits, Mount, PhaseRequest
from sandboxes.local import LocalSandbox
from sandboxes.phase_cgroups import memory_settings, oom_kills

WORKERS = """
import os, sys, time
kids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = bytearray(150 << 20)  # under the per-process cap, touched page by page
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(1)
        os._exit(0)
    kids.append(pid)
codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in kids]
print("workers", codes, flush=True)
sys.exit(1 if any(codes) else 0)
"""


@pytest.fixture
def capped() -> LocalSandbox:
    sandbox = LocalSandbox()
    if sandbox.memory_base is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and the local sandbox cannot make a memory cgroup here", pytrace=False)
        pytest.skip("the local sandbox cannot make a memory cgroup here")
    return sandbox


def phase(tmp_path: Path, code: str, memory_mb: int) -> PhaseRequest:
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    return PhaseRequest(
        phase="train", command=["python", "-c", code], workdir="workspace",
        mounts=[Mount(source=workspace, target="workspace", read_only=False)],
        limits=Limits(wallclock_s=60, memory_mb=memory_mb, output_bytes=100_000),
        log_path=tmp_path / "phase.log",
    )


def test_workers_each_under_the_process_cap_are_killed_together_over_the_phase_cap(capped, tmp_path):
    result = capped.run(phase(tmp_path, WORKERS, memory_mb=400))  # 4 x 150 MiB > 400 MiB
    assert result.oom and result.exit_code == 1, result.log_tail
    assert result.limits["memory_cgroup_bytes"] == 400 << 20 and result.limits["oom_kills"] >= 1
    assert "-9" in result.log_tail  # the kernel killed workers inside the phase's cgroup


def test_the_same_workers_fit_a_phase_cap_that_holds_them(capped, tmp_path):
    result = capped.run(phase(tmp_path, WORKERS, memory_mb=1024))
    assert result.exit_code == 0 and not result.oom, result.log_tail
    assert result.limits["oom_kills"] == 0


def test_the_phase_cannot_raise_its_own_memory_cap(capped, tmp_path):
    if not capped.mount_isolated:
        pytest.skip("without the jail the cgroup file system stays writable to root in the phase")
    code = (
        "import os\n"
        "for line in open('/proc/self/cgroup').read().splitlines():\n"
        "    _, controllers, path = line.split(':', 2)\n"
        "    if 'memory' in controllers.split(',') or controllers == '':\n"
        "        for name in ('memory.max', 'memory.limit_in_bytes'):\n"
        "            for root in ('/sys/fs/cgroup', '/sys/fs/cgroup/memory'):\n"
        "                target = root + path + '/' + name\n"
        "                if os.path.exists(target):\n"
        "                    try:\n"
        "                        open(target, 'w').write('max' if name == 'memory.max' else '-1')\n"
        "                        print('RAISED', target)\n"
        "                    except OSError as exc:\n"
        "                        print('refused', target, exc.errno)\n"
    )
    result = capped.run(phase(tmp_path, code, memory_mb=400))
    assert result.exit_code == 0, result.log_tail
    assert "refused" in result.log_tail and "RAISED" not in result.log_tail, result.log_tail


def test_memory_settings_and_oom_counters(tmp_path):
    assert memory_settings(2, 1 << 30) == [("memory.max", str(1 << 30)), ("memory.swap.max", "0"),
                                           ("memory.oom.group", "1")]
    assert memory_settings(1, 5) == [("memory.limit_in_bytes", "5"), ("memory.memsw.limit_in_bytes", "5")]
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 3\n")
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n")
    assert oom_kills(tmp_path, 2) == 3 and oom_kills(tmp_path, 1) == 4
    assert oom_kills(tmp_path / "absent", 2) == 0
