"""Checks for chapter 02, ensembles.

Four functions are deterministic and are compared (to float tolerance) with
closed forms computed here from the probe's inputs: ensemble_variance,
enumerate_masks (any row order; bool, int or float entries), mask_probabilities
and exact_dropout_ensemble. Two take ``rng`` and are checked statistically
where they must be, exactly where they can be.

Gating and weights (autograder/POLICY.md). Each function's central
computation is declared ``central=True`` and carries at least half of its
weight; argument types, shapes and inputs left unmodified are peripheral and
earn only once the central checks pass. The shares this gives, held by the
mutant corpus (tests/corpus/ch02_ensembles_mutants.py):

* ensemble_variance (6 of 8 central): every wrong formula (members treated as
  independent, rho and 1 - rho swapped, k**2, the variance of the sum) keeps
  nothing; returning a list or an array of shape (1,) keeps 7/8.
* bootstrap_indices: three central parts, drawn WITH replacement (5 of 15: the
  number of distinct indices), a new sample on every call (2 of 15) and every
  index of range(n) equally likely (5 of 15, credited with fresh samples only:
  np.arange(n) is perfectly uniform). A permutation keeps the last two, 7/15;
  drawing from range(n - 1) keeps the first two, 7/15; a seed fixed inside the
  function keeps the first, 5/15; numpy's global state keeps 13/15.
* enumerate_masks (4 of 5 central): a missing row, duplicates, only the masks
  that keep n/2 units, a transposed array keep nothing.
* mask_probabilities (5 of 8 central): p read as the keep probability, the
  factor p of dropped units left out, a binomial coefficient, probabilities
  divided by their sum over the given rows: nothing; bool masks that break
  ``1 - masks`` lose 1/8.
* exact_dropout_ensemble: two central parts, the arithmetic mean (5 of 11) and
  the normalised geometric mean (4 of 11). A geometric mean that is not
  renormalised keeps the arithmetic part, 5/11; averaging logits for the
  arithmetic mean (which gives the geometric one) keeps the geometric part,
  4/11; equal weights for all masks or no inverted scaling keep nothing.
* mc_dropout_average: four central parts. With one sample every row must be
  the softmax output of the network under one hidden mask with inverted
  scaling (3 of 17, exact); with two and three samples, the mean of that many
  such outputs (3 of 17, exact, credited after the first); with 10 000 samples,
  within sampling error of the exact average (6 of 17, statistical, credited
  after both exact parts: the exact average itself, a formula, would pass it);
  a new draw on every call (2 of 17). No 1/(1-p) keeps nothing; averaging
  logits and taking one softmax keeps the first part, 3/17; one mask reused
  for every sample, or n_samples ignored, keeps 8/17; numpy's global state
  keeps 15/17.

Statistical bounds (false-failure probability of a correct function, per
sub-check, all below the 1e-9 the design asks for; ALPHA = 1e-10 from
autograder.checks.stats):

* bootstrap, with replacement: the number D of distinct values among n draws
  changes by at most 1 when one draw changes, so McDiarmid's inequality gives
  P(|D - E D| >= t) <= 2 exp(-2 t^2 / n); t is chosen so this is ALPHA / 3 for
  each of the three samples of n = 1000 (t = 111.4 around E D = 632.3), ALPHA
  in all. A permutation (D = 1000) is far outside.
* bootstrap, uniform: 200 samples of n = 5 give 1000 draws; the count of each
  index is Binomial(1000, 1/5), tested with binomial_bounds at ALPHA / 5 each,
  ALPHA in all. An index never drawn (range(n - 1)) is far outside.
* bootstrap, fresh samples: two calls agree with probability 1000^-1000.
* mc_dropout_average, many samples: each output entry is the mean of 10 000
  independent values in [0, 1] (whether masks are drawn per example or shared
  by the batch) with mean equal to the exact average, so Hoeffding's
  inequality bounds P(|mean - exact| >= t) by 2 exp(-2 * 10 000 t^2); t = 0.037
  makes this ALPHA / 36 for each of the 2 x 6 x 3 entries, ALPHA in all. On
  the probe's networks a single mask's output is at least 0.054 from the exact
  average on some entry (3000 random networks measured; tests/
  test_checks_ch02_ensembles.py asserts a margin of 1.3 t on 300 of them), so
  one mask reused for every sample fails.
* mc_dropout_average, fresh draws: every hidden unit is active on the first
  example, so distinct masks give distinct outputs (the weights are continuous
  random numbers); with p = 0.5 all 64 masks are equally likely and two calls
  of 10 samples agree only if they draw the same multiset of masks, with
  probability at most 10!/64^10 < 4e-12.
* The exact few-sample checks of mc_dropout_average are not statistical:
  whatever masks a correct function draws, each row is an average of that many
  mask outputs (up to float rounding).

Messages name the mistake, recognised by comparing the student's output with
what that mistake gives on the same hidden inputs (never shown): "sigma2/k is
the variance of an average of INDEPENDENT members", "all 1000 indices are
distinct: a permutation", "index n - 1 = 4 was never drawn", "the all-zero
mask is missing", "p read as the keep probability", "your geometric mean is
not renormalised", "you averaged logits, then took one softmax", "scaled by 1
instead of 1/(1-p) = 1.43". Numbers in messages come from public parameters
(p, n, n_samples, the public example of ensemble_variance) or from the
student's own outputs.
"""
import itertools
import math
from functools import lru_cache

import numpy as np

