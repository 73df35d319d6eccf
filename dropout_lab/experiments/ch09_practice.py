"""Experiments behind chapter 09's figures (dropout in practice).

Public code only, never a solution of a graded exercise. Networks are small ReLU MLPs on
the course's digits split, several trained at once as stacked weights (S, fan_in, fan_out)
like chapter 01's; dropout masks are drawn inline from a seeded torch generator. Where an
experiment needs the max-norm projection, MC dropout averaging or the dropout-ridge closed
form, it is written inline inside that experiment (no reusable helper with a graded name or
signature).

Every function is seeded and returns plain numbers or arrays, one row per seed where a
spread is reported; ``tests/test_claims_ch09_practice.py`` asserts every claim the prose
page makes about them.
"""
from __future__ import annotations

from dropout_lab.experiments.threads import one_thread

import numpy as np


def _one_thread():
    """torch on one thread (see dropout_lab.experiments.threads)."""
    return one_thread(numpy_too=False)


# --------------------------------------------------------------------------------------
# Stacked MLPs on digits
# --------------------------------------------------------------------------------------

def _digits_tensors():
    import torch

    from dropout_lab.data import load_digits_split

    split = load_digits_split()

    def t(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.float32)

    return split, {"train": (t(split.X_train), torch.as_tensor(split.y_train)),
                   "val": (t(split.X_val), torch.as_tensor(split.y_val)),
                   "test": (t(split.X_test), torch.as_tensor(split.y_test))}


def _init_stack(seeds, sizes, widths=None):
    """Weights (S, fan_in, fan_out) and biases (S, 1, fan_out), each network from its seed
    like ``nn.Linear`` (uniform in +-1/sqrt(fan_in)).

    With ``widths`` (one per network), network s uses only the first ``widths[s]`` units of
    every hidden layer: the other units' weights and biases are zero, so they output
    relu(0) = 0 and (ReLU's derivative at 0 being 0 in torch) receive zero gradients and stay
    zero; the stack then trains networks of different widths exactly.
    """
    import torch

    n_layers = len(sizes) - 1
    Ws, bs = [], []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = torch.zeros(len(seeds), fan_in, fan_out), torch.zeros(len(seeds), 1, fan_out)
        for s, seed in enumerate(seeds):
            fi = fan_in if widths is None or layer == 0 else int(widths[s])
            fo = fan_out if widths is None or layer == n_layers - 1 else int(widths[s])
            bound = 1.0 / np.sqrt(fi)
            g = torch.Generator().manual_seed(9_000 + 10_000 * int(seed) + layer)
            W[s, :fi, :fo] = (2 * torch.rand(fi, fo, generator=g) - 1) * bound
            b[s, :, :fo] = (2 * torch.rand(1, fo, generator=g) - 1) * bound
        Ws.append(W.requires_grad_(True))
        bs.append(b.requires_grad_(True))
    return Ws, bs


def _forward(Ws, bs, x, keep_in=None, keep_hidden=None, gen=None):
    """Logits (S, N, C) of the stacked MLPs for inputs x (S, N, D) or (N, D).

    ``keep_in``/``keep_hidden`` are (S, 1, 1) keep probabilities; None means no dropout
    (the weight-scaled test network of inverted dropout). Masks come from ``gen``.
    """
    import torch

    S = Ws[0].shape[0]
    h = x if x.dim() == 3 else x.expand(S, -1, -1)

    def drop(h, keep):
        if keep is None:
            return h
        mask = (torch.rand(h.shape, generator=gen) < keep).to(h.dtype)
        return h * mask / keep

    h = drop(h, keep_in)
    for i, (W, b) in enumerate(zip(Ws, bs)):
        h = torch.baddbmm(b, h, W)
        if i < len(Ws) - 1:
            h = drop(torch.relu(h), keep_hidden)
    return h


def _errors(Ws, bs, sets):
    import torch

    out = {}
    with torch.no_grad():
        for name, (X, y) in sets.items():
            logits = _forward(Ws, bs, X)
            out[name + "_err"] = (logits.argmax(-1) != y).float().mean(1).numpy().copy()
    return out


