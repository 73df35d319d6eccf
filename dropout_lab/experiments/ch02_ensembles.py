"""Experiments behind chapter 02's figures (ensembles, bagging, and dropout's average).

Two halves.

*Bagging on the noisy sine wave.* The data come from chapter 01's own generator
(:func:`dropout_lab.experiments.ch01_overfitting.sine_train_set`). The flexible model is
nearest-neighbour interpolation (the piecewise-constant curve through every training
point), which on one input is exactly what a fully grown regression tree computes
(:func:`nn_equals_full_tree` checks it against scikit-learn). Bootstrap resamples are
drawn inline with ``rng.integers``.

*Dropout's sub-networks on digits.* Small ReLU networks are trained with torch's
built-in ``torch.nn.functional.dropout``, many at once as stacked weights
(:func:`train_small_nets`, :func:`train_digits_mc_nets`). The averages over every
dropout mask of a small hidden layer are accumulated by one private helper,
:func:`_mask_sums`, which returns running sums over masks chunk by chunk; the public
functions return only the summaries the page plots (distances, accuracies, variances),
never the per-network ensemble outputs that chapter 02's exercise notebook asks students
to compute.

Every function is seeded and returns plain numbers or arrays;
``tests/test_claims_ch02_ensembles.py`` asserts each claim the page makes about them.
"""
from __future__ import annotations

from dropout_lab.experiments.threads import one_thread, single_threaded

import numpy as np

from dropout_lab.experiments.ch01_overfitting import SINE_NOISE, sine_curve, sine_train_set

#: Training-set size of the bagging experiments (chapter 01's sine wave and noise).
N_TRAIN = 30

#: Ensemble sizes K compared on the bagging figures.
KS = (1, 2, 3, 5, 10, 20, 50, 100)

#: Hidden width of the small networks whose 2^H sub-networks are enumerated.
SMALL_H = 12

#: Numbers of Monte Carlo samples on the MC figures.
MC_KS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100)


def _one_thread():
    """torch and numpy's BLAS on one thread (see dropout_lab.experiments.threads)."""
    return one_thread(numpy_too=True)


#: Decorator: run a function inside :func:`_one_thread`.
_single_threaded = single_threaded(numpy_too=True)


# --------------------------------------------------------------------------------------
# Bagging nearest-neighbour fits of the noisy sine wave
# --------------------------------------------------------------------------------------

def _nn_predict(x_train, y_train, grid):
    """Nearest-neighbour interpolation; x_train, y_train may carry leading batch axes
    (..., n); returns (..., len(grid))."""
    dist = np.abs(np.asarray(x_train)[..., None, :] - np.asarray(grid)[:, None])
    idx = np.argmin(dist, axis=-1)
    return np.take_along_axis(np.asarray(y_train), idx, axis=-1)


def _bootstrap_fits(x, y, grid, n_members, rng):
    """(n_members, len(grid)): nearest-neighbour fits to n_members bootstrap resamples."""
    rows = rng.integers(0, len(x), size=(n_members, len(x)))
    return _nn_predict(x[rows], y[rows], grid)


def _grid(n_grid=400):
    """Evaluation inputs on [-1, 1], offset so that none is equidistant from two training points."""
    return -1.0 + (np.arange(n_grid) + 0.5) * 2.0 / n_grid


def nn_equals_full_tree(n_train: int = N_TRAIN, seeds=range(3), n_test: int = 500) -> float:
    """Largest |difference| between nearest-neighbour interpolation and scikit-learn's fully
    grown ``DecisionTreeRegressor`` on bootstrap resamples of the sine wave (0.0 when equal)."""
    from sklearn.tree import DecisionTreeRegressor

    worst = 0.0
    for seed in seeds:
        x, y = sine_train_set(n_train, seed)
        rng = np.random.default_rng(seed)
        rows = rng.integers(0, n_train, n_train)
        t = rng.uniform(-1, 1, n_test)
        tree = DecisionTreeRegressor(random_state=0).fit(x[rows, None], y[rows]).predict(t[:, None])
        worst = max(worst, float(np.abs(tree - _nn_predict(x[rows], y[rows], t)).max()))
    return worst


