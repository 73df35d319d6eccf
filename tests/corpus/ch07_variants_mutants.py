"""The mistakes students make in chapter 07. Every one must lose points under every
seed (tests/test_corpora.py), and every table row states, as its third entry, the
share of its function's points it may keep at most (or a (min, max) pair when part of
it must be credited), with the reason on its line: the share an experienced teaching
assistant would leave it (autograder/POLICY.md). Each function's docstring names the
mistake; tests/test_selfchecks.py and tests/test_messages.py import them by name."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from .ch07_variants_variants import (co_masked_fill, db_maxpool_valid, dc_bool_mask_linear, dg_formula,
                                     dp_rand_shape, gd_randn, ms_batched, sd_rand_nc11)


# -- dropconnect_linear --------------------------------------------------------------------------------

def dc_drops_activations(x, weight, bias, p, generator, training=True):
    """Drops entries of x (element dropout on the input), not weights."""
    if not training:
        return F.linear(x, weight, bias)
    keep = torch.rand(x.shape, generator=generator) >= p
    return F.linear(x * keep / (1 - p), weight, bias)


def dc_drops_inputs_shared(x, weight, bias, p, generator, training=True):
    """One mask over the inputs (in,) shared by the batch: whole columns of weight dropped."""
    if not training:
        return F.linear(x, weight, bias)
    keep = torch.rand(weight.shape[1], generator=generator) >= p
    return F.linear(x * keep / (1 - p), weight, bias)


def dc_drops_outputs(x, weight, bias, p, generator, training=True):
    """Dropout on the layer's outputs (one mask over the rows of weight): whole rows dropped."""
    if not training:
        return F.linear(x, weight, bias)
    keep = torch.rand(weight.shape[0], generator=generator) >= p
    return F.linear(x, weight * keep[:, None] / (1 - p), bias)


def dc_drops_bias(x, weight, bias, p, generator, training=True):
    """The bias is masked (and rescaled) like the weights."""
    if not training:
        return F.linear(x, weight, bias)
    wkeep = torch.rand(weight.shape, generator=generator) >= p
    bkeep = torch.rand(bias.shape, generator=generator) >= p
    return F.linear(x, weight * wkeep / (1 - p), bias * bkeep / (1 - p))


def dc_bias_rescaled(x, weight, bias, p, generator, training=True):
    """The 1/(1-p) applied to the whole output, bias included."""
    if not training:
        return F.linear(x, weight, bias)
    keep = torch.rand(weight.shape, generator=generator) >= p
    return F.linear(x, weight * keep, bias) / (1 - p)


def dc_mask_per_example(x, weight, bias, p, generator, training=True):
    """A weight mask for every example (Wan et al.'s per-example DropConnect), not one per call."""
    if not training:
        return F.linear(x, weight, bias)
    keep = torch.rand((x.shape[0],) + tuple(weight.shape), generator=generator) >= p
    w = weight * keep / (1 - p)                                   # (N, out, in)
    return torch.einsum("ni,noi->no", x, w) + bias


def dc_no_rescale(x, weight, bias, p, generator, training=True):
    """Weights masked but not divided by 1-p."""
    if not training:
        return F.linear(x, weight, bias)
    keep = torch.rand(weight.shape, generator=generator) >= p
    return F.linear(x, weight * keep, bias)


def dc_divides_by_p(x, weight, bias, p, generator, training=True):
    """Kept weights divided by p instead of 1-p."""
    if not training:
        return F.linear(x, weight, bias)
    keep = torch.rand(weight.shape, generator=generator) >= p
    return F.linear(x, weight * keep / p if p > 0 else weight, bias)


def dc_p_is_keep(x, weight, bias, p, generator, training=True):
    """p read as the keep probability: weights kept with probability p, scaled by 1/p."""
    if not training:
        return F.linear(x, weight, bias)
    if p == 0:
        return F.linear(x, weight, bias)
    keep = torch.rand(weight.shape, generator=generator) < p
    return F.linear(x, weight * keep / p, bias)


def dc_scaled_in_eval(x, weight, bias, p, generator, training=True):
    """Evaluation mode multiplies the weights by 1-p (standard dropout's test-time step)."""
    if not training:
        return F.linear(x, weight * (1 - p), bias)
    return dc_bool_mask_linear(x, weight, bias, p, generator)


def dc_drops_in_eval(x, weight, bias, p, generator, training=True):
    """training is ignored: weights are dropped in evaluation mode too."""
    return dc_bool_mask_linear(x, weight, bias, p, generator, True)


def dc_fixed_seed(x, weight, bias, p, generator, training=True):
    """A generator seeded inside the function: the same mask on every call."""
    return dc_bool_mask_linear(x, weight, bias, p, torch.Generator().manual_seed(0), training)


def dc_global_rng(x, weight, bias, p, generator, training=True):
    """torch.rand without generator=: torch's global random state."""
    if not training:
        return F.linear(x, weight, bias)
    keep = torch.rand(weight.shape) >= p
    return F.linear(x, weight * keep / (1 - p), bias)


