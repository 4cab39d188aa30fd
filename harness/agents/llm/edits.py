"""From a model's `submit_trial` arguments to the canonical unified diff.

The model answers with a hypothesis, an expected delta, an optional parent and
either search/replace edits or a unified diff. `parse_answer` checks the shape;
`resolve_edits` applies the edits to the parent's file texts and renders a
git-style diff (`diff --git a/f b/f`, 3 lines of context) with difflib. Every
problem is an `AnswerError` whose message goes back to the model verbatim and
whose `kind` is the label the trial gets when the model never fixes it:

- `malformed_proposal`: the arguments do not parse, miss a field, or change nothing;
- `apply_failed`: a search text is not found exactly once, a file is missing,
  or a unified diff does not apply (`git apply` says why);
- `illegal_edit`: a file outside the editable surface (or the specialist's
  files), a path trick, or a diff over the recipe's line budget.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Literal

from harness.agents.storable import shown, text_problem
from harness.types import TRIAL_ID_PATTERN

FailureKind = Literal["malformed_proposal", "apply_failed", "illegal_edit"]

ReadText = Callable[[str], "str | None"]
"""`path -> text` of the parent's file, None when the file does not exist."""
Allowed = Callable[[str], "str | None"]
"""`path -> None` when the agent may edit it, else the reason it may not."""


