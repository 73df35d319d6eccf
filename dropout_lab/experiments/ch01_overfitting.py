"""Experiments behind chapter 01's figures (overfitting and classical regularisers).

Public code only, never a solution of a graded exercise: polynomial design matrices
come from ``numpy.polynomial.polynomial.polyvander``, least-squares fits from
``np.linalg.lstsq``, ridge fits from scikit-learn's ``Ridge``, weight decay from
torch's optimisers (``weight_decay=``), dropout from torch's built-in
``torch.nn.functional.dropout``. Where a penalty is added to a loss it is written
inline in the training loop, on the weight matrices only.

Every function is seeded and returns plain numbers or arrays, with one row per seed
where a spread is reported; ``tests/test_claims_ch01_overfitting.py`` asserts every
claim the prose page makes about them.

The noisy sine wave (:func:`sine_curve`, :func:`sine_train_set`,
:func:`sine_eval_set`) is the course's regression toy problem; chapter 2 (Ensembles)
uses the same curve for bagging.
"""
from __future__ import annotations

from dropout_lab.experiments.threads import one_thread
import itertools

import numpy as np

#: Standard deviation of the noise added to the sine wave; the best possible
#: mean squared error on fresh data is SINE_NOISE**2 = 0.09.
SINE_NOISE = 0.3


# --------------------------------------------------------------------------------------
# The noisy sine wave and polynomial fits
# --------------------------------------------------------------------------------------

def sine_curve(x):
    """The true regression function, sin(pi x) on [-1, 1] (one full period)."""
    return np.sin(np.pi * np.asarray(x, dtype=float))


def sine_train_set(n: int, seed: int, noise: float = SINE_NOISE):
    """``n`` equally spaced inputs on [-1, 1] with noisy targets sin(pi x) + noise * N(0, 1)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1.0, 1.0, n)
    return x, sine_curve(x) + noise * rng.normal(size=n)


def sine_eval_set(n: int, seed: int, noise: float = SINE_NOISE):
    """``n`` inputs drawn uniformly on [-1, 1] with noisy targets (a validation or test set)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, n)
    return x, sine_curve(x) + noise * rng.normal(size=n)


def _design(x, degree):
    from numpy.polynomial import polynomial as P

    return P.polyvander(np.asarray(x, dtype=float), degree)


def _seed_sets(seed, n_train, n_val, n_test):
    """Training, validation and test sets of one seed (three independent streams)."""
    return (sine_train_set(n_train, 3 * seed), sine_eval_set(n_val, 3 * seed + 1),
            sine_eval_set(n_test, 3 * seed + 2))


def degree_sweep(degrees=range(16), n_train: int = 12, n_val: int = 500, n_test: int = 1000,
                 seeds=range(20)):
    """Least-squares polynomial fits of every degree, one fresh data set per seed.

    Each seed draws ``n_train`` equally spaced training points, ``n_val`` validation
    and ``n_test`` test points. Degrees with more coefficients than points are fitted
    by ``np.linalg.lstsq``'s minimum-norm solution. Returns ``degrees`` and
    ``train_mse``, ``val_mse``, ``test_mse`` of shape (len(seeds), len(degrees)).
    """
    degrees = np.asarray(list(degrees))
    out = {k: np.zeros((len(seeds), len(degrees))) for k in ("train_mse", "val_mse", "test_mse")}
    for i, seed in enumerate(seeds):
        (x, y), (xv, yv), (xt, yt) = _seed_sets(seed, n_train, n_val, n_test)
        for j, d in enumerate(degrees):
            w = np.linalg.lstsq(_design(x, d), y, rcond=None)[0]
            out["train_mse"][i, j] = np.mean((_design(x, d) @ w - y) ** 2)
            out["val_mse"][i, j] = np.mean((_design(xv, d) @ w - yv) ** 2)
            out["test_mse"][i, j] = np.mean((_design(xt, d) @ w - yt) ** 2)
    out["degrees"] = degrees
    return out


def selected_degree(sweep):
    """Per seed: the degree with the lowest validation error, its validation error and its
    test error (the honest estimate of how the selected model does on new data)."""
    best = np.argmin(sweep["val_mse"], axis=1)
    rows = np.arange(len(best))
    return {"degree": sweep["degrees"][best], "val_mse": sweep["val_mse"][rows, best],
            "test_mse": sweep["test_mse"][rows, best]}


