"""Loading the recipe's evaluator-owned functions (data preparation, scoring) on the host.

The evaluator folder is copied once per run into the run's scratch area and its
digest recorded; each use checks the digest again so that a trial which managed
to modify the copy at run time is caught (`tamper`) instead of trusted.
"""

from __future__ import annotations

import importlib.util
import inspect
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

from evaluators.hashing import tree_digest


class EvaluatorCodeError(Exception):
    """The evaluator folder or one of its entry points is broken (a recipe bug, not the agent's)."""


def snapshot_evaluator(source: Path, dest: Path) -> str:
    """Copy the pristine evaluator folder to `dest` and return its digest."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tree_digest(dest)


def load_entry(evaluator_dir: Path, entry: str) -> Callable:
    """Resolve `file.py:function` inside the evaluator folder."""
    file_part, sep, func_name = entry.partition(":")
    if not sep or not func_name:
        raise EvaluatorCodeError(f"evaluator entry {entry!r} must look like 'file.py:function'")
    module = _load_module(evaluator_dir, file_part)
    func = getattr(module, func_name, None)
    if not callable(func):
        raise EvaluatorCodeError(f"{evaluator_dir / file_part} has no function {func_name!r}")
    return func


def takes_keyword(func: Callable, name: str) -> bool:
    """Whether `func` accepts the keyword argument `name` (by name or through **kwargs)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD or (p.name == name and p.kind is not p.POSITIONAL_ONLY) for p in params)


def _load_module(evaluator_dir: Path, file_part: str) -> ModuleType:
    path = (evaluator_dir / file_part).resolve()
    if not path.is_file() or evaluator_dir.resolve() not in path.parents:
        raise EvaluatorCodeError(f"evaluator file {file_part!r} not found in {evaluator_dir}")
    name = f"_harness_evaluator_{abs(hash(str(path)))}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EvaluatorCodeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # Sibling helper modules of the evaluator must be importable while it loads.
    sys.path.insert(0, str(evaluator_dir))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken evaluator is reported, not crashed on
        raise EvaluatorCodeError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(evaluator_dir))
    return module
