"""Anchor lines: their format, reading them from files, and git's SSH signing of them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from trajectories.anchor import Anchor, AnchorError, parse_anchor, read_anchors, sign_anchor, signature_problem

LINE = "harness-anchor/1 run=r1 ledger=" + "ab" * 20 + " trials=12 at=2026-12-03T06:40:00Z"


def test_a_line_round_trips():
    anchor = parse_anchor(LINE)
    assert (anchor.run, anchor.ledger, anchor.trials, anchor.sig) == ("r1", "ab" * 20, 12, None)
    assert anchor.line() == LINE and anchor.payload() == LINE


@pytest.mark.parametrize("line, message", [
    ("anchor run=r1", "must start with 'harness-anchor/1'"),
    (LINE.replace(" trials=12", ""), "missing fields \\['trials'\\]"),
    (LINE + " colour=red", "unknown fields \\['colour'\\]"),
    (LINE + " run=r2", "cannot read field 'run=r2'"),
    (LINE.replace("ab" * 20, "xyz"), "ledger"),
    (LINE.replace("trials=12", "trials=-1"), "trials"),
    (LINE.replace("06:40:00Z", "06:40"), "at"),
])
def test_malformed_lines_are_named(line, message):
    with pytest.raises(AnchorError, match=message):
        parse_anchor(line)


def test_a_file_of_anchors_skips_comments_and_names_a_bad_line(tmp_path):
    path = tmp_path / "anchors.txt"
    path.write_text(f"# taken by cron\n\n{LINE}\n{LINE.replace('trials=12', 'trials=13')}\n")
    assert [a.trials for a in read_anchors(str(path))] == [12, 13]
    path.write_text(f"{LINE}\nnot an anchor\n")
    with pytest.raises(AnchorError, match="anchors.txt:2: "):
        read_anchors(str(path))
    with pytest.raises(AnchorError, match="neither an anchor line nor a file"):
        read_anchors(str(tmp_path / "missing.txt"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    for name in ("signer", "stranger"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(folder / name)],
                       check=True)
    return folder


def test_git_ssh_signature_verifies_with_its_key_only(keys):
    signed = sign_anchor(parse_anchor(LINE), keys / "signer")
    assert signed.line().startswith(LINE + " sig=") and " " not in signed.sig
    again = parse_anchor(signed.line())
    assert signature_problem(again, keys / "signer.pub") is None
    allowed = keys / "allowed_signers"
    allowed.write_text(f"ops@example.org {(keys / 'signer.pub').read_text()}")
    assert signature_problem(again, allowed) is None
    assert "does not verify" in signature_problem(again, keys / "stranger.pub")
    moved = parse_anchor(signed.line().replace("trials=12", "trials=11"))
    assert "does not verify" in signature_problem(moved, keys / "signer.pub")
    assert signature_problem(parse_anchor(LINE), keys / "signer.pub") == "it is not signed"
    assert "not base64" in signature_problem(again.model_copy(update={"sig": "%%%"}), keys / "signer.pub")


def test_signing_with_a_missing_key_is_a_clear_error(tmp_path):
    with pytest.raises(AnchorError, match="no key file"):
        sign_anchor(parse_anchor(LINE), tmp_path / "nokey")
    assert isinstance(parse_anchor(LINE), Anchor)
