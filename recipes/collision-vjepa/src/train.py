"""Train the collision classifier on the user's precomputed V-JEPA features.

Environment (set by the harness sandbox):
  HARNESS_DATA           train split folder (read-only), see data.py
  HARNESS_OUT            where the checkpoint goes (writable)
  HARNESS_SEED           seed of this run (default 0)
  HARNESS_EPOCH_SCALE    fidelity: multiplies EPOCHS (default 1)
  HARNESS_DATA_FRACTION  fidelity: fraction of the train clips used (default 1)
Runs on the first visible GPU when there is one, else on the CPU.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

import config
from data import load_features, load_labels
from model import build_model, loss_fn

KNOBS = ["ENCODER", "HEAD", "LOSS", "LR", "EPOCHS", "BATCH_SIZE", "DROPOUT", "HIDDEN", "WEIGHT_DECAY"]


def config_dict() -> dict:
    return {name: getattr(config, name) for name in KNOBS}


def main() -> None:
    start = time.time()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data_dir = Path(os.environ["HARNESS_DATA"])
    out_dir = Path(os.environ["HARNESS_OUT"])
    seed = int(os.environ.get("HARNESS_SEED", "0"))
    epoch_scale = float(os.environ.get("HARNESS_EPOCH_SCALE", "1"))
    fraction = float(os.environ.get("HARNESS_DATA_FRACTION", "1"))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    cfg = config_dict()
    features = load_features(data_dir)
    y = load_labels(data_dir)
    keep = np.arange(len(y))
    if fraction < 1:
        keep = np.sort(rng.permutation(len(y))[: max(64, int(len(y) * fraction))])
    x = np.asarray(features[keep], dtype=np.float32)
    y = y[keep]

    # Standardise each feature dim with train statistics; infer.py reuses them.
    mean = x.mean(axis=(0, 1))
    std = x.std(axis=(0, 1)) + 1e-6
    xt = torch.from_numpy((x - mean) / std).to(device)
    yt = torch.from_numpy(y).to(device)

    model = build_model(cfg, dim=x.shape[-1]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["LR"], weight_decay=cfg["WEIGHT_DECAY"])
    epochs = max(1, round(cfg["EPOCHS"] * epoch_scale))
    steps_per_epoch = math.ceil(len(yt) / cfg["BATCH_SIZE"])
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))

    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(yt), device=device)
        running = 0.0
        for i in range(0, len(yt), cfg["BATCH_SIZE"]):
            idx = perm[i : i + cfg["BATCH_SIZE"]]
            loss = loss_fn(model(xt[idx]), yt[idx], cfg["LOSS"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs} loss {running / len(yt):.4f}", flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
         "mean": torch.from_numpy(mean), "std": torch.from_numpy(std)},
        out_dir / "model.pt",
    )
    (out_dir / "config.json").write_text(json.dumps({**cfg, "dim": int(x.shape[-1])}, indent=2) + "\n")
    print(f"trained on {len(yt)} clips, {epochs} epochs, {time.time() - start:.1f}s on {device}", flush=True)


if __name__ == "__main__":
    main()
