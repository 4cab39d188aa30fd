"""The adversarial suite: proposals that try to win illegally, against both sandboxes.

One scripted run per sandbox (`--sandbox local`, `--sandbox docker`) of a copy
of the collision recipe with short budgets proposes every attack of
`adversarial_attacks.ATTACKS` and then one honest proposal. A neighbour run of
the same recipe is made first: its held-out labels (equal to the run's, fixed
seeds) are one more thing the held-out-read attack tries. Each attack is its
own test case, which asserts its exact label and that nothing else was harmed:
the lineage verifies, the host canary is untouched, the lineage refs are only
those the harness wrote, no trial scores like one that saw the held-out
labels, the evaluator copy and the recipe's evaluator are intact, and the run
went on to the next trial. docs/security.md lists the attacks with their labels.

Docker cases are skipped without an engine, except under CI=true, where they
fail (CI must test the Docker sandbox). Local cases that rely on the local
sandbox's mount jail or pids cgroup are treated the same way where this machine
cannot give them (and those attacks are then not proposed at all).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from adversarial_attacks import ATTACKS, Attack, Target
from conftest import edit_diff, git, src, write_proposals
from evaluators.hashing import tree_digest
from harness.recipe_loader import RECIPES_ROOT
from sandboxes.images import engine_available
from sandboxes.local import LocalSandbox
from trajectories.lineage import Lineage

BUDGET_S = int(os.environ.get("ADVERSARIAL_BUDGET_S", "20"))
"""Train and eval wallclock budget of the test recipe: a timeout costs this much (raise it on a
loaded machine, where the baseline itself needs longer)."""
MEMORY_MB = 2048
OUTPUT_BYTES = 1_000_000
ARTIFACT_BYTES = 5_000_000
PIDS = 256
SECRET = "sk-ant-canary-" + uuid.uuid4().hex
"""Planted in the orchestrator's environment as API keys; must never reach a record or log."""
OTHER_SECRETS = {name: f"{name.lower()}-canary-{uuid.uuid4().hex}" for name in
                 ("AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "HF_TOKEN", "DATABASE_URL", "SSH_AUTH_SOCK")}
"""More secrets of the orchestrator's environment, by name and value: none may reach a phase."""
ONLY = [a for a in os.environ.get("ADVERSARIAL_ONLY", "").split(",") if a]
"""While working on attacks: propose only these ids (comma-separated); the others are skipped."""
PERFECT = 0.99
"""AP at or above this means the predictions knew the held-out labels."""
HONEST = "Comment the knobs (an honest proposal after the attacks)"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and the adversarial suite cannot run here: {reason}", pytrace=False)
    pytest.skip(reason)


def local_gaps() -> dict[str, str]:
    """What this machine's local sandbox cannot give, with why."""
    sandbox = LocalSandbox()
    gaps = {}
    if not sandbox.mount_isolated:
        gaps["jail"] = "the local sandbox has no mount jail here (mount_isolated=False)"
    if sandbox.pids_base is None:
        gaps["pids"] = "the local sandbox cannot make a pids cgroup here"
    if not sandbox.pid_isolated:
        gaps["pid_namespace"] = "the local sandbox has no PID namespace here"
    if sandbox.memory_base is None:
        gaps["memory"] = "the local sandbox cannot make a memory cgroup here"
    return gaps


class Listener:
    """A TCP server on all host addresses (or a unix socket at `unix`) that counts who reached it."""

    def __init__(self, unix: str | None = None) -> None:
        if unix is None:
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("0.0.0.0", 0))
        else:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(unix)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1] if unix is None else 0
        self.connections: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            self.connections.append(peer[0] if isinstance(peer, tuple) else str(peer or "unix"))
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def host_addresses() -> tuple[str, ...]:
    found = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return ("127.0.0.1", *[a for a in found if ":" not in a])


def make_recipe(folder: Path) -> Path:
    """The collision recipe with short budgets (a timeout costs BUDGET_S seconds)."""
    recipe = folder / "collision"  # the name keeps the recipe's Docker image
    shutil.copytree(RECIPES_ROOT / "collision", recipe, ignore=shutil.ignore_patterns("__pycache__"))
    toml = recipe / "recipe.toml"
    text = toml.read_text()
    for key, value in [("train_wallclock_s", BUDGET_S), ("eval_wallclock_s", BUDGET_S),
                       ("memory_mb", MEMORY_MB), ("artifact_bytes", ARTIFACT_BYTES)]:
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
        assert n == 1, key
    toml.write_text(text)
    plant_labels_in_evaluator(recipe)
    return recipe


