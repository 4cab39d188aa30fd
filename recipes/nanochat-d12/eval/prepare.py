"""Data of the nanochat-d12 recipe (evaluator-owned; runs on the host).

The data is what upstream's own tools put in a nanochat base folder
(`NANOCHAT_BASE_DIR`, default `~/.cache/nanochat`), named by
`$HARNESS_NANOCHAT_DATA`:

* `base_data_climbmix/shard_*.parquet`: `python -m nanochat.dataset -n N`
  downloads N train shards plus the validation shard, which upstream pins to
  be the *last* file (`shard_06542.parquet`);
* `tokenizer/` (`tokenizer.pkl`, `token_bytes.pt`): `python -m scripts.tok_train`;
* `eval_bundle/` (`core.yaml`, `eval_meta_data.csv`, `eval_data/`): upstream's
  CORE bundle, unpacked from `eval_bundle.zip`
  (https://karpathy-public.s3.us-west-2.amazonaws.com/eval_bundle.zip);
* optionally `hf_cache/`: a Hugging Face hub cache holding the Flash Attention 3
  kernels (`kernels` fetches them at import; trials have no network, so
  without it the model falls back to PyTorch SDPA).

What each phase sees:

* train data: the train shards (every shard but the last), the tokenizer, the
  optional kernel cache and `harness_train.py`, the evaluator's driver;
* held-out inputs (eval phase only): the tokenizer, `pristine/core_eval.py`
  (upstream's CORE evaluation code, copied here from the recipe cache's
  checkout of the pinned commit, never from a trial's tree), and the CORE
  items *without their answers* (`core_items.jsonl`, `core_tasks.json`,
  rendered on the host by `core_items.py`: trial code runs in the eval phase);
  at most `$HARNESS_CORE_MAX_PER_TASK` items per task (default 500, upstream's
  `--core-metric-max-per-task`; -1: all). Neither the bundle (its files hold
  the answers) nor the validation shard (its next tokens are the targets of
  a bits-per-byte) enters a sandbox;
* held-out labels (host only): `core_answers.jsonl` (each item's gold choice
  or continuation), `core.yaml` and `eval_meta_data.csv`, from which
  `score.py` centers each task's accuracy by its random baseline.

At the `cpu` fidelity (the run's level, which the harness passes as
`fidelity`) the base folder is not read from `$HARNESS_NANOCHAT_DATA`: a small
one is made locally in upstream's formats (`nanochat_cpu_data.py`, the
tokenizer trained by upstream's own `scripts.tok_train`), so the level runs
offline on any machine.

Large files are hard-linked when possible, else copied.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path


DATA_ENV = "HARNESS_NANOCHAT_DATA"
UPSTREAM_URL = "https://github.com/karpathy/nanochat"
UPSTREAM_COMMIT = "92d63d4e8bb4df75c3b71618f31ddde2378b2bcd"
"""The recipe's pin (recipe.toml `source`); a test keeps the two equal."""
PRISTINE_FILES = ["nanochat/core_eval.py"]
DRIVER = Path(__file__).with_name("harness_train.py")
MAX_PER_TASK_ENV = "HARNESS_CORE_MAX_PER_TASK"
CPU_LEVEL = "cpu"
"""The fidelity whose data is made locally (recipe.toml `[fidelities.cpu]`)."""


def prepare(train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path, fidelity: str | None = None) -> None:
    if fidelity != CPU_LEVEL:
        lay_out(data_root(), train_dir, heldout_inputs_dir, heldout_labels_dir)
        return
    from harness.recipe_loader import git_checkout  # the recipe cache: pristine upstream at the pin

    cpu_data = load_by_path(Path(__file__).with_name("nanochat_cpu_data.py"), "nanochat_cpu_data")
    with tempfile.TemporaryDirectory(prefix="nanochat-cpu-") as tmp:
        root = cpu_data.make_base_folder(Path(tmp), git_checkout(UPSTREAM_URL, UPSTREAM_COMMIT))
        lay_out(root, train_dir, heldout_inputs_dir, heldout_labels_dir)


