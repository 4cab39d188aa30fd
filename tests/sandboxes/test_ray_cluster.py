"""The Ray sandbox against a real local Ray head (2 CPUs), reached over Ray Client.

The protocol basics run through Ray (exit code, output, a read-write mount
comes back, a read-only one is never written back, the wallclock cap), then
what only a cluster has: archive caps, requests no node can satisfy, and a
worker killed mid-phase (a `SandboxError` naming the node and worker, and no
process of the phase left behind).
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time

import pytest

from ray_head import require_ray, start_head, task_workers
from sandboxes import SandboxError, SandboxUnavailable, make_sandbox
from sandboxes.ray_node import InnerSandbox

TASK_TITLE = "ray::harness:t0001:train"
"""Process title of the worker running the `Phase` helper's requests (trial t0001, phase train)."""


@pytest.fixture(scope="module")
def ray_head():
    require_ray()
    head = start_head(num_cpus=2, num_gpus=2)  # logical GPUs: Ray's bookkeeping is what is tested
    yield head
    import ray

    if ray.is_initialized():
        ray.shutdown()
    head.stop()


@pytest.fixture(scope="module")
def ray_sandbox(ray_head):
    return make_sandbox("ray", inner=InnerSandbox(kind="local"), address=ray_head.address)


@pytest.fixture
def sandbox(ray_sandbox):
    """Overrides the conformance suite's parametrized `sandbox`: `phase` runs through Ray here."""
    return ray_sandbox


def test_exit_code_output_and_log_come_back(phase):
    result = phase.py("import sys; print('hello from the node'); sys.stdout.flush(); sys.exit(3)")
    assert result.exit_code == 3
    assert not result.timed_out and not result.oom
    log = phase.log()
    assert b"hello from the node" in log
    assert result.output_bytes == len(log)
    assert result.log_sha256 == hashlib.sha256(log).hexdigest()
    assert "hello from the node" in result.log_tail
    assert result.image.startswith("local:python")


def test_read_write_mount_comes_back_exactly(phase):
    (phase.out / "stale.txt").write_text("from before the phase\n")
    result = phase.py(
        "import os, pathlib\n"
        "out = pathlib.Path(os.environ['HARNESS_OUT'])\n"
        "(out / 'stale.txt').unlink()\n"
        "(out / 'model').mkdir()\n"
        "(out / 'model' / 'weights.bin').write_bytes(bytes(range(256)) * 40)\n"
        "print(open('hello.txt').read().strip())\n"
    )
    assert result.exit_code == 0, result.log_tail
    assert sorted(p.relative_to(phase.out).as_posix() for p in phase.out.rglob("*")) == ["model", "model/weights.bin"]
    assert (phase.out / "model" / "weights.bin").read_bytes() == bytes(range(256)) * 40
    assert "hello" in result.log_tail  # the read-only workspace travelled too


def test_read_only_mount_is_never_written_back(phase):
    before = {p.name: p.read_bytes() for p in phase.workspace.iterdir()}
    result = phase.py(
        "import os\n"
        "try:\n"  # root could do this to a plain copy; the local sandbox's mount jail refuses it
        "    os.chmod('.', 0o755); os.chmod('hello.txt', 0o644)\n"
        "    open('hello.txt', 'w').write('rewritten')\n"
        "    open('planted.txt', 'w').write('new')\n"
        "except OSError as exc:\n"
        "    print('refused:', exc)\n"
    )
    assert result.exit_code == 0, result.log_tail
    assert {p.name: p.read_bytes() for p in phase.workspace.iterdir()} == before


def test_wallclock_cap_kills_the_phase_on_the_node(phase):
    started = time.monotonic()
    result = phase.py("import time; print('sleeping', flush=True); time.sleep(60)", wallclock_s=2.0)
    assert result.timed_out
    assert 2.0 <= result.wallclock_s < 10.0
    assert time.monotonic() - started < 30.0
    assert "sleeping" in result.log_tail


def test_a_mount_over_the_archive_cap_is_refused_by_name(ray_head, phase):
    small = make_sandbox("ray", inner=InnerSandbox(kind="local"), address=ray_head.address, max_archive_bytes=64 << 10)
    (phase.workspace / "big.bin").write_bytes(os.urandom(100 << 10))
    with pytest.raises(SandboxError, match=r"mount 'workspace' .* holds 102,4\d\d bytes and at most 65,536 bytes") as caught:
        small.run(phase.request(["python", "-c", "pass"]))
    assert "HARNESS_RAY_MAX_ARCHIVE_MB" in str(caught.value)