from autograder.reference.ch02_ensembles import enumerate_masks as _all_masks
from dropout_lab.probes.ch02_ensembles import (BOOT_N, BOOT_SMALL_CALLS, BOOT_SMALL_N, ENSEMBLE_CASES,
                                               ENSEMBLE_LIMITS, ENSEMBLE_RANDOM, ENUM_EDGE_NS, ENUM_NS,
                                               EXACT_LARGE_H, EXACT_PS, MASKPROB_PS, MC_FEW, MC_FRESH, MC_MANY_PS,
                                               MC_N, MC_SHAPE)

from .base import (NONE_MESSAGE, Checker, CheckFailed, as_float_array, check_function_of_rng, close, fmt, probe_arguments,
                   representative_first, require_shape)
from .stats import ALPHA, binomial_bounds

RNG_CHECK = "uses only rng (same seed, same result)"


# -- ensemble_variance ------------------------------------------------------------------

def _variance_value(c, key) -> float:
    values = c.outputs(key)                  # a list [v] is recorded as one value in a sequence
    if len(values) == 1 and values[0] is None:
        raise CheckFailed(NONE_MESSAGE)
    c.require(len(values) == 1, f"ensemble_variance must return one number; yours returned {len(values)} values")
    v = as_float_array(values[0], "variance")
    c.require(v.size == 1, f"ensemble_variance must return one number; yours has shape {v.shape}")
    return float(v.reshape(-1)[0])


def _true_variance(s2, rho, k):
    return rho * s2 + (1 - rho) * s2 / k


#: Recognisable wrong formulas, as functions of (sigma2, rho, k), and what each one is.
_VARIANCE_MISTAKES = (
    (lambda s2, r, k: s2 / k,
     "sigma2 / k is the variance of an average of k INDEPENDENT members: it leaves out the covariance "
     "rho * sigma2 of each of the k(k-1) pairs of members, which Var(sum) = sum of all covariances includes"),
    (lambda s2, r, k: (1 - r) * s2 + r * s2 / k,
     "rho and 1 - rho are swapped: the part of the variance the members share (rho * sigma2) cannot be "
     "averaged away, only the rest shrinks like 1/k"),
    (lambda s2, r, k: r * s2 + (1 - r) * s2 / k**2,
     "the independent part shrinks like 1/k**2 in yours: the average divides Var(sum) by k**2, but the "
     "k variances in Var(sum) add up to k sigma2 first, so that part is (1 - rho) sigma2 / k"),
    (lambda s2, r, k: k * s2 * (1 + (k - 1) * r),
     "that is the variance of the SUM of the k members: the average divides it by k**2"),
    (lambda s2, r, k: s2 * (1 + (k - 1) * r),
     "that is Var(sum) / k: the average divides Var(sum) by k**2 (Var(aX) = a**2 Var(X))"),
    (lambda s2, r, k: r + (1 - r) * s2 / k,
     "rho is added as it is: the covariance of two members is rho * sigma2, not rho"),
    (lambda s2, r, k: s2,
     "your variance does not depend on k: averaging k members does shrink the variance (unless rho = 1)"),
    (lambda s2, r, k: math.sqrt(max(_true_variance(s2, r, k), 0.0)),
     "that is the standard deviation of the average; return its variance"),
)


def _variance_problem(got, s2, rho, k, public: bool) -> str:
    want = _true_variance(s2, rho, k)
    head = (f"with sigma2={fmt(s2)}, rho={fmt(rho)}, k={k} your variance is {fmt(got)}; the average of k members "
            f"with variance sigma2 and pairwise correlation rho has variance {fmt(want)}" if public else
            "on one of the hidden cases your variance is not that of the average of k members with variance "
            "sigma2 and pairwise correlation rho")
    for formula, why in _VARIANCE_MISTAKES:
        if np.isclose(got, formula(s2, rho, k), rtol=1e-6, atol=1e-12):
            return f"{head}: {why}"
    return head + " (derive it from Var(sum) = sum of the k**2 covariances, then divide by k**2)"


ENS_CENTRAL = "the variance of the average of k members with correlation rho"


def check_ensemble_variance(c: Checker):
    cases = [(f"case {i}", *case, True) for i, case in enumerate(ENSEMBLE_CASES)]
    for i in range(ENSEMBLE_RANDOM):
        args, _ = probe_arguments(c, f"random {i}")
        cases.append((f"random {i}", *args, False))

    # Central, 6 of 8: every wrong formula keeps nothing.
    with c.check(ENS_CENTRAL, weight=6, central=True):
        for key, s2, rho, k, public in cases:
            got = _variance_value(c, key)
            if not np.isclose(got, _true_variance(s2, rho, k), rtol=1e-6, atol=1e-12):
                raise CheckFailed(_variance_problem(got, s2, rho, k, public))

    with c.check("the limits: rho = 0, rho = 1, k = 1 and a negative rho", weight=1):
        for key, s2, rho, k in ENSEMBLE_LIMITS:
            got = _variance_value(c, key)
            if not np.isclose(got, _true_variance(s2, rho, k), rtol=1e-6, atol=1e-12):
                raise CheckFailed(_variance_problem(got, s2, rho, k, True))

    with c.check("returns one number (a float), also for numpy arguments", weight=1, peripheral=True):
        for key in ("case 0", "numpy scalars"):
            c.require(not c.entry(key).is_tuple, "ensemble_variance must return a single float; yours returned a "
                                                 "list or tuple holding it (return the number itself)")
            arr = np.asarray(c.output(key))
            c.require(arr.ndim == 0, f"ensemble_variance must return a single float; yours returned an array of "
                                     f"shape {arr.shape} (use float(...) or return the expression itself)")
        c.require(np.isclose(_variance_value(c, "numpy scalars"), 0.88, rtol=1e-6),
                  "with numpy scalars sigma2=2.0, rho=0.3, k=5 your variance is not 0.88")


