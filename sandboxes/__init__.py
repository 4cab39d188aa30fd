"""Sandboxes: run one phase of one trial, isolated, and measure it.

Only light imports here (pydantic models, the standard library). Use
`make_sandbox(kind)` to get a sandbox by the name a recipe or the CLI gives.
"""

from __future__ import annotations

from typing import Any

from sandboxes.base import Limits, Mount, PhaseRequest, PhaseResult, Sandbox
from sandboxes.errors import SandboxError, SandboxUnavailable

KINDS = ("local", "docker", "ray")
"""Sandbox kinds `make_sandbox` knows."""


def make_sandbox(kind: str, **options: Any) -> Sandbox:
    """Return a sandbox of the given kind (`local`, `docker` or `ray`).

    `options` go to the sandbox's constructor (e.g. `root_dir` for `local`,
    `image` for `docker`: an image id from `sandboxes.images.ensure_image`;
    `inner` (an `InnerSandbox`), `address`, `gpus_per_phase` for `ray`).
    Raises `SandboxUnavailable` for a kind that cannot be used here and
    `SandboxError` for a kind that does not exist.
    """
    if kind == "local":
        from sandboxes.local import LocalSandbox

        return LocalSandbox(**options)
    if kind == "docker":
        from sandboxes.docker import DockerSandbox

        return DockerSandbox(**options)
    if kind == "ray":
        from sandboxes.ray_cluster import RaySandbox

        return RaySandbox(**options)
    raise SandboxError(f"unknown sandbox kind {kind!r}; known kinds: {', '.join(KINDS)}")


def __getattr__(name: str) -> Any:
    # `from sandboxes import LocalSandbox` works without importing it eagerly.
    if name == "LocalSandbox":
        from sandboxes.local import LocalSandbox

        return LocalSandbox
    if name == "DockerSandbox":
        from sandboxes.docker import DockerSandbox

        return DockerSandbox
    if name == "RaySandbox":
        from sandboxes.ray_cluster import RaySandbox

        return RaySandbox
    raise AttributeError(f"module 'sandboxes' has no attribute {name!r}")


__all__ = [
    "DockerSandbox",
    "KINDS",
    "Limits",
    "LocalSandbox",
    "Mount",
    "PhaseRequest",
    "PhaseResult",
    "RaySandbox",
    "Sandbox",
    "SandboxError",
    "SandboxUnavailable",
    "make_sandbox",
]
