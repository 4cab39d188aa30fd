"""A one-hidden-layer classifier in numpy: parameters, forward pass, gradients."""

from __future__ import annotations

import numpy as np


def init_params(rng: np.random.Generator, inputs: int, hidden: int, classes: int) -> dict[str, np.ndarray]:
    return {
        "w1": rng.normal(0, 1 / np.sqrt(inputs), (inputs, hidden)),
        "b1": np.zeros(hidden),
        "w2": rng.normal(0, 1 / np.sqrt(hidden), (hidden, classes)),
        "b2": np.zeros(classes),
    }


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def forward(params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (points, classes) and the hidden activations."""
    h = np.tanh(x @ params["w1"] + params["b1"])
    return softmax(h @ params["w2"] + params["b2"]), h


def gradients(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
              weight_decay: float) -> tuple[float, dict[str, np.ndarray]]:
    """Mean cross-entropy (+ L2) and its gradient with respect to every parameter."""
    probs, h = forward(params, x)
    n = len(y)
    loss = -np.mean(np.log(probs[np.arange(n), y] + 1e-12))
    loss += 0.5 * weight_decay * (np.sum(params["w1"] ** 2) + np.sum(params["w2"] ** 2))
    d_logits = probs.copy()
    d_logits[np.arange(n), y] -= 1
    d_logits /= n
    d_h = d_logits @ params["w2"].T * (1 - h**2)  # tanh'
    grads = {
        "w2": h.T @ d_logits + weight_decay * params["w2"],
        "b2": d_logits.sum(axis=0),
        "w1": x.T @ d_h + weight_decay * params["w1"],
        "b1": d_h.sum(axis=0),
    }
    return float(loss), grads
