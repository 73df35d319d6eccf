"""The mistakes students make in chapter 02. Every one must lose points under
every seed (tests/test_corpora.py), and every table row states, as its third
entry, the share of its function's points it may keep at most (or a
(min, max) pair when part of it must be credited), with the reason on its
line: the share an experienced teaching assistant would leave it
(autograder/POLICY.md)."""
import itertools
import math

import numpy as np

from .ch02_ensembles_variants import _hidden, _softmax


# -- ensemble_variance -------------------------------------------------------------------

def ev_independent(sigma2, rho, k):
    return sigma2 / k                                   # rho ignored: independent members


def ev_swapped(sigma2, rho, k):
    return (1 - rho) * sigma2 + rho * sigma2 / k


def ev_k_squared(sigma2, rho, k):
    return rho * sigma2 + (1 - rho) * sigma2 / k**2


def ev_variance_of_sum(sigma2, rho, k):
    return k * sigma2 * (1 + (k - 1) * rho)


def ev_divided_by_k_once(sigma2, rho, k):
    return sigma2 * (1 + (k - 1) * rho)


def ev_rho_not_times_sigma2(sigma2, rho, k):
    return rho + (1 - rho) * sigma2 / k


def ev_standard_deviation(sigma2, rho, k):
    return math.sqrt(rho * sigma2 + (1 - rho) * sigma2 / k)


def ev_array(sigma2, rho, k):
    return np.array([rho * sigma2 + (1 - rho) * sigma2 / k])


def ev_list(sigma2, rho, k):
    return [rho * sigma2 + (1 - rho) * sigma2 / k]


def ev_returns_none(sigma2, rho, k):
    rho * sigma2 + (1 - rho) * sigma2 / k             # computed, never returned


# -- bootstrap_indices ---------------------------------------------------------------------------

def bi_permutation(n, rng):
    return rng.permutation(n)


def bi_choice_without_replacement(n, rng):
    return rng.choice(n, size=n, replace=False)


def bi_range_n_minus_1(n, rng):
    return rng.integers(0, n - 1, size=n) if n > 1 else np.zeros(1, dtype=int)


def bi_one_based(n, rng):
    return rng.integers(1, n + 1, size=n)


def bi_arange(n, rng):
    return np.arange(n)


def bi_fixed_seed(n, rng):
    return np.random.default_rng(0).integers(0, n, size=n)


def bi_global_random(n, rng):
    return np.random.randint(0, n, size=n)


def bi_own_generator(n, rng):
    return np.random.default_rng().integers(0, n, size=n)


def bi_floats(n, rng):
    return np.floor(rng.random(n) * n)                  # whole numbers, but float: X[idx] raises


