"""Experiments behind chapter 03's figures (co-adaptation, measured).

One set of trained networks serves every figure: :func:`train_networks` trains
64-128-10 ReLU MLPs on the 1000 training digits, one per (drop probability, seed),
all at once as stacked weights, and returns their parameters. Every measurement
below takes that dict and returns arrays with a leading (len(p_values), len(seeds))
shape, so the page and ``tests/test_claims_ch03_coadaptation.py`` compute the same
numbers from the same networks.

Public code, never a solution of a graded exercise: dropout during training is torch's
built-in ``torch.nn.functional.dropout``; the measurements are batched torch
computations over all networks at once (private helpers), and what they return are
summaries for figures (sorted importance curves, histograms, per-network means),
not the per-network functions the chapter's exercise notebook asks for.
"""
from __future__ import annotations

from dropout_lab.experiments.threads import one_thread

import numpy as np

#: Hidden width: wide enough that 1000 digits are fitted, small enough that fifteen
#: networks train in a few seconds on one CPU thread.
HIDDEN = 128

#: Drop probabilities compared on the page (hidden layer only; inputs are never dropped).
P_VALUES = (0.0, 0.2, 0.5)

#: Adam steps (batch 32, learning rate 2e-3): 48 epochs of the 1000 training digits.
STEPS = 1500

#: Deleted fractions of :func:`deletion_curves`: multiples of 1/16, so that
#: ``fraction * HIDDEN`` is a whole number of units and 1/(1 - fraction) = H/(H - k).
FRACTIONS = np.arange(16) / 16


def _one_thread():
    """torch on one thread (see dropout_lab.experiments.threads)."""
    return one_thread(numpy_too=False)


def _heldout():
    """The 797 validation and test digits together (nothing is selected on them here)."""
    from dropout_lab.data import load_digits_split

    split = load_digits_split()
    return np.vstack([split.X_val, split.X_test]), np.concatenate([split.y_val, split.y_test])


def _init(seed, n_in, hidden, n_out):
    """Weights of one network, like ``nn.Linear`` (uniform in +-1/sqrt(fan_in)), from its seed."""
    import torch

    out = []
    for layer, (fan_in, fan_out) in enumerate(((n_in, hidden), (hidden, n_out))):
        g = torch.Generator().manual_seed(10_000 * int(seed) + layer)
        bound = 1.0 / np.sqrt(fan_in)
        out.append((2 * torch.rand(fan_in, fan_out, generator=g) - 1) * bound)
        out.append((2 * torch.rand(fan_out, generator=g) - 1) * bound)
    return out


