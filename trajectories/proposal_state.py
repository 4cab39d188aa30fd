"""Replay's check of `Proposal.based_on`: the lineage a proposal says it was prepared on.

A proposal records the ledger commit its preparation started from and what the
ledger held there (trials, outcomes). Replay knows where every ledger commit
stands in the chain and how many `proposed` and `outcome` events lie up to it,
so the claim is checked exactly: the commit is on the chain, comes before the
trial's own `proposed` event, and held the counts it names.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.types import TrialRecord


@dataclass(frozen=True)
class LedgerPoint:
    """Where one ledger commit stands."""

    index: int
    """Position in the first-parent chain (0: the start commit)."""
    trials: int
    """`proposed` events up to and including it."""
    outcomes: int
    """`outcome` events up to and including it."""


def based_on_problems(
    records: dict[str, TrialRecord], points: dict[str, LedgerPoint], proposed_at: dict[str, int]
) -> list[tuple[str, str]]:
    """(trial id, problem) for every record whose `based_on` the ledger contradicts;
    `proposed_at` maps a trial id to the chain position of its `proposed` event."""
    problems = []
    for tid, record in records.items():
        state = record.trial.proposal.based_on
        if state is None:
            continue
        point = points.get(state.ledger_head)
        if point is None:
            problems.append((tid, f"based_on names ledger commit {state.ledger_head[:12]}, which is not on the ledger"))
            continue
        at = proposed_at.get(tid)
        if at is not None and point.index >= at:
            problems.append((tid, f"based_on names ledger commit {state.ledger_head[:12]}, which does not come "
                                  "before its own proposed event"))
        if (state.trials, state.outcomes) != (point.trials, point.outcomes):
            problems.append((tid, f"based_on says the ledger held {state.trials} trials and {state.outcomes} "
                                  f"outcomes at {state.ledger_head[:12]}; it held {point.trials} and {point.outcomes}"))
    return problems
