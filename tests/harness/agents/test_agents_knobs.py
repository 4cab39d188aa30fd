"""Knob reading, rewriting and diffs that `git apply` accepts."""

from __future__ import annotations

import shutil

import pytest

from harness.agents.base import AgentError
from harness.agents.knobs import knob_diff, knob_hypothesis, read_knobs
from harness.types import Knob

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def reader(files):
    return lambda path: files[path]


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b) if x != y]


def test_read_knobs_baseline(spec, fk):
    assert read_knobs(spec, reader(fk.render({}))) == fk.BASELINE


def test_read_knobs_round_trip_through_diff(spec, fk, tmp_path):
    files = fk.render({})
    changes = {"ENCODER": "gru", "DROPOUT": 0.3, "USE_NORM": False}
    diff = knob_diff(spec, reader(files), changes)
    after = fk.git_apply(tmp_path / "repo", files, diff) if shutil.which("git") else None
    if after is None:
        pytest.skip("git not installed")
    assert read_knobs(spec, reader(after)) == {**fk.BASELINE, **changes}


def test_read_knobs_missing_unparseable_and_comments(fk):
    knobs = [
        Knob(name="A", file="c.py", kind="hparam", choices=[1, 2]),
        Knob(name="B", file="c.py", kind="hparam", choices=["x", "y"]),
        Knob(name="C", file="c.py", kind="hparam", choices=[1, 2]),
        Knob(name="D", file="c.py", kind="hparam", choices=[1, 2]),
        Knob(name="E", file="missing.py", kind="hparam", choices=[1, 2]),
        Knob(name="F", file="c.py", kind="hparam", choices=["a#b", "c"]),
    ]
    spec = fk.make_spec(knobs=knobs)
    text = (
        "A=2\n"
        'B = "x"   # quoted with a comment\n'
        "C = compute()  # not a literal\n"
        "    D = 1  # indented, so not a knob line\n"
        'F = "a#b"  # hash inside the string\n'
    )
    files = {"c.py": text}
    assert read_knobs(spec, reader(files)) == {
        "A": 2, "B": "x", "C": None, "D": None, "E": None, "F": "a#b",
    }


@needs_git
def test_knob_diff_applies_and_changes_exactly_the_knob_lines(spec, fk, tmp_path):
    files = fk.render({})
    changes = {"LR": 0.003, "ENCODER": "gru", "HIDDEN": 256}
    diff = knob_diff(spec, reader(files), changes)

    assert diff.startswith("diff --git a/config.py b/config.py\n--- a/config.py\n+++ b/config.py\n@@ ")
    assert diff.count("diff --git ") == 2
    assert "diff --git a/model.py b/model.py\n--- a/model.py\n+++ b/model.py\n" in diff
    assert diff.index("a/config.py") < diff.index("a/model.py")
    assert all(line.endswith("\n") for line in diff.splitlines(keepends=True))

    after = fk.git_apply(tmp_path / "repo", files, diff)
    assert changed_lines(files["config.py"], after["config.py"]) == [
        ("ENCODER = 'meanpool'  # sequence encoder", "ENCODER = 'gru'  # sequence encoder"),
        ("LR = 0.001", "LR = 0.003"),
    ]
    assert changed_lines(files["model.py"], after["model.py"]) == [("HIDDEN=128", "HIDDEN = 256")]


@needs_git
def test_knob_diff_keeps_comment_spacing(spec, fk, tmp_path):
    files = fk.render({})
    after = fk.git_apply(tmp_path / "r", files, knob_diff(spec, reader(files), {"DROPOUT": 0.0}))
    assert changed_lines(files["model.py"], after["model.py"]) == [
        ("DROPOUT = 0.1    # regularisation", "DROPOUT = 0.0    # regularisation")
    ]
    assert after["config.py"] == files["config.py"]


@needs_git
def test_knob_diff_without_trailing_newline_and_crlf(fk, tmp_path):
    knobs = [
        Knob(name="A", file="a.py", kind="hparam", choices=[1, 2]),
        Knob(name="B", file="b.py", kind="hparam", choices=[1, 2]),
    ]
    spec = fk.make_spec(knobs=knobs)
    files = {"a.py": "x = 0\nA = 1", "b.py": "B = 1\r\ny = 2\r\n"}
    diff = knob_diff(spec, reader(files), {"A": 2, "B": 2})
    assert "\\ No newline at end of file\n" in diff
    after = fk.git_apply(tmp_path / "r", files, diff)
    assert after == {"a.py": "x = 0\nA = 2", "b.py": "B = 2\r\ny = 2\r\n"}


@needs_git
def test_knob_diff_hunks_in_a_long_file(fk, tmp_path):
    knobs = [
        Knob(name="FIRST", file="c.py", kind="hparam", choices=[1, 2]),
        Knob(name="LAST", file="c.py", kind="hparam", choices=[1, 2]),
    ]
    spec = fk.make_spec(knobs=knobs)
    body = "".join(f"v{i} = {i}\n" for i in range(30))
    files = {"c.py": "FIRST = 1\n" + body + "LAST = 1\n"}
    diff = knob_diff(spec, reader(files), {"FIRST": 2, "LAST": 2})
    assert diff.count("\n@@ ") == 2
    after = fk.git_apply(tmp_path / "r", files, diff)
    assert after["c.py"] == "FIRST = 2\n" + body + "LAST = 2\n"


def test_knob_diff_no_change_is_empty(spec, fk):
    files = fk.render({})
    assert knob_diff(spec, reader(files), {"LR": 0.001}) == ""
    assert knob_diff(spec, reader(files), {}) == ""


def test_knob_diff_errors(spec, fk):
    files = fk.render({})
    with pytest.raises(AgentError, match="unknown knob 'NOPE'"):
        knob_diff(spec, reader(files), {"NOPE": 1})
    files["config.py"] = files["config.py"].replace("LAYERS = 2\n", "")
    with pytest.raises(AgentError, match="LAYERS"):
        knob_diff(spec, reader(files), {"LAYERS": 4})
    with pytest.raises(AgentError, match="cannot read model.py"):
        knob_diff(spec, reader({"config.py": ""}), {"HIDDEN": 64})


def test_knob_hypothesis():
    assert (
        knob_hypothesis({"ENCODER": "gru", "LR": 0.003}, {"ENCODER": "meanpool", "LR": 0.001})
        == "Set ENCODER: 'meanpool' -> 'gru'; LR: 0.001 -> 0.003."
    )
    assert knob_hypothesis({"X": True}, {}) == "Set X: ? -> True."
