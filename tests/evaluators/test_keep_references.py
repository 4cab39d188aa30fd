"""The keep rule's references at a trial's own fidelity level (`keep_references`),
shared by the loop at record time and by replay."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "harness"))

from fidelity_records import record  # noqa: E402

from evaluators.decision import decide, keep_references  # noqa: E402
from harness.types import Label, MetricSpec  # noqa: E402


def by_id(*records):
    return {r.trial.id: r for r in records}


def test_one_level_the_references_are_the_parent_and_the_last_keep():
    recs = by_id(record("t0000", None, "full", 0.5, Label.keep), record("t0001", "t0000", "full", 0.6, Label.keep),
                 record("t0002", "t0001", "full", 0.55))
    parent, best = keep_references(recs["t0002"].trial, recs, {"t0000", "t0001"}, {"full": "t0001"})
    assert parent is recs["t0001"] and best is recs["t0001"]


def test_a_promotion_is_compared_with_its_nearest_ancestor_at_its_own_level():
    # t0000 full -> t0003 smoke (a new idea built on the best) -> t0005 short -> t0007 full
    recs = by_id(
        record("t0000", None, "full", 0.50, Label.keep),
        record("t0001", "t0000", "smoke", 0.30, Label.keep, move="reference"),
        record("t0002", "t0000", "short", 0.40, Label.keep, move="reference"),
        record("t0003", "t0000", "smoke", 0.36, Label.keep),
        record("t0005", "t0003", "short", 0.45, Label.keep, move="promotion"),
        record("t0007", "t0005", "full", 0.58, move="promotion"),
    )
    recorded = set(recs) - {"t0007"}
    level_best = {"full": "t0000", "smoke": "t0003", "short": "t0005"}
    parent, best = keep_references(recs["t0007"].trial, recs, recorded, level_best)
    assert parent is recs["t0000"] and best is recs["t0000"]  # never the smoke or short scores
    # the short promotion walks past its smoke parent: no short ancestor, the short best is the reference run
    parent, best = keep_references(recs["t0005"].trial, recs, recorded - {"t0005"}, {**level_best, "short": "t0002"})
    assert parent is None and best is recs["t0002"]


def test_a_smoke_idea_on_a_full_parent_has_no_ancestor_reference():
    recs = by_id(record("t0000", None, "full", 0.5, Label.keep), record("t0001", "t0000", "smoke", 0.3))
    parent, best = keep_references(recs["t0001"].trial, recs, {"t0000"}, {"full": "t0000"})
    assert parent is None and best is None
    # with no reference at all the keep rule keeps the first scored trial of a level
    assert decide(MetricSpec(name="acc", direction="maximize"), [0.3], None, None).keep


def test_an_ancestor_at_the_level_that_failed_or_is_not_recorded_yet_gives_no_reference():
    recs = by_id(record("t0000", None, "full", 0.5, Label.keep), record("t0001", "t0000", "full", None),
                 record("t0002", "t0001", "full", 0.6))
    parent, _ = keep_references(recs["t0002"].trial, recs, {"t0000", "t0001"}, {"full": "t0000"})
    assert parent is recs["t0001"]  # the nearest one at the level: no score, so decide skips it
    assert decide(MetricSpec(name="acc", direction="maximize"), [0.6], None, [0.5]).keep
    parent, _ = keep_references(recs["t0002"].trial, recs, {"t0000"}, {"full": "t0000"})
    assert parent is None  # t0001's outcome came later in the ledger


def test_the_walk_stops_on_a_cycle_in_a_damaged_lineage():
    a = record("t0001", "t0002", "smoke", 0.3)
    b = record("t0002", "t0001", "short", 0.3)
    recs = by_id(a, b)
    assert keep_references(record("t0003", "t0001", "full", 0.3).trial, recs, set(recs), {}) == (None, None)
