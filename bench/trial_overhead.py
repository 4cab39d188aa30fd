"""Per-trial harness overhead over a bare sandbox run, local and Docker, in one run.

A tiny recipe is written to a temporary folder: its train phase sleeps
`--train-s` seconds (5 by default) and writes one number, its eval phase copies
that number into the predictions, the evaluator scores it on the host. For each
sandbox (`local`, and `docker` when an engine answers):

* **bare**: the recipe's train and eval commands run directly through the same
  sandbox (`LocalSandbox.run` / `DockerSandbox.run`) with the mounts a trial
  gets (a workspace holding the source, out, the train data; then the workspace
  and out read-only, the evaluator, the held-out inputs, preds), then the
  evaluator's score function: no lineage, no agent, no checks;
* **harness**: a real run of the `random` agent through the loop
  (`harness.loop.Run`: propose, legality, record, materialise the workspace,
  preflight, train, tamper and size checks, eval, score, keep rule, record).

The two alternate in blocks of `--block` trials (bare block, harness block, ...)
so that load on the machine hits both alike. Per-trial wall of the harness: a
block's wall (`Run.run(block)`: whole trial cycles) over its trials; of bare:
one train + eval + score. Overhead = (harness - bare) / bare, from the medians
(bare per trial, harness per block). Run start-up (data preparation, the baseline trial) is not
per-trial and is left out.

    python bench/trial_overhead.py [--trials 10] [--block 2] [--train-s 5] [--sandboxes local,docker]
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.agents.base import make_agent  # noqa: E402
from harness.evaluator_code import load_entry  # noqa: E402
from harness.loop import Run  # noqa: E402
from harness.recipe_loader import LoadedRecipe, load_recipe  # noqa: E402
from harness.types import Trial, TrialRecord  # noqa: E402
from sandboxes import make_sandbox  # noqa: E402
from sandboxes.base import Limits, Mount, PhaseRequest, Sandbox  # noqa: E402

RECIPE_TOML = '''\
name = "overhead"
description = "Sleeps in the train phase; a benchmark of the harness's per-trial overhead."
source = {{ type = "local", path = "src" }}
editable = ["config.py", "train.py"]
protected = ["data.py"]

[phases]
train = "python train.py"
eval = "python {{eval}}/predict.py"

[evaluator]
path = "eval"
prepare = "prepare.py:prepare"
score = "score.py:score"

[metric]
name = "value"
direction = "maximize"

[budgets]
train_wallclock_s = {budget}
eval_wallclock_s = 60

[[knobs]]
name = "VALUE"
file = "config.py"
kind = "hparam"
choices = [1, 2, 3, 4, 5, 6, 7, 8]

[[knobs]]
name = "WIDTH"
file = "config.py"
kind = "arch"
choices = [8, 16, 32, 64]
'''
FILES = {
    "src/config.py": "VALUE = 1\nWIDTH = 8\n",
    "src/data.py": "SEED = 0\n",
    "src/train.py": (
        "import os\nimport time\n\nimport config\n\ntime.sleep({train_s})\n"
        "with open(os.path.join(os.environ['HARNESS_OUT'], 'value.txt'), 'w') as fh:\n"
        "    fh.write(str(config.VALUE))\n"
    ),
    "eval/prepare.py": (
        "from pathlib import Path\n\n\ndef prepare(train_dir, heldout_inputs_dir, heldout_labels_dir):\n"
        "    for folder, name in ((train_dir, 'train.txt'), (heldout_inputs_dir, 'inputs.txt'),\n"
        "                         (heldout_labels_dir, 'labels.txt')):\n"
        "        Path(folder).mkdir(parents=True, exist_ok=True)\n"
        "        (Path(folder) / name).write_text('1\\n')\n"
    ),
    "eval/predict.py": (
        "import os\nimport shutil\n\n"
        "shutil.copy(os.path.join(os.environ['HARNESS_OUT'], 'value.txt'),\n"
        "            os.path.join(os.environ['HARNESS_PREDS'], 'value.txt'))\n"
    ),
    "eval/score.py": (
        "from pathlib import Path\n\n\ndef score(preds_dir, heldout_labels_dir):\n"
        "    path = Path(preds_dir) / 'value.txt'\n"
        "    if not path.is_file():\n"
        "        raise ValueError('no value.txt')\n"
        "    return {'value': float(path.read_text())}\n"
    ),
}


def write_recipe(folder: Path, train_s: float) -> LoadedRecipe:
    (folder / "recipe.toml").parent.mkdir(parents=True, exist_ok=True)
    (folder / "recipe.toml").write_text(RECIPE_TOML.format(budget=int(train_s * 4 + 30)))
    for path, text in FILES.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.format(train_s=train_s) if path == "src/train.py" else text)
    return load_recipe(str(folder))


class Timer:
    """A quiet reporter that counts finished trials and stops on any that failed."""

    def __init__(self) -> None:
        self.finished: list[float] = []

    def trial_started(self, trial: Trial) -> None:
        pass

    def trial_finished(self, record: TrialRecord, best: TrialRecord) -> None:
        if record.outcome is None or record.outcome.label.value not in ("keep", "not_improved"):
            label = record.outcome.label.value if record.outcome else "no outcome"
            raise SystemExit(f"error: trial {record.trial.id} ended {label}: "
                             f"{record.outcome.explanation if record.outcome else ''}")
        self.finished.append(time.perf_counter())

    def note(self, text: str) -> None:
        pass


class Bare:
    """The recipe's phases straight through a sandbox, the way a trial's are set up."""

    def __init__(self, recipe: LoadedRecipe, sandbox: Sandbox, folder: Path) -> None:
        self.recipe, self.sandbox, self.folder = recipe, sandbox, folder
        spec = recipe.spec
        self.data = folder / "data"
        load_entry(recipe.evaluator_dir, spec.evaluator.prepare)(self.data / "train", self.data / "heldout_inputs",
                                                                 self.data / "heldout_labels")
        self.score = load_entry(recipe.evaluator_dir, spec.evaluator.score)
        self.count = 0

    def _limits(self, wallclock_s: float) -> Limits:
        b = self.recipe.spec.budgets
        return Limits(wallclock_s=wallclock_s, memory_mb=b.memory_mb, output_bytes=b.output_bytes, pids=b.pids,
                      cpus=b.cpus)

    def trial(self) -> float:
        """Seconds for one train + eval + score."""
        self.count += 1
        spec = self.recipe.spec
        root = self.folder / f"bare-{self.count}"
        workspace, out, preds = root / "workspace", root / "out", root / "preds"
        shutil.copytree(self.recipe.source_dir, workspace)
        out.mkdir()
        preds.mkdir()
        started = time.perf_counter()
        train = self.sandbox.run(PhaseRequest(
            phase="train", command=shlex.split(spec.phases.train), workdir="workspace",
            mounts=[Mount(source=workspace, target="workspace", read_only=False),
                    Mount(source=out, target="out", read_only=False),
                    Mount(source=self.data / "train", target="data", read_only=True)],
            env={"HARNESS_SEED": "0"}, limits=self._limits(spec.budgets.train_wallclock_s),
            log_path=root / "train.log"))
        evaluation = self.sandbox.run(PhaseRequest(
            phase="eval", command=shlex.split(spec.phases.eval), workdir="workspace",
            mounts=[Mount(source=workspace, target="workspace", read_only=True),
                    Mount(source=out, target="out", read_only=True),
                    Mount(source=self.recipe.evaluator_dir, target="eval", read_only=True),
                    Mount(source=self.data / "heldout_inputs", target="heldout", read_only=True),
                    Mount(source=preds, target="preds", read_only=False)],
            env={"HARNESS_SEED": "0"}, limits=self._limits(spec.budgets.eval_wallclock_s),
            log_path=root / "eval.log"))
        self.score(preds, self.data / "heldout_labels")
        seconds = time.perf_counter() - started
        if train.exit_code != 0 or evaluation.exit_code != 0:
            raise SystemExit(f"error: a bare phase failed: {train.log_tail} {evaluation.log_tail}")
        return seconds


def sandbox_for(kind: str, recipe: LoadedRecipe) -> Sandbox | None:
    if kind == "local":
        return make_sandbox("local")
    from sandboxes.images import engine_available, ensure_image

    if not engine_available():
        return None
    return make_sandbox("docker", image=ensure_image(recipe.folder, recipe.spec.sandbox, say=lambda text: None))


def measure(kind: str, recipe: LoadedRecipe, trials: int, block: int, folder: Path) -> tuple[list[float], list[float]] | None:
    """Per-trial seconds (bare, harness) for one sandbox; None when it is not available."""
    sandbox = sandbox_for(kind, recipe)
    if sandbox is None:
        return None
    bare = Bare(recipe, sandbox, folder / f"bare-{kind}")
    timer = Timer()
    run = Run.create(recipe, folder / f"run-{kind}", agent=make_agent("random", seed=0), sandbox=sandbox,
                     reporter=timer, seed=0)
    bare_times: list[float] = []
    harness_times: list[float] = []
    try:
        run.run(0)  # the baseline: run start-up, not per-trial
        bare.trial()  # warm-up of the bare path, not measured
        while len(bare_times) < trials:
            bare_times += [bare.trial() for _ in range(block)]
            started = time.perf_counter()
            run.run(block)
            harness_times.append((time.perf_counter() - started) / block)
    finally:
        run.close()
    if len(timer.finished) != 1 + len(harness_times) * block:
        raise SystemExit(f"error: the {kind} run finished {len(timer.finished)} trials, not {1 + trials}")
    return bare_times, harness_times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="measured trials per way and sandbox")
    parser.add_argument("--block", type=int, default=2, help="trials per alternating block")
    parser.add_argument("--train-s", type=float, default=5.0, help="seconds the train phase sleeps")
    parser.add_argument("--sandboxes", default="local,docker", help="which sandboxes (local, docker)")
    args = parser.parse_args()
    if args.block < 1 or args.trials < args.block:
        parser.error("--block must be at least 1 and --trials at least --block")
    folder = Path(tempfile.mkdtemp(prefix="harness-overhead-"))
    rows = []
    try:
        recipe = write_recipe(folder / "recipe", args.train_s)
        for kind in args.sandboxes.split(","):
            result = measure(kind, recipe, args.trials, args.block, folder)
            rows.append((kind, result))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"per-trial harness overhead: train phase {args.train_s:g} s, {args.trials} trials per way, "
          f"blocks of {args.block}, medians")
    head = f"{'sandbox':<9}{'bare s':>9}{'harness s':>11}{'overhead s':>12}{'overhead':>10}{'n bare':>8}{'n blocks':>10}"
    print(head)
    print("-" * len(head))
    for kind, result in rows:
        if result is None:
            print(f"{kind:<9}  not measured: no Docker engine answers")
            continue
        bare_times, harness_times = result
        b, h = statistics.median(bare_times), statistics.median(harness_times)
        print(f"{kind:<9}{b:>9.3f}{h:>11.3f}{h - b:>+12.3f}{(h - b) / b:>10.1%}{len(bare_times):>8}"
              f"{len(harness_times):>10}")
    print("bare: train + eval through the sandbox + score; harness: whole trial cycles of the loop; "
          "overhead = (harness - bare) / bare")
    return 0


if __name__ == "__main__":
    sys.exit(main())
