"""The mistakes students make in chapter 09. Every one must lose points under
every seed (tests/test_corpora.py), and every table row states, as its third
entry, the share of its function's points it may keep at most (or a
(min, max) pair when part of it must be credited), with the reason on its
line: the share an experienced teaching assistant would leave it
(autograder/POLICY.md)."""
import numpy as np
import torch
from torch import nn

# -- max_norm_ -----------------------------------------------------------------------------


def mn_columns(weight, max_norm):
    with torch.no_grad():
        n = weight.norm(dim=0, keepdim=True)                  # the outgoing weights of each input
        weight.mul_(torch.clamp(max_norm / n, max=1.0))
    return weight


def mn_every_row(weight, max_norm):
    with torch.no_grad():
        weight.mul_(max_norm / weight.norm(dim=1, keepdim=True))
    return weight


def mn_clip_entries(weight, max_norm):
    with torch.no_grad():
        weight.clamp_(-max_norm, max_norm)
    return weight


def mn_frobenius(weight, max_norm):
    with torch.no_grad():
        n = weight.norm()
        if n > max_norm:
            weight.mul_(max_norm / n)
    return weight


def mn_not_in_place(weight, max_norm):
    n = weight.norm(dim=1, keepdim=True)
    return weight * torch.clamp(max_norm / n, max=1.0)         # a new tensor; weight untouched


def mn_no_grad_missing(weight, max_norm):
    n = weight.detach().norm(dim=1, keepdim=True)
    weight.mul_(torch.clamp(max_norm / n, max=1.0))             # autograd refuses this on a parameter
    return weight


def mn_no_keepdim(weight, max_norm):
    with torch.no_grad():
        weight.mul_(torch.clamp(max_norm / weight.norm(dim=1), max=1.0))   # (out,) broadcasts along the columns
    return weight


def mn_zero_row_nan(weight, max_norm):
    with torch.no_grad():
        n = weight.norm(dim=1, keepdim=True)
        weight.copy_(weight / n * torch.clamp(n, max=max_norm))           # 0 / 0 for a zero row
    return weight


def mn_squared_norm(weight, max_norm):
    with torch.no_grad():
        n2 = (weight ** 2).sum(dim=1, keepdim=True)                        # forgot the square root
        weight.mul_(torch.clamp(max_norm / n2, max=1.0))
    return weight


def mn_inverse_factor(weight, max_norm):
    with torch.no_grad():
        n = weight.norm(dim=1, keepdim=True)
        weight.mul_(torch.clamp(n / max_norm, min=1.0))
    return weight


def mn_returns_none(weight, max_norm):
    with torch.no_grad():
        weight.mul_(torch.clamp(max_norm / weight.norm(dim=1, keepdim=True), max=1.0))


def mn_returns_copy(weight, max_norm):
    with torch.no_grad():
        weight.mul_(torch.clamp(max_norm / weight.norm(dim=1, keepdim=True), max=1.0))
    return weight.clone()


def mn_numpy(weight, max_norm):
    w = weight.numpy()                                         # fails on a parameter that requires grad
    n = np.linalg.norm(w, axis=1, keepdims=True)
    w *= np.minimum(1.0, max_norm / np.maximum(n, 1e-12))
    return weight


def mn_stub(weight, max_norm):
    raise NotImplementedError()


# -- dropout_ridge_solution ------------------------------------------------------------------


def _solve(X, y, M):
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    return np.linalg.solve(X.T @ X + M, X.T @ y)


def _gram(X):
    X = np.asarray(X, dtype=float)
    return X.T @ X


def dr_least_squares(X, y, p):
    return np.linalg.lstsq(np.asarray(X, dtype=float), np.asarray(y, dtype=float), rcond=None)[0]


def dr_no_factor(X, y, p):
    return _solve(X, y, np.diag(np.diag(_gram(X))))


def dr_full_gram(X, y, p):
    return _solve(X, y, p / (1 - p) * _gram(X))


def dr_inverted_factor(X, y, p):
    return _solve(X, y, (1 - p) / p * np.diag(np.diag(_gram(X))))


def dr_identity(X, y, p):
    return _solve(X, y, p / (1 - p) * np.eye(np.shape(X)[1]))


def dr_factor_p(X, y, p):
    return _solve(X, y, p * np.diag(np.diag(_gram(X))))


def dr_standard_dropout(X, y, p):
    return _solve(X, y, p / (1 - p) * np.diag(np.diag(_gram(X)))) / (1 - p)


def dr_mean_penalty(X, y, p):
    return _solve(X, y, p / (1 - p) * np.diag(np.diag(_gram(X))) / len(X))


def dr_centred(X, y, p):
    Xc = np.asarray(X, dtype=float) - np.mean(X, axis=0)
    return _solve(X, y, p / (1 - p) * np.diag(np.diag(Xc.T @ Xc)))


def dr_shrunk_ols(X, y, p):
    return (1 - p) * dr_least_squares(X, y, p)                # the orthogonal case taken as the rule


def dr_column_vector(X, y, p):
    return _solve(X, y, p / (1 - p) * np.diag(np.diag(_gram(X)))).reshape(-1, 1)