def dc_weight_in_place(x, weight, bias, p, generator, training=True):
    """The caller's weight masked in place (weight.data.mul_), the damage left behind."""
    if not training:
        return F.linear(x, weight, bias)
    keep = torch.rand(weight.shape, generator=generator) >= p
    weight.data.mul_(keep / (1 - p))
    return F.linear(x, weight.detach(), bias.detach())


def dc_no_grad(x, weight, bias, p, generator, training=True):
    """The forward computed under torch.no_grad(): nothing reaches weight.grad."""
    with torch.no_grad():
        return dc_bool_mask_linear(x, weight, bias, p, generator, training)


def dc_returns_none(x, weight, bias, p, generator, training=True):
    torch.rand(weight.shape, generator=generator)


# -- gaussian_dropout ------------------------------------------------------------------------------------

def _gauss(x, std, generator):
    return x * (1 + std * torch.randn(x.shape, generator=generator, dtype=x.dtype))


def gd_std_p(x, p, generator, training=True):
    """Standard deviation p instead of sqrt(p/(1-p))."""
    return _gauss(x, p, generator) if training else x


def gd_var_p(x, p, generator, training=True):
    """Variance p instead of p/(1-p) (standard deviation sqrt(p))."""
    return _gauss(x, math.sqrt(p), generator) if training else x


def gd_std_ratio(x, p, generator, training=True):
    """Standard deviation p/(1-p): the variance used as the standard deviation."""
    return _gauss(x, p / (1 - p), generator) if training else x


def gd_keep_over_drop(x, p, generator, training=True):
    """Variance (1-p)/p: p read as the keep probability."""
    if not training or p == 0:
        return x
    return _gauss(x, math.sqrt((1 - p) / p), generator)


def gd_additive(x, p, generator, training=True):
    """Noise added to x instead of multiplying it: x + N(0, p/(1-p))."""
    if not training:
        return x
    return x + math.sqrt(p / (1 - p)) * torch.randn(x.shape, generator=generator, dtype=x.dtype)


def gd_mean_zero(x, p, generator, training=True):
    """x times N(0, p/(1-p)): the 1 of the noise's mean forgotten."""
    if not training:
        return x
    return x * math.sqrt(p / (1 - p)) * torch.randn(x.shape, generator=generator, dtype=x.dtype)


def gd_bernoulli(x, p, generator, training=True):
    """Inverted Bernoulli dropout (same mean and variance, not Gaussian)."""
    if not training:
        return x
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep / (1 - p)


def gd_uniform(x, p, generator, training=True):
    """Uniform noise with mean 1 and variance p/(1-p): the right moments, not Gaussian."""
    if not training:
        return x
    half_width = math.sqrt(3 * p / (1 - p))
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1
    return x * (1 + half_width * u)


def gd_noise_in_eval(x, p, generator, training=True):
    """training is ignored: noise in evaluation mode too."""
    return gd_randn(x, p, generator, True)


def gd_eval_scaled(x, p, generator, training=True):
    """Evaluation mode returns x * (1-p), as if the noise had been Bernoulli standard dropout."""
    return gd_randn(x, p, generator, True) if training else x * (1 - p)


def gd_fixed_seed(x, p, generator, training=True):
    """A generator seeded inside the function: the same noise on every call."""
    return gd_randn(x, p, torch.Generator().manual_seed(1234), training)


def gd_global_rng(x, p, generator, training=True):
    """torch.randn_like (it has no generator= argument): torch's global random state."""
    if not training:
        return x
    return x * (1 + math.sqrt(p / (1 - p)) * torch.randn_like(x))


def gd_per_row(x, p, generator, training=True):
    """One noise value per row (example), shared by its features."""
    if not training:
        return x
    eps = torch.randn((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator, dtype=x.dtype)
    return x * (1 + math.sqrt(p / (1 - p)) * eps)


def gd_in_place(x, p, generator, training=True):
    """x multiplied in place (x.mul_) and returned: the caller's x is changed."""
    if not training or p == 0:
        return x
    return x.mul_(1 + math.sqrt(p / (1 - p)) * torch.randn(x.shape, generator=generator, dtype=x.dtype))


def gd_float64_result(x, p, generator, training=True):
    """float64 noise not cast back: a float32 x comes back as float64."""
    if not training or p == 0:
        return x
    return x * (1 + math.sqrt(p / (1 - p)) * torch.randn(x.shape, generator=generator, dtype=torch.float64))


def gd_returns_none(x, p, generator, training=True):
    torch.randn(x.shape, generator=generator)


# -- spatial_dropout --------------------------------------------------------------------------------------

def _nc_drop(x, p, generator, shape, scale=True):
    keep = torch.rand(shape, generator=generator) >= p
    return x * keep / (1 - p) if scale else x * keep


def sd_per_pixel(x, p, generator, training=True):
    """One coin per entry: element dropout, not SpatialDropout."""
    return _nc_drop(x, p, generator, x.shape) if training else x


def sd_shared_batch(x, p, generator, training=True):
    """One channel mask (1, C, 1, 1) shared by every example of the batch."""
    return _nc_drop(x, p, generator, (1, x.shape[1], 1, 1)) if training else x


def sd_per_sample(x, p, generator, training=True):
    """One coin per example (N, 1, 1, 1) instead of per (example, channel)."""
    return _nc_drop(x, p, generator, (x.shape[0], 1, 1, 1)) if training else x


def sd_rows(x, p, generator, training=True):
    """One coin per (n, c, row): what F.dropout2d does to a 3-d (C, H, W) input."""
    return _nc_drop(x, p, generator, x.shape[:3] + (1,)) if training else x


def sd_no_rescale(x, p, generator, training=True):
    """Whole maps dropped but the survivors not divided by 1-p."""
    return _nc_drop(x, p, generator, x.shape[:2] + (1, 1), scale=False) if training else x


def sd_divides_by_p(x, p, generator, training=True):
    """Kept maps divided by p instead of 1-p."""
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape[:2] + (1, 1), generator=generator) >= p
    return x * keep / p


