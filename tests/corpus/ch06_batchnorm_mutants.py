"""The mistakes students make in chapter 06. Every one must lose points under
every seed (tests/test_corpora.py), and every table row states, as its third
entry, the share of its function's points it may keep at most (or a
(min, max) pair when part of it must be credited), with the reason on its
line: the share an experienced teaching assistant would leave it
(autograder/POLICY.md)."""
import copy

import numpy as np
import torch
from torch import nn

from autograder.reference.ch06_batchnorm import recalibrate_with

_BN = nn.modules.batchnorm._BatchNorm
_DROPOUT = nn.modules.dropout._DropoutNd


# -- dropout_variance --------------------------------------------------------------------------------

def dv_standard_dropout(mean, var, p):
    keep = 1 - p
    return keep * (mean ** 2 + var) - keep ** 2 * mean ** 2          # Var[x m], no 1/(1-p)


def dv_zero_mean(mean, var, p):
    return var / (1 - p)


def dv_no_mean_subtracted(mean, var, p):
    return (mean ** 2 + var) / (1 - p)                                # E[y^2]


def dv_p_is_keep(mean, var, p):
    return (mean ** 2 + var) / p - mean ** 2


def dv_mask_share_only(mean, var, p):
    return p / (1 - p) * (mean ** 2 + var)


def dv_m_squared(mean, var, p):
    return (mean ** 2 + var) / (1 - p) ** 2 - mean ** 2               # E[m^2] taken as (1-p)^2


def dv_mean_rescaled(mean, var, p):
    return (mean ** 2 + var) / (1 - p) - (mean / (1 - p)) ** 2


def dv_noise_on_mean_only(mean, var, p):
    return var + p / (1 - p) * mean ** 2


def dv_std(mean, var, p):
    return ((mean ** 2 + var) / (1 - p) - mean ** 2) ** 0.5


def dv_var_squared(mean, var, p):
    return (mean ** 2 + var ** 2) / (1 - p) - mean ** 2               # var read as a standard deviation


def dv_mean_not_squared(mean, var, p):
    return (mean + var) / (1 - p) - mean


def dv_test_variance(mean, var, p):
    return float(var)


def dv_list(mean, var, p):
    return [(mean ** 2 + var) / (1 - p) - mean ** 2]


def dv_returns_none(mean, var, p):
    (mean ** 2 + var) / (1 - p) - mean ** 2


# -- variance_shift_ratio ------------------------------------------------------------------------------

def _train(mean, var, p):
    return (mean ** 2 + var) / (1 - p) - mean ** 2


def sr_inverted(mean, var, p):
    return _train(mean, var, p) / var if var else float("inf")


def sr_one_minus_p(mean, var, p):
    return 1 - p


def sr_standard_dropout(mean, var, p):
    return var / ((1 - p) * (mean ** 2 + var) - (1 - p) ** 2 * mean ** 2)


def sr_p_is_keep(mean, var, p):
    return p * var / (var + (1 - p) * mean ** 2)


def sr_no_mean_subtracted(mean, var, p):
    return (1 - p) * var / (mean ** 2 + var)


def sr_mean_not_squared(mean, var, p):
    return (1 - p) * var / (var + p * mean)


def sr_mask_share(mean, var, p):
    return var / (p / (1 - p) * (mean ** 2 + var)) if p else 1.0


def sr_lost_fraction(mean, var, p):
    return 1 - (1 - p) * var / (var + p * mean ** 2)


def sr_m_squared(mean, var, p):
    return var / ((mean ** 2 + var) / (1 - p) ** 2 - mean ** 2)


def sr_divides_by_var(mean, var, p):
    s2 = p / (1 - p)
    return 1 / (1 + s2 * (1 + mean ** 2 / var))                       # ZeroDivisionError for a constant unit


def sr_array(mean, var, p):
    return np.array([(1 - p) * var / (var + p * mean ** 2)])


def sr_returns_none(mean, var, p):
    (1 - p) * var / (var + p * mean ** 2)


# -- bn_input_variance ------------------------------------------------------------------------------------