def lay_out(root: Path, train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path) -> None:
    shards = sorted(p for p in (root / "base_data_climbmix").glob("*.parquet"))
    tokenizer = root / "tokenizer"
    bundle = root / "eval_bundle"
    missing = [str(p) for p in (tokenizer / "tokenizer.pkl", tokenizer / "token_bytes.pt", bundle / "core.yaml",
                                bundle / "eval_meta_data.csv", bundle / "eval_data") if not p.exists()]
    if len(shards) < 2 or missing:
        raise ValueError(
            f"{root} is not a prepared nanochat base folder (need >= 2 parquet shards in base_data_climbmix/, "
            f"missing: {missing or 'shards'}); run upstream's `python -m nanochat.dataset -n 8`, "
            "`python -m scripts.tok_train` and unpack eval_bundle.zip there"
        )
    train_dir, heldout_inputs_dir, heldout_labels_dir = map(Path, (train_dir, heldout_inputs_dir, heldout_labels_dir))
    train_shards = shards[:-1]  # the last shard is upstream's validation shard: never trained on
    link_tree_files(train_shards, train_dir / "base_data_climbmix")
    for folder in (train_dir, heldout_inputs_dir):
        link_tree_files([tokenizer / "tokenizer.pkl", tokenizer / "token_bytes.pt"], folder / "tokenizer")
    if (root / "hf_cache").is_dir():
        link_tree(root / "hf_cache", train_dir / "hf_cache")
        link_tree(root / "hf_cache", heldout_inputs_dir / "hf_cache")
    shutil.copyfile(DRIVER, train_dir / "harness_train.py")

    heldout_labels_dir.mkdir(parents=True, exist_ok=True)
    for name in ("core.yaml", "eval_meta_data.csv"):
        shutil.copyfile(bundle / name, heldout_labels_dir / name)

    from harness.recipe_loader import git_checkout  # the recipe cache: pristine upstream at the pin

    checkout = git_checkout(UPSTREAM_URL, UPSTREAM_COMMIT)
    pristine = heldout_inputs_dir / "pristine"
    pristine.mkdir(parents=True, exist_ok=True)
    for rel in PRISTINE_FILES:
        shutil.copyfile(checkout / rel, pristine / Path(rel).name)
    core_items = load_by_path(Path(__file__).with_name("core_items.py"), "nanochat_core_items")
    core_eval = load_by_path(pristine / "core_eval.py", "nanochat_pristine_core_eval")
    tasks, items, answers = core_items.build(bundle, core_eval, max_per_task())
    (heldout_inputs_dir / "core_tasks.json").write_text(json.dumps(tasks, indent=1) + "\n")
    core_items.write_jsonl(heldout_inputs_dir / "core_items.jsonl", items)
    core_items.write_jsonl(heldout_labels_dir / "core_answers.jsonl", answers)


def max_per_task() -> int:
    value = os.environ.get(MAX_PER_TASK_ENV, "500")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{MAX_PER_TASK_ENV}={value!r} is not a whole number") from None


def load_by_path(path: Path, name: str):
    """A module from its file (upstream's core_eval, this folder's core_items), on the host."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_root() -> Path:
    given = os.environ.get(DATA_ENV)
    root = Path(given).expanduser() if given else Path.home() / ".cache" / "nanochat"
    if not root.is_dir():
        raise ValueError(f"no nanochat base folder at {root}: set {DATA_ENV} to one")
    return root


def link_tree_files(files: list[Path], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for src in files:
        link_or_copy(src, dest / src.name)


def link_tree(src: Path, dest: Path) -> None:
    for path in sorted(src.rglob("*")):
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(path, target)


def link_or_copy(src: Path, dest: Path) -> None:
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