def bagging_picture(n_train: int = N_TRAIN, n_members: int = 100, seed: int = 0, n_grid: int = 400):
    """One training set of the sine wave and a bagged ensemble of nearest-neighbour fits.

    Returns ``x``, ``y`` (training points), ``grid``, ``truth`` (sin(pi x) on the grid),
    ``single`` (the fit to all the data), ``members`` (n_members, n_grid) bootstrap fits and
    ``bagged`` (their mean).
    """
    x, y = sine_train_set(n_train, seed)
    grid = _grid(n_grid)
    members = _bootstrap_fits(x, y, grid, n_members, np.random.default_rng(10_000 + seed))
    return {"x": x, "y": y, "grid": grid, "truth": sine_curve(grid),
            "single": _nn_predict(x, y, grid), "members": members, "bagged": members.mean(axis=0)}


@_single_threaded
def bagging_bias_variance(n_train: int = N_TRAIN, ks=KS, seeds=range(200), n_groups: int = 5,
                          n_grid: int = 400):
    """Bias and variance over training sets of bagged nearest-neighbour fits, against K.

    Seed s draws a fresh training set (chapter 01's generator) and ``max(ks)`` bootstrap
    fits; the bagged predictor with K members averages the first K. Over the seeds of each
    of ``n_groups`` equal groups, at every grid point, the bias is the mean prediction minus
    sin(pi x) and the variance the variance of the predictions; both are averaged over the
    grid (``bias2``, ``var``) and ``mse = bias2 + var`` is the expected squared error
    against the true curve (add SINE_NOISE**2 for fresh noisy targets). Arrays are
    (n_groups, len(ks)); ``single_bias2``, ``single_var``, ``single_mse`` (n_groups,) are the
    same for one fit to all the data. ``preds`` (len(seeds), len(ks), n_grid) holds every
    bagged prediction.
    """
    ks = np.asarray(list(ks))
    seeds = list(seeds)
    grid = _grid(n_grid)
    truth = sine_curve(grid)
    preds = np.zeros((len(seeds), len(ks), n_grid))
    single = np.zeros((len(seeds), n_grid))
    for i, seed in enumerate(seeds):
        x, y = sine_train_set(n_train, seed)
        members = _bootstrap_fits(x, y, grid, int(ks.max()), np.random.default_rng(10_000 + seed))
        csum = np.cumsum(members, axis=0)
        preds[i] = csum[ks - 1] / ks[:, None]
        single[i] = _nn_predict(x, y, grid)
    groups = np.array_split(np.arange(len(seeds)), n_groups)

    def stats(a):                      # a: (seeds_in_group, ..., n_grid)
        var = a.var(axis=0, ddof=1)
        # (mean - truth)^2 over a finite group overstates bias^2 by var / n: remove it
        bias2 = np.mean((a.mean(axis=0) - truth) ** 2 - var / len(a), axis=-1)
        return bias2, np.mean(var, axis=-1)

    out = {k: np.zeros((n_groups, len(ks))) for k in ("bias2", "var")}
    out.update({k: np.zeros(n_groups) for k in ("single_bias2", "single_var")})
    for g, rows in enumerate(groups):
        out["bias2"][g], out["var"][g] = stats(preds[rows])
        out["single_bias2"][g], out["single_var"][g] = stats(single[rows])
    out["mse"] = out["bias2"] + out["var"]
    out["single_mse"] = out["single_bias2"] + out["single_var"]
    out.update({"ks": ks, "preds": preds, "noise_var": SINE_NOISE ** 2})
    return out


