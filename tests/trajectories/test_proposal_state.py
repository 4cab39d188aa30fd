"""Replay checks the lineage state a proposal says it was prepared on (`Proposal.based_on`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lineage_helpers import RUN_ID, RunBuilder, edit_diff, make_source  # noqa: E402

from harness.types import BASELINE_TRIAL_ID, LineageState, Proposal, Trial, TrialRecord, trial_id  # noqa: E402
from trajectories.lineage import trial_trailers  # noqa: E402
from trajectories.verify import verify_lineage  # noqa: E402


def state_now(builder: RunBuilder) -> LineageState:
    records = builder.lineage.records()
    return LineageState(ledger_head=builder.lineage.ledger_head(), trials=len(records),
                        outcomes=sum(r.outcome is not None for r in records))


def propose_on(builder: RunBuilder, based_on: LineageState) -> TrialRecord:
    """A trial on the baseline whose proposal names `based_on`, everything else consistent."""
    lin = builder.lineage
    n = lin.next_trial_number()
    tid = trial_id(n)
    parent_commit = lin.record(BASELINE_TRIAL_ID).trial.commit
    tree = lin.apply_diff(parent_commit, edit_diff(lin, parent_commit, "model.py", n, f"LAYER_{n} = {n * 7}"))
    commit = lin.commit_trial(tree, parent_commit, f"Trial {tid}.",
                              trial_trailers(tid, BASELINE_TRIAL_ID, "scripted", None, "full"))
    proposal = Proposal(hypothesis=f"Trial {tid}.", diff=lin.diff(parent_commit, commit), parent=BASELINE_TRIAL_ID,
                        agent="scripted", based_on=based_on)
    record = TrialRecord(trial=Trial(id=tid, run_id=RUN_ID, parent=BASELINE_TRIAL_ID, proposal=proposal,
                                     fidelity="full", seeds=[0, 1], commit=commit))
    lin.record_proposed(record)
    return builder.finish(record, score=0.4)


@pytest.fixture
def builder(tmp_path) -> RunBuilder:
    return RunBuilder(tmp_path / "run", make_source(tmp_path / "src"))


def test_states_of_proposals_prepared_side_by_side_verify(builder):
    first = state_now(builder)
    propose_on(builder, first)
    propose_on(builder, first)  # prepared at the same time as the one before: the same, older state
    propose_on(builder, state_now(builder))
    report = verify_lineage(builder.run_dir)
    assert report.ok, report.problems


def test_a_state_with_other_counts_is_caught(builder):
    honest = state_now(builder)
    propose_on(builder, honest.model_copy(update={"outcomes": honest.outcomes + 1}))
    report = verify_lineage(builder.run_dir)
    assert any(p.startswith("t0001: based_on says the ledger held 1 trials and 2 outcomes") for p in report.problems), \
        report.problems


def test_a_state_naming_a_commit_off_the_ledger_is_caught(builder):
    stranger = builder.lineage.record(BASELINE_TRIAL_ID).trial.commit  # a commit, but no ledger commit
    propose_on(builder, LineageState(ledger_head=stranger, trials=1, outcomes=1))
    report = verify_lineage(builder.run_dir)
    assert any(p.startswith("t0001: based_on names ledger commit") and "not on the ledger" in p
               for p in report.problems), report.problems
