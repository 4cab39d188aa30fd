"""Fuzzed diffs through the loop's two gates, `check_diff` then `apply_diff` on a real
lineage: each ends as a legality label with a reason, an `ApplyError`, or a new tree that
differs from the parent only in editable files, as regular files. Never another exception,
never a protected file changed."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from evaluators.legality import check_diff
from harness.types import Budgets, EvaluatorSpec, Label, MetricSpec, Phases, RecipeSpec
from trajectories.lineage import ApplyError, Lineage, trial_trailers

SPEC = RecipeSpec(
    name="toy",
    description="A toy recipe for the diff fuzz tests.",
    editable=["model.py", "src/**", "conf/*.toml"],
    protected=["src/frozen.py"],
    phases=Phases(train="python train.py", eval="python {eval}/score.py"),
    evaluator=EvaluatorSpec(prepare="prep.py:prepare", score="score.py:score"),
    metric=MetricSpec(name="acc", direction="maximize"),
    budgets=Budgets(train_wallclock_s=60, eval_wallclock_s=60, max_diff_lines=50),
)
SOURCE = {
    "model.py": "".join(f"LAYER_{i} = {i}\n" for i in range(12)),
    "train.py": "import model\nprint('train')\n",
    "run.sh": "#!/bin/sh\npython train.py\n",
    "src/util.py": "def f(x):\n    return x + 1\n",
    "src/frozen.py": "SECRET = 1\n",
    "src/tool.sh": "#!/bin/sh\necho tool\n",
    "conf/a.toml": "lr = 0.1\n",
    "data/README": "no data here\n",
}
EXECUTABLE = {"run.sh", "src/tool.sh"}
LINK = ("src/link", "../train.py")
"""A symlink in the parent tree (git can hold one even though snapshots skip them)."""


@pytest.fixture(scope="module")
def lineage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lineage, str, dict[str, tuple[str, str]]]:
    """A lineage whose trial t0001 holds SOURCE plus LINK; its commit and files (path -> mode, blob)."""
    root = tmp_path_factory.mktemp("diff-fuzz")
    source = root / "src"
    for path, text in SOURCE.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text(text)
        os.chmod(source / path, 0o755 if path in EXECUTABLE else 0o644)
    store = Lineage.init(root / "run")
    base = store.commit_baseline(source, "baseline", trial_trailers("t0000", None, "baseline", None, "full"))
    blob = store.git.write_blob(LINK[1].encode())
    index = {"GIT_INDEX_FILE": str(root / "index")}
    store.git.run("read-tree", store.tree_of(base), env=index)
    store.git.run("update-index", "--add", "--cacheinfo", f"120000,{blob},{LINK[0]}", env=index)
    tree = store.git.text("write-tree", env=index).strip()
    commit = store.commit_trial(tree, base, "add a link", trial_trailers("t0001", "t0000", "test", None, "full"))
    return store, commit, store.files(commit)


def edit_diff(path: str, old: str, new: str) -> list[str]:
    """Lines of a git-style diff of one file (no trailing newline handling: fragments get added)."""
    body = [line.rstrip("\n") for line in difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}", n=2)]
    return [f"diff --git a/{path} b/{path}", *body]


TRICKY_NAMES = [
    "../train.py", "/etc/passwd", ".git/config", "src/../train.py", "src/link/x.py", "src/link", "src/frozen.py",
    "src//util.py", "./model.py", "src/.GIT/x", "src/.git./x", "model.py\0x", "src/ü.py", "src/a b.py",
    '"src/\\303\\274.py"', '"src/a\\tb.py"', "C:/x.py", "src\\util.py", "train.py", "eval/score.py", "model.py ",
    "src/new.py", "conf/new.toml", "data/README",
]
HEADER_LINES = [
    "new file mode 100644", "new file mode 100755", "new file mode 120000", "new file mode 160000",
    "deleted file mode 100644", "old mode 100644", "new mode 100755", "index 1111111..2222222 100755",
    "index 1111111..2222222 120000", "similarity index 90%", "rename from src/util.py", "rename to train.py",
    "copy from train.py", "copy to src/x.py", "GIT binary patch", "literal 0", "Binary files a/x and b/x differ",
]
texts = st.text(st.characters(exclude_categories=("Cs",)) | st.sampled_from("\0\r\n\t\\\"/.\udc80\ud800"), max_size=30)


@st.composite
def mutated_diffs(draw: st.DrawFn) -> str:
    """A valid diff of an editable (or not) file, with headers, names, hunks and line ends tampered with."""
    path = draw(st.sampled_from(sorted(SOURCE)))
    old = SOURCE[path]
    lines = old.splitlines(keepends=True)
    at = draw(st.integers(0, len(lines) - 1))
    lines[at] = draw(texts) + "\n"
    out = edit_diff(path, old, "".join(lines))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        kind = draw(st.sampled_from(["name", "header", "drop", "dup", "count", "byte"]))
        i = draw(st.integers(0, len(out) - 1))
        if kind == "name":
            name = draw(st.sampled_from(TRICKY_NAMES) | texts)
            prefix = draw(st.sampled_from(["diff --git", "---", "+++"]))
            j = next((k for k, line in enumerate(out) if line.startswith(prefix)), 0)
            out[j] = (f"diff --git a/{name} b/{name}" if prefix == "diff --git"
                      else f"{prefix} {draw(st.sampled_from(['a/', 'b/', '']))}{name}")
        elif kind == "header":
            out.insert(1, draw(st.sampled_from(HEADER_LINES)))
        elif kind == "drop" and len(out) > 1:
            del out[i]
        elif kind == "dup":
            out.insert(i, out[i])
        elif kind == "count":
            out[i] = draw(st.sampled_from(["@@ -1 +1 @@", "@@ -0,0 +1,2 @@", "@@ -1,99 +1,99 @@", "@@ -3,0 +4 @@"]))
        else:
            out[i] = out[i] + draw(st.sampled_from(["\r", "\0", "\t", " \\", "\x1b"]))
    end = draw(st.sampled_from(["\n"] * 4 + ["\r\n"]))
    return end.join(out) + draw(st.sampled_from([end, ""]))


fragments = st.lists(
    st.sampled_from([f"diff --git a/{n} b/{n}" for n in TRICKY_NAMES[:8]] + [f"--- a/{n}" for n in TRICKY_NAMES[:8]]
                    + [f"+++ b/{n}" for n in TRICKY_NAMES[:8]] + HEADER_LINES
                    + ["--- a/model.py", "+++ b/model.py", "--- /dev/null", "+++ /dev/null", "@@ -1 +1 @@",
                       "@@ -0,0 +1 @@", "-LAYER_0 = 0", "+LAYER_0 = 9", " LAYER_1 = 1", "\\ No newline at end of file"])
    | texts,
    max_size=12,
).map("\n".join)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(diff=mutated_diffs())
@example(diff="diff --git a/src/link/x.py b/src/link/x.py\nnew file mode 100644\n--- /dev/null\n+++ b/src/link/x.py\n"
              "@@ -0,0 +1 @@\n+x = 1\n")
@example(diff="diff --git a/src/new.sh b/src/new.sh\nnew file mode 100755\n--- /dev/null\n+++ b/src/new.sh\n"
              "@@ -0,0 +1 @@\n+echo\n")
@example(diff="--- a/model.py\n+++ b/model.py\n@@ -1 +1 @@\n-LAYER_0 = 0\n+LAYER_0 = '\0'\n")
@example(diff="--- a/model.py\r\n+++ b/model.py\r\n@@ -1 +1 @@\r\n-LAYER_0 = 0\r\n+LAYER_0 = 9\r\n")
def test_a_diff_is_refused_with_a_reason_or_changes_only_editable_files(
    diff: str, lineage: tuple[Lineage, str, dict[str, tuple[str, str]]]
) -> None:
    through_both_gates(diff, lineage)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(diff=fragments | texts)
def test_any_text_is_refused_with_a_reason_or_changes_only_editable_files(
    diff: str, lineage: tuple[Lineage, str, dict[str, tuple[str, str]]]
) -> None:
    through_both_gates(diff, lineage)


def through_both_gates(diff: str, lineage: tuple[Lineage, str, dict[str, tuple[str, str]]]) -> None:
    """What the loop does with a proposal's diff, checked at every exit."""
    store, commit, before = lineage
    modes = {path: mode for path, (mode, _blob) in before.items()}
    legality = check_diff(diff, SPEC, modes)
    if legality.label is not None:
        assert legality.label in (Label.malformed_proposal, Label.illegal_edit) and legality.reason.strip()
        event(legality.label.value)
        return
    try:
        tree = store.apply_diff(commit, diff)
    except ApplyError as exc:
        assert exc.message.strip()
        event("apply_failed")
        return
    event("applied")
    after = store.files(tree)
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert all(SPEC.is_editable(p) for p in changed), (changed, diff)
    assert all(after[p][0] == "100644" for p in changed if p in after and before.get(p, ("100644",))[0] != after[p][0]), \
        (changed, diff)
    assert set(legality.files) >= changed, (legality.files, changed)