def _train_stack(seeds, hidden, p_in, p_hidden, *, steps, lr, optimizer="adam", momentum=0.9,
                 max_norm=None, lr_factor=None, widths=None, batch_size=32, record_every=None,
                 torch_seed=0):
    """Train one MLP per seed on the 1000 training digits (private; returns weights and metrics).

    Network s has its own input and hidden drop probabilities ``p_in[s]``, ``p_hidden[s]``
    (inverted dropout). With ``max_norm = c`` every hidden and output unit's incoming weight
    vector (a column of the stacked (fan_in, fan_out) matrix; a ROW of torch's
    ``nn.Linear.weight``, which is (out, in)) is projected back to norm c after every step
    when it is longer; ``max_norm`` may be one c per network (``inf`` = no constraint).
    With ``optimizer="sgd"``, ``lr_factor[s]`` multiplies network s's loss: SGD with
    momentum is linear in the gradient, so this is exactly a learning rate of
    lr * lr_factor[s] for that network. ``widths``: see :func:`_init_stack`.
    A network whose loss or weights become non-finite is marked diverged
    (its metrics are NaN from then on).
    """
    import torch
    import torch.nn.functional as F

    split, sets = _digits_tensors()
    X, Y = sets["train"]
    n, S = len(Y), len(seeds)
    sizes = (split.n_features,) + tuple(hidden) + (split.n_classes,)
    keep_in = torch.tensor([1 - p for p in p_in], dtype=torch.float32).reshape(S, 1, 1)
    keep_h = torch.tensor([1 - p for p in p_hidden], dtype=torch.float32).reshape(S, 1, 1)
    history = {"step": [], "val_err": [], "max_col_norm": [], "train_loss": []}
    with _one_thread():
        Ws, bs = _init_stack(seeds, sizes, widths)
        params = Ws + bs
        factor = torch.ones(S) if lr_factor is None else torch.as_tensor(lr_factor, dtype=torch.float32)
        if optimizer == "adam" and lr_factor is not None:
            raise ValueError("lr_factor is exact for SGD only (Adam normalises the gradient)")
        c = None
        if max_norm is not None:
            c = torch.as_tensor(np.broadcast_to(np.asarray(max_norm, dtype=float), (S,)).copy(),
                                dtype=torch.float32).reshape(S, 1, 1)
        if optimizer == "adam":
            opt = torch.optim.Adam(params, lr=lr)
        else:
            opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
        gen = torch.Generator().manual_seed(torch_seed)
        order = torch.Generator().manual_seed(torch_seed + 1)
        rows = torch.arange(S)[:, None]
        perm, pos = None, n
        diverged = np.zeros(S, dtype=bool)
        running = torch.zeros(S)
        for step in range(steps + 1):
            if record_every and step % record_every == 0:
                err = _errors(Ws, bs, {"val": sets["val"]})["val_err"]
                err[diverged] = np.nan
                norms = torch.stack([W.detach().norm(dim=1).amax(dim=1) for W in Ws]).amax(0).numpy()
                norms = np.where(diverged, np.nan, norms)
                history["step"].append(step)
                history["val_err"].append(err)
                history["max_col_norm"].append(norms)
                history["train_loss"].append(np.where(diverged, np.nan, running.numpy().copy()))
            if step == steps:
                break
            if pos + batch_size > n:
                perm, pos = torch.argsort(torch.rand(S, n, generator=order), dim=1), 0
            idx = perm[:, pos:pos + batch_size]
            pos += batch_size
            logits = _forward(Ws, bs, X[idx], keep_in, keep_h, gen)
            loss = F.cross_entropy(logits.transpose(1, 2), Y[idx], reduction="none").mean(1)
            running = 0.9 * running + 0.1 * loss.detach() if step else loss.detach()
            opt.zero_grad()
            (loss * factor).sum().backward()
            opt.step()
            with torch.no_grad():
                if c is not None:  # the projection, inline: rescale long columns to c
                    for W in Ws:
                        norms = W.norm(dim=1, keepdim=True)
                        W.mul_(torch.clamp(c / (norms + 1e-12), max=1.0))
                bad = ~torch.isfinite(loss)
                for W in Ws:
                    bad |= ~torch.isfinite(W).all(dim=(1, 2))
                bad = bad.numpy()
                if bad.any():
                    diverged |= bad
                    for P in params:  # park diverged networks at zero so NaNs cannot spread
                        P[torch.as_tensor(bad)] = 0.0
        out = _errors(Ws, bs, {k: sets[k] for k in ("val", "test")})
    out["heldout_err"] = (len(sets["val"][1]) * out["val_err"] + len(sets["test"][1]) * out["test_err"]) / (
        len(sets["val"][1]) + len(sets["test"][1]))
    for k in ("val_err", "test_err", "heldout_err"):
        out[k][diverged] = np.nan
    out["diverged"] = diverged
    out["Ws"], out["bs"] = [W.detach() for W in Ws], [b.detach() for b in bs]
    if record_every:
        out["history"] = {k: np.array(v) for k, v in history.items()}
    return out


