"""A local fake of the Anthropic Messages and OpenAI Chat Completions APIs, for tests.

The server listens on 127.0.0.1 (ephemeral port) and answers each POST from a
script: a queue of replies, each a `Reply` or a callable that makes one from
the request. It speaks just enough of both protocols for the official SDKs:

- `POST /v1/messages` (Anthropic): `tool_use` content blocks, signed
  `thinking` blocks, `usage` with cache reads/writes, error bodies
  `{"type": "error", "error": {...}}`.
- `POST /v1/chat/completions` (OpenAI and compatible servers): `tool_calls`,
  `reasoning_content`, `usage` with cached tokens, error bodies `{"error": {...}}`.

Like the real APIs it refuses (HTTP 400, reason in `server.refused`) a history
that breaks the protocol: tool calls without their results, an altered or
missing thinking block when thinking is on, thinking with a forced tool.

Every request is recorded (path, headers, JSON body) so tests can assert on
prompts and request counts. Point the real clients at it::

    with FakeLLMServer() as server:
        server.push(ToolCall({...}))
        anthropic.Anthropic(api_key="k", base_url=server.anthropic_base_url)
        openai.OpenAI(api_key="k", base_url=server.openai_base_url)

`start_collision_server()` starts one that runs short research sessions on
the collision recipe (list and read the files, check an edit, note, submit a
search/replace of a knob line of config.py read from the conversation, so it
applies to whatever trial is the best), for end-to-end runs of
`harness run --agent anthropic|openai` through the CLI::

    sys.path.insert(0, str(Path(__file__).parents[1] / "fakes"))   # from a test under tests/e2e
    from llm_server import start_collision_server

    fake = start_collision_server()
    try:
        env = {**os.environ, "ANTHROPIC_API_KEY": "sk-planted-..."}
        subprocess.run([sys.executable, "-m", "harness.cli", "run", "--agent", "anthropic",
                        "--base-url", fake.anthropic_base_url, "--trials", "3", ...], env=env)
        # --agent openai: "--base-url", fake.openai_base_url
        assert len(fake.requests) == 9   # three turns per proposal; a resumed run adds none
    finally:
        fake.stop()

Run this file to get such a server by hand::

    python tests/fakes/llm_server.py     # prints the base URLs, serves until Ctrl-C
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Union

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"
TOOL_NAME = "submit_trial"


# --------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------


@dataclass
class Reply:
    """Base of the scripted replies."""


@dataclass
class ToolCall(Reply):
    """A successful answer calling the tool `name` with `input`.

    `input` is the tool's arguments: a dict, or (OpenAI only) raw argument text
    that need not be valid JSON, to script a malformed answer. `usage` is
    (uncached input, output) tokens; `cache` is (read, written) prompt tokens;
    `thinking` (Anthropic) comes back as a signed thinking block.
    """

    input: Union[dict[str, Any], str]
    text: str = ""
    usage: tuple[int, int] = (1000, 200)
    name: str = TOOL_NAME
    thinking: str = ""
    cache: tuple[int, int] = (0, 0)


@dataclass
class Calls(Reply):
    """One answer calling several tools (in order), e.g. `Calls([ToolCall({...}, name="read_file"), ...])`."""

    calls: list[ToolCall]
    text: str = ""
    usage: tuple[int, int] = (1000, 200)
    thinking: str = ""
    cache: tuple[int, int] = (0, 0)


@dataclass
class Text(Reply):
    """A successful answer with text only, no tool call."""

    text: str
    usage: tuple[int, int] = (1000, 50)
    thinking: str = ""
    cache: tuple[int, int] = (0, 0)


def tool(name: str, **arguments: Any) -> ToolCall:
    """A call of the session tool `name` with keyword arguments, e.g. `tool("read_file", path="config.py")`."""
    return ToolCall(arguments, name=name, usage=(500, 50))


@dataclass
class Status(Reply):
    """An HTTP error (429, 500, 529 ...). `retry-after-ms` keeps SDK backoff short in tests."""

    code: int
    message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=lambda: {"retry-after-ms": "10"})


@dataclass
class Slow(Reply):
    """Wait `seconds` (or until the server stops), then answer with `then`."""

    seconds: float
    then: Reply = field(default_factory=lambda: Status(500, "slow reply"))


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: str

    @property
    def protocol(self) -> str:
        return "anthropic" if self.path == ANTHROPIC_PATH else "openai" if self.path == OPENAI_PATH else "?"

    def texts(self) -> list[str]:
        """Every piece of text the request carries (system, messages, tool results), in order."""
        out: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, list):
                for item in node:
                    walk(item)
            elif isinstance(node, dict):
                for key, value in node.items():
                    if key in ("text", "content", "system", "arguments", "input"):
                        walk(value if not isinstance(value, dict) else json.dumps(value))
                    elif key in ("messages", "tool_calls", "function"):
                        walk(value)

        if isinstance(self.body, dict):
            walk(self.body.get("system"))
            walk(self.body.get("messages"))
        return out

    def prompt(self) -> str:
        """All the request's text joined: what a model would read."""
        return "\n".join(self.texts())


