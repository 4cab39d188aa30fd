"""From submit_trial arguments to the canonical diff: parsing, search/replace, unified diffs."""

from __future__ import annotations

import json

import pytest

from evaluators.legality import check_diff
from harness.agents.llm.edits import (
    AnswerError,
    Edit,
    apply_search_replace,
    apply_unified_diff,
    changed_line_count,
    json_in_text,
    parse_answer,
    render_diff,
    syntax_problem,
)
from llm_helpers import apply_with_git, collision_files, collision_spec

SPEC = collision_spec()
FILES = collision_files()


def read(path: str) -> str | None:
    return FILES.get(path)


def allowed(path: str) -> str | None:
    return None if SPEC.is_editable(path) else f"{path} is not editable"


# -- parsing ---------------------------------------------------------------


def test_parse_a_full_answer_from_json_text():
    answer = parse_answer(json.dumps({
        "hypothesis": "  GRU  ", "expected_delta": 0.03, "parent": "t0002",
        "edits": [{"file": "./config.py", "search": "a", "replace": "b"}],
    }))
    assert answer.hypothesis == "GRU"
    assert answer.expected_delta == 0.03
    assert answer.parent == "t0002"
    assert answer.edits == (Edit("./config.py", "a", "b"),)  # normalised when applied
    assert answer.diff is None


@pytest.mark.parametrize("arguments, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ({"expected_delta": 0.1, "edits": [{"file": "f", "search": "a", "replace": "b"}]}, "'hypothesis' must be"),
    ({"hypothesis": "h"}, "give the change as 'edits'"),
    ({"hypothesis": "h", "edits": [{"file": "f", "search": "a", "replace": "b"}], "diff": "x"}, "not both"),
    ({"hypothesis": "h", "edits": "search/replace"}, "'edits' must be a list"),
    ({"hypothesis": "h", "edits": [{"file": "f", "search": 1, "replace": "b"}]}, "edit 1: 'search' must be"),
    ({"hypothesis": "h", "edits": [["f", "a", "b"]]}, "edit 1 must be an object"),
    ({"hypothesis": "h", "parent": "best", "diff": "x"}, "'parent' must be a trial id"),
    ({"hypothesis": "h", "expected_delta": "lots", "diff": "x"}, "'expected_delta' must be a number"),
])
def test_malformed_answers_name_the_problem(arguments, message):
    with pytest.raises(AnswerError, match=message) as info:
        parse_answer(arguments)
    assert info.value.kind == "malformed_proposal"


def test_expected_delta_may_be_missing_or_a_numeric_string_but_not_infinite():
    assert parse_answer({"hypothesis": "h", "diff": "x"}).expected_delta is None
    assert parse_answer({"hypothesis": "h", "diff": "x", "expected_delta": "0.5"}).expected_delta == 0.5
    with pytest.raises(AnswerError, match="'expected_delta' must be a number"):
        parse_answer({"hypothesis": "h", "diff": "x", "expected_delta": "inf"})


def test_edits_encoded_as_a_json_string_are_accepted():
    edits = json.dumps([{"file": "config.py", "search": "a", "replace": "b"}])
    assert parse_answer({"hypothesis": "h", "edits": edits}).edits == (Edit("config.py", "a", "b"),)


def test_json_answer_written_as_text_is_found():
    text = 'Here is my trial:\n```json\n{"hypothesis": "h", "diff": "d"}\n```\n'
    assert json_in_text(text) == {"hypothesis": "h", "diff": "d"}
    assert json_in_text("no json here") is None


# -- search/replace --------------------------------------------------------


def test_search_replace_makes_a_diff_git_applies_and_legality_accepts(tmp_path):
    changes = apply_search_replace(
        [Edit("config.py", 'BACKBONE = "resnet18"', 'BACKBONE = "vjepa_l"'),
         Edit("config.py", 'ENCODER = "meanpool"', 'ENCODER = "gru"'),
         Edit("model.py", "import torch\n", "import torch\nimport math\n")],
        read, allowed, "t0000")
    diff = render_diff(changes)
    assert diff.startswith("diff --git a/config.py b/config.py\n--- a/config.py\n+++ b/config.py\n@@ ")
    assert "diff --git a/model.py b/model.py" in diff
    assert check_diff(diff, SPEC, {p: "100644" for p in FILES}).label is None
    proc = apply_with_git(tmp_path, FILES, diff)
    assert proc.returncode == 0, proc.stderr
    assert 'BACKBONE = "vjepa_l"' in (tmp_path / "config.py").read_text()
    assert changed_line_count(changes) == 5  # 2 + 2 in config.py, 1 added in model.py


def test_search_not_found_says_where_and_hints_the_closest_line():
    with pytest.raises(AnswerError) as info:
        apply_search_replace([Edit("config.py", 'BACKBONE = "resnet50"', "x")], read, allowed, "t0003")
    err = info.value
    assert err.kind == "apply_failed"
    assert "edit 1 (config.py): the search text was not found in config.py of trial t0003" in err.message
    assert "closest line" in err.message and "BACKBONE" in err.message


