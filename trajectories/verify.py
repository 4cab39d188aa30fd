"""Integrity verification of a lineage (`harness replay RUN --verify`).

`verify_lineage` re-derives everything it can from the git objects and never
raises for a damaged lineage: each damage becomes a problem string that names the
trial it concerns (`t0003: ...`), or `ledger:` / `run:` / `best:` when no single
trial is concerned. It reads the repository in a handful of bulk passes
(`rev-list`, `cat-file --batch`, `diff-tree --stdin`), not one process per trial.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from harness.types import (
    BASELINE_TRIAL_ID,
    TRIAL_ID_PATTERN,
    Label,
    fidelity_cost,
    Outcome,
    RunInfo,
    TrialRecord,
    trial_id,
    trial_number,
)

from ._git import EMPTY_TREE, SHA_RE, CommitObject, Git, GitError, decode_commit, parse_message
from .bulk_reads import Change, ahead, patches, raw_diffs, read_blobs
from .record_blobs import RecordBlobs
from .lineage import (
    BEST_REF,
    LEDGER_REF,
    RUN_FILE,
    TRIAL_REF_PREFIX,
    bulk_read,
    dump_json,
    record_path,
    trial_commit_problems,
)
from .transcripts import change_problem, head_problems, transcript_tid
from .proposal_state import LedgerPoint, based_on_problems

SCORE_TOLERANCE = 1e-9
MAX_LISTED = 50
"""Missing trial ids listed one by one before the rest is summarised."""
CHAIN_SLICE = 1000
"""Ledger commits in the first slice whose changes and record blobs are read together, ahead of
their checks (`bulk_reads.ahead`; each later slice twice the one before): two git processes a
slice, the first slice's read the only one not overlapped with checks."""
_RECORD_PATH_RE = re.compile(r"^trials/([0-9]{4,})/(t[0-9]{4,})\.json$")


class VerifyReport(BaseModel):
    """What `verify_lineage` found."""

    problems: list[str] = []
    """One line per damage, naming the trial (`t0003: ...`)."""
    records: list[TrialRecord] = []
    """Records of the ledger head that validate, sorted by trial number."""
    best: str | None = None
    """Trial `refs/heads/best` points at (None when missing or not a trial)."""
    info: RunInfo | None = None
    """The run metadata, when `run.json` validates."""
    outcome_order: list[str] = []
    """Trial ids in the order their outcomes were appended to the ledger."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _TrialEvents:
    proposed: int = 0
    outcome: int = 0
    named_commits: list[tuple[str, str, str]] = field(default_factory=list)
    """(event, ledger commit, Trial-Commit trailer)."""
    first_at: dict[str, int] = field(default_factory=dict)
    """Event -> position in the ledger chain of its first commit."""


def verify_lineage(run_dir: Path) -> VerifyReport:
    """Check a run's lineage; every damage becomes a problem in the report."""
    report = VerifyReport()
    try:
        with bulk_read():
            _Verifier(Path(run_dir), report).run()
    except Exception as exc:  # noqa: BLE001 - a damaged lineage never raises
        report.problems.append(f"lineage: verification stopped: {type(exc).__name__}: {exc}")
    return report


def _tid_of_path(path: str) -> str | None:
    m = _RECORD_PATH_RE.match(path)
    return m.group(2) if m else None


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=SCORE_TOLERANCE, abs_tol=SCORE_TOLERANCE)


