"""Probes for chapter 03, co-adaptation (see dropout_lab.probes).

The network is the course's one-hidden-layer ReLU net (``dropout_lab.nets``):
``params`` holds W1 (D, H), b1 (H,), W2 (H, C), b2 (C,); the prediction is the
arg-max of ``relu(X @ W1 + b1) @ W2 + b2`` and the accuracy the fraction of rows
of X whose prediction is their label in y.

Besides random networks, two kinds of small DESIGNED networks make the effect
of deleting units exactly observable from an accuracy alone:

* a *coded* network: every input activates one hidden unit (its "owner") and
  is classified correctly exactly when that unit is kept; unit j owns b**j
  inputs (b = n_repeats + 1). The accuracy averaged over the repeats then
  tells, digit by digit in base b, how often each unit was deleted.
* a *balance* network: every input activates every hidden unit equally; the
  hidden units push towards a wrong class, the output bias towards the right
  one, so the prediction depends on how much of the hidden signal survives.

Their margins are large (at least 0.1 in the logits), so float32 and float64
computations agree on every prediction.
"""
import numpy as np

from . import child_seed, probe, same_seed_calls

# -- mean_abs_correlation ---------------------------------------------------------------

#: (N, D) of the matrices without constant columns.
CORR_SHAPES = ((40, 7), (25, 5), (60, 9))
#: Values of the constant columns: exact in binary, so the mean of such a column is exact
#: and its deviations are exactly 0 however the variance is computed.
CONSTANTS = (2.0, -0.5, 1.25)

# -- fraction_inactive ----------------------------------------------------------------------

INACTIVE_SHAPES = ((30, 8), (100, 20), (1, 7))

# -- ablation_importance ----------------------------------------------------------------------

#: (N, D, H, C) of the random networks; D != H, so importances of inputs have the wrong length.
ABL_SHAPE = (80, 6, 8, 4)
ABL_LARGE = (120, 6, 16, 5)
#: The balance network (D, H, C) and its number of inputs.
BAL_SHAPE = (5, 6, 3)
BAL_N = 40

# -- random_deletion_accuracy --------------------------------------------------------------------

#: Hidden units of the coded and balance networks (D = H).
DEL_H = 8
DEL_C = 4
#: Fractions whose fraction * H is whole (exactly representable: 2, 4 and 6 of 8 units).
WHOLE_FRACTIONS = (0.5, 0.25, 0.75)
#: Single-repeat calls at fraction 0.5 drawn from one Generator (unit counts are tested on them),
#: and at the other whole fractions.
MANY_CALLS = 200
FEW_CALLS = 10
#: Fractions whose fraction * H is NOT whole: round and floor differ for 0.45, 0.2 and 0.7 (3.6,
#: 1.6, 5.6), round and ceil for 0.3 (2.4); none is a half.
ROUND_FRACTIONS = (0.45, 0.3, 0.2, 0.7)
ROUND_CALLS = 5
#: Calls with n_repeats = 2 on the base-3 coded network (fresh sets per repeat).
FRESH_REPEATS = 2
FRESH_CALLS = 12
#: Random networks of the statistical check (N, D, H, C), their fractions and n_repeats.
STAT_SHAPE = (80, 6, 8, 4)
STAT_FRACTIONS = (0.25, 0.5)
STAT_REPEATS = 2000
#: The balance network's fractions (whole) and n_repeats.
BALANCE_FRACTIONS = (0.5, 0.25)
BALANCE_N = 12
BALANCE_REPEATS = 3