def sd_p_is_keep(x, p, generator, training=True):
    """p read as the keep probability: maps kept with probability p, scaled by 1/p."""
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape[:2] + (1, 1), generator=generator) < p
    return x * keep / p


def sd_drops_in_eval(x, p, generator, training=True):
    """training is ignored: maps are dropped in evaluation mode too."""
    return sd_rand_nc11(x, p, generator, True)


def sd_fixed_seed(x, p, generator, training=True):
    """A generator seeded inside the function: the same maps dropped on every call."""
    return sd_rand_nc11(x, p, torch.Generator().manual_seed(7), training)


def sd_torch_dropout2d(x, p, generator, training=True):
    """torch's F.dropout2d: right, but from torch's global random state (no generator)."""
    return F.dropout2d(x, p, training)


def sd_in_place(x, p, generator, training=True):
    """x multiplied in place and returned: the caller's x is changed."""
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape[:2] + (1, 1), generator=generator) >= p
    return x.mul_(keep / (1 - p))


def sd_returns_none(x, p, generator, training=True):
    torch.rand(x.shape[:2], generator=generator)


# -- dropblock_gamma ------------------------------------------------------------------------------------

def dg_no_valid_factor(p, block_size, height, width):
    """p / b^2: the valid-region factor HW / ((H-b+1)(W-b+1)) left out."""
    return p / block_size**2


def dg_equals_p(p, block_size, height, width):
    """gamma = p: a seed rate as if every seed dropped one position."""
    return float(p)


def dg_block_not_squared(p, block_size, height, width):
    """block_size instead of block_size**2 in the denominator."""
    return p * height * width / (block_size * (height - block_size + 1) * (width - block_size + 1))


def dg_square_map(p, block_size, height, width):
    """The square-map formula (the paper's feat_size): height used for width too."""
    return p * height**2 / (block_size**2 * (height - block_size + 1) ** 2)


def dg_no_plus_one(p, block_size, height, width):
    """(H - b)(W - b) valid centres instead of (H - b + 1)(W - b + 1)."""
    return p * height * width / (block_size**2 * (height - block_size) * (width - block_size))


def dg_inverted_valid(p, block_size, height, width):
    """The valid-region factor inverted: p / b^2 * (H-b+1)(W-b+1) / (HW)."""
    return p / block_size**2 * (height - block_size + 1) * (width - block_size + 1) / (height * width)


def dg_keep_prob(p, block_size, height, width):
    """1 - p (the keep probability) where the drop probability belongs."""
    return dg_formula(1 - p, block_size, height, width)


def dg_integer_division(p, block_size, height, width):
    """// instead of /: the rate floored to 0."""
    return p * height * width // (block_size**2 * (height - block_size + 1) * (width - block_size + 1))


def dg_as_array(p, block_size, height, width):
    """The right number in a (1,) array instead of a float."""
    return np.array([dg_formula(p, block_size, height, width)])


def dg_returns_none(p, block_size, height, width):
    dg_formula(p, block_size, height, width)


# -- dropblock --------------------------------------------------------------------------------------------

def _db(x, p, block_size, generator, training=True, *, gamma=None, seeds_anywhere=False, normalise="whole",
        mask_shape=None, validate=True, guard=True, anchor="centre"):
    """DropBlock with one mistake switched on (the keywords name it)."""
    n, c, h, w = x.shape
    if validate and (block_size % 2 == 0 or block_size > min(h, w)):
        raise ValueError("block_size must be odd and at most min(H, W)")
    if not training or p == 0:
        return x
    b, r = block_size, block_size // 2
    g = dg_formula(p, b, h, w) if gamma is None else gamma(p, b, h, w)
    shape = mask_shape(x.shape) if mask_shape else x.shape
    seeds = (torch.rand(shape, generator=generator) < g).to(x.dtype)
    if not seeds_anywhere:
        valid = torch.zeros(h, w, dtype=x.dtype)
        valid[r:h - r, r:w - r] = 1
        seeds = seeds * valid
    if anchor == "centre":
        dropped = F.max_pool2d(seeds, b, stride=1, padding=r)
    else:                                         # the square [i, i + b) below and right of the seed
        dropped = F.max_pool2d(F.pad(seeds, (b - 1, 0, b - 1, 0)), b, stride=1)
    mask = (1 - dropped).expand(x.shape)
    if normalise == "whole":
        total = mask.sum()
        if guard and total == 0:
            return torch.zeros_like(x)
        return x * mask * (mask.numel() / total)
    if normalise == "keep":
        return x * mask / (1 - p)
    if normalise == "per map":
        return x * mask * (h * w) / mask.sum(dim=(2, 3), keepdim=True).clamp(min=1)
    return x * mask


