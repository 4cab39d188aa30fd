"""Train the byte-level GPT on the train text and save the checkpoint.

Environment (set by the harness sandbox):
  HARNESS_DATA         train split folder (read-only): train.txt
  HARNESS_OUT          where model.pt goes (writable)
  HARNESS_SEED         seed of this run (default 0)
  HARNESS_STEP_SCALE   fidelity: multiplies STEPS (default 1)

The evaluator computes the held-out bits per byte itself from model.pt; the
loss printed here is the training loss, for humans only.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import config
from loader import batches, load_train_bytes
from model import build_model
from optim import build_optimizer, clip
from schedule import lr_factor


def main() -> None:
    start = time.time()
    torch.set_num_threads(config.THREADS)
    data_dir = Path(os.environ["HARNESS_DATA"])
    out_dir = Path(os.environ["HARNESS_OUT"])
    seed = int(os.environ.get("HARNESS_SEED", "0"))
    steps = max(1, round(config.STEPS * float(os.environ.get("HARNESS_STEP_SCALE", "1"))))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    data = load_train_bytes(data_dir)
    model = build_model()
    opt = build_optimizer(model)
    base_lrs = [g["lr"] for g in opt.param_groups]
    stream = batches(data, gen)
    model.train()
    for step in range(steps):
        for group, base in zip(opt.param_groups, base_lrs):
            group["lr"] = base * lr_factor(step, steps)
        x, y = next(stream)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip(model)
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            print(f"step {step + 1}/{steps} loss {loss.item():.4f} ({loss.item() / math.log(2):.3f} bits)", flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out_dir / "model.pt")
    print(f"trained {steps} steps in {time.time() - start:.1f}s (own clock)", flush=True)


if __name__ == "__main__":
    main()
