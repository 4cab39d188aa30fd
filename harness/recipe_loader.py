"""Find recipe folders and load their `recipe.toml` into a validated `RecipeSpec`.

Validation runs in two steps so that errors read well: the TOML data is first
checked against the JSON Schema exported from `RecipeSpec` (each error names the
file, the field path and what was expected), then pydantic builds the model and
runs the cross-field checks.
"""

from __future__ import annotations

import json
import tomllib
from functools import lru_cache
from pathlib import Path

import jsonschema
from pydantic import ValidationError

from harness.types import Frozen, RecipeSpec

RECIPES_ROOT = Path(__file__).resolve().parent.parent / "recipes"
DEFAULT_RECIPE = "collision"


class RecipeError(Exception):
    """A recipe that cannot be found or does not validate; the message says where and why."""


class LoadedRecipe(Frozen):
    spec: RecipeSpec
    """The validated spec."""
    folder: Path
    """The recipe folder (holding recipe.toml, the source and the evaluator)."""

    @property
    def evaluator_dir(self) -> Path:
        return self.folder / self.spec.evaluator.path

    @property
    def source_dir(self) -> Path:
        source = self.spec.source
        if source.type != "local":
            raise RecipeError(
                f"recipe {self.spec.name!r} takes its source from git ({source.url}); "
                "git sources are cloned by the recipe cache, which this command does not use"
            )
        return self.folder / source.path


@lru_cache(maxsize=1)
def recipe_json_schema() -> dict:
    """JSON Schema of recipe.toml, exported from the pydantic model."""
    return RecipeSpec.model_json_schema()


def available_recipes() -> list[str]:
    """Names of the recipes shipped with the harness."""
    return sorted(p.parent.name for p in RECIPES_ROOT.glob("*/recipe.toml"))


def resolve_recipe_folder(name_or_path: str) -> Path:
    """A recipe name (shipped recipe) or a path to a folder holding recipe.toml."""
    candidate = Path(name_or_path)
    if (candidate / "recipe.toml").is_file():
        return candidate.resolve()
    shipped = RECIPES_ROOT / name_or_path
    if (shipped / "recipe.toml").is_file():
        return shipped
    known = ", ".join(available_recipes()) or "none"
    raise RecipeError(
        f"no recipe named {name_or_path!r}: not a shipped recipe (known: {known}) "
        "and not a folder holding recipe.toml"
    )


def load_recipe(name_or_path: str) -> LoadedRecipe:
    folder = resolve_recipe_folder(name_or_path)
    spec = parse_recipe_file(folder / "recipe.toml")
    recipe = LoadedRecipe(spec=spec, folder=folder)
    for needed in (recipe.evaluator_dir,):
        if not needed.is_dir():
            raise RecipeError(f"{folder / 'recipe.toml'}: evaluator.path: folder {needed} does not exist")
    if spec.source.type == "local" and not recipe.source_dir.is_dir():
        raise RecipeError(f"{folder / 'recipe.toml'}: source.path: folder {recipe.source_dir} does not exist")
    return recipe


def parse_recipe_file(path: Path) -> RecipeSpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_recipe_data(data, origin=str(path))


def parse_recipe_data(data: dict, origin: str) -> RecipeSpec:
    validator = jsonschema.Draft202012Validator(recipe_json_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise RecipeError("\n".join(_schema_message(origin, e) for e in errors[:10]))
    try:
        return RecipeSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"{origin}: {field}: {err['msg']}")
        raise RecipeError("\n".join(lines)) from None


def _schema_message(origin: str, error: jsonschema.ValidationError) -> str:
    field = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    expected = _expected(error)
    return f"{origin}: {field}: {expected}"


def _expected(error: jsonschema.ValidationError) -> str:
    got = json.dumps(error.instance, default=str)
    if len(got) > 80:
        got = got[:77] + "..."
    if error.validator == "required":
        return error.message.replace("is a required property", "is required but missing")
    if error.validator == "additionalProperties":
        return f"unknown field(s): {error.message.split('(')[-1].rstrip(')')}"
    if error.validator == "type":
        return f"expected {error.validator_value}, got {got}"
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        return f"expected a number {word[error.validator]} {error.validator_value}, got {got}"
    if error.validator == "enum":
        return f"expected one of {error.validator_value}, got {got}"
    if error.validator == "pattern":
        return f"expected text matching {error.validator_value!r}, got {got}"
    return f"{error.message}"
