"""SIGKILL torture: one run through the CLI, killed at random moments and resumed each time.

A tiny recipe (the `harness recipe new` scaffold with a few training steps, a
trial costs well under a second) and the scripted agent, whose proposals are
all known-good knob edits: whatever the kills do, no trial may end up with a
failure label, since none of them is the proposal's fault.

Each launch is killed (SIGKILL) once a trigger fires plus a random delay: right
away (anywhere in start-up or the first trials), once the run lock is taken,
once a `proposed` or `outcome` event lands on the ledger, once a train or an
eval log appears. The RNG is seeded (HARNESS_TORTURE_SEED), so a failing
schedule can be replayed. What each kill interrupted is read from the state it
left (see `stage_after_kill`), and the run is resumed until all its trials are
done; then the lineage must verify, every trial appear exactly once, `best` be
the re-derived best and no process of the run be left.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import git, harness, replay_json

pytestmark = pytest.mark.e2e

SEED = int(os.environ.get("HARNESS_TORTURE_SEED", "20261122"))
KILLS = int(os.environ.get("HARNESS_TORTURE_KILLS", "24"))
TRIALS = 44
"""Proposals in the script: more than the kills can use up, so every kill lands in a live run."""

TRIGGER_JITTER_S = {
    "start": 2.5,
    "lock": 0.3,
    "proposed": 0.03,
    "train": 0.2,
    "eval": 0.25,
    "outcome": 0.02,
}
"""Triggers a kill waits for, and the most random delay added after it fires."""
GOOD_LABELS = {"keep", "not_improved"}
CREATE_STAGES = {"start-up (nothing written)", "create (before run.json)"}
LAUNCH_TIMEOUT_S = 120


# -- the recipe and the proposals ------------------------------------------------


def tiny_recipe(base: Path) -> Path:
    """`harness recipe new`, made faster (few steps) and keen to keep (a small noise margin)."""
    made = harness("recipe", "new", "torture", "--dir", base)
    assert made.returncode == 0, made.stdout + made.stderr
    folder = base / "torture"
    config = folder / "src" / "config.py"
    text, n = re.subn(r"^EPOCHS = \d+", "EPOCHS = 10", config.read_text(), flags=re.M)
    assert n == 1
    config.write_text(text)
    toml = folder / "recipe.toml"
    text, n = re.subn(r"^noise_margin = .*$", "noise_margin = 0.002", toml.read_text(), flags=re.M)
    text, m = re.subn(r"^choices = \[100, 200, 400, 800\]$", "choices = [10, 20, 40, 60]", text, flags=re.M)
    assert n == 1 and m == 1
    toml.write_text(text)
    return folder


def knob_proposals(recipe: Path, rng: random.Random, count: int) -> Path:
    """`count` knob edits of config.py, each against the baseline (so each applies and runs)."""
    config = (recipe / "src" / "config.py").read_text()
    choices = {"HIDDEN": [8, 16, 32, 64], "LR": [0.003, 0.01, 0.03, 0.1], "EPOCHS": [10, 20, 40, 60]}
    lines = []
    for i in range(count):
        values = {name: rng.choice(options) for name, options in choices.items()}
        edited = config
        for name, value in values.items():
            edited = re.sub(rf"^{name} = [^ #\n]+", f"{name} = {value!r}", edited, count=1, flags=re.M)
        if edited == config:  # an unchanged file would be a malformed proposal, not a good edit
            edited = config.replace("HIDDEN = 16", "HIDDEN = 32")
        hypothesis = f"Trial {i + 1}: " + ", ".join(f"{k}={v}" for k, v in values.items())
        lines.append({"hypothesis": hypothesis, "diff": _diff("config.py", config, edited), "parent": "t0000"})
    path = recipe.parent / "proposals.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _diff(path: str, old: str, new: str) -> str:
    import difflib

    body = difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}", n=3)
    return f"diff --git a/{path} b/{path}\n" + "".join(body)


# -- reading a run directory while (or after) a process writes it -----------------


def ledger_head(run_dir: Path) -> str | None:
    """The ledger's head as the loose ref file holds it (cheap enough to poll)."""
    try:
        return (run_dir / ".git" / "refs" / "heads" / "ledger").read_text().strip() or None
    except FileNotFoundError:
        return None


