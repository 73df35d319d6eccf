"""Probes for chapter 06, dropout and batch normalisation (see dropout_lab.probes).

The two formula functions get scalars: a public representative case (mean 3,
variance 4, p = 0.2, whose value every message may quote; every mistake the
checks name gives a different value there), zero-mean units, units with a
non-zero mean of either sign, p = 0, a constant unit (variance 0) and numpy
float32 scalars. p = 0.5 is never used (p and 1 - p coincide there).

The torch functions get real ``nn.Module``s built here from the probe's rng
(weights, biases, BatchNorm affine parameters, running statistics, momenta and
``num_batches_tracked``), never from torch's global generator:

* ``bn_input_variance``: BatchNorm1d and BatchNorm2d, dropout (``nn.Dropout``,
  ``nn.Dropout2d``) right before the measured BN, dropout -> linear -> BN,
  dropout only after a BN, several BN layers, nested ``nn.Sequential`` blocks
  and a model class of its own. Where a BN layer comes before the measured one
  it has *stale* running statistics (far from the statistics of the probe's X),
  so a function that lets it normalise with batch statistics measures something
  else. Two calls have so few values per channel (10 and 18) that dividing by
  n - 1 instead of n is visible. Models start in train mode, in eval mode or in
  a mix of both, and every call gets a model of its own. Each call returns the
  student's values together with the model's state afterwards (every module's
  mode, every running statistic, every parameter), so that the checks can tell
  what changed.
* ``recalibrate_bn``: models without dropout (two BatchNorm1d layers, batch
  sizes that leave a partial last batch, a batch larger than X) and with
  dropout before and after BN layers (BatchNorm1d and BatchNorm2d, nested
  blocks, a BN whose momentum is None, mixed modes). Every BN starts with stale
  statistics and a positive ``num_batches_tracked``, as after training, so that
  forgetting ``reset_running_stats()`` changes the result.
* ``uout``: float32 and float64 tensors of 1 to 4 dimensions whose entries
  have magnitudes between 1/4 and 4 and random signs (so additive noise is not
  multiplicative noise in disguise), beta = 0, 0.5, 1 and 1.5, training=False,
  one Generator used twice, two Generators of one seed, and a backward pass.

torch's global generator is seeded before each call (so that a run is
reproducible) and restored afterwards; torch runs on one thread meanwhile (these
tensors are small: many times faster on a busy machine).
"""
import contextlib

import numpy as np

from ..experiments.threads import one_thread
from . import _global_states, _restore_global_states, child_seed, probe, same_seed_calls

# -- the formulas -------------------------------------------------------------------------------

#: The public representative case (mean, var, p) messages may quote.
REPRESENTATIVE = (3.0, 4.0, 0.2)
#: Drop probabilities of the random cases (never 0.5).
FORMULA_PS = (0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9)
N_ZERO_MEAN = 3
N_GENERAL = 8


def _formula_cases(rng):
    """(zero-mean cases, general cases): lists of (mean, var, p) floats."""
    zero = [(0.0, float(rng.uniform(0.2, 3.0)), float(rng.choice(FORMULA_PS))) for _ in range(N_ZERO_MEAN)]
    general = [REPRESENTATIVE]
    for _ in range(N_GENERAL):
        c = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 2.5))
        general.append((c, float(rng.uniform(0.05, 3.0)), float(rng.choice(FORMULA_PS))))
    general.append((float(-rng.uniform(0.5, 2.0)), float(rng.uniform(0.2, 2.0)), 0.0))       # p = 0
    general.append((float(rng.uniform(0.5, 2.0)), 0.0, float(rng.choice(FORMULA_PS))))       # a constant unit
    return zero, general


def _formula_probe(fn, rec, rng):
    zero, general = _formula_cases(rng)
    for i, (c, v, p) in enumerate(zero):
        rec.call(f"zero mean {i}", fn, c, v, p)
    for i, (c, v, p) in enumerate(general):
        rec.call(f"case {i}", fn, c, v, p)
    c, v, p = general[1]
    rec.call("float32 scalars", fn, np.float32(c), np.float32(v), np.float32(p))
    rec.call("inputs", lambda: (np.array(zero), np.array(general)))


# Both formulas take (mean, var, p) and are probed on the same kind of cases.
probe("variance_shift_ratio")(probe("dropout_variance")(_formula_probe))