# --------------------------------------------------------------------------------------
# Choosing p
# --------------------------------------------------------------------------------------

#: Hidden drop probabilities of :func:`p_sweep`.
P_GRID = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 0.9)
#: Input drop probabilities of :func:`p_sweep` (hidden p = 0.5).
P_IN_GRID = (0.0, 0.1, 0.2, 0.3, 0.5)


def p_sweep(seeds=range(3), width: int = 128, kept_units: int = 64, steps: int = 800,
            ps=P_GRID, p_ins=P_IN_GRID, lr: float = 2e-3):
    """Validation error of 64-n-10 digits MLPs (one hidden layer) against the drop probability.

    Three sweeps, all Adam (lr ``lr``, batch 32, ``steps`` steps, about 26 epochs) on the 1000
    training digits, one network per (value, seed); a seed fixes the initial weights, and
    every network of a sweep sees the same minibatch order: ``fixed``: width n = ``width``,
    hidden p in ``ps``, no input dropout; ``inputs``: width ``width``, hidden p = 0.5, input p
    in ``p_ins``; ``scaled``: hidden p in ``ps`` with the width scaled so that the expected
    number of kept units (1-p) n equals ``kept_units`` (Srivastava et al.'s second panel).
    Returns ``ps``, ``p_ins``, ``widths`` and for each sweep a dict with ``val_err``,
    ``test_err`` and ``heldout_err`` (the 797 validation and test digits together) arrays
    (len(seeds), len(values)).
    """
    seeds = list(seeds)
    k = len(seeds)
    out = {"ps": np.asarray(ps), "p_ins": np.asarray(p_ins)}
    res = _train_stack([s for _ in ps for s in seeds], (width,), [0.0] * len(ps) * k,
                       [p for p in ps for _ in seeds], steps=steps, lr=lr, torch_seed=1)
    out["fixed"] = {key: res[key].reshape(-1, k).T for key in ("val_err", "test_err", "heldout_err")}
    res = _train_stack([s for _ in p_ins for s in seeds], (width,), [p for p in p_ins for _ in seeds],
                       [0.5] * len(p_ins) * k, steps=steps, lr=lr, torch_seed=1)
    out["inputs"] = {key: res[key].reshape(-1, k).T for key in ("val_err", "test_err", "heldout_err")}
    widths = [int(round(kept_units / (1 - p))) for p in ps]
    scaled = {key: np.zeros((k, len(ps))) for key in ("val_err", "test_err", "heldout_err")}
    # two stacks (narrow and wide) so the narrow networks are not padded to the widest
    groups = [[j for j, w in enumerate(widths) if w <= 4 * kept_units],
              [j for j, w in enumerate(widths) if w > 4 * kept_units]]
    for g, group in enumerate(groups):
        if not group:
            continue
        res = _train_stack([s for _ in group for s in seeds], (max(widths[j] for j in group),),
                           [0.0] * len(group) * k, [ps[j] for j in group for _ in seeds],
                           widths=[widths[j] for j in group for _ in seeds], steps=steps, lr=lr,
                           torch_seed=1)
        for key in scaled:
            scaled[key][:, group] = res[key].reshape(-1, k).T
    out["scaled"] = scaled
    out["widths"] = np.asarray(widths)
    return out


# --------------------------------------------------------------------------------------
# Max-norm and high learning rates
# --------------------------------------------------------------------------------------

#: Learning rates of :func:`max_norm_runs` (SGD, momentum 0.95).
MAX_NORM_LRS = (0.01, 0.03, 0.1, 0.3)