def commit_message(run_dir: Path, sha: str) -> str:
    loose = run_dir / ".git" / "objects" / sha[:2] / sha[2:]
    if not loose.exists():  # packed (a bulk write or a repack): ask git; FileNotFoundError when absent
        done = subprocess.run(["git", "-C", str(run_dir), "cat-file", "commit", sha], capture_output=True)
        if done.returncode != 0:
            raise FileNotFoundError(sha)
        return done.stdout.split(b"\n\n", 1)[1].decode()
    raw = zlib.decompress(loose.read_bytes())
    return raw.split(b"\0", 1)[1].split(b"\n\n", 1)[1].decode()


def trailers(message: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in message.rstrip("\n").rsplit("\n\n", 1)[-1].splitlines()
                if ": " in line)


@dataclass(frozen=True)
class LedgerEvent:
    event: str
    trial: str
    label: str | None


def ledger_events(run_dir: Path) -> list[LedgerEvent]:
    """Every event of `refs/heads/ledger`, oldest first (walked with git, not with the harness)."""
    out = git(run_dir, "log", "--reverse", "--format=%B%x1e", "refs/heads/ledger")
    events = []
    for message in filter(str.strip, out.split("\x1e")):
        t = trailers(message.strip() + "\n")
        if t.get("Event") in ("proposed", "outcome"):
            events.append(LedgerEvent(t["Event"], t["Trial-Id"], t.get("Label")))
    return events


def unreachable_commits(run_dir: Path) -> dict[str, dict[str, str]]:
    """Commits no ref reaches (reflogs ignored): sha -> trailers. Left by a write cut short."""
    out = subprocess.run(["git", "-C", str(run_dir), "fsck", "--unreachable", "--no-reflogs", "--no-progress"],
                         capture_output=True, text=True, check=True).stdout
    shas = [line.split()[2] for line in out.splitlines() if line.startswith("unreachable commit ")]
    return {sha: trailers(commit_message(run_dir, sha)) for sha in shas}


def lock_pid(run_dir: Path) -> int | None:
    try:
        return int((run_dir / ".harness" / "lock").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def stage_after_kill(run_dir: Path, pid: int, seen_unreachable: set[str]) -> str:
    """What the kill interrupted, read from what it left (what `--resume` will find)."""
    if not (run_dir / ".git").is_dir():
        return "start-up (nothing written)"
    if ledger_head(run_dir) is None:
        return "create (before run.json)"
    events = ledger_events(run_dir)
    proposed = [e.trial for e in events if e.event == "proposed"]
    done = {e.trial for e in events if e.event == "outcome"}
    fresh = {sha: t for sha, t in unreachable_commits(run_dir).items() if sha not in seen_unreachable}
    seen_unreachable.update(fresh)
    cut_events = {(t.get("Event"), t.get("Trial-Id")) for t in fresh.values() if "Event" in t}
    if "t0000" not in proposed:
        return "create (started, baseline not proposed)"
    pending = [tid for tid in proposed if tid not in done]
    if pending:
        tid = pending[-1]
        if tid == "t0000":
            return "baseline running"
        if ("outcome", tid) in cut_events:
            return "mid-ledger write (outcome)"
        scratch = run_dir / ".harness" / "trials" / tid
        if any(scratch.glob("eval-*.log")):
            return "mid-eval"
        if any(scratch.glob("train-*.log")):
            return "mid-train"
        return "after the proposal commit"
    kept = [e.trial for e in events if e.event == "outcome" and e.label == "keep"]
    best = git(run_dir, "rev-parse", "--verify", "-q", "refs/heads/best^{commit}") if kept else ""
    if kept and best != git(run_dir, "rev-parse", f"refs/trials/{kept[-1]}"):
        return "outcome recorded, best not moved"
    if any(event == "proposed" for event, _ in cut_events):
        return "mid-ledger write (proposed)"
    if any("Trial-Id" in t and "Event" not in t for t in fresh.values()):
        return "trial commit written, no proposed event"
    if lock_pid(run_dir) == pid:
        return "between trials (proposing)"
    return "start-up (before the lock)"


# -- launching and killing ----------------------------------------------------------


def launch(args: list[object], log: Path) -> subprocess.Popen:
    with log.open("w") as fh:
        return subprocess.Popen([sys.executable, "-m", "harness.cli", *map(str, args)], stdout=fh,
                                stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})


