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

`HARNESS_GOLF_DEVICE=cpu` (the `cpu` fidelity): upstream's `main()` refuses to
run without CUDA ("CUDA is required") and times itself with CUDA calls, so on
the CPU this driver trains the trial's own pieces instead, in one process:
the trial's `Hyperparameters()` (from the same environment: model size,
batch tokens, sequence length, ITERATIONS, learning rates), `GPT`, `Muon` for
the blocks' matrices and Adam for the rest (split by the trial's
`CONTROL_TENSOR_NAME_PATTERNS`), `DistributedTokenLoader` over the train
shards, then the trial's `quantize_state_dict_int8`, `torch.save` and
`zlib.compress(level=9)` into `final_model.int8.ptz`, the artifact upstream
writes. Edits to `main()` itself take effect only on a GPU.
"""

import importlib.util
import inspect
import io
import os
import shutil
import subprocess
import sys
import zlib
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
    stale = workspace / ARTIFACT
    if stale.exists():
        stale.unlink()
    if os.environ.get("HARNESS_GOLF_DEVICE") == "cpu":
        os.environ.update(env)
        train_on_cpu(workspace)
    else:
        gpus = gpu_count()
        if gpus < 1:
            sys.exit("parameter-golf needs CUDA GPUs: none is visible to the train phase "
                     "(the `cpu` fidelity runs on the CPU)")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
               "train_gpt.py"]
        print("running:", " ".join(cmd), flush=True)
        code = subprocess.call(cmd, env=env, cwd=workspace)
        if code != 0:
            sys.exit(code)
    if not stale.is_file():
        sys.exit(f"train_gpt.py finished without writing {ARTIFACT}")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stale, out / ARTIFACT)
    print(f"artifact: {(out / ARTIFACT).stat().st_size} bytes", flush=True)


def train_on_cpu(workspace: Path) -> None:
    import torch

    sys.dont_write_bytecode = True
    sys.path[0] = str(workspace)
    spec = importlib.util.spec_from_file_location("trial_train_gpt", workspace / "train_gpt.py")
    trial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trial)  # definitions only: main() runs under __main__
    args = trial.Hyperparameters()
    torch.manual_seed(args.seed)
    params = [p for p in inspect.signature(trial.GPT.__init__).parameters if p != "self"]
    model = trial.GPT(**{p: getattr(args, p) for p in params if hasattr(args, p)})
    matrices, others = [], []
    for name, param in model.named_parameters():
        in_blocks = name.startswith("blocks.")
        control = any(pattern in name for pattern in getattr(trial, "CONTROL_TENSOR_NAME_PATTERNS", ()))
        (matrices if in_blocks and param.ndim == 2 and not control else others).append(param)
    optimizers = [trial.Muon(matrices, lr=args.matrix_lr, momentum=args.muon_momentum,
                             backend_steps=args.muon_backend_steps),
                  torch.optim.Adam(others, lr=args.scalar_lr, betas=(args.beta1, args.beta2), eps=args.adam_eps)]
    for opt in optimizers:
        for group in opt.param_groups:
            group["base_lr"] = group["lr"]
    loader = trial.DistributedTokenLoader(args.train_files, 0, 1, torch.device("cpu"))
    model.train()
    for step in range(args.iterations):
        scale = min(1.0, (args.iterations - step) / max(args.warmdown_iters, 1))
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * scale
        x, y = loader.next_batch(args.train_batch_tokens, args.train_seq_len, 1)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            loss = model(x, y)
        loss.backward()
        for opt in optimizers:
            opt.step()
            opt.zero_grad(set_to_none=True)
        if step % 10 == 0 or step == args.iterations - 1:
            print(f"step:{step + 1}/{args.iterations} train_loss:{loss.item():.4f}", flush=True)
    quantized, _ = trial.quantize_state_dict_int8(model.state_dict())
    buffer = io.BytesIO()
    torch.save(quantized, buffer)
    (workspace / ARTIFACT).write_bytes(zlib.compress(buffer.getvalue(), level=9))


if __name__ == "__main__":
    main()
