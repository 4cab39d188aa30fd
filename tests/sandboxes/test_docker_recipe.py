"""A real collision trial (train, then eval) in the recipe's image through the Docker sandbox.

Built like harness/trial_exec.py builds its phase requests: train sees the
workspace (rw), its output folder (rw) and the train data (ro); eval sees the
workspace and the train outputs read-only, the evaluator's pristine code, the
held-out inputs (never the labels) and a predictions folder. The score is
computed on the host by the evaluator. Builds the recipe image when it is
missing (CI builds it beforehand in .ci/run).
"""

from __future__ import annotations

import shlex
import shutil
import uuid

import pytest

from harness.evaluator_code import load_entry, snapshot_evaluator
from harness.recipe_loader import load_recipe
from sandboxes import Limits, Mount, PhaseRequest
from sandboxes.docker import DockerSandbox
from sandboxes.images import ensure_image

pytestmark = pytest.mark.docker


def test_collision_trial_runs_in_its_image(tmp_path, docker_client):
    recipe = load_recipe("collision")
    spec = recipe.spec
    assert spec.sandbox.dockerfile == "Dockerfile"
    image = ensure_image(recipe.folder, spec.sandbox, client=docker_client)
    sandbox = DockerSandbox(image=image)

    evaluator = tmp_path / "evaluator"
    snapshot_evaluator(recipe.evaluator_dir, evaluator)
    train_data, heldout_inputs, heldout_labels = (tmp_path / n for n in ("train", "heldout_inputs", "heldout_labels"))
    load_entry(evaluator, spec.evaluator.prepare)(train_data, heldout_inputs, heldout_labels)
    workspace, out, preds = (tmp_path / n for n in ("workspace", "out", "preds"))
    shutil.copytree(recipe.source_dir, workspace)
    out.mkdir()
    preds.mkdir()

    budgets = spec.budgets
    fidelity = spec.fidelities["smoke"]
    env = {"HARNESS_SEED": "0", "HARNESS_FIDELITY": "smoke", **fidelity.env}
    labels = {"harness.run": "recipe-" + uuid.uuid4().hex[:8], "harness.trial": "t0000", "harness.seed": "0"}

    def limits(wallclock_s: float) -> Limits:
        return Limits(wallclock_s=wallclock_s, memory_mb=budgets.memory_mb, output_bytes=budgets.output_bytes,
                      pids=budgets.pids, cpus=budgets.cpus)

    train = sandbox.run(PhaseRequest(
        phase="train",
        command=shlex.split(spec.phases.train),
        workdir="workspace",
        mounts=[
            Mount(source=workspace, target="workspace", read_only=False),
            Mount(source=out, target="out", read_only=False),
            Mount(source=train_data, target="data", read_only=True),
        ],
        env=env,
        limits=limits(budgets.train_wallclock_s),
        labels={**labels, "harness.phase": "train"},
        log_path=tmp_path / "train.log",
    ))
    assert train.exit_code == 0, train.log_tail
    assert not train.timed_out and not train.oom
    assert train.image == image
    assert any(out.iterdir()), "the train phase wrote no artifact"

    evaluation = sandbox.run(PhaseRequest(
        phase="eval",
        command=shlex.split(spec.phases.eval),
        workdir="workspace",
        mounts=[
            Mount(source=workspace, target="workspace", read_only=True),
            Mount(source=out, target="out", read_only=True),
            Mount(source=evaluator, target="eval", read_only=True),
            Mount(source=heldout_inputs, target="heldout", read_only=True),
            Mount(source=preds, target="preds", read_only=False),
        ],
        env=env,
        limits=limits(budgets.eval_wallclock_s),
        labels={**labels, "harness.phase": "eval"},
        log_path=tmp_path / "eval.log",
    ))
    assert evaluation.exit_code == 0, evaluation.log_tail
    metrics = load_entry(evaluator, spec.evaluator.score)(preds, heldout_labels)
    assert 0.0 <= metrics[spec.metric.name] <= 1.0
