"""What is particular to the Docker sandbox, against the live engine.

The conformance suite (test_sandbox_conformance.py) runs every common check
against docker too; here: the container's hardening as `docker inspect`
shows it, GPUs, orphans after an orchestrator crash, engine errors, images.
Skipped without an engine, failed under CI=true (see conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from sandboxes import (
    Limits,
    Mount,
    PhaseRequest,
    SandboxError,
    SandboxUnavailable,
    make_sandbox,
)
from sandboxes.docker import DockerSandbox, _exit_code, reap_orphans
from sandboxes.images import (
    base_image_tag,
    bootstrap_base_image,
    context_files,
    ensure_image,
    image_id,
)

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox(docker_client) -> DockerSandbox:
    """Overrides the conformance fixture: the default docker sandbox (base image)."""
    return DockerSandbox()


def _request(tmp_path: Path, command: list[str], *, run_id: str, trial: str = "t0001", **limits: object) -> PhaseRequest:
    workspace = tmp_path / "workspace"
    out = tmp_path / "out"
    workspace.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    return PhaseRequest(
        phase="train",
        command=command,
        workdir="workspace",
        mounts=[
            Mount(source=workspace, target="workspace", read_only=True),
            Mount(source=out, target="out", read_only=False),
        ],
        env={"EXTRA": "1"},
        limits=Limits(**{"wallclock_s": 30, "memory_mb": 512, "output_bytes": 100_000, **limits}),
        labels={"harness.run": run_id, "harness.trial": trial, "harness.seed": "0"},
        log_path=tmp_path / "logs" / f"{trial}.log",
    )


def _containers(client, run_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"harness.run={run_id}"})


def _wait_for(predicate, within_s: float = 30.0, step_s: float = 0.1):
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return predicate()


# --------------------------------------------------------------------------
# docker inspect of a live trial container: one test per hardening setting
# --------------------------------------------------------------------------

SECRET = "sk-inspect-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def live(tmp_path_factory, docker_ready):
    """A trial container kept alive (sleeping) while the tests inspect it, then killed."""
    import docker

    client = docker.from_env()
    tmp = tmp_path_factory.mktemp("inspect")
    run_id = "inspect-" + uuid.uuid4().hex[:8]
    request = _request(
        tmp, ["python", "-c", "import time; time.sleep(120)"], run_id=run_id,
        wallclock_s=120, memory_mb=300, pids=123, cpus=1.0,
    )
    os.environ["FAKE_API_KEY"] = SECRET
    try:
        sandbox = DockerSandbox()
    finally:
        del os.environ["FAKE_API_KEY"]
    results = []
    thread = threading.Thread(target=lambda: results.append(sandbox.run(request)), daemon=True)
    thread.start()
    running = _wait_for(lambda: client.containers.list(filters={"label": f"harness.run={run_id}"}))
    assert running, "the trial container did not start"
    attrs = client.api.inspect_container(running[0].id)
    yield {"attrs": attrs, "sandbox": sandbox, "request": request}
    running[0].kill()
    thread.join(30)
    assert results and results[0].exit_code == -signal.SIGKILL
    assert _containers(client, run_id) == []  # removed after it ended
    client.close()


def test_inspect_network_none(live):
    assert live["attrs"]["HostConfig"]["NetworkMode"] == "none"
    assert set(live["attrs"]["NetworkSettings"]["Networks"]) == {"none"}


def test_inspect_cap_drop_all(live):
    assert live["attrs"]["HostConfig"]["CapDrop"] == ["ALL"]
    assert not live["attrs"]["HostConfig"]["CapAdd"]
    assert live["attrs"]["HostConfig"]["Privileged"] is False


def test_inspect_no_new_privileges(live):
    assert "no-new-privileges" in live["attrs"]["HostConfig"]["SecurityOpt"]


def test_inspect_pids_limit(live):
    assert live["attrs"]["HostConfig"]["PidsLimit"] == 123


def test_inspect_memory_limit_without_swap(live):
    host = live["attrs"]["HostConfig"]
    assert host["Memory"] == 300 * 1024 * 1024
    assert host["MemorySwap"] == host["Memory"]


def test_inspect_cpu_limit(live):
    assert live["attrs"]["HostConfig"]["NanoCpus"] == 1_000_000_000


def test_inspect_read_only_rootfs_with_sized_tmpfs(live):
    host = live["attrs"]["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert set(host["Tmpfs"]) == {"/tmp", "/home/harness"}
    assert all("size=" in options for options in host["Tmpfs"].values())


def test_inspect_non_root_user(live):
    user = live["attrs"]["Config"]["User"]
    assert user and user.split(":")[0] not in ("0", "root")


def test_inspect_init(live):
    assert live["attrs"]["HostConfig"]["Init"] is True


def test_inspect_labels(live):
    labels = live["attrs"]["Config"]["Labels"]
    assert labels["harness"] == "1"
    assert labels["harness.run"] == live["request"].labels["harness.run"]
    assert labels["harness.trial"] == "t0001"
    assert labels["harness.phase"] == "train"


def test_inspect_mounts_ro_rw(live):
    mounts = {m["Destination"]: m for m in live["attrs"]["Mounts"]}
    assert set(mounts) == {"/workspace", "/out"}
    assert mounts["/workspace"]["RW"] is False
    assert mounts["/out"]["RW"] is True
    assert mounts["/workspace"]["Type"] == "bind"


def test_inspect_env_has_no_host_secrets(live):
    env = dict(e.split("=", 1) for e in live["attrs"]["Config"]["Env"])
    assert "FAKE_API_KEY" not in env
    assert not any(SECRET in v for v in env.values())
    assert env["HARNESS_WORKSPACE"] == "/workspace" and env["HARNESS_OUT"] == "/out"
    assert env["EXTRA"] == "1"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_inspect_no_logs_kept_and_private_ipc(live):
    host = live["attrs"]["HostConfig"]
    assert host["LogConfig"]["Type"] == "none"
    assert host["IpcMode"] == "private"
    assert host["RestartPolicy"]["Name"] in ("no", "")


def test_effective_limits_match_inspect(live):
    limits = live["sandbox"].effective_limits(live["request"].limits)
    host = live["attrs"]["HostConfig"]
    assert limits["memory_bytes"] == host["Memory"]
    assert limits["memory_swap_bytes"] == host["MemorySwap"]
    assert limits["nano_cpus"] == host["NanoCpus"]
    assert limits["pids"] == host["PidsLimit"]
    assert limits["user"] == live["attrs"]["Config"]["User"]


# --------------------------------------------------------------------------
# From inside
# --------------------------------------------------------------------------


def test_seen_from_inside(sandbox, tmp_path):
    code = textwrap.dedent(
        """
        import json, os, socket
        status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines() if ':' in line)
        def writable(path):
            try:
                open(path, 'w').write('x')
                return True
            except OSError:
                return False
        print('JSON ' + json.dumps({
            'uid': os.getuid(), 'gid': os.getgid(),
            'cap_eff': status['CapEff'].strip(), 'no_new_privs': status['NoNewPrivs'].strip(),
            'interfaces': sorted(n for _, n in socket.if_nameindex()),
            'root_writable': writable('/evil'), 'tmp_writable': writable('/tmp/ok'),
            'home_writable': writable(os.path.join(os.environ['HOME'], 'ok')),
            'tmp_size': os.statvfs('/tmp').f_blocks * os.statvfs('/tmp').f_frsize,
            'pid1': open('/proc/1/cmdline', 'rb').read().split(b'\\0')[0].decode(),
        }))
        """
    )
    result = sandbox.run(_request(tmp_path, ["python", "-c", code], run_id="inside-" + uuid.uuid4().hex[:8]))
    assert result.exit_code == 0, result.log_tail
    info = json.loads(result.log_tail.split("JSON ", 1)[1])
    assert info["uid"] != 0 and info["gid"] != 0
    assert int(info["cap_eff"], 16) == 0
    assert info["no_new_privs"] == "1"
    assert info["interfaces"] == ["lo"]
    assert info["root_writable"] is False
    assert info["tmp_writable"] and info["home_writable"]
    assert info["tmp_size"] == sandbox.tmp_mb << 20
    assert "init" in info["pid1"]


def test_pids_limit_is_enforced(sandbox, tmp_path):
    code = textwrap.dedent(
        """
        import threading, time
        n = 0
        try:
            for _ in range(200):
                threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
                n += 1
        except RuntimeError as exc:
            print('STOPPED', n, exc)
        else:
            print('ALL', n)
        """
    )
    result = sandbox.run(_request(tmp_path, ["python", "-c", code], run_id="pids-" + uuid.uuid4().hex[:8], pids=32))
    assert "STOPPED" in result.log_tail, result.log_tail
    started = int(result.log_tail.split("STOPPED", 1)[1].split()[0])
    assert started < 32


def test_result_reports_image_id_and_limits(sandbox, tmp_path):
    result = sandbox.run(_request(tmp_path, ["python", "-c", "pass"], run_id="img-" + uuid.uuid4().hex[:8]))
    assert result.exit_code == 0
    assert result.image == sandbox.image and result.image.startswith("sha256:")
    assert result.limits["memory_bytes"] == 512 << 20
    assert result.limits["network"] == "none"


def test_read_write_mount_is_handed_to_the_container_user(sandbox, tmp_path):
    request = _request(tmp_path, ["python", "-c", "import os; open('/out/made', 'w').write('x'); os.mkdir('/out/sub')"],
                       run_id="own-" + uuid.uuid4().hex[:8])
    result = sandbox.run(request)
    assert result.exit_code == 0, result.log_tail
    made = tmp_path / "out" / "made"
    assert made.read_text() == "x"
    assert made.stat().st_uid == sandbox.uid
    assert (tmp_path / "workspace").stat().st_uid == os.getuid()  # read-only mounts untouched


def test_reserved_targets_are_refused(sandbox, tmp_path):
    request = _request(tmp_path, ["true"], run_id="bad-" + uuid.uuid4().hex[:8])
    bad = request.model_copy(update={"mounts": [*request.mounts, Mount(source=tmp_path / "out", target="etc")]})
    with pytest.raises(SandboxError, match="would hide /etc"):
        sandbox.run(bad)


def test_exit_status_mapping():
    assert _exit_code(0) == 0
    assert _exit_code(3) == 3
    assert _exit_code(127) == 127
    assert _exit_code(137) == -9
    assert _exit_code(143) == -15
    assert _exit_code(None) is None
    assert _exit_code(-1) is None


def test_timeout_removes_the_container(sandbox, tmp_path, docker_client):
    run_id = "timeout-" + uuid.uuid4().hex[:8]
    result = sandbox.run(_request(tmp_path, ["sleep", "60"], run_id=run_id, wallclock_s=1))
    assert result.timed_out and not result.oom
    assert 1.0 <= result.wallclock_s < 3.0
    assert _containers(docker_client, run_id) == []


def test_wait_connection_errors_are_retried(sandbox, tmp_path, monkeypatch):
    """`wait` raising ReadTimeout / ConnectionError (not only timeouts) does not lose the phase."""
    import requests

    real_client = sandbox.client
    failures = {"n": 0}

    def flaky_client():
        client = real_client()
        real_wait = client.api.wait

        def wait(container, timeout=None, condition=None):
            if failures["n"] < 3:
                failures["n"] += 1
                time.sleep(0.1)
                raise (requests.exceptions.ConnectionError if failures["n"] % 2 else requests.exceptions.ReadTimeout)(
                    "simulated"
                )
            return real_wait(container, timeout=timeout)

        client.api.wait = wait
        return client

    monkeypatch.setattr(sandbox, "client", flaky_client)
    result = sandbox.run(_request(tmp_path, ["python", "-c", "import time; time.sleep(1); print('done')"],
                                  run_id="flaky-" + uuid.uuid4().hex[:8]))
    assert failures["n"] == 3
    assert result.exit_code == 0 and result.log_tail == "done"
    assert not result.timed_out


def test_harness_interrupt_removes_the_container(sandbox, tmp_path, docker_client, monkeypatch):
    """An exception in the harness mid-phase (here: in wait) still removes the container."""
    run_id = "interrupt-" + uuid.uuid4().hex[:8]
    real_client = sandbox.client

    def broken_client():
        client = real_client()

        def wait(container, timeout=None, condition=None):
            raise KeyboardInterrupt

        client.api.wait = wait
        return client

    monkeypatch.setattr(sandbox, "client", broken_client)
    with pytest.raises(KeyboardInterrupt):
        sandbox.run(_request(tmp_path, ["sleep", "60"], run_id=run_id))
    assert _containers(docker_client, run_id) == []


# --------------------------------------------------------------------------
# GPUs
# --------------------------------------------------------------------------


def test_gpu_device_request_on_the_created_container(sandbox, tmp_path, docker_client):
    request = _request(tmp_path, ["nvidia-smi"], run_id="gpu-" + uuid.uuid4().hex[:8], gpus=[0, 1])
    cid = sandbox.create(docker_client, request)  # created, never started
    try:
        attrs = docker_client.api.inspect_container(cid)
    finally:
        docker_client.api.remove_container(cid, force=True)
    (device_request,) = attrs["HostConfig"]["DeviceRequests"]
    assert device_request["DeviceIDs"] == ["0", "1"]
    assert device_request["Capabilities"] == [["gpu"]]
    assert attrs["State"]["Status"] == "created"
    env = dict(e.split("=", 1) for e in attrs["Config"]["Env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "0,1"


def test_no_device_request_without_gpus(sandbox, tmp_path, docker_client):
    cid = sandbox.create(docker_client, _request(tmp_path, ["true"], run_id="nogpu-" + uuid.uuid4().hex[:8]))
    try:
        attrs = docker_client.api.inspect_container(cid)
    finally:
        docker_client.api.remove_container(cid, force=True)
    assert not attrs["HostConfig"]["DeviceRequests"]


def test_gpu_without_nvidia_runtime_is_a_clear_error(sandbox, tmp_path, docker_client):
    if "nvidia" in sandbox.engine_runtimes:
        pytest.skip("this engine has the NVIDIA runtime")
    run_id = "gpuerr-" + uuid.uuid4().hex[:8]
    with pytest.raises(SandboxUnavailable) as info:
        sandbox.run(_request(tmp_path, ["nvidia-smi"], run_id=run_id, gpus=[0]))
    message = str(info.value)
    assert "nvidia-container-toolkit" in message and "nvidia-ctk runtime configure" in message
    assert "Traceback" not in message
    assert _containers(docker_client, run_id) == []


# --------------------------------------------------------------------------
# Orphans: the orchestrator crashes mid-phase
# --------------------------------------------------------------------------

_ORCHESTRATOR = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sandboxes import Limits, Mount, PhaseRequest
    from sandboxes.docker import DockerSandbox
    run_id, tmp, wallclock, grace = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    (tmp / "ws").mkdir(exist_ok=True)
    DockerSandbox(self_kill_grace_s=grace).run(PhaseRequest(
        phase="train", command=["sleep", "300"], workdir="ws",
        mounts=[Mount(source=tmp / "ws", target="ws", read_only=False)],
        limits=Limits(wallclock_s=wallclock, memory_mb=256, output_bytes=10_000),
        labels={"harness.run": run_id, "harness.trial": "t0007", "harness.phase": "train"},
        log_path=tmp / "train.log"))
    """
)