def db_no_normalisation(x, p, block_size, generator, training=True):
    """Blocks right, the survivors not rescaled."""
    return _db(x, p, block_size, generator, training, normalise="none")


def db_normalise_keep(x, p, block_size, generator, training=True):
    """Survivors divided by 1-p (element dropout's factor) instead of the kept fraction."""
    return _db(x, p, block_size, generator, training, normalise="keep")


def db_normalise_per_map(x, p, block_size, generator, training=True):
    """Each map rescaled by its own kept fraction instead of the whole tensor's."""
    return _db(x, p, block_size, generator, training, normalise="per map")


def db_gamma_is_p(x, p, block_size, generator, training=True):
    """Seeds with probability p: every seed drops a whole block, so far too much is dropped."""
    return _db(x, p, block_size, generator, training, gamma=lambda p, b, h, w: p)


def db_no_valid_factor(x, p, block_size, generator, training=True):
    """gamma = p / b^2 without the valid-region factor: too few blocks."""
    return _db(x, p, block_size, generator, training, gamma=lambda p, b, h, w: p / b**2)


def db_even_blocks_accepted(x, p, block_size, generator, training=True):
    """No check of block_size: an even or too large block is not refused with ValueError."""
    return _db(x, p, block_size, generator, training, validate=False)


def db_blocks_leave_map(x, p, block_size, generator, training=True):
    """Seeds anywhere on the map: blocks near the border stick out and are cut off."""
    return _db(x, p, block_size, generator, training, seeds_anywhere=True)


def db_top_left_anchor(x, p, block_size, generator, training=True):
    """Seeds at the valid centres but each square drawn below and right of its seed."""
    return _db(x, p, block_size, generator, training, anchor="corner")


def db_shared_channels(x, p, block_size, generator, training=True):
    """One mask (N, 1, H, W) shared by all channels of an example."""
    return _db(x, p, block_size, generator, training, mask_shape=lambda s: (s[0], 1, s[2], s[3]))


def db_shared_batch(x, p, block_size, generator, training=True):
    """One mask (1, C, H, W) shared by every example of the batch."""
    return _db(x, p, block_size, generator, training, mask_shape=lambda s: (1, s[1], s[2], s[3]))


def db_nan_when_all_dropped(x, p, block_size, generator, training=True):
    """No guard for a tensor with nothing kept: 0 * (numel / 0) gives NaN."""
    return _db(x, p, block_size, generator, training, guard=False)


def db_drops_in_eval(x, p, block_size, generator, training=True):
    """training is ignored: blocks are dropped in evaluation mode too."""
    return db_maxpool_valid(x, p, block_size, generator, True)


def db_fixed_seed(x, p, block_size, generator, training=True):
    """A generator seeded inside the function: the same blocks on every call."""
    return db_maxpool_valid(x, p, block_size, torch.Generator().manual_seed(3), training)


def db_global_rng(x, p, block_size, generator, training=True):
    """torch.rand without generator=: torch's global random state."""
    return _db(x, p, block_size, None, training)


def db_radius_block(x, p, block_size, generator, training=True):
    """block_size used as the radius: squares of side 2 * block_size + 1."""
    n, c, h, w = x.shape
    if block_size % 2 == 0 or block_size > min(h, w):
        raise ValueError("block_size must be odd and at most min(H, W)")
    if not training or p == 0:
        return x
    r = block_size
    seeds = (torch.rand(x.shape, generator=generator) < dg_formula(p, block_size, h, w)).to(x.dtype)
    valid = torch.zeros(h, w, dtype=x.dtype)
    valid[r:max(h - r, r), r:max(w - r, r)] = 1
    mask = 1 - F.max_pool2d(seeds * valid, 2 * r + 1, stride=1, padding=r)
    total = mask.sum()
    return torch.zeros_like(x) if total == 0 else x * mask * (mask.numel() / total)


def db_returns_none(x, p, block_size, generator, training=True):
    torch.rand(x.shape, generator=generator)


# -- drop_path ----------------------------------------------------------------------------------------------

def dp_elementwise(x, p, generator, training=True, mode="row"):
    """One coin per entry: element dropout, not a whole path."""
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape, generator=generator) >= p) / (1 - p)


def dp_no_rescale(x, p, generator, training=True, mode="row"):
    """Paths dropped but the survivors not divided by 1-p."""
    if not training or p == 0:
        return x
    shape = (x.shape[0],) + (1,) * (x.dim() - 1) if mode == "row" else (1,) * x.dim()
    return x * (torch.rand(shape, generator=generator) >= p)


