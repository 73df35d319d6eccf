"""Hidden reference for chapter 07, the dropout family. Never shipped to students.

Every function follows ../shared/COURSE_SPEC.md section 07 exactly and draws all of its
randomness from ``generator``. Where the spec leaves a choice open (how a mask is drawn,
its dtype, whether ``training=False`` returns ``x`` itself or a copy) the checks accept
every reasonable choice; the reference makes one of them. Arguments the probes never
pass (p outside its range, an unknown ``mode``) raise ValueError here, as the course's
conventions ask, but are not graded (the spec does not ask for it).
"""
import math

import torch
import torch.nn.functional as F


def _check_p(p, upper_inclusive=False):
    ok = 0.0 <= p <= 1.0 if upper_inclusive else 0.0 <= p < 1.0
    if not ok:
        raise ValueError(f"p must be in [0, 1{']' if upper_inclusive else ')'}, got {p}")


def dropconnect_linear(x, weight, bias, p, generator, training=True):
    """x @ (weight * mask / (1 - p)).T + bias with ONE 0/1 mask of weight's shape (out, in)
    per call, shared by every example; the bias is never dropped."""
    _check_p(p)
    if not training:
        return F.linear(x, weight, bias)
    keep = torch.rand(weight.shape, generator=generator, device=weight.device) >= p
    return F.linear(x, weight * keep / (1.0 - p), bias)


def gaussian_dropout(x, p, generator, training=True):
    """x * eps with eps ~ N(1, p / (1 - p)) drawn independently for every entry."""
    _check_p(p)
    if not training or p == 0:
        return x
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x * (1.0 + math.sqrt(p / (1.0 - p)) * eps)


def spatial_dropout(x, p, generator, training=True):
    """x (N, C, H, W): one keep/drop decision per (n, c) feature map, inverted scaling."""
    _check_p(p, upper_inclusive=True)
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    n, c = x.shape[:2]
    keep = torch.rand((n, c) + (1,) * (x.dim() - 2), generator=generator, device=x.device) >= p
    return x * keep / (1.0 - p)


def dropblock_gamma(p, block_size, height, width):
    """The seed rate that makes blocks (overlaps ignored) cover a fraction p of the map."""
    b = block_size
    return float(p * height * width / (b * b * (height - b + 1) * (width - b + 1)))


def dropblock(x, p, block_size, generator, training=True):
    """x (N, C, H, W): an independent block mask per (n, c) map, seeds only where the
    block_size x block_size square centred on them lies inside the map, the survivors
    rescaled by numel / (number kept) over the whole tensor."""
    _check_p(p, upper_inclusive=True)
    n, c, h, w = x.shape
    if block_size < 1 or block_size % 2 == 0:
        raise ValueError(f"block_size must be a positive odd number, got {block_size}")
    if block_size > min(h, w):
        raise ValueError(f"block_size {block_size} does not fit in a {h} x {w} feature map")
    if not training or p == 0:
        return x
    r = block_size // 2
    gamma = dropblock_gamma(p, block_size, h, w)
    valid = torch.zeros(h, w, dtype=torch.bool, device=x.device)
    valid[r:h - r, r:w - r] = True
    seeds = (torch.rand(x.shape, generator=generator, device=x.device) < gamma) & valid
    dropped = F.max_pool2d(seeds.to(x.dtype), block_size, stride=1, padding=r)
    mask = 1.0 - dropped
    kept = mask.sum()
    if kept == 0:
        return torch.zeros_like(x)
    return x * mask * (mask.numel() / kept)


def drop_path(x, p, generator, training=True, mode="row"):
    """Inverted DropPath: one keep/drop per sample (first dim) in "row" mode, one for the
    whole tensor in "batch" mode."""
    _check_p(p, upper_inclusive=True)
    if mode not in ("row", "batch"):
        raise ValueError(f'mode must be "row" or "batch", got {mode!r}')
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    shape = (x.shape[0],) + (1,) * (x.dim() - 1) if mode == "row" else (1,) * x.dim()
    keep = torch.rand(shape, generator=generator, device=x.device) >= p
    return x * keep / (1.0 - p)


def cutout(images, size, generator):
    """images (N, C, H, W): per image one size x size square of zeros shared by its
    channels, centre uniform over all H*W pixels, clipped at the border. For an even size
    the square spans rows cy - size//2 .. cy + size//2 - 1 (DeVries and Taylor's code)."""
    n, _, h, w = images.shape
    cy = torch.randint(0, h, (n,), generator=generator, device=images.device)
    cx = torch.randint(0, w, (n,), generator=generator, device=images.device)
    top, left = cy - size // 2, cx - size // 2
    rows = torch.arange(h, device=images.device)
    cols = torch.arange(w, device=images.device)
    in_rows = (rows[None, :] >= top[:, None]) & (rows[None, :] < top[:, None] + size)
    in_cols = (cols[None, :] >= left[:, None]) & (cols[None, :] < left[:, None] + size)
    hole = in_rows[:, :, None] & in_cols[:, None, :]
    return images.masked_fill(hole[:, None], 0)


def multi_sample_dropout_logits(features, head, p, n_samples, generator):
    """(n_samples, N, C): head applied to n_samples copies of features (N, D), each copy
    with its own inverted-dropout mask."""
    _check_p(p)
    shape = (n_samples,) + tuple(features.shape)
    keep = torch.rand(shape, generator=generator, device=features.device) >= p
    return head(features.unsqueeze(0) * keep / (1.0 - p))
