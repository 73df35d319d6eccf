"""Small networks used across the course.

numpy side, following COURSE_SPEC's ``params`` convention: a dict of float64
arrays ``W1 (D, H), b1 (H,), W2 (H, C), b2 (C,)``; hidden
``h = relu(X @ W1 + b1)``, optionally ``h * m / (1 - p)`` with a hidden mask
``m``; logits ``h @ W2 + b2``.

torch side: :class:`MLP`, a configurable fully connected network with
dropout on the input and after every hidden layer.
"""
from __future__ import annotations

import numpy as np


def init_params(n_in: int, n_hidden: int, n_out: int, rng: np.random.Generator,
                scale: str = "he") -> dict:
    """Random ``params`` for a one-hidden-layer network.

    Weights are Gaussian with He scaling (std sqrt(2 / fan_in)) for the ReLU
    layer and Glorot-like (std sqrt(1 / fan_in)) for the output layer;
    biases start at zero. All arrays are float64.
    """
    if min(n_in, n_hidden, n_out) < 1:
        raise ValueError(f"layer sizes must be positive, got {(n_in, n_hidden, n_out)}")
    if scale != "he":
        raise ValueError(f"unknown scale {scale!r}; only 'he' is provided")
    return {
        "W1": rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_hidden)),
        "b1": np.zeros(n_hidden),
        "W2": rng.normal(0.0, np.sqrt(1.0 / n_hidden), size=(n_hidden, n_out)),
        "b2": np.zeros(n_out),
    }


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits, stable for large values."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def hidden_activations(X: np.ndarray, params: dict) -> np.ndarray:
    """relu(X @ W1 + b1), shape (N, H)."""
    return relu(X @ params["W1"] + params["b1"])


def forward(X: np.ndarray, params: dict, hidden_mask=None, p: float = 0.0) -> np.ndarray:
    """Logits (N, C) of the network on X (N, D).

    ``hidden_mask`` (N, H) or (H,) of 0/1 applies inverted dropout to the
    hidden layer: ``h * mask / (1 - p)``. None means no dropout.
    """
    h = hidden_activations(X, params)
    if hidden_mask is not None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"p must be in [0, 1) when a mask is given, got {p}")
        h = h * hidden_mask / (1.0 - p)
    return h @ params["W2"] + params["b2"]


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Softmax cross-entropy averaged over the batch; y holds int labels (N,)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(y)), y].mean())


def accuracy(logits_or_probs: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose arg-max equals the label."""
    return float(np.mean(np.argmax(logits_or_probs, axis=1) == y))


def make_mlp(n_in: int, hidden: tuple = (128,), n_out: int = 10, p_hidden: float = 0.0,
             p_input: float = 0.0):
    """A torch ``nn.Sequential``: [Dropout(p_input)] then Linear-ReLU-Dropout(p_hidden)
    per hidden width, then a Linear to ``n_out`` logits. Dropout layers with
    p == 0 are left out."""
    from torch import nn

    for name, p in (("p_hidden", p_hidden), ("p_input", p_input)):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {p}")
    layers = []
    if p_input > 0:
        layers.append(nn.Dropout(p_input))
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if p_hidden > 0:
            layers.append(nn.Dropout(p_hidden))
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)
