"""The record blobs a verification reads: their bytes, their parsed records, and why one is bad.

A record blob is good when it validates against the schema and its bytes are the
canonical JSON of what it holds (`dump_json`). Checking that costs a parse, a
dump and a re-encoding per blob, and a run stores two blobs per trial: the
proposed record `{"trial": T}` and the outcome record `{"outcome": O, "trial":
T}` that replaces it. A proposed record is therefore deferred (`defer`): when the
outcome record that replaces it is good and holds, byte for byte, the text of T
the proposed record holds, the proposed record is good too and the outcome event
changed nothing but the outcome (`settled`, `outcome_only`); only a proposed
record that is not settled so is parsed on its own.
"""

from __future__ import annotations

from pydantic import ValidationError

from harness.types import TrialRecord

from ._git import Git
from .bulk_reads import read_blobs
from .canonical_json import canonical_json

_PROPOSED_HEAD, _RECORD_TAIL = b'{\n "trial": ', b"\n}\n"
_OUTCOME_HEAD, _TRIAL_JOIN = b'{\n "outcome": ', b',\n "trial": '
"""The fixed text around a record's parts in canonical JSON (keys sorted, one space of indent)."""


def canonical_bytes(dumped: dict) -> tuple[bytes, bytes | None]:
    """`dump_json` of a record from its dump, and the text of its trial when the record holds an
    outcome and a trial (what `RecordBlobs.parse` settles a proposed record by). Raises ValueError
    for NaN or infinity."""
    if dumped.keys() == {"outcome", "trial"}:
        outcome = canonical_json(dumped["outcome"], 1).encode("ascii")
        trial = canonical_json(dumped["trial"], 1).encode("ascii")
        return _OUTCOME_HEAD + outcome + _TRIAL_JOIN + trial + _RECORD_TAIL, trial
    return (canonical_json(dumped) + "\n").encode("ascii"), None


class RecordBlobs:
    """Blobs read from one repository, and the record checks made on them (see the module doc)."""

    def __init__(self, git: Git) -> None:
        self.git = git
        self.blobs: dict[str, bytes | None] = {}
        self.parsed: dict[str, TrialRecord | None] = {}
        self.errors: dict[str, str] = {}
        """Blob -> why it is not a good record (see `parse`)."""
        self.deferred: dict[str, list[tuple[str, str]]] = {}
        """Proposed record blob not checked yet -> (trial id, where) of each event that added it."""
        self.settled: dict[str, str] = {}
        """Proposed record blob -> the good outcome record blob that holds its trial's text."""

    def load(self, shas: list[str]) -> None:
        self.blobs.update(read_blobs(self.git, [s for s in shas if s not in self.blobs]))

    def read(self, shas: list[str]) -> dict[str, bytes | None]:
        self.load(shas)
        return {sha: self.blobs.get(sha) for sha in shas}

    def parse(self, sha: str, proposed: str | None = None) -> TrialRecord | None:
        """The record in blob `sha` (None when missing or invalid; the reason is in `errors`).

        `proposed`: for an outcome event, the blob of the record it replaces, settled when it can be."""
        if sha in self.parsed:
            return self.parsed[sha]
        data = self.blobs.get(sha)
        record = None
        if data is None:
            self.errors[sha] = f"record blob {sha} is missing"
        else:
            try:
                record = TrialRecord.model_validate_json(data)
            except ValidationError as exc:
                errs = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
                self.errors[sha] = f"record does not validate against the schema: {errs}"
            else:
                dumped = record.model_dump(mode="json", exclude_defaults=True)
                try:
                    canonical, trial_text = canonical_bytes(dumped)
                except ValueError:
                    canonical, trial_text = None, None  # NaN or infinity: no canonical JSON exists
                if canonical != data:
                    self.errors[sha] = "record file is not in canonical JSON form"
                elif proposed is not None and trial_text is not None:
                    # The canonical text of {"trial": T}, T the one this good record holds: good too.
                    if self.blobs.get(proposed) == _PROPOSED_HEAD + trial_text + _RECORD_TAIL:
                        self.settled[proposed] = sha
        self.parsed[sha] = record
        return record

    def defer(self, tid: str, sha: str, where: str) -> bool:
        """Defer the check of proposed record `sha`, added by `tid`'s event `where`, when it has
        the shape of one; False when it must be checked now."""
        data = self.blobs.get(sha)
        if data is None or not data.startswith(_PROPOSED_HEAD) or not data.endswith(_RECORD_TAIL):
            return False
        self.deferred.setdefault(sha, []).append((tid, where))
        return True

    def outcome_only(self, proposed: str, outcome: str) -> bool:
        """Whether both record blobs are good and the outcome one adds only the outcome."""
        return self.settled.get(proposed) == outcome

    def unsettled(self, sha: str) -> list[tuple[str, str]]:
        """The deferred events of proposed record `sha` that its outcome record did not settle (to be
        checked now); forgets them all."""
        outcome = self.parsed.get(self.settled.get(sha, ""))
        return [(tid, where) for tid, where in self.deferred.pop(sha, [])
                if outcome is None or outcome.trial.id != tid]
