"""Hidden reference for chapter 06, dropout and batch normalisation. Never shipped to students."""
import torch
from torch import nn

_BN = nn.modules.batchnorm._BatchNorm
_DROPOUT = nn.modules.dropout._DropoutNd


def dropout_variance(mean, var, p):
    c, v = float(mean), float(var)
    return (c * c + v) / (1.0 - p) - c * c


def variance_shift_ratio(mean, var, p):
    c, v = float(mean), float(var)
    return (1.0 - p) * v / (v + p * c * c)


def _modes(model):
    return [(m, m.training) for m in model.modules()]


def _restore(modes):
    for m, training in modes:
        m.training = training


def bn_input_variance(model, bn, X):
    seen = []
    hook = bn.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach()))
    modes = _modes(model)
    dims = None
    try:
        model.eval()
        out = []
        with torch.no_grad():
            for dropout_on in (True, False):
                for m in model.modules():
                    if isinstance(m, _DROPOUT):
                        m.train(dropout_on)
                seen.clear()
                model(X)
                z = seen[0]
                dims = [d for d in range(z.dim()) if d != 1]
                out.append(z.var(dim=dims, unbiased=False))
    finally:
        hook.remove()
        _restore(modes)
    return out[0], out[1]


def recalibrate_bn(model, X, batch_size):
    return recalibrate_with(model, X, batch_size)


def recalibrate_with(model, X, batch_size, *, reset=True, momentum_none=True, bn_train=True, dropout=False,
                     starts=None, size=None, layer_by_layer=False):
    """recalibrate_bn, and (for the checks that name a mistake, and the mutant corpus) the
    variants a student writes by mistake: no reset, the BN's own momentum (an exponential
    average), BN layers left in eval mode, dropout on, other batches (``starts`` and ``size``),
    one BN layer after the other. Modes and momenta are restored; returns the model."""
    modes = _modes(model)
    bns = [m for m in model.modules() if isinstance(m, _BN)]
    momenta = [bn.momentum for bn in bns]
    starts = range(0, len(X), batch_size) if starts is None else starts
    size = batch_size if size is None else size
    try:
        model.eval()
        for m in model.modules():
            if isinstance(m, _DROPOUT):
                m.train(dropout)
        for group in ([[bn] for bn in bns] if layer_by_layer else [bns]):
            for bn in group:
                if reset:
                    bn.reset_running_stats()
                if momentum_none:
                    bn.momentum = None
                bn.train(bn_train)
            with torch.no_grad():
                for i in starts:
                    model(X[i:i + size])
            if layer_by_layer:
                group[0].eval()
    finally:
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
        _restore(modes)
    return model


def uout(x, beta, generator, training=True):
    if not training:
        return x
    r = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) * (2.0 * beta) - beta
    return x * (1.0 + r)