def _ridge_coef(X, y, lam, penalise_intercept=True):
    """scikit-learn's Ridge, minimising ||y - X w||^2 + lam ||w||^2.

    With ``penalise_intercept=False`` the first column (the constant) is left out of
    the penalty: scikit-learn fits it separately (``fit_intercept=True``).
    """
    from sklearn.linear_model import Ridge

    if penalise_intercept:
        return Ridge(alpha=lam, fit_intercept=False).fit(X, y).coef_
    r = Ridge(alpha=lam, fit_intercept=True).fit(X[:, 1:], y)
    return np.concatenate([[r.intercept_], r.coef_])


def ridge_sweep(lams=None, degree: int = 15, n_train: int = 12, n_val: int = 500, seeds=range(20)):
    """Ridge fits of a degree-``degree`` polynomial (every coefficient penalised) over a grid
    of ``lams``. Returns ``lams`` and ``train_mse``, ``val_mse``, ``coef_norm`` (the
    Euclidean length of the coefficient vector), each (len(seeds), len(lams))."""
    lams = np.logspace(-10, 2, 25) if lams is None else np.asarray(lams, dtype=float)
    out = {k: np.zeros((len(seeds), len(lams))) for k in ("train_mse", "val_mse", "coef_norm")}
    for i, seed in enumerate(seeds):
        (x, y), (xv, yv), _ = _seed_sets(seed, n_train, n_val, 1)
        X, Xv = _design(x, degree), _design(xv, degree)
        for j, lam in enumerate(lams):
            w = _ridge_coef(X, y, lam)
            out["train_mse"][i, j] = np.mean((X @ w - y) ** 2)
            out["val_mse"][i, j] = np.mean((Xv @ w - yv) ** 2)
            out["coef_norm"][i, j] = np.linalg.norm(w)
    out["lams"] = lams
    return out


def ridge_curves(lams=(0.0, 1e-6, 1e-2, 1.0, 100.0), degree: int = 15, n_train: int = 12,
                 seed: int = 0, n_grid: int = 400):
    """Fitted degree-``degree`` curves of one training set (seed ``seed``) for several lams.

    lam = 0 is the minimum-norm least-squares fit. Returns ``x``, ``y`` (the training
    points), ``grid`` and ``curves`` (len(lams), n_grid).
    """
    (x, y), _, _ = _seed_sets(seed, n_train, 1, 1)
    X = _design(x, degree)
    grid = np.linspace(-1, 1, n_grid)
    G = _design(grid, degree)
    curves = []
    for lam in lams:
        w = np.linalg.lstsq(X, y, rcond=None)[0] if lam == 0 else _ridge_coef(X, y, lam)
        curves.append(G @ w)
    return {"x": x, "y": y, "grid": grid, "curves": np.array(curves), "lams": np.asarray(lams)}


def intercept_effect(offset: float = 3.0, lam: float = 1.0, degree: int = 15, n_train: int = 12,
                     n_val: int = 500, seeds=range(20)):
    """What penalising the intercept does, on the sine wave and on the sine wave shifted by ``offset``.

    For each seed fits ridge (strength ``lam``) with and without a penalty on the constant
    coefficient, to targets y and y + offset. Returns, per seed, the validation MSE of
    each of the four fits (keys ``pen``, ``free``, ``pen_shift``, ``free_shift``) and the
    largest |f_shift(x) - f(x) - offset| over the validation inputs, for both choices
    (``equivariance_pen``, ``equivariance_free``): 0 means shifting the targets shifts
    the fit by exactly the same amount.
    """
    keys = ("pen", "free", "pen_shift", "free_shift", "equivariance_pen", "equivariance_free")
    out = {k: np.zeros(len(seeds)) for k in keys}
    for i, seed in enumerate(seeds):
        (x, y), (xv, yv), _ = _seed_sets(seed, n_train, n_val, 1)
        X, Xv = _design(x, degree), _design(xv, degree)
        for name, pen in (("pen", True), ("free", False)):
            f = Xv @ _ridge_coef(X, y, lam, pen)
            fs = Xv @ _ridge_coef(X, y + offset, lam, pen)
            out[name][i] = np.mean((f - yv) ** 2)
            out[name + "_shift"][i] = np.mean((fs - (yv + offset)) ** 2)
            out["equivariance_" + name][i] = np.max(np.abs(fs - f - offset))
    return out