PLANTED = "heldout_labels_copy.npy"
"""Data the test recipe keeps in its evaluator folder (outside `eval_files`), as a recipe keeps the
corpus its held-out split is cut from: the held-out labels themselves."""


def plant_labels_in_evaluator(recipe: Path) -> None:
    spec = importlib.util.spec_from_file_location("collision_prepare", recipe / "eval" / "prepare.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    _latents, labels = generator.sample_latents(
        np.random.default_rng(generator.DATA_SEEDS["heldout"]), generator.N_HELDOUT)
    np.save(recipe / "eval" / PLANTED, labels)


@dataclass
class AttackRun:
    """One finished run of every attack in one sandbox, and what the host saw."""

    sandbox: str
    run_dir: Path
    target: Target
    recipe_eval_digest: str
    canary_text: str
    gaps: dict[str, str]
    listener_hits: list[str]
    replay_code: int
    report: dict
    cli_output: str
    records: dict[str, dict] = field(default_factory=dict)

    def trial(self, attack: Attack) -> dict:
        """The replay row of the attack's trial (skipping the case where it was not proposed)."""
        missing = [self.gaps[n] for n in attack.local_needs if n in self.gaps] if self.sandbox == "local" else []
        if missing:
            unavailable("; ".join(missing))
        if ONLY and attack.id not in ONLY:
            pytest.skip(f"not proposed: ADVERSARIAL_ONLY={','.join(ONLY)}")
        return self.row(attack.hypothesis)

    def row(self, hypothesis: str) -> dict:
        rows = [t for t in self.report["trials"] if t["hypothesis"] == hypothesis]
        assert len(rows) == 1, f"no single trial for {hypothesis!r}: {self.cli_output[-3000:]}"
        return rows[0]

    def outcome(self, trial_id: str) -> dict:
        return self.records[trial_id]["outcome"]

    def phase(self, trial_id: str, name: str) -> dict:
        return next(p for p in self.outcome(trial_id)["phases"] if p["phase"] == name)

    def log(self, trial_id: str, phase: str) -> str:
        return (self.run_dir / ".harness" / "trials" / trial_id / f"{phase}-0.log").read_text(errors="replace")


def proposals_for(target: Target, gaps: dict[str, str], sandbox: str) -> list[dict]:
    wanted = [a for a in ATTACKS if (sandbox != "local" or not any(n in gaps for n in a.local_needs))
              and (not ONLY or a.id in ONLY)]
    config = src("config.py")
    honest = edit_diff("config.py", config, config.replace("# Hyperparameter axis.", "# Hyperparameters."))
    return [{"hypothesis": a.hypothesis, "diff": a.diff(target), "parent": "t0000"} for a in wanted] + [
        {"hypothesis": HONEST, "diff": honest, "parent": "t0000"}
    ]


def run_cli(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=1800, env=env)