def train_networks(seeds=range(5), p_values=P_VALUES, hidden: int = HIDDEN, steps: int = STEPS,
                   batch_size: int = 32, lr: float = 2e-3, torch_seed: int = 0) -> dict:
    """Train one 64-``hidden``-10 ReLU MLP per (drop probability, seed) on the 1000 training digits.

    Network (i, s) starts from weights drawn with ``seeds[s]`` (the same start for every
    p: the comparison is paired), sees the training images in an order drawn for its
    seed (again shared across p), and applies inverted dropout with drop probability
    ``p_values[i]`` to its hidden layer while training (torch's ``F.dropout``, masks
    drawn from a generator seeded with ``torch_seed``). Adam, ``steps`` minibatches of
    ``batch_size``.

    Returns numpy arrays: ``W1`` (P, S, 64, H), ``b1`` (P, S, H), ``W2`` (P, S, H, 10),
    ``b2`` (P, S, 10); ``W1_init`` (S, 64, H), the common starting weights;
    ``train_err`` and ``heldout_err`` (P, S), measured without dropout; ``p`` and ``seeds``.
    """
    import torch
    import torch.nn.functional as F

    from dropout_lab.data import load_digits_split

    split = load_digits_split()
    seeds, p_values = [int(s) for s in seeds], [float(p) for p in p_values]
    P, S = len(p_values), len(seeds)
    X = torch.as_tensor(split.X_train, dtype=torch.float32)
    Y = torch.as_tensor(split.y_train)
    n = len(Y)
    inits = [_init(s, X.shape[1], hidden, split.n_classes) for s in seeds]
    with _one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed)  # F.dropout draws its masks from the global generator
        params = [torch.nn.Parameter(torch.stack([w[k] for w in inits]).unsqueeze(0).repeat(
            P, *([1] * (inits[0][k].dim() + 1)))) for k in range(4)]
        W1, b1, W2, b2 = params
        opt = torch.optim.Adam(params, lr=lr)
        order = torch.Generator().manual_seed(torch_seed + 1)
        bs = min(batch_size, n)
        perm, pos = None, n
        for _ in range(steps):
            if pos + bs > n:  # a new epoch: a fresh order per seed, shared by every p
                perm, pos = torch.argsort(torch.rand(S, n, generator=order), dim=1), 0
            idx = perm[:, pos:pos + bs]
            pos += bs
            h = torch.relu(X[idx] @ W1 + b1[:, :, None, :])           # (P, S, B, H)
            h = torch.stack([F.dropout(h[i], p, training=True) if p > 0 else h[i]
                             for i, p in enumerate(p_values)])
            logits = h @ W2 + b2[:, :, None, :]
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                   Y[idx].repeat(P, 1, 1).reshape(-1), reduction="sum") / bs
            opt.zero_grad()
            loss.backward()
            opt.step()
        out = {k: v.detach().numpy().copy() for k, v in zip(("W1", "b1", "W2", "b2"), params)}
    out["W1_init"] = np.stack([w[0].numpy() for w in inits])
    Xh, yh = _heldout()
    for name, (Xe, ye) in {"train": (split.X_train, split.y_train), "heldout": (Xh, yh)}.items():
        logits = _logits(out, Xe)
        out[name + "_err"] = (logits.argmax(-1) != ye).mean(-1)
    out["p"], out["seeds"] = np.asarray(p_values), np.asarray(seeds)
    return out


# --------------------------------------------------------------------------------------
# Forward passes of all networks at once (torch, float32)
# --------------------------------------------------------------------------------------

def _tensors(nets):
    import torch

    return [torch.as_tensor(nets[k]) for k in ("W1", "b1", "W2", "b2")]


def _pre_and_hidden(nets, X):
    """Pre-activations and hidden activations of every network, each (P, S, N, H)."""
    import torch

    W1, b1, _, _ = _tensors(nets)
    z = torch.as_tensor(X, dtype=torch.float32) @ W1 + b1[:, :, None, :]
    return z, torch.relu(z)


def _logits(nets, X):
    _, _, W2, b2 = _tensors(nets)
    _, h = _pre_and_hidden(nets, X)
    return (h @ W2 + b2[:, :, None, :]).numpy()


def _live(h, tol=1e-6):
    """(P, S, H) bool: units whose activation is not constant over the images."""
    return h.std(dim=2) > tol


# --------------------------------------------------------------------------------------
# 1. Correlation between hidden units
# --------------------------------------------------------------------------------------

def _corr_over_live(a, live):
    """Pearson correlation matrices (P, S, H, H) of the columns of ``a`` (P, S, N, H);
    rows and columns of non-live units are set to NaN, the diagonal too."""
    import torch

    c = a - a.mean(dim=2, keepdim=True)
    sd = c.pow(2).mean(dim=2).sqrt()
    c = c / torch.where(live, sd, torch.ones_like(sd))[:, :, None, :]
    r = c.transpose(2, 3) @ c / a.shape[2]
    pair = live[..., :, None] & live[..., None, :]
    pair &= ~torch.eye(a.shape[-1], dtype=torch.bool)
    return torch.where(pair, r, torch.full_like(r, float("nan")))


