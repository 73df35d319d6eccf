"""Probes for chapter 07, the dropout family (see dropout_lab.probes).

Every graded function of the chapter multiplies something by random noise; the probes
choose inputs on which that noise can be read back from the output alone, whichever way
a student draws it:

* inputs are never 0 (|x| >= 0.5, images >= 0.1), so out / x is the noise entry by entry
  and an exact 0 in the output is a dropped entry;
* DropConnect gets a batch whose first rows are the identity matrix and the next one
  zeros: row i of the output is then column i of the masked, rescaled weight matrix plus
  the bias, and the zero row is the bias alone. The remaining random rows must agree
  with that one weight matrix (one mask for the whole batch);
* Multi-Sample Dropout gets an ``nn.Linear`` head whose weight has orthonormal columns,
  so the masked features of every sample are (logits - bias) @ weight.

Stochastic calls get their own ``torch.Generator`` seeded from ``rng``. torch is
imported inside the probes, so importing this module stays cheap.
"""
import functools

import numpy as np

from . import child_seed, probe, same_seed_calls

#: p of the training=False calls: not 0.5, where p and 1 - p coincide in a message.
EVAL_P = 0.2

# -- dropconnect_linear ------------------------------------------------------------------------

#: weight is (DC_OUT, DC_IN); the design batch is the identity (DC_IN rows), a zero row and
#: DC_RANDOM random rows. DC_OUT * DC_IN = 2000 mask entries per call.
DC_IN, DC_OUT, DC_RANDOM = 40, 50, 8
DC_PS = (0.0, 0.2, 0.5, 0.8)
DC_FLOAT32_P = 0.3
DC_GRAD_P = 0.3

# -- gaussian_dropout ------------------------------------------------------------------------------

GD_SHAPE = (100, 200)          # 20 000 noise values per p
GD_PS = (0.2, 0.5, 0.8)
GD_SMALL = (20, 50)
GD_FLOAT32_SHAPE = (40, 50)
GD_FLOAT32_P = 0.3

# -- spatial_dropout ---------------------------------------------------------------------------------

SD_SHAPE = (32, 32, 5, 6)      # 1024 feature maps
SD_PS = (0.0, 0.2, 0.5, 0.8)
SD_SMALL = (16, 16, 2, 3)
SD_FLOAT32_P = 0.3

# -- dropblock ---------------------------------------------------------------------------------------

#: (key, shape, p, block_size) of the training calls whose squares are checked.
DB_CALLS = (
    ("main", (16, 32, 12, 12), 0.3, 3),     # 512 maps: the statistical checks use this one
    ("b=5", (8, 8, 13, 11), 0.2, 5),
    ("b=1", (4, 8, 6, 7), 0.25, 1),
    ("b=H", (6, 8, 7, 9), 0.15, 7),
)
DB_SMALL = ((4, 8, 8, 8), 0.3, 3)
DB_FLOAT32 = ((4, 8, 10, 10), 0.2, 3)
#: (key, shape, block_size) of calls that must raise ValueError (p = 0.2).
DB_INVALID = (("even block_size", (2, 2, 8, 8), 4), ("block_size > min(H, W)", (2, 2, 8, 6), 7))
DB_ALL_DROPPED = ((2, 3, 3, 3), 1.0, 3)   # block_size = H = W and p = 1: gamma = 1, every map dropped

# -- drop_path ---------------------------------------------------------------------------------------

DP_ROWS = (400, 6)
DP_PS = (0.0, 0.2, 0.5, 0.8)
DP_BATCH_CALLS, DP_BATCH_SHAPE, DP_BATCH_P = 120, (5, 4), 0.2
DP_SMALL = (64, 3)
DP_FLOAT32_P = 0.3

# -- cutout ------------------------------------------------------------------------------------------

#: (key, shape, size): "main" (odd size, square images) is the one the statistics use.
CO_CALLS = (
    ("main", (300, 3, 16, 16), 7),
    ("rectangular", (60, 2, 16, 12), 5),
    ("even size", (60, 2, 12, 10), 6),
)
CO_SMALL = ((20, 1, 8, 8), 3)

# -- multi_sample_dropout_logits ---------------------------------------------------------------------

