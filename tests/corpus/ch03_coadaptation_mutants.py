"""The mistakes students make in chapter 03. Every one must lose points under
every seed (tests/test_corpora.py), and every table row states, as its third
entry, the share of its function's points it may keep at most (or a
(min, max) pair when part of it must be credited), with the reason on its
line: the share an experienced teaching assistant would leave it
(autograder/POLICY.md)."""
import numpy as np

from .ch03_coadaptation_variants import _acc, _logits


# -- mean_abs_correlation -------------------------------------------------------------------

def _live(H):
    H = np.asarray(H, dtype=float)
    return H[:, H.std(axis=0) > 1e-12]


def mac_diagonal_included(H):
    A = _live(H)
    if A.shape[1] < 2:
        return 0.0
    return float(np.abs(np.corrcoef(A, rowvar=False)).mean())


def mac_signed(H):
    A = _live(H)
    if A.shape[1] < 2:
        return 0.0
    R = np.corrcoef(A, rowvar=False)
    return float(R[np.triu_indices(R.shape[0], 1)].mean())


def mac_constant_nan(H):
    H = np.asarray(H, dtype=float)
    with np.errstate(all="ignore"):
        R = np.atleast_2d(np.corrcoef(H, rowvar=False))
    vals = np.abs(R[np.triu_indices(R.shape[0], 1)])
    return float(vals.mean()) if vals.size else float("nan")


def mac_constant_as_zero(H):
    H = np.asarray(H, dtype=float)
    if H.shape[1] < 2:
        return 0.0
    with np.errstate(all="ignore"):
        R = np.nan_to_num(np.corrcoef(H, rowvar=False), nan=0.0)
    return float(np.abs(R[np.triu_indices(R.shape[0], 1)]).mean())


def mac_only_zero_columns(H):
    H = np.asarray(H, dtype=float)
    A = H[:, np.any(H != 0, axis=0)]
    if A.shape[1] < 2:
        return 0.0
    with np.errstate(all="ignore"):
        R = np.corrcoef(A, rowvar=False)
    return float(np.abs(R[np.triu_indices(R.shape[0], 1)]).mean())


def mac_few_not_zero(H):
    A = _live(H)
    with np.errstate(all="ignore"):
        R = np.atleast_2d(np.corrcoef(A, rowvar=False)) if A.shape[1] else np.zeros((0, 0))
        vals = np.abs(R[np.triu_indices(R.shape[0], 1)])
        return float(np.mean(vals))                  # nan (and a warning) when there is no pair


def mac_rows(H):
    H = np.asarray(H, dtype=float)
    A = H[:, H.std(axis=0) > 1e-12]
    if A.shape[1] < 2:
        return 0.0
    with np.errstate(all="ignore"):
        R = np.corrcoef(A)                            # rowvar defaults to True: rows are the variables
    return float(np.nanmean(np.abs(R[np.triu_indices(R.shape[0], 1)])))


def mac_covariance(H):
    A = _live(H)
    if A.shape[1] < 2:
        return 0.0
    C = np.cov(A, rowvar=False)
    return float(np.abs(C[np.triu_indices(C.shape[0], 1)]).mean())


def mac_in_place(H):
    H -= H.mean(axis=0)                               # standardises the caller's array
    sd = H.std(axis=0)
    keep = sd > 1e-12
    if keep.sum() < 2:
        return 0.0
    H[:, keep] /= sd[keep]
    Z = H[:, keep]
    R = Z.T @ Z / Z.shape[0]
    return float(np.abs(R[np.triu_indices(R.shape[0], 1)]).mean())


def mac_returns_none(H):
    np.corrcoef(H, rowvar=False)


# -- fraction_inactive -----------------------------------------------------------------------

def fi_strictly_negative(H):
    return float(np.mean(np.asarray(H) < 0))


def fi_only_zeros(H):
    return float(np.mean(np.asarray(H) == 0))


def fi_active(H):
    return float(np.mean(np.asarray(H) > 0))


def fi_per_unit(H):
    return np.mean(np.asarray(H) <= 0, axis=0)


def fi_count(H):
    return float(np.sum(np.asarray(H) <= 0))


def fi_dead_units(H):
    return float(np.mean(np.all(np.asarray(H) <= 0, axis=0)))


def fi_array_of_one(H):
    return np.array([np.mean(np.asarray(H) <= 0)])


def fi_returns_none(H):
    np.mean(np.asarray(H) <= 0)


# -- ablation_importance ----------------------------------------------------------------------

def _ablated(X, y, params, j, scale_others=1.0):
    H = params["W1"].shape[1]
    keep = np.full(H, scale_others)
    keep[j] = 0.0
    return _acc(_logits(X, params, keep), y)


def ai_sign_flipped(X, y, params):
    full = _acc(_logits(X, params), y)
    return np.array([_ablated(X, y, params, j) - full for j in range(params["W1"].shape[1])])


