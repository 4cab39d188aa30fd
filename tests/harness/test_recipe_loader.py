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


# -- recipe paths stay inside the recipe folder ---------------------------------------


def confined_recipe(tmp_path: Path, **evaluator: str) -> Path:
    """The minimal recipe with its folders, `evaluator` overriding lines of [evaluator]."""
    folder = tmp_path / "mini"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "model.py").write_text("x = 1\n")
    (folder / "eval").mkdir()
    for name in ("prepare.py", "score.py", "predict.py"):
        (folder / "eval" / name).write_text("def prepare(a, b, c):\n    pass\n\ndef score(a, b):\n    return {}\n")
    text = VALID
    for key, value in evaluator.items():
        text = text.replace("[evaluator]\n", f"[evaluator]\n{key} = {value}\n", 1)
    (folder / "recipe.toml").write_text(text)
    return folder


def outside_evaluator(tmp_path: Path) -> Path:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("prepare.py", "score.py", "predict.py"):
        (elsewhere / name).write_text("def score(a, b):\n    return {'ap': 1.0}\n\ndef prepare(a, b, c):\n    pass\n")
    return elsewhere


def test_evaluator_path_through_dotdot_is_refused(tmp_path):
    outside_evaluator(tmp_path)
    folder = confined_recipe(tmp_path, path='"../elsewhere"')
    with pytest.raises(RecipeError, match=r"evaluator.path: '../elsewhere' must be a relative path inside"):
        load_recipe(folder)


def test_absolute_evaluator_path_is_refused(tmp_path):
    elsewhere = outside_evaluator(tmp_path)
    folder = confined_recipe(tmp_path, path=f'"{elsewhere}"')
    with pytest.raises(RecipeError, match="evaluator.path: .* must be a relative path inside"):
        load_recipe(folder)


def test_evaluator_path_through_a_symlink_out_is_refused(tmp_path):
    elsewhere = outside_evaluator(tmp_path)
    folder = confined_recipe(tmp_path, path='"linked"')
    (folder / "linked").symlink_to(elsewhere)
    with pytest.raises(RecipeError, match=r"evaluator.path: 'linked' leads outside .* \(to .*elsewhere\)"):
        load_recipe(folder)


def test_evaluator_entry_file_through_a_symlink_out_is_refused(tmp_path):
    elsewhere = outside_evaluator(tmp_path)
    folder = confined_recipe(tmp_path)
    (folder / "eval" / "score.py").unlink()
    (folder / "eval" / "score.py").symlink_to(elsewhere / "score.py")
    with pytest.raises(RecipeError, match="evaluator.score: 'score.py' leads outside"):
        load_recipe(folder)


def test_eval_files_outside_the_evaluator_are_refused(tmp_path):
    elsewhere = outside_evaluator(tmp_path)
    folder = confined_recipe(tmp_path, eval_files='["../src/model.py"]')
    with pytest.raises(RecipeError, match="evaluator.eval_files: '../src/model.py' must be a relative path"):
        load_recipe(folder)
    folder = confined_recipe(tmp_path / "2", eval_files='["predict2.py"]')
    (folder / "eval" / "predict2.py").symlink_to(elsewhere / "predict.py")
    with pytest.raises(RecipeError, match="evaluator.eval_files: 'predict2.py' leads outside"):
        load_recipe(folder)


def test_source_and_dockerfile_paths_stay_in_the_recipe(tmp_path):
    folder = confined_recipe(tmp_path)
    (tmp_path / "othersrc").mkdir()
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text() + '\n[source]\ntype = "local"\npath = "../othersrc"\n')
    with pytest.raises(RecipeError, match="source.path: '../othersrc' must be a relative path"):
        load_recipe(folder)
    folder = confined_recipe(tmp_path / "2")
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text() + '\n[sandbox]\ndockerfile = "../Dockerfile"\n')
    with pytest.raises(RecipeError, match="sandbox.dockerfile: '../Dockerfile' must be a relative path"):
        load_recipe(folder)


def test_a_symlink_inside_the_recipe_folder_is_fine(tmp_path):
    folder = confined_recipe(tmp_path, path='"linked"')
    (folder / "linked").symlink_to(folder / "eval")
    assert load_recipe(folder).evaluator_dir.resolve() == (folder / "eval").resolve()
