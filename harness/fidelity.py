"""Fidelity policies: at which level the next trial runs, and when a run stops.

The loop asks its policy `next_step(records)` before every new trial and gets one of:

- `NewProposal(level)`: ask the agent for a new idea, run at `level`;
- `SameCode(parent, level, move)`: the harness itself records a trial running
  `parent`'s code unchanged at `level` (a promotion, or a reference run of the
  baseline's code at a lower level);
- `Stop(reason)`: the budget is spent.

`fixed` runs every trial at the run's level (or the level a proposal asks for)
and only stops at the budget. `halving` is successive halving over the recipe's
levels sorted by cost: first one reference run of the baseline's code at each
lower level; then brackets, each of `bracket` new proposals at the lowest level
whose best 1/eta (rounded up; scored trials only, failures never) are promoted
one level up, and so on up to the run's level. A bracket opens only when its
whole planned cost fits in what is left of the budget (it shrinks to fit);
brackets repeat until nothing fits.

Nothing is stored about the schedule: `next_step` re-derives it from the trial
records every time (bracket `b` holds the next `bracket` agent proposals after
bracket `b - 1`; a promotion's parent says which rung it came from), so a resumed
run carries on exactly where the interrupted one stopped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Union

from harness.types import (
    BASELINE_TRIAL_ID,
    Direction,
    FidelityPolicy,
    RecipeSpec,
    Status,
    TrialRecord,
    fidelity_cost,
    trial_number,
)

if TYPE_CHECKING:
    from trajectories.lineage import Lineage

TOLERANCE = 1e-9
"""Float slack when comparing sums of level costs with the budget."""


class PolicyError(Exception):
    """The policy cannot work with this recipe or these options; the message says why."""


@dataclass(frozen=True)
class NewProposal:
    level: str
    """Level the agent's proposal runs at."""


@dataclass(frozen=True)
class SameCode:
    parent: str
    """Trial whose code runs again."""
    level: str
    """Level it runs at."""
    move: Literal["promotion", "reference"]
    """`Trial.fidelity_move` of the new trial."""
    hypothesis: str
    """What the harness records as the trial's hypothesis."""


@dataclass(frozen=True)
class Stop:
    reason: str
    """Why no more trials start, in words."""


Step = Union[NewProposal, SameCode, Stop]


def spent_units(spec: RecipeSpec, records: Sequence[TrialRecord]) -> float:
    """Budget used so far: the level costs of every trial but the baseline that ran
    or is still to run (a trial decided before running costs nothing)."""
    return sum(fidelity_cost(spec, r) for r in records if r.trial.id != BASELINE_TRIAL_ID)


@dataclass(frozen=True)
class LevelSpend:
    level: str
    trials: int
    """Trials at this level."""
    units: float
    """Their cost in full-trial units (trials decided before running cost nothing)."""
    wallclock_s: float
    """Host-measured seconds of their phases."""


def spend_by_level(spec: RecipeSpec, records: Sequence[TrialRecord]) -> list[LevelSpend]:
    """Compute per level against the budget, cheapest first: the baseline is not counted,
    levels without a trial are left out."""
    trials: dict[str, int] = defaultdict(int)
    units: dict[str, float] = defaultdict(float)
    seconds: dict[str, float] = defaultdict(float)
    for r in records:
        if r.trial.id == BASELINE_TRIAL_ID:
            continue
        level = r.trial.fidelity
        trials[level] += 1
        units[level] += fidelity_cost(spec, r)
        if r.outcome is not None:
            seconds[level] += sum(p.wallclock_s for p in r.outcome.phases)
    order = [name for name in spec.fidelity_order() if name in trials]
    order += sorted(set(trials) - set(order))  # a level the recipe no longer declares
    return [LevelSpend(name, trials[name], units[name], seconds[name]) for name in order]


def describe_spend(spec: RecipeSpec, records: Sequence[TrialRecord], budget: float | None) -> str:
    """One line: units spent of the budget, then per level."""
    spent = spent_units(spec, records)
    per_level = ", ".join(
        f"{s.level} {s.units:g} ({s.trials} trial{'s' if s.trials != 1 else ''})" for s in spend_by_level(spec, records)
    )
    of = f" of --budget {budget:g}" if budget is not None else ""
    return f"compute: {spent:.4g} units spent{of} (baseline not counted); per level: {per_level}"