@_single_threaded
def member_correlation(n_train: int = N_TRAIN, seeds=range(1000, 2000), n_grid: int = 400):
    """sigma^2 and rho of bootstrap members, estimated from PAIRS of members.

    Seed s draws a training set and two bootstrap fits, f1 and f2 (independent seeds from
    those of :func:`bagging_bias_variance`). At each grid point, ``sigma2(x)`` is the variance
    of a member over training sets and resamples (pooled over f1 and f2) and ``cov(x)`` the
    covariance of f1 and f2, which share the training set but not the resample. Returns
    ``sigma2`` and ``rho`` pooled over the grid (mean cov / mean sigma2, the values for which
    the correlated-average formula holds for the grid-averaged variance), and the pointwise
    ``sigma2_x``, ``rho_x`` and ``grid``.
    """
    seeds = list(seeds)
    grid = _grid(n_grid)
    f = np.zeros((len(seeds), 2, n_grid))
    for i, seed in enumerate(seeds):
        x, y = sine_train_set(n_train, seed)
        f[i] = _bootstrap_fits(x, y, grid, 2, np.random.default_rng(10_000 + seed))
    mean = f.mean(axis=(0, 1))
    dev = f - mean
    sigma2_x = np.mean(dev ** 2, axis=(0, 1)) * (2 * len(seeds)) / (2 * len(seeds) - 1)
    cov_x = np.sum(dev[:, 0] * dev[:, 1], axis=0) / (len(seeds) - 1)
    return {"sigma2": float(sigma2_x.mean()), "rho": float(cov_x.mean() / sigma2_x.mean()),
            "sigma2_x": sigma2_x, "rho_x": cov_x / sigma2_x, "grid": grid}


@_single_threaded
def polynomial_bagging(degree: int = 5, n_train: int = N_TRAIN, n_members: int = 50,
                       seeds=range(200), n_grid: int = 400):
    """Bagging a stable fit: least-squares polynomials of ``degree`` on the same sine wave.

    Returns grid-averaged ``single_var``, ``bagged_var``, ``single_bias2``, ``bagged_bias2``
    over the seeds (the single fit uses all the data, the bagged one averages ``n_members``
    bootstrap fits)."""
    from numpy.polynomial import polynomial as P

    grid = _grid(n_grid)
    G = P.polyvander(grid, degree)
    single, bagged = np.zeros((len(seeds), n_grid)), np.zeros((len(seeds), n_grid))
    for i, seed in enumerate(seeds):
        x, y = sine_train_set(n_train, seed)
        rng = np.random.default_rng(10_000 + seed)
        single[i] = G @ np.linalg.lstsq(P.polyvander(x, degree), y, rcond=None)[0]
        acc = np.zeros(n_grid)
        for _ in range(n_members):
            r = rng.integers(0, n_train, n_train)
            acc += G @ np.linalg.lstsq(P.polyvander(x[r], degree), y[r], rcond=None)[0]
        bagged[i] = acc / n_members
    truth = sine_curve(grid)
    return {"single_var": float(single.var(axis=0).mean()), "bagged_var": float(bagged.var(axis=0).mean()),
            "single_bias2": float(np.mean((single.mean(axis=0) - truth) ** 2)),
            "bagged_bias2": float(np.mean((bagged.mean(axis=0) - truth) ** 2))}


# --------------------------------------------------------------------------------------
# Small dropout networks whose sub-networks can all be enumerated
# --------------------------------------------------------------------------------------

_CACHE = {}


def _digits():
    from dropout_lab.data import load_digits_split

    if "digits" not in _CACHE:
        _CACHE["digits"] = load_digits_split()
    return _CACHE["digits"]


def _stacked_init(seeds, sizes):
    """Per-seed weights like ``nn.Linear`` (uniform in +-1/sqrt(fan_in)), stacked (S, ...)."""
    import torch

    Ws, bs = [], []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = torch.empty(len(seeds), fan_in, fan_out), torch.empty(len(seeds), 1, fan_out)
        bound = 1.0 / np.sqrt(fan_in)
        for s, seed in enumerate(seeds):
            g = torch.Generator().manual_seed(1000 * int(seed) + layer)
            W[s] = (2 * torch.rand(fan_in, fan_out, generator=g) - 1) * bound
            b[s] = (2 * torch.rand(1, fan_out, generator=g) - 1) * bound
        Ws.append(W.requires_grad_(True))
        bs.append(b.requires_grad_(True))
    return Ws, bs


