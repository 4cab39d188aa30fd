"""Eval phase of the parameter-golf recipe (evaluator-owned; runs in the eval sandbox).

    python {eval}/predict.py      (cwd = the trial's workspace, read-only)

The round trip and the validation loop are the evaluator's; the model is the trial's:

1. read HARNESS_OUT/final_model.int8.ptz, `zlib.decompress` it, `torch.load`
   the result and turn it into a state dict with the trial's own
   `dequantize_state_dict_int8` (so the quantization scheme is the trial's,
   the compression is zlib, and nothing but the artifact carries weights);
2. build the trial's `GPT`, filling each parameter of `GPT.__init__` from the
   attribute of the same name of the trial's `Hyperparameters()`; load the
   state dict (strict);
3. run the model over the whole validation split in windows of
   `eval_seq_len` tokens (default: `train_seq_len`) that advance by
   `eval_stride` (default: the window length, i.e. upstream's non-overlapping
   windows; a smaller stride scores each token with more left context). The
   first window scores all its targets, later ones their last `eval_stride`;
   unscored targets are -100, which the model's loss ignores (upstream's
   `forward(input_ids, target_ids)` returns the mean cross-entropy over the
   targets that are not -100). Everything runs under `torch.inference_mode()`
   with bf16 autocast, as upstream evaluates, on the first visible GPU, or on
   the CPU where none is (the `cpu` fidelity);
4. write `result.json`: the summed loss in nats, the number of targets scored
   (always the first n targets of the split), window and stride.

The bytes those targets stand for are counted on the host (`score.py`), from
tables the evaluator made; this process never reports them.
"""

import importlib.util
import inspect
import io
import json
import os
import sys
import zlib
from pathlib import Path

import numpy as np

HEADER_INTS = 256
EVAL_BATCH_TOKENS = 1 << 19


def read_shard(path: Path) -> np.ndarray:
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    count = int(header[2])
    return np.fromfile(path, dtype="<u2", count=count, offset=HEADER_INTS * 4)


def windows(n_tokens: int, length: int, stride: int) -> list[int]:
    """Start positions of the windows (each needs length + 1 tokens)."""
    last = n_tokens - 1 - length
    return list(range(0, last + 1, stride)) if last >= 0 else []


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

    length = int(getattr(args, "eval_seq_len", args.train_seq_len))
    stride = int(getattr(args, "eval_stride", length))
    if length < 1 or not 1 <= stride <= length:
        raise SystemExit(f"bad evaluation window {length} / stride {stride}")
    tokens = np.concatenate([read_shard(p) for p in sorted(heldout.glob("fineweb_val_*.bin"))])
    starts = windows(tokens.size, length, stride)
    all_tokens = torch.from_numpy(tokens.astype(np.int64))
    per_batch = max(1, EVAL_BATCH_TOKENS // length)
    loss_sum = 0.0
    scored = 0
    with torch.inference_mode():
        for i in range(0, len(starts), per_batch):
            batch = starts[i : i + per_batch]
            rows = torch.stack([all_tokens[s : s + length + 1] for s in batch]).to(device)
            x, y = rows[:, :-1], rows[:, 1:].clone()
            for r, s in enumerate(batch):
                if s > 0:
                    y[r, : length - stride] = -100
            count = int((y != -100).sum())
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                mean = model(x, y)
            loss_sum += float(mean.double()) * count
            scored += count
    result = {"loss_sum_nats": loss_sum, "n_targets": scored, "eval_seq_len": length, "eval_stride": stride}
    (preds_dir / "result.json").write_text(json.dumps(result) + "\n")
    print(f"scored {scored} targets: mean loss {loss_sum / max(scored, 1):.5f} nats", flush=True)


if __name__ == "__main__":
    main()
