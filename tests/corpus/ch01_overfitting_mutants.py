"""The mistakes students make in chapter 01. Every one must lose points under
every seed (tests/test_corpora.py), and every table row states, as its third
entry, the share of its function's points it may keep at most, with the
reason on its line: the share an experienced teaching assistant would leave
it (autograder/POLICY.md)."""
import numpy as np
import torch

from .ch01_overfitting_variants import _check_lam, _check_patience


# -- polynomial_features ----------------------------------------------------------------

def pf_no_ones_column(x, degree):
    return np.column_stack([x**k for k in range(1, degree + 1)]) if degree > 0 else np.zeros((len(x), 0))


def pf_one_degree_too_few(x, degree):
    return np.vander(x, degree, increasing=True)


def pf_one_degree_too_many(x, degree):
    return np.vander(x, degree + 2, increasing=True)


def pf_decreasing(x, degree):
    return np.vander(x, degree + 1)  # numpy's default order: x**degree first


def pf_transposed(x, degree):
    return np.array([x**k for k in range(degree + 1)])


def pf_returns_none(x, degree):
    np.column_stack([x**k for k in range(degree + 1)])


# -- ridge_fit -----------------------------------------------------------------------------

def _solve(X, y, penalties):
    return np.linalg.solve(X.T @ X + np.diag(penalties), X.T @ y)


def ridge_intercept_unpenalised(X, y, lam):
    _check_lam(lam)
    pen = np.full(X.shape[1], float(lam))
    pen[0] = 0.0
    return _solve(X, y, pen)


def ridge_last_unpenalised(X, y, lam):
    _check_lam(lam)
    pen = np.full(X.shape[1], float(lam))
    pen[-1] = 0.0
    return _solve(X, y, pen)


def ridge_half_lam(X, y, lam):
    _check_lam(lam)
    return _solve(X, y, np.full(X.shape[1], lam / 2))


def ridge_double_lam(X, y, lam):
    _check_lam(lam)
    return _solve(X, y, np.full(X.shape[1], 2.0 * lam))


def ridge_lam_times_n(X, y, lam):
    _check_lam(lam)
    return _solve(X, y, np.full(X.shape[1], lam * X.shape[0]))


def ridge_lam_ignored(X, y, lam):
    _check_lam(lam)
    return np.linalg.lstsq(X, y, rcond=None)[0]


def ridge_lam_on_every_entry(X, y, lam):
    _check_lam(lam)
    return np.linalg.solve(X.T @ X + lam, X.T @ y)  # lam added to every entry, not the diagonal


def ridge_augmented_without_sqrt(X, y, lam):
    _check_lam(lam)
    d = X.shape[1]
    A = np.vstack([X, lam * np.eye(d)])
    return np.linalg.lstsq(A, np.concatenate([y, np.zeros(d)]), rcond=None)[0]


def ridge_no_value_error(X, y, lam):
    return np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ y)


def ridge_column_vector(X, y, lam):
    _check_lam(lam)
    return np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ y.reshape(-1, 1))


# -- l2_penalty --------------------------------------------------------------------------------

def l2_no_half(params, weight_decay):
    return weight_decay * sum(p.pow(2).sum() for p in params)


def l2_item(params, weight_decay):
    return torch.tensor(0.5 * weight_decay * sum(p.pow(2).sum().item() for p in params))


def l2_numpy(params, weight_decay):
    return 0.5 * weight_decay * sum(float(np.sum(p.detach().numpy() ** 2)) for p in params)


def l2_detached(params, weight_decay):
    return 0.5 * weight_decay * sum(p.detach().pow(2).sum() for p in params)


def l2_first_only(params, weight_decay):
    first = next(iter(params))
    return 0.5 * weight_decay * first.pow(2).sum()


def l2_overwrites_total(params, weight_decay):
    for p in params:
        total = p.pow(2).sum()
    return 0.5 * weight_decay * total


def l2_mean_of_squares(params, weight_decay):
    return 0.5 * weight_decay * sum(p.pow(2).mean() for p in params)


def l2_norms_not_squared(params, weight_decay):
    return 0.5 * weight_decay * sum(torch.norm(p) for p in params)


