"""Checks for chapter 03, co-adaptation.

Three functions are deterministic and are compared (to float tolerance) with
values computed here from the probe's inputs: mean_abs_correlation,
fraction_inactive and ablation_importance. random_deletion_accuracy takes
``rng`` and is checked exactly where the deleted units are observable and
statistically where they are not.

Exact where it matters. Deleting hidden units changes an accuracy only through
the predictions, so the probe (dropout_lab/probes/ch03_coadaptation.py) builds
small designed networks on which an accuracy tells what was deleted:

* on the *coded* network unit j owns base**j inputs, each classified correctly
  exactly when its owner is kept. For n_repeats = R (base = R + 1) the mean
  accuracy r gives T = R * N * (1 - r) = sum over repeats of the deleted units'
  codes, and the base-(R+1) digits of T count how often each unit was deleted.
  With R = 1 that is the deleted set itself: its size must be
  k = int(round(fraction * H)), distinct units; with R = 2 every repeat must
  delete k units (digits <= 2 summing to 2k).
* on the *balance* network the hidden units push a wrong class and the output
  bias the right one, so an input is classified correctly when H - k units send
  their signal unchanged, and wrongly when the survivors are multiplied by
  1/(1 - fraction) (then they send as much as all H units). A correct function
  returns 1.0, one that rescales the survivors 0.0.
* for ablation_importance a balance network whose hidden units push the right
  class makes a rescaled ablation (the others multiplied by H/(H-1)) equal to
  the full network (importance 0) and a flipped sign negative.

Predictions near a tie (top-two logit gap below 1e-4 of the logits' scale, as
float32 arithmetic might flip them) are accepted either way on the random
networks, so float32 and torch implementations never fail by rounding; the
designed networks have gaps of at least 0.05.

Gating and weights (autograder/POLICY.md). Each function's central computation
is declared ``central=True`` and carries at least half of its weight; the shape,
the type and inputs left unmodified are peripheral and earn only once the
central checks pass. The shares this gives, held by the mutant corpus
(tests/corpus/ch03_coadaptation_mutants.py):

* mean_abs_correlation (8 of 11 central): distinct pairs without constant
  columns (5) and constant columns left out (3). The diagonal included, signed
  correlations averaged, rows correlated instead of columns or covariances keep
  nothing; constant columns giving NaN, counted as correlation 0, or only
  all-zero columns left out keep the first part, 5/11; fewer than two
  non-constant columns not giving 0.0 keeps 9/11.
* fraction_inactive (7 of 9 central): ReLU activations (5) and negative entries
  (2). Counting < 0 (which misses every zero of a ReLU), the fraction active,
  a count or per-unit fractions keep nothing; counting == 0 keeps the first
  part, 5/9.
* ablation_importance (6 of 7 central): the sign flipped, the others rescaled,
  an input ablated instead of a hidden unit, ablations that accumulate
  (params changed in place), the ablated accuracies themselves: nothing.
* random_deletion_accuracy: six central parts, exactly k distinct units per
  repeat (4 of 28), k = int(round(fraction * H)) (3), the survivors not rescaled
  (4), a new set for every repeat averaged over n_repeats (6), each unit deleted
  equally often across calls (3), and within sampling error of the exact mean
  over all sets on random networks (3); same seed, same result (3), the edges
  fraction = 0 and 1 (1), a float and inputs unmodified (1). Drawing with
  replacement keeps at most the rounding part; floor instead of round keeps
  20/28; rescaling the survivors keeps 16/28; one set for every repeat or
  n_repeats ignored keeps 14/28; always the first k units keeps 11/28; a seed
  fixed inside the function keeps 20/28; numpy's global state keeps 25/28.

Statistical bounds (false-failure probability of a correct function, per
sub-check, all below the 1e-9 the design asks for; ALPHA = 1e-10 from
autograder.checks.stats):

* random_deletion_accuracy, units equally often: in 200 single-repeat calls at
  fraction 0.5 (k = 4 of 8) each unit is deleted in Binomial(200, 1/2) of them
  (each call's set is uniform, so each unit is in it with probability k/H,
  independently across calls); binomial_bounds at ALPHA / 8 per unit, ALPHA in
  all. Always the same set (a seed fixed inside) gives 200 or 0.
* a new set for every repeat: a correct function deletes the same set in both
  repeats of a call with probability 1/C(8, 4) = 1/70; the check fails only when
  all 12 calls do, probability 70**-12 < 1e-22.
* within sampling error: each repeat's accuracy is an independent draw from the
  accuracies of all C(H, k) sets (computed here), with variance s2 and largest
  deviation b from their mean; Bernstein's inequality bounds
  P(|mean of R - mean| >= t) by 2 exp(-R t^2 / (2 s2 + 2 b t / 3)); t solves this
  = ALPHA / 2 for each of the 2 calls (R = 2000), ALPHA in all.
* every exact check (decoding on the coded networks, the balance networks,
  ablation, correlations) is deterministic for a correct function.

Messages name the mistake, recognised by comparing the student's output with
what that mistake gives on the same hidden inputs (never shown): "your mean
includes the diagonal", "you averaged the signed correlations", "NaN with
constant columns", "counted only entries < 0", "the sign is flipped", "the
other units are rescaled", "one importance per input", "your ablations
accumulate", "fewer than k distinct units: drawn with replacement", "int()
truncates 3.6 to 3", "the survivors are rescaled by 1/(1-fraction) = 2.0", "the
same units in every repeat". Numbers in messages come from public parameters
(fraction, H, k, n_repeats) or from the student's own outputs.
"""
import itertools
import math

