"""Eval phase of the tinychat recipe, run inside the sandbox (evaluator's pristine code).

    python <evaldir>/predict.py      (cwd = trial workspace, read-only)

Builds the trial's model (`model.build_model()` from the workspace), loads the
state_dict the train phase saved as `HARNESS_OUT/model.pt` (weights only, no
pickled code), and for every held-out context computes the model's
distribution of the *next* byte, the one the context stops before. The
log-probabilities, (M, 256) float32, go to HARNESS_PREDS/logprobs.npy.

The target bytes are not in the sandbox: the host-side score.py reads them
from the evaluator's labels folder and turns these distributions into bits
per byte. A model that looks ahead gains nothing, since what it would look at
is not there.
"""

import os
import sys
from pathlib import Path

import numpy as np

BATCH = 128


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
    from model import build_model  # noqa: E402  (the trial's architecture)

    model = build_model()
    model.load_state_dict(torch.load(out_dir / "model.pt", map_location="cpu", weights_only=True))
    model.eval()

    contexts = torch.from_numpy(np.load(heldout / "contexts.npy", allow_pickle=False).astype(np.int64))
    block = int(getattr(model, "block_size", contexts.shape[1]))
    if block < 1:
        raise SystemExit(f"model.block_size must be >= 1, got {block}")
    contexts = contexts[:, -block:]  # the longest context the model accepts, ending right before the target
    rows = []
    with torch.no_grad():
        for chunk in contexts.split(BATCH):
            logits = model(chunk)[:, -1, :].double()
            rows.append(torch.log_softmax(logits, dim=-1).float())
    logprobs = torch.cat(rows).numpy()
    np.save(preds_dir / "logprobs.npy", logprobs, allow_pickle=False)
    print(f"wrote next-byte log-probabilities {logprobs.shape} (context {contexts.shape[1]})", flush=True)


if __name__ == "__main__":
    main()
