"""Correct implementations of chapter 04's graded functions, written the many
ways students write them. Every one must earn full marks under every seed."""
import numpy as np
import torch


def _check_p(p):
    if not 0 <= p <= 1:
        raise ValueError("p must be in [0, 1]")


# -- dropout_forward ------------------------------------------------------------------

def df_binomial(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    mask = rng.binomial(1, 1 - p, size=x.shape)
    scale = 0.0 if p == 1 else 1.0 / (1 - p)
    return x * mask * scale, mask


def df_float_mask_uniform(x, p, rng, training=True):
    if p < 0 or p > 1:
        raise ValueError(f"bad p {p}")
    if not training:
        return x, None
    mask = (rng.uniform(size=x.shape) < 1 - p).astype(x.dtype)
    if p == 1:
        return x * 0, mask
    return x * mask / (1 - p), mask


def df_where_errstate(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    keep = rng.random(size=x.shape) > p
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(keep, x / (1 - p), 0.0).astype(x.dtype)
    return out, keep


def df_inplace_on_copy(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    out = np.array(x, copy=True)
    mask = rng.random(out.shape) >= p
    out[~mask] = 0
    if p < 1:
        out /= 1 - p
    return out, mask


def df_loop(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x, None
    flat = x.reshape(-1)
    out = np.zeros_like(flat)
    mask = np.zeros(flat.shape, dtype=bool)
    u = rng.random(flat.size)
    for i in range(flat.size):
        if u[i] >= p:
            mask[i] = True
            out[i] = flat[i] / (1 - p)
    return out.reshape(x.shape), mask.reshape(x.shape)


# -- standard_dropout_forward -------------------------------------------------------

def sd_binomial(x, p, rng, training=True):
    _check_p(p)
    if not training:
        return x * (1 - p), None
    mask = rng.binomial(1, 1 - p, size=x.shape).astype(np.float64)
    return x * mask, mask


def sd_where(x, p, rng, training=True):
    _check_p(p)
    if training:
        keep = rng.uniform(0, 1, x.shape) > p
        return np.where(keep, x, 0).astype(x.dtype), keep
    return (1 - p) * x, None


def sd_copy_and_zero(x, p, rng, training=True):
    if not (0.0 <= p <= 1.0):
        raise ValueError("p must be a probability")
    out = x.copy()
    if not training:
        out *= 1 - p
        return out, None
    mask = rng.random(x.shape) < 1 - p
    out[~mask] = 0
    return out, mask


# -- dropout_moments ----------------------------------------------------------------

def dm_plain(x, p):
    return x, x**2 * p / (1 - p)


def dm_keep(x, p):
    keep = 1.0 - p
    mean = np.array(x, dtype=float)
    var = np.square(mean) * (1 - keep) / keep
    return mean, var


def dm_second_moment(x, p):
    # E[y^2] - E[y]^2 with E[y^2] = x^2 / (1 - p)
    x = np.asarray(x, dtype=np.float64)
    second = x**2 / (1 - p)
    return x.copy(), second - x**2


def dm_float32(x, p):
    x32 = np.asarray(x, dtype=np.float32)
    return x32, (x32 * x32 * np.float32(p / (1 - p))).astype(np.float32)


# -- mc_moments ---------------------------------------------------------------------

def _inverted(x, p, rng):
    mask = rng.random(x.shape) >= p
    return x * mask / (1 - p) if p < 1 else np.zeros_like(x)


def mc_stack_ddof0(x, p, n_samples, rng):
    samples = np.stack([_inverted(x, p, rng) for _ in range(n_samples)])
    return samples.mean(axis=0), samples.var(axis=0)


def mc_stack_ddof1(x, p, n_samples, rng):
    samples = np.stack([_inverted(x, p, rng) for _ in range(n_samples)])
    return samples.mean(axis=0), samples.var(axis=0, ddof=1)


def mc_vectorised_binomial(x, p, n_samples, rng):
    masks = rng.binomial(1, 1 - p, size=(n_samples,) + x.shape)
    y = x * masks / (1 - p)
    return y.mean(0), y.var(0)


def mc_welford(x, p, n_samples, rng):
    mean = np.zeros_like(x, dtype=float)
    m2 = np.zeros_like(x, dtype=float)
    for k in range(1, n_samples + 1):
        y = _inverted(x, p, rng)
        delta = y - mean
        mean = mean + delta / k
        m2 = m2 + delta * (y - mean)
    return mean, m2 / (n_samples - 1)


def mc_float32_torch(x, p, n_samples, rng):
    # float32 accumulation of E[y^2] - E[y]^2, via torch tensors built from rng draws
    xt = torch.as_tensor(x, dtype=torch.float32)
    u = torch.as_tensor(rng.random((n_samples,) + x.shape), dtype=torch.float32)
    y = xt * (u >= p).float() / (1 - p)
    mean = y.mean(0)
    var = (y * y).mean(0) - mean * mean
    return mean.numpy(), var.clamp_min(0).numpy()


def mc_torch_var_unbiased(x, p, n_samples, rng):
    # torch's default var is unbiased (correction=1): NaN for n_samples == 1
    xt = torch.as_tensor(x, dtype=torch.float32)
    keep = torch.as_tensor(rng.random((n_samples,) + x.shape) >= p)
    y = xt * keep / (1 - p)
    return y.mean(0).numpy(), y.var(0).numpy()


def mc_std_squared(x, p, n_samples, rng):
    samples = np.stack([_inverted(x, p, rng) for _ in range(n_samples)])
    return samples.mean(axis=0), samples.std(axis=0, ddof=1) ** 2


def mc_float32_sums(x, p, n_samples, rng):
    # float32 running sums of y and y^2, the variance by E[y^2] - E[y]^2 (may dip below 0 by rounding)
    x32 = np.asarray(x, dtype=np.float32)
    total = np.zeros_like(x32)
    total_sq = np.zeros_like(x32)
    for _ in range(n_samples):
        y = x32 * (rng.random(x.shape) >= p) / np.float32(1 - p)
        total += y
        total_sq += y * y
    mean = total / np.float32(n_samples)
    return mean, total_sq / np.float32(n_samples) - mean * mean


VARIANTS = {
    "dropout_forward": [
        ("binomial-int-mask", df_binomial),
        ("uniform-float-mask", df_float_mask_uniform),
        ("where-errstate", df_where_errstate),
        ("inplace-on-copy", df_inplace_on_copy),
        ("python-loop", df_loop),
    ],
    "standard_dropout_forward": [
        ("binomial-float-mask", sd_binomial),
        ("where", sd_where),
        ("copy-and-zero", sd_copy_and_zero),
    ],
    "dropout_moments": [
        ("plain", dm_plain),
        ("keep-prob", dm_keep),
        ("second-moment", dm_second_moment),
        ("float32", dm_float32),
    ],
    "mc_moments": [
        ("stack-ddof0", mc_stack_ddof0),
        ("stack-ddof1", mc_stack_ddof1),
        ("vectorised-binomial", mc_vectorised_binomial),
        ("welford", mc_welford),
        ("float32-torch", mc_float32_torch),
        ("torch-var-unbiased", mc_torch_var_unbiased),
        ("std-squared-ddof1", mc_std_squared),
        ("float32-running-sums", mc_float32_sums),
    ],
}
