"""The bayes agent: a TPE study rebuilt from the lineage."""

from __future__ import annotations

import random
import shutil

import pytest

from harness.agents.base import AgentError
from harness.agents.bayes_agent import BayesAgent, penalty
from harness.agents.knobs import read_knobs
from harness.agents.random_agent import RandomAgent
from harness.types import Direction, Knob, Specialist


def test_penalty():
    assert penalty([], Direction.maximize) == -1.0
    assert penalty([], Direction.minimize) == 1.0
    assert penalty([0.5, 0.9], Direction.maximize) == pytest.approx(0.46)
    assert penalty([0.5, 0.9], Direction.minimize) == pytest.approx(0.94)
    assert penalty([2.0], Direction.maximize) == pytest.approx(1.8)


def test_study_from_records_with_failures(fk):
    spec = fk.make_spec()
    lin = fk.Lineage(spec, score=0.5)  # the baseline has no knobs in its proposal: read from its files
    lin.add({"ENCODER": "gru"}, label="keep", score=0.7)
    lin.add({"ENCODER": "transformer"}, label="crash", score=None)
    lin.add({"LR": 0.003}, label="gate_miss", score=0.9)  # a failure even with a score
    lin.add({"LAYERS": 4}, label=None)  # still running: left out
    lin.add({}, agent="anthropic", knobs={}, label="not_improved", score=0.4)  # no knobs: left out
    agent = BayesAgent()
    study, dists, obs = agent.build_study(lin.ctx())
    assert [o.trial_id for o in obs] == ["t0000", "t0001", "t0002", "t0003"]
    assert [o.failed for o in obs] == [False, False, True, True]
    values = [t.value for t in study.trials]
    assert values[:2] == [0.5, 0.7]
    assert values[2] == values[3] < 0.5
    assert study.trials[0].params == fk.BASELINE
    assert study.trials[2].params["ENCODER"] == "transformer"
    assert set(dists) == set(fk.BASELINE)


def test_value_outside_choices_is_kept_in_the_space(fk):
    spec = fk.make_spec()
    lin = fk.Lineage(spec, baseline={"LR": 0.0005})  # baseline LR is not one of the choices
    _, dists, _ = BayesAgent().build_study(lin.ctx())
    assert dists["LR"].choices == (0.0003, 0.001, 0.003, 0.0005)


def test_proposes_a_valid_config(fk, tmp_path):
    spec = fk.make_spec()
    lin = fk.Lineage(spec)
    rng = random.Random(3)
    for _ in range(8):
        cfg = {k.name: rng.choice(k.choices) for k in spec.knobs}
        failed = rng.random() < 0.3
        lin.add(cfg, label="crash" if failed else "not_improved", score=None if failed else rng.random() * 0.4)
    ctx = lin.ctx()
    p = BayesAgent().propose(ctx)
    assert p.agent == "bayes" and p.parent == ctx.best == "t0000"
    assert set(p.knobs) == set(fk.BASELINE)
    for k in spec.knobs:
        assert p.knobs[k.name] in k.choices
    assert p.knobs != fk.BASELINE
    assert "TPE suggestion from 9 observed trials" in p.hypothesis
    if shutil.which("git"):
        after = fk.git_apply(tmp_path / "r", lin.files["t0000"], p.diff)
        assert read_knobs(spec, after.__getitem__) == p.knobs


def test_deterministic_for_a_seed(fk):
    spec = fk.make_spec()
    lin = fk.Lineage(spec)
    rng = random.Random(5)
    for _ in range(10):
        lin.add({k.name: rng.choice(k.choices) for k in spec.knobs}, score=rng.random())
    a = BayesAgent().propose(lin.ctx(seed=11))
    b = BayesAgent().propose(lin.ctx(seed=11))
    assert a == b
    assert len({BayesAgent().propose(lin.ctx(seed=s)).diff for s in range(10)}) > 2


def test_minimize_and_startup(fk):
    spec = fk.make_spec(direction="minimize")
    lin = fk.Lineage(spec, score=1.0)
    p = BayesAgent().propose(lin.ctx(seed=2))  # one observation: random startup sampling
    assert p is not None and p.knobs != fk.BASELINE


def test_never_proposes_the_parent_config(fk):
    knobs = [Knob(name="LAYERS", file="config.py", kind="arch", choices=[2, 4])]
    spec = fk.make_spec(knobs=knobs)
    lin = fk.Lineage(spec, score=0.9)
    for seed in range(10):
        p = BayesAgent().propose(lin.ctx(seed=seed))
        assert p.knobs == {"LAYERS": 4}
        assert p.diff


def test_perturbs_when_tpe_suggests_the_parent(fk, monkeypatch):
    import harness.agents.bayes_agent as bayes_agent

    monkeypatch.setattr(bayes_agent, "ASKS", 0)  # as if every suggestion equalled the parent
    lin = fk.Lineage(fk.make_spec())
    p = BayesAgent().propose(lin.ctx(seed=4))
    changed = {k for k in p.knobs if p.knobs[k] != fk.BASELINE[k]}
    assert len(changed) == 1
    assert p.hypothesis.startswith("Random perturbation")


def test_specialist_restricts_the_space(fk):
    spec = fk.make_spec(specialists={"reg": Specialist(brief="regularisation", knobs=["DROPOUT"])})
    lin = fk.Lineage(spec)
    for seed in range(10):
        p = BayesAgent().propose(lin.ctx(specialist="reg", seed=seed))
        assert p.specialist == "reg"
        assert {k for k in p.knobs if p.knobs[k] != fk.BASELINE[k]} == {"DROPOUT"}


def test_recipe_without_knobs_is_an_error(fk):
    lin = fk.Lineage(fk.make_spec(knobs=[]))
    with pytest.raises(AgentError, match="no knobs"):
        BayesAgent().propose(lin.ctx())


def in_region(cfg: dict) -> bool:
    return cfg["ENCODER"] == "transformer" and cfg["LR"] == 0.003


def test_prefers_the_best_region(fk):
    """With a clearly better region in the lineage, TPE proposes from it more often than random search."""
    spec = fk.make_spec()
    lin = fk.Lineage(spec, score=0.2)
    rng = random.Random(0)
    for _ in range(40):
        cfg = {k.name: rng.choice(k.choices) for k in spec.knobs}
        if rng.random() < 0.1:
            lin.add(cfg, label="crash", score=None)
            continue
        score = (0.8 if in_region(cfg) else 0.2) + 0.05 * rng.random()
        lin.add(cfg, score=score)
    assert sum(in_region(r.trial.proposal.knobs) for r in lin.records[1:]) >= 3

    seeds = range(30)
    bayes = sum(in_region(BayesAgent().propose(lin.ctx(seed=s)).knobs) for s in seeds)
    rand = sum(in_region(RandomAgent().propose(lin.ctx(seed=s)).knobs) for s in seeds)
    assert bayes >= 0.6 * len(seeds)
    assert bayes > rand
