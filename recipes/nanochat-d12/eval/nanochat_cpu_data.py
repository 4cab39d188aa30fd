"""A small nanochat base folder made locally, for the `cpu` fidelity (evaluator-owned, host).

The same layout and file formats as upstream's own tools produce, at a size a
CPU trains on in a minute:

* `base_data_climbmix/shard_0000N.parquet`: parquet files with one `text`
  column in several row groups, the last file being the validation shard
  (upstream: `nanochat/dataset.py`, the last file is `val`);
* `tokenizer/tokenizer.pkl` and `token_bytes.pt`: written by upstream's own
  `python -m scripts.tok_train` run on those shards from the pinned checkout
  (rustbpe BPE, tiktoken encoding, byte lengths per token);
* `eval_bundle/`: `core.yaml` (`icl_tasks`: label, dataset_uri, num_fewshot,
  icl_task_type, continuation_delimiter), `eval_meta_data.csv` (`Eval Task`,
  `Random baseline` in percent) and `eval_data/*.jsonl`, one task of each of
  the three kinds upstream's `core_eval.py` evaluates: multiple_choice
  (query, choices, gold), schema (context_options, continuation, gold) and
  language_modeling (context, continuation).

The text is a small world of facts ("the heron is amber. the heron eats
moss."): documents are random selections of them, so a model that learns the
facts scores above the random baselines. Everything is drawn from one seeded
generator: the same bytes every time.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

SEED = 20260703
ANIMALS = ["heron", "otter", "lynx", "badger", "falcon", "marten", "ibis", "newt", "vole", "wren",
           "stoat", "crane", "gecko", "hare", "kite", "moth", "pike", "raven", "seal", "toad"]
COLORS = ["amber", "blue", "green", "grey", "red", "white"]
FOODS = ["moss", "fish", "seeds", "beetles", "berries", "grass"]
PLACES = ["river", "forest", "marsh", "hill", "cave", "meadow"]
TRAIN_SHARDS = 3
DOCS_PER_SHARD = 600
ROWS_PER_GROUP = 100
VOCAB_SIZE = 512
"""Upstream's minimum is 256 byte tokens plus its special tokens."""
TASK_EXAMPLES = 40


def world(rng: random.Random) -> dict[str, dict[str, str]]:
    return {a: {"color": rng.choice(COLORS), "food": rng.choice(FOODS), "place": rng.choice(PLACES)}
            for a in ANIMALS}


def fact(animal: str, facts: dict[str, str], kind: str) -> str:
    return {"color": f"the {animal} is {facts['color']}.",
            "food": f"the {animal} eats {facts['food']}.",
            "place": f"the {animal} lives by the {facts['place']}."}[kind]


def document(rng: random.Random, facts: dict[str, dict[str, str]]) -> str:
    sentences = [fact(a, facts[a], rng.choice(["color", "food", "place"]))
                 for a in rng.sample(ANIMALS, rng.randint(4, 12))]
    return " ".join(sentences)


def write_shards(data_dir: Path, rng: random.Random, facts) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_dir.mkdir(parents=True, exist_ok=True)
    for index in range(TRAIN_SHARDS + 1):  # the last one is the validation shard
        texts = [document(rng, facts) for _ in range(DOCS_PER_SHARD)]
        pq.write_table(pa.table({"text": texts}), data_dir / f"shard_{index:05d}.parquet",
                       row_group_size=ROWS_PER_GROUP)


def write_bundle(bundle: Path, rng: random.Random, facts) -> None:
    tasks = [("facts_mc", "multiple_choice", 0, 100.0 / len(COLORS)),
             ("facts_schema", "schema", 1, 25.0),
             ("facts_lm", "language_modeling", 1, 0.0)]
    (bundle / "eval_data").mkdir(parents=True, exist_ok=True)
    lines = ["icl_tasks:"]
    for label, kind, shots, _ in tasks:
        lines += [f"- label: {label}", f"  dataset_uri: {label}.jsonl", f"  num_fewshot: [{shots}]",
                  f"  icl_task_type: {kind}", "  continuation_delimiter: ' '"]
        items = [task_item(kind, rng, facts) for _ in range(TASK_EXAMPLES)]
        (bundle / "eval_data" / f"{label}.jsonl").write_text(
            "".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    (bundle / "core.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open(bundle / "eval_meta_data.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Eval Task", "Task Category", "Task Type", "#shots", "Random baseline"])
        for label, kind, shots, baseline in tasks:
            writer.writerow([label, "synthetic facts", kind, shots, f"{baseline:g}"])


def task_item(kind: str, rng: random.Random, facts) -> dict:
    animal = rng.choice(ANIMALS)
    color = facts[animal]["color"]
    if kind == "multiple_choice":
        choices = sorted(COLORS)
        return {"query": f"the {animal} is", "choices": choices, "gold": choices.index(color)}
    if kind == "schema":
        others = [a for a in ANIMALS if facts[a]["color"] != color]
        options = [f"the {animal} is"] + [f"the {a} is" for a in rng.sample(others, 3)]
        rng.shuffle(options)
        return {"context_options": options, "continuation": f"{color}.", "gold": options.index(f"the {animal} is")}
    return {"context": f"the {animal} lives by the", "continuation": facts[animal]["place"]}


def make_base_folder(root: Path, checkout: Path) -> Path:
    """Write the base folder at `root` (tokenizer trained by upstream's script in `checkout`)."""
    rng = random.Random(SEED)
    facts = world(rng)
    write_shards(root / "base_data_climbmix", rng, facts)
    write_bundle(root / "eval_bundle", rng, facts)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(NANOCHAT_BASE_DIR=str(root), PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "scripts.tok_train", f"--vocab-size={VOCAB_SIZE}"],
                          cwd=checkout, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-2000:]
        raise ValueError(f"upstream's scripts.tok_train failed on the cpu data (exit {done.returncode}):\n{tail}")
    return root