def trigger_fired(trigger: str, run_dir: Path, pid: int, launched_at: float, head_before: str | None) -> bool:
    if trigger == "start":
        return True
    if trigger == "lock":
        return lock_pid(run_dir) == pid
    if trigger in ("proposed", "outcome"):
        head = ledger_head(run_dir)
        if head is None or head == head_before:
            return False
        try:
            return commit_message(run_dir, head).startswith(trigger + " ")
        except FileNotFoundError:
            return False
    return any(modified_since(log, launched_at) for log in phase_logs(run_dir, trigger))


def phase_logs(run_dir: Path, phase: str) -> list[Path]:
    """The phase's logs of every trial; a trial folder removed while it is listed is skipped."""
    logs: list[Path] = []
    trials = run_dir / ".harness" / "trials"
    try:
        folders = list(trials.iterdir())
    except FileNotFoundError:
        return logs
    for folder in folders:
        try:  # a re-run clears its trial's scratch folder first, possibly mid-listing
            logs.extend(folder.glob(f"{phase}-*.log"))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return logs


def modified_since(path: Path, moment: float) -> bool:
    try:
        return path.stat().st_mtime >= moment
    except FileNotFoundError:  # a re-run clears its trial's scratch folder first
        return False


def kill_on_trigger(proc: subprocess.Popen, trigger: str, delay_s: float, run_dir: Path) -> bool:
    """Wait for `trigger`, then `delay_s`, then SIGKILL; False when the process ended first."""
    launched_at = time.time() - 0.01
    head_before = ledger_head(run_dir)
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    while not trigger_fired(trigger, run_dir, proc.pid, launched_at, head_before):
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, f"trigger {trigger} never fired"
        time.sleep(0.002)
    time.sleep(delay_s)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def proposed_trials(run_dir: Path) -> int:
    """New trials already proposed (the baseline not counted)."""
    if ledger_head(run_dir) is None:
        return 0
    return sum(1 for e in ledger_events(run_dir) if e.event == "proposed" and e.trial != "t0000")


