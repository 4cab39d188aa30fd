"""Proposals of a run, several under way at once (`--proposers`), as the scheduler asks for them.

A proposal goes through three steps (see `harness.scheduler.ProposalSource`):

1. `begin` (the scheduler thread): the fidelity policy's next step, the trial to
   build on and a snapshot of the lineage (`LineageState`, recorded in the
   proposal) become the agent's context. The trial number is reserved: the
   proposals already under way will be recorded as the numbers before it.
2. `prepare` (a proposer thread): the agent writes its proposal from that
   context. Agents only read the lineage here (through the context).
3. `finish` (the scheduler thread, in start order): legality checks, the trial
   commit and the `proposed` event (`Run._finish_proposal`).

An agent that raises is asked again on the lineage as it then stands, up to
`PROPOSAL_ATTEMPTS` times, unless the error says its configuration is wrong
(`AgentError`: retrying cannot help) or a model API stayed down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.agents.base import AgentContext, AgentError
from harness.agents.llm.errors import LLMUnavailable
from harness.fidelity import TOLERANCE, NewProposal, Policy, SameCode, spent_units
from harness.scheduler import WAIT, Wait
from harness.types import LineageState, Proposal, Trial, TrialRecord, trial_id

if TYPE_CHECKING:
    from harness.loop import Run

PROPOSAL_ATTEMPTS = 3
"""Times one proposal is asked for when the agent raises an unexpected error or its model API is down."""


@dataclass(frozen=True)
class Draft:
    """A proposal under way: what its agent was given."""

    number: int
    """Trial number it will be recorded as."""
    step: NewProposal | SameCode
    """The fidelity policy's step it serves."""
    policy: Policy
    """The run's fidelity policy."""
    state: LineageState
    """The lineage it is prepared on."""
    best: str = ""
    """Trial to build on by default (new proposals)."""
    context: AgentContext | None = None
    """What the agent sees (None for a trial the harness makes itself: `SameCode`)."""

    @property
    def trial(self) -> str:
        return trial_id(self.number)


def lineage_state(head: str, records: list[TrialRecord]) -> LineageState:
    """The snapshot a proposal records: the ledger head and what it held."""
    return LineageState(ledger_head=head, trials=len(records), outcomes=sum(r.outcome is not None for r in records))


def retryable(error: Exception) -> bool:
    """Whether asking the agent again may help: not for a configuration error."""
    return isinstance(error, LLMUnavailable) or not isinstance(error, AgentError)


class RunProposals:
    """The `ProposalSource` of a `Run`."""

    def __init__(self, run: "Run") -> None:
        self.run = run
        self.under_way: dict[int, Draft] = {}
        """Trial number -> draft, for every proposal started and not recorded or dropped."""

    def begin(self, earlier: int) -> Draft | Wait | None:
        draft = self.run._begin_proposal(earlier, in_flight_units=self._units_under_way())
        if isinstance(draft, Draft):
            self.under_way[draft.number] = draft
        return draft

    def prepare(self, draft: Draft) -> Proposal | None:
        if draft.context is None:
            return None
        return self.run.agent.propose(draft.context)

    def finish(self, draft: Draft, proposal: Proposal | None) -> Trial | None:
        self.under_way.pop(draft.number, None)
        return self.run._finish_proposal(draft, proposal)

    def failed(self, draft: Draft, error: Exception, attempt: int) -> bool:
        self.under_way.pop(draft.number, None)
        again = retryable(error) and attempt < PROPOSAL_ATTEMPTS
        what = f"{draft.trial}: the agent failed (attempt {attempt} of {PROPOSAL_ATTEMPTS}): {type(error).__name__}: {error}"
        self.run.reporter.note(what + ("; asking again" if again else "; proposing stops"))
        return again

    def dropped(self, draft: Draft) -> None:
        self.under_way.pop(draft.number, None)
        self.run.reporter.note(f"{draft.trial}: the proposal under way is dropped (proposing stopped before it)")

    def _units_under_way(self) -> float:
        """Compute the proposals under way will cost at their planned levels (for `--budget`)."""
        spec = self.run.spec
        return sum(spec.fidelities[d.step.level].cost for d in self.under_way.values())


def budget_wait(policy: Policy, records: list[TrialRecord], level: str, units_under_way: float) -> Wait | None:
    """`WAIT` when the fixed policy's budget pays for this trial only if the proposals under
    way turn out cheaper (fail before running): it starts once they are recorded."""
    budget = getattr(policy, "budget", None)
    if budget is None or units_under_way <= 0:
        return None
    spec = policy.spec  # type: ignore[attr-defined]
    if spent_units(spec, records) + units_under_way + spec.fidelities[level].cost > budget + TOLERANCE:
        return WAIT
    return None