def correlation_summary(nets, bins=np.linspace(-1, 1, 41), high: float = 0.8) -> dict:
    """How correlated the hidden units of every network are, on the 797 held-out digits.

    Pearson correlations over the images between the activations of two distinct
    live units (a unit whose activation is the same on every image has no correlation
    and is left out). Returns, each (P, S) unless stated: ``mean_abs`` (mean of |r|
    over the pairs), ``mean_abs_pre`` (the same for the pre-activations W1 x + b1 of
    the same live units, before the ReLU), ``nearest`` (the mean over live units of
    their largest |r| with any other unit: how close the nearest copy is),
    ``frac_high`` (fraction of pairs with |r| > ``high``), ``n_live``; ``hist``
    (P, S, len(bins) - 1), the density of r over the pairs; and ``bins``.
    """
    import torch

    Xh, _ = _heldout()
    with _one_thread():
        z, h = _pre_and_hidden(nets, Xh)
        live = _live(h)
        out = {"bins": np.asarray(bins), "n_live": live.sum(-1).numpy()}
        for key, a in (("mean_abs", h), ("mean_abs_pre", z)):
            r = _corr_over_live(a, live).abs()
            out[key] = torch.nanmean(r.flatten(2), dim=2).numpy()
            if key == "mean_abs":
                out["nearest"] = (torch.nan_to_num(r, nan=-1.0).amax(-1).where(live, torch.nan)
                                  .nanmean(-1).numpy())
                out["frac_high"] = torch.nanmean((r > high).float().where(~r.isnan(), torch.nan)
                                                 .flatten(2), dim=2).numpy()
                signed = _corr_over_live(h, live).flatten(2).numpy()
        hist = np.zeros(signed.shape[:2] + (len(bins) - 1,))
        for i in np.ndindex(signed.shape[:2]):
            v = signed[i][~np.isnan(signed[i])]
            hist[i] = np.histogram(v, bins=bins, density=True)[0]
        out["hist"] = hist
    return out


# --------------------------------------------------------------------------------------
# 2. Sparsity: inactive entries, mean activations, the histogram of activations
# --------------------------------------------------------------------------------------

def activation_summary(nets, unit_bins=np.linspace(0, 3, 31), act_bins=np.linspace(0, 6, 49)) -> dict:
    """Sparsity of the hidden layer on the 797 held-out digits (test-time network, no dropout).

    Returns, each (P, S): ``frac_inactive`` (fraction of all activations <= 0, dead units
    included), ``frac_inactive_live`` (the same over live units only), ``n_dead`` (units
    that are 0 on every image), ``mean_activation`` (mean over all activations),
    ``unit_mean_median`` (median over live units of their mean activation),
    ``out_weight`` (mean length of a live unit's outgoing weight vector, the row of W2)
    and ``contribution`` (mean of mean-activation x outgoing length over live units: the
    size of what a unit sends to the output, which does not change when the scale of a
    unit moves between W1 and W2); ``unit_hist`` (P, S, len(unit_bins) - 1), the density
    of the live units' mean activations; ``act_hist`` (P, S, len(act_bins) - 1), the
    density of the positive activations (the zeros are counted by ``frac_inactive``);
    ``frac_above`` (P, S), the fraction of activations above ``act_bins[-1]``; and, over
    live units, ``pre_mean`` (P, S), the mean pre-activation W1 x + b1 over images and
    units, and ``pre_spread`` (P, S), the mean over units of its standard deviation over
    the images.
    """
    Xh, _ = _heldout()
    with _one_thread():
        z, h = _pre_and_hidden(nets, Xh)
        live = _live(h).numpy()
        h, z = h.numpy(), z.numpy()
    W2 = np.asarray(nets["W2"])
    P, S = h.shape[:2]
    out = {k: np.zeros((P, S)) for k in ("frac_inactive", "frac_inactive_live", "n_dead", "mean_activation",
                                          "unit_mean_median", "out_weight", "contribution", "frac_above",
                                          "pre_mean", "pre_spread")}
    out["unit_hist"] = np.zeros((P, S, len(unit_bins) - 1))
    out["act_hist"] = np.zeros((P, S, len(act_bins) - 1))
    for i, s in np.ndindex(P, S):
        a, lv = h[i, s], live[i, s]
        means = a[:, lv].mean(axis=0)
        norms = np.linalg.norm(W2[i, s][lv], axis=1)
        out["frac_inactive"][i, s] = (a <= 0).mean()
        out["frac_inactive_live"][i, s] = (a[:, lv] <= 0).mean()
        out["n_dead"][i, s] = (~lv).sum()
        out["mean_activation"][i, s] = a.mean()
        out["unit_mean_median"][i, s] = np.median(means)
        out["out_weight"][i, s] = norms.mean()
        out["contribution"][i, s] = (means * norms).mean()
        out["unit_hist"][i, s] = np.histogram(means, bins=unit_bins, density=True)[0]
        pos = a[a > 0]
        out["act_hist"][i, s] = np.histogram(pos, bins=act_bins)[0] / pos.size / np.diff(act_bins)
        out["frac_above"][i, s] = (a > act_bins[-1]).mean()
        out["pre_mean"][i, s] = z[i, s][:, lv].mean()
        out["pre_spread"][i, s] = z[i, s][:, lv].std(axis=0).mean()
    out["unit_bins"], out["act_bins"] = np.asarray(unit_bins), np.asarray(act_bins)
    return out


