"""Experiments behind chapter 04's figures (scaling maths).

Public code: dropout here is torch's built-in ``torch.nn.functional.dropout`` /
``torch.nn.Dropout`` (inverted dropout), ``torch.bernoulli`` for the standard-dropout
masks, and closed-form formulas, never a solution of the graded exercises. Every
function is seeded and returns plain numbers/arrays, with one row per seed where a
spread is reported; ``tests/test_claims_ch04_scaling.py``
asserts every claim the prose page makes about them.
"""
from __future__ import annotations

from dropout_lab.experiments.threads import one_thread

import numpy as np
import torch
import torch.nn.functional as F


def _torch_dropout_samples(x_value: float, p: float, n: int, seed: int) -> np.ndarray:
    """n outputs of torch's inverted dropout applied to the scalar x_value."""
    torch.manual_seed(seed)
    x = torch.full((n,), float(x_value), dtype=torch.float64)
    return F.dropout(x, p=p, training=True).numpy()


def dropout_kurtosis(p: float) -> float:
    """Kurtosis mu4 / sigma^4 of inverted dropout's output (any x != 0), 0 < p < 1.

    The centred output y - x takes x p/(1-p) with probability 1-p and -x with
    probability p, so mu4 = x^4 p (p^3 + (1-p)^3) / (1-p)^3 and
    sigma^4 = x^4 p^2 / (1-p)^2, giving (1 - 3 p (1-p)) / (p (1-p)).
    """
    return (1 - 3 * p * (1 - p)) / (p * (1 - p))


def mc_convergence(x_value=1.0, p=0.5, ns=None, seeds=range(10)):
    """Relative errors of Monte Carlo mean and variance against the formulas.

    Returns a dict: ``ns`` (sample counts), ``mean_err`` and ``var_err`` of
    shape (n_seeds, len(ns)) with |estimate - formula| / formula-scale (the
    mean error is divided by |x|, the variance error by x^2 p/(1-p)), and the
    two reference lines, each a standard error relative to its target:
    ``se_mean`` = sqrt(p / ((1-p) n)) for the sample mean and
    ``se_var`` = sqrt((kurtosis - 1) / n) for the sample variance, with
    ``kurtosis`` = :func:`dropout_kurtosis` (p) (closed forms, no sampling).
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
    kurt = dropout_kurtosis(p)
    return {"ns": ns, "mean_err": np.array(mean_err), "var_err": np.array(var_err),
            "se_mean": np.sqrt(p / ((1 - p) * ns)), "se_var": np.sqrt((kurt - 1) / ns),
            "kurtosis": kurt}


def error_ratio(conv, n_min=1000):
    """Ratio of the seed-averaged variance error to the seed-averaged mean error,
    one value per n >= n_min (the page predicts (kurtosis - 1)^(1/2) / (p/(1-p))^(1/2) = |1-2p|/p)."""
    sel = conv["ns"] >= n_min
    return conv["var_err"].mean(0)[sel] / conv["mean_err"].mean(0)[sel]


def loglog_slope(ns, errors):
    """Least-squares slope of log(mean error over seeds) against log(n)."""
    return float(np.polyfit(np.log(ns), np.log(np.mean(errors, axis=0)), 1)[0])


def standard_vs_inverted(p=0.5, d_in=20, d_out=8, n_samples=20000, seed=0):
    """A linear layer fed by a dropped-out input, in both conventions.

    The inverted network has weights W; the standard network trained to the
    same function has weights W / (1 - p) (it never rescales in training, so
    its next layer learns to be 1/(1-p) larger). The two networks draw their
    masks independently: the inverted one with torch's ``F.dropout`` (global
    generator seeded with seed + 1), the standard one with ``torch.bernoulli``
    from its own generator (seed + 2), so each network's Monte Carlo mean
    agrees with its own test output only up to its own sampling error.
    Returns each network's Monte Carlo mean training output, its test output
    and the standard error of its Monte Carlo mean, all of shape (d_out,).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(d_in, generator=g, dtype=torch.float64)
    W = torch.randn(d_out, d_in, generator=g, dtype=torch.float64) / np.sqrt(d_in)
    W_std = W / (1 - p)
    torch.manual_seed(seed + 1)
    y_inv = F.dropout(x.expand(n_samples, d_in), p=p, training=True)    # x * m / (1 - p)
    g_std = torch.Generator().manual_seed(seed + 2)
    keep = torch.full((n_samples, d_in), 1 - p, dtype=torch.float64)
    y_std = x * torch.bernoulli(keep, generator=g_std)                    # x * m': standard dropout
    z_inv, z_std = y_inv @ W.T, y_std @ W_std.T
    return {
        "inverted_train_mean": z_inv.mean(0).numpy(),
        "inverted_test": (W @ x).numpy(),                      # no scaling at test time
        "inverted_se": (z_inv.std(0) / np.sqrt(n_samples)).numpy(),
        "standard_train_mean": z_std.mean(0).numpy(),
        "standard_test": (W_std @ (x * (1 - p))).numpy(),      # scale by keep at test time
        "standard_se": (z_std.std(0) / np.sqrt(n_samples)).numpy(),
    }


