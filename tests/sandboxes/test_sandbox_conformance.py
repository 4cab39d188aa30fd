"""Conformance suite: what every sandbox must do, whatever its kind.

Parametrized over the `sandbox` fixture (see conftest.py). Checks that depend
on an isolation a sandbox could not set up on this machine (it says so through
`network_isolated` / `pid_isolated`) are skipped for it, never weakened.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import pytest

from sandboxes import PhaseResult, Sandbox


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(folder.rglob("*"))
    }


def _require(sandbox: Sandbox, attribute: str) -> None:
    if getattr(sandbox, attribute, True) is False:
        pytest.skip(f"{sandbox.name} sandbox runs without {attribute} here")


def _json_line(result: PhaseResult, prefix: str = "JSON ") -> object:
    for line in result.log_tail.splitlines():
        if line.startswith(prefix):
            return json.loads(line[len(prefix) :])
    raise AssertionError(f"no {prefix!r} line in the log tail:\n{result.log_tail}")


# --------------------------------------------------------------------------
# Protocol and exit status
# --------------------------------------------------------------------------


def test_is_a_sandbox(sandbox):
    assert isinstance(sandbox, Sandbox)
    assert isinstance(sandbox.name, str) and sandbox.name


def test_exit_zero(phase):
    result = phase.py("print('all good')")
    assert result.exit_code == 0
    assert not result.timed_out and not result.oom and not result.output_truncated
    assert result.log_tail == "all good"
    assert phase.log() == b"all good\n"
    assert result.output_bytes == len(b"all good\n")
    assert result.log_sha256 == hashlib.sha256(b"all good\n").hexdigest()
    assert result.image


def test_exit_code_passed_through(phase):
    result = phase.py("import sys; print('bye'); sys.exit(3)")
    assert result.exit_code == 3
    assert not result.oom and not result.timed_out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_by_signal_is_negative(phase, sig):
    result = phase.py(f"import os; os.kill(os.getpid(), {int(sig)})")
    assert result.exit_code == -sig
    assert not result.timed_out


def test_crash_is_not_oom(phase):
    result = phase.py("raise ValueError('boom')")
    assert result.exit_code == 1
    assert "ValueError: boom" in result.log_tail
    assert not result.oom


def test_command_not_found_is_a_result(phase):
    result = phase.run(["definitely-not-a-command-4711"])
    assert result.exit_code == 127
    assert "definitely-not-a-command-4711" in result.log_tail


def test_stdin_is_empty(phase):
    result = phase.py("import sys; print(repr(sys.stdin.read()))", wallclock_s=10)
    assert result.exit_code == 0 and result.log_tail == "''"


def test_wallclock_is_measured(phase):
    result = phase.py("import time; time.sleep(0.5)")
    assert result.exit_code == 0
    assert 0.5 <= result.wallclock_s < 3.0


# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------


def test_environment_is_empty_of_host_secrets(phase, monkeypatch):
    secret = "sk-test-" + uuid.uuid4().hex
    monkeypatch.setenv("FAKE_API_KEY", secret)
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    result = phase.py("import os, json; print('JSON ' + json.dumps(dict(os.environ)))")
    assert result.exit_code == 0
    env = _json_line(result)
    assert "FAKE_API_KEY" not in env and "ANTHROPIC_API_KEY" not in env
    assert not any(secret in value for value in env.values())
    harmless = {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED"}
    leaked = {k for k, v in env.items() if os.environ.get(k) == v and k not in harmless}
    assert not leaked
    assert env["LANG"] == "C.UTF-8"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONHASHSEED"] == "0"


def test_host_secrets_not_readable_through_proc(phase, sandbox, monkeypatch):
    _require(sandbox, "pid_isolated")
    secret = "sk-proc-" + uuid.uuid4().hex
    monkeypatch.setenv("FAKE_API_KEY", secret)
    code = (
        "import os\n"
        "hits = []\n"
        "for pid in os.listdir('/proc'):\n"
        "    try:\n"
        "        if os.environ['NEEDLE'][::-1].encode() in open(f'/proc/{pid}/environ', 'rb').read():\n"
        "            hits.append(pid)\n"
        "    except (OSError, ValueError):\n"
        "        pass\n"
        "print('HITS', hits)\n"
    )
    # The child gets the secret reversed, so that its own environ does not hold it.
    result = phase.py(code, env={"NEEDLE": secret[::-1]})
    assert result.exit_code == 0, result.log_tail
    assert result.log_tail == "HITS []"


def test_request_env_and_mount_variables(phase):
    code = (
        "import os, json, sys\n"
        "keys = ['HARNESS_WORKSPACE', 'HARNESS_OUT', 'EXTRA', 'HOME', 'TMPDIR']\n"
        "print('JSON ' + json.dumps({'env': {k: os.environ.get(k) for k in keys},"
        " 'cwd': os.getcwd(), 'exe': sys.executable,"
        " 'hello': open(os.path.join(os.environ['HARNESS_WORKSPACE'], 'hello.txt')).read()}))\n"
    )
    result = phase.py(code, env={"EXTRA": "value"})
    assert result.exit_code == 0, result.log_tail
    info = _json_line(result)
    env = info["env"]
    assert env["EXTRA"] == "value"
    assert env["HARNESS_WORKSPACE"] and env["HARNESS_OUT"]
    assert os.path.realpath(info["cwd"]) == os.path.realpath(env["HARNESS_WORKSPACE"])
    assert info["hello"] == "hello\n"
    assert env["HOME"] and env["TMPDIR"]


def test_python_is_the_sandbox_interpreter(phase, sandbox):
    result = phase.run(["python", "-c", "import sys; print(sys.executable)"])
    assert result.exit_code == 0, result.log_tail
    if sandbox.name == "local":
        assert result.log_tail == sys.executable  # the harness's own interpreter
    else:
        assert result.log_tail.startswith("/")  # the image's, found on its PATH


# --------------------------------------------------------------------------
# Mounts and the phase root
# --------------------------------------------------------------------------


def test_read_only_mount_cannot_change_the_host(phase):
    sub = phase.workspace / "pkg"
    sub.mkdir()
    (sub / "mod.py").write_text("X = 1\n")
    before = _tree(phase.workspace)
    code = (
        "import os, shutil\n"
        "def attempt(f):\n"
        "    try:\n"
        "        f()\n"
        "    except OSError:\n"
        "        pass\n"
        "attempt(lambda: open('hello.txt', 'w').write('changed'))\n"
        "attempt(lambda: open('pkg/mod.py', 'a').write('Y = 2'))\n"
        "attempt(lambda: open('new.txt', 'w').write('new'))\n"
        "attempt(lambda: os.chmod('hello.txt', 0o777))\n"
        "attempt(lambda: os.remove('pkg/mod.py'))\n"
        "attempt(lambda: shutil.rmtree('pkg'))\n"
        "print('done')\n"
    )
    result = phase.py(code)
    assert result.exit_code == 0, result.log_tail
    assert _tree(phase.workspace) == before
    assert (phase.workspace / "hello.txt").stat().st_mode & 0o222  # host modes untouched


def test_read_write_mount_receives_outputs(phase):
    (phase.out / "existing.txt").write_text("kept\n")
    code = (
        "import os\n"
        "out = os.environ['HARNESS_OUT']\n"
        "os.makedirs(os.path.join(out, 'ckpt'))\n"
        "open(os.path.join(out, 'ckpt', 'model.bin'), 'wb').write(b'weights')\n"
        "open(os.path.join(out, 'result.txt'), 'w').write('42')\n"
    )
    result = phase.py(code)
    assert result.exit_code == 0, result.log_tail
    assert (phase.out / "result.txt").read_text() == "42"
    assert (phase.out / "ckpt" / "model.bin").read_bytes() == b"weights"
    assert (phase.out / "existing.txt").read_text() == "kept\n"


def test_read_write_workdir(phase):
    mounts = [type(m)(**{**m.model_dump(), "read_only": False}) for m in phase.request(["x"]).mounts]
    result = phase.run(
        ["python", "-c", "open('made-here.txt', 'w').write('x')"], mounts=mounts
    )
    assert result.exit_code == 0, result.log_tail
    assert (phase.workspace / "made-here.txt").read_text() == "x"


def test_phase_root_is_removed(phase, sandbox):
    code = "import os; print(os.environ['HOME']); open(os.path.join(os.environ['HOME'], 'f'), 'w').write('x')"
    result = phase.py(code)
    assert result.exit_code == 0, result.log_tail
    home = Path(result.log_tail.strip())
    assert not home.exists()
    assert phase.out.is_dir() and phase.workspace.is_dir()
    if sandbox.name == "docker":  # HOME was a tmpfs of the container, which is gone
        import docker

        client = docker.from_env()
        try:
            assert client.containers.list(all=True, filters={"label": f"harness.run={phase.run_id}"}) == []
        finally:
            client.close()


def test_unmounted_host_folders_are_invisible(phase, sandbox, tmp_path):
    """Held-out data that is not mounted cannot be read, not even by its host path."""
    if not getattr(sandbox, "fs_isolated", False):
        pytest.skip(f"the {sandbox.name} sandbox does not isolate the file system (see its docstring)")
    heldout = tmp_path / "heldout_labels"
    heldout.mkdir()
    (heldout / "labels.json").write_text('{"secret": 1}')
    code = (
        "import os, sys\n"
        f"target = {str(heldout / 'labels.json')!r}\n"
        "print('EXISTS' if os.path.exists(target) else 'ABSENT')\n"
        "print(sorted(os.listdir('/')))\n"
    )
    result = phase.py(code)
    assert result.exit_code == 0, result.log_tail
    assert result.log_tail.splitlines()[0] == "ABSENT"
    assert "heldout_labels" not in result.log_tail


# --------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------


def test_timeout_kills_the_whole_group(phase, helpers):
    token = "harness-grandchild-" + uuid.uuid4().hex
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', '{token}'])\n"
        "print('started', flush=True)\n"
        "time.sleep(120)\n"
    )
    result = phase.py(code, wallclock_s=1.0)
    assert result.timed_out
    assert not result.oom
    assert 1.0 <= result.wallclock_s < 2.5
    assert "started" in result.log_tail
    assert helpers.wait_gone(token) == []


def test_timeout_kills_a_process_that_left_the_group(phase, sandbox, helpers):
    _require(sandbox, "pid_isolated")
    token = "harness-daemon-" + uuid.uuid4().hex
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', '{token}'],"
        " start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "time.sleep(120)\n"
    )
    result = phase.py(code, wallclock_s=1.0)
    assert result.timed_out
    assert helpers.wait_gone(token) == []


@pytest.mark.parametrize("escape", [False, True], ids=["same-group", "setsid"])
def test_no_process_left_after_normal_exit(phase, sandbox, helpers, escape):
    if escape:
        _require(sandbox, "pid_isolated")
    token = "harness-leftover-" + uuid.uuid4().hex
    code = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', '{token}'],"
        f" start_new_session={escape}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print('leaving')\n"
    )
    result = phase.py(code, wallclock_s=20)
    assert result.exit_code == 0, result.log_tail
    assert not result.timed_out
    assert result.wallclock_s < 5
    assert helpers.wait_gone(token) == []


@pytest.mark.parametrize(
    "bomb",
    [
        "x = bytearray(4 << 30)",
        "blocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))",
    ],
    ids=["one-allocation", "growing"],
)
def test_memory_bomb_is_oom(phase, bomb):
    result = phase.py(bomb, memory_mb=256, wallclock_s=30)
    assert result.exit_code not in (0, None)
    assert not result.timed_out
    assert result.oom, result.log_tail


def test_output_flood_keeps_the_tail(phase):
    cap = 1_000_000
    code = (
        "import sys\n"
        "line = b'x' * 1023 + b'\\n'\n"
        "block = line * 1024\n"
        "for i in range(50):\n"
        "    sys.stdout.buffer.write(block)\n"
        "sys.stdout.buffer.write(b'THE END\\n')\n"
    )
    result = phase.py(code, output_bytes=cap, wallclock_s=60)
    assert result.exit_code == 0
    assert result.output_truncated
    assert result.output_bytes == 50 * 1024 * 1024 + len(b"THE END\n")
    kept = phase.log()
    assert 0 < len(kept) <= cap
    assert kept.endswith(b"x\nTHE END\n")
    assert result.log_sha256 == hashlib.sha256(kept).hexdigest()
    assert result.log_tail.endswith("THE END")
    assert len(result.log_tail.encode()) <= 4096
    assert len(result.log_tail.splitlines()) <= 40


def test_output_just_under_the_cap_is_kept_whole(phase):
    code = "import sys; sys.stdout.write('a' * 999 + '\\n')"
    result = phase.py(code, output_bytes=1000)
    assert not result.output_truncated
    assert result.output_bytes == 1000
    assert phase.log() == b"a" * 999 + b"\n"


def test_stderr_is_merged(phase):
    code = "import sys; print('out', flush=True); print('err', file=sys.stderr, flush=True); print('out2')"
    result = phase.py(code)
    assert result.log_tail.splitlines() == ["out", "err", "out2"]


# --------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------


def test_no_connection_to_a_host_service(phase, sandbox):
    _require(sandbox, "network_isolated")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        # The service is reachable from the host itself.
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        code = (
            "import socket\n"
            "for host in ('127.0.0.1', '1.1.1.1'):\n"
            "    try:\n"
            f"        socket.create_connection((host, {port} if host == '127.0.0.1' else 53), timeout=3).close()\n"
            "        print('CONNECTED', host)\n"
            "    except OSError as exc:\n"
            "        print('BLOCKED', host, exc.errno)\n"
        )
        result = phase.py(code, wallclock_s=20)
    assert result.exit_code == 0, result.log_tail
    assert "CONNECTED" not in result.log_tail
    assert result.log_tail.count("BLOCKED") == 2


def test_mount_placeholders_in_argv_name_the_mount(phase):
    (phase.workspace / "tool.py").write_text("import sys; print('ran', sys.argv[1])\n")
    result = phase.run(["python", "{workspace}/tool.py", "{out}"])
    assert result.exit_code == 0, result.log_tail
    printed = phase.log().decode()
    assert "ran " in printed and "{out}" not in printed
