"""`--resume` after a kill in the narrow windows that random kills rarely hit.

Two ways to get there, both deterministic:

* `killed_at`: the real CLI in a subprocess that SIGKILLs itself when a chosen
  function is called for the n-th time (so the state is what a kill leaves,
  not what a test believes it leaves);
* states built with the library API, for what no kill of this version can
  leave but a crash of a machine or of an older version can (a stale ref lock,
  a trial ref without its ledger event, half-written scratch data).

Each is then resumed and audited with `replay`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.fidelity import kept_by_level
from harness.agents.base import make_agent
from harness.loop import Run, RunError
from harness.recipe_loader import load_recipe
from harness.recipe_tools import new_recipe
from harness.replay import replay
from harness.types import Label
from sandboxes.local import LocalSandbox
from trajectories.lineage import STRAY_REF_PREFIX, Lineage, trial_trailers

REPO = Path(__file__).resolve().parents[2]

PROPOSALS = [  # (LR, EPOCHS, HIDDEN) against a 10-step baseline: keep, keep, not_improved, ...
    (0.03, 60, 16),
    (0.1, 60, 64),
    (0.003, 10, 8),
    (0.01, 20, 32),
]

# Runs the CLI, SIGKILLing this process at the n-th call of one function (before it runs).
KILLED_AT = r"""
import importlib, os, signal, sys, json
cfg = json.loads(sys.argv[1])
module, _, attr = cfg["target"].rpartition(":")
owner_name, _, name = attr.rpartition(".")
owner = importlib.import_module(module)
if owner_name:
    owner = getattr(owner, owner_name)
original = getattr(owner, name)
calls = [0]
def dying(*args, **kwargs):
    calls[0] += 1
    if calls[0] == cfg["nth"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
setattr(owner, name, staticmethod(dying) if isinstance(owner.__dict__.get(name), staticmethod) else dying)
sys.argv = ["harness", *cfg["args"]]
from harness.cli import main
main()
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """A 10-step scaffold recipe (a trial takes well under a second) and its proposals file."""
    base = tmp_path_factory.mktemp("tiny")
    folder = new_recipe("tiny", base)
    config = folder / "src" / "config.py"
    text = re.sub(r"^EPOCHS = \d+", "EPOCHS = 10", config.read_text(), flags=re.M)
    config.write_text(text)
    lines = []
    for lr, epochs, hidden in PROPOSALS:
        new = re.sub(r"^LR = \S+", f"LR = {lr}", text, flags=re.M)
        new = re.sub(r"^EPOCHS = \d+", f"EPOCHS = {epochs}", new, flags=re.M)
        new = re.sub(r"^HIDDEN = \d+", f"HIDDEN = {hidden}", new, flags=re.M)
        diff = "".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True), "a/config.py", "b/config.py"))
        lines.append({"hypothesis": f"LR {lr}, {epochs} steps, width {hidden}",
                      "diff": "diff --git a/config.py b/config.py\n" + diff, "parent": "t0000"})
    proposals = base / "proposals.jsonl"
    proposals.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder, proposals