def _train_stacked(seeds, sizes, p, dropped_layers, steps, lr, batch_size, torch_seed):
    """Train one ReLU MLP per seed, all at once (the loss is a sum over networks and Adam is
    elementwise, so this is the same as training each alone). Dropout (torch's F.dropout,
    drop probability p) follows the ReLU of each hidden layer listed in ``dropped_layers``.
    ``batch_size=None`` trains on the full batch; otherwise each network draws its own
    minibatches (with replacement). Returns float64 numpy weights [(W, b), ...],
    W (S, fan_in, fan_out), b (S, fan_out)."""
    import torch
    import torch.nn.functional as F

    d = _digits()
    X = torch.tensor(d.X_train, dtype=torch.float32)
    y = torch.tensor(d.y_train)
    S = len(seeds)
    with _one_thread():
        torch.manual_seed(torch_seed)
        Ws, bs = _stacked_init(seeds, sizes)
        opt = torch.optim.Adam(Ws + bs, lr=lr)
        gen = torch.Generator().manual_seed(torch_seed)
        for _ in range(steps):
            idx = (torch.arange(len(y)).expand(S, -1) if batch_size is None
                   else torch.randint(0, len(y), (S, batch_size), generator=gen))
            h = X[idx]                                     # (S, batch, 64): own batch per network
            for i, (W, b) in enumerate(zip(Ws, bs)):
                h = torch.baddbmm(b, h, W)
                if i < len(Ws) - 1:
                    h = torch.relu(h)
                    if i in dropped_layers:
                        h = F.dropout(h, p, training=True)
            loss = F.cross_entropy(h.reshape(-1, sizes[-1]), y[idx].reshape(-1), reduction="sum") / idx.shape[1]
            opt.zero_grad()
            loss.backward()
            opt.step()
    return [(W.detach().double().numpy(), b.detach().double().numpy()[:, 0]) for W, b in zip(Ws, bs)]


def train_small_nets(p: float = 0.5, deep: bool = False, seeds=range(10), hidden: int = SMALL_H,
                     steps: int = 1000, lr: float = 1e-2, batch_size: int = 100):
    """64 -> ``hidden`` ReLU -> dropout(p) -> [``hidden`` ReLU ->] 10, one per seed.

    Minibatch Adam on the 1000 training digits (``steps`` minibatches of ``batch_size``
    digits drawn with replacement, a different stream for each network). With ``deep=False`` the dropped layer feeds
    the softmax layer directly; with ``deep=True`` a second ReLU layer (not dropped) sits
    between them. Cached per arguments within a process (callers must not modify the
    weights). Returns the list of stacked float64 (W, b) pairs of :func:`_train_stacked`.
    """
    key = ("small", p, deep, tuple(seeds), hidden, steps, lr, batch_size)
    if key not in _CACHE:
        sizes = (64, hidden, hidden, 10) if deep else (64, hidden, 10)
        _CACHE[key] = _train_stacked(list(seeds), sizes, p, (0,), steps, lr, batch_size, torch_seed=7)
    return _CACHE[key]


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _head(layers, h):
    """Logits from the (already dropped and rescaled) first hidden layer ``h`` (..., H)."""
    z = h @ layers[1][0] + layers[1][1]
    if len(layers) == 3:
        z = np.maximum(z, 0.0) @ layers[2][0] + layers[2][1]
    return z


