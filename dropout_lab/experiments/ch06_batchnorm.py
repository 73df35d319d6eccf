"""Experiments behind chapter 06's figures (dropout and batch normalisation).

Small fully connected networks with ``torch.nn.BatchNorm1d`` on the digits, trained with
torch's own dropout (``torch.nn.functional.dropout``) or with Uout noise written inline in
a module's forward. Nothing here solves a graded exercise: the variance of the input
reaching a BatchNorm layer is measured for every layer of a network at once with forward
hooks, predictions are computed from recorded activations (never from a (mean, var, p)
formula function), and BatchNorm statistics are re-estimated with torch's own
``momentum=None`` mechanism inside helpers that return accuracies, not models.

Placements of the noise (``PLACEMENTS``), each a stack of ``depth`` blocks of width
``width`` followed by a linear classifier:

* ``"none"``   Linear -> BN -> ReLU, no noise at all;
* ``"after"``  Linear -> BN -> ReLU blocks, one noise layer after the last block
  (dropout only after the last BN, Li et al.'s recommendation);
* ``"before"`` Linear -> BN -> ReLU -> noise blocks: each noise layer reaches the next
  block's BN through a linear layer (the last one feeds the classifier);
* ``"direct"`` Linear -> ReLU -> noise -> BN blocks: every noise layer feeds a BN directly;
* ``"plain"``  Linear -> ReLU -> noise blocks, no BN: the control with the same noise as
  ``"direct"`` and nothing for it to upset.

Training: Adam (learning rate 0.01 decayed to 0 by a cosine schedule, so the last
running averages describe the final weights), mini-batches of 100, cross-entropy,
``EPOCHS`` epochs on the 1000 training digits; torch seeded with the seed (weights,
masks) and a separate generator for the batch order. Every function is seeded and
returns plain numbers or arrays with one row per seed; ``tests/test_claims_ch06_batchnorm.py``
asserts every claim the page makes about them.
"""
from __future__ import annotations

from dropout_lab.experiments.threads import one_thread
import copy
import functools

import numpy as np

#: Placements compared on the page (see the module docstring).
PLACEMENTS = {
    "none": "no dropout",
    "after": "dropout only after the last BN",
    "before": "dropout -> linear -> BN",
    "direct": "dropout -> BN",
    "plain": "dropout, no BN (control)",
}

EPOCHS = 15
BATCH = 100
LR = 1e-2

_TRAINED: dict = {}
_DATA: dict = {}


def _one_thread():
    """torch on one thread (see dropout_lab.experiments.threads)."""
    return one_thread(numpy_too=False)


def _digits():
    """Training and test tensors of the course's digits split (float32), cached."""
    if not _DATA:
        import torch

        from dropout_lab.data import load_digits_split

        d = load_digits_split()
        _DATA.update(Xtr=torch.tensor(d.X_train, dtype=torch.float32), ytr=torch.tensor(d.y_train),
                     Xte=torch.tensor(d.X_test, dtype=torch.float32), yte=torch.tensor(d.y_test))
    return _DATA


def multiplier_variance(kind: str, rate: float) -> float:
    """Variance s^2 of the multiplicative noise factor (its mean is 1 for both kinds):
    ``p / (1 - p)`` for inverted dropout with drop probability ``rate`` (chapter 04),
    ``beta^2 / 3`` for Uout with ``rate = beta`` (a uniform on [-beta, beta])."""
    if kind == "dropout":
        return rate / (1.0 - rate)
    if kind == "uout":
        return rate**2 / 3.0
    raise ValueError(f"kind must be 'dropout' or 'uout', got {kind!r}")


@functools.lru_cache(maxsize=None)
def _modules():
    """torch.nn and the noise module class (defined once, on first use, so that importing this
    module does not import torch)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class _Noise(nn.Module):
        """Multiplicative noise with mean 1, active in training mode only: torch's inverted
        dropout (``kind="dropout"``, rate = drop probability) or Uout, x * (1 + r) with
        r ~ U(-beta, beta) drawn from torch's global generator (``kind="uout"``, rate = beta)."""

        def __init__(self, kind, rate):
            super().__init__()
            self.kind, self.rate = kind, float(rate)

        def forward(self, x):
            if not self.training or self.rate == 0.0:
                return x
            if self.kind == "dropout":
                return F.dropout(x, self.rate, training=True)
            return x * (1.0 + (2.0 * torch.rand_like(x) - 1.0) * self.rate)

    return nn, _Noise