def test_search_matching_twice_is_refused():
    text = FILES["config.py"]
    assert text.count("\n\n") > 1
    with pytest.raises(AnswerError, match="occurs .* times in config.py") as info:
        apply_search_replace([Edit("config.py", "\n\n", "\n")], read, allowed, "t0000")
    assert info.value.kind == "apply_failed"


def test_whitespace_only_mismatch_is_explained():
    with pytest.raises(AnswerError, match="whitespace is ignored"):
        apply_search_replace([Edit("config.py", 'BACKBONE  =  "resnet18"', "x")], read, allowed, "t0000")


def test_protected_and_traversal_paths_are_illegal():
    for path in ("data.py", "../evil.py", "/etc/passwd", ".git/config"):
        with pytest.raises(AnswerError) as info:
            apply_search_replace([Edit(path, "a", "b")], read, allowed, "t0000")
        assert info.value.kind == "illegal_edit", path


def test_missing_file_and_new_file():
    with pytest.raises(AnswerError, match="does not exist in trial t0000"):
        apply_search_replace([Edit("extra.py", "x", "y")], read, lambda p: None, "t0000")
    changes = apply_search_replace([Edit("extra.py", "", "X = 1\n")], lambda p: None, lambda p: None, "t0000")
    diff = render_diff(changes)
    assert "new file mode 100644\n--- /dev/null\n+++ b/extra.py\n@@ -0,0 +1 @@\n+X = 1\n" in diff
    with pytest.raises(AnswerError, match="'search' is empty but config.py exists"):
        apply_search_replace([Edit("config.py", "", "x")], read, allowed, "t0000")


def test_edits_that_change_nothing_are_malformed():
    with pytest.raises(AnswerError, match="change nothing") as info:
        apply_search_replace([Edit("config.py", "LR = 0.003", "LR = 0.003")], read, allowed, "t0000")
    assert info.value.kind == "malformed_proposal"


def test_no_newline_at_end_of_file_round_trips(tmp_path):
    files = {"config.py": "A = 1\nB = 2"}
    changes = apply_search_replace([Edit("config.py", "B = 2", "B = 3")], files.get, lambda p: None, "t0000")
    diff = render_diff(changes)
    assert "\\ No newline at end of file" in diff
    assert apply_with_git(tmp_path, files, diff).returncode == 0
    assert (tmp_path / "config.py").read_text() == "A = 1\nB = 3"


# -- unified diffs ---------------------------------------------------------


def test_a_unified_diff_is_applied_and_made_canonical(tmp_path):
    sloppy = (  # wrong hunk counts and no `diff --git` line: git apply --recount copes
        "--- a/config.py\n+++ b/config.py\n@@ -8,1 +8,1 @@\n"
        '-BACKBONE = "resnet18"  # frozen feature backbone: resnet18 | clip_vitb16 | vjepa_l\n'
        '+BACKBONE = "vjepa_l"  # frozen feature backbone: resnet18 | clip_vitb16 | vjepa_l\n'
        ' ENCODER = "meanpool"  # temporal encoder: meanpool | gru | tcn | transformer\n'
    )
    changes = apply_unified_diff(sloppy, read, allowed, "t0000")
    diff = render_diff(changes)
    assert diff.startswith("diff --git a/config.py b/config.py\n")
    assert apply_with_git(tmp_path, FILES, diff).returncode == 0


def test_a_unified_diff_that_does_not_apply_reports_git_error():
    bad = "--- a/model.py\n+++ b/model.py\n@@ -1,2 +1,2 @@\n-this line is not in model.py\n+nor this\n context\n"
    with pytest.raises(AnswerError, match="does not apply to trial t0000: error:") as info:
        apply_unified_diff(bad, read, allowed, "t0000")
    assert info.value.kind == "apply_failed"


@pytest.mark.parametrize("diff, kind", [
    ("just words", "malformed_proposal"),
    ("--- a/data.py\n+++ b/data.py\n@@ -1 +1 @@\n-a\n+b\n", "illegal_edit"),
    ("diff --git a/config.py b/c.py\nrename from config.py\nrename to c.py\n", "illegal_edit"),
    ("diff --git a/config.py b/config.py\nold mode 100644\nnew mode 100755\n", "illegal_edit"),
    ("diff --git a/config.py b/config.py\ndeleted file mode 100644\n--- a/config.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n",
     "illegal_edit"),
])
def test_unified_diff_problems(diff, kind):
    with pytest.raises(AnswerError) as info:
        apply_unified_diff(diff, read, allowed, "t0000")
    assert info.value.kind == kind


def test_syntax_problem_names_file_and_line():
    changes = apply_search_replace([Edit("config.py", "LR = 0.003", "LR = = 0.003")], read, allowed, "t0000")
    assert syntax_problem(changes).startswith("config.py line 14:")
    ok = apply_search_replace([Edit("config.py", "LR = 0.003", "LR = 0.01")], read, allowed, "t0000")
    assert syntax_problem(ok) is None
