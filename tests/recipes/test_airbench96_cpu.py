"""The airbench96 recipe's `cpu` level, piece by piece, without running upstream's training:
the run-time CPU adaptation (torchvision stand-in, wall-clock event, hyp overrides), the
synthetic CIFAR-shaped set and its layout, and the scoring of a smaller test set."""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest

from harness.recipe_loader import RECIPES_ROOT, load_recipe

EVAL = RECIPES_ROOT / "airbench96" / "eval"


def module(name: str):
    spec = importlib.util.spec_from_file_location(f"airbench96_{name}", EVAL / f"{name}.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.fixture(scope="module")
def cpu():
    return module("airbench_cpu")


def test_normalize_stand_in_does_torchvisions_arithmetic_per_channel(cpu):
    import torch

    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    batch = torch.rand(4, 3, 8, 8)
    got = cpu.Normalize(torch.tensor(mean), torch.tensor(std))(batch)
    for c in range(3):
        assert torch.allclose(got[:, c], (batch[:, c] - mean[c]) / std[c], atol=1e-6)
    assert cpu.Normalize(mean, std)(batch.double()).dtype == torch.float64


def test_stand_in_refuses_to_download(cpu):
    with pytest.raises(RuntimeError, match="no CIFAR-10 download"):
        cpu.torchvision_stand_in()["torchvision.datasets"].CIFAR10("cifar10", download=True, train=True)


def test_wall_clock_event_reports_milliseconds(cpu):
    start, end = cpu.WallClockEvent(enable_timing=True), cpu.WallClockEvent(enable_timing=True)
    start.record()
    time.sleep(0.05)
    end.record()
    assert 40 <= start.elapsed_time(end) < 2000


def test_hyp_overrides_set_nested_keys_and_pass_bound_defaults_to_train96(cpu):
    hyp = {"opt": {"train_epochs": 37.0, "batch_size": 1024, "lr": 9.0}, "aug": {"cutout": 12},
           "net": {"widths": {"block1": 128}}}
    args = cpu.apply_hyp(hyp, "opt.train_epochs=4 opt.batch_size=25 opt.lr=30 aug.cutout=0 net.widths.block1=16")
    assert hyp == {"opt": {"train_epochs": 4, "batch_size": 25, "lr": 30}, "aug": {"cutout": 0},
                   "net": {"widths": {"block1": 16}}}
    assert args == {"epochs": 4, "learning_rate": 30}  # batch size, aug and widths are read at call time


@pytest.mark.parametrize("text", ["opt.nope=1", "net.widths.block9=4", "opt.lr"])
def test_hyp_override_of_a_key_upstream_lacks_is_refused_by_name(cpu, text):
    with pytest.raises(ValueError, match="HARNESS_AIRBENCH_CPU_HYP"):
        cpu.apply_hyp({"opt": {"lr": 9.0}, "net": {"widths": {"block1": 128}}}, text)


def test_cpu_level_runs_without_gpus_and_keeps_the_full_gate():
    spec = load_recipe("airbench96").spec
    level = spec.fidelities["cpu"]
    [gate] = spec.gates
    assert level.gpus == 0 and level.env["HARNESS_AIRBENCH_DEVICE"] == "cpu"
    assert len(level.seeds) >= gate.min_seeds
    assert "airbench_cpu.py" in spec.evaluator.eval_files


def test_prepare_at_cpu_lays_out_a_synthetic_set_as_at_full(tmp_path, monkeypatch):
    import torch

    monkeypatch.delenv("HARNESS_AIRBENCH96_DATA", raising=False)
    synthetic = module("synthetic_cifar")
    train, inputs, labels = tmp_path / "train", tmp_path / "inputs", tmp_path / "labels"
    module("prepare").prepare(train, inputs, labels, fidelity="cpu")
    data = torch.load(train / "train.pt")
    assert data["images"].shape == (synthetic.N_TRAIN, 32, 32, 3) and data["images"].dtype == torch.uint8
    assert torch.load(train / "test_placeholder.pt")["images"].shape == (0, 32, 32, 3)
    for name in ("harness_train.py", "airbench_cpu.py"):
        assert (train / name).read_bytes() == (EVAL / name).read_bytes()
    assert sorted(p.name for p in inputs.iterdir()) == ["test_images.npy"]
    test_labels = np.load(labels / "test_labels.npy")
    assert np.bincount(test_labels).tolist() == [synthetic.N_TEST // 10] * 10
    test_images = np.load(inputs / "test_images.npy")
    train_rows = {row.tobytes() for row in data["images"].numpy()}
    assert not any(row.tobytes() in train_rows for row in test_images)  # no test image in training
    again = synthetic.make_splits()
    assert np.array_equal(again[1][0], test_images)  # one seeded generator
