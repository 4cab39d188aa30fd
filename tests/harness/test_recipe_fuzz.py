"""Fuzzed recipe specs: any recipe.toml either loads into a spec that a run can store, or
fails with `RecipeError` whose every line names the file and, for a bad value, the field."""

from __future__ import annotations

import datetime
import math
import re
import tempfile
import tomllib
from pathlib import Path

from hypothesis import event, example, given
from hypothesis import strategies as st

from harness.recipe_loader import RECIPES_ROOT, RecipeError, parse_recipe_file
from harness.types import RecipeSpec
from trajectories.lineage import dump_json

COLLISION = tomllib.loads((RECIPES_ROOT / "collision" / "recipe.toml").read_text())
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def toml_string(text: str) -> str:
    return '"' + "".join(_ESCAPES.get(c, f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 127 else c)
                         for c in text) + '"'


def toml_value(value: object) -> str:
    """TOML for a value (tables inline), enough to write any data tomllib reads back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict), value
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(data: dict) -> str:
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in data.items())


texts = st.text(st.characters(exclude_categories=("Cs",)) | st.sampled_from("\0\n\t\\\"*?/."), max_size=20)
globs = st.sampled_from(["", "/abs/*.py", "../x.py", "a/../b.py", "**", "*.py", "[", "src\\\\x.py", "a//b", "./model.py"])
scalars = st.one_of(
    st.booleans(), st.integers(), st.integers(min_value=2**64), st.integers(max_value=-(2**64)),
    st.floats(), texts, globs, st.dates(), st.datetimes(), st.times(),
)
toml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def same_kind(value: object) -> st.SearchStrategy:
    """Another value of the same TOML type: what a careless edit of the file gives."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers() | st.integers(min_value=2**63) | st.sampled_from([0, -1, 1])
    if isinstance(value, float):
        return st.floats() | st.sampled_from([0.0, -0.0, 1e308, 5e-324])
    if isinstance(value, str):
        return texts | globs | st.sampled_from([value.upper(), value + "*", " " + value, value + "/"])
    if isinstance(value, list):
        return st.lists(st.sampled_from(value) if value else toml_values, max_size=4) if value else st.just([])
    return st.just(value)


def paths_in(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside nested tables and arrays."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_in(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths_in(item, prefix + (i,))
    return found


@st.composite
def mutated_recipes(draw: st.DrawFn) -> tuple[dict, tuple]:
    """The collision recipe with one value replaced, one key deleted, or one unknown key added."""
    data = tomllib.loads(to_toml(COLLISION))  # a deep copy
    path = draw(st.sampled_from(paths_in(data)))
    *head, last = path
    parent = data
    for part in head:
        parent = parent[part]
    action = draw(st.sampled_from(["same_kind", "same_kind", "replace", "delete", "add"]))
    if action == "same_kind":
        parent[last] = draw(same_kind(parent[last]))
    elif action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        key = draw(texts.filter(lambda k: k not in parent))
        parent[key] = draw(toml_values)
        path = tuple(head) + (key,)
    else:
        parent[last] = draw(toml_values)
    return data, path


def load(text: bytes | str) -> RecipeSpec | list[str]:
    """The spec (checked storable), or the error's lines (checked to name the file)."""
    path = Path(tempfile.mkdtemp(prefix="recipe-fuzz-")) / "recipe.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        spec = parse_recipe_file(path)
    except RecipeError as exc:
        lines = str(exc).split("\n")
        assert all(line.startswith(f"{path}: ") and len(line) < 600 for line in lines), lines
        return [line[len(f"{path}: "):] for line in lines]
    # A run stores its recipe in run.json: it must survive that unchanged.
    assert RecipeSpec.model_validate_json(dump_json(spec)) == spec
    return spec


def nested(depth: int) -> dict:
    """A table holding a table ... `depth` deep."""
    value: dict = {}
    for _ in range(depth):
        value = {"t": value}
    return value


def field_of(line: str) -> str:
    return line.split(": ", 1)[0]


@given(mutated_recipes())
@example((dict(COLLISION, budgets=dict(COLLISION["budgets"], train_wallclock_s=math.inf)), ("budgets", "train_wallclock_s")))
@example((dict(COLLISION, gates=[{"metric": "ap", "op": ">=", "threshold": math.nan}]), ("gates", 0, "threshold")))
@example((dict(COLLISION, fidelities={"full": {"env": {"A=B": "1"}}}), ("fidelities", "full", "env", "A=B")))
@example((dict(COLLISION, phases={"train": "python\0 train.py", "eval": "true"}), ("phases", "train")))
@example((dict(COLLISION, sandbox={"image": nested(17)}), ("sandbox", "image")))
def test_a_mutated_recipe_loads_or_names_the_field(mutated: tuple[dict, tuple]) -> None:
    data, path = mutated
    result = load(to_toml(data))
    event("loads" if isinstance(result, RecipeSpec) else "refused")
    if isinstance(result, RecipeSpec):
        return
    fields = [field_of(line) for line in result]
    dotted = ".".join(str(p) if isinstance(p, int) or re.fullmatch(r"[A-Za-z0-9_-]+", p) else repr(p) for p in path)
    # The field, a value inside it, one of the tables holding it (a missing or unknown key
    # is reported there), or the recipe as a whole for the rules that tie fields together.
    assert any(f == "(top level)" or f == dotted or f.startswith(dotted + ".") or dotted.startswith(f + ".")
               for f in fields), (dotted, result)


@given(st.dictionaries(texts | st.sampled_from(sorted(COLLISION)), toml_values, max_size=6))
def test_any_toml_document_loads_or_names_the_field(data: dict) -> None:
    result = load(to_toml(data))
    if isinstance(result, list):
        assert all(re.match(r"\S.*: \S", line) for line in result), result


@given(st.binary(max_size=300) | texts.map(lambda t: to_toml(COLLISION)[: len(t) * 40] + t))
@example(b"\xff\xfe name = 1")
@example(b"x = " + b"1" * 5000)
@example(b"x = " + b"[" * 5000 + b"]" * 5000)
def test_any_bytes_load_or_name_the_file(data: bytes | str) -> None:
    result = load(data)
    assert isinstance(result, list) and result  # never a recipe: the bytes are cut or random