def _var(z, unbiased=False):
    dims = [d for d in range(z.dim()) if d != 1]
    return z.var(dim=dims, unbiased=unbiased)


def _measure(model, bn, X, *, dropout_pass, eval_pass, order=("dropout", "eval"), output=False, unbiased=False,
             restore="each", no_grad=True, reduce=_var, swap=False):
    """A configurable bn_input_variance: each pass is a function that sets the modes."""
    saved = [(m, m.training) for m in model.modules()]
    seen = {}
    hook = bn.register_forward_hook(lambda mod, inp, out: seen.__setitem__("z", out if output else inp[0]))
    results = {}
    ctx = torch.no_grad() if no_grad else torch.enable_grad()
    with ctx:
        for name in order:
            (dropout_pass if name == "dropout" else eval_pass)(model)
            model(X)
            results[name] = reduce(seen["z"]) if reduce is not _var else _var(seen["z"], unbiased)
    hook.remove()
    if restore == "each":
        for m, t in saved:
            m.training = t
    elif restore == "model":
        model.train(saved[0][1])
    elif restore == "eval":
        model.eval()
    out = (results["dropout"], results["eval"])
    return out[::-1] if swap else out


def _modes(everything: bool, kind, kind_training: bool):
    """A function that puts the whole model in training mode or not, then every module of
    ``kind`` in training mode or not."""
    def set_modes(model):
        model.train(everything)
        for m in model.modules():
            if isinstance(m, kind):
                m.train(kind_training)
    return set_modes


_dropout_on = _modes(False, _DROPOUT, True)
_dropout_off = _modes(False, _DROPOUT, False)
_all_train = _modes(True, _DROPOUT, True)
_bn_train_dropout_off = _modes(True, _DROPOUT, False)
_only_nn_dropout_on = _modes(False, nn.Dropout, True)


def biv_bn_training_mode(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_all_train, eval_pass=_bn_train_dropout_off)


def biv_batch_stats_in_dropout_pass(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_all_train, eval_pass=_dropout_off, order=("eval", "dropout"))


def biv_unbiased(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_dropout_on, eval_pass=_dropout_off, unbiased=True)


def biv_after_bn(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_dropout_on, eval_pass=_dropout_off, output=True)


def biv_dropout_never_on(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_dropout_off, eval_pass=_dropout_off)


def biv_only_nn_dropout(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_only_nn_dropout_on, eval_pass=_dropout_off)


def biv_left_in_eval(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_dropout_on, eval_pass=_dropout_off, restore="eval")


def biv_restores_model_flag_only(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_dropout_on, eval_pass=_dropout_off, restore="model")


def biv_no_grad_missing(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_dropout_on, eval_pass=_dropout_off, no_grad=False)


def biv_swapped(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_dropout_on, eval_pass=_dropout_off, swap=True)


def biv_std(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_dropout_on, eval_pass=_dropout_off,
                    reduce=lambda z: _var(z).sqrt())


def biv_one_number(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_dropout_on, eval_pass=_dropout_off,
                    reduce=lambda z: z.var(unbiased=False))


def biv_over_batch_only(model, bn, X):
    return _measure(model, bn, X, dropout_pass=_dropout_on, eval_pass=_dropout_off,
                    reduce=lambda z: z.var(dim=0, unbiased=False))


def biv_returns_none(model, bn, X):
    _measure(model, bn, X, dropout_pass=_dropout_on, eval_pass=_dropout_off)


# -- recalibrate_bn --------------------------------------------------------------------------------------

def rb_default_momentum(model, X, batch_size):
    return recalibrate_with(model, X, batch_size, momentum_none=False)


def rb_no_reset(model, X, batch_size):
    return recalibrate_with(model, X, batch_size, reset=False)


def rb_whole_model_train(model, X, batch_size):
    return recalibrate_with(model, X, batch_size, dropout=True)          # model.train(): dropout on too


def rb_bn_in_eval(model, X, batch_size):
    return recalibrate_with(model, X, batch_size, bn_train=False)


