"""Knob editing shared by the non-LLM agents.

A knob is an assignment `NAME = <python literal>` at column 0 of an editable
file (`Knob.pattern()`). These helpers read the current values, rewrite the
assignment lines and render the change as a unified git-style diff that
`git apply` accepts.
"""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Union

from harness.agents.base import AgentContext, AgentError
from harness.types import BASELINE_TRIAL_ID, Knob, RecipeSpec

KnobValue = Union[bool, int, float, str]
ReadText = Callable[[str], str]


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


def value_key(value: object) -> tuple[str, object]:
    """A hashable, type-aware key: `True`, `1` and `1.0` are different knob values."""
    return (type(value).__name__, value)


def same_value(a: object, b: object) -> bool:
    """Type-aware equality of knob values."""
    return value_key(a) == value_key(b)


def config_key(config: Mapping[str, object]) -> frozenset[tuple[str, tuple[str, object]]]:
    """A hashable key of a knob assignment, for spotting configurations already tried."""
    return frozenset((name, value_key(value)) for name, value in config.items())


def is_knob_value(value: object) -> bool:
    """Whether `value` may stand in `Proposal.knobs` (bool, int, float or str)."""
    return isinstance(value, (bool, int, float, str))


# --------------------------------------------------------------------------
# Locating and parsing knob lines
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class KnobLine:
    """Where a knob's assignment sits in its file and what it says."""

    index: int
    """Index of the line in `text.splitlines(keepends=True)`."""
    value_src: str
    """Source of the assigned value, stripped."""
    gap: str
    """Whitespace between the value and the trailing comment."""
    comment: str
    """Trailing comment including `#`, or ``."""
    ending: str
    """Line ending (`\\n`, `\\r\\n` or `` on a last line without one)."""


def _split_ending(line: str) -> tuple[str, str]:
    body = line.rstrip("\r\n")
    return body, line[len(body):]


def _split_comment(rhs: str) -> tuple[str, str, str] | None:
    """Split the right-hand side of an assignment into (value, gap, comment) with tokenize."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(rhs).readline):
            if tok.type == tokenize.COMMENT:
                col = tok.start[1]
                before = rhs[:col]
                value = before.strip()
                return value, before[len(before.rstrip()):], rhs[col:]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return rhs.strip(), "", ""


def locate(knob: Knob, text: str) -> KnobLine | None:
    """The first line of `text` holding `knob`'s assignment, or None when there is none."""
    pattern = knob.pattern()
    for index, line in enumerate(text.splitlines(keepends=True)):
        body, ending = _split_ending(line)
        match = pattern.match(body)
        if match is None:
            continue
        rhs = body[body.index("=", len(knob.name)) + 1:]
        split = _split_comment(rhs)
        if split is None:
            # Tokenize could not read it; fall back to what the pattern says.
            value = match.group("value")
            comment = match.group(2) or ""
            gap_end = match.start(2) if comment else len(body)
            gap = body[match.end("value"):gap_end]
            return KnobLine(index, value.strip(), gap, comment, ending)
        value, gap, comment = split
        return KnobLine(index, value, gap, comment, ending)
    return None


def parse_value(src: str) -> object | None:
    """`ast.literal_eval` of a value's source, None when it is not a literal."""
    try:
        return ast.literal_eval(src)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _reader_cache(read_text: ReadText) -> Callable[[str], str | None]:
    cache: dict[str, str | None] = {}

    def read(path: str) -> str | None:
        if path not in cache:
            try:
                cache[path] = read_text(path)
            except (OSError, KeyError, ValueError, LookupError):
                cache[path] = None
        return cache[path]

    return read


def read_knobs(spec: RecipeSpec, read_text: ReadText) -> dict[str, object | None]:
    """Current value of every knob of `spec`, None where its line is missing or not a literal.

    `read_text(path)` returns the text of an editable file; a file it cannot
    read (OSError, KeyError, ValueError, LookupError) counts as missing.
    """
    read = _reader_cache(read_text)
    values: dict[str, object | None] = {}
    for knob in spec.knobs:
        text = read(knob.file)
        found = locate(knob, text) if text is not None else None
        values[knob.name] = parse_value(found.value_src) if found is not None else None
    return values


def editable_knobs(spec: RecipeSpec, read_text: ReadText) -> list[Knob]:
    """Knobs of `spec` whose assignment line exists in the files `read_text` reads."""
    read = _reader_cache(read_text)
    out = []
    for knob in spec.knobs:
        text = read(knob.file)
        if text is not None and locate(knob, text) is not None:
            out.append(knob)
    return out


