"""Core types shared by every package of the harness.

`trajectories`, `sandboxes` and `evaluators` import this module and nothing
else of ours, so it stays small and free of heavy imports. Every model is a
frozen pydantic v2 model that refuses unknown fields: a record that does not
validate is a problem, never something to guess about.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from enum import Enum
from pathlib import PurePosixPath
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

TRIAL_ID_PATTERN = r"^t[0-9]{4,}$"
_TRIAL_ID_RE = re.compile(TRIAL_ID_PATTERN)
BASELINE_TRIAL_ID = "t0000"


class Frozen(BaseModel):
    """Base for every core type: immutable and strict about its fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def trial_id(number: int) -> str:
    """Format a trial number as an id: 0 -> t0000, 10469 -> t10469."""
    return f"t{number:04d}"


def trial_number(tid: str) -> int:
    """Inverse of `trial_id`."""
    if not _TRIAL_ID_RE.match(tid):
        raise ValueError(f"not a trial id: {tid!r}")
    return int(tid[1:])


# --------------------------------------------------------------------------
# Failure labels
# --------------------------------------------------------------------------


class Status(str, Enum):
    keep = "keep"
    discard = "discard"
    fail = "fail"


class Label(str, Enum):
    """What happened to a trial. The status is derived from the label."""

    keep = "keep"
    not_improved = "not_improved"
    apply_failed = "apply_failed"
    malformed_proposal = "malformed_proposal"
    illegal_edit = "illegal_edit"
    preflight_crash = "preflight_crash"
    crash = "crash"
    budget_overrun = "budget_overrun"
    eval_budget_overrun = "eval_budget_overrun"
    oom = "oom"
    size_failure = "size_failure"
    gate_miss = "gate_miss"
    metric_missing = "metric_missing"
    tamper = "tamper"
    harness_error = "harness_error"

    @property
    def status(self) -> Status:
        if self is Label.keep:
            return Status.keep
        if self is Label.not_improved:
            return Status.discard
        return Status.fail

    @property
    def ran(self) -> bool:
        """Whether a trial with this label got as far as a sandbox run."""
        return self not in PRE_RUN_LABELS


PRE_RUN_LABELS = frozenset(
    {Label.apply_failed, Label.malformed_proposal, Label.illegal_edit}
)
"""Labels decided before anything runs: such a trial's commit keeps its parent's tree."""


# --------------------------------------------------------------------------
# Recipe specification
# --------------------------------------------------------------------------


class Direction(str, Enum):
    maximize = "maximize"
    minimize = "minimize"


class MetricSpec(Frozen):
    name: str = Field(min_length=1)
    """Name of the score metric, e.g. `ap` or `val_bpb`."""
    direction: Direction
    """Whether a larger or a smaller score is better."""
    noise_margin: float = Field(default=0.0, ge=0.0)
    """A trial is kept only when it beats its parent and the best by more than this."""
    significance: float = Field(default=0.05, gt=0.0, lt=1.0)
    """One-sided test level used when the fidelity runs several seeds."""

    def better(self, a: float, b: float) -> bool:
        """True when score `a` beats `b` by more than the noise margin."""
        if self.direction is Direction.maximize:
            return a > b + self.noise_margin
        return a < b - self.noise_margin


class GateSpec(Frozen):
    metric: str
    """Metric the gate reads (mean over the trial's seeds)."""
    op: Literal[">=", ">", "<=", "<"]
    """Comparison applied as `mean(metric) op threshold`."""
    threshold: float
    """The value the metric must reach."""
    min_seeds: int = Field(default=1, ge=1)
    """The gate counts as missed when fewer seeds than this produced the metric."""
    on_miss: Literal["gate_miss", "size_failure"] = "gate_miss"
    """Label of a trial that misses this gate: `size_failure` for size caps that the
    evaluator measures itself (e.g. code bytes + compressed model bytes)."""

    def passes(self, value: float) -> bool:
        return {
            ">=": value >= self.threshold,
            ">": value > self.threshold,
            "<=": value <= self.threshold,
            "<": value < self.threshold,
        }[self.op]


