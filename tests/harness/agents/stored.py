"""What the loop does with a proposal, without a run: write its trial commit message and
its record, read both back. Fuzz tests use it to show an accepted proposal loses nothing."""

from __future__ import annotations

from harness.types import Proposal, Trial, TrialRecord
from trajectories._git import decode_message, encode_message, format_message, parse_message
from trajectories.lineage import dump_json, trial_trailers


def assert_stored_intact(proposal: Proposal) -> None:
    """The proposal survives the trial commit message and the ledger record unchanged (its
    transcript is stored beside the record, as the loop does, not in it)."""
    proposal = proposal.model_copy(update={"transcript": None})
    trailers = trial_trailers("t0001", proposal.parent or "t0000", proposal.agent, proposal.specialist, "full")
    message = decode_message(encode_message(format_message(proposal.hypothesis, trailers)))
    assert parse_message(message) == (proposal.hypothesis, trailers)
    record = TrialRecord(
        trial=Trial(id="t0001", run_id="run", parent=proposal.parent or "t0000", proposal=proposal,
                    fidelity="full", seeds=[0], commit="0" * 40)
    )
    assert TrialRecord.model_validate_json(dump_json(record)) == record
