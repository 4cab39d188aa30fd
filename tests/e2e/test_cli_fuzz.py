"""Fuzzed files through the CLI as a user runs it: a bad proposals file or a file that is
not the import format ends with exit 2, one `error:` line naming the file, no traceback,
and nothing written. Few examples: each one starts the harness in a subprocess."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from conftest import harness
from harness.agents.base import AgentError
from harness.agents.scripted import load_proposals
from trajectories.importers import FORMATS, ImportFormatError, import_run

pytestmark = pytest.mark.e2e

proposal_lines = st.one_of(
    st.binary(max_size=100),
    st.lists(
        st.one_of(
            st.text(max_size=30),
            st.dictionaries(st.sampled_from(["hypothesis", "diff", "parent", "specialist", "expected_delta", "x"]),
                            st.none() | st.integers() | st.floats() | st.text(max_size=20), max_size=5).map(json.dumps),
        ),
        min_size=1, max_size=3,
    ).map("\n".join).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def assert_one_error_line(proc, path: Path) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert str(path) in errors[0], errors[0]
    return errors[0]


@settings(max_examples=2)
@given(proposal_lines)
@example(b'{"hypothesis": "h\\ud800", "diff": "d"}')  # was a traceback once the run recorded the trial
def test_run_with_a_bad_proposals_file_prints_one_error_line(data: bytes) -> None:
    folder = Path(tempfile.mkdtemp(prefix="cli-fuzz-"))
    path = folder / "proposals.jsonl"
    path.write_bytes(data)
    try:
        load_proposals(path)
    except AgentError as exc:
        expected = str(exc)
    else:
        assume(False)  # a valid file would start a real run
    proc = harness("run", "--agent", "scripted", "--proposals", path, "--trials", "1", "--out", folder / "runs",
                   timeout=120)
    assert assert_one_error_line(proc, path) == f"error: {expected}"
    assert not (folder / "runs").exists()


NOT_A_TABLE = {
    "auto-research-recipes": st.binary(max_size=120),
    "autoresearch": st.sampled_from(["commit\tval_bpb\tmemory_gb\tstatus\tdescription", "a\tb\ta", ""])
    .map(str.encode),  # this format reads any rows without a header: only no rows, or a bad header, fails
}


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=2)
@given(data=st.data())
@example(data=None)
def test_import_of_a_file_not_in_the_format_prints_one_error_line(fmt: str, data: st.DataObject | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="cli-fuzz-"))
    path = folder / "results.tsv"
    raw = b"" if data is None else data.draw(NOT_A_TABLE[fmt] | st.text(" \t\r\n", max_size=8).map(str.encode))
    path.write_bytes(raw + data.draw(st.sampled_from([b"", b"\n", b"\r\n"])) if data is not None else raw)
    try:
        import_run(fmt, path, folder / "probe")
    except ImportFormatError:
        pass
    else:
        assume(False)  # the file imports: that is what the import fuzz tests check
    proc = harness("import", fmt, path, "--out", folder / "run", timeout=120)
    assert_one_error_line(proc, path)
    assert not (folder / "run").exists()