class Budgets(Frozen):
    train_wallclock_s: float = Field(gt=0)
    """Host-measured wallclock cap of the train phase, per seed."""
    eval_wallclock_s: float = Field(gt=0)
    """Host-measured wallclock cap of the eval phase, per seed."""
    artifact_bytes: int = Field(default=100_000_000, gt=0)
    """Cap on the bytes the train phase leaves in its output folder."""
    max_diff_lines: int = Field(default=400, gt=0)
    """Proposals whose diff is longer are illegal."""
    memory_mb: int = Field(default=4096, gt=0)
    """Memory cap of one phase."""
    output_bytes: int = Field(default=1_000_000, gt=0)
    """Cap on the bytes of stdout+stderr kept from one phase."""
    pids: int = Field(default=256, gt=0)
    """Cap on processes/threads a phase may create (where the sandbox enforces it)."""
    cpus: float = Field(default=2.0, gt=0)
    """CPU share of one phase (where the sandbox enforces it)."""
    gpus: int = Field(default=0, ge=0)
    """GPUs one trial needs."""


class LocalSource(Frozen):
    type: Literal["local"]
    """Discriminator; required so that it survives records stored without defaults."""
    path: str = "src"
    """Folder, relative to the recipe folder, holding the starting source."""


class GitSource(Frozen):
    type: Literal["git"]
    """Discriminator; required so that it survives records stored without defaults."""
    url: str
    """Upstream repository, cloned at run time."""
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    """Pinned full commit sha."""
    subdir: str = ""
    """Folder inside the repository that is the recipe source."""


Source = Annotated[Union[LocalSource, GitSource], Field(discriminator="type")]


class Phases(Frozen):
    train: str
    """Train command, run with the trial workspace as working directory."""
    eval: str
    """Eval command; `{eval}` stands for the evaluator's pristine folder."""


class EvaluatorSpec(Frozen):
    path: str = "eval"
    """Evaluator-owned folder inside the recipe folder (never part of the trial tree)."""
    prepare: str
    """`file.py:function` in the evaluator folder, called on the host as
    `function(train_dir, heldout_inputs_dir, heldout_labels_dir)`: writes the train
    split, the held-out inputs and the held-out labels (deterministically)."""
    score: str
    """`file.py:function` in the evaluator folder, called on the host as
    `function(preds_dir, heldout_labels_dir, **measured) -> dict[str, float]` for one
    seed, where `measured` holds those of `train_wallclock_s`, `out_dir`,
    `workspace_dir`, `seed` that the function names as parameters (host
    measurements, see `harness.trial_exec.ScoreInputs`); raises `ValueError` with a
    reason when the predictions are missing or invalid."""
    eval_files: list[str] | None = None
    """Files of the evaluator folder that the eval phase sees (its `{eval}` folder),
    relative to that folder: code only, never data, since trial code runs in the eval
    phase and can read all of it. Unset: the files `phases.eval` names as
    `{eval}/<file>`. `harness recipe check` refuses a list that names data."""


class SandboxSpec(Frozen):
    image: str | None = None
    """Docker image to run trials in."""
    dockerfile: str | None = None
    """Dockerfile, relative to the recipe folder, built by the harness."""


class FidelitySpec(Frozen):
    env: dict[str, str] = Field(default_factory=dict)
    """Environment overrides the train and eval phases see at this level."""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    """Seeds a trial runs at this level; the score is their mean."""
    cost: float = Field(default=1.0, gt=0)
    """Relative compute cost, the full level being 1."""
    gpus: int | None = Field(default=None, ge=0)
    """GPUs a trial needs at this level (None: `budgets.gpus`); 0 for a level that runs
    on the CPU, which `harness recipe check` then runs on a machine without GPUs."""


