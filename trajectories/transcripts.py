"""Where agent transcripts live in a lineage, and how they are checked.

A proposal's transcript (`harness.types.Transcript`: an agent session's JSON
messages or a command's stdout/stderr) is a blob in the ledger tree at
`transcripts/<shard>/<id>.jsonl` or `.txt`, added by the trial's `proposed`
ledger commit, never changed afterwards. The trial record keeps its digest
(`Trial.transcript`), so an edited, removed or swapped transcript is a named
problem of `harness replay --verify`, and rewriting it changes every later
ledger hash like any other record.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from harness.types import TranscriptDigest, TrialRecord, trial_number

TRANSCRIPTS_DIR = "transcripts"
SUFFIXES = {"jsonl": "jsonl", "text": "txt"}
"""Transcript format -> file suffix in the ledger tree."""
_PATH_RE = re.compile(r"^transcripts/([0-9]{4,})/(t[0-9]{4,})\.(jsonl|txt)$")


def transcript_path(tid: str, fmt: str) -> str:
    """Path of a trial's transcript in the ledger tree: `transcripts/0001/t0123.txt`."""
    return f"{TRANSCRIPTS_DIR}/{trial_number(tid) // 100:04d}/{tid}.{SUFFIXES[fmt]}"


def transcript_tid(path: str) -> str | None:
    """The trial a ledger-tree path is the transcript of; None for any other path
    (including one under `transcripts/` that is not at its canonical place)."""
    m = _PATH_RE.match(path)
    if m is None:
        return None
    fmt = next(f for f, suffix in SUFFIXES.items() if suffix == m.group(3))
    return m.group(2) if transcript_path(m.group(2), fmt) == path else None


def digest_problems(tid: str, digest: TranscriptDigest, data: bytes | None) -> list[str]:
    """Why stored transcript bytes (None: absent) do not match a record's digest."""
    path = transcript_path(tid, digest.format)
    if data is None:
        return [f"transcript {path} is missing (the record names one of {digest.size} bytes)"]
    problems = []
    if len(data) != digest.size:
        problems.append(f"transcript {path} holds {len(data)} bytes but the record says {digest.size}")
    if hashlib.sha256(data).hexdigest() != digest.sha256:
        problems.append(f"transcript {path} was altered: its sha256 differs from the record's")
    return problems


def change_problem(tid: str | None, event: str | None, path_tid: str, status: str, mode: str) -> str | None:
    """Why one ledger commit's change to a transcript path is not allowed (None: it is).

    Only the `proposed` event of the trial itself may add its transcript, as a
    plain file; nothing may change or delete one later."""
    if status == "D":
        return "deletes its transcript"
    if status != "A":
        return "changes its transcript after it was stored"
    if event != "proposed" or tid != path_tid:
        return f"adds its transcript outside its proposed event ({event} event of {tid})"
    if mode != "100644":
        return f"gives its transcript mode {mode}"
    return None


def head_problems(
    records: dict[str, TrialRecord], state: dict[str, str], read: Callable[[list[str]], dict[str, bytes | None]]
) -> list[str]:
    """Check every transcript at the ledger head against its record's digest.

    `state` maps ledger-tree paths to blob shas; `read` loads blobs by sha. A
    record's transcript that is absent or altered, and a transcript no record
    names, are each a problem (`t0003: ...`)."""
    stored = {path: sha for path, sha in state.items() if transcript_tid(path) is not None}
    named = {
        transcript_path(tid, r.trial.transcript.format): (tid, r.trial.transcript)
        for tid, r in records.items()
        if r.trial.transcript is not None
    }
    blobs = read([stored[p] for p in named if p in stored])
    problems = []
    for path, (tid, digest) in sorted(named.items(), key=lambda kv: trial_number(kv[1][0])):
        data = blobs.get(stored[path]) if path in stored else None
        problems += [f"{tid}: {p}" for p in digest_problems(tid, digest, data)]
    for path in sorted(set(stored) - set(named)):
        problems.append(f"{transcript_tid(path)}: transcript {path} is stored but its record names none")
    return problems


__all__ = [
    "SUFFIXES",
    "TRANSCRIPTS_DIR",
    "change_problem",
    "digest_problems",
    "head_problems",
    "transcript_path",
    "transcript_tid",
]
