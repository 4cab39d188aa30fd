"""The non-LLM agents are safe to call from several proposer threads at once (`--proposers`):
the same contexts give the same proposals, whether written one after another or side by side."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.agents.bayes_agent import BayesAgent
from harness.agents.random_agent import RandomAgent
from harness.agents.scripted import ScriptedAgent

THREADS = 8


def history(fk):  # noqa: ANN001, ANN201
    lin = fk.Lineage(fk.make_spec(), score=0.5)
    for i, (config, score) in enumerate([({"ENCODER": "gru"}, 0.6), ({"LR": 0.003}, 0.55), ({"LAYERS": 4}, 0.4),
                                         ({"USE_NORM": False}, 0.52), ({"DROPOUT": 0.2}, 0.58),
                                         ({"HIDDEN": 256}, 0.61)]):
        lin.add(config, label="keep" if score > 0.6 else "not_improved", score=score)
    return lin


def side_by_side(agent, contexts):  # noqa: ANN001, ANN201
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(agent.propose, contexts))


@pytest.mark.parametrize("make", [lambda: RandomAgent(seed=1), lambda: BayesAgent(seed=1)], ids=["random", "bayes"])
def test_knob_agents_propose_the_same_from_many_threads(fk, make):
    lin = history(fk)
    contexts = [lin.ctx(seed=seed) for seed in range(3 * THREADS)]
    one_by_one = [make().propose(ctx) for ctx in contexts]
    agent = make()  # one agent shared by every thread, as a run shares it
    assert side_by_side(agent, contexts) == one_by_one
    assert len({p.diff for p in one_by_one}) > 1  # the seeds really draw different proposals


def test_scripted_agent_gives_each_proposal_under_way_its_own_line(fk, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"hypothesis": f"line {i}", "diff": ""}) + "\n" for i in range(12)))
    agent = ScriptedAgent(path)
    lin = fk.Lineage(fk.make_spec())
    base = lin.ctx()
    # Proposals started together on the same lineage: the i-th has i others under way before it.
    contexts = [base.model_copy(update={"trial_number": base.trial_number + i}) for i in range(THREADS)]
    assert [c.earlier_under_way() for c in contexts] == list(range(THREADS))
    proposals = side_by_side(agent, contexts)
    assert [p.hypothesis for p in proposals] == [f"line {i}" for i in range(THREADS)]
