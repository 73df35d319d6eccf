"""Hidden reference for chapter 04, scaling maths. Never shipped to students."""
import numpy as np


def _check_p(p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a drop probability in [0, 1], got {p}")


def dropout_forward(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.random(x.shape) >= p
    if p == 1.0:
        return np.zeros_like(x), mask
    return x * mask / (1.0 - p), mask


def standard_dropout_forward(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x * (1.0 - p), None
    mask = rng.random(x.shape) >= p
    return x * mask, mask


def dropout_moments(x, p):
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = x**2 * (p / (1.0 - p))
    return x.copy(), var


def mc_moments(x, p, n_samples, rng):
    x = np.asarray(x, dtype=np.float64)
    total = np.zeros_like(x)
    total_sq = np.zeros_like(x)
    for _ in range(n_samples):
        y, _ = dropout_forward(x, p, rng)
        total += y
        total_sq += y * y
    mean = total / n_samples
    var = np.maximum(total_sq / n_samples - mean**2, 0.0)
    return mean, var
