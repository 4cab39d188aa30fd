"""upstream.toml: what a recipe relies on in its upstream, checked path by path, string by string."""

from __future__ import annotations

import pytest

from harness.upstream_conformance import ContractError, contract_problems, load_contract


def contract(tmp_path, text: str):
    (tmp_path / "upstream.toml").write_text(text)
    return load_contract(tmp_path)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "train.py").write_text('parser.add_argument("--depth", type=int)\nprint("val_bpb:")\n')
    return root


def test_a_recipe_without_upstream_toml_has_no_contract(tmp_path):
    assert load_contract(tmp_path) is None


def test_everything_present_is_no_problem(tmp_path, tree):
    c = contract(tmp_path, '[[needs]]\npath = "scripts/train.py"\nmentions = [\'"--depth"\', "val_bpb:"]\nwhy = "flags"\n'
                           '[[needs]]\npath = "scripts/"\nwhy = "a folder"\n')
    assert contract_problems(c, tree) == []


def test_each_missing_path_and_string_is_named_with_why(tmp_path, tree):
    c = contract(tmp_path, '[[needs]]\npath = "scripts/train.py"\nmentions = [\'"--depth"\', \'"--width"\']\n'
                           'why = "the driver\'s flags"\n'
                           '[[needs]]\npath = "scripts/eval.py"\nwhy = "the evaluator"\n'
                           '[[needs]]\npath = "tasks/"\nwhy = "a protected glob"\n')
    assert contract_problems(c, tree) == [
        "scripts/train.py has no '\"--width\"' (the driver's flags)",
        "no file scripts/eval.py (the evaluator)",
        "no folder tasks/ (a protected glob)",
    ]


def test_a_path_outside_the_tree_is_a_problem_not_a_read(tmp_path, tree):
    (tmp_path / "secret.txt").write_text("--depth")
    c = contract(tmp_path, '[[needs]]\npath = "../secret.txt"\nmentions = ["--depth"]\nwhy = "x"\n')
    assert contract_problems(c, tree) == ["../secret.txt: points outside the source tree"]


@pytest.mark.parametrize("text, field", [("[[needs]]\npath = 3\nwhy = 'x'\n", "needs.0.path"),
                                         ("needs = []\n", "needs"), ("[[needs]\n", "not valid TOML")])
def test_a_bad_contract_is_an_error_naming_the_field(tmp_path, text, field):
    with pytest.raises(ContractError, match=field.replace(".", r"\.")):
        contract(tmp_path, text)
