"""Probes for chapter 01, overfitting (see dropout_lab.probes).

torch is imported inside the penalty probes only, so importing this module
(every probe module is imported together) stays cheap.
"""
import numpy as np

from . import probe

#: Degrees polynomial_features is probed with (degree 0 on its own check).
POLY_DEGREES = (3, 1, 5, 8)
#: Ridge strengths of the main design; lam = 0 is ordinary least squares.
RIDGE_LAMS = (3.0, 30.0, 0.3)
#: Shape of the main ridge design (N samples, D features): N >> D and Gaussian
#: entries keep X^T X well conditioned, so every correct way of solving agrees.
RIDGE_SHAPE = (40, 6)
#: A wide design (more features than samples), solved with lam > 0.
RIDGE_WIDE = (8, 12)
#: Strengths the penalties are probed with.
PENALTY_STRENGTHS = (0.1, 0.01, 1.5)
#: The parameter shapes of a small MLP (nn.Linear stores weights as (out, in)).
PARAM_SHAPES = ((4, 5), (4,), (3, 4), (3,))
#: Patience values of the early-stopping probes.
PATIENCES = (3, 1, 2, 5)


# -- polynomial_features ---------------------------------------------------------------

@probe("polynomial_features")
def probe_polynomial_features(fn, rec, rng):
    x = rng.uniform(-1.5, 1.5, size=20)
    x_short = rng.uniform(-1.5, 1.5, size=7)
    for d in POLY_DEGREES:
        rec.call(f"degree={d}", fn, x.copy(), d)
    rec.call("7 points degree=4", fn, x_short.copy(), 4)
    rec.call("degree=0", fn, x.copy(), 0)
    x_mut = x.copy()
    rec.call("no in-place", fn, x_mut, 6)
    rec.call("inputs", lambda: (x, x_short))


# -- ridge_fit -----------------------------------------------------------------------

@probe("ridge_fit")
def probe_ridge_fit(fn, rec, rng):
    n, d = RIDGE_SHAPE
    X = rng.normal(size=(n, d))
    X[:, 0] = 1.0                       # an intercept column, as polynomial_features gives
    w_true = rng.normal(size=d) * 2.0
    y = X @ w_true + 0.5 * rng.normal(size=n)
    rec.call("lam=0.0", fn, X.copy(), y.copy(), 0.0)
    for lam in RIDGE_LAMS:
        rec.call(f"lam={lam}", fn, X.copy(), y.copy(), lam)
    nw, dw = RIDGE_WIDE
    Xw = rng.normal(size=(nw, dw))
    yw = rng.normal(size=nw)
    rec.call("wide lam=1.0", fn, Xw.copy(), yw.copy(), 1.0)
    for bad in (-1.0, -0.001):
        rec.call(f"invalid lam={bad}", fn, X.copy(), y.copy(), bad)
    X_mut, y_mut = X.copy(), y.copy()
    rec.call("no in-place", fn, X_mut, y_mut, 3.0)
    rec.call("inputs", lambda: (X, y, Xw, yw))


# -- l2_penalty and l1_penalty ---------------------------------------------------------

def _penalty_run(fn, arrays, strength, kind="list", dtype=None):
    """(value, gradient) of ``fn(params, strength)``.

    ``params`` holds fresh leaf tensors made from ``arrays`` and is a list, a
    generator expression (consumed once) or ``model.parameters()`` of a small
    ``nn.Sequential`` whose parameters are ``arrays``. The gradient of the
    returned value with respect to every parameter, flattened and concatenated
    in order, is computed with ``torch.autograd.grad``; it is None when the
    value is not a tensor that requires grad (no gradient can flow)."""
    import torch

    dtype = torch.float64 if dtype is None else dtype
    if kind == "module":
        from torch import nn

        (o1, i1), _, (o2, i2), _ = (a.shape for a in arrays)
        with torch.random.fork_rng(devices=[]):   # nn.Linear's random init must not move the notebook's RNG
            model = nn.Sequential(nn.Linear(i1, o1), nn.ReLU(), nn.Linear(i2, o2)).to(dtype)
        tensors = list(model.parameters())
        with torch.no_grad():
            for t, a in zip(tensors, arrays):
                t.copy_(torch.as_tensor(a, dtype=dtype))
        params = model.parameters()
    else:
        tensors = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
        params = tensors if kind == "list" else (t for t in tensors)
    out = fn(params, strength)
    if isinstance(out, torch.Tensor) and out.requires_grad:
        grads = torch.autograd.grad(out.sum(), tensors, allow_unused=True)
        grad = torch.cat([(g if g is not None else torch.zeros_like(t)).reshape(-1)
                          for g, t in zip(grads, tensors)]).detach()
        return out.detach(), grad
    return (out.detach() if isinstance(out, torch.Tensor) else out), None


def _param_arrays(rng):
    return [rng.normal(size=s) * 0.8 for s in PARAM_SHAPES]