def max_norm_runs(seeds=range(3), lrs=MAX_NORM_LRS, c: float = 3.0, steps: int = 800,
                  momentum: float = 0.95, record_every: int = 20, width: int = 128):
    """SGD with momentum on a 64-128-10 MLP with dropout (input 0.2, hidden 0.5), with and
    without a max-norm constraint of norm ``c`` on every unit's incoming weights, over a range
    of learning rates. All networks train in one stack (same minibatch order, seeds fix the
    initial weights).

    Returns ``lrs``, ``step``, and for ``"none"`` and ``"max-norm"``: ``val_err`` and
    ``heldout_err`` (len(seeds), len(lrs)) at the end, ``dead_frac`` (len(seeds), len(lrs)) the
    fraction of hidden units that output 0 for every training digit at the end, ``diverged`` (len(seeds), len(lrs)) non-finite loss or weights,
    ``val_err_hist`` and ``max_col_norm`` (len(lrs), len(seeds), n_records): the validation
    error and the largest incoming-weight norm over all units, during training.
    """
    seeds = list(seeds)
    k, L = len(seeds), len(lrs)
    nets = [(con, lr, s) for con in (False, True) for lr in lrs for s in seeds]
    res = _train_stack([s for _, _, s in nets], (width,), [0.2] * len(nets), [0.5] * len(nets),
                       steps=steps, lr=1.0, optimizer="sgd", momentum=momentum,
                       max_norm=[c if con else np.inf for con, _, _ in nets],
                       lr_factor=[lr for _, lr, _ in nets], record_every=record_every, torch_seed=50)
    h = res["history"]
    import torch

    _, sets = _digits_tensors()
    with torch.no_grad():  # a hidden unit is dead when it outputs 0 for every training digit
        pre = torch.baddbmm(res["bs"][0], sets["train"][0].expand(len(nets), -1, -1), res["Ws"][0])
        dead = (pre.amax(dim=1) <= 0).float().mean(1).numpy()
    out = {"lrs": np.asarray(lrs), "step": h["step"], "c": c}
    for i, name in enumerate(("none", "max-norm")):
        sl = slice(i * L * k, (i + 1) * L * k)
        out[name] = {"val_err": res["val_err"][sl].reshape(L, k).T,
                     "heldout_err": res["heldout_err"][sl].reshape(L, k).T,
                     "dead_frac": dead[sl].reshape(L, k).T,
                     "diverged": res["diverged"][sl].reshape(L, k).T,
                     "val_err_hist": h["val_err"][:, sl].T.reshape(L, k, -1),
                     "max_col_norm": h["max_col_norm"][:, sl].T.reshape(L, k, -1)}
    return out


# --------------------------------------------------------------------------------------
# Dropout in linear regression is a data-dependent ridge
# --------------------------------------------------------------------------------------

def _regression_problem(seed, n=100, d=6):
    """A linear regression whose columns have very different scales and some correlation."""
    rng = np.random.default_rng(seed)
    scales = np.array([3.0, 2.0, 1.0, 1.0, 0.5, 0.3])[:d]
    Z = rng.normal(size=(n, d))
    Z[:, 1] = 0.6 * Z[:, 0] + 0.8 * Z[:, 1]
    X = Z * scales
    w_true = rng.normal(size=d)
    y = X @ w_true + 0.5 * rng.normal(size=n)
    return X, y


def expected_loss_check(p: float = 0.3, seed: int = 0, n_masks: int = 200_000):
    """Monte Carlo check of the expected loss under inverted input dropout.

    For one regression problem and a random w, averages ||y - (M * X / (1-p)) w||^2 over
    ``n_masks`` masks (M_ij ~ Bernoulli(1-p)) and compares it with the formula
    ||y - X w||^2 + p/(1-p) * sum_j w_j^2 (X^T X)_jj. Returns (monte_carlo, formula,
    standard_error of the Monte Carlo mean).
    """
    X, y = _regression_problem(seed)
    rng = np.random.default_rng(seed + 1)
    w = rng.normal(size=X.shape[1])
    vals = np.empty(n_masks)
    chunk = 2000
    for start in range(0, n_masks, chunk):
        M = rng.random((chunk, *X.shape)) >= p
        r = y - np.einsum("knd,d->kn", M * X / (1 - p), w)
        vals[start:start + chunk] = (r ** 2).sum(1)
    formula = np.sum((y - X @ w) ** 2) + p / (1 - p) * np.sum(w ** 2 * np.sum(X ** 2, axis=0))
    return float(vals.mean()), float(formula), float(vals.std() / np.sqrt(n_masks))