# --------------------------------------------------------------------------------------
# Early stopping as an implicit L2 penalty, on a quadratic
# --------------------------------------------------------------------------------------

def gd_vs_ridge_shrinkage(steps=(10, 100, 1000), n: int = 200, d: int = 20, lr=None, seed: int = 0):
    """Gradient descent from w = 0 on the least-squares loss (1/2n)||X w - y||^2, against ridge.

    X has columns of very different scales, so the Hessian H = X^T X / n has eigenvalues
    spread over four decades. The GD iterate is computed by actually iterating; the ridge
    solution of (1/2n)||X w - y||^2 + (alpha/2)||w||^2 by scikit-learn (whose objective is
    the same up to the factor n). Both are projected onto H's eigenvectors and divided by
    the least-squares solution's projections: the measured *shrinkage factor* of each
    eigen-direction (1 = fitted fully, 0 = left at the starting point).

    Returns ``eig`` (d,), ``lr``, ``steps``, ``gd`` (len(steps), d), ``ridge``
    (len(steps), d) for alpha = 1 / (lr * t), the formulas ``gd_formula`` =
    1 - (1 - lr eig)^t and ``ridge_formula`` = eig / (eig + alpha), and the distances
    ``dist_gd_ridge`` and ``dist_gd_ols`` (||w_t - w_ridge|| and ||w_t - w_ols||,
    relative to ||w_ols||), each (len(steps),).
    """
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(seed)
    scales = np.logspace(0, -2, d)
    X = rng.normal(size=(n, d)) * scales
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    H = X.T @ X / n
    eig, V = np.linalg.eigh(H)
    lr = 1.0 / eig.max() if lr is None else lr
    w_ols = np.linalg.lstsq(X, y, rcond=None)[0]
    ref = V.T @ w_ols
    out = {k: [] for k in ("gd", "ridge", "dist_gd_ridge", "dist_gd_ols")}
    w, done = np.zeros(d), 0
    for t in steps:
        for _ in range(t - done):
            w = w - lr * (X.T @ (X @ w - y)) / n
        done = t
        alpha = 1.0 / (lr * t)
        w_r = Ridge(alpha=n * alpha, fit_intercept=False, solver="cholesky").fit(X, y).coef_
        out["gd"].append(V.T @ w / ref)
        out["ridge"].append(V.T @ w_r / ref)
        out["dist_gd_ridge"].append(np.linalg.norm(w - w_r) / np.linalg.norm(w_ols))
        out["dist_gd_ols"].append(np.linalg.norm(w - w_ols) / np.linalg.norm(w_ols))
    out = {k: np.array(v) for k, v in out.items()}
    t = np.asarray(steps, dtype=float)[:, None]
    out.update(eig=eig, lr=lr, steps=np.asarray(steps),
               gd_formula=1 - (1 - lr * eig[None, :]) ** t,
               ridge_formula=eig[None, :] / (eig[None, :] + 1 / (lr * t)))
    return out


# --------------------------------------------------------------------------------------
# Small MLPs on digits, several trained at once
# --------------------------------------------------------------------------------------

def _one_thread():
    """torch on one thread (see dropout_lab.experiments.threads)."""
    return one_thread(numpy_too=False)


def _runs(values):
    """Consecutive runs of equal values: [(start, stop, value), ...]."""
    out, start = [], 0
    for value, group in itertools.groupby(values):
        k = len(list(group))
        out.append((start, start + k, value))
        start += k
    return out


