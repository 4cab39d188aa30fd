"""Train the classifier on the train split.

Environment (set by the harness sandbox):
  HARNESS_DATA         train split folder (read-only), see data.py
  HARNESS_OUT          where the trained parameters go (writable)
  HARNESS_SEED         seed of this run (default 0)
  HARNESS_EPOCH_SCALE  fidelity: multiplies EPOCHS (default 1)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

import config
from data import load_inputs, load_labels
from model import gradients, init_params

KNOBS = ["HIDDEN", "LR", "EPOCHS", "WEIGHT_DECAY"]


def main() -> None:
    start = time.time()
    data_dir = Path(os.environ["HARNESS_DATA"])
    out_dir = Path(os.environ["HARNESS_OUT"])
    seed = int(os.environ.get("HARNESS_SEED", "0"))
    epochs = max(1, round(config.EPOCHS * float(os.environ.get("HARNESS_EPOCH_SCALE", "1"))))
    rng = np.random.default_rng(seed)

    x, y = load_inputs(data_dir), load_labels(data_dir)
    classes = int(y.max()) + 1
    params = init_params(rng, x.shape[1], config.HIDDEN, classes)

    # Adam, full batch.
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for step in range(1, epochs + 1):
        loss, grads = gradients(params, x, y, config.WEIGHT_DECAY)
        for k in params:
            m[k] = beta1 * m[k] + (1 - beta1) * grads[k]
            v[k] = beta2 * v[k] + (1 - beta2) * grads[k] ** 2
            m_hat = m[k] / (1 - beta1**step)
            v_hat = v[k] / (1 - beta2**step)
            params[k] -= config.LR * m_hat / (np.sqrt(v_hat) + eps)
        if step % 50 == 0 or step == epochs:
            print(f"step {step}/{epochs} loss {loss:.4f}", flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "params.npz", **params)
    (out_dir / "config.json").write_text(json.dumps({k: getattr(config, k) for k in KNOBS}) + "\n")
    print(f"trained {epochs} steps in {time.time() - start:.2f}s", flush=True)


if __name__ == "__main__":
    main()