def bi_half_the_data(n, rng):
    return rng.integers(0, max(n // 2, 1), size=n)


def bi_returns_none(n, rng):
    rng.integers(0, n, size=n)


# -- enumerate_masks ---------------------------------------------------------------------------------

def _bits(codes, n):
    return (np.asarray(codes)[:, None] >> np.arange(n)) & 1


def em_no_all_zero(n):
    return _bits(np.arange(1, 2**n), n)


def em_no_all_ones(n):
    return _bits(np.arange(2**n - 1), n)


def em_random_rows(n):
    return np.random.default_rng(0).integers(0, 2, size=(2**n, n))   # duplicates, missing masks


def em_half_kept(n):
    return np.array([[1 if i in keep else 0 for i in range(n)]
                     for keep in itertools.combinations(range(n), n // 2)])


def em_transposed(n):
    return _bits(np.arange(2**n), n).T


def em_one_hot(n):
    return np.eye(n, dtype=int)                          # only the masks that keep one unit


def em_uint8_unpackbits(n):
    codes = np.arange(2**n).astype(np.uint8)            # wraps beyond 8 units: rows repeat
    bits = np.unpackbits(codes[:, None], axis=1)        # (2**n, 8), most significant bit first
    return bits[:, 8 - n:] if n <= 8 else np.hstack([np.zeros((2**n, n - 8), dtype=np.uint8), bits])


def em_returns_none(n):
    _bits(np.arange(2**n), n)


# -- mask_probabilities -------------------------------------------------------------------------------

def mp_p_is_keep(masks, p):
    m = np.asarray(masks, dtype=float)
    k = m.sum(1)
    return p**k * (1 - p) ** (m.shape[1] - k)


def mp_no_dropped_factor(masks, p):
    return (1 - p) ** np.asarray(masks, dtype=float).sum(1)


def mp_binomial(masks, p):
    m = np.asarray(masks, dtype=float)
    n, k = m.shape[1], m.sum(1)
    return np.array([math.comb(n, int(ki)) for ki in k]) * (1 - p) ** k * p ** (n - k)


def mp_normalised_over_rows(masks, p):
    m = np.asarray(masks, dtype=float)
    k = m.sum(1)
    w = (1 - p) ** k * p ** (m.shape[1] - k)
    return w / w.sum()


def mp_uniform(masks, p):
    m = np.asarray(masks)
    return np.full(m.shape[0], 0.5 ** m.shape[1])


def mp_times_not_power(masks, p):
    m = np.asarray(masks, dtype=float)
    k = m.sum(1)
    return (1 - p) * k * p * (m.shape[1] - k)


def mp_nan_at_p0(masks, p):
    """exp of a sum of logs: right for 0 < p < 1, NaN at p = 0 and p = 1 (0 * log 0)."""
    m = np.asarray(masks, dtype=float)
    k = m.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(k * np.log(1 - p) + (m.shape[1] - k) * np.log(p))


def mp_in_place(masks, p):
    m = np.asarray(masks, dtype=float).copy()
    k = m.sum(1)
    masks[...] = 0                                       # "clears" the caller's masks afterwards
    return (1 - p) ** k * p ** (m.shape[1] - k)


# -- exact_dropout_ensemble ----------------------------------------------------------------------------

def _per_mask(X, params, p, scale=None, weights="prob"):
    """(weights (M,), softmax outputs (M, N, C), logits (M, N, C)) over every mask."""
    H = params["W1"].shape[1]
    masks = np.array(list(itertools.product([0.0, 1.0], repeat=H)))
    kept = masks.sum(1)
    if weights == "uniform":
        w = np.full(len(masks), 0.5**H)
    elif weights == "keep":
        w = p**kept * (1 - p) ** (H - kept)
    else:
        w = (1 - p) ** kept * p ** (H - kept)
    s = 1 / (1 - p) if scale is None else scale
    z = (_hidden(X, params)[None] * masks[:, None] * s) @ params["W2"] + params["b2"]
    return w, _softmax(z), z


def _means(w, P):
    arith = np.einsum("m,mnc->nc", w, P)
    log_geo = np.einsum("m,mnc->nc", w, np.log(P))
    return arith, np.exp(log_geo), _softmax(log_geo)


def ex_geo_not_renormalised(X, params, p):
    arith, unnormalised, _ = _means(*_per_mask(X, params, p)[:2])
    return arith, unnormalised


def ex_arith_from_logits(X, params, p):
    w, P, z = _per_mask(X, params, p)
    _, _, geo = _means(w, P)
    return _softmax(np.einsum("m,mnc->nc", w, z)), geo    # arith = softmax of the mean logits (= geo)


def ex_unweighted(X, params, p):
    arith, _, geo = _means(*_per_mask(X, params, p, weights="uniform")[:2])
    return arith, geo


def ex_p_is_keep(X, params, p):
    arith, _, geo = _means(*_per_mask(X, params, p, weights="keep")[:2])
    return arith, geo


def ex_no_inverted_scaling(X, params, p):
    arith, _, geo = _means(*_per_mask(X, params, p, scale=1.0)[:2])
    return arith, geo


def ex_swapped(X, params, p):
    arith, _, geo = _means(*_per_mask(X, params, p)[:2])
    return geo, arith


def ex_geo_unweighted(X, params, p):
    w, P, _ = _per_mask(X, params, p)
    arith = np.einsum("m,mnc->nc", w, P)
    return arith, _softmax(np.log(P).mean(0))


def ex_weight_scaled_for_both(X, params, p):
    out = _softmax(_hidden(X, params) @ params["W2"] + params["b2"])
    return out, out.copy()                               # the full network twice: geo right, arith not


def ex_geo_log(X, params, p):
    w, P, _ = _per_mask(X, params, p)
    return np.einsum("m,mnc->nc", w, P), np.einsum("m,mnc->nc", w, np.log(P))


def ex_in_place(X, params, p):
    arith, _, geo = _means(*_per_mask(X, params, p)[:2])
    params["W1"] *= 1.0                                  # harmless
    X -= 0.0
    params["b2"] = params["b2"] + 0.0                    # replaces an array of the caller's dict
    params["W2"] *= 2.0                                  # changes the caller's weights
    return arith, geo


def ex_returns_none(X, params, p):
    _means(*_per_mask(X, params, p)[:2])


# -- mc_dropout_average -----------------------------------------------------------------------------

def _mc(X, params, p, n_samples, rng, scale=None, keep=None):
    h = _hidden(X, params)
    s = 1 / (1 - p) if scale is None else scale
    keep_prob = 1 - p if keep is None else keep
    total = 0.0
    for _ in range(n_samples):
        m = rng.random(h.shape) < keep_prob
        total = total + _softmax(h * m * s @ params["W2"] + params["b2"])
    return total / n_samples


def mc_no_rescale(X, params, p, n_samples, rng):
    return _mc(X, params, p, n_samples, rng, scale=1.0)


def mc_divides_by_p(X, params, p, n_samples, rng):
    return _mc(X, params, p, n_samples, rng, scale=1 / p, keep=p)   # p read as keep throughout


def mc_p_is_keep_rate(X, params, p, n_samples, rng):
    return _mc(X, params, p, n_samples, rng, keep=p)      # keeps with probability p, scales by 1/(1-p)


def mc_logits_then_softmax(X, params, p, n_samples, rng):
    h = _hidden(X, params)
    z = 0.0
    for _ in range(n_samples):
        m = rng.random(h.shape) >= p
        z = z + (h * m / (1 - p)) @ params["W2"] + params["b2"]
    return _softmax(z / n_samples)


def mc_one_mask_reused(X, params, p, n_samples, rng):
    h = _hidden(X, params)
    m = rng.random(h.shape) >= p
    return np.mean([_softmax(h * m / (1 - p) @ params["W2"] + params["b2"]) for _ in range(n_samples)], axis=0)


def mc_ignores_n_samples(X, params, p, n_samples, rng):
    return _mc(X, params, p, 1, rng)


def mc_fixed_sample_count(X, params, p, n_samples, rng):
    return _mc(X, params, p, 100, rng)


def mc_sum_not_mean(X, params, p, n_samples, rng):
    return _mc(X, params, p, n_samples, rng) * n_samples


def mc_weight_scaled(X, params, p, n_samples, rng):
    return _softmax(_hidden(X, params) @ params["W2"] + params["b2"])


def mc_exact(X, params, p, n_samples, rng):
    w, P, _ = _per_mask(X, params, p)
    return np.einsum("m,mnc->nc", w, P)


def mc_fixed_seed(X, params, p, n_samples, rng):
    return _mc(X, params, p, n_samples, np.random.default_rng(0))


def mc_global_random(X, params, p, n_samples, rng):
    h = _hidden(X, params)
    total = 0.0
    for _ in range(n_samples):
        m = np.random.random(h.shape) >= p
        total = total + _softmax(h * m / (1 - p) @ params["W2"] + params["b2"])
    return total / n_samples


def mc_input_dropout(X, params, p, n_samples, rng):
    total = 0.0
    for _ in range(n_samples):
        Xd = X * (rng.random(X.shape) >= p) / (1 - p)
        total = total + _softmax(_hidden(Xd, params) @ params["W2"] + params["b2"])
    return total / n_samples


def mc_in_place(X, params, p, n_samples, rng):
    out = _mc(X, params, p, n_samples, rng)
    X *= 0.5
    return out


def mc_returns_none(X, params, p, n_samples, rng):
    _mc(X, params, p, n_samples, rng)


MUTANTS = {
    "ensemble_variance": [
        # A wrong formula is a wrong central computation: nothing is credited.
        ("independent-members", ev_independent, 0.25),       # rho ignored: sigma2/k
        ("rho-swapped", ev_swapped, 0.25),                    # rho and 1 - rho swapped
        ("k-squared", ev_k_squared, 0.25),                    # (1 - rho) sigma2 / k**2
        ("variance-of-sum", ev_variance_of_sum, 0.25),        # Var(sum), not Var(mean)
        ("divided-by-k-once", ev_divided_by_k_once, 0.25),    # Var(sum) / k
        ("rho-not-times-sigma2", ev_rho_not_times_sigma2, 0.25),  # covariance taken as rho
        ("standard-deviation", ev_standard_deviation, 0.25),  # sqrt of the answer
        # Peripheral: the right number in the wrong container.
        ("array-of-one", ev_array, 0.9),                      # np.array([v]) instead of a float
        ("list-of-one", ev_list, 0.9),                        # [v] instead of a float
        ("returns-none", ev_returns_none, 0.0),               # forgot `return`
    ],
    "bootstrap_indices": [
        # Not a bootstrap: without replacement (random, uniform, but no repeats): at most half.
        ("permutation", bi_permutation, 0.5),
        ("choice-without-replacement", bi_choice_without_replacement, 0.5),
        # Off by one: the last example is never drawn (half of the idea right): at most half.
        ("range-n-minus-1", bi_range_n_minus_1, 0.5),
        # Wrong central computation: indices outside range(n), no randomness, half the data.
        ("one-based", bi_one_based, 0.25),                    # 1..n: index n is out of range
        ("arange", bi_arange, 0.0),                           # the data set itself, every call
        ("half-the-data", bi_half_the_data, 0.25),            # draws from range(n // 2)
        # The same sample on every call (a seed inside the function): not a random resample.
        ("fixed-seed", bi_fixed_seed, 0.4),
        # Right maths, randomness not from rng: not reproducible (at most 0.9).
        ("global-np-random", bi_global_random, 0.9),
        ("own-generator", bi_own_generator, 0.9),
        # Peripheral: whole numbers stored as floats.
        ("float-indices", bi_floats, 0.95),
        ("returns-none", bi_returns_none, 0.0),
    ],
    "enumerate_masks": [
        ("no-all-zero-row", em_no_all_zero, 0.25),            # 2**n - 1 masks: "dropping all" forgotten
        ("no-all-ones-row", em_no_all_ones, 0.25),            # range(2**n - 1)
        ("random-rows", em_random_rows, 0.25),                # duplicates and missing masks
        ("only-half-kept", em_half_kept, 0.25),               # only the masks that keep n/2 units
        ("transposed", em_transposed, 0.25),                  # (n, 2**n)
        ("one-hot", em_one_hot, 0.25),                        # n masks of one kept unit
        ("uint8-wraps", em_uint8_unpackbits, 0.25),           # right for n <= 8 only (H <= 12 is allowed)
        ("returns-none", em_returns_none, 0.0),
    ],
    "mask_probabilities": [
        ("p-is-keep", mp_p_is_keep, 0.25),                    # p^kept (1-p)^dropped
        ("no-dropped-factor", mp_no_dropped_factor, 0.25),    # (1-p)^kept only: does not sum to 1
        ("binomial-coefficient", mp_binomial, 0.25),          # P(k kept), not P(this mask)
        ("normalised-over-rows", mp_normalised_over_rows, 0.25),  # right only for the full set of masks
        ("uniform", mp_uniform, 0.25),                        # 1/2**n: right only at p = 0.5
        ("times-not-power", mp_times_not_power, 0.25),        # (1-p)*kept*p*dropped
        # Edge cases and argument types: lose their own weight only.
        ("nan-at-p0-p1", mp_nan_at_p0, 0.9),                  # exp(sum of logs): NaN at p = 0 and 1
        ("in-place", mp_in_place, 0.9),                       # rewrites masks
    ],
    "exact_dropout_ensemble": [
        # One half of the pair right: at most half.
        ("geo-not-renormalised", ex_geo_not_renormalised, (0.4, 0.5)),   # arith right, geo rows sum < 1
        ("arith-from-logits", ex_arith_from_logits, (0.3, 0.5)),         # arith = softmax(mean logits) = geo
        ("geo-unweighted", ex_geo_unweighted, (0.4, 0.5)),               # arith right, geo with equal weights
        ("weight-scaled-for-both", ex_weight_scaled_for_both, (0.3, 0.5)),  # geo right by the chapter's identity
        ("geo-is-log", ex_geo_log, (0.4, 0.5)),                          # geo left in log space
        # Both halves wrong: the central computation is not done.
        ("unweighted", ex_unweighted, 0.25),                  # every mask weight 1/2**H
        ("p-is-keep", ex_p_is_keep, 0.25),                    # weights with p as the keep probability
        ("no-inverted-scaling", ex_no_inverted_scaling, 0.25),  # hidden units not divided by 1-p
        ("swapped", ex_swapped, 0.25),                        # returns (geo, arith)
        # Peripheral slip.
        ("in-place", ex_in_place, 0.95),                      # changes the caller's params
        ("returns-none", ex_returns_none, 0.0),
    ],
    "mc_dropout_average": [
        # Wrong central computation: each sample is not the dropout network's output.
        ("no-rescale", mc_no_rescale, 0.25),                  # no 1/(1-p)
        ("p-as-keep-everywhere", mc_divides_by_p, 0.25),      # keeps with probability p and scales by 1/p
        ("input-dropout", mc_input_dropout, 0.25),            # masks the inputs, not the hidden units
        ("logits-then-softmax", mc_logits_then_softmax, 0.25),  # averages logits: the geometric mean
        ("weight-scaled", mc_weight_scaled, 0.0),             # no sampling at all
        ("exact-average", mc_exact, 0.0),                     # enumerates: not a Monte Carlo estimate
        ("fixed-sample-count", mc_fixed_sample_count, 0.25),  # always 100 samples
        ("sum-not-mean", mc_sum_not_mean, 0.25),              # forgets to divide by n_samples
        # The method is not the method: one mask, or one sample, for every call (at most half).
        ("one-mask-reused", mc_one_mask_reused, 0.5),
        ("ignores-n-samples", mc_ignores_n_samples, 0.5),     # always one sample
        ("p-is-keep-rate", mc_p_is_keep_rate, 0.5),           # right scale, keep probability p
        # A valid estimate, but the same one on every call (a seed inside the function).
        ("fixed-seed", mc_fixed_seed, 0.75),
        # Right maths, randomness not from rng: not reproducible (at most 0.9).
        ("global-np-random", mc_global_random, 0.9),
        ("in-place", mc_in_place, 0.95),                      # changes X
        ("returns-none", mc_returns_none, 0.0),
    ],
}