class _Verifier:
    def __init__(self, run_dir: Path, report: VerifyReport) -> None:
        self.run_dir = run_dir
        self.report = report
        self.git = Git(run_dir / ".git", run_dir)
        self.records = RecordBlobs(self.git)
        self.reported: set[tuple[str, str]] = set()
        self.points: dict[str, LedgerPoint] = {}
        """Ledger commit -> its place in the chain (see `proposal_state`)."""

    def problem(self, who: str, text: str) -> None:
        self.report.problems.append(f"{who}: {text}")

    def defer_proposed(self, tid: str, sha: str, where: str) -> None:
        """The proposed record `sha` of `tid`: checked now, or when its outcome comes (`RecordBlobs.defer`)."""
        if not self.records.defer(tid, sha, where):
            self.check_proposed(tid, sha, where)

    def resolve_deferred(self, sha: str) -> None:
        """Check the events that added proposed record `sha`, unless its outcome record settled them."""
        for tid, where in self.records.unsettled(sha):
            self.check_proposed(tid, sha, where)

    def check_proposed(self, tid: str, sha: str, where: str) -> None:
        record = self.check_record_blob(tid, sha, where)
        if record is not None and record.outcome is not None:
            self.problem(tid, f"{where} already holds an outcome")
        # Needed again only while it is the head's record (no outcome yet), and then
        # parsed again: holding every proposed record made each full pass of the
        # garbage collector longer as the run grows.
        self.records.parsed.pop(sha, None)

    # -- the checks ------------------------------------------------------------------

    def run(self) -> None:
        report = self.report
        if not (self.run_dir / ".git").is_dir():
            self.problem("run", f"{self.run_dir} holds no lineage (no .git folder)")
            return
        try:
            refs = self.git.refs()
        except GitError as exc:
            self.problem("run", f"cannot read the refs: {exc.stderr.strip()}")
            return
        head = refs.get(LEDGER_REF)
        trial_refs = {n[len(TRIAL_REF_PREFIX) :]: s for n, s in refs.items() if n.startswith(TRIAL_REF_PREFIX)}
        if head is None:
            self.problem("ledger", "refs/heads/ledger is missing")
            for tid in sorted(trial_refs):
                self.problem(tid, f"refs/trials/{tid} has no record in the ledger (no ledger)")
            return

        state, events, outcome_order, info = self.check_ledger(head)
        report.outcome_order = list(outcome_order)
        report.info = info

        # Final records of the ledger head.
        records: dict[str, TrialRecord] = {}
        for path, sha in state.items():
            tid = _tid_of_path(path)
            if tid is None:
                continue
            record = self.check_record_blob(tid, sha, "the ledger head")
            if record is not None:
                records[tid] = record
        report.records = sorted(records.values(), key=lambda r: trial_number(r.trial.id))
        report.problems += head_problems(records, state, self.records.read)

        # 1. completeness: contiguous ids, one proposed and at most one outcome event each.
        present = {trial_number(t) for t in records}
        top = max(present | {trial_number(t) for t in events}, default=-1)
        missing = top + 1 - len(present)
        n = shown = 0
        while shown < min(missing, MAX_LISTED):  # bounded even for an absurd trial number
            if n not in present:
                tid = trial_id(n)
                if tid in events:
                    self.problem(tid, "has no valid record at the ledger head")
                else:
                    self.problem(tid, "missing from the ledger (trial ids must be contiguous from t0000)")
                shown += 1
            n += 1
        if missing > shown:
            self.problem("ledger", f"{missing - shown} more trial ids up to {trial_id(top)} are missing")
        for tid, record in sorted(records.items(), key=lambda kv: trial_number(kv[0])):
            ev = events.get(tid, _TrialEvents())
            if ev.proposed != 1:
                self.problem(tid, f"has {ev.proposed} proposed events (expected exactly one)")
            if ev.outcome > 1:
                self.problem(tid, f"has {ev.outcome} outcome events (expected at most one)")
            if record.outcome is None:
                self.problem(tid, "proposed but no outcome (interrupted run?)")
            if info is not None and record.trial.run_id != info.run_id:
                self.problem(tid, f"run id {record.trial.run_id!r} is not the run's {info.run_id!r}")

        # 2. refs.
        for tid, record in records.items():
            ref = trial_refs.get(tid)
            if ref is None:
                self.problem(tid, f"refs/trials/{tid} is missing")
            elif ref != record.trial.commit:
                self.problem(tid, f"refs/trials/{tid} points at {ref} but the record says {record.trial.commit}")
            for event, ledger_commit, named in events.get(tid, _TrialEvents()).named_commits:
                if named != record.trial.commit:
                    self.problem(
                        tid,
                        f"{event} event {ledger_commit[:12]} names trial commit {named} "
                        f"but the record says {record.trial.commit}",
                    )
        for tid in sorted(set(trial_refs) - set(records)):
            self.problem(tid, f"refs/trials/{tid} has no record in the ledger")

        # 3. trial commits.
        commit_shas = [r.trial.commit for r in records.values()]
        if info is not None:
            commit_shas.append(info.baseline_commit)
        objs = self.git.cat_batch(commit_shas)
        commits: dict[str, CommitObject] = {
            sha: decode_commit(obj[1]) for sha, obj in objs.items() if obj is not None and obj[0] == "commit"
        }
        parent_commit: dict[str, str | None] = {}
        for tid, record in sorted(records.items(), key=lambda kv: trial_number(kv[0])):
            t = record.trial
            if tid == BASELINE_TRIAL_ID:
                if t.parent is not None:
                    self.problem(tid, f"the baseline names a parent trial {t.parent}")
                if info is not None and t.commit != info.baseline_commit:
                    self.problem(tid, f"baseline commit {t.commit} is not run.json's {info.baseline_commit}")
                if t.proposal.diff != "":
                    self.problem(tid, "the baseline's stored diff is not empty")
                parent_commit[tid] = None
            elif t.parent is None:
                self.problem(tid, "names no parent trial")
                continue
            elif t.parent not in records:
                self.problem(tid, f"parent trial {t.parent} is not in the ledger")
                continue
            elif trial_number(t.parent) >= trial_number(tid):
                self.problem(tid, f"parent trial {t.parent} does not come before it")
                continue
            else:
                parent_commit[tid] = records[t.parent].trial.commit
            if t.proposal.parent is not None and t.proposal.parent != t.parent:
                self.problem(tid, f"proposal parent {t.proposal.parent} is not the trial parent {t.parent}")
            for text in trial_commit_problems(record, commits.get(t.commit), parent_commit[tid]):
                self.problem(tid, text)

        # 4. diffs, and 5. protected files.
        def tree(commit: str | None) -> str | None:
            obj = commits.get(commit) if commit else None
            return obj.tree if obj else None

        diff_pairs: dict[str, tuple[str, str]] = {}
        for tid, record in records.items():
            pc = parent_commit.get(tid)
            a, b = tree(pc), tree(record.trial.commit)
            if pc is None or a is None or b is None:
                continue
            outcome = record.outcome
            if outcome is None or outcome.label.ran:
                diff_pairs[tid] = (a, b)
            elif a != b:
                self.problem(
                    tid, f"label {outcome.label.value} is decided before running, but the trial commit changes the tree"
                )
        canonical_diffs = patches(self.git, list(diff_pairs.values()))
        for tid, pair in sorted(diff_pairs.items()):
            if records[tid].trial.proposal.diff != canonical_diffs[pair]:
                self.problem(tid, "stored diff differs from git diff parent..trial")

        proposed_at = {tid: ev.first_at["proposed"] for tid, ev in events.items() if "proposed" in ev.first_at}
        for tid, text in based_on_problems(records, self.points, proposed_at):
            self.problem(tid, text)

        if info is not None:
            for tid, text in fidelity_problems(records, events, info, {tid: tree(r.trial.commit) for tid, r in records.items()}):
                self.problem(tid, text)

        base_tree = tree(info.baseline_commit) if info is not None else None
        if info is not None and base_tree is None:
            self.problem("run", f"baseline commit {info.baseline_commit} is missing")
        if info is not None and base_tree is not None:
            base_pairs: dict[str, tuple[str, str]] = {}
            for tid, r in records.items():
                trial_tree = tree(r.trial.commit)
                if trial_tree is not None:
                    base_pairs[tid] = (base_tree, trial_tree)
            changes = raw_diffs(self.git, list(base_pairs.values()))
            for tid in sorted(base_pairs, key=trial_number):
                for ch in changes[base_pairs[tid]]:
                    if not info.recipe.is_editable(ch.path):
                        what = {"A": "added", "D": "removed"}.get(ch.status, "changed")
                        self.problem(tid, f"protected path {ch.path!r} {what} (differs from the baseline)")
                    elif ch.new_mode not in ("100644", "100755", "000000"):
                        self.problem(tid, f"{ch.path!r} has mode {ch.new_mode} (not a regular file)")

        # 6. outcome consistency.
        if info is not None:
            for tid, record in sorted(records.items(), key=lambda kv: trial_number(kv[0])):
                if record.outcome is not None:
                    for text in outcome_problems(tid, record.outcome, info):
                        self.problem(tid, text)

        # 7. best: the last keep at the run's level (the baseline's); keeps at other
        # fidelity levels are compared within their level and never become `best`.
        best_ref = refs.get(BEST_REF)
        by_commit = {r.trial.commit: tid for tid, r in records.items()}
        base = records.get(BASELINE_TRIAL_ID)
        kept = [
            tid
            for tid in outcome_order
            if tid in records
            and records[tid].outcome is not None
            and records[tid].outcome.label is Label.keep
            and (base is None or records[tid].trial.fidelity == base.trial.fidelity)
        ]
        expected = kept[-1] if kept else None
        actual = by_commit.get(best_ref) if best_ref else None
        report.best = actual
        if best_ref is None:
            if expected is not None:
                self.problem("best", f"refs/heads/best is missing but the best kept trial is {expected}")
        elif actual is None:
            self.problem(
                "best", f"points at commit {best_ref}, which is no trial's commit (the best kept trial is {expected})"
            )
        elif expected is None:
            self.problem("best", f"points at {actual} but no trial is kept")
        elif actual != expected:
            self.problem("best", f"points at {actual} but the best kept trial is {expected}")

    def check_ledger(
        self, head: str
    ) -> tuple[dict[str, str], dict[str, _TrialEvents], list[str], RunInfo | None]:
        """Replay the ledger chain; returns (path -> blob at head, events per trial,
        trial ids in outcome-event order, run info)."""
        try:
            out = self.git.text("rev-list", "--parents", head, spool=True)
        except GitError as exc:
            self.problem("ledger", f"cannot walk the ledger: {exc.stderr.strip()}")
            return {}, {}, [], None
        parents_of = {}
        for line in out.splitlines():
            shas = line.split()
            parents_of[shas[0]] = shas[1:]
        chain = []
        sha: str | None = head
        while sha is not None:
            chain.append(sha)
            ps = parents_of.get(sha, [])
            sha = ps[0] if ps else None
        chain.reverse()
        off_chain = len(parents_of) - len(chain)
        if off_chain:
            self.problem("ledger", f"{off_chain} commits reachable from the ledger are off its first-parent chain")
        objs = self.git.cat_batch(chain)
        commits = {}
        for sha in chain:
            obj = objs.get(sha)
            if obj is None or obj[0] != "commit":
                self.problem("ledger", f"commit {sha} is missing")
                return {}, {}, [], None
            commits[sha] = decode_commit(obj[1])

        pairs = []
        for i, sha in enumerate(chain):
            prev_tree = commits[chain[i - 1]].tree if i else EMPTY_TREE
            pairs.append((prev_tree, commits[sha].tree))

        def read(piece: range) -> tuple[dict[tuple[str, str], list[Change]], dict[str, bytes | None]]:
            """The changes of a slice of the chain and the blobs they add (in the reading thread)."""
            diffs = raw_diffs(self.git, [pairs[i] for i in piece])
            return diffs, read_blobs(self.git, [ch.new_sha for changes in diffs.values() for ch in changes
                                                if ch.status != "D"])

        slices, start, size = [], 0, CHAIN_SLICE
        while start < len(chain):  # doubling: the first read (not overlapped) is short, processes are few
            slices.append(range(start, min(start + size, len(chain))))
            start, size = start + size, size * 2
        state: dict[str, str] = {}
        events: dict[str, _TrialEvents] = {}
        outcome_order: list[str] = []
        info: RunInfo | None = None
        for piece, (diffs, blobs) in ahead(slices, read):
            self.records.blobs.update(blobs)
            for i in piece:
                info = self.check_ledger_commit(i, chain, commits[chain[i]], diffs[pairs[i]], state, events,
                                                outcome_order, info)
        for sha in list(self.records.deferred):  # proposed records no outcome event settled
            self.resolve_deferred(sha)
        return state, events, outcome_order, info

    def check_ledger_commit(
        self,
        i: int,
        chain: list[str],
        c: CommitObject,
        changes: list[Change],
        state: dict[str, str],
        events: dict[str, _TrialEvents],
        outcome_order: list[str],
        info: RunInfo | None,
    ) -> RunInfo | None:
        """Check the ledger commit at position `i` of the chain and apply its changes to `state`;
        returns the run info (read from the start commit)."""
        sha = chain[i]
        _subject, trailers = parse_message(c.message)
        trailers = trailers or {}
        event = trailers.get("Event")
        tid = trailers.get("Trial-Id")
        touched = sorted({t for t in (_tid_of_path(ch.path) for ch in changes) if t})
        valid_tid = tid is not None and re.match(TRIAL_ID_PATTERN, tid) is not None
        who = tid if valid_tid else (touched[0] if touched else "ledger")
        short = sha[:12]
        expected_parents = 0 if i == 0 else 1
        if len(c.parents) != expected_parents:
            self.problem(who, f"ledger commit {short} has {len(c.parents)} parents (expected {expected_parents})")

        if i == 0:
            if event != "start":
                self.problem("ledger", f"root commit {short} is not a start event (Event: {event})")
            if [(ch.status, ch.path) for ch in changes] != [("A", RUN_FILE)]:
                self.problem("ledger", f"start commit {short} must hold exactly {RUN_FILE}")
            run_sha = next((ch.new_sha for ch in changes if ch.path == RUN_FILE), None)
            self.records.load([run_sha] if run_sha else [])
            data = self.records.blobs.get(run_sha) if run_sha else None
            if data is None:
                self.problem("run", f"{RUN_FILE} is missing")
            else:
                try:
                    info = RunInfo.model_validate_json(data)
                except ValidationError as exc:
                    self.problem("run", f"{RUN_FILE} does not validate: {exc.errors()[:3]}")
                else:
                    if dump_json(info) != data:
                        self.problem("run", f"{RUN_FILE} is not in canonical JSON form")
                    if trailers.get("Run-Id") != info.run_id:
                        self.problem("ledger", f"start commit Run-Id trailer does not match {RUN_FILE}")
                    if trailers.get("Baseline-Commit") != info.baseline_commit:
                        self.problem("ledger", f"start commit Baseline-Commit trailer does not match {RUN_FILE}")
            for ch in changes:
                if ch.status != "D":
                    state[ch.path] = ch.new_sha
            self.points[sha] = LedgerPoint(0, 0, 0)
            return info

        # Every later commit: one trial event.
        if event not in ("proposed", "outcome"):
            self.problem(who, f"ledger commit {short} has event {event!r} (expected proposed or outcome)")
        if not valid_tid:
            self.problem(who, f"ledger commit {short} has no valid Trial-Id trailer ({tid!r})")
        trial_commit = trailers.get("Trial-Commit", "")
        if not SHA_RE.match(trial_commit):
            self.problem(who, f"ledger commit {short} has no valid Trial-Commit trailer")
        for ch in changes:
            ctid = _tid_of_path(ch.path)
            if ch.path == RUN_FILE:
                self.problem(who, f"ledger commit {short} changes {RUN_FILE}")
            elif (owner := transcript_tid(ch.path)) is not None:
                why = change_problem(tid, event, owner, ch.status, ch.new_mode)
                if why is not None:
                    self.problem(owner, f"ledger commit {short} {why}")
            elif ctid is None or record_path(ctid) != ch.path:
                self.problem(who, f"ledger commit {short} touches unexpected path {ch.path!r}")
            elif ch.status == "D":
                self.problem(ctid, f"ledger commit {short} deletes its record")
            elif ctid != tid:
                if valid_tid:
                    self.problem(ctid, f"ledger commit {short} ({event} event of {tid}) changes its record")
                else:
                    self.problem(ctid, f"ledger commit {short} without a valid trial event changes its record")
            elif ch.new_mode != "100644":
                self.problem(ctid, f"ledger commit {short} gives its record mode {ch.new_mode}")
        if valid_tid and tid is not None and event in ("proposed", "outcome"):
            self.check_event(tid, event, sha, changes, trailers, events, outcome_order)
            events[tid].first_at.setdefault(event, i)
        last = self.points[chain[i - 1]]
        self.points[sha] = LedgerPoint(i, last.trials + (event == "proposed" and valid_tid),
                                       last.outcomes + (event == "outcome" and valid_tid))
        for ch in changes:
            if ch.status == "D":
                state.pop(ch.path, None)
            else:
                state[ch.path] = ch.new_sha
        return info

    def check_event(
        self,
        tid: str,
        event: str,
        sha: str,
        changes: list[Change],
        trailers: dict[str, str],
        events: dict[str, _TrialEvents],
        outcome_order: list[str],
    ) -> None:
        """A `proposed` event adds the trial's record; an `outcome` event sets its outcome."""
        short = sha[:12]
        path = record_path(tid)
        own = [ch for ch in changes if ch.path == path]
        ev = events.setdefault(tid, _TrialEvents())
        ev.named_commits.append((event, sha, trailers.get("Trial-Commit", "")))
        if event == "proposed":
            ev.proposed += 1
            if len(own) != 1 or own[0].status != "A":
                self.problem(tid, f"proposed event {short} does not add {path}")
                return
            self.defer_proposed(tid, own[0].new_sha, f"proposed event {short}")
        else:
            ev.outcome += 1
            if ev.outcome == 1:  # a second outcome event is a problem of its own
                outcome_order.append(tid)
            if len(own) != 1 or own[0].status != "M":
                self.problem(tid, f"outcome event {short} does not change {path}")
                return
            self.check_outcome_change(tid, own[0], short, trailers)

    def check_record_blob(self, tid: str, sha: str, where: str) -> TrialRecord | None:
        """Parse a record blob stored at `tid`'s path; report its damage once."""
        record = self.records.parse(sha)
        first = (tid, sha) not in self.reported
        self.reported.add((tid, sha))
        if sha in self.records.errors and first:
            self.problem(tid, f"{where}: {self.records.errors[sha]}")
        if record is not None and record.trial.id != tid:
            if first:
                self.problem(tid, f"{where} stores trial {record.trial.id} at {record_path(tid)}")
            return None
        return record

    def check_outcome_change(self, tid: str, ch: Change, short: str, trailers: dict[str, str]) -> None:
        self.records.load([ch.old_sha])
        self.records.parse(ch.new_sha, proposed=ch.old_sha)  # settles the proposed record when it can
        self.resolve_deferred(ch.old_sha)  # its problems come first, as its event did
        new = self.check_record_blob(tid, ch.new_sha, f"outcome event {short}")
        if new is None:
            return
        if new.outcome is None:
            self.problem(tid, f"outcome event {short} stores no outcome")
        elif "Label" in trailers and trailers["Label"] != new.outcome.label.value:
            self.problem(tid, f"outcome event {short} Label trailer {trailers['Label']!r} differs from the record")
        if self.records.outcome_only(ch.old_sha, ch.new_sha):
            return  # both canonical, the trial the same, no outcome before: nothing more to compare
        old_data, new_data = self.records.blobs.get(ch.old_sha), self.records.blobs.get(ch.new_sha)
        if old_data is None or new_data is None:
            return
        try:
            old, cur = json.loads(old_data), json.loads(new_data)
        except ValueError:
            return  # the invalid record is reported by its own event
        if not isinstance(old, dict) or not isinstance(cur, dict):
            return
        if old.get("outcome") is not None:
            self.problem(tid, f"outcome event {short} rewrites an outcome already recorded")
        if {k: v for k, v in old.items() if k != "outcome"} != {k: v for k, v in cur.items() if k != "outcome"}:
            self.problem(tid, f"outcome event {short} changes more than the outcome of the record")