import numpy as np

from dropout_lab.probes.ch03_coadaptation import (BALANCE_FRACTIONS, BALANCE_REPEATS, DEL_H, FEW_CALLS,
                                                  FRESH_CALLS, FRESH_REPEATS, MANY_CALLS, ROUND_CALLS,
                                                  ROUND_FRACTIONS, STAT_FRACTIONS, STAT_REPEATS, WHOLE_FRACTIONS)

from .base import (NONE_MESSAGE, Checker, CheckFailed, as_float_array, check_function_of_rng, fmt)
from .stats import ALPHA, binomial_bounds

RNG_CHECK = "uses only rng (same seed, same result)"


def _scalar(c: Checker, key: str, what: str) -> float:
    """The single number a call returned (a 0-d or one-element array is accepted here;
    the peripheral check asks for a plain float)."""
    value = c.output(key)
    arr = as_float_array(value, what)
    c.require(arr.size == 1, f"the {what} must be one number; yours has shape {arr.shape}")
    return float(arr.reshape(-1)[0])


def _require_float_return(c: Checker, key: str, name: str) -> None:
    c.require(not c.entry(key).is_tuple, f"{name} must return a single float; yours returned a list or tuple "
                                         "holding it (return the number itself)")
    arr = np.asarray(c.output(key))
    c.require(arr.ndim == 0, f"{name} must return a single float; yours returned an array of shape {arr.shape} "
                             "(use float(...))")


# -- mean_abs_correlation ------------------------------------------------------------------

def _constant(H) -> np.ndarray:
    spread = H.max(axis=0) - H.min(axis=0)
    return spread <= 1e-12 * np.maximum(1.0, np.abs(H).max(axis=0))


def _corr(A) -> np.ndarray:
    A = A - A.mean(axis=0)
    norms = np.sqrt((A * A).sum(axis=0))
    with np.errstate(all="ignore"):
        return (A.T @ A) / np.outer(norms, norms)


def _pairs(n):
    return np.triu_indices(n, k=1)


def _mac(H) -> float:
    live = ~_constant(H)
    if live.sum() < 2:
        return 0.0
    R = _corr(H[:, live])
    i, j = _pairs(R.shape[0])
    return float(np.abs(R[i, j]).mean())


def _mac_mistakes(H) -> list:
    """(value, why) of the recognisable mistakes on H."""
    live = ~_constant(H)
    out = []
    if live.sum() >= 2:
        R = _corr(H[:, live])
        n = R.shape[0]
        i, j = _pairs(n)
        out += [
            (float(np.abs(R).mean()),
             f"your mean includes the diagonal of the correlation matrix: each unit's correlation with itself "
             f"(always 1) is not a pair of distinct units. Average |r| over the D'(D'-1)/2 pairs a < b only "
             f"(the off-diagonal entries)"),
            (float(np.abs(R[np.triu_indices(n)]).mean()),
             "your mean includes the diagonal (each unit with itself, r = 1): average over pairs a < b only"),
            (float(R[i, j].mean()),
             "you averaged the SIGNED correlations: r = -0.8 and r = +0.8 cancel, although both pairs are strongly "
             "co-adapted. Average the absolute values |r|"),
            (float(np.abs(R[i, j]).sum()), "that is the SUM of |r| over the pairs; divide by the number of pairs"),
            (float((R[i, j] ** 2).mean()), "you averaged r**2; the task averages |r|"),
        ]
        for ddof in (0, 1):
            cov = np.cov(H[:, live], rowvar=False, ddof=ddof)
            out.append((float(np.abs(cov[i, j]).mean()),
                        "that is the mean absolute COVARIANCE: divide each covariance by the two standard "
                        "deviations to get a correlation"))
    if H.shape[0] >= 2:
        out.append((_mac(H.T), "you correlated the ROWS (inputs) instead of the COLUMNS (units): np.corrcoef "
                               "treats each row as a variable unless you pass rowvar=False"))
    return out


def _mac_problem(got, H) -> str:
    for value, why in _mac_mistakes(H):
        if np.isfinite(value) and np.isclose(got, value, rtol=1e-5, atol=1e-7):
            return why
    if not np.isfinite(got):
        return "your result is NaN or inf on a matrix without constant columns"
    return ("your value is not the mean |Pearson correlation| over the pairs of distinct columns (each column "
            "is one unit, each row one input)")


