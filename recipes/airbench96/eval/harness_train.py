"""Train phase of the airbench96 recipe (evaluator-owned driver).

    python {data}/harness_train.py      (cwd = the trial's workspace: the airbench repository)

`prepare.py` copies this file into the train data folder, so it runs from the
read-only data mount and is never part of a trial's tree. It trains one model
with the trial's `airbench.train96()` and saves it to HARNESS_OUT/model.pt.

* Data: upstream's `CifarLoader('cifar10', ...)` reads `cifar10/train.pt` and
  `cifar10/test.pt` relative to the working directory; the driver makes a
  scratch folder whose `cifar10/` links `train.pt` to the train split and
  `test.pt` to a placeholder with zero images (upstream's `train()` builds a
  test loader for logging). Test images never enter this phase.
* Seed: HARNESS_SEED seeds torch (upstream leaves runs unseeded).
* The whole phase is timed by the host; that time is the recipe's score.

HARNESS_AIRBENCH_DEVICE=cpu (the `cpu` fidelity): upstream's code at the pin
is CUDA-only, so `airbench_cpu.py` (copied beside this file) maps its few CUDA
and torchvision uses to the CPU in this process before the trial's `airbench`
is imported, and shrinks upstream's `hyp` by HARNESS_AIRBENCH_CPU_HYP; then
the same `train96(verbose=False)` runs, with the overridden epochs.
"""

import importlib.util
import os
import sys
from pathlib import Path

CPU_ADAPTER = Path(__file__).with_name("airbench_cpu.py")


def load_cpu_adapter():
    spec = importlib.util.spec_from_file_location("airbench_cpu", CPU_ADAPTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    workspace = Path.cwd()
    data = Path(os.environ["HARNESS_DATA"])
    out = Path(os.environ["HARNESS_OUT"])
    seed = int(os.environ.get("HARNESS_SEED", "0"))

    sys.dont_write_bytecode = True
    sys.path[0] = str(workspace)  # trial code resolves to the workspace, never to this folder

    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "airbench-run"
    (scratch / "cifar10").mkdir(parents=True, exist_ok=True)
    for name, target in (("train.pt", data / "train.pt"), ("test.pt", data / "test_placeholder.pt")):
        link = scratch / "cifar10" / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    os.chdir(scratch)

    import torch

    on_cpu = os.environ.get("HARNESS_AIRBENCH_DEVICE") == "cpu"
    if on_cpu:
        cpu = load_cpu_adapter()
        cpu.install(torch)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    import airbench  # noqa: E402  (the trial's code)

    if on_cpu:
        from airbench import lib_airbench96

        args = cpu.apply_hyp(lib_airbench96.hyp, os.environ.get(cpu.HYP_ENV, ""))
        print(f"cpu level: upstream's code on the CPU, hyp overrides {args or 'none'} "
              f"({os.environ.get(cpu.HYP_ENV, '')})", flush=True)
        net = airbench.train96(verbose=False, **args)
    else:
        net = airbench.train96(verbose=False)
    net = getattr(net, "_orig_mod", net)  # unwrap torch.compile
    out.mkdir(parents=True, exist_ok=True)
    torch.save(net, out / "model.pt")
    print(f"saved the trained network ({sum(p.numel() for p in net.parameters())} parameters)", flush=True)


if __name__ == "__main__":
    main()