# -- bootstrap_indices ----------------------------------------------------------------------

def _range_problem(arr, n) -> str | None:
    """Why ``arr`` (floats) is not a set of indices into range(n), or None."""
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
        return ("your indices are not whole numbers: an index is a position in the data set, an integer "
                f"from 0 to n-1 (rng.integers(0, n, size=n))")
    if arr.size and arr.min() >= 1 and arr.max() == n:
        return (f"your indices run from 1 to n = {n}: Python counts from 0, so the positions of n examples are "
                f"0 .. n-1 = {n - 1} (rng.integers's upper bound is exclusive: rng.integers(0, n, size=n))")
    if arr.size and arr.min() < 0:
        return f"some of your indices are negative; they must lie in range(n), 0 .. n-1 = {n - 1}"
    if arr.size and arr.max() > n - 1:
        return (f"some of your indices are n = {n} or more; they must lie in range(n), 0 .. n-1 = {n - 1} "
                "(rng.integers's upper bound is exclusive already: rng.integers(0, n, size=n))")
    return None


def _sample(c, key, n):
    arr = as_float_array(c.output(key), "indices")
    c.require(arr.ndim == 1, f"bootstrap_indices(n, rng) must return a 1-d array of n indices; yours has shape "
                             f"{arr.shape}")
    c.require(arr.size == n, f"bootstrap_indices({n}, rng) must return n = {n} indices; yours returned {arr.size}")
    problem = _range_problem(arr, n)
    if problem:
        raise CheckFailed(f"with n = {n} " + problem)
    return arr


#: Half-width of the acceptance interval for the number of distinct indices (McDiarmid, see the docstring).
_DISTINCT_T = math.sqrt(BOOT_N * math.log(2 * 3 / ALPHA) / 2)
_DISTINCT_MEAN = BOOT_N * (1 - (1 - 1 / BOOT_N) ** BOOT_N)

BOOT_REPLACE = f"drawn WITH replacement: about 63% of n = {BOOT_N} indices are distinct (statistical)"
BOOT_FRESH = "a new random sample on every call, drawn from rng"
BOOT_UNIFORM = "every index of range(n), 0 and n-1 included, is equally likely (statistical)"


def _small_samples(c):
    values, lengths = c.outputs(f"n={BOOT_SMALL_N} x{BOOT_SMALL_CALLS}", n=2)
    values, lengths = as_float_array(values, "indices").reshape(-1), as_float_array(lengths).reshape(-1)
    c.require(lengths.size == BOOT_SMALL_CALLS and np.all(lengths == BOOT_SMALL_N),
              f"bootstrap_indices({BOOT_SMALL_N}, rng) must return {BOOT_SMALL_N} indices every time; yours "
              f"returned {int(lengths.min())} to {int(lengths.max())}")
    problem = _range_problem(values, BOOT_SMALL_N)
    if problem:
        raise CheckFailed(f"with n = {BOOT_SMALL_N} " + problem)
    return values.reshape(BOOT_SMALL_CALLS, BOOT_SMALL_N)


def check_bootstrap_indices(c: Checker):
    # Central, 5 of 15: with replacement (a permutation keeps the other central parts, 7/15).
    with c.check(BOOT_REPLACE, weight=5, central=True):
        lo, hi = _DISTINCT_MEAN - _DISTINCT_T, _DISTINCT_MEAN + _DISTINCT_T
        for key in ("n=1000 a", "n=1000 b", "n=1000 c"):
            distinct = len(np.unique(_sample(c, key, BOOT_N)))
            if distinct == BOOT_N:
                raise CheckFailed(
                    f"all {BOOT_N} of your indices are distinct: you drew WITHOUT replacement (a permutation, "
                    "as rng.permutation(n) or rng.choice(n, n, replace=False) give). A bootstrap sample draws n "
                    "times WITH replacement, so some examples come twice or more and about 1/e = 37% not at all")
            c.require(lo <= distinct <= hi,
                      f"{distinct} of your {BOOT_N} indices are distinct ({distinct / BOOT_N:.0%}); n draws with "
                      f"replacement from range(n) give about 1 - 1/e = 63% distinct indices (between {int(lo) + 1} "
                      f"and {int(hi)} with overwhelming probability): draw each index uniformly and independently")

    # Central, 2 of 15: a seed fixed inside the function keeps "with replacement" only, 5/15.
    with c.check(BOOT_FRESH, weight=2, central=True):
        a, b, other = (_sample(c, key, BOOT_N) for key in ("n=1000 a", "n=1000 b", "n=1000 c"))
        if np.array_equal(a, other):
            raise CheckFailed("two calls with generators of different seeds returned the same sample: your "
                              "function ignores rng (a seed fixed inside it, or a sample kept from an earlier "
                              "call). Draw the indices from the rng argument on every call")
        c.require(not np.array_equal(a, b), "two calls with the same Generator returned the same sample; draw a "
                                            "new sample from rng on every call")

    # Central, 5 of 15, credited with fresh samples (np.arange(n) is perfectly uniform):
    # drawing from range(n - 1) keeps the first two parts, 7/15.
    with c.check(BOOT_UNIFORM, weight=5, central=True, gated_by=(BOOT_FRESH,)):
        samples = _small_samples(c)
        counts = np.bincount(samples.astype(int).reshape(-1), minlength=BOOT_SMALL_N)
        total = samples.size
        lo, hi = binomial_bounds(total, 1 / BOOT_SMALL_N, alpha=ALPHA / BOOT_SMALL_N)
        for j in (BOOT_SMALL_N - 1, 0) + tuple(range(1, BOOT_SMALL_N - 1)):
            if lo <= counts[j] <= hi:
                continue
            where = (f"index n-1 = {j}" if j == BOOT_SMALL_N - 1 else "index 0" if j == 0 else f"index {j}")
            hint = ""
            if counts[j] == 0 and j == BOOT_SMALL_N - 1:
                hint = (": rng.integers(0, n - 1) stops at n - 2, because its upper bound is exclusive already; "
                        "use rng.integers(0, n, size=n) (or rng.choice(n, size=n))")
            elif counts[j] == 0 and j == 0:
                hint = ": the first example (index 0) must be drawn too"
            raise CheckFailed(
                f"in {BOOT_SMALL_CALLS} samples of n = {BOOT_SMALL_N} your {where} was drawn {counts[j]} times out of "
                f"{total}; every index of range(n) is equally likely, about {total // BOOT_SMALL_N} times each{hint}")

    # Not central, 2 of 15: numpy's global state keeps 13/15.
    with c.check(RNG_CHECK, weight=2):
        _sample(c, "same seed 1", 50)
        check_function_of_rng(c, "same seed")

    with c.check("returns an int array of shape (n,), also for n = 1", weight=1, peripheral=True):
        arr = np.asarray(c.output("n=1000 a"))
        c.require(arr.dtype.kind in "iu", f"indices must be integers (an int array, usable as X[idx]); yours have "
                                          f"dtype {arr.dtype}")
        one = np.asarray(c.output("n=1"))
        c.require(one.shape == (1,) and one.reshape(-1)[0] == 0,
                  f"bootstrap_indices(1, rng) must return array([0]) (one draw from range(1)); yours has shape "
                  f"{one.shape}")