def l2_indexes_params(params, weight_decay):
    return 0.5 * weight_decay * sum(params[i].pow(2).sum() for i in range(len(params)))


def l2_two_passes(params, weight_decay):
    n = sum(1 for _ in params)                      # consumes a generator...
    return 0.5 * weight_decay * sum(p.pow(2).sum() for p in params) * (n > 0)   # ... so this sees nothing


def l2_shape_one(params, weight_decay):
    total = torch.zeros(1, dtype=torch.float64)
    for p in params:
        total = total + p.pow(2).sum()
    return 0.5 * weight_decay * total


# -- l1_penalty --------------------------------------------------------------------------------

def l1_squares(params, strength):
    return strength * sum(p.pow(2).sum() for p in params)


def l1_squared_sum(params, strength):
    return strength * sum(p.abs().sum() for p in params) ** 2


def l1_no_abs(params, strength):
    return strength * sum(p.sum() for p in params)


def l1_item(params, strength):
    return strength * sum(p.abs().sum().item() for p in params)


def l1_first_only(params, strength):
    return strength * next(iter(params)).abs().sum()


def l1_half(params, strength):
    return 0.5 * strength * sum(p.abs().sum() for p in params)


def l1_indexes_params(params, strength):
    return strength * sum(params[i].abs().sum() for i in range(len(params)))


# -- early_stopping_epoch ----------------------------------------------------------------

def es_global_argmin(val_losses, patience):
    _check_patience(patience)
    return int(np.argmin(val_losses))


def es_tie_improves(val_losses, patience):
    _check_patience(patience)
    best, best_epoch, waited = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses):
        if loss <= best:
            best, best_epoch, waited = loss, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                break
    return best_epoch


def es_one_late(val_losses, patience):
    _check_patience(patience)
    best, best_epoch, waited = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, best_epoch, waited = loss, epoch, 0
        else:
            waited += 1
            if waited > patience:
                break
    return best_epoch


def es_one_early(val_losses, patience):
    _check_patience(patience)
    best, best_epoch, waited = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, best_epoch, waited = loss, epoch, 1      # counts the best epoch itself
        else:
            waited += 1
            if waited >= patience:
                break
    return best_epoch


def es_returns_stop_epoch(val_losses, patience):
    _check_patience(patience)
    best, best_epoch, waited = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, best_epoch, waited = loss, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                return epoch
    return best_epoch


def es_one_based(val_losses, patience):
    _check_patience(patience)
    best, best_epoch, waited = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best:
            best, best_epoch, waited = loss, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                break
    return best_epoch


def es_no_value_error(val_losses, patience):
    best, best_epoch, waited = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, best_epoch, waited = loss, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                break
    return best_epoch


def es_float_epoch(val_losses, patience):
    _check_patience(patience)
    best, best_epoch, waited = float("inf"), 0.0, 0
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, best_epoch, waited = loss, float(epoch), 0
        else:
            waited += 1
            if waited >= patience:
                break
    return best_epoch


def es_list_only(val_losses, patience):
    _check_patience(patience)
    best, waited, stop = float("inf"), 0, len(val_losses) - 1
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, waited = loss, 0
        else:
            waited += 1
            if waited >= patience:
                stop = epoch
                break
    window = val_losses[:stop + 1]
    return window.index(min(window))       # ndarray has no .index