def _build(placement, kind, rate, depth, width):
    nn, _Noise = _modules()
    layers, fan_in = [], 64
    for _ in range(depth):
        if placement in ("none", "after"):
            layers += [nn.Linear(fan_in, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
        elif placement == "before":
            layers += [nn.Linear(fan_in, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(),
                       _Noise(kind, rate)]
        elif placement == "direct":
            layers += [nn.Linear(fan_in, width), nn.ReLU(), _Noise(kind, rate), nn.BatchNorm1d(width)]
        elif placement == "plain":
            layers += [nn.Linear(fan_in, width), nn.ReLU(), _Noise(kind, rate)]
        else:
            raise ValueError(f"placement must be one of {sorted(PLACEMENTS)}, got {placement!r}")
        fan_in = width
    if placement == "after":
        layers.append(_Noise(kind, rate))
    layers.append(nn.Linear(fan_in, 10))
    net = nn.Sequential(*layers)
    net.placement = placement
    return net


def trained_net(placement: str, rate: float, seed: int, depth: int = 2, width: int = 128,
                kind: str = "dropout"):
    """A network of ``placement`` (see :data:`PLACEMENTS`) trained on the digits, in eval
    mode. Cached per arguments within a process: callers must not train or modify it
    (the helpers below work on copies when they change BatchNorm statistics)."""
    import torch
    import torch.nn.functional as F

    if placement == "none":
        rate = 0.0
    key = (placement, kind, float(rate), int(seed), int(depth), int(width))
    if key not in _TRAINED:
        d = _digits()
        X, y = d["Xtr"], d["ytr"]
        n = len(X)
        steps = EPOCHS * ((n + BATCH - 1) // BATCH)
        with _one_thread():
            torch.manual_seed(seed)
            net = _build(placement, kind, rate, depth, width)
            order = torch.Generator().manual_seed(10_000 + seed)
            opt = torch.optim.Adam(net.parameters(), lr=LR)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1.0 + np.cos(np.pi * k / steps)))
            net.train()
            for _ in range(EPOCHS):
                perm = torch.randperm(n, generator=order)
                for i in range(0, n, BATCH):
                    idx = perm[i:i + BATCH]
                    opt.zero_grad()
                    F.cross_entropy(net(X[idx]), y[idx]).backward()
                    opt.step()
                    sched.step()
            net.eval()
        _TRAINED[key] = net
    return _TRAINED[key]


def _noise_layers(net):
    _, _Noise = _modules()
    return [m for m in net.modules() if isinstance(m, _Noise)]


def _bn_layers(net):
    import torch

    return [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]


def _record(net, X, noise_on, n_passes, seed):
    """Per-channel mean and population variance (float64, over the images and the
    ``n_passes`` forward passes) of the input of every BatchNorm and every noise layer,
    with BatchNorm in eval mode (running statistics) and the noise on or off, accumulated
    pass by pass (sums and sums of squares) so that many passes cost no memory (the raw
    inputs of one pass come from :func:`_record_inputs`). Restores eval mode.
    Returns (bn_moments, noise_moments): lists of (mean, var) in network order."""
    import torch

    bns, noises = _bn_layers(net), _noise_layers(net)
    acc = {id(m): [0, 0.0, 0.0] for m in bns + noises}

    def hook(mod, inp, out):
        a = inp[0].double()
        rec = acc[id(mod)]
        rec[0] += a.shape[0]
        rec[1] = rec[1] + a.sum(0)
        rec[2] = rec[2] + (a * a).sum(0)

    hooks = [m.register_forward_hook(hook) for m in bns + noises]
    net.eval()
    for m in noises:
        m.train(noise_on)
    try:
        torch.manual_seed(seed)
        with torch.no_grad():
            for _ in range(n_passes):
                net(X)
    finally:
        for h in hooks:
            h.remove()
        net.eval()

    def moments(m):
        n, s1, s2 = acc[id(m)]
        mean = s1 / n
        return mean, (s2 / n - mean * mean).clamp_min(0.0)

    return [moments(m) for m in bns], [moments(m) for m in noises]


def _record_inputs(net, X):
    """The inputs (float64) of every BatchNorm and every noise layer on one eval-mode pass
    (BatchNorm with running statistics, noise off). Returns (bn_inputs, noise_inputs)."""
    import torch

    bns, noises = _bn_layers(net), _noise_layers(net)
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.__setitem__(id(mod), inp[0].double()))
             for m in bns + noises]
    net.eval()
    try:
        with torch.no_grad():
            net(X)
    finally:
        for h in hooks:
            h.remove()
    return [seen[id(m)] for m in bns], [seen[id(m)] for m in noises]


