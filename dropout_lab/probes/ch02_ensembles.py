"""Probes for chapter 02, ensembles (see dropout_lab.probes).

The network of the dropout exercises is the course's one-hidden-layer ReLU net
(``dropout_lab.nets``): ``params`` holds W1 (D, H), b1 (H,), W2 (H, C), b2 (C,).
"""
import numpy as np

from . import child_seed, probe, same_seed_calls

# -- ensemble_variance -------------------------------------------------------------

#: (sigma2, rho, k) of the public cases; the first is the example messages quote.
ENSEMBLE_CASES = ((2.0, 0.3, 5), (1.0, 0.6, 10), (0.5, 0.1, 3))
#: How many further cases are drawn at random (0.1 <= rho <= 0.9, 2 <= k <= 50).
ENSEMBLE_RANDOM = 3
#: The limits: independent members, identical members, one member, and a negative
#: correlation (allowed down to -1/(k-1)).
ENSEMBLE_LIMITS = (("rho=0", 1.5, 0.0, 8), ("rho=1", 1.5, 1.0, 8), ("k=1", 1.5, 0.4, 1),
                   ("negative rho", 2.0, -0.2, 4))

# -- bootstrap_indices ---------------------------------------------------------------

#: Size of the large samples (the number of distinct indices is tested on these).
BOOT_N = 1000
#: Many small samples, drawn one after the other from one Generator: every index of
#: range(BOOT_SMALL_N) must come up about equally often.
BOOT_SMALL_N = 5
BOOT_SMALL_CALLS = 200

# -- enumerate_masks ----------------------------------------------------------------

#: Sizes every mask is enumerated for; the edge sizes are a check of their own.
ENUM_NS = (3, 5, 10)
ENUM_EDGE_NS = (1, 12)

# -- mask_probabilities ---------------------------------------------------------------

MASKPROB_PS = (0.2, 0.7, 0.35)

# -- exact_dropout_ensemble and mc_dropout_average -------------------------------------

#: (N, D, H, C) of the networks; H = 6 gives 64 masks.
NET_SHAPE = (5, 4, 6, 3)
EXACT_PS = (0.2, 0.7, 0.5)
#: A larger hidden layer (512 masks).
EXACT_LARGE_H = 9
MC_SHAPE = (6, 4, 6, 3)
#: (n_samples, p) of the few-sample calls: every row is an average of that many mask outputs.
MC_FEW = ((1, 0.3), (1, 0.6), (2, 0.3), (3, 0.6))
#: Many samples: the average must be within sampling error of the exact average.
MC_MANY_PS = (0.2, 0.6)
MC_N = 10000
#: (n_samples, p) of the calls that compare fresh draws.
MC_FRESH = (10, 0.5)


@probe("ensemble_variance")
def probe_ensemble_variance(fn, rec, rng):
    for i, (s2, rho, k) in enumerate(ENSEMBLE_CASES):
        rec.call(f"case {i}", fn, s2, rho, k)
    for i in range(ENSEMBLE_RANDOM):
        s2, rho, k = float(rng.uniform(0.5, 3.0)), float(rng.uniform(0.1, 0.9)), int(rng.integers(2, 51))
        rec.call(f"random {i}", fn, s2, rho, k)
    for key, s2, rho, k in ENSEMBLE_LIMITS:
        rec.call(key, fn, s2, rho, k)
    rec.call("numpy scalars", fn, np.float64(2.0), np.float64(0.3), np.int64(5))


def _many_samples(fn, n, rng, count):
    """``count`` calls ``fn(n, rng)`` on one Generator, as (values, lengths):
    every output flattened and concatenated, and the length of each. None when
    any call returned None (the grader then says "did you forget return?")."""
    values, lengths = [], []
    for _ in range(count):
        out = fn(n, rng)
        if out is None:
            return None
        flat = np.asarray(out).reshape(-1)
        values.append(flat)
        lengths.append(flat.size)
    return np.concatenate(values), np.array(lengths)


@probe("bootstrap_indices")
def probe_bootstrap_indices(fn, rec, rng):
    shared = np.random.default_rng(child_seed(rng))
    rec.call("n=1000 a", fn, BOOT_N, shared)
    rec.call("n=1000 b", fn, BOOT_N, shared)          # the same Generator: a fresh sample
    rec.call("n=1000 c", fn, BOOT_N, np.random.default_rng(child_seed(rng)))
    small = np.random.default_rng(child_seed(rng))
    rec.call(f"n={BOOT_SMALL_N} x{BOOT_SMALL_CALLS}", lambda: _many_samples(fn, BOOT_SMALL_N, small, BOOT_SMALL_CALLS))
    rec.call("n=1", fn, 1, np.random.default_rng(child_seed(rng)))
    same_seed_calls(rec, "same seed", fn, lambda s: (50, np.random.default_rng(s)), child_seed(rng))


