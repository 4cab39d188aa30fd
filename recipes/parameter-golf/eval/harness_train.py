"""Train phase of the parameter-golf recipe (evaluator-owned driver).

    python {data}/harness_train.py      (cwd = the trial's workspace: the parameter-golf repository)

`prepare.py` copies this file into the train data folder: it runs from the
read-only data mount and is never part of a trial's tree. It launches the
trial's `train_gpt.py` the way upstream's README does (`torchrun --standalone
--nproc_per_node=<GPUs> train_gpt.py`), with the data paths of this phase,
then copies the artifact `final_model.int8.ptz` the script writes into
HARNESS_OUT, where the evaluator reads it.

Environment given to the script: DATA_PATH and TOKENIZER_PATH (this phase's
train data; its `fineweb_val_*` is a stand-in cut from training data),
SEED = HARNESS_SEED, RUN_ID = harness, VAL_LOSS_EVERY = 0 (periodic
validation on the stand-in would only cost time), and the fidelity's
MAX_WALLCLOCK_SECONDS (600 at full fidelity: upstream's training cap).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ARTIFACT = "final_model.int8.ptz"


def gpu_count() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible and visible not in ("void", "none", "-1"):
        return len([v for v in visible.split(",") if v.strip()])
    import torch

    return torch.cuda.device_count()


def main() -> None:
    workspace = Path.cwd()
    data = Path(os.environ["HARNESS_DATA"])
    out = Path(os.environ["HARNESS_OUT"])
    env = dict(os.environ)
    env.update({
        "DATA_PATH": str(data / "datasets" / "fineweb10B_sp1024"),
        "TOKENIZER_PATH": str(data / "tokenizers" / "fineweb_1024_bpe.model"),
        "SEED": os.environ.get("HARNESS_SEED", "1337"),
        "RUN_ID": "harness",
        "VAL_LOSS_EVERY": "0",
    })
    env.setdefault("MAX_WALLCLOCK_SECONDS", "600")
    gpus = gpu_count()
    if gpus < 1:
        sys.exit("parameter-golf needs CUDA GPUs: none is visible to the train phase")
    stale = workspace / ARTIFACT
    if stale.exists():
        stale.unlink()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", "train_gpt.py"]
    print("running:", " ".join(cmd), flush=True)
    code = subprocess.call(cmd, env=env, cwd=workspace)
    if code != 0:
        sys.exit(code)
    if not stale.is_file():
        sys.exit(f"train_gpt.py finished without writing {ARTIFACT}")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stale, out / ARTIFACT)
    print(f"artifact: {(out / ARTIFACT).stat().st_size} bytes", flush=True)


if __name__ == "__main__":
    main()