# -- building models from the rng ------------------------------------------------------------------

def _tensor(a):
    import torch

    return torch.tensor(np.asarray(a), dtype=torch.float32)


def _set(param, values):
    import torch

    with torch.no_grad():
        param.copy_(_tensor(values).reshape(param.shape))


@contextlib.contextmanager
def _torch_session():
    """torch on one thread, and the global random states restored afterwards."""
    saved = _global_states()
    try:
        with one_thread():
            yield
    finally:
        _restore_global_states(saved)


def _bias(rng, size, active):
    """Biases around 0, or (``active``) between 1 and 2: then the ReLU after the layer is
    almost always on, and its units have a mean well above their spread."""
    return rng.uniform(1.0, 2.0, size=size) if active else rng.normal(0.0, 0.3, size=size)


def _linear(rng, fan_in, fan_out, active=False):
    from torch import nn

    layer = nn.Linear(fan_in, fan_out)
    _set(layer.weight, rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(fan_out, fan_in)))
    _set(layer.bias, _bias(rng, fan_out, active))
    return layer


def _conv(rng, c_in, c_out, k=3, active=False):
    from torch import nn

    layer = nn.Conv2d(c_in, c_out, k, padding=k // 2)
    _set(layer.weight, rng.normal(0.0, 1.0 / np.sqrt(c_in * k * k), size=(c_out, c_in, k, k)))
    _set(layer.bias, _bias(rng, c_out, active))
    return layer


def _bn(rng, channels, dims=1, stale=False, momentum=None):
    """A BatchNorm layer as after training: affine parameters, running statistics,
    a momentum and a positive num_batches_tracked drawn from rng. ``stale``: running
    statistics far from those of the probe's data (variance 4 to 9 times too large,
    mean offset by 1 to 2), so that batch statistics and running ones differ a lot."""
    from torch import nn

    bn = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(channels)
    _set(bn.weight, rng.uniform(0.6, 2.0, size=channels))
    _set(bn.bias, rng.normal(0.0, 0.4, size=channels))
    if stale:
        _set(bn.running_mean, rng.choice([-1.0, 1.0], size=channels) * rng.uniform(1.0, 2.0, size=channels))
        _set(bn.running_var, rng.uniform(4.0, 9.0, size=channels))
    else:
        _set(bn.running_mean, rng.normal(0.0, 0.5, size=channels))
        _set(bn.running_var, rng.uniform(0.3, 2.5, size=channels))
    bn.num_batches_tracked.fill_(int(rng.integers(20, 300)))
    bn.momentum = float(rng.choice([0.05, 0.1, 0.2, 0.3])) if momentum is None else momentum
    return bn


def _data(rng, *shape):
    return _tensor(rng.normal(0.0, 1.0, size=shape) + rng.normal(0.0, 0.5, size=(1, *shape[1:])))


def _model_class():
    """A model class of its own (not nn.Sequential): conv -> ReLU -> dropout -> BN."""
    from torch import nn

    class ConvProbeNet(nn.Module):
        def __init__(self, conv, drop, bn, head):
            super().__init__()
            self.conv, self.drop, self.bn, self.head = conv, drop, bn, head

        def forward(self, x):
            h = self.drop(self.conv(x).relu())
            return self.head(self.bn(h).flatten(1))

    return ConvProbeNet


_CLASSES: dict = {}


def _conv_probe_net(*modules):
    if "conv" not in _CLASSES:
        _CLASSES["conv"] = _model_class()
    return _CLASSES["conv"](*modules)


def _set_modes(model, how, rng=None):
    """``how``: "train", "eval" or "mixed" (train mode, with every second module
    that has children or is a dropout or BN layer switched to eval)."""
    from torch import nn

    model.train(how != "eval")
    if how == "mixed":
        kinds = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm, nn.Sequential)
        for i, m in enumerate(m for m in model.modules() if isinstance(m, kinds) and m is not model):
            if i % 2 == 1:
                m.training = False
    return model


