"""What is particular to the local sandbox: namespaces, rlimits, layout, the log sink."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import platform
import resource
import shutil
import signal
import uuid
from pathlib import Path

import pytest

from sandboxes import Limits, Mount, PhaseRequest, SandboxError, SandboxUnavailable, make_sandbox
from sandboxes import local as local_mod
from sandboxes.local import LocalSandbox, _LogSink, detect_oom, make_tail, mount_env_name


@pytest.fixture
def sandbox(tmp_path: Path) -> LocalSandbox:
    """Overrides the conformance fixture: the default local sandbox, phase roots under tmp_path."""
    roots = tmp_path / "roots"
    roots.mkdir()
    return LocalSandbox(root_dir=roots)


def _roots(sandbox: LocalSandbox) -> list[Path]:
    assert sandbox.root_dir is not None
    return list(sandbox.root_dir.iterdir())


# --------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------


def test_factory(monkeypatch, tmp_path):
    assert isinstance(make_sandbox("local"), LocalSandbox)
    # No engine at this address: a clear SandboxUnavailable, not a docker traceback.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(SandboxUnavailable, match="no Docker engine answers"):
        make_sandbox("docker")
    with pytest.raises(SandboxError, match="unknown sandbox kind"):
        make_sandbox("vm")
    from sandboxes import LocalSandbox as Lazy

    assert Lazy is LocalSandbox


def test_image_names_the_interpreter(sandbox):
    assert sandbox.name == "local"
    assert sandbox.image == f"local:python{platform.python_version()}"


# --------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="namespaces are asserted where the harness runs as root with unshare (CI)",
)
def test_namespaces_are_available_here(sandbox):
    assert sandbox.network_isolated
    assert sandbox.pid_isolated


def test_degrades_without_unshare(monkeypatch, caplog):
    monkeypatch.setattr(LocalSandbox, "_probed", {})
    monkeypatch.setattr(LocalSandbox, "_warned", set())
    monkeypatch.setattr(local_mod.shutil, "which", lambda name, *a, **k: None)
    with caplog.at_level(logging.WARNING, logger="sandboxes.local"):
        first = LocalSandbox()
        second = LocalSandbox()
    assert first.network_isolated is False and first.pid_isolated is False
    assert second.network_isolated is False
    warnings = [r for r in caplog.records if "network" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not per instance


def test_namespaces_can_be_switched_off_quietly(caplog):
    with caplog.at_level(logging.WARNING, logger="sandboxes.local"):
        sb = LocalSandbox(namespaces=False)
    assert sb.network_isolated is False and sb.isolation.prefix == ()
    assert not caplog.records


def test_probe_is_cached():
    assert LocalSandbox.probe() is LocalSandbox.probe()


def test_loopback_is_down_and_alone(sandbox, tmp_path):
    if not sandbox.network_isolated:
        pytest.skip("no network namespace here")
    phase = _Phase(sandbox, tmp_path)
    result = phase.py("import socket; print(sorted(n for _, n in socket.if_nameindex()))")
    assert result.log_tail == "['lo']"


def test_network_grant_reaches_host_services_and_keeps_the_jail(sandbox, tmp_path):
    """`network=True` (an outside agent's command) keeps the host's network, nothing else changes."""
    if not (sandbox.network_isolated and sandbox.mount_isolated):
        pytest.skip("no network namespace or jail here")
    import socket

    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "labels.csv").write_text("held out\n")
    phase = _Phase(sandbox, tmp_path)
    code = (
        "import os, socket, sys\n"
        "socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3).close()\n"
        "print('CONNECTED', os.listdir(sys.argv[2]))\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = str(server.getsockname()[1])
        request = phase.request(["python", "-c", code, port, str(secret)])
        granted = sandbox.run(request.model_copy(update={"network": True, "hidden": [secret]}))
        refused = sandbox.run(request.model_copy(update={"hidden": [secret]}))
    assert granted.exit_code == 0, granted.log_tail
    assert granted.log_tail == "CONNECTED []"  # reached the host service; the hidden folder stays empty
    assert granted.limits["network"] == "host" and granted.limits["host_read_only"] is True
    assert refused.exit_code != 0 and "CONNECTED" not in refused.log_tail
    assert refused.limits["network"] == "none"


def test_docker_refuses_a_network_grant(tmp_path):
    from sandboxes.docker import _validate_docker_targets

    request = _Phase(LocalSandbox(namespaces=False), tmp_path).request(["true"]).model_copy(update={"network": True})
    with pytest.raises(SandboxError, match="without network"):
        _validate_docker_targets(request)


def test_phase_sees_only_its_own_processes(sandbox, tmp_path):
    if not sandbox.pid_isolated:
        pytest.skip("no PID namespace here")
    phase = _Phase(sandbox, tmp_path)
    result = phase.py("import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    assert result.exit_code == 0
    assert json.loads(result.log_tail) == [1, 2]  # the wrapper (init) and the command


# --------------------------------------------------------------------------
# Layout, environment, rlimits
# --------------------------------------------------------------------------


class _Phase:
    def __init__(self, sandbox: LocalSandbox, tmp_path: Path) -> None:
        self.sandbox = sandbox
        self.src = tmp_path / "src"
        self.out = tmp_path / "out"
        self.src.mkdir()
        self.out.mkdir()
        (self.src / "train.py").write_text("print('train')\n")
        self.log_path = tmp_path / "phase.log"

    def request(self, command, *, memory_mb=1024, gpus=(), env=None, **kw) -> PhaseRequest:
        return PhaseRequest(
            phase="train",
            command=command,
            workdir=kw.get("workdir", "workspace"),
            mounts=kw.get(
                "mounts",
                [
                    Mount(source=self.src, target="workspace"),
                    Mount(source=self.out, target="out", read_only=False),
                ],
            ),
            env=env or {},
            limits=Limits(
                wallclock_s=kw.get("wallclock_s", 30),
                memory_mb=memory_mb,
                output_bytes=kw.get("output_bytes", 100_000),
                gpus=list(gpus),
            ),
            log_path=self.log_path,
        )

    def py(self, code, **kw):
        return self.sandbox.run(self.request(["python", "-c", code], **kw))


def test_layout_and_exact_environment(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", "sk-" + uuid.uuid4().hex)
    phase = _Phase(sandbox, tmp_path)
    code = (
        "import os, json\n"
        "root = os.path.dirname(os.environ['HOME'])\n"
        "print(json.dumps({'env': dict(os.environ), 'root': root, 'entries': sorted(os.listdir(root)),"
        " 'out_is_link': os.path.islink(os.path.join(root, 'out'))}))\n"
    )
    result = phase.py(code, env={"HARNESS_OUT": "/elsewhere", "CUDA_VISIBLE_DEVICES": "0", "X": "1"})
    assert result.exit_code == 0, result.log_tail
    info = json.loads(result.log_tail)
    env, root = info["env"], info["root"]
    assert info["entries"] == ["home", "out", "tmp", "workspace"]
    assert info["out_is_link"]
    assert set(env) == {
        "PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED",
        "CUDA_VISIBLE_DEVICES", "HARNESS_WORKSPACE", "HARNESS_OUT", "X",
    }
    assert env["HOME"] == f"{root}/home" and env["TMPDIR"] == f"{root}/tmp"
    assert env["HARNESS_WORKSPACE"] == f"{root}/workspace"
    # The mounts' locations and the GPUs given cannot be overridden by the request's env.
    assert env["HARNESS_OUT"] == str(phase.out.resolve())
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["PATH"].split(":")[0] == os.path.dirname(local_mod.sys.executable)
    assert not Path(root).exists()
    assert _roots(sandbox) == []


def test_gpus_become_cuda_visible_devices(sandbox, tmp_path):
    phase = _Phase(sandbox, tmp_path)
    result = phase.py("import os; print(os.environ['CUDA_VISIBLE_DEVICES'])", gpus=[2, 3])
    assert result.log_tail == "2,3"


def test_rlimits_in_the_child(sandbox, tmp_path):
    phase = _Phase(sandbox, tmp_path)
    code = (
        "import resource\n"
        "print(resource.getrlimit(resource.RLIMIT_DATA), resource.getrlimit(resource.RLIMIT_CORE),"
        " resource.getrlimit(resource.RLIMIT_FSIZE))\n"
    )
    result = phase.py(code, memory_mb=777)
    mem = 777 * 1024 * 1024
    fsize = local_mod.DEFAULT_MAX_FILE_BYTES
    assert result.log_tail == f"({mem}, {mem}) (0, 0) ({fsize}, {fsize})"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_torch_trains_within_2048_mb(sandbox, tmp_path):
    """RLIMIT_DATA (not RLIMIT_AS) leaves torch room to import and train."""
    phase = _Phase(sandbox, tmp_path)
    code = (
        "import torch\n"
        "torch.manual_seed(0)\n"
        "model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 1))\n"
        "opt = torch.optim.AdamW(model.parameters(), lr=1e-2)\n"
        "x = torch.randn(512, 64); y = x.sum(dim=1, keepdim=True)\n"
        "for step in range(100):\n"
        "    loss = torch.nn.functional.mse_loss(model(x), y)\n"
        "    opt.zero_grad(); loss.backward(); opt.step()\n"
        "print('final loss', float(loss))\n"
    )
    result = phase.py(code, memory_mb=2048, wallclock_s=120)
    assert result.exit_code == 0, result.log_tail
    assert "final loss" in result.log_tail
    assert not result.oom


def test_file_size_cap(tmp_path):
    roots = tmp_path / "roots"
    roots.mkdir()
    sb = LocalSandbox(root_dir=roots, max_file_bytes=1 << 20)
    phase = _Phase(sb, tmp_path)
    code = (
        "import os\n"
        "with open(os.path.join(os.environ['HARNESS_OUT'], 'big.bin'), 'wb') as f:\n"
        "    f.write(b'x' * (2 << 20))\n"
    )
    result = phase.py(code)
    assert result.exit_code != 0
    assert "File too large" in result.log_tail
    assert (phase.out / "big.bin").stat().st_size <= 1 << 20


def test_read_only_copy_is_write_protected(sandbox, tmp_path):
    phase = _Phase(sandbox, tmp_path)
    code = (
        "import os, stat\n"
        "print(oct(os.stat('train.py').st_mode & 0o777), oct(os.stat('.').st_mode & 0o777))\n"
    )
    result = phase.py(code)
    assert result.exit_code == 0
    file_mode, dir_mode = result.log_tail.split()
    assert int(file_mode, 8) & 0o222 == 0 and int(dir_mode, 8) & 0o222 == 0


def test_phase_root_removed_even_after_chmod_games(sandbox, tmp_path):
    phase = _Phase(sandbox, tmp_path)
    code = (
        "import os\n"
        "d = os.path.join(os.environ['HOME'], 'locked', 'deeper')\n"
        "os.makedirs(d)\n"
        "open(os.path.join(d, 'f'), 'w').write('x')\n"
        "os.chmod(d, 0)\n"
        "os.chmod(os.path.dirname(d), 0)\n"
        "try:\n"
        "    os.chmod('train.py', 0)\n"
        "except OSError:\n"  # EROFS in the mount jail: the copy is a read-only mount there
        "    pass\n"
    )
    result = phase.py(code)
    assert result.exit_code == 0, result.log_tail
    assert _roots(sandbox) == []
    assert phase.out.is_dir()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"workdir": "nowhere"}, "workdir"),
        ({"mounts": [Mount(source=Path("/tmp"), target="home")]}, "not allowed"),
        ({"mounts": [Mount(source=Path("/tmp"), target="../escape")]}, "not allowed"),
    ],
)
def test_bad_requests_raise(sandbox, tmp_path, change, message):
    phase = _Phase(sandbox, tmp_path)
    with pytest.raises(SandboxError, match=message):
        sandbox.run(phase.request(["true"], **change))
    assert _roots(sandbox) == []


def test_missing_read_only_source_raises(sandbox, tmp_path):
    phase = _Phase(sandbox, tmp_path)
    mounts = [Mount(source=tmp_path / "missing", target="workspace")]
    with pytest.raises(SandboxError, match="not a folder"):
        sandbox.run(phase.request(["true"], mounts=mounts))
    assert _roots(sandbox) == []


def test_harness_failure_mid_phase_kills_the_phase(sandbox, tmp_path, monkeypatch, helpers):
    def broken_write(self, data):
        raise RuntimeError("log disk full")

    monkeypatch.setattr(_LogSink, "write", broken_write)
    token = "harness-orphan-" + uuid.uuid4().hex
    phase = _Phase(sandbox, tmp_path)
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', '{token}'])\n"
        "print('started', flush=True)\n"
        "time.sleep(120)\n"
    )
    with pytest.raises(RuntimeError, match="log disk full"):
        phase.py(code, wallclock_s=60)
    assert helpers.wait_gone(token) == []
    assert _roots(sandbox) == []


def test_without_pidfd_a_thread_waits(sandbox, tmp_path, monkeypatch):
    def no_pidfd(pid):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(local_mod.os, "pidfd_open", no_pidfd)
    phase = _Phase(sandbox, tmp_path)
    assert phase.py("import sys; sys.exit(3)").exit_code == 3
    result = phase.py("import time; time.sleep(60)", wallclock_s=0.5)
    assert result.timed_out and 0.5 <= result.wallclock_s < 2.0


def test_mount_env_name():
    assert mount_env_name("workspace") == "HARNESS_WORKSPACE"
    assert mount_env_name("held-out.v2") == "HARNESS_HELD_OUT_V2"


# --------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------


def test_log_sink_head_then_tail(tmp_path):
    path = tmp_path / "log"
    sink = _LogSink(path, cap=200)
    sink.write(b"a" * 150)
    assert path.read_bytes() == b"a" * 150  # still streamed to the file
    for i in range(100):
        sink.write(b"%03d\n" % i)
    sink.close()
    kept = path.read_bytes()
    assert sink.truncated and sink.total == 150 + 400
    assert len(kept) <= 200
    assert kept.startswith(b"[harness: output truncated")
    assert kept.endswith(b"098\n099\n")
    assert sink.sha256 == hashlib.sha256(kept).hexdigest()
    assert not path.with_name("log.partial").exists()


def test_log_sink_tiny_cap_has_no_marker(tmp_path):
    path = tmp_path / "log"
    sink = _LogSink(path, cap=10)
    sink.write(b"0123456789abcdef")
    sink.close()
    assert path.read_bytes() == b"6789abcdef"


def test_make_tail_limits():
    data = b"".join(b"line %d\n" % i for i in range(1000))
    tail = make_tail(data)
    assert tail.splitlines()[-1] == "line 999" and len(tail.splitlines()) == 40
    assert len(make_tail(b"y" * 10_000).encode()) <= 4096
    assert make_tail(b"\xff\xfe bad bytes\n") .endswith("bad bytes")


def test_oom_heuristic():
    assert detect_oom(-signal.SIGKILL, False, "")
    assert detect_oom(137, False, "")
    assert not detect_oom(-signal.SIGKILL, True, "")  # the timeout killed it
    assert detect_oom(1, False, "Traceback ...\nMemoryError\n")
    assert detect_oom(1, False, "RuntimeError: DefaultCPUAllocator: can't allocate memory: 9 GB")
    assert detect_oom(1, False, "torch.OutOfMemoryError: CUDA out of memory.")
    assert not detect_oom(0, False, "MemoryError caught and handled")
    assert not detect_oom(1, False, "ValueError: boom")
    assert not detect_oom(None, False, "")


def test_rlimit_clamped_to_the_hosts_hard_limit(sandbox, monkeypatch):
    real = resource.getrlimit

    def fake(res):
        if res == resource.RLIMIT_DATA:
            return (resource.RLIM_INFINITY, 100 << 20)
        return real(res)

    monkeypatch.setattr(local_mod.resource, "getrlimit", fake)
    limits = Limits(wallclock_s=1, memory_mb=4096, output_bytes=10)
    got = {res: (soft, hard) for res, soft, hard in sandbox._rlimits(limits)}
    assert got[resource.RLIMIT_DATA] == (100 << 20, 100 << 20)