class Knob(Frozen):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Knob name; also the assignment edited in `file` (`NAME = value`)."""
    file: str
    """Editable file holding the assignment."""
    kind: Literal["arch", "hparam"]
    """Architecture axis or hyperparameter axis, for analysis."""
    choices: list[Union[bool, int, float, str]] = Field(min_length=2)
    """Values a non-LLM agent may pick."""

    def pattern(self) -> re.Pattern[str]:
        """The line holding this knob: `NAME = <python literal>` at column 0."""
        return re.compile(rf"^{re.escape(self.name)}\s*=\s*(?P<value>.+?)\s*(#.*)?$", re.M)


class Specialist(Frozen):
    brief: str
    """What this specialist works on."""
    files: list[str] = Field(default_factory=list)
    """Globs of the files it may edit (within the editable surface)."""
    knobs: list[str] = Field(default_factory=list)
    """Knob names it owns."""


class RecipeSpec(Frozen):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """Recipe name, also its folder name."""
    description: str
    """One paragraph for humans and agents."""
    source: Source = Field(default_factory=lambda: LocalSource(type="local"))
    """Where the starting source comes from."""
    editable: list[str] = Field(min_length=1)
    """Globs (relative to the source root) an agent may edit."""
    protected: list[str] = Field(default_factory=list)
    """Globs that must stay identical to the baseline; everything not editable is protected anyway."""
    phases: Phases
    """Commands of the trial phases."""
    evaluator: EvaluatorSpec
    """The evaluator-owned code."""
    metric: MetricSpec
    """The score and how to compare it."""
    gates: list[GateSpec] = Field(default_factory=list)
    """Conditions every kept trial must meet."""
    budgets: Budgets
    """Limits the evaluator enforces."""
    sandbox: SandboxSpec = Field(default_factory=SandboxSpec)
    """Container image for the Docker sandbox."""
    fidelities: dict[str, FidelitySpec] = Field(default_factory=lambda: {"full": FidelitySpec()})
    """Named fidelity levels."""
    default_fidelity: str = "full"
    """Level used when none is asked for."""
    knobs: list[Knob] = Field(default_factory=list)
    """Named edit points with choices, for non-LLM agents and analysis."""
    specialists: dict[str, Specialist] = Field(default_factory=dict)
    """Surface partitions with a brief each."""

    @model_validator(mode="after")
    def _consistent(self) -> "RecipeSpec":
        if self.default_fidelity not in self.fidelities:
            raise ValueError(
                f"default_fidelity {self.default_fidelity!r} is not one of the fidelities "
                f"{sorted(self.fidelities)}"
            )
        for knob in self.knobs:
            if not self.is_editable(knob.file):
                raise ValueError(f"knob {knob.name!r} lives in {knob.file!r}, which is not editable")
        names = [k.name for k in self.knobs]
        if len(set(names)) != len(names):
            raise ValueError("knob names must be unique")
        for sname, spec in self.specialists.items():
            unknown = set(spec.knobs) - set(names)
            if unknown:
                raise ValueError(f"specialist {sname!r} names unknown knobs {sorted(unknown)}")
        return self

    def is_editable(self, path: str) -> bool:
        """Whether `path` (posix, relative to the source root) lies on the editable surface."""
        return matches_any(path, self.editable) and not matches_any(path, self.protected)

    def knob(self, name: str) -> Knob:
        for knob in self.knobs:
            if knob.name == name:
                return knob
        raise KeyError(name)

    def fidelity_order(self) -> list[str]:
        """The fidelity levels from the cheapest to the most costly (ties by name):
        "a level above" another always means later in this list."""
        return sorted(self.fidelities, key=lambda name: (self.fidelities[name].cost, name))

    def fidelity_rank(self, level: str) -> int:
        """Position of `level` in `fidelity_order` (ValueError when the recipe has no such level)."""
        return self.fidelity_order().index(level)


def matches_any(path: str, globs: list[str]) -> bool:
    """Whether the posix `path` matches one of `globs`.

    `*` and `?` stay inside one folder, `**` spans folders (`src/**` matches
    everything under src, `**/*.py` matches Python files at any depth).
    """
    norm = str(PurePosixPath(path))
    return any(_glob_regex(g).fullmatch(norm) for g in globs)


@lru_cache(maxsize=1024)
def _glob_regex(glob: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out))


# --------------------------------------------------------------------------
# Proposals, trials, outcomes
# --------------------------------------------------------------------------


class Usage(Frozen):
    input_tokens: int = 0
    """Prompt tokens the proposal cost (cached prompt tokens included)."""
    output_tokens: int = 0
    """Completion tokens the proposal cost (thinking/reasoning tokens included)."""
    cost_usd: float = 0.0
    """Price of those tokens."""
    cache_read_tokens: int = 0
    """Of `input_tokens`: prompt tokens read from the provider's prompt cache (priced lower)."""
    cache_write_tokens: int = 0
    """Of `input_tokens`: prompt tokens written to the provider's prompt cache (Anthropic prices them higher)."""


