"""Correct implementations of chapter 03's graded functions, written the many
ways students write them. Every one must earn full marks under every seed."""
import numpy as np
import torch


# -- mean_abs_correlation -------------------------------------------------------------------

def mac_corrcoef(H):
    H = np.asarray(H, dtype=float)
    keep = H.std(axis=0) > 1e-12
    if keep.sum() < 2:
        return 0.0
    R = np.corrcoef(H[:, keep], rowvar=False)
    off = ~np.eye(R.shape[0], dtype=bool)
    return float(np.abs(R[off]).mean())


def mac_manual_standardise(H):
    H = np.asarray(H, dtype=np.float64)
    sd = H.std(axis=0)
    Z = (H[:, sd > 0] - H[:, sd > 0].mean(axis=0)) / sd[sd > 0]
    d = Z.shape[1]
    if d < 2:
        return 0.0
    R = Z.T @ Z / H.shape[0]
    i, j = np.triu_indices(d, 1)
    return float(np.mean(np.abs(R[i, j])))


def mac_loop_over_pairs(H):
    H = np.asarray(H, dtype=float)
    cols = [H[:, j] for j in range(H.shape[1]) if np.ptp(H[:, j]) > 0]
    rs = []
    for a in range(len(cols)):
        for b in range(a + 1, len(cols)):
            x, y = cols[a] - cols[a].mean(), cols[b] - cols[b].mean()
            rs.append(abs(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y))))
    return float(np.mean(rs)) if rs else 0.0


def mac_torch(H):
    t = torch.as_tensor(np.asarray(H), dtype=torch.float32)
    t = t[:, t.std(dim=0, unbiased=False) > 1e-6]
    if t.shape[1] < 2:
        return 0.0
    R = torch.corrcoef(t.T)
    mask = ~torch.eye(R.shape[0], dtype=torch.bool)
    return R[mask].abs().mean().item()


def mac_nanmean(H):
    H = np.asarray(H, dtype=float)
    with np.errstate(all="ignore"):
        R = np.corrcoef(H, rowvar=False) if H.shape[1] > 1 else np.full((1, 1), np.nan)
    R = np.atleast_2d(R)
    vals = np.abs(R[np.triu_indices(R.shape[0], 1)])
    vals = vals[~np.isnan(vals)]
    return float(vals.mean()) if vals.size else 0.0


def mac_float32_sum_formula(H):
    H = np.asarray(H, dtype=np.float32)
    n = H.shape[0]
    live = [j for j in range(H.shape[1]) if not np.all(H[:, j] == H[0, j])]
    if len(live) < 2:
        return 0.0
    A = H[:, live]
    s, s2 = A.sum(0), (A * A).sum(0)
    A64 = A.astype(np.float64)
    cov = A64.T @ A64 - np.outer(s, s) / n
    var = s2.astype(np.float64) - s.astype(np.float64) ** 2 / n
    R = cov / np.sqrt(np.outer(var, var))
    i, j = np.triu_indices(len(live), 1)
    return float(np.abs(R[i, j]).sum() / len(i))


# -- fraction_inactive -----------------------------------------------------------------------

def fi_mean(H):
    return float(np.mean(np.asarray(H) <= 0))


def fi_count(H):
    H = np.asarray(H)
    return np.count_nonzero(H <= 0) / H.size


def fi_not_positive(H):
    return float((~(np.asarray(H) > 0)).sum() / np.asarray(H).size)


def fi_torch(H):
    t = torch.as_tensor(np.asarray(H))
    return (t <= 0).float().mean().item()


def fi_numpy_scalar(H):
    return np.mean(np.asarray(H, dtype=np.float64) <= 0.0)


# -- the network --------------------------------------------------------------------------------

def _logits(X, params, hidden_scale=None):
    h = np.maximum(X @ params["W1"] + params["b1"], 0.0)
    if hidden_scale is not None:
        h = h * hidden_scale
    return h @ params["W2"] + params["b2"]


def _acc(logits, y):
    return np.mean(np.argmax(logits, axis=1) == y)


# -- ablation_importance ----------------------------------------------------------------------

def ai_zero_activation(X, y, params):
    H = params["W1"].shape[1]
    full = _acc(_logits(X, params), y)
    out = np.zeros(H)
    for j in range(H):
        keep = np.ones(H)
        keep[j] = 0.0
        out[j] = full - _acc(_logits(X, params, keep), y)
    return out


def ai_zero_w2_row(X, y, params):
    full = np.mean(np.argmax(_logits(X, params), 1) == y)
    result = []
    for j in range(params["W2"].shape[0]):
        p2 = {k: v.copy() for k, v in params.items()}
        p2["W2"][j, :] = 0
        result.append(full - np.mean(np.argmax(_logits(X, p2), 1) == y))
    return np.array(result)


def ai_in_place_restored(X, y, params):
    W2 = params["W2"]
    full = _acc(_logits(X, params), y)
    out = []
    for j in range(W2.shape[0]):
        saved = W2[j].copy()
        W2[j] = 0.0
        out.append(full - _acc(_logits(X, params), y))
        W2[j] = saved
    return np.array(out, dtype=float)


