"""Experiments behind chapter 04's figures (scaling maths).

Public code: dropout here is torch's built-in ``torch.nn.functional.dropout``
(inverted dropout) and closed-form formulas, never a solution of the graded
exercises. Every function is seeded and returns plain numbers/arrays, with one
row per seed where a spread is reported; ``tests/test_claims_ch04_scaling.py``
asserts every claim the prose page makes about them.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _torch_dropout_samples(x_value: float, p: float, n: int, seed: int) -> np.ndarray:
    """n outputs of torch's inverted dropout applied to the scalar x_value."""
    torch.manual_seed(seed)
    x = torch.full((n,), float(x_value), dtype=torch.float64)
    return F.dropout(x, p=p, training=True).numpy()


def mc_convergence(x_value=1.0, p=0.5, ns=None, seeds=range(10)):
    """Relative errors of Monte Carlo mean and variance against the formulas.

    Returns a dict: ``ns`` (sample counts), ``mean_err`` and ``var_err`` of
    shape (n_seeds, len(ns)) with |estimate - formula| / formula-scale (the
    mean error is divided by |x|, the variance error by x^2 p/(1-p)), and
    ``se_mean``: the standard error of the mean relative to |x|,
    sqrt(p / ((1-p) n)), the 1/sqrt(n) reference line.
    """
    ns = np.unique(np.logspace(1, 5, 17).astype(int)) if ns is None else np.asarray(ns)
    # The scalar formulas the page derives (the exercise asks for the elementwise version).
    mean_true, var_true = float(x_value), float(x_value) ** 2 * p / (1 - p)
    mean_err, var_err = [], []
    for seed in seeds:
        y = _torch_dropout_samples(x_value, p, int(ns.max()), seed)
        c1, c2 = np.cumsum(y), np.cumsum(y * y)
        m = c1[ns - 1] / ns
        v = c2[ns - 1] / ns - m**2
        mean_err.append(np.abs(m - mean_true) / abs(x_value))
        var_err.append(np.abs(v - var_true) / var_true)
    return {"ns": ns, "mean_err": np.array(mean_err), "var_err": np.array(var_err),
            "se_mean": np.sqrt(p / ((1 - p) * ns))}


def loglog_slope(ns, errors):
    """Least-squares slope of log(mean error over seeds) against log(n)."""
    return float(np.polyfit(np.log(ns), np.log(np.mean(errors, axis=0)), 1)[0])


