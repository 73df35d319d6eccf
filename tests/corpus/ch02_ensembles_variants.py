"""Correct implementations of chapter 02's graded functions, written the many
ways students write them. Every one must earn full marks under every seed."""
import itertools

import numpy as np
import torch


# -- ensemble_variance -------------------------------------------------------------------

def ev_direct(sigma2, rho, k):
    return rho * sigma2 + (1 - rho) * sigma2 / k


def ev_covariance_sum(sigma2, rho, k):
    # Var(mean) = (k variances + k(k-1) covariances) / k^2
    return float((k * sigma2 + k * (k - 1) * rho * sigma2) / k**2)


def ev_factored(sigma2, rho, k):
    return float(sigma2 * (1 + (k - 1) * rho) / k)


def ev_covariance_matrix(sigma2, rho, k):
    k = int(k)
    cov = np.full((k, k), rho * sigma2)
    np.fill_diagonal(cov, sigma2)
    w = np.full(k, 1.0 / k)
    return float(w @ cov @ w)


# -- bootstrap_indices -------------------------------------------------------------------------

def bi_integers(n, rng):
    return rng.integers(0, n, size=n)


def bi_choice(n, rng):
    return rng.choice(n, size=n, replace=True)


def bi_floor_uniform(n, rng):
    return np.floor(rng.random(n) * n).astype(int)


def bi_list(n, rng):
    return np.array([int(rng.integers(n)) for _ in range(n)], dtype=np.int64)


def bi_sorted_int32(n, rng):
    return np.sort(rng.integers(0, n, size=n, dtype=np.int32))


def bi_choice_of_arange(n, rng):
    return rng.choice(np.arange(n), n)


# -- enumerate_masks -------------------------------------------------------------------------------

def em_product(n):
    return np.array(list(itertools.product([0, 1], repeat=n)))


def em_bits_lsb_first(n):
    return (np.arange(2**n)[:, None] >> np.arange(n)) & 1


def em_bool(n):
    return np.array(list(itertools.product([False, True], repeat=n)), dtype=bool).reshape(2**n, n)