MS_N, MS_D, MS_C = 40, 12, 16
MS_K = 8
MS_PS = (0.2, 0.5, 0.8)
MS_ONE_P = 0.3
MS_FLOAT32 = (0.3, 3)          # (p, n_samples)


def _one_thread(probe_fn):
    """Run a probe with torch on one thread: its tensors are tiny, and torch's thread pool
    costs milliseconds per call on a busy 2-core machine (a float64 matmul of 50 x 40 took
    15 ms with 2 threads, 0.2 ms with one). The setting is restored afterwards."""

    @functools.wraps(probe_fn)
    def run(fn, rec, rng):
        from ..experiments.threads import one_thread

        with one_thread():
            return probe_fn(fn, rec, rng)

    return run


def _generator(seed):
    import torch

    return torch.Generator().manual_seed(int(seed))


def _fresh_calls(fn, rec, rng, make_args) -> None:
    """The calls every stochastic check uses: "fresh 1" and "fresh 2" on ONE generator (two
    different draws), "other seed" on a generator of another seed (a seed fixed inside the
    function gives the same draw), and "same seed 1"/"same seed 2" from
    ``same_seed_calls``. ``make_args(generator)`` builds fresh positional arguments."""
    shared = _generator(child_seed(rng))
    rec.call("fresh 1", fn, *make_args(shared))
    rec.call("fresh 2", fn, *make_args(shared))
    rec.call("other seed", fn, *make_args(_generator(child_seed(rng))))
    same_seed_calls(rec, "same seed", fn, lambda s: make_args(_generator(s)), child_seed(rng))