def _bn_layers(model):
    from torch import nn

    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _state(model) -> dict:
    """What a graded function must leave as it found it: every module's mode, every
    BN's running statistics and num_batches_tracked, every parameter."""
    bns = _bn_layers(model)
    params = [p.detach().double().reshape(-1).numpy() for p in model.parameters()]
    return {
        "modes": np.array([m.training for m in model.modules()]),
        "stats": np.concatenate([np.concatenate([bn.running_mean.double().numpy(), bn.running_var.double().numpy()])
                                 for bn in bns]),
        "tracked": np.array([int(bn.num_batches_tracked) for bn in bns]),
        "params": np.concatenate(params),
        "param_grads": np.array(any(p.grad is not None for p in model.parameters())),
    }


def _returned(result) -> dict:
    """The values a graded function returned, as recordable items."""
    import torch

    if result is None:
        return {"none": np.array(True)}
    values = list(result) if isinstance(result, (tuple, list)) else [result]
    out = {"none": np.array(False), "n": np.array(len(values)), "tuple": np.array(isinstance(result, (tuple, list)))}
    for i, v in enumerate(values[:2]):
        out[f"v{i}"] = v
    out["requires_grad"] = np.array(any(isinstance(v, torch.Tensor) and v.requires_grad for v in values))
    return out


# -- bn_input_variance -------------------------------------------------------------------------------

#: X of the models whose dropout feeds the measured BN directly: the checks' bound on the
#: training-mode variance shrinks like 1 / sqrt(number of independent mask bits per channel).
BN1D_SHAPE = (3000, 6)                   # nn.Dropout, BatchNorm1d: 3000 mask bits per channel
BN2D_CHANNELS_SHAPE = (800, 3, 4, 4)     # nn.Dropout2d: one mask bit per (image, channel), 800
BN2D_ELEMENTS_SHAPE = (48, 2, 8, 8)      # nn.Dropout, BatchNorm2d: 3072 mask bits per channel
DIRECT_PS = (0.5, 0.3, 0.4)


def _seed_torch(seed) -> None:
    """Seed torch's global CPU generator (what nn.Dropout draws from)."""
    import torch

    torch.default_generator.manual_seed(int(seed))


def _bn_measure(fn, model, bn, X, seed):
    """Call fn(model, bn, X) with torch's global generator seeded; its values and the
    model's state afterwards."""
    _seed_torch(seed)
    count = np.array(int(np.prod([X.shape[0], *X.shape[2:]])))   # values per channel (convolutions keep the size)
    return {**_returned(fn(model, bn, X)), **_state(model), "count": count}


def _direct_1d(rng):
    from torch import nn

    bn = _bn(rng, 8)
    m = nn.Sequential(_linear(rng, 6, 8, active=True), nn.ReLU(), nn.Dropout(DIRECT_PS[0]), bn, nn.ReLU(),
                      _linear(rng, 8, 3))
    return m, {"bn": bn}, _data(rng, *BN1D_SHAPE)


def _direct_2d_channels(rng):
    from torch import nn

    bn = _bn(rng, 4, 2)
    m = nn.Sequential(_conv(rng, 3, 4, active=True), nn.ReLU(), nn.Dropout2d(DIRECT_PS[1]), bn, nn.ReLU(),
                      _conv(rng, 4, 2))
    return m, {"bn": bn}, _data(rng, *BN2D_CHANNELS_SHAPE)


def _direct_2d_own_class(rng):
    from torch import nn

    n, c_in, hgt, wid = BN2D_ELEMENTS_SHAPE
    bn = _bn(rng, 3, 2)
    m = _conv_probe_net(_conv(rng, c_in, 3, active=True), nn.Dropout(DIRECT_PS[2]), bn,
                        _linear(rng, 3 * hgt * wid, 2))
    return m, {"bn": bn}, _data(rng, *BN2D_ELEMENTS_SHAPE)


def _dropout_after(rng):
    """Two BN layers with dropout only after them; the first has stale running statistics."""
    from torch import nn

    first, second = _bn(rng, 8, stale=True), _bn(rng, 6)
    m = nn.Sequential(_linear(rng, 6, 8), first, nn.ReLU(), _linear(rng, 8, 6), second, nn.ReLU(), nn.Dropout(0.5),
                      _linear(rng, 6, 3))
    return m, {"first": first, "second": second}, _data(rng, 300, 6)