def em_float_meshgrid(n):
    grids = np.meshgrid(*([np.array([0.0, 1.0])] * n), indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def em_recursive(n):
    if n == 0:
        return np.zeros((1, 0), dtype=int)
    rest = em_recursive(n - 1)
    return np.vstack([np.hstack([np.zeros((len(rest), 1), int), rest]),
                      np.hstack([np.ones((len(rest), 1), int), rest])])


def em_gray_code(n):
    codes = np.arange(2**n)
    gray = codes ^ (codes >> 1)
    return ((gray[:, None] >> np.arange(n)) & 1).astype(np.float32)


def em_binary_repr(n):
    return np.array([[int(b) for b in np.binary_repr(i, width=n)] for i in range(2**n)]).reshape(2**n, n)


# -- mask_probabilities ----------------------------------------------------------------------------

def mp_where_prod(masks, p):
    return np.prod(np.where(np.asarray(masks, dtype=bool), 1 - p, p), axis=1)


def mp_powers(masks, p):
    m = np.asarray(masks, dtype=float)
    kept = m.sum(axis=1)
    return (1 - p) ** kept * p ** (m.shape[1] - kept)


def mp_loop(masks, p):
    out = []
    for row in masks:
        prob = 1.0
        for bit in row:
            prob *= (1 - p) if bit else p
        out.append(prob)
    return np.array(out)


def mp_bernoulli_pmf(masks, p):
    m = np.asarray(masks).astype(float)
    return np.prod((1 - p) ** m * p ** (1 - m), axis=1)


def mp_torch(masks, p):
    m = torch.as_tensor(np.asarray(masks, dtype=np.float64))
    kept = m.sum(dim=1)
    return ((1 - p) ** kept * p ** (m.shape[1] - kept)).numpy()


# -- exact_dropout_ensemble ---------------------------------------------------------------------------

def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def ex_loop_direct_product(X, params, p):
    """A loop over masks; the geometric mean as a product of powers, renormalised."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    H = W1.shape[1]
    h = np.maximum(X @ W1 + b1, 0)
    arith = np.zeros((X.shape[0], W2.shape[1]))
    geo = np.ones_like(arith)
    for bits in itertools.product([0, 1], repeat=H):
        m = np.array(bits, dtype=float)
        w = (1 - p) ** m.sum() * p ** (H - m.sum())
        probs = _softmax((h * m / (1 - p)) @ W2 + b2)
        arith += w * probs
        geo *= probs ** w
    return arith, geo / geo.sum(axis=1, keepdims=True)


def ex_vectorised_logsumexp(X, params, p):
    from scipy.special import logsumexp, softmax

    H = params["W1"].shape[1]
    masks = np.array(list(itertools.product([0.0, 1.0], repeat=H)))
    kept = masks.sum(1)
    w = (1 - p) ** kept * p ** (H - kept)
    h = np.maximum(X @ params["W1"] + params["b1"], 0)
    z = np.einsum("nh,mh,hc->mnc", h, masks / (1 - p), params["W2"]) + params["b2"]
    logp = z - logsumexp(z, axis=2, keepdims=True)
    arith = np.tensordot(w, np.exp(logp), axes=1)
    geo = softmax(np.tensordot(w, logp, axes=1), axis=1)
    return arith, geo


def ex_log_weights(X, params, p):
    """Weights in log space (masks as bools), geo by exp of the mean log, normalised."""
    H = params["W1"].shape[1]
    masks = np.array(list(itertools.product([False, True], repeat=H)))
    kept = masks.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logw = np.where(kept > 0, kept * np.log1p(-p), 0.0) + np.where(H - kept > 0, (H - kept) * np.log(p), 0.0)
    w = np.exp(logw)
    h = np.maximum(X @ params["W1"] + params["b1"], 0)
    outs = [_softmax((h * m) / (1 - p) @ params["W2"] + params["b2"]) for m in masks]
    arith = sum(wi * o for wi, o in zip(w, outs))
    with np.errstate(divide="ignore"):
        log_geo = sum(wi * np.log(o) for wi, o in zip(w, outs) if wi > 0)
    geo = np.exp(log_geo - log_geo.max(axis=1, keepdims=True))
    return arith, geo / geo.sum(axis=1, keepdims=True)


def ex_float32(X, params, p):
    """Everything in float32 (a student who casts to save memory)."""
    X32 = np.asarray(X, dtype=np.float32)
    P32 = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
    H = P32["W1"].shape[1]
    masks = np.array(list(itertools.product([0, 1], repeat=H)), dtype=np.float32)
    kept = masks.sum(1)
    w = ((1 - p) ** kept * p ** (H - kept)).astype(np.float32)
    h = np.maximum(X32 @ P32["W1"] + P32["b1"], 0)
    z = (h[None] * masks[:, None] / np.float32(1 - p)) @ P32["W2"] + P32["b2"]
    z = z - z.max(axis=2, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
    arith = np.einsum("m,mnc->nc", w, np.exp(logp))
    g = np.einsum("m,mnc->nc", w, logp)
    geo = np.exp(g - g.max(axis=1, keepdims=True))
    return arith, geo / geo.sum(axis=1, keepdims=True)


def ex_torch(X, params, p):
    Xt = torch.as_tensor(X)
    P = {k: torch.as_tensor(v) for k, v in params.items()}
    H = P["W1"].shape[1]
    masks = torch.tensor(list(itertools.product([0.0, 1.0], repeat=H)), dtype=Xt.dtype)
    w = torch.prod(torch.where(masks.bool(), torch.tensor(1 - p, dtype=Xt.dtype), torch.tensor(p, dtype=Xt.dtype)), 1)
    h = torch.relu(Xt @ P["W1"] + P["b1"])
    z = (h.unsqueeze(0) * masks.unsqueeze(1) / (1 - p)) @ P["W2"] + P["b2"]
    logp = torch.log_softmax(z, dim=2)
    arith = (w[:, None, None] * logp.exp()).sum(0)
    geo = torch.softmax((w[:, None, None] * logp).sum(0), dim=1)
    return arith.numpy(), geo.numpy()


# -- mc_dropout_average ------------------------------------------------------------------------

def _hidden(X, params):
    return np.maximum(X @ params["W1"] + params["b1"], 0)


def mc_per_example_loop(X, params, p, n_samples, rng):
    h = _hidden(X, params)
    total = 0.0
    for _ in range(n_samples):
        m = rng.random(h.shape) >= p
        total = total + _softmax(h * m / (1 - p) @ params["W2"] + params["b2"])
    return total / n_samples


def mc_batch_shared_loop(X, params, p, n_samples, rng):
    h = _hidden(X, params)
    outs = []
    for _ in range(n_samples):
        m = (rng.random(h.shape[1]) > p).astype(float)    # one (H,) mask for the whole batch
        outs.append(_softmax((h * m) / (1 - p) @ params["W2"] + params["b2"]))
    return np.mean(outs, axis=0)


def mc_vectorised_binomial(X, params, p, n_samples, rng):
    h = _hidden(X, params)
    masks = rng.binomial(1, 1 - p, size=(n_samples,) + h.shape)
    z = (h * masks / (1 - p)) @ params["W2"] + params["b2"]
    return _softmax(z).mean(axis=0)


def mc_vectorised_shared_bool(X, params, p, n_samples, rng):
    h = _hidden(X, params)
    masks = rng.random((n_samples, 1, h.shape[1])) >= p
    return _softmax(np.where(masks, h / (1 - p), 0.0) @ params["W2"] + params["b2"]).mean(0)


def mc_torch_float32(X, params, p, n_samples, rng):
    Xt = torch.as_tensor(X, dtype=torch.float32)
    P = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in params.items()}
    h = torch.relu(Xt @ P["W1"] + P["b1"])
    keep = torch.as_tensor(rng.random((n_samples,) + tuple(h.shape)) >= p)
    z = (h * keep / (1 - p)) @ P["W2"] + P["b2"]
    return torch.softmax(z, dim=-1).mean(0).numpy()


def mc_running_mean_chunks(X, params, p, n_samples, rng):
    h = _hidden(X, params)
    total, done = np.zeros((X.shape[0], params["W2"].shape[1])), 0
    while done < n_samples:
        b = min(512, n_samples - done)
        m = rng.random((b,) + h.shape) < 1 - p
        total += _softmax(h * m / (1 - p) @ params["W2"] + params["b2"]).sum(0)
        done += b
    return total / n_samples


VARIANTS = {
    "ensemble_variance": [
        ("direct", ev_direct),
        ("covariance-sum", ev_covariance_sum),
        ("factored", ev_factored),
        ("covariance-matrix", ev_covariance_matrix),
    ],
    "bootstrap_indices": [
        ("integers", bi_integers),
        ("choice", bi_choice),
        ("floor-uniform", bi_floor_uniform),
        ("python-list", bi_list),
        ("sorted-int32", bi_sorted_int32),
        ("choice-of-arange", bi_choice_of_arange),
    ],
    "enumerate_masks": [
        ("itertools-product", em_product),
        ("bits-lsb-first", em_bits_lsb_first),
        ("bool", em_bool),
        ("float-meshgrid", em_float_meshgrid),
        ("recursive", em_recursive),
        ("gray-code-float32", em_gray_code),
        ("binary-repr", em_binary_repr),
    ],
    "mask_probabilities": [
        ("where-prod", mp_where_prod),
        ("powers", mp_powers),
        ("python-loop", mp_loop),
        ("bernoulli-pmf", mp_bernoulli_pmf),
        ("torch", mp_torch),
    ],
    "exact_dropout_ensemble": [
        ("loop-direct-product", ex_loop_direct_product),
        ("vectorised-logsumexp", ex_vectorised_logsumexp),
        ("log-weights-bool-masks", ex_log_weights),
        ("float32", ex_float32),
        ("torch", ex_torch),
    ],
    "mc_dropout_average": [
        ("per-example-loop", mc_per_example_loop),
        ("batch-shared-loop", mc_batch_shared_loop),
        ("vectorised-binomial", mc_vectorised_binomial),
        ("vectorised-shared-bool", mc_vectorised_shared_bool),
        ("torch-float32", mc_torch_float32),
        ("chunked-running-sum", mc_running_mean_chunks),
    ],
}

#: (grade_id, label) run with fewer seeds by tests/test_corpora.py: seconds per scoring, same checks.
SLOW_VARIANTS = {
    ("mc_dropout_average", "per-example-loop"),
    ("mc_dropout_average", "batch-shared-loop"),
    ("mc_dropout_average", "torch-float32"),
}
