"""The check of a trial's folders before the host reads them: each hostile entry is named."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from evaluators.decision import Decision
from evaluators.labels import RunMeasurements, label_run
from evaluators.outputs import OutputFinding, ScanLimits, scan_folder
from harness.types import Budgets, Label, PhaseUsage


def problems(folder: Path, limits: ScanLimits = ScanLimits()) -> list[tuple[str, str]]:
    return [(f.path, f.problem) for f in scan_folder(folder, "out", limits).findings]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"w" * 1000)
    (folder / "sub" / "log.txt").write_text("fine\n")
    return folder


def test_an_ordinary_folder_passes_and_is_measured(out: Path) -> None:
    scan = scan_folder(out, "out")
    assert scan.findings == [] and scan.total_bytes == 1005 and scan.entries == 3


def test_a_missing_folder_holds_nothing(tmp_path: Path) -> None:
    assert scan_folder(tmp_path / "absent", "out").findings == []


def test_a_symlink_is_refused_and_not_followed(out: Path, tmp_path: Path) -> None:
    secret = tmp_path / "labels"
    secret.mkdir()
    (secret / "labels.npy").write_bytes(b"x" * 5000)
    (out / "leak").symlink_to(secret)
    (out / "sub" / "passwd").symlink_to("/etc/passwd")
    scan = scan_folder(out, "out")
    assert sorted((f.path, f.problem) for f in scan.findings) == [("leak", "symlink"), ("sub/passwd", "symlink")]
    assert scan.total_bytes == 1005  # nothing behind the links was counted


def test_the_folder_itself_as_a_symlink_is_refused(out: Path, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(out)
    assert problems(tmp_path / "link") == [(".", "symlink")]


def test_a_hardlink_is_refused(out: Path, tmp_path: Path) -> None:
    os.link(out / "model.pt", tmp_path / "elsewhere.pt")
    assert problems(out) == [("model.pt", "hardlink")]


def test_a_fifo_is_refused_without_being_opened(out: Path) -> None:
    os.mkfifo(out / "preds.npy")  # opening it would block the host
    assert problems(out) == [("preds.npy", "fifo")]


def test_a_socket_is_refused(out: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(out / "s.sock"))
        assert problems(out) == [("s.sock", "socket")]
    finally:
        server.close()


def test_a_device_file_is_refused(out: Path) -> None:
    try:
        os.mknod(out / "zero", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
    except PermissionError:
        pytest.skip("cannot make device files here (needs CAP_MKNOD)")
    assert problems(out) == [("zero", "char-device")]


def test_a_sparse_file_is_refused(out: Path) -> None:
    with open(out / "claims.bin", "wb") as f:
        f.truncate(4 << 20)  # 4 MiB of size, nothing written
    found = scan_folder(out, "out").findings
    assert [(f.path, f.problem, f.label) for f in found] == [("claims.bin", "sparse", Label.size_failure)]


def test_a_written_file_of_zeros_is_not_sparse(out: Path) -> None:
    (out / "zeros.bin").write_bytes(bytes(4 << 20))
    os.sync()
    assert problems(out) == []


def test_a_folder_over_its_byte_cap_is_huge(out: Path) -> None:
    assert problems(out, ScanLimits(max_bytes=1000)) == [(".", "huge")]
    assert problems(out, ScanLimits(max_bytes=None)) == []


def test_too_many_entries_stop_the_walk(out: Path) -> None:
    many = out / "many"
    many.mkdir()
    for i in range(50):
        (many / str(i)).touch()
    scan = scan_folder(out, "out", ScanLimits(max_entries=20))
    assert [(f.path, f.problem) for f in scan.findings] == [(".", "too-many-entries")]
    assert scan.entries == 21  # it stopped right after the cap


def test_too_deep_a_folder_is_refused(out: Path) -> None:
    deep = out
    for _ in range(10):
        deep = deep / "d"
    deep.mkdir(parents=True)
    assert problems(out, ScanLimits(max_depth=5)) == [("d/d/d/d/d/d", "too-deep")]


def test_wrong_kinds_are_tamper_and_size_tricks_size_failure() -> None:
    kinds = {p: OutputFinding(folder="out", path="x", problem=p).label
             for p in ("symlink", "hardlink", "fifo", "socket", "char-device", "block-device", "other",
                       "sparse", "huge", "too-many-entries", "too-deep")}
    assert {p for p, label in kinds.items() if label is Label.tamper} == {
        "symlink", "hardlink", "fifo", "socket", "char-device", "block-device", "other"}
    assert {p for p, label in kinds.items() if label is Label.size_failure} == {
        "sparse", "huge", "too-many-entries", "too-deep"}


BUDGETS = Budgets(train_wallclock_s=60, eval_wallclock_s=30, artifact_bytes=1000, memory_mb=2048)


@pytest.mark.parametrize(
    ("problem", "label"), [("fifo", Label.tamper), ("symlink", Label.tamper), ("sparse", Label.size_failure)]
)
def test_a_refused_output_labels_the_trial_and_names_the_entry(problem: str, label: Label) -> None:
    measured = RunMeasurements(
        phases=[PhaseUsage(phase="train", seed=0, wallclock_s=1.0, exit_code=0)],
        refused_outputs=[OutputFinding(folder="out", path="sub/x", problem=problem, detail="d")],
        decision=Decision(keep=True, reason="keep"),
    )
    got, explanation = label_run(measured, BUDGETS, "ap")
    assert got is label
    assert explanation == f"refused before reading: out/sub/x: {problem} (d)"
