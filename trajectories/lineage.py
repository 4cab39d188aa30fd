"""The lineage store: a run directory that is a git repository.

Layout (see DESIGN.md, "Lineage layout"):

- `refs/trials/<id>`: one commit per trial, the code after its diff; its parent
  commit is the parent trial's commit; the baseline `t0000` is a root commit.
  Message: the hypothesis, a blank line, then `Trial-Id`, `Parent-Trial`, `Agent`,
  `Specialist`, `Fidelity` trailers (see `trial_trailers`).
- `refs/heads/ledger`: an append-only linear chain, one commit per event (`start`,
  `proposed`, `outcome`). Its tree holds `run.json` and every trial record at
  `trials/<number // 100 as 4 digits>/<id>.json`. Each commit carries `Event`,
  `Trial-Id` and `Trial-Commit` trailers naming the trial commit it describes.
- `refs/heads/best`: the best kept trial's commit (HEAD points at it).
- Transcripts: a proposal's agent transcript is a blob of the ledger tree at
  `transcripts/<shard>/<id>.<jsonl|txt>`, added by its `proposed` commit; the
  record keeps its digest (see `trajectories.transcripts`).

Nothing is checked out; scratch data of the run lives in `<run>/.harness/`
(excluded through `.git/info/exclude`). Every ref move is a compare-and-swap
through `git update-ref --stdin`, after all objects it needs are written (and
flushed to disk, `core.fsync=committed`), so a crash leaves either the old or
the new state. `grouped()` (the loop) and `batch()` (importers) let several
events, each its own ledger commit, share one such move.
"""

from __future__ import annotations

import gc
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from harness.types import (
    BASELINE_TRIAL_ID,
    Label,
    RunInfo,
    Transcript,
    TrialRecord,
    trial_id,
    trial_number,
)

from ._git import (
    DURABLE_FSYNC,
    MODE_EXEC,
    MODE_FILE,
    MODE_TREE,
    SHA_RE,
    ZERO_SHA,
    CommitObject,
    Git,
    GitError,
    decode_commit,
    decode_tree,
    encode_tree,
    format_message,
    git_env,
    object_id,
    parse_message,
)
from ._ledger_tree import RUN_FILE, LedgerTree, read_ledger_tree, record_path, shard_of
from .canonical_json import canonical_json
from .fast_apply import apply_plain, build_tree
from .transcripts import digest_problems, transcript_path

LEDGER_REF = "refs/heads/ledger"
REPLAYS_REF = "refs/heads/replays"
BEST_REF = "refs/heads/best"
TRIAL_REF_PREFIX = "refs/trials/"
STRAY_REF_PREFIX = "refs/stray/trials/"
"""Where `set_aside_stray_trial_refs` keeps trial refs that have no ledger record."""
SCRATCH_DIR = ".harness"
LINEAGE_CONFIG_KEY = "harness.lineage"

TRIAL_TRAILER_KEYS = ("Trial-Id", "Parent-Trial", "Agent", "Specialist", "Fidelity")
FIDELITY_MOVE_TRAILER = "Fidelity-Move"
"""Trailer of promotion and reference trials only (see `Trial.fidelity_move`)."""
NONE_VALUE = "none"
"""Trailer value written for a missing parent trial or specialist."""

DIFF_ARGS = (
    "-r",
    "-p",
    "-U3",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--full-index",
    "--binary",
    "--diff-algorithm=myers",
    "--indent-heuristic",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)
"""`git diff-tree` options of the canonical diff (`Lineage.diff`). `--full-index`
keeps the `index` lines independent of the repository's size (abbreviated ids
grow as objects accumulate); `--binary` keeps every diff appliable."""


class LineageError(Exception):
    """The lineage refuses an operation, or a folder is not a (valid) lineage."""


class ApplyError(Exception):
    """A diff does not apply to its parent's tree; the message is git's error text."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


# ---------------------------------------------------------------------------
# Helpers shared with verify
# ---------------------------------------------------------------------------


def dump_json(model) -> bytes:  # noqa: ANN001 - any pydantic model
    """Stable bytes: `model_dump(mode="json", exclude_defaults=True)`, sorted keys,
    indent 1, trailing newline.

    Fields at their default are left out so that a later version adding an
    optional field does not change the canonical bytes of records already
    written (old runs keep verifying). Refuses non-finite floats (they would
    not survive a round trip)."""
    data = model.model_dump(mode="json", exclude_defaults=True)
    try:
        text = canonical_json(data)
    except ValueError as exc:
        raise LineageError(f"cannot store {type(model).__name__}: {exc} (NaN or infinity)") from exc
    return (text + "\n").encode("ascii")


def trial_trailers(
    trial_id: str,
    parent: str | None,
    agent: str,
    specialist: str | None,
    fidelity: str,
    fidelity_move: str | None = None,
) -> dict[str, str]:
    """The trailers of a trial commit (pass them to `commit_trial` / `commit_baseline`).

    A missing parent or specialist is written as `none`; `Fidelity-Move` is written
    only for promotion and reference trials (older commits keep their bytes)."""
    trailers = {
        "Trial-Id": trial_id,
        "Parent-Trial": parent if parent is not None else NONE_VALUE,
        "Agent": agent,
        "Specialist": specialist if specialist is not None else NONE_VALUE,
        "Fidelity": fidelity,
    }
    if fidelity_move is not None:
        trailers[FIDELITY_MOVE_TRAILER] = fidelity_move
    return trailers


def record_trailers(record: TrialRecord) -> dict[str, str]:
    """The trailers a record's trial commit must carry."""
    t = record.trial
    return trial_trailers(t.id, t.parent, t.proposal.agent, t.proposal.specialist, t.fidelity, t.fidelity_move)