def _nested(rng):
    """dropout -> linear -> BN in nested blocks, a stale BN in the first block."""
    from torch import nn

    first, second = _bn(rng, 8, stale=True), _bn(rng, 7)
    m = nn.Sequential(nn.Sequential(_linear(rng, 5, 8), first, nn.ReLU(), nn.Dropout(0.5)),
                      nn.Sequential(_linear(rng, 8, 7), second, nn.ReLU(), nn.Dropout(0.3)),
                      _linear(rng, 7, 3))
    return m, {"second": second}, _data(rng, 400, 5)


def _ten_rows(rng):
    from torch import nn

    bn = _bn(rng, 5)
    m = nn.Sequential(_linear(rng, 4, 5), nn.ReLU(), nn.Dropout(0.3), bn, _linear(rng, 5, 2))
    return m, {"bn": bn}, _data(rng, 10, 4)


def _two_images(rng):
    from torch import nn

    bn = _bn(rng, 3, 2)
    m = nn.Sequential(_conv(rng, 2, 3), nn.ReLU(), nn.Dropout2d(0.3), bn)
    return m, {"bn": bn}, _data(rng, 2, 2, 3, 3)


#: call -> (builder, which BN of it is measured, the model's modes when the call starts).
BN_CALLS = {
    "direct 1d": (_direct_1d, "bn", "train"),
    "direct 2d, Dropout2d": (_direct_2d_channels, "bn", "eval"),
    "direct 2d, own class": (_direct_2d_own_class, "bn", "mixed"),
    "second bn, dropout after it": (_dropout_after, "second", "train"),
    "first bn, dropout after it": (_dropout_after, "first", "eval"),
    "dropout, linear, BN": (_nested, "second", "mixed"),
    "ten rows": (_ten_rows, "bn", "eval"),
    "two images of 3 x 3": (_two_images, "bn", "train"),
}


def _built(rng, calls: dict) -> dict:
    """call -> (what its builder returns, then the call's other entries), every call's model
    built afresh from one seed per builder: calls that share a builder share its weights,
    never the model object (a function that changes one cannot disturb the next call)."""
    seeds = {entry[0]: child_seed(rng) for entry in calls.values()}
    return {key: (entry[0](np.random.default_rng(seeds[entry[0]])), *entry[1:]) for key, entry in calls.items()}


@probe("bn_input_variance")
def probe_bn_input_variance(fn, rec, rng):
    """The models of BN_CALLS. The units a dropout layer feeds to the measured BN are ReLUs
    that are almost always on (biases 1 to 2): their mean is large against their spread, so
    the variance with dropout on is far from the one with dropout off. The checks rebuild the
    models (through the probe's arguments) to compute their bounds."""
    with _torch_session():
        for key, ((model, bns, X), which, how) in _built(rng, BN_CALLS).items():
            rec.call(key, _bn_measure, fn, _set_modes(model, how), bns[which], X, child_seed(rng))


# -- recalibrate_bn ------------------------------------------------------------------------------------

def _recalibrate(fn, model, X, batch_size, seed):
    """Call fn(model, X, batch_size) with torch's global generator seeded; what it
    returned and the state of the model it was given."""
    from torch import nn

    _seed_torch(seed)
    out = fn(model, X, batch_size)
    target = out if isinstance(out, nn.Module) else model
    state = _state(model)
    return {"none": np.array(out is None), "is_module": np.array(isinstance(out, nn.Module)),
            "same": np.array(out is model), "stats": _state(target)["stats"], "orig_stats": state["stats"],
            "momenta": np.array([np.nan if bn.momentum is None else bn.momentum for bn in _bn_layers(model)]),
            "modes": state["modes"], "params": state["params"]}


def _two_bn(rng):
    from torch import nn

    m = nn.Sequential(_linear(rng, 5, 6), _bn(rng, 6), nn.ReLU(), _linear(rng, 6, 4), _bn(rng, 4), _linear(rng, 4, 3))
    return m, _data(rng, 50, 5)


def _dropout_2d(rng):
    from torch import nn

    m = nn.Sequential(_conv(rng, 2, 3), _bn(rng, 3, 2), nn.ReLU(), nn.Dropout(0.5), _conv(rng, 3, 3),
                      _bn(rng, 3, 2, momentum=None), nn.ReLU(), nn.Dropout2d(0.5), nn.Flatten(),
                      _linear(rng, 3 * 5 * 5, 4), _bn(rng, 4))
    return m, _data(rng, 22, 2, 5, 5)