def _make_batched_mlp(seeds, sizes, p_input, p_hidden):
    """S independent ReLU MLPs stored as stacked weights (S, fan_in, fan_out).

    Network s is initialised from its own seed like ``nn.Linear`` (uniform in
    +-1/sqrt(fan_in)); its layers apply torch's dropout with its own p. Training the
    stack with one optimiser is the same as training each network alone, because the
    loss is a sum of the networks' losses and every optimiser here is elementwise.
    """
    import torch
    import torch.nn.functional as F

    class BatchedMLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = torch.nn.ParameterList()
            self.biases = torch.nn.ParameterList()
            for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                W, b = torch.empty(len(seeds), fan_in, fan_out), torch.empty(len(seeds), 1, fan_out)
                bound = 1.0 / np.sqrt(fan_in)
                for s, seed in enumerate(seeds):
                    g = torch.Generator().manual_seed(10_000 * int(seed) + layer)
                    W[s] = (2 * torch.rand(fan_in, fan_out, generator=g) - 1) * bound
                    b[s] = (2 * torch.rand(1, fan_out, generator=g) - 1) * bound
                self.weights.append(torch.nn.Parameter(W))
                self.biases.append(torch.nn.Parameter(b))
            self.runs_in, self.runs_hidden = _runs(list(p_input)), _runs(list(p_hidden))

        def _drop(self, h, runs):
            if not self.training or all(p == 0 for _, _, p in runs):
                return h
            return torch.cat([F.dropout(h[a:b], p, training=True) if p > 0 else h[a:b]
                              for a, b, p in runs])

        def forward(self, x):
            h = self._drop(x, self.runs_in)
            last = len(self.weights) - 1
            for i, (W, b) in enumerate(zip(self.weights, self.biases)):
                h = torch.baddbmm(b, h, W)
                if i < last:
                    h = self._drop(torch.relu(h), self.runs_hidden)
            return h

    return BatchedMLP()


