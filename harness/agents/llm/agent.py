"""The provider-neutral LLM agent: prompt, repair loop, accounting, caching.

One `propose(ctx)`:

1. builds the prompt (recipe brief and rules, the best trial's editable files,
   the lineage view) for `ctx.specialist`;
2. asks the model (or replays the cached answer of this trial and attempt);
3. parses the `submit_trial` arguments and turns the edits into the canonical
   diff; a problem goes back to the model with the exact error, at most
   `max_repairs` times;
4. returns a `Proposal` with the model name, tokens and cost of all attempts.

An answer that never becomes a valid diff still yields a proposal, marked so
that the loop records `malformed_proposal`, `apply_failed` or `illegal_edit`
(see `failed_proposal`). API outages raise `LLMUnavailable` after the SDK's
own retries; a refused request raises `LLMRequestRejected`.

Subclasses (`anthropic_agent`, `openai_agent`) supply the SDK client and the
protocol: `_make_client`, `_begin`, `_send`, `_continue`.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from harness.agents.base import AgentContext, AgentError
from harness.agents.llm.cache import ModelReply, ResponseCache
from harness.agents.llm.edits import (
    Answer,
    AnswerError,
    Change,
    apply_search_replace,
    apply_unified_diff,
    changed_line_count,
    json_in_text,
    parse_answer,
    render_diff,
    syntax_problem,
)
from harness.agents.llm.errors import LLMRequestRejected, LLMUnavailable
from harness.agents.llm.pricing import PriceTable, load_prices
from harness.agents.llm.prompt import TOOL_NAME, Prompt, build_prompt, repair_message
from harness.agents.llm.view import ViewOptions
from harness.agents.storable import without_surrogates
from harness.types import Proposal, Usage

LOCAL_DUMMY_KEY = "harness-no-key"
"""Sent to a `base_url` server when no key is set in the environment (local servers ignore it)."""
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Attempt:
    """A parsed answer that produced a diff."""

    answer: Answer
    parent: str
    changes: list[Change]
    diff: str


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
    ) -> None:
        if max_retries < 0:
            raise AgentError(f"max_retries must be >= 0, got {max_retries}")
        if timeout_s <= 0:
            raise AgentError(f"timeout_s must be > 0, got {timeout_s}")
        if max_repairs < 0:
            raise AgentError(f"max_repairs must be >= 0, got {max_repairs}")
        if token_budget < 200:
            raise AgentError(f"token_budget must be at least 200, got {token_budget}")
        self.model = model or self.default_model
        self.base_url = base_url
        self.max_retries = max_retries
        self.timeout_s = float(timeout_s)
        self.max_repairs = max_repairs
        self.token_budget = token_budget
        self.max_tokens = max_tokens or self.default_max_tokens
        self.seed = seed
        self.view_options = ViewOptions(token_budget=token_budget)
        self.prices: PriceTable = load_prices(prices)
        self.cache = ResponseCache(cache_dir, self.name, self.model) if cache_dir is not None else None
        self.where = _where(base_url, self.default_api)

        key = (os.environ.get(self.env_key) or "").strip() or None
        if key is None and base_url is None:
            raise AgentError(
                f"--agent {self.name} needs the API key in the environment variable {self.env_key} "
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

    # -- provider protocol (subclasses) ---------------------------------------

    def _make_client(self, api_key: str) -> Any:
        raise NotImplementedError

    def _begin(self, prompt: Prompt) -> list[dict[str, Any]]:
        """The messages of the first request."""
        raise NotImplementedError

    def _send(self, prompt: Prompt, messages: list[dict[str, Any]]) -> ModelReply:
        """One API call (the SDK retries inside); errors through `_translate`."""
        raise NotImplementedError

    def _continue(self, messages: list[dict[str, Any]], reply: ModelReply, error: str) -> list[dict[str, Any]]:
        """The messages after `reply` was rejected with `error`."""
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

    def _count(self, reply: ModelReply) -> None:
        with self._lock:
            self.requests_made += 1
            spent = self.spent
            self.spent = Usage(
                input_tokens=spent.input_tokens + reply.input_tokens,
                output_tokens=spent.output_tokens + reply.output_tokens,
                cost_usd=spent.cost_usd + self.prices.cost(self.model, reply.input_tokens, reply.output_tokens),
            )

    @staticmethod
    def _reader(ctx: AgentContext, prompt: Prompt, parent: str):
        def read(path: str) -> str | None:
            if parent == prompt.parent and path in prompt.files:
                return prompt.files[path]
            try:
                return ctx.read_file(parent, path)
            except Exception:  # noqa: BLE001 - a file the trial lacks reads as missing
                return None

        return read

    @staticmethod
    def _arguments(reply: ModelReply) -> str | dict[str, Any]:
        if reply.calls:
            call = reply.calls[0]
            if call.name != TOOL_NAME:
                raise AnswerError("malformed_proposal", f"there is no tool {call.name!r}; call {TOOL_NAME}")
            if reply.stop_reason in ("max_tokens", "length"):
                raise AnswerError("malformed_proposal", "the answer was cut off at the output token limit; "
                                  "make the change shorter")
            return call.arguments
        found = json_in_text(reply.text)
        if found is not None:
            return found
        cut = " (it was cut off at the output token limit)" if reply.stop_reason in ("max_tokens", "length") else ""
        raise AnswerError("malformed_proposal", f"the answer has no {TOOL_NAME} tool call{cut}")

    def _resolve(self, ctx: AgentContext, prompt: Prompt, reply: ModelReply) -> Attempt:
        answer = parse_answer(self._arguments(reply))
        parent = answer.parent or prompt.parent
        rec = ctx.record(parent)
        if rec is None:
            ids = [r.trial.id for r in ctx.records]
            span = f"{ids[0]}..{ids[-1]}" if ids else "none"
            raise AnswerError("malformed_proposal", f"parent {parent} is not a trial of this run (trials: {span})")
        read = self._reader(ctx, prompt, parent)
        check = prompt.surface.check
        try:
            if answer.edits:
                changes = apply_search_replace(answer.edits, read, check, parent)
            else:
                changes = apply_unified_diff(answer.diff or "", read, check, parent)
        except AnswerError as err:
            err.answer = answer
            raise
        diff = render_diff(changes)
        limit = ctx.spec.budgets.max_diff_lines
        lines = changed_line_count(changes)
        if lines > limit:
            err = AnswerError("illegal_edit", f"the change is {lines} lines (added + removed), more than the "
                              f"recipe's max_diff_lines {limit}; make a smaller change")
            err.answer = answer
            err.diff = diff
            raise err
        return Attempt(answer, parent, changes, diff)

    def _proposal(self, ctx: AgentContext, prompt: Prompt, *, hypothesis: str, diff: str, parent: str,
                  expected_delta: float | None, usage: Usage, **extra: Any) -> Proposal:
        return Proposal(
            hypothesis=self.scrub(hypothesis),
            diff=self.scrub(diff),
            parent=parent,
            expected_delta=expected_delta,
            agent=self.name,
            specialist=prompt.surface.specialist,
            model=self.model,
            usage=usage,
            **extra,
        )

    # -- the agent ------------------------------------------------------------

    def propose(self, ctx: AgentContext) -> Proposal:
        prompt = build_prompt(ctx, max_repairs=self.max_repairs, token_budget=self.token_budget,
                              view_options=self.view_options)
        cached = self.cache.load(ctx.trial_number) if self.cache is not None else []
        replies: list[ModelReply] = []
        messages = self._begin(prompt)
        tokens_in = tokens_out = 0
        fallback: Attempt | None = None
        last_error: AnswerError | None = None
        last_answer: Answer | None = None

        for attempt in range(self.max_repairs + 1):
            if attempt < len(cached):
                reply = cached[attempt]
            else:
                reply = self._send(prompt, messages)
                self._count(reply)
                if self.cache is not None:
                    self.cache.store(ctx.trial_number, replies + [reply], prompt.sha256, scrub=self.scrub)
            replies.append(reply)
            tokens_in += reply.input_tokens
            tokens_out += reply.output_tokens
            try:
                result = self._resolve(ctx, prompt, reply)
            except AnswerError as err:
                last_error = err
                last_answer = err.answer or last_answer
                error_text = err.message
            else:
                problem = syntax_problem(result.changes)
                if problem is None:
                    return self._proposal(
                        ctx, prompt, hypothesis=result.answer.hypothesis, diff=result.diff, parent=result.parent,
                        expected_delta=result.answer.expected_delta,
                        usage=self._usage(tokens_in, tokens_out), fidelity=result.answer.fidelity,
                    )
                fallback = result  # applies; the harness will label it preflight_crash if never fixed
                error_text = f"the edited code does not compile: {problem}"
            if attempt < self.max_repairs:
                messages = self._continue(messages, echoable(reply),
                                          repair_message(error_text, attempt + 1, self.max_repairs))

        usage = self._usage(tokens_in, tokens_out)
        if fallback is not None:
            return self._proposal(ctx, prompt, hypothesis=fallback.answer.hypothesis, diff=fallback.diff,
                                  parent=fallback.parent, expected_delta=fallback.answer.expected_delta, usage=usage,
                                  fidelity=fallback.answer.fidelity)
        assert last_error is not None
        return self.failed_proposal(ctx, prompt, last_error, last_answer, usage)

    def _usage(self, tokens_in: int, tokens_out: int) -> Usage:
        return Usage(input_tokens=tokens_in, output_tokens=tokens_out,
                     cost_usd=self.prices.cost(self.model, tokens_in, tokens_out))

    # -- answers that never became a diff ------------------------------------

    def failed_proposal(self, ctx: AgentContext, prompt: Prompt, error: AnswerError, answer: Answer | None,
                        usage: Usage) -> Proposal:
        """The proposal recorded when every attempt was rejected: the label and the
        reason travel in `Proposal.failure` / `failure_reason`, and `diff` is the
        model's own diff when it wrote one (kept for the audit; the harness never
        applies a failed proposal)."""
        tries = self.max_repairs + 1
        reason = f"{self.name} model {self.model}: answer rejected {tries} time{'s' if tries > 1 else ''}; " \
                 f"last error: {error.message}"
        hypothesis = answer.hypothesis if answer is not None else f"(no usable answer from {self.model})"
        parent = (answer.parent if answer is not None else None) or prompt.parent
        if ctx.record(parent) is None:
            parent = prompt.parent
        expected = answer.expected_delta if answer is not None else None
        attempt_diff = error.diff or (answer.diff if answer is not None and answer.diff else "")
        return self._proposal(ctx, prompt, hypothesis=hypothesis, diff=attempt_diff, parent=parent,
                              expected_delta=expected, usage=usage, failure=error.kind,
                              failure_reason=self.scrub(reason))
