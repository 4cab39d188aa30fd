"""Inference for the evaluator: one collision probability per held-out clip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from data import load_features
from model import build_model


def predict(out_dir: Path, inputs_dir: Path) -> np.ndarray:
    """Probabilities (clips,) in the row order of the clips in `inputs_dir`."""
    torch.set_num_threads(1)  # see train.py
    cfg = json.loads((Path(out_dir) / "config.json").read_text())
    ckpt = torch.load(Path(out_dir) / "model.pt", weights_only=True)
    model = build_model(cfg, dim=cfg["dim"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()

    x = torch.from_numpy(load_features(inputs_dir, cfg["BACKBONE"]))
    x = (x - ckpt["mean"]) / ckpt["std"]
    with torch.no_grad():
        probs = torch.cat([torch.sigmoid(model(chunk)) for chunk in x.split(512)])
    return probs.numpy().astype(np.float64)