def _constant_problem(got, H, dead_only: bool, dead_ok: bool = False) -> str:
    live = ~_constant(H)
    n_const = int((~live).sum())
    where = ("with all-zero (dead) columns" if dead_only else
             "with constant columns (all 0, or all equal to another value such as 2.0)")
    if not np.isfinite(got) and dead_ok and not dead_only:
        return ("you leave out the all-zero columns, but with a column that is constant at another value (2.0) "
                "your result is NaN: such a column has no correlation either. Test for zero variance, not for zeros")
    if not np.isfinite(got):
        return (f"{where} your result is NaN: a constant column has zero variance, so its correlation is 0/0, "
                "undefined. Leave constant columns out before correlating (np.corrcoef returns nan for them)")
    R = _corr(H)
    d = H.shape[1]
    i, j = _pairs(d)
    as_zero = np.where(np.isfinite(R[i, j]), np.abs(R[i, j]), 0.0).mean()
    if np.isclose(got, as_zero, rtol=1e-5, atol=1e-7):
        return (f"{where} you counted the pairs with a constant column as correlation 0: leave those columns out. "
                f"Their correlation is undefined, not 0, and counting them makes the mean depend on how many "
                f"units are dead ({n_const} of {d} here)")
    nonzero = ~_constant(H) | (np.abs(H).max(axis=0) > 0)
    if not dead_only and live.sum() < nonzero.sum():
        R2 = _corr(H[:, nonzero])
        i2, j2 = _pairs(R2.shape[0])
        v = np.abs(R2[i2, j2]).mean()
        if not np.isfinite(v) or np.isclose(got, v, rtol=1e-5, atol=1e-7):
            return ("you leave out the all-zero columns but not a column that is constant at another value "
                    "(2.0): it has no correlation either. Test for zero variance, not for zeros")
    return f"{where} your value is not the mean |r| over the pairs of the non-constant columns"


MAC_CENTRAL = "mean |r| over the pairs of distinct columns (matrices without constant columns)"
MAC_CONST = "constant columns (dead units, constant values) are left out"


def check_mean_abs_correlation(c: Checker):
    inputs = c.ref("inputs")
    plain, dead, const = inputs[:3], inputs[3], inputs[4]
    few = dict(zip(("one column", "all constant", "one non-constant", "one row"), inputs[5:]))

    # Central, 5 of 11: the diagonal, signed r, rows or covariances keep nothing.
    with c.check(MAC_CENTRAL, weight=5, central=True):
        for key, H in [(f"plain {i}", H) for i, H in enumerate(plain)] + [("float32", plain[0])]:
            got = _scalar(c, key, "mean |r|")
            if not np.isclose(got, _mac(H), rtol=1e-5, atol=1e-6):
                raise CheckFailed(_mac_problem(got, H))

    # Central, 3 of 11: NaN, constant pairs counted as 0 or only zero columns left out keep 5/11.
    with c.check(MAC_CONST, weight=3, central=True):
        dead_ok = False
        for key, H, dead_only in (("dead columns", dead, True), ("constant columns", const, False),
                                  ("constant columns float32", const, False)):
            got = _scalar(c, key, "mean |r|")
            if not np.isclose(got, _mac(H), rtol=1e-5, atol=1e-6):
                raise CheckFailed(_constant_problem(got, H, dead_only, dead_ok))
            dead_ok = True

    # Not central, 2 of 11: fewer than two non-constant columns not giving 0.0 keeps 9/11.
    with c.check("fewer than two non-constant columns give 0.0", weight=2):
        for key in few:
            entry = c.entry(key)
            what = {"one column": "a single column", "all constant": "only constant columns",
                    "one non-constant": "one non-constant column beside constant ones",
                    "one row": "a single row (every column is constant)"}[key]
            if entry.status == "error":
                raise CheckFailed(f"with {what} your function raised {entry.error_type}: there is no pair of "
                                  "non-constant columns, and the task defines the result as 0.0")
            got = _scalar(c, key, "mean |r|")
            c.require(got == 0.0, f"with {what} there is no pair of non-constant columns to average: return 0.0; "
                                  f"yours returned {fmt(got) if np.isfinite(got) else got}")

    with c.check("returns a single float; H is not modified", weight=1, peripheral=True):
        _require_float_return(c, "plain 0", "mean_abs_correlation")
        c.output("no in-place")
        c.require(not c.mutated("no in-place"), "your function changed H in place (did you subtract the mean or "
                                                "divide by the standard deviation in H itself?)")


# -- fraction_inactive -------------------------------------------------------------------------

def _fi_problem(got, H) -> str:
    H = np.asarray(H, dtype=np.float64)
    named = [
        ((H < 0).mean(), "you counted only the entries < 0: a ReLU activation is never negative, so that misses "
                         "every inactive unit (they output exactly 0). Count the entries <= 0"),
        ((H > 0).mean(), "that is the fraction of ACTIVE entries (> 0); the task asks for the inactive ones, <= 0"),
        ((H >= 0).mean(), "you counted the entries >= 0; inactive means <= 0"),
        (float((H <= 0).sum()), f"that is the NUMBER of inactive entries; divide by the number of entries "
                                f"N * D = {H.size}"),
        (np.all(H <= 0, axis=0).mean(), "that is the fraction of units inactive on EVERY input (dead units); the "
                                        "task counts entries: all N * D of them"),
    ]
    for value, why in named:
        if np.isclose(got, value, rtol=1e-6, atol=1e-9):
            return why
    return f"your value is not the fraction of the N * D = {H.size} entries that are <= 0"