def ai_logit_subtraction(X, y, params):
    h = np.maximum(X @ params["W1"] + params["b1"], 0)
    z = h @ params["W2"] + params["b2"]
    full = (z.argmax(1) == y).mean()
    return np.array([full - ((z - np.outer(h[:, j], params["W2"][j])).argmax(1) == y).mean()
                     for j in range(h.shape[1])])


def ai_torch(X, y, params):
    p = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in params.items()}
    Xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    h = torch.relu(Xt @ p["W1"] + p["b1"])
    full = ((h @ p["W2"] + p["b2"]).argmax(1) == yt).float().mean()
    out = torch.zeros(h.shape[1])
    for j in range(h.shape[1]):
        hj = h.clone()
        hj[:, j] = 0
        out[j] = full - ((hj @ p["W2"] + p["b2"]).argmax(1) == yt).float().mean()
    return out.numpy().astype(np.float64)


# -- random_deletion_accuracy ----------------------------------------------------------------------

def rd_choice(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    k = int(round(fraction * H))
    accs = []
    for _ in range(n_repeats):
        keep = np.ones(H)
        keep[rng.choice(H, size=k, replace=False)] = 0.0
        accs.append(_acc(_logits(X, params, keep), y))
    return float(np.mean(accs))


def rd_permutation(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    k = int(round(fraction * H))
    total = 0.0
    for _ in range(n_repeats):
        deleted = rng.permutation(H)[:k]
        p2 = dict(params, W2=params["W2"].copy())
        p2["W2"][deleted] = 0.0
        total += _acc(_logits(X, p2), y)
    return total / n_repeats


def rd_np_round(X, y, params, fraction, n_repeats, rng):
    H = params["W2"].shape[0]
    k = int(np.round(fraction * H))
    h = np.maximum(X @ params["W1"] + params["b1"], 0)
    accs = np.empty(n_repeats)
    for r in range(n_repeats):
        idx = rng.choice(np.arange(H), k, replace=False)
        hr = h.copy()
        hr[:, idx] = 0
        accs[r] = np.mean((hr @ params["W2"] + params["b2"]).argmax(axis=1) == y)
    return accs.mean()


def rd_argsort_random(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    k = int(round(fraction * H))
    h = np.maximum(X @ params["W1"] + params["b1"], 0)
    acc = 0.0
    for _ in range(n_repeats):
        mask = np.ones(H)
        mask[np.argsort(rng.random(H))[:k]] = 0
        acc += ((h * mask) @ params["W2"] + params["b2"]).argmax(1).__eq__(y).mean()
    return float(acc / n_repeats)


def rd_torch(X, y, params, fraction, n_repeats, rng):
    p = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in params.items()}
    h = torch.relu(torch.as_tensor(X, dtype=torch.float32) @ p["W1"] + p["b1"])
    yt = torch.as_tensor(y)
    H = h.shape[1]
    k = int(round(fraction * H))
    accs = []
    for _ in range(n_repeats):
        keep = torch.ones(H)
        keep[torch.as_tensor(rng.choice(H, k, replace=False), dtype=torch.long)] = 0
        accs.append(((h * keep) @ p["W2"] + p["b2"]).argmax(1).eq(yt).float().mean().item())
    return sum(accs) / len(accs)


def rd_float32_inputs(X, y, params, fraction, n_repeats, rng):
    X32 = np.asarray(X, dtype=np.float32)
    p32 = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
    return rd_choice(X32, y, p32, fraction, n_repeats, rng)


VARIANTS = {
    "mean_abs_correlation": [
        ("corrcoef", mac_corrcoef),
        ("manual standardisation", mac_manual_standardise),
        ("loop over pairs, ptp", mac_loop_over_pairs),
        ("torch", mac_torch),
        ("corrcoef + nanmean", mac_nanmean),
        ("float32 sums", mac_float32_sum_formula),
    ],
    "fraction_inactive": [
        ("mean", fi_mean),
        ("count_nonzero", fi_count),
        ("not positive", fi_not_positive),
        ("torch", fi_torch),
        ("numpy scalar", fi_numpy_scalar),
    ],
    "ablation_importance": [
        ("zero the activation", ai_zero_activation),
        ("zero a row of W2 (copies)", ai_zero_w2_row),
        ("in place, restored", ai_in_place_restored),
        ("subtract the unit's logits", ai_logit_subtraction),
        ("torch float32", ai_torch),
    ],
    "random_deletion_accuracy": [
        ("rng.choice", rd_choice),
        ("rng.permutation[:k]", rd_permutation),
        ("np.round", rd_np_round),
        ("argsort of rng.random", rd_argsort_random),
        ("torch float32", rd_torch),
        ("float32 inputs", rd_float32_inputs),
    ],
}

#: (grade_id, label) run with fewer seeds by tests/test_corpora.py: seconds per scoring, same checks.
SLOW_VARIANTS = {
    ("random_deletion_accuracy", "torch float32"),
    ("random_deletion_accuracy", "rng.choice"),
}