def rb_reset_parameters(model, X, batch_size):
    for m in model.modules():
        if isinstance(m, _BN):
            m.reset_parameters()                                         # the affine weights too
    return recalibrate_with(model, X, batch_size)


def rb_momentum_left_none(model, X, batch_size):
    recalibrate_with(model, X, batch_size)
    for m in model.modules():
        if isinstance(m, _BN):
            m.momentum = None
    return model


def rb_modes_not_restored(model, X, batch_size):
    return recalibrate_with(model, X, batch_size).eval()


def rb_returns_copy(model, X, batch_size):
    return recalibrate_with(copy.deepcopy(model), X, batch_size)


def rb_drops_last_batch(model, X, batch_size):
    return recalibrate_with(model, X, batch_size, starts=range(0, len(X) - batch_size + 1, batch_size))


def rb_one_batch(model, X, batch_size):
    return recalibrate_with(model, X, len(X))


def rb_shuffled(model, X, batch_size):
    return recalibrate_with(model, X[torch.randperm(len(X))], batch_size)


def rb_biased_variance(model, X, batch_size):
    """Hooks add up every batch's mean and BIASED variance; their averages are written in."""
    sums = {}

    def add(module, args):
        z = args[0].detach()
        dims = [d for d in range(z.dim()) if d != 1]
        total = sums.setdefault(module, [0, 0.0, 0.0])
        total[0] += 1
        total[1] = total[1] + z.mean(dims)
        total[2] = total[2] + z.var(dims, unbiased=False)

    handles = [m.register_forward_pre_hook(add) for m in model.modules() if isinstance(m, _BN)]
    recalibrate_with(model, X, batch_size)
    for handle in handles:
        handle.remove()
    with torch.no_grad():
        for bn, (k, mean_sum, var_sum) in sums.items():
            bn.running_mean.copy_(mean_sum / k)
            bn.running_var.copy_(var_sum / k)
    return model


def rb_layer_by_layer(model, X, batch_size):
    return recalibrate_with(model, X, batch_size, layer_by_layer=True)  # not torch's single pass


def rb_returns_none(model, X, batch_size):
    recalibrate_with(model, X, batch_size)


# -- uout --------------------------------------------------------------------------------------------------

def _r(x, beta, generator, low=-1.0, high=1.0):
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype)
    return (low + (high - low) * u) * beta


def uout_additive(x, beta, generator, training=True):
    return x + _r(x, beta, generator) if training else x


def uout_zero_to_beta(x, beta, generator, training=True):
    return x * (1 + _r(x, beta, generator, 0.0, 1.0)) if training else x


def uout_noise_in_eval(x, beta, generator, training=True):
    return x * (1 + _r(x, beta, generator))


def uout_one_r(x, beta, generator, training=True):
    if not training:
        return x
    r = (torch.rand(1, generator=generator, dtype=x.dtype) * 2 - 1) * beta
    return x * (1 + r)


def uout_one_r_per_row(x, beta, generator, training=True):
    if not training:
        return x
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    r = (torch.rand(shape, generator=generator, dtype=x.dtype) * 2 - 1) * beta
    return x * (1 + r)


def uout_times_r(x, beta, generator, training=True):
    return x * _r(x, beta, generator) if training else x


def uout_global_rng(x, beta, generator, training=True):
    if not training:
        return x
    return x * (1 + (torch.rand(x.shape, dtype=x.dtype) * 2 - 1) * beta)


def uout_fixed_seed(x, beta, generator, training=True):
    return x * (1 + _r(x, beta, torch.Generator().manual_seed(0))) if training else x


def uout_normal(x, beta, generator, training=True):
    if not training:
        return x
    return x * (1 + torch.randn(x.shape, generator=generator, dtype=x.dtype) * beta / 3 ** 0.5)


def uout_half_width(x, beta, generator, training=True):
    return x * (1 + _r(x, beta, generator, -0.5, 0.5)) if training else x


def uout_detached(x, beta, generator, training=True):
    return x.detach() * (1 + _r(x, beta, generator)) if training else x


