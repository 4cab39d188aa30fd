"""A naive lineage writer next to the real one, on the same synthetic trials in one run.

The same N planned trials (`bench/synthetic_lineage.py`) are recorded twice:

* **real**: `trajectories.lineage.Lineage`, with the git calls the loop makes per
  trial (objects written from Python, refs moved through one long-lived
  `git update-ref --stdin`);
* **naive**: one GitPython porcelain call chain per trial, the way a first
  version would write it: check out the parent (`reset --hard`), write the
  edited file into the work tree, `index.add`, `index.commit`, create
  `refs/trials/<id>`, `git diff-tree` for the canonical diff; then for each
  ledger event write the record as a JSON file, add it through a second index,
  commit it and move the ledger ref; move `best` on keep.

Both produce the same layout (trial commits, ledger commits holding
`run.json` and `trials/<shard>/<id>.json`, the same refs), and both lineages
must pass `harness.replay.replay` afterwards (not timed), so the two did the
same work. The two ways alternate in slices of trials (each slice recorded by
one way, then the other) so that load on the machine hits both alike. Prints
the per-trial medians of the slices and the ratio naive / real.

    python bench/naive_lineage.py [--trials 1000] [--slices 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import git

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic_lineage import (  # noqa: E402
    CONFIG,
    PlannedTrial,
    Recorder,
    collision_spec,
    LineageRecorder,
    outcome_of,
    plan_trials,
    proposal_of,
    run_info,
    source_dir,
)

from harness.replay import replay  # noqa: E402
from harness.types import BASELINE_TRIAL_ID, Label, Trial, TrialRecord, trial_id  # noqa: E402
from trajectories._git import format_message, git_env  # noqa: E402
from trajectories.lineage import DIFF_ARGS, RUN_FILE, dump_json, record_path, trial_trailers  # noqa: E402


class NaiveLineage(Recorder):
    """A lineage written with GitPython porcelain, one call chain per trial."""

    def __init__(self, run_dir: Path, run_id: str) -> None:
        os.environ.update({k: v for k, v in git_env(None).items() if k.startswith(("GIT_", "LC_", "LANG"))})
        self.run_id = run_id
        self.repo = git.Repo.init(run_dir)
        self.root = Path(run_dir)
        self.ledger_index = git.IndexFile(self.repo, file_path=str(self.root / ".git" / "ledger-index"))
        self.ledger_head: git.Commit | None = None
        self.commits: dict[int, git.Commit] = {}

    def _ledger(self, path: str, data: bytes, subject: str, trailers: dict[str, str]) -> None:
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
        self.ledger_index.add([path])
        parents = [self.ledger_head] if self.ledger_head is not None else []
        self.ledger_head = self.ledger_index.commit(format_message(subject, trailers), parent_commits=parents,
                                                    head=False)
        git.Reference.create(self.repo, "refs/heads/ledger", self.ledger_head, force=True)

    def close(self) -> None:
        self.repo.close()

    def _baseline(self, planned: PlannedTrial) -> None:
        shutil.copytree(source_dir(), self.root, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        self.repo.index.add(sorted(p.name for p in source_dir().iterdir() if p.is_file()))
        trailers = trial_trailers(BASELINE_TRIAL_ID, None, planned.agent, None, planned.fidelity)
        commit = self.repo.index.commit(format_message(planned.hypothesis, trailers), parent_commits=[], head=True)
        git.Reference.create(self.repo, f"refs/trials/{BASELINE_TRIAL_ID}", commit)
        self.commits[0] = commit
        info = run_info(collision_spec(), commit.hexsha, self.run_id)
        self._ledger(RUN_FILE, dump_json(info), f"start {self.run_id}",
                     {"Event": "start", "Run-Id": self.run_id, "Baseline-Commit": commit.hexsha})
        self.events(planned, Trial(id=BASELINE_TRIAL_ID, run_id=self.run_id, proposal=proposal_of(planned, ""),
                                   fidelity=planned.fidelity, seeds=planned.seeds, commit=commit.hexsha))

    def _trial(self, planned: PlannedTrial) -> None:
        assert planned.parent is not None
        tid, parent_id = trial_id(planned.number), trial_id(planned.parent)
        parent = self.commits[planned.parent]
        self.repo.head.reset(parent, index=True, working_tree=True)
        if planned.label.ran:
            (self.root / CONFIG).write_text(planned.config)
            self.repo.index.add([CONFIG])
        trailers = trial_trailers(tid, parent_id, planned.agent, planned.specialist, planned.fidelity)
        commit = self.repo.index.commit(format_message(planned.hypothesis, trailers), parent_commits=[parent],
                                        head=False)
        git.Reference.create(self.repo, f"refs/trials/{tid}", commit)
        self.commits[planned.number] = commit
        diff = planned.diff
        if planned.label.ran:
            diff = self.repo.git.diff_tree(*DIFF_ARGS, parent.tree.hexsha, commit.tree.hexsha,
                                           strip_newline_in_stdout=False)
        self.events(planned, Trial(id=tid, run_id=self.run_id, parent=parent_id, proposal=proposal_of(planned, diff),
                                   fidelity=planned.fidelity, seeds=planned.seeds, commit=commit.hexsha))

    def events(self, planned: PlannedTrial, trial: Trial) -> None:
        """The proposed and outcome events of a trial, then `best` on keep."""
        path = record_path(trial.id)
        self._ledger(path, dump_json(TrialRecord(trial=trial)), f"proposed {trial.id}",
                     {"Event": "proposed", "Trial-Id": trial.id, "Trial-Commit": trial.commit})
        done = TrialRecord(trial=trial, outcome=outcome_of(planned, f"synthetic {planned.label.value}"))
        self._ledger(path, dump_json(done), f"outcome {trial.id}: {planned.label.value}",
                     {"Event": "outcome", "Trial-Id": trial.id, "Trial-Commit": trial.commit,
                      "Label": planned.label.value})
        if planned.label is Label.keep:
            git.Reference.create(self.repo, "refs/heads/best", self.commits[planned.number], force=True)


def measure(trials: int, slices: int, seed: int, folder: Path) -> dict[str, list[float]]:
    """Seconds per trial of each slice, per way."""
    plan = plan_trials(trials, seed)
    bounds = [round(trials * i / slices) for i in range(slices + 1)]
    # One write per event, as the naive writer does (the loop groups more with two or more slots).
    recorders = {"real": LineageRecorder(folder / "real", "synthetic", grouped=False),
                 "naive": NaiveLineage(folder / "naive", "synthetic")}
    per_trial: dict[str, list[float]] = {way: [] for way in recorders}
    try:
        for i in range(slices):
            order = ["real", "naive"] if i % 2 == 0 else ["naive", "real"]
            for way in order:
                started = time.perf_counter()
                for planned in plan[bounds[i] : bounds[i + 1]]:
                    recorders[way].record(planned)
                per_trial[way].append((time.perf_counter() - started) / (bounds[i + 1] - bounds[i]))
    finally:
        for recorder in recorders.values():
            recorder.close()
    for way in recorders:  # both wrote a lineage the audit accepts, so they did the same work
        audit = replay(folder / way)
        if not audit.verified or len(audit.trials) != trials:
            raise SystemExit(f"error: the {way} lineage does not verify: {audit.problems[:5]}")
    return per_trial


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000, help="synthetic trials recorded by each way")
    parser.add_argument("--slices", type=int, default=5, help="alternating slices (each way records each slice)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic run")
    args = parser.parse_args()
    if args.slices < 1 or args.trials < 2 * args.slices:
        parser.error("--trials must be at least twice --slices (and --slices at least 1)")
    folder = Path(tempfile.mkdtemp(prefix="harness-naive-"))
    try:
        per_trial = measure(args.trials, args.slices, args.seed, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    real, naive = statistics.median(per_trial["real"]), statistics.median(per_trial["naive"])
    print(f"naive vs real lineage writer: {args.trials} synthetic collision trials each, {args.slices} alternating "
          f"slices, {os.cpu_count()} CPUs")
    head = f"{'writer':<44}{'ms/trial (median)':>18}{'slices ms/trial':>34}"
    print(head)
    print("-" * len(head))
    for name, way, value in (("real (trajectories.lineage)", "real", real),
                             ("naive (GitPython porcelain per trial)", "naive", naive)):
        slices = " ".join(f"{x * 1000:.1f}" for x in per_trial[way])
        print(f"{name:<44}{value * 1000:>18.2f}{slices:>34}")
    print(f"ratio naive/real: {naive / real:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
