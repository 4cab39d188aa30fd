"""Fixtures for the sandbox conformance suite.

`sandbox` is parametrized over every sandbox kind (`SANDBOX_PARAMS`): local
with and without namespaces, and docker. `phase` builds requests with a
read-only `workspace`, a read-write `out` and a log in `tmp_path`, so tests
only say what differs.

Docker tests need an engine and the offline base image. Without an engine
they are skipped, except under `CI=true`, where they fail: CI must test the
Docker sandbox. A missing base image is made (`bootstrap_base_image`, about
a minute) when this machine can (root, debootstrap); otherwise skipped, or
failed under CI.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
import pytest

from sandboxes import Limits, Mount, PhaseRequest, PhaseResult, Sandbox, make_sandbox

SANDBOX_PARAMS = [
    pytest.param(("local", {}), id="local"),
    pytest.param(("local", {"namespaces": False}), id="local-no-namespaces"),
    pytest.param(("docker", {}), id="docker"),
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a Docker engine (skipped without one, failed under CI=true)")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and the Docker sandbox cannot be tested: {reason}", pytrace=False)
    pytest.skip(reason)


_docker_state: dict[str, object] = {}


def require_docker() -> None:
    """Skip (fail under CI) unless an engine answers and the base image exists (made if possible)."""
    if "error" not in _docker_state:
        _docker_state["error"] = _check_docker()
    if _docker_state["error"]:
        _unavailable(str(_docker_state["error"]))


def _check_docker() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return f"no Docker engine answers: {str(exc).strip().splitlines()[-1:]}"
    try:
        from sandboxes.errors import SandboxError
        from sandboxes.images import bootstrap_base_image

        try:
            bootstrap_base_image(client=client)  # at once when the image exists
        except SandboxError as exc:
            return f"no base image and none can be made here: {exc}"
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def docker_ready() -> None:
    require_docker()


@pytest.fixture
def docker_client(docker_ready):
    import docker

    client = docker.from_env(timeout=60)
    yield client
    client.close()


@pytest.fixture(params=SANDBOX_PARAMS)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    kind, options = request.param
    if kind == "docker":
        require_docker()
    return make_sandbox(kind, **options)


class Phase:
    """Builds and runs requests against one sandbox, in one test's tmp_path."""

    def __init__(self, sandbox: Sandbox, tmp_path: Path) -> None:
        self.sandbox = sandbox
        self.workspace = tmp_path / "workspace"
        self.out = tmp_path / "out"
        self.log_path = tmp_path / "logs" / "phase.log"
        self.workspace.mkdir()
        self.out.mkdir()
        (self.workspace / "hello.txt").write_text("hello\n")
        self.run_id = "test-" + uuid.uuid4().hex[:12]
        self.labels = {"harness.run": self.run_id, "harness.trial": "t0001"}

    def request(
        self,
        command: list[str],
        *,
        wallclock_s: float = 30.0,
        memory_mb: int = 1024,
        output_bytes: int = 1_000_000,
        env: dict[str, str] | None = None,
        mounts: list[Mount] | None = None,
        workdir: str = "workspace",
    ) -> PhaseRequest:
        if mounts is None:
            mounts = [
                Mount(source=self.workspace, target="workspace", read_only=True),
                Mount(source=self.out, target="out", read_only=False),
            ]
        return PhaseRequest(
            phase="train",
            command=command,
            workdir=workdir,
            mounts=mounts,
            env=env or {},
            limits=Limits(wallclock_s=wallclock_s, memory_mb=memory_mb, output_bytes=output_bytes),
            labels=dict(self.labels),
            log_path=self.log_path,
        )

    def run(self, command: list[str], **kwargs: object) -> PhaseResult:
        return self.sandbox.run(self.request(command, **kwargs))  # type: ignore[arg-type]

    def py(self, code: str, **kwargs: object) -> PhaseResult:
        """Run `python -c code`."""
        return self.run(["python", "-c", code], **kwargs)

    def log(self) -> bytes:
        return self.log_path.read_bytes()


@pytest.fixture
def phase(sandbox: Sandbox, tmp_path: Path) -> Phase:
    return Phase(sandbox, tmp_path)


def processes_with(token: str) -> list[int]:
    """Host pids of live processes whose command line contains `token`."""
    found = []
    needle = token.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if needle in f.read():
                    found.append(int(name))
        except OSError:
            pass
    return found


def wait_gone(token: str, within_s: float = 3.0) -> list[int]:
    """Wait for the processes carrying `token` to disappear; returns the survivors."""
    end = time.monotonic() + within_s
    while True:
        left = processes_with(token)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.05)


@pytest.fixture
def helpers() -> object:
    class H:
        processes_with = staticmethod(processes_with)
        wait_gone = staticmethod(wait_gone)

    return H