class FixedPolicy:
    """Every trial at the run's level, or at the level its proposal asks for."""

    name = "fixed"

    def __init__(self, spec: RecipeSpec, level: str, budget: float | None = None) -> None:
        self.spec = spec
        self.level = level
        self.budget = budget

    def next_step(self, records: Sequence[TrialRecord]) -> Step:
        if self.budget is not None:
            spent = spent_units(self.spec, records)
            cost = self.spec.fidelities[self.level].cost
            if spent + cost > self.budget + TOLERANCE:
                return Stop(f"budget spent: {spent:.4g} of --budget {self.budget:g} units "
                            f"(a {self.level} trial costs {cost:g})")
        return NewProposal(self.level)

    def level_for(self, step: NewProposal, asked: str | None, records: Sequence[TrialRecord]) -> tuple[str, str | None]:
        """(level the proposal runs at, why it cannot run or None)."""
        if asked is None:
            return step.level, None
        if asked not in self.spec.fidelities:
            levels = ", ".join(self.spec.fidelity_order())
            return step.level, f"the proposal asks for fidelity {asked!r}; the recipe's levels are {levels}"
        if self.budget is not None:
            spent = spent_units(self.spec, records)
            cost = self.spec.fidelities[asked].cost
            if spent + cost > self.budget + TOLERANCE:
                return asked, (f"the proposal asks for fidelity {asked!r}, which costs {cost:g} units; "
                               f"{max(0.0, self.budget - spent):.4g} of --budget {self.budget:g} remain")
        return asked, None


class HalvingPolicy:
    """Successive halving from the cheapest level up to the run's level (see the module doc)."""

    name = "halving"

    def __init__(self, spec: RecipeSpec, target: str, budget: float, eta: int = 3, bracket: int | None = None) -> None:
        target_cost = spec.fidelities[target].cost
        self.levels = [name for name in spec.fidelity_order() if spec.fidelities[name].cost <= target_cost]
        self.levels = self.levels[: self.levels.index(target) + 1]
        if len(self.levels) < 2:
            raise PolicyError(
                f"--fidelity-policy halving needs a level cheaper than {target!r}; recipe {spec.name!r} has "
                f"{', '.join(f'{n} (cost {spec.fidelities[n].cost:g})' for n in spec.fidelity_order())}"
            )
        if eta < 2:
            raise PolicyError("--eta must be at least 2")
        self.spec = spec
        self.budget = budget
        self.eta = eta
        self.bracket = bracket or eta ** (len(self.levels) - 1)
        self.costs = [spec.fidelities[name].cost for name in self.levels]

    # -- the plan of one bracket ----------------------------------------------------

    def rung_sizes(self, n0: int) -> list[int]:
        """Planned trials per level of a bracket opening with `n0` proposals."""
        sizes = [n0]
        for _ in self.levels[1:]:
            sizes.append(math.ceil(sizes[-1] / self.eta))
        return sizes

    def bracket_cost(self, n0: int) -> float:
        return sum(n * c for n, c in zip(self.rung_sizes(n0), self.costs))

    def fitting_bracket(self, remaining: float) -> int:
        """The largest bracket (at most `self.bracket` proposals) whose planned cost fits; 0 when none does."""
        for n0 in range(self.bracket, 0, -1):
            if self.bracket_cost(n0) <= remaining + TOLERANCE:
                return n0
        return 0

    # -- the schedule, derived from the records --------------------------------------

    def next_step(self, records: Sequence[TrialRecord]) -> Step:
        records = sorted(records, key=lambda r: trial_number(r.trial.id))
        trials = [r for r in records if r.trial.id != BASELINE_TRIAL_ID]
        spent = spent_units(self.spec, records)
        remaining = self.budget - spent

        references = {r.trial.fidelity for r in trials if r.trial.fidelity_move == "reference"}
        for level in self.levels[:-1]:
            if level not in references:
                if self.spec.fidelities[level].cost > remaining + TOLERANCE:
                    return self._stop(records)
                return SameCode(
                    BASELINE_TRIAL_ID, level, "reference",
                    f"Reference: the baseline's code (t0000) at {level}, so {level} trials have a score to compare with",
                )

        # Cost of everything before each trial: a bracket's size is fixed by what was
        # left when its first proposal was made.
        before: dict[str, float] = {}
        running = 0.0
        for r in trials:
            before[r.trial.id] = running
            running += fidelity_cost(self.spec, r)
        proposals = [r for r in trials if r.trial.fidelity_move is None]
        children: dict[str, list[TrialRecord]] = defaultdict(list)
        for r in trials:
            if r.trial.fidelity_move == "promotion" and r.trial.parent is not None:
                children[r.trial.parent].append(r)

        start = 0
        while True:
            opened_with = self.budget - (before[proposals[start].trial.id] if start < len(proposals) else spent)
            n0 = self.fitting_bracket(opened_with)
            if n0 == 0:
                return self._stop(records)
            rung = proposals[start : start + n0]
            if len(rung) < n0:
                return NewProposal(self.levels[0])
            sizes = self.rung_sizes(n0)
            for index in range(1, len(self.levels)):
                pending = [r.trial.id for r in rung if r.outcome is None]
                if pending:
                    return Stop(f"the rung of {', '.join(pending)} has no outcome yet (halving waits for a whole rung)")
                chosen = self.ranked(rung)[: sizes[index]]
                level = self.levels[index]
                promoted: list[TrialRecord] = []
                for rank, r in enumerate(chosen, start=1):
                    child = next((c for c in children[r.trial.id] if c.trial.fidelity == level), None)
                    if child is None:
                        if self.spec.fidelities[level].cost > remaining + TOLERANCE:
                            return self._stop(records)
                        return SameCode(r.trial.id, level, "promotion", self._promotion_text(r, rank, len(rung), level))
                    promoted.append(child)
                rung = promoted
                if not rung:
                    break  # nothing in the rung scored: the bracket ends here
            if any(r.outcome is None for r in rung):
                return Stop(f"{', '.join(r.trial.id for r in rung if r.outcome is None)} has no outcome yet")
            start += n0

    def ranked(self, rung: Sequence[TrialRecord]) -> list[TrialRecord]:
        """The rung's promotable trials (scored and not failed), best first; ties by trial id."""
        scored = [
            r for r in rung
            if r.outcome is not None and r.outcome.score is not None and r.outcome.status is not Status.fail
        ]
        sign = -1.0 if self.spec.metric.direction is Direction.maximize else 1.0
        return sorted(scored, key=lambda r: (sign * r.outcome.score, trial_number(r.trial.id)))  # type: ignore[union-attr, operator]

    def _promotion_text(self, record: TrialRecord, rank: int, size: int, level: str) -> str:
        score = record.outcome.score if record.outcome else None
        return (f"Promote {record.trial.id} ({record.trial.fidelity}, {self.spec.metric.name} {score:.4f}, "
                f"rank {rank}/{size}) to {level}")

    def _stop(self, records: Sequence[TrialRecord]) -> Stop:
        spent = describe_spend(self.spec, records, self.budget).removeprefix("compute: ")
        left = self.budget - spent_units(self.spec, records)
        # Say why a run with budget left stops: a bracket is only started when it can reach the top level.
        return Stop(f"budget spent: {spent}; the {left:.4g} units left cannot pay the smallest bracket "
                    f"(one trial per level up to {self.levels[-1]}: {self.bracket_cost(1):.4g} units)")

    def level_for(self, step: NewProposal, asked: str | None, records: Sequence[TrialRecord]) -> tuple[str, str | None]:
        """New ideas always start at the lowest level, whatever the proposal asks for."""
        return step.level, None


