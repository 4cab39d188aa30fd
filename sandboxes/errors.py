"""Errors a sandbox raises.

A sandbox raises only when it could not run a phase at all (a bad request, a
backend that is missing, a host failure). Anything the phase itself does,
crashing, timing out, running out of memory, is reported in the
`PhaseResult`, never raised.
"""

from __future__ import annotations


class SandboxError(Exception):
    """The sandbox could not run the phase (a harness problem, not the trial's)."""


class SandboxUnavailable(SandboxError):
    """The requested sandbox kind cannot be used here (not built, not installed, no daemon)."""
