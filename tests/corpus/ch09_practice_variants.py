"""Correct implementations of chapter 09's graded functions, written the many
ways students write them. Every one must earn full marks under every seed."""
import copy

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

# -- max_norm_ -----------------------------------------------------------------------------


def mn_clamp_factor(weight, max_norm):
    with torch.no_grad():
        norms = weight.norm(dim=1, keepdim=True)
        weight.mul_(torch.clamp(max_norm / norms, max=1.0))   # a zero row: inf clamped to 1, times 0
    return weight


def mn_renorm_(weight, max_norm):
    with torch.no_grad():
        weight.renorm_(p=2, dim=0, maxnorm=max_norm)          # each slice along dim 0 (a row)
    return weight


def mn_data_copy(weight, max_norm):
    w = weight.data
    norms = torch.linalg.vector_norm(w, dim=1, keepdim=True)
    w.copy_(torch.where(norms > max_norm, w * max_norm / norms, w))
    return weight


def mn_boolean_rows(weight, max_norm):
    with torch.no_grad():
        norms = torch.sqrt((weight ** 2).sum(dim=1))
        long_rows = norms > max_norm
        weight[long_rows] = weight[long_rows] * (max_norm / norms[long_rows]).unsqueeze(1)
    return weight


def mn_loop_over_rows(weight, max_norm):
    with torch.no_grad():
        for i in range(weight.shape[0]):
            n = weight[i].norm()
            if n > max_norm:
                weight[i] *= max_norm / n
    return weight


def mn_detach_view(weight, max_norm):
    w = weight.detach()                                        # shares the storage
    n = w.norm(dim=1, keepdim=True).clamp(min=max_norm)
    w.mul_(max_norm / n)
    return weight


def mn_normalize(weight, max_norm):
    with torch.no_grad():
        n = weight.norm(dim=-1, keepdim=True)
        projected = F.normalize(weight, dim=-1) * max_norm
        weight.copy_(torch.where(n > max_norm, projected, weight))
    return weight


def mn_transpose_columns(weight, max_norm):
    with torch.no_grad():
        wt = weight.t()                                        # columns of w.T are the rows of w
        n = wt.norm(dim=0, keepdim=True)
        wt.mul_(torch.minimum(torch.ones_like(n), max_norm / (n + 1e-12)))
    return weight


def mn_float64_factor(weight, max_norm):
    with torch.no_grad():
        n = weight.double().norm(dim=1, keepdim=True)
        factor = torch.where(n > max_norm, max_norm / n, torch.ones_like(n))
        weight.mul_(factor.to(weight.dtype))
    return weight


# -- dropout_ridge_solution ------------------------------------------------------------------


def dr_solve(X, y, p):
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    G = X.T @ X
    return np.linalg.solve(G + p / (1 - p) * np.diag(np.diag(G)), X.T @ y)


def dr_inv(X, y, p):
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    lam = p / (1 - p)
    return np.linalg.inv(X.T @ X + lam * np.diag((X ** 2).sum(axis=0))) @ X.T @ y


def dr_augmented_lstsq(X, y, p):
    """Ridge as least squares on an augmented system: rows sqrt(lam) * ||x_j|| e_j."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    lam = p / (1 - p)
    extra = np.diag(np.sqrt(lam) * np.linalg.norm(X, axis=0))
    A = np.vstack([X, extra])
    b = np.concatenate([y, np.zeros(X.shape[1])])
    return np.linalg.lstsq(A, b, rcond=None)[0]


def dr_rescaled_features(X, y, p):
    """Ridge with lambda = p/(1-p) on features divided by their root-mean-square, scaled back."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    s = np.sqrt((X ** 2).sum(axis=0))
    Z = X / s
    v = np.linalg.solve(Z.T @ Z + p / (1 - p) * np.eye(X.shape[1]), Z.T @ y)
    return v / s


