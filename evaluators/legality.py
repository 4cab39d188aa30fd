"""Static legality of a proposal's diff, decided before anything runs.

`check_diff` parses a unified diff itself (git style `diff --git` patches and
plain `---`/`+++` patches) and checks every path it names against the recipe's
editable surface. It never touches the file system and never raises on any
input text: a diff it cannot parse is `malformed_proposal`, a diff that parses
but edits what it may not is `illegal_edit`.

Paths are read the way `git apply` reads them with its default `-p1`: the
first component of a `diff --git`, `---` or `+++` name is dropped (`a/x` -> `x`,
also `x/y` -> `y`); rename/copy names are taken whole; the result is then
normalised (`./a//b` -> `a/b`). A `---`/`+++`/header name without any slash is
malformed, because `git apply` would then guess `-p0` for the whole diff. Where
patch tools may read a name differently (a timestamp after spaces), every
reading is checked.

`check_python_syntax` compiles (never runs) Python sources for the
`preflight_crash` label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.types import Frozen, Label, RecipeSpec, matches_any

REGULAR_MODE = "100644"
EXEC_MODE = "100755"
SYMLINK_MODE = "120000"
GITLINK_MODE = "160000"
_MODE_NAMES = {EXEC_MODE: "executable", SYMLINK_MODE: "symlink", GITLINK_MODE: "submodule"}
_MAX_REASONS = 5
MAX_DIFF_CHARS = 20_000_000
"""Longer diffs are illegal without being parsed."""
_MAX_NAME_CHARS = 1024
_MAX_NAME_SPACES = 16


class LegalityResult(Frozen):
    label: Label | None
    """None when the diff is legal; else `malformed_proposal` or `illegal_edit`."""
    reason: str
    """Which file broke which rule (or a summary of a legal diff)."""
    files: list[str]
    """Paths the diff touches, normalised (old and new names of renames/copies)."""
    added_lines: int = 0
    """Lines the hunks add."""
    removed_lines: int = 0
    """Lines the hunks remove."""

    @property
    def legal(self) -> bool:
        return self.label is None


class MalformedDiff(ValueError):
    """The text is not a unified diff this module accepts."""


@dataclass
class FilePatch:
    """One file's part of a diff, as parsed (paths raw: prefixes stripped, not normalised)."""

    line: int
    """1-based line of the patch's first header line."""
    paths: list[tuple[str, str]] = field(default_factory=list)
    """(where the diff names it, raw path) for every path named; /dev/null left out."""
    aliases: list[tuple[str, str]] = field(default_factory=list)
    """Other readings of names a patch tool might take (a space-separated timestamp stripped)."""
    old_mode: str | None = None
    new_mode: str | None = None
    new_file_mode: str | None = None
    deleted_file_mode: str | None = None
    index_mode: str | None = None
    rename: tuple[str, str] | None = None
    copy: tuple[str, str] | None = None
    binary: bool = False
    hunks: int = 0
    added: int = 0
    removed: int = 0

    def changes_header(self) -> bool:
        """Whether the extended header changes something (mode, rename, copy, creation, ...)."""
        return bool(
            self.binary
            or self.rename
            or self.copy
            or self.old_mode
            or self.new_mode
            or self.new_file_mode
            or self.deleted_file_mode
        )


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------

_HUNK_RE = re.compile(r"^@@ -(\d{1,12})(?:,(\d{1,12}))? \+(\d{1,12})(?:,(\d{1,12}))? @@(?: .*)?$")
_MODE = r"([0-7]{6})"
_EXT_RES: list[tuple[str, re.Pattern[str]]] = [
    ("old_mode", re.compile(rf"^old mode {_MODE}$")),
    ("new_mode", re.compile(rf"^new mode {_MODE}$")),
    ("deleted_file_mode", re.compile(rf"^deleted file mode {_MODE}$")),
    ("new_file_mode", re.compile(rf"^new file mode {_MODE}$")),
    ("index", re.compile(rf"^index [0-9a-fA-F]+\.\.[0-9a-fA-F]+(?: {_MODE})?$")),
    ("similarity", re.compile(r"^(?:dis)?similarity index \d+%$")),
    ("rename_from", re.compile(r"^rename (?:from|old) (.+)$")),
    ("rename_to", re.compile(r"^rename (?:to|new) (.+)$")),
    ("copy_from", re.compile(r"^copy from (.+)$")),
    ("copy_to", re.compile(r"^copy to (.+)$")),
    ("binary", re.compile(r"^Binary files .* differ$")),
    ("git_binary", re.compile(r"^GIT binary patch$")),
]
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(text: str) -> tuple[str, str]:
    """Decode a git C-style quoted name at the start of `text`; return (name, rest)."""
    out = bytearray()
    i = 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return out.decode("utf-8", "replace"), text[i + 1 :]
        if c == "\\":
            e = text[i + 1 : i + 2]
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                i += 2
            elif re.fullmatch(r"[0-3][0-7][0-7]", text[i + 1 : i + 4]):
                out.append(int(text[i + 1 : i + 4], 8))
                i += 4
            else:
                raise MalformedDiff(f"bad escape in quoted name {text[:80]!r}")
        else:
            out += c.encode("utf-8", "surrogatepass")
            i += 1
    raise MalformedDiff(f"unterminated quoted name {text[:80]!r}")


