"""The run registry: which run folders every trial's local sandbox hides."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from harness.run_registry import STATE_DIR_ENV, other_runs, register, registered_runs, registry_file


@pytest.fixture
def state(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv(STATE_DIR_ENV, str(folder))
    return folder


def make_runs(tmp_path: Path, *names: str) -> list[Path]:
    runs = [tmp_path / name for name in names]
    for run in runs:
        run.mkdir(parents=True)
    return runs


def test_the_state_folder_comes_from_the_environment_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "s"))
    assert registry_file() == tmp_path / "s" / "runs"
    monkeypatch.delenv(STATE_DIR_ENV)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert registry_file() == tmp_path / "xdg" / "harness" / "runs"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert registry_file() == tmp_path / "home" / ".local" / "state" / "harness" / "runs"


def test_registering_twice_keeps_one_line(state, tmp_path):
    a, b = make_runs(tmp_path, "a", "b")
    register(a)
    register(b)
    register(a)
    assert registry_file().read_text().splitlines() == [str(b), str(a)]
    assert registered_runs() == [b, a]


def test_folders_that_are_gone_are_dropped_on_the_next_registration(state, tmp_path):
    a, b, c = make_runs(tmp_path, "a", "b", "c")
    for run in (a, b):
        register(run)
    b.rmdir()
    assert registered_runs() == [a]  # readers skip it at once
    register(c)
    assert registry_file().read_text().splitlines() == [str(a), str(c)]


def test_a_missing_or_garbled_registry_knows_no_runs(state, tmp_path):
    assert registered_runs() == []
    state.mkdir()
    registry_file().write_bytes(b"relative/path\n\xff\xfe\n\n" + str(tmp_path).encode() + b"\n")
    assert registered_runs() == [tmp_path]


def test_an_unwritable_registry_raises_oserror(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(STATE_DIR_ENV, str(blocker / "state"))
    with pytest.raises(OSError):
        register(tmp_path)


def test_other_runs_leave_out_the_run_itself_and_whatever_holds_a_needed_path(state, tmp_path):
    me, other, holder = make_runs(tmp_path, "me", "other", "holder")
    (holder / "venv").mkdir()
    nested = make_runs(tmp_path, "me/inner")[0]
    for run in (me, other, holder, nested):
        register(run)
    assert other_runs(me, [holder / "venv"]) == [other, nested]
    assert other_runs(nested, []) == [other, holder]  # a run folder holding this one: left visible
    # A trial's own run is left out even when given by another spelling of its path.
    assert other_runs(tmp_path / "other" / ".." / "me", [holder / "venv"]) == [other, nested]


def _register_many(state: str, paths: list[str]) -> None:
    os.environ[STATE_DIR_ENV] = state
    for path in paths:
        register(Path(path))


def test_concurrent_writers_lose_no_run(state, tmp_path):
    runs = make_runs(tmp_path, *(f"r{i:03d}" for i in range(120)))
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_register_many, args=(str(state), [str(r) for r in runs[i::4]]))
               for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert sorted(registered_runs()) == runs