def _fi_value(c, key, H) -> float:
    value = c.output(key)
    arr = as_float_array(value, "fraction")
    if arr.size != 1:
        n, d = np.shape(H)
        axis = "axis=0, one per unit" if arr.size == d else ("axis=1, one per input" if arr.size == n else "")
        raise CheckFailed(f"fraction_inactive returns ONE number, the fraction of all N * D entries; yours has shape "
                          f"{arr.shape}" + (f" (a mean over {axis}?)" if axis else ""))
    return float(arr.reshape(-1)[0])


FI_RELU = "the fraction of entries <= 0 of ReLU activations (their zeros)"
FI_NEG = "negative entries count as inactive too (<= 0, not == 0)"


def check_fraction_inactive(c: Checker):
    inputs = c.ref("inputs")
    relu, signed, leaky = inputs[:3], inputs[3], inputs[4]
    edge = dict(zip(("all positive", "all zero", "integers"), inputs[5:]))

    # Central, 5 of 9: < 0, the active fraction, a count or per-unit fractions keep nothing.
    with c.check(FI_RELU, weight=5, central=True):
        # relu 1 (with a dead unit) first: there "< 0" (0) and "dead units only" (1/D) differ
        for key, H in [(f"relu {i}", relu[i]) for i in (1, 0, 2)] + [("relu float32", relu[0])]:
            got = _fi_value(c, key, H)
            if not np.isclose(got, np.mean(H <= 0), rtol=1e-6, atol=1e-9):
                raise CheckFailed(_fi_problem(got, H))

    # Central, 2 of 9: counting == 0 keeps the first part, 5/9.
    with c.check(FI_NEG, weight=2, central=True):
        for key, H in (("signed", signed), ("leaky", leaky)):
            got = _fi_value(c, key, H)
            if not np.isclose(got, np.mean(H <= 0), rtol=1e-6, atol=1e-9):
                if np.isclose(got, np.mean(H == 0), rtol=1e-6, atol=1e-9):
                    raise CheckFailed("you counted only the entries == 0: for activations that can be negative "
                                      "(pre-activations, leaky ReLU, tanh) a negative entry is inactive too. Count "
                                      "the entries <= 0")
                raise CheckFailed("on a matrix with negative entries " + _fi_problem(got, H))

    with c.check("edges: all positive gives 0.0, all zero gives 1.0, integer entries work", weight=1):
        for key, H in edge.items():
            got = _fi_value(c, key, H)
            want = {"all positive": "0.0: no entry is <= 0", "all zero": "1.0: every entry is <= 0",
                    "integers": "the fraction of them that are <= 0 (the same rule as for floats)"}[key]
            c.require(np.isclose(got, np.mean(H <= 0), rtol=1e-6, atol=1e-9),
                      f"with {key.replace('integers', 'integer entries')} the result is {want}; yours is {fmt(got)}")

    with c.check("returns a single float; H is not modified", weight=1, peripheral=True):
        _require_float_return(c, "relu 0", "fraction_inactive")
        c.output("no in-place")
        c.require(not c.mutated("no in-place"), "your function changed H in place")


# -- the network -------------------------------------------------------------------------------

def _hidden(X, params):
    return np.maximum(np.asarray(X, np.float64) @ params["W1"].astype(np.float64)
                      + params["b1"].astype(np.float64), 0.0)


def _logits(h, params):
    return h @ params["W2"].astype(np.float64) + params["b2"].astype(np.float64)