def _mask_sums(layers, X, p, chunk=512):
    """Running sums over EVERY mask m of the first hidden layer of ONE network, each term
    weighted by the mask's probability (1-p)^kept p^dropped, hidden units scaled by 1/(1-p):
    the probability-weighted sums of softmax outputs, of their squares, of log-softmax
    outputs and of logits, each (N, C); and the hidden layer h (N, H). Masks are the binary
    digits of 0 .. 2^H - 1, built chunk by chunk."""
    h = np.maximum(X @ layers[0][0] + layers[0][1], 0.0)
    N, H = h.shape
    W2, b2 = layers[1]
    # unit j's contribution to every next-layer input of every example: (H, N * fan_out)
    contrib = (h.T[:, :, None] * W2[:, None, :]).reshape(H, -1) / (1 - p)
    sums = {"prob": 0.0, "prob_sq": 0.0, "logprob": 0.0, "logit": 0.0}
    for start in range(0, 2 ** H, chunk):
        codes = np.arange(start, min(start + chunk, 2 ** H))
        m = ((codes[:, None] >> np.arange(H)) & 1).astype(float)       # (chunk, H)
        kept = m.sum(axis=1)
        weight = (1 - p) ** kept * p ** (H - kept)                     # (chunk,)
        z = (m @ contrib).reshape(len(codes), N, -1) + b2              # next layer, every mask
        if len(layers) == 3:
            z = np.maximum(z, 0.0) @ layers[2][0] + layers[2][1]
        shifted = z - z.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=-1, keepdims=True)
        prob = e / total
        terms = {"prob": prob, "prob_sq": prob * prob, "logprob": shifted - np.log(total), "logit": z}
        for name, value in terms.items():                             # weighted sums over masks
            sums[name] = sums[name] + np.tensordot(weight, value, axes=(0, 0))
    return sums, h


def _exact(p, deep, seeds, s):
    """Cached :func:`_mask_sums` of network ``s`` of ``train_small_nets(p, deep, seeds)`` on
    the test digits, with its layers."""
    key = ("exact", p, deep, tuple(seeds), s)
    if key not in _CACHE:
        layers = _net(train_small_nets(p, deep, seeds), s)
        with _one_thread():                      # nested calls keep one thread
            sums, h = _mask_sums(layers, _digits().X_test, p)
        _CACHE[key] = (layers, sums, h)
    return _CACHE[key]


def _net(stacked, s):
    return [(W[s], b[s]) for W, b in stacked]


def _tv(a, b):
    """Total variation distance between rows of two probability arrays: half the L1 distance."""
    return 0.5 * np.abs(a - b).sum(axis=-1)


@_single_threaded
def enumeration_gaps(p: float = 0.5, deep: bool = False, seeds=range(10)):
    """Exact dropout averages of small digits networks against weight scaling.

    For each network of :func:`train_small_nets` and each of the 400 test digits, all
    2^12 masks of the dropped layer are enumerated. Returned arrays are (len(seeds), 400):
    ``geo_vs_ws`` largest |NWGM - weight-scaled| over the 10 classes (NWGM = normalised
    probability-weighted geometric mean of the sub-networks' softmax outputs);
    ``geo_vs_softmax_mean_logit`` the same between the NWGM and softmax(E[logits]);
    ``arith_vs_ws`` total variation distance between the arithmetic mean and the
    weight-scaled output; ``ws_conf`` / ``arith_conf`` their largest probability;
    ``ws_correct`` / ``arith_correct`` whether their argmax is the label; ``disagree``
    whether the two argmaxes differ; ``spread`` how much the sub-networks disagree: the
    square root of the summed variances over masks of the 10 softmax outputs.
    """
    y = _digits().y_test
    keys = ("geo_vs_ws", "geo_vs_softmax_mean_logit", "arith_vs_ws", "ws_conf", "arith_conf",
            "ws_correct", "arith_correct", "disagree", "spread")
    seeds = list(seeds)
    out = {k: np.zeros((len(seeds), len(y))) for k in keys}
    for s in range(len(seeds)):
        layers, sums, h = _exact(p, deep, seeds, s)
        arith = sums["prob"]
        geo = np.exp(_log_softmax(sums["logprob"]))
        ws = np.exp(_log_softmax(_head(layers, h)))
        out["geo_vs_ws"][s] = np.abs(geo - ws).max(axis=1)
        out["geo_vs_softmax_mean_logit"][s] = np.abs(geo - np.exp(_log_softmax(sums["logit"]))).max(axis=1)
        out["arith_vs_ws"][s] = _tv(arith, ws)
        out["ws_conf"][s], out["arith_conf"][s] = ws.max(axis=1), arith.max(axis=1)
        out["ws_correct"][s] = ws.argmax(1) == y
        out["arith_correct"][s] = arith.argmax(1) == y
        out["disagree"][s] = ws.argmax(1) != arith.argmax(1)
        out["spread"][s] = np.sqrt(np.maximum(sums["prob_sq"] - arith ** 2, 0.0).sum(axis=1))
    return out


