"""The provider-neutral LLM agent: one research session per proposal, accounting, caching.

One `propose(ctx)`:

1. builds the opening (`prompt`: the recipe's brief, rules and knowledge, the
   best trial's editable files, the lineage view, the run notebook) for
   `ctx.specialist`;
2. runs a session (`session.run_session`): the model looks around with the
   tools (`tools`), checks its edit and ends with `submit_trial`; replies are
   replayed from the run's cache where a resumed run has them;
3. returns a `Proposal` with the model name, the session's tokens and cost, the
   notes it wrote and its transcript.

A session that never submits an edit that passes the checks still yields a
proposal, marked so that the loop records `malformed_proposal`, `apply_failed`
or `illegal_edit` (see `failed_proposal`); a submitted edit that applies but
never compiles is proposed as it is (the harness labels it `preflight_crash`).
API outages raise `LLMUnavailable` after the SDK's own retries; a refused
request raises `LLMRequestRejected`.

Subclasses (`anthropic_agent`, `openai_agent`) supply the SDK client and the
wire protocol: `_make_client` and `send`. Nothing a session changes lives on the
agent except the request counters (under a lock), so several threads may call
`propose` at once.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from harness.agents.base import AgentContext, AgentError
from harness.agents.llm.cache import ModelReply, ResponseCache
from harness.agents.llm.edits import Answer, AnswerError
from harness.agents.llm.errors import LLMRequestRejected, LLMUnavailable
from harness.agents.llm.pricing import PriceTable, load_prices
from harness.agents.llm.prompt import DEFAULT_FILE_CHARS, Prompt, Surface, build_prompt, resolve_specialist
from harness.agents.llm.session import Entry, SessionLimits, SessionResult, run_session
from harness.agents.llm.tools import Workbench
from harness.agents.llm.transcript import TRANSCRIPT_FORMAT, TranscriptRecorder
from harness.agents.llm.view import ViewOptions
from harness.agents.storable import without_surrogates
from harness.types import Proposal, Transcript, Usage

LOCAL_DUMMY_KEY = "harness-no-key"
"""Sent to a `base_url` server when no key is set in the environment (local servers ignore it)."""
REDACTED = "[redacted]"


def _where(base_url: str | None, default: str) -> str:
    """The API address without any user:password part."""
    if not base_url:
        return default
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def echoable(reply: ModelReply) -> ModelReply:
    """`reply` as it can be sent back in the repair request: lone surrogates (JSON escapes
    can spell them; the rejected answer's error names them) replaced by U+FFFD, also inside
    tool arguments, which providers send back as parsed objects that must encode as UTF-8."""
    calls = []
    for call in reply.calls:
        arguments = without_surrogates(call.arguments)
        try:
            value = json.loads(arguments)
            cleaned = _clean(value)
            if cleaned != value:
                arguments = json.dumps(cleaned)
        except (ValueError, RecursionError):
            pass  # not JSON (or past the parser's limits): sent back as the text it is
        calls.append(replace(call, arguments=arguments))
    return replace(reply, text=without_surrogates(reply.text), calls=tuple(calls))


class LLMAgent:
    """Base of the LLM agents; see the module docstring."""

    name = "llm"
    env_key = ""
    default_model = ""
    default_api = ""
    default_max_tokens: int | None = None

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        max_retries: int = 4,
        timeout_s: float = 600.0,
        max_repairs: int = 2,
        token_budget: int = 6000,
        cache_dir: str | Path | None = None,
        prices: str | Path | Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        seed: int = 0,
        max_turns: int = 40,
        session_tokens: int | None = None,
        session_cost: float | None = None,
        thinking_budget: int | None = None,
        reasoning_effort: str | None = None,
        temperature: float | None = None,
        focus_files: tuple[str, ...] | list[str] = (),
        focus_brief: str = "",
        api_key_env: str | None = None,
        file_chars: int = DEFAULT_FILE_CHARS,
    ) -> None:
        if max_retries < 0:
            raise AgentError(f"max_retries must be >= 0, got {max_retries}")
        if timeout_s <= 0:
            raise AgentError(f"timeout_s must be > 0, got {timeout_s}")
        if max_repairs < 0:
            raise AgentError(f"max_repairs must be >= 0, got {max_repairs}")
        if token_budget < 200:
            raise AgentError(f"token_budget must be at least 200, got {token_budget}")
        if max_turns < 1:
            raise AgentError(f"max_turns must be at least 1, got {max_turns}")
        if session_tokens is not None and session_tokens < 1:
            raise AgentError(f"session_tokens must be at least 1, got {session_tokens}")
        if session_cost is not None and session_cost <= 0:
            raise AgentError(f"session_cost must be > 0, got {session_cost}")
        if temperature is not None and not 0 <= temperature <= 2:
            raise AgentError(f"temperature must be between 0 and 2, got {temperature}")
        self.model = model or self.default_model
        self.base_url = base_url
        self.max_retries = max_retries
        self.timeout_s = float(timeout_s)
        self.max_repairs = max_repairs
        self.token_budget = token_budget
        self.max_tokens = max_tokens or self.default_max_tokens
        self.seed = seed
        self.limits = SessionLimits(max_turns=max_turns, max_tokens=session_tokens, max_cost_usd=session_cost)
        self.thinking_budget = thinking_budget
        self.reasoning_effort = reasoning_effort
        self.temperature = temperature
        self.focus_files = tuple(focus_files)
        self.focus_brief = focus_brief
        self.file_chars = file_chars
        self._check_options()
        self.view_options = ViewOptions(token_budget=token_budget)
        self.prices: PriceTable = load_prices(prices)
        self.cache = ResponseCache(cache_dir, self.name, self.model) if cache_dir is not None else None
        self.where = _where(base_url, self.default_api)

        key_var = api_key_env or self.env_key
        key = (os.environ.get(key_var) or "").strip() or None
        if key is None and base_url is None:
            raise AgentError(
                f"--agent {self.name} needs the API key in the environment variable {key_var} "
                f"(or --base-url for a local server that takes none)"
            )
        self._secrets: tuple[str, ...] = (key,) if key is not None and len(key) >= 8 else ()
        self._client = self._make_client(key or LOCAL_DUMMY_KEY)
        self._lock = threading.Lock()
        self.requests_made = 0
        """HTTP requests this process made (cache hits make none)."""
        self.spent = Usage()
        """Tokens and cost of the requests this process made."""

    @property
    def priced(self) -> bool:
        """Whether the price table knows the model (else its cost counts as 0.0)."""
        return self.prices.price_for(self.model) is not None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, api={self.where!r})"

    def settings(self) -> dict[str, Any]:
        """The session settings, as the transcript records them."""
        limits = self.limits
        data: dict[str, Any] = {"max_turns": limits.max_turns, "max_rejections": self.max_repairs + 1}
        for key, value in (("session_tokens", limits.max_tokens), ("session_cost", limits.max_cost_usd),
                           ("thinking_budget", self.thinking_budget), ("reasoning_effort", self.reasoning_effort),
                           ("temperature", self.temperature), ("max_tokens", self.max_tokens)):
            if value is not None:
                data[key] = value
        return data

    # -- provider protocol (subclasses) ---------------------------------------

    def _check_options(self) -> None:
        """Refuse options the protocol does not have (subclasses)."""

    def _make_client(self, api_key: str) -> Any:
        raise NotImplementedError

    def send(self, system: str, history: list[Entry]) -> ModelReply:
        """One API call with the whole history (the SDK retries inside); errors through `_translate`."""
        raise NotImplementedError

    # -- helpers --------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """`text` with any API key replaced."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _translate(self, exc: Exception, sdk: Any) -> Exception:
        """An SDK exception as `LLMUnavailable` / `LLMRequestRejected` (the key scrubbed)."""
        what = f"{self.name} API at {self.where}"
        if isinstance(exc, sdk.APITimeoutError):
            return LLMUnavailable(f"{what} timed out ({self.timeout_s:g} s per attempt, "
                                  f"with up to {self.max_retries} retries)")
        if isinstance(exc, sdk.APIConnectionError):
            return LLMUnavailable(self.scrub(f"{what} unreachable (with up to {self.max_retries} retries): {exc}"))
        if isinstance(exc, sdk.APIStatusError):
            code = exc.status_code
            message = self.scrub(str(getattr(exc, "message", "") or exc))[:500]
            if code in (408, 409, 429) or code >= 500:
                return LLMUnavailable(f"{what} answered HTTP {code} (with up to {self.max_retries} retries): {message}")
            return LLMRequestRejected(f"{what} rejected the request (HTTP {code}): {message}")
        return LLMUnavailable(self.scrub(f"{what} failed: {type(exc).__name__}: {exc}"))

    def reply_cost(self, reply: ModelReply) -> float:
        return self.prices.cost(self.model, reply.input_tokens, reply.output_tokens, reply.cache_read_tokens,
                                reply.cache_write_tokens)

    def _count(self, reply: ModelReply) -> None:
        with self._lock:
            self.requests_made += 1
            spent = self.spent
            self.spent = Usage(
                input_tokens=spent.input_tokens + reply.input_tokens,
                output_tokens=spent.output_tokens + reply.output_tokens,
                cost_usd=spent.cost_usd + self.reply_cost(reply),
                cache_read_tokens=spent.cache_read_tokens + reply.cache_read_tokens,
                cache_write_tokens=spent.cache_write_tokens + reply.cache_write_tokens,
            )

    def _proposal(self, ctx: AgentContext, prompt: Prompt, result: SessionResult, *, hypothesis: str, diff: str,
                  parent: str, expected_delta: float | None, **extra: Any) -> Proposal:
        return Proposal(
            hypothesis=self.scrub(hypothesis),
            diff=self.scrub(diff),
            parent=parent,
            expected_delta=expected_delta,
            agent=self.name,
            specialist=prompt.surface.specialist,
            model=self.model,
            usage=result.usage,
            notes=list(result.bench.notes),
            transcript=Transcript(format=TRANSCRIPT_FORMAT, content=result.transcript.encode("utf-8")),
            **extra,
        )

    # -- the agent ------------------------------------------------------------

    def surface(self, ctx: AgentContext) -> Surface:
        """What this proposal may edit: the recipe's surface, the specialist's files, a team focus."""
        focused = bool(self.focus_files or self.focus_brief)
        return Surface(ctx.spec, resolve_specialist(ctx, focused=focused), self.focus_files, self.focus_brief)

    def propose(self, ctx: AgentContext) -> Proposal:
        prompt = build_prompt(ctx, max_repairs=self.max_repairs, token_budget=self.token_budget,
                              view_options=self.view_options, file_chars=self.file_chars,
                              max_turns=self.limits.max_turns, surface=self.surface(ctx))
        cache = self.cache
        cached = cache.load(ctx.trial_number) if cache is not None else []
        bench = Workbench(ctx=ctx, surface=prompt.surface, parent=prompt.parent, max_rejections=self.max_repairs + 1,
                          scrub=self.scrub)
        recorder = TranscriptRecorder(scrub=self.scrub)
        recorder.session(trial=prompt.trial, agent=self.name, model=self.model, api=self.where,
                         specialist=prompt.surface.specialist, parent=prompt.parent, settings=self.settings())

        def store(replies: list[ModelReply]) -> None:
            self._count(replies[-1])
            if cache is not None:
                cache.store(ctx.trial_number, replies, prompt.sha256, scrub=self.scrub)

        result = run_session(self, prompt, bench, self.limits, recorder, cached, store, echoable)
        attempt = result.accepted or bench.fallback
        if attempt is not None:
            return self._proposal(ctx, prompt, result, hypothesis=attempt.answer.hypothesis, diff=attempt.diff,
                                  parent=attempt.parent, expected_delta=attempt.answer.expected_delta,
                                  fidelity=attempt.answer.fidelity)
        return self.failed_proposal(ctx, prompt, result)

    # -- sessions that never submitted a diff ----------------------------------

    def failed_proposal(self, ctx: AgentContext, prompt: Prompt, result: SessionResult) -> Proposal:
        """The proposal recorded when a session ended without an accepted submission: the
        label and the reason travel in `Proposal.failure` / `failure_reason`, and `diff`
        is the model's own diff when it wrote one (kept for the audit; the harness never
        applies a failed proposal). A session that ran out of turns or budget is
        `malformed_proposal` (it never produced a proposal)."""
        bench = result.bench
        error: AnswerError | None = bench.last_error if result.reason == "rejected" else None
        answer: Answer | None = bench.last_answer
        kind = error.kind if error is not None else "malformed_proposal"
        reason = f"{self.name} model {self.model}: session ended ({result.reason}): {result.note}"
        hypothesis = answer.hypothesis if answer is not None else \
            f"(no usable proposal from {self.model}: the session ended at {result.reason})"
        parent = (answer.parent if answer is not None else None) or prompt.parent
        if ctx.record(parent) is None:
            parent = prompt.parent
        expected = answer.expected_delta if answer is not None else None
        attempt_diff = (error.diff if error is not None else None) or (answer.diff if answer is not None and
                                                                        answer.diff else "")
        return self._proposal(ctx, prompt, result, hypothesis=hypothesis, diff=attempt_diff or "", parent=parent,
                              expected_delta=expected, failure=kind, failure_reason=self.scrub(reason))
