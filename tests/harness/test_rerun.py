"""Choosing the trials `replay --rerun` re-executes."""

import pytest

from harness.rerun import RerunError, choose_trials
from harness.types import Label, Outcome, Proposal, Trial, TrialRecord, trial_id


def record(n: int, score: float | None, label: Label = Label.not_improved) -> TrialRecord:
    trial = Trial(id=trial_id(n), run_id="r", parent=None if n == 0 else "t0000", fidelity="full", seeds=[0],
                  commit="0" * 40, proposal=Proposal(hypothesis="h", diff="", agent="a"))
    outcome = Outcome(label=label, score=score, seed_scores=[] if score is None else [score],
                      started="s", finished="f")
    return TrialRecord(trial=trial, outcome=outcome)


RECORDS = [record(0, 0.5, Label.keep), record(1, 0.9, Label.keep), record(2, None, Label.crash), record(3, 0.7)]


def test_best_and_ids():
    assert choose_trials(RECORDS, "t0001", ["best", "t0003"], maximize=True) == ["t0001", "t0003"]


def test_top_k_ranks_by_direction_and_skips_unscored():
    assert choose_trials(RECORDS, "t0001", ["top:2"], maximize=True) == ["t0001", "t0003"]
    assert choose_trials(RECORDS, "t0001", ["top:2"], maximize=False) == ["t0000", "t0003"]


def test_duplicates_are_run_once():
    assert choose_trials(RECORDS, "t0001", ["best", "t0001", "top:1"], maximize=True) == ["t0001"]


@pytest.mark.parametrize("target", ["top:x", "t0042", "worst"])
def test_bad_targets_are_named(target):
    with pytest.raises(RerunError, match=target.split(":")[0]):
        choose_trials(RECORDS, "t0001", [target], maximize=True)


def test_prediction_half_width_matches_hand_computation():
    from harness.rerun import prediction_half_width

    scores = [0.50, 0.52, 0.54]  # mean 0.52, sample sd 0.02
    # t(0.975, 2) = 4.302653 ; sqrt(1/3 + 1/1) = 1.154701
    assert prediction_half_width(scores, 1, 0.05) == pytest.approx(4.302653 * 0.02 * 1.154701, rel=1e-5)
    assert prediction_half_width([0.5], 1, 0.05) == 0.0
