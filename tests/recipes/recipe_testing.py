"""Helpers shared by the recipe tests: load evaluator files, the spec, folder digests."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import tomllib
from pathlib import Path

import jsonschema

from harness.types import RecipeSpec


def load_module(name: str, path: Path):
    """Import an evaluator (or tool) file by path: the eval folder is not a package."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    old, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in the evaluator folder
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = old
    return module


def load_spec(recipe: Path) -> RecipeSpec:
    """recipe.toml checked against the exported JSON Schema, then built by pydantic."""
    data = tomllib.loads((recipe / "recipe.toml").read_text())
    jsonschema.validate(data, RecipeSpec.model_json_schema())
    return RecipeSpec.model_validate(data)


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder`, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