class Notes:
    """A Reporter that keeps the notes."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def trial_started(self, trial) -> None:
        pass

    def trial_finished(self, record, best) -> None:
        pass

    def note(self, text: str) -> None:
        self.notes.append(text)


def cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, check=False)


def killed_at(target: str, nth: int, *args: object) -> subprocess.CompletedProcess[str]:
    """The CLI with `args`, killed (SIGKILL) at the `nth` call of `target` (`module:Class.method`)."""
    config = json.dumps({"target": target, "nth": nth, "args": [str(a) for a in args]})
    result = subprocess.run([sys.executable, "-c", KILLED_AT, config], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert result.returncode == -signal.SIGKILL, result.stdout + result.stderr
    return result


def create_args(tiny, run_dir: Path, trials: int) -> list[object]:
    folder, proposals = tiny
    return ["run", folder, "--agent", "scripted", "--proposals", proposals, "--trials", trials,
            "--out", run_dir.parent, "--run-id", run_dir.name]


def resume_cli(tiny, run_dir: Path, trials: int) -> subprocess.CompletedProcess[str]:
    result = cli("run", "--resume", run_dir, "--agent", "scripted", "--proposals", tiny[1], "--trials", trials)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def audited(run_dir: Path, trials: int) -> dict[str, str]:
    """Replay must verify, with ids t0000..t`trials` each proposed and decided once; returns id -> label."""
    report = replay(run_dir)
    assert report.verified, report.problems
    assert [t.id for t in report.trials] == [f"t{n:04d}" for n in range(trials + 1)]
    out = subprocess.run(["git", "-C", str(run_dir), "log", "--format=%s", "refs/heads/ledger"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    for n in range(trials + 1):
        assert sum(line == f"proposed t{n:04d}" for line in out) == 1
        assert sum(line.startswith(f"outcome t{n:04d}:") for line in out) == 1
    return {t.id: t.label for t in report.trials}


def open_run(tiny, run_dir: Path, reporter: Notes | None = None, sandbox: LocalSandbox | None = None) -> Run:
    folder, proposals = tiny
    agent = make_agent("scripted", proposals_file=proposals, seed=0)
    return Run.resume(load_recipe(str(folder)), run_dir, agent=agent, sandbox=sandbox or LocalSandbox(),
                      reporter=reporter or Notes())


def finished_run(tiny, tmp_path: Path, trials: int) -> Path:
    run_dir = tmp_path / "r"
    result = cli(*create_args(tiny, run_dir, trials))
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir


# -- killed at a chosen call --------------------------------------------------------


def test_killed_before_best_moved_loses_the_outcome_with_it(tiny, tmp_path):
    """The loop writes an outcome and the best move as one group: a kill between them leaves neither."""
    run_dir = tmp_path / "r"
    killed_at("trajectories.lineage:Lineage.set_best", 2, *create_args(tiny, run_dir, 3))  # 1st: the baseline
    with Lineage.open(run_dir) as lineage:
        assert lineage.record("t0001").outcome is None and lineage.best() == "t0000"
    result = resume_cli(tiny, run_dir, 2)
    assert "t0001: proposal recorded but never evaluated; running it now" in " ".join(result.stdout.split())
    labels = audited(run_dir, 3)
    assert labels["t0001"] == "keep"


def test_best_left_behind_the_last_keep_is_repaired(tiny, tmp_path):
    """`best` one kept trial behind (what a writer of one event at a time leaves when killed between
    an outcome and the best move): resume moves it, and the next trial is judged against it."""
    run_dir = finished_run(tiny, tmp_path, 1)
    with Lineage.open(run_dir) as lineage:
        assert lineage.record("t0001").outcome.label is Label.keep and lineage.best() == "t0001"
        baseline_commit = lineage.record("t0000").trial.commit
    subprocess.run(["git", "-C", str(run_dir), "update-ref", "refs/heads/best", baseline_commit], check=True)
    with Lineage.open(run_dir) as lineage:
        assert lineage.best() == "t0000" and kept_by_level(lineage) == {"full": "t0001"}
    result = resume_cli(tiny, run_dir, 1)
    assert "best was t0000 but the last kept trial at level 'full' is t0001" in " ".join(result.stdout.split())
    labels = audited(run_dir, 2)
    assert labels["t0002"] == "keep"  # judged against t0001, the repaired best
    with Lineage.open(run_dir) as lineage:
        assert lineage.record("t0002").outcome.compared_to == ["t0000", "t0001"]
        assert lineage.best() == "t0002"


def test_killed_before_the_baseline_keep_moved_best(tiny, tmp_path):
    run_dir = tmp_path / "r"
    killed_at("trajectories.lineage:Lineage.set_best", 1, *create_args(tiny, run_dir, 2))
    result = resume_cli(tiny, run_dir, 2)
    assert "best was unset but the last kept trial at level 'full' is t0000" in " ".join(result.stdout.split())
    assert audited(run_dir, 2)["t0001"] == "keep"


def test_killed_after_run_json_before_the_baseline_proposal(tiny, tmp_path):
    run_dir = tmp_path / "r"
    killed_at("harness.loop:Run._propose_baseline", 1, *create_args(tiny, run_dir, 1))
    with Lineage.open(run_dir) as lineage:
        assert lineage.run_info().run_id == "r" and lineage.records() == []
    result = resume_cli(tiny, run_dir, 1)
    assert "proposing it now" in result.stdout
    assert audited(run_dir, 1) == {"t0000": "keep", "t0001": "keep"}


def test_killed_between_the_trial_commit_and_its_proposed_event(tiny, tmp_path):
    run_dir = tmp_path / "r"
    killed_at("trajectories.lineage:Lineage.record_proposed", 2, *create_args(tiny, run_dir, 2))
    dangling = subprocess.run(["git", "-C", str(run_dir), "fsck", "--unreachable", "--no-reflogs"],
                              capture_output=True, text=True, check=False).stdout
    # The trial commit of t0001 was held back in memory (objects reach the disk only when a
    # ref is about to name them or git reads them): the kill left nothing behind.
    assert "unreachable commit" not in dangling
    resume_cli(tiny, run_dir, 2)
    assert audited(run_dir, 2) == {"t0000": "keep", "t0001": "keep", "t0002": "keep"}


def test_killed_mid_ledger_write_reruns_the_trial_once(tiny, tmp_path):
    run_dir = tmp_path / "r"
    # ref updates: 1 start, 2 t0000 proposed, 3 t0000 outcome, 4 best, 5 t0001 proposed, 6 t0001 outcome
    killed_at("trajectories._git:Git.update_refs", 6, *create_args(tiny, run_dir, 2))
    with Lineage.open(run_dir) as lineage:
        assert lineage.record("t0001").outcome is None  # the outcome's objects exist; the ledger never moved
    result = resume_cli(tiny, run_dir, 1)
    assert "t0001: proposal recorded but never evaluated; running it now" in result.stdout
    assert audited(run_dir, 2)["t0001"] == "keep"


def test_killed_before_the_trial_ran(tiny, tmp_path):
    run_dir = tmp_path / "r"
    killed_at("harness.trial_exec:TrialExecutor.execute", 2, *create_args(tiny, run_dir, 2))
    resume_cli(tiny, run_dir, 1)
    assert audited(run_dir, 2) == {"t0000": "keep", "t0001": "keep", "t0002": "keep"}


def test_killed_before_run_json_says_what_to_do(tiny, tmp_path):
    run_dir = tmp_path / "r"
    killed_at("trajectories.lineage:Lineage.start", 1, *create_args(tiny, run_dir, 1))
    for result in (cli("run", "--resume", run_dir, "--agent", "scripted", "--proposals", tiny[1]),
                   cli(*create_args(tiny, run_dir, 1))):
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        message = " ".join(result.stderr.split())
        assert message.startswith("error:") and "was interrupted while it was being created" in message
        assert f"remove it (rm -r {run_dir})" in message


# -- states built with the library ---------------------------------------------------


def test_a_pending_trial_reruns_in_a_clean_scratch_folder(tiny, tmp_path):
    run_dir = finished_run(tiny, tmp_path, 0)
    run = open_run(tiny, run_dir)
    trial = run._propose_and_record()
    run.close()
    leftover = run_dir / ".harness" / "trials" / trial.id / "out-0"
    leftover.mkdir(parents=True)
    (leftover / "params.npz").write_bytes(b"half a file from the killed attempt")
    notes = Notes()
    run = open_run(tiny, run_dir, notes)
    run.run(0)
    run.close()
    assert f"{trial.id}: proposal recorded but never evaluated; running it now" in notes.notes
    assert (leftover / "params.npz").read_bytes()[:2] == b"PK"  # a real npz of the re-run
    assert audited(run_dir, 1)["t0001"] == "keep"


def test_a_trial_ref_without_its_ledger_event_is_set_aside(tiny, tmp_path):
    run_dir = finished_run(tiny, tmp_path, 1)
    with Lineage.open(run_dir) as lineage:
        base = lineage.record("t0001").trial.commit
        tree = lineage.tree_of(base)
        stray = lineage.commit_trial(tree, base, "A proposal cut short",
                                     trial_trailers("t0002", "t0001", "scripted", None, "full"))
        lineage.git.update_refs([("refs/trials/t0002", stray, None)])
    notes = Notes()
    run = open_run(tiny, run_dir, notes)
    run.run(1)
    run.close()
    aside = f"{STRAY_REF_PREFIX}t0002-{stray[:12]}"
    assert f"refs/trials/t0002 has no ledger record (a proposal cut short): kept as {aside}" in notes.notes
    with Lineage.open(run_dir) as lineage:
        assert lineage.git.ref(aside) == stray and lineage.record("t0002").trial.commit != stray
    audited(run_dir, 2)
    # The audit names what was set aside (the JSON keeps its contract keys only).
    shown = subprocess.run([sys.executable, "-m", "harness.cli", "replay", str(run_dir)], capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "400"})
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "note: 1 trial ref(s) without a ledger record were set aside by --resume" in shown.stdout
    assert aside in shown.stdout


def test_leftovers_of_cut_writes_are_removed(tiny, tmp_path):
    run_dir = finished_run(tiny, tmp_path, 1)
    git_dir = run_dir / ".git"
    leftovers = [git_dir / "objects" / "ab" / "tmp_obj_x1", run_dir / ".harness" / "tmp" / "index-1-x",
                 git_dir / "refs" / "heads" / "ledger.lock"]
    an_hour_ago = time.time() - 3600
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"cut short")
        os.utime(path, (an_hour_ago, an_hour_ago))
    young = git_dir / "objects" / "cd" / "tmp_obj_of_a_rerun_writing_now"
    young.parent.mkdir(exist_ok=True)
    young.write_bytes(b"being written")
    notes = Notes()
    started = time.monotonic()
    run = open_run(tiny, run_dir, notes)
    run.run(1)
    run.close()
    assert time.monotonic() - started < 60
    assert not any(path.exists() for path in leftovers) and young.exists()
    assert "removed .git/refs/heads/ledger.lock (a write cut short)" in notes.notes
    audited(run_dir, 2)


def test_half_copied_evaluator_and_half_prepared_data_are_made_again(tiny, tmp_path):
    run_dir = finished_run(tiny, tmp_path, 0)
    scratch = run_dir / ".harness"
    data = {p.relative_to(scratch / "data"): p.read_bytes() for p in (scratch / "data").rglob("*") if p.is_file()}
    (scratch / "evaluator" / "score.py").unlink()
    (scratch / "data").rename(scratch / "data.partial")  # killed before the rename into place
    (scratch / "data.partial" / "heldout_labels" / "y.npy").write_bytes(b"half")
    run = open_run(tiny, run_dir)
    run.run(1)
    run.close()
    assert not (scratch / "data.partial").exists()
    remade = {p.relative_to(scratch / "data"): p.read_bytes() for p in (scratch / "data").rglob("*") if p.is_file()}
    assert remade == data
    assert (scratch / "evaluator" / "score.py").is_file()
    assert audited(run_dir, 1)["t0001"] == "keep"


def test_a_stale_lock_file_of_a_dead_process_does_not_block(tiny, tmp_path):
    run_dir = finished_run(tiny, tmp_path, 0)
    lock = run_dir / ".harness" / "lock"
    lock.write_text("999999 a-machine-that-crashed\n")
    run = open_run(tiny, run_dir)
    try:
        assert lock.read_text().split()[0] == str(os.getpid())
        with pytest.raises(RunError, match="another harness process is running on .* \\(lock held\\)"):
            open_run(tiny, run_dir)
    finally:
        run.close()


def test_phases_left_running_by_a_killed_run_are_stopped(tiny, tmp_path):
    run_dir = finished_run(tiny, tmp_path, 0)
    out = run_dir / ".harness" / "trials" / "t0001" / "out-0"
    out.mkdir(parents=True)
    rerun_out = run_dir / ".harness" / "trials" / "rerun-t0000" / "out-0"  # `replay --rerun` needs no lock
    rerun_out.mkdir(parents=True)
    roots = tmp_path / "phase-roots"
    root = roots / "harness-phase-killed"
    (root / "home").mkdir(parents=True)
    (root / "out").symlink_to(out.resolve(), target_is_directory=True)
    os.chmod(root, 0o555)
    other = roots / "harness-phase-of-a-rerun"
    other.mkdir()
    (other / "out").symlink_to(rerun_out.resolve(), target_is_directory=True)
    phase = subprocess.Popen(["sleep", "120"], env={"PATH": os.environ["PATH"], "HARNESS_OUT": str(out.resolve())},
                             start_new_session=True)
    bystander = subprocess.Popen(["sleep", "120"], env={"PATH": os.environ["PATH"],
                                                        "HARNESS_OUT": str(rerun_out.resolve())},
                                 start_new_session=True)
    try:
        notes = Notes()
        run = open_run(tiny, run_dir, notes, LocalSandbox(root_dir=roots))
        run.close()
        assert phase.wait(timeout=10) == -signal.SIGKILL
        assert bystander.poll() is None, "a phase of `replay --rerun` was stopped"
        assert not root.exists() and other.exists()
        assert any(f"process {phase.pid}" in note and str(root) in note for note in notes.notes), notes.notes
    finally:
        for proc in (phase, bystander):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