def ai_rescaled(X, y, params):
    H = params["W1"].shape[1]
    full = _acc(_logits(X, params), y)
    return np.array([full - _ablated(X, y, params, j, H / (H - 1)) for j in range(H)])


def ai_input_ablation(X, y, params):
    full = _acc(_logits(X, params), y)
    out = []
    for d in range(X.shape[1]):
        Xd = X.copy()
        Xd[:, d] = 0.0
        out.append(full - _acc(_logits(Xd, params), y))
    return np.array(out)


def ai_w1_column_only(X, y, params):
    full = _acc(_logits(X, params), y)
    out = []
    for j in range(params["W1"].shape[1]):
        p2 = {k: v.copy() for k, v in params.items()}
        p2["W1"][:, j] = 0.0                          # the bias b1[j] still comes through the ReLU
        out.append(full - _acc(_logits(X, p2), y))
    return np.array(out)


def ai_accumulates(X, y, params):
    full = _acc(_logits(X, params), y)
    p2 = dict(params)                                 # a shallow copy: p2["W2"] IS params["W2"]
    out = []
    for j in range(params["W2"].shape[0]):
        p2["W2"][j] = 0.0
        out.append(full - _acc(_logits(X, p2), y))
    return np.array(out)


def ai_accuracies(X, y, params):
    return np.array([_ablated(X, y, params, j) for j in range(params["W1"].shape[1])])


def ai_in_place_left_zeroed(X, y, params):
    """Right importances, but the caller's W2 is left with its last row zeroed."""
    W2 = params["W2"]
    full = _acc(_logits(X, params), y)
    out = []
    for j in range(W2.shape[0]):
        saved = W2[j].copy()
        if j > 0:
            W2[j - 1] = prev
        W2[j] = 0.0
        out.append(full - _acc(_logits(X, params), y))
        prev = saved
    return np.array(out)


def ai_counts(X, y, params):
    """Counts of images instead of fractions."""
    full = np.sum(np.argmax(_logits(X, params), 1) == y)
    H = params["W1"].shape[1]
    out = []
    for j in range(H):
        keep = np.ones(H)
        keep[j] = 0
        out.append(int(full - np.sum(np.argmax(_logits(X, params, keep), 1) == y)))
    return np.array(out)


def ai_as_list(X, y, params):
    full = _acc(_logits(X, params), y)
    return [float(full - _ablated(X, y, params, j)) for j in range(params["W1"].shape[1])]


def ai_returns_none(X, y, params):
    _acc(_logits(X, params), y)


# -- random_deletion_accuracy ----------------------------------------------------------------------

def _deleted_acc(X, y, params, deleted, scale=1.0):
    H = params["W1"].shape[1]
    keep = np.full(H, scale)
    keep[np.asarray(deleted, dtype=int)] = 0.0
    return _acc(_logits(X, params, keep), y)