class AnswerError(Exception):
    """The model's answer cannot become a proposal; the message is for the model."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind
        self.message = message
        self.answer: "Answer | None" = None
        """The parsed answer, when the problem came after parsing."""
        self.diff: str | None = None
        """The diff the answer amounts to, when one could be rendered (an oversize change)."""


@dataclass(frozen=True)
class Edit:
    file: str
    search: str
    replace: str


@dataclass(frozen=True)
class Answer:
    """A parsed `submit_trial` call."""

    hypothesis: str
    expected_delta: float | None
    parent: str | None
    edits: tuple[Edit, ...] = ()
    diff: str | None = None
    fidelity: str | None = None
    """Level the model asks the trial to run at (checked by the harness)."""


@dataclass(frozen=True)
class Change:
    """One file before and after (old None: the file is new)."""

    path: str
    old: str | None
    new: str


# --------------------------------------------------------------------------
# Parsing the tool arguments
# --------------------------------------------------------------------------


def _loads(arguments: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        data = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise AnswerError(
            "malformed_proposal",
            f"the submit_trial arguments are not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except (ValueError, RecursionError) as exc:  # an integer past Python's digit limit; deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        raise AnswerError("malformed_proposal", f"the submit_trial arguments are not valid JSON: {reason}") from None
    if not isinstance(data, dict):
        raise AnswerError("malformed_proposal", "the submit_trial arguments must be a JSON object")
    return data


def parse_answer(arguments: str | dict[str, Any]) -> Answer:
    """Check the shape of the `submit_trial` arguments (JSON text or an object)."""
    data = _loads(arguments)
    problems: list[str] = []

    hypothesis = data.get("hypothesis")
    if not isinstance(hypothesis, str) or not hypothesis.strip():
        problems.append("'hypothesis' must be a non-empty string")
    elif text_problem(hypothesis, commit_message=True):
        problems.append(f"'hypothesis' {text_problem(hypothesis, commit_message=True)}")

    delta = data.get("expected_delta")
    expected: float | None = None
    if isinstance(delta, str):
        try:
            delta = float(delta)
        except ValueError:
            pass
    if delta is None:
        expected = None
    elif isinstance(delta, bool) or not isinstance(delta, (int, float)) or not _finite(delta):
        problems.append(f"'expected_delta' must be a number, got {shown(delta)}")
    else:
        expected = float(delta)

    parent = data.get("parent")
    if parent in ("", None):
        parent = None
    elif not isinstance(parent, str) or not re.match(TRIAL_ID_PATTERN, parent):
        problems.append(f"'parent' must be a trial id like t0003 (or left out for the current best), got {shown(parent)}")

    fidelity = data.get("fidelity")
    if fidelity in ("", None):
        fidelity = None
    elif not isinstance(fidelity, str):
        problems.append(f"'fidelity' must be the name of a level (or left out), got {json.dumps(fidelity)[:40]}")

    raw_edits = data.get("edits")
    if isinstance(raw_edits, str) and raw_edits.strip().startswith("["):
        try:  # some models encode the list as a JSON string
            raw_edits = json.loads(raw_edits)
        except (ValueError, RecursionError):
            pass  # left a string, which is reported as not a list
    diff = data.get("diff")
    if raw_edits in (None, []) and diff in (None, ""):
        problems.append("give the change as 'edits' (a list of {file, search, replace}) or as 'diff'")
    elif raw_edits not in (None, []) and diff not in (None, ""):
        problems.append("give either 'edits' or 'diff', not both")

    edits: list[Edit] = []
    if raw_edits not in (None, []):
        if not isinstance(raw_edits, list):
            problems.append("'edits' must be a list of objects {file, search, replace}")
        else:
            for i, item in enumerate(raw_edits, start=1):
                if not isinstance(item, dict):
                    problems.append(f"edit {i} must be an object {{file, search, replace}}")
                    continue
                bad = [k for k in ("file", "search", "replace") if not isinstance(item.get(k), str)]
                if bad:
                    problems.append(f"edit {i}: {', '.join(repr(k) for k in bad)} must be string(s)")
                    continue
                if not item["file"].strip():
                    problems.append(f"edit {i}: 'file' is empty")
                    continue
                bad_text = [f"{k!r} {text_problem(item[k])}" for k in ("file", "search", "replace")
                            if text_problem(item[k])]
                if bad_text:
                    problems.append(f"edit {i}: {'; '.join(bad_text)}")
                    continue
                edits.append(Edit(item["file"].strip(), item["search"], item["replace"]))
    if diff not in (None, "") and not isinstance(diff, str):
        problems.append("'diff' must be a string holding a unified diff")
    elif isinstance(diff, str) and text_problem(diff):
        problems.append(f"'diff' {text_problem(diff)}")

    if problems:
        raise AnswerError("malformed_proposal", "; ".join(problems))
    return Answer(
        hypothesis=hypothesis.strip(),  # type: ignore[union-attr]
        expected_delta=expected,
        parent=parent,
        edits=tuple(edits),
        diff=diff if isinstance(diff, str) and diff else None,
        fidelity=fidelity,
    )


def _finite(number: int | float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer past the float range
        return False


def json_in_text(text: str) -> dict[str, Any] | None:
    """A JSON object with a 'hypothesis' written in plain text (servers without tool calls)."""
    candidates = re.findall(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S)
    start = text.find("{")
    end = text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except (ValueError, RecursionError):  # not JSON, an integer past the digit limit, deep nesting
            continue
        if isinstance(data, dict) and "hypothesis" in data:
            return data
    return None


# --------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------


def normalize_path(path: str) -> str:
    """A clean relative posix path, or AnswerError for absolute paths, `..`, `.git`."""
    raw = path.strip()
    if raw.startswith("./"):
        raw = raw[2:]
    if not raw or raw.startswith("/") or "\\" in raw or "\x00" in raw:
        raise AnswerError("illegal_edit", f"{path!r}: not a relative path inside the recipe")
    parts = PurePosixPath(raw).parts
    if any(p in ("..", ".git") for p in parts):
        raise AnswerError("illegal_edit", f"{path!r}: paths may not contain '..' or '.git'")
    return str(PurePosixPath(*parts))


# --------------------------------------------------------------------------
# Search/replace
# --------------------------------------------------------------------------


def _not_found_hint(text: str, search: str) -> str:
    lines = text.splitlines()
    first = next((line for line in search.splitlines() if line.strip()), "")
    squash = lambda s: re.sub(r"\s+", " ", s).strip()  # noqa: E731
    if squash(search) and squash(search) in squash(text):
        return " It matches when whitespace is ignored: copy the indentation and line breaks exactly."
    want = first.strip()
    best, best_ratio = -1, 0.0
    for number, line in enumerate(lines):
        have = line.strip()
        if not have:
            continue
        # Compare with the line's start too, so a trailing comment does not hide a near match.
        ratio = max(difflib.SequenceMatcher(None, want, have).ratio(),
                    difflib.SequenceMatcher(None, want, have[: len(want)]).ratio())
        if ratio > best_ratio:
            best, best_ratio = number, ratio
    if best >= 0 and best_ratio >= 0.7:
        return f" The closest line in the file is line {best + 1}: {lines[best].strip()[:200]!r}."
    return ""


def apply_search_replace(edits: tuple[Edit, ...] | list[Edit], read: ReadText, allowed: Allowed,
                         parent: str) -> list[Change]:
    """Apply the edits in order (several may touch one file) and return the changed files."""
    current: dict[str, str] = {}
    original: dict[str, str | None] = {}
    for i, edit in enumerate(edits, start=1):
        path = normalize_path(edit.file)
        reason = allowed(path)
        if reason is not None:
            raise AnswerError("illegal_edit", f"edit {i}: {reason}")
        if path not in original:
            original[path] = read(path)
            if original[path] is not None:
                current[path] = original[path]  # type: ignore[assignment]
        text = current.get(path)
        where = f"edit {i} ({path})"
        if text is None:
            if edit.search:
                raise AnswerError("apply_failed", f"{where}: {path} does not exist in trial {parent}; "
                                  "to create a new file give an empty 'search'")
            current[path] = edit.replace
            continue
        if not edit.search:
            raise AnswerError("apply_failed", f"{where}: 'search' is empty but {path} exists; "
                              "quote the exact lines to replace")
        count = text.count(edit.search)
        if count == 0:
            raise AnswerError("apply_failed", f"{where}: the search text was not found in {path} of trial "
                              f"{parent}.{_not_found_hint(text, edit.search)} Search text must be copied "
                              "exactly from the file (after earlier edits of the same answer).")
        if count > 1:
            raise AnswerError("apply_failed", f"{where}: the search text occurs {count} times in {path}; "
                              "include more surrounding lines so that it matches exactly once")
        current[path] = text.replace(edit.search, edit.replace, 1)
    changes = [Change(p, original[p], current[p]) for p in current if current[p] != original.get(p)]
    if not changes:
        raise AnswerError("malformed_proposal", "the edits change nothing")
    return sorted(changes, key=lambda c: c.path)


# --------------------------------------------------------------------------
# Unified diffs
# --------------------------------------------------------------------------

_HEADER_PATHS = [
    re.compile(r"^diff --git a/(\S+) b/(\S+)\s*$"),
    re.compile(r"^--- (?:a/)?(\S+)"),
    re.compile(r"^\+\+\+ (?:b/)?(\S+)"),
]
_FORBIDDEN = re.compile(r"^(rename from|rename to|copy from|copy to|old mode|new mode|deleted file mode|"
                        r"similarity index|GIT binary patch|Binary files)", re.M)


def diff_paths(diff: str) -> list[str]:
    """Paths a unified diff names in its headers (/dev/null left out), in order."""
    out: dict[str, None] = {}
    for line in diff.splitlines():
        for pattern in _HEADER_PATHS:
            found = pattern.match(line)
            if found:
                for name in found.groups():
                    if name != "/dev/null":
                        out.setdefault(name)
    return list(out)


def apply_unified_diff(diff: str, read: ReadText, allowed: Allowed, parent: str) -> list[Change]:
    """Apply a unified diff to the parent's files with `git apply` (in a scratch folder)."""
    if not diff.endswith("\n"):
        diff += "\n"
    found = _FORBIDDEN.search(diff)
    if found:
        raise AnswerError("illegal_edit", f"the diff has a {found.group(1)!r} line: renames, copies, deletions, "
                          "mode changes and binary patches are not allowed")
    names = diff_paths(diff)
    if not names or not re.search(r"^@@ ", diff, re.M):
        raise AnswerError("malformed_proposal", "'diff' is not a unified diff (expected `--- a/FILE`, "
                          "`+++ b/FILE` and `@@` hunk headers)")
    paths = []
    for name in names:
        path = normalize_path(name)
        reason = allowed(path)
        if reason is not None:
            raise AnswerError("illegal_edit", reason)
        paths.append(path)
    before = {p: read(p) for p in paths}
    with tempfile.TemporaryDirectory(prefix="harness-llm-diff-") as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q", str(root)], check=True, capture_output=True)
        for path, text in before.items():
            if text is not None:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_text(text, encoding="utf-8")
        command = ["git", "apply", "--recount", "--whitespace=nowarn", "-"]
        proc = subprocess.run(command, cwd=root, input=diff.encode(), capture_output=True)
        if proc.returncode != 0:
            # Hunks without context lines (`@@ -14 +14 @@`) apply only at their stated lines.
            zero = subprocess.run(command[:-1] + ["--unidiff-zero", "-"], cwd=root, input=diff.encode(),
                                  capture_output=True)
            if zero.returncode == 0:
                proc = zero
        if proc.returncode != 0:
            message = proc.stderr.decode("utf-8", "replace").strip() or "git apply failed"
            raise AnswerError("apply_failed", f"the diff does not apply to trial {parent}: {message}")
        links = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_symlink())
        if links:  # reading through one would put a file of this machine into the proposal
            raise AnswerError("illegal_edit", f"the diff makes symbolic links, which are not allowed: {links[:5]}")
        after: dict[str, str | None] = {}
        for path in paths:
            target = root / path
            after[path] = target.read_text(encoding="utf-8", errors="replace") if target.is_file() else None
        stray = [str(p.relative_to(root)) for p in root.rglob("*")
                 if p.is_file() and ".git" not in p.relative_to(root).parts
                 and str(p.relative_to(root)) not in after]
    if stray:
        raise AnswerError("illegal_edit", f"the diff created files it does not name: {stray}")
    changes = []
    for path in paths:
        new = after[path]
        if new is None:
            raise AnswerError("illegal_edit", f"the diff deletes {path}; deleting files is not allowed")
        if new != before[path]:
            changes.append(Change(path, before[path], new))
    if not changes:
        raise AnswerError("malformed_proposal", "the diff changes nothing")
    return sorted(changes, key=lambda c: c.path)