def _correct(logits, y, tol_scale: float = 1e-4):
    """(correct, ambiguous) per row: the arg-max is the label, and whether the top two
    logits are so close that float32 arithmetic might order them the other way."""
    top2 = np.sort(logits, axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    scale = 1.0 + np.abs(logits).max()
    return logits.argmax(axis=1) == y, gap < tol_scale * scale


def _acc_range(logits, y):
    """(lowest, highest) accuracy, ambiguous rows counted either way."""
    ok, amb = _correct(logits, y)
    n = len(y)
    return float((ok & ~amb).sum() / n), float((ok | amb).sum() / n)


def _acc(logits, y):
    return float(np.mean(logits.argmax(axis=1) == y))


def _net_inputs(flat, n_nets):
    """[(X, y, params), ...] from a flat recorded tuple."""
    return [tuple(flat[3 * i:3 * i + 3]) for i in range(n_nets)]


# -- ablation_importance --------------------------------------------------------------------------

def _ablation_ranges(X, y, params):
    """(lo, hi) per hidden unit of full - ablated accuracy, ambiguous rows either way."""
    h = _hidden(X, params)
    full_lo, full_hi = _acc_range(_logits(h, params), y)
    lo, hi = np.zeros(h.shape[1]), np.zeros(h.shape[1])
    for j in range(h.shape[1]):
        hj = h.copy()
        hj[:, j] = 0.0
        a_lo, a_hi = _acc_range(_logits(hj, params), y)
        lo[j], hi[j] = full_lo - a_hi, full_hi - a_lo
    return lo, hi


def _ablation_mistakes(X, y, params) -> list:
    h = _hidden(X, params)
    H = h.shape[1]
    full = _acc(_logits(h, params), y)
    acc_without, rescaled, w1_only, cumulative = (np.zeros(H) for _ in range(4))
    for j in range(H):
        hj = h.copy()
        hj[:, j] = 0.0
        acc_without[j] = _acc(_logits(hj, params), y)
        rescaled[j] = full - _acc(_logits(hj * H / (H - 1), params), y) if H > 1 else np.nan
        hw = h.copy()
        hw[:, j] = np.maximum(params["b1"][j], 0.0)
        w1_only[j] = full - _acc(_logits(hw, params), y)
        hc = h.copy()
        hc[:, :j + 1] = 0.0
        cumulative[j] = full - _acc(_logits(hc, params), y)
    imp = full - acc_without
    return [
        (-imp, "the sign is flipped: importance is the accuracy of the FULL network minus the accuracy without unit "
               "j, so a unit the network needs has a positive importance"),
        (rescaled, f"you rescaled the other units (by H/(H-1) = {fmt(H / (H - 1))}) when deleting one: the importance "
                   "isolates unit j, so set its activation to 0 and leave every other unit as it is"),
        (w1_only, "you zeroed unit j's incoming weights but not its bias: it still outputs relu(b1[j]) on every "
                  "input. Set its activation to 0 (or zero its row of W2)"),
        (cumulative, "your ablations accumulate: the importance of unit j is measured with units 0..j all deleted. "
                     "Did you zero a row of params['W2'] in place (a dict.copy() or a slice shares the arrays)? "
                     "Restore it, or work on a copy, before the next unit"),
        (acc_without, "you returned the accuracies of the ablated networks; the importance is the full network's "
                      "accuracy MINUS each of them"),
        (100 * imp, "your importances are in percent; return fractions of the inputs, as the accuracy itself is"),
    ]


def _input_ablation(X, y, params):
    h = _hidden(X, params)
    full = _acc(_logits(h, params), y)
    out = np.zeros(X.shape[1])
    for d in range(X.shape[1]):
        Xd = np.array(X, dtype=np.float64)
        Xd[:, d] = 0.0
        out[d] = full - _acc(_logits(_hidden(Xd, params), params), y)
    return out


def _ablation_problem(got, X, y, params) -> str | None:
    H, D = params["W1"].shape[1], params["W1"].shape[0]
    if got.shape != (H,):
        if got.size == D and D != H:
            return (f"your result has {D} entries, one per INPUT: ablation deletes a HIDDEN unit (H = {H} of them), "
                    "setting its activation relu(X @ W1 + b1)[:, j] to 0")
        return f"ablation_importance must return one importance per hidden unit, shape (H,) = ({H},); yours has " \
               f"shape {got.shape}"
    lo, hi = _ablation_ranges(X, y, params)
    if np.all((got >= lo - 1e-6) & (got <= hi + 1e-6)):
        return None
    for value, why in _ablation_mistakes(X, y, params):
        if np.allclose(got, value, rtol=1e-6, atol=1e-6):
            return why
    bad = int(np.sum((got < lo - 1e-6) | (got > hi + 1e-6)))
    return (f"{bad} of your {H} importances are not the accuracy of the full network minus its accuracy with that "
            "hidden unit's activation set to 0 (nothing else changed)")


def _importances(c: Checker, key: str) -> np.ndarray:
    """The importances as a float array; a list or tuple of numbers is accepted here (the
    peripheral check asks for an array)."""
    entry = c.entry(key)
    if entry.is_tuple:
        values = c.outputs(key)
        arrs = [as_float_array(v, "importance") for v in values]
        c.require(all(a.size == 1 for a in arrs), "ablation_importance must return one array of importances")
        return np.array([float(a.reshape(-1)[0]) for a in arrs])
    return as_float_array(c.output(key), "importances")


AB_CENTRAL = "importance of each hidden unit: full accuracy minus accuracy with its activation set to 0"


def check_ablation_importance(c: Checker):
    nets = dict(zip(("random", "large", "balance"), _net_inputs(c.ref("inputs"), 3)))
    cases = [("balance", nets["balance"]), ("random", nets["random"]), ("large", nets["large"]),
             ("float32", nets["random"]), ("balance float32", nets["balance"])]

    # Central, 6 of 7: every named mistake keeps nothing.
    with c.check(AB_CENTRAL, weight=6, central=True):
        for key, (X, y, params) in cases:
            got = _importances(c, key)
            problem = _ablation_problem(got.reshape(-1) if got.ndim == 2 and 1 in got.shape else got, X, y, params)
            if problem:
                raise CheckFailed(problem)

    with c.check("returns a float array of shape (H,); X, y and params are not modified", weight=1, peripheral=True):
        X, y, params = nets["random"]
        c.require(not c.entry("random").is_tuple, "ablation_importance must return a numpy array; yours returned a "
                                                  "list or tuple (np.array(...) of it)")
        got = np.asarray(c.output("random"))
        H = params["W1"].shape[1]
        c.require(got.shape == (H,), f"the importances must have shape (H,) = ({H},); yours has shape {got.shape}")
        c.require(got.dtype.kind == "f", f"importances are differences of accuracies, fractions: return floats "
                                         f"(yours have dtype {got.dtype})")
        c.output("no in-place")
        c.require(not c.mutated("no in-place"), "your function changed X or y in place")
        after = c.output("params after")
        c.require(isinstance(after, dict) and all(np.array_equal(as_float_array(after.get(k)), params[k])
                                                  for k in ("W1", "b1", "W2", "b2")),
                  "your function changed params in place (a zeroed row of W2 or column of W1 left behind?); "
                  "restore it or work on copies")


# -- random_deletion_accuracy ----------------------------------------------------------------------

def _k(fraction, H=DEL_H) -> int:
    return int(round(fraction * H))


def _decode(r: float, n_inputs: int, n_repeats: int, H: int = DEL_H):
    """How often each hidden unit of the coded network (base n_repeats + 1) was deleted,
    from the mean accuracy r; None when r is not such a mean."""
    base = n_repeats + 1
    if not np.isfinite(r):
        return None
    T = n_repeats * n_inputs * (1.0 - r)
    if abs(T - round(T)) > 0.01:
        return None
    T = int(round(T))
    if T < 0 or T >= base**H:
        return None
    counts = np.array([(T // base**j) % base for j in range(H)])
    return counts if counts.max() <= n_repeats else None


def _runs(c: Checker, key: str, count: int) -> np.ndarray:
    out = c.output(key)
    if out is None:
        raise CheckFailed(NONE_MESSAGE)
    arr = as_float_array(out, "accuracy")
    c.require(arr.size == count, f"random_deletion_accuracy must return one number (the mean accuracy); yours "
                                 f"returned {arr.size // count if count else arr.size} values per call")
    return arr.reshape(count)


def _require_accuracy(c: Checker, r: float, fraction, n_repeats: int = 1) -> None:
    if not np.isfinite(r):
        raise CheckFailed(f"with fraction = {fmt(fraction)} your result is {r}: an accuracy is a number in [0, 1]")
    if 1.0 + 1e-9 < r <= n_repeats + 1e-9:
        raise CheckFailed(f"with n_repeats = {n_repeats} your result is {fmt(r)}, above 1: you return the SUM of the "
                          "accuracies of the repeats; return their mean")
    if r > 1.0 + 1e-9 or r < -1e-9:
        pct = " (a percentage? return a fraction)" if r <= 100 + 1e-9 else ""
        raise CheckFailed(f"with fraction = {fmt(fraction)} your result is {fmt(r)}: an accuracy is a fraction of the "
                          f"inputs, in [0, 1]{pct}")


def _set_sizes(c: Checker, key: str, count: int, fraction, n_inputs: int) -> np.ndarray:
    """(count, H) 0/1 deleted sets of single-repeat calls on the coded network."""
    runs = _runs(c, key, count)
    sets = []
    for r in runs:
        _require_accuracy(c, r, fraction)
        counts = _decode(r, n_inputs, 1)
        if counts is None:
            raise CheckFailed(f"with fraction = {fmt(fraction)} and n_repeats = 1 your result is not the accuracy of "
                              "the network with some hidden units deleted (their activations set to 0, nothing "
                              "else changed): delete units after the ReLU, then take the fraction of inputs whose "
                              "arg-max is the label")
        sets.append(counts)
    return np.array(sets)


def _size_problem(sizes, fraction, H=DEL_H) -> str | None:
    k = _k(fraction, H)
    if np.all(sizes == k):
        return None
    fh = fraction * H
    head = f"with fraction = {fmt(fraction)} and H = {H}, fraction * H = {fmt(fh)}"
    if np.all(sizes <= k) and np.any(sizes == k) and np.any(sizes < k):
        n_less = int(np.sum(sizes < k))
        return (f"{head}: in {n_less} of your {len(sizes)} runs fewer than k = {k} DISTINCT units were deleted: you "
                "draw units WITH replacement, so some are drawn twice (rng.choice(H, k) replaces by default; pass "
                "replace=False, or take rng.permutation(H)[:k])")
    if np.all(sizes == int(fh)) and int(fh) != k:
        return (f"{head}: you deleted int({fmt(fh)}) = {int(fh)} units: int() truncates; the task deletes "
                f"int(round(fraction * H)) = {k}")
    if np.all(sizes == math.ceil(fh)) and math.ceil(fh) != k:
        return (f"{head}: you deleted ceil({fmt(fh)}) = {math.ceil(fh)} units; the task rounds to the nearest, "
                f"int(round(fraction * H)) = {k}")
    if np.all(sizes == _k(1 - fraction, H)) and _k(1 - fraction, H) != k:
        return (f"{head}: you deleted round((1 - fraction) * H) = {_k(1 - fraction, H)} units: fraction is the "
                f"fraction of units DELETED, so k = int(round(fraction * H)) = {k}")
    sizes_seen = sorted(set(int(s) for s in sizes))
    return (f"{head}: your runs deleted {', '.join(map(str, sizes_seen))} units; each repeat deletes exactly "
            f"k = int(round(fraction * H)) = {k} distinct hidden units")


RD_EXACT = "each repeat deletes exactly k distinct hidden units (fraction * H whole)"
RD_ROUND = "k = int(round(fraction * H)) when fraction * H is not whole"
RD_NO_RESCALE = "the surviving units are not rescaled"
RD_FRESH = "a new random set for every repeat, averaged over n_repeats"
RD_UNIFORM = "every unit is deleted equally often, a new set on every call"
RD_STAT = (f"random networks, n_repeats = {STAT_REPEATS}: within sampling error of the mean accuracy over all sets "
           "of k units (statistical)")


def _bernstein_t(values: np.ndarray, n: int, alpha: float) -> float:
    """Half-width t with 2 exp(-n t^2 / (2 s2 + 2 b t / 3)) = alpha for the mean of n draws
    from the uniform distribution on ``values`` (variance s2, largest deviation b)."""
    s2 = float(values.var())
    b = float(np.abs(values - values.mean()).max())
    L = math.log(2.0 / alpha)
    lin = 2.0 * b * L / 3.0
    return (lin + math.sqrt(lin**2 + 8.0 * n * s2 * L)) / (2.0 * n)


def _subset_accuracies(X, y, params, k):
    """(acc, lo, hi) over every set of k deleted hidden units."""
    h = _hidden(X, params)
    H = h.shape[1]
    accs, los, his = [], [], []
    for S in itertools.combinations(range(H), k):
        hs = h.copy()
        hs[:, list(S)] = 0.0
        z = _logits(hs, params)
        accs.append(_acc(z, y))
        lo, hi = _acc_range(z, y)
        los.append(lo)
        his.append(hi)
    return np.array(accs), np.array(los), np.array(his)


def check_random_deletion_accuracy(c: Checker):
    inputs = c.ref("inputs")
    coded, coded3, stat = _net_inputs(inputs[:9], 3)
    n1, n3 = len(coded[1]), len(coded3[1])

    exact_calls = [(f"coded f=0.5 x{MANY_CALLS}", 0.5, MANY_CALLS)] + \
                  [(f"coded f={f} x{FEW_CALLS}", f, FEW_CALLS) for f in WHOLE_FRACTIONS[1:]]
    sets_by_key = {}

    # Central, 4 of 28: drawn with replacement (fewer distinct units) keeps at most the rounding part.
    with c.check(RD_EXACT, weight=4, central=True):
        for key, f, count in exact_calls:
            sets = _set_sizes(c, key, count, f, n1)
            sets_by_key[key] = sets
            problem = _size_problem(sets.sum(axis=1), f)
            if problem:
                raise CheckFailed(problem)

    # Central, 3 of 28: floor (or ceil) instead of round keeps every other central part, 20/28.
    with c.check(RD_ROUND, weight=3, central=True):
        for f in ROUND_FRACTIONS:
            sets = _set_sizes(c, f"coded f={f} x{ROUND_CALLS}", ROUND_CALLS, f, n1)
            problem = _size_problem(sets.sum(axis=1), f)
            if problem:
                raise CheckFailed(problem)

    # Central, 4 of 28, after the exact part: rescaling keeps 16/28.
    with c.check(RD_NO_RESCALE, weight=4, central=True, gated_by=(RD_EXACT,)):
        for f in BALANCE_FRACTIONS:
            r = _scalar(c, f"balance f={f}", "accuracy")
            _require_accuracy(c, r, f, BALANCE_REPEATS)
            if abs(r - 1.0) > 1e-9:
                k = _k(f)
                if abs(r) <= 1e-9:
                    raise CheckFailed(
                        f"with fraction = {fmt(f)} your survivors seem to be rescaled: on one of the hidden networks "
                        f"the prediction depends on how much hidden signal reaches the output, and multiplied by "
                        f"1/(1-fraction) = {fmt(1 / (1 - f))} the {DEL_H - k} survivors send as much as all {DEL_H} "
                        "units did. Random deletion measures the network as it is: set the deleted units to 0 and "
                        "leave the others alone (no 1/(1-fraction))")
                raise CheckFailed(f"with fraction = {fmt(f)} your accuracy on one of the hidden networks is not that of "
                                  f"the network with k = {k} units deleted and the {DEL_H - k} others left as they are")

    # Central, 6 of 28, after the exact part: one set for every repeat, or n_repeats ignored, keeps 11/28.
    with c.check(RD_FRESH, weight=6, central=True, gated_by=(RD_EXACT,)):
        key = f"coded3 f=0.5 n_repeats={FRESH_REPEATS} x{FRESH_CALLS}"
        runs = _runs(c, key, FRESH_CALLS)
        k = _k(0.5)
        all_same = True
        for r in runs:
            _require_accuracy(c, r, 0.5, FRESH_REPEATS)
            counts = _decode(r, n3, FRESH_REPEATS)
            if counts is None or counts.sum() != FRESH_REPEATS * k:
                raise CheckFailed(f"with n_repeats = {FRESH_REPEATS} your result is not the MEAN accuracy of "
                                  f"{FRESH_REPEATS} runs that each delete k = {k} distinct hidden units")
            all_same &= bool(np.all((counts == 0) | (counts == FRESH_REPEATS)))
        if all_same:
            raise CheckFailed(f"with n_repeats = {FRESH_REPEATS} each of your {FRESH_CALLS} results is the accuracy of "
                              "a SINGLE deleted set: either every repeat deletes the same units, or only one repeat "
                              "runs. Draw a new set of units for every one of the n_repeats repeats and average their "
                              "accuracies")

    # Central, 3 of 28, after the exact part (statistical, ALPHA in all, see the docstring):
    # a seed fixed inside the function keeps 20/28.
    with c.check(RD_UNIFORM, weight=3, central=True, gated_by=(RD_EXACT,)):
        sets = sets_by_key.get(exact_calls[0][0])
        if sets is None:
            sets = _set_sizes(c, exact_calls[0][0], MANY_CALLS, 0.5, n1)
        counts = sets.sum(axis=0)
        if len({tuple(s) for s in sets}) == 1:
            raise CheckFailed(f"all {MANY_CALLS} of your calls (one Generator, used again and again) deleted the same "
                              f"{int(sets[0].sum())} units: draw a new set from rng on every call (a seed fixed inside "
                              "your function? the first k units every time?)")
        lo, hi = binomial_bounds(MANY_CALLS, _k(0.5) / DEL_H, ALPHA / DEL_H)
        for j in np.argsort(np.abs(counts - MANY_CALLS / 2))[::-1]:
            if not lo <= counts[j] <= hi:
                raise CheckFailed(f"in {MANY_CALLS} calls with fraction = 0.5 one hidden unit was deleted {counts[j]} "
                                  f"times; with k = {_k(0.5)} of H = {DEL_H} units drawn uniformly each unit is deleted "
                                  f"in about half of the calls ({lo} to {hi} allows for chance)")

    # Central, 3 of 28, after the exact parts (statistical, ALPHA in all, see the docstring).
    with c.check(RD_STAT, weight=3, central=True, gated_by=(RD_EXACT, RD_FRESH, RD_NO_RESCALE)):
        X, y, params = stat
        for f in STAT_FRACTIONS:
            r = _scalar(c, f"random f={f}", "accuracy")
            _require_accuracy(c, r, f, STAT_REPEATS)
            k = _k(f, params["W1"].shape[1])
            accs, los, his = _subset_accuracies(X, y, params, k)
            t = _bernstein_t(accs, STAT_REPEATS, ALPHA / len(STAT_FRACTIONS))
            slack = float(np.max(np.maximum(accs - los, his - accs)))
            gap = abs(r - accs.mean())
            if gap > t + slack + 1e-9:
                raise CheckFailed(
                    f"with fraction = {fmt(f)} and n_repeats = {STAT_REPEATS} your mean accuracy is {gap:.3g} away from "
                    f"the mean over all {math.comb(params['W1'].shape[1], k)} sets of k = {k} units, where sampling "
                    f"error allows at most {t:.2g}: draw each repeat's set uniformly from all sets of k hidden units")

    # Not central, 3 of 28: numpy's global state keeps 25/28.
    with c.check(RNG_CHECK, weight=3):
        _scalar(c, "same seed 1", "accuracy")
        check_function_of_rng(c, "same seed")

    with c.check("fraction = 0 gives the full network's accuracy, fraction = 1 that of the output bias alone",
                 weight=1):
        X, y, params = stat
        h = _hidden(X, params)
        for f, hs in ((0.0, h), (1.0, np.zeros_like(h))):
            lo, hi = _acc_range(_logits(hs, params), y)
            r = _scalar(c, f"random f={f}", "accuracy")
            c.require(lo - 1e-6 <= r <= hi + 1e-6,
                      "with fraction = 0 nothing is deleted: the result is the full network's accuracy" if f == 0 else
                      "with fraction = 1 every hidden unit is deleted: only the output bias b2 is left, so every input "
                      "gets the class of the largest b2")

    with c.check("returns a single float; X, y and params are not modified", weight=1, peripheral=True):
        _require_float_return(c, f"random f={STAT_FRACTIONS[0]}", "random_deletion_accuracy")
        c.output("no in-place")
        c.require(not c.mutated("no in-place"), "your function changed X or y in place")
        after = c.output("params after")
        _, _, params = stat
        c.require(isinstance(after, dict) and all(np.array_equal(as_float_array(after.get(k)), params[k])
                                                  for k in ("W1", "b1", "W2", "b2")),
                  "your function changed params in place (zeroed rows of W2 left behind?); restore them or work on "
                  "copies")


CHECKS = {
    "mean_abs_correlation": check_mean_abs_correlation,
    "fraction_inactive": check_fraction_inactive,
    "ablation_importance": check_ablation_importance,
    "random_deletion_accuracy": check_random_deletion_accuracy,
}
