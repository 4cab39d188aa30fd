"""Fixtures for the lineage tests (helpers live in lineage_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lineage_helpers import RunBuilder, make_source  # noqa: E402

from harness.types import Label  # noqa: E402


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_source(tmp_path / "src")


@pytest.fixture
def builder(tmp_path: Path, source: Path) -> RunBuilder:
    return RunBuilder(tmp_path / "run", source)


@pytest.fixture
def small_run(builder: RunBuilder) -> RunBuilder:
    """t0000 keep, t0001 keep (0.6), t0002 not_improved, t0003 keep (0.7), t0004 apply_failed-like pre-run."""
    builder.trial(score=0.6)
    builder.trial(score=0.55)
    builder.trial(score=0.7)
    parent = builder.lineage.best()
    parent_commit = builder.lineage.record(parent).trial.commit
    tree = builder.lineage.tree_of(parent_commit)
    rec = builder.propose(diff="--- not a diff\n", tree=tree, stored_diff="--- not a diff\n")
    builder.finish(rec, Label.apply_failed, None)
    return builder
