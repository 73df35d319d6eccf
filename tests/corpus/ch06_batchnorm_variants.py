"""Correct implementations of chapter 06's graded functions, written the many
ways students write them. Every one must earn full marks under every seed."""
import contextlib
import math

import numpy as np
import torch
from torch import nn

_BN = nn.modules.batchnorm._BatchNorm
_DROPOUT_CLASSES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


# -- dropout_variance ----------------------------------------------------------------------------

def dv_second_moment(mean, var, p):
    keep = 1.0 - p
    second = (mean ** 2 + var) / keep          # E[y^2] = E[m^2] E[x^2] / keep^2, E[m^2] = keep
    return float(second - mean ** 2)


def dv_total_variance(mean, var, p):
    # Var = E[Var(y | x)] + Var(E[y | x]) = p/(1-p) E[x^2] + var
    return var + p / (1 - p) * (mean * mean + var)


def dv_one_fraction(mean, var, p):
    return (var + p * mean ** 2) / (1 - p)


def dv_numpy(mean, var, p):
    c, v, p = np.float64(mean), np.float64(var), np.float64(p)
    return float(np.square(c) * p / (1 - p) + v / (1 - p))


def dv_torch(mean, var, p):
    c, v = torch.tensor(float(mean), dtype=torch.float64), torch.tensor(float(var), dtype=torch.float64)
    return ((c ** 2 + v) / (1 - float(p)) - c ** 2).item()


def dv_numpy_scalar(mean, var, p):
    return np.float64((mean * mean + var) / (1 - p) - mean * mean)


# -- variance_shift_ratio --------------------------------------------------------------------------

def sr_from_variance(mean, var, p):
    train = (mean ** 2 + var) / (1 - p) - mean ** 2
    return var / train


def sr_simplified(mean, var, p):
    return (1 - p) * var / (var + p * mean * mean)


def sr_keep(mean, var, p):
    keep = 1 - p
    return float(keep * var / (var + (1 - keep) * mean ** 2))


def sr_numpy(mean, var, p):
    c, v = np.float64(mean), np.float64(var)
    return float(np.divide(v, (c * c + v) / (1.0 - p) - c * c))


def sr_torch(mean, var, p):
    c, v = torch.tensor(float(mean)).double(), torch.tensor(float(var)).double()
    return float((1 - p) * v / (v + p * c.square()))


# -- bn_input_variance -------------------------------------------------------------------------------

def _pop_var(z):
    dims = [d for d in range(z.dim()) if d != 1]
    return z.var(dim=dims, unbiased=False)


def biv_train_then_bn_eval(model, bn, X):
    """Everything in training mode, then the BN layers back to eval; a forward hook."""
    saved = {m: m.training for m in model.modules()}
    got = {}
    handle = bn.register_forward_hook(lambda mod, inp, out: got.__setitem__("z", inp[0]))
    try:
        with torch.no_grad():
            model.train()
            for m in model.modules():
                if isinstance(m, _BN):
                    m.eval()
            model(X)
            train_var = _pop_var(got["z"])
            model.eval()
            model(X)
            eval_var = _pop_var(got["z"])
    finally:
        handle.remove()
        for m, t in saved.items():
            m.training = t
    return train_var, eval_var


def biv_numpy_flatten(model, bn, X):
    """Two passes, eval first; channels flattened with numpy, float64 results."""
    modes = [(m, m.training) for m in model.modules()]
    inputs = []
    handle = bn.register_forward_pre_hook(lambda mod, args: inputs.append(args[0].detach().double()))
    model.eval()
    with torch.no_grad():
        model(X)
        for m in model.modules():
            if isinstance(m, _DROPOUT_CLASSES):
                m.train()
        model(X)
    handle.remove()
    for m, t in modes:          # parents first: train(t) on a parent, then each child its own flag
        m.train(t)

    def per_channel(z):
        a = z.transpose(0, 1).reshape(z.shape[1], -1).numpy()
        return a.var(axis=1)

    return per_channel(inputs[1]), per_channel(inputs[0])


def biv_var_mean_inference_mode(model, bn, X):
    """torch.var_mean with correction=0 under torch.inference_mode()."""
    flags = [m.training for m in model.modules()]
    seen = []
    h = bn.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    try:
        with torch.inference_mode():
            out = []
            for on in (True, False):
                model.eval()
                for m in model.modules():
                    if isinstance(m, nn.modules.dropout._DropoutNd):
                        m.train(on)
                model(X)
                z = seen[-1].double()
                dims = tuple(d for d in range(z.dim()) if d != 1)
                v, _ = torch.var_mean(z, dim=dims, correction=0)
                out.append(v)
    finally:
        h.remove()
        for m, f in zip(model.modules(), flags):
            m.training = f
    return out[0], out[1]


def biv_mean_of_squares(model, bn, X):
    """E[z^2] - E[z]^2 per channel in float64, modes restored with train()."""
    saved = [(m, m.training) for m in model.modules()]
    box = []

    def hook(mod, args):
        box.append(args[0].detach().to(torch.float64))

    handle = bn.register_forward_pre_hook(hook)
    model.eval()
    dropouts = [m for m in model.modules() if "Dropout" in type(m).__name__]
    with torch.no_grad():
        for m in dropouts:
            m.train()
        model(X)
        for m in dropouts:
            m.eval()
        model(X)
    handle.remove()
    for m, t in saved:
        m.train(t)
    res = []
    for z in box:
        z = z.movedim(1, 0).reshape(z.shape[1], -1)
        res.append((z * z).mean(1) - z.mean(1) ** 2)
    return res[0], res[1]


