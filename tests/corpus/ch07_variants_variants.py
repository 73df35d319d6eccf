"""Correct implementations of chapter 07's graded functions, written the many ways
students write them: masks drawn with torch.rand or torch.bernoulli, bool or float
masks, the scaling applied to the mask, the weights or the result, loops or batched
code, float32 noise for float64 inputs, a copy or x itself when nothing is dropped.
Every one must earn full marks under every seed (tests/test_corpora.py)."""
import math

import torch
import torch.nn.functional as F


# -- dropconnect_linear --------------------------------------------------------------------------

def dc_bool_mask_linear(x, weight, bias, p, generator, training=True):
    """A bool mask from torch.rand >= p, the rescaled weights through F.linear."""
    if not training:
        return F.linear(x, weight, bias)
    mask = torch.rand(weight.shape, generator=generator) >= p
    return F.linear(x, weight * mask / (1 - p), bias)


def dc_bernoulli_scale_after(x, weight, bias, p, generator, training=True):
    """A float mask from torch.bernoulli; 1/(1-p) applied after the matrix product."""
    if not training:
        return x @ weight.T + bias
    mask = torch.bernoulli(torch.full(weight.shape, 1 - p, dtype=weight.dtype), generator=generator)
    return (x @ (weight * mask).T) / (1 - p) + bias


def dc_where_addmm(x, weight, bias, p, generator, training=True):
    """torch.where on a float64 uniform draw, then addmm (bias + x @ W_eff.T)."""
    if not training:
        return torch.addmm(bias, x, weight.t())
    u = torch.rand(weight.shape, generator=generator, dtype=torch.float64)
    w_eff = torch.where(u < 1 - p, weight / (1 - p), torch.zeros_like(weight))
    return torch.addmm(bias, x, w_eff.t())


def dc_inplace_on_a_copy(x, weight, bias, p, generator, training=True):
    """In-place operations on a clone of the weights (the caller's weight is untouched)."""
    w = weight.clone()
    if training:
        keep = (torch.rand(w.shape, generator=generator) < 1 - p).to(w.dtype)
        w = w * keep
        w = w / (1 - p)
    return torch.einsum("ni,oi->no", x, w) + bias


# -- gaussian_dropout ------------------------------------------------------------------------------

def gd_randn(x, p, generator, training=True):
    """1 + sqrt(p/(1-p)) * randn, x returned itself when nothing is drawn."""
    if not training or p == 0:
        return x
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x * (1 + math.sqrt(p / (1 - p)) * noise)


def gd_torch_normal(x, p, generator, training=True):
    """torch.normal with a mean tensor of ones; a copy of x in evaluation mode."""
    if not training:
        return x.clone()
    std = (p / (1 - p)) ** 0.5
    eps = torch.normal(torch.ones_like(x), std, generator=generator)
    return x * eps


def gd_normal_inplace_float32(x, p, generator, training=True):
    """normal_ on a float32 buffer, cast to x's dtype; the noise added as x + x * sigma * z."""
    if not training:
        return x
    z = torch.empty(x.shape, dtype=torch.float32).normal_(0.0, 1.0, generator=generator).to(x.dtype)
    sigma = math.sqrt(p / (1 - p))
    return x + x * sigma * z


def gd_float64_noise_cast(x, p, generator, training=True):
    """float64 noise, the result cast back to x's dtype."""
    if training and p > 0:
        eps = 1.0 + torch.randn(x.shape, generator=generator, dtype=torch.float64) * math.sqrt(p / (1.0 - p))
        return (x.double() * eps).to(x.dtype)
    return x


# -- spatial_dropout -------------------------------------------------------------------------------

def sd_rand_nc11(x, p, generator, training=True):
    """One uniform per (n, c), compared with p, broadcast as (N, C, 1, 1)."""
    if not training:
        return x
    keep = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=generator) >= p
    return x * keep / (1 - p)


def sd_bernoulli_view(x, p, generator, training=True):
    """torch.bernoulli on an (N, C) table of keep probabilities, rescaled mask."""
    if not training or p == 0:
        return x.clone()
    n, c = x.shape[:2]
    keep = torch.bernoulli(torch.full((n, c), 1 - p, dtype=x.dtype), generator=generator)
    return x * (keep / (1 - p)).view(n, c, 1, 1)