def fidelity_problems(
    records: dict[str, TrialRecord],
    events: dict[str, _TrialEvents],
    info: RunInfo,
    trees: dict[str, str | None],
) -> list[tuple[str, str]]:
    """(trial, problem) for fidelity levels, promotions, reference runs and the budget.

    A promotion runs its parent's code (same tree, empty diff) one or more levels
    above the parent's, after the parent's scored outcome was recorded; a reference
    run does the same with the baseline's code at a level below the baseline's. No
    other trial may run its parent's code unchanged (outside imported runs, whose
    trials carry no code)."""
    spec = info.recipe
    order = spec.fidelity_order()
    out: list[tuple[str, str]] = []
    for tid, record in sorted(records.items(), key=lambda kv: trial_number(kv[0])):
        t = record.trial
        if t.fidelity not in spec.fidelities:
            out.append((tid, f"fidelity {t.fidelity!r} is not a level of the recipe ({', '.join(order)})"))
            continue
        parent = records.get(t.parent) if t.parent else None
        if parent is None:
            if t.fidelity_move is not None:
                out.append((tid, f"{t.fidelity_move} trial without a parent"))
            continue
        same_tree = trees.get(tid) is not None and trees.get(tid) == trees.get(parent.trial.id)
        if t.fidelity_move is None:
            ran = record.outcome is not None and record.outcome.label.ran
            if same_tree and ran and info.imported is None:
                out.append((tid, f"runs the code of its parent {parent.trial.id} unchanged but is not a promotion"))
            continue
        move = t.fidelity_move
        if t.proposal.agent != move:
            out.append((tid, f"{move} trial written by agent {t.proposal.agent!r} (expected {move!r})"))
        if not same_tree or t.proposal.diff:
            out.append((tid, f"{move} trial's code differs from its parent {parent.trial.id}'s"))
        if parent.trial.fidelity in spec.fidelities:
            here, there = order.index(t.fidelity), order.index(parent.trial.fidelity)
            if move == "promotion" and here <= there:
                out.append((tid, f"promotion to {t.fidelity} is not above its parent {parent.trial.id}'s "
                                 f"level {parent.trial.fidelity}"))
            if move == "reference" and (parent.trial.id != BASELINE_TRIAL_ID or here >= there):
                out.append((tid, f"reference run at {t.fidelity} must repeat the baseline at a lower level "
                                 f"(parent {parent.trial.id} at {parent.trial.fidelity})"))
        proposed_at = events.get(tid, _TrialEvents()).first_at.get("proposed")
        parent_scored_at = events.get(parent.trial.id, _TrialEvents()).first_at.get("outcome")
        scored = parent.outcome is not None and parent.outcome.score is not None
        if not scored or parent_scored_at is None or proposed_at is None or parent_scored_at > proposed_at:
            out.append((tid, f"{move} of {parent.trial.id}, which had no scored outcome recorded before "
                             f"this trial was proposed"))
    policy = info.fidelity_policy
    if policy is not None and policy.budget is not None:
        spent = sum(fidelity_cost(spec, r) for tid, r in records.items() if tid != BASELINE_TRIAL_ID)
        if spent > policy.budget + 1e-9:
            out.append(("run", f"trials cost {spent:.6g} units, over the run's --budget {policy.budget:g}"))
    return out


