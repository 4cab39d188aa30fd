"""The local sandbox's mount jail and pids cgroup, phase by phase.

Skipped where this machine cannot give them (the sandbox then says so in
`mount_isolated` / `pids_base`), except under CI=true, where they must work.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandboxes import Limits, Mount, PhaseRequest, SandboxError
from sandboxes.local import LocalSandbox


@pytest.fixture
def jailed() -> LocalSandbox:
    sandbox = LocalSandbox()
    if not sandbox.mount_isolated:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and the local sandbox has no mount jail here", pytrace=False)
        pytest.skip("the local sandbox has no mount jail here")
    return sandbox


def request(tmp_path: Path, code: str, *, hidden: list[Path], out: Path, pids: int = 256) -> PhaseRequest:
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    return PhaseRequest(
        phase="train",
        command=["python", "-c", code],
        workdir="workspace",
        mounts=[Mount(source=workspace, target="workspace"), Mount(source=out, target="out", read_only=False)],
        limits=Limits(wallclock_s=30, memory_mb=1024, output_bytes=100_000, pids=pids),
        log_path=tmp_path / "phase.log",
        hidden=hidden,
    )


def test_hidden_run_folder_is_empty_but_the_phase_s_own_mount_inside_it_works(jailed, tmp_path):
    run = tmp_path / "run"
    (run / ".git").mkdir(parents=True)
    (run / ".git" / "HEAD").write_text("ref: refs/heads/best\n")
    (run / "labels.npy").write_text("secret")
    out = run / ".harness" / "trials" / "t0001" / "out"
    out.mkdir(parents=True)
    canary = tmp_path / "canary.txt"
    canary.write_text("canary\n")
    code = (
        "import os, subprocess\n"
        f"run = {str(run)!r}\n"
        "print('listing', sorted(os.listdir(run)))\n"
        "print('labels', os.path.exists(os.path.join(run, 'labels.npy')))\n"
        "open(os.path.join(os.environ['HARNESS_OUT'], 'model.pt'), 'w').write('weights')\n"
        "for path in (os.path.join(run, '.git', 'HEAD'), " + repr(str(canary)) + "):\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('WROTE', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', exc.errno)\n"
        "print('umount', subprocess.run(['umount', run], capture_output=True).returncode)\n"
        "print('remount', subprocess.run(['mount', '-o', 'remount,rw', '/'], capture_output=True).returncode)\n"
    )
    result = jailed.run(request(tmp_path, code, hidden=[run], out=out))
    assert result.exit_code == 0, result.log_tail
    lines = result.log_tail.splitlines()
    assert lines[0] == "listing ['.harness']"  # only the way to the phase's own mount
    assert lines[1] == "labels False"
    assert lines[2:4] == ["refused 2", "refused 30"]  # .git is gone (ENOENT), the host is read-only (EROFS)
    assert not lines[4].endswith(" 0") and not lines[5].endswith(" 0")  # the mounts are locked
    assert (out / "model.pt").read_text() == "weights"
    assert (run / ".git" / "HEAD").read_text() == "ref: refs/heads/best\n"
    assert canary.read_text() == "canary\n"
    assert result.limits["host_read_only"] is True and result.limits["hidden_paths"] == 1


def test_more_hidden_paths_than_one_argument_can_hold_are_all_hidden(jailed, tmp_path):
    # 1,500 run folders with long paths: their list is far beyond the 128 KiB of one argument.
    runs = [tmp_path / "runs" / f"run-{i:05d}-{'x' * 100}" for i in range(1500)]
    for run in runs:
        (run / ".harness").mkdir(parents=True)
        (run / ".harness" / "labels").write_text("secret")
    assert sum(len(str(r)) for r in runs) > 128 << 10
    probe = [runs[0], runs[777], runs[-1]]
    code = "import os\n" + "".join(
        f"print(os.path.exists({str(r / '.harness' / 'labels')!r}), os.listdir({str(r)!r}))\n" for r in probe)
    out = tmp_path / "out"
    out.mkdir()
    result = jailed.run(request(tmp_path, code, hidden=runs, out=out))
    assert result.exit_code == 0, result.log_tail
    assert result.log_tail.splitlines() == ["False []"] * 3
    assert result.limits["hidden_paths"] == 1500
    assert all((r / ".harness" / "labels").read_text() == "secret" for r in probe)


def test_hiding_the_phase_root_or_the_interpreter_is_refused(jailed, tmp_path):
    import sys

    out = tmp_path / "out"
    with pytest.raises(SandboxError, match="would hide"):
        jailed.run(request(tmp_path, "pass", hidden=[Path(sys.prefix)], out=out))
    with pytest.raises(SandboxError, match="would hide"):
        jailed.run(request(tmp_path, "pass", hidden=[Path("/")], out=out))


def test_pids_cgroup_caps_a_fork_loop_even_as_root(jailed, tmp_path):
    if jailed.pids_base is None:
        pytest.skip("no pids cgroup can be made here")
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(1000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError as exc:\n"
        "    print('refused after', n, exc.errno)\n"
    )
    result = jailed.run(request(tmp_path, code, hidden=[], out=tmp_path / "out", pids=32))
    assert result.exit_code == 0, result.log_tail
    started = int(result.log_tail.split()[2])
    assert 0 < started < 32
    assert result.limits["pids"] == 32 and result.limits["pids_refused"] >= 1
    assert result.wallclock_s < 10  # the leftovers died with the phase, nobody waited for them


def test_no_host_unix_socket_is_reachable_docker_s_included(jailed, tmp_path):
    # A read-only mount does not stop connect(): the jail covers the host's sockets themselves.
    import socket

    service = socket.socket(socket.AF_UNIX)
    service.bind(str(tmp_path / "service.sock"))
    service.listen(4)
    service.settimeout(0.5)
    targets = [str(tmp_path / "service.sock")] + [p for p in ("/run/docker.sock", "/var/run/docker.sock")
                                                   if os.path.exists(p)]
    code = (
        "import socket\n"
        f"for path in {targets!r}:\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        "    try:\n"
        "        s.connect(path)\n"
        "        print('REACHED', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', path, type(exc).__name__)\n"
    )
    out = tmp_path / "out"
    try:
        result = jailed.run(request(tmp_path, code, hidden=[], out=out))
        try:
            service.accept()
            accepted = True
        except TimeoutError:
            accepted = False
    finally:
        service.close()
    assert result.exit_code == 0, result.log_tail
    assert "REACHED" not in result.log_tail and result.log_tail.count("refused") == len(targets), result.log_tail
    assert not accepted
