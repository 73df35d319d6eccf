"""Experiments behind chapter 05's figures (backprop through masks).

Public code: gradients come from torch autograd and masks from torch's built-in
``torch.nn.functional.dropout``; nothing here solves a graded exercise.
Every function is seeded and returns plain numbers or arrays.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np


@contextmanager
def _one_thread():
    """Run small torch workloads on one thread (faster than several on a busy
    2-core machine), restoring the previous setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fixed_dropout_scale(shape, p, seed):
    """mask / (1 - p) for one draw of torch's dropout (float64): dropout of ones."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    return F.dropout(torch.ones(shape, dtype=torch.float64), p=p, training=True)


def _dropout_loss_problem(seed, n=8, d=10, c=3, p=0.5):
    """A small float64 problem: loss(x) = cross_entropy((dropout(x) with a FIXED mask) @ W, y)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    W = torch.randn(d, c, generator=gen, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=gen)
    scale = _fixed_dropout_scale((n, d), p, seed + 1)

    def loss(xv):
        return torch.nn.functional.cross_entropy((xv * scale) @ W, y)

    return x, scale, loss


def gradient_check_errors(hs, seed: int = 0, n_coords: int = 6):
    """Finite-difference errors on a dropout layer followed by a softmax loss.

    For ``n_coords`` entries x_i that the fixed mask KEEPS, compares the forward
    difference (L(x + h e_i) - L(x)) / h and the central difference
    (L(x + h e_i) - L(x - h e_i)) / (2h) with autograd's dL/dx_i, for each h.
    Returns ``(forward_err, central_err)``, each shape (len(hs),): the median over
    the coordinates of |estimate - true| / |true|.
    """
    import torch

    x, scale, loss = _dropout_loss_problem(seed)
    xg = x.clone().requires_grad_(True)
    loss(xg).backward()
    true = xg.grad
    kept = torch.nonzero(scale.reshape(-1) > 0).reshape(-1)
    gen = torch.Generator().manual_seed(seed + 2)
    coords = kept[torch.randperm(len(kept), generator=gen)[:n_coords]]
    fwd = np.zeros((len(hs), len(coords)))
    cen = np.zeros((len(hs), len(coords)))
    with torch.no_grad():
        base = float(loss(x))
        for j, flat in enumerate(coords.tolist()):
            t = float(true.reshape(-1)[flat])
            for i, h in enumerate(hs):
                e = torch.zeros_like(x).reshape(-1)
                e[flat] = h
                e = e.reshape(x.shape)
                lp, lm = float(loss(x + e)), float(loss(x - e))
                fwd[i, j] = abs((lp - base) / h - t) / abs(t)
                cen[i, j] = abs((lp - lm) / (2 * h) - t) / abs(t)
    return np.median(fwd, axis=1), np.median(cen, axis=1)


def dropped_gradient_is_zero(seed: int = 0) -> tuple[float, float]:
    """(largest |dL/dx| where the mask dropped, smallest |dL/dx| where it kept) on
    the small dropout problem: autograd's own backward through a fixed mask."""
    x, scale, loss = _dropout_loss_problem(seed)
    xg = x.clone().requires_grad_(True)
    loss(xg).backward()
    g = xg.grad.abs()
    return float(g[scale == 0].max()), float(g[scale > 0].min())


def fresh_mask_disagreement(p: float, n: int = 200_000, seed: int = 0) -> float:
    """Fraction of units where two independent dropout masks differ (a backward
    pass with a fresh mask routes those gradients wrongly); theory 2 p (1 - p)."""
    a = _fixed_dropout_scale((n,), p, seed) > 0
    b = _fixed_dropout_scale((n,), p, seed + 1) > 0
    return float((a != b).float().mean())


#: Optimiser settings compared by :func:`dropped_unit_drift`.
OPTIMISERS = {
    "plain SGD": dict(momentum=0.0, weight_decay=0.0),
    "SGD + momentum 0.9": dict(momentum=0.9, weight_decay=0.0),
    "SGD + weight decay 0.01": dict(momentum=0.0, weight_decay=1e-2),
    "momentum + weight decay": dict(momentum=0.9, weight_decay=1e-2),
}