def knobs_for(spec: RecipeSpec, specialist: str | None) -> tuple[list[Knob], str | None]:
    """The knobs an agent works on for `specialist`, and the specialist it then writes for.

    A specialist the spec names and that owns knobs restricts the space to those
    knobs. Otherwise (no specialist, one the spec does not name, or one without
    knobs) every knob is in play and the proposal is not tied to the specialist.
    """
    if specialist is not None and specialist in spec.specialists:
        owned = spec.specialists[specialist].knobs
        if owned:
            return [spec.knob(name) for name in owned], specialist
    return list(spec.knobs), None


# --------------------------------------------------------------------------
# Rewriting and diffing
# --------------------------------------------------------------------------


def rewrite(text: str, knob: Knob, value: object) -> str:
    """`text` with the assignment of `knob` replaced by `NAME = repr(value)` (comment kept)."""
    found = locate(knob, text)
    if found is None:
        raise AgentError(f"knob {knob.name!r}: no line `{knob.name} = <literal>` in {knob.file}")
    lines = text.splitlines(keepends=True)
    new = f"{knob.name} = {value!r}"
    if found.comment:
        new += (found.gap or "  ") + found.comment
    lines[found.index] = new + found.ending
    return "".join(lines)


def file_diff(path: str, old: str, new: str) -> str:
    """A git-style unified diff of one file (`diff --git` header, 3 lines of context)."""
    if old == new:
        return ""
    out = [f"diff --git a/{path} b/{path}\n"]
    for line in difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
        n=3,
    ):
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


def knob_diff(spec: RecipeSpec, read_text: ReadText, changes: Mapping[str, object]) -> str:
    """Unified diff setting each knob in `changes` to its value, one section per touched file.

    Only the assignment lines change. Files come in sorted order; a change to a
    knob's current value contributes nothing, so no changes give "". Raises
    `AgentError` for an unknown knob or one whose file or line is missing.
    """
    by_file: dict[str, list[tuple[Knob, object]]] = {}
    for name, value in changes.items():
        try:
            knob = spec.knob(name)
        except KeyError:
            raise AgentError(
                f"unknown knob {name!r}; recipe {spec.name!r} has {[k.name for k in spec.knobs]}"
            ) from None
        by_file.setdefault(knob.file, []).append((knob, value))

    sections = []
    for path in sorted(by_file):
        try:
            old = read_text(path)
        except (OSError, KeyError, ValueError, LookupError) as exc:
            raise AgentError(f"cannot read {path} to edit knobs: {exc}") from exc
        new = old
        for knob, value in by_file[path]:
            new = rewrite(new, knob, value)
        sections.append(file_diff(path, old, new))
    return "".join(sections)


def _fmt(value: object) -> str:
    return "?" if value is None else repr(value)


def knob_hypothesis(changes: Mapping[str, object], current: Mapping[str, object | None]) -> str:
    """`Set ENCODER: 'meanpool' -> 'gru'; LR: 0.001 -> 0.003.`"""
    if not changes:
        return "Keep the knob settings unchanged."
    parts = [f"{name}: {_fmt(current.get(name))} -> {_fmt(value)}" for name, value in changes.items()]
    return "Set " + "; ".join(parts) + "."


def full_assignment(
    current: Mapping[str, object | None], changes: Mapping[str, object]
) -> dict[str, KnobValue]:
    """The knob assignment after `changes`, leaving out knobs without a readable value."""
    merged = {**current, **changes}
    return {name: value for name, value in merged.items() if is_knob_value(value)}  # type: ignore[misc]


def tried_configs(configs: Iterable[Mapping[str, object]]) -> set[frozenset]:
    """Keys of the non-empty configurations among `configs`."""
    return {config_key(c) for c in configs if c}


def known_configs(ctx: AgentContext) -> set[frozenset]:
    """Keys of the knob configurations the lineage already holds (the baseline's read from its files)."""
    configs = [rec.trial.proposal.knobs for rec in ctx.records]
    if ctx.spec.knobs and ctx.record(BASELINE_TRIAL_ID) is not None:
        configs.append(full_assignment(read_knobs(ctx.spec, ctx.reader(BASELINE_TRIAL_ID)), {}))
    return tried_configs(configs)
