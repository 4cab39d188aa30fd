"""The evaluator's score function receives exactly the host measurements it names."""

from pathlib import Path

from harness.trial_exec import ScoreInputs, _score_extras

MEASURED = ScoreInputs(train_wallclock_s=12.5, out_dir=Path("/o"), workspace_dir=Path("/w"), seed=3)


def test_plain_score_function_gets_nothing_extra():
    def score(preds_dir, labels_dir):
        return {}

    assert _score_extras(score, MEASURED) == {}


def test_named_measurements_are_passed():
    def score(preds_dir, labels_dir, train_wallclock_s, out_dir):
        return {}

    assert _score_extras(score, MEASURED) == {"train_wallclock_s": 12.5, "out_dir": Path("/o")}