def _mean_ce(logits, y):
    """Mean cross-entropy (nats) over the images of every network: logits (P, S, N, C) -> (P, S)."""
    import torch.nn.functional as F

    P, S, N, C = logits.shape
    return F.cross_entropy(logits.reshape(-1, C), y.repeat(P * S), reduction="none").reshape(P, S, N).mean(-1)


# --------------------------------------------------------------------------------------
# 3. Single-unit ablation and deleting the most important units first
# --------------------------------------------------------------------------------------

def importance_summary(nets, ks=(0, 1, 2, 4, 8, 16, 32, 64), n_random: int = 20, seed: int = 0) -> dict:
    """How the held-out accuracy is spread over the hidden units.

    The importance of unit j is the accuracy of the full network minus its accuracy
    when unit j's activation is replaced by 0 on every image (no rescaling of the
    others). Returns ``full_acc`` (P, S); ``sorted`` (P, S, H), every network's
    importances sorted from largest to smallest (unit identities are not kept);
    ``top``, ``total`` (sum over units), ``n_positive``, ``n_negative``, ``n_zero``
    (P, S); and the accuracy after zeroing several units at once: ``ordered`` (P, S,
    len(ks)), the k units of largest single-unit importance, and ``random`` (P, S,
    len(ks)), k units drawn at random (mean over ``n_random`` draws); ``ks``.
    """
    import torch

    Xh, yh = _heldout()
    y = torch.as_tensor(yh)
    ks = np.asarray(ks)
    with _one_thread():
        _, _, W2, b2 = _tensors(nets)
        _, h = _pre_and_hidden(nets, Xh)
        logits = h @ W2 + b2[:, :, None, :]
        full = (logits.argmax(-1) == y).float().mean(-1)                    # (P, S)
        P, S, N, H = h.shape
        full_loss = _mean_ce(logits, y)
        imp, loss_imp = torch.zeros(P, S, H), torch.zeros(P, S, H)
        for j in range(H):  # remove unit j's contribution h_j * W2[j] from the logits
            lj = logits - h[..., j:j + 1] * W2[:, :, None, j, :]
            imp[..., j] = full - (lj.argmax(-1) == y).float().mean(-1)
            loss_imp[..., j] = _mean_ce(lj, y) - full_loss
        order = torch.argsort(imp, dim=-1, descending=True)
        gen = torch.Generator().manual_seed(seed)
        rand = torch.argsort(torch.rand(n_random, P, S, H, generator=gen), dim=-1)

        def acc_without(units, k):
            keep = torch.ones(units.shape[:-1] + (H,))
            keep.scatter_(-1, units[..., :k], 0.0)
            out = (h * keep[..., None, :]) @ W2 + b2[:, :, None, :]
            return (out.argmax(-1) == y).float().mean(-1)

        ordered = torch.stack([acc_without(order, int(k)) for k in ks], dim=-1)
        randoms = torch.stack([torch.stack([acc_without(rand[r], int(k)) for k in ks], dim=-1)
                               for r in range(n_random)]).mean(0)
    imp, loss_imp = imp.numpy(), loss_imp.numpy()
    loss_sorted = -np.sort(-loss_imp, axis=-1)
    pos = np.clip(loss_sorted, 0, None)
    return {"full_acc": full.numpy(), "full_loss": full_loss.numpy(), "loss_sorted": loss_sorted,
            "loss_top10_share": pos[..., :10].sum(-1) / pos.sum(-1),
            "sorted": -np.sort(-imp, axis=-1), "top": imp.max(-1),
            "total": imp.sum(-1), "n_positive": (imp > 0).sum(-1), "n_negative": (imp < 0).sum(-1),
            "n_zero": (imp == 0).sum(-1), "ordered": ordered.numpy(), "random": randoms.numpy(), "ks": ks,
            "n_images": len(yh)}