def dp_batch_in_row_mode(x, p, generator, training=True, mode="row"):
    """One coin for the whole batch whatever the mode: row mode behaves as batch mode."""
    return dp_rand_shape(x, p, generator, training, "batch")


def dp_ignores_mode(x, p, generator, training=True, mode="row"):
    """One coin per row whatever the mode: batch mode behaves as row mode."""
    return dp_rand_shape(x, p, generator, training, "row")


def dp_modes_swapped(x, p, generator, training=True, mode="row"):
    """"row" and "batch" swapped."""
    return dp_rand_shape(x, p, generator, training, "batch" if mode == "row" else "row")


def dp_mask_shape_n(x, p, generator, training=True, mode="row"):
    """A row mask of shape (N,): it broadcasts against the LAST dim (or fails)."""
    if not training or p == 0:
        return x
    shape = (x.shape[0],) if mode == "row" else (1,)
    return x * (torch.rand(shape, generator=generator) >= p) / (1 - p)


def dp_per_feature(x, p, generator, training=True, mode="row"):
    """One coin per feature (1, D, ...) shared by the batch, instead of one per row."""
    if not training or p == 0:
        return x
    shape = (1,) + tuple(x.shape[1:]) if mode == "row" else (1,) * x.dim()
    return x * (torch.rand(shape, generator=generator) >= p) / (1 - p)


def dp_p_is_keep(x, p, generator, training=True, mode="row"):
    """p read as the keep probability: paths kept with probability p, scaled by 1/p."""
    if not training or p == 0:
        return x
    shape = (x.shape[0],) + (1,) * (x.dim() - 1) if mode == "row" else (1,) * x.dim()
    return x * (torch.rand(shape, generator=generator) < p) / p


def dp_drops_in_eval(x, p, generator, training=True, mode="row"):
    """training is ignored: paths are dropped in evaluation mode too."""
    return dp_rand_shape(x, p, generator, True, mode)


def dp_fixed_seed(x, p, generator, training=True, mode="row"):
    """A generator seeded inside the function: the same paths dropped on every call."""
    return dp_rand_shape(x, p, torch.Generator().manual_seed(11), training, mode)


def dp_global_rng(x, p, generator, training=True, mode="row"):
    """torch.rand without generator=: torch's global random state."""
    if not training or p == 0:
        return x
    shape = (x.shape[0],) + (1,) * (x.dim() - 1) if mode == "row" else (1,) * x.dim()
    return x * (torch.rand(shape) >= p) / (1 - p)


def dp_in_place(x, p, generator, training=True, mode="row"):
    """x multiplied in place and returned: the caller's x is changed."""
    if not training or p == 0:
        return x
    shape = (x.shape[0],) + (1,) * (x.dim() - 1) if mode == "row" else (1,) * x.dim()
    return x.mul_((torch.rand(shape, generator=generator) >= p) / (1 - p))


def dp_returns_none(x, p, generator, training=True, mode="row"):
    torch.rand(x.shape[0], generator=generator)


# -- cutout ------------------------------------------------------------------------------------------------------

def _holes(images, size, cy, cx, lo=None):
    """The clipped squares with centres (cy, cx): rows cy - lo .. cy - lo + size - 1."""
    n, _, h, w = images.shape
    lo = size // 2 if lo is None else lo
    top, left = cy - lo, cx - lo
    rows, cols = torch.arange(h), torch.arange(w)
    in_r = (rows[None] >= top[:, None]) & (rows[None] < top[:, None] + size)
    in_c = (cols[None] >= left[:, None]) & (cols[None] < left[:, None] + size)
    return (in_r[:, :, None] & in_c[:, None, :])[:, None]


def co_modifies_input(images, size, generator):
    """The squares written into the caller's images (masked_fill_) and those returned."""
    n, _, h, w = images.shape
    cy, cx = torch.randint(h, (n,), generator=generator), torch.randint(w, (n,), generator=generator)
    return images.masked_fill_(_holes(images, size, cy, cx), 0.0)


def co_same_square(images, size, generator):
    """One centre drawn per call: every image gets the same square."""
    n, _, h, w = images.shape
    cy, cx = torch.randint(h, (1,), generator=generator), torch.randint(w, (1,), generator=generator)
    return images.masked_fill(_holes(images, size, cy.expand(n), cx.expand(n)), 0.0)


