"""RecordBlobs: a proposed record is settled by its outcome record only when it is byte for byte
the canonical record of that outcome record's trial."""

from __future__ import annotations

import hashlib

from lineage_helpers import RunBuilder

from harness.types import TrialRecord
from trajectories.lineage import dump_json
from trajectories.record_blobs import RecordBlobs, canonical_bytes


def sha_of(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()  # any unique name: these blobs are never read from git


def blobs_with(small_run: RunBuilder, *datas: bytes) -> RecordBlobs:
    blobs = RecordBlobs(small_run.lineage.git)
    blobs.blobs.update({sha_of(d): d for d in datas})
    return blobs


def test_canonical_bytes_are_dump_json(small_run: RunBuilder) -> None:
    final = small_run.lineage.record("t0003")
    for record in (final, TrialRecord(trial=final.trial)):
        text, trial_text = canonical_bytes(record.model_dump(mode="json", exclude_defaults=True))
        assert text == dump_json(record)
        assert (trial_text is None) == (record.outcome is None)


def test_a_canonical_proposed_record_is_settled(small_run: RunBuilder) -> None:
    final = small_run.lineage.record("t0003")
    proposed, outcome = dump_json(TrialRecord(trial=final.trial)), dump_json(final)
    blobs = blobs_with(small_run, proposed, outcome)
    assert blobs.defer("t0003", sha_of(proposed), "proposed event x")
    assert blobs.parse(sha_of(outcome), proposed=sha_of(proposed)) == final
    assert blobs.unsettled(sha_of(proposed)) == [] and blobs.deferred == {}
    assert blobs.outcome_only(sha_of(proposed), sha_of(outcome))


def test_a_respaced_proposed_record_is_not_settled(small_run: RunBuilder) -> None:
    final = small_run.lineage.record("t0003")
    proposed = dump_json(TrialRecord(trial=final.trial)).replace(b'"fidelity": ', b'"fidelity":  ', 1)
    outcome = dump_json(final)
    blobs = blobs_with(small_run, proposed, outcome)
    assert blobs.defer("t0003", sha_of(proposed), "proposed event x")
    blobs.parse(sha_of(outcome), proposed=sha_of(proposed))
    assert blobs.unsettled(sha_of(proposed)) == [("t0003", "proposed event x")]
    assert not blobs.outcome_only(sha_of(proposed), sha_of(outcome))


def test_a_settled_record_added_for_another_trial_is_still_checked(small_run: RunBuilder) -> None:
    final = small_run.lineage.record("t0003")
    proposed, outcome = dump_json(TrialRecord(trial=final.trial)), dump_json(final)
    blobs = blobs_with(small_run, proposed, outcome)
    blobs.defer("t0003", sha_of(proposed), "event a")
    blobs.defer("t0002", sha_of(proposed), "event b")  # the same bytes stored at another trial's path
    blobs.parse(sha_of(outcome), proposed=sha_of(proposed))
    assert blobs.unsettled(sha_of(proposed)) == [("t0002", "event b")]


def test_a_record_not_shaped_as_a_proposed_one_is_not_deferred(small_run: RunBuilder) -> None:
    outcome = dump_json(small_run.lineage.record("t0003"))
    blobs = blobs_with(small_run, outcome)
    assert not blobs.defer("t0003", sha_of(outcome), "proposed event x")
    assert not blobs.defer("t0003", "0" * 40, "proposed event x")  # missing