def _probe_penalty(fn, rec, rng):
    arrays = _param_arrays(rng)
    for s in PENALTY_STRENGTHS:
        rec.call(f"list s={s}", lambda s=s: _penalty_run(fn, arrays, s))
    rec.call("generator s=0.1", lambda: _penalty_run(fn, arrays, 0.1, kind="generator"))
    rec.call("model.parameters() s=0.1", lambda: _penalty_run(fn, arrays, 0.1, kind="module"))
    arrays32 = [a.astype(np.float32) for a in _param_arrays(rng)]
    import torch

    rec.call("float32 s=0.1", lambda: _penalty_run(fn, arrays32, 0.1, dtype=torch.float32))
    rec.call("inputs", lambda: (*arrays, *arrays32))


@probe("l2_penalty")
def probe_l2_penalty(fn, rec, rng):
    _probe_penalty(fn, rec, rng)


@probe("l1_penalty")
def probe_l1_penalty(fn, rec, rng):
    _probe_penalty(fn, rec, rng)


# -- early_stopping_epoch --------------------------------------------------------------
#
# Losses are multiples of 1/64, exact in binary floating point, so a tie is a
# tie whether the values travel as Python floats, numpy floats or a tuple.

_STEP = 1.0 / 64


def _worse(rng, best):
    """A loss strictly above ``best``."""
    return best + _STEP * int(rng.integers(1, 30))


def _better(rng, best):
    """A loss strictly below ``best``."""
    return best - _STEP * int(rng.integers(1, 8))


def _never_stops(rng, patience):
    """Runs of at most patience - 2 epochs without a new best, so that stopping
    one epoch early or late changes nothing either: the answer is the epoch of
    the lowest loss, neither the first nor the last. Needs patience >= 3."""
    best = 4.0
    losses = [best]
    while len(losses) < 12:
        for _ in range(int(rng.integers(0, patience - 1))):
            losses.append(_worse(rng, best))
        best = _better(rng, best)
        losses.append(best)
    for _ in range(int(rng.integers(1, patience - 1))):
        losses.append(_worse(rng, best))
    return losses


def _stops(rng, patience, best_first=False):
    """Runs of exactly patience - 1 epochs without a new best (one epoch more
    and a careless loop stops there), then the best epoch, then exactly
    ``patience`` epochs without a new best (training stops here), then far
    lower losses that early stopping must never see."""
    best = 4.0
    losses = [best]
    if not best_first:
        for _ in range(int(rng.integers(2, 4))):
            for _ in range(patience - 1):
                losses.append(_worse(rng, best))
            best = _better(rng, best)
            losses.append(best)
    for _ in range(patience):
        losses.append(_worse(rng, best))
    return losses + _unseen_tail(rng, best, patience)


def _unseen_tail(rng, best, patience):
    """What comes after the stop: a far lower loss, then patience + 2 epochs
    without a new best, then the lowest loss of all. A loop that stops one
    epoch late (or counts a tie as a new best) returns the first of the two
    lows, the global argmin the second."""
    low = best - 1.0
    return [low] + [_worse(rng, low) for _ in range(patience + 2)] + [low - 1.0, _worse(rng, low - 1.0)]


def _ties(rng, patience, stop):
    """A loss exactly equal to the best so far, which is not a new best. With
    ``stop`` the tie comes first in a run of exactly ``patience`` epochs
    without a new best, then far lower losses follow; without it patience is
    never exhausted and the answer is the first of the two equal losses."""
    best = 4.0
    losses = [best]
    for _ in range(int(rng.integers(1, 3))):
        best = _better(rng, best)
        losses.append(best)
    if stop:
        losses.append(best)                                            # the tie
        for _ in range(patience - 1):
            losses.append(_worse(rng, best))
        losses += _unseen_tail(rng, best, patience)
    else:
        losses += [_worse(rng, best), best, _worse(rng, best)]
    return losses


@probe("early_stopping_epoch")
def probe_early_stopping_epoch(fn, rec, rng):
    for patience in PATIENCES:
        rec.call(f"never stops patience={patience + 3}", fn, _never_stops(rng, patience + 3), patience + 3)
    for patience in PATIENCES:
        rec.call(f"stops patience={patience}", fn, _stops(rng, patience), patience)
    rec.call("stops best first patience=3", fn, _stops(rng, 3, best_first=True), 3)
    for patience in (3, 2):
        rec.call(f"tie stops patience={patience}", fn, _ties(rng, patience, stop=True), patience)
    rec.call("tie never stops patience=6", fn, _ties(rng, 6, stop=False), 6)
    losses = _stops(rng, 3)
    rec.call("ndarray patience=3", fn, np.array(losses), 3)
    rec.call("tuple patience=3", fn, tuple(losses), 3)
    for bad in (0, -2):
        rec.call(f"invalid patience={bad}", fn, [1.0, 0.5, 0.75], bad)