def _nonzero(rng, shape, low=0.5, high=2.0):
    """Values with |v| in [low, high] and random signs: never 0, so out / x reads the noise."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def _t(a, dtype=None):
    import torch

    return torch.tensor(a, dtype=dtype or torch.float64)


# -- dropconnect_linear ------------------------------------------------------------------------------

def dropconnect_design(x_random):
    """The design batch: identity rows, a zero row, then ``x_random``."""
    n_in = x_random.shape[1]
    return np.vstack([np.eye(n_in), np.zeros((1, n_in)), x_random])


def _dc_gradient(fn, x, weight, bias, p, g_out, seed):
    import torch

    w = _t(weight).requires_grad_(True)
    b = _t(bias).requires_grad_(True)
    out = fn(_t(x), w, b, p, _generator(seed))
    torch.as_tensor(out).backward(_t(g_out).to(torch.as_tensor(out).dtype))
    return out.detach(), w.grad, b.grad


@probe("dropconnect_linear")
@_one_thread
def probe_dropconnect_linear(fn, rec, rng):
    import torch

    weight = _nonzero(rng, (DC_OUT, DC_IN))
    bias = _nonzero(rng, DC_OUT, 0.2, 1.0)
    x = dropconnect_design(rng.normal(size=(DC_RANDOM, DC_IN)))
    x_eval = rng.normal(size=(10, DC_IN))
    g_out = rng.normal(size=(x.shape[0], DC_OUT))

    def args(xx=x, dtype=torch.float64):
        return _t(xx, dtype), _t(weight, dtype), _t(bias, dtype)

    for p in DC_PS:
        rec.call(f"train p={p}", fn, *args(), p, _generator(child_seed(rng)))
    _fresh_calls(fn, rec, rng, lambda g: (*args(), 0.5, g))
    rec.call("eval", fn, *args(x_eval), EVAL_P, _generator(child_seed(rng)), training=False)
    rec.call("float32", fn, *args(dtype=torch.float32), DC_FLOAT32_P, _generator(child_seed(rng)))
    seed = child_seed(rng)
    rec.call("gradient", lambda: _dc_gradient(fn, x, weight, bias, DC_GRAD_P, g_out, seed))
    rec.call("inputs", lambda: (x, weight, bias, x_eval, g_out))


# -- gaussian_dropout ----------------------------------------------------------------------------------

@probe("gaussian_dropout")
@_one_thread
def probe_gaussian_dropout(fn, rec, rng):
    import torch

    # |x| in [1, 3]: E[1/x^2] = 1/3, so noise ADDED to x has a spread of out / x far from the
    # multiplicative noise's (with |x| in [0.5, 2], E[1/x^2] = 1 and the variances would agree).
    x = _nonzero(rng, GD_SHAPE, 1.0, 3.0)
    small = _nonzero(rng, GD_SMALL, 1.0, 3.0)
    x32 = _nonzero(rng, GD_FLOAT32_SHAPE, 1.0, 3.0).astype(np.float32)
    for p in GD_PS:
        rec.call(f"train p={p}", fn, _t(x), p, _generator(child_seed(rng)))
    rec.call("p=0", fn, _t(small), 0.0, _generator(child_seed(rng)))
    _fresh_calls(fn, rec, rng, lambda g: (_t(small), 0.5, g))
    rec.call("eval", fn, _t(small), EVAL_P, _generator(child_seed(rng)), training=False)
    rec.call("float32", fn, _t(x32, torch.float32), GD_FLOAT32_P, _generator(child_seed(rng)))
    rec.call("inputs", lambda: (x, small, x32))


# -- spatial_dropout -----------------------------------------------------------------------------------

@probe("spatial_dropout")
@_one_thread
def probe_spatial_dropout(fn, rec, rng):
    import torch

    x = _nonzero(rng, SD_SHAPE)
    small = _nonzero(rng, SD_SMALL)
    for p in SD_PS:
        rec.call(f"train p={p}", fn, _t(x), p, _generator(child_seed(rng)))
    _fresh_calls(fn, rec, rng, lambda g: (_t(small), 0.5, g))
    rec.call("eval", fn, _t(small), EVAL_P, _generator(child_seed(rng)), training=False)
    rec.call("float32", fn, _t(small, torch.float32), SD_FLOAT32_P, _generator(child_seed(rng)))
    rec.call("inputs", lambda: (x, small))


# -- dropblock_gamma -----------------------------------------------------------------------------------

#: (p, block_size, height, width): square maps, then maps with H != W, then the edges
#: block_size = 1 (gamma = p) and block_size = min(H, W) (one row or column of centres).
DG_SQUARE = ((0.1, 7, 28, 28), (0.25, 3, 12, 12), (0.15, 5, 16, 16))
DG_RECT = ((0.2, 5, 13, 11), (0.3, 3, 8, 20), (0.05, 7, 19, 25))
DG_EDGES = ((0.2, 1, 9, 7), (0.1, 5, 5, 12))


@probe("dropblock_gamma")
def probe_dropblock_gamma(fn, rec, rng):
    # Fixed cases plus one drawn from rng (so a table of answers does not pass).
    drawn = (round(float(rng.uniform(0.05, 0.4)), 3), int(rng.choice([3, 5, 7])),
             int(rng.integers(12, 30)), int(rng.integers(12, 30)))
    for case in DG_SQUARE + DG_RECT + DG_EDGES + (drawn,):
        rec.call(f"gamma {case}", fn, *case)
    rec.call("inputs", lambda: np.array(drawn, dtype=np.float64))


# -- dropblock -----------------------------------------------------------------------------------------

@probe("dropblock")
@_one_thread
def probe_dropblock(fn, rec, rng):
    import torch

    xs = {}
    for key, shape, p, b in DB_CALLS:
        xs[key] = _nonzero(rng, shape)
        rec.call(f"train {key}", fn, _t(xs[key]), p, b, _generator(child_seed(rng)))
    shape, p, b = DB_SMALL
    small = _nonzero(rng, shape)
    _fresh_calls(fn, rec, rng, lambda g: (_t(small), p, b, g))
    rec.call("eval", fn, _t(small), p, b, _generator(child_seed(rng)), training=False)
    rec.call("p=0", fn, _t(small), 0.0, b, _generator(child_seed(rng)))
    shape, p, b = DB_ALL_DROPPED
    everything = _nonzero(rng, shape)
    rec.call("all dropped", fn, _t(everything), p, b, _generator(child_seed(rng)))
    for key, shape, b in DB_INVALID:
        rec.call(key, fn, _t(_nonzero(rng, shape)), 0.2, b, _generator(child_seed(rng)))
    shape, p, b = DB_FLOAT32
    x32 = _nonzero(rng, shape).astype(np.float32)
    rec.call("float32", fn, _t(x32, torch.float32), p, b, _generator(child_seed(rng)))
    rec.call("inputs", lambda: (*xs.values(), small, everything, x32))


# -- drop_path -----------------------------------------------------------------------------------------

def _batch_many(fn, x, seed):
    """DP_BATCH_CALLS batch-mode calls on one generator, stacked."""
    import torch

    g = _generator(seed)
    return torch.stack([torch.as_tensor(fn(_t(x), DP_BATCH_P, g, mode="batch"))
                        for _ in range(DP_BATCH_CALLS)])


@probe("drop_path")
@_one_thread
def probe_drop_path(fn, rec, rng):
    import torch

    x = _nonzero(rng, DP_ROWS)
    x4 = _nonzero(rng, (8, 3, 4, 5))
    square = _nonzero(rng, (6, 6))
    small = _nonzero(rng, DP_SMALL)
    xb = _nonzero(rng, DP_BATCH_SHAPE)
    for p in DP_PS:
        rec.call(f"row p={p}", fn, _t(x), p, _generator(child_seed(rng)), mode="row")
    rec.call("row 4-d", fn, _t(x4), 0.3, _generator(child_seed(rng)), mode="row")
    rec.call("row square", fn, _t(square), 0.5, _generator(child_seed(rng)), mode="row")
    rec.call("default mode", fn, _t(x4), 0.5, _generator(child_seed(rng)))
    seed = child_seed(rng)
    rec.call("batch many", lambda: _batch_many(fn, xb, seed))
    rec.call("batch 4-d", fn, _t(x4), 0.5, _generator(child_seed(rng)), mode="batch")
    _fresh_calls(fn, rec, rng, lambda g: (_t(small), 0.5, g, True, "row"))
    rec.call("eval row", fn, _t(small), EVAL_P, _generator(child_seed(rng)), training=False, mode="row")
    rec.call("eval batch", fn, _t(xb), EVAL_P, _generator(child_seed(rng)), training=False, mode="batch")
    rec.call("float32", fn, _t(small, torch.float32), DP_FLOAT32_P, _generator(child_seed(rng)), mode="row")
    rec.call("inputs", lambda: (x, x4, square, small, xb))


# -- cutout --------------------------------------------------------------------------------------------

@probe("cutout")
@_one_thread
def probe_cutout(fn, rec, rng):
    import torch

    images = {}
    for key, shape, size in CO_CALLS:
        dtype = torch.float32 if key == "main" else torch.float64
        images[key] = rng.uniform(0.1, 1.0, size=shape)
        if dtype == torch.float32:
            images[key] = images[key].astype(np.float32)
        rec.call(key, fn, _t(images[key], dtype), size, _generator(child_seed(rng)))
    shape, size = CO_SMALL
    small = rng.uniform(0.1, 1.0, size=shape)
    _fresh_calls(fn, rec, rng, lambda g: (_t(small), size, g))
    rec.call("inputs", lambda: (*images.values(), small))


# -- multi_sample_dropout_logits -------------------------------------------------------------------------

def linear_head(weight, bias, dtype):
    """An nn.Linear holding ``weight`` (C, D) and ``bias`` (C,). Built with skip_init, so
    torch's global random state (which the notebook's later cells read) is left alone."""
    import torch

    head = torch.nn.utils.skip_init(torch.nn.Linear, weight.shape[1], weight.shape[0], dtype=dtype)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight))
        head.bias.copy_(torch.as_tensor(bias))
    return head


@probe("multi_sample_dropout_logits")
@_one_thread
def probe_multi_sample_dropout_logits(fn, rec, rng):
    import torch

    features = _nonzero(rng, (MS_N, MS_D))
    weight, _ = np.linalg.qr(rng.normal(size=(MS_C, MS_D)))   # orthonormal columns: W.T @ W = I
    bias = rng.uniform(-1.0, 1.0, size=MS_C)
    head = linear_head(weight, bias, torch.float64)
    for p in MS_PS:
        rec.call(f"p={p}", fn, _t(features), head, p, MS_K, _generator(child_seed(rng)))
    rec.call("one sample", fn, _t(features), head, MS_ONE_P, 1, _generator(child_seed(rng)))
    _fresh_calls(fn, rec, rng, lambda g: (_t(features), head, 0.5, 2, g))
    p32, k32 = MS_FLOAT32
    head32 = linear_head(weight, bias, torch.float32)
    rec.call("float32", fn, _t(features, torch.float32), head32, p32, k32, _generator(child_seed(rng)))
    rec.call("inputs", lambda: (features, weight, bias))