# --------------------------------------------------------------------------------------
# 4. Graceful degradation: deleting a random fraction of the hidden units at test time
# --------------------------------------------------------------------------------------

def deletion_curves(nets, fractions=FRACTIONS, n_repeats: int = 20, seed: int = 0) -> dict:
    """Held-out accuracy and loss when a random set of round(fraction * H) hidden units
    is deleted (its activations set to 0 on every image) at test time.

    For every repeat a set of units is drawn uniformly without replacement, the same
    sets for every p (paired by seed). ``rescaled``: the surviving activations are
    multiplied by 1 / (1 - fraction), as inverted dropout does during training.
    Returns ``fractions`` and, each (P, S, len(fractions)) and averaged over the
    repeats: ``acc``, ``acc_rescaled``, ``loss``, ``loss_rescaled`` (mean
    cross-entropy in nats), ``acc_sd`` (the standard deviation of the accuracy over
    repeats, averaged over networks) and ``changed`` (fraction of (image, repeat)
    pairs whose predicted class differs between the plain and the rescaled network).
    """
    import torch
    import torch.nn.functional as F

    Xh, yh = _heldout()
    y = torch.as_tensor(yh)
    fractions = np.asarray(fractions, dtype=float)
    with _one_thread():
        _, _, W2, b2 = _tensors(nets)
        _, h = _pre_and_hidden(nets, Xh)
        P, S, N, H = h.shape
        gen = torch.Generator().manual_seed(seed)
        keys = ("acc", "acc_rescaled", "loss", "loss_rescaled", "acc_sd", "changed")
        out = {k: np.zeros((P, S, len(fractions))) for k in keys}
        for f_i, frac in enumerate(fractions):
            k = int(round(frac * H))
            accs, rows = [], {key: 0.0 for key in keys if key != "acc_sd"}
            for _ in range(n_repeats):
                perm = torch.argsort(torch.rand(S, H, generator=gen), dim=-1)
                keep = torch.ones(S, H)
                keep.scatter_(-1, perm[:, :k], 0.0)
                kept = (h * keep[None, :, None, :]) @ W2                # (P, S, N, C)
                res = {}
                for name, scale in (("", 1.0), ("_rescaled", 1.0 / (1.0 - frac) if k < H else 1.0)):
                    logits = kept * scale + b2[:, :, None, :]
                    res[name] = logits.argmax(-1)
                    rows["acc" + name] += (res[name] == y).float().mean(-1) / n_repeats
                    rows["loss" + name] += _mean_ce(logits, y) / n_repeats
                accs.append((res[""] == y).float().mean(-1))
                rows["changed"] += (res[""] != res["_rescaled"]).float().mean(-1) / n_repeats
            for key, v in rows.items():
                out[key][..., f_i] = v.numpy()
            out["acc_sd"][..., f_i] = torch.stack(accs).std(0).numpy()
    out["fractions"] = fractions
    return out


