"""Hidden reference for chapter 02, ensembles. Never shipped to students."""
import numpy as np


def ensemble_variance(sigma2, rho, k):
    return float(rho * sigma2 + (1.0 - rho) * sigma2 / k)


def bootstrap_indices(n, rng):
    return rng.integers(0, n, size=n)


def enumerate_masks(n):
    # Row r is the binary expansion of r (most significant bit first).
    return ((np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1).astype(np.int64)


def mask_probabilities(masks, p):
    m = np.asarray(masks, dtype=np.float64)
    kept = m.sum(axis=1)
    return (1.0 - p) ** kept * p ** (m.shape[1] - kept)


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def exact_dropout_ensemble(X, params, p):
    X = np.asarray(X, dtype=np.float64)
    W1, b1, W2, b2 = (np.asarray(params[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2"))
    h = np.maximum(X @ W1 + b1, 0.0)                                  # (N, H)
    masks = enumerate_masks(W1.shape[1]).astype(np.float64)          # (M, H)
    weights = mask_probabilities(masks, p)                           # (M,)
    logits = (h[None, :, :] * masks[:, None, :] / (1.0 - p)) @ W2 + b2   # (M, N, C)
    log_probs = _log_softmax(logits)
    arith = np.einsum("m,mnc->nc", weights, np.exp(log_probs))
    geo = _softmax(np.einsum("m,mnc->nc", weights, log_probs))
    return arith, geo


def mc_dropout_average(X, params, p, n_samples, rng):
    X = np.asarray(X, dtype=np.float64)
    W1, b1, W2, b2 = (np.asarray(params[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2"))
    h = np.maximum(X @ W1 + b1, 0.0)
    total = np.zeros((X.shape[0], W2.shape[1]))
    for _ in range(n_samples):
        mask = rng.random(h.shape) >= p                               # a mask per example
        total += _softmax((h * mask / (1.0 - p)) @ W2 + b2)
    return total / n_samples