def rd_with_replacement(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    k = int(round(fraction * H))
    return float(np.mean([_deleted_acc(X, y, params, rng.choice(H, k)) for _ in range(n_repeats)]))


def rd_integers(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    k = int(round(fraction * H))
    return float(np.mean([_deleted_acc(X, y, params, rng.integers(0, H, size=k)) for _ in range(n_repeats)]))


def rd_rescaled(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    k = int(round(fraction * H))
    scale = 1.0 / (1.0 - fraction) if fraction < 1 else 1.0
    return float(np.mean([_deleted_acc(X, y, params, rng.choice(H, k, replace=False), scale)
                          for _ in range(n_repeats)]))


def rd_fixed_set(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    deleted = rng.choice(H, int(round(fraction * H)), replace=False)    # drawn once, reused
    return float(np.mean([_deleted_acc(X, y, params, deleted) for _ in range(n_repeats)]))


def rd_ignores_n_repeats(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    return float(_deleted_acc(X, y, params, rng.choice(H, int(round(fraction * H)), replace=False)))


def rd_floor(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    k = int(fraction * H)
    return float(np.mean([_deleted_acc(X, y, params, rng.choice(H, k, replace=False)) for _ in range(n_repeats)]))


def rd_keep_fraction(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    k = int(round((1 - fraction) * H))                # fraction read as the fraction KEPT
    return float(np.mean([_deleted_acc(X, y, params, rng.choice(H, k, replace=False)) for _ in range(n_repeats)]))


def rd_fixed_seed(X, y, params, fraction, n_repeats, rng):
    rng = np.random.default_rng(0)
    H = params["W1"].shape[1]
    k = int(round(fraction * H))
    return float(np.mean([_deleted_acc(X, y, params, rng.choice(H, k, replace=False)) for _ in range(n_repeats)]))


def rd_first_k(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    return float(_deleted_acc(X, y, params, np.arange(int(round(fraction * H)))))


def rd_global_random(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    k = int(round(fraction * H))
    return float(np.mean([_deleted_acc(X, y, params, np.random.permutation(H)[:k]) for _ in range(n_repeats)]))


def rd_sum_not_mean(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    k = int(round(fraction * H))
    return float(np.sum([_deleted_acc(X, y, params, rng.choice(H, k, replace=False)) for _ in range(n_repeats)]))


def rd_percent(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    k = int(round(fraction * H))
    return 100 * float(np.mean([_deleted_acc(X, y, params, rng.choice(H, k, replace=False))
                                for _ in range(n_repeats)]))


def rd_returns_none(X, y, params, fraction, n_repeats, rng):
    H = params["W1"].shape[1]
    _deleted_acc(X, y, params, rng.choice(H, int(round(fraction * H)), replace=False))


MUTANTS = {
    "mean_abs_correlation": [
        ("diagonal included", mac_diagonal_included, 0.25),     # each unit's r = 1 with itself averaged in
        ("signed correlations", mac_signed, 0.25),              # +r and -r cancel: the measurement is wrong
        ("constant columns give NaN", mac_constant_nan, 0.5),   # right on live units, NaN as soon as one is dead
        ("constant pairs counted as 0", mac_constant_as_zero, 0.5),  # right without constant columns only
        ("only zero columns left out", mac_only_zero_columns, 0.5),  # NaN with a column constant at 2.0
        ("fewer than two not 0.0", mac_few_not_zero, 0.85),     # the definition's edge case: its own 2/11
        ("rows correlated", mac_rows, 0.25),                    # np.corrcoef's default rowvar: inputs, not units
        ("covariance", mac_covariance, 0.25),                   # not a correlation at all
        ("H standardised in place", mac_in_place, (0.9, 0.91)), # right value, the caller's H destroyed: 10/11
        ("returns None", mac_returns_none, 0.0),                # nothing to grade
    ],
    "fraction_inactive": [
        ("< 0", fi_strictly_negative, 0.25),                    # misses every zero of a ReLU: counts nothing
        ("== 0", fi_only_zeros, 0.6),                           # right for ReLU outputs, wrong with negatives
        ("fraction active", fi_active, 0.25),                   # the complement
        ("per unit", fi_per_unit, 0.25),                        # an array (D,) instead of one number
        ("count", fi_count, 0.25),                              # not a fraction
        ("dead units", fi_dead_units, 0.25),                    # units inactive everywhere, not entries
        ("array of one", fi_array_of_one, (0.88, 0.89)),        # right number in a (1,) array: 8/9
        ("returns None", fi_returns_none, 0.0),                 # nothing to grade
    ],
    "ablation_importance": [
        ("sign flipped", ai_sign_flipped, 0.25),                # ablated minus full
        ("others rescaled", ai_rescaled, 0.25),                 # H/(H-1) on the survivors: not one unit's effect
        ("input ablated", ai_input_ablation, 0.25),             # deletes an input feature, not a hidden unit
        ("W1 column only", ai_w1_column_only, 0.25),            # the unit still outputs relu(b1[j])
        ("accumulates (shallow copy)", ai_accumulates, 0.25),   # unit j measured with units 0..j deleted
        ("ablated accuracies", ai_accuracies, 0.25),            # not the difference
        ("params left modified", ai_in_place_left_zeroed, (0.85, 0.86)),  # right values, caller's W2 changed: 6/7
        ("counts, not fractions", ai_counts, 0.25),             # importances in images
        ("a list", ai_as_list, (0.85, 0.86)),                   # right numbers, not an array: 6/7
        ("returns None", ai_returns_none, 0.0),                 # nothing to grade
    ],
    "random_deletion_accuracy": [
        ("with replacement (choice)", rd_with_replacement, 0.25),  # fewer than k distinct units deleted
        ("with replacement (integers)", rd_integers, 0.25),     # the same
        ("survivors rescaled", rd_rescaled, 0.6),               # the deletion is right, the measurement is not: 16/28
        ("one set for every repeat", rd_fixed_set, 0.5),        # the average over repeats is pointless: 11/28
        ("n_repeats ignored", rd_ignores_n_repeats, 0.5),       # one repeat: 11/28
        ("floor", rd_floor, 0.75),                              # int() instead of round: off by one unit: 20/28
        ("fraction kept", rd_keep_fraction, 0.25),              # deletes 1 - fraction of the units
        ("seed fixed inside", rd_fixed_seed, 0.75),             # every call deletes the same sets: 20/28
        ("first k units", rd_first_k, 0.4),                     # no randomness: keeps the count and no-rescale parts, 11/28
        ("global random", rd_global_random, 0.9),               # np.random: not a function of rng, 25/28
        ("sum, not mean", rd_sum_not_mean, 0.5),                # right sets, the repeats added up
        ("percent", rd_percent, 0.25),                          # not a fraction
        ("returns None", rd_returns_none, 0.0),                 # nothing to grade
    ],
}
