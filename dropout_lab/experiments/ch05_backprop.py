"""Experiments behind chapter 05's figures (backprop through masks).

Public code: gradients come from torch autograd and masks from torch's built-in
``torch.nn.functional.dropout`` (except :func:`gradcheck_survey`, which rebuilds the
exercise notebook's own check, numpy mask included); nothing here solves a graded
exercise: the exact gradients are autograd's, never a hand-written backward pass.
Every function is seeded and returns plain numbers or arrays.
"""
from __future__ import annotations

from dropout_lab.experiments.threads import one_thread

import numpy as np


def _one_thread():
    """torch on one thread (see dropout_lab.experiments.threads)."""
    return one_thread(numpy_too=False)


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
    those weights seen while dropped (exactly 0); ``norm[name]`` has the shape of
    ``drift[name]`` and holds ||w_j(t)||, the length of the weights themselves
    (weight decay pulls it toward 0, not back toward w_j(t0)).
    """
    from dropout_lab.data import load_digits_split

    with _one_thread():
        return _drift(load_digits_split(), steps_kept, steps_dropped, lr, seeds)


def _drift(data, steps_kept, steps_dropped, lr, seeds):
    import torch
    from torch import nn

    X = torch.as_tensor(data.X_train[:128], dtype=torch.float32)
    y = torch.as_tensor(data.y_train[:128])
    drift, grad_norm, norm = {}, {}, {}
    for name, opt_kwargs in OPTIMISERS.items():
        runs, norms, gmax = [], [], 0.0
        for seed in seeds:
            torch.manual_seed(seed)
            lin1, lin2 = nn.Linear(64, 32), nn.Linear(32, 10)
            with torch.no_grad():
                unit = int(torch.relu(lin1(X)).mean(0).argmax())
            opt = torch.optim.SGD(list(lin1.parameters()) + list(lin2.parameters()), lr=lr, **opt_kwargs)
            trace, lengths, start = [], [], None
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
                    lengths.append(float(start.norm()))
                opt.step()
                if step >= steps_kept:
                    trace.append(float((lin1.weight[unit].detach() - start).norm()))
                    lengths.append(float(lin1.weight[unit].detach().norm()))
            runs.append(trace)
            norms.append(lengths)
        drift[name] = np.array(runs)
        norm[name] = np.array(norms)
        grad_norm[name] = gmax
    return drift, grad_norm, norm


def digits_dropout_curves(p_values=(0.0, 0.5), hidden: int = 256, epochs: int = 100, lr: float = 0.3,
                          seeds=(0, 1, 2), n_train: int = 300):
    """Train the one-hidden-layer ReLU network of the exercises (64-hidden-10, plain
    minibatch SGD, batch 64, no momentum) on ``n_train`` digits (a fixed subset of the
    course split, small enough to overfit) with hidden dropout p.

    Gradients come from torch autograd (``make_mlp`` + ``train_torch``); the
    exercise notebook builds the same network in numpy. Returns
    ``{p: {"train_loss", "val_loss", "train_acc", "val_acc", ...}}`` with arrays of
    shape (len(seeds), epochs). ``train_loss`` is the mean minibatch loss of the epoch
    with dropout ON (what the optimiser saw, while the weights moved); the other three
    are measured after the epoch in eval mode (dropout off). Two more arrays of shape
    (len(seeds),) hold, for the final weights, the loss on the whole training set in
    eval mode (``final_train_loss_eval``) and with dropout on, averaged over 20 masks
    (``final_train_loss_masked``).
    """
    from dropout_lab.data import load_digits_split

    data = load_digits_split().subset(n_train)
    out = {}
    with _one_thread():
        for p in p_values:
            out[p] = _train_curves(data, p, hidden, epochs, lr, seeds)
    return out


def _train_curves(data, p, hidden, epochs, lr, seeds, n_masks=20):
    import torch

    from dropout_lab.nets import make_mlp
    from dropout_lab.training import train_torch

    curves = {k: [] for k in ("train_loss", "val_loss", "train_acc", "val_acc")}
    finals = {"final_train_loss_eval": [], "final_train_loss_masked": []}
    X = torch.as_tensor(data.X_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train)
    for seed in seeds:
        torch.manual_seed(seed)
        model = make_mlp(data.n_features, (hidden,), data.n_classes, p_hidden=p)
        _, hist = train_torch(model, data, epochs=epochs, lr=lr, momentum=0.0, batch_size=64, seed=seed)
        for k in curves:
            curves[k].append(getattr(hist, k))
        with torch.no_grad():
            model.eval()
            finals["final_train_loss_eval"].append(float(torch.nn.functional.cross_entropy(model(X), y)))
            model.train()
            masked = [float(torch.nn.functional.cross_entropy(model(X), y)) for _ in range(n_masks)]
            finals["final_train_loss_masked"].append(float(np.mean(masked)))
    return {k: np.array(v) for k, v in (curves | finals).items()}


# --- How large is the relative error of a CORRECT gradient? ---------------------------------

def _max_rel_err(a, b, floor: float = 1e-8):
    """Largest elementwise |a - b| / max(floor, |a| + |b|) and the index where it occurs
    (the measure of the page's equation eq-relerr)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    r = np.abs(a - b) / np.maximum(floor, np.abs(a) + np.abs(b))
    i = int(np.argmax(r))
    return float(r.reshape(-1)[i]), i


def _median_rel_err(a, b, floor: float = 1e-8) -> float:
    """Median over the entries of |a - b| / max(floor, |a| + |b|)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.median(np.abs(a - b) / np.maximum(floor, np.abs(a) + np.abs(b))))


def _central_differences(loss, params: dict, h: float) -> dict:
    """Central differences of the scalar ``loss(params)`` for every entry of every
    float64 tensor in ``params`` (perturbed in place and restored)."""
    import torch

    out = {}
    with torch.no_grad():
        for key, t in params.items():
            flat = t.view(-1)
            g = np.zeros(flat.numel())
            for i in range(flat.numel()):
                old = float(flat[i])
                flat[i] = old + h
                lp = float(loss(params))
                flat[i] = old - h
                lm = float(loss(params))
                flat[i] = old
                g[i] = (lp - lm) / (2 * h)
            out[key] = g.reshape(t.shape)
    return out


def gradcheck_survey(seeds=range(30), p: float = 0.5, h: float = 1e-5) -> dict:
    """The exercise notebook's gradient check of a CORRECT gradient, over many seeds.

    For each seed, builds the network of the notebook's check exactly as the notebook
    does (``init_params(6, 8, 4)`` from the course's numpy rng, ``b1 ~ N(0, 0.5^2)``,
    10 inputs ``N(0, 1)``, 4 classes, one fixed (N, H) mask ``rng.random >= p``), takes
    the exact gradient from torch autograd (float64) and the central differences with
    step ``h``, and measures the relative error of the page's equation (eq-relerr) per parameter.

    Returns arrays over seeds: ``worst`` (largest relative error over all four
    parameters), ``worst_grad`` (|autograd gradient| of the entry where it occurs),
    ``worst_absdiff`` (|autograd - central| there), ``min_abs_z`` (the ReLU input
    closest to its kink at 0), ``loss`` (the loss value); ``per_param``, a dict
    of arrays of the largest error per parameter; and, pooled over all entries of all
    parameters and seeds, ``entry_grad`` (|autograd gradient|), ``entry_err`` (the
    entry's relative error) and ``entry_absdiff`` (|autograd - central|).
    """
    import torch

    from dropout_lab.nets import init_params
    from dropout_lab.seeding import make_rng

    rows = {k: [] for k in ("worst", "worst_grad", "worst_absdiff", "min_abs_z", "loss")}
    per_param = {k: [] for k in ("W1", "b1", "W2", "b2")}
    entries = {"entry_grad": [], "entry_err": [], "entry_absdiff": []}
    with _one_thread():
        for seed in seeds:
            rng = make_rng(seed)
            P = init_params(6, 8, 4, rng)
            P["b1"] = rng.normal(scale=0.5, size=8)
            X, y = rng.normal(size=(10, 6)), rng.integers(0, 4, size=10)
            mask = rng.random((10, 8)) >= p
            Xt, yt = torch.tensor(X), torch.tensor(y)
            scale = torch.tensor(mask, dtype=torch.float64) / (1 - p)

            def loss(Q):
                hidden = torch.relu(Xt @ Q["W1"] + Q["b1"]) * scale
                return torch.nn.functional.cross_entropy(hidden @ Q["W2"] + Q["b2"], yt)

            T = {k: torch.tensor(v, requires_grad=True) for k, v in P.items()}
            value = loss(T)
            value.backward()
            num = _central_differences(loss, {k: torch.tensor(v) for k, v in P.items()}, h)
            worst = (-1.0, None, None)
            for k in P:
                a = T[k].grad.numpy()
                err, i = _max_rel_err(a, num[k])
                per_param[k].append(err)
                diff = np.abs(a - num[k]).reshape(-1)
                entries["entry_grad"].append(np.abs(a).reshape(-1))
                entries["entry_absdiff"].append(diff)
                entries["entry_err"].append(diff / np.maximum(1e-8, np.abs(a) + np.abs(num[k])).reshape(-1))
                if err > worst[0]:
                    worst = (err, abs(a.reshape(-1)[i]), abs(a.reshape(-1)[i] - num[k].reshape(-1)[i]))
            rows["worst"].append(worst[0])
            rows["worst_grad"].append(worst[1])
            rows["worst_absdiff"].append(worst[2])
            rows["min_abs_z"].append(float(np.abs(X @ P["W1"] + P["b1"]).min()))
            rows["loss"].append(float(value.detach()))
    out = {k: np.array(v) for k, v in rows.items()}
    out["per_param"] = {k: np.array(v) for k, v in per_param.items()}
    out.update({k: np.concatenate(v) for k, v in entries.items()})
    return out


# --- When does a unit get no gradient from a whole minibatch? -------------------------------

def zero_gradient_units(batch_sizes=(1, 2, 4, 8, 32), p: float = 0.5, hidden: int = 256,
                        n_draws: int = 100, seed: int = 0) -> dict:
    """How often a hidden unit's incoming weights get an exactly zero minibatch gradient.

    A 64-``hidden``-10 ReLU network (torch's default initialisation, seed ``seed``)
    with dropout on the hidden layer, one mask per example (shape (B, hidden), drawn by
    torch's dropout), on ``n_draws`` random minibatches of B training digits per batch
    size. Returns ``{B: dict}`` with the fraction of (unit, minibatch) pairs in which the
    unit was ``dropped_all`` (dropped in every example, theory p**B), ``inactive_all``
    (its ReLU input z <= 0 in every example, whatever the mask), ``silent_all``
    (dropped or inactive in every example) and ``zero_grad`` (its row of dL/dW1 from
    autograd is exactly zero), and ``n`` the number of pairs.
    """
    import torch
    from torch import nn

    from dropout_lab.data import load_digits_split

    data = load_digits_split()
    X_all = torch.as_tensor(data.X_train, dtype=torch.float32)
    y_all = torch.as_tensor(data.y_train)
    out = {}
    with _one_thread():
        torch.manual_seed(seed)
        lin1, lin2 = nn.Linear(64, hidden), nn.Linear(hidden, 10)
        gen = torch.Generator().manual_seed(seed)
        for B in batch_sizes:
            counts = dict(dropped_all=0, inactive_all=0, silent_all=0, zero_grad=0)
            for draw in range(n_draws):
                idx = torch.randperm(len(y_all), generator=gen)[:B]
                scale = _fixed_dropout_scale((B, hidden), p, 10_000 * B + draw).float()
                z = lin1(X_all[idx])
                loss = nn.functional.cross_entropy(lin2(torch.relu(z) * scale), y_all[idx])
                lin1.zero_grad()
                lin2.zero_grad()
                loss.backward()
                kept = scale > 0
                counts["dropped_all"] += int((~kept).all(0).sum())
                counts["inactive_all"] += int((z <= 0).all(0).sum())
                counts["silent_all"] += int((~kept | (z <= 0)).all(0).sum())
                counts["zero_grad"] += int((lin1.weight.grad == 0).all(1).sum())
            n = n_draws * hidden
            out[B] = {k: v / n for k, v in counts.items()} | {"n": n}
    return out


def minibatch_gradient_decomposition(B: int = 32, p: float = 0.5, hidden: int = 256, seed: int = 0) -> dict:
    """The minibatch gradient of each unit's incoming weights, split into examples.

    The loss is the MEAN over the B examples, so dL/dw_j = (1/B) sum_n g_nj, where
    g_nj is the gradient of example n's own loss; g_nj = 0 exactly when unit j is
    dropped (or inactive) in example n. Computes every g_nj with autograd (one example
    at a time, the same mask; float64) and returns, over the units that receive any
    gradient: ``err_sum_over_B`` (largest relative difference between the batch
    gradient and (1/B) times the sum over the examples that reach the unit: rounding
    only), ``err_ratio`` (largest |ratio - n_j/B| where ratio is |batch gradient|
    divided by |mean of g_nj over those n_j examples|: the batch gradient is NOT their
    mean), ``n_reach`` (array of n_j, the number of examples that kept the unit and in
    which it was active), and ``max_dropped_example_grad`` (largest |g_nj| over the
    examples that dropped unit j: exactly 0).
    """
    import torch
    from torch import nn

    from dropout_lab.data import load_digits_split

    data = load_digits_split()
    X = torch.as_tensor(data.X_train[:B], dtype=torch.float64)
    y = torch.as_tensor(data.y_train[:B])
    with _one_thread():
        torch.manual_seed(seed)
        lin1 = nn.Linear(64, hidden).double()
        lin2 = nn.Linear(hidden, 10).double()
        scale = _fixed_dropout_scale((B, hidden), p, seed + 7)

        def w1_grad(rows):
            lin1.zero_grad()
            lin2.zero_grad()
            out = lin2(torch.relu(lin1(X[rows])) * scale[rows])
            nn.functional.cross_entropy(out, y[rows]).backward()
            return lin1.weight.grad.detach().clone()

        batch = w1_grad(slice(None))                                            # (hidden, 64)
        per_example = torch.stack([w1_grad(slice(n, n + 1)) for n in range(B)])  # (B, hidden, 64)
        with torch.no_grad():
            reach = (lin1(X) > 0) & (scale > 0)   # (B, hidden): example n sends gradient to unit j
    n_reach = reach.sum(0)
    err_sum, err_ratio = 0.0, 0.0
    for j in torch.nonzero(n_reach > 0).reshape(-1).tolist():
        g = per_example[reach[:, j], j]
        err_sum = max(err_sum, float((batch[j] - g.sum(0) / B).norm() / batch[j].norm()))
        err_ratio = max(err_ratio, abs(float(batch[j].norm() / g.mean(0).norm()) - int(n_reach[j]) / B))
    dropped = (scale == 0).T  # (hidden, B)
    return {
        "B": B,
        "err_sum_over_B": err_sum,
        "err_ratio": err_ratio,
        "n_reach": n_reach[n_reach > 0].numpy(),
        "max_dropped_example_grad": float(per_example.permute(1, 0, 2)[dropped].abs().max()),
    }


# --- Two hidden layers and input dropout ------------------------------------------------------

def two_layer_gradient_check(seed: int = 0, p_in: float = 0.2, p_hidden: float = 0.5,
                             h: float = 1e-5, sizes=(12, 8, 8, 4), n: int = 10) -> dict:
    """Gradient check of a network with input dropout and two dropout hidden layers.

    x~ = x m0/(1-p_in), h1 = relu(x~ W1 + b1), h1~ = h1 m1/(1-p_hidden),
    h2 = relu(h1~ W2 + b2), h2~ = h2 m2/(1-p_hidden), s = h2~ W3 + b3, L = cross-entropy;
    float64, the three masks drawn once by torch's dropout and then FIXED.

    Returns ``fixed`` (per parameter: the largest relative error of autograd against
    central differences with the fixed masks, the |gradient| of the entry where it
    occurs and the absolute difference there), ``fresh`` (the largest relative error
    per parameter when every evaluation of the loss draws new masks: what happens if
    the mask is not fixed), ``fresh_median`` (the median over all entries of all
    parameters of that check) and ``fresh_scale`` (median |fresh-mask estimate| over
    median |gradient|), ``w1_dropped``
    (relative error between autograd's dL/dW1 and x~^T dL/dz1, the derivation's
    formula with the DROPPED input) and ``w1_clean`` (the same with the undropped x;
    ``w1_clean_median`` its median over the entries), ``mask_own`` (largest relative
    error between dL/dh_k and dL/dh~_k m_k/(1-p) over both hidden layers, each with its
    own mask) and ``mask_swapped`` (the same with the two hidden masks exchanged;
    ``mask_swapped_frac`` the fraction of entries of dL/dh_1 and dL/dh_2 that the
    swapped masks get wrong by more than 1e-12), and ``min_abs_z`` (the ReLU input
    closest to 0).
    """
    import torch

    D, H1, H2, C = sizes
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=gen, dtype=torch.float64)
    y = torch.randint(0, C, (n,), generator=gen)
    params = {}
    for name, (a, b) in (("1", (D, H1)), ("2", (H1, H2)), ("3", (H2, C))):
        params["W" + name] = torch.randn(a, b, generator=gen, dtype=torch.float64) * (2.0 / a) ** 0.5
        params["b" + name] = 0.3 * torch.randn(b, generator=gen, dtype=torch.float64)
    s0 = _fixed_dropout_scale((n, D), p_in, 100 * seed + 1)
    s1 = _fixed_dropout_scale((n, H1), p_hidden, 100 * seed + 2)
    s2 = _fixed_dropout_scale((n, H2), p_hidden, 100 * seed + 3)

    def forward(Q, scales, keep=None):
        a0, a1, a2 = scales
        xt = x * a0
        z1 = xt @ Q["W1"] + Q["b1"]
        h1 = torch.relu(z1)
        h1t = h1 * a1
        z2 = h1t @ Q["W2"] + Q["b2"]
        h2 = torch.relu(z2)
        h2t = h2 * a2
        L = torch.nn.functional.cross_entropy(h2t @ Q["W3"] + Q["b3"], y)
        if keep is not None:
            keep.update(xt=xt, z1=z1, h1=h1, h1t=h1t, z2=z2, h2=h2, h2t=h2t)
        return L

    with _one_thread():
        T = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        inner = {}
        L = forward(T, (s0, s1, s2), keep=inner)
        for k in ("z1", "h1", "h1t", "h2", "h2t"):
            inner[k].retain_grad()
        L.backward()
        grads = {k: T[k].grad.numpy() for k in T}

        fixed_num = _central_differences(lambda Q: forward(Q, (s0, s1, s2)),
                                         {k: v.clone() for k, v in params.items()}, h)
        draws = iter(range(10**6))

        def fresh_loss(Q):
            d = 100_000 + 3 * next(draws)
            return forward(Q, (_fixed_dropout_scale((n, D), p_in, d),
                               _fixed_dropout_scale((n, H1), p_hidden, d + 1),
                               _fixed_dropout_scale((n, H2), p_hidden, d + 2)))

        fresh_num = _central_differences(fresh_loss, {k: v.clone() for k, v in params.items()}, h)

        dz1 = inner["z1"].grad
        w1_dropped = _max_rel_err(grads["W1"], (inner["xt"].detach().T @ dz1).numpy())[0]
        w1_clean = _max_rel_err(grads["W1"], (x.T @ dz1).numpy())[0]
        w1_clean_median = _median_rel_err(grads["W1"], (x.T @ dz1).numpy())
        own = max(_max_rel_err(inner["h1"].grad.numpy(), (inner["h1t"].grad * s1).numpy())[0],
                  _max_rel_err(inner["h2"].grad.numpy(), (inner["h2t"].grad * s2).numpy())[0])
        swapped = max(_max_rel_err(inner["h1"].grad.numpy(), (inner["h1t"].grad * s2).numpy())[0],
                      _max_rel_err(inner["h2"].grad.numpy(), (inner["h2t"].grad * s1).numpy())[0])
        wrong = torch.cat([((inner["h1"].grad - inner["h1t"].grad * s2).abs() > 1e-12).reshape(-1),
                           ((inner["h2"].grad - inner["h2t"].grad * s1).abs() > 1e-12).reshape(-1)])
        min_abs_z = float(min(inner["z1"].detach().abs().min(), inner["z2"].detach().abs().min()))
    fixed = {}
    for k in grads:
        err, i = _max_rel_err(grads[k], fixed_num[k])
        a, b = grads[k].reshape(-1)[i], fixed_num[k].reshape(-1)[i]
        fixed[k] = (err, abs(a), abs(a - b))
    all_a = np.concatenate([grads[k].reshape(-1) for k in grads])
    all_fresh = np.concatenate([fresh_num[k].reshape(-1) for k in grads])
    return {
        "fixed": fixed,
        "fresh": {k: _max_rel_err(grads[k], fresh_num[k])[0] for k in grads},
        "fresh_median": _median_rel_err(all_a, all_fresh),
        "fresh_scale": float(np.median(np.abs(all_fresh)) / np.median(np.abs(all_a))),
        "w1_dropped": w1_dropped,
        "w1_clean": w1_clean,
        "w1_clean_median": w1_clean_median,
        "mask_own": own,
        "mask_swapped": swapped,
        "mask_swapped_frac": float(wrong.double().mean()),
        "min_abs_z": min_abs_z,
    }


#: (p_in, p_hidden) settings compared by :func:`depth_experiment`.
DEPTH_CONFIGS = ((0.0, 0.0), (0.0, 0.5), (0.2, 0.0), (0.2, 0.5))


def depth_experiment(configs=DEPTH_CONFIGS, seeds=(0, 1, 2, 3), hidden=(256, 256), epochs: int = 100,
                     lr: float = 0.3, n_train: int = 300) -> dict:
    """Two hidden ReLU layers with input dropout p_in and hidden dropout p_hidden.

    Same data and optimiser as :func:`digits_dropout_curves` (``n_train`` digits,
    plain minibatch SGD, batch 64, learning rate ``lr``, ``epochs`` epochs), with
    ``make_mlp(64, hidden, 10, p_hidden, p_input)`` (torch's ``nn.Dropout``) and
    ``train_torch``. Returns ``{(p_in, p_hidden): dict}`` with the per-epoch curves
    ``val_acc``, ``val_loss`` (shape (len(seeds), epochs), network in eval mode) and,
    for the final network in eval mode, arrays over seeds ``train_acc``,
    ``train_loss``, ``test_acc``, ``test_loss``, ``gap_acc`` (train - test accuracy)
    and ``gap_loss`` (test - train loss). The test set is used once, at the end.
    """
    import torch

    from dropout_lab.data import load_digits_split
    from dropout_lab.nets import make_mlp
    from dropout_lab.training import train_torch

    data = load_digits_split().subset(n_train)
    sets = {name: (torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y))
            for name, X, y in (("train", data.X_train, data.y_train), ("test", data.X_test, data.y_test))}
    out = {}
    with _one_thread():
        for p_in, p_hidden in configs:
            rec = {k: [] for k in ("val_acc", "val_loss", "train_acc", "train_loss", "test_acc", "test_loss")}
            for seed in seeds:
                torch.manual_seed(seed)
                model = make_mlp(data.n_features, tuple(hidden), data.n_classes, p_hidden=p_hidden, p_input=p_in)
                model, hist = train_torch(model, data, epochs=epochs, lr=lr, momentum=0.0, batch_size=64, seed=seed)
                rec["val_acc"].append(hist.val_acc)
                rec["val_loss"].append(hist.val_loss)
                model.eval()
                with torch.no_grad():
                    for name, (X, y) in sets.items():
                        logits = model(X)
                        rec[name + "_loss"].append(float(torch.nn.functional.cross_entropy(logits, y)))
                        rec[name + "_acc"].append(float((logits.argmax(1) == y).float().mean()))
            res = {k: np.array(v) for k, v in rec.items()}
            res["gap_acc"] = res["train_acc"] - res["test_acc"]
            res["gap_loss"] = res["test_loss"] - res["train_loss"]
            out[(p_in, p_hidden)] = res
    return out