Responder = Callable[[Recorded], Reply]
Scripted = Union[Reply, Responder]


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                429: "rate_limit_error", 529: "overloaded_error"}


SIGNING_KEY = b"fake-llm-server-thinking"


def signature_of(thinking: str) -> str:
    """The signature the fake gives a thinking block (checked when the block comes back)."""
    return hmac.new(SIGNING_KEY, thinking.encode(), hashlib.sha256).hexdigest()


def _calls_of(reply: Reply) -> list[ToolCall]:
    if isinstance(reply, Calls):
        return list(reply.calls)
    return [reply] if isinstance(reply, ToolCall) else []


DEFAULT_THINKING = "Weighing what to look at next."
"""The thinking of a reply that scripts none, when the request turns thinking on (the API always thinks then)."""


def _anthropic_body(reply: Reply, model: str, n: int, thinking_on: bool = False) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    thinking = getattr(reply, "thinking", "") or (DEFAULT_THINKING if thinking_on else "")
    if thinking:
        content.append({"type": "thinking", "thinking": thinking, "signature": signature_of(thinking)})
    if getattr(reply, "text", ""):
        content.append({"type": "text", "text": reply.text})
    calls = _calls_of(reply)
    for i, call in enumerate(calls):
        tool_input = call.input
        if isinstance(tool_input, str):
            try:
                tool_input = json.loads(tool_input)
            except json.JSONDecodeError:
                tool_input = {"raw": tool_input}
        content.append({"type": "tool_use", "id": f"toolu_{n:04d}_{i}", "name": call.name, "input": tool_input})
    read, written = getattr(reply, "cache", (0, 0))
    return {
        "id": f"msg_{n:04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if calls else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": reply.usage[0], "output_tokens": reply.usage[1],
                  "cache_read_input_tokens": read, "cache_creation_input_tokens": written},
    }


def _openai_body(reply: Reply, model: str, n: int) -> dict[str, Any]:
    calls = _calls_of(reply)
    message: dict[str, Any] = {"role": "assistant", "content": getattr(reply, "text", "") or None}
    if calls:
        message["tool_calls"] = [
            {"id": f"call_{n:04d}_{i}", "type": "function",
             "function": {"name": call.name,
                          "arguments": call.input if isinstance(call.input, str) else json.dumps(call.input)}}
            for i, call in enumerate(calls)]
    if getattr(reply, "thinking", ""):
        message["reasoning_content"] = reply.thinking
    read, _written = getattr(reply, "cache", (0, 0))
    prompt_tokens = reply.usage[0] + read
    return {
        "id": f"chatcmpl-{n:04d}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop",
                     "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": reply.usage[1],
                  "total_tokens": prompt_tokens + reply.usage[1],
                  "prompt_tokens_details": {"cached_tokens": read}},
    }


# --------------------------------------------------------------------------
# What the real APIs refuse (a 400 here too, so a client that breaks the rules fails its test)
# --------------------------------------------------------------------------