def _crash_orchestrator(tmp_path: Path, client, run_id: str, wallclock: float, grace: float):
    proc = subprocess.Popen(
        [sys.executable, "-c", _ORCHESTRATOR, run_id, str(tmp_path), str(wallclock), str(grace)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        running = _wait_for(lambda: client.containers.list(filters={"label": f"harness.run={run_id}"}))
        assert running, "the orchestrator did not start its container"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return running[0]


def test_orchestrator_crash_then_reap_orphans(tmp_path, docker_client):
    run_id = "crash-" + uuid.uuid4().hex[:8]
    container = _crash_orchestrator(tmp_path, docker_client, run_id, wallclock=300, grace=60)
    time.sleep(0.5)
    container.reload()
    assert container.status == "running"  # the crash left it behind: an orphan
    other_run = "other-" + uuid.uuid4().hex[:8]
    assert reap_orphans(other_run) == []  # another run's reaping leaves it alone
    assert _containers(docker_client, run_id)
    removed = DockerSandbox().reap_orphans(run_id)  # what the loop calls on start and --resume
    assert removed == [container.name]
    assert _containers(docker_client, run_id) == []


def test_reap_orphans_spares_live_trials(sandbox, tmp_path, docker_client):
    run_id = "live-" + uuid.uuid4().hex[:8]
    ids = []
    for trial in ("t0001", "t0002"):
        (tmp_path / trial).mkdir()
        ids.append(sandbox.create(docker_client, _request(tmp_path / trial, ["true"], run_id=run_id, trial=trial)))
    try:
        removed = reap_orphans(run_id, live={"t0001"}, client=docker_client)
        assert len(removed) == 1 and "t0002" in removed[0]
        left = _containers(docker_client, run_id)
        assert [c.labels["harness.trial"] for c in left] == ["t0001"]
    finally:
        for cid in ids:
            try:
                docker_client.api.remove_container(cid, force=True)
            except Exception:
                pass


def test_orphan_kills_itself_after_the_cap(tmp_path, docker_client):
    """Nobody reaps it: the in-container timeout ends it at the wallclock cap + grace."""
    run_id = "selfkill-" + uuid.uuid4().hex[:8]
    container = _crash_orchestrator(tmp_path, docker_client, run_id, wallclock=1, grace=1)
    try:
        def exited():
            container.reload()
            return container.status == "exited"

        assert _wait_for(exited, within_s=15)
        assert container.attrs["State"]["ExitCode"] == 137
    finally:
        reap_orphans(run_id)


# --------------------------------------------------------------------------
# Engine and images
# --------------------------------------------------------------------------


def test_no_engine_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(SandboxUnavailable, match="no Docker engine answers.*dockerd"):
        make_sandbox("docker")
    from sandboxes.images import engine_available

    assert engine_available() is False


def test_missing_image_is_a_clear_error(docker_client):
    with pytest.raises(SandboxUnavailable, match="has no image"):
        DockerSandbox(image="harness-no-such-image:" + uuid.uuid4().hex[:8])


def test_bootstrap_is_idempotent(docker_client):
    started = time.monotonic()
    first = bootstrap_base_image(client=docker_client)
    assert bootstrap_base_image(client=docker_client) == first
    assert time.monotonic() - started < 10
    assert image_id(docker_client, base_image_tag()) == first
    labels = docker_client.images.get(first).labels
    assert labels["harness"] == "1" and labels["harness.python"] == "3.11"


def test_recipe_image_tag_is_a_content_hash(tmp_path, docker_client):
    from harness.types import SandboxSpec

    recipe = tmp_path / "tinyrecipe"
    recipe.mkdir()
    (recipe / "src").mkdir()
    (recipe / "src" / "train.py").write_text("print(1)\n")
    dockerfile = recipe / "Dockerfile"
    dockerfile.write_text("ARG BASE=harness-base:bookworm\nFROM ${BASE}\nRUN echo one > /marker\n")
    spec = SandboxSpec(dockerfile="Dockerfile")
    assert set(context_files(recipe.resolve(), "Dockerfile")) == {"Dockerfile"}  # not the source
    first = ensure_image(recipe, spec, client=docker_client)
    created = []
    try:
        created.append(first)
        tags = docker_client.images.get(first).tags
        assert any(t.startswith("harness-recipe-tinyrecipe:") for t in tags)
        (recipe / "src" / "train.py").write_text("print(2)\n")  # the source is not in the image
        started = time.monotonic()
        assert ensure_image(recipe, spec, client=docker_client) == first
        assert time.monotonic() - started < 5
        dockerfile.write_text("ARG BASE=harness-base:bookworm\nFROM ${BASE}\nRUN echo two > /marker\n")
        second = ensure_image(recipe, spec, client=docker_client)
        created.append(second)
        assert second != first
        result = DockerSandbox(image=second).run(
            _request(tmp_path, ["cat", "/marker"], run_id="tiny-" + uuid.uuid4().hex[:8])
        )
        assert result.log_tail == "two" and result.image == second
    finally:
        for image in created:
            try:
                docker_client.images.remove(image, force=True)
            except Exception:
                pass


def test_broken_dockerfile_is_a_sandbox_error(tmp_path, docker_client):
    from harness.types import SandboxSpec

    recipe = tmp_path / "broken"
    recipe.mkdir()
    (recipe / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nRUN exit 3\n")
    with pytest.raises(SandboxError, match="failed"):
        ensure_image(recipe, SandboxSpec(dockerfile="Dockerfile"), client=docker_client)


def test_recipe_without_dockerfile_runs_in_the_base_image(tmp_path, docker_client):
    from harness.types import SandboxSpec

    assert ensure_image(tmp_path, SandboxSpec(), client=docker_client) == image_id(docker_client, base_image_tag())
