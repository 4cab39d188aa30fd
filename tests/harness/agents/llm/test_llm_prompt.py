"""The prompt: the recipe's brief and rules, the files an agent may read, specialists; no evaluator code."""

from __future__ import annotations


import pytest

from harness.agents.base import AgentError
from harness.agents.llm.prompt import TOOL_SCHEMA, Surface, build_prompt, candidate_files
from harness.types import PhaseUsage
from llm_helpers import COLLISION, FakeLineage, collision_files, collision_spec


def lineage_with_history() -> FakeLineage:
    lin = FakeLineage()
    lin.add(hypothesis="GRU encoder", specialist="arch", label="crash", explanation="train exited with 1",
            phases=[PhaseUsage(phase="train", seed=0, wallclock_s=2, exit_code=1, log_tail="RuntimeError: boom")])
    lin.add(hypothesis="Higher LR", specialist="opt", label="keep", score=0.74)
    lin.add(hypothesis="Broken predict", specialist="arch", label="metric_missing", explanation="no preds",
            phases=[PhaseUsage(phase="eval", seed=0, wallclock_s=1, exit_code=1,
                               log_tail='  File "/x/.harness/evaluator/predict.py", line 24, in main\n'
                                        "    from infer import predict  # noqa: E402  (the trial's code)\n")])
    return lin


def evaluator_lines() -> list[str]:
    """Distinctive lines of the collision evaluator's code (not also in the trial's source)."""
    source = "\n".join(p.read_text() for p in (COLLISION / "src").glob("*.py"))
    lines = []
    for path in (COLLISION / "eval").glob("*.py"):
        for line in path.read_text().splitlines():
            text = line.strip()
            if len(text) >= 20 and text not in source:
                lines.append(text)
    assert len(lines) > 50
    return lines


@pytest.mark.parametrize("specialist", [None, "arch", "opt"])
def test_prompt_carries_no_evaluator_code(specialist):
    prompt = build_prompt(lineage_with_history().ctx(specialist=specialist))
    text = prompt.system + prompt.user
    leaked = [line for line in evaluator_lines() if line in text]
    assert leaked == []
    assert "data.py" not in prompt.files and "predict.py" not in prompt.files
    assert "def load_features" not in text  # data.py (protected) is not shown either


def test_prompt_carries_the_brief_rules_files_and_view():
    spec = collision_spec()
    prompt = build_prompt(lineage_with_history().ctx())
    system, user = prompt.system, prompt.user
    assert " ".join(spec.description.split()) in system
    assert "Score: `ap`, to maximize" in system
    assert "noise margin 0.025" in system
    assert "Train phase: 60 s wallclock per seed" in system
    assert "Eval phase: 30 s" in system and "5,000,000 bytes" in system and "300 changed lines" in system
    assert "## Your files\nYou may edit config.py, model.py, train.py, infer.py." in system
    assert "in particular data.py" in system
    assert "evaluator's code and the held-out data are out of your reach" in system
    assert "tamper" in system and "illegal_edit" in system
    assert "BACKBONE in config.py: 'resnet18', 'clip_vitb16', 'vjepa_l'" in system
    assert sorted(prompt.files) == ["config.py", "infer.py", "model.py", "train.py"]
    for path, text in collision_files().items():
        assert f"## {path} (editable)" in user
        assert text.rstrip("\n") in user
    assert "# Lineage: 4 trials so far" in user
    assert "### t0001 <- t0000 [arch]: FAIL crash" in user
    assert user.rstrip().endswith("check your edit, then call submit_trial.")
    assert "Propose trial t0004. Build on the current best t0002" in user
    assert prompt.parent == "t0002" and prompt.trial == "t0004"


def test_specialist_prompt_restricts_the_editable_files():
    prompt = build_prompt(lineage_with_history().ctx(specialist="arch"))
    assert "## Your specialty: arch" in prompt.system
    assert "Architecture: which frozen backbone's features to use" in prompt.system
    assert "You may edit only model.py, infer.py, config.py. Other specialists" in prompt.system
    assert "Knobs of your specialty: BACKBONE, ENCODER, HEAD, LOSS." in prompt.system
    assert "- LR in config.py" not in prompt.system
    assert "## model.py (editable)" in prompt.user
    assert "## train.py (read-only for you: another specialty edits it)" in prompt.user
    assert "Propose trial t0004 for your specialty 'arch'" in prompt.user
    surface = prompt.surface
    assert surface.check("model.py") is None
    assert "outside your specialty 'arch'" in surface.check("train.py")
    assert "not on the editable surface" in surface.check("data.py")


def test_unknown_specialist_is_a_configuration_error():
    with pytest.raises(AgentError, match="no specialist 'loss' .*arch, opt"):
        build_prompt(FakeLineage().ctx(specialist="loss"))


def test_surface_without_specialist_files_is_the_whole_editable_surface():
    spec = collision_spec()
    assert Surface(spec).globs == spec.editable
    assert Surface(spec).check("train.py") is None


def test_list_files_when_the_context_offers_it_reaches_globbed_files():
    spec = collision_spec().model_copy(update={"editable": ["*.py", "pkg/*.py"], "protected": ["data.py"]})
    files = {**collision_files(), "pkg/extra.py": "EXTRA = 1\n", "data.py": "SECRET = 1\n"}
    lin = FakeLineage(spec=spec, files=files)
    ctx = lin.ctx()
    assert "pkg/extra.py" not in candidate_files(ctx, "t0000")  # a glob cannot be listed without help
    listing = ctx.model_copy(update={"list_files": lambda tid: sorted(lin.files[tid])})
    assert candidate_files(listing, "t0000") == ["config.py", "infer.py", "model.py", "pkg/extra.py", "train.py"]
    prompt = build_prompt(listing)
    assert "## pkg/extra.py (editable)" in prompt.user
    assert "SECRET" not in prompt.user


def test_tool_schema_has_the_answer_fields():
    props = TOOL_SCHEMA["properties"]
    assert set(props) == {"hypothesis", "expected_delta", "parent", "edits", "diff", "fidelity"}
    assert props["edits"]["items"]["required"] == ["file", "search", "replace"]
    assert TOOL_SCHEMA["required"] == ["hypothesis", "expected_delta"]


@pytest.mark.parametrize("recipe", ["collision", "nanochat-d12"])
def test_recipes_ship_knowledge_that_goes_into_the_brief(recipe):
    from harness.recipe_loader import load_recipe

    knowledge = load_recipe(recipe).knowledge()
    assert sorted(knowledge) == ["rules.md", "what-works.md"]
    prompt = build_prompt(FakeLineage().ctx(knowledge=knowledge))
    for name, text in knowledge.items():
        assert f"## Recipe knowledge: knowledge/{name}\n{text.strip()}" in prompt.system
    assert prompt.system.index("## Recipe knowledge") < prompt.system.index("## How to work")
