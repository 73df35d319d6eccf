"""The mistakes students make in chapter 04. Every one must lose points under
every seed (tests/test_corpora.py), and every table row states, as its third
entry, the share of its function's points it may keep at most (or a
(min, max) pair when part of it must be credited), with the reason on its
line: the share an experienced teaching assistant would leave it
(autograder/POLICY.md)."""
import numpy as np

from .ch04_scaling_variants import _check_p


# -- dropout_forward ------------------------------------------------------------------

def df_no_rescale(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.random(x.shape) >= p
    return x * mask, mask


def df_scale_by_p(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.random(x.shape) >= p
    return x * mask * p, mask


def df_scale_by_keep(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.random(x.shape) >= p
    return x * mask * (1 - p), mask


def df_drops_in_eval(x, p, rng, training=True):
    _check_p(p)
    mask = rng.random(x.shape) >= p
    if p == 1:
        return np.zeros_like(x), (mask if training else None)
    return x * mask / (1 - p), (mask if training else None)


_CACHE = {}


def df_cached_mask(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    key = (x.shape, p)
    if key not in _CACHE:
        _CACHE[key] = rng.random(x.shape) >= p
    mask = _CACHE[key]
    return (x * mask / (1 - p) if p < 1 else np.zeros_like(x)), mask


def df_fixed_seed(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = np.random.default_rng(0).random(x.shape) >= p
    return (x * mask / (1 - p) if p < 1 else np.zeros_like(x)), mask


def df_per_row_mask(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = np.broadcast_to(rng.random(x.shape[:-1] + (1,)) >= p, x.shape)
    return (x * mask / (1 - p) if p < 1 else np.zeros_like(x)), mask


def df_per_column_mask(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.random(x.shape[-1:]) >= p  # shape (D,), broadcast over rows
    return (x * mask / (1 - p) if p < 1 else np.zeros_like(x)), mask


def df_p_is_keep(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.random(x.shape) < p
    return (x * mask / p if p > 0 else np.zeros_like(x)), mask


def df_nan_at_one(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.random(x.shape) >= p
    with np.errstate(divide="ignore", invalid="ignore"):
        return x * mask / np.float64(1 - p), mask


def df_inplace(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.random(x.shape) >= p
    x *= mask
    if p < 1:
        x /= 1 - p
    return x, mask


def df_no_value_error(x, p, rng, training=True):
    if not training:
        return x, None
    mask = rng.random(x.shape) >= p
    return (x * mask / (1 - p) if p < 1 else np.zeros_like(x)), mask


def df_global_random(x, p, rng, training=True):
    """Correct maths, but the mask comes from numpy's global state, not rng."""
    _check_p(p)
    if not training:
        return x, None
    mask = np.random.random(x.shape) >= p
    return (x * mask / (1 - p) if p < 1 else np.zeros_like(x)), mask


def df_mask_only(x, p, rng, training=True):
    """A forgery: masks with the right drop rate, noise for the output, every
    claim a recording can make (ValueError, x untouched, None in eval) right."""
    _check_p(p)
    if not training:
        return rng.normal(size=x.shape), None
    mask = rng.random(x.shape) >= p
    return rng.normal(size=x.shape), mask


def df_eval_mask_ones(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, np.ones_like(x)
    mask = rng.random(x.shape) >= p
    return (x * mask / (1 - p) if p < 1 else np.zeros_like(x)), mask


def df_divides_by_p(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.random(x.shape) >= p
    with np.errstate(divide="ignore", invalid="ignore"):
        return x * mask / p, mask


def df_own_generator(x, p, rng, training=True):
    """Correct maths, but the mask comes from a Generator of its own, not rng."""
    _check_p(p)
    if not training:
        return x, None
    mask = np.random.default_rng().random(x.shape) >= p
    return (x * mask / (1 - p) if p < 1 else np.zeros_like(x)), mask


def df_returns_none(x, p, rng, training=True):
    """Computes everything and forgets `return`."""
    _check_p(p)
    mask = rng.random(x.shape) >= p
    x * mask / (1 - p) if p < 1 else np.zeros_like(x)  # computed, never returned


# -- standard_dropout_forward -------------------------------------------------------

def sd_inverted_scaling(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.random(x.shape) >= p
    return (x * mask / (1 - p) if p < 1 else np.zeros_like(x)), mask


def sd_eval_unscaled(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.random(x.shape) >= p
    return x * mask, mask


def sd_eval_scaled_by_p(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x * p, None
    mask = rng.random(x.shape) >= p
    return x * mask, mask


def sd_eval_divides(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x / (1 - p), None
    mask = rng.random(x.shape) >= p
    return x * mask, mask


def sd_drops_in_eval(x, p, rng, training=True):
    _check_p(p)
    mask = rng.random(x.shape) >= p
    return x * mask, (mask if training else None)


def sd_p_is_keep(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x * p, None
    mask = rng.random(x.shape) < p
    return x * mask, mask


def sd_fixed_seed(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x * (1 - p), None
    mask = np.random.default_rng(42).random(x.shape) >= p
    return x * mask, mask


def sd_per_row(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x * (1 - p), None
    mask = np.broadcast_to(rng.random(x.shape[:-1] + (1,)) >= p, x.shape)
    return x * mask, mask


def sd_global_random(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x * (1 - p), None
    mask = np.random.random(x.shape) >= p
    return x * mask, mask


def sd_inplace_eval(x, p, rng, training=True):
    _check_p(p)
    if not training:
        x *= 1 - p
        return x, None
    mask = rng.random(x.shape) >= p
    return x * mask, mask


# -- dropout_moments ----------------------------------------------------------------

def dm_var_no_denominator(x, p):
    return x, x**2 * p


def dm_var_mask(x, p):
    return x, x**2 * p * (1 - p)          # variance of x * mask (standard dropout)


def dm_var_keep_swapped(x, p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return x, x**2 * (1 - p) / p      # p read as the keep probability


def dm_var_no_square(x, p):
    return x, np.abs(x) * p / (1 - p)


def dm_mean_standard(x, p):
    return x * (1 - p), x**2 * p / (1 - p)


def dm_mean_of_mask(x, p):
    return np.full_like(x, 1 - p), x**2 * p / (1 - p)


def dm_std_not_var(x, p):
    return x, np.abs(x) * np.sqrt(p / (1 - p))


def dm_second_moment(x, p):
    return x, x**2 / (1 - p)              # E[y^2], not the variance


def dm_inplace(x, p):
    mean = x.copy()
    x **= 2
    x *= p / (1 - p)
    return mean, x


# -- mc_moments ---------------------------------------------------------------------

def _inv(x, p, rng):
    return x * (rng.random(x.shape) >= p) / (1 - p)


def mc_no_rescale(x, p, n_samples, rng):
    y = np.stack([x * (rng.random(x.shape) >= p) for _ in range(n_samples)])
    return y.mean(0), y.var(0)


def mc_var_of_mask(x, p, n_samples, rng):
    m = rng.random((n_samples,) + x.shape) >= p
    y = x * m / (1 - p)
    return y.mean(0), m.var(0)


def mc_one_mask(x, p, n_samples, rng):
    mask = rng.random(x.shape) >= p
    y = np.stack([x * mask / (1 - p) for _ in range(n_samples)])
    return y.mean(0), y.var(0)


def mc_analytic(x, p, n_samples, rng):
    return x.copy(), x**2 * p / (1 - p)


def mc_global_rng(x, p, n_samples, rng):
    y = x * (np.random.random((n_samples,) + x.shape) >= p) / (1 - p)
    return y.mean(0), y.var(0)


def mc_global_binomial(x, p, n_samples, rng):
    """Simulates correctly, one draw at a time, from numpy's global state."""
    total, total_sq = np.zeros_like(x), np.zeros_like(x)
    for _ in range(n_samples):
        y = x * np.random.binomial(1, 1 - p, size=x.shape) / (1 - p)
        total += y
        total_sq += y * y
    mean = total / n_samples
    return mean, np.maximum(total_sq / n_samples - mean**2, 0.0)


def mc_analytic_noise(x, p, n_samples, rng):
    """Never simulates: the formula plus 0.5 % noise from rng, so the estimates
    change from call to call and repeat for one seed (issue 7, finding 9)."""
    x = np.asarray(x, dtype=np.float64)
    mean = x * (1 + 0.005 * rng.standard_normal(x.shape))
    var = x**2 * p / (1 - p) * (1 + 0.005 * rng.standard_normal(x.shape))
    return mean, var


def mc_analytic_on_lattice(x, p, n_samples, rng):
    """Never simulates: the formula rounded to the nearest value n draws allow
    (k = round(n (1 - p)) kept draws for every entry), plus the same noise."""
    k = np.round(n_samples * (1 - p))
    q = k / n_samples
    s = np.asarray(x, dtype=np.float64) / (1 - p)
    noise = 1 + 0.005 * rng.standard_normal(s.shape) if n_samples > 100 else 1.0
    return s * q * noise, s**2 * q * (1 - q) * noise


def mc_scalar_mask_per_sample(x, p, n_samples, rng):
    m = rng.random((n_samples,) + (1,) * x.ndim) >= p
    y = x * m / (1 - p)
    return y.mean(0), y.var(0)


def mc_p_is_keep(x, p, n_samples, rng):
    m = rng.random((n_samples,) + x.shape) < p
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(m, x / p, 0.0)
    return y.mean(0), y.var(0)


def mc_std_not_var(x, p, n_samples, rng):
    y = np.stack([_inv(x, p, rng) for _ in range(n_samples)])
    return y.mean(0), y.std(0)


def mc_inplace(x, p, n_samples, rng):
    y = np.stack([_inv(x, p, rng) for _ in range(n_samples)])
    mean, var = y.mean(0), y.var(0)
    x[...] = mean
    return x, var


MUTANTS = {
    "dropout_forward": [
        # Wrong central computation: only the mask is right (at most a quarter).
        ("no-rescale", df_no_rescale, 0.25),                # forgets 1/(1-p): the scaling is the chapter's point
        ("scale-by-p", df_scale_by_p, 0.25),                # *p: wrong scaling, mask parts only
        ("divides-by-p", df_divides_by_p, 0.25),            # /p: p read as the keep probability in the scale
        ("scale-by-keep", df_scale_by_keep, 0.25),          # *(1-p): standard dropout's test-time step, wrong here
        ("p-is-keep", df_p_is_keep, 0.25),                  # keeps with probability p: scale and drop rate wrong
        # Not dropout at all: the scaling and eval branch are right, the randomness is not (at most half).
        ("cached-mask", df_cached_mask, 0.5),               # the same mask every call: a fixed pruning
        ("fixed-seed", df_fixed_seed, 0.5),                 # a seed inside the function: the same mask every call
        ("per-row-mask", df_per_row_mask, 0.65),            # whole rows dropped together: right scale, not per entry
        ("per-column-mask", df_per_column_mask, 0.5),       # a (D,) mask: not per entry, and cannot be checked: 0
        # Dropout left on at test time: the training half is right (at most 0.6).
        ("drops-in-eval", df_drops_in_eval, 0.6),
        # Right maths, randomness not from rng: not reproducible (at most 0.9).
        ("global-np-random", df_global_random, 0.9),        # numpy's global state
        ("own-generator", df_own_generator, 0.9),           # a Generator of its own
        # Peripheral slips: one edge case or argument each.
        ("nan-at-p1", df_nan_at_one, 0.98),                 # NaN at p = 1 only
        ("in-place", df_inplace, 0.98),                     # modifies x
        ("no-value-error", df_no_value_error, 0.98),        # no ValueError for p outside [0, 1]
        ("eval-mask-ones", df_eval_mask_ones, 0.98),        # a mask of ones instead of None in eval
        # Nothing to credit.
        ("forged-mask-only", df_mask_only, 0.0),            # claims without the output: a forgery
        ("returns-none", df_returns_none, 0.0),             # forgot `return`
    ],
    "standard_dropout_forward": [
        ("inverted-scaling", sd_inverted_scaling, 0.25),    # inverted dropout instead: both halves wrong
        ("eval-unscaled", sd_eval_unscaled, 0.5),           # no test-time factor: half of standard dropout
        ("eval-scaled-by-p", sd_eval_scaled_by_p, 0.5),     # test-time factor p instead of 1-p
        ("eval-divides", sd_eval_divides, 0.5),             # test-time factor 1/(1-p) instead of 1-p
        ("drops-in-eval", sd_drops_in_eval, 0.5),           # drops at test time, no factor
        ("p-is-keep", sd_p_is_keep, 0.4),                   # keeps with probability p: rate and factor wrong
        ("fixed-seed", sd_fixed_seed, 0.5),                 # the same mask every call: not dropout
        ("per-row-mask", sd_per_row, 0.65),                 # whole rows dropped together
        ("in-place-eval", sd_inplace_eval, 0.98),           # modifies x at test time
        ("global-np-random", sd_global_random, 0.9),        # not reproducible from rng
    ],
    "dropout_moments": [
        # The variance is the exercise (the mean x is one line): a wrong variance keeps a quarter.
        ("var-x2p", dm_var_no_denominator, 0.25),           # forgets the 1/(1-p) of the rescaling
        ("var-x2p(1-p)", dm_var_mask, 0.25),                # variance of x * mask, before rescaling
        ("var-keep-swapped", dm_var_keep_swapped, 0.25),    # p read as the keep probability
        ("var-no-square", dm_var_no_square, 0.25),          # |x| instead of x^2
        ("std-not-var", dm_std_not_var, 0.25),              # the standard deviation
        ("second-moment", dm_second_moment, 0.25),          # E[y^2]: forgets to subtract the mean
        ("mean-standard", dm_mean_standard, 0.5),           # variance right, mean of standard dropout
        ("mean-of-mask", dm_mean_of_mask, 0.5),             # variance right, mean of the mask
        ("in-place", dm_inplace, 0.95),                     # modifies x
    ],
    "mc_moments": [
        ("no-rescale", mc_no_rescale, 0.25),                # simulates x * mask: every estimate off
        ("var-of-mask", mc_var_of_mask, 0.3),               # mean right, variance of the mask
        ("one-mask", mc_one_mask, 0.3),                     # one mask for all samples: means off, variance 0
        ("scalar-mask-per-sample", mc_scalar_mask_per_sample, 0.25),  # one coin per sample for all entries
        ("p-is-keep", mc_p_is_keep, 0.25),                  # keeps with probability p
        ("std-not-var", mc_std_not_var, 0.3),               # mean right, standard deviation
        ("global-rng", mc_global_rng, 0.9),                 # not reproducible from rng
        ("global-rng-binomial-loop", mc_global_binomial, 0.9),
        ("in-place", mc_inplace, 0.95),                     # modifies x
        # Never simulates: the exercise is the simulation, so nothing is credited.
        ("analytic", mc_analytic, 0.0),
        ("analytic-plus-noise", mc_analytic_noise, 0.0),
        ("analytic-on-the-lattice", mc_analytic_on_lattice, 0.0),
    ],
}