def anthropic_problem(body: Any) -> str | None:
    """Why the Messages API would refuse `body` (tool results, thinking blocks), or None."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    messages = body.get("messages") or []
    thinking_on = (body.get("thinking") or {}).get("type") == "enabled"
    choice = (body.get("tool_choice") or {}).get("type")
    if thinking_on and choice in ("tool", "any"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    for i, message in enumerate(messages):
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        if message.get("role") == "assistant":
            for block in blocks:
                if block.get("type") == "thinking" and block.get("signature") != signature_of(block.get("thinking", "")):
                    return f"messages.{i}: Invalid `signature` in `thinking` block"
            uses = [b["id"] for b in blocks if b.get("type") == "tool_use"]
            if uses:
                following = messages[i + 1]["content"] if i + 1 < len(messages) else []
                results = [b.get("tool_use_id") for b in following if isinstance(b, dict)
                           and b.get("type") == "tool_result"] if isinstance(following, list) else []
                if sorted(results) != sorted(uses):
                    return (f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks "
                            f"immediately after: {sorted(set(uses) - set(results))}")
                if thinking_on and blocks[0].get("type") not in ("thinking", "redacted_thinking") and \
                        i == max(j for j, m in enumerate(messages) if m.get("role") == "assistant"):
                    return (f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                            f"`{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message "
                            "must start with a thinking block.")
    return None


def openai_problem(body: Any) -> str | None:
    """Why Chat Completions would refuse `body` (tool messages without a call, calls without results), or None."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    messages = body.get("messages") or []
    for i, message in enumerate(messages):
        calls = [c["id"] for c in message.get("tool_calls") or []] if message.get("role") == "assistant" else []
        if calls:
            answered = []
            for later in messages[i + 1:]:
                if later.get("role") != "tool":
                    break
                answered.append(later.get("tool_call_id"))
            if sorted(answered) != sorted(calls):
                return ("An assistant message with 'tool_calls' must be followed by tool messages responding to "
                        f"each 'tool_call_id'. Missing: {sorted(set(calls) - set(answered))}")
        if message.get("role") == "tool":
            previous = next((m for m in reversed(messages[:i]) if m.get("role") != "tool"), {})
            if message.get("tool_call_id") not in [c["id"] for c in previous.get("tool_calls") or []]:
                return f"messages.[{i}]: a 'tool' message must respond to a preceding 'tool_calls' entry"
    return None


