"""Hidden reference for chapter 03, co-adaptation. Never shipped to students."""
import numpy as np


def _constant_columns(H):
    """Columns whose entries are all equal (up to float rounding of their mean)."""
    spread = H.max(axis=0) - H.min(axis=0)
    return spread <= 1e-12 * np.maximum(1.0, np.abs(H).max(axis=0))


def mean_abs_correlation(H):
    H = np.asarray(H, dtype=np.float64)
    live = ~_constant_columns(H)
    A = H[:, live]
    if A.shape[1] < 2:
        return 0.0
    A = A - A.mean(axis=0)
    A = A / np.sqrt((A * A).sum(axis=0))
    R = A.T @ A
    i, j = np.triu_indices(A.shape[1], k=1)
    return float(np.abs(R[i, j]).mean())


def fraction_inactive(H):
    return float(np.mean(np.asarray(H) <= 0))


def _accuracy(h, y, params):
    logits = h @ np.asarray(params["W2"], dtype=np.float64) + np.asarray(params["b2"], dtype=np.float64)
    return float(np.mean(logits.argmax(axis=1) == np.asarray(y)))


def _hidden(X, params):
    X = np.asarray(X, dtype=np.float64)
    return np.maximum(X @ np.asarray(params["W1"], dtype=np.float64) + np.asarray(params["b1"], dtype=np.float64), 0.0)


def ablation_importance(X, y, params):
    h = _hidden(X, params)
    full = _accuracy(h, y, params)
    out = np.zeros(h.shape[1])
    for j in range(h.shape[1]):
        hj = h.copy()
        hj[:, j] = 0.0
        out[j] = full - _accuracy(hj, y, params)
    return out


def random_deletion_accuracy(X, y, params, fraction, n_repeats, rng):
    h = _hidden(X, params)
    n_hidden = h.shape[1]
    k = int(round(fraction * n_hidden))
    total = 0.0
    for _ in range(n_repeats):
        deleted = rng.choice(n_hidden, size=k, replace=False)
        hd = h.copy()
        hd[:, deleted] = 0.0
        total += _accuracy(hd, y, params)
    return total / n_repeats
