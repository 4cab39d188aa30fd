"""A small CIFAR-shaped set made locally, for the `cpu` fidelity (evaluator-owned, host).

Images are uint8 (N, 32, 32, 3), labels int64 in 0..9, as CIFAR-10 in
upstream's `cifar10/{train,test}.pt`. Each class has its own colour (ten
well-separated points of the RGB cube); an image is its class colour plus
a smooth random field (bilinear upsampling of a 4 x 4 grid, so the
whitening layer sees image-like, spatially correlated patches) and pixel
noise. A tiny network learns it within the few hundred images and seconds
the level affords, far enough above 0.96 for upstream's training at the
`cpu` size to pass the recipe's accuracy gate unchanged. Upstream's
augmentations (flips, translation, cutout) keep the class signal.

One seeded generator: the same bytes every time; train and test images are
drawn apart from each other.
"""

from __future__ import annotations

import numpy as np

SEED = 96
N_TRAIN = 500
N_TEST = 500
COLOURS = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1],
                    [0.5, 0.5, 0.5], [1, 0.5, 0]], dtype=np.float64)
"""The class colours (fractions of full scale)."""
COLOUR_SCALE, FIELD_SCALE, NOISE_SCALE = 200.0, 30.0, 20.0


def smooth_field(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 32, 32, 3) in [0, 1): a random 4 x 4 grid per channel, bilinearly upsampled."""
    grid = rng.random((n, 4, 4, 3))
    at = (np.arange(32) + 0.5) / 8 - 0.5  # pixel centres in grid units
    lo = np.clip(np.floor(at).astype(int), 0, 3)
    hi = np.clip(lo + 1, 0, 3)
    frac = np.clip(at - lo, 0.0, 1.0)[:, None]
    rows = grid[:, lo] * (1 - frac)[None, :, None] + grid[:, hi] * frac[None, :, None]
    return rows[:, :, lo] * (1 - frac)[None, None, :] + rows[:, :, hi] * frac[None, None, :]


def images_of(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    colour = COLOURS[labels][:, None, None, :] * COLOUR_SCALE
    noise = rng.random((len(labels), 32, 32, 3)) * NOISE_SCALE
    pixels = colour + smooth_field(rng, len(labels)) * FIELD_SCALE + noise
    return np.ascontiguousarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_splits(n_train: int = N_TRAIN, n_test: int = N_TEST):
    """((train images, train labels), (test images, test labels)), balanced over the ten classes."""
    rng = np.random.default_rng(SEED)
    splits = []
    for n in (n_train, n_test):
        labels = rng.permutation(np.arange(n) % len(COLOURS)).astype(np.int64)
        splits.append((images_of(rng, labels), labels))
    return tuple(splits)