def dr_in_place(X, y, p):
    """Ridge on features scaled to unit length, scaling the caller's X in place."""
    s = np.linalg.norm(X, axis=0)
    X /= s                                                     # the caller's X is now scaled
    v = np.linalg.solve(X.T @ X + p / (1 - p) * np.eye(X.shape[1]), X.T @ y)
    return v / s


def dr_from_least_squares(X, y, p):
    """Starts from the least-squares solution inv(X^T X) X^T y, then shrinks it: the same numbers when
    X^T X is invertible, garbage (or an error) when it is singular."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    G = X.T @ X
    w_ols = np.linalg.inv(G) @ X.T @ y
    return np.linalg.solve(np.eye(len(G)) + p / (1 - p) * np.linalg.inv(G) @ np.diag(np.diag(G)), w_ols)


def dr_returns_none(X, y, p):
    np.linalg.solve(_gram(X) + p / (1 - p) * np.diag(np.diag(_gram(X))), np.asarray(X).T @ y)


# -- mc_dropout_predict ----------------------------------------------------------------------


def _dropout_on(model):
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()


def _dropout_on_children(model):
    model.eval()
    for m in model.children():                                 # misses a Dropout inside a Sequential
        if isinstance(m, nn.Dropout):
            m.train()


def _restore(model, saved):
    for m, t in zip(model.modules(), saved):
        m.training = t


def _entropy(mean):
    return -torch.special.xlogy(mean, mean).sum(-1)


def _passes(model, x, n_samples, switch=_dropout_on, restore=True, grad=False, out=lambda z: torch.softmax(z, -1)):
    """out(logits) of n_samples passes stacked, the modes set by switch (and restored unless told not to)."""
    saved = [m.training for m in model.modules()]
    switch(model)
    with torch.set_grad_enabled(grad):
        outs = torch.stack([out(model(x)) for _ in range(n_samples)])
    if restore:
        _restore(model, saved)
    return outs


def _mean_and_entropy(probs):
    mean = probs.mean(0)
    return mean, _entropy(mean)


def mc_train_mode(model, x, n_samples):
    return _mean_and_entropy(_passes(model, x, n_samples, switch=lambda m: m.train()))   # BatchNorm too


def mc_train_mode_then_eval(model, x, n_samples):
    probs = _passes(model, x, n_samples, switch=lambda m: m.train(), restore=False)
    model.eval()
    return _mean_and_entropy(probs)


def mc_dropout_only_no_eval(model, x, n_samples):
    def switch(m):                                             # the model's own mode otherwise: BatchNorm may train
        for mod in m.modules():
            if isinstance(mod, nn.Dropout):
                mod.train()
    return _mean_and_entropy(_passes(model, x, n_samples, switch=switch))


def mc_not_restored(model, x, n_samples):
    return _mean_and_entropy(_passes(model, x, n_samples, restore=False))


def mc_top_flag_restored(model, x, n_samples):
    was_training = model.training
    probs = _passes(model, x, n_samples, restore=False)
    model.train(was_training)                                  # every module gets the top-level flag
    return _mean_and_entropy(probs)


def mc_with_grad(model, x, n_samples):
    mean, entropy = _mean_and_entropy(_passes(model, x, n_samples, grad=True))
    return mean.detach(), entropy.detach()


def mc_logits_averaged(model, x, n_samples):
    mean = torch.softmax(_passes(model, x, n_samples, out=lambda z: z).mean(0), -1)
    return mean, _entropy(mean)


def mc_mean_of_entropies(model, x, n_samples):
    probs = _passes(model, x, n_samples)
    return probs.mean(0), _entropy(probs).mean(0)


def mc_one_pass(model, x, n_samples):
    probs = _passes(model, x, 1)
    return _mean_and_entropy(probs.expand(n_samples, *probs.shape[1:]))   # one pass reused n_samples times


def mc_dropout_off(model, x, n_samples):
    return _mean_and_entropy(_passes(model, x, n_samples, switch=lambda m: m.eval()))   # dropout off too


def mc_children_only(model, x, n_samples):
    return _mean_and_entropy(_passes(model, x, n_samples, switch=_dropout_on_children))


def mc_entropy_nan(model, x, n_samples):
    mean = _passes(model, x, n_samples).mean(0)
    return mean, -(mean * torch.log(mean)).sum(-1)             # 0 * log(0) = NaN


def mc_bits(model, x, n_samples):
    mean = _passes(model, x, n_samples).mean(0)
    return mean, -(mean * torch.log2(mean.clamp_min(1e-30))).sum(-1)


def mc_reseeded(model, x, n_samples):
    state = torch.random.get_rng_state()

    def out(z):
        torch.random.set_rng_state(state)                      # "reproducible": the same masks in every pass
        return torch.softmax(z, -1)
    return _mean_and_entropy(_passes(model, x, n_samples, out=out))


def mc_softmax_batch_dim(model, x, n_samples):
    return _mean_and_entropy(_passes(model, x, n_samples, out=lambda z: torch.softmax(z, 0)))


def mc_sum_not_mean(model, x, n_samples):
    probs = _passes(model, x, n_samples)
    return probs.sum(0), _entropy(probs.mean(0))


def mc_returns_none(model, x, n_samples):
    _passes(model, x, n_samples)


MUTANTS = {
    "max_norm_": [
        ("columns", mn_columns, 0.25),                          # the outgoing weights of each input: not a unit
        ("every row rescaled", mn_every_row, 0.25),             # short rows stretched to max_norm
        ("entries clipped", mn_clip_entries, 0.25),             # bounds nothing useful, changes directions
        ("whole matrix", mn_frobenius, 0.25),                   # one factor for every unit
        ("not in place", mn_not_in_place, (0.46, 0.47)),         # right projection, the layer never sees it: 6/13
        ("no torch.no_grad", mn_no_grad_missing, (0.84, 0.85)),  # raises on layer.weight: 11/13
        ("norms without keepdim", mn_no_keepdim, 0.25),         # factors broadcast along the columns
        ("zero row NaN", mn_zero_row_nan, (0.92, 0.93)),        # 0/0 for a dead unit: 12/13
        ("squared norm", mn_squared_norm, 0.25),                # not the L2 norm
        ("inverse factor", mn_inverse_factor, 0.25),            # long rows get longer
        ("returns None", mn_returns_none, (0.92, 0.93)),        # works in place, forgets to return it: 12/13
        ("returns a copy", mn_returns_copy, (0.92, 0.93)),      # works in place, returns another tensor: 12/13
        ("numpy view", mn_numpy, (0.84, 0.85)),                 # plain tensors fine, a parameter raises: 11/13
        ("stub", mn_stub, 0.0),                                 # nothing to grade
    ],
    "dropout_ridge_solution": [
        ("least squares", dr_least_squares, 0.25),              # the penalty is missing
        ("no p/(1-p)", dr_no_factor, 0.25),                     # the strength of the penalty is lost
        ("full X^T X", dr_full_gram, 0.25),                     # (1-p) w_ols: right only for orthogonal columns
        ("(1-p)/p", dr_inverted_factor, 0.25),                  # p read as the keep probability
        ("ordinary ridge", dr_identity, 0.25),                  # lambda I: not scale invariant
        ("factor p", dr_factor_p, 0.25),                        # the variance of the mask without the 1/(1-p)^2
        ("standard dropout weights", dr_standard_dropout, 0.25),  # w/(1-p): the paper's convention half-translated
        ("penalty / N", dr_mean_penalty, 0.25),                 # only one of the two terms averaged
        ("centred columns", dr_centred, 0.25),                  # variances instead of second moments
        ("(1-p) w_ols", dr_shrunk_ols, 0.25),                   # the orthogonal special case taken as the rule
        ("column vector", dr_column_vector, (0.88, 0.89)),      # right numbers, shape (d, 1): 8/9
        ("X modified in place", dr_in_place, (0.88, 0.89)),     # right numbers, the caller's X touched: 8/9
        ("from least squares", dr_from_least_squares, (0.88, 0.89)),  # right when X^T X is invertible: 8/9
        ("returns None", dr_returns_none, 0.0),                 # nothing to grade
    ],
    "mc_dropout_predict": [
        ("model.train() (BatchNorm too), restored", mc_train_mode, (0.42, 0.43)),     # 8/19
        ("model.train(), then model.eval()", mc_train_mode_then_eval, (0.42, 0.43)),  # 8/19
        ("dropout on without eval() first", mc_dropout_only_no_eval, (0.42, 0.43)),   # BatchNorm trains when the model did
        ("modes not restored", mc_not_restored, (0.84, 0.85)),  # 16/19: dropout left on for the caller
        ("only the top-level flag restored", mc_top_flag_restored, (0.94, 0.95)),  # 18/19: mixed modes lost
        ("no torch.no_grad", mc_with_grad, (0.89, 0.9)),        # 17/19: a graph per pass for nothing
        ("logits averaged", mc_logits_averaged, 0.25),          # the chapter's first rule
        ("mean of the entropies", mc_mean_of_entropies, (0.42, 0.43)),  # the chapter's second rule: 8/19
        ("one pass reused", mc_one_pass, 0.25),                 # not Monte Carlo at all
        ("dropout off", mc_dropout_off, 0.25),                  # the deterministic network n times
        ("children() only", mc_children_only, (0.94, 0.95)),    # 18/19: nested dropout stays off
        ("0 log 0 = NaN", mc_entropy_nan, (0.94, 0.95)),        # 18/19: confident networks get NaN
        ("entropy in bits", mc_bits, (0.42, 0.43)),             # the entropy part is wrong: 8/19
        ("rng state reset every pass", mc_reseeded, 0.25),      # the same mask n times
        ("softmax over the batch", mc_softmax_batch_dim, 0.25),  # dim=0
        ("sum, not mean", mc_sum_not_mean, 0.25),               # not a distribution
        ("returns None", mc_returns_none, 0.0),                 # nothing to grade
    ],
}