MUTANTS = {
    "polynomial_features": [
        # Wrong central computation: the matrix is not x**0 .. x**degree (nothing is right).
        ("no-ones-column", pf_no_ones_column, 0.25),        # x**0 column missing: no intercept
        ("one-degree-too-few", pf_one_degree_too_few, 0.25),  # range(degree): x**degree missing
        ("one-degree-too-many", pf_one_degree_too_many, 0.25),  # range(degree + 2)
        ("decreasing-powers", pf_decreasing, 0.25),         # np.vander's default order
        ("transposed", pf_transposed, 0.25),                # one row per power instead of per sample
        ("returns-none", pf_returns_none, 0.0),             # forgets `return`: nothing
    ],
    "ridge_fit": [
        # Wrong penalty: only the least-squares part is right (at most a quarter).
        ("intercept-unpenalised", ridge_intercept_unpenalised, 0.25),  # the spec penalises every coefficient
        ("last-unpenalised", ridge_last_unpenalised, 0.25),            # intercept last (np.vander order) spared
        ("half-lam", ridge_half_lam, 0.25),                 # gradient of lam||w||^2 taken as lam w
        ("double-lam", ridge_double_lam, 0.25),             # a factor 2 too many
        ("lam-times-n", ridge_lam_times_n, 0.25),           # mean squared error objective, lam rescaled
        ("lam-ignored", ridge_lam_ignored, 0.25),           # plain least squares
        ("lam-on-every-entry", ridge_lam_on_every_entry, 0.25),  # X^T X + lam instead of + lam I
        ("augmented-without-sqrt", ridge_augmented_without_sqrt, 0.25),  # [X; lam I]: penalises lam^2
        # Peripheral slips: they lose only their own weight.
        ("no-value-error", ridge_no_value_error, 0.92),     # lam < 0 accepted: 11/12
        ("column-vector", ridge_column_vector, 0.92),       # w of shape (D, 1): 11/12
    ],
    "l2_penalty": [
        # Wrong value: nothing is right (at most a quarter).
        ("no-half", l2_no_half, 0.25),                      # weight_decay * sum of squares: twice too large
        ("first-tensor-only", l2_first_only, 0.25),         # next(iter(params)) only
        ("overwrites-total", l2_overwrites_total, 0.25),    # total = ... in the loop: the last tensor only
        ("mean-of-squares", l2_mean_of_squares, 0.25),      # mean instead of sum
        ("norms-not-squared", l2_norms_not_squared, 0.25),  # ||w|| instead of ||w||^2
        # Right value, no gradient: half the idea (a penalty that cannot be backpropagated), at most half.
        ("item", l2_item, 0.5),                             # .item() then torch.tensor: detached
        ("numpy", l2_numpy, 0.5),                           # a Python float from numpy
        ("detached", l2_detached, 0.5),                     # .detach() on every parameter
        # Only lists work: model.parameters() is a generator (loses 2 of 13).
        ("indexes-params", l2_indexes_params, 0.85),        # len(params), params[i]: TypeError on a generator
        ("two-passes", l2_two_passes, 0.85),                # a second pass over a generator sees nothing
        # Peripheral slip.
        ("shape-one", l2_shape_one, 0.93),                  # shape (1,) instead of a 0-d tensor: 12/13
    ],
    "l1_penalty": [
        ("squares", l1_squares, 0.25),                      # sum of squares: that is L2
        ("squared-sum", l1_squared_sum, 0.25),              # (sum |w|)^2
        ("no-abs", l1_no_abs, 0.25),                        # signed sum: weights cancel
        ("first-tensor-only", l1_first_only, 0.25),         # one tensor only
        ("half", l1_half, 0.25),                            # a 0.5 copied from L2
        ("item", l1_item, 0.5),                             # right value, no gradient
        ("indexes-params", l1_indexes_params, 0.85),        # lists only
    ],
    "early_stopping_epoch": [
        # Patience ignored: only a run that never stops is right (at most a quarter).
        ("global-argmin", es_global_argmin, 0.25),          # the lowest loss of the whole run
        ("one-based", es_one_based, 0.25),                  # epochs counted from 1: every answer off by one
        # The stopping rule off by one, or the stop epoch returned: the best-epoch tracking is right (< 0.35).
        ("one-epoch-late", es_one_late, 0.35),              # waited > patience
        ("one-epoch-early", es_one_early, 0.35),            # the best epoch counted as a bad one
        ("returns-stop-epoch", es_returns_stop_epoch, 0.35),  # the epoch where it stopped, not the best one
        # A tie counted as a new best: all but the tie check (7/12).
        ("tie-improves", es_tie_improves, 0.6),             # <= instead of <
        # Peripheral slips.
        ("no-value-error", es_no_value_error, 0.92),        # patience < 1 accepted: 11/12
        ("float-epoch", es_float_epoch, 0.92),              # returns 3.0, not 3: 11/12
        ("list-only", es_list_only, 0.92),                  # val_losses.index: fails for an ndarray: 11/12
    ],
}
