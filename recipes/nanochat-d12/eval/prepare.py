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
* held-out inputs (eval phase only): the validation shard, the tokenizer, the
  CORE bundle, and `pristine/core_eval.py`: upstream's CORE evaluation code,
  copied here from the recipe cache's checkout of the pinned commit, never
  from a trial's tree;
* held-out labels (host only): `core.yaml` and `eval_meta_data.csv`, from
  which `score.py` centers each task's accuracy by its random baseline.

At the `cpu` fidelity (the run's level, which the harness passes as
`fidelity`) the base folder is not read from `$HARNESS_NANOCHAT_DATA`: a small
one is made locally in upstream's formats (`nanochat_cpu_data.py`, the
tokenizer trained by upstream's own `scripts.tok_train`), so the level runs
offline on any machine.

Large files are hard-linked when possible, else copied.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from nanochat_cpu_data import make_base_folder

DATA_ENV = "HARNESS_NANOCHAT_DATA"
UPSTREAM_URL = "https://github.com/karpathy/nanochat"
UPSTREAM_COMMIT = "92d63d4e8bb4df75c3b71618f31ddde2378b2bcd"
"""The recipe's pin (recipe.toml `source`); a test keeps the two equal."""
PRISTINE_FILES = ["nanochat/core_eval.py"]
DRIVER = Path(__file__).with_name("harness_train.py")
CPU_LEVEL = "cpu"
"""The fidelity whose data is made locally (recipe.toml `[fidelities.cpu]`)."""


def prepare(train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path, fidelity: str | None = None) -> None:
    from harness.recipe_loader import git_checkout  # the recipe cache: pristine upstream at the pin

    checkout = git_checkout(UPSTREAM_URL, UPSTREAM_COMMIT)
    if fidelity == CPU_LEVEL:
        with tempfile.TemporaryDirectory(prefix="nanochat-cpu-") as tmp:
            lay_out(make_base_folder(Path(tmp), checkout), checkout, train_dir, heldout_inputs_dir,
                    heldout_labels_dir)
    else:
        lay_out(data_root(), checkout, train_dir, heldout_inputs_dir, heldout_labels_dir)


def lay_out(root: Path, checkout: Path, train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path) -> None:
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
    train_shards, val_shard = shards[:-1], shards[-1]
    link_tree_files(train_shards, train_dir / "base_data_climbmix")
    for folder in (train_dir, heldout_inputs_dir):
        link_tree_files([tokenizer / "tokenizer.pkl", tokenizer / "token_bytes.pt"], folder / "tokenizer")
    if (root / "hf_cache").is_dir():
        link_tree(root / "hf_cache", train_dir / "hf_cache")
        link_tree(root / "hf_cache", heldout_inputs_dir / "hf_cache")
    shutil.copyfile(DRIVER, train_dir / "harness_train.py")

    link_tree_files([val_shard], heldout_inputs_dir / "val")
    link_tree(bundle, heldout_inputs_dir / "eval_bundle")
    heldout_labels_dir.mkdir(parents=True, exist_ok=True)
    for name in ("core.yaml", "eval_meta_data.csv"):
        shutil.copyfile(bundle / name, heldout_labels_dir / name)

    pristine = heldout_inputs_dir / "pristine"
    pristine.mkdir(parents=True, exist_ok=True)
    for rel in PRISTINE_FILES:
        shutil.copyfile(checkout / rel, pristine / Path(rel).name)


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
    except OSError:  # another file system
        shutil.copyfile(src, dest)