def _dropout_sgd(problems, ps, rngs, steps, batch_size, lr, record_every, targets):
    """SGD with inverted input dropout on several regressions at once (private).

    ``problems``: list of (X, y) of equal shapes; ``ps``: one drop probability each. The
    learning rate decays as lr / (1 + t/5000); the returned iterate is the average over the
    second half of training (Polyak averaging), so the mask noise averages out. Returns the
    averaged iterates (K, d) and the distances of the current (averaged) iterate to each of
    ``targets`` (name -> (K, d)), relative to the norm of ``targets["ols"]``, every
    ``record_every`` steps.
    """
    X = np.stack([P[0] for P in problems])
    y = np.stack([P[1] for P in problems])
    K, n, d = X.shape
    keep = (1 - np.asarray(ps, dtype=float))[:, None, None]
    rng = rngs
    w = np.zeros((K, d))
    avg, n_avg = np.zeros((K, d)), 0
    rows = np.arange(K)[:, None]
    ref = np.linalg.norm(targets["ols"], axis=1)
    hist = {name: [] for name in targets}
    for t in range(steps + 1):
        if t % record_every == 0:
            cur = avg / n_avg if n_avg else w
            for name, target in targets.items():
                hist[name].append(np.linalg.norm(cur - target, axis=1) / ref)
        if t == steps:
            break
        idx = rng.integers(0, n, (K, batch_size))
        Xb = X[rows, idx] * (rng.random((K, batch_size, d)) < keep) / keep
        r = np.einsum("kbd,kd->kb", Xb, w) - y[rows, idx]
        w = w - lr / (1 + t / 5000) * 2 * np.einsum("kbd,kb->kd", Xb, r) / batch_size
        if t >= steps // 2:
            avg += w
            n_avg += 1
    return avg / n_avg, {name: np.array(v).T for name, v in hist.items()}


def dropout_regression_sgd(p: float = 0.5, seeds=range(5), steps: int = 30_000, batch_size: int = 10,
                           lr: float = 2e-3, record_every: int = 250):
    """SGD with inverted input dropout on a linear regression, against two closed forms.

    Each seed draws a problem (:func:`_regression_problem`: 100 examples, 6 features of
    scales 3 to 0.3, two of them correlated) and runs SGD on the squared error of a
    minibatch of 10 whose inputs are dropped with probability ``p`` and scaled by 1/(1-p)
    (decaying learning rate, Polyak averaging over the second half). The dropout-ridge
    minimiser (X^T X + p/(1-p) diag(X^T X))^{-1} X^T y and the least-squares solution are
    computed inline. Returns ``step``, ``dist_ridge``/``dist_ols`` (len(seeds), n_records):
    the distance of the averaged iterate to each solution relative to ||w_ols||;
    ``final_ridge``/``final_ols`` (len(seeds),) at the end; ``w_sgd``, ``w_ridge``,
    ``w_ols`` (len(seeds), d).
    """
    seeds = list(seeds)
    problems = [_regression_problem(s) for s in seeds]
    w_ridge, w_ols = [], []
    for X, y in problems:
        G = X.T @ X
        w_ridge.append(np.linalg.solve(G + p / (1 - p) * np.diag(np.diag(G)), X.T @ y))
        w_ols.append(np.linalg.lstsq(X, y, rcond=None)[0])
    targets = {"ridge": np.array(w_ridge), "ols": np.array(w_ols)}
    w_sgd, hist = _dropout_sgd(problems, [p] * len(seeds), np.random.default_rng(1000 + seeds[0]),
                               steps, batch_size, lr, record_every, targets)
    return {"step": np.arange(0, steps + 1, record_every), "dist_ridge": hist["ridge"],
            "dist_ols": hist["ols"], "final_ridge": hist["ridge"][:, -1], "final_ols": hist["ols"][:, -1],
            "w_sgd": w_sgd, "w_ridge": targets["ridge"], "w_ols": targets["ols"]}


