"""Agent transcripts in the lineage: stored with the proposal, read back, checked by verify."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lineage_helpers import RunBuilder, edit_json, git, ledger_append, ledger_rewrite, show

from harness.types import Transcript, TrialRecord
from trajectories.lineage import Lineage, LineageError
from trajectories.transcripts import transcript_path, transcript_tid
from trajectories.verify import verify_lineage

SESSION = Transcript(format="jsonl", content=b'{"role": "user", "content": "brief"}\n{"role": "assistant"}\n')
OUTPUT = Transcript(format="text", content=b"step 1\n\xff\xfe not utf-8\nstep 2\n")


@pytest.fixture
def transcript_run(builder: RunBuilder) -> RunBuilder:
    """t0001 with a jsonl session, t0002 without a transcript, t0003 with text output."""
    builder.trial(score=0.6, transcript=SESSION)
    builder.trial(score=0.55)
    builder.trial(score=0.7, transcript=OUTPUT)
    return builder


def problems_of(run_dir: Path, tid: str) -> list[str]:
    return [p for p in verify_lineage(run_dir).problems if p.startswith(f"{tid}:")]


def test_paths_are_canonical() -> None:
    assert transcript_path("t0123", "text") == "transcripts/0001/t0123.txt"
    assert transcript_tid("transcripts/0001/t0123.jsonl") == "t0123"
    assert transcript_tid("transcripts/0000/t0123.jsonl") is None  # wrong shard
    assert transcript_tid("trials/0001/t0123.json") is None


def test_stored_with_the_proposal_and_read_back(transcript_run: RunBuilder) -> None:
    reopened = Lineage.open(transcript_run.run_dir)
    assert reopened.transcript("t0001") == SESSION
    assert reopened.transcript("t0003") == OUTPUT  # any bytes survive
    assert reopened.transcript("t0002") is None
    digest = reopened.record("t0003").trial.transcript
    assert digest is not None and digest.size == len(OUTPUT.content) and digest.format == "text"
    # Added by the proposed event itself, so the bytes are in the ledger chain from the start.
    proposed = git(transcript_run.run_dir, "log", "--format=%H", "--grep=^proposed t0003$", "refs/heads/ledger").split()
    assert len(proposed) == 1
    assert show(transcript_run.run_dir, f"{proposed[0]}:transcripts/0000/t0003.txt") == OUTPUT.content
    assert verify_lineage(transcript_run.run_dir).problems == []


def test_record_must_carry_the_digest_of_the_bytes(builder: RunBuilder) -> None:
    record = builder.propose(transcript=SESSION)
    builder.finish(record)
    lin = builder.lineage
    parent_commit = lin.record("t0001").trial.commit
    commit = lin.commit_trial(lin.tree_of(parent_commit), parent_commit, "h", {})
    bare = TrialRecord(trial=record.trial.model_copy(update={"id": "t0002", "commit": commit}))
    with pytest.raises(LineageError, match="transcript digest"):
        lin.record_proposed(bare, OUTPUT)  # digest names SESSION's bytes


def test_edited_transcript_is_tamper(transcript_run: RunBuilder) -> None:
    path = transcript_path("t0001", "jsonl")
    ledger_append(transcript_run.run_dir, {path: b'{"role": "assistant", "content": "rewritten"}\n'},
                  "fix transcript\n\nEvent: proposed\nTrial-Id: t0001\nTrial-Commit: " + "0" * 40 + "\n")
    found = problems_of(transcript_run.run_dir, "t0001")
    assert any("altered" in p for p in found), found
    assert any("changes its transcript after it was stored" in p for p in found), found
    with pytest.raises(LineageError, match="altered"):
        Lineage.open(transcript_run.run_dir).transcript("t0001")


def test_removed_transcript_is_tamper(transcript_run: RunBuilder) -> None:
    ledger_append(transcript_run.run_dir, {transcript_path("t0003", "text"): None}, "drop\n")
    found = problems_of(transcript_run.run_dir, "t0003")
    assert any("transcript transcripts/0000/t0003.txt is missing" in p for p in found), found
    assert any("deletes its transcript" in p for p in found), found


def test_history_rewrite_of_a_transcript_is_tamper(transcript_run: RunBuilder) -> None:
    """A rewritten chain (every commit re-made) still fails: the record's digest names the original."""
    ledger_rewrite(transcript_run.run_dir, transcript_path("t0001", "jsonl"), lambda data: data.replace(b"brief", b"other"))
    found = problems_of(transcript_run.run_dir, "t0001")
    assert found and all("altered" in p for p in found), found


def test_truncated_transcript_names_its_size(transcript_run: RunBuilder) -> None:
    """The size is checked on its own, beside the sha256."""
    path = transcript_path("t0001", "jsonl")
    ledger_rewrite(transcript_run.run_dir, path, lambda data: data[:5])
    found = problems_of(transcript_run.run_dir, "t0001")
    assert any("holds 5 bytes" in p for p in found), found


def test_transcript_no_record_names(transcript_run: RunBuilder) -> None:
    ledger_rewrite(transcript_run.run_dir, "trials/0000/t0001.json", edit_json(["trial", "transcript"], None))
    found = problems_of(transcript_run.run_dir, "t0001")
    assert any("stored but its record names none" in p for p in found), found


def test_transcript_added_later_is_named(transcript_run: RunBuilder) -> None:
    ledger_append(transcript_run.run_dir, {transcript_path("t0002", "text"): b"made up\n"}, "add\n")
    found = problems_of(transcript_run.run_dir, "t0002")
    assert any("outside its proposed event" in p for p in found), found


def harness(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def test_replay_prints_a_transcript_byte_for_byte(transcript_run: RunBuilder) -> None:
    run = str(transcript_run.run_dir)
    shown = harness("replay", run, "--trial", "t0003", "--transcript")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == OUTPUT.content
    none = harness("replay", run, "--trial", "t0002", "--transcript")
    assert none.returncode != 0 and b"has no transcript" in none.stderr
    unknown = harness("replay", run, "--trial", "t0042", "--transcript")
    assert unknown.returncode != 0 and b"no trial 't0042'" in unknown.stderr
    lonely = harness("replay", run, "--transcript")
    assert lonely.returncode != 0 and b"--trial ID and --transcript go together" in lonely.stderr


def test_replay_refuses_to_print_an_altered_transcript(transcript_run: RunBuilder) -> None:
    ledger_rewrite(transcript_run.run_dir, transcript_path("t0001", "jsonl"), lambda data: data + b"extra\n")
    shown = harness("replay", str(transcript_run.run_dir), "--trial", "t0001", "--transcript")
    assert shown.returncode == 2 and shown.stdout == b""
    assert b"altered" in shown.stderr and b"Traceback" not in shown.stderr


def test_report_names_the_stored_transcript(transcript_run: RunBuilder) -> None:
    from test_report import embedded_json

    from trajectories.report import build_report

    data = embedded_json(build_report(transcript_run.run_dir))
    digest = transcript_run.lineage.record("t0003").trial.transcript
    assert digest is not None
    assert data["details"][3]["tr"] == ["text", len(OUTPUT.content), digest.sha256, "transcripts/0000/t0003.txt"]
    assert "tr" not in data["details"][2]
    assert OUTPUT.content.decode("utf-8", "replace") not in json.dumps(data)  # the page links, never embeds
