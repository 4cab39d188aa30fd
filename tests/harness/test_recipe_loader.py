"""Recipe specs: shipped recipes load; bad specs are reported with file, field and expectation."""

from pathlib import Path

import pytest

from harness.recipe_loader import RecipeError, available_recipes, load_recipe, parse_recipe_file

VALID = """
name = "mini"
description = "a tiny recipe"
editable = ["model.py"]

[phases]
train = "python train.py"
eval = "python {eval}/predict.py"

[evaluator]
prepare = "prepare.py:prepare"
score = "score.py:score"

[metric]
name = "ap"
direction = "maximize"

[budgets]
train_wallclock_s = 10
eval_wallclock_s = 10
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return path


def test_shipped_default_recipe_loads():
    assert "collision" in available_recipes()
    recipe = load_recipe("collision")
    assert recipe.spec.name == "collision"
    assert recipe.source_dir.is_dir() and recipe.evaluator_dir.is_dir()


def test_valid_minimal_spec(tmp_path):
    spec = parse_recipe_file(write(tmp_path, VALID))
    assert spec.is_editable("model.py") and not spec.is_editable("train.py")


def test_wrong_type_names_file_field_and_expectation(tmp_path):
    path = write(tmp_path, VALID.replace("train_wallclock_s = 10", 'train_wallclock_s = "ten"'))
    with pytest.raises(RecipeError) as err:
        parse_recipe_file(path)
    message = str(err.value)
    assert str(path) in message and "budgets.train_wallclock_s" in message and "number" in message


def test_negative_budget_is_rejected_with_bound(tmp_path):
    path = write(tmp_path, VALID.replace("train_wallclock_s = 10", "train_wallclock_s = -1"))
    with pytest.raises(RecipeError, match=r"budgets\.train_wallclock_s: expected a number > 0"):
        parse_recipe_file(path)


def test_missing_field_is_named(tmp_path):
    path = write(tmp_path, VALID.replace('editable = ["model.py"]', ""))
    with pytest.raises(RecipeError, match="'editable' is required"):
        parse_recipe_file(path)


def test_unknown_field_is_named(tmp_path):
    path = write(tmp_path, VALID + '\n[metric2]\nname = "x"\n')
    with pytest.raises(RecipeError, match="metric2"):
        parse_recipe_file(path)


def test_bad_direction_lists_choices(tmp_path):
    path = write(tmp_path, VALID.replace('direction = "maximize"', 'direction = "up"'))
    with pytest.raises(RecipeError, match=r"metric\.direction: expected one of"):
        parse_recipe_file(path)


def test_invalid_toml_is_reported(tmp_path):
    with pytest.raises(RecipeError, match="not valid TOML"):
        parse_recipe_file(write(tmp_path, "name = "))


def test_cross_field_check_default_fidelity(tmp_path):
    path = write(tmp_path, VALID + '\ndefault_fidelity = "huge"\n')
    with pytest.raises(RecipeError, match="default_fidelity"):
        parse_recipe_file(path)


def test_unknown_recipe_lists_known():
    with pytest.raises(RecipeError, match="collision"):
        load_recipe("no-such-recipe")
