"""Fuzzed proposals files: any bytes either load into proposals that store intact, or fail
with one `file:line: what` error; valid files load exactly, whatever their text holds."""

from __future__ import annotations

import json
import re
import string
import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from harness.agents.base import AgentError
from harness.agents.scripted import OPTIONAL, REQUIRED, ScriptedEntry, load_proposals
from harness.types import Proposal
from stored import assert_stored_intact

MAX_MESSAGE = 500
"""An error message quotes bad values only in part."""

TRICKY = "\u2028\u2029\x85\x0b\x0c\x1c\r\t\0\ufeff\"\\"
"""Characters that line splitting, JSON and commit messages treat specially."""


def texts(max_size: int, blacklist: str = "") -> st.SearchStrategy[str]:
    """Text with the tricky characters far more often than uniform sampling gives them."""
    plain = st.characters(blacklist_categories=("Cs",), blacklist_characters=blacklist)
    tricky = st.sampled_from([c for c in TRICKY if c not in blacklist])
    return st.lists(plain | tricky, max_size=max_size).map("".join)


numbers = st.integers() | st.integers(min_value=2**1024) | st.floats()
"""Integers past the float range, NaN and infinities included."""
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts(30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
clean_text = texts(80, blacklist="\0")
"""Any text a lineage can hold (no lone surrogates, no NUL)."""
hypotheses = clean_text.filter(lambda t: t.strip() != "")
specialists = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
trial_ids = st.integers(0, 99999).map(lambda n: f"t{n:04d}")
deltas = st.none() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def valid_objects(draw: st.DrawFn) -> dict:
    obj = {"hypothesis": draw(hypotheses), "diff": draw(clean_text)}
    for key, values in (("parent", trial_ids), ("specialist", specialists), ("expected_delta", deltas)):
        if draw(st.booleans()):
            obj[key] = draw(st.none() | values)
    return obj


@st.composite
def mutated_objects(draw: st.DrawFn) -> tuple[dict, str]:
    """A valid object with one key set to any JSON value (or text, or a number), deleted, or
    added; and that key."""
    obj = draw(valid_objects())
    key = draw(st.sampled_from(REQUIRED + OPTIONAL) | st.text(max_size=10))
    if draw(st.booleans()):
        obj.pop(key, None)
    else:
        obj[key] = draw(json_values | texts(30) | numbers)
    return obj, key


def dump_line(obj: object, ensure_ascii: bool) -> str:
    return json.dumps(obj, ensure_ascii=ensure_ascii)


files = st.one_of(
    st.binary(max_size=300),
    st.lists(st.text(max_size=40), max_size=6).map("\n".join).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.lists(json_values.map(json.dumps), min_size=1, max_size=4).map("\n".join).map(str.encode),
    st.lists(mutated_objects().map(lambda pair: json.dumps(pair[0])), min_size=1, max_size=4)
    .map("\n".join).map(str.encode),
)


def write(data: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="proposals-fuzz-"))
    path = folder / "proposals.jsonl"
    path.write_bytes(data)
    return path


def load_or_error(path: Path) -> list[ScriptedEntry] | str:
    """The entries (each checked to store intact), or the one-line error message (checked)."""
    try:
        entries = load_proposals(path)
    except AgentError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < MAX_MESSAGE + len(str(path)), message
        assert message.startswith(f"{path}: ") or re.match(rf"{re.escape(str(path))}:\d+: \S", message), message
        return message
    for entry in entries:
        assert_stored_intact(Proposal(agent="scripted", hypothesis=entry.hypothesis, diff=entry.diff,
                                      parent=entry.parent, specialist=entry.specialist,
                                      expected_delta=entry.expected_delta))
    return entries


@given(files)
@example(b'{"hypothesis": "h", "diff": "d", "expected_delta": ' + b"1" * 5000 + b"}")
@example(b'{"hypothesis": "h", "diff": "d", "expected_delta": ' + b"1" * 400 + b"}")
@example(b'{"hypothesis": "h", "diff": "d", "expected_delta": NaN}')
@example(b'{"hypothesis": "h", "diff": "d", "expected_delta": -1e999}')
@example(b"[" * 100_000 + b"]" * 100_000)
@example(b'{"hypothesis": "h\\ud800", "diff": "d"}')
@example(b'{"hypothesis": "h", "diff": "\\udc80"}')
@example(b'{"hypothesis": "h\\u0000", "diff": "d"}')
@example(b'{"hypothesis": "h", "diff": "d", "specialist": "arch\\nTrial-Id: t9999"}')
@example(b'{"hypothesis": "h", "diff": "d", "specialist": " arch"}')
@example(b'{"hypothesis": "h", "diff": "d", "parent": "' + b"x" * 10_000 + b'"}')
def test_any_file_loads_intact_or_names_the_line(data: bytes) -> None:
    path = write(data)
    result = load_or_error(path)
    if isinstance(result, str):
        where = re.match(rf"{re.escape(str(path))}:(\d+): ", result)
        if where:
            assert 1 <= int(where[1]) <= data.count(b"\n") + 1, result
    else:
        text = data.decode("utf-8")
        assert len(result) == sum(1 for line in text.split("\n") if line.strip())


@given(mutated_objects())
@example(({"hypothesis": "h", "diff": "d", "expected_delta": 10**400}, "expected_delta"))
def test_a_bad_field_is_named(pair: tuple[dict, str]) -> None:
    obj, key = pair
    path = write(json.dumps(obj).encode())
    result = load_or_error(path)
    if isinstance(result, str):
        assert result.startswith(f"{path}:1: "), result
        assert repr(key) in result or key in ("hypothesis", "diff") and "missing" in result, result


@given(st.lists(valid_objects(), min_size=1, max_size=5), st.booleans(), st.sampled_from(["\n", "\r\n"]),
       st.lists(st.sampled_from(["", "  ", "\t"]), max_size=3))
@example([{"hypothesis": "line\u2028separator\x85next\x1cfile", "diff": "a\x0bb\x0cc"}], False, "\n", [])
def test_valid_files_load_exactly(objs: list[dict], ensure_ascii: bool, newline: str, blanks: list[str]) -> None:
    lines = [dump_line(o, ensure_ascii) for o in objs]
    lines[1:1] = blanks  # blank lines between proposals are skipped, not counted as proposals
    path = write((newline.join(lines) + newline).encode("utf-8"))
    entries = load_or_error(path)
    assert not isinstance(entries, str), entries
    got = [{"hypothesis": e.hypothesis, "diff": e.diff, "parent": e.parent, "specialist": e.specialist,
            "expected_delta": e.expected_delta} for e in entries]
    want = [{"parent": None, "specialist": None, "expected_delta": None, **o} for o in objs]
    assert got == [{**w, "expected_delta": None if w["expected_delta"] is None else float(w["expected_delta"])}
                   for w in want]
    numbers = [i + 1 for i, line in enumerate(lines) if line.strip()]
    assert [e.line for e in entries] == numbers