@pytest.fixture(scope="module")
def neighbour_labels(tmp_path_factory) -> Path:
    """The held-out labels of another run of the recipe on this host, made before the attacks."""
    base = tmp_path_factory.mktemp("adversarial-neighbour")
    recipe = make_recipe(base)
    result = run_cli("run", recipe, "--agent", "random", "--trials", "0", "--sandbox", "local",
                     "--fidelity", "smoke", "--out", base, "--run-id", "neighbour",
                     env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    labels = (base / "neighbour" / ".harness" / "data" / "heldout_labels" / "labels.npy").resolve()
    assert labels.is_file()
    return labels


@pytest.fixture(scope="module", params=["local", "docker"])
def attack_run(request, tmp_path_factory, neighbour_labels) -> AttackRun:
    sandbox = request.param
    if sandbox == "docker" and not engine_available():
        unavailable("no Docker engine answers")
    gaps = local_gaps() if sandbox == "local" else {}
    base = tmp_path_factory.mktemp(f"adversarial-{sandbox}")
    recipe = make_recipe(base)
    canary_dir = base / "canary"
    canary_dir.mkdir()
    canary_text = f"canary {uuid.uuid4().hex}\n"
    (canary_dir / "canary.txt").write_text(canary_text)
    listener = Listener()
    token = "harness-adv-" + uuid.uuid4().hex[:12]
    services = [Listener(str(canary_dir / "service.sock")), Listener("\0" + token)]
    target = Target(run_dir=(base / "r").resolve(), recipe_dir=recipe.resolve(), canary=canary_dir / "canary.txt",
                    outside=canary_dir / f"planted-{token}", port=listener.port,
                    host_addresses=host_addresses(), token=token, neighbour_labels=neighbour_labels,
                    unix_service=canary_dir / "service.sock", abstract_service=token)
    proposals = write_proposals(base / "attacks.jsonl", proposals_for(target, gaps, sandbox))
    recipe_eval_digest = tree_digest(recipe / "eval")
    env = {**os.environ, "COLUMNS": "200", "ANTHROPIC_API_KEY": SECRET, "OPENAI_API_KEY": SECRET, **OTHER_SECRETS}
    try:
        result = run_cli("run", recipe, "--agent", "scripted", "--proposals", proposals, "--trials", "100",
                         "--fidelity", "smoke", "--sandbox", sandbox, "--out", base, "--run-id", "r", env=env)
    finally:
        listener.close()
        for service in services:
            service.close()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    replay = run_cli("replay", target.run_dir, "--verify", "--json", env=env)
    run = AttackRun(sandbox=sandbox, run_dir=target.run_dir, target=target, recipe_eval_digest=recipe_eval_digest,
                    canary_text=canary_text, gaps=gaps,
                    listener_hits=[*listener.connections, *(c for s in services for c in s.connections)],
                    replay_code=replay.returncode, report=json.loads(replay.stdout), cli_output=output)
    for path in git(target.run_dir, "ls-tree", "-r", "--name-only", "ledger").split():
        if re.search(r"/t\d{4}\.json$", path):
            record = json.loads(git(target.run_dir, "show", f"ledger:{path}"))
            run.records[record["trial"]["id"]] = record
    return run


# -- what no attack may harm ----------------------------------------------------


def assert_nothing_else_harmed(run: AttackRun, trial: dict) -> None:
    assert run.replay_code == 0 and run.report["verified"], run.report["problems"]
    assert run.target.canary.read_text() == run.canary_text
    assert not run.target.outside.exists()
    assert_refs_are_the_harness_s(run)
    # No trial of the run scored like one that knew the held-out labels; none won at all.
    assert run.report["best"]["id"] == "t0000", run.report["best"]
    assert all(t["score"] is None or t["score"] < PERFECT for t in run.report["trials"])
    assert trial["score"] is None or trial["score"] < PERFECT
    lineage = Lineage.open(run.run_dir)
    try:
        digest = lineage.run_info().evaluator_digest
    finally:
        lineage.close()
    assert tree_digest(run.run_dir / ".harness" / "evaluator") == digest
    assert tree_digest(run.target.recipe_dir / "eval") == run.recipe_eval_digest
    # The run went on: the next trial has an outcome, and the last (honest) one an ordinary label.
    ids = [t["id"] for t in run.report["trials"]]
    following = run.report["trials"][ids.index(trial["id"]) + 1]
    assert following["label"] is not None
    assert run.row(HONEST)["label"] == "not_improved"


def assert_refs_are_the_harness_s(run: AttackRun) -> None:
    refs = dict(line.split() for line in git(run.run_dir, "for-each-ref", "--format=%(refname) %(objectname)").splitlines())
    trial_ids = [t["id"] for t in run.report["trials"]]
    assert set(refs) == {"refs/heads/best", "refs/heads/ledger", *(f"refs/trials/{t}" for t in trial_ids)}
    for tid in trial_ids:
        assert refs[f"refs/trials/{tid}"] == run.records[tid]["trial"]["commit"]
    assert refs["refs/heads/best"] == run.records["t0000"]["trial"]["commit"]
    hooks = run.run_dir / ".git" / "hooks"
    planted = [p.name for p in hooks.iterdir() if not p.name.endswith(".sample")] if hooks.is_dir() else []
    assert planted == []
    assert "hooksPath" not in (run.run_dir / ".git" / "config").read_text()


# -- what each attack must show besides its label -----------------------------------


def check_forge_metrics(run: AttackRun, trial: dict) -> None:
    baseline = run.row("Baseline: the recipe's starting source")["score"]
    assert abs(trial["score"] - baseline) < 0.025, (trial["score"], baseline)  # the evaluator's number
    assert "ap: 1.0000" in run.log(trial["id"], "train")  # the trial's own claim, ignored


def check_timed_out(run: AttackRun, trial: dict) -> None:
    train = run.phase(trial["id"], "train")
    assert train["timed_out"] and train["wallclock_s"] >= BUDGET_S


def check_heldout_not_read(run: AttackRun, trial: dict) -> None:
    log = run.log(trial["id"], "train")
    assert "heldout: read []" in log, log[-2000:]
    # Both the run's own labels and those of another run of the recipe were tried and refused.
    assert f"heldout: blocked {run.run_dir}/.harness/data/heldout_labels/labels.npy" in log, log[-2000:]
    assert f"heldout: blocked {run.target.neighbour_labels} " in log, log[-2000:]


def check_generator_not_reached(run: AttackRun, trial: dict) -> None:
    log = run.log(trial["id"], "eval")
    assert log.count("generator: blocked") == 3, log[-2000:]


def check_eval_view_is_code_only(run: AttackRun, trial: dict) -> None:
    log = run.log(trial["id"], "eval")
    assert "evalview: files ['predict.py']" in log and "READ" not in log, log[-2000:]
    assert (run.target.recipe_dir / "eval" / PLANTED).is_file()  # the data was there to be found


def check_network(run: AttackRun, trial: dict) -> None:
    log = run.log(trial["id"], "train")
    assert run.listener_hits == []
    assert "CONNECTED" not in log and "resolved" not in log
    assert log.count("network: blocked") >= len(run.target.host_addresses) + 2, log[-2000:]


def check_fork_bomb(run: AttackRun, trial: dict) -> None:
    train = run.phase(trial["id"], "train")
    assert train["exit_code"] == 3, train["log_tail"]
    started = int(re.search(r"fork bomb: started (\d+) refused", train["log_tail"]).group(1))
    assert 0 < started <= PIDS
    assert train["wallclock_s"] < BUDGET_S
    assert processes_named(run.target.token) == []  # every process of the bomb is gone
    assert subprocess.run(["true"]).returncode == 0  # and the host can still start processes
    if run.sandbox == "local":
        assert train["limits"]["pids"] == PIDS and train["limits"]["pids_refused"] >= 1
    else:
        assert train["limits"]["pids"] == PIDS


def check_oom(run: AttackRun, trial: dict) -> None:
    assert run.phase(trial["id"], "train")["oom"]


def check_output_capped(run: AttackRun, trial: dict) -> None:
    train = run.phase(trial["id"], "train")
    assert train["output_bytes"] >= 20_000_000
    log = run.run_dir / ".harness" / "trials" / trial["id"] / "train-0.log"
    assert log.stat().st_size <= OUTPUT_BYTES
    assert "trained on" in log.read_text()[-2000:]  # the tail is kept, and it trained after the flood


def check_artifact(run: AttackRun, trial: dict) -> None:
    assert run.outcome(trial["id"])["artifact_bytes"] > ARTIFACT_BYTES


def check_write_outside(run: AttackRun, trial: dict) -> None:
    log = run.log(trial["id"], "train")
    assert "WROTE" not in log and log.count("write outside: blocked") == 5, log[-2000:]
    assert not Path(f"/etc/{run.target.token}").exists()
    assert not Path(f"/usr/lib/python3/{run.target.token}.pth").exists()
    assert not (run.run_dir / "planted.txt").exists()


def check_evaluator_untouched(run: AttackRun, trial: dict) -> None:
    train, evaluation = run.log(trial["id"], "train"), run.log(trial["id"], "eval")
    assert "REWROTE" not in train + evaluation
    assert train.count("evaluator: blocked") == 2 and evaluation.count("evaluator: blocked") == 2


def check_no_keys(run: AttackRun, trial: dict) -> None:
    assert "keys: found 0" in run.log(trial["id"], "train")
    for folder, dirs, files in os.walk(run.run_dir):  # never following what the attacks left
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            path = Path(folder, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_size < 64 << 20:  # not the 2 GiB sparse file
                assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in git(run.run_dir, "log", "-p", "--all")


def check_lineage_untouched(run: AttackRun, trial: dict) -> None:
    log = run.log(trial["id"], "train")
    assert "WROTE" not in log and log.count("lineage: blocked") == 5, log[-2000:]


# -- hostile outputs ------------------------------------------------------------------


def explanation(run: AttackRun, trial: dict) -> str:
    return run.outcome(trial["id"])["explanation"]


def refused(*entries: str) -> Callable[[AttackRun, dict], None]:
    """A check that the explanation names each entry as refused before anything read it."""

    def check(run: AttackRun, trial: dict) -> None:
        text = explanation(run, trial)
        assert text.startswith("refused before reading: "), text
        for entry in entries:
            assert entry in text, text

    return check


def check_fifo_refused(run: AttackRun, trial: dict) -> None:
    refused("preds/labels.fifo: fifo")(run, trial)
    assert run.phase(trial["id"], "eval")["exit_code"] == 0  # the phase ended; the host did not wait on it


def check_no_device(run: AttackRun, trial: dict) -> None:
    log = run.log(trial["id"], "train")
    assert "MADE" not in log and log.count("device: blocked") == 2, log[-2000:]


def check_not_unpickled(run: AttackRun, trial: dict) -> None:
    assert "Object arrays cannot be loaded when allow_pickle=False" in explanation(run, trial)
    assert not run.target.outside.exists()  # the payload never ran on the host


def check_hostile_text_shown_safely(run: AttackRun, trial: dict) -> None:
    tid = trial["id"]
    assert run.records[tid]["trial"]["proposal"]["hypothesis"] == trial["hypothesis"]  # the record keeps it
    assert "\x1b[2J" in run.log(tid, "train")  # and the log what the trial wrote
    show = run_cli("show", run.run_dir, tid, env=dict(os.environ, COLUMNS="200"))
    assert show.returncode == 0, show.stderr
    for text in (run.cli_output, show.stdout):  # what the auditor's terminal gets
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), repr(text[-500:])
    assert "<script>alert('report')</script>" in show.stdout  # shown, as text
    html_path = run.run_dir.parent / "report.html"
    report = run_cli("report", run.run_dir, "--html", html_path, env=dict(os.environ))
    assert report.returncode == 0, report.stderr
    html = html_path.read_text()
    assert "<script>alert" not in html and "</script><script>x" not in html
    assert html.count("<script") == 2  # the data element and the report's own script, nothing planted


# -- no carry-over -------------------------------------------------------------------------


def check_traces_left(run: AttackRun, trial: dict) -> None:
    train, evaluation = run.log(trial["id"], "train"), run.log(trial["id"], "eval")
    left = int(re.search(r"traces: left in (\d+) places", train).group(1))
    assert left >= 5, train[-2000:]  # tmp, caches, user site, work dir, outputs at least
    assert "traces in eval: found []" in evaluation, evaluation[-2000:]  # its own eval phase saw none
    assert "CARRIED OVER" not in evaluation


def check_no_traces_found(run: AttackRun, trial: dict) -> None:
    leave = run.row(next(a.hypothesis for a in ATTACKS if a.id == "leave-traces"))
    assert trial["id"] > leave["id"]
    train, evaluation = run.log(trial["id"], "train"), run.log(trial["id"], "eval")
    assert "traces in train: found []" in train, train[-2000:]
    assert "traces in eval: found []" in evaluation, evaluation[-2000:]
    assert "CARRIED OVER" not in train + evaluation


def check_environment_clean(run: AttackRun, trial: dict) -> None:
    log = run.log(trial["id"], "train")
    names = re.search(r"^environment: (.*)$", log, re.M).group(1).split()
    assert "PATH" in names and "HARNESS_OUT" in names
    planted = {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", *OTHER_SECRETS}
    assert planted.isdisjoint(names), names
    for value in (SECRET, *OTHER_SECRETS.values()):
        assert value not in log


def check_host_services_unreachable(run: AttackRun, trial: dict) -> None:
    log = run.log(trial["id"], "train")
    assert "REACHED" not in log and log.count("service: blocked") == 5, log[-2000:]
    assert run.listener_hits == []


def check_phase_memory_cap(run: AttackRun, trial: dict) -> None:
    train = run.phase(trial["id"], "train")
    assert train["oom"], train["log_tail"]
    if run.sandbox == "local":
        assert train["limits"]["memory_cgroup_bytes"] == MEMORY_MB << 20 and train["limits"]["oom_kills"] >= 1


CHECKS = {
    "forge-metrics": check_forge_metrics,
    "patch-timer": check_timed_out,
    "read-heldout-train": check_heldout_not_read,
    "regenerate-heldout": check_generator_not_reached,
    "read-eval-folder-data": check_eval_view_is_code_only,
    "network": check_network,
    "fork-bomb": check_fork_bomb,
    "memory-bomb": check_oom,
    "infinite-loop": check_timed_out,
    "output-flood": check_output_capped,
    "oversized-artifact": check_artifact,
    "write-outside": check_write_outside,
    "modify-evaluator": check_evaluator_untouched,
    "steal-api-keys": check_no_keys,
    "write-lineage": check_lineage_untouched,
    "symlink-outputs": refused("out/leak.npy: symlink", "out/passwd: symlink", "out/evaluator: symlink"),
    "hardlink-output": refused("out/weights.bin: hardlink"),
    "fifo-in-predictions": check_fifo_refused,
    "device-output": check_no_device,
    "sparse-output": refused("out/claims.bin: sparse"),
    "huge-workspace-file": refused("workspace: huge"),
    "many-entries": refused("out: too-many-entries"),
    "pickled-predictions": check_not_unpickled,
    "hostile-text": check_hostile_text_shown_safely,
    "leave-traces": check_traces_left,
    "find-traces": check_no_traces_found,
    "dump-environment": check_environment_clean,
    "reach-host-services": check_host_services_unreachable,
    "memory-workers": check_phase_memory_cap,
}


def processes_named(token: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if token.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                    found.append(int(name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.id)
def test_attack_gets_its_label_and_harms_nothing(attack_run: AttackRun, attack: Attack) -> None:
    trial = attack_run.trial(attack)
    record = attack_run.outcome(trial["id"])
    assert trial["label"] == attack.label, record["explanation"]
    assert_nothing_else_harmed(attack_run, trial)
    if attack.id in CHECKS:
        CHECKS[attack.id](attack_run, trial)


def test_every_attack_has_its_own_check_or_is_static():
    static = {a.id for a in ATTACKS if a.label == "illegal_edit"}
    assert {a.id for a in ATTACKS} == static | set(CHECKS)


# -- host-side code never unpickles what a trial wrote ------------------------------------

UNPICKLING = re.compile(
    r"\bimport (?:pickle|dill|cloudpickle|shelve|joblib)\b|\bfrom (?:pickle|dill|cloudpickle|shelve|joblib)\b"
    r"|\b(?:pickle|dill|joblib|marshal)\.loads?\(|read_pickle\(|allow_pickle\s*=\s*True"
    r"|torch\.load\((?![^)]*weights_only\s*=\s*True)"
)
"""Ways to unpickle: pickle-family modules, allow_pickle=True, torch.load without weights_only=True."""
TRUSTED_UNPICKLING = {
    "recipes/airbench96/eval/prepare.py": "reads CIFAR-10's official python archive, whose digest it checks, "
                                          "before any trial exists (never a trial's file)",
}


def host_side_files() -> list[Path]:
    """Every file of ours that runs on the host: the packages, and each recipe's evaluator files
    but those its phase commands run inside the sandbox (predict.py, harness_train.py, ...)."""
    from harness.recipe_loader import load_recipe

    root = RECIPES_ROOT.parent
    files = [p for pkg in ("harness", "evaluators", "sandboxes", "trajectories") for p in (root / pkg).rglob("*.py")]
    for folder in sorted(p for p in RECIPES_ROOT.iterdir() if (p / "recipe.toml").is_file()):
        loaded = load_recipe(folder)
        commands = loaded.spec.phases.train + " " + loaded.spec.phases.eval
        in_sandbox = set(re.findall(r"([A-Za-z0-9_]+\.py)", commands))
        files += [p for p in loaded.evaluator_dir.rglob("*.py") if p.name not in in_sandbox]
    return files


def test_no_host_side_code_unpickles():
    root = RECIPES_ROOT.parent
    files = host_side_files()
    assert root / "recipes" / "collision" / "eval" / "score.py" in files
    assert root / "recipes" / "collision" / "eval" / "predict.py" not in files
    found = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if UNPICKLING.search(line.split("#")[0]) and rel not in TRUSTED_UNPICKLING:
                found.append(f"{rel}:{number}: {line.strip()}")
    assert found == []
    for rel in TRUSTED_UNPICKLING:
        assert UNPICKLING.search((root / rel).read_text())  # still needed, else drop the exemption