@probe("mean_abs_correlation")
def probe_mean_abs_correlation(fn, rec, rng):
    plain = [_correlated(rng, n, d) for n, d in CORR_SHAPES]
    plain[2] = _relu_columns(rng, plain[2])               # ReLU activations, zeros but no constant column
    dead = _insert_columns(rng, _relu_columns(rng, _correlated(rng, 50, 8)), [0.0, 0.0])
    const = _insert_columns(rng, _correlated(rng, 40, 6), [CONSTANTS[0], 0.0, CONSTANTS[1]])
    few = {
        "one column": _correlated(rng, 30, 1),
        "all constant": np.tile(np.array([0.0, *CONSTANTS]), (20, 1)),
        "one non-constant": _insert_columns(rng, _correlated(rng, 30, 1), [0.0, CONSTANTS[2], CONSTANTS[0]]),
        "one row": rng.normal(size=(1, 5)),
    }
    for i, H in enumerate(plain):
        rec.call(f"plain {i}", fn, H.copy())
    rec.call("float32", fn, plain[0].astype(np.float32))
    rec.call("dead columns", fn, dead.copy())
    rec.call("constant columns", fn, const.copy())
    rec.call("constant columns float32", fn, const.astype(np.float32))
    for key, H in few.items():
        rec.call(key, fn, H.copy())
    rec.call("no in-place", fn, const.copy())
    rec.call("inputs", lambda: (*plain, dead, const, *few.values()))


def _correlated(rng, n, d):
    """(n, d) columns driven by 3 shared factors with random signs, plus noise: pairwise
    correlations of both signs, some strong, some weak."""
    factors = rng.normal(size=(n, 3))
    loadings = rng.normal(size=(3, d)) * rng.choice([0.3, 1.0, 2.0], size=(1, d))
    return factors @ loadings + 0.6 * rng.normal(size=(n, d)) + rng.normal(0.0, 1.0, size=d)


def _relu_columns(rng, H):
    """relu of each column shifted so that about 30-60% of it is 0; never constant."""
    q = rng.uniform(0.3, 0.6, size=H.shape[1])
    shift = np.array([np.quantile(H[:, j], q[j]) for j in range(H.shape[1])])
    return np.maximum(H - shift, 0.0)


def _insert_columns(rng, H, values):
    """H with a constant column of each value inserted at random positions."""
    out = H
    for v in values:
        pos = int(rng.integers(0, out.shape[1] + 1))
        out = np.insert(out, pos, v, axis=1)
    return out


@probe("fraction_inactive")
def probe_fraction_inactive(fn, rec, rng):
    relu = [np.maximum(rng.normal(size=s) + rng.normal(0.0, 0.5, size=s[1]), 0.0) for s in INACTIVE_SHAPES]
    relu[1][:, int(rng.integers(0, relu[1].shape[1]))] = 0.0          # a dead unit
    signed = rng.normal(size=(40, 6))
    signed[rng.random(signed.shape) < 0.15] = 0.0                       # exact zeros among negatives
    leaky = np.where(signed > 0, signed, 0.05 * signed)
    leaky[:5] = 0.0
    edge = {"all positive": np.abs(rng.normal(size=(9, 4))) + 0.1, "all zero": np.zeros((5, 4)),
            "integers": rng.integers(-2, 3, size=(12, 5))}
    for i, H in enumerate(relu):
        rec.call(f"relu {i}", fn, H.copy())
    rec.call("relu float32", fn, relu[0].astype(np.float32))
    rec.call("signed", fn, signed.copy())
    rec.call("leaky", fn, leaky.copy())
    for key, H in edge.items():
        rec.call(key, fn, H.copy())
    rec.call("no in-place", fn, signed.copy())
    rec.call("inputs", lambda: (*relu, signed, leaky, *edge.values()))


# -- networks ---------------------------------------------------------------------------------