def expected_relu_gaussian(mu, sigma):
    """E[relu(z)] for z ~ N(mu, sigma^2), elementwise: sigma*phi(mu/sigma) + mu*Phi(mu/sigma).

    Closed form (no sampling); sigma = 0 gives relu(mu).
    """
    from scipy.special import ndtr

    mu, sigma = np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mu / sigma
        val = sigma * np.exp(-t * t / 2) / np.sqrt(2 * np.pi) + mu * ndtr(t)
    return np.where(sigma > 0, val, np.maximum(mu, 0.0))


def _preactivation_moments(W, x, p):
    """Mean and variance of z = W y with y inverted dropout of x (independent masks):
    E[z] = W x and Var[z_j] = sum_i W_ji^2 x_i^2 p / (1-p). Closed forms, numpy in, numpy out.

    Private on purpose: with W the identity it is the elementwise moment formula that the
    chapter's exercise asks students to write."""
    W, x = np.asarray(W, dtype=float), np.asarray(x, dtype=float)
    return W @ x, (W**2) @ (x**2) * p / (1 - p)


def nonlinearity_gap(ps=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), d_in=50, d_out=50,
                     n_samples=4000, seeds=range(5)):
    """Weight scaling vs the true dropout average behind a ReLU.

    For each seed, a random input x (d_in,) and weights W (d_out, d_in); inputs
    are dropped with torch's inverted dropout. Returns, per (seed, p):
    ``relu_gap``  mean over units of E[relu(W y)] - relu(W E[y]) (>= 0 by Jensen),
    ``linear_gap`` mean over units of |E[W y] - W E[y]| (0 up to Monte Carlo noise),
    ``predicted_gap`` the central-limit prediction of ``relu_gap`` from W, x and p
    alone (no sampling): each z_j treated as Gaussian with the exact mean and
    variance of :func:`_preactivation_moments`, E[relu] from
    :func:`expected_relu_gaussian`,
    all divided by the mean |W x| so they read as fractions of a typical
    pre-activation.
    """
    relu_gap, linear_gap, predicted = [], [], []
    for seed in seeds:
        g = torch.Generator().manual_seed(1000 + seed)
        x = torch.randn(d_in, generator=g, dtype=torch.float64)
        W = torch.randn(d_out, d_in, generator=g, dtype=torch.float64) / np.sqrt(d_in)
        scale = float((W @ x).abs().mean())
        rg, lg, pg = [], [], []
        for p in ps:
            torch.manual_seed(seed * 1000 + int(p * 100))
            y = F.dropout(x.expand(n_samples, d_in), p=p, training=True)
            z = y @ W.T
            rg.append(float((torch.relu(z).mean(0) - torch.relu(W @ x)).mean()) / scale)
            lg.append(float((z.mean(0) - W @ x).abs().mean()) / scale)
            mu, var = _preactivation_moments(W.numpy(), x.numpy(), p)
            pg.append(float(np.mean(expected_relu_gaussian(mu, np.sqrt(var)) - np.maximum(mu, 0))) / scale)
        relu_gap.append(rg)
        linear_gap.append(lg)
        predicted.append(pg)
    return {"ps": np.asarray(ps), "relu_gap": np.array(relu_gap), "linear_gap": np.array(linear_gap),
            "predicted_gap": np.array(predicted)}