def _pop_var(a):
    return a.var(0, unbiased=False)


def _shift_measurements(net, s2, n_masks=20, seed=0):
    """Measured and predicted variance ratios (eval-mode variance / variance with the noise
    on) of every BatchNorm input of a ``direct`` or ``before`` network, on the 1000
    training digits with ``n_masks`` noise draws per image. One dict per BN layer with
    per-channel arrays: ``measured``; ``running`` (eval-mode variance / BN's running_var);
    ``predicted`` (``direct``: from the eval-mode mean c and variance v of the unit that the
    noise multiplies, v / (v + s2 (c^2 + v)); ``before``: from the eval-mode activations h
    entering the noise and the weights W between noise and BN,
    Var[(W h)_j] / (Var[(W h)_j] + s2 E[sum_i W_ji^2 h_i^2])); ``predicted_own`` (the
    per-unit expression evaluated with the BN input's own eval-mode mean and variance);
    ``predicted_train_moments`` (``direct`` only: the denominator evaluated with the
    unit's moments recorded with every noise layer on, the exact version deeper in the
    network); ``fed_by_noise`` (False for a BN whose input has no noise layer upstream);
    ``alive`` (False for a channel with zero eval-mode variance, a ReLU unit that never
    fires: its ratios are NaN)."""
    import torch

    X = _digits()["Xtr"]
    bn_on, noise_on = _record(net, X, True, n_masks, seed)      # (mean, var) with the noise on
    bn_off, noise_off = _record_inputs(net, X)                   # raw inputs, noise off
    linears = [m for m in net if type(m).__name__ == "Linear"]
    direct = net.placement == "direct"                            # Linear, ReLU, noise, BN blocks
    out = []
    for k, bn in enumerate(_bn_layers(net)):
        v_test = _pop_var(bn_off[k])
        alive = v_test > 1e-12                       # a ReLU unit that never fires has no variance
        v_test = torch.where(alive, v_test, torch.nan)
        row = {"measured": (v_test / bn_on[k][1]).numpy(), "alive": alive.numpy(),
               "running": (v_test / bn.running_var.double()).numpy()}
        c_z = bn_off[k].mean(0)
        row["predicted_own"] = (v_test / (v_test + s2 * (c_z**2 + v_test))).numpy()
        if direct:
            h = noise_off[k]
            c, v = h.mean(0), torch.where(alive, _pop_var(h), torch.nan)
            row["predicted"] = (v / (v + s2 * (c**2 + v))).numpy()
            # the unit's moments in training (every upstream noise layer on, own noise not yet applied)
            c_tr, v_tr = noise_on[k]
            row["predicted_train_moments"] = (v / (v_tr + s2 * (c_tr**2 + v_tr))).numpy()
            row["fed_by_noise"] = True
        elif k == 0:
            row["predicted"] = np.ones(len(v_test))
            row["fed_by_noise"] = False
        else:
            h = noise_off[k - 1]
            W = linears[k].weight.detach().double()
            z = h @ W.T
            test = _pop_var(z)
            row["predicted"] = (test / (test + s2 * ((h**2) @ (W**2).T).mean(0))).numpy()
            row["fed_by_noise"] = True
        out.append(row)
    return out