@_single_threaded
def subnetwork_correlation(p: float = 0.5, seeds=range(10)):
    """How correlated the sub-networks of one trained network are, across training runs.

    A member is (run r, mask m): run r is a network of :func:`train_small_nets` (its own
    initialisation, minibatches and dropout noise; the same data), m a mask drawn with its
    probability. The quantity is the probability a member gives the correct class of a test
    digit. Per digit, ``sigma2`` is its variance over (r, m); two sub-networks of the same
    run with independent masks have covariance Var_r(A_r), the variance over runs of the
    run's exact arithmetic mean A_r; ``rho`` = mean covariance / mean sigma2 (pooled over the
    400 digits); ``within`` the mean variance over masks inside a run (what averaging the
    sub-networks removes) and ``between`` = mean Var_r(A_r) (what it cannot); ``ws_var`` the
    mean variance over runs of the weight-scaled network's probability (one network's
    variance, which K independently trained networks would divide by K).
    """
    y = _digits().y_test
    rows = np.arange(len(y))
    seeds = list(seeds)
    A, second, ws = (np.zeros((len(seeds), len(y))) for _ in range(3))
    for s in range(len(seeds)):
        layers, sums, h = _exact(p, False, seeds, s)
        A[s] = sums["prob"][rows, y]
        second[s] = sums["prob_sq"][rows, y]
        ws[s] = np.exp(_log_softmax(_head(layers, h)))[rows, y]
    within = second - A ** 2                                   # Var over masks, per run
    between = A.var(axis=0, ddof=1)                            # Cov of two sub-nets of one run
    sigma2 = within.mean(axis=0) + between                     # Var over (run, mask)
    return {"sigma2": float(sigma2.mean()), "rho": float(between.mean() / sigma2.mean()),
            "within": float(within.mean()), "between": float(between.mean()),
            "ws_var": float(ws.var(axis=0, ddof=1).mean()), "n_runs": len(seeds)}


@_single_threaded
def mc_convergence_small(p: float = 0.5, ks=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
                         seeds=range(10)):
    """Monte Carlo averages of the small networks' sub-networks against the two targets.

    For each network, k masks are drawn for every test digit (a fresh mask per digit and
    sample, numpy ``rng.random(...) >= p``, seeded by the network's index) and the softmax
    outputs of the thinned networks (kept units scaled by 1/(1-p)) averaged. Returns ``ks``
    and (len(seeds), len(ks)) arrays of the mean total variation distance over the 400
    digits from the exact arithmetic mean (``to_arith``) and from the weight-scaled network
    (``to_ws``); ``gap`` (len(seeds),) is the mean distance between those two targets.
    """
    seeds = list(seeds)
    ks = np.asarray(list(ks))
    to_arith, to_ws = np.zeros((len(seeds), len(ks))), np.zeros((len(seeds), len(ks)))
    gap = np.zeros(len(seeds))
    for s in range(len(seeds)):
        layers, sums, h = _exact(p, False, seeds, s)
        arith = sums["prob"]
        ws = np.exp(_log_softmax(_head(layers, h)))
        gap[s] = _tv(arith, ws).mean()
        rng = np.random.default_rng(5000 + s)
        total, done = np.zeros_like(arith), 0
        for j, k in enumerate(ks):
            for start in range(done, k, 100):
                n = min(100, k - start)
                keep = rng.random((n,) + h.shape) >= p
                total += np.exp(_log_softmax(_head(layers, h[None] * keep / (1 - p)))).sum(axis=0)
            done = k
            to_arith[s, j] = _tv(total / k, arith).mean()
            to_ws[s, j] = _tv(total / k, ws).mean()
    return {"ks": ks, "to_arith": to_arith, "to_ws": to_ws, "gap": gap}