_STAMP = (
    r"(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})?"
    r"|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}"
    r"|\((?:revision \d+|working copy)\))"
)
_TIMESTAMP_RE = re.compile(rf"^{_STAMP}?$")
_TRAILING_STAMP_RE = re.compile(rf"(?<! ) +{_STAMP}$")


def _check_name_size(name: str, lineno: int) -> str:
    if len(name) > _MAX_NAME_CHARS or name.count(" ") > _MAX_NAME_SPACES:
        raise MalformedDiff(f"line {lineno}: file name too long or with too many spaces")
    return name


def _strip_component(name: str, lineno: int) -> str:
    """Drop the first path component as `git apply -p1` does (`a/x` -> `x`, `x/y` -> `y`).

    A name without a slash is refused: `git apply` would then guess `-p0` for the
    whole diff and read every other name differently. A name starting with `/`
    is kept whole, so that it is judged as absolute.
    """
    _check_name_size(name, lineno)
    if name.startswith("/"):
        return name
    if "/" not in name:
        raise MalformedDiff(
            f"line {lineno}: file name {name[:80]!r} has no a/ or b/ prefix (diffs apply with -p1)"
        )
    return name.split("/", 1)[1]


def _minus_plus_name(text: str, lineno: int, git: bool) -> tuple[str | None, list[str]]:
    """Name on a `---`/`+++` line (None for /dev/null) and the other names a patch tool may read.

    The name ends at a tab, after which only a timestamp may follow. Without a
    tab, a trailing timestamp after spaces is dropped (not in git patches, as
    `git apply` does not drop it there); since patch tools differ
    in what they take for a timestamp, every other reading (each prefix ending
    at a space, the whole text) is returned as an alias to be checked too.
    """
    if text.startswith('"'):
        name, rest = _unquote(text)
        if rest and not (rest.startswith("\t") and _TIMESTAMP_RE.match(rest[1:])):
            raise MalformedDiff(f"line {lineno}: text after quoted name {text[:80]!r}")
        aliases: list[str] = []
    else:
        name, tab, stamp = text.partition("\t")
        _check_name_size(name, lineno)
        if tab and not _TIMESTAMP_RE.match(stamp):
            raise MalformedDiff(
                f"line {lineno}: text after the tab is not a timestamp: {stamp[:80]!r}"
            )
        aliases = [name[:k].rstrip(" ") for k, c in enumerate(name) if c == " "]
        stamp_match = None if tab or git else _TRAILING_STAMP_RE.search(name)
        if stamp_match and stamp_match.start() > 0:
            aliases.append(name)
            name = name[: stamp_match.start()]
        aliases = [a for a in aliases if a != name and "/" in a.lstrip("/")]
    if name == "/dev/null":
        return None, []
    return _strip_component(name, lineno), [_strip_component(a, lineno) for a in aliases]


def _whole_name(text: str, lineno: int) -> str:
    """Name on a rename/copy line: the whole rest of the line, no component stripped."""
    if text.startswith('"'):
        name, rest = _unquote(text)
        if rest:
            raise MalformedDiff(f"line {lineno}: text after quoted name {text[:80]!r}")
        return _check_name_size(name, lineno)
    return _check_name_size(text, lineno)