def processes_of(run_dir: Path) -> list[str]:
    """Live processes whose command line or environment names the run directory."""
    needle = str(run_dir.resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if needle in cmdline or needle in (entry / "environ").read_bytes():
                found.append(f"{entry.name}: {cmdline.replace(bytes(1), b' ').decode(errors='replace')}")
        except OSError:
            continue
    return found


def phase_roots_of(run_dir: Path) -> list[Path]:
    """Local sandbox phase roots (in the temp folder) with a mount link into the run directory."""
    inside = run_dir.resolve()
    found = []
    for root in Path(tempfile.gettempdir()).glob("harness-phase-*"):
        try:  # other runs on this machine make and remove theirs meanwhile
            if any(p.is_symlink() and inside in Path(os.readlink(p)).parents for p in root.iterdir()):
                found.append(root)
        except FileNotFoundError:
            continue
    return found


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one `error: ...` message of a refused command (unwrapped: the console wraps long lines)."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.stderr.startswith("error:") and result.stderr.count("error:") == 1, result.stderr
    return " ".join(result.stderr.split())


# -- the test ---------------------------------------------------------------------


def test_sigkill_at_random_moments_then_resume_verifies(tmp_path):
    rng = random.Random(SEED)
    started = time.monotonic()
    recipe = tiny_recipe(tmp_path)
    proposals = knob_proposals(recipe, rng, TRIALS)
    out, logs = tmp_path / "runs", tmp_path / "logs"
    logs.mkdir()
    run_dir = out / "r"
    create = ["run", recipe, "--agent", "scripted", "--proposals", proposals, "--trials", TRIALS,
              "--out", out, "--run-id", "r"]
    stages: list[str] = []
    seen_unreachable: set[str] = set()

    # 1. Kills while the run is being created: before run.json resume says what to do;
    #    during the baseline it carries on.
    launches = 0
    for trigger, delay in (("lock", 0.02), ("train", rng.uniform(0, 0.1))):
        log = logs / f"launch-{launches:02d}.log"
        launches += 1
        proc = launch(create, log)
        assert kill_on_trigger(proc, trigger, delay, run_dir), tail(log)
        stage = stage_after_kill(run_dir, proc.pid, seen_unreachable)
        stages.append(stage)
        if stage not in CREATE_STAGES:
            break
        resumed = harness("run", "--resume", run_dir, "--agent", "scripted", "--proposals", proposals)
        message = one_error_line(resumed)
        assert "interrupted while it was being created" in message and "start it again" in message, message
        again = harness(*create)
        assert "interrupted while it was being created" in one_error_line(again)
        shutil.rmtree(run_dir)
    assert stages[0] in CREATE_STAGES, stages

    # 2. Kill, resume, kill ... until KILLS kills, then let the run finish.
    while True:
        remaining = TRIALS - proposed_trials(run_dir)
        assert remaining > 0 or len(stages) >= KILLS, f"trials ran out after {len(stages)} kills: {stages}"
        args = create if not run_dir.exists() else [
            "run", "--resume", run_dir, "--agent", "scripted", "--proposals", proposals, "--trials", remaining]
        log = logs / f"launch-{launches:02d}.log"
        launches += 1
        proc = launch(args, log)
        if len(stages) >= KILLS:
            assert proc.wait(timeout=600) == 0, tail(log)
            break
        trigger = rng.choice(sorted(TRIGGER_JITTER_S))
        if not kill_on_trigger(proc, trigger, rng.uniform(0, TRIGGER_JITTER_S[trigger]), run_dir):
            assert proc.returncode == 0, tail(log)
            assert "Traceback" not in log.read_text(), tail(log)
            continue
        stages.append(stage_after_kill(run_dir, proc.pid, seen_unreachable))
    elapsed = time.monotonic() - started

    # 3. The lineage is whole.
    code, report = replay_json(run_dir)
    assert code == 0 and report["verified"], report["problems"]
    verified = harness("replay", run_dir, "--verify")
    assert verified.returncode == 0, verified.stdout
    ids = [t["id"] for t in report["trials"]]
    assert ids == [f"t{n:04d}" for n in range(TRIALS + 1)], ids
    events = ledger_events(run_dir)
    per_trial = Counter((e.trial, e.event) for e in events)
    for tid in ids:
        assert per_trial[(tid, "proposed")] == 1 and per_trial[(tid, "outcome")] == 1, (tid, per_trial)
    assert len(events) == 2 * len(ids)
    labels = {t["id"]: t["label"] for t in report["trials"]}
    assert set(labels.values()) <= GOOD_LABELS, labels
    kept = [e.trial for e in events if e.event == "outcome" and e.label == "keep"]
    assert report["best"]["id"] == kept[-1], (report["best"], kept)
    scores = {t["id"]: t["score"] for t in report["trials"]}
    assert scores[kept[-1]] == max(scores[t] for t in kept)
    assert git(run_dir, "rev-parse", "refs/heads/best") == git(run_dir, "rev-parse", f"refs/trials/{kept[-1]}")
    assert len(kept) >= 2, "best moved at least once, so a kill could catch it mid-move"
    assert processes_of(run_dir) == []
    assert phase_roots_of(run_dir) == []

    # 4. The kills were many and landed in different places.
    hits = Counter(stages)
    print(f"\ntorture: seed {SEED}, {len(stages)} kills, {launches} launches, {elapsed:.0f} s; stages: "
          + ", ".join(f"{stage} x{n}" for stage, n in hits.most_common()))
    assert len(stages) >= 20
    assert len(hits) >= 5, hits
    assert {"baseline running", "mid-train", "mid-eval", "after the proposal commit"} <= set(hits), hits


CONCURRENT_KILLS = int(os.environ.get("HARNESS_TORTURE_CONCURRENT_KILLS", "8"))
CONCURRENT = ["--parallel", "2", "--proposers", "3"]
"""Two trials and up to three proposals in flight when a kill lands."""


def test_sigkill_with_trials_and_proposals_in_flight_then_resume_verifies(tmp_path):
    """Kills with two slots and three proposers: proposals under way die with the process
    (never recorded), trials running side by side are run again on resume; the lineage
    verifies with every trial once, ids contiguous, and nothing of the run left running."""
    rng = random.Random(SEED + 1)
    total = 16
    recipe = tiny_recipe(tmp_path)
    proposals = knob_proposals(recipe, rng, total)
    out, logs = tmp_path / "runs", tmp_path / "logs"
    logs.mkdir()
    run_dir = out / "r"
    kills = launches = 0
    seen_unreachable: set[str] = set()
    while True:
        if not run_dir.exists():
            args = ["run", recipe, "--agent", "scripted", "--proposals", proposals, "--trials", total,
                    "--out", out, "--run-id", "r", *CONCURRENT]
        else:
            args = ["run", "--resume", run_dir, "--agent", "scripted", "--proposals", proposals,
                    "--trials", max(0, total - proposed_trials(run_dir)), *CONCURRENT]
        log = logs / f"launch-{launches:02d}.log"
        launches += 1
        proc = launch(args, log)
        if kills >= CONCURRENT_KILLS:
            assert proc.wait(timeout=600) == 0, tail(log)
            break
        trigger = rng.choice(["proposed", "train", "eval", "outcome"])
        if not kill_on_trigger(proc, trigger, rng.uniform(0, TRIGGER_JITTER_S[trigger]), run_dir):
            assert proc.returncode == 0 and "Traceback" not in log.read_text(), tail(log)
            continue
        kills += 1
        if stage_after_kill(run_dir, proc.pid, seen_unreachable) in CREATE_STAGES:
            shutil.rmtree(run_dir)  # cut short before run.json: nothing to resume (the test above covers it)

    code, report = replay_json(run_dir)
    assert code == 0 and report["verified"], report["problems"]
    ids = [t["id"] for t in report["trials"]]
    assert ids == [f"t{n:04d}" for n in range(total + 1)], ids
    per_trial = Counter((e.trial, e.event) for e in ledger_events(run_dir))
    assert all(per_trial[(tid, "proposed")] == 1 and per_trial[(tid, "outcome")] == 1 for tid in ids), per_trial
    assert {t["label"] for t in report["trials"]} <= GOOD_LABELS, report["trials"]
    hypotheses = [t["hypothesis"] for t in report["trials"][1:]]
    assert hypotheses == [json.loads(line)["hypothesis"] for line in proposals.read_text().splitlines()]
    assert processes_of(run_dir) == [] and phase_roots_of(run_dir) == []


def test_a_second_run_on_the_same_directory_is_refused(tmp_path):
    recipe = tiny_recipe(tmp_path)
    proposals = knob_proposals(recipe, random.Random(SEED), 30)
    run_dir = tmp_path / "runs" / "r"
    create = ["run", recipe, "--agent", "scripted", "--proposals", proposals, "--trials", 30,
              "--out", tmp_path / "runs", "--run-id", "r"]
    proc = launch(create, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + LAUNCH_TIMEOUT_S
        while proposed_trials(run_dir) < 1:
            assert proc.poll() is None and time.monotonic() < deadline, tail(tmp_path / "first.log")
            time.sleep(0.01)
        resumed = harness("run", "--resume", run_dir, "--agent", "scripted", "--proposals", proposals)
        assert "another harness process is running on" in one_error_line(resumed)
        again = harness(*create)
        assert "already exists" in one_error_line(again)
        assert proc.poll() is None, "the first run was still going while the others were refused"
    finally:
        proc.kill()
        proc.wait()
    finished = harness("run", "--resume", run_dir, "--agent", "scripted", "--proposals", proposals, "--trials", 1)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    code, report = replay_json(run_dir)
    assert code == 0, report["problems"]