def sd_where_expand(x, p, generator, training=True):
    """torch.where with the (N, C) mask expanded to x's shape."""
    if not training:
        return x
    n, c, h, w = x.shape
    keep = (torch.rand(n, c, generator=generator, dtype=torch.float64) < 1 - p)
    keep = keep[:, :, None, None].expand(n, c, h, w)
    return torch.where(keep, x / (1 - p), torch.zeros_like(x))


def sd_loop(x, p, generator, training=True):
    """A loop over the examples, one row of coins per example (slow but right)."""
    out = x.clone()
    if training:
        for n in range(x.shape[0]):
            coins = torch.rand(x.shape[1], generator=generator)
            out[n] = x[n] * (coins >= p).to(x.dtype)[:, None, None] / (1 - p)
    return out


# -- dropblock_gamma ---------------------------------------------------------------------------------

def dg_formula(p, block_size, height, width):
    return p * height * width / (block_size**2 * (height - block_size + 1) * (width - block_size + 1))


def dg_keep_prob_form(p, block_size, height, width):
    """Ghiasi et al.'s form: (1 - keep_prob) / b^2 * HW / ((H - b + 1)(W - b + 1))."""
    keep_prob = 1.0 - p
    return (1.0 - keep_prob) / block_size**2 * (height * width) / ((height - block_size + 1) * (width - block_size + 1))


def dg_valid_region_first(p, block_size, height, width):
    """The valid-region fraction first; returns a numpy float."""
    import numpy as np

    valid = np.float64((height - block_size + 1) * (width - block_size + 1))
    return p / (block_size * block_size) / (valid / (height * width))


def dg_torch_item(p, block_size, height, width):
    """Computed with torch, returned as a Python float with .item()."""
    t = torch.tensor(float(p), dtype=torch.float64)
    return (t * height * width / (block_size**2 * (height - block_size + 1) * (width - block_size + 1))).item()


# -- dropblock ---------------------------------------------------------------------------------------

def _check_block(block_size, h, w):
    if block_size % 2 == 0 or block_size > min(h, w):
        raise ValueError("block_size must be odd and at most min(H, W)")


def db_maxpool_valid(x, p, block_size, generator, training=True):
    """Seeds on the whole map masked to the valid centres, squares by max-pooling."""
    n, c, h, w = x.shape
    _check_block(block_size, h, w)
    if not training or p == 0:
        return x
    r = block_size // 2
    gamma = p * h * w / (block_size**2 * (h - block_size + 1) * (w - block_size + 1))
    valid = torch.zeros(h, w)
    valid[r:h - r, r:w - r] = 1
    seeds = (torch.rand(n, c, h, w, generator=generator) < gamma).float() * valid
    mask = 1 - F.max_pool2d(seeds, block_size, stride=1, padding=r)
    total = mask.sum()
    if total == 0:
        return torch.zeros_like(x)
    return x * mask.to(x.dtype) * (mask.numel() / total)


def db_padded_seed_grid(x, p, block_size, generator, training=True):
    """torchvision's way: seeds on the (H-b+1, W-b+1) grid of valid centres, zero-padded,
    max-pooled, the normaliser with a tiny epsilon (zeros when everything is dropped)."""
    n, c, h, w = x.shape
    if block_size % 2 != 1 or block_size > h or block_size > w:
        raise ValueError(f"bad block_size {block_size}")
    if not training or p == 0.0:
        return x.clone()
    b, r = block_size, block_size // 2
    gamma = (p * h * w) / (b**2 * ((h - b + 1) * (w - b + 1)))
    noise = torch.empty((n, c, h - b + 1, w - b + 1), dtype=x.dtype).bernoulli_(gamma, generator=generator)
    noise = F.pad(noise, [r] * 4, value=0)
    noise = 1 - F.max_pool2d(noise, kernel_size=(b, b), stride=(1, 1), padding=r)
    scale = noise.numel() / (1e-6 + noise.sum())
    return x * noise * scale


