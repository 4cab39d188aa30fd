"""Eval phase of the nanochat-d12 recipe (evaluator-owned; runs in the eval sandbox).

    python {eval}/predict.py      (cwd = the trial's workspace, read-only)

1. Loads the checkpoint the train phase left (`HARNESS_OUT/nanochat/base_checkpoints/d12/`)
   with the workspace's `nanochat.checkpoint_manager.load_model` (a protected
   file) into the trial's model (`nanochat/gpt.py`, editable).
2. CORE, without answers: the items of `core_items.jsonl` (rendered on the
   host, see `core_items.py`; no gold choice or continuation is in this
   sandbox), at most `HARNESS_CORE_MAX_PER_TASK` per task (default 500, -1 =
   all), in file order:
   * multiple choice / schema: tokenized and batched with upstream's
     `batch_sequences_mc` / `batch_sequences_schema` and run through
     `forward_model` from `pristine/core_eval.py` (copied by `prepare.py`
     from upstream at the pinned commit, never the trial's tree), cropped to
     the model's `max_seq_len` as upstream's `evaluate_example` does; the mean
     loss of each choice's tokens is written;
   * language modeling: the prompt is continued greedily (argmax, one token
     at a time) until the text is as long as the continuation; the text is
     written.
3. Writes `core_preds.jsonl`, one line per item. `score.py` (host) compares
   them with the answers, centers each task's accuracy by its random baseline
   and averages.
"""

import importlib.util
import json
import os
import sys
from pathlib import Path

MODEL_TAG = "d12"
EXTRA_TOKENS = 8
"""Greedy steps allowed beyond the continuation's length in characters (a token holds >= 1 char,
except byte tokens of one character split in several)."""


def crop(tokens, starts, ends, max_len):
    """Upstream's cropping in `evaluate_example`: keep the last max_len tokens, shift the indices."""
    if max_len is None:
        return tokens, starts, ends
    out = ([], [], [])
    for t, s, e in zip(tokens, starts, ends):
        cut = max(0, len(t) - max_len)
        out[0].append(t[cut:])
        out[1].append(s - cut)
        out[2].append(e - cut)
    return out


def choice_losses(model, tokenizer, core_eval, item, device):
    """Mean loss of each choice's tokens (multiple choice and schema items)."""
    batch = core_eval.batch_sequences_mc if item["type"] == "multiple_choice" else core_eval.batch_sequences_schema
    tokens, starts, ends = batch(tokenizer, item["prompts"])
    tokens, starts, ends = crop(tokens, starts, ends, getattr(model, "max_seq_len", None))
    input_ids = core_eval.stack_sequences(tokens, tokenizer.get_bos_token_id()).to(device)
    losses, _ = core_eval.forward_model(model, input_ids)
    return [float(losses[i, s - 1 : e - 1].mean()) for i, (s, e) in enumerate(zip(starts, ends))]


def greedy_text(model, tokenizer, item, device, torch):
    """The prompt continued greedily until its text is at least the continuation's length."""
    tokens = list(tokenizer(item["prompt"], prepend=tokenizer.get_bos_token_id()))
    max_len = getattr(model, "max_seq_len", None)
    generated: list[int] = []
    text = ""
    for _ in range(int(item["target_chars"]) + EXTRA_TOKENS):
        window = tokens[-max_len:] if max_len else tokens
        logits = model(torch.tensor([window], dtype=torch.long, device=device))
        token = int(logits[0, -1].argmax())
        tokens.append(token)
        generated.append(token)
        text = tokenizer.decode(generated)
        if len(text) >= int(item["target_chars"]):
            break
    return text


def main() -> None:
    workspace = Path(os.environ["HARNESS_WORKSPACE"])
    out_dir = Path(os.environ["HARNESS_OUT"])
    heldout = Path(os.environ["HARNESS_HELDOUT"])
    preds_dir = Path(os.environ["HARNESS_PREDS"])
    max_per_task = int(os.environ.get("HARNESS_CORE_MAX_PER_TASK", "500"))

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

    from nanochat.checkpoint_manager import load_model  # noqa: E402  (protected file of the workspace)

    spec = importlib.util.spec_from_file_location("pristine_core_eval", heldout / "pristine" / "core_eval.py")
    core_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core_eval)

    if torch.cuda.is_available():
        device = torch.device("cuda", 0)
        torch.cuda.set_device(device)
    else:  # the `cpu` fidelity (upstream's autodetect_device_type order, MPS aside)
        device = torch.device("cpu")
    model, tokenizer, _meta = load_model("base", device, phase="eval", model_tag=MODEL_TAG)
    model.eval()

    items = [json.loads(line) for line in (heldout / "core_items.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    if max_per_task > 0:
        items = [item for item in items if item["i"] < max_per_task]
    with open(preds_dir / "core_preds.jsonl", "w", encoding="utf-8") as out, torch.inference_mode():
        for n, item in enumerate(items, 1):
            row = {"task": item["task"], "i": item["i"]}
            if item["type"] == "language_modeling":
                row["text"] = greedy_text(model, tokenizer, item, device, torch)
            else:
                row["losses"] = choice_losses(model, tokenizer, core_eval, item, device)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            if n % 1000 == 0:
                print(f"{n}/{len(items)} CORE items", flush=True)
    print(f"wrote predictions for {len(items)} CORE items (at most {max_per_task} per task)", flush=True)


if __name__ == "__main__":
    main()
