"""Probes for chapter 04, scaling maths (see dropout_lab.probes)."""
import warnings

import numpy as np

from . import child_seed, probe, same_seed_calls

#: Drop probabilities every stochastic forward is called with.
FORWARD_PS = (0.0, 0.2, 0.5, 0.8, 1.0)
#: Drop probabilities the standard-dropout eval path is called with.
EVAL_PS = (0.2, 0.5)
#: Drop probabilities the analytic moments are probed with (p == 1 is not probed:
#: the spec leaves it open whether the variance is inf or nan there).
MOMENT_PS = (0.0, 0.1, 0.25, 0.5, 0.8, 0.9)
#: Drop probabilities and sample count for the Monte Carlo moments. n is odd so
#: that n * (1 - p) is never a whole number.
MC_PS = (0.0, 0.2, 0.5, 0.8)
MC_N = 2001
#: A handful of samples: with n draws an estimate can take only the values n
#: dropout draws allow (see the checks). n * (1 - p) is never a whole number
#: here, so the analytic mean x and variance x^2 p/(1-p) are never among them.
MC_FEW_NS = (1, 3, 5)
MC_FEW_PS = (0.3, 0.45)


def _training_calls(fn, rec, rng, x):
    """Calls both forward variants share: every p in training mode, two calls
    on one Generator (fresh masks), an in-place probe, a 3-d and a float32
    input, and invalid p. Returns the extra inputs the checks need."""
    for p in FORWARD_PS:
        rec.call(f"train p={p}", fn, x.copy(), p, np.random.default_rng(child_seed(rng)), training=True)
    # Two calls with one Generator must draw two different masks.
    shared = np.random.default_rng(child_seed(rng))
    rec.call("fresh mask 1", fn, x.copy(), 0.5, shared)
    rec.call("fresh mask 2", fn, x.copy(), 0.5, shared)
    x_mut = x[:20].copy()
    rec.call("no in-place", fn, x_mut, 0.5, np.random.default_rng(child_seed(rng)))  # mutation is recorded
    x3 = rng.normal(size=(4, 6, 5))
    rec.call("3-d input", fn, x3.copy(), 0.3, np.random.default_rng(child_seed(rng)))
    x32 = x[:50].astype(np.float32)
    rec.call("float32", fn, x32.copy(), 0.5, np.random.default_rng(child_seed(rng)))
    for bad in (-0.1, 1.5):
        rec.call(f"invalid p={bad}", fn, x[:5].copy(), bad, np.random.default_rng(0))
    # Two Generators with one seed must give one result, whatever the global state.
    same_seed_calls(rec, "same seed", fn, lambda s: (x[:40].copy(), 0.5, np.random.default_rng(s)),
                    child_seed(rng))
    return x_mut, x3, x32


@probe("dropout_forward")
def probe_dropout_forward(fn, rec, rng):
    x = rng.normal(size=(200, 50))  # 10 000 entries: the drop-rate bounds rely on this size
    x_mut, x3, x32 = _training_calls(fn, rec, rng, x)
    rec.call("eval", fn, x.copy(), 0.5, np.random.default_rng(child_seed(rng)), training=False)
    rec.call("inputs x", lambda: (x, x3, x_mut, x32))


@probe("standard_dropout_forward")
def probe_standard_dropout_forward(fn, rec, rng):
    x = rng.normal(size=(200, 50))  # 10 000 entries, as for dropout_forward
    _, x3, x32 = _training_calls(fn, rec, rng, x)
    for p in EVAL_PS:
        rec.call(f"eval p={p}", fn, x.copy(), p, np.random.default_rng(child_seed(rng)), training=False)
    x_mut_eval = x[20:40].copy()
    rec.call("no in-place eval", fn, x_mut_eval, 0.5, np.random.default_rng(child_seed(rng)), training=False)
    rec.call("inputs x", lambda: (x, x3, x32))


@probe("dropout_moments")
def probe_dropout_moments(fn, rec, rng):
    x = rng.normal(size=(6, 7)) * 2.0
    x[rng.integers(0, 6), rng.integers(0, 7)] = 0.0  # a zero has zero variance
    for p in MOMENT_PS:
        rec.call(f"p={p}", fn, x.copy(), p)
    x1 = rng.uniform(-3.0, 3.0, size=11)
    rec.call("1-d input", fn, x1.copy(), 0.3)
    x_mut = x.copy()
    rec.call("no in-place", fn, x_mut, 0.5)
    rec.call("inputs x", lambda: (x, x1))


def _mc_input(rng):
    """(4, 5) entries with |x| in [1.5, 3] and both signs, plus two exact zeros.

    |x| / (1 - p) >= 1.5 keeps the output's variance far from the mask's
    variance, so "variance of the mask" cannot pass by accident."""
    x = rng.uniform(1.5, 3.0, size=(4, 5)) * rng.choice([-1.0, 1.0], size=(4, 5))
    x[0, 0] = 0.0
    x[3, 2] = 0.0
    return x


@probe("mc_moments")
def probe_mc_moments(fn, rec, rng):
    x = _mc_input(rng)
    for p in MC_PS:
        rec.call(f"p={p}", fn, x.copy(), p, MC_N, np.random.default_rng(child_seed(rng)))
    # Two calls with one Generator must use fresh draws (different estimates).
    shared = np.random.default_rng(child_seed(rng))
    rec.call("fresh 1", fn, x.copy(), 0.5, MC_N, shared)
    rec.call("fresh 2", fn, x.copy(), 0.5, MC_N, shared)
    # Two Generators with the same seed must give the same estimates, whatever the global state.
    same_seed_calls(rec, "same seed", fn, lambda s: (x.copy(), 0.5, MC_N, np.random.default_rng(s)),
                    child_seed(rng))
    x_mut = x.copy()
    rec.call("no in-place", fn, x_mut, 0.5, 50, np.random.default_rng(child_seed(rng)))
    # A handful of samples on 200 entries, none of them 0.
    x_few = rng.uniform(1.5, 3.0, size=(10, 20)) * rng.choice([-1.0, 1.0], size=(10, 20))
    with warnings.catch_warnings():
        # ddof=1 with n_samples=1 is 0/0, a NaN the checks accept: numpy and torch warn about
        # it, and a warning the grader's own input provokes is noise in the student's notebook.
        warnings.simplefilter("ignore")
        for p in MC_FEW_PS:
            for n in MC_FEW_NS:
                rec.call(f"few p={p} n={n}", fn, x_few.copy(), p, n, np.random.default_rng(child_seed(rng)))
    rec.call("inputs x", lambda: (x, x_few))
