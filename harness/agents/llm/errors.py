"""Errors of the LLM agents (all `AgentError`s, so the CLI reports them in one line)."""

from __future__ import annotations

from harness.agents.base import AgentError


class LLMError(AgentError):
    """The model's API could not produce an answer."""


class LLMUnavailable(LLMError):
    """The API stayed unreachable (429, 5xx, timeouts, connection errors) after the SDK's retries.

    Not the proposal's fault: the loop should treat it as infrastructure
    (stop cleanly so `--resume` continues, or record `harness_error`), never as
    a label of a proposal.
    """


class LLMRequestRejected(LLMError):
    """The API refused the request itself (bad key, unknown model, request too large).

    Retrying does not help; the run should stop with this message.
    """
