"""Checks of free text that agents take from outside (proposals files, model answers)
before it becomes a proposal: what the lineage could not store unchanged is refused
up front, with the reason, instead of failing the run when the trial is recorded."""

from __future__ import annotations

import re

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SHOWN_CHARS = 60
"""Bad values are quoted in errors up to this many characters."""


def text_problem(text: str, *, commit_message: bool = False) -> str | None:
    """Why `text` cannot be stored unchanged, or None.

    A lone surrogate (`\\ud800`, which JSON escapes can spell) is not Unicode text:
    records could not be written back. A commit message (the hypothesis) cannot
    hold NUL."""
    found = _SURROGATE.search(text)
    if found:
        return f"holds a lone surrogate {found.group()!r} at character {found.start() + 1}, which is not text"
    if commit_message and "\0" in text:
        return f"holds a NUL character at character {text.index(chr(0)) + 1}"
    return None


def without_surrogates(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (what UTF-8 can carry)."""
    return _SURROGATE.sub("\ufffd", text)


def name_problem(text: str) -> str | None:
    """Why `text` is not usable as a name in a commit trailer (a specialist), or None."""
    if not text.strip():
        return "is empty"
    if text != text.strip():
        return "has blanks around it"
    found = _CONTROL.search(text) or _SURROGATE.search(text)
    if found:
        return f"holds the character {found.group()!r}"
    return None


def shown(value: object) -> str:
    """`repr(value)`, cut to `SHOWN_CHARS` characters for an error message."""
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's 4300-digit limit on int -> str
        return f"an integer of {len(format(value, 'x'))} hex digits"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."
