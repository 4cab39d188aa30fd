"""The tools of a research session: look around the parent trial, check an edit, take notes, submit.

Every tool has the exact name and JSON arguments of `TOOLS`; `Workbench.run`
executes one call and returns a `ToolResult` whose text goes back to the model.
A problem (a bad path, a search text that is not found, an illegal edit) is a
result with `is_error`, never an exception: it costs a turn, not a trial.

What the tools can reach is the parent trial's code only (`ctx.list_tree` /
`ctx.read_tree`: the recipe's source, protected files included, never the
evaluator's code or held-out data, which are not in a trial's tree) and the
lineage's records (`show_trial`).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from harness.agents.base import AgentContext
from harness.agents.llm.edits import (
    Answer,
    AnswerError,
    Change,
    apply_search_replace,
    apply_unified_diff,
    changed_line_count,
    parse_answer,
    render_diff,
    syntax_problem,
)
from harness.agents.llm.prompt import TOOL_DESCRIPTION, TOOL_NAME, TOOL_SCHEMA, Surface, candidate_files
from harness.agents.llm.show import show_trial
from harness.types import TRIAL_ID_PATTERN, trial_id

READ_LINES = 400
"""Lines `read_file` returns when no `limit` is given."""
READ_MAX_LINES = 2000
READ_MAX_CHARS = 60_000
"""Characters one `read_file` result holds at most (a page ends at a line boundary)."""
GREP_MAX_MATCHES = 100
GREP_MAX_CHARS = 16_000
GREP_LINE_CHARS = 240
NOTE_MAX_CHARS = 2000
NOTES_PER_SESSION = 20


@dataclass(frozen=True)
class ToolSpec:
    """One tool as offered to the model."""

    name: str
    description: str
    schema: dict[str, Any]


_CHECK_SCHEMA = {**TOOL_SCHEMA, "required": []}

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("list_files", "List the files of the parent trial's code (editable ones marked). `path` narrows "
             "the listing to a folder or a glob.",
             {"type": "object", "properties": {"path": {"type": "string", "description": "A folder or glob, "
                                                        "e.g. nanochat/ or *.py."}}}),
    ToolSpec("read_file", "Read a file of the parent trial's code, verbatim (no line numbers). Big files come in "
             f"pages: `offset` is the first line (1-based), `limit` the number of lines (default {READ_LINES}).",
             {"type": "object", "properties": {
                 "path": {"type": "string"},
                 "offset": {"type": "integer", "minimum": 1, "description": "First line to return (1-based)."},
                 "limit": {"type": "integer", "minimum": 1, "description": "Lines to return."}},
              "required": ["path"]}),
    ToolSpec("grep", "Search the parent trial's code with a Python regular expression; returns `file:line: text` "
             "for each matching line. `path` narrows it to a file, a folder or a glob.",
             {"type": "object", "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}},
              "required": ["pattern"]}),
    ToolSpec("show_trial", "Show an earlier trial of this run: hypothesis, diff, label, score, metrics and the "
             "tail of its failure log.",
             {"type": "object", "properties": {"trial_id": {"type": "string", "description": "e.g. t0003"}},
              "required": ["trial_id"]}),
    ToolSpec("check_edit", "Dry-run an edit (the same fields as submit_trial; hypothesis optional): applies it to a "
             "scratch copy of the parent's files and runs the static legality and syntax checks. Costs no trial.",
             _CHECK_SCHEMA),
    ToolSpec("note", "Append a short lesson to the run notebook, which every later session of this run reads "
             "(e.g. what failed and why, what the code's constraints are). Keep it factual.",
             {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
    ToolSpec(TOOL_NAME, TOOL_DESCRIPTION + " Submitting ends the session.", TOOL_SCHEMA),
)
TOOL_NAMES = tuple(spec.name for spec in TOOLS)


@dataclass(frozen=True)
class Attempt:
    """An edit that became a diff against its parent."""

    answer: Answer
    parent: str
    changes: list[Change]
    diff: str


@dataclass
class ToolResult:
    """What one tool call gives back."""

    text: str
    is_error: bool = False
    accepted: Attempt | None = None
    """Set by a `submit_trial` that passed every check: the session ends with it."""


@dataclass
class Workbench:
    """The tools of one session, over one proposal's context (not shared between sessions)."""

    ctx: AgentContext
    surface: Surface
    parent: str
    """The trial the session builds on by default (the current best)."""
    max_rejections: int = 3
    """Rejected `submit_trial` calls after which the session ends."""
    notes: list[str] = field(default_factory=list)
    rejections: int = 0
    last_error: AnswerError | None = None
    last_answer: Answer | None = None
    fallback: Attempt | None = None
    """A submitted edit that applies but does not compile (kept if nothing better comes)."""
    scrub: Callable[[str], str] = lambda text: text

    # -- files ----------------------------------------------------------------

    def files(self, tid: str) -> list[str]:
        if self.ctx.list_tree is not None:
            return list(self.ctx.list_tree(tid))
        return candidate_files(self.ctx, tid)

    def read(self, tid: str, path: str) -> str | None:
        """Text of `path` in trial `tid`; None when it is not a file there. Binary files raise ValueError."""
        try:
            if self.ctx.read_tree is not None:
                data = self.ctx.read_tree(tid, path)
            else:
                return self.ctx.read_file(tid, path)
        except (OSError, PermissionError, KeyError):
            return None
        if b"\x00" in data[:8192]:
            raise ValueError(f"{path} is a binary file ({len(data):,} bytes), not shown")
        return data.decode("utf-8", errors="replace")

    def _selected(self, path: str | None) -> list[str]:
        names = self.files(self.parent)
        if not path or path in (".", "./", "/"):
            return names
        wanted = path.strip().removeprefix("./")
        if any(c in wanted for c in "*?["):
            return [n for n in names if fnmatch.fnmatch(n, wanted)]
        folder = wanted.rstrip("/") + "/"
        return [n for n in names if n == wanted or n.startswith(folder)]

    # -- the tools ------------------------------------------------------------

    def list_files(self, path: str | None = None) -> ToolResult:
        names = self._selected(path)
        if not names:
            return ToolResult(f"no file of trial {self.parent} matches {path!r}", is_error=True)
        editable = sum(1 for n in names if self.surface.check(n) is None)
        lines = [f"{n}{'  (editable)' if self.surface.check(n) is None else ''}" for n in names]
        head = f"{len(names)} files of trial {self.parent}, {editable} editable by you:"
        return ToolResult("\n".join([head, *lines]))

    def read_file(self, path: str, offset: int | None = None, limit: int | None = None) -> ToolResult:
        clean = path.strip().removeprefix("./")
        try:
            text = self.read(self.parent, clean)
        except ValueError as exc:
            return ToolResult(str(exc), is_error=True)
        if text is None:
            return ToolResult(f"{clean} is not a file of trial {self.parent} (list_files shows them)", is_error=True)
        lines = text.splitlines(keepends=True)
        first = max(1, offset or 1)
        count = min(READ_MAX_LINES, max(1, limit or READ_LINES))
        if lines and first > len(lines):
            return ToolResult(f"{clean} has {len(lines)} lines; offset {first} is past its end", is_error=True)
        page = lines[first - 1:first - 1 + count]
        size = 0
        for i, line in enumerate(page):
            size += len(line)
            if size > READ_MAX_CHARS and i > 0:
                page = page[:i]
                break
        body = "".join(page)
        last = first + len(page) - 1
        if first == 1 and last >= len(lines):
            return ToolResult(body)
        more = f"; read_file with offset={last + 1} for more" if last < len(lines) else ""
        return ToolResult(f"{body}{'' if body.endswith(chr(10)) else chr(10)}"
                          f"[harness: lines {first}-{last} of {len(lines)} of {clean}{more}]")

    def grep(self, pattern: str, path: str | None = None) -> ToolResult:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            return ToolResult(f"not a valid Python regular expression: {exc}", is_error=True)
        names = self._selected(path)
        if not names:
            return ToolResult(f"no file of trial {self.parent} matches {path!r}", is_error=True)
        out: list[str] = []
        size = matches = 0
        files_hit: set[str] = set()
        for name in names:
            try:
                text = self.read(self.parent, name)
            except ValueError:
                continue  # binary
            for number, line in enumerate((text or "").splitlines(), start=1):
                if regex.search(line):
                    matches += 1
                    files_hit.add(name)
                    row = f"{name}:{number}: {line[:GREP_LINE_CHARS]}"
                    if len(out) < GREP_MAX_MATCHES and size + len(row) <= GREP_MAX_CHARS:
                        out.append(row)
                        size += len(row) + 1
        if not matches:
            return ToolResult(f"no line matches {pattern!r} in {len(names)} files")
        if matches > len(out):
            out.append(f"[harness: {matches - len(out)} more matching lines not shown ({matches} in "
                       f"{len(files_hit)} files): narrow the pattern or the path]")
        return ToolResult("\n".join(out))

    def show_trial(self, trial_id: str) -> ToolResult:
        rec = self.ctx.record(trial_id.strip()) if re.fullmatch(TRIAL_ID_PATTERN, trial_id.strip()) else None
        if rec is None:
            ids = [r.trial.id for r in self.ctx.records]
            span = f"{ids[0]}..{ids[-1]}" if ids else "none"
            return ToolResult(f"there is no trial {trial_id!r} in this run (trials: {span})", is_error=True)
        return ToolResult(show_trial(self.ctx, rec, set(candidate_files(self.ctx, rec.trial.id))))

    def note(self, text: str) -> ToolResult:
        if not text.strip():
            return ToolResult("the note is empty", is_error=True)
        if len(self.notes) >= NOTES_PER_SESSION:
            return ToolResult(f"at most {NOTES_PER_SESSION} notes per session", is_error=True)
        self.notes.append(self.scrub(text.strip()[:NOTE_MAX_CHARS]))
        return ToolResult(f"noted ({len(self.ctx.notebook()) + len(self.notes)} notes in the run notebook)")

    def check_edit(self, arguments: dict[str, Any]) -> ToolResult:
        filled = {"hypothesis": "(edit check)", **{k: v for k, v in arguments.items() if v is not None}}
        try:
            attempt = self.resolve(filled)
        except AnswerError as err:
            return ToolResult(f"the edit would fail as {err.kind}: {err.message}", is_error=True)
        problem = syntax_problem(attempt.changes)
        if problem is not None:
            return ToolResult(f"the edit applies but the code does not compile (preflight_crash): {problem}",
                              is_error=True)
        lines = changed_line_count(attempt.changes)
        return ToolResult(f"ok: the edit applies to {attempt.parent} and passes the static checks ({lines} changed "
                          f"lines of at most {self.ctx.spec.budgets.max_diff_lines}; Python files compile). "
                          f"It would be recorded as:\n{attempt.diff}")

    def submit_trial(self, arguments: dict[str, Any]) -> ToolResult:
        try:
            attempt = self.resolve(arguments)
        except AnswerError as err:
            self.last_error = err
            self.last_answer = err.answer or self.last_answer
            return self._rejected(err.kind, err.message)
        problem = syntax_problem(attempt.changes)
        if problem is None:
            return ToolResult(f"submitted: trial {trial_id(self.ctx.trial_number)} will run on {attempt.parent}",
                              accepted=attempt)
        self.fallback = attempt  # applies: if it is never fixed, the harness labels it preflight_crash
        self.last_answer = attempt.answer
        return self._rejected("preflight_crash", f"the edited code does not compile: {problem}")

    def _rejected(self, kind: str, message: str) -> ToolResult:
        self.rejections += 1
        left = self.max_rejections - self.rejections
        tail = (f" Fix it and call {TOOL_NAME} again ({left} rejection{'s' if left != 1 else ''} left before the "
                "session ends); check_edit tests an edit without submitting.") if left > 0 else ""
        return ToolResult(f"{TOOL_NAME} rejected (it would be labelled {kind}): {message}.{tail}", is_error=True)

    @property
    def out_of_rejections(self) -> bool:
        return self.rejections >= self.max_rejections

    # -- dispatch -------------------------------------------------------------

    def run(self, name: str, raw_arguments: str) -> ToolResult:
        """Execute one call; the arguments are the JSON text the model sent."""
        if name not in TOOL_NAMES:
            return ToolResult(f"there is no tool {name!r}; the tools are {', '.join(TOOL_NAMES)}", is_error=True)
        if name in (TOOL_NAME, "check_edit"):
            try:
                arguments = _object(raw_arguments)
            except AnswerError as err:
                if name == TOOL_NAME:
                    self.last_error = err
                    return self._rejected(err.kind, err.message)
                return ToolResult(err.message, is_error=True)
            return self.submit_trial(arguments) if name == TOOL_NAME else self.check_edit(arguments)
        try:
            arguments = _object(raw_arguments)
            return _call(self, name, arguments)
        except AnswerError as err:
            return ToolResult(err.message, is_error=True)

    # -- edits ----------------------------------------------------------------

    def resolve(self, arguments: dict[str, Any]) -> Attempt:
        """The edit as a diff against its parent, or `AnswerError` (the message is for the model)."""
        answer = parse_answer(arguments)
        parent = answer.parent or self.parent
        if self.ctx.record(parent) is None:
            ids = [r.trial.id for r in self.ctx.records]
            span = f"{ids[0]}..{ids[-1]}" if ids else "none"
            err = AnswerError("malformed_proposal", f"parent {parent} is not a trial of this run (trials: {span})")
            err.answer = answer
            raise err

        def read(path: str) -> str | None:
            try:
                return self.read(parent, path)
            except ValueError:
                return None

        try:
            if answer.edits:
                changes = apply_search_replace(answer.edits, read, self.surface.check, parent)
            else:
                changes = apply_unified_diff(answer.diff or "", read, self.surface.check, parent)
        except AnswerError as err:
            err.answer = answer
            raise
        diff = render_diff(changes)
        limit = self.ctx.spec.budgets.max_diff_lines
        lines = changed_line_count(changes)
        if lines > limit:
            err = AnswerError("illegal_edit", f"the change is {lines} lines (added + removed), more than the "
                              f"recipe's max_diff_lines {limit}; make a smaller change")
            err.answer = answer
            err.diff = diff
            raise err
        return Attempt(answer, parent, changes, diff)


