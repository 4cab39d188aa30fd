"""The exported JSON Schemas and record validation."""

from __future__ import annotations

import json

import pytest
from lineage_helpers import RunBuilder

from trajectories.schema import (
    RECORD_SCHEMA_FILE,
    RUN_SCHEMA_FILE,
    RecordError,
    record_schema,
    run_schema,
    schema_text,
    validate_record,
    validate_run_info,
)


def test_committed_schema_files_in_sync() -> None:
    assert json.loads(RECORD_SCHEMA_FILE.read_text()) == record_schema()
    assert json.loads(RUN_SCHEMA_FILE.read_text()) == run_schema()
    assert RECORD_SCHEMA_FILE.read_text() == schema_text(record_schema())
    assert RUN_SCHEMA_FILE.read_text() == schema_text(run_schema())


def test_stored_records_validate(small_run: RunBuilder) -> None:
    for rec in small_run.lineage.records():
        data = json.loads(rec.model_dump_json())
        assert validate_record(data) == rec
    assert validate_run_info(json.loads(small_run.info.model_dump_json())) == small_run.info


def test_schema_errors_name_the_field(small_run: RunBuilder) -> None:
    data = json.loads(small_run.lineage.record("t0001").model_dump_json())
    data["trial"]["proposal"]["hypothesis"] = 3
    data["outcome"]["score"] = "high"
    data["trial"]["surprise"] = True
    with pytest.raises(RecordError) as err:
        validate_record(data)
    text = str(err.value)
    assert "trial.proposal.hypothesis" in text and "outcome.score" in text
    assert any(e.startswith("trial:") and "surprise" in e for e in err.value.errors)


def test_pydantic_checks_after_the_schema(small_run: RunBuilder) -> None:
    """A status that contradicts its label passes the JSON Schema but not the model."""
    data = json.loads(small_run.lineage.record("t0001").model_dump_json())
    data["outcome"]["status"] = "fail"
    with pytest.raises(RecordError, match="outcome"):
        validate_record(data)