def outcome_problems(tid: str, outcome: Outcome, info: RunInfo) -> list[str]:
    """Consistency of an outcome with itself and the recipe (no evaluator needed)."""
    problems = []
    o = outcome
    metric = info.recipe.metric.name
    if o.seed_scores and o.score is not None:
        mean = sum(o.seed_scores) / len(o.seed_scores)
        if not _close(o.score, mean):
            problems.append(f"score {o.score} is not the mean of seed_scores ({mean})")
    if o.score is not None:
        if metric not in o.metrics:
            problems.append(f"metric {metric!r} is missing from metrics although a score is set")
        elif not _close(o.metrics[metric], o.score):
            problems.append(f"metrics[{metric!r}] is {o.metrics[metric]} but score is {o.score}")
    if o.label in (Label.keep, Label.not_improved):
        # An imported run's baseline may carry no score (the source had no measured
        # baseline row); the import lists that among its problems.
        imported_baseline = tid == BASELINE_TRIAL_ID and info.imported is not None
        if o.score is None and not imported_baseline:
            problems.append(f"label {o.label.value} without a score")
        failed = [g.metric for g in o.gates if not g.passed]
        if failed:
            problems.append(f"label {o.label.value} although gates failed: {failed}")
    if o.label is Label.gate_miss and all(g.passed for g in o.gates):
        problems.append("label gate_miss but no gate failed")
    if o.label is Label.budget_overrun and not any(p.phase == "train" and p.timed_out for p in o.phases):
        problems.append("label budget_overrun but no train phase timed out")
    if o.label is Label.eval_budget_overrun and not any(p.phase == "eval" and p.timed_out for p in o.phases):
        problems.append("label eval_budget_overrun but no eval phase timed out")
    if tid == BASELINE_TRIAL_ID and o.label is not Label.keep:
        problems.append(f"the baseline must be kept (label is {o.label.value})")
    return problems


__all__ = ["VerifyReport", "fidelity_problems", "outcome_problems", "verify_lineage"]
