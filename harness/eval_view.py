"""The eval view: the evaluator files that the eval phase sees as its `{eval}` folder.

Trial code runs inside the eval phase (the evaluator's `predict.py` imports the
trial's model), so the trial can read everything the eval view holds. The view
is therefore an allow-list: exactly the files `evaluator.eval_files` names
(unset: the files `phases.eval` names as `{eval}/<file>`), copied one by one
from the run's evaluator copy. Whatever else the evaluator folder holds (the
`prepare` code, a corpus the held-out split is cut from, the labels'
generator) never enters a sandbox.

`view_problems` says why a listed file is not code: `harness recipe check`
fails on it and `harness run` refuses to start. A listed file must be Python
source (`.py`), UTF-8 text of at most `MAX_FILE_BYTES`, whose string literals
hold at most `MAX_LITERAL_BYTES` (data pasted into code is still data), and
not the file of the `prepare` entry (with fixed seeds it makes the held-out
labels again).
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

from harness.types import RecipeSpec

MAX_FILE_BYTES = 64 * 1024
"""Largest eval-view file; the shipped recipes' largest is under 8 KB."""
MAX_LITERAL_BYTES = 16 * 1024
"""Most bytes of string and bytes literals one eval-view file may hold."""
_EVAL_REFERENCE = re.compile(r"\{eval\}/([^\s'\"]+)")


def view_files(spec: RecipeSpec) -> list[str]:
    """The evaluator-relative paths the eval view holds."""
    if spec.evaluator.eval_files is not None:
        return list(dict.fromkeys(spec.evaluator.eval_files))
    return sorted(set(_EVAL_REFERENCE.findall(spec.phases.eval)))


def path_problem(evaluator_dir: Path, rel: str) -> str | None:
    """Why `rel` is not a plain file inside `evaluator_dir` (absolute, `..`, a symlink
    leading out, missing); None when it is one."""
    if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        return f"{rel!r} must be a relative path inside the evaluator folder"
    root = evaluator_dir.resolve()
    target = (evaluator_dir / rel).resolve()
    if target != root and root not in target.parents:
        return f"{rel!r} leads outside the evaluator folder (to {target})"
    if not target.is_file():
        return f"{rel!r} is not a file of the evaluator folder"
    return None


def view_problems(spec: RecipeSpec, evaluator_dir: Path) -> list[str]:
    """Why the eval view would expose something other than evaluator code (empty: it does not)."""
    files = view_files(spec)
    if not files:
        return ["the eval view is empty: list the eval phase's code in evaluator.eval_files"]
    prepare_file = (evaluator_dir / spec.evaluator.prepare.partition(":")[0]).resolve()
    problems = []
    for rel in files:
        problem = path_problem(evaluator_dir, rel)
        if problem is not None:
            problems.append(problem)
            continue
        path = (evaluator_dir / rel).resolve()
        if path == prepare_file:
            problems.append(f"{rel!r} is the prepare entry's file, which makes the held-out data")
            continue
        problem = _content_problem(path)
        if problem is not None:
            problems.append(f"{rel!r} {problem}")
    return problems


def _content_problem(path: Path) -> str | None:
    if path.suffix != ".py":
        return "is not Python source (.py): a data file in the eval view is readable by trial code"
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        return f"holds {size} bytes, more than the {MAX_FILE_BYTES} an eval-view file may (data?)"
    raw = path.read_bytes()
    if b"\0" in raw:
        return "holds NUL bytes: binary data, not source"
    try:
        tree = ast.parse(raw.decode("utf-8"))
    except (UnicodeDecodeError, SyntaxError, ValueError) as exc:
        return f"is not valid UTF-8 Python source ({type(exc).__name__})"
    literal_bytes = sum(
        len(node.value) for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))
    )
    if literal_bytes > MAX_LITERAL_BYTES:
        return (f"holds {literal_bytes} bytes of string literals, more than the {MAX_LITERAL_BYTES} "
                "an eval-view file may (data pasted into code)")
    return None


def build_view(spec: RecipeSpec, evaluator_copy: Path, dest: Path) -> Path:
    """Copy the listed files (their bytes, never a link) from the run's evaluator copy to `dest`."""
    dest.mkdir(parents=True)
    for rel in view_files(spec):
        problem = path_problem(evaluator_copy, rel)
        if problem is not None:
            raise ValueError(f"evaluator.eval_files: {problem}")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile((evaluator_copy / rel).resolve(), target)
    return dest


def label_copies(labels_dir: Path, shown_dirs: list[Path]) -> list[str]:
    """Files of the held-out labels folder whose bytes a phase also sees: a file of the same
    content in one of `shown_dirs` (held-out inputs, train split). Only same-size files are read."""
    import hashlib

    def digest(path: Path) -> str:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()

    labels = {p: p.stat().st_size for p in sorted(labels_dir.rglob("*")) if p.is_file() and not p.is_symlink()}
    sizes = {size for size in labels.values() if size > 0}
    shown: dict[tuple[int, str], Path] = {}
    for folder in shown_dirs:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file() and path.stat().st_size in sizes:
                shown.setdefault((path.stat().st_size, digest(path)), path)
    copies = []
    for path, size in labels.items():
        if size in sizes:
            twin = shown.get((size, digest(path)))
            if twin is not None:
                copies.append(f"{path.relative_to(labels_dir)} = {twin}")
    return copies