# -- enumerate_masks ------------------------------------------------------------------------

def _masks_problem(M, n) -> str | None:
    """Why the array M is not every 0/1 mask of length n exactly once (None if it is)."""
    rows = 2**n
    if M.ndim != 2:
        return f"enumerate_masks({n}) must return a 2-d array of shape (2**n, n) = ({rows}, {n}); yours has shape {M.shape}"
    if M.shape == (n, rows) and rows != n and _masks_problem(M.T, n) is None:
        return (f"your array is transposed (shape {M.shape}): one ROW per mask, one column per unit, so "
                f"(2**n, n) = ({rows}, {n})")
    if M.shape[1] != n:
        return f"each mask must have n = {n} entries, one per unit; your rows have {M.shape[1]} (shape {M.shape})"
    if not np.isin(M, (0.0, 1.0)).all():
        return "masks hold only 0 and 1 (1 = kept, 0 = dropped), or False and True"
    bits = M.astype(np.int64)
    codes = bits @ (1 << np.arange(n, dtype=np.int64))
    distinct = len(np.unique(codes))
    duplicates = M.shape[0] - distinct
    missing = rows - distinct
    if duplicates == 0 and missing == 0:
        return None
    sums = bits.sum(axis=1)
    if M.shape[0] and np.all(sums == sums[0]) and 0 < sums[0] < n:
        return (f"every one of your masks keeps exactly {int(sums[0])} of the {n} units; a mask may keep any number "
                f"of units, from none (all zeros) to all (all ones): there are 2**{n} = {rows} masks")
    if duplicates == 0 and missing == 1:
        if not np.any(sums == 0):
            return (f"you have 2**{n} - 1 = {rows - 1} masks: the all-zero mask (every unit dropped) is missing; it "
                    f"is a mask too, with probability p**n")
        if not np.any(sums == n):
            return (f"you have 2**{n} - 1 = {rows - 1} masks: the all-ones mask (every unit kept) is missing; it "
                    f"is a mask too, with probability (1-p)**n")
    if duplicates:
        return (f"{duplicates} of your {M.shape[0]} rows repeat an earlier row and {missing} of the 2**{n} = {rows} "
                f"masks are missing: list every 0/1 mask exactly once")
    return f"{missing} of the 2**{n} = {rows} masks are missing; yours has {M.shape[0]} rows"


def _masks(c, key):
    return as_float_array(c.output(key), "masks")


ENUM_CENTRAL = "every one of the 2**n masks exactly once, as rows of 0/1 (any order)"


def check_enumerate_masks(c: Checker):
    # Central, 4 of 5: a missing or repeated row, or a transposed array, keeps nothing.
    with c.check(ENUM_CENTRAL, weight=4, central=True):
        for n in ENUM_NS:
            problem = _masks_problem(_masks(c, f"n={n}"), n)
            if problem:
                raise CheckFailed(f"with n = {n}: {problem}")

    with c.check("n = 1 and n = 12 too", weight=1):
        for n in ENUM_EDGE_NS:
            problem = _masks_problem(_masks(c, f"n={n}"), n)
            if problem:
                raise CheckFailed(f"with n = {n}: {problem}")


# -- mask_probabilities -----------------------------------------------------------------------

def _true_probabilities(M, p):
    kept = M.sum(axis=1)
    return (1 - p) ** kept * p ** (M.shape[1] - kept)


def _probabilities(c, key, M):
    got = as_float_array(c.output(key), "probabilities")
    c.require(got.size == M.shape[0], f"mask_probabilities must return one probability per row of masks "
                                      f"({M.shape[0]} rows here); yours has shape {got.shape}")
    return got.reshape(M.shape[0])