def train_digits_nets(seeds, n_train: int, *, p_input=None, p_hidden=None, l2=None, l1=None,
                      label_noise=None, hidden=(256,), steps: int = 1000, batch_size: int = 32, optimizer: str = "adam",
                      lr: float = 2e-3, record_every: int | None = None, torch_seed: int = 0):
    """Train one MLP per entry of ``seeds`` on ``n_train`` digits, all at once.

    Network s trains on ``split.subset(n_train, seed=seeds[s])`` of the course's digits
    split, starting from weights drawn with its seed, with its own input/hidden drop
    probabilities (``p_input[s]``, ``p_hidden[s]``, default 0) and its own penalty
    strengths: ``l2[s]`` adds (l2/2) * sum of squared weights, ``l1[s]`` adds
    l1 * sum of |weights| to its loss (weight matrices only, never biases). With
    ``label_noise[s] = q``, a fraction q of its training labels (chosen with its seed) is
    replaced by a different class drawn at random; validation and test labels stay clean.
    Minibatch
    ``optimizer`` ("adam" or "sgd" with momentum 0.9) for ``steps`` steps.

    Returns a dict of arrays with one entry per network: final ``train_loss``,
    ``train_err``, ``val_loss``, ``val_err``, ``test_loss``, ``test_err`` and
    ``heldout_err`` (validation and test images together), all measured with dropout
    off; ``weights``: the list of final weight matrices, each (S, fan_in, fan_out); and,
    when ``record_every`` is set, a ``history`` dict with the same metrics every
    ``record_every`` steps, each (n_records, S), and ``history["step"]``.
    """
    import torch
    import torch.nn.functional as F

    from dropout_lab.data import load_digits_split

    S = len(seeds)
    p_input = [0.0] * S if p_input is None else list(p_input)
    p_hidden = [0.0] * S if p_hidden is None else list(p_hidden)
    l2 = torch.tensor([0.0] * S if l2 is None else list(l2), dtype=torch.float32)
    l1 = torch.tensor([0.0] * S if l1 is None else list(l1), dtype=torch.float32)
    split = load_digits_split()
    subsets = [split.subset(n_train, seed=int(s)) for s in seeds]

    def t(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.float32)

    X = t(np.stack([u.X_train for u in subsets]))
    labels = np.stack([u.y_train for u in subsets])
    for s, q in enumerate([0.0] * S if label_noise is None else label_noise):
        if q > 0:
            rng = np.random.default_rng(100_000 + int(seeds[s]))
            flip = rng.permutation(n_train)[:int(round(q * n_train))]
            labels[s, flip] = (labels[s, flip] + rng.integers(1, split.n_classes, len(flip))) % split.n_classes
    Y = torch.as_tensor(labels)
    sets = {"train": (X, Y)}
    for name, (Xe, ye) in {"val": (split.X_val, split.y_val), "test": (split.X_test, split.y_test)}.items():
        sets[name] = (t(Xe).expand(S, -1, -1), torch.as_tensor(ye).expand(S, -1))
    n_val, n_test = len(split.y_val), len(split.y_test)

    with _one_thread():
        torch.manual_seed(torch_seed)  # torch's dropout draws its masks from the global generator
        net = _make_batched_mlp(list(seeds), (split.n_features,) + tuple(hidden) + (split.n_classes,),
                                p_input, p_hidden)
        if optimizer == "adam":
            opt = torch.optim.Adam(net.parameters(), lr=lr)
        elif optimizer == "sgd":
            opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
        else:
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")

        def evaluate():
            net.eval()
            res = {}
            with torch.no_grad():
                for name, (Xe, ye) in sets.items():
                    logits = net(Xe)
                    ce = F.cross_entropy(logits.transpose(1, 2), ye, reduction="none").mean(1)
                    res[name + "_loss"] = ce.numpy().copy()
                    res[name + "_err"] = (logits.argmax(-1) != ye).float().mean(1).numpy().copy()
            for k in ("loss", "err"):  # validation and test images together
                res["heldout_" + k] = (n_val * res["val_" + k] + n_test * res["test_" + k]) / (n_val + n_test)
            net.train()
            return res

        order = torch.Generator().manual_seed(torch_seed + 1)
        rows = torch.arange(S)[:, None]
        bs = min(batch_size, n_train)
        perm, pos = None, n_train
        history = []
        net.train()
        for step in range(steps + 1):
            if record_every and step % record_every == 0:
                history.append(evaluate())
            if step == steps:
                break
            if pos + bs > n_train:  # a new epoch: a fresh order for every network
                perm, pos = torch.argsort(torch.rand(S, n_train, generator=order), dim=1), 0
            idx = perm[:, pos:pos + bs]
            pos += bs
            logits = net(X[rows, idx])
            loss = F.cross_entropy(logits.transpose(1, 2), Y[rows, idx], reduction="none").mean(1)
            for W in net.weights:  # penalties, written inline (weights only)
                loss = loss + 0.5 * l2 * W.pow(2).sum((1, 2)) + l1 * W.abs().sum((1, 2))
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
        out = evaluate()
        out["weights"] = [W.detach().numpy().copy() for W in net.weights]
    if record_every:
        out["history"] = {k: np.array([h[k] for h in history]) for k in history[0]}
        out["history"]["step"] = np.arange(len(history)) * record_every
    return out


#: The three penalties of :func:`penalty_histograms`: name -> (l2, l1).
PENALTIES = {"no penalty": (0.0, 0.0), "L2, λ = 1e-3": (1e-3, 0.0), "L1, λ = 1e-4": (0.0, 1e-4)}


