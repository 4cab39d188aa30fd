"""Train the digit classifier as fast as possible; the harness times this whole process.

Environment (set by the harness sandbox):
  HARNESS_DATA         train split folder (read-only), see data.py
  HARNESS_OUT          where model.pt goes (writable)
  HARNESS_SEED         seed of this run (default 0)
  HARNESS_EPOCH_SCALE  fidelity: multiplies EPOCHS (default 1)

The score is the train phase's wallclock as the harness measures it, from
process start to exit (importing torch included); whatever this script prints
about time is for humans only.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

import config
from augment import augment
from data import load_images, load_labels
from loss import loss_fn
from model import build_model


def main() -> None:
    start = time.time()
    torch.set_num_threads(1)  # tiny model: a second thread barely helps and stalls when CPUs are shared
    data_dir = Path(os.environ["HARNESS_DATA"])
    out_dir = Path(os.environ["HARNESS_OUT"])
    seed = int(os.environ.get("HARNESS_SEED", "0"))
    epoch_scale = float(os.environ.get("HARNESS_EPOCH_SCALE", "1"))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    x, y = load_images(data_dir), load_labels(data_dir)
    model = build_model()
    opt = torch.optim.SGD(model.parameters(), lr=config.LR, momentum=config.MOMENTUM, nesterov=True,
                          weight_decay=config.WEIGHT_DECAY)
    epochs = max(1, round(config.EPOCHS * epoch_scale))
    steps_per_epoch = math.ceil(len(y) / config.BATCH_SIZE)
    total = epochs * steps_per_epoch
    warmup = max(1, total // 10)
    # Linear warm-up, then linear decay to zero.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / (total - warmup))
    )

    model.train()
    step = 0
    for epoch in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), config.BATCH_SIZE):
            idx = perm[i : i + config.BATCH_SIZE]
            loss = loss_fn(model(augment(x[idx], gen)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        print(f"epoch {epoch + 1}/{epochs} loss {loss.item():.4f}", flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out_dir / "model.pt")
    print(f"trained {step} steps on {len(y)} images in {time.time() - start:.1f}s (own clock)", flush=True)


if __name__ == "__main__":
    main()