Policy = Union[FixedPolicy, HalvingPolicy]


def make_policy(spec: RecipeSpec, level: str, chosen: FidelityPolicy | None) -> Policy:
    """The policy object of a run at `level` (the baseline's level) with the stored choice."""
    if chosen is None or chosen.name == "fixed":
        return FixedPolicy(spec, level, chosen.budget if chosen else None)
    if chosen.budget is None:
        raise PolicyError("--fidelity-policy halving needs a --budget")
    return HalvingPolicy(spec, level, chosen.budget, chosen.eta, chosen.bracket)


def kept_by_level(lineage: "Lineage") -> dict[str, str]:
    """Level -> the last trial kept at that level, in ledger outcome order (the keep
    rule's `best` reference of the next trial at that level)."""
    from trajectories.lineage import LEDGER_REF

    if lineage.ledger_head() is None:
        return {}
    fields = "%x09".join(f"%(trailers:key={key},valueonly,separator=%x2C)" for key in ("Event", "Trial-Id", "Label"))
    out = lineage.git.text("log", "--first-parent", "--reverse", f"--format={fields}", LEDGER_REF)
    records = {r.trial.id: r for r in lineage.records()}
    best: dict[str, str] = {}
    for line in out.splitlines():
        event, tid, label = (line.split("\t") + ["", "", ""])[:3]
        if event == "outcome" and label == "keep" and tid in records:
            best[records[tid].trial.fidelity] = tid
    return best