def _git_header_names(rest: str, lineno: int) -> tuple[str, str]:
    """The two names of `diff --git A B`, their first components stripped."""
    if rest.startswith('"'):
        a, tail = _unquote(rest)
        if not tail.startswith(" "):
            raise MalformedDiff(f"line {lineno}: bad 'diff --git' header")
        b, tail = _unquote(tail[1:]) if tail.startswith(' "') else (tail[1:], "")
        if tail:
            raise MalformedDiff(f"line {lineno}: text after names in 'diff --git' header")
    elif ' "' in rest:
        a, quoted = rest.split(' "', 1)
        b, tail = _unquote('"' + quoted)
        if tail:
            raise MalformedDiff(f"line {lineno}: text after names in 'diff --git' header")
    else:
        half = len(rest) // 2
        if (
            len(rest) % 2 == 1
            and rest[half] == " "
            and rest[:half].partition("/")[2] == rest[half + 1 :].partition("/")[2]
        ):
            a, b = rest[:half], rest[half + 1 :]
        elif rest.count(" b/") == 1:
            a, b = rest.split(" b/")
            b = "b/" + b
        elif rest.count(" ") == 1:
            a, b = rest.split(" ")
        else:
            raise MalformedDiff(
                f"line {lineno}: cannot split the names of 'diff --git {rest[:80]}'"
            )
    return _strip_component(a, lineno), _strip_component(b, lineno)


def _parse_hunks(lines: list[str], i: int, patch: FilePatch) -> int:
    """Parse the hunks starting at lines[i]; return the index after them."""
    while i < len(lines) and lines[i].startswith("@@"):
        m = _HUNK_RE.match(lines[i])
        if not m:
            raise MalformedDiff(f"line {i + 1}: bad hunk header {lines[i][:80]!r}")
        header_line = i + 1
        old_n = int(m[2]) if m[2] is not None else 1
        new_n = int(m[4]) if m[4] is not None else 1
        if old_n == 0 and new_n == 0:
            raise MalformedDiff(f"line {header_line}: empty hunk")
        i += 1
        while old_n > 0 or new_n > 0:
            if i >= len(lines):
                raise MalformedDiff(
                    f"hunk at line {header_line} ends early: {old_n} old and {new_n} new "
                    "lines missing from what its header counts"
                )
            line = lines[i]
            kind = line[:1]
            if kind in (" ", ""):
                old_n, new_n = old_n - 1, new_n - 1
            elif kind == "-":
                old_n -= 1
                patch.removed += 1
            elif kind == "+":
                new_n -= 1
                patch.added += 1
            elif kind == "\\" and i > header_line:
                pass  # "\ No newline at end of file"
            else:
                raise MalformedDiff(
                    f"line {i + 1}: hunk at line {header_line} expects {old_n} more old and "
                    f"{new_n} more new lines, got {line[:80]!r}"
                )
            if old_n < 0 or new_n < 0:
                raise MalformedDiff(
                    f"line {i + 1}: hunk at line {header_line} has more lines than its header counts"
                )
            i += 1
        if i < len(lines) and lines[i].startswith("\\"):
            i += 1
        patch.hunks += 1
    return i


def _parse_minus_plus(lines: list[str], i: int, patch: FilePatch, git: bool) -> int:
    """Parse `--- A` / `+++ B` at lines[i] and the hunks after them."""
    if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
        raise MalformedDiff(f"line {i + 1}: '---' header not followed by a '+++' header")
    old, old_aliases = _minus_plus_name(lines[i][4:], i + 1, git)
    new, new_aliases = _minus_plus_name(lines[i + 1][4:], i + 2, git)
    if old is None and new is None:
        raise MalformedDiff(f"line {i + 1}: both sides are /dev/null")
    patch.paths += [("---", p) for p in [old] if p is not None]
    patch.paths += [("+++", p) for p in [new] if p is not None]
    patch.aliases += [("---", p) for p in old_aliases] + [("+++", p) for p in new_aliases]
    i = _parse_hunks(lines, i + 2, patch)
    if patch.hunks == 0:
        raise MalformedDiff(f"line {patch.line}: file patch has no hunks")
    return i