def _mp_problem(got, M, p, complete: bool) -> str:
    n = M.shape[1]
    kept = M.sum(axis=1)
    dropped = n - kept
    true = _true_probabilities(M, p)
    example = (f"with p = {fmt(p)} the mask that keeps all {n} units has probability (1-p)**{n} = "
               f"{fmt((1 - p) ** n)}")
    named = [
        (p**kept * (1 - p) ** dropped,
         f"you used p as the probability of KEEPING a unit; p is the probability of dropping it: {example}, "
         f"not p**{n} = {fmt(p ** n)}"),
        ((1 - p) ** kept, "the factor p of each DROPPED unit is missing: a mask's probability is the product over "
                          "all units, (1-p) for each kept unit and p for each dropped one"),
        (p**dropped, "the factor (1-p) of each KEPT unit is missing: a mask's probability is the product over all "
                     "units, (1-p) for each kept unit and p for each dropped one"),
        (np.array([math.comb(n, int(k)) for k in kept]) * true,
         "you multiplied by the number of masks that keep as many units (a binomial coefficient): that is the "
         "probability that k units are kept, not the probability of this particular mask"),
        (np.full(len(M), 0.5**n), f"every mask gets probability 1/2**{n}: that is only right for p = 0.5"),
        ((1 - p) * kept * p * dropped, "you multiplied by the number of kept and dropped units; raise (1-p) and p to "
                                       "those powers instead"),
    ]
    if not complete:
        named.append((true / true.sum(), "you divided by the sum over the rows you were given: a mask's probability "
                                         "does not depend on which other masks are in the array (here not every "
                                         "mask is, and some repeat)"))
    for candidate, why in named:
        if close(got, candidate, rtol=1e-6, atol=1e-12):
            return f"with p = {fmt(p)} {why}"
    extra = f"; over all 2**{n} masks yours sum to {got.sum():.4g}, not 1" if complete and \
        not np.isclose(got.sum(), 1.0, rtol=1e-6) else ""
    return (f"with p = {fmt(p)} your probabilities are not (1-p)**kept * p**dropped for every row{extra}; {example}")


MP_CENTRAL = "the probability (1-p)^kept * p^dropped of each row"


def check_mask_probabilities(c: Checker):
    all4, some7 = c.ref("inputs")
    cases = [(f"all n=4 p={p}", all4, p, True) for p in representative_first(MASKPROB_PS)] + \
            [(f"some n=7 p={p}", some7, p, False) for p in representative_first(MASKPROB_PS)]

    # Central, 5 of 8: p as the keep probability, a missing factor or a normalisation keep nothing.
    with c.check(MP_CENTRAL, weight=5, central=True):
        for key, M, p, complete in cases:
            got = _probabilities(c, key, M)
            if not close(got, _true_probabilities(M, p), rtol=1e-6, atol=1e-12):
                raise CheckFailed(_mp_problem(got, M, p, complete))

    with c.check("p = 0 and p = 1: the all-kept (or all-dropped) mask has probability 1, every other 0", weight=1):
        for p in (0.0, 1.0):
            got = _probabilities(c, f"all n=4 p={p}", all4)
            want = _true_probabilities(all4, p)
            c.require(close(got, want, rtol=1e-9, atol=1e-12),
                      f"with p = {fmt(p)} the mask that {'keeps' if p == 0 else 'drops'} every unit has probability "
                      f"1 and every other mask 0" + (" (yours has NaN: 0 * log(0)? 0.0**0 is 1 in Python and numpy)"
                                                     if np.isnan(got).any() else ""))

    with c.check("works with bool and float masks", weight=1, peripheral=True):
        for key in ("bool p=0.3", "float p=0.3"):
            entry = c.entry(key)
            if entry.status == "error":
                raise CheckFailed(f"with {key.split()[0]} masks your function raised {entry.error_type}: "
                                  f"{entry.error_message[:120]}" + (" (1 - masks fails for bool arrays: convert "
                                                                    "with masks.astype(float) or use np.where)"
                                                                    if "boolean subtract" in entry.error_message else ""))
            got = _probabilities(c, key, some7)
            c.require(close(got, _true_probabilities(some7, 0.3), rtol=1e-6, atol=1e-12),
                      f"with {key.split()[0]} masks your probabilities differ from those of the same 0/1 int masks")

    with c.check("one probability per row; masks not modified", weight=1, peripheral=True):
        got = np.asarray(c.output("all n=4 p=0.2"))
        require_shape(got, (all4.shape[0],), "probabilities")
        c.output("no in-place")
        c.require(not c.mutated("no in-place"), "your function changed masks in place; compute in new arrays")


# -- the one-hidden-layer network, over every mask ---------------------------------------------------

def _hidden(X, params):
    return np.maximum(X @ params["W1"] + params["b1"], 0.0)


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _mask_logits(X, params, scale):
    """(masks (M, H), logits (M, N, C)): the network's logits under every hidden
    mask, kept hidden units multiplied by ``scale``."""
    M = _all_masks(params["W1"].shape[1]).astype(np.float64)
    logits = (_hidden(X, params)[None] * M[:, None, :] * scale) @ params["W2"] + params["b2"]
    return M, logits


def _weights(M, p, kind="prob"):
    kept = M.sum(axis=1)
    if kind == "uniform":
        return np.full(len(M), 1.0 / len(M))
    if kind == "keep":
        return p**kept * (1 - p) ** (M.shape[1] - kept)
    return (1 - p) ** kept * p ** (M.shape[1] - kept)


def _ensembles(X, params, p, kind="prob", scale=None):
    """(arith, geo, unnormalised geo) over every hidden mask."""
    M, z = _mask_logits(X, params, 1 / (1 - p) if scale is None else scale)
    w = _weights(M, p, kind)
    logp = _log_softmax(z)
    arith = np.einsum("m,mnc->nc", w, np.exp(logp))
    log_geo = np.einsum("m,mnc->nc", w, logp)
    return arith, _softmax(log_geo), np.exp(log_geo)