TRANSCRIPT_FORMATS = ("jsonl", "text")
"""`jsonl`: one JSON message of an agent session per line; `text`: a command's stdout/stderr."""


class Transcript(Frozen):
    """What an agent's session left behind (its messages, or a command's output), set by
    the agent on its proposal. The harness stores the bytes as a blob in the lineage
    beside the proposal and records only their digest (`TranscriptDigest`)."""

    format: Literal["jsonl", "text"]
    """How the bytes read: `jsonl` session messages or `text` output."""
    content: bytes
    """The transcript itself, as the agent produced it (any bytes)."""

    def digest(self) -> "TranscriptDigest":
        """The digest a trial record keeps of these bytes."""
        return TranscriptDigest(
            format=self.format, sha256=hashlib.sha256(self.content).hexdigest(), size=len(self.content)
        )


class TranscriptDigest(Frozen):
    """A stored transcript as its trial record names it; `harness replay --verify` checks
    the blob in the lineage against it."""

    format: Literal["jsonl", "text"]
    """How the stored bytes read (see `Transcript.format`)."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """sha256 of the stored bytes."""
    size: int = Field(ge=0)
    """Length of the stored bytes."""


class LineageState(Frozen):
    """The lineage as a proposal's preparation found it. With several proposals
    prepared at once (`--proposers`), each is written against the lineage as it
    stood when it started, not against the trials recorded while it was prepared."""

    ledger_head: str = Field(pattern=r"^[0-9a-f]{40}$")
    """The ledger commit the proposal was prepared on: what it saw is the ledger up to
    this commit (`harness replay --verify` checks it is an earlier commit of the chain)."""
    trials: int = Field(ge=0)
    """Trial records on the ledger at that commit (the baseline included)."""
    outcomes: int = Field(ge=0)
    """How many of those had an outcome: the results the agent could learn from."""


class Proposal(Frozen):
    hypothesis: str
    """What the agent expects and why, in words."""
    diff: str
    """Unified diff against the parent trial; canonical (`git diff parent..trial`) once applied."""
    parent: str | None = Field(default=None, pattern=TRIAL_ID_PATTERN)
    """Parent trial id; None means the current best."""
    expected_delta: float | None = None
    """Score change the agent expects."""
    agent: str
    """Agent that wrote it (random, bayes, scripted, anthropic, ...)."""
    specialist: str | None = None
    """Specialist partition it was written for."""
    model: str | None = None
    """Model behind an LLM agent."""
    usage: Usage = Field(default_factory=Usage)
    """Token usage and cost of writing it."""
    knobs: dict[str, Union[bool, int, float, str]] = Field(default_factory=dict)
    """Knob settings the agent chose, when it works on the knob space."""
    failure: Literal["malformed_proposal", "apply_failed", "illegal_edit"] | None = None
    """Set by an agent whose answer could not be turned into a valid diff (after its
    repair attempts): the harness records the trial with this label, unrun."""
    failure_reason: str = ""
    """Why, in words (the last error the agent's answer got)."""
    fidelity: str | None = None
    """Fidelity level the agent asks this trial to run at (None: the run's level).
    Honoured under the `fixed` policy when the recipe has that level (otherwise the
    trial is recorded `malformed_proposal`); under `halving` new ideas always start
    at the lowest level."""
    transcript: SkipJsonSchema[Transcript | None] = Field(default=None, exclude=True)
    """The agent's session transcript, when it has one. Never part of a record: the harness
    moves the bytes into the lineage and keeps their digest as `Trial.transcript`."""
    notes: list[str] = Field(default_factory=list)
    """Lessons the agent wrote to the run notebook while preparing this proposal (the
    `note` tool); later proposals are shown every earlier proposal's notes."""
    based_on: LineageState | None = None
    """The lineage this proposal was prepared on (set by the harness, not the agent);
    None for the baseline and for records written before it was recorded."""


class Trial(Frozen):
    id: str = Field(pattern=TRIAL_ID_PATTERN)
    """`t0000` is the baseline."""
    run_id: str
    """Run this trial belongs to."""
    parent: str | None = Field(default=None, pattern=TRIAL_ID_PATTERN)
    """Parent trial id (None only for the baseline)."""
    proposal: Proposal
    """What was proposed (with the canonical diff once applied)."""
    fidelity: str
    """Fidelity level it ran at."""
    seeds: list[int]
    """Seeds it ran with."""
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    """Commit in the lineage holding the trial's code."""
    fidelity_move: Literal["promotion", "reference"] | None = None
    """Set on trials the harness made to run its parent's code unchanged at another
    level (empty diff, the parent's tree): `promotion`, a level above the parent's
    (successive halving promotes the best of a rung); `reference`, the baseline's
    code at a lower level, so that level has a score to compare against. None for
    every trial an agent proposed (and the baseline)."""
    transcript: TranscriptDigest | None = None
    """Digest of the agent's transcript, stored with the proposal in the ledger at
    `transcripts/<shard>/<id>.<jsonl|txt>`; None when the agent left none."""


SAME_CODE_MOVES = ("promotion", "reference")
"""Values of `Trial.fidelity_move`: trials that re-run their parent's code."""


def code_origin(records: "list[TrialRecord]") -> dict[str, str]:
    """Trial id -> id of the trial whose code it runs: itself, or, for a promotion or
    reference trial, its parent's origin (so one idea keeps one id across levels)."""
    origin: dict[str, str] = {}
    for record in sorted(records, key=lambda r: trial_number(r.trial.id)):
        t = record.trial
        moved = t.fidelity_move is not None and t.parent is not None
        origin[t.id] = origin.get(t.parent, t.parent) if moved else t.id  # type: ignore[arg-type]
    return origin


def fidelity_cost(spec: RecipeSpec, record: "TrialRecord") -> float:
    """Compute a trial counts against a budget, in full-trial units: its level's cost
    when it ran or is still to run, 0 when it was decided before running."""
    outcome = record.outcome
    if outcome is not None and not outcome.label.ran:
        return 0.0
    level = spec.fidelities.get(record.trial.fidelity)
    return level.cost if level is not None else 0.0


class GateResult(Frozen):
    metric: str
    """Metric the gate read."""
    op: str
    """Comparison."""
    threshold: float
    """Required value."""
    value: float | None
    """Measured value (None when missing)."""
    passed: bool
    """Whether the gate held."""
    on_miss: Literal["gate_miss", "size_failure"] = "gate_miss"
    """Label a miss of this gate gives (from the gate's spec)."""


class PhaseUsage(Frozen):
    phase: str
    """`preflight`, `train` or `eval`."""
    seed: int | None = None
    """Seed of this run, when the phase runs per seed."""
    wallclock_s: float
    """Host-measured seconds from start to exit."""
    exit_code: int | None
    """Process exit code (None when killed before it reported one)."""
    timed_out: bool = False
    """Killed at the wallclock cap."""
    oom: bool = False
    """Killed or failed for lack of memory."""
    output_bytes: int = 0
    """Bytes of stdout+stderr the phase wrote (before capping)."""
    log_sha256: str = ""
    """Digest of the kept log."""
    log_tail: str = ""
    """Last lines of the log."""
    limits: dict[str, Union[str, int, float, bool]] = Field(default_factory=dict)
    """Limits the sandbox reported enforcing (Docker: memory, swap, CPUs, pids, user, network ...)."""


class Outcome(Frozen):
    status: Status
    """Derived from the label; stored for readers, checked on load."""
    label: Label
    """What happened."""
    explanation: str = ""
    """Why the evaluator gave this label, in words agents and auditors can read."""
    score: float | None = None
    """The evaluator's score (mean over seeds), None when none was computed."""
    seed_scores: list[float] = Field(default_factory=list)
    """Score of each seed."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """All metrics the evaluator computed (means over seeds)."""
    gates: list[GateResult] = Field(default_factory=list)
    """Gate results."""
    phases: list[PhaseUsage] = Field(default_factory=list)
    """Budget usage per phase and seed."""
    artifact_bytes: int | None = None
    """Largest train-output size over seeds."""
    evaluator_digest: str = ""
    """sha256 over the evaluator folder that scored the trial."""
    image: str = ""
    """Sandbox image id (or `local:<python>` for the local sandbox)."""
    compared_to: list[str] = Field(default_factory=list)
    """Trial ids the keep decision compared against (parent, best)."""
    started: str
    """ISO 8601 UTC time the evaluation began."""
    finished: str
    """ISO 8601 UTC time the evaluation ended."""
    original_label: str | None = None
    """For imported trials: the label as the source wrote it (ours is mapped from it)."""
    infra_errors: list[str] = Field(default_factory=list)
    """Infrastructure failures of this trial's attempts, in order, one line each (e.g. a Ray
    worker lost mid-phase, naming the node): the trial was re-run after each, and this outcome
    is its last attempt's (`harness_error` when every attempt failed). Empty: the first attempt counted."""

    @model_validator(mode="before")
    @classmethod
    def _derive_status(cls, data: object) -> object:
        if isinstance(data, dict) and "label" in data:
            expected = Label(data["label"]).status
            if "status" not in data:
                data = {**data, "status": expected}
            elif Status(data["status"]) is not expected:
                raise ValueError(
                    f"status {data['status']!r} does not match label {data['label']!r} "
                    f"(expected {expected.value!r})"
                )
        return data


