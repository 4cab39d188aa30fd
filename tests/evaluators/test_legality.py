"""Static legality of proposal diffs: one test per trick, plus legal cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluators.legality import LegalityResult, check_diff, check_python_syntax, normalise_path
from harness.types import Budgets, EvaluatorSpec, Label, MetricSpec, Phases, RecipeSpec


def make_spec() -> RecipeSpec:
    return RecipeSpec(
        name="toy",
        description="A toy recipe for legality tests.",
        editable=["model.py", "train.py", "src/**"],
        protected=["src/frozen.py"],
        phases=Phases(train="python train.py", eval="python {eval}/score.py"),
        evaluator=EvaluatorSpec(prepare="prep.py:prepare", score="score.py:score"),
        metric=MetricSpec(name="ap", direction="maximize", noise_margin=0.005),
        budgets=Budgets(train_wallclock_s=60, eval_wallclock_s=30, max_diff_lines=20),
    )


def make_parent_files() -> dict[str, str]:
    return {
        "model.py": "100644",
        "train.py": "100644",
        "src/util.py": "100644",
        "src/frozen.py": "100644",
        "src/link.py": "120000",
        "eval/score.py": "100644",
        "data.py": "100644",
    }


@pytest.fixture
def spec() -> RecipeSpec:
    return make_spec()


@pytest.fixture
def parent_files() -> dict[str, str]:
    return make_parent_files()


def edit(path: str, old: str = "x = 1", new: str = "x = 2", a: str | None = None) -> str:
    """A git-style diff replacing one line of `path`."""
    a = a or path
    return (
        f"diff --git a/{a} b/{path}\n"
        "index 1111111..2222222 100644\n"
        f"--- a/{a}\n"
        f"+++ b/{path}\n"
        "@@ -1,2 +1,2 @@\n"
        " import os\n"
        f"-{old}\n"
        f"+{new}\n"
    )


def plain(path: str) -> str:
    return f"--- {path}\n+++ {path}\n@@ -1 +1 @@\n-a\n+b\n"


def illegal(result: LegalityResult, needle: str) -> None:
    assert result.label is Label.illegal_edit, result
    assert needle in result.reason, result.reason


def malformed(result: LegalityResult) -> None:
    assert result.label is Label.malformed_proposal, result
    assert result.reason.startswith("malformed diff: ")


# ---------------------------------------------------------------- legal


def test_edit_of_editable_file_is_legal(spec, parent_files):
    r = check_diff(edit("model.py"), spec, parent_files)
    assert r.label is None and r.legal
    assert r.files == ["model.py"]
    assert (r.added_lines, r.removed_lines) == (1, 1)


def test_new_editable_file_is_legal(spec, parent_files):
    diff = (
        "diff --git a/src/new.py b/src/new.py\n"
        "new file mode 100644\n"
        "index 0000000..3333333\n"
        "--- /dev/null\n"
        "+++ b/src/new.py\n"
        "@@ -0,0 +1,2 @@\n"
        "+a = 1\n"
        "+b = 2\n"
    )
    r = check_diff(diff, spec, parent_files)
    assert r.label is None, r.reason
    assert r.files == ["src/new.py"] and r.added_lines == 2


def test_plain_unified_diff_is_legal(spec, parent_files):
    r = check_diff(plain("a/train.py").replace("+++ a/", "+++ b/"), spec, parent_files)
    assert r.label is None, r.reason
    assert r.files == ["train.py"]


def test_plain_diff_with_timestamps_is_legal(spec, parent_files):
    diff = (
        "--- a/model.py\t2024-01-01 00:00:00.000000000 +0000\n"
        "+++ b/model.py\t2024-01-02 00:00:00.000000000 +0000\n"
        "@@ -1 +1 @@\n-a\n+b\n"
    )
    r = check_diff(diff, spec, parent_files)
    assert r.label is None, r.reason
    assert r.files == ["model.py"]


def test_multi_hunk_multi_file_diff_with_no_newline_marker_is_legal(spec, parent_files):
    diff = (
        edit("model.py")
        + "@@ -10,2 +10,3 @@\n a\n+b\n c\n\\ No newline at end of file\n"
        + edit("src/util.py")
    )
    r = check_diff(diff, spec, parent_files)
    assert r.label is None, r.reason
    assert r.files == ["model.py", "src/util.py"]
    assert (r.added_lines, r.removed_lines) == (3, 2)


def test_rename_between_editable_files_is_legal(spec, parent_files):
    diff = (
        "diff --git a/src/util.py b/src/util2.py\n"
        "similarity index 100%\n"
        "rename from src/util.py\n"
        "rename to src/util2.py\n"
    )
    assert check_diff(diff, spec, parent_files).label is None


def test_deleting_an_editable_file_is_legal(spec, parent_files):
    diff = (
        "diff --git a/src/util.py b/src/util.py\n"
        "deleted file mode 100644\n"
        "index 1111111..0000000\n"
        "--- a/src/util.py\n"
        "+++ /dev/null\n"
        "@@ -1 +0,0 @@\n"
        "-x = 1\n"
    )
    assert check_diff(diff, spec, parent_files).label is None


def test_empty_context_line_counts_as_context(spec, parent_files):
    diff = "--- a/model.py\n+++ b/model.py\n@@ -1,4 +1,4 @@\n a\n\n-b\n+c\n d\n"
    assert check_diff(diff, spec, parent_files).label is None


def test_quoted_names_are_decoded(spec, parent_files):
    diff = (
        edit("model.py").replace("a/model.py", '"a/model.py"').replace("b/model.py", '"b/model.py"')
    )
    assert check_diff(diff, spec, parent_files).label is None


# ---------------------------------------------------------------- illegal


def test_edit_of_protected_file(spec, parent_files):
    illegal(check_diff(edit("src/frozen.py"), spec, parent_files), "src/frozen.py (named in")
    assert "is protected" in check_diff(edit("src/frozen.py"), spec, parent_files).reason


def test_edit_outside_surface(spec, parent_files):
    r = check_diff(edit("eval/score.py"), spec, parent_files)
    illegal(r, "eval/score.py")
    assert "outside the editable surface" in r.reason


def test_path_traversal(spec, parent_files):
    illegal(check_diff(edit("src/../../etc/passwd"), spec, parent_files), "path traversal")


def test_absolute_path(spec, parent_files):
    illegal(check_diff(plain("/etc/passwd"), spec, parent_files), "absolute path")


def test_git_config(spec, parent_files):
    illegal(check_diff(edit(".git/config"), spec, parent_files), "inside .git")


def test_nested_git_hooks(spec, parent_files):
    illegal(check_diff(edit("src/x/.git/hooks/pre-commit"), spec, parent_files), "inside .git")


def test_git_dir_case_insensitive(spec, parent_files):
    illegal(check_diff(edit("src/.GIT/config"), spec, parent_files), "inside .git")


def test_backslash_in_path(spec, parent_files):
    illegal(check_diff(plain("a/src\\..\\eval\\score.py"), spec, parent_files), "backslash")


def test_control_character_in_quoted_path(spec, parent_files):
    diff = '--- "a/src/a\\tb.py"\n+++ "b/src/a\\tb.py"\n@@ -1 +1 @@\n-a\n+b\n'
    illegal(check_diff(diff, spec, parent_files), "control")


def test_rename_onto_protected_path(spec, parent_files):
    diff = (
        "diff --git a/model.py b/eval/score.py\n"
        "similarity index 100%\n"
        "rename from model.py\n"
        "rename to eval/score.py\n"
    )
    illegal(check_diff(diff, spec, parent_files), "rename model.py -> eval/score.py")


def test_rename_out_of_protected_path(spec, parent_files):
    diff = (
        "diff --git a/src/frozen.py b/src/free.py\n"
        "similarity index 100%\n"
        "rename from src/frozen.py\n"
        "rename to src/free.py\n"
    )
    illegal(check_diff(diff, spec, parent_files), "src/frozen.py")


def test_copy_from_protected_file(spec, parent_files):
    diff = (
        "diff --git a/eval/score.py b/src/score.py\n"
        "similarity index 100%\n"
        "copy from eval/score.py\n"
        "copy to src/score.py\n"
    )
    illegal(check_diff(diff, spec, parent_files), "copy eval/score.py -> src/score.py")


def test_mode_change_to_executable(spec, parent_files):
    diff = "diff --git a/model.py b/model.py\nold mode 100644\nnew mode 100755\n"
    illegal(check_diff(diff, spec, parent_files), "model.py: mode change")


def test_new_executable_file(spec, parent_files):
    diff = (
        "diff --git a/src/run.sh b/src/run.sh\n"
        "new file mode 100755\n"
        "--- /dev/null\n"
        "+++ b/src/run.sh\n"
        "@@ -0,0 +1 @@\n"
        "+echo hi\n"
    )
    illegal(check_diff(diff, spec, parent_files), "src/run.sh: new file mode 100755 (executable)")


def test_new_symlink(spec, parent_files):
    diff = (
        "diff --git a/src/evil.py b/src/evil.py\n"
        "new file mode 120000\n"
        "index 0000000..4444444\n"
        "--- /dev/null\n"
        "+++ b/src/evil.py\n"
        "@@ -0,0 +1 @@\n"
        "+../eval/score.py\n"
        "\\ No newline at end of file\n"
    )
    illegal(check_diff(diff, spec, parent_files), "new file mode 120000 (symlink)")


def test_edit_of_symlink_in_parent(spec, parent_files):
    illegal(
        check_diff(edit("src/link.py"), spec, parent_files),
        "src/link.py: is a symlink in the parent",
    )


def test_edit_under_symlinked_folder_in_parent(spec, parent_files):
    files = {**parent_files, "src/sub": "120000"}
    illegal(check_diff(edit("src/sub/x.py"), spec, files), "lies under src/sub")


def test_binary_patch(spec, parent_files):
    diff = (
        "diff --git a/src/w.bin b/src/w.bin\n"
        "new file mode 100644\n"
        "index 0000000..5555555\n"
        "GIT binary patch\n"
        "literal 4\n"
        "LcmZQzU|;|M00aO5\n"
        "\n"
        "literal 0\n"
        "HcmV?d00001\n"
        "\n"
    )
    illegal(check_diff(diff, spec, parent_files), "src/w.bin: binary")


def test_binary_files_differ(spec, parent_files):
    diff = "diff --git a/src/w.bin b/src/w.bin\nindex 1..2 100644\nBinary files a/src/w.bin and b/src/w.bin differ\n"
    illegal(check_diff(diff, spec, parent_files), "binary")


def test_deletion_of_protected_file(spec, parent_files):
    diff = (
        "diff --git a/src/frozen.py b/src/frozen.py\n"
        "deleted file mode 100644\n"
        "index 1111111..0000000\n"
        "--- a/src/frozen.py\n"
        "+++ /dev/null\n"
        "@@ -1 +0,0 @@\n"
        "-x = 1\n"
    )
    illegal(
        check_diff(diff, spec, parent_files),
        "src/frozen.py (named in diff --git header, ---): deletes a file that is protected",
    )


def test_dot_slash_normalisation(spec, parent_files):
    r = check_diff(plain("./eval/../eval/score.py"), spec, parent_files)
    illegal(r, "path traversal")
    r = check_diff(plain("./eval//score.py"), spec, parent_files)
    illegal(r, "eval/score.py")
    assert r.files == ["eval/score.py"]


def test_any_first_component_is_stripped_like_git_apply(spec, parent_files):
    diff = "--- x/eval/score.py\n+++ y/eval/score.py\n@@ -1 +1 @@\n-a\n+b\n"
    r = check_diff(diff, spec, parent_files)
    illegal(r, "eval/score.py")
    assert r.files == ["eval/score.py"]


def test_space_separated_timestamp_cannot_hide_a_protected_file(spec, parent_files):
    # patch tools strip a trailing timestamp, so this edits src/frozen.py
    diff = "--- a/src/frozen.py 2020-01-01 00:00:00 +0000\n+++ b/src/frozen.py 2020-01-01 00:00:00 +0000\n@@ -1 +1 @@\n-a\n+b\n"
    r = check_diff(diff, spec, parent_files)
    illegal(r, "src/frozen.py (named in ---, +++): edits a file that is protected")
    assert r.files == ["src/frozen.py"]
    # and in a git patch (where `git apply` keeps the text) the other reading is checked too
    git_diff = "diff --git a/src/frozen.py b/src/frozen.py\n" + diff
    illegal(
        check_diff(git_diff, spec, parent_files), "src/frozen.py (read from a name in ---, +++)"
    )


def test_name_without_prefix_is_malformed(spec, parent_files):
    # `git apply` would guess -p0 for the whole diff and read every other name differently
    r = check_diff("--- model.py\n+++ model.py\n@@ -1 +1 @@\n-a\n+b\n", spec, parent_files)
    malformed(r)
    assert "no a/ or b/ prefix" in r.reason


def test_text_after_tab_must_be_a_timestamp(spec, parent_files):
    malformed(
        check_diff(
            "--- a/model.py\tjunk\n+++ b/model.py\n@@ -1 +1 @@\n-a\n+b\n", spec, parent_files
        )
    )


def test_double_slash_after_prefix_is_absolute(spec, parent_files):
    illegal(
        check_diff(
            "--- a//etc/passwd\n+++ b//etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", spec, parent_files
        ),
        "absolute",
    )


def test_dot_slash_editable_path_is_normalised(spec, parent_files):
    r = check_diff(plain("./src//util.py"), spec, parent_files)
    assert r.label is None and r.files == ["src/util.py"]


def test_header_and_body_names_disagree(spec, parent_files):
    diff = edit("model.py").replace("+++ b/model.py", "+++ b/eval/score.py")
    illegal(check_diff(diff, spec, parent_files), "eval/score.py (named in +++)")


def test_oversize_diff(spec, parent_files):
    n = spec.budgets.max_diff_lines  # 20 changed lines allowed
    body = "".join(f"+line {i}\n" for i in range(n + 1))
    diff = f"--- a/model.py\n+++ b/model.py\n@@ -0,0 +1,{n + 1} @@\n{body}"
    illegal(check_diff(diff, spec, parent_files), f"diff changes {n + 1} lines")


def test_diff_at_size_limit_is_legal(spec, parent_files):
    n = spec.budgets.max_diff_lines
    body = "".join(f"+line {i}\n" for i in range(n))
    diff = f"--- a/model.py\n+++ b/model.py\n@@ -0,0 +1,{n} @@\n{body}"
    assert check_diff(diff, spec, parent_files).label is None


# ---------------------------------------------------------------- malformed


def test_empty_diff(spec, parent_files):
    for text in ("", "\n\n", "   \n"):
        r = check_diff(text, spec, parent_files)
        malformed(r)
        assert "empty diff" in r.reason


def test_garbage_text(spec, parent_files):
    malformed(check_diff("please make the model bigger\n", spec, parent_files))


def test_hunk_count_mismatch_short(spec, parent_files):
    diff = "--- a/model.py\n+++ b/model.py\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n"
    r = check_diff(diff, spec, parent_files)
    malformed(r)
    assert "ends early" in r.reason


def test_hunk_count_mismatch_long(spec, parent_files):
    diff = "--- a/model.py\n+++ b/model.py\n@@ -1 +1 @@\n-a\n+b\n+c\n"
    r = check_diff(diff, spec, parent_files)
    malformed(r)
    assert "hunk" in r.reason


def test_header_without_hunks(spec, parent_files):
    malformed(check_diff("--- a/model.py\n+++ b/model.py\n", spec, parent_files))
    malformed(
        check_diff("diff --git a/model.py b/model.py\nindex 1..2 100644\n", spec, parent_files)
    )


def test_diff_that_changes_nothing(spec, parent_files):
    r = check_diff("--- a/model.py\n+++ b/model.py\n@@ -1,2 +1,2 @@\n a\n b\n", spec, parent_files)
    malformed(r)
    assert "changes nothing" in r.reason


def test_too_many_file_patches(spec, parent_files):
    diff = "".join(
        f"diff --git a/src/f{i}.py b/src/f{i}.py\nnew file mode 100644\nindex 0000000..e69de29\n"
        for i in range(spec.budgets.max_diff_lines + 1)
    )
    illegal(check_diff(diff, spec, parent_files), "file patches, more than max_diff_lines")


def test_bad_hunk_header(spec, parent_files):
    malformed(
        check_diff("--- a/model.py\n+++ b/model.py\n@@ -x +1 @@\n-a\n+b\n", spec, parent_files)
    )


def test_missing_plus_header(spec, parent_files):
    malformed(check_diff("--- a/model.py\n@@ -1 +1 @@\n-a\n+b\n", spec, parent_files))


def test_trailing_garbage(spec, parent_files):
    malformed(check_diff(edit("model.py") + "thanks!\n", spec, parent_files))


# ---------------------------------------------------------------- helpers


def test_normalise_path():
    assert normalise_path("./a//b/./c.py") == "a/b/c.py"


def test_python_syntax_ok():
    assert check_python_syntax({"a.py": b"x = 1\n", "notes.txt": b"def (\n"}) is None


def test_python_syntax_error_names_file_and_line():
    err = check_python_syntax({"b.py": b"x = 1\n", "a.py": b"x = 1\ndef f(:\n    pass\n"})
    assert err is not None and err.startswith("a.py:2: ")


def test_python_syntax_never_executes(tmp_path):
    marker = tmp_path / "ran"
    source = f"open({str(marker)!r}, 'w').write('x')\n".encode()
    assert check_python_syntax({"evil.py": source}) is None
    assert not marker.exists()


def test_python_syntax_null_bytes():
    err = check_python_syntax({"n.py": b"x = 1\0\n"})
    assert err is not None and err.startswith("n.py:")


def _fragments():
    return st.lists(
        st.sampled_from(
            [
                "diff --git a/model.py b/model.py",
                'diff --git "a/m\\tx" b/x',
                "--- a/model.py",
                "+++ b/model.py",
                "--- /dev/null",
                "+++ /dev/null",
                "@@ -1 +1 @@",
                "@@ -1,2 +1,3 @@",
                "@@ -0,0 +1 @@",
                "new file mode 100644",
                "deleted file mode 100644",
                "old mode 100644",
                "index 1..2 120000",
                "rename from a",
                "rename to b",
                "copy from ../x",
                "GIT binary patch",
                'diff --git "a/\\',
                '--- "a/x',
                " ctx",
                "-old",
                "+new",
                "\\ No newline at end of file",
                "",
            ]
        )
        | st.text(max_size=20),
        max_size=12,
    ).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(st.text() | _fragments())
def test_fuzz_never_raises(text):
    result = check_diff(text, make_spec(), make_parent_files())
    assert isinstance(result, LegalityResult)
    assert result.label in (None, Label.malformed_proposal, Label.illegal_edit)
