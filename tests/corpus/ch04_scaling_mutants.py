"""The mistakes students make in chapter 04. Every one must lose points under
every seed (tests/test_corpora.py); a third entry in a table row is the share
of its function's points it may keep at most."""
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
        ("no-rescale", df_no_rescale),
        ("scale-by-p", df_scale_by_p),
        ("scale-by-keep", df_scale_by_keep),
        ("drops-in-eval", df_drops_in_eval),
        ("cached-mask", df_cached_mask),
        ("fixed-seed", df_fixed_seed),
        ("per-row-mask", df_per_row_mask),
        ("per-column-mask", df_per_column_mask),
        ("p-is-keep", df_p_is_keep),
        ("nan-at-p1", df_nan_at_one),
        ("in-place", df_inplace),
        ("no-value-error", df_no_value_error),
        ("eval-mask-ones", df_eval_mask_ones),
        ("global-np-random", df_global_random, 0.9),
        ("forged-mask-only", df_mask_only, 0.0),
    ],
    "standard_dropout_forward": [
        ("inverted-scaling", sd_inverted_scaling),
        ("eval-unscaled", sd_eval_unscaled),
        ("eval-scaled-by-p", sd_eval_scaled_by_p),
        ("eval-divides", sd_eval_divides),
        ("drops-in-eval", sd_drops_in_eval),
        ("p-is-keep", sd_p_is_keep),
        ("fixed-seed", sd_fixed_seed),
        ("per-row-mask", sd_per_row),
        ("in-place-eval", sd_inplace_eval),
        ("global-np-random", sd_global_random, 0.9),
    ],
    "dropout_moments": [
        ("var-x2p", dm_var_no_denominator),
        ("var-x2p(1-p)", dm_var_mask),
        ("var-keep-swapped", dm_var_keep_swapped),
        ("var-no-square", dm_var_no_square),
        ("mean-standard", dm_mean_standard),
        ("mean-of-mask", dm_mean_of_mask),
        ("std-not-var", dm_std_not_var),
        ("second-moment", dm_second_moment),
        ("in-place", dm_inplace),
    ],
    "mc_moments": [
        ("no-rescale", mc_no_rescale),
        ("var-of-mask", mc_var_of_mask),
        ("one-mask", mc_one_mask),
        ("analytic", mc_analytic, 0.0),
        ("global-rng", mc_global_rng, 0.9),
        ("global-rng-binomial-loop", mc_global_binomial, 0.9),
        ("analytic-plus-noise", mc_analytic_noise, 0.0),
        ("analytic-on-the-lattice", mc_analytic_on_lattice, 0.0),
        ("scalar-mask-per-sample", mc_scalar_mask_per_sample),
        ("p-is-keep", mc_p_is_keep),
        ("std-not-var", mc_std_not_var),
        ("in-place", mc_inplace),
    ],
}
