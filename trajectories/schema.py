"""JSON Schemas of the ledger files, exported from the core types.

`trial_record.schema.json` and `run_info.schema.json` next to this module are
committed copies of `record_schema()` / `run_schema()`; a test keeps them in
sync (regenerate with `python -m trajectories.schema`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import ValidationError

from harness.types import RunInfo, TrialRecord

HERE = Path(__file__).parent
RECORD_SCHEMA_FILE = HERE / "trial_record.schema.json"
RUN_SCHEMA_FILE = HERE / "run_info.schema.json"


class RecordError(ValueError):
    """Data that does not validate; the message names every failing field path."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


def record_schema() -> dict[str, Any]:
    """JSON Schema of a trial record (`trials/<shard>/<id>.json`)."""
    return TrialRecord.model_json_schema()


def run_schema() -> dict[str, Any]:
    """JSON Schema of the run metadata (`run.json`)."""
    return RunInfo.model_json_schema()


def schema_text(schema: dict[str, Any]) -> str:
    """The bytes of a committed schema file (stable form)."""
    return json.dumps(schema, sort_keys=True, indent=1) + "\n"


@lru_cache(maxsize=None)
def _validator(kind: str) -> jsonschema.protocols.Validator:
    schema = record_schema() if kind == "record" else run_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _path(parts) -> str:  # noqa: ANN001
    return ".".join(str(p) for p in parts) or "(root)"


def _leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The errors that explain an `anyOf`/`oneOf` failure: those of the branch that got
    deepest into the data (so `outcome.score` is named rather than `outcome`)."""
    if not error.context:
        return [error]
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    best = max(branches.values(), key=lambda errs: max(len(e.absolute_path) for e in errs))
    if max(len(e.absolute_path) for e in best) <= len(error.absolute_path):
        return [error]
    return [leaf for sub in best for leaf in _leaves(sub)]


def _check(kind: str, data: Any) -> None:
    errors = [leaf for e in _validator(kind).iter_errors(data) for leaf in _leaves(e)]
    if errors:
        errors.sort(key=lambda e: [str(p) for p in e.absolute_path])
        raise RecordError([f"{_path(e.absolute_path)}: {_short(e.message)}" for e in errors])


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _pydantic_errors(exc: ValidationError) -> RecordError:
    return RecordError([f"{_path(e['loc'])}: {e['msg']}" for e in exc.errors()])


def validate_record(data: dict[str, Any]) -> TrialRecord:
    """Check a record with the JSON Schema (errors name the field path), then pydantic."""
    _check("record", data)
    try:
        return TrialRecord.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_errors(exc) from exc


def validate_run_info(data: dict[str, Any]) -> RunInfo:
    """Check run metadata with the JSON Schema, then pydantic."""
    _check("run", data)
    try:
        return RunInfo.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_errors(exc) from exc


def write_schema_files() -> None:
    RECORD_SCHEMA_FILE.write_text(schema_text(record_schema()))
    RUN_SCHEMA_FILE.write_text(schema_text(run_schema()))


if __name__ == "__main__":
    write_schema_files()
    print(f"wrote {RECORD_SCHEMA_FILE} and {RUN_SCHEMA_FILE}")
