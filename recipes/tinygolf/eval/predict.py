"""Eval phase of the tinygolf recipe, run inside the sandbox (evaluator's pristine code).

    python <evaldir>/predict.py      (cwd = trial workspace, read-only)

Second half of the int8 + zlib round trip: decompresses and dequantizes
HARNESS_OUT/model.int8.zlib with the evaluator's own codec (this folder's
codec.py, loaded by path, never the workspace's copy), loads the weights into
the trial's `model.build_model()`, and for every held-out context writes the
distribution of the next byte: (M, 256) float32 log-probabilities in
HARNESS_PREDS/logprobs.npy. The target bytes are not in the sandbox; the host
turns these into bits per byte and measures the artifact.
"""

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

BATCH = 128
HERE = Path(__file__).resolve().parent


def _codec():
    spec = importlib.util.spec_from_file_location("tinygolf_eval_codec", HERE / "codec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    workspace = Path(os.environ["HARNESS_WORKSPACE"])
    out_dir = Path(os.environ["HARNESS_OUT"])
    heldout = Path(os.environ["HARNESS_HELDOUT"])
    preds_dir = Path(os.environ["HARNESS_PREDS"])

    sys.dont_write_bytecode = True  # the workspace is read-only
    codec = _codec()  # before the workspace is on the path
    weights = codec.decode((out_dir / "model.int8.zlib").read_bytes())
    sys.path[0] = str(workspace)  # trial code resolves to the workspace only
    import torch

    torch.set_num_threads(1)
    from model import build_model  # noqa: E402  (the trial's architecture)

    model = build_model()
    model.load_state_dict({name: torch.from_numpy(np.array(a)) for name, a in weights.items()})
    model.eval()

    contexts = torch.from_numpy(np.load(heldout / "contexts.npy", allow_pickle=False).astype(np.int64))
    block = int(getattr(model, "block_size", contexts.shape[1]))
    if block < 1:
        raise SystemExit(f"model.block_size must be >= 1, got {block}")
    contexts = contexts[:, -block:]
    rows = []
    with torch.no_grad():
        for chunk in contexts.split(BATCH):
            rows.append(torch.log_softmax(model(chunk)[:, -1, :].double(), dim=-1).float())
    logprobs = torch.cat(rows).numpy()
    np.save(preds_dir / "logprobs.npy", logprobs, allow_pickle=False)
    print(f"wrote next-byte log-probabilities {logprobs.shape} (context {contexts.shape[1]})", flush=True)


if __name__ == "__main__":
    main()