# --------------------------------------------------------------------------------------
# 5. First-layer features
# --------------------------------------------------------------------------------------

def _neighbour_pairs(live_pixels):
    img = np.arange(64).reshape(8, 8)
    pairs = [(img[i, j], img[i, j + 1]) for i in range(8) for j in range(7)]
    pairs += [(img[i, j], img[i + 1, j]) for i in range(7) for j in range(8)]
    pairs = [(a, b) for a, b in pairs if live_pixels[a] and live_pixels[b]]
    return np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])


def feature_summary(nets, seed_index: int = 0, n_units: int = 8) -> dict:
    """First-layer weight vectors as 8x8 images, and how smooth they are.

    ``units``: the first ``n_units`` hidden units (by index) that are live in every
    network of seed ``seeds[seed_index]``; they started from the same weights for every
    p. ``images`` (P, n_units, 8, 8) and ``init`` (n_units, 8, 8) are their final and
    initial weights. Per network (P, S): ``smoothness``, the mean over live units of the
    correlation between the weights of horizontally or vertically neighbouring pixels
    (over pixels that vary in the training images: 0 for noise, near 1 for smooth
    strokes), ``smoothness_init`` (S,) the same at initialisation, and ``moved``, the
    mean over live units of ||w - w_init|| / ||w_init||. ``same_unit`` (P, S): the mean
    over units live in both networks of the correlation (over the 64 pixels) between a
    unit's final weights and the same unit's final weights in the network of the same
    seed trained with ``p_values[0]`` (no dropout); ``other_unit`` (P, S), the same with
    every unit paired with the next live unit instead (a baseline for unrelated features);
    ``init_corr`` (P, S), the correlation of a unit's final weights with its own start.
    """
    from dropout_lab.data import load_digits_split

    Xh, _ = _heldout()
    with _one_thread():
        _, h = _pre_and_hidden(nets, Xh)
        live = _live(h).numpy()
    W1, W0 = np.asarray(nets["W1"]), np.asarray(nets["W1_init"])
    live_px = load_digits_split().X_train.std(axis=0) > 0
    A, B = _neighbour_pairs(live_px)

    def smooth(w, lv):
        wl = w[:, lv]
        a, b = wl[A] - wl[A].mean(0), wl[B] - wl[B].mean(0)
        return float(np.mean((a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))))

    P, S = W1.shape[:2]
    sm, mv = np.zeros((P, S)), np.zeros((P, S))
    for i, s in np.ndindex(P, S):
        lv = live[i, s]
        sm[i, s] = smooth(W1[i, s], lv)
        mv[i, s] = np.mean(np.linalg.norm(W1[i, s][:, lv] - W0[s][:, lv], axis=0)
                           / np.linalg.norm(W0[s][:, lv], axis=0))
    def corr(a, b):
        a, b = a - a.mean(0), b - b.mean(0)
        return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))

    same, other, init = np.zeros((P, S)), np.zeros((P, S)), np.zeros((P, S))
    for i, s in np.ndindex(P, S):
        lv = np.flatnonzero(live[0, s] & live[i, s])
        same[i, s] = corr(W1[0, s][:, lv], W1[i, s][:, lv]).mean()
        other[i, s] = corr(W1[0, s][:, lv], W1[i, s][:, np.roll(lv, 1)]).mean()
        init[i, s] = corr(W0[s][:, live[i, s]], W1[i, s][:, live[i, s]]).mean()
    both = live[:, seed_index].all(axis=0)
    units = np.flatnonzero(both)[:n_units]
    return {"units": units, "images": W1[:, seed_index][:, :, units].transpose(0, 2, 1).reshape(P, -1, 8, 8),
            "init": W0[seed_index][:, units].T.reshape(-1, 8, 8), "smoothness": sm,
            "smoothness_init": np.array([smooth(W0[s], np.ones(W0.shape[-1], bool)) for s in range(S)]),
            "moved": mv, "n_live_pixels": int(live_px.sum()), "same_unit": same, "other_unit": other,
            "init_corr": init}