# --------------------------------------------------------------------------------------
# Monte Carlo averaging on a trained digits network (Srivastava et al., Fig. 11)
# --------------------------------------------------------------------------------------

def train_digits_mc_nets(p: float = 0.5, seeds=range(3), hidden: int = 100, steps: int = 1500,
                         lr: float = 2e-3, batch_size: int = 32):
    """64 -> hidden -> hidden -> 10 ReLU networks with dropout(p) after both hidden layers
    (as in Srivastava et al.'s MNIST networks; inputs are not dropped), minibatch Adam, one
    per seed, trained together. Cached within a process."""
    key = ("mc", p, tuple(seeds), hidden, steps, lr, batch_size)
    if key not in _CACHE:
        _CACHE[key] = _train_stacked(list(seeds), (64, hidden, hidden, 10), p, (0, 1), steps, lr,
                                     batch_size, torch_seed=11)
    return _CACHE[key]


def mc_accuracy(p: float = 0.5, ks=MC_KS, seeds=range(3), repeats: int = 3):
    """Test accuracy of Monte Carlo dropout averaging with k samples, against weight scaling.

    For each network of :func:`train_digits_mc_nets` and repeat, the softmax outputs of
    ``max(ks)`` dropout passes over the 400 test digits (torch's F.dropout, fresh masks for
    every digit and pass) are averaged cumulatively. Returns ``ks``; ``acc`` and
    ``agree_ws`` (len(seeds) * repeats, len(ks)): test accuracy of the k-sample average and
    the fraction of digits on which its argmax equals the weight-scaled network's; ``ws_acc``
    (len(seeds),) the weight-scaled network's accuracy; ``ws_acc_rows`` the same repeated for
    each row of ``acc``.
    """
    import torch
    import torch.nn.functional as F

    d = _digits()
    stacked = train_digits_mc_nets(p, seeds)
    X = torch.tensor(d.X_test)
    y = torch.tensor(d.y_test)
    ks = np.asarray(list(ks))
    S = len(stacked[0][0])
    acc = np.zeros((S * repeats, len(ks)))
    agree = np.zeros((S * repeats, len(ks)))
    ws_acc = np.zeros(S)
    with _one_thread(), torch.no_grad():
        for s in range(S):
            layers = [(torch.tensor(W[s]), torch.tensor(b[s])) for W, b in stacked]

            def forward(train):
                h = X
                for i, (W, b) in enumerate(layers):
                    h = h @ W + b
                    if i < len(layers) - 1:
                        h = F.dropout(torch.relu(h), p, training=train)
                return h.softmax(1)

            ws_pred = forward(False).argmax(1)
            ws_acc[s] = float((ws_pred == y).double().mean())
            for r in range(repeats):
                torch.manual_seed(100 * s + r)
                total = torch.zeros(len(y), 10, dtype=torch.float64)
                done = 0
                for j, k in enumerate(ks):
                    for _ in range(k - done):
                        total += forward(True)
                    done = k
                    pred = total.argmax(1)
                    acc[s * repeats + r, j] = float((pred == y).double().mean())
                    agree[s * repeats + r, j] = float((pred == ws_pred).double().mean())
    return {"ks": ks, "acc": acc, "agree_ws": agree, "ws_acc": ws_acc,
            "ws_acc_rows": np.repeat(ws_acc, repeats)}
