"""Synthetic handwritten-style digits for the `digits-speedrun` recipe (evaluator-owned).

Each digit is a set of pen strokes (polylines in a unit box). Every sample
jitters the stroke's control points (handwriting), applies a random affine
map (rotation, scale, shear, shift), draws the strokes with a random pen width
as anti-aliased lines on a 16x16 grid, and adds clutter: a stray stroke on some
images, speckle and pixel noise. Nothing is downloaded; two calls write
identical bytes (the draws come from fixed numpy seeds, computed in float64).

Files: `train/images.npy` (N, 16, 16) uint8, `train/labels.npy` (N,) int64,
`train/meta.json`; the held-out inputs folder has `images.npy` and
`meta.json` only; the held-out labels folder has `labels.npy`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SIZE = 16
N_TRAIN = 5000
N_HELDOUT = 2000
DATA_SEEDS = {"train": 11, "heldout": 22}

# Difficulty of the draws (see `sample`).
WOBBLE = 0.028  # std of the control-point jitter, in glyph-box units
ROTATION_DEG = 9.0  # std of the rotation
SHEAR = 0.12  # std of the shear
SHIFT_PX = 1.0  # std of the translation in pixels
STRAY_P = 0.2  # chance of a stray stroke
NOISE = (0.04, 0.12)  # range of the pixel noise std
SPECKLE_P = 0.015  # chance of a speckled pixel


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 9) -> list[tuple[float, float]]:
    """Points on an ellipse from angle a0 to a1 (degrees; 0 = right, 90 = down)."""
    t = np.radians(np.linspace(a0, a1, n))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in t]


# Strokes per digit in a unit box (x to the right, y down). Several styles per digit.
GLYPHS: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[_arc(0.5, 0.5, 0.28, 0.4, 0, 360, 17)]],
    1: [
        [[(0.5, 0.1), (0.5, 0.9)]],
        [[(0.32, 0.28), (0.52, 0.1), (0.52, 0.9)], [(0.35, 0.9), (0.69, 0.9)]],
    ],
    2: [
        [_arc(0.5, 0.33, 0.25, 0.23, 200, 370) + [(0.25, 0.9), (0.78, 0.9)]],
        [_arc(0.5, 0.3, 0.24, 0.2, 180, 380) + [(0.28, 0.88), (0.75, 0.86)]],
    ],
    3: [
        [_arc(0.48, 0.3, 0.24, 0.2, 200, 450), _arc(0.48, 0.7, 0.26, 0.2, 270, 520)],
        [[(0.25, 0.1), (0.72, 0.1), (0.45, 0.42)] + _arc(0.47, 0.66, 0.26, 0.24, 270, 510)],
    ],
    4: [
        [[(0.62, 0.1), (0.22, 0.65), (0.8, 0.65)], [(0.62, 0.35), (0.62, 0.9)]],
        [[(0.3, 0.1), (0.25, 0.55), (0.75, 0.55)], [(0.65, 0.1), (0.65, 0.9)]],
    ],
    5: [
        [[(0.74, 0.1), (0.3, 0.1), (0.27, 0.45)] + _arc(0.48, 0.64, 0.26, 0.25, 235, 495)],
    ],
    6: [
        [[(0.7, 0.1), (0.45, 0.25), (0.27, 0.55)] + _arc(0.5, 0.68, 0.24, 0.22, 180, 540)],
    ],
    7: [
        [[(0.22, 0.1), (0.78, 0.1), (0.42, 0.9)]],
        [[(0.22, 0.1), (0.78, 0.1), (0.42, 0.9)], [(0.38, 0.5), (0.7, 0.5)]],
    ],
    8: [
        [_arc(0.5, 0.3, 0.21, 0.2, 90, 450), _arc(0.5, 0.7, 0.25, 0.2, -90, 270)],
    ],
    9: [
        [_arc(0.5, 0.32, 0.24, 0.22, 0, 360) + [(0.74, 0.32), (0.7, 0.9)]],
        [_arc(0.5, 0.32, 0.24, 0.22, 0, 360) + [(0.74, 0.32), (0.55, 0.9)]],
    ],
}


def _segments(strokes: list[np.ndarray]) -> np.ndarray:
    """(S, 2, 2) line segments of a list of (P, 2) polylines."""
    return np.concatenate([np.stack([s[:-1], s[1:]], axis=1) for s in strokes], axis=0)


def _draw(segments: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Anti-aliased pen strokes of a batch: (n, S, 2, 2) segments, (n,) pen widths -> (n, 16, 16).

    A pixel's intensity falls off linearly with the distance of its centre to the nearest segment."""
    centres = np.arange(SIZE, dtype=np.float64) + 0.5
    px = np.tile(centres, SIZE)[None, :, None]  # (1, P, 1): x of each pixel centre, row-major
    py = np.repeat(centres, SIZE)[None, :, None]
    ax, ay = segments[:, None, :, 0, 0], segments[:, None, :, 0, 1]  # (n, 1, S)
    dx, dy = segments[:, None, :, 1, 0] - ax, segments[:, None, :, 1, 1] - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-9), 0, 1)
    d2 = ((px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2).min(axis=2)  # (n, P)
    return np.clip(width[:, None] / 2 + 0.5 - np.sqrt(d2), 0.0, 1.0).reshape(-1, SIZE, SIZE)


def _padded(segments: list[np.ndarray]) -> np.ndarray:
    """Stack (S_i, 2, 2) segment lists into (n, S_max, 2, 2), repeating each list's last segment."""
    longest = max(len(s) for s in segments)
    return np.stack([np.concatenate([s, np.repeat(s[-1:], longest - len(s), axis=0)]) for s in segments])


def sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 16, 16) uint8 images and (n,) int64 labels."""
    labels = rng.integers(0, 10, n).astype(np.int64)
    glyphs, strays = [], []
    for digit in labels:
        styles = GLYPHS[int(digit)]
        strokes = [np.array(s, dtype=np.float64) for s in styles[int(rng.integers(len(styles)))]]
        strokes = [s + rng.normal(0, WOBBLE, s.shape) for s in strokes]  # handwriting wobble
        angle = np.radians(rng.normal(0, ROTATION_DEG))
        scale = rng.uniform(0.75, 1.05)
        aspect = rng.uniform(0.8, 1.15)
        shear = rng.normal(0, SHEAR)
        m = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        m = m @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([scale * aspect, scale])
        shift = rng.normal(0, SHIFT_PX, 2)
        pts = [((s - 0.5) @ m.T) * (SIZE - 2) + SIZE / 2 + shift for s in strokes]
        glyphs.append(_segments(pts))
        start = rng.uniform(0, SIZE, 2)  # a stray stroke (drawn on some images only)
        strays.append(np.stack([start, start + rng.normal(0, 4, 2)])[None])
    width = rng.uniform(0.9, 2.0, n)
    stray_on = rng.random(n) < STRAY_P
    stray_width = rng.uniform(0.6, 1.2, n)
    stray_ink = rng.uniform(0.4, 0.9, n) * stray_on
    ink = rng.uniform(0.6, 1.0, n)  # darkness of the pen
    noise = rng.uniform(*NOISE, n)  # sensor noise level
    glyph_segments, stray_segments = _padded(glyphs), np.stack(strays)
    images = np.zeros((n, SIZE, SIZE), dtype=np.uint8)
    for lo in range(0, n, 500):
        sl = slice(lo, min(n, lo + 500))
        img = _draw(glyph_segments[sl], width[sl])
        img = np.maximum(img, _draw(stray_segments[sl], stray_width[sl]) * stray_ink[sl, None, None])
        img = img * ink[sl, None, None] + rng.normal(0, 1, img.shape) * noise[sl, None, None]
        speckle = rng.random(img.shape) < SPECKLE_P
        img[speckle] = rng.random(int(speckle.sum()))
        images[sl] = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    return images, labels


def prepare(train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path) -> None:
    """Write the train split (images + labels), held-out images, held-out labels."""
    train_dir, heldout_inputs_dir, heldout_labels_dir = map(Path, (train_dir, heldout_inputs_dir, heldout_labels_dir))
    for folder in (train_dir, heldout_inputs_dir, heldout_labels_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for split, folder, n in (("train", train_dir, N_TRAIN), ("heldout", heldout_inputs_dir, N_HELDOUT)):
        images, labels = sample(np.random.default_rng(DATA_SEEDS[split]), n)
        np.save(folder / "images.npy", images)
        meta = {"n_images": n, "size": SIZE, "classes": 10, "dtype": "uint8"}
        (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        # Held-out labels live only in the evaluator's labels folder, never in a sandbox.
        np.save((folder if split == "train" else heldout_labels_dir) / "labels.npy", labels)
