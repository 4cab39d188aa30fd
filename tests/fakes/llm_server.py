"""A local fake of the Anthropic Messages and OpenAI Chat Completions APIs, for tests.

The server listens on 127.0.0.1 (ephemeral port) and answers each POST from a
script: a queue of replies, each a `Reply` or a callable that makes one from
the request. It speaks just enough of both protocols for the official SDKs:

- `POST /v1/messages` (Anthropic): `tool_use` content blocks, `usage`,
  error bodies `{"type": "error", "error": {...}}`.
- `POST /v1/chat/completions` (OpenAI and compatible servers): `tool_calls`,
  `usage`, error bodies `{"error": {...}}`.

Every request is recorded (path, headers, JSON body) so tests can assert on
prompts and request counts. Point the real clients at it::

    with FakeLLMServer() as server:
        server.push(ToolCall({...}))
        anthropic.Anthropic(api_key="k", base_url=server.anthropic_base_url)
        openai.OpenAI(api_key="k", base_url=server.openai_base_url)

`start_collision_server()` starts one that keeps answering with good edits to
the collision recipe's config.py (search/replace of a knob line, read from the
prompt, so it applies to whatever trial is the best), for end-to-end runs of
`harness run --agent anthropic|openai` through the CLI::

    sys.path.insert(0, str(Path(__file__).parents[1] / "fakes"))   # from a test under tests/e2e
    from llm_server import start_collision_server

    fake = start_collision_server()
    try:
        env = {**os.environ, "ANTHROPIC_API_KEY": "sk-planted-..."}
        subprocess.run([sys.executable, "-m", "harness.cli", "run", "--agent", "anthropic",
                        "--base-url", fake.anthropic_base_url, "--trials", "3", ...], env=env)
        # --agent openai: "--base-url", fake.openai_base_url
        assert len(fake.requests) == 3   # one request per proposal; a resumed run adds none
    finally:
        fake.stop()

Run this file to get such a server by hand::

    python tests/fakes/llm_server.py     # prints the base URLs, serves until Ctrl-C
"""

from __future__ import annotations

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
    """A successful answer calling the tool with `input`.

    `input` is the tool's arguments: a dict, or (OpenAI only) raw argument text
    that need not be valid JSON, to script a malformed answer.
    """

    input: Union[dict[str, Any], str]
    text: str = ""
    usage: tuple[int, int] = (1000, 200)
    name: str = TOOL_NAME


@dataclass
class Text(Reply):
    """A successful answer with text only, no tool call."""

    text: str
    usage: tuple[int, int] = (1000, 50)


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


def _anthropic_body(reply: Reply, model: str, n: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if isinstance(reply, ToolCall):
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        tool_input = reply.input
        if isinstance(tool_input, str):
            try:
                tool_input = json.loads(tool_input)
            except json.JSONDecodeError:
                tool_input = {"raw": tool_input}
        content.append({"type": "tool_use", "id": f"toolu_{n:04d}", "name": reply.name, "input": tool_input})
        stop = "tool_use"
    else:
        assert isinstance(reply, Text)
        content.append({"type": "text", "text": reply.text})
        stop = "end_turn"
    return {
        "id": f"msg_{n:04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": reply.usage[0], "output_tokens": reply.usage[1]},
    }


def _openai_body(reply: Reply, model: str, n: int) -> dict[str, Any]:
    if isinstance(reply, ToolCall):
        arguments = reply.input if isinstance(reply.input, str) else json.dumps(reply.input)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text or None,
            "tool_calls": [{"id": f"call_{n:04d}", "type": "function",
                            "function": {"name": reply.name, "arguments": arguments}}],
        }
        finish = "tool_calls"
    else:
        assert isinstance(reply, Text)
        message = {"role": "assistant", "content": reply.text}
        finish = "stop"
    return {
        "id": f"chatcmpl-{n:04d}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
                  "total_tokens": reply.usage[0] + reply.usage[1]},
    }


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
                    self._send(200, _anthropic_body(reply, model, n))
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


def collision_responder() -> Responder:
    """A responder that walks through `COLLISION_CHANGES`, one per request."""
    turns = itertools.count()
    return lambda request: collision_edit(request, next(turns))


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