# --------------------------------------------------------------------------------------
# Running statistics: momentum 0.1 against momentum=None
# --------------------------------------------------------------------------------------

def running_average_trace(seed: int = 0, batch_size: int = 20, n_channels: int = 8, rate: float = 0.5):
    """How BatchNorm's running variance accumulates, in torch's own code.

    Takes the trained ``direct`` network (dropout p = ``rate`` before each BN), copies it,
    resets the first BN layer's running statistics (mean 0, variance 1) and feeds the
    training digits through it in order, ``batch_size`` images at a time, with dropout off
    and that BN in training mode, once with ``momentum=0.1`` (torch's default) and once
    with ``momentum=None``. Returns, for the first ``n_channels`` channels whose unit is
    ever active (``channels``), the running
    variance after every batch for both settings (shape (n_batches, n_channels)), the
    unbiased variance of every batch, their cumulative average, and the population
    (divide-by-N) variance over all the images."""
    import torch

    X = _digits()["Xtr"]
    net = trained_net("direct", rate, seed)
    with torch.no_grad():
        h = net[1](net[0](X))                          # the ReLU units that reach the first BN
    ch = [int(i) for i in torch.nonzero(h.var(0) > 0).reshape(-1)[:n_channels]]
    traces = {}
    with _one_thread(), torch.no_grad():
        for name, momentum in (("ema", 0.1), ("cumulative", None)):
            m = copy.deepcopy(net)
            bn = _bn_layers(m)[0]
            bn.reset_running_stats()
            bn.momentum = momentum
            bn.train()
            rows, batch_vars, inputs = [], [], []
            hook = bn.register_forward_hook(lambda mod, inp, out: inputs.append(inp[0].double()))
            for i in range(0, len(X), batch_size):
                m(X[i:i + batch_size])
                rows.append(bn.running_var[ch].double().numpy().copy())
                batch_vars.append(inputs[-1][:, ch].var(0, unbiased=True).numpy())
            hook.remove()
            traces[name] = np.array(rows)
        batch_vars = np.array(batch_vars)
        k = np.arange(1, len(batch_vars) + 1)[:, None]
        full = torch.cat(inputs)[:, ch]
    return {"channels": ch, "batches": np.arange(1, len(batch_vars) + 1), "ema": traces["ema"],
            "cumulative": traces["cumulative"], "batch_var": batch_vars,
            "mean_of_batch_vars": np.cumsum(batch_vars, axis=0) / k,
            "population_var": _pop_var(full).numpy()}


# --------------------------------------------------------------------------------------
# The shift inside a network, against the formulas
# --------------------------------------------------------------------------------------

def shift_scatter(ps=(0.2, 0.5, 0.7), seeds=range(3), n_masks: int = 20):
    """Per-channel variance ratios (test / training) at every BN input of the ``direct``
    and ``before`` networks (depth 2, width 128), measured and predicted, for each drop
    probability and seed. Returns ``{"direct": [...], "before": [...]}``, each a list of
    dicts, one per (p, seed, BN layer), with keys ``p``, ``seed``, ``layer`` (1-based) and
    the arrays of :func:`_shift_measurements`."""
    out = {"direct": [], "before": []}
    with _one_thread():
        for placement in out:
            for p in ps:
                for seed in seeds:
                    net = trained_net(placement, p, seed)
                    rows = _shift_measurements(net, multiplier_variance("dropout", p), n_masks, seed)
                    for k, row in enumerate(rows):
                        out[placement].append({"p": p, "seed": seed, "layer": k + 1, **row})
    return out


# --------------------------------------------------------------------------------------
# Accuracy: placements and re-estimated statistics
# --------------------------------------------------------------------------------------

def _accuracy(net, X, y):
    import torch

    with torch.no_grad():
        return float((net(X).argmax(1) == y).float().mean())


