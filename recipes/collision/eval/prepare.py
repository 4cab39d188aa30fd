"""Synthetic dashcam data for the `collision` recipe (evaluator-owned).

Every clip is a latent scene process sampled frame by frame; each simulated
feature backbone then maps the latent frames to features. Collisions are an
*ordered* pattern (an object closes in, faster and faster, centred in the lane,
then an impact: camera shake and an abrupt stop), while the hard negatives
reuse the same pieces in other combinations (near misses pass beside the car,
traffic stops short, hard braking without contact, potholes shake the camera).
Appearance backbones only see where things are in a frame, so telling those
apart needs a temporal encoder; the video backbone also sees motion.

Everything is drawn from fixed seeds: two calls write identical bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

T = 24  # frames per clip
N_TRAIN = 2000
N_HELDOUT = 1000
DATA_SEEDS = {"train": 1001, "heldout": 2002}
BACKBONE_SEED = 7

# Scenario mix: (name, probability, label).
SCENARIOS = [
    ("collision", 0.28, 1),
    ("near_miss", 0.20, 0),
    ("traffic", 0.16, 0),
    ("hard_brake", 0.16, 0),
    ("normal", 0.20, 0),
]

# Latent content channels of one frame, then nuisance channels.
CONTENT = ["proximity", "centred", "shake", "speed", "closing", "decel"]
N_NUISANCE = 4

# Simulated backbones: feature dim, how visible each content channel is,
# weight of nuisance (lighting, clutter ...) and additive feature noise.
# Appearance models (resnet18, clip) cannot see motion (closing, decel).
BACKBONES = {
    "resnet18": dict(dim=32, vis=[1.0, 0.7, 0.5, 0.2, 0.0, 0.0], nuisance=1.4, noise=0.45),
    "clip_vitb16": dict(dim=48, vis=[1.0, 1.0, 0.8, 0.4, 0.15, 0.15], nuisance=1.0, noise=0.35),
    "vjepa_l": dict(dim=64, vis=[1.0, 1.0, 1.0, 0.8, 0.6, 0.6], nuisance=0.7, noise=0.4),
}


def _smooth_walk(rng: np.random.Generator, n: int, k: int, step: float) -> np.ndarray:
    """(n, T, k) random walks: slowly varying nuisance such as lighting."""
    return np.cumsum(rng.normal(0, step, (n, T, k)), axis=1) + rng.normal(0, 1, (n, 1, k))


def _approach(t: np.ndarray, t0: float, t1: float, start: float, end: float, power: float) -> np.ndarray:
    """Proximity rising from `start` (before t0) to `end` (at t1 and after).

    power > 1 accelerates into t1 (a crash course), power < 1 decelerates (braking)."""
    u = np.clip((t - t0) / max(t1 - t0, 1e-6), 0.0, 1.0)
    return start + (end - start) * u**power


def sample_latents(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Latent frames (n, T, len(CONTENT) + N_NUISANCE) and labels (n,)."""
    names = [s[0] for s in SCENARIOS]
    probs = np.array([s[1] for s in SCENARIOS])
    kinds = rng.choice(len(names), size=n, p=probs / probs.sum())
    labels = np.array([SCENARIOS[k][2] for k in kinds], dtype=np.int64)

    t = np.arange(T, dtype=np.float64)
    prox = np.zeros((n, T))
    lateral = np.zeros((n, T))
    shake = np.abs(rng.normal(0, 0.08, (n, T)))
    speed = np.zeros((n, T))

    for i, k in enumerate(kinds):
        kind = names[k]
        s0 = rng.uniform(0.5, 1.0)
        speed[i] = s0 + np.cumsum(rng.normal(0, 0.02, T))
        far = rng.uniform(0.0, 0.35)
        tc = int(rng.integers(9, T - 2))  # event time
        t0 = tc - rng.uniform(5, 9)  # approach start
        lateral[i] = rng.normal(0, 0.08) + np.cumsum(rng.normal(0, 0.02, T))
        pothole = rng.random() < 0.5  # unrelated bump somewhere in the clip

        if kind == "collision":
            prox[i] = _approach(t, t0, tc, far, 1.0, rng.uniform(1.8, 3.0))
            hit = rng.uniform(0.25, 1.0)  # minor to severe impact
            shake[i, tc] += hit
            shake[i, tc + 1 :] += hit * 0.4 * 0.5 ** (t[tc + 1 :] - tc)
            speed[i, tc:] = speed[i, tc:] * rng.uniform(0.0, 0.4)  # abrupt stop
            pothole = False
        elif kind == "near_miss":
            peak = rng.uniform(0.85, 1.0)
            prox[i] = _approach(t, t0, tc, far, peak, rng.uniform(1.8, 3.0))
            after = t > tc
            prox[i, after] = peak - (peak - far) * np.clip((t[after] - tc) / 3.0, 0, 1)  # passes by
            side = rng.choice([-1.0, 1.0])
            lateral[i] += side * _approach(t, t0, tc, 0.1, rng.uniform(0.35, 0.7), 1.0)
            if rng.random() < 0.5:  # driver brakes, later than a collision would stop
                speed[i, tc:] *= np.linspace(1.0, rng.uniform(0.3, 0.7), T - tc)
        elif kind == "traffic":
            stop = rng.uniform(0.8, 0.95)
            prox[i] = _approach(t, t0, tc, far, stop, rng.uniform(0.4, 0.8))
            speed[i] *= np.clip(1 - (prox[i] - far) / (stop - far + 1e-6), 0.05, 1)  # rolls to a stop
        elif kind == "hard_brake":
            stop = rng.uniform(0.7, 0.92)
            prox[i] = _approach(t, t0, tc, far, stop, rng.uniform(1.2, 2.0))
            speed[i, tc:] *= rng.uniform(0.0, 0.3)  # abrupt stop, no contact
            shake[i, tc] += rng.uniform(0.1, 0.6)  # seat-belt jolt, weaker than a hit
        else:  # normal driving, an object drifting about
            prox[i] = np.clip(far + np.cumsum(rng.normal(0, 0.06, T)), 0, 0.8)
            lateral[i] += rng.uniform(-0.5, 0.5)

        if pothole:
            tp = int(rng.integers(2, T - 1))
            shake[i, tp] += rng.uniform(0.4, 1.0)
            shake[i, tp + 1 :] += 0.3 * 0.5 ** (t[tp + 1 :] - tp)

    prox = np.clip(prox + rng.normal(0, 0.02, (n, T)), 0, 1)
    speed = np.clip(speed, 0, None)
    centred = np.exp(-((lateral / 0.25) ** 2))
    # Motion channels are frame differences: only a video model sees them per frame.
    closing = np.diff(prox, axis=1, prepend=prox[:, :1]) * 4
    decel = -np.diff(speed, axis=1, prepend=speed[:, :1]) * 2
    content = np.stack([prox, centred, shake * 2, speed, closing, decel], axis=-1)
    nuisance = _smooth_walk(rng, n, N_NUISANCE, 0.15)
    return np.concatenate([content, nuisance], axis=-1), labels


