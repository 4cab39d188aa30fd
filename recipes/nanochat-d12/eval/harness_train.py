"""Train phase of the nanochat-d12 recipe (evaluator-owned driver).

    python {data}/harness_train.py      (cwd = the trial's workspace: the nanochat repository)

`prepare.py` copies this file into the train data folder: it runs from the
read-only data mount and is never part of a trial's tree. It lays out a
nanochat base folder in HARNESS_OUT (`NANOCHAT_BASE_DIR`: links to this
phase's train shards and tokenizer, removed at the end; checkpoints land in
`base_checkpoints/d12/`) and runs upstream's d12 pretraining command
(README "Research": `torchrun --standalone --nproc_per_node=8 -m
scripts.base_train -- --depth=12 ...`) over the visible GPUs, with every
in-training evaluation off: CORE and val bpb are the evaluator's.

`HARNESS_TRAIN_ARGS` (set by a fidelity) appends arguments, e.g.
`--num-iterations=200` for a smoke run; upstream's argparse keeps the last
value of a flag given twice. Upstream seeds its runs itself (`compute_init`:
42); HARNESS_SEED is exported for trials that use it.

`HARNESS_NANOCHAT_DEVICE=cpu` (the `cpu` fidelity) runs the same script in one
plain process on the CPU (`python -m scripts.base_train --device-type=cpu`,
upstream's documented CPU use): torchrun's rendezvous needs a TCP store on a
loopback that the sandbox keeps down, and plain `python -m` takes no `--`
before the script's arguments (torchrun strips it).
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

MODEL_TAG = "d12"
ARGS = ["--depth=12", f"--model-tag={MODEL_TAG}", "--run=dummy", "--eval-every=-1", "--core-metric-every=-1",
        "--sample-every=-1", "--save-every=-1"]


def gpu_count() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible and visible not in ("void", "none", "-1"):
        return len([v for v in visible.split(",") if v.strip()])
    import torch

    return torch.cuda.device_count()


def main() -> None:
    workspace = Path.cwd()
    data = Path(os.environ["HARNESS_DATA"])
    base = Path(os.environ["HARNESS_OUT"]) / "nanochat"
    base.mkdir(parents=True, exist_ok=True)
    for name in ("base_data_climbmix", "tokenizer"):
        link = base / name
        if not link.exists():
            link.symlink_to(data / name)
    env = dict(os.environ, NANOCHAT_BASE_DIR=str(base), OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    if (data / "hf_cache").is_dir():
        env.update(HF_HUB_CACHE=str(data / "hf_cache"), HF_HUB_OFFLINE="1")
    extra = shlex.split(os.environ.get("HARNESS_TRAIN_ARGS", ""))
    if os.environ.get("HARNESS_NANOCHAT_DEVICE") == "cpu":
        cmd = [sys.executable, "-m", "scripts.base_train", "--device-type=cpu", *ARGS, *extra]
    else:
        gpus = gpu_count()
        if gpus < 1:
            sys.exit("nanochat-d12 needs CUDA GPUs: none is visible to the train phase "
                     "(the `cpu` fidelity runs on the CPU)")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
               "-m", "scripts.base_train", "--", *ARGS, *extra]
    print("running:", " ".join(cmd), flush=True)
    try:
        code = subprocess.call(cmd, env=env, cwd=workspace)
    finally:  # the links point into this phase's data mount: leave only real outputs behind
        for name in ("base_data_climbmix", "tokenizer"):
            if (base / name).is_symlink():
                (base / name).unlink()
    sys.exit(code)


if __name__ == "__main__":
    main()
