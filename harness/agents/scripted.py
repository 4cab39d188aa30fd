"""Proposals read from a JSONL file, in order: for reproducible demos and tests.

Each non-blank line is one JSON object::

    {"hypothesis": str, "diff": str, "parent": "t0003", "specialist": str, "expected_delta": 0.01,
     "fidelity": "smoke"}

`parent`, `specialist`, `expected_delta` and `fidelity` (the level the trial
asks to run at) are optional (null counts as absent). The whole file is
validated when the agent is made, so a bad file fails before the run starts. The agent's position in the file is derived from
the lineage (how many trials the scripted agent already wrote), so a resumed
run carries on where the interrupted one stopped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from harness.agents.base import AgentContext, AgentError
from harness.agents.storable import name_problem, shown, text_problem
from harness.types import TRIAL_ID_PATTERN, Proposal

REQUIRED = ("hypothesis", "diff")
OPTIONAL = ("parent", "specialist", "expected_delta", "fidelity")


@dataclass(frozen=True)
class ScriptedEntry:
    """One validated line of a proposals file."""

    line: int
    hypothesis: str
    diff: str
    parent: str | None = None
    specialist: str | None = None
    expected_delta: float | None = None
    fidelity: str | None = None


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def load_proposals(path: Path) -> list[ScriptedEntry]:
    """Read and validate a proposals file; `AgentError` names the file, the line and the problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AgentError(f"{path}: proposals file not found") from None
    except IsADirectoryError:
        raise AgentError(f"{path}: proposals file is a directory") from None
    except OSError as exc:
        raise AgentError(f"{path}: cannot read proposals file: {exc}") from None
    try:
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise AgentError(f"{path}: proposals file is not UTF-8 text ({exc.reason} on line {line})") from None

    entries: list[ScriptedEntry] = []
    # Lines end at "\n" only: str.splitlines() would also cut at U+2028, form feeds
    # and the like, which JSON strings may hold unescaped.
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        entries.append(_entry(raw, number, f"{path}:{number}"))
    if not entries:
        raise AgentError(f"{path}: proposals file holds no proposals")
    return entries


def _parse_line(raw: str, where: str) -> dict:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AgentError(f"{where}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:  # an integer past Python's digit limit
        raise AgentError(f"{where}: not valid JSON: {str(exc).split(';')[0]}") from None
    except RecursionError:
        raise AgentError(f"{where}: not valid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise AgentError(f"{where}: expected a JSON object, got {_type_name(obj)}")
    return obj


def _entry(raw: str, number: int, where: str) -> ScriptedEntry:
    """One line as a validated entry; `AgentError` naming `where` and the problem."""
    obj = _parse_line(raw, where)
    unknown = sorted(set(obj) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise AgentError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(shown, unknown[:5]))} "
            f"(allowed: {', '.join(REQUIRED + OPTIONAL)})"
        )
    for key in REQUIRED:
        if key not in obj:
            raise AgentError(f"{where}: missing required key {key!r}")
        if not isinstance(obj[key], str):
            raise AgentError(f"{where}: {key!r} must be a string, got {_type_name(obj[key])}")
        problem = text_problem(obj[key], commit_message=key == "hypothesis")
        if problem:
            raise AgentError(f"{where}: {key!r} {problem}")
    if not obj["hypothesis"].strip():
        raise AgentError(f"{where}: 'hypothesis' is empty")
    for key in ("parent", "specialist", "fidelity"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise AgentError(f"{where}: {key!r} must be a string or null, got {_type_name(value)}")
    parent = obj.get("parent")
    if parent is not None and not re.match(TRIAL_ID_PATTERN, parent):
        raise AgentError(f"{where}: 'parent' {shown(parent)} is not a trial id like t0003")
    for key in ("specialist", "fidelity"):
        value = obj.get(key)
        problem = None if value is None else name_problem(value)
        if problem:
            raise AgentError(f"{where}: {key!r} {shown(value)} {problem}")
    return ScriptedEntry(
        line=number,
        hypothesis=obj["hypothesis"],
        diff=obj["diff"],
        parent=parent,
        specialist=obj.get("specialist"),
        expected_delta=_expected_delta(obj.get("expected_delta"), where),
        fidelity=obj.get("fidelity"),
    )


def _expected_delta(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AgentError(f"{where}: 'expected_delta' must be a number or null, got {_type_name(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer past the float range
        number = math.inf
    if not math.isfinite(number):
        raise AgentError(f"{where}: 'expected_delta' must be a finite number, got {shown(value)}")
    return number


class ScriptedAgent:
    """Proposes the lines of a JSONL file in order; None once they are all proposed."""

    name = "scripted"

    def __init__(self, proposals_file: Path | str | None = None, *, seed: int = 0) -> None:
        if proposals_file is None:
            raise AgentError("the scripted agent needs a proposals file (JSONL, one proposal a line)")
        self.path = Path(proposals_file)
        self.seed = seed
        self.entries = load_proposals(self.path)

    def position(self, ctx: AgentContext) -> int:
        """How many lines were already proposed: the trials of the lineage this agent wrote,
        plus the proposals under way before this one (with several proposers every one is
        this agent's: trials the harness makes itself run only with one proposer)."""
        return sum(1 for rec in ctx.records if rec.trial.proposal.agent == self.name) + ctx.earlier_under_way()

    def propose(self, ctx: AgentContext) -> Proposal | None:
        index = self.position(ctx)
        if index >= len(self.entries):
            return None
        entry = self.entries[index]
        return Proposal(
            agent=self.name,
            hypothesis=entry.hypothesis,
            diff=entry.diff,
            parent=entry.parent,
            specialist=entry.specialist,
            expected_delta=entry.expected_delta,
            fidelity=entry.fidelity,
        )