def _full_network(X, params):
    return _softmax(_hidden(X, params) @ params["W2"] + params["b2"])


# -- exact_dropout_ensemble -------------------------------------------------------------------

def _ensemble_pair(c, key, shape):
    arith, geo = c.outputs(key, n=2)
    arith, geo = as_float_array(arith, "arith"), as_float_array(geo, "geo")
    require_shape(arith, shape, "arith")
    require_shape(geo, shape, "geo")
    return arith, geo


def _ensemble_cases(c):
    X, params, X9, params9 = c.ref("inputs")
    return [(f"p={p}", X, params, p) for p in representative_first(EXACT_PS)] + \
           [(f"H={EXACT_LARGE_H} p=0.3", X9, params9, 0.3)]


def _arith_problem(got, X, params, p) -> str:
    arith, geo, _ = _ensembles(X, params, p)
    named = [
        (geo, "your arith is the NORMALISED GEOMETRIC mean (the softmax of the probability-weighted mean of the "
              "logits): average the softmax OUTPUTS, sum over masks of P(mask) * softmax(logits), not the logits"),
        (_ensembles(X, params, p, kind="uniform")[0],
         "you gave every mask the same weight 1/2**H: weight each mask by its probability (1-p)**kept * p**dropped"),
        (_ensembles(X, params, p, kind="keep")[0],
         f"your weights read p as the probability of KEEPING a unit; a mask with k of H units kept has "
         f"probability (1-p)**k * p**(H-k) (p = {fmt(p)} drops)"),
        (_ensembles(X, params, p, scale=1.0)[0],
         f"kept hidden units are not scaled by 1/(1-p) = {fmt(1 / (1 - p))}: with inverted dropout the training "
         "network, under every mask, divides kept units by the keep probability"),
        (_ensembles(X, params, p, scale=1 / p)[0] if p > 0 else None,
         f"kept hidden units are scaled by 1/p = {fmt(1 / p) if p > 0 else 'inf'} instead of 1/(1-p) = "
         f"{fmt(1 / (1 - p))}: p is the probability of dropping"),
        (_full_network(X, params), "your arith is the output of the full (weight-scaled) network, not an average "
                                   "over masks"),
    ]
    for candidate, why in named:
        if candidate is not None and close(got, candidate):
            return f"with p = {fmt(p)} {why}"
    sums = got.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        return (f"with p = {fmt(p)} the rows of your arith sum to {sums.min():.4g} .. {sums.max():.4g}, not 1: a "
                "probability-weighted average of probability vectors is a probability vector (are the weights "
                "the mask probabilities, and do they add up to 1?)")
    return (f"with p = {fmt(p)} your arith is not the probability-weighted mean of the softmax outputs over all "
            f"2**H masks (largest difference {np.abs(got - arith).max():.3g})")


def _geo_problem(got, X, params, p) -> str:
    arith, geo, unnormalised = _ensembles(X, params, p)
    named = [
        (unnormalised, f"your geo is not renormalised: its rows sum to {got.sum(axis=1).min():.4g} .. "
                       f"{got.sum(axis=1).max():.4g}, not 1. A weighted geometric mean of probability vectors is "
                       "not a probability vector; divide each row by its sum (softmax of the weighted mean log "
                       "probability does both at once)"),
        (arith, "your geo is the ARITHMETIC mean: the geometric mean multiplies the softmax outputs, each raised to "
                "its mask's probability (adds their logs, weighted), then renormalises each row"),
        (_ensembles(X, params, p, kind="uniform")[1],
         "you gave every mask the same weight 1/2**H: weight each mask by its probability (1-p)**kept * p**dropped"),
        (_ensembles(X, params, p, kind="keep")[1],
         f"your weights read p as the probability of KEEPING a unit; a mask with k of H units kept has "
         f"probability (1-p)**k * p**(H-k) (p = {fmt(p)} drops)"),
        (_ensembles(X, params, p, scale=1.0)[1],
         f"kept hidden units are not scaled by 1/(1-p) = {fmt(1 / (1 - p))}: with inverted dropout the training "
         "network, under every mask, divides kept units by the keep probability"),
        (np.log(unnormalised), "you returned the LOG of the geometric mean (the weighted mean of log "
                               "probabilities): exponentiate and renormalise each row"),
    ]
    for candidate, why in named:
        if close(got, candidate):
            return f"with p = {fmt(p)} {why}"
    return (f"with p = {fmt(p)} your geo is not the normalised probability-weighted geometric mean of the softmax "
            f"outputs over all 2**H masks (largest difference {np.abs(got - geo).max():.3g})")


EX_ARITH = "arith: the probability-weighted mean of the softmax outputs over all 2**H masks"
EX_GEO = "geo: the normalised, probability-weighted geometric mean of the softmax outputs"