def dr_keep_form(X, y, p):
    """Multiplied through by (1-p): ((1-p) X^T X + p diag) w = (1-p) X^T y."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    G = X.T @ X
    return np.linalg.solve((1 - p) * G + p * np.diag(np.diag(G)), (1 - p) * X.T @ y)


def dr_cholesky(X, y, p):
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    G = X.T @ X
    A = G + p / (1 - p) * np.eye(len(G)) * np.diag(G)
    return scipy.linalg.cho_solve(scipy.linalg.cho_factor(A), X.T @ y)


def dr_torch(X, y, p):
    Xt = torch.as_tensor(np.asarray(X), dtype=torch.float64)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    G = Xt.T @ Xt
    A = G + p / (1 - p) * torch.diag(torch.diagonal(G))
    return torch.linalg.solve(A, Xt.T @ yt).numpy()


def dr_einsum(X, y, p):
    X = np.array(X, dtype=np.float64)
    y = np.array(y, dtype=np.float64)
    G = np.einsum("ni,nj->ij", X, X)
    G[np.diag_indices_from(G)] *= 1 + p / (1 - p)            # the diagonal gets (1 + lam) of itself
    return np.linalg.solve(G, np.einsum("ni,n->i", X, y))


# -- mc_dropout_predict ----------------------------------------------------------------------

_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def mc_stack(model, x, n_samples):
    modes = {m: m.training for m in model.modules()}
    model.eval()
    for m in model.modules():
        if isinstance(m, _DROPOUT):
            m.train()
    with torch.no_grad():
        probs = torch.stack([F.softmax(model(x), dim=1) for _ in range(n_samples)])
    for m, t in modes.items():
        m.train(t)
    mean = probs.mean(dim=0)
    entropy = -(mean * torch.log(mean.clamp_min(1e-30))).sum(dim=1)
    return mean, entropy


def mc_batched(model, x, n_samples):
    """One forward on the input repeated n_samples times (BatchNorm in eval mode: rows independent)."""
    saved = [m.training for m in model.modules()]
    model.eval()
    model.apply(lambda m: m.train() if isinstance(m, nn.Dropout) else None)
    with torch.no_grad():
        logits = model(x.repeat(n_samples, 1))
        probs = torch.softmax(logits, dim=-1).reshape(n_samples, len(x), -1)
    for m, t in zip(model.modules(), saved):
        m.training = t
    mean = probs.mean(0)
    return mean, torch.special.entr(mean).sum(-1)


def mc_train_then_eval_bn(model, x, n_samples):
    """model.train(), then BatchNorm (the only other mode-dependent module) back to eval."""
    saved = {name: m.training for name, m in model.named_modules()}
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    total = 0
    with torch.inference_mode():
        for _ in range(n_samples):
            total = total + torch.softmax(model(x), -1)
    for name, m in model.named_modules():
        m.training = saved[name]
    mean = total / n_samples
    return mean, torch.distributions.Categorical(probs=mean).entropy()


def mc_deepcopy(model, x, n_samples):
    """Work on a copy, so the caller's model is never touched."""
    net = copy.deepcopy(model)
    net.eval()
    for m in net.modules():
        if type(m).__name__.startswith("Dropout"):
            m.train()
    with torch.no_grad():
        outs = [torch.softmax(net(x), dim=-1) for _ in range(n_samples)]
    mean = sum(outs) / n_samples
    ent = -torch.xlogy(mean, mean).sum(-1)
    return mean, ent


def mc_numpy(model, x, n_samples):
    state = [(m, m.training) for m in model.modules()]
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.train()
    runs = []
    with torch.no_grad():
        for _ in range(n_samples):
            runs.append(torch.softmax(model(x).double(), dim=-1).numpy())
    for m, t in state:
        m.train(t)
    mean = np.mean(runs, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(mean * np.log(mean), axis=1)
    return mean, ent


def mc_running_mean_float64(model, x, n_samples):
    flags = [m.training for m in model.modules()]
    try:
        model.eval()
        for m in model.modules():
            if m.__class__.__name__ == "Dropout":
                m.train(True)
        mean = torch.zeros(())
        with torch.no_grad():
            for t in range(1, n_samples + 1):
                p = F.softmax(model(x), dim=-1).double()
                mean = mean + (p - mean) / t                     # running mean
    finally:
        for m, f in zip(model.modules(), flags):
            m.train(f)
    ent = -(mean * torch.log(mean + 1e-300)).sum(-1)
    return mean, ent


def mc_log_softmax_logsumexp(model, x, n_samples):
    """The mean computed in log space: log mean exp of the log-softmax outputs."""
    saved = [(m, m.training) for m in model.modules()]
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    with torch.no_grad():
        logp = torch.stack([F.log_softmax(model(x), dim=-1) for _ in range(n_samples)])
        log_mean = torch.logsumexp(logp, dim=0) - np.log(n_samples)
    for m, t in saved:
        m.training = t
    mean = log_mean.exp()
    return mean, -(mean * log_mean).sum(-1)


VARIANTS = {
    "max_norm_": [
        ("clamped factor", mn_clamp_factor),
        ("renorm_", mn_renorm_),
        ("weight.data and where", mn_data_copy),
        ("boolean row index", mn_boolean_rows),
        ("loop over rows", mn_loop_over_rows),
        ("detach() shares storage", mn_detach_view),
        ("F.normalize", mn_normalize),
        ("columns of the transpose", mn_transpose_columns),
        ("float64 factor", mn_float64_factor),
    ],
    "dropout_ridge_solution": [
        ("solve", dr_solve),
        ("inv", dr_inv),
        ("augmented least squares", dr_augmented_lstsq),
        ("ridge on rescaled features", dr_rescaled_features),
        ("multiplied by 1-p", dr_keep_form),
        ("cholesky", dr_cholesky),
        ("torch", dr_torch),
        ("einsum, diagonal in place", dr_einsum),
    ],
    "mc_dropout_predict": [
        ("stack, restore dict", mc_stack),
        ("batched repeat, apply", mc_batched),
        ("train() then BatchNorm eval, inference_mode", mc_train_then_eval_bn),
        ("deepcopy of the model", mc_deepcopy),
        ("numpy", mc_numpy),
        ("running mean, float64", mc_running_mean_float64),
        ("log space", mc_log_softmax_logsumexp),
    ],
}
