"""Data of the airbench96 recipe (evaluator-owned; runs on the host).

CIFAR-10 comes from `$HARNESS_AIRBENCH96_DATA` when set: the official python
archive `cifar-10-python.tar.gz` or the folder `cifar-10-batches-py` it
unpacks to. Otherwise the archive is downloaded once from its canonical
address into `$HARNESS_CACHE/data` (default `~/.cache/harness/data`) and its
MD5 checked against the published digest.

What each phase sees:

* train data (`HARNESS_DATA`, train phase): `train.pt` with the 50,000 train
  images in the format upstream's `CifarLoader` reads (`{"images": uint8
  (N, 32, 32, 3), "labels": int64 (N,), "classes": [...]}`); `test_placeholder.pt`,
  the same format with **zero** images, because upstream's `train()` builds a
  test loader it only uses for logging; and `harness_train.py`, the
  evaluator's driver of the train phase (see that file).
* held-out inputs (eval phase only): `test_images.npy`, the 10,000 test images,
  uint8 (N, 32, 32, 3), without labels.
* held-out labels (host only): `test_labels.npy`.

At the `cpu` fidelity (the run's level, passed as `fidelity`) CIFAR-10 is not
read: `synthetic_cifar.py` makes a small CIFAR-shaped set (same formats, same
layout, fewer images), so the level runs offline on any machine. The CPU
adaptation of upstream's code, `airbench_cpu.py`, goes beside the driver at
every level (the driver loads it only at `cpu`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

DATA_ENV = "HARNESS_AIRBENCH96_DATA"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
N_TRAIN, N_TEST = 50_000, 10_000
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DRIVER = Path(__file__).with_name("harness_train.py")
CPU_ADAPTER = Path(__file__).with_name("airbench_cpu.py")
CPU_LEVEL = "cpu"
"""The fidelity whose data is made locally (recipe.toml `[fidelities.cpu]`)."""


def prepare(train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path, fidelity: str | None = None) -> None:
    if fidelity == CPU_LEVEL:
        spec = importlib.util.spec_from_file_location("synthetic_cifar", Path(__file__).with_name("synthetic_cifar.py"))
        synthetic = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(synthetic)
        (train_x, train_y), (test_x, test_y) = synthetic.make_splits()
    else:
        with tempfile.TemporaryDirectory(prefix="cifar10-") as tmp:
            batches = locate_batches(Path(tmp))
            train_x, train_y = read_split(batches, TRAIN_BATCHES)
            test_x, test_y = read_split(batches, [TEST_BATCH])
        if train_x.shape != (N_TRAIN, 32, 32, 3) or test_x.shape != (N_TEST, 32, 32, 3):
            raise ValueError(f"unexpected CIFAR-10 shapes: train {train_x.shape}, test {test_x.shape}")
    lay_out(train_x, train_y, test_x, test_y, train_dir, heldout_inputs_dir, heldout_labels_dir)


def lay_out(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
            train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path) -> None:
    """Write each phase's files (see the module docstring) from the two splits."""
    import torch  # heavy: only when data is actually prepared

    train_dir, heldout_inputs_dir, heldout_labels_dir = map(Path, (train_dir, heldout_inputs_dir, heldout_labels_dir))
    for folder in (train_dir, heldout_inputs_dir, heldout_labels_dir):
        folder.mkdir(parents=True, exist_ok=True)
    torch.save({"images": torch.from_numpy(train_x), "labels": torch.from_numpy(train_y), "classes": CLASSES},
               train_dir / "train.pt")
    empty = np.zeros((0, 32, 32, 3), dtype=np.uint8)
    torch.save({"images": torch.from_numpy(empty), "labels": torch.zeros(0, dtype=torch.int64), "classes": CLASSES},
               train_dir / "test_placeholder.pt")
    shutil.copyfile(DRIVER, train_dir / "harness_train.py")
    shutil.copyfile(CPU_ADAPTER, train_dir / CPU_ADAPTER.name)
    np.save(heldout_inputs_dir / "test_images.npy", test_x)
    np.save(heldout_labels_dir / "test_labels.npy", test_y)


def locate_batches(scratch: Path) -> Path:
    """The folder holding CIFAR-10's python batches (unpacking or downloading as needed)."""
    given = os.environ.get(DATA_ENV)
    if given:
        path = Path(given).expanduser()
        if path.is_dir():
            found = path if (path / TEST_BATCH).is_file() else path / "cifar-10-batches-py"
            if not (found / TEST_BATCH).is_file():
                raise ValueError(f"{DATA_ENV}={given}: no {TEST_BATCH} in it or in its cifar-10-batches-py/")
            return found
        if path.is_file():
            return _unpack(path, scratch)
        raise ValueError(f"{DATA_ENV}={given} does not exist")
    cache = Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness") / "data" / "cifar10"
    archive = cache / "cifar-10-python.tar.gz"
    if not archive.is_file() or _md5(archive) != ARCHIVE_MD5:
        cache.mkdir(parents=True, exist_ok=True)
        partial = archive.with_suffix(".part")
        print(f"downloading CIFAR-10 from {ARCHIVE_URL} (set {DATA_ENV} to use a local copy)", flush=True)
        with urllib.request.urlopen(ARCHIVE_URL, timeout=120) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
        if _md5(partial) != ARCHIVE_MD5:
            partial.unlink()
            raise ValueError(f"the download from {ARCHIVE_URL} does not have the published MD5 {ARCHIVE_MD5}")
        partial.rename(archive)
    return _unpack(archive, scratch)


def _unpack(archive: Path, scratch: Path) -> Path:
    with tarfile.open(archive, "r:gz") as tar:
        try:
            tar.extractall(scratch, filter="data")
        except TypeError:  # Python < 3.11.4 has no extraction filters
            tar.extractall(scratch)
    found = scratch / "cifar-10-batches-py"
    if not (found / TEST_BATCH).is_file():
        raise ValueError(f"{archive} does not hold cifar-10-batches-py/{TEST_BATCH}")
    return found


def read_split(folder: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 (height, width, channel, as upstream stores them) and labels (N,) int64."""
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="bytes")  # the official format; the archive's digest is checked
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
