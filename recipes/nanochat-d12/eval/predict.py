"""Eval phase of the nanochat-d12 recipe (evaluator-owned; runs in the eval sandbox).

    python {eval}/predict.py      (cwd = the trial's workspace, read-only)

1. Loads the checkpoint the train phase left (`HARNESS_OUT/nanochat/base_checkpoints/d12/`)
   with the workspace's `nanochat.checkpoint_manager.load_model` (a protected
   file) into the trial's model (`nanochat/gpt.py`, editable).
2. CORE: for every task of the bundle's `core.yaml`, upstream's per-task
   evaluation `evaluate_task` from `pristine/core_eval.py` (copied by
   `prepare.py` from upstream at the pinned commit, never the trial's tree),
   on at most `HARNESS_CORE_MAX_PER_TASK` examples (default 500, upstream's
   `--core-metric-max-per-task` default in `base_train.py`; -1 = all),
   shuffled with `random.Random(1337)` as upstream's `evaluate_core` does.
3. Validation bits per byte: the validation shard's documents, each prefixed
   with BOS, concatenated and cut into rows of the model's sequence length;
   up to 40 x 524,288 tokens (upstream `base_eval.py`'s `--split-tokens`
   default; `HARNESS_VAL_TOKENS` sets another count). Cross-entropy from the
   model's logits (the model never sees the targets), summed over targets whose byte length (`token_bytes.pt`) is
   positive, divided by ln 2 and those bytes: upstream's definition in
   `nanochat/loss_eval.py`.
4. Writes `core.json`: per-task accuracies, examples per task, val bpb.

The model runs on the first visible GPU, or on the CPU where none is (the `cpu`
fidelity; upstream's `autodetect_device_type` order, MPS aside).

`score.py` (host) centers the accuracies by the random baselines and averages them.
"""

import importlib.util
import json
import math
import os
import random
import sys
from pathlib import Path

MODEL_TAG = "d12"
VAL_TOKENS = 40 * 524288
VAL_ROWS_PER_BATCH = 16


def main() -> None:
    workspace = Path(os.environ["HARNESS_WORKSPACE"])
    out_dir = Path(os.environ["HARNESS_OUT"])
    heldout = Path(os.environ["HARNESS_HELDOUT"])
    preds_dir = Path(os.environ["HARNESS_PREDS"])
    max_per_task = int(os.environ.get("HARNESS_CORE_MAX_PER_TASK", "500"))
    val_tokens = int(os.environ.get("HARNESS_VAL_TOKENS", str(VAL_TOKENS)))

    sys.dont_write_bytecode = True
    sys.path[0] = str(workspace)
    base = Path(os.environ.get("TMPDIR", "/tmp")) / "nanochat-eval"
    base.mkdir(parents=True, exist_ok=True)
    for name, target in (("base_checkpoints", out_dir / "nanochat" / "base_checkpoints"),
                         ("tokenizer", heldout / "tokenizer")):
        link = base / name
        if not link.exists():
            link.symlink_to(target)
    os.environ["NANOCHAT_BASE_DIR"] = str(base)
    if (heldout / "hf_cache").is_dir():
        os.environ.update(HF_HUB_CACHE=str(heldout / "hf_cache"), HF_HUB_OFFLINE="1")

    import torch
    import torch.nn.functional as F
    import yaml

    from nanochat.checkpoint_manager import load_model  # noqa: E402  (protected file of the workspace)
    from nanochat.tokenizer import get_token_bytes

    spec = importlib.util.spec_from_file_location("pristine_core_eval", heldout / "pristine" / "core_eval.py")
    core_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core_eval)

    if torch.cuda.is_available():
        device = torch.device("cuda", 0)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    model, tokenizer, meta = load_model("base", device, phase="eval", model_tag=MODEL_TAG)
    model.eval()

    bundle = heldout / "eval_bundle"
    tasks = yaml.safe_load((bundle / "core.yaml").read_text(encoding="utf-8"))["icl_tasks"]
    results, counts = {}, {}
    with torch.inference_mode():
        for task in tasks:
            task_meta = {
                "task_type": task["icl_task_type"],
                "dataset_uri": task["dataset_uri"],
                "num_fewshot": task["num_fewshot"][0],
                "continuation_delimiter": task.get("continuation_delimiter", " "),
            }
            lines = (bundle / "eval_data" / task_meta["dataset_uri"]).read_text(encoding="utf-8").splitlines()
            data = [json.loads(line) for line in lines if line.strip()]
            random.Random(1337).shuffle(data)
            if max_per_task > 0:
                data = data[:max_per_task]
            results[task["label"]] = float(core_eval.evaluate_task(model, tokenizer, data, device, task_meta))
            counts[task["label"]] = len(data)
            print(f"{task['label']}: {results[task['label']]:.4f} on {len(data)}", flush=True)

        val_bpb, val_tokens = validation_bpb(model, tokenizer, get_token_bytes(device=device),
                                             int(meta["model_config"]["sequence_len"]), heldout / "val", device, F,
                                             val_tokens)
    (preds_dir / "core.json").write_text(json.dumps({
        "results": results, "examples": counts, "max_per_task": max_per_task,
        "val_bpb": val_bpb, "val_tokens": val_tokens,
    }, indent=1) + "\n")
    print(f"val bpb {val_bpb:.5f} over {val_tokens} tokens", flush=True)


def validation_bpb(model, tokenizer, token_bytes, seq_len, val_dir, device, F, max_tokens=VAL_TOKENS):
    import pyarrow.parquet as pq
    import torch

    bos = tokenizer.get_bos_token_id()
    need = max_tokens + 1
    stream: list[int] = []
    for path in sorted(val_dir.glob("*.parquet")):
        parquet = pq.ParquetFile(path)
        for group in range(parquet.num_row_groups):
            texts = parquet.read_row_group(group).column("text").to_pylist()
            for ids in tokenizer.encode(texts, prepend=bos):
                stream.extend(ids)
            if len(stream) >= need:
                break
        if len(stream) >= need:
            break
    rows = min(len(stream) - 1, max_tokens) // seq_len
    if rows < 1:
        raise SystemExit("the validation shard is shorter than one sequence")
    data = torch.tensor(stream[: rows * seq_len + 1], dtype=torch.long)
    nats = torch.zeros((), dtype=torch.float64, device=device)
    total_bytes = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, rows, VAL_ROWS_PER_BATCH):
        idx = torch.arange(start, min(start + VAL_ROWS_PER_BATCH, rows))
        x = torch.stack([data[i * seq_len : (i + 1) * seq_len] for i in idx.tolist()]).to(device)
        y = torch.stack([data[i * seq_len + 1 : (i + 1) * seq_len + 1] for i in idx.tolist()]).to(device)
        logits = model(x)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
        nbytes = token_bytes[y.reshape(-1)]
        nats += (loss * (nbytes > 0)).sum().double()
        total_bytes += nbytes.sum()
    value = float(nats) / (math.log(2) * int(total_bytes)) if int(total_bytes) else float("inf")
    return value, rows * seq_len


if __name__ == "__main__":
    main()
