"""CORE items without their answers (evaluator-owned; runs on the host, in `prepare`).

Trial code runs in the eval phase, so the eval phase gets no answer of a
scored item. Upstream's `evaluate_core` takes every task's shuffled data (at
most `max_per_task` items) and draws each item's few-shot demonstrations,
answers included, from those same items: any scored answer would be readable
in another item's prompt. Here the demonstrations come from a *pool* of items
set aside and never scored (`pool_size`), and the prompts are rendered on the
host with upstream's own render functions (`pristine/core_eval.py`):

* multiple choice / schema: one prompt per choice; the eval phase returns the
  mean loss of each choice's tokens (upstream's `forward_model` and index
  arithmetic) and the host picks the lowest, as upstream does;
* language modeling: the prompt without the continuation and the
  continuation's length in characters; the eval phase continues it greedily
  and returns the text, which the host compares with the continuation.
  Upstream's test (every argmax prediction equals the continuation's token)
  is the same as the greedy continuation reproducing those tokens; comparing
  text also counts the rare greedy continuation that spells the same text in
  other tokens.

The few-shot pool makes the demonstrations differ from upstream's (same
data, other items), so scores are close to upstream's, not identical.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SHUFFLE_SEED = 1337
"""Upstream's `evaluate_core` shuffle."""
FEWSHOT_SEED = 1234
"""Upstream's `evaluate_example` draws an item's demonstrations with Random(1234 + index)."""
POOL_MAX = 100


def pool_size(n_items: int, num_fewshot: int) -> int:
    """Items set aside for demonstrations: none for zero-shot tasks, else at least the shots,
    up to POOL_MAX and half the task."""
    if num_fewshot <= 0:
        return 0
    return max(num_fewshot, min(POOL_MAX, n_items // 2))


def build(bundle: Path, core_eval, max_per_task: int) -> tuple[list[dict], list[dict], list[dict]]:
    """(tasks, items, answers): `items` go to the eval phase, `answers` stay on the host."""
    import yaml

    config = yaml.safe_load((bundle / "core.yaml").read_text(encoding="utf-8"))
    tasks, items, answers = [], [], []
    for task in config["icl_tasks"]:
        label, kind = task["label"], task["icl_task_type"]
        shots = int(task["num_fewshot"][0])
        delimiter = task.get("continuation_delimiter", " ")
        lines = (bundle / "eval_data" / task["dataset_uri"]).read_text(encoding="utf-8").splitlines()
        data = [json.loads(line) for line in lines if line.strip()]
        random.Random(SHUFFLE_SEED).shuffle(data)
        reserved = pool_size(len(data), shots)
        pool, candidates = data[len(data) - reserved:], data[: len(data) - reserved]
        scored = candidates if max_per_task <= 0 else candidates[:max_per_task]
        if not scored or len(pool) < shots:
            raise ValueError(f"CORE task {label!r}: {len(data)} items are too few for {shots}-shot prompts")
        for index, item in enumerate(scored):
            fewshot = random.Random(FEWSHOT_SEED + index).sample(pool, shots) if shots else []
            key = {"task": label, "i": index}
            if kind == "multiple_choice":
                prompts = core_eval.render_prompts_mc(item, delimiter, fewshot)
            elif kind == "schema":
                prompts = core_eval.render_prompts_schema(item, delimiter, fewshot)
            elif kind == "language_modeling":
                without, full = core_eval.render_prompts_lm(item, delimiter, fewshot)
                if not full.startswith(without) or len(full) == len(without):
                    raise ValueError(f"CORE task {label!r} item {index}: the prompt without the continuation "
                                     "is not a prefix of the prompt with it")
                items.append({**key, "type": kind, "prompt": without, "target_chars": len(full) - len(without)})
                answers.append({**key, "continuation": full[len(without):]})
                continue
            else:
                raise ValueError(f"CORE task {label!r}: unknown task type {kind!r}")
            items.append({**key, "type": kind, "prompts": prompts})
            answers.append({**key, "gold": int(item["gold"])})
        tasks.append({"label": label, "type": kind, "items": len(scored)})
    return tasks, items, answers


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
