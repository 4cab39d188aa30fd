"""The agent interface: what an agent sees, what it returns, and how one is made.

An agent proposes one change at a time. It sees the recipe spec, the lineage so
far (trials and, where available, their outcomes) and the editable files of any
trial; it never sees held-out data or evaluator code, and no module of this
package imports `evaluators`.

Agents keep no state that matters across proposals: whatever they need (the
position in a scripted file, the observations of a Bayesian optimiser) is
derived from the context each call, so a resumed run proposes exactly what an
uninterrupted one would have.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from harness.types import Proposal, RecipeSpec, TrialRecord, code_origin, trial_number


class AgentError(Exception):
    """An agent is configured wrongly (unknown name, bad proposals file, recipe it cannot work on)."""


class AgentContext(BaseModel):
    """Everything an agent may look at when it writes one proposal."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    spec: RecipeSpec
    """The recipe spec of the run."""
    records: list[TrialRecord] = Field(default_factory=list)
    """The lineage so far, ordered by trial id, with outcomes where available."""
    best: str
    """Trial id to build on by default: the run's best (`refs/heads/best`); under the
    `halving` policy the best kept at the level this proposal runs at."""
    read_file: Callable[[str, str], str]
    """`read_file(trial_id, path)`: text of an editable file in that trial's code."""
    specialist: str | None = None
    """Specialist partition this proposal is asked for, if any."""
    seed: int
    """Per-proposal seed (see `proposal_seed`)."""
    trial_number: int
    """Number of the trial this proposal will become."""
    list_files: Callable[[str], list[str]] | None = None
    """`list_files(trial_id)`: the editable files of that trial's code, sorted."""
    export_files: Callable[[str, Path], None] | None = None
    """`export_files(trial_id, folder)`: write every file of that trial's code (protected ones
    too, as the trial phases see them; never the evaluator or data) into an empty folder: the
    work tree of an outside agent's command."""
    fidelity: str | None = None
    """Fidelity level this proposal will run at (None: the recipe's default level)."""
    fidelity_policy: Literal["fixed", "halving"] = "fixed"
    """`fixed`: a proposal may ask for another level (`Proposal.fidelity`); `halving`:
    new ideas start at the lowest level and the harness promotes the best upward."""
    list_tree: Callable[[str], list[str]] | None = None
    """`list_tree(trial_id)`: every file of that trial's code (protected ones too), sorted.
    The trial tree holds the recipe's source only: never evaluator code or held-out data."""
    read_tree: Callable[[str, str], bytes] | None = None
    """`read_tree(trial_id, path)`: bytes of any file of that trial's code (see `list_tree`)."""
    knowledge: dict[str, str] = Field(default_factory=dict)
    """The recipe's knowledge files (`knowledge/*.md`: what is known to work, rules,
    lessons): file name -> Markdown text, in name order."""

    def reader(self, trial_id: str) -> Callable[[str], str]:
        """`path -> text` for the files of one trial."""
        read = self.read_file
        return lambda path: read(trial_id, path)

    def record(self, trial_id: str) -> TrialRecord | None:
        """The record of one trial, or None when the lineage has none with that id."""
        for rec in self.records:
            if rec.trial.id == trial_id:
                return rec
        return None

    def earlier_under_way(self) -> int:
        """Proposals started before this one that are not in `records` yet (prepared at the
        same time, `--proposers`): they become the trials numbered just below `trial_number`."""
        top = max((trial_number(rec.trial.id) for rec in self.records), default=-1)
        return max(0, self.trial_number - top - 1)

    def level(self) -> str:
        """The level this proposal runs at."""
        return self.fidelity or self.spec.default_fidelity

    def notebook(self) -> list[tuple[str, str | None, str]]:
        """The run notebook: (trial id, specialist, text) of every note of the proposals
        recorded so far, in trial order (see `Proposal.notes`)."""
        return [(r.trial.id, r.trial.proposal.specialist, text) for r in self.records for text in r.trial.proposal.notes]

    def across_levels(self) -> list[list[TrialRecord]]:
        """The cross-fidelity record: one list per idea that ran at more than one level
        (its trial, then its promotions or reference runs, in trial order), oldest idea first."""
        origin = code_origin(self.records)
        ideas: dict[str, list[TrialRecord]] = {}
        for rec in self.records:
            ideas.setdefault(origin[rec.trial.id], []).append(rec)
        return [chain for chain in ideas.values() if len({r.trial.fidelity for r in chain}) > 1]


@runtime_checkable
class Agent(Protocol):
    """Writes proposals. May return a proposal whose diff is invalid: the harness labels it."""

    name: str

    def propose(self, ctx: AgentContext) -> Proposal | None:
        """One proposal, or None when the agent has nothing more to propose."""
        ...


def proposal_seed(run_seed: int, trial_number: int) -> int:
    """Seed of one proposal, derived from the run seed and the trial number (stable across Pythons)."""
    digest = hashlib.sha256(f"harness-agent:{run_seed}:{trial_number}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


AGENTS: dict[str, str] = {
    "random": "harness.agents.random_agent:RandomAgent",
    "bayes": "harness.agents.bayes_agent:BayesAgent",
    "scripted": "harness.agents.scripted:ScriptedAgent",
    "anthropic": "harness.agents.llm.anthropic_agent:AnthropicAgent",
    "openai": "harness.agents.llm.openai_agent:OpenAIAgent",
    "command": "harness.agents.command.agent:CommandAgent",
    "team": "harness.agents.llm.team:TeamAgent",
}
"""Agent name -> `module:Class`. Modules are imported only when their agent is made."""


def make_agent(
    name: str,
    *,
    proposals_file: Path | None = None,
    seed: int = 0,
    **options: Any,
) -> Agent:
    """Make the agent called `name`.

    The class is imported lazily and called with those keyword arguments its
    constructor accepts (`proposals_file`, `seed` and any `options`). Options
    that are set (not None) but the agent does not take raise `AgentError`, as
    do an unknown name and an agent module that fails to import. Constructors
    raise `AgentError` themselves for bad configuration.
    """
    target = AGENTS.get(name)
    if target is None:
        raise AgentError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentError(f"agent {name!r} could not be loaded ({module_name}): {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise AgentError(f"agent {name!r}: {module_name} has no class {class_name}")

    wanted: dict[str, Any] = {"proposals_file": proposals_file, "seed": seed, **options}
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs: dict[str, Any] = {}
    for key, value in wanted.items():
        if takes_any or key in params:
            kwargs[key] = value
        elif value is not None and key != "seed":
            raise AgentError(f"agent {name!r} does not take the option {key!r}")
    return cls(**kwargs)