def db_shifted_dilation(x, p, block_size, generator, training=True):
    """Top-left anchored squares on seeds drawn for the valid top-left corners
    [0, H-b] x [0, W-b] (the same squares as centred ones), dilated by b*b shifts;
    x / mean(mask) as the normaliser."""
    n, c, h, w = x.shape
    _check_block(block_size, h, w)
    if not training or p == 0:
        return x
    b = block_size
    gamma = p * h * w / (b * b * (h - b + 1) * (w - b + 1))
    corners = torch.rand(n, c, h - b + 1, w - b + 1, generator=generator, dtype=torch.float64) < gamma
    dropped = torch.zeros(n, c, h, w, dtype=torch.bool)
    for di in range(b):
        for dj in range(b):
            dropped[:, :, di:di + h - b + 1, dj:dj + w - b + 1] |= corners
    mask = (~dropped).to(x.dtype)
    kept_fraction = mask.mean()
    if kept_fraction == 0:
        return x * 0
    return x * mask / kept_fraction


def db_conv_count(x, p, block_size, generator, training=True):
    """Seeds counted under each square with a ones kernel (conv2d), > 0 means dropped; the
    checks of block_size inline."""
    h, w = x.shape[-2:]
    if block_size % 2 != 1 or block_size > h or block_size > w:
        raise ValueError(f"block_size must be odd and fit in {h} x {w}, got {block_size}")
    if training and p > 0:
        r = block_size // 2
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype)
        seeds = torch.zeros_like(x)
        inner = (slice(None), slice(None), slice(r, h - r), slice(r, w - r))
        seeds[inner] = (u[inner] < dg_formula(p, block_size, h, w)).to(x.dtype)
        kernel = torch.ones(1, 1, block_size, block_size, dtype=x.dtype)
        covered = F.conv2d(seeds.flatten(0, 1).unsqueeze(1), kernel, padding=r).reshape(x.shape) > 0
        mask = (~covered).to(x.dtype)
        return torch.zeros_like(x) if mask.sum() == 0 else x * mask * mask.numel() / mask.sum()
    return x


# -- drop_path ---------------------------------------------------------------------------------------

def dp_rand_shape(x, p, generator, training=True, mode="row"):
    if not training or p == 0:
        return x
    shape = (x.shape[0],) + (1,) * (x.ndim - 1) if mode == "row" else (1,) * x.ndim
    keep = torch.rand(shape, generator=generator) >= p
    return x * keep / (1 - p)


def dp_timm_bernoulli(x, p, generator, training=True, mode="row"):
    """timm's drop_path: x.new_empty(shape).bernoulli_(keep_prob), then div_(keep_prob)."""
    if p == 0.0 or not training:
        return x
    keep_prob = 1 - p
    shape = (x.shape[0],) + (1,) * (x.ndim - 1) if mode == "row" else (1,) * x.ndim
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob, generator=generator)
    random_tensor.div_(keep_prob)
    return x * random_tensor


def dp_branching(x, p, generator, training=True, mode="row"):
    """Batch mode skips the multiplication: zeros or x / (1 - p); row mode via torch.where."""
    if not training:
        return x.clone()
    if mode == "batch":
        if torch.rand((), generator=generator) < p:
            return torch.zeros_like(x)
        return x / (1 - p)
    keep = torch.rand(x.shape[0], generator=generator, dtype=torch.float64) >= p
    keep = keep.reshape(-1, *([1] * (x.dim() - 1)))
    return torch.where(keep, x / (1 - p), torch.zeros_like(x))


# -- cutout --------------------------------------------------------------------------------------------