def _object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError) as exc:
        detail = f"{exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) \
            else "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        raise AnswerError("malformed_proposal", f"the tool arguments are not valid JSON: {detail}") from None
    if not isinstance(value, dict):
        raise AnswerError("malformed_proposal", "the tool arguments must be a JSON object")
    return value


def _string(arguments: dict[str, Any], key: str, required: bool) -> str | None:
    value = arguments.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise AnswerError("malformed_proposal", f"'{key}' must be a {'non-empty ' if required else ''}string")
    return value


def _integer(arguments: dict[str, Any], key: str) -> int | None:
    value = arguments.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AnswerError("malformed_proposal", f"'{key}' must be a positive integer")
    return value


def _call(bench: Workbench, name: str, arguments: dict[str, Any]) -> ToolResult:
    if name == "list_files":
        return bench.list_files(_string(arguments, "path", False))
    if name == "read_file":
        return bench.read_file(_string(arguments, "path", True) or "", _integer(arguments, "offset"),
                               _integer(arguments, "limit"))
    if name == "grep":
        return bench.grep(_string(arguments, "pattern", True) or "", _string(arguments, "path", False))
    if name == "show_trial":
        return bench.show_trial(_string(arguments, "trial_id", True) or "")
    return bench.note(_string(arguments, "text", True) or "")
