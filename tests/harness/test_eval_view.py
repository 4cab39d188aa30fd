"""The eval view: the eval phase runs trial code, so it sees only the evaluator files
`evaluator.eval_files` lists, and those must be code, never data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.eval_view import MAX_LITERAL_BYTES, build_view, view_files, view_problems
from harness.recipe_loader import RECIPES_ROOT, load_recipe, shipped_recipes
from harness.recipe_tools import check_recipe


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def copy_recipe(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(RECIPES_ROOT / name, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def set_eval_files(folder: Path, listed: str) -> None:
    toml = folder / "recipe.toml"
    text = toml.read_text()
    start = text.index("eval_files = ")
    end = text.index("\n", start)
    toml.write_text(text[:start] + f"eval_files = {listed}" + text[end:])


def eval_view_item(folder: Path):
    return next(i for i in check_recipe(str(folder), run_baseline=False).items if i.name == "eval-view")


@pytest.mark.parametrize("name", sorted(shipped_recipes()))
def test_every_shipped_recipe_shows_the_eval_phase_code_only(name, tmp_path):
    recipe = load_recipe(name)
    assert recipe.spec.evaluator.eval_files, "a shipped recipe names its eval files"
    assert view_problems(recipe.spec, recipe.evaluator_dir) == []
    view = build_view(recipe.spec, recipe.evaluator_dir, tmp_path / "view")
    shown = sorted(p.relative_to(view).as_posix() for p in view.rglob("*") if p.is_file())
    assert shown == sorted(view_files(recipe.spec))
    assert all(p.endswith(".py") for p in shown)
    prepare_file = recipe.spec.evaluator.prepare.partition(":")[0]
    assert prepare_file not in shown


def test_the_tinychat_corpus_is_not_in_its_eval_view(tmp_path):
    """The corpus the held-out split is cut from lives in the evaluator folder, next to predict.py."""
    recipe = load_recipe("tinychat")
    assert (recipe.evaluator_dir / "corpus.txt").is_file()
    view = build_view(recipe.spec, recipe.evaluator_dir, tmp_path / "view")
    assert not (view / "corpus.txt").exists() and (view / "predict.py").is_file()


def test_check_refuses_a_data_file_in_the_eval_view(tmp_path):
    folder = copy_recipe("tinychat", tmp_path)
    set_eval_files(folder, '["predict.py", "corpus.txt"]')
    item = eval_view_item(folder)
    assert item.status == "fail" and "'corpus.txt' is not Python source" in item.detail


def test_check_refuses_data_pasted_into_python(tmp_path):
    folder = copy_recipe("tinychat", tmp_path)
    corpus = (folder / "eval" / "corpus.txt").read_text()[: MAX_LITERAL_BYTES + 100]
    (folder / "eval" / "fables.py").write_text(f"TEXT = {corpus!r}\n")
    set_eval_files(folder, '["predict.py", "fables.py"]')
    item = eval_view_item(folder)
    assert item.status == "fail" and "bytes of string literals" in item.detail


def test_check_refuses_the_prepare_file_in_the_eval_view(tmp_path):
    folder = copy_recipe("collision", tmp_path)
    set_eval_files(folder, '["predict.py", "prepare.py"]')
    item = eval_view_item(folder)
    assert item.status == "fail" and "makes the held-out data" in item.detail


def test_check_accepts_the_shipped_lists(tmp_path):
    item = eval_view_item(copy_recipe("tinygolf", tmp_path))
    assert item.status == "ok" and "predict.py, codec.py" in item.detail


def test_unset_eval_files_means_the_files_the_eval_command_names(tmp_path):
    folder = copy_recipe("collision", tmp_path)
    toml = folder / "recipe.toml"
    toml.write_text("\n".join(ln for ln in toml.read_text().splitlines() if not ln.startswith("eval_files")) + "\n")
    recipe = load_recipe(folder)
    assert recipe.spec.evaluator.eval_files is None and view_files(recipe.spec) == ["predict.py"]


def test_cli_check_and_run_refuse_a_recipe_whose_eval_view_holds_data(tmp_path):
    folder = copy_recipe("tinychat", tmp_path)
    set_eval_files(folder, '["predict.py", "corpus.txt"]')
    check = cli("recipe", "check", folder, "--no-run")
    assert check.returncode == 1 and "eval-view" in check.stdout and "corpus.txt" in check.stdout
    run = cli("run", folder, "--trials", "0", "--out", tmp_path / "runs", "--run-id", "r")
    assert run.returncode != 0 and "corpus.txt" in run.stderr + run.stdout
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "runs" / "r").exists()