def trial_commit_problems(
    record: TrialRecord, commit: CommitObject | None, parent_commit: str | None
) -> list[str]:
    """Why a trial commit does not match its record (empty when it does).

    `parent_commit` is the parent trial's commit (None for the baseline)."""
    t = record.trial
    if commit is None:
        return [f"trial commit {t.commit} is missing"]
    problems = []
    expected_parents = () if parent_commit is None else (parent_commit,)
    if commit.parents != expected_parents:
        want = "no parent" if parent_commit is None else f"parent {parent_commit} ({t.parent})"
        have = ", ".join(commit.parents) or "none"
        problems.append(f"trial commit {t.commit} has parents [{have}] but should have {want}")
    hypothesis, trailers = parse_message(commit.message)
    if trailers is None:
        problems.append(f"trial commit {t.commit} carries no trailer block")
    else:
        expected = record_trailers(record)
        for key in (*expected, *(k for k in (FIDELITY_MOVE_TRAILER,) if k not in expected)):
            have, want = trailers.get(key), expected.get(key)
            if have != want:
                problems.append(
                    f"trial commit trailer {key} is {have!r} but the record says {want!r}"
                )
    if hypothesis != t.proposal.hypothesis:
        problems.append("trial commit message hypothesis differs from the record's hypothesis")
    return problems


@contextmanager
def bulk_read() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a whole run is read into memory.

    Reading a run creates tens of thousands of long-lived objects (records,
    commits) and no reference cycles. The collector's full passes walk every
    live object, and they come each time the live objects grow by a quarter: at
    10,000 trials they took a sixth of `replay`, 25 times their cost at 1,000
    trials. Reference counting still frees everything as usual; the collector's
    previous state comes back when the block ends.

    The objects made while paused still count as new: re-enabled as is, the
    collector would walk all of them at the next allocation (a quarter of a
    second at the end of `harness report` at 10,000 trials). Freezing and
    unfreezing them first moves them to the oldest generation without a pass,
    where they wait for the next full collection like any long-lived object."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


# ---------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------