def jensen_single_unit(mu=0.0, sigma=1.0, n_samples=200000, seed=0):
    """E[relu(z)] vs relu(E[z]) for one Gaussian pre-activation z ~ N(mu, sigma^2):
    Monte Carlo, the closed form sigma*phi(mu/sigma) + mu*Phi(mu/sigma), and relu(mu)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(mu, sigma, n_samples)
    closed = float(expected_relu_gaussian(mu, sigma))
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


# --- "multiply by p at test time": double compensation on a digits classifier ---------------

#: Test-time factors compared by :func:`double_compensation` (p = PyTorch's drop probability).
PORTED_FACTORS = {
    "correct (nn.Dropout's eval)": lambda p: 1.0,
    "x (1-p): the right number, applied twice": lambda p: 1.0 - p,
    "x p: PyTorch's p read as the paper's keep p": lambda p: p,
}


class DigitsDropoutNet(torch.nn.Module):
    """64 -> hidden ReLU -> nn.Dropout(p) -> 10 logits. ``test_factor`` multiplies the
    dropped-out layer in eval mode only: 1.0 is the correct PyTorch model; any other value
    is a ported "multiply by p at test time" rule stacked on nn.Dropout's own 1/(1-p)."""

    def __init__(self, p, hidden=100):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, hidden)
        self.drop = torch.nn.Dropout(p)
        self.fc2 = torch.nn.Linear(hidden, 10)
        self.test_factor = 1.0

    def hidden(self, x):
        h = self.drop(torch.relu(self.fc1(x)))     # nn.Dropout: already x * m / (1 - p) in training
        if not self.training:
            h = h * self.test_factor                # the ported rule (1.0 = no port)
        return h

    def forward(self, x):
        return self.fc2(self.hidden(x))


_TRAINED = {}


def _one_thread():
    """torch on one thread (see dropout_lab.experiments.threads)."""
    return one_thread(numpy_too=False)


def trained_digits_net(p, seed, hidden=100, steps=200, lr=1e-2):
    """A :class:`DigitsDropoutNet` trained on the digits training split (full-batch Adam,
    cross-entropy, ``steps`` steps, torch seeded with ``seed``), in eval mode, with the
    split's test arrays as float32 tensors. Cached per arguments within a process;
    callers must not train it further."""
    from dropout_lab.data import load_digits_split

    key = (p, seed, hidden, steps, lr)
    if key not in _TRAINED:
        d = load_digits_split()
        Xtr = torch.tensor(d.X_train, dtype=torch.float32)
        ytr = torch.tensor(d.y_train)
        with _one_thread():
            torch.manual_seed(seed)
            net = DigitsDropoutNet(p, hidden)
            opt = torch.optim.Adam(net.parameters(), lr=lr)
            net.train()
            for _ in range(steps):
                opt.zero_grad()
                F.cross_entropy(net(Xtr), ytr).backward()
                opt.step()
            net.eval()
        _TRAINED[key] = (net, torch.tensor(d.X_test, dtype=torch.float32), torch.tensor(d.y_test))
    return _TRAINED[key]


