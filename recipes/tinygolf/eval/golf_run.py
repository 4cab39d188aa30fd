"""Train-phase driver of the tinygolf recipe (evaluator code; `prepare` copies it and
codec.py into the train data folder, read-only, outside every trial's tree).

    python {data}/golf_run.py      (cwd = trial workspace; HARNESS_OUT writable)

First half of the int8 + zlib round trip: calls the trial's `train.main()`,
which returns the trained state_dict, and writes it with the evaluator's codec
as HARNESS_OUT/model.int8.zlib (int8 per row / per tensor, float16 scales,
zlib level 9). No full-precision weights are written, so the eval phase only
ever sees the quantized model; anything else a trial leaves in HARNESS_OUT
counts towards the artifact cap like the model does.
"""

import importlib.util
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _codec():
    spec = importlib.util.spec_from_file_location("tinygolf_train_codec", HERE / "codec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    codec = _codec()  # loaded before any trial code
    sys.path[0] = os.environ.get("HARNESS_WORKSPACE", os.getcwd())  # the trial's modules, not this folder
    import train  # noqa: E402  (the trial's training code)

    state = train.main()
    if not isinstance(state, dict):
        raise SystemExit(f"train.main() must return the model's state_dict, got {type(state).__name__}")
    out = Path(os.environ["HARNESS_OUT"])
    out.mkdir(parents=True, exist_ok=True)
    blob = codec.encode(state)
    (out / "model.int8.zlib").write_bytes(blob)
    print(f"wrote model.int8.zlib: {len(blob)} bytes", flush=True)