def _dropout_nested(rng):
    from torch import nn

    m = nn.Sequential(nn.Sequential(_linear(rng, 4, 6), nn.ReLU(), nn.Dropout(0.6), _bn(rng, 6)),
                      nn.Sequential(_linear(rng, 6, 5), _bn(rng, 5), nn.ReLU(), nn.Dropout(0.3)),
                      _linear(rng, 5, 2))
    return m, _data(rng, 30, 4)


#: call -> (builder, batch_size, the model's modes when the call starts).
RECALIBRATION_CALLS = {
    "two BN, batches of 16": (_two_bn, 16, "eval"),           # 16, 16, 16 and a last batch of 2
    "two BN, one batch": (_two_bn, 64, "train"),              # batch_size larger than X
    "two BN, batches of 12": (_two_bn, 12, "mixed"),          # 12, 12, 12, 12 and a last batch of 2
    "dropout, BatchNorm2d": (_dropout_2d, 8, "train"),        # 8, 8, 6
    "dropout, nested blocks": (_dropout_nested, 7, "mixed"),  # 7, 7, 7, 7, 2
}


@probe("recalibrate_bn")
def probe_recalibrate_bn(fn, rec, rng):
    with _torch_session():
        for key, ((model, X), batch_size, how) in _built(rng, RECALIBRATION_CALLS).items():
            rec.call(key, _recalibrate, fn, _set_modes(model, how), X, batch_size, child_seed(rng))


# -- uout ---------------------------------------------------------------------------------------------------

#: (key, shape, dtype, beta) of the calls whose noise the checks test: all of them for the range,
#: pooled for the statistics (22 740 entries).
UOUT_CALLS = (("4-d float32 beta=0.5", (40, 4, 8, 8), "float32", 0.5),
              ("2-d float64 beta=1.0", (400, 30), "float64", 1.0),
              ("1-d float32 beta=1.5", (500,), "float32", 1.5))


def _signed_magnitudes(rng, shape, dtype):
    """Entries with |x| log-uniform in [1/4, 4] and random signs, as a tensor."""
    import torch

    x = rng.choice([-1.0, 1.0], size=shape) * np.exp(rng.uniform(np.log(0.25), np.log(4.0), size=shape))
    return torch.tensor(x, dtype=getattr(torch, dtype))


def _generator(seed):
    import torch

    return torch.Generator().manual_seed(int(seed))


def _uout_grad(fn, x, beta, generator, upstream):
    """(out, dL/dx) of one call with x requiring grad, backpropagating ``upstream``."""
    xr = x.clone().requires_grad_(True)
    out = fn(xr, beta, generator)
    out.backward(upstream)
    return out.detach(), xr.grad


@probe("uout")
def probe_uout(fn, rec, rng):
    with _torch_session():
        xs = {}
        for key, shape, dtype, beta in UOUT_CALLS:
            xs[key] = x = _signed_magnitudes(rng, shape, dtype)
            rec.call(key, fn, x.clone(), beta, _generator(child_seed(rng)))
        x_small = _signed_magnitudes(rng, (6, 7), "float32")
        rec.call("beta=0", fn, x_small.clone(), 0.0, _generator(child_seed(rng)))
        for dtype in ("float32", "float64"):
            x = _signed_magnitudes(rng, (5, 3, 4), dtype)
            xs[f"eval {dtype}"] = x
            rec.call(f"eval {dtype}", fn, x.clone(), 0.5, _generator(child_seed(rng)), training=False)
        shared = _generator(child_seed(rng))
        x_fresh = _signed_magnitudes(rng, (20, 10), "float32")
        rec.call("fresh 1", fn, x_fresh.clone(), 0.5, shared)
        rec.call("fresh 2", fn, x_fresh.clone(), 0.5, shared)
        same_seed_calls(rec, "same seed", fn, lambda s: (x_fresh.clone(), 0.5, _generator(s)), child_seed(rng))
        x_grad = _signed_magnitudes(rng, (30, 6), "float64")
        upstream = _signed_magnitudes(rng, (30, 6), "float64")
        g = _generator(child_seed(rng))
        rec.call("gradient", lambda: _uout_grad(fn, x_grad, 0.8, g, upstream))
        rec.call("inputs", lambda: (*xs.values(), x_small, x_fresh, x_grad, upstream))
