"""Group commit (`Lineage.grouped`): the events recorded inside reach git together, in one
ref transaction when the block ends; an error inside keeps what was recorded before it."""

from __future__ import annotations

import pytest
from lineage_helpers import RunBuilder, git

from harness.types import Label
from trajectories.lineage import Lineage, LineageError
from trajectories.verify import verify_lineage


def ref_of(builder: RunBuilder, name: str) -> str:
    return git(builder.run_dir, "rev-parse", "--verify", "-q", name).strip()


def test_refs_move_once_when_the_group_ends(builder: RunBuilder) -> None:
    lin = builder.lineage
    head_before, best_before = ref_of(builder, "refs/heads/ledger"), ref_of(builder, "refs/heads/best")
    with lin.grouped():
        kept = builder.trial(score=0.9)  # proposed, outcome, best moved: all in memory
        second = builder.propose()
        assert ref_of(builder, "refs/heads/ledger") == head_before  # git has seen nothing yet
        assert ref_of(builder, "refs/heads/best") == best_before
        assert git(builder.run_dir, "for-each-ref", "refs/trials/").count("refs/trials/") == 1
        assert lin.best() == kept.trial.id and lin.record(second.trial.id).outcome is None
    assert ref_of(builder, "refs/heads/ledger") == lin.ledger_head()
    assert ref_of(builder, "refs/heads/best") == kept.trial.commit
    assert ref_of(builder, f"refs/trials/{second.trial.id}") == second.trial.commit
    reflog = git(builder.run_dir, "reflog", "show", "--format=%H", "refs/heads/ledger").split()
    assert reflog[:2] == [lin.ledger_head(), head_before]  # one move for the whole group
    fresh = Lineage.open(builder.run_dir)
    assert [r.trial.id for r in fresh.records()] == ["t0000", kept.trial.id, second.trial.id]
    builder.finish(second, score=0.5)
    assert verify_lineage(builder.run_dir).ok


def test_an_error_inside_keeps_the_events_recorded_before_it(builder: RunBuilder) -> None:
    lin = builder.lineage
    with pytest.raises(LineageError, match="already recorded"):
        with lin.grouped():
            done = builder.trial(score=None, label=Label.crash)
            builder.finish(done, label=Label.crash)  # a second outcome: refused, nothing written for it
    assert ref_of(builder, "refs/heads/ledger") == lin.ledger_head()
    fresh = Lineage.open(builder.run_dir)
    assert fresh.record(done.trial.id).outcome is not None and fresh.record(done.trial.id).outcome.label is Label.crash
    assert verify_lineage(builder.run_dir).ok


def test_groups_do_not_nest(builder: RunBuilder) -> None:
    with builder.lineage.grouped():
        with pytest.raises(LineageError, match="do not nest"):
            with builder.lineage.batch():
                pass