def ridge_shrinkage(ps=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), seed: int = 0, steps: int = 30_000):
    """Per p: the coefficients that dropout-SGD reaches (as :func:`dropout_regression_sgd`, on
    the problem of ``seed``) and the closed-form dropout-ridge coefficients, both divided by
    the least-squares coefficients. Returns ``ps``, ``sgd`` and ``closed`` (len(ps), d), and
    ``plain_ridge`` (len(ps), d): ordinary ridge with the same total penalty
    p/(1-p) trace(X^T X)/d on every coefficient, for comparison."""
    X, y = _regression_problem(seed)
    G = X.T @ X
    w_ols = np.linalg.lstsq(X, y, rcond=None)[0]
    closed, plain = [], []
    for p in ps:
        lam = p / (1 - p)
        closed.append(np.linalg.solve(G + lam * np.diag(np.diag(G)), X.T @ y))
        plain.append(np.linalg.solve(G + lam * np.trace(G) / len(G) * np.eye(len(G)), X.T @ y))
    targets = {"ridge": np.array(closed), "ols": np.tile(w_ols, (len(ps), 1))}
    w_sgd, _ = _dropout_sgd([(X, y)] * len(ps), ps, np.random.default_rng(2000 + seed), steps, 10,
                            2e-3, steps, targets)
    return {"ps": np.asarray(ps), "sgd": w_sgd / w_ols, "closed": np.array(closed) / w_ols,
            "plain_ridge": np.array(plain) / w_ols}


# --------------------------------------------------------------------------------------
# MC dropout
# --------------------------------------------------------------------------------------

#: Numbers of stochastic passes T of :func:`mc_dropout_study`.
MC_TS = (1, 2, 3, 5, 10, 20, 50, 100)


def _shift_images(X, dx, dy):
    imgs = X.reshape(-1, 8, 8)
    out = np.zeros_like(imgs)
    src = imgs[:, max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)]
    out[:, max(0, dy):8 - max(0, -dy), max(0, dx):8 - max(0, -dx)] = src
    return out.reshape(len(X), 64)


def unseen_inputs(seed: int = 0):
    """Inputs the network never saw, made from the 400 test digits: ``noise`` (uniform
    pixels in [0, 1]), ``rotated`` (each digit turned by 90 degrees) and ``shifted`` (moved
    3 pixels right and 2 down, zeros filled in). Returns name -> (400, 64) array."""
    from dropout_lab.data import load_digits_split

    X = load_digits_split().X_test
    rng = np.random.default_rng(seed)
    return {"noise": rng.random(X.shape),
            "rotated": np.rot90(X.reshape(-1, 8, 8), k=1, axes=(1, 2)).reshape(len(X), 64),
            "shifted": _shift_images(X, 3, 2)}