def double_compensation(ps=(0.2, 0.5), seeds=range(3), n_masks=200):
    """What a ported "multiply by p at test time" does to an inverted-dropout (PyTorch) model.

    For each p and seed a :class:`DigitsDropoutNet` is trained once; then for each factor of
    :data:`PORTED_FACTORS` its eval-mode hidden layer is multiplied by that factor. Returns a
    dict with ``ps``, ``factors`` (names) and arrays of shape (len(ps), len(factors), n_seeds):
    ``shrink``  mean eval-mode output of the dropped-out layer / its mean training-mode output
                (averaged over ``n_masks`` masks on the test images): 1 means compensated once;
    ``accuracy`` test accuracy; ``confidence`` mean largest softmax probability;
    ``nll`` mean test cross-entropy; ``changed`` fraction of test predictions that differ
    from the correct model's.
    """
    with _one_thread():
        return _double_compensation(ps, seeds, n_masks)


def _double_compensation(ps, seeds, n_masks):
    names = list(PORTED_FACTORS)
    out = {k: np.zeros((len(ps), len(names), len(seeds)))
           for k in ("shrink", "accuracy", "confidence", "nll", "changed")}
    for a, p in enumerate(ps):
        for c, seed in enumerate(seeds):
            net, X, y = trained_digits_net(p, seed)
            with torch.no_grad():
                net.train()
                torch.manual_seed(10_000 + seed)
                train_mean = float(torch.stack([net.hidden(X) for _ in range(n_masks)]).mean())
                net.eval()
                net.test_factor = 1.0
                reference = net(X).argmax(1)
                for b, name in enumerate(names):
                    net.test_factor = PORTED_FACTORS[name](p)
                    h = net.hidden(X)
                    logits = net.fc2(h)
                    prob = logits.softmax(1)
                    out["shrink"][a, b, c] = float(h.mean()) / train_mean
                    out["accuracy"][a, b, c] = float((logits.argmax(1) == y).float().mean())
                    out["confidence"][a, b, c] = float(prob.max(1).values.mean())
                    out["nll"][a, b, c] = float(F.cross_entropy(logits, y))
                    out["changed"][a, b, c] = float((logits.argmax(1) != reference).float().mean())
                net.test_factor = 1.0
    return {"ps": np.asarray(ps), "factors": names, **out}


def train_test_variance(p=0.5, seeds=range(3), n_masks=200):
    """Variance of the classifier's logits (the pre-activations after the dropped-out layer)
    across test images, with dropout active (training mode, ``n_masks`` masks per image) and
    inactive (eval mode), for the nets of :func:`trained_digits_net`.

    Returns arrays of shape (n_seeds, 10): ``train_var``, ``test_var``, ``predicted_train_var``
    = test_var + p/(1-p) * mean over images of sum_i W_ji^2 h_i^2 (law of total variance, no
    sampling), and ``mean_shift`` = |training-mode mean - eval-mode mean| / eval-mode std.
    """
    with _one_thread():
        return _train_test_variance(p, seeds, n_masks)


def _train_test_variance(p, seeds, n_masks):
    rows = {k: [] for k in ("train_var", "test_var", "predicted_train_var", "mean_shift")}
    for seed in seeds:
        net, X, _ = trained_digits_net(p, seed)
        with torch.no_grad():
            net.eval()
            net.test_factor = 1.0
            h = net.hidden(X).double()
            W = net.fc2.weight.double()
            z_test = h @ W.T
            net.train()
            torch.manual_seed(20_000 + seed)
            z_train = torch.stack([net.hidden(X).double() @ W.T for _ in range(n_masks)]).reshape(-1, 10)
            net.eval()
        test_var = z_test.var(0, unbiased=False)
        rows["train_var"].append(z_train.var(0, unbiased=False).numpy())
        rows["test_var"].append(test_var.numpy())
        rows["predicted_train_var"].append((test_var + p / (1 - p) * ((h**2) @ (W**2).T).mean(0)).numpy())
        rows["mean_shift"].append(((z_train.mean(0) - z_test.mean(0)).abs() / test_var.sqrt()).numpy())
    return {k: np.array(v) for k, v in rows.items()}