def penalty_histograms(seeds=(0, 1, 2), n_train: int = 1000, steps: int = 1500,
                       bins=None, penalties=None):
    """The first-layer weights of a 64-256-10 digits MLP trained with each penalty.

    SGD with momentum (lr 0.05, batch 32, ``steps`` steps) on ``n_train`` digits, one
    network per (penalty, seed). Returns ``bins`` (edges on |w|, log-spaced),
    and per penalty name: ``density`` (len(seeds), len(bins) - 1), the fraction of
    first-layer weights per bin divided by the bin's width in log10 units; ``rms``,
    ``frac_small`` (|w| < 1e-3), ``frac_dead_small`` (the same over the weights of
    the input pixels that are 0 in every training image), ``n_dead_pixels`` and
    ``heldout_err``, each (len(seeds),).
    """
    penalties = PENALTIES if penalties is None else penalties
    bins = np.logspace(-6, 0.5, 27) if bins is None else np.asarray(bins)
    names = list(penalties)
    all_seeds = [s for _ in names for s in seeds]
    res = train_digits_nets(all_seeds, n_train, l2=[penalties[k][0] for k in names for _ in seeds],
                            l1=[penalties[k][1] for k in names for _ in seeds], steps=steps,
                            optimizer="sgd", lr=0.05)
    from dropout_lab.data import load_digits_split

    split = load_digits_split()
    W1 = res["weights"][0]
    out = {"bins": bins, "names": names}
    width = np.diff(np.log10(bins))
    for k, name in enumerate(names):
        sl = slice(k * len(seeds), (k + 1) * len(seeds))
        w = W1[sl]
        dead = np.array([~split.subset(n_train, seed=int(s)).X_train.any(axis=0) for s in seeds])
        dens = [np.histogram(np.abs(wi).ravel(), bins=bins)[0] / wi.size / width for wi in w]
        out[name] = {
            "density": np.array(dens),
            "rms": np.sqrt((w ** 2).mean(axis=(1, 2))),
            "frac_small": (np.abs(w) < 1e-3).mean(axis=(1, 2)),
            "frac_dead_small": np.array([(np.abs(wi[di]) < 1e-3).mean() for wi, di in zip(w, dead)]),
            "n_dead_pixels": dead.sum(axis=1),
            "heldout_err": res["heldout_err"][sl],
        }
    return out