def uout_in_place(x, beta, generator, training=True):
    return x.mul_(1 + _r(x, beta, generator)) if training else x


def uout_numpy(x, beta, generator, training=True):
    if not training:
        return x
    r = _r(x, beta, generator).numpy()
    return x.detach().numpy() * (1 + r)


def uout_float64_output(x, beta, generator, training=True):
    if not training:
        return x
    return x * (1 + (torch.rand(x.shape, generator=generator, dtype=torch.float64) * 2 - 1) * beta)


def uout_dropout_instead(x, beta, generator, training=True):
    if not training:
        return x
    keep = (torch.rand(x.shape, generator=generator) >= beta).to(x.dtype)
    return x * keep / (1 - beta) if beta < 1 else x * 0


def uout_returns_none(x, beta, generator, training=True):
    x * (1 + _r(x, beta, generator))


MUTANTS = {
    "dropout_variance": [
        ("standard dropout's variance", dv_standard_dropout, 0.0),   # no 1/(1-p): wrong for every unit
        ("zero-mean formula", dv_zero_mean, 0.17),                   # right for c = 0 only: 1/6
        ("E[y^2], no - c^2", dv_no_mean_subtracted, 0.17),           # right for c = 0 only: 1/6
        ("p read as keep", dv_p_is_keep, 0.0),                       # Li et al.'s convention, untranslated
        ("mask share only", dv_mask_share_only, 0.0),                # forgets the data's own variance
        ("E[m^2] = (1-p)^2", dv_m_squared, 0.0),                     # m^2 = m forgotten
        ("mean rescaled", dv_mean_rescaled, 0.17),                   # subtracts (c/(1-p))^2: right for c = 0: 1/6
        ("noise on the mean only", dv_noise_on_mean_only, 0.0),      # v + p/(1-p) c^2
        ("standard deviation", dv_std, 0.0),                         # not a variance
        ("var squared", dv_var_squared, 0.0),                        # var read as a standard deviation
        ("mean not squared", dv_mean_not_squared, 0.17),             # c where c^2 belongs: right for c = 0: 1/6
        ("test-time variance", dv_test_variance, 0.0),               # returns v whatever p
        ("a list", dv_list, (0.83, 0.84)),                           # right number in a list: 5/6
        ("returns None", dv_returns_none, 0.0),                      # nothing to grade
    ],
    "variance_shift_ratio": [
        ("inverted", sr_inverted, 0.0),                              # training / test: above 1
        ("1 - p", sr_one_minus_p, 0.17),                             # the zero-mean ratio only: 1/6
        ("standard dropout", sr_standard_dropout, 0.0),              # divides by standard dropout's variance
        ("p read as keep", sr_p_is_keep, 0.0),                       # Li et al.'s convention, untranslated
        ("no - c^2", sr_no_mean_subtracted, 0.17),                   # var / E[y^2]: right for c = 0: 1/6
        ("mean not squared", sr_mean_not_squared, 0.17),             # c where c^2 belongs: right for c = 0: 1/6
        ("mask share only", sr_mask_share, 0.0),                     # var over the mask's share
        ("lost fraction", sr_lost_fraction, 0.0),                    # 1 - ratio
        ("E[m^2] = (1-p)^2", sr_m_squared, 0.0),                     # m^2 = m forgotten
        ("divides by var", sr_divides_by_var, (0.83, 0.84)),         # right, but a constant unit crashes: 5/6
        ("array of one", sr_array, (0.83, 0.84)),                    # right number in an array: 5/6
        ("returns None", sr_returns_none, 0.0),                      # nothing to grade
    ],
    "bn_input_variance": [
        ("BN in training mode (updates running stats)", biv_bn_training_mode, 0.0),  # batch statistics everywhere
        ("batch statistics in the dropout pass", biv_batch_stats_in_dropout_pass, 0.4),  # eval_var right: 4/10
        ("unbiased variance", biv_unbiased, (0.6, 0.6)),             # n - 1: the rest right, 6/10
        ("measured after bn", biv_after_bn, 0.0),                    # bn's output, not its input
        ("dropout never on", biv_dropout_never_on, 0.4),             # train_var = eval_var: 4/10
        ("only nn.Dropout switched on", biv_only_nn_dropout, 0.4),   # nn.Dropout2d stays off: 4/10
        ("left in eval mode", biv_left_in_eval, (0.9, 0.9)),         # modes not restored: 9/10
        ("only the model's flag restored", biv_restores_model_flag_only, (0.9, 0.9)),  # mixed modes lost: 9/10
        ("no torch.no_grad()", biv_no_grad_missing, (0.9, 0.9)),     # values attached to a graph: 9/10
        ("returns (eval_var, train_var)", biv_swapped, 0.0),         # the order of the spec
        ("standard deviation", biv_std, 0.0),                        # not a variance
        ("one number for all channels", biv_one_number, 0.0),        # not per channel
        ("over the batch only", biv_over_batch_only, 0.0),           # BatchNorm2d: (C, H, W) values
        ("returns None", biv_returns_none, 0.0),                     # nothing to grade
    ],
    "recalibrate_bn": [
        ("default momentum (EMA)", rb_default_momentum, 0.0),        # exponential, not cumulative
        ("no reset", rb_no_reset, 0.0),                              # the old statistics keep their weight
        ("whole model in training mode", rb_whole_model_train, (0.33, 0.34)),  # dropout on: 3/9
        ("BN layers in eval mode", rb_bn_in_eval, 0.0),              # nothing accumulated: the reset values
        ("reset_parameters()", rb_reset_parameters, 0.0),            # affine weights reset: every later BN input moves
        ("momentum left at None", rb_momentum_left_none, (0.88, 0.89)),  # statistics right, momentum lost: 8/9
        ("modes not restored", rb_modes_not_restored, (0.88, 0.89)),  # statistics right, modes lost: 8/9
        ("returns a copy", rb_returns_copy, (0.88, 0.89)),           # the caller's model unchanged: 8/9
        ("last batch left out", rb_drops_last_batch, 0.0),           # not every image averaged
        ("one batch", rb_one_batch, 0.0),                            # batch_size ignored
        ("shuffled batches", rb_shuffled, 0.0),                      # not X[i:i+batch_size] in order
        ("biased batch variances", rb_biased_variance, 0.0),         # torch stores the unbiased ones
        ("layer by layer", rb_layer_by_layer, 0.0),                  # several passes, not torch's single pass
        ("returns None", rb_returns_none, 0.0),                      # nothing to grade
    ],
    "uout": [
        ("additive", uout_additive, 0.0),                            # x + r: not multiplicative
        ("r on [0, beta]", uout_zero_to_beta, 0.59),                 # mean 1 + beta/2: 7/12
        ("noise in eval mode", uout_noise_in_eval, 0.59),            # training=False ignored: 7/12
        ("one r for the tensor", uout_one_r, 0.42),                  # every unit scaled alike: at most 5/12
        ("one r per row", uout_one_r_per_row, 0.42),                 # per example, not per entry: at most 5/12
        ("x * r", uout_times_r, 0.0),                                # forgets the 1 +
        ("global generator", uout_global_rng, (0.91, 0.92)),         # torch.rand without generator: 11/12
        ("seed fixed inside", uout_fixed_seed, (0.91, 0.92)),        # the same noise on every call: 11/12
        ("normal noise", uout_normal, 0.0),                          # unbounded r
        ("width beta", uout_half_width, 0.59),                       # r on (-beta/2, beta/2): 7/12
        ("x detached", uout_detached, (0.91, 0.92)),                 # no gradient reaches x: 11/12
        ("in place", uout_in_place, 0.84),                           # x changed, no backward through a leaf: 10/12
        ("numpy", uout_numpy, 0.84),                                 # not a tensor, no gradient: 10/12
        ("float64 output", uout_float64_output, (0.91, 0.92)),       # float32 input, float64 output: 11/12
        ("dropout instead", uout_dropout_instead, 0.0),              # Bernoulli noise is not Uout
        ("returns None", uout_returns_none, 0.0),                    # nothing to grade
    ],
}