def _random_net(rng, n, d, h, c):
    """X (n, d), labels y and params of a random ReLU net with a strong output bias.

    The labels are the network's own predictions with noise added to the logits, so
    that the full network is right on most inputs but not all. Every hidden unit is
    live; unit 0 is dead (0 on every input) and unit 1 has a positive bias."""
    X = rng.normal(size=(n, d))
    W1 = rng.normal(0.0, 1.5 / np.sqrt(d), size=(d, h))
    b1 = rng.normal(0.0, 0.3, size=h)
    b1[0] = -np.max(X @ W1[:, 0]) - 1.0
    b1[1] = 0.8
    W2 = rng.normal(0.0, 1.0, size=(h, c))
    b2 = rng.normal(0.0, 1.0, size=c)
    logits = np.maximum(X @ W1 + b1, 0.0) @ W2 + b2
    y = (logits + rng.normal(0.0, 1.0, size=logits.shape)).argmax(axis=1)
    return X, y.astype(np.int64), {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def _balance_net(rng, n, d, h, c, survivors, total, signal_to_right):
    """The balance network (see the module docstring). Every input activates every hidden
    unit by the same value v (its own, in [0.95, 1.05]); labels are one class.

    ``signal_to_right`` False: each hidden unit adds v to a wrong class, the bias adds
    delta to the right one, with delta between 1.05 * survivors and 0.95 * total: the
    input is classified correctly when ``survivors`` units send their signal, and wrongly
    when ``total`` units' worth of signal arrives. True: the hidden units push the right
    class instead and the bias a wrong one (used by ablation_importance)."""
    right, wrong = (int(v) for v in rng.choice(c, size=2, replace=False))
    v = rng.uniform(0.95, 1.05, size=n)
    X = np.repeat(v[:, None], d, axis=1)
    W1 = np.full((d, h), 1.0 / d)
    W2 = np.zeros((h, c))
    b2 = np.zeros(c)
    delta = 0.5 * (1.05 * survivors + 0.95 * total)
    W2[:, right if signal_to_right else wrong] = 1.0
    b2[wrong if signal_to_right else right] = delta
    y = np.full(n, right, dtype=np.int64)
    return X, y, {"W1": W1, "b1": np.zeros(h), "W2": W2, "b2": b2}


def _ablation_balance_net(rng):
    """Balance network for ablation_importance: hidden value v = u + 0.5 with u stratified
    over [0.5, 1.5]; H units push the right class, the bias (7.5) a wrong one. The full
    network is right when 6 v > 7.5, the network without one unit when 5 v > 7.5; values
    of v within 0.01 of a threshold (1.25, 1.4 and 1.5 for the mistakes the grader names)
    are left out."""
    d, h, c = BAL_SHAPE
    u = 0.5 + (np.arange(BAL_N) + rng.uniform(0.1, 0.9, size=BAL_N)) / BAL_N
    v = u + 0.5
    u = u[np.min(np.abs(v[:, None] - np.array([1.25, 1.4, 1.5, 1.875])), axis=1) > 0.01]
    u = u[rng.permutation(len(u))]
    right, wrong = (int(v) for v in rng.choice(c, size=2, replace=False))
    X = np.repeat(u[:, None], d, axis=1)
    W2 = np.zeros((h, c))
    W2[:, right] = 1.0
    b2 = np.zeros(c)
    b2[wrong] = 7.5
    params = {"W1": np.full((d, h), 1.0 / d), "b1": np.full(h, 0.5), "W2": W2, "b2": b2}
    return X, np.full(len(u), right, dtype=np.int64), params


def _copy(X, y, params):
    return X.copy(), y.copy(), {k: v.copy() for k, v in params.items()}


def _params_after(fn, X, y, params, *args):
    """The params dict after one call of fn (to see whether fn changed it)."""
    Xc, yc, pc = _copy(X, y, params)
    fn(Xc, yc, pc, *args)
    return pc


def _as32(X, y, params):
    return X.astype(np.float32), y.copy(), {k: v.astype(np.float32) for k, v in params.items()}


@probe("ablation_importance")
def probe_ablation_importance(fn, rec, rng):
    nets = {"random": _random_net(rng, *ABL_SHAPE), "large": _random_net(rng, *ABL_LARGE),
            "balance": _ablation_balance_net(rng)}
    for key, net in nets.items():
        rec.call(key, fn, *_copy(*net))
    rec.call("float32", fn, *_as32(*nets["random"]))
    rec.call("balance float32", fn, *_as32(*nets["balance"]))
    rec.call("no in-place", fn, *_copy(*nets["random"]))
    rec.call("params after", lambda: _params_after(fn, *nets["random"]))
    rec.call("inputs", lambda: tuple(a for net in nets.values() for a in net))


# -- random_deletion_accuracy ----------------------------------------------------------------------

def _coded_net(rng, base, h=DEL_H, c=DEL_C):
    """The coded network of base ``base``: hidden unit j owns base**j inputs, each a
    one-hot input (amplitude in [1, 2]) that only unit j sees. Inputs, hidden units and
    classes are shuffled; W1 is a permutation matrix, b1 = 0. With its owner kept an
    input's label class gets at least 3, otherwise the default class wins with 1."""
    owners = np.repeat(np.arange(h), base ** np.arange(h))
    owners = owners[rng.permutation(len(owners))]
    perm = rng.permutation(h)                      # input d feeds hidden unit perm[d]
    X = np.zeros((len(owners), h))
    X[np.arange(len(owners)), np.argsort(perm)[owners]] = rng.uniform(1.0, 2.0, size=len(owners))
    W1 = np.zeros((h, h))
    W1[np.arange(h), perm] = 1.0
    default = int(rng.integers(0, c))
    others = np.array([k for k in range(c) if k != default])
    unit_class = rng.choice(others, size=h)
    W2 = np.zeros((h, c))
    W2[np.arange(h), unit_class] = 3.0
    b2 = np.zeros(c)
    b2[default] = 1.0
    return X, unit_class[owners].astype(np.int64), {"W1": W1, "b1": np.zeros(h), "W2": W2, "b2": b2}


def _repeated(fn, X, y, params, fraction, n_repeats, rng, count):
    """``count`` calls of fn on copies of the inputs with one shared Generator, as an
    array of floats; None as soon as a call returns None."""
    out = []
    for _ in range(count):
        r = fn(*_copy(X, y, params), fraction, n_repeats, rng)
        if r is None:
            return None
        out.append(np.asarray(r, dtype=np.float64).reshape(-1))
    return np.concatenate(out)


@probe("random_deletion_accuracy")
def probe_random_deletion_accuracy(fn, rec, rng):
    coded = _coded_net(rng, 2)
    coded3 = _coded_net(rng, FRESH_REPEATS + 1)
    stat = _random_net(rng, *STAT_SHAPE)
    balance = {f: _balance_net(rng, BALANCE_N, DEL_H, DEL_H, DEL_C, DEL_H - round(f * DEL_H), DEL_H, False)
               for f in BALANCE_FRACTIONS}
    shared = np.random.default_rng(child_seed(rng))
    rec.call(f"coded f=0.5 x{MANY_CALLS}", lambda: _repeated(fn, *coded, 0.5, 1, shared, MANY_CALLS))
    for f in WHOLE_FRACTIONS[1:]:
        g = np.random.default_rng(child_seed(rng))
        rec.call(f"coded f={f} x{FEW_CALLS}", lambda f=f, g=g: _repeated(fn, *coded, f, 1, g, FEW_CALLS))
    for f in ROUND_FRACTIONS:
        g = np.random.default_rng(child_seed(rng))
        rec.call(f"coded f={f} x{ROUND_CALLS}", lambda f=f, g=g: _repeated(fn, *coded, f, 1, g, ROUND_CALLS))
    g = np.random.default_rng(child_seed(rng))
    rec.call(f"coded3 f=0.5 n_repeats={FRESH_REPEATS} x{FRESH_CALLS}",
             lambda: _repeated(fn, *coded3, 0.5, FRESH_REPEATS, g, FRESH_CALLS))
    for f, net in balance.items():
        rec.call(f"balance f={f}", fn, *_copy(*net), f, BALANCE_REPEATS, np.random.default_rng(child_seed(rng)))
    for f in STAT_FRACTIONS:
        rec.call(f"random f={f}", fn, *_copy(*stat), f, STAT_REPEATS, np.random.default_rng(child_seed(rng)))
    for f in (0.0, 1.0):
        rec.call(f"random f={f}", fn, *_copy(*stat), f, 3, np.random.default_rng(child_seed(rng)))
    same_seed_calls(rec, "same seed", fn, lambda s: (*_copy(*stat), 0.5, 5, np.random.default_rng(s)),
                    child_seed(rng))
    rec.call("no in-place", fn, *_copy(*stat), 0.5, 3, np.random.default_rng(child_seed(rng)))
    after_seed = child_seed(rng)
    rec.call("params after", lambda: _params_after(fn, *stat, 0.5, 3, np.random.default_rng(after_seed)))
    rec.call("inputs", lambda: (*coded, *coded3, *stat, *(a for net in balance.values() for a in net)))
