"""Train the tiny GPT on the train text; return the state_dict for the evaluator's codec.

Run by the evaluator's train-phase driver (`python {data}/golf_run.py`), which
calls `main()` and writes the int8 + zlib artifact itself. Environment:
  HARNESS_DATA         train split folder (read-only): train.txt (no validation text here)
  HARNESS_SEED         seed of this run (default 0)
  HARNESS_STEP_SCALE   fidelity: multiplies STEPS (default 1)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

import config
from loss import loss_fn
from model import build_model
from quant import QAT, qat_active


def main() -> dict[str, torch.Tensor]:
    start = time.time()
    torch.set_num_threads(1)
    seed = int(os.environ.get("HARNESS_SEED", "0"))
    steps = max(1, round(config.STEPS * float(os.environ.get("HARNESS_STEP_SCALE", "1"))))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    raw = (Path(os.environ["HARNESS_DATA"]) / "train.txt").read_bytes()
    data = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).astype(np.int64))

    model = build_model()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}],
                            lr=config.LR, betas=(0.9, config.BETA2))
    offsets = torch.arange(config.BLOCK_SIZE + 1)
    warmup = max(1, steps // 20)
    model.train()
    for step in range(steps):
        lr = config.LR * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * (1 - step / steps))
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(data) - config.BLOCK_SIZE - 1, (config.BATCH_SIZE,), generator=gen)
        chunk = data[starts[:, None] + offsets]
        with QAT(model, qat_active(step, steps)):
            loss = loss_fn(model(chunk[:, :-1]), chunk[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step + 1}/{steps} loss {loss.item():.4f}", flush=True)
    print(f"trained {steps} steps in {time.time() - start:.1f}s (own clock)", flush=True)
    return model.state_dict()