def mc_dropout_study(seeds=range(4), ts=MC_TS, repeats: int = 5, steps: int = 800, width: int = 128,
                     n_bins: int = 10, t_max: int = 100):
    """MC dropout on 64-128-10 digits MLPs trained with hidden dropout p = 0.5.

    Adam (lr 2e-3, batch 32, ``steps`` steps), one network per seed, trained together. Prediction, written
    inline: dropout stays on, the softmax of T stochastic passes is averaged (predictive
    mean) and its entropy (nats) is the uncertainty. Returns:

    * ``ts``, ``acc_mc`` (len(seeds), len(ts)): test accuracy with T passes, averaged over
      ``repeats`` independent sets of passes, and ``acc_scaled`` (len(seeds),) of the
      weight-scaled network (dropout off);
    * ``entropy``: name -> (len(seeds),) mean predictive entropy with T = ``t_max`` on the
      test digits and on each of :func:`unseen_inputs`, ``entropy_scaled`` likewise for the
      weight-scaled network's softmax, and ``auroc_mc``/``auroc_scaled``: name ->
      (len(seeds),) how well entropy separates test digits from those inputs (1 = perfectly);
    * reliability on the 797 validation and test digits: ``bin_edges``, ``bin_conf``,
      ``bin_acc``, ``bin_count`` for ``mc`` and ``scaled`` (len(seeds), n_bins), and
      ``ece_mc``, ``ece_scaled``, ``nll_mc``, ``nll_scaled`` (len(seeds),).
    """
    import torch

    seeds = list(seeds)
    S = len(seeds)
    res = _train_stack(seeds, (width,), [0.0] * S, [0.5] * S, steps=steps, lr=2e-3, torch_seed=70)
    Ws, bs = res["Ws"], res["bs"]
    split, sets = _digits_tensors()
    keep_h = torch.full((S, 1, 1), 0.5)
    out = {"ts": np.asarray(ts)}

    def probs_scaled(X):
        with torch.no_grad():
            return torch.softmax(_forward(Ws, bs, X), -1).numpy()

    def probs_mc(X, T, gen):
        with torch.no_grad():
            total = 0
            for _ in range(T):
                total = total + torch.softmax(_forward(Ws, bs, X, None, keep_h, gen), -1)
            return (total / T).numpy()

    def entropy(P):
        return -(P * np.log(np.clip(P, 1e-12, None))).sum(-1)

    with _one_thread():
        Xt, yt = sets["test"]
        yt = yt.numpy()
        gen = torch.Generator().manual_seed(71)
        # accuracy against T (the passes of different T are independent draws)
        acc = np.zeros((S, len(ts)))
        for j, T in enumerate(ts):
            for _ in range(repeats):
                acc[:, j] += (probs_mc(Xt, T, gen).argmax(-1) == yt).mean(1) / repeats
        out["acc_mc"] = acc
        out["acc_scaled"] = (probs_scaled(Xt).argmax(-1) == yt).mean(1)
        # entropy on test digits against inputs never seen
        inputs = {"test digits": Xt}
        inputs.update({k: torch.as_tensor(v, dtype=torch.float32) for k, v in unseen_inputs().items()})
        ent_mc, ent_sc = {}, {}
        for name, X in inputs.items():
            ent_mc[name] = entropy(probs_mc(X, t_max, gen))
            ent_sc[name] = entropy(probs_scaled(X))
        out["entropy"] = {k: v.mean(1) for k, v in ent_mc.items()}
        out["entropy_scaled"] = {k: v.mean(1) for k, v in ent_sc.items()}
        out["entropy_values"] = {k: v for k, v in ent_mc.items()}
        out["auroc_mc"], out["auroc_scaled"] = {}, {}
        for name in list(inputs)[1:]:
            for key, ent in (("auroc_mc", ent_mc), ("auroc_scaled", ent_sc)):
                a, b = ent["test digits"], ent[name]   # (S, N): unseen should be higher
                out[key][name] = np.array([_auroc(a[s], b[s]) for s in range(S)])
        # reliability on validation + test digits
        Xh = torch.cat([sets["val"][0], Xt])
        yh = np.concatenate([sets["val"][1].numpy(), yt])
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        out["bin_edges"] = edges
        for key, P in (("mc", probs_mc(Xh, t_max, gen)), ("scaled", probs_scaled(Xh))):
            conf, pred = P.max(-1), P.argmax(-1)
            correct = pred == yh
            b = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
            cnt = np.zeros((S, n_bins))
            cf = np.full((S, n_bins), np.nan)
            ac = np.full((S, n_bins), np.nan)
            for s in range(S):
                for k in range(n_bins):
                    sel = b[s] == k
                    cnt[s, k] = sel.sum()
                    if sel.any():
                        cf[s, k], ac[s, k] = conf[s, sel].mean(), correct[s, sel].mean()
            out[f"bin_count_{key}"], out[f"bin_conf_{key}"], out[f"bin_acc_{key}"] = cnt, cf, ac
            gap = np.nan_to_num(np.abs(cf - ac))
            out[f"ece_{key}"] = (cnt * gap).sum(1) / len(yh)
            out[f"nll_{key}"] = -np.log(np.clip(P[:, np.arange(len(yh)), yh], 1e-12, None)).mean(1)
            out[f"acc_heldout_{key}"] = correct.mean(1)
    return out


def _auroc(neg, pos):
    """Probability that a random ``pos`` score exceeds a random ``neg`` score (ties count 1/2)."""
    neg, pos = np.asarray(neg), np.asarray(pos)
    allv = np.concatenate([neg, pos])
    ranks = np.argsort(np.argsort(allv, kind="mergesort"), kind="mergesort").astype(float) + 1
    # average ranks of ties
    order = np.argsort(allv, kind="mergesort")
    sorted_v = allv[order]
    i = 0
    while i < len(sorted_v):
        j = i
        while j + 1 < len(sorted_v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        if j > i:
            ranks[order[i:j + 1]] = (i + j + 2) / 2
        i = j + 1
    r_pos = ranks[len(neg):].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