def test_outputs_over_the_archive_cap_are_refused_not_truncated(ray_head, phase):
    small = make_sandbox("ray", inner=InnerSandbox(kind="local"), address=ray_head.address, max_archive_bytes=64 << 10)
    (phase.out / "kept.txt").write_text("the host's copy stays\n")
    code = "import os; open(os.environ['HARNESS_OUT'] + '/big.bin', 'wb').write(os.urandom(200 << 10))"
    with pytest.raises(SandboxError, match=r"read-write mount 'out' after the phase holds"):
        small.run(phase.request(["python", "-c", code]))
    assert [p.name for p in phase.out.iterdir()] == ["kept.txt"]


def test_the_phase_gets_the_gpu_ids_ray_assigned_not_the_drivers(ray_head, phase):
    gpu_sandbox = make_sandbox("ray", inner=InnerSandbox(kind="local"), address=ray_head.address, gpus_per_phase=1)
    request = phase.request(["python", "-c", "import os; print('cuda=' + os.environ['CUDA_VISIBLE_DEVICES'])"])
    request = request.model_copy(update={"limits": request.limits.model_copy(update={"gpus": [7]})})
    result = gpu_sandbox.run(request)
    assert result.exit_code == 0, result.log_tail
    assert result.log_tail.strip() in ("cuda=0", "cuda=1")


def test_a_request_no_node_can_satisfy_fails_at_once(ray_head, phase):
    gpu_sandbox = make_sandbox("ray", inner=InnerSandbox(kind="local"), address=ray_head.address, gpus_per_phase=3)
    started = time.monotonic()
    with pytest.raises(SandboxUnavailable, match=r"no node of the Ray cluster .* has 2 CPUs, 3 GPUs .*nodes: 2 CPUs, 2 GPUs"):
        gpu_sandbox.run(phase.request(["python", "-c", "pass"]))
    assert time.monotonic() - started < 10.0


def test_worker_killed_mid_phase_is_a_sandbox_error_naming_it_and_nothing_is_left(
    ray_sandbox, phase, helpers
):
    token = f"orphan-check-{os.getpid()}-{time.monotonic_ns()}"
    # The phase cannot signal its start through a host file (the local sandbox's
    # mount jail makes the host read-only), so the test watches for its process.
    code = f"import time; time.sleep(120)  # {token}"
    outcome: dict[str, BaseException] = {}

    def run_phase() -> None:
        try:
            ray_sandbox.run(phase.request(["python", "-c", code], wallclock_s=120.0))
        except BaseException as exc:  # handed to the test thread below
            outcome["error"] = exc

    runner = threading.Thread(target=run_phase)
    runner.start()
    deadline = time.monotonic() + 60
    while not helpers.processes_with(token):
        assert time.monotonic() < deadline and runner.is_alive(), f"the phase never started: {outcome}"
        time.sleep(0.05)
    workers = task_workers(TASK_TITLE)
    assert len(workers) == 1, workers
    os.kill(workers[0], signal.SIGKILL)
    runner.join(60)
    assert not runner.is_alive()

    error = outcome.get("error")
    assert isinstance(error, SandboxError) and not isinstance(error, SandboxUnavailable), error
    message = str(error)
    assert "harness:t0001:train" in message
    assert "WorkerCrashedError" in message
    assert f"worker pid {workers[0]}" in message
    assert "on node " in message
    # The watchdog kills the orphaned phase (its whole PID namespace) and removes the node-side folder.
    assert helpers.wait_gone(token, within_s=15) == [], "the phase outlived its worker"
    assert not phase.log_path.exists()  # nothing came back, so nothing was written


def test_docker_on_the_nodes(ray_head, phase):
    """The inner sandbox may be Docker: the node runs the phase in a hardened container."""
    from sandboxes.images import base_image_tag, connect, engine_available, image_id

    if not engine_available():
        pytest.skip("no Docker engine answers")
    client = connect()
    try:
        image = image_id(client, base_image_tag())
    finally:
        client.close()
    if image is None:
        pytest.skip(f"no base image {base_image_tag()} (harness sandbox bootstrap)")
    docker_on_ray = make_sandbox("ray", inner=InnerSandbox(kind="docker", image=image), address=ray_head.address)
    assert docker_on_ray.name == "ray+docker"
    code = "import os, pathlib; pathlib.Path(os.environ['HARNESS_OUT'], 'where.txt').write_text(os.getcwd()); " \
           "print(open('hello.txt').read().strip(), 'uid', os.getuid())"
    result = docker_on_ray.run(phase.request(["python3", "-c", code]))
    assert result.exit_code == 0, result.log_tail
    assert result.image == image
    assert (phase.out / "where.txt").read_text() == "/workspace"
    assert "hello uid" in result.log_tail and "uid 0" not in result.log_tail