def check_exact_dropout_ensemble(c: Checker):
    cases = _ensemble_cases(c)

    # Central, 5 of 11: a geometric mean that is not renormalised keeps this part, 5/11.
    with c.check(EX_ARITH, weight=5, central=True):
        for key, X, params, p in cases:
            arith, geo = _ensemble_pair(c, key, (X.shape[0], params["W2"].shape[1]))
            if not close(arith, _ensembles(X, params, p)[0]):
                if close(arith, _ensembles(X, params, p)[1]) and close(geo, _ensembles(X, params, p)[0]):
                    raise CheckFailed("you return (geo, arith): the arithmetic mean comes first, (arith, geo)")
                raise CheckFailed(_arith_problem(arith, X, params, p))

    # Central, 4 of 11: averaging logits for arith (which gives geo) keeps this part, 4/11.
    with c.check(EX_GEO, weight=4, central=True):
        for key, X, params, p in cases:
            arith, geo = _ensemble_pair(c, key, (X.shape[0], params["W2"].shape[1]))
            if not close(geo, _ensembles(X, params, p)[1]):
                if close(arith, _ensembles(X, params, p)[1]) and close(geo, _ensembles(X, params, p)[0]):
                    raise CheckFailed("you return (geo, arith): the arithmetic mean comes first, (arith, geo)")
                raise CheckFailed(_geo_problem(geo, X, params, p))

    with c.check("p = 0: both are the softmax output of the full network", weight=1):
        X, params = cases[0][1], cases[0][2]
        arith, geo = _ensemble_pair(c, "p=0.0", (X.shape[0], params["W2"].shape[1]))
        full = _full_network(X, params)
        c.require(close(arith, full) and close(geo, full),
                  "with p = 0 no unit is ever dropped: only the all-kept mask has probability 1 (0.0**0 is 1), so "
                  "both averages are the full network's softmax output" +
                  (" (yours has NaN: 0 * log(0)?)" if np.isnan(arith).any() or np.isnan(geo).any() else ""))

    with c.check("X and params are not modified", weight=1, peripheral=True):
        _, params = cases[0][1], cases[0][2]
        c.outputs("no in-place", n=2)
        c.require(not c.mutated("no in-place"), "your function changed X in place")
        after = c.output("params after")
        c.require(isinstance(after, dict) and all(np.array_equal(as_float_array(after.get(k)), params[k])
                                                  for k in ("W1", "b1", "W2", "b2")),
                  "your function changed params in place (or replaced one of its arrays); compute in new arrays")


# -- mc_dropout_average ------------------------------------------------------------------------

def _mc_output(c, key, shape):
    out = as_float_array(c.output(key), "average")
    require_shape(out, shape, "average")
    c.require(np.isfinite(out).all(), f"{key}: your average contains NaN or inf")
    return out


@lru_cache(maxsize=8)
def _multisets(n_masks: int, k: int) -> np.ndarray:
    """Every multiset of k mask indices out of n_masks, as rows of an int array."""
    return np.array(list(itertools.combinations_with_replacement(range(n_masks), k)), dtype=np.int64)


def _rows_on_lattice(out, per_mask, k) -> np.ndarray:
    """For each row i of ``out`` (N, C): is it the mean of k rows of
    ``per_mask[:, i]`` (M, N, C), some possibly repeated?"""
    idx = _multisets(per_mask.shape[0], k)
    found = np.zeros(out.shape[0], dtype=bool)
    for i in range(out.shape[0]):
        candidates = per_mask[idx, i].mean(axis=1)                    # (#multisets, C)
        err = np.abs(candidates - out[i]).max(axis=1)
        found[i] = bool(np.any(err <= 1e-6 + 1e-4 * np.abs(out[i]).max()))
    return found


def _mask_outputs(X, params, scale):
    return _softmax(_mask_logits(X, params, scale)[1])


def _few_problem(out, X, params, p, k) -> str:
    """How a k-sample output differs from an average of k mask outputs."""
    sums = out.sum(axis=1)
    if np.allclose(sums, k, rtol=1e-4) and k > 1:
        return (f"with n_samples = {k} the rows of your output sum to {k}: you added the {k} softmax outputs; "
                "divide by n_samples")
    if not np.allclose(sums, 1.0, atol=1e-4):
        return (f"with n_samples = {k} the rows of your output sum to {sums.min():.4g} .. {sums.max():.4g}, not 1: "
                "average softmax OUTPUTS (probabilities); an average of probability vectors is one")
    if close(out, _full_network(X, params)):
        return ("your output is the full (weight-scaled) network's softmax output: that is not an average over "
                "random masks. Draw n_samples hidden masks and average the softmax outputs")
    if close(out, _ensembles(X, params, p)[0]):
        return ("your output is the EXACT average over all masks: this function must simulate, averaging the "
                "softmax outputs of n_samples random masks")
    named = [(1.0, f"kept hidden units are not scaled by 1/(1-p) = {fmt(1 / (1 - p))} (p = {fmt(p)}): each sample "
                   "is the training-time network with inverted dropout, h * mask / (1 - p)"),
             (1 / p, f"kept hidden units are scaled by 1/p = {fmt(1 / p)} instead of 1/(1-p) = {fmt(1 / (1 - p))} "
                     f"(p = {fmt(p)} is the probability of dropping)"),
             (1 - p, f"kept hidden units are multiplied by 1-p = {fmt(1 - p)} instead of divided by it "
                     f"(1/(1-p) = {fmt(1 / (1 - p))})")]
    for scale, why in named:
        if _rows_on_lattice(out, _mask_outputs(X, params, scale), k).all():
            return why
    if k > 1:
        _, z = _mask_logits(X, params, 1 / (1 - p))
        mean_logits = z[_multisets(z.shape[0], k)].mean(axis=1)       # (#multisets, N, C)
        if _rows_on_lattice(out, _softmax(mean_logits), 1).all():
            return (f"with n_samples = {k} your rows are the softmax of the MEAN LOGITS of {k} masked networks: you "
                    "averaged logits, then took one softmax (that converges to the normalised geometric mean). "
                    "Average the softmax OUTPUTS of the samples")
        return (f"with n_samples = {k} each row of your output should be the mean of the softmax outputs of {k} "
                "networks, each with its own random hidden mask (kept units scaled by 1/(1-p)); some of yours are not")
    return (f"with n_samples = 1 each row of your output should be the softmax output of the network under ONE "
            f"random hidden mask, kept units scaled by 1/(1-p) = {fmt(1 / (1 - p))} (p = {fmt(p)}); some of your rows "
            "are not the output of any mask. Are the masks on the hidden units (after the ReLU), 1 = kept?")