def dropped_unit_drift(steps_kept: int = 20, steps_dropped: int = 30, lr: float = 0.1,
                       seeds=(0, 1, 2)):
    """What happens to a hidden unit's incoming weights while it is dropped.

    A 64-32-10 ReLU network on a digits batch is trained with torch SGD; the unit
    watched is the one most active at initialisation (so it is not a dead ReLU,
    whose gradient is zero anyway). For the first ``steps_kept`` steps the unit is kept (other units get fresh dropout
    masks with p = 0.5); for the next ``steps_dropped`` steps it is dropped in
    every example. Returns ``(drift, grad_norm)`` per optimiser name:
    ``drift[name]`` has shape (len(seeds), steps_dropped + 1): the distance
    ||w_j(t) - w_j(t0)|| of the unit's incoming weights from where they were when
    it was first dropped; ``grad_norm[name]`` is the largest gradient norm of
    those weights seen while dropped (exactly 0).
    """
    import torch
    from torch import nn

    from dropout_lab.data import load_digits_split

    with _one_thread():
        return _drift(load_digits_split(), steps_kept, steps_dropped, lr, seeds)


def _drift(data, steps_kept, steps_dropped, lr, seeds):
    import torch
    from torch import nn

    X = torch.as_tensor(data.X_train[:128], dtype=torch.float32)
    y = torch.as_tensor(data.y_train[:128])
    drift, grad_norm = {}, {}
    for name, opt_kwargs in OPTIMISERS.items():
        runs, gmax = [], 0.0
        for seed in seeds:
            torch.manual_seed(seed)
            lin1, lin2 = nn.Linear(64, 32), nn.Linear(32, 10)
            with torch.no_grad():
                unit = int(torch.relu(lin1(X)).mean(0).argmax())
            opt = torch.optim.SGD(list(lin1.parameters()) + list(lin2.parameters()), lr=lr, **opt_kwargs)
            trace, start = [], None
            for step in range(steps_kept + steps_dropped):
                scale = _fixed_dropout_scale((len(y), 32), 0.5, 1000 * seed + step)
                if step >= steps_kept:
                    scale[:, unit] = 0.0  # this unit is dropped in every example
                else:
                    scale[:, unit] = 2.0  # and kept before that
                h = torch.relu(lin1(X)) * scale.float()
                loss = nn.functional.cross_entropy(lin2(h), y)
                opt.zero_grad()
                loss.backward()
                if step >= steps_kept:
                    gmax = max(gmax, float(lin1.weight.grad[unit].norm()), float(lin1.bias.grad[unit].abs()))
                if step == steps_kept:
                    start = lin1.weight[unit].detach().clone()
                    trace.append(0.0)
                opt.step()
                if step >= steps_kept:
                    trace.append(float((lin1.weight[unit].detach() - start).norm()))
            runs.append(trace)
        drift[name] = np.array(runs)
        grad_norm[name] = gmax
    return drift, grad_norm


def digits_dropout_curves(p_values=(0.0, 0.5), hidden: int = 256, epochs: int = 100, lr: float = 0.3,
                          seeds=(0, 1, 2), n_train: int = 300):
    """Train the one-hidden-layer ReLU network of the exercises (64-hidden-10, plain
    minibatch SGD, batch 64, no momentum) on ``n_train`` digits (a fixed subset of the
    course split, small enough to overfit) with hidden dropout p.

    Gradients come from torch autograd (``make_mlp`` + ``train_torch``); the
    exercise notebook builds the same network in numpy. Returns
    ``{p: {"train_loss", "val_loss", "train_acc", "val_acc"}}`` with arrays of
    shape (len(seeds), epochs).
    """
    from dropout_lab.data import load_digits_split

    data = load_digits_split().subset(n_train)
    out = {}
    with _one_thread():
        for p in p_values:
            out[p] = _train_curves(data, p, hidden, epochs, lr, seeds)
    return out


def _train_curves(data, p, hidden, epochs, lr, seeds):
    import torch

    from dropout_lab.nets import make_mlp
    from dropout_lab.training import train_torch

    curves = {k: [] for k in ("train_loss", "val_loss", "train_acc", "val_acc")}
    for seed in seeds:
        torch.manual_seed(seed)
        model = make_mlp(data.n_features, (hidden,), data.n_classes, p_hidden=p)
        _, hist = train_torch(model, data, epochs=epochs, lr=lr, momentum=0.0, batch_size=64, seed=seed)
        for k in curves:
            curves[k].append(getattr(hist, k))
    return {k: np.array(v) for k, v in curves.items()}