def _accuracy_after_refit(net, noise_on: bool, batch_size: int = BATCH, seed: int = 0):
    """Test accuracy of a COPY of ``net`` whose BatchNorm running statistics were re-estimated
    on the training digits (in order, ``batch_size`` at a time) with torch's cumulative
    average (``momentum=None`` after ``reset_running_stats``), the noise layers on or off."""
    import torch

    d = _digits()
    m = copy.deepcopy(net)
    for bn in _bn_layers(m):
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    for layer in _noise_layers(m):
        layer.train(noise_on)
    torch.manual_seed(50_000 + seed)
    with torch.no_grad():
        for i in range(0, len(d["Xtr"]), batch_size):
            m(d["Xtr"][i:i + batch_size])
    m.eval()
    return _accuracy(m, d["Xte"], d["yte"])


def _evaluate(net, seed):
    d = _digits()
    has_bn = bool(_bn_layers(net))
    acc = _accuracy(net, d["Xte"], d["yte"])
    return {"running": acc,
            "refit_off": _accuracy_after_refit(net, False, seed=seed) if has_bn else acc,
            "refit_on": _accuracy_after_refit(net, True, seed=seed) if has_bn else acc}


def placement_accuracy(ps=(0.2, 0.5, 0.7), seeds=range(3), placements=("after", "before", "direct", "plain"),
                       depth: int = 2, width: int = 128, kind: str = "dropout"):
    """Test accuracy of every placement at every rate, over seeds, evaluated three ways on
    the same weights: ``running`` (the BN statistics collected in training),
    ``refit_off`` (re-estimated with the noise off: the recalibration fix) and
    ``refit_on`` (re-estimated with the noise on: the control that changes the estimator
    but not the noise). Returns arrays of shape (len(placements), len(ps), n_seeds) and
    ``none`` of shape (n_seeds,) (no dropout)."""
    seeds = list(seeds)
    out = {k: np.zeros((len(placements), len(ps), len(seeds))) for k in ("running", "refit_off", "refit_on")}
    with _one_thread():
        for a, placement in enumerate(placements):
            for b, p in enumerate(ps):
                for c, seed in enumerate(seeds):
                    r = _evaluate(trained_net(placement, p, seed, depth, width, kind), seed)
                    for k in out:
                        out[k][a, b, c] = r[k]
        none = np.array([_evaluate(trained_net("none", 0.0, s, depth, width), s)["running"] for s in seeds])
    return {"ps": np.asarray(ps), "placements": list(placements), "none": none, **out}


# --------------------------------------------------------------------------------------
# Where it grows: depth and width
# --------------------------------------------------------------------------------------

def depth_trend(depths=(1, 2, 3, 4), p: float = 0.7, seeds=range(3),
                placements=("direct", "before", "plain")):
    """Test accuracy against the number of blocks at drop probability ``p``, evaluated as in
    :func:`placement_accuracy` (``running``, ``refit_off``, ``refit_on``). Arrays of shape
    (len(placements), len(depths), n_seeds)."""
    seeds = list(seeds)
    out = {k: np.zeros((len(placements), len(depths), len(seeds))) for k in ("running", "refit_off", "refit_on")}
    with _one_thread():
        for a, placement in enumerate(placements):
            for b, depth in enumerate(depths):
                for c, seed in enumerate(seeds):
                    r = _evaluate(trained_net(placement, p, seed, depth=depth), seed)
                    for k in out:
                        out[k][a, b, c] = r[k]
    return {"depths": np.asarray(depths), "placements": list(placements), **out}