def _parse_git_patch(lines: list[str], i: int) -> tuple[FilePatch, int]:
    patch = FilePatch(line=i + 1)
    a, b = _git_header_names(lines[i][len("diff --git ") :], i + 1)
    patch.paths += [("diff --git header", a), ("diff --git header", b)]
    found: dict[str, str] = {}
    i += 1
    while i < len(lines) and not lines[i].startswith(("--- ", "@@", "diff --git ")):
        line = lines[i]
        if line.strip() == "":
            break
        for key, rx in _EXT_RES:
            m = rx.match(line)
            if m:
                break
        else:
            raise MalformedDiff(f"line {i + 1}: unexpected line in a file header: {line[:80]!r}")
        if key in found:
            raise MalformedDiff(f"line {i + 1}: repeated '{line.split(' ')[0]}' header")
        found[key] = m[1] if m.groups() else ""
        i += 1
        if key == "git_binary":  # base85 data up to the next file: never applied here
            while i < len(lines) and not lines[i].startswith("diff --git "):
                i += 1
    patch.old_mode = found.get("old_mode")
    patch.new_mode = found.get("new_mode")
    patch.new_file_mode = found.get("new_file_mode")
    patch.deleted_file_mode = found.get("deleted_file_mode")
    patch.index_mode = found.get("index") or None
    patch.binary = "binary" in found or "git_binary" in found
    for kind in ("rename", "copy"):
        src, dst = found.get(f"{kind}_from"), found.get(f"{kind}_to")
        if (src is None) != (dst is None):
            raise MalformedDiff(f"line {patch.line}: '{kind} from' without '{kind} to' (or back)")
        if src is not None and dst is not None:
            src_name, dst_name = _whole_name(src, patch.line), _whole_name(dst, patch.line)
            setattr(patch, kind, (src_name, dst_name))
            patch.paths += [(f"{kind} from", src_name), (f"{kind} to", dst_name)]
    if i < len(lines) and lines[i].startswith("--- "):
        i = _parse_minus_plus(lines, i, patch, git=True)
    elif i < len(lines) and lines[i].startswith("@@"):
        raise MalformedDiff(f"line {i + 1}: hunk without '---'/'+++' headers")
    elif not patch.changes_header():
        raise MalformedDiff(f"line {patch.line}: file patch has no hunks and changes nothing")
    return patch, i


def parse_diff(diff: str) -> list[FilePatch]:
    """Parse a unified diff into its file patches; raise `MalformedDiff` when it is not one."""
    lines = diff.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    patches: list[FilePatch] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "":
            i += 1
        elif line.startswith("diff --git "):
            patch, i = _parse_git_patch(lines, i)
            patches.append(patch)
        elif line.startswith("--- "):
            patch = FilePatch(line=i + 1)
            i = _parse_minus_plus(lines, i, patch, git=False)
            patches.append(patch)
        elif patches and line[:1] in (" ", "+", "-"):
            raise MalformedDiff(f"line {i + 1}: hunk line beyond what its hunk header counts")
        else:
            raise MalformedDiff(
                f"line {i + 1}: expected a 'diff --git' or '---' file header, got {line[:80]!r}"
            )
    if not patches:
        raise MalformedDiff("empty diff" if not diff.strip() else "no file patches found")
    if not any(p.added or p.removed or p.changes_header() for p in patches):
        raise MalformedDiff("the diff changes nothing (its hunks hold only context lines)")
    return patches


# --------------------------------------------------------------------------
# Legality
# --------------------------------------------------------------------------