def decay_vs_l2(steps: int = 50, lam: float = 1e-2, n_train: int = 200, seed: int = 0):
    """Weight decay in the optimiser against an L2 term in the loss, in float64.

    A 64-32-10 ReLU MLP (``nn.Sequential``) is trained full-batch for ``steps`` steps
    from one initialisation in five ways: SGD (momentum 0.9, lr 0.1) with
    ``weight_decay=lam``; the same SGD with (lam/2)||theta||^2 added to the loss; Adam
    (lr 1e-2) with ``weight_decay=lam``; Adam with the L2 term in the loss; AdamW with
    ``weight_decay=lam``. Every parameter is decayed or penalised. Returns the largest
    absolute difference between the final parameters of the pairs ``sgd`` (decay vs
    L2), ``adam`` (decay vs L2), ``adam_vs_adamw`` (L2 in the loss vs decoupled) and
    the size of the parameters (largest |theta| after Adam).
    """
    import torch
    from torch import nn

    from dropout_lab.data import load_digits_split

    split = load_digits_split()
    X = torch.as_tensor(split.X_train[:n_train])
    y = torch.as_tensor(split.y_train[:n_train])

    def run(opt_name, decay_in_optimiser):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).double()
        kw = {"weight_decay": lam} if decay_in_optimiser else {}
        if opt_name == "sgd":
            opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, **kw)
        elif opt_name == "adam":
            opt = torch.optim.Adam(net.parameters(), lr=1e-2, **kw)
        else:
            opt = torch.optim.AdamW(net.parameters(), lr=1e-2, **kw)
        for _ in range(steps):
            loss = nn.functional.cross_entropy(net(X), y)
            if not decay_in_optimiser:
                # the L2 term of this one network, layer by layer (not a general penalty function)
                first, last = net[0], net[2]
                loss = loss + 0.5 * lam * ((first.weight ** 2).sum() + (first.bias ** 2).sum()
                                           + (last.weight ** 2).sum() + (last.bias ** 2).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
        return torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    with _one_thread():
        sgd_decay, sgd_l2 = run("sgd", True), run("sgd", False)
        adam_decay, adam_l2 = run("adam", True), run("adam", False)
        adamw = run("adamw", True)
    return {"sgd": float((sgd_decay - sgd_l2).abs().max()),
            "adam": float((adam_decay - adam_l2).abs().max()),
            "adam_vs_adamw": float((adam_l2 - adamw).abs().max()),
            "param_scale": float(adam_l2.abs().max())}


def early_stopping_curves(seeds=range(5), n_train: int = 300, epochs: int = 100, batch_size: int = 30,
                          label_noise=(0.0, 0.2)):
    """Learning curves of an unregularised 64-256-10 MLP (Adam, lr 2e-3) on ``n_train`` digits,
    once with clean training labels and once with a fraction of them replaced by wrong ones.

    For each ``q`` in ``label_noise``, one network per seed (the same subsets and initial
    weights for every q). Recorded once per epoch (``n_train / batch_size`` steps), with
    dropout off, against clean validation and test labels. Returns ``epoch`` and, per q, a
    dict with ``train_err`` (against the labels the network trained on), ``train_loss``,
    ``val_err``, ``val_loss``, ``test_err``, each (epochs + 1, len(seeds)) (row 0: the
    untrained network), and per seed: ``best_epoch`` (argmin of the validation loss over
    the whole run), ``test_err_best`` / ``test_err_last`` (test error of the weights at the
    best and at the last epoch, both recorded during the run), ``val_err_best`` and
    ``val_err_last``.
    """
    seeds = list(seeds)
    steps_per_epoch = n_train // batch_size
    res = train_digits_nets(seeds * len(label_noise), n_train, steps=epochs * steps_per_epoch,
                            batch_size=batch_size, record_every=steps_per_epoch,
                            label_noise=[q for q in label_noise for _ in seeds])
    h = res["history"]
    out = {"epoch": h["step"] // steps_per_epoch, "label_noise": tuple(label_noise)}
    rows = np.arange(len(seeds))
    for k, q in enumerate(label_noise):
        sl = slice(k * len(seeds), (k + 1) * len(seeds))
        d = {key: h[key][:, sl] for key in ("train_err", "train_loss", "val_err", "val_loss", "test_err")}
        best = np.argmin(d["val_loss"], axis=0)
        d.update(best_epoch=best, test_err_best=d["test_err"][best, rows], test_err_last=d["test_err"][-1],
                 val_err_best=d["val_err"][best, rows], val_err_last=d["val_err"][-1])
        out[q] = d
    return out


#: Training steps per training-set size in :func:`data_size_dropout` (batch 32):
#: about 128, 85 and 51 epochs. Every network, with or without dropout, ends with a
#: training error below 0.5% (measured without dropout).
DATA_SIZE_STEPS = {100: 400, 300: 800, 1000: 1600}

#: The conditions of :func:`data_size_dropout`: name -> (p_input, p_hidden).
DROPOUT_CONDITIONS = {"no dropout": (0.0, 0.0), "dropout p = 0.5": (0.0, 0.5)}


def data_size_dropout(sizes=(100, 300, 1000), seeds=range(5), hidden=(256,), steps=None):
    """A 64-256-10 MLP on 100 / 300 / 1000 digits, without dropout and with hidden dropout.

    For each size, one network per (condition, seed) of :data:`DROPOUT_CONDITIONS`;
    networks of the same seed share their training subset, initial weights and
    minibatch order, so the comparison is paired. Adam (lr 2e-3, batch 32) for
    :data:`DATA_SIZE_STEPS` steps. Returns ``sizes``, ``names`` and per condition name
    arrays (len(sizes), len(seeds)): ``train_err``, ``heldout_err`` (the 797 validation
    and test images: nothing is selected on them here), ``gap`` (held-out minus training
    error), ``train_loss`` and ``heldout_loss``.
    """
    steps = DATA_SIZE_STEPS if steps is None else steps
    names = list(DROPOUT_CONDITIONS)
    seeds = list(seeds)
    out = {"sizes": np.asarray(sizes), "names": names}
    for name in names:
        out[name] = {k: np.zeros((len(sizes), len(seeds)))
                     for k in ("train_err", "heldout_err", "gap", "train_loss", "heldout_loss")}
    for i, n in enumerate(sizes):
        res = train_digits_nets(seeds * len(names), n,
                                p_input=[DROPOUT_CONDITIONS[k][0] for k in names for _ in seeds],
                                p_hidden=[DROPOUT_CONDITIONS[k][1] for k in names for _ in seeds],
                                hidden=hidden, steps=steps[n], torch_seed=n)
        for k, name in enumerate(names):
            sl = slice(k * len(seeds), (k + 1) * len(seeds))
            d = out[name]
            d["train_err"][i], d["heldout_err"][i] = res["train_err"][sl], res["heldout_err"][sl]
            d["train_loss"][i], d["heldout_loss"][i] = res["train_loss"][sl], res["heldout_loss"][sl]
            d["gap"][i] = res["heldout_err"][sl] - res["train_err"][sl]
    return out
