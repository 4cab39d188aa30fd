"""Eval phase of the digits-speedrun recipe, run inside the sandbox.

    python <evaldir>/predict.py      (cwd = trial workspace, read-only)

Builds the trial's model (`model.build_model()` from the workspace), loads the
state_dict the train phase saved as `HARNESS_OUT/model.pt` (weights only, no
pickled code), runs it in eval mode without gradients over the held-out images
(inputs only: the labels never enter a sandbox) and writes the logits to
HARNESS_PREDS/logits.npy. The host-side score.py validates that file and
computes the accuracy against the held-out labels.
"""

import os
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    workspace = Path(os.environ["HARNESS_WORKSPACE"])
    out_dir = Path(os.environ["HARNESS_OUT"])
    heldout = Path(os.environ["HARNESS_HELDOUT"])
    preds_dir = Path(os.environ["HARNESS_PREDS"])

    sys.dont_write_bytecode = True  # the workspace is read-only
    # Replace this script's folder on the path: trial code must resolve to the workspace only.
    sys.path[0] = str(workspace)
    import torch

    torch.set_num_threads(1)
    from data import load_images  # noqa: E402  (protected: same in every trial)
    from model import build_model  # noqa: E402  (the trial's architecture)

    model = build_model()
    state = torch.load(out_dir / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    x = load_images(heldout)
    with torch.no_grad():
        logits = torch.cat([model(chunk) for chunk in x.split(500)])
    np.save(preds_dir / "logits.npy", logits.float().numpy(), allow_pickle=False)
    print(f"wrote logits {tuple(logits.shape)}", flush=True)


if __name__ == "__main__":
    main()