def _error_body(protocol: str, code: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(code, "api_error")
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


class FakeLLMServer:
    """The fake server; a context manager that starts and stops it."""

    def __init__(self, script: list[Scripted] | None = None, *, default: Scripted | None = None) -> None:
        self._script: deque[Scripted] = deque(script or [])
        self.default = default
        """Reply (or responder) used when the script is empty; None: answer 500 "script exhausted"."""
        self.requests: list[Recorded] = []
        self.refused: list[str] = []
        """Why requests were refused with 400 for breaking the protocol's rules (the script is not used)."""
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests the server was answering at once."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._counter = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- script ---------------------------------------------------------------

    def push(self, *replies: Scripted) -> "FakeLLMServer":
        with self._lock:
            self._script.extend(replies)
        return self

    def pending(self) -> int:
        """Scripted replies not yet used."""
        with self._lock:
            return len(self._script)

    def count(self, path: str | None = None) -> int:
        """Requests received (to `path` when given)."""
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def _next(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            item = self._script.popleft() if self._script else self.default
        if item is None:
            return Status(500, "fake LLM server: script exhausted", headers={"x-should-retry": "false"})
        return item(request) if callable(item) and not isinstance(item, Reply) else item

    # -- lifecycle ------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def anthropic_base_url(self) -> str:
        """`base_url` for `anthropic.Anthropic` (the SDK appends /v1/messages)."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """`base_url` for `openai.OpenAI` (the SDK appends /chat/completions)."""
        return self.url + "/v1"

    def start(self) -> "FakeLLMServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode("utf-8", errors="replace")
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = None
                request = Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw)
                if request.protocol == "?":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                problem = (anthropic_problem if request.protocol == "anthropic" else openai_problem)(body)
                if problem is not None:
                    with server._lock:
                        server.requests.append(request)
                        server.refused.append(problem)
                    self._send(400, _error_body(request.protocol, 400, problem))
                    return
                reply = server._next(request)
                while isinstance(reply, Slow):
                    if server._stopping.wait(reply.seconds):
                        return
                    reply = reply.then
                n = next(server._counter)
                model = body.get("model", "fake") if isinstance(body, dict) else "fake"

                if isinstance(reply, Status):
                    self._send(reply.code, _error_body(request.protocol, reply.code, reply.message), reply.headers)
                elif request.protocol == "anthropic":
                    thinking_on = isinstance(body, dict) and (body.get("thinking") or {}).get("type") == "enabled"
                    self._send(200, _anthropic_body(reply, model, n, thinking_on))
                else:
                    self._send(200, _openai_body(reply, model, n))

            def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------
# Canned answers for the collision recipe (end-to-end runs)
# --------------------------------------------------------------------------

COLLISION_CHANGES: list[tuple[str, str, str]] = [
    ("BACKBONE", "vjepa_l", "V-JEPA features carry motion, which a collision needs"),
    ("ENCODER", "gru", "A GRU sees the order of frames, so it can tell a crash from a near miss"),
    ("ENCODER", "tcn", "A TCN sees local temporal patterns of the approach"),
    ("HEAD", "mlp", "An MLP head separates the hard negatives better than a linear one"),
    ("BACKBONE", "clip_vitb16", "CLIP features may describe the scene better"),
    ("LOSS", "focal", "Focal loss focuses on the hard negatives"),
]


def _current(prompt: str, name: str) -> str | None:
    found = re.search(rf'^{name} = "(\w+)"', prompt, re.M)
    return found.group(1) if found else None


def collision_edit(request: Recorded, turn: int = 0) -> ToolCall:
    """A good search/replace edit of the collision recipe's config.py for the config shown in `request`.

    Picks the `turn`-th change (cycling) whose value differs from the one the
    prompt shows, and writes the search text from the prompt itself, so it
    applies to whatever trial the agent was shown.
    """
    prompt = request.prompt()
    for offset in range(len(COLLISION_CHANGES)):
        name, value, why = COLLISION_CHANGES[(turn + offset) % len(COLLISION_CHANGES)]
        current = _current(prompt, name)
        if current is not None and current != value:
            return ToolCall({
                "hypothesis": f"{why}: set {name} to {value}.",
                "expected_delta": 0.02,
                "edits": [{"file": "config.py", "search": f'{name} = "{current}"',
                           "replace": f'{name} = "{value}"'}],
            })
    return ToolCall({"hypothesis": "Nothing left to try in config.py", "expected_delta": 0.0,
                     "edits": [{"file": "config.py", "search": "EPOCHS = ", "replace": "EPOCHS = "}]})


def session_turn(request: Recorded) -> int:
    """Which turn of its session a request is (0 = the opening request): its assistant messages."""
    messages = request.body.get("messages", []) if isinstance(request.body, dict) else []
    return sum(1 for m in messages if m.get("role") == "assistant")


def trial_of(request: Recorded) -> int:
    """The trial number the session is asked to propose ("Propose trial t0003" in the opening)."""
    found = re.search(r"Propose trial t(\d+)", request.prompt())
    return int(found.group(1)) if found else 0


def collision_session(request: Recorded) -> Reply:
    """A whole research session, one turn per request and stateless (so concurrent sessions
    work): look at the files, read config.py, check the edit, write a note and submit."""
    turn = session_turn(request)
    if turn == 0:
        return Calls([tool("list_files"), tool("read_file", path="config.py")], text="Let me look at the code.")
    edit = collision_edit(request, trial_of(request))
    if turn == 1:
        return ToolCall(edit.input, name="check_edit", usage=(800, 80))
    return Calls([ToolCall({"text": f"trial {trial_of(request)}: {edit.input['hypothesis']}"}, name="note"),
                  ToolCall(edit.input)], usage=(900, 150))


def collision_responder() -> Responder:
    """A responder for sessions on the collision recipe (see `collision_session`)."""
    return collision_session


def start_collision_server() -> FakeLLMServer:
    """A started server answering every request with a good collision edit (both protocols).

    Use `server.anthropic_base_url` / `server.openai_base_url` as `--base-url`,
    `server.requests` to count what was asked, and `server.stop()` at the end.
    """
    return FakeLLMServer(default=collision_responder()).start()


if __name__ == "__main__":  # pragma: no cover - manual use
    fake = start_collision_server()
    print(f"anthropic base url: {fake.anthropic_base_url}")
    print(f"openai base url:    {fake.openai_base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
