"""The random agent: deterministic, knob-aware, avoids repeats."""

from __future__ import annotations

import shutil

import pytest

from harness.agents.base import AgentError
from harness.agents.knobs import read_knobs
from harness.agents.random_agent import RandomAgent
from harness.types import Knob, Specialist


def test_proposal_shape(lineage, fk, tmp_path):
    ctx = lineage.ctx()
    p = RandomAgent().propose(ctx)
    assert p is not None
    assert p.agent == "random" and p.parent == "t0000" and p.specialist is None
    assert set(p.knobs) == set(fk.BASELINE)
    changed = {k for k in p.knobs if p.knobs[k] != fk.BASELINE[k]}
    assert 1 <= len(changed) <= 2
    for name in changed:
        assert p.knobs[name] in lineage.spec.knob(name).choices
        assert name in p.hypothesis
    assert p.hypothesis.startswith("Set ")
    if shutil.which("git"):
        after = fk.git_apply(tmp_path / "r", lineage.files["t0000"], p.diff)
        assert read_knobs(lineage.spec, after.__getitem__) == p.knobs


def test_deterministic_for_a_seed(lineage):
    a = RandomAgent().propose(lineage.ctx(seed=7))
    b = RandomAgent().propose(lineage.ctx(seed=7))
    assert a == b
    others = {RandomAgent().propose(lineage.ctx(seed=s)).diff for s in range(20)}
    assert len(others) > 5


def test_changes_at_least_one_knob_from_the_best(fk):
    spec = fk.make_spec()
    lin = fk.Lineage(spec)
    best = lin.add({"ENCODER": "gru", "LAYERS": 4}, label="keep", score=0.9)
    for seed in range(50):
        p = RandomAgent().propose(lin.ctx(seed=seed))
        assert p.parent == best
        parent = {**fk.BASELINE, "ENCODER": "gru", "LAYERS": 4}
        assert any(p.knobs[k] != parent[k] for k in parent)
        assert p.diff.startswith("diff --git ")


def test_respects_specialist_knobs(fk):
    spec = fk.make_spec(
        specialists={
            "arch": Specialist(brief="architecture", knobs=["ENCODER", "LAYERS"]),
            "none": Specialist(brief="no knobs", files=["*.py"]),
        }
    )
    lin = fk.Lineage(spec)
    for seed in range(40):
        p = RandomAgent().propose(lin.ctx(specialist="arch", seed=seed))
        changed = {k for k in p.knobs if p.knobs[k] != fk.BASELINE[k]}
        assert changed and changed <= {"ENCODER", "LAYERS"}
        assert p.specialist == "arch"
        assert "model.py" not in p.diff
    # A specialist without knobs, or one the spec does not name: all knobs, not tied to it.
    for name in ("none", "unknown"):
        p = RandomAgent().propose(lin.ctx(specialist=name, seed=1))
        assert p.specialist is None


def test_avoids_configurations_already_tried(fk):
    knobs = [
        Knob(name="ENCODER", file="config.py", kind="arch", choices=["meanpool", "gru", "transformer"]),
        Knob(name="LAYERS", file="config.py", kind="arch", choices=[2, 4]),
    ]
    spec = fk.make_spec(knobs=knobs)
    lin = fk.Lineage(spec)
    # Neighbours of the baseline (meanpool, 2): 5 configs. Mark all but one as tried.
    tried = [("gru", 2), ("transformer", 2), ("meanpool", 4), ("gru", 4)]
    for enc, layers in tried:
        lin.add({"ENCODER": enc, "LAYERS": layers}, knobs={"ENCODER": enc, "LAYERS": layers}, score=0.1)
    for seed in range(30):
        p = RandomAgent().propose(lin.ctx(best="t0000", seed=seed))
        assert p.knobs == {"ENCODER": "transformer", "LAYERS": 4}


def test_all_tried_still_proposes(fk):
    knobs = [Knob(name="LAYERS", file="config.py", kind="arch", choices=[2, 4])]
    spec = fk.make_spec(knobs=knobs)
    lin = fk.Lineage(spec)
    lin.add({"LAYERS": 4}, knobs={"LAYERS": 4}, score=0.1)
    p = RandomAgent().propose(lin.ctx(best="t0000"))
    assert p.knobs == {"LAYERS": 4}


def test_skips_knobs_missing_from_the_parent(fk):
    spec = fk.make_spec()
    lin = fk.Lineage(spec)
    lin.files["t0000"]["model.py"] = "class Model:\n    pass\n"
    for seed in range(30):
        p = RandomAgent().propose(lin.ctx(seed=seed))
        assert "model.py" not in p.diff
        assert "DROPOUT" not in p.knobs and "HIDDEN" not in p.knobs


def test_recipe_without_knobs_is_an_error(fk):
    lin = fk.Lineage(fk.make_spec(knobs=[]))
    with pytest.raises(AgentError, match="no knobs"):
        RandomAgent().propose(lin.ctx())