def normalise_path(raw: str) -> str:
    """Normalise a diff path (`./a//b` -> `a/b`); raise ValueError naming the rule it breaks."""
    if raw == "":
        raise ValueError("empty path")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise ValueError("control or NUL character in path")
    if "\\" in raw:
        raise ValueError("backslash in path")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise ValueError("absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError("path traversal ('..')")
    if any(p.lower().rstrip(". ") == ".git" for p in parts):
        raise ValueError("path inside .git")
    if not parts:
        raise ValueError("empty path")
    return "/".join(parts)


def _not_editable(spec: RecipeSpec, path: str) -> str:
    if matches_any(path, spec.protected):
        return "is protected"
    return "is outside the editable surface"


def _mode_problem(what: str, mode: str | None, allowed: tuple[str, ...]) -> str | None:
    if mode is None or mode in allowed:
        return None
    kind = _MODE_NAMES.get(mode, "unusual")
    return f"{what} {mode} ({kind}) is not allowed"


def _patch_problems(
    patch: FilePatch, spec: RecipeSpec, parent_files: Mapping[str, str], files: dict[str, None]
) -> list[str]:
    problems: list[str] = []
    name = patch.paths[-1][1] if patch.paths else "?"
    wheres = {where for where, _ in patch.paths}
    if patch.deleted_file_mode is not None or ("---" in wheres and "+++" not in wheres):
        verb = "deletes"
    elif patch.new_file_mode is not None or ("+++" in wheres and "---" not in wheres):
        verb = "creates"
    else:
        verb = "edits"
    roles: dict[tuple[str, bool], list[str]] = {}
    for alias, pairs in ((False, patch.paths), (True, patch.aliases)):
        for where, raw in pairs:
            if where not in roles.setdefault((raw, alias), []):
                roles[(raw, alias)].append(where)
    for (raw, alias), wheres_of in roles.items():
        named = f"{'read from a name' if alias else 'named'} in {', '.join(wheres_of)}"
        try:
            path = normalise_path(raw)
        except ValueError as err:
            problems.append(f"{raw!r} ({named}): {err}")
            if not alias:
                files.setdefault(raw)
            continue
        if not alias:
            name = path
            files.setdefault(path)
        if not spec.is_editable(path):
            problems.append(f"{path} ({named}): {verb} a file that {_not_editable(spec, path)}")
        parts = path.split("/")
        for k in range(1, len(parts) + 1):
            prefix = "/".join(parts[:k])
            mode = parent_files.get(prefix)
            if mode in (SYMLINK_MODE, GITLINK_MODE):
                what = "is" if prefix == path else f"lies under {prefix}, which is"
                problems.append(f"{path}: {what} a {_MODE_NAMES[mode]} in the parent tree")
                break
    if patch.old_mode is not None or patch.new_mode is not None:
        problems.append(
            f"{name}: mode change ({patch.old_mode} -> {patch.new_mode}) is not allowed"
        )
    for what, mode, allowed in (
        ("new file mode", patch.new_file_mode, (REGULAR_MODE,)),
        ("deleted file mode", patch.deleted_file_mode, (REGULAR_MODE, EXEC_MODE)),
        ("index mode", patch.index_mode, (REGULAR_MODE, EXEC_MODE)),
    ):
        problem = _mode_problem(what, mode, allowed)
        if problem:
            problems.append(f"{name}: {problem}")
    if patch.binary:
        problems.append(f"{name}: binary patches are not allowed")
    for kind, pair in (("rename", patch.rename), ("copy", patch.copy)):
        if pair is not None:
            bad = [p for p in pair if not _editable_raw(spec, p)]
            if bad:
                problems.append(
                    f"{kind} {pair[0]} -> {pair[1]}: {', '.join(bad)} is not on the editable surface"
                )
    return problems


def _editable_raw(spec: RecipeSpec, raw: str) -> bool:
    try:
        return spec.is_editable(normalise_path(raw))
    except ValueError:
        return False


def check_diff(diff: str, spec: RecipeSpec, parent_files: Mapping[str, str]) -> LegalityResult:
    """Decide whether `diff` may be applied to a trial of `spec`.

    `parent_files` maps each path of the parent trial's tree to its git mode
    (`100644`, `100755`, `120000` ...). Returns a `LegalityResult` whose label is
    None for a legal diff; never raises on any text.
    """
    if len(diff) > MAX_DIFF_CHARS:
        reason = f"illegal edit: diff is {len(diff)} characters, more than {MAX_DIFF_CHARS}"
        return LegalityResult(label=Label.illegal_edit, reason=reason, files=[])
    try:
        patches = parse_diff(diff)
    except MalformedDiff as err:
        return LegalityResult(
            label=Label.malformed_proposal, reason=f"malformed diff: {err}", files=[]
        )
    limit = spec.budgets.max_diff_lines
    if len(patches) > limit:
        reason = (
            f"illegal edit: diff has {len(patches)} file patches, more than max_diff_lines {limit}"
        )
        return LegalityResult(label=Label.illegal_edit, reason=reason, files=[])
    touched: dict[str, None] = {}
    found: dict[str, None] = {}
    for patch in patches:
        for problem in _patch_problems(patch, spec, parent_files, touched):
            found.setdefault(problem)
    files, problems = list(touched), list(found)
    added = sum(p.added for p in patches)
    removed = sum(p.removed for p in patches)
    if added + removed > limit:
        problems.append(
            f"diff changes {added + removed} lines (+{added} -{removed}), "
            f"more than max_diff_lines {limit}"
        )
    if problems:
        more = len(problems) - _MAX_REASONS
        reason = "; ".join(problems[:_MAX_REASONS]) + (f"; and {more} more" if more > 0 else "")
        return LegalityResult(
            label=Label.illegal_edit,
            reason=f"illegal edit: {reason}",
            files=files,
            added_lines=added,
            removed_lines=removed,
        )
    return LegalityResult(
        label=None,
        reason=f"legal: {len(files)} file(s), +{added} -{removed} lines",
        files=files,
        added_lines=added,
        removed_lines=removed,
    )


def check_python_syntax(files: Mapping[str, bytes]) -> str | None:
    """First syntax error among the `.py` files, as `path:line: msg`; None when all compile.

    Uses `compile()` only: nothing is executed. Files are checked in sorted path order.
    """
    for path in sorted(files):
        if not path.endswith(".py"):
            continue
        try:
            compile(files[path], path, "exec", dont_inherit=True)
        except SyntaxError as err:
            return f"{path}:{err.lineno or 0}: {err.msg}"
        except (ValueError, RecursionError, MemoryError) as err:
            return f"{path}:0: {type(err).__name__}: {err}"
    return None
