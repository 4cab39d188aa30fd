"""Scoring of the nanochat-d12 recipe (evaluator-owned; runs on the host, trusted).

Each CORE item's prediction from the eval phase (`core_preds.jsonl`) is judged
here against its answer (`core_answers.jsonl`, which never entered a sandbox):

* multiple choice / schema: correct when the choice of lowest mean loss (the
  first, on ties, as upstream's `index(min(...))`) is the gold one;
* language modeling: correct when the greedy continuation's text begins with
  the gold continuation.

Every task must have predictions for its first n items, n the same cap for
all tasks (the task's item count where it has fewer). CORE is the DCLM paper's
ensemble metric as upstream computes it (`scripts/base_eval.py`,
`evaluate_core`): each task's accuracy is centered by its random baseline (a
percentage, from the bundle's `eval_meta_data.csv`): `(acc - 0.01 * rb) /
(1 - 0.01 * rb)`, and CORE is the mean over the tasks of `core.yaml`.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path


def random_baselines(labels_dir: Path) -> dict[str, float]:
    with open(Path(labels_dir) / "eval_meta_data.csv", encoding="utf-8") as f:
        return {row["Eval Task"]: float(row["Random baseline"]) for row in csv.DictReader(f)}


def task_labels(labels_dir: Path) -> list[str]:
    import yaml

    config = yaml.safe_load((Path(labels_dir) / "core.yaml").read_text(encoding="utf-8"))
    return [task["label"] for task in config["icl_tasks"]]


def core_metric(results: dict[str, float], baselines: dict[str, float], labels: list[str]) -> float:
    centered = []
    for label in labels:
        if label not in results:
            raise ValueError(f"no accuracy for CORE task {label!r}")
        acc = results[label]
        if not isinstance(acc, (int, float)) or not 0.0 <= acc <= 1.0:
            raise ValueError(f"accuracy of {label!r} must be a number in [0, 1], got {acc!r}")
        rb = 0.01 * baselines[label]
        centered.append((acc - rb) / (1.0 - rb))
    return sum(centered) / len(centered)


def _read_jsonl(path: Path, what: str) -> list[dict]:
    if not path.is_file():
        raise ValueError(f"no {path.name} {what}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError:
                raise ValueError(f"{path.name} line {number} is not JSON") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path.name} line {number} is not an object")
            rows.append(row)
    return rows


def is_correct(answer: dict, pred: dict) -> bool:
    where = f"CORE task {answer['task']!r} item {answer['i']}"
    if "continuation" in answer:
        text = pred.get("text")
        if not isinstance(text, str):
            raise ValueError(f"{where}: expected the continuation's text")
        return text.startswith(answer["continuation"])
    losses = pred.get("losses")
    if (not isinstance(losses, list) or not losses
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in losses)):
        raise ValueError(f"{where}: expected a finite mean loss per choice, got {str(losses)[:80]}")
    return losses.index(min(losses)) == answer["gold"]


def accuracies(preds_dir: Path, labels_dir: Path) -> tuple[dict[str, float], dict[str, int]]:
    answers = _read_jsonl(Path(labels_dir) / "core_answers.jsonl", "(a broken labels folder)")
    preds = {(str(p.get("task")), p.get("i")): p for p in _read_jsonl(Path(preds_dir) / "core_preds.jsonl",
                                                                   "from the eval phase")}
    by_task: dict[str, list[dict]] = {}
    for answer in answers:
        by_task.setdefault(answer["task"], []).append(answer)
    counts = {}
    for label, task_answers in by_task.items():
        counts[label] = sum(1 for a in task_answers if (label, a["i"]) in preds)
        if counts[label] == 0:
            raise ValueError(f"no prediction for CORE task {label!r}")
    cap = max(counts.values())
    results = {}
    for label, task_answers in by_task.items():
        want = min(cap, len(task_answers))
        scored = [a for a in task_answers if a["i"] < want]
        if counts[label] != want or any((label, a["i"]) not in preds for a in scored):
            raise ValueError(f"CORE task {label!r}: predictions for {counts[label]} items, not for its first {want}")
        results[label] = sum(is_correct(a, preds[(label, a["i"])]) for a in scored) / len(scored)
    if len(preds) != sum(min(cap, len(a)) for a in by_task.values()):
        raise ValueError("core_preds.jsonl holds predictions for items that are not CORE items")
    return results, {label: min(cap, len(a)) for label, a in by_task.items()}


def score(preds_dir: Path, heldout_labels_dir: Path) -> dict[str, float]:
    results, counts = accuracies(preds_dir, heldout_labels_dir)
    core = core_metric(results, random_baselines(heldout_labels_dir), task_labels(heldout_labels_dir))
    return {"core": core, "core_items": float(sum(counts.values()))}
