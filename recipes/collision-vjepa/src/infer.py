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
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = json.loads((Path(out_dir) / "config.json").read_text())
    ckpt = torch.load(Path(out_dir) / "model.pt", weights_only=True, map_location="cpu")
    model = build_model(cfg, dim=cfg["dim"])
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()

    features = load_features(inputs_dir)
    mean, std = ckpt["mean"].to(device), ckpt["std"].to(device)
    probs = []
    with torch.no_grad():
        for i in range(0, len(features), 512):
            x = torch.from_numpy(np.asarray(features[i : i + 512], dtype=np.float32)).to(device)
            probs.append(torch.sigmoid(model((x - mean) / std)).cpu())
    return torch.cat(probs).numpy().astype(np.float64)