# --------------------------------------------------------------------------------------
# 6. Why deletion hurts some networks more: margin against the spread of contributions
# --------------------------------------------------------------------------------------

def margin_spread_summary(nets, fractions=(0.25, 0.5, 0.75), bins=np.linspace(-1, 7, 41)) -> dict:
    """The margin-to-spread ratio of every held-out image, and what it predicts.

    For an image with label y, let c be the wrong class with the largest logit of the full
    network. Unit j contributes v_j = h_j (W2[j, y] - W2[j, c]) to the margin
    z_y - z_c = sum_j v_j + (b2[y] - b2[c]). The ratio is
    rho = sum_j v_j / sqrt(H * var_j(v_j)) = sqrt(H) * mean(v) / std(v): large when the margin
    is carried by many similar contributions, small when a few large ones (or large ones
    of opposite signs) make it up.

    Deleting k = round(f H) units drawn without replacement gives a margin with mean
    (1 - k/H) sum_j v_j + (b2[y] - b2[c]) and variance k (H - k) / (H - 1) var_j(v_j)
    (exact moments); ``predicted`` (P, S, len(fractions)) is the mean over images of the
    normal approximation Phi(mean / sd) of the chance that y still beats c (it ignores the
    other eight classes, so it is an upper bound in spirit, not a prediction to trust at
    large f). Returns ``rho_median`` (P, S), ``rho_hist`` (P, S, len(bins) - 1) (density
    over the correctly classified images), ``bins``, ``predicted`` and ``fractions``.
    """
    from scipy.stats import norm

    Xh, yh = _heldout()
    W2, b2 = np.asarray(nets["W2"]), np.asarray(nets["b2"])
    with _one_thread():
        _, h = _pre_and_hidden(nets, Xh)
        h = h.numpy().astype(np.float64)
    P, S, N, H = h.shape
    fractions = np.asarray(fractions, dtype=float)
    rows = np.arange(N)
    out = {"rho_median": np.zeros((P, S)), "rho_hist": np.zeros((P, S, len(bins) - 1)),
           "predicted": np.zeros((P, S, len(fractions)))}
    for i, s in np.ndindex(P, S):
        logits = h[i, s] @ W2[i, s] + b2[i, s]
        wrong = logits.copy()
        wrong[rows, yh] = -np.inf
        c = wrong.argmax(1)
        v = h[i, s] * (W2[i, s][:, yh] - W2[i, s][:, c]).T                      # (N, H)
        db = b2[i, s][yh] - b2[i, s][c]
        sd = v.std(axis=1)
        rho = v.sum(1) / np.sqrt(H * sd ** 2)
        correct = logits.argmax(1) == yh
        out["rho_median"][i, s] = np.median(rho)
        out["rho_hist"][i, s] = np.histogram(rho[correct], bins=bins, density=True)[0]
        for f_i, f in enumerate(fractions):
            k = int(round(f * H))
            mean = (1 - k / H) * v.sum(1) + db
            spread = np.sqrt(k * (H - k) / (H - 1)) * sd
            out["predicted"][i, s, f_i] = norm.cdf(mean / spread).mean()
    out["bins"], out["fractions"] = np.asarray(bins), fractions
    return out