def standard_vs_inverted(p=0.5, d_in=20, d_out=8, n_samples=20000, seed=0):
    """A linear layer fed by a dropped-out input, in both conventions.

    The inverted network has weights W; the standard network trained to the
    same function has weights W / (1 - p) (it never rescales in training, so
    its next layer learns to be 1/(1-p) larger). Returns the Monte Carlo mean
    of each network's training-time output and each one's test-time output,
    all of shape (d_out,).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(d_in, generator=g, dtype=torch.float64)
    W = torch.randn(d_out, d_in, generator=g, dtype=torch.float64) / np.sqrt(d_in)
    W_std = W / (1 - p)
    torch.manual_seed(seed + 1)
    y_inv = F.dropout(x.expand(n_samples, d_in), p=p, training=True)  # x * m / (1 - p)
    y_std = y_inv * (1 - p)                                             # x * m: standard dropout
    return {
        "inverted_train_mean": (y_inv @ W.T).mean(0).numpy(),
        "inverted_test": (W @ x).numpy(),                      # no scaling at test time
        "standard_train_mean": (y_std @ W_std.T).mean(0).numpy(),
        "standard_test": (W_std @ (x * (1 - p))).numpy(),      # scale by keep at test time
        "se": ((y_inv @ W.T).std(0) / np.sqrt(n_samples)).numpy(),
    }


def nonlinearity_gap(ps=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), d_in=50, d_out=50,
                     n_samples=4000, seeds=range(5)):
    """Weight scaling vs the true dropout average behind a ReLU.

    For each seed, a random input x (d_in,) and weights W (d_out, d_in); inputs
    are dropped with torch's inverted dropout. Returns, per (seed, p):
    ``relu_gap``  mean over units of E[relu(W y)] - relu(W E[y]) (>= 0 by Jensen),
    ``linear_gap`` mean over units of |E[W y] - W E[y]| (0 up to Monte Carlo noise),
    both divided by the mean |W x| so they read as fractions of a typical
    pre-activation.
    """
    relu_gap, linear_gap = [], []
    for seed in seeds:
        g = torch.Generator().manual_seed(1000 + seed)
        x = torch.randn(d_in, generator=g, dtype=torch.float64)
        W = torch.randn(d_out, d_in, generator=g, dtype=torch.float64) / np.sqrt(d_in)
        scale = float((W @ x).abs().mean())
        rg, lg = [], []
        for p in ps:
            torch.manual_seed(seed * 1000 + int(p * 100))
            y = F.dropout(x.expand(n_samples, d_in), p=p, training=True)
            z = y @ W.T
            rg.append(float((torch.relu(z).mean(0) - torch.relu(W @ x)).mean()) / scale)
            lg.append(float((z.mean(0) - W @ x).abs().mean()) / scale)
        relu_gap.append(rg)
        linear_gap.append(lg)
    return {"ps": np.asarray(ps), "relu_gap": np.array(relu_gap), "linear_gap": np.array(linear_gap)}


def jensen_single_unit(mu=0.0, sigma=1.0, n_samples=200000, seed=0):
    """E[relu(z)] vs relu(E[z]) for one Gaussian pre-activation z ~ N(mu, sigma^2):
    Monte Carlo, the closed form sigma*phi(mu/sigma) + mu*Phi(mu/sigma), and relu(mu)."""
    from math import erf, exp, pi, sqrt

    rng = np.random.default_rng(seed)
    z = rng.normal(mu, sigma, n_samples)
    t = mu / sigma
    closed = sigma * exp(-t * t / 2) / sqrt(2 * pi) + mu * 0.5 * (1 + erf(t / sqrt(2)))
    return {"mc": float(np.maximum(z, 0).mean()), "closed_form": closed, "relu_of_mean": max(mu, 0.0)}


class BuggyNet(torch.nn.Module):
    """Calls F.dropout without passing self.training: drops even in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = p
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(F.dropout(x, self.p))          # training defaults to True!


class FixedNet(BuggyNet):
    def forward(self, x):
        return self.fc(F.dropout(x, self.p, training=self.training))


def functional_dropout_bug(seed=0):
    """Two eval-mode forward passes of each net on the same input.

    Returns {"buggy_differs": bool, "fixed_differs": bool, "buggy_max_diff": float}.
    """
    torch.manual_seed(seed)
    x = torch.randn(3, 16)
    out = {}
    for name, cls in (("buggy", BuggyNet), ("fixed", FixedNet)):
        torch.manual_seed(seed)
        net = cls().eval()
        with torch.no_grad():
            a, b = net(x), net(x)
        out[f"{name}_differs"] = not torch.equal(a, b)
        out[f"{name}_max_diff"] = float((a - b).abs().max())
    return out


def gaussian_vs_bernoulli(x_value=1.0, p=0.5, n_samples=200000, seed=0):
    """Samples of Bernoulli (inverted) dropout and of Gaussian dropout
    x * eps, eps ~ N(1, p/(1-p)), on a scalar x; returns both sample arrays."""
    bern = _torch_dropout_samples(x_value, p, n_samples, seed)
    g = torch.Generator().manual_seed(seed + 1)
    eps = 1 + np.sqrt(p / (1 - p)) * torch.randn(n_samples, generator=g, dtype=torch.float64)
    return {"bernoulli": bern, "gaussian": (x_value * eps).numpy()}
