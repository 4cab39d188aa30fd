"""Eval phase of recipe `__RECIPE_NAME__` (evaluator-owned; runs in the eval sandbox).

    python {eval}/predict.py        (cwd = the trial's workspace, read-only)

Imports the trial's `infer.predict`, asks it for predictions on the held-out
inputs and saves exactly what it returned to HARNESS_PREDS/preds.npy. Nothing
here is trusted further: `score.py` validates the file on the host.
"""

import os
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    workspace = Path(os.environ["HARNESS_WORKSPACE"])
    out_dir = Path(os.environ["HARNESS_OUT"])
    heldout = Path(os.environ["HARNESS_HELDOUT"])
    preds_dir = Path(os.environ["HARNESS_PREDS"])

    sys.dont_write_bytecode = True  # the workspace is read-only
    # Replace this script's folder on the path: trial code must resolve to the workspace only.
    sys.path[0] = str(workspace)
    from infer import predict  # noqa: E402  (the trial's code)

    preds = np.asarray(predict(out_dir, heldout))
    np.save(preds_dir / "preds.npy", preds, allow_pickle=False)
    print(f"wrote predictions of shape {preds.shape}", flush=True)


if __name__ == "__main__":
    main()