def co_masked_fill(images, size, generator):
    n, _, h, w = images.shape
    cy = torch.randint(h, (n,), generator=generator)
    cx = torch.randint(w, (n,), generator=generator)
    rows, cols = torch.arange(h), torch.arange(w)
    in_r = ((rows[None] - cy[:, None] + size // 2) >= 0) & ((rows[None] - cy[:, None] + size // 2) < size)
    in_c = ((cols[None] - cx[:, None] + size // 2) >= 0) & ((cols[None] - cx[:, None] + size // 2) < size)
    hole = (in_r[:, :, None] & in_c[:, None, :])[:, None]
    return images.masked_fill(hole, 0.0)


def co_loop_clone(images, size, generator):
    """DeVries and Taylor's code, per image: clip(y - size//2) : clip(y - size//2 + size)."""
    out = images.clone()
    _, _, h, w = images.shape
    for i in range(images.shape[0]):
        y = int(torch.randint(0, h, (1,), generator=generator))
        x = int(torch.randint(0, w, (1,), generator=generator))
        y1, y2 = max(y - size // 2, 0), min(y - size // 2 + size, h)
        x1, x2 = max(x - size // 2, 0), min(x - size // 2 + size, w)
        out[i, :, y1:y2, x1:x2] = 0
    return out


def co_other_even_centre(images, size, generator):
    """For an even size the other central pixel: rows cy - (size-1)//2 .. cy + size//2
    (the same square for an odd size); centres from torch.rand, a float mask multiplied in."""
    n, _, h, w = images.shape
    cy = (torch.rand(n, generator=generator, dtype=torch.float64) * h).long().clamp(max=h - 1)
    cx = (torch.rand(n, generator=generator, dtype=torch.float64) * w).long().clamp(max=w - 1)
    mask = torch.ones(n, 1, h, w, dtype=images.dtype)
    for i in range(n):
        y1, x1 = int(cy[i]) - (size - 1) // 2, int(cx[i]) - (size - 1) // 2
        mask[i, :, max(y1, 0):max(y1 + size, 0), max(x1, 0):max(x1 + size, 0)] = 0
    return images * mask


# -- multi_sample_dropout_logits --------------------------------------------------------------------------

def ms_batched(features, head, p, n_samples, generator):
    keep = torch.rand((n_samples, *features.shape), generator=generator) >= p
    return head(features * keep / (1 - p))


def ms_loop_stack(features, head, p, n_samples, generator):
    """One head call per sample, each with a bernoulli mask, stacked."""
    outs = []
    for _ in range(n_samples):
        mask = torch.bernoulli(torch.full_like(features, 1 - p), generator=generator)
        outs.append(head(features * mask / (1 - p)))
    return torch.stack(outs)


def ms_repeat_one_call(features, head, p, n_samples, generator):
    """The copies stacked as one (n_samples * N, D) batch, one head call, reshaped."""
    n, d = features.shape
    big = features.repeat(n_samples, 1)
    u = torch.rand(big.shape, generator=generator, dtype=torch.float64)
    scaled = torch.where(u < 1 - p, big / (1 - p), torch.zeros_like(big))
    return head(scaled).reshape(n_samples, n, -1)


VARIANTS = {
    "dropconnect_linear": [
        ("bool mask, F.linear", dc_bool_mask_linear),
        ("bernoulli, scaled after the product", dc_bernoulli_scale_after),
        ("where + addmm", dc_where_addmm),
        ("in place on a copy, einsum", dc_inplace_on_a_copy),
    ],
    "gaussian_dropout": [
        ("randn", gd_randn),
        ("torch.normal", gd_torch_normal),
        ("float32 normal_, x + x*sigma*z", gd_normal_inplace_float32),
        ("float64 noise cast back", gd_float64_noise_cast),
    ],
    "spatial_dropout": [
        ("rand (N,C,1,1)", sd_rand_nc11),
        ("bernoulli view", sd_bernoulli_view),
        ("where expand", sd_where_expand),
        ("loop", sd_loop),
    ],
    "dropblock_gamma": [
        ("formula", dg_formula),
        ("keep_prob form", dg_keep_prob_form),
        ("valid region first (numpy)", dg_valid_region_first),
        ("torch .item()", dg_torch_item),
    ],
    "dropblock": [
        ("max-pool, valid mask", db_maxpool_valid),
        ("padded seed grid (torchvision)", db_padded_seed_grid),
        ("top-left corners, shifts", db_shifted_dilation),
        ("conv2d count", db_conv_count),
    ],
    "drop_path": [
        ("rand shape", dp_rand_shape),
        ("timm bernoulli_", dp_timm_bernoulli),
        ("branching", dp_branching),
    ],
    "cutout": [
        ("masked_fill", co_masked_fill),
        ("loop (official code)", co_loop_clone),
        ("other even centre, rand", co_other_even_centre),
    ],
    "multi_sample_dropout_logits": [
        ("batched", ms_batched),
        ("loop and stack", ms_loop_stack),
        ("repeat, one head call", ms_repeat_one_call),
    ],
}