# --------------------------------------------------------------------------
# Rendering and checks
# --------------------------------------------------------------------------


def _hunk_lines(old: str, new: str, fromfile: str, tofile: str) -> list[str]:
    out = []
    for line in difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                     fromfile=fromfile, tofile=tofile, n=3):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return out


def render_diff(changes: list[Change]) -> str:
    """The git-style unified diff of `changes` (new files with `new file mode 100644`)."""
    parts: list[str] = []
    for change in changes:
        parts.append(f"diff --git a/{change.path} b/{change.path}\n")
        if change.old is None:
            parts.append("new file mode 100644\n")
            parts.extend(_hunk_lines("", change.new, "/dev/null", f"b/{change.path}"))
        else:
            parts.extend(_hunk_lines(change.old, change.new, f"a/{change.path}", f"b/{change.path}"))
    return "".join(parts)


def changed_line_count(changes: list[Change]) -> int:
    """Lines added plus lines removed over all changes (what `max_diff_lines` caps)."""
    total = 0
    for change in changes:
        matcher = difflib.SequenceMatcher(a=(change.old or "").splitlines(), b=change.new.splitlines(),
                                          autojunk=False)
        for op, a0, a1, b0, b1 in matcher.get_opcodes():
            if op != "equal":
                total += (a1 - a0) + (b1 - b0)
    return total


def syntax_problem(changes: list[Change]) -> str | None:
    """The first Python syntax error among the changed `.py` files, as `path line N: msg`."""
    for change in changes:
        if not change.path.endswith(".py"):
            continue
        try:
            compile(change.new, change.path, "exec", dont_inherit=True)
        except SyntaxError as exc:
            return f"{change.path} line {exc.lineno}: {exc.msg}"
        except ValueError as exc:  # null bytes
            return f"{change.path}: {exc}"
    return None
