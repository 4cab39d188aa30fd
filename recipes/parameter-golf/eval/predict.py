"""Eval phase of the parameter-golf recipe (evaluator-owned; runs in the eval sandbox).

    python {eval}/predict.py      (cwd = the trial's workspace, read-only)

The round trip is the evaluator's; the model is the trial's; the targets are not here:

1. read HARNESS_OUT/final_model.int8.ptz, `zlib.decompress` it, `torch.load`
   the result and turn it into a state dict with the trial's own
   `dequantize_state_dict_int8` (so the quantization scheme is the trial's,
   the compression is zlib, and nothing but the artifact carries weights);
2. build the trial's `GPT`, filling each parameter of `GPT.__init__` from the
   attribute of the same name of the trial's `Hyperparameters()`; load the
   state dict (strict);
3. for every held-out context (`contexts.npy`, the `lengths.npy` last tokens
   of each row: 1 to 1024 validation tokens that end right before a target
   token), ask the model for the distribution of the next token. Upstream's
   `GPT.forward(input_ids, target_ids)` returns only a loss, so the logits are
   taken where forward hands them to `F.cross_entropy` (given dummy targets:
   the real ones never enter this sandbox); contexts of one length run as one
   batch, under `torch.inference_mode()` with bf16 autocast on the GPU, as
   upstream evaluates;
4. write `logprobs.npy`: (M, vocab) float32 log-softmax of the last position,
   one row per context in file order.

`score.py` (host) reads the targets and their byte counts from the labels
folder and turns these distributions into bits per byte. Whatever this
process computes itself (a loss, a count) is not read.
"""

import importlib.util
import inspect
import io
import os
import sys
import zlib
from pathlib import Path

import numpy as np

EVAL_BATCH_TOKENS = 1 << 19


class LogitsCapture:
    """Stands in for `F.cross_entropy` while the model runs: keeps the logits it is handed."""

    def __init__(self) -> None:
        self.logits = None

    def __call__(self, logits, targets, *args, **kwargs):
        self.logits = logits
        return logits.float().sum() * 0.0


def next_token_logprobs(model, contexts: np.ndarray, lengths: np.ndarray, device, torch) -> np.ndarray:
    """(M, vocab) float32: log-softmax of the model's last position after each context."""
    import torch.nn.functional as F

    order = np.argsort(lengths, kind="stable")
    result = None
    capture = LogitsCapture()
    real_cross_entropy = F.cross_entropy
    F.cross_entropy = capture
    try:
        start = 0
        while start < len(order):
            length = int(lengths[order[start]])
            same = start
            while same < len(order) and int(lengths[order[same]]) == length:
                same += 1
            for chunk in range(start, same, max(1, EVAL_BATCH_TOKENS // length)):
                rows = order[chunk : min(same, chunk + max(1, EVAL_BATCH_TOKENS // length))]
                x = torch.from_numpy(contexts[rows, -length:].astype(np.int64)).to(device)
                capture.logits = None
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    model(x, torch.zeros_like(x))
                if capture.logits is None:
                    raise SystemExit("GPT.forward did not pass its logits to F.cross_entropy")
                last = capture.logits.float().reshape(len(rows), length, -1)[:, -1, :]
                lp = torch.log_softmax(last.double(), dim=-1).float().cpu().numpy()
                if result is None:
                    result = np.zeros((len(lengths), lp.shape[1]), dtype=np.float32)
                result[rows] = lp
            start = same
    finally:
        F.cross_entropy = real_cross_entropy
    return result


def main() -> None:
    workspace = Path(os.environ["HARNESS_WORKSPACE"])
    out_dir = Path(os.environ["HARNESS_OUT"])
    heldout = Path(os.environ["HARNESS_HELDOUT"])
    preds_dir = Path(os.environ["HARNESS_PREDS"])

    sys.dont_write_bytecode = True
    sys.path[0] = str(workspace)
    import torch

    spec = importlib.util.spec_from_file_location("trial_train_gpt", workspace / "train_gpt.py")
    trial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trial)  # the trial's code: definitions only (main() runs under __main__)
    args = trial.Hyperparameters()

    blob = (out_dir / "final_model.int8.ptz").read_bytes()
    quantized = torch.load(io.BytesIO(zlib.decompress(blob)), map_location="cpu", weights_only=False)
    state = trial.dequantize_state_dict_int8(quantized)
    params = [p for p in inspect.signature(trial.GPT.__init__).parameters if p != "self"]
    model = trial.GPT(**{p: getattr(args, p) for p in params if hasattr(args, p)})
    model.load_state_dict(state, strict=True)
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    model = model.to(device).eval()

    contexts = np.load(heldout / "contexts.npy", allow_pickle=False)
    lengths = np.load(heldout / "lengths.npy", allow_pickle=False)
    with torch.inference_mode():
        logprobs = next_token_logprobs(model, contexts, lengths, device, torch)
    np.save(preds_dir / "logprobs.npy", logprobs, allow_pickle=False)
    print(f"wrote next-token log-probabilities {logprobs.shape} after {len(lengths)} held-out contexts", flush=True)


if __name__ == "__main__":
    main()
