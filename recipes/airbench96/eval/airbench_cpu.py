"""Upstream airbench's CUDA-only code on the CPU: the recipe's `cpu` fidelity (evaluator-owned).

Used by `harness_train.py` and `predict.py` when HARNESS_AIRBENCH_DEVICE=cpu,
before the trial's `airbench` is imported; nothing here changes a file.
Upstream at the pinned commit assumes CUDA and torchvision in these places
(all in `airbench/utils.py` and `airbench/lib_airbench96.py`), which
`install()` maps, in the running process only:

* `import torchvision` / `torchvision.transforms as T`: upstream uses
  `T.Normalize(CIFAR_MEAN, CIFAR_STD)` on image batches, and
  `torchvision.datasets.CIFAR10` only to download CIFAR-10 when
  `cifar10/*.pt` is missing. PyPI's torchvision does not import beside the
  CPU build of torch this project pins, so small stand-in modules are
  registered in `sys.modules`: `Normalize` does torchvision's arithmetic
  (`(x - mean) / std` per channel, in the input's dtype and device), and
  `datasets.CIFAR10` refuses (no download at this level; the data is prepared).
* `make_net96()` ends in `net.half().cuda()`: `Module.cuda` / `Tensor.cuda`
  keep the tensors on the CPU.
* `.half()` (the network and `CifarLoader`'s images): float32 instead, since
  PyTorch's float16 convolutions and norms on the CPU are slow fallbacks
  (about 3x slower than float32, measured on the recipe's `cpu` size).
* `train()` times itself with `torch.cuda.Event(enable_timing=True)` and
  `torch.cuda.synchronize()`: a wall-clock event (milliseconds, like CUDA's)
  and a no-op. Upstream's own clock is only printed; the score is the host's.
* `CifarLoader` loads its `.pt` files with `map_location='cuda'`: to the CPU instead.

`apply_hyp()` shrinks upstream's `hyp` for this level (HARNESS_AIRBENCH_CPU_HYP,
set by recipe.toml's `[fidelities.cpu]`): widths, batch size and epochs that
a tiny run on a small synthetic set can afford. These override the trial's
own values of the same keys at this level only.
"""

from __future__ import annotations

import sys
import time
import types

HYP_ENV = "HARNESS_AIRBENCH_CPU_HYP"
TRAIN96_ARGS = {
    "opt.train_epochs": "epochs", "opt.lr": "learning_rate", "opt.momentum": "momentum",
    "opt.weight_decay": "weight_decay", "opt.bias_scaler": "bias_scaler", "opt.label_smoothing": "label_smoothing",
    "opt.whiten_bias_epochs": "whiten_bias_epochs", "net.tta_level": "tta_level",
}
"""hyp keys that `train96()` binds as argument defaults when it is defined: an override of
one of them is passed to `train96()` as this argument too."""


class Normalize:
    """torchvision.transforms.Normalize on tensors of shape (..., C, H, W)."""

    def __init__(self, mean, std) -> None:
        import torch

        self.mean = torch.as_tensor(mean)
        self.std = torch.as_tensor(std)

    def __call__(self, tensor):
        mean = self.mean.to(dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        std = self.std.to(dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        return (tensor - mean) / std


class NoDownloadCIFAR10:
    def __init__(self, root, *args, **kwargs) -> None:
        raise RuntimeError(f"no CIFAR-10 download at the cpu level: {root}/train.pt and test.pt must be prepared")


class WallClockEvent:
    """torch.cuda.Event(enable_timing=True) on the CPU: record() notes the time."""

    def __init__(self, enable_timing: bool = False, **kwargs) -> None:
        self.at: float | None = None

    def record(self, stream=None) -> None:
        self.at = time.perf_counter()

    def elapsed_time(self, end: "WallClockEvent") -> float:
        return 1e3 * (end.at - self.at)


def torchvision_stand_in() -> dict[str, types.ModuleType]:
    torchvision = types.ModuleType("torchvision", "stand-in for the torchvision pieces upstream airbench uses")
    transforms = types.ModuleType("torchvision.transforms")
    datasets = types.ModuleType("torchvision.datasets")
    transforms.Normalize = Normalize
    datasets.CIFAR10 = NoDownloadCIFAR10
    torchvision.transforms, torchvision.datasets = transforms, datasets
    return {"torchvision": torchvision, "torchvision.transforms": transforms, "torchvision.datasets": datasets}


def install(torch) -> None:
    """Map upstream's CUDA and torchvision uses to the CPU (see the module docstring)."""
    sys.modules.update(torchvision_stand_in())
    torch.nn.Module.cuda = lambda self, device=None: self
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.half = lambda self: self.float()
    torch.Tensor.half = lambda self, memory_format=torch.preserve_format: self.float(memory_format=memory_format)
    torch.cuda.Event = WallClockEvent
    torch.cuda.synchronize = lambda device=None: None
    load = torch.load

    def load_on_cpu(f, map_location=None, **kwargs):
        if map_location == "cuda" or (isinstance(map_location, str) and map_location.startswith("cuda:")):
            map_location = "cpu"
        return load(f, map_location=map_location, **kwargs)

    torch.load = load_on_cpu


def parse_hyp(text: str) -> dict[str, float | int | bool | str]:
    """`a.b=1 c.d=0.5` -> {"a.b": 1, "c.d": 0.5}."""
    out: dict[str, float | int | bool | str] = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{HYP_ENV}: {item!r} is not KEY=VALUE")
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out


def apply_hyp(hyp: dict, text: str) -> dict[str, object]:
    """Set each `KEY=VALUE` of `text` in `hyp` (a dotted path that must exist there); return
    the `train96()` arguments that carry the overridden values."""
    args: dict[str, object] = {}
    for key, value in parse_hyp(text).items():
        *parents, leaf = key.split(".")
        node = hyp
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise ValueError(f"{HYP_ENV}: upstream's hyp has no {key}")
        node[leaf] = value
        if key in TRAIN96_ARGS:
            args[TRAIN96_ARGS[key]] = value
    return args