def backbone_features(latents: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """Map latent frames to one backbone's features: random tanh projection plus noise."""
    cfg = BACKBONES[name]
    wrng = np.random.default_rng([BACKBONE_SEED, list(BACKBONES).index(name)])
    n_content = len(CONTENT)
    scale = np.concatenate([np.array(cfg["vis"]), np.full(N_NUISANCE, cfg["nuisance"])])
    w = wrng.normal(0, 1, (latents.shape[-1], cfg["dim"])) * scale[:, None] * 1.5
    w[:n_content] *= 1.2  # content slightly more prominent than nuisance per unit
    b = wrng.normal(0, 0.5, cfg["dim"])
    feats = np.tanh(latents @ w + b) + rng.normal(0, cfg["noise"], latents.shape[:-1] + (cfg["dim"],))
    return feats.astype(np.float32)


def _write_split(folder: Path, latents: np.ndarray, seed: int, ids: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(BACKBONES):
        rng = np.random.default_rng([seed, 100 + i])  # feature noise per backbone
        np.save(folder / f"{name}.npy", backbone_features(latents, name, rng))
    np.save(folder / "clip_ids.npy", ids)
    meta = {
        "n_clips": int(len(ids)),
        "frames": T,
        "backbones": {name: cfg["dim"] for name, cfg in BACKBONES.items()},
        "dtype": "float32",
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def prepare(train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path) -> None:
    """Write the train split (features + labels), held-out features, held-out labels."""
    train_dir, heldout_inputs_dir, heldout_labels_dir = map(
        Path, (train_dir, heldout_inputs_dir, heldout_labels_dir)
    )
    for split, folder, n in (("train", train_dir, N_TRAIN), ("heldout", heldout_inputs_dir, N_HELDOUT)):
        seed = DATA_SEEDS[split]
        latents, labels = sample_latents(np.random.default_rng(seed), n)
        ids = np.arange(n, dtype=np.int64) + (0 if split == "train" else 100_000)
        _write_split(folder, latents, seed, ids)
        if split == "train":
            np.save(folder / "labels.npy", labels)
        else:  # labels live only in the evaluator's folder
            heldout_labels_dir.mkdir(parents=True, exist_ok=True)
            np.save(heldout_labels_dir / "labels.npy", labels)
            np.save(heldout_labels_dir / "clip_ids.npy", ids)