def layer_ratios(ps=(0.5, 0.7), depth: int = 4, seeds=range(3), placements=("direct", "before"),
                 n_masks: int = 20):
    """What each BatchNorm of a deep stack meets at test time (the counterpart of Li et
    al.'s figure 1): for every BN layer, the median over channels of the eval-mode input
    variance divided by BN's stored running_var (``ratio``; 1 = no shift) and of
    |eval-mode mean - running_mean| / sqrt(running_var) (``mean_shift``), on the training
    digits. Arrays of shape (len(placements), len(ps), n_seeds, depth)."""
    seeds = list(seeds)
    shape = (len(placements), len(ps), len(seeds), depth)
    ratio, mean_shift = np.zeros(shape), np.zeros(shape)
    X = _digits()["Xtr"]
    with _one_thread():
        for a, placement in enumerate(placements):
            for b, p in enumerate(ps):
                for c, seed in enumerate(seeds):
                    net = trained_net(placement, p, seed, depth=depth)
                    bn_off, _ = _record_inputs(net, X)
                    for k, bn in enumerate(_bn_layers(net)):
                        v = _pop_var(bn_off[k])
                        alive = (v > 1e-12).numpy()
                        rv = bn.running_var.double()
                        ratio[a, b, c, k] = np.median((v / rv).numpy()[alive])
                        shift = ((bn_off[k].mean(0) - bn.running_mean.double()).abs() / rv.sqrt()).numpy()
                        mean_shift[a, b, c, k] = np.median(shift[alive])
    return {"ps": np.asarray(ps), "placements": list(placements), "layers": np.arange(1, depth + 1),
            "ratio": ratio, "mean_shift": mean_shift}


def width_trend(widths=(16, 32, 64, 128, 256), p: float = 0.5, seeds=range(3), n_masks: int = 20):
    """The variance ratio at the second (last) BatchNorm of the ``before`` network (dropout
    -> linear -> BN, depth 2) against the width, with test accuracy and the recalibration
    gain. Arrays of shape (n_seeds, len(widths)): ``measured`` / ``predicted`` (mean over
    channels of the measured ratio and of the prediction from the weights), ``min``
    (smallest channel), ``accuracy`` (running statistics), ``gain`` (refit_off - running)."""
    seeds = list(seeds)
    s2 = multiplier_variance("dropout", p)
    rows = {k: np.zeros((len(seeds), len(widths))) for k in ("measured", "predicted", "min", "accuracy", "gain")}
    with _one_thread():
        for c, seed in enumerate(seeds):
            for b, width in enumerate(widths):
                net = trained_net("before", p, seed, width=width)
                last = _shift_measurements(net, s2, n_masks, seed)[-1]
                r = _evaluate(net, seed)
                rows["measured"][c, b] = np.nanmean(last["measured"])
                rows["predicted"][c, b] = np.nanmean(last["predicted"])
                rows["min"][c, b] = np.nanmin(last["measured"])
                rows["accuracy"][c, b] = r["running"]
                rows["gain"][c, b] = r["refit_off"] - r["running"]
    return {"widths": np.asarray(widths), **rows}


# --------------------------------------------------------------------------------------
# Uout against dropout
# --------------------------------------------------------------------------------------

def uout_vs_dropout(betas=(0.5, 1.0, 1.5), ps=(0.2, 0.5, 0.7), seeds=range(3), n_masks: int = 20):
    """``direct`` networks (noise -> BN, depth 2, width 128) trained with Uout of each beta
    and with dropout of each p. For each network: the multiplier variance s^2, the mean
    over channels of the measured and predicted variance ratio at the FIRST BN (whose input
    is exact for the per-unit formula), test accuracy with the running statistics and
    after re-estimating them with the noise off. Returns, per kind, arrays of shape
    (n_seeds, n_rates) and the rates with their s^2."""
    seeds = list(seeds)
    out = {}
    with _one_thread():
        for kind, rates in (("uout", betas), ("dropout", ps)):
            s2 = np.array([multiplier_variance(kind, r) for r in rates])
            rows = {k: np.zeros((len(seeds), len(rates))) for k in ("measured", "predicted", "accuracy", "refit_off")}
            for c, seed in enumerate(seeds):
                for b, rate in enumerate(rates):
                    net = trained_net("direct", rate, seed, kind=kind)
                    first = _shift_measurements(net, s2[b], n_masks, seed)[0]
                    r = _evaluate(net, seed)
                    rows["measured"][c, b] = np.nanmean(first["measured"])
                    rows["predicted"][c, b] = np.nanmean(first["predicted"])
                    rows["accuracy"][c, b] = r["running"]
                    rows["refit_off"][c, b] = r["refit_off"]
            out[kind] = {"rates": np.asarray(rates), "s2": s2, **rows}
    return out