@probe("enumerate_masks")
def probe_enumerate_masks(fn, rec, rng):
    for n in ENUM_NS + ENUM_EDGE_NS:
        rec.call(f"n={n}", fn, n)


def _all_masks(n, rng):
    """Every 0/1 row of length n exactly once, in a random row order."""
    rows = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    return rows[rng.permutation(2**n)].astype(np.int64)


@probe("mask_probabilities")
def probe_mask_probabilities(fn, rec, rng):
    all4 = _all_masks(4, rng)
    rand7 = rng.integers(0, 2, size=(12, 7)).astype(np.int64)   # some masks, not all, repeats allowed
    rand7[0], rand7[1] = 1, 0                                    # the all-kept and all-dropped rows
    for p in MASKPROB_PS:
        rec.call(f"all n=4 p={p}", fn, all4.copy(), p)
        rec.call(f"some n=7 p={p}", fn, rand7.copy(), p)
    rec.call("bool p=0.3", fn, rand7.astype(bool), 0.3)
    rec.call("float p=0.3", fn, rand7.astype(np.float64), 0.3)
    for p in (0.0, 1.0):
        rec.call(f"all n=4 p={p}", fn, all4.copy(), p)
    rec.call("no in-place", fn, rand7.copy(), 0.3)
    rec.call("inputs", lambda: (all4, rand7))


def _net(rng, n, d, h, c):
    """X (n, d) and params of a one-hidden-layer ReLU net with softmax outputs of
    moderate confidence (so that averaging over masks matters). Every hidden
    unit is active on the first example (its pre-activation is at least 0.5)."""
    X = rng.normal(size=(n, d))
    W1 = rng.normal(size=(d, h))
    b1 = 0.5 + np.abs(rng.normal(0.0, 0.3, size=h))
    b1 = b1 + np.maximum(0.0, -(X[0] @ W1))
    params = {"W1": W1, "b1": b1, "W2": rng.normal(0.0, 1.5, size=(h, c)), "b2": rng.normal(0.0, 0.5, size=c)}
    return X, params


def _params_copy(params):
    return {k: v.copy() for k, v in params.items()}


def _params_after(fn, X, params, *args):
    """The params dict after one call of fn (to see whether fn changed it)."""
    pc = _params_copy(params)
    fn(X.copy(), pc, *args)
    return pc


@probe("exact_dropout_ensemble")
def probe_exact_dropout_ensemble(fn, rec, rng):
    n, d, h, c = NET_SHAPE
    X, params = _net(rng, n, d, h, c)
    X9, params9 = _net(rng, n, d, EXACT_LARGE_H, c)
    for p in EXACT_PS:
        rec.call(f"p={p}", fn, X.copy(), _params_copy(params), p)
    rec.call(f"H={EXACT_LARGE_H} p=0.3", fn, X9.copy(), _params_copy(params9), 0.3)
    rec.call("p=0.0", fn, X.copy(), _params_copy(params), 0.0)
    rec.call("no in-place", fn, X.copy(), _params_copy(params), 0.2)
    rec.call("params after", lambda: _params_after(fn, X, params, 0.2))
    rec.call("inputs", lambda: (X, params, X9, params9))


@probe("mc_dropout_average")
def probe_mc_dropout_average(fn, rec, rng):
    n, d, h, c = MC_SHAPE
    X, params = _net(rng, n, d, h, c)
    for k, p in MC_FEW:
        rec.call(f"n={k} p={p}", fn, X.copy(), _params_copy(params), p, k, np.random.default_rng(child_seed(rng)))
    for p in MC_MANY_PS:
        rec.call(f"many p={p}", fn, X.copy(), _params_copy(params), p, MC_N, np.random.default_rng(child_seed(rng)))
    k, p = MC_FRESH
    shared = np.random.default_rng(child_seed(rng))
    rec.call("fresh 1", fn, X.copy(), _params_copy(params), p, k, shared)
    rec.call("fresh 2", fn, X.copy(), _params_copy(params), p, k, shared)
    rec.call("other seed", fn, X.copy(), _params_copy(params), p, k, np.random.default_rng(child_seed(rng)))
    same_seed_calls(rec, "same seed", fn, lambda s: (X.copy(), _params_copy(params), p, k, np.random.default_rng(s)),
                    child_seed(rng))
    rec.call("no in-place", fn, X.copy(), _params_copy(params), 0.3, 5, np.random.default_rng(child_seed(rng)))
    after_seed = child_seed(rng)
    rec.call("params after", lambda: _params_after(fn, X, params, 0.3, 5, np.random.default_rng(after_seed)))
    rec.call("inputs", lambda: (X, params))
