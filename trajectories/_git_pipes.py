"""Long-lived git processes answering one request at a time over pipes.

A git process costs a few milliseconds to start; the loop reads an object or
asks for a diff several times per trial. `git cat-file --batch` answers object
reads as they come (it flushes after each object). `git diff-tree --stdin` reads
tree pairs from its input but buffers its output; it echoes, and flushes, every
input line that is not an object id, so a request is the pair followed by a
marker line, and the answer is everything before the marker comes back.

A process that dies (a bad request makes git exit) is reported as `GitError`
with its stderr and restarted on the next request.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ._git import SHA_RE, GitError, stop_process


class _Pipe:
    """One long-lived `git ARGS` process; requests are serialised."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.args, self.cwd, self.env = args, cwd, env
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            # A file, not a pipe: nobody reads stderr while git runs, and a full pipe would stall it.
            self._stderr = tempfile.TemporaryFile()
            proc = self._proc = subprocess.Popen(
                ["git", *self.args], cwd=self.cwd, env=self.env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            )
        return proc

    def ask(self, request: bytes, read: Callable[[IO[bytes]], bytes | None]) -> bytes | None:
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(request)
                proc.stdin.flush()
                return read(proc.stdout)
            except (BrokenPipeError, OSError, EOFError, ValueError) as exc:
                self._close_locked()
                raise GitError(self.args, -1, self._error_text() or f"git stopped answering: {exc}") from exc

    def _error_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace").strip()

    def _close_locked(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc)

    def close(self) -> None:
        with self._lock:
            self._close_locked()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None


class ObjectReader(_Pipe):
    """`git cat-file --batch`: (type, content) of one object name, None when missing."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        super().__init__(["cat-file", "--batch"], cwd, env)

    def read(self, name: str) -> tuple[str, bytes] | None:
        if not name or any(c in name for c in "\n\0"):
            return None
        answer: list[tuple[str, bytes] | None] = []

        def one(out: IO[bytes]) -> bytes | None:
            header = out.readline()
            if not header.endswith(b"\n"):
                raise EOFError("no answer")
            parts = header.decode("utf-8", "replace").split(" ")
            if len(parts) == 3 and parts[1] in ("blob", "tree", "commit", "tag"):
                size = int(parts[2])
                data = out.read(size + 1)
                if len(data) != size + 1:
                    raise EOFError("short object")
                answer.append((parts[1], data[:size]))
            else:  # "<name> missing" / "ambiguous"
                answer.append(None)
            return None

        self.ask(name.encode("utf-8", "surrogateescape") + b"\n", one)
        return answer[0]


class TreeDiffer(_Pipe):
    """`git diff-tree --stdin ARGS`: the diff between two trees, as `git diff-tree ARGS A B` prints it."""

    def __init__(self, diff_args: tuple[str, ...], cwd: Path, env: dict[str, str]) -> None:
        super().__init__(["diff-tree", "--stdin", *diff_args], cwd, env)
        self._marker = f":end-of-diff {uuid.uuid4().hex}\n".encode()

    def diff(self, tree_a: str, tree_b: str) -> bytes:
        if not (SHA_RE.match(tree_a) and SHA_RE.match(tree_b)):
            raise ValueError(f"not two object ids: {tree_a!r} {tree_b!r}")
        header = f"{tree_a} {tree_b}\n".encode()
        marker = self._marker

        def until_marker(out: IO[bytes]) -> bytes:
            lines = []
            while True:
                line = out.readline()
                if not line:
                    raise EOFError("no answer")
                if line == marker:
                    break
                lines.append(line)
            if not lines or lines[0] != header:
                raise EOFError(f"unexpected answer {lines[:1]!r}")
            return b"".join(lines[1:])

        result = self.ask(header + marker, until_marker)
        assert result is not None
        return result
