"""Scoring of the nanochat-d12 recipe (evaluator-owned; runs on the host, trusted).

CORE is the DCLM paper's ensemble metric as upstream computes it
(`scripts/base_eval.py`, `evaluate_core`): each task's accuracy is centered by
its random baseline (a percentage, from the bundle's `eval_meta_data.csv`):
`(acc - 0.01 * rb) / (1 - 0.01 * rb)`, and CORE is the mean over the tasks of
`core.yaml`. Every task must be present with an accuracy in [0, 1]. The
validation bits per byte is recorded next to it (`val_bpb`), not scored.
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


def score(preds_dir: Path, heldout_labels_dir: Path) -> dict[str, float]:
    path = Path(preds_dir) / "core.json"
    if not path.is_file():
        raise ValueError("no core.json from the eval phase")
    try:
        found = json.loads(path.read_text())
        results = {str(k): v for k, v in found["results"].items()}
        val_bpb = float(found["val_bpb"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"core.json is malformed: {exc}") from None
    core = core_metric(results, random_baselines(heldout_labels_dir), task_labels(heldout_labels_dir))
    if not math.isfinite(val_bpb) or val_bpb <= 0:
        raise ValueError(f"val_bpb {val_bpb} is not a positive number")
    return {"core": core, "val_bpb": val_bpb}