# -- recalibrate_bn -------------------------------------------------------------------------------------

@contextlib.contextmanager
def _as_found(model):
    """Yields the BN layers; afterwards every module's mode and every BN's momentum are put back."""
    modes = {m: m.training for m in model.modules()}
    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    momenta = {bn: bn.momentum for bn in bns}
    try:
        yield bns
    finally:
        for bn, momentum in momenta.items():
            bn.momentum = momentum
        for m, training in modes.items():
            m.training = training


def rb_split(model, X, batch_size):
    """torch.split over X, BN layers found by isinstance of their two classes."""
    with _as_found(model) as bns:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        model.eval()
        for bn in bns:
            bn.train()
        with torch.no_grad():
            for batch in torch.split(X, batch_size):
                model(batch)
    return model


def rb_train_then_dropout_off(model, X, batch_size):
    """The whole model in training mode, then every dropout layer off."""
    saved = [(m, m.training) for m in model.modules()]
    bns = [m for m in model.modules() if isinstance(m, _BN)]
    old = [bn.momentum for bn in bns]
    try:
        for bn in bns:
            bn.momentum = None
            bn.reset_running_stats()
        model.train()
        for m in model.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()
        with torch.no_grad():
            start = 0
            while start < X.shape[0]:
                model(X[start:start + batch_size])
                start += batch_size
    finally:
        for bn, mom in zip(bns, old):
            bn.momentum = mom
        for m, t in saved:
            m.train(t)
    return model


def rb_manual_average(model, X, batch_size):
    """No momentum=None: hooks collect every batch's mean and unbiased variance while the
    BN layers normalise with batch statistics (momentum 0 keeps their buffers still), then
    the averages are written into the buffers in float64 arithmetic."""
    with _as_found(model) as bns:
        stats = {bn: [] for bn in bns}

        def hook(mod, args):
            z = args[0].detach().double()
            dims = [d for d in range(z.dim()) if d != 1]
            stats[mod].append((z.mean(dims), z.var(dims, unbiased=True)))

        hooks = [bn.register_forward_pre_hook(hook) for bn in bns]
        model.eval()
        for bn in bns:
            bn.momentum = 0.0
            bn.train()
        with torch.no_grad():
            for i in range(0, len(X), batch_size):
                model(X[i:i + batch_size])
            for bn in bns:
                bn.running_mean.copy_(torch.stack([m for m, _ in stats[bn]]).mean(0))
                bn.running_var.copy_(torch.stack([v for _, v in stats[bn]]).mean(0))
                bn.num_batches_tracked.fill_(len(stats[bn]))
        for hk in hooks:
            hk.remove()
    return model


def rb_inference_mode(model, X, batch_size):
    """Under torch.inference_mode(), batches by index arithmetic."""
    with _as_found(model) as bns:
        model.eval()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        with torch.inference_mode():
            for i in range(math.ceil(len(X) / batch_size)):
                model(X[i * batch_size:(i + 1) * batch_size])
    return model


# -- uout ------------------------------------------------------------------------------------------------

def uout_uniform_(x, beta, generator, training=True):
    if not training:
        return x
    r = torch.empty_like(x).uniform_(-beta, beta, generator=generator)
    return x * (1 + r)


def uout_plus_x_r(x, beta, generator, training=True):
    if training:
        r = (torch.rand(x.shape, generator=generator) * 2 - 1) * beta
        return x + x * r.to(x.dtype)
    return x.clone()


def uout_float32_noise(x, beta, generator, training=True):
    """r drawn in float32 whatever x's dtype, the product in x's dtype."""
    if not training or beta == 0:
        return x
    u = torch.rand(*x.shape, generator=generator)
    return x * (1 + beta * (2 * u - 1)).to(dtype=x.dtype)


def uout_new_empty(x, beta, generator, training=True):
    if not training:
        return x
    noise = x.new_empty(x.shape).uniform_(generator=generator) * (2 * beta) - beta
    return torch.mul(x, noise.add(1.0))


def uout_in_float64(x, beta, generator, training=True):
    if not training:
        return x
    r = torch.rand(x.shape, generator=generator, dtype=torch.float64).mul(2).sub(1).mul(beta)
    return (x.double() * (1 + r)).to(x.dtype)


VARIANTS = {
    "dropout_variance": [
        ("E[y^2] - E[y]^2", dv_second_moment),
        ("law of total variance", dv_total_variance),
        ("one fraction", dv_one_fraction),
        ("numpy", dv_numpy),
        ("torch", dv_torch),
        ("numpy scalar", dv_numpy_scalar),
    ],
    "variance_shift_ratio": [
        ("from the training variance", sr_from_variance),
        ("simplified", sr_simplified),
        ("keep, unsimplified", sr_keep),
        ("numpy", sr_numpy),
        ("torch", sr_torch),
    ],
    "bn_input_variance": [
        ("train, then BN eval, forward hook", biv_train_then_bn_eval),
        ("numpy, eval pass first", biv_numpy_flatten),
        ("var_mean, inference_mode", biv_var_mean_inference_mode),
        ("mean of squares, float64", biv_mean_of_squares),
    ],
    "recalibrate_bn": [
        ("torch.split", rb_split),
        ("train, then dropout off", rb_train_then_dropout_off),
        ("manual average in float64", rb_manual_average),
        ("inference_mode", rb_inference_mode),
    ],
    "uout": [
        ("uniform_", uout_uniform_),
        ("x + x r, clone in eval", uout_plus_x_r),
        ("float32 noise", uout_float32_noise),
        ("new_empty", uout_new_empty),
        ("float64 arithmetic", uout_in_float64),
    ],
}