class Lineage:
    """A run's lineage: trial commits, the ledger of records, the best ref.

    Keeps an in-memory cache of the ledger (records, tree entries), so writes
    cost a few small object writes and one `git update-ref` and never scan the
    history. One writer per run at a time; a concurrent writer makes the
    compare-and-swap fail with `LineageError` (call `refresh()` to reload).
    """

    def __init__(self, run_dir: Path) -> None:  # use init() / open()
        self.run_dir = Path(run_dir).resolve()  # git runs elsewhere; relative paths would break
        self.git = Git(self.run_dir / ".git", self.run_dir)
        self.scratch = self.run_dir / SCRATCH_DIR
        self._lock = threading.RLock()
        """Serialises ledger and ref writes of this handle (threads may share it)."""
        self._reset()

    def _reset(self) -> None:
        self._info: RunInfo | None = None
        self._records: dict[str, TrialRecord] = {}
        self._top: int | None = None
        """Highest trial number in `_records` (None: not computed yet)."""
        self._by_commit: dict[str, str] = {}
        self._ledger_head: str | None = None
        self._tree: LedgerTree | None = None
        """The ledger head's tree (None before `start()`)."""
        self._best_commit: str | None = None
        self._commits: dict[str, CommitObject] = {}
        self._trees: set[str] = set()
        """Trees known to exist (written or checked)."""
        self._batch: list[tuple[str, str, str | None]] | None = None
        """Ref updates held back inside `batch()` (None outside one)."""
        self._diffs: dict[tuple[str, str], str] = {}
        """Canonical diffs of recent (tree, tree) pairs (see `diff_trees`)."""
        self._files: dict[str, dict[str, tuple[str, str]]] = {}
        """File listings of recent trees (see `files`)."""
        self._since_pack = 0
        """Ledger commits written by this handle since it last packed (see `AUTO_PACK_EVERY`)."""

    # -- creation ----------------------------------------------------------

    @classmethod
    def init(cls, run_dir: Path) -> "Lineage":
        """Create an empty lineage in `run_dir` (created when missing)."""
        run_dir = Path(run_dir)
        if (run_dir / ".git").exists():
            if _is_lineage(run_dir):
                raise LineageError(f"{run_dir} already holds a lineage")
            raise LineageError(f"{run_dir} already holds a git repository")
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.run(
                ["git", "init", "-q", str(run_dir)],
                env=git_env(None),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            if proc.returncode != 0:
                raise LineageError(f"git init failed: {proc.stderr.decode(errors='replace').strip()}")
            setup = Git(run_dir / ".git", run_dir)
            setup.run("symbolic-ref", "HEAD", BEST_REF)
            setup.run("config", LINEAGE_CONFIG_KEY, "1")
            setup.run("config", "core.logAllRefUpdates", "true")
            setup.run("config", "core.fsync", DURABLE_FSYNC)
            # Made after the configuration: a handle reads `core.fsync` once, at its first write.
            lineage = cls(run_dir)
        except GitError as exc:
            raise LineageError(f"cannot create a lineage in {run_dir}: {exc}") from exc
        exclude = run_dir / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a") as fh:
            fh.write(f"/{SCRATCH_DIR}/\n")
        (run_dir / SCRATCH_DIR / "tmp").mkdir(parents=True, exist_ok=True)
        return lineage

    @classmethod
    def open(cls, run_dir: Path) -> "Lineage":
        """Open an existing lineage and load its ledger into memory."""
        run_dir = Path(run_dir)
        cls.require_run(run_dir)
        lineage = cls(run_dir)
        with bulk_read():
            lineage._load()
        return lineage

    @staticmethod
    def require_run(run_dir: Path) -> None:
        """Raise `LineageError` (saying why) unless `run_dir` holds a lineage; reads no record."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise LineageError(f"{run_dir} is not a run: no such folder")
        if not (run_dir / ".git").is_dir():
            raise LineageError(f"{run_dir} is not a run: it holds no lineage (no .git folder)")
        if not _is_lineage(run_dir):
            raise LineageError(f"{run_dir} is not a run: its git repository is not a harness lineage")

    @classmethod
    def stray_refs_of(cls, run_dir: Path) -> dict[str, str]:
        """`stray_trial_refs` of a run, without loading its ledger."""
        lineage = cls(run_dir)
        try:
            return lineage.stray_trial_refs()
        finally:
            lineage.close()

    def refresh(self) -> None:
        """Reload everything from git (after another process wrote to the run)."""
        with self._lock, bulk_read():
            self._reset()
            self._load()

    def _load(self) -> None:
        try:
            head = self.git.ref(LEDGER_REF)
            self._best_commit = self.git.ref(BEST_REF)
            if head is None:
                return
            self._ledger_head = head
            out = self.git.run("ls-tree", "-r", "-t", "-z", "--full-tree", head).stdout
        except GitError as exc:
            raise LineageError(f"cannot read the lineage in {self.run_dir}: {exc}") from exc
        try:
            tree, record_blobs = read_ledger_tree(out)
        except ValueError as exc:
            raise LineageError(f"cannot read the ledger of {self.run_dir}: {exc}") from exc
        self._tree = tree
        blobs = self.git.cat_batch([tree.run_blob, *record_blobs.values()])
        try:
            self._info = RunInfo.model_validate_json(_blob(blobs, tree.run_blob))
            for tid, sha in record_blobs.items():
                record = TrialRecord.model_validate_json(_blob(blobs, sha))
                if record.trial.id != tid:
                    raise LineageError(f"{record_path(tid)} holds trial {record.trial.id}")
                self._records[tid] = record
                self._by_commit[record.trial.commit] = tid
        except ValueError as exc:
            raise LineageError(f"the ledger of {self.run_dir} holds an invalid record: {exc}") from exc

    # -- code commits --------------------------------------------------------

    def commit_baseline(self, source_dir: Path, message: str, trailers: dict[str, str]) -> str:
        """Snapshot `source_dir` (regular files, exec bit kept; no `.git`, `__pycache__`,
        symlinks or other special files) as a root commit; returns its sha."""
        source_dir = Path(source_dir)
        if not source_dir.is_dir():
            raise LineageError(f"baseline source {source_dir} is not a folder")
        tree = self._snapshot(source_dir) or self.git.write_tree([])
        self._trees.add(tree)
        return self._commit(tree, [], message, trailers)

    def _snapshot(self, folder: Path) -> str | None:
        entries = []
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name in (".git", "__pycache__"):
                    continue
                if entry.is_symlink():
                    continue
                if entry.is_dir():
                    sub = self._snapshot(Path(entry.path))
                    if sub is not None:
                        entries.append((MODE_TREE, entry.name, sub))
                elif entry.is_file():
                    mode = MODE_EXEC if entry.stat().st_mode & 0o100 else MODE_FILE
                    blob = self.git.write_blob(Path(entry.path).read_bytes())
                    entries.append((mode, entry.name, blob))
        if not entries:
            return None
        return self.git.write_tree(entries)

    def apply_diff(self, parent_commit: str, diff: str) -> str:
        """Apply a unified diff to the parent's tree (no work tree); returns the new tree sha.

        A plain patch (see `trajectories.fast_apply`) is applied in memory, with the
        result `git apply` gives it; any other goes through `git apply --cached`."""
        tree = self.tree_of(parent_commit)
        try:
            data = diff.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise ApplyError(f"diff is not encodable as UTF-8: {exc}") from exc
        if data and not data.endswith(b"\n"):
            data += b"\n"  # a missing final newline would read as a corrupt last line
        fast = self._apply_plain(parent_commit, tree, data)
        if fast is not None:
            return fast
        tmp = self.scratch / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        index = tmp / f"index-{os.getpid()}-{uuid.uuid4().hex}"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            self.git.run("read-tree", tree, env=env)
            proc = self.git.run(
                "apply", "--cached", "--whitespace=nowarn", "-p1", "-", input=data, env=env, check=False
            )
            if proc.returncode != 0:
                raise ApplyError(proc.stderr.decode("utf-8", "replace").strip() or "git apply failed")
            new_tree = self.git.text("write-tree", env=env).strip()
            self._trees.add(new_tree)
            return new_tree
        except GitError as exc:
            raise LineageError(str(exc)) from exc
        finally:
            for path in (index, index.with_name(index.name + ".lock")):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass

    def _apply_plain(self, parent_commit: str, tree: str, data: bytes) -> str | None:
        """The new tree of a plain patch, written from Python; None: ask git."""
        files = self.files(parent_commit)
        changed = apply_plain(data, files, self._read_blob)
        if changed is None:
            return None

        def hash_only(entries: list[tuple[str, str, str]]) -> str:
            return object_id("tree", encode_tree(entries))

        if build_tree(files, hash_only) != tree:
            return None  # the parent's tree is not in git's canonical form: let git rebuild it
        new_files = dict(files)
        for path, content in changed.items():
            new_files[path] = (files[path][0], self.git.write_blob(content))
        new_tree = build_tree(new_files, self.git.write_tree)
        self._trees.add(new_tree)
        return new_tree

    def _read_blob(self, sha: str) -> bytes:
        obj = self.git.read_object(sha)
        if obj is None or obj[0] != "blob":
            raise LineageError(f"object {sha} is missing from the lineage")
        return obj[1]

    def commit_trial(
        self, tree: str, parent_commit: str, message: str, trailers: dict[str, str]
    ) -> str:
        """Write a trial commit (hypothesis + trailers) on `parent_commit`; moves no ref."""
        if self._commit_object(parent_commit) is None:
            raise LineageError(f"parent commit {parent_commit} does not exist")
        if tree not in self._trees:
            obj = self.git.read_object(tree) if SHA_RE.match(tree or "") else None
            if obj is None or obj[0] != "tree":
                raise LineageError(f"tree {tree} does not exist")
            self._trees.add(tree)
        return self._commit(tree, [parent_commit], message, trailers)

    def _commit(self, tree: str, parents: list[str], message: str, trailers: dict[str, str]) -> str:
        try:
            text = format_message(message, trailers)
            sha = self.git.write_commit(tree, parents, text)
        except ValueError as exc:
            raise LineageError(str(exc)) from exc
        self._commits[sha] = CommitObject(tree, tuple(parents), "", "", text)
        self._trees.add(tree)
        return sha

    def _commit_object(self, commit: str) -> CommitObject | None:
        if commit in self._commits:
            return self._commits[commit]
        if not commit or any(c in commit for c in " \n\0"):
            return None
        if SHA_RE.match(commit):
            obj = self.git.read_object(commit)
        else:  # a ref name: not cached (refs move), read by a fresh process
            obj = self.git.cat_batch([commit])[commit]
        if obj is None or obj[0] != "commit":
            return None
        parsed = decode_commit(obj[1])
        if SHA_RE.match(commit):
            self._commits[commit] = parsed
        self._trees.add(parsed.tree)
        return parsed

    def tree_of(self, commit: str) -> str:
        obj = self._commit_object(commit)
        if obj is None:
            raise LineageError(f"commit {commit} does not exist")
        return obj.tree

    def diff(self, parent_commit: str, commit: str) -> str:
        """The canonical unified diff from `parent_commit` to `commit` (see DIFF_ARGS)."""
        return self.diff_trees(self.tree_of(parent_commit), self.tree_of(commit))

    def diff_trees(self, tree_a: str, tree_b: str) -> str:
        """The canonical unified diff between two tree objects.

        Remembered for the last few pairs of full tree ids (their content never
        changes): the loop asks for the same diff twice per trial, once to check
        what git applied and once for the record."""
        key = (tree_a, tree_b)
        cacheable = SHA_RE.match(tree_a) is not None and SHA_RE.match(tree_b) is not None
        with self._lock:
            if cacheable and key in self._diffs:
                return self._diffs[key]
        if cacheable:
            try:
                text = self.git.diff_trees(tree_a, tree_b, DIFF_ARGS).decode("utf-8", "surrogateescape")
            except GitError as exc:
                raise LineageError(f"cannot diff {tree_a} and {tree_b}: {exc.stderr.strip()}") from exc
        else:
            text = self.git.text("diff-tree", *DIFF_ARGS, tree_a, tree_b)
        if cacheable:
            with self._lock:
                _remember(self._diffs, key, text)
        return text

    # -- ledger --------------------------------------------------------------

    def start(self, info: RunInfo) -> str:
        """First ledger commit (`Event: start`), holding `run.json`."""
        with self._lock:
            if self._ledger_head is not None or self.git.ref(LEDGER_REF) is not None:
                raise LineageError("the run has already started (the ledger exists)")
            base = self._commit_object(info.baseline_commit)
            if base is None:
                raise LineageError(f"baseline commit {info.baseline_commit} does not exist")
            if base.parents:
                raise LineageError(f"baseline commit {info.baseline_commit} is not a root commit")
            run_blob = self.git.write_blob(dump_json(info))
            tree = self.git.write_tree([(MODE_FILE, RUN_FILE, run_blob)])
            trailers = {"Event": "start", "Run-Id": info.run_id, "Baseline-Commit": info.baseline_commit}
            commit = self._ledger_commit(tree, f"start {info.run_id}", trailers, [])
            self._info = info
            self._tree = LedgerTree(run_blob)
            return commit

    def record_proposed(self, record: TrialRecord, transcript: Transcript | None = None) -> str:
        """Append an `Event: proposed` ledger commit adding the record (and the agent's
        transcript, whose digest the record must carry as `Trial.transcript`); create
        `refs/trials/<id>`."""
        with self._lock:
            info = self._require_started()
            t = record.trial
            if t.id in self._records:
                raise LineageError(f"{t.id}: trial already in the ledger")
            if record.outcome is not None:
                raise LineageError(f"{t.id}: a proposed record has no outcome yet")
            expected = self.next_trial_number()
            if trial_number(t.id) != expected:
                raise LineageError(f"{t.id}: the next trial id is {trial_id(expected)}")
            if t.run_id != info.run_id:
                raise LineageError(f"{t.id}: run id {t.run_id!r} is not this run's {info.run_id!r}")
            if t.id == BASELINE_TRIAL_ID:
                if t.parent is not None:
                    raise LineageError(f"{t.id}: the baseline has no parent")
                if t.commit != info.baseline_commit:
                    raise LineageError(f"{t.id}: the baseline commit must be {info.baseline_commit}")
                if t.proposal.diff != "":
                    raise LineageError(f"{t.id}: the baseline's diff must be empty")
                parent_commit = None
            else:
                if t.parent is None or t.parent not in self._records:
                    raise LineageError(f"{t.id}: parent trial {t.parent} is not in the ledger")
                parent_commit = self._records[t.parent].trial.commit
            if t.proposal.parent is not None and t.proposal.parent != t.parent:
                raise LineageError(f"{t.id}: proposal parent {t.proposal.parent} is not the trial parent {t.parent}")
            if t.commit in self._by_commit:
                raise LineageError(f"{t.id}: commit {t.commit} already belongs to {self._by_commit[t.commit]}")
            if (transcript.digest() if transcript is not None else None) != t.transcript:
                raise LineageError(f"{t.id}: the record's transcript digest does not match the transcript given")
            problems = trial_commit_problems(record, self._commit_object(t.commit), parent_commit)
            if problems:
                raise LineageError(f"{t.id}: " + "; ".join(problems))
            trailers = {"Event": "proposed", "Trial-Id": t.id, "Trial-Commit": t.commit}
            new_ref = (TRIAL_REF_PREFIX + t.id, t.commit, ZERO_SHA)  # must not exist yet
            sha = self._write_record(record, f"proposed {t.id}", trailers, [new_ref], transcript)
            self._by_commit[t.commit] = t.id
            return sha

    def record_outcome(self, record: TrialRecord) -> str:
        """Append an `Event: outcome` ledger commit setting the trial's outcome."""
        with self._lock:
            self._require_started()
            t = record.trial
            stored = self._records.get(t.id)
            if stored is None:
                raise LineageError(f"{t.id}: trial not in the ledger")
            if record.outcome is None:
                raise LineageError(f"{t.id}: the record has no outcome")
            if stored.outcome is not None:
                raise LineageError(f"{t.id}: the outcome is already recorded")
            if stored.trial != t:
                raise LineageError(f"{t.id}: the trial differs from the proposed one")
            label = record.outcome.label.value
            score = record.outcome.score
            subject = f"outcome {t.id}: {label}" + (f" (score {score})" if score is not None else "")
            trailers = {"Event": "outcome", "Trial-Id": t.id, "Trial-Commit": t.commit, "Label": label}
            return self._write_record(record, subject, trailers, [])

    def _require_started(self) -> RunInfo:
        if self._info is None or self._ledger_head is None:
            raise LineageError("the run has not started (call start() first)")
        return self._info

    def _write_record(
        self,
        record: TrialRecord,
        subject: str,
        trailers: dict[str, str],
        extra_refs: list[tuple[str, str, str | None]],
        transcript: Transcript | None = None,
    ) -> str:
        tid = record.trial.id
        data = dump_json(record)
        if TrialRecord.model_validate_json(data) != record:
            raise LineageError(f"{tid}: the record does not survive a JSON round trip")
        assert self._tree is not None and self._ledger_head is not None
        shard = shard_of(tid)
        record_file = (f"{tid}.json", self.git.write_blob(data))
        transcript_file = None
        if transcript is not None:
            name = transcript_path(tid, transcript.format).rsplit("/", 1)[1]
            transcript_file = (name, self.git.write_blob(transcript.content))
        write_tree = partial(self.git.write_object, "tree")
        tree, root = self._tree.with_record(write_tree, shard, record_file, transcript_file)
        commit = self._ledger_commit(root, subject, trailers, [self._ledger_head], extra_refs)
        self._tree = tree
        self._records[tid] = record
        if self._top is not None:
            self._top = max(self._top, trial_number(tid))
        return commit

    def _ledger_commit(
        self,
        tree: str,
        subject: str,
        trailers: dict[str, str],
        parents: list[str],
        extra_refs: Sequence[tuple[str, str, str | None]] = (),
    ) -> str:
        commit = self.git.write_commit(tree, parents, format_message(subject, trailers))
        self._since_pack += 1
        if self._batch is not None:  # inside `batch()` / `grouped()`: the refs move when it ends
            self._batch.extend(extra_refs)
            self._ledger_head = commit
            return commit
        old = parents[0] if parents else ZERO_SHA
        try:
            self.git.update_refs([(LEDGER_REF, commit, old), *extra_refs])
        except GitError as exc:
            raise LineageError(
                f"the ledger moved under us or a ref already exists (nothing was written): {exc.stderr.strip()}"
            ) from exc
        self._ledger_head = commit
        self._pack_now_and_then()
        return commit

    def _pack_now_and_then(self) -> None:
        """Pack the loose objects after every `AUTO_PACK_EVERY` ledger commits.

        Every trial leaves about a dozen small loose objects; at 10,000 trials
        that is over 100,000 files (half a gigabyte of 4 KiB blocks), and every
        bulk read (`replay --verify`, `report`) then pays a file open per object.
        A geometric repack folds the loose objects and the small packs into
        packs growing by a factor of two, so the cost stays linear in the run
        and the number of packs logarithmic; it never drops an object (packs are
        rolled up whole), so objects not yet referenced survive too."""
        if self._since_pack < AUTO_PACK_EVERY:
            return
        self.pack()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group ledger writes for a bulk writer (`harness import`): every event
        still gets its own ledger commit, but the ledger ref, the new trial refs
        and `best` move once, in one transaction, when the block ends. An exception inside
        leaves the refs as they were (the objects written are unreferenced) and
        reloads this handle from git."""
        with self._held_refs(keep_on_error=False):
            yield

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Group commit for the loop: the events recorded inside (each its own ledger
        commit, as always) reach git together when the block ends, in one pack and
        one ref transaction, flushed to disk once. Until then they are in this
        handle only: a crash inside the block loses them all (nothing half-written),
        so the caller starts no trial before the block that recorded it has ended.

        An exception inside still moves the refs to the last event recorded
        before it (each event is whole in memory or not there), then goes on."""
        with self._held_refs(keep_on_error=True):
            yield

    @contextmanager
    def _held_refs(self, keep_on_error: bool) -> Iterator[None]:
        with self._lock:
            if self._batch is not None:
                raise LineageError("batch() and grouped() do not nest")
            before, best_before = self._ledger_head, self._best_commit
            self._batch = []
            try:
                yield
            except BaseException:
                if not keep_on_error:
                    self._batch = None
                    self.refresh()
                    raise
                self._move_held_refs(before, best_before)
                raise
            else:
                self._move_held_refs(before, best_before)
            finally:
                self._batch = None
            self._pack_now_and_then()

    def _move_held_refs(self, before: str | None, best_before: str | None) -> None:
        """One transaction for the refs held back since `before` (see `_held_refs`)."""
        assert self._batch is not None
        updates = self._batch
        if self._ledger_head != before:
            updates = [(LEDGER_REF, self._ledger_head, before or ZERO_SHA), *updates]
        if self._best_commit != best_before and self._best_commit is not None:
            updates.append((BEST_REF, self._best_commit, best_before or ZERO_SHA))
        if not updates:
            return
        try:
            self.git.update_refs(updates)
        except GitError as exc:
            self._batch = None
            self.refresh()
            raise LineageError(
                f"the ledger moved under us or a ref already exists (nothing was written): {exc.stderr.strip()}"
            ) from exc

    # -- replay verdicts ----------------------------------------------------------

    def append_verdict(self, data: bytes, subject: str) -> str:
        """Append a replay verdict (JSON bytes) to `refs/heads/replays`.

        A chain of its own, beside the ledger: auditing a run adds to its
        history without rewriting any of it (the ledger and trials are untouched).
        """
        with self._lock:
            old = self.git.ref(REPLAYS_REF)
            blob = self.git.write_blob(data)
            tree = self.git.write_tree([(MODE_FILE, "verdict.json", blob)])
            commit = self.git.write_commit(tree, [old] if old else [], format_message(subject, {}))
            try:
                self.git.update_refs([(REPLAYS_REF, commit, old or ZERO_SHA)])
            except GitError as exc:
                raise LineageError(f"{REPLAYS_REF} moved under us: {exc.stderr.strip()}") from exc
            return commit

    def verdicts(self) -> list[bytes]:
        """Every replay verdict, oldest first."""
        head = self.git.ref(REPLAYS_REF)
        if head is None:
            return []
        shas = self.git.text("rev-list", "--reverse", head).split()
        return [self.git.run("show", f"{sha}:verdict.json").stdout for sha in shas]

    # -- best ------------------------------------------------------------------

    def set_best(self, trial_id: str) -> None:
        """Move `refs/heads/best` to a kept trial's commit."""
        with self._lock:
            record = self.record(trial_id)
            if record.outcome is None or record.outcome.label is not Label.keep:
                raise LineageError(f"{trial_id}: only a kept trial can be the best")
            if self._batch is not None:  # inside `batch()` / `grouped()`: moves with the ledger when it ends
                self._best_commit = record.trial.commit
                return
            try:
                self.git.update_refs([(BEST_REF, record.trial.commit, self._best_commit or ZERO_SHA)])
            except GitError as exc:
                raise LineageError(f"refs/heads/best moved under us: {exc.stderr.strip()}") from exc
            self._best_commit = record.trial.commit

    def best(self) -> str | None:
        """Trial id of the best kept trial (None before the baseline is kept)."""
        if self._best_commit is None:
            return None
        return self._by_commit.get(self._best_commit)

    # -- crash recovery (only with the run's lock held: no other writer exists) ------

    def discard_interrupted_writes(self, wait_s: float = 5.0) -> list[str]:
        """Remove what a writer killed mid-write left: temporary object and pack files and the
        scratch index files of `apply_diff` (older than a minute), and ref lock files.
        Nothing references them.

        A lock file may still belong to the dead writer's `git update-ref`, which
        finishes its transaction once its input closes; it gets `wait_s` to do so.
        Call `refresh()` afterwards: that transaction may have moved the ledger."""
        # Young temporary files may be those of a `replay --rerun` writing its verdict
        # beside the run (it takes no run lock): only what is older than a minute goes.
        cutoff = time.time() - 60
        candidates = sorted(self.git.objects.glob("??/tmp_obj_*")) + sorted(self.git.objects.glob("pack/tmp_pack_*"))
        candidates += sorted((self.scratch / "tmp").glob("index-*"))
        leftovers = [path for path in candidates if _mtime(path) < cutoff]
        for path in leftovers:
            path.unlink(missing_ok=True)
        git_dir = self.git.git_dir
        deadline = time.monotonic() + wait_s
        locks = self._ref_locks()
        while locks and time.monotonic() < deadline:
            time.sleep(0.05)
            locks = self._ref_locks()
        for path in locks:
            path.unlink(missing_ok=True)
        return [str(path.relative_to(self.run_dir)) for path in leftovers] + [
            str(path.relative_to(git_dir.parent)) for path in locks
        ]

    def _ref_locks(self) -> list[Path]:
        git_dir = self.git.git_dir
        found = sorted((git_dir / "refs").rglob("*.lock"))
        return found + [p for p in (git_dir / "packed-refs.lock", git_dir / "HEAD.lock") if p.exists()]

    def set_aside_stray_trial_refs(self) -> dict[str, str]:
        """Move every `refs/trials/<id>` without a ledger record to `refs/stray/trials/<id>-<sha>`
        (one transaction), so the id can be proposed; returns old ref -> new ref."""
        with self._lock:
            stray = {
                name: sha
                for name, sha in self.git.refs(TRIAL_REF_PREFIX).items()
                if name[len(TRIAL_REF_PREFIX):] not in self._records
            }
            moves = {
                name: f"{STRAY_REF_PREFIX}{name[len(TRIAL_REF_PREFIX):]}-{sha[:12]}" for name, sha in stray.items()
            }
            updates: list[tuple[str, str, str | None]] = []
            for name, sha in stray.items():
                updates += [(moves[name], sha, ZERO_SHA), (name, ZERO_SHA, sha)]
            if updates:
                try:
                    self.git.update_refs(updates)
                except GitError as exc:
                    raise LineageError(f"cannot set stray trial refs aside: {exc.stderr.strip()}") from exc
            return moves

    # -- reads -------------------------------------------------------------------

    def stray_trial_refs(self) -> dict[str, str]:
        """Refs set aside by `set_aside_stray_trial_refs` (name -> commit): trial refs that had
        no ledger record, kept so nothing is lost, not part of the lineage."""
        return self.git.refs(STRAY_REF_PREFIX)

    def run_info(self) -> RunInfo:
        if self._info is None:
            raise LineageError("the run has not started: no run.json yet")
        return self._info

    def records(self) -> list[TrialRecord]:
        return sorted(self._records.values(), key=lambda r: trial_number(r.trial.id))

    def record(self, trial_id: str) -> TrialRecord:
        return self._records[trial_id]

    def next_trial_number(self) -> int:
        if self._top is None:  # cached: a scan per call made long runs and imports quadratic
            self._top = max((trial_number(t) for t in self._records), default=-1)
        return self._top + 1

    def ledger_head(self) -> str | None:
        return self._ledger_head

    def transcript(self, trial_id: str) -> Transcript | None:
        """The transcript stored with a trial's proposal (None when it has none); raises
        `LineageError` when it is missing or does not match the record's digest."""
        digest = self.record(trial_id).trial.transcript
        if digest is None:
            return None
        _dir, shard, name = transcript_path(trial_id, digest.format).split("/")
        sha = self._tree.transcript_blob(shard, name) if self._tree is not None else None
        obj = self.git.read_object(sha) if sha is not None else None
        data = obj[1] if obj is not None and obj[0] == "blob" else None
        problems = digest_problems(trial_id, digest, data)
        if problems or data is None:
            raise LineageError(f"{trial_id}: " + "; ".join(problems))
        return Transcript(format=digest.format, content=data)

    def read_file(self, commit: str, path: str) -> bytes:
        """Content of `path` in `commit` (FileNotFoundError when absent)."""
        name = f"{commit}:{path}"
        obj = self.git.read_object(name) if SHA_RE.match(commit) else self.git.cat_batch([name])[name]
        if obj is None or obj[0] != "blob":
            raise FileNotFoundError(f"{path} is not a file in {commit}")
        return obj[1]

    def files(self, commit: str) -> dict[str, tuple[str, str]]:
        """Every file of a commit (or of a tree, as `apply_diff` returns): path -> (mode, blob sha).

        Remembered per tree for the last few trees (a tree's content never
        changes): the loop lists the parent's files for every proposal, and most
        proposals share a parent (the best)."""
        known = self._commit_object(commit)
        tree = known.tree if known is not None else None
        if tree is None and SHA_RE.match(commit):
            obj = self.git.read_object(commit)
            tree = commit if obj is not None and obj[0] == "tree" else None
        with self._lock:
            if tree is not None and tree in self._files:
                return dict(self._files[tree])
        if tree is None:
            raise LineageError(f"cannot list {commit}: no such commit")
        files: dict[str, tuple[str, str]] = {}
        try:  # walked through the long-lived object reader: no process per listing
            self._list_tree(tree, "", files)
        except GitError as exc:
            raise LineageError(f"cannot list {commit}: {exc.stderr.strip()}") from exc
        if tree is not None:
            with self._lock:
                _remember(self._files, tree, dict(files))
        return files

    def _list_tree(self, tree: str, prefix: str, files: dict[str, tuple[str, str]]) -> None:
        obj = self.git.read_object(tree)
        if obj is None or obj[0] != "tree":
            raise LineageError(f"tree {tree} is missing from the lineage")
        for mode, name, sha in decode_tree(obj[1]):
            if mode == MODE_TREE:
                self._list_tree(sha, f"{prefix}{name}/", files)
            else:
                files[prefix + name] = (mode, sha)

    def export(self, commit: str, dest: Path) -> None:
        """Write a commit's files into `dest` (missing or empty), modes kept."""
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise LineageError(f"export destination {dest} is not an empty folder")
        files = self.files(commit)
        for path, (mode, _sha) in files.items():
            parts = path.split("/")
            if mode not in (MODE_FILE, MODE_EXEC):
                raise LineageError(f"{commit}: {path} is not a regular file (mode {mode})")
            if any(p in ("", ".", "..", ".git") for p in parts):
                raise LineageError(f"{commit}: unsafe path {path!r}")
        blobs = self.git.cat_batch([sha for _mode, sha in files.values()])
        dest.mkdir(parents=True, exist_ok=True)
        for path, (mode, sha) in files.items():
            target = dest.joinpath(*path.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_blob(blobs, sha))
            os.chmod(target, 0o755 if mode == MODE_EXEC else 0o644)

    def pack(self) -> None:
        """Fold the loose objects and small packs into geometrically growing packs
        (see `_pack_now_and_then`); never drops an object, referenced or not.

        Without delta search (`pack.window=0`): objects are stored whole, as the packs written
        from Python store them. The search for deltas, again at each roll-up, was most of a
        repack's time (a 10,469-trial recording: 85 s with it, 73 s without), for packs half
        the size (40 MB against 80 MB, ~8 KB a trial); one `git repack -a -d` of a finished
        run (3 s at that size) brings them to 46 MB when disk matters."""
        self._since_pack = 0
        try:
            self.git.run("-c", "pack.window=0", "repack", "-d", "-q", "--geometric=2")
        except GitError as exc:
            raise LineageError(f"cannot pack the lineage's objects: {exc.stderr.strip()}") from exc
        self.git.writer.forget_small_packs()
        self.git.stop_processes()  # they would keep searching the packs the repack removed

    def close(self) -> None:
        """Release the long-lived git process used for ref updates (reopened on demand)."""
        self.git.close()

    def __enter__(self) -> "Lineage":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Lineage({str(self.run_dir)!r}, trials={len(self._records)})"


def _is_lineage(run_dir: Path) -> bool:
    """Marked by `Lineage.init`, or (a copy of a run) holding a ledger."""
    git = Git(run_dir / ".git", run_dir)
    proc = git.run("config", "--get", LINEAGE_CONFIG_KEY, check=False)
    if proc.returncode == 0 and proc.stdout.strip() == b"1":
        return True
    return git.ref(LEDGER_REF) is not None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")  # gone already: nothing to remove


AUTO_PACK_EVERY = 2000
"""Ledger commits (about 1,000 trials) between automatic packs of the loose objects."""
REMEMBERED = 64
"""Entries kept by each of the small caches of immutable results (diffs, file listings)."""


def _remember(cache: dict, key: object, value: object) -> None:  # noqa: ANN001 - any small cache
    """Add to a small cache, dropping the oldest entry beyond `REMEMBERED`."""
    cache[key] = value
    if len(cache) > REMEMBERED:
        del cache[next(iter(cache))]


def _blob(blobs: dict[str, tuple[str, bytes] | None], sha: str) -> bytes:
    obj = blobs.get(sha)
    if obj is None or obj[0] != "blob":
        raise LineageError(f"object {sha} is missing from the lineage")
    return obj[1]


__all__ = [
    "ApplyError",
    "BEST_REF",
    "DIFF_ARGS",
    "LEDGER_REF",
    "Lineage",
    "LineageError",
    "RUN_FILE",
    "STRAY_REF_PREFIX",
    "TRIAL_REF_PREFIX",
    "dump_json",
    "record_path",
    "record_trailers",
    "shard_of",
    "trial_commit_problems",
    "trial_trailers",
]
