"""Eval phase of the airbench96 recipe (evaluator-owned; runs in the eval sandbox).

    python {eval}/predict.py      (cwd = the trial's workspace, read-only)

Loads the network the train phase saved, lays the held-out test images out
the way upstream's `CifarLoader` reads them (with zero labels: the real
labels stay on the host), runs the trial's `airbench.infer` at the test-time
augmentation level of the trial's `hyp['net']['tta_level']`, under
`torch.inference_mode()` (no gradients: nothing can be trained on the test
images here), and saves the predicted class of each image to
HARNESS_PREDS/preds.npy. `score.py` checks and scores it on the host.

HARNESS_AIRBENCH_DEVICE=cpu (the `cpu` fidelity): `airbench_cpu.py` (an
evaluator file beside this one) maps upstream's CUDA and torchvision uses to
the CPU first, as in the train phase, and the network is loaded to the CPU.
"""

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    workspace = Path(os.environ["HARNESS_WORKSPACE"])
    out_dir = Path(os.environ["HARNESS_OUT"])
    heldout = Path(os.environ["HARNESS_HELDOUT"])
    preds_dir = Path(os.environ["HARNESS_PREDS"])

    sys.dont_write_bytecode = True
    sys.path[0] = str(workspace)
    import torch

    on_cpu = os.environ.get("HARNESS_AIRBENCH_DEVICE") == "cpu"
    if on_cpu:
        spec = importlib.util.spec_from_file_location("airbench_cpu", Path(__file__).with_name("airbench_cpu.py"))
        cpu = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cpu)
        cpu.install(torch)
    import airbench  # noqa: E402  (the trial's code)
    from airbench import lib_airbench96

    images = np.load(heldout / "test_images.npy", allow_pickle=False)
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "airbench-eval"
    (scratch / "cifar10").mkdir(parents=True, exist_ok=True)
    torch.save({"images": torch.from_numpy(images), "labels": torch.zeros(len(images), dtype=torch.int64),
                "classes": [str(i) for i in range(10)]}, scratch / "cifar10" / "test.pt")

    net = torch.load(out_dir / "model.pt", map_location="cpu" if on_cpu else "cuda",
                     weights_only=False)
    loader = airbench.CifarLoader(str(scratch / "cifar10"), train=False, batch_size=2000)
    tta_level = lib_airbench96.hyp["net"].get("tta_level", 0)
    with torch.inference_mode():
        logits = airbench.infer(net, loader, tta_level=tta_level)
    preds = logits.argmax(dim=1).to("cpu").numpy().astype(np.int64)
    np.save(preds_dir / "preds.npy", preds, allow_pickle=False)
    print(f"wrote {len(preds)} predictions (tta_level {tta_level})", flush=True)


if __name__ == "__main__":
    main()