class TrialRecord(Frozen):
    """What the ledger stores per trial: the trial and, once evaluated, its outcome."""

    trial: Trial
    """The trial as proposed and committed."""
    outcome: Outcome | None = None
    """None between the proposal commit and the outcome commit."""


class ImportSource(Frozen):
    """Where an imported run came from (`harness import`)."""

    format: str
    """Importer that read it, e.g. `auto-research-recipes` or `autoresearch`."""
    path: str
    """The file as given on the command line."""
    sha256: str
    """Digest of the imported file's bytes."""
    problems: list[str] = Field(default_factory=list)
    """Rows that were malformed and imported as far as they could be recovered, with line numbers."""


class FidelityPolicy(Frozen):
    """The fidelity policy of a run (`harness run --fidelity-policy`), fixed at its start."""

    name: Literal["fixed", "halving"]
    """`fixed`: trials run at the run's level (or the level a proposal asks for);
    `halving`: successive halving from the cheapest level up to the run's level."""
    budget: float | None = Field(default=None, gt=0)
    """Compute budget in full-trial units: the sum of the level costs of the trials
    that ran, the baseline not counted (None: no budget)."""
    eta: int = Field(default=3, ge=2)
    """Halving: the best 1/eta of a rung (rounded up) is promoted to the next level."""
    bracket: int | None = Field(default=None, ge=1)
    """Halving: new proposals per bracket at the lowest level (None: eta^(levels - 1))."""


class RunInfo(Frozen):
    """Run metadata, stored once in the ledger (`run.json`)."""

    run_id: str
    """Run id (also the run folder name)."""
    recipe: RecipeSpec
    """The recipe spec the run used, frozen at start."""
    recipe_dir: str
    """Where the recipe came from (for reruns)."""
    baseline_commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    """Commit of trial t0000."""
    evaluator_digest: str
    """sha256 over the evaluator folder at start."""
    agent: str
    """Agent name used by `run`."""
    seed: int
    """Run seed (agents, scheduler)."""
    created: str
    """ISO 8601 UTC time the run was created."""
    harness_version: str
    """Version of the harness that created the run."""
    imported: ImportSource | None = None
    """Set when the run was imported from an external trajectory: its trials carry
    no code, and keep decisions are the source's, not re-derived."""
    fidelity_policy: FidelityPolicy | None = None
    """How trials were spread over the recipe's fidelity levels and the compute budget
    (None: every trial at the run's level, no budget)."""