#: Half-width of the acceptance band of the many-sample averages (Hoeffding, see the docstring).
_MC_T = math.sqrt(math.log(2 * len(MC_MANY_PS) * MC_SHAPE[0] * MC_SHAPE[3] / ALPHA) / (2 * MC_N))

MC_ONE = "one sample: the softmax output of the network under one hidden mask, kept units scaled by 1/(1-p) (exact)"
MC_FEW_NAME = "a few samples: the mean of that many softmax outputs, not the softmax of mean logits (exact)"
MC_MANY = f"{MC_N} samples: within sampling error of the exact average over all masks (statistical)"
MC_FRESH_NAME = "a new draw on every call, from rng"


def check_mc_dropout_average(c: Checker):
    X, params = c.ref("inputs")
    shape = (X.shape[0], params["W2"].shape[1])
    few = sorted(MC_FEW, key=lambda kp: (kp[0], kp[1] == 0.5))

    # Central, exact, 3 of 17: no 1/(1-p), or no sampling at all, keeps nothing.
    with c.check(MC_ONE, weight=3, central=True):
        for k, p in few:
            if k != 1:
                continue
            out = _mc_output(c, f"n={k} p={p}", shape)
            if not _rows_on_lattice(out, _mask_outputs(X, params, 1 / (1 - p)), 1).all():
                raise CheckFailed(_few_problem(out, X, params, p, 1))

    # Central, exact, 3 of 17, after the first: averaging logits keeps only the first part, 3/17.
    with c.check(MC_FEW_NAME, weight=3, central=True, gated_by=(MC_ONE,)):
        for k, p in few:
            if k == 1:
                continue
            out = _mc_output(c, f"n={k} p={p}", shape)
            if not _rows_on_lattice(out, _mask_outputs(X, params, 1 / (1 - p)), k).all():
                raise CheckFailed(_few_problem(out, X, params, p, k))

    # Central, statistical, 6 of 17, credited after the exact parts (the exact average
    # itself would pass it): one mask for every sample, or n_samples ignored, keeps 8/17.
    with c.check(MC_MANY, weight=6, central=True, gated_by=(MC_ONE, MC_FEW_NAME)):
        for p in representative_first(MC_MANY_PS):
            out = _mc_output(c, f"many p={p}", shape)
            exact = _ensembles(X, params, p)[0]
            gap = float(np.abs(out - exact).max())
            if gap <= _MC_T + 1e-6:
                continue
            if _rows_on_lattice(out, _mask_outputs(X, params, 1 / (1 - p)), 1).all():
                raise CheckFailed(
                    f"with n_samples = {MC_N} (p = {fmt(p)}) every row of your output is the softmax output of a "
                    "SINGLE mask: you reuse one mask for every sample, or ignore n_samples. Draw a new mask for "
                    "each of the n_samples samples and average their softmax outputs")
            if np.abs(out - _ensembles(X, params, p, kind="keep")[0]).max() <= _MC_T + 1e-6:
                raise CheckFailed(
                    f"with p = {fmt(p)} your masks keep each hidden unit with probability p = {fmt(p)} instead of "
                    f"1-p = {fmt(1 - p)}: p is the probability of DROPPING (mask = rng.random(...) >= p)")
            raise CheckFailed(
                f"with n_samples = {MC_N} and p = {fmt(p)} your average is {gap:.3g} away from the exact average over "
                f"all masks on some entry, where sampling error allows at most {_MC_T:.2g}: draw each hidden unit's "
                "keep/drop independently with drop probability p, a fresh mask for every sample")

    # Central, 2 of 17, after the exact parts: a seed fixed inside the function keeps 12/17.
    with c.check(MC_FRESH_NAME, weight=2, central=True, gated_by=(MC_ONE, MC_FEW_NAME)):
        first, second, other = (_mc_output(c, key, shape) for key in ("fresh 1", "fresh 2", "other seed"))
        if np.array_equal(first, other):
            raise CheckFailed("two calls with generators of different seeds returned the same average: your "
                              "function ignores rng (a seed fixed inside it?). Draw every mask from the rng argument")
        c.require(not np.array_equal(first, second), "two calls with the same Generator returned the same average: "
                                                     "draw fresh masks from rng on every call")

    # Not central, 2 of 17: numpy's global state keeps 15/17.
    with c.check(RNG_CHECK, weight=2):
        _mc_output(c, "same seed 1", shape)
        check_function_of_rng(c, "same seed")

    with c.check("returns an (N, C) array; X and params are not modified", weight=1, peripheral=True):
        _mc_output(c, f"many p={MC_MANY_PS[0]}", shape)
        c.output("no in-place")
        c.require(not c.mutated("no in-place"), "your function changed X in place")
        after = c.output("params after")
        c.require(isinstance(after, dict) and all(np.array_equal(as_float_array(after.get(k)), params[k])
                                                  for k in ("W1", "b1", "W2", "b2")),
                  "your function changed params in place (or replaced one of its arrays); compute in new arrays")


CHECKS = {
    "ensemble_variance": check_ensemble_variance,
    "bootstrap_indices": check_bootstrap_indices,
    "enumerate_masks": check_enumerate_masks,
    "mask_probabilities": check_mask_probabilities,
    "exact_dropout_ensemble": check_exact_dropout_ensemble,
    "mc_dropout_average": check_mc_dropout_average,
}