def co_shifted_inside(images, size, generator):
    """Squares near the border shifted inside instead of clipped: always size x size."""
    n, _, h, w = images.shape
    cy, cx = torch.randint(h, (n,), generator=generator), torch.randint(w, (n,), generator=generator)
    top = (cy - size // 2).clamp(0, h - size)
    left = (cx - size // 2).clamp(0, w - size)
    return images.masked_fill(_holes(images, size, top + size // 2, left + size // 2), 0.0)


def co_centre_where_fits(images, size, generator):
    """Centres drawn only where the whole square fits: no square is ever clipped."""
    n, _, h, w = images.shape
    lo = size // 2
    cy = torch.randint(lo, h - size + lo + 1, (n,), generator=generator)
    cx = torch.randint(lo, w - size + lo + 1, (n,), generator=generator)
    return images.masked_fill(_holes(images, size, cy, cx), 0.0)


def co_top_left_corner(images, size, generator):
    """The drawn pixel used as the square's top-left corner, not its centre."""
    n, _, h, w = images.shape
    cy, cx = torch.randint(h, (n,), generator=generator), torch.randint(w, (n,), generator=generator)
    return images.masked_fill(_holes(images, size, cy, cx, lo=0), 0.0)


def co_square_per_channel(images, size, generator):
    """A square for every (image, channel) instead of one shared by the image's channels."""
    n, c, h, w = images.shape
    flat = images.reshape(n * c, 1, h, w)
    return co_masked_fill(flat, size, generator).reshape(n, c, h, w)


def co_official_odd(images, size, generator):
    """DeVries and Taylor's exact slices clip(y - size//2) : clip(y + size//2): one row and
    column short for an odd size."""
    n, _, h, w = images.shape
    out = images.clone()
    cy, cx = torch.randint(h, (n,), generator=generator), torch.randint(w, (n,), generator=generator)
    for i in range(n):
        y, x = int(cy[i]), int(cx[i])
        out[i, :, max(y - size // 2, 0):min(y + size // 2, h), max(x - size // 2, 0):min(x + size // 2, w)] = 0
    return out


def co_size_plus_one(images, size, generator):
    """Rows cy - size//2 .. cy + size//2 inclusive: size + 1 pixels for an even size."""
    n, _, h, w = images.shape
    cy, cx = torch.randint(h, (n,), generator=generator), torch.randint(w, (n,), generator=generator)
    side = 2 * (size // 2) + 1
    return images.masked_fill(_holes(images, side, cy, cx, lo=size // 2), 0.0)


def co_rescaled(images, size, generator):
    """The survivors rescaled as in dropout: Cutout is an augmentation and rescales nothing."""
    out = co_masked_fill(images, size, generator)
    h, w = images.shape[-2:]
    return out / (1 - size * size / (h * w))


def co_fixed_seed(images, size, generator):
    """A generator seeded inside the function: the same squares on every call."""
    return co_masked_fill(images, size, torch.Generator().manual_seed(5))


def co_global_rng(images, size, generator):
    """torch.randint without generator=: torch's global random state."""
    n, _, h, w = images.shape
    cy, cx = torch.randint(h, (n,)), torch.randint(w, (n,))
    return images.masked_fill(_holes(images, size, cy, cx), 0.0)


def co_height_width_swapped(images, size, generator):
    """The column of the centre drawn from range(H) and the row from range(W)."""
    n, _, h, w = images.shape
    cy, cx = torch.randint(w, (n,), generator=generator), torch.randint(h, (n,), generator=generator)
    return images.masked_fill(_holes(images, size, cy, cx), 0.0)


def co_returns_none(images, size, generator):
    torch.randint(images.shape[2], (images.shape[0],), generator=generator)


# -- multi_sample_dropout_logits --------------------------------------------------------------------------------------

def ms_one_mask(features, head, p, n_samples, generator):
    """One mask drawn and used for every sample: n_samples identical copies."""
    keep = torch.rand(features.shape, generator=generator) >= p
    out = head(features * keep / (1 - p))
    return out.unsqueeze(0).expand(n_samples, *out.shape)


def ms_no_rescale(features, head, p, n_samples, generator):
    """Masks applied but not divided by 1-p."""
    keep = torch.rand((n_samples, *features.shape), generator=generator) >= p
    return head(features * keep)


def ms_p_is_keep(features, head, p, n_samples, generator):
    """p read as the keep probability: features kept with probability p, scaled by 1/p."""
    keep = torch.rand((n_samples, *features.shape), generator=generator) < p
    return head(features * keep / p)


def ms_mean_of_samples(features, head, p, n_samples, generator):
    """The mean over the samples (N, C) returned instead of every sample."""
    return ms_batched(features, head, p, n_samples, generator).mean(dim=0)


def ms_dropout_after_head(features, head, p, n_samples, generator):
    """The masks applied to the logits instead of the features."""
    logits = head(features)
    keep = torch.rand((n_samples, *logits.shape), generator=generator) >= p
    return logits * keep / (1 - p)


def ms_mask_shared_by_batch(features, head, p, n_samples, generator):
    """One feature mask per sample (n_samples, 1, D), shared by every example."""
    keep = torch.rand((n_samples, 1, features.shape[1]), generator=generator) >= p
    return head(features * keep / (1 - p))


def ms_first_sample_clean(features, head, p, n_samples, generator):
    """Sample 0 without dropout (the 'clean' copy), the others masked."""
    out = ms_batched(features, head, p, n_samples, generator)
    return torch.cat([head(features).unsqueeze(0), out[1:]])


def ms_samples_last(features, head, p, n_samples, generator):
    """Stacked as (N, n_samples, C) instead of (n_samples, N, C)."""
    return ms_batched(features, head, p, n_samples, generator).transpose(0, 1)


def ms_fixed_seed(features, head, p, n_samples, generator):
    """A generator seeded inside the function: the same masks on every call."""
    return ms_batched(features, head, p, n_samples, torch.Generator().manual_seed(9))


def ms_global_dropout(features, head, p, n_samples, generator):
    """F.dropout for each sample: right, but from torch's global random state."""
    return torch.stack([head(F.dropout(features, p)) for _ in range(n_samples)])


def ms_in_place(features, head, p, n_samples, generator):
    """The first mask written into the caller's features in place."""
    keep = torch.rand((n_samples, *features.shape), generator=generator) >= p
    out = head(features * keep / (1 - p))
    features.mul_(keep[0] / (1 - p))
    return out


def ms_returns_none(features, head, p, n_samples, generator):
    torch.rand((n_samples, *features.shape), generator=generator)


MUTANTS = {
    "dropconnect_linear": [
        ("drops activations", dc_drops_activations, 0.25),      # element dropout on x, per example: not DropConnect
        ("drops inputs (shared)", dc_drops_inputs_shared, 0.25),  # whole columns of weight: a unit, not a weight
        ("drops outputs", dc_drops_outputs, 0.25),              # whole rows of weight: dropout on the layer's output
        ("drops the bias", dc_drops_bias, 0.55),                # weights right, the bias masked too
        ("bias rescaled", dc_bias_rescaled, 0.55),              # weights right, the bias divided by 1-p
        ("mask per example", dc_mask_per_example, 0.25),        # not ONE mask per call shared by the batch
        ("no rescaling", dc_no_rescale, 0.25),                  # the central scaling is wrong
        ("divides by p", dc_divides_by_p, 0.25),                # p read as keep in the scale
        ("p is keep", dc_p_is_keep, 0.25),                      # keeps with probability p, scales by 1/p
        ("scaled in eval", dc_scaled_in_eval, 0.6),             # standard dropout's test step after inverted training
        ("drops in eval", dc_drops_in_eval, 0.6),               # half of the layer wrong
        ("seed fixed inside", dc_fixed_seed, 0.5),              # the same mask every call: no noise at all
        ("global random state", dc_global_rng, 0.9),            # right, not a function of generator
        ("weight changed in place", dc_weight_in_place, (0.9, 0.98)),  # right output, the caller's weight damaged
        ("no gradient", dc_no_grad, (0.95, 0.99)),              # right values, cannot train
        ("returns None", dc_returns_none, 0.0),                 # nothing to grade
    ],
    "gaussian_dropout": [
        ("std p", gd_std_p, 0.25),                              # the variance is the point of the exercise
        ("variance p", gd_var_p, 0.25),
        ("std p/(1-p)", gd_std_ratio, 0.25),
        ("variance (1-p)/p", gd_keep_over_drop, 0.25),          # p read as keep
        ("additive noise", gd_additive, 0.25),                  # x + noise: not multiplicative
        ("noise mean 0", gd_mean_zero, 0.25),                   # x * N(0, v): the expected output is 0
        ("Bernoulli instead", gd_bernoulli, 0.25),              # right moments, not Gaussian: not the exercise
        ("uniform noise", gd_uniform, 0.25),                    # right moments, not Gaussian
        ("noise in eval", gd_noise_in_eval, 0.6),               # half of the layer wrong
        ("eval scaled by 1-p", gd_eval_scaled, 0.6),
        ("seed fixed inside", gd_fixed_seed, 0.5),              # the same noise every call
        ("global random state", gd_global_rng, 0.9),            # right, not a function of generator
        ("one noise per row", gd_per_row, 0.25),                # not elementwise: the noise is not N(1, v) per entry
        ("x changed in place", gd_in_place, (0.9, 0.98)),       # right output, the caller's x changed
        ("float64 result", gd_float64_result, (0.9, 0.98)),     # right values, dtype changed
        ("returns None", gd_returns_none, 0.0),
    ],
    "spatial_dropout": [
        ("per pixel", sd_per_pixel, 0.25),                      # element dropout: the whole point missed
        ("rows, not maps", sd_rows, 0.25),                      # dropout2d's 3-d pitfall
        ("one mask for the batch", sd_shared_batch, 0.5),       # maps right, every example drops the same ones
        ("one coin per example", sd_per_sample, 0.5),           # maps right, all channels of an example together
        ("no rescaling", sd_no_rescale, 0.25),
        ("divides by p", sd_divides_by_p, 0.25),
        ("p is keep", sd_p_is_keep, 0.25),
        ("drops in eval", sd_drops_in_eval, 0.6),
        ("seed fixed inside", sd_fixed_seed, 0.5),
        ("F.dropout2d (global state)", sd_torch_dropout2d, 0.9),  # right, not a function of generator
        ("x changed in place", sd_in_place, (0.9, 0.98)),
        ("returns None", sd_returns_none, 0.0),
    ],
    "dropblock_gamma": [
        ("no valid-region factor", dg_no_valid_factor, 0.25),
        ("gamma = p", dg_equals_p, 0.25),
        ("block_size not squared", dg_block_not_squared, 0.25),
        ("square-map formula", dg_square_map, 0.6),             # right on square maps, wrong when H != W
        ("H - b, not H - b + 1", dg_no_plus_one, 0.25),
        ("valid-region factor inverted", dg_inverted_valid, 0.25),
        ("keep probability", dg_keep_prob, 0.25),
        ("integer division", dg_integer_division, 0.25),
        ("a (1,) array", dg_as_array, (0.85, 0.95)),            # right number, wrong type
        ("returns None", dg_returns_none, 0.0),
    ],
    "dropblock": [
        ("no normalisation", db_no_normalisation, 0.45),        # blocks and rate right, the rescaling missing
        ("normalised by 1-p", db_normalise_keep, 0.45),
        ("normalised per map", db_normalise_per_map, 0.45),
        ("gamma = p", db_gamma_is_p, 0.45),                     # blocks right, far too many
        ("no valid-region factor", db_no_valid_factor, 0.45),   # blocks right, too few
        ("even blocks accepted", db_even_blocks_accepted, (0.9, 0.99)),  # no ValueError: a peripheral slip
        ("blocks leave the map", db_blocks_leave_map, 0.45),    # seeds anywhere, squares cut at the border
        ("squares below-right of the seed", db_top_left_anchor, 0.45),
        ("one mask for all channels", db_shared_channels, 0.45),
        ("one mask for the batch", db_shared_batch, 0.45),
        ("NaN when all dropped", db_nan_when_all_dropped, (0.9, 0.99)),  # the edge case only
        ("drops in eval", db_drops_in_eval, 0.6),
        ("seed fixed inside", db_fixed_seed, 0.5),
        ("global random state", db_global_rng, 0.9),
        ("block_size as radius", db_radius_block, 0.45),        # squares of the wrong size
        ("returns None", db_returns_none, 0.0),
    ],
    "drop_path": [
        ("elementwise", dp_elementwise, 0.25),                  # element dropout, not a path
        ("no rescaling", dp_no_rescale, 0.25),
        ("batch mode in row mode", dp_batch_in_row_mode, 0.5),  # one coin for every example: row mode missing
        ("mode ignored (always row)", dp_ignores_mode, 0.5),    # batch mode missing
        ("modes swapped", dp_modes_swapped, 0.3),          # row calls look like batch mode: rows whole, 12/41
        ("mask of shape (N,)", dp_mask_shape_n, 0.25),          # broadcasts against the last dim
        ("one coin per feature", dp_per_feature, 0.25),
        ("p is keep", dp_p_is_keep, 0.25),
        ("drops in eval", dp_drops_in_eval, 0.6),
        ("seed fixed inside", dp_fixed_seed, 0.5),
        ("global random state", dp_global_rng, 0.9),
        ("x changed in place", dp_in_place, (0.9, 0.98)),
        ("returns None", dp_returns_none, 0.0),
    ],
    "cutout": [
        ("input modified", co_modifies_input, (0.85, 0.95)),    # right squares, the caller's images zeroed too
        ("same square for every image", co_same_square, 0.5),
        ("shifted inside", co_shifted_inside, 0.6),             # squares right inside, never clipped
        ("centre only where it fits", co_centre_where_fits, 0.6),
        ("drawn pixel is the corner", co_top_left_corner, 0.25),  # squares misplaced: the central check fails
        ("a square per channel", co_square_per_channel, 0.25),
        ("official slices, odd size", co_official_odd, 0.25),   # (size-1) x (size-1) squares
        ("size + 1 for even size", co_size_plus_one, 0.25),
        ("rescaled", co_rescaled, 0.25),                        # Cutout does not rescale
        ("seed fixed inside", co_fixed_seed, 0.5),
        ("global random state", co_global_rng, 0.9),
        ("H and W swapped", co_height_width_swapped, 0.25),  # centres outside rectangular images
        ("returns None", co_returns_none, 0.0),
    ],
    "multi_sample_dropout_logits": [
        ("one mask for all samples", ms_one_mask, 0.5),         # n_samples identical copies: the method missing
        ("features changed in place", ms_in_place, (0.85, 0.98)),  # right logits, the caller's features changed
        ("no rescaling", ms_no_rescale, 0.25),
        ("p is keep", ms_p_is_keep, 0.25),
        ("mean of samples", ms_mean_of_samples, 0.25),          # (N, C) instead of (n_samples, N, C)
        ("dropout after the head", ms_dropout_after_head, 0.25),
        ("mask shared by the batch", ms_mask_shared_by_batch, 0.5),
        ("first sample without dropout", ms_first_sample_clean, 0.25),
        ("samples last", ms_samples_last, 0.25),
        ("seed fixed inside", ms_fixed_seed, 0.5),
        ("F.dropout (global state)", ms_global_dropout, 0.9),
        ("returns None", ms_returns_none, 0.0),
    ],
}
