"""Checks for chapter 06, dropout and batch normalisation.

The two formulas (dropout_variance, variance_shift_ratio) and recalibrate_bn are
deterministic and compared, to float tolerance, with the hidden reference on the
probe's inputs. bn_input_variance is exact where no dropout is on the path to the
measured BN (its eval-mode variance always, and its training-mode variance when
the only dropout comes after that BN), and statistical where a dropout layer
feeds the measured BN directly. uout is checked exactly where the noise is
observable (r = out / x - 1 must lie in [-beta, beta], training=False must give
x, beta = 0 must give x) and statistically for the distribution of r.

Gating and weights (autograder/POLICY.md). The shares the corpus
(tests/corpus/ch06_batchnorm_mutants.py) holds:

* dropout_variance, variance_shift_ratio (4 of 6 central): zero-mean units (1)
  and units with a non-zero mean of either sign (3); p = 0 and a constant unit
  (1); a single float, also from numpy float32 scalars (1, peripheral). The
  zero-mean formula (v/(1-p), resp. 1 - p) and a formula without the - c^2 are
  right for c = 0 only and keep 1/6; standard dropout's variance, the inverted
  ratio, p read as the keep probability, E[m^2] = (1-p)^2 keep nothing; the
  right number in a list or an array keeps 5/6, and so does a ratio that
  divides by var (ZeroDivisionError on a constant unit).
* bn_input_variance (7 of 10 central): eval_var, the variance of bn's INPUT with
  dropout off and BN layers in eval mode (3; dividing by n - 1 is accepted here);
  the population variance, divide by the count (1, on two calls with 10 and 18
  values per channel); train_var with every dropout layer on (3, after eval_var);
  running statistics and num_batches_tracked unchanged (1); every module's mode
  restored (1); parameters, X and gradients untouched, nothing attached to a
  graph (1, peripheral). Measuring after bn, BN layers in training mode while
  measuring with dropout off, the two values swapped keep nothing; the unbiased
  variance keeps 6/10; dropout (or nn.Dropout2d) not switched on keeps 4/10;
  batch statistics in the dropout pass only keep 4/10; a mode not restored
  keeps 9/10; no torch.no_grad() keeps 9/10.
* recalibrate_bn (6 of 9 central): the cumulative average over the batches in
  order on models without dropout (3), and on models with dropout before and
  after BN layers, dropout off (3, after the first); the same model object is
  returned, updated in place (1); modes restored (1, peripheral); parameters,
  every BN's momentum and X untouched (1, peripheral). The exponential average,
  no reset, the reset values, the biased variance, one batch, the last batch
  left out keep nothing; dropout on during the pass (or the whole model in
  training mode) keeps 3/9; a modified copy returned keeps 8/9; the momentum
  left at None keeps 8/9.
* uout (9 of 12 central): r = out / x - 1 lies in [-beta, beta] and beta = 0
  gives x (3); r uniform on (-beta, beta) (2, statistical, after the range);
  one r per entry (2, after the range); training=False gives x (2, after the
  range); a function of the generator, new noise on every call (1); gradients
  reach x, d out / dx = 1 + r (1); a tensor of x's shape and dtype, x not
  modified (1, peripheral). Additive noise or x * r keep nothing; r on
  [0, beta] or noise in eval mode keep 7/12; one r for the whole tensor (or per
  row) keeps at most 5/12; torch's global generator keeps 11/12.

Statistical bounds (false-failure probability of a correct function, per
sub-check, each below the 1e-9 the design asks for; ALPHA = 1e-10 from
autograder.checks.stats):

* bn_input_variance, train_var where a dropout layer feeds the measured BN
  directly (three calls, 15 channels). The grader recomputes the dropout's
  input h (eval mode) from the probe's arguments. With n values y per channel,
  mu = E[y] = mean of h, and independent mask units u (one value for
  nn.Dropout, a whole feature map of one image for nn.Dropout2d), the measured
  variance is S = T - (B - mu)^2 with T = (1/n) sum (y - mu)^2 =
  (1/n) sum_u (m_u G_u + P_u mu^2) (m^2 = m; G_u sums h^2/(1-p)^2 -
  2 mu h/(1-p) over the unit's P_u values) and B = (1/n) sum y, both sums of
  independent bounded terms. Bernstein's inequality bounds P(|T - ET| >= t_T)
  and P(|B - mu| >= t_B) by ALPHA / 30 each (two per channel, union bound:
  ALPHA in all); then ET - t_T - t_B^2 <= S <= ET + t_T. tests/
  test_checks_ch06_batchnorm.py pins the bounds and shows that the variance
  with dropout off falls outside this interval on every probe seed.
* uout, r uniform: the 22 740 values u = r / beta of the three noise calls are
  independent and uniform on [-1, 1] for a correct function. Hoeffding:
  P(|mean u| >= t) <= 2 exp(-n t^2 / 2) and P(|mean u^2 - 1/3| >= t) <=
  2 exp(-2 n t^2), each set to ALPHA / 2 (ALPHA in all).
* uout, one r per entry: r is "constant along an axis" when every difference
  along it is below 1e-5; for a correct function two entries are that close
  with probability below 4e-5 / beta, and every call has at least 30 such
  independent pairs on every axis: below 1e-100.
* every other check is deterministic for a correct function.

Messages name the mistake, recognised by comparing the student's values with
what the mistake gives on the same inputs (recomputed here, never shown), and
quote numbers only from the public representative case (mean 3, var 4,
p = 0.2), from public constants (beta) or from the student's own outputs.
"""
import copy
import math

import numpy as np

from dropout_lab.probes.ch06_batchnorm import REPRESENTATIVE, UOUT_CALLS

from .base import (GENERATOR_MESSAGE, NONE_MESSAGE, Checker, CheckFailed, as_float_array,
                   check_function_of_rng, close, fmt, probe_arguments)
from autograder.reference.ch06_batchnorm import recalibrate_with
from dropout_lab.experiments.threads import one_thread

from .stats import ALPHA

# -- the formulas ---------------------------------------------------------------------------------

FORMULA_ZERO = "zero-mean units (mean = 0)"
FORMULA_GENERAL = "units with a non-zero mean (either sign)"
FORMULA_EDGE = "p = 0 (no dropout) and a constant unit (var = 0)"
FORMULA_FLOAT = "returns a single float, also for numpy float32 scalars"


def _train_var(c, v, p):
    return (c * c + v) / (1 - p) - c * c


DV_MISTAKES = [
    (lambda c, v, p: (1 - p) * (c * c + v) - (1 - p) ** 2 * c * c,
     "that is the variance of STANDARD dropout's training output x * m, without the 1/(1-p); inverted dropout "
     "divides the kept values by 1 - p"),
    (lambda c, v, p: v / (1 - p),
     "that is var/(1-p), right for a zero-mean unit only: the mask also multiplies the unit's mean, so the "
     "second moment c^2 + v is what dropout scales"),
    (lambda c, v, p: (c * c + v) / (1 - p),
     "that is E[y^2], the second moment: subtract the squared mean E[y]^2 = c^2"),
    (lambda c, v, p: (c * c + v) / p - c * c if p > 0 else math.nan,
     "you used p as the probability of KEEPING a unit (Li et al.'s convention); in this course p is the drop "
     "probability and a unit is kept with probability 1 - p"),
    (lambda c, v, p: p / (1 - p) * (c * c + v),
     "that is only the mask's share, p/(1-p) (c^2 + v); the unit's own variance v comes on top (the law of "
     "total variance)"),
    (lambda c, v, p: (c * c + v) / (1 - p) ** 2 - c * c,
     "you divided E[x^2] by (1-p)^2 and forgot E[m^2]: m is 0 or 1, so m^2 = m and E[m^2] = 1 - p"),
    (lambda c, v, p: (c * c + v) / (1 - p) - c * c / (1 - p) ** 2,
     "you subtracted (c/(1-p))^2: inverted dropout keeps the mean, E[y] = c"),
    (lambda c, v, p: v + p / (1 - p) * c * c,
     "the mask's noise multiplies the whole second moment c^2 + v, not only c^2"),
    (lambda c, v, p: math.sqrt(max(_train_var(c, v, p), 0.0)),
     "that is the standard deviation; return the variance"),
    (lambda c, v, p: (c * c + v * v) / (1 - p) - c * c,
     "you squared var: the argument var is already a variance, E[x^2] = c^2 + var"),
    (lambda c, v, p: (c + v) / (1 - p) - c,
     "you used the mean c where its square c^2 belongs"),
    (lambda c, v, p: v,
     "that is the test-time variance var; in training the mask adds its own noise"),
]

SR_MISTAKES = [
    (lambda c, v, p: _train_var(c, v, p) / v if v > 0 else math.nan,
     "that is training variance / test variance, the ratio upside down: BN meets test / training, a number "
     "below 1"),
    (lambda c, v, p: 1 - p,
     "that is 1 - p, the ratio of a zero-mean unit only: a unit's mean adds mask noise in training, so the "
     "ratio falls below 1 - p when the mean is not 0"),
    (lambda c, v, p: v / ((1 - p) * (c * c + v) - (1 - p) ** 2 * c * c),
     "you divided by the training variance of STANDARD dropout (no 1/(1-p)); inverted dropout divides the "
     "kept values by 1 - p"),
    (lambda c, v, p: p * v / (v + (1 - p) * c * c),
     "you used p as the probability of KEEPING a unit (Li et al.'s convention); in this course p is the drop "
     "probability"),
    (lambda c, v, p: (1 - p) * v / (c * c + v),
     "that is var / E[y^2]: the training variance is E[y^2] - E[y]^2, subtract c^2"),
    (lambda c, v, p: (1 - p) * v / (v + p * c),
     "you used the mean c where its square c^2 belongs"),
    (lambda c, v, p: v / (p / (1 - p) * (c * c + v)) if p > 0 else math.nan,
     "you divided by the mask's share of the variance only, p/(1-p) (c^2 + v); the training variance is v plus it"),
    (lambda c, v, p: 1 - (1 - p) * v / (v + p * c * c),
     "that is 1 - ratio, the fraction of the variance that disappears; return test / training"),
    (lambda c, v, p: v / ((c * c + v) / (1 - p) ** 2 - c * c),
     "your training variance forgets E[m^2] = 1 - p (m is 0 or 1, so m^2 = m)"),
]


def _scalar(c: Checker, key: str, what: str) -> float:
    """The one number a call returned (in a list, a tuple or an array of one too: the
    peripheral check asks for a plain float)."""
    entry = c.entry(key)
    values = c.outputs(key)
    value = values[0] if entry.is_tuple and len(values) == 1 else c.output(key)
    arr = as_float_array(value, what)
    c.require(arr.size == 1, f"the {what} must be one number; yours has shape {arr.shape}")
    return float(arr.reshape(-1)[0])


def _named_mistake(got, case, mistakes):
    """The sentence of the one mistake whose value at ``case`` is ``got``; None when no
    mistake or several give it (at mean = 0 several formulas coincide)."""
    found = []
    for fn, why in mistakes:
        try:
            value = fn(*case)
        except ZeroDivisionError:
            continue
        if np.isfinite(value) and np.isclose(got, value, rtol=1e-6, atol=1e-12):
            found.append(why)
    return found[0] if len(found) == 1 else None


def _where(case) -> str:
    """Which kind of hidden case a formula failed on (never its values)."""
    c, v, p = case
    if c == 0:
        return "for a zero-mean unit (mean = 0)"
    if p == 0:
        return "with p = 0 (no dropout)"
    if v == 0:
        return "for a constant unit (var = 0)"
    return "for a unit with a negative mean" if c < 0 else "for a unit with a positive mean"


def _check_formula(c: Checker, truth_fn, mistakes, what):
    zero, general = (np.asarray(a, dtype=np.float64) for a in c.ref("inputs"))

    def require_right(key, case, representative=False):
        got = _scalar(c, key, what)
        case = tuple(float(x) for x in case)
        if np.isclose(got, truth_fn(*case), rtol=1e-6, atol=1e-12):
            return
        why = _named_mistake(got, case, mistakes)
        if not np.isfinite(got):
            why = f"your {what} is {got} where it is a finite number"
        if representative:
            head = f"with mean = {fmt(case[0])}, var = {fmt(case[1])}, p = {fmt(case[2])} your {what} is {fmt(got)}"
            raise CheckFailed(f"{head}: {why}" if why else
                              f"{head}; derive it again from E[y^2] - E[y]^2 with y = x m / (1 - p)")
        raise CheckFailed(f"your {what} is wrong {_where(case)}" + (f": {why}" if why else ""))

    # Central, 1 of 6: the zero-mean formula and the formula without - c^2 keep this part only.
    with c.check(FORMULA_ZERO, weight=1, central=True):
        for i, case in enumerate(zero):
            require_right(f"zero mean {i}", case)

    # Central, 3 of 6, the representative case first: every other mistake keeps nothing.
    with c.check(FORMULA_GENERAL, weight=3, central=True):
        for i, case in enumerate(general[:-2]):
            require_right(f"case {i}", case, representative=(i == 0))

    # Not central, 1 of 6: a formula that divides by var (crashes on a constant unit) keeps 5/6.
    with c.check(FORMULA_EDGE, weight=1):
        for i in (len(general) - 2, len(general) - 1):
            error = c.raised(f"case {i}")
            if error:
                raise CheckFailed(f"{_where(general[i])} your function raised {error}: the {what} is a finite number "
                                  "there, so write it in a form that needs no special case (no division by var or "
                                  "by p)")
            require_right(f"case {i}", general[i])

    with c.check(FORMULA_FLOAT, weight=1, peripheral=True):
        entry = c.entry("case 0")
        c.require(not entry.is_tuple, f"return the {what} itself, not a list or tuple holding it")
        arr = np.asarray(c.output("case 0"))
        c.require(arr.ndim == 0, f"return a single float, not an array of shape {arr.shape} (use float(...))")
        got = _scalar(c, "float32 scalars", what)
        want = truth_fn(*(float(np.float32(x)) for x in general[1]))
        c.require(np.isclose(got, want, rtol=1e-5, atol=1e-9),
                  f"with numpy float32 scalars as arguments your {what} is wrong (convert them with float(...))")


def check_dropout_variance(c: Checker):
    _check_formula(c, _train_var, DV_MISTAKES, "variance")


def _ratio(c, v, p):
    return (1 - p) * v / (v + p * c * c)


def check_variance_shift_ratio(c: Checker):
    _check_formula(c, _ratio, SR_MISTAKES, "ratio")


# -- torch helpers -----------------------------------------------------------------------------------

def _torch():
    import torch

    return torch


def _is_dropout(m) -> bool:
    return isinstance(m, _torch().nn.modules.dropout._DropoutNd)


def _is_bn(m) -> bool:
    return isinstance(m, _torch().nn.modules.batchnorm._BatchNorm)


def _module_input(model, module, X, *, train_bn=False, dropout=False, output=False):
    """The input (or output) of ``module`` on X (float64), with every BN layer in
    training mode or not and every dropout layer on or off; works on a copy."""
    torch = _torch()
    model, module = copy.deepcopy((model, module))
    seen = []
    hook = module.register_forward_hook(lambda mod, inp, out: seen.append((out if output else inp[0]).double()))
    model.eval()
    for m in model.modules():
        if _is_bn(m):
            m.train(train_bn)
        elif _is_dropout(m):
            m.train(dropout)
    with torch.no_grad():
        model(X)
    hook.remove()
    return seen[0]


def _channel_var(z, unbiased=False):
    dims = [d for d in range(z.dim()) if d != 1]
    return z.var(dim=dims, unbiased=unbiased).numpy()


def _values_per_channel(z) -> int:
    return int(z.numel() // z.shape[1])


# -- bn_input_variance -----------------------------------------------------------------------------

#: Calls of the probe, representative first.
BN_KEYS = ("direct 1d", "direct 2d, Dropout2d", "direct 2d, own class", "dropout, linear, BN",
           "second bn, dropout after it", "first bn, dropout after it", "ten rows", "two images of 3 x 3")
#: Calls with few values per channel (10 and 18): the population variance differs from the unbiased one.
SMALL_KEYS = ("ten rows", "two images of 3 x 3")
#: Calls whose measured BN is fed by a dropout layer directly: train_var is checked statistically.
DIRECT_KEYS = ("direct 1d", "direct 2d, Dropout2d", "direct 2d, own class")
#: Calls whose measured BN has dropout only after it: train_var must equal eval_var.
NO_DROPOUT_BEFORE = ("second bn, dropout after it", "first bn, dropout after it")
#: Union bound of the statistical check: two bounds (A and B) per channel of the direct calls.
BN_STAT_BOUNDS = 2 * (8 + 4 + 3)

BN_EVAL = "eval_var: the variance of bn's input, dropout off, every BN layer in eval mode"
BN_POP = "the population variance: divide by the number of values, not n - 1"
BN_TRAIN = "train_var: the same with every dropout layer on (statistical where dropout feeds bn)"


def _bn_result(c: Checker, key: str):
    """(train_var, eval_var, the dict the probe recorded) of one call."""
    d = c.output(key)
    c.require(isinstance(d, dict), "your function's result could not be read")
    if bool(np.asarray(d.get("none", False))):
        raise CheckFailed(NONE_MESSAGE)
    n = int(np.asarray(d["n"]))
    c.require(n == 2, f"bn_input_variance must return two values, (train_var, eval_var); yours returned {n}")
    return as_float_array(d.get("v0"), "train_var"), as_float_array(d.get("v1"), "eval_var"), d


def _bn_args(c: Checker, key: str):
    args, _ = probe_arguments(c, key)
    _, model, bn, X, _ = args
    return model, bn, X


def _channels_problem(arr, want_shape, what):
    if arr.shape == tuple(want_shape):
        return None
    if arr.ndim == 0:
        return (f"your {what} is one number; return one variance per channel (dim 1), shape {tuple(want_shape)}: "
                "average over every other dimension, not over the channels")
    return (f"your {what} has shape {arr.shape} instead of {tuple(want_shape)}: one variance per channel (dim 1), "
            "taken over every other dimension (for images: the batch, the height and the width)")


def _eval_problem(c: Checker, key: str, tv, ev, ref_ev, ref_tv) -> str:
    """Name the mistake behind a wrong eval_var."""
    model, bn, X = _bn_args(c, key)
    if close(tv, ref_ev, rtol=1e-4, atol=1e-7) and not close(tv, ev, rtol=1e-4, atol=1e-7):
        return ("you return (eval_var, train_var): the order is (train_var, eval_var), dropout on first")
    if close(ev, np.sqrt(ref_ev), rtol=1e-4, atol=1e-7):
        return "that is the standard deviation; return the variance"
    out = _module_input(model, bn, X, output=True)
    for unbiased in (False, True):
        if close(ev, _channel_var(out, unbiased), rtol=1e-4, atol=1e-7):
            return ("that is the variance of bn's OUTPUT: measure what reaches bn, its INPUT (a forward pre-hook, "
                    "or the input argument of a forward hook)")
    for unbiased in (False, True):
        batch = _module_input(model, bn, X, train_bn=True)
        if close(ev, _channel_var(batch, unbiased), rtol=1e-4, atol=1e-7):
            return ("with dropout off your variance is that of a model whose BN layers normalise with their batch "
                    "statistics (training mode): while you measure, every BN layer must use its running statistics "
                    "(eval mode)")
    with_dropout = _module_input(model, bn, X, dropout=True)
    if not close(ref_tv, ref_ev, rtol=1e-4, atol=1e-7) and close(ev, tv, rtol=1e-6, atol=1e-9) \
            and not close(_channel_var(with_dropout), ref_ev, rtol=1e-3, atol=1e-6):
        return "your eval_var equals your train_var: switch every dropout layer off for the second pass"
    ratio = float(np.median(ev / np.where(ref_ev > 0, ref_ev, np.nan)))
    return ("your eval_var is not the per-channel variance of the input reaching bn with dropout off "
            f"(the median ratio of yours to it is {ratio:.3g})")


def _bernstein(V: float, b: float, delta: float) -> float:
    """t with 2 exp(-t^2 / (2 (V + b t / 3))) = delta for a sum of independent terms with
    total variance V whose deviations are bounded by b."""
    L = math.log(2.0 / delta)
    return L * b / 3.0 + math.sqrt((L * b / 3.0) ** 2 + 2.0 * L * V)


def _feeding_dropout(model, bn):
    """The dropout module right before bn in its parent, or None."""
    for parent in model.modules():
        kids = list(parent.children())
        for i, kid in enumerate(kids):
            if kid is bn:
                return kids[i - 1] if i > 0 and _is_dropout(kids[i - 1]) else None
    return None


_INTERVALS: dict = {}


def train_var_interval(model, bn, X, *, train_bn=False, delta=ALPHA / BN_STAT_BOUNDS):
    """(lo, hi) per channel: where the population variance S of bn's input, with the
    dropout layer that feeds it on, lies with probability at least 1 - 2 delta per
    channel (see the module docstring), h (the dropout's input) computed with every BN
    layer in eval mode (or in training mode, to recognise that mistake)."""
    torch = _torch()
    drop = _feeding_dropout(model, bn)
    h = _module_input(model, drop, X, train_bn=train_bn)
    p = float(drop.p)
    n_ch = h.shape[1]
    per_map = not isinstance(drop, torch.nn.Dropout) and h.dim() > 2     # Dropout1d/2d/3d: whole feature maps
    z = h.transpose(0, 1).reshape(n_ch, h.shape[0], -1)                 # (C, N, positions)
    n = z.shape[1] * z.shape[2]
    mu = z.mean(dim=(1, 2), keepdim=True)                                # E[y] = E[h], per channel
    G = z * z / (1 - p) ** 2 - 2 * mu * z / (1 - p)                      # (y - mu)^2 = m G + mu^2 (m^2 = m)
    H1 = z / (1 - p)
    if per_map:
        G, H1 = G.sum(-1), H1.sum(-1)
    G, H1 = G.reshape(n_ch, -1).numpy() / n, H1.reshape(n_ch, -1).numpy() / n
    lo, hi = np.zeros(n_ch), np.zeros(n_ch)
    for j in range(n_ch):
        ET = (1 - p) * G[j].sum() + float(mu[j].reshape(())) ** 2
        tT = _bernstein(p * (1 - p) * float((G[j] ** 2).sum()), float(np.abs(G[j]).max()), delta)
        tB = _bernstein(p * (1 - p) * float((H1[j] ** 2).sum()), float(np.abs(H1[j]).max()), delta)
        lo[j], hi[j] = ET - tT - tB * tB, ET + tT
    return lo, hi


def _interval(c: Checker, key: str, train_bn=False):
    """train_var_interval for a call of the probe, cached per seed (the corpora score
    many functions against one seed's inputs)."""
    k = (c.reference.seed, key, train_bn)
    if k not in _INTERVALS:
        if len(_INTERVALS) > 256:
            _INTERVALS.clear()
        model, bn, X = _bn_args(c, key)
        with one_thread():
            _INTERVALS[k] = train_var_interval(model, bn, X, train_bn=train_bn)
    return _INTERVALS[k]


def _inside(tv, lo, hi) -> bool:
    slack = 1e-3 * np.abs(hi) + 1e-6        # float32 arithmetic; n / (n - 1) is checked elsewhere
    return bool(np.all((tv >= lo - slack) & (tv <= hi + slack)))


def _train_problem(c: Checker, key: str, tv, ev) -> str | None:
    lo, hi = _interval(c, key)
    if _inside(tv, lo, hi):
        return None
    if close(tv, ev, rtol=1e-5, atol=1e-8):
        model, bn, _ = _bn_args(c, key)
        kind = type(_feeding_dropout(model, bn)).__name__
        extra = (f" (the {kind} layer here is a dropout layer too: test for nn.modules.dropout._DropoutNd, the "
                 "class every torch dropout layer derives from)" if kind != "Dropout" else "")
        return f"your train_var equals your eval_var: no dropout was active in the first pass{extra}"
    if _inside(tv, *_interval(c, key, train_bn=True)):
        return ("in the dropout pass your BN layers normalised with batch statistics (training mode): keep every BN "
                "layer in eval mode in both passes, switch only the dropout layers on")
    ratio = float(np.median(tv / (0.5 * (lo + hi))))
    return (f"your train_var is outside sampling error of the variance of bn's input with dropout on (the median "
            f"ratio of yours to its expected value is {ratio:.3g}); measure one forward pass of all of X with every "
            "dropout layer in training mode and every BN layer in eval mode")


def check_bn_input_variance(c: Checker):
    results = {}

    def result(key):
        if key not in results:
            results[key] = _bn_result(c, key)
        return results[key]

    # Central, 3 of 10: measuring after bn, BN layers in training mode, the two values swapped keep nothing.
    with c.check(BN_EVAL, weight=3, central=True):
        for key in BN_KEYS:
            tv, ev, _ = result(key)
            ref_tv, ref_ev, _ = _bn_result_ref(c, key)
            for arr, what in ((ev, "eval_var"), (tv, "train_var")):
                problem = _channels_problem(arr, ref_ev.shape, what)
                if problem:
                    raise CheckFailed(problem)
            n = _count(c, key)
            if not (close(ev, ref_ev, rtol=1e-4, atol=1e-7)                       # n - 1: the next check's business
                    or close(ev, ref_ev * n / (n - 1), rtol=1e-4, atol=1e-7)):
                with one_thread():
                    raise CheckFailed(_eval_problem(c, key, tv, ev, ref_ev, ref_tv))

    # Central, 1 of 10, after eval_var: the unbiased variance keeps everything else central, 6/10.
    with c.check(BN_POP, weight=1, central=True, gated_by=(BN_EVAL,)):
        for key in SMALL_KEYS:
            tv, ev, _ = result(key)
            _, ref_ev, _ = _bn_result_ref(c, key)
            if not close(ev, ref_ev, rtol=1e-4, atol=1e-7):
                n = _count(c, key)
                raise CheckFailed(f"with {n} values per channel your eval_var is {fmt(n / (n - 1))} = n/(n-1) "
                                  "times the variance: you divided by n - 1 (torch's default unbiased=True); "
                                  "the task asks for the population variance, divide by the count "
                                  "(unbiased=False, or correction=0)")

    # Central, 3 of 10, after eval_var: dropout not switched on (or nn.Dropout2d forgotten), batch statistics
    # in the dropout pass keep 4/10.
    with c.check(BN_TRAIN, weight=3, central=True, gated_by=(BN_EVAL,)):
        for key in DIRECT_KEYS + NO_DROPOUT_BEFORE + ("dropout, linear, BN",):
            tv, ev, _ = result(key)
            c.require(np.all(np.isfinite(tv)), "your train_var holds NaN or inf")
            if key in NO_DROPOUT_BEFORE:
                c.require(close(tv, ev, rtol=1e-4, atol=1e-7) or close(tv, _bn_result_ref(c, key)[1], rtol=1e-4,
                                                                       atol=1e-7),
                          "on a BN layer with dropout only AFTER it your train_var differs from eval_var: dropout "
                          "downstream cannot change what reaches bn, so keep every BN layer in eval mode in both "
                          "passes (batch statistics would change it)")
            elif key in DIRECT_KEYS:
                problem = _train_problem(c, key, tv, ev)
                if problem:
                    raise CheckFailed(problem)
            else:
                c.require(not close(tv, ev, rtol=1e-6, atol=1e-9),
                          "with a dropout layer before the linear layer that feeds bn your train_var equals your "
                          "eval_var: no dropout was active in the first pass")

    with c.check("running statistics and num_batches_tracked unchanged", weight=1):
        _every_call(c, BN_KEYS, lambda key: result(key)[2], _same_statistics,
                    "your function changed the running statistics of a BN layer (a forward pass with BN in training "
                    "mode updates them): keep every BN layer in eval mode while measuring; nothing may be updated")

    with c.check("every module's mode left as found", weight=1):
        _every_call(c, BN_KEYS, lambda key: result(key)[2], _same_modes, MODES_MESSAGE + ", not only the model's")

    with c.check("no gradients, no parameter and no input changed", weight=1, peripheral=True):
        for key in BN_KEYS:
            _, _, d = result(key)
            ref = c.ref(key)[0]
            c.require(not bool(np.asarray(d.get("requires_grad"))),
                      "your variances are attached to the autograd graph: measure under torch.no_grad()")
            c.require(not bool(np.asarray(d.get("param_grads"))), "your function left gradients in the parameters")
            c.require(close(as_float_array(d.get("params")), ref["params"], rtol=0, atol=0),
                      "your function changed a parameter of the model")
            c.require(3 not in c.mutated(key), "your function changed X in place")


#: What a function that changes modules' modes is told.
MODES_MESSAGE = ("after your function some module is in another mode than before (the probe's models start in "
                 "training mode, in eval mode or in a mix of both): save every module's `training` flag and restore "
                 "each one")


def _every_call(c: Checker, keys, read, same, message: str) -> None:
    """Require same(the student's recorded dict, the reference's) for every call in keys."""
    for key in keys:
        c.require(same(read(key), c.ref(key)[0]), message)


def _same_modes(d: dict, ref: dict) -> bool:
    modes = np.asarray(d.get("modes"))
    return modes.shape == ref["modes"].shape and np.array_equal(modes.astype(bool), ref["modes"])


def _same_statistics(d: dict, ref: dict) -> bool:
    return (np.array_equal(as_float_array(d.get("tracked")), ref["tracked"])
            and close(as_float_array(d.get("stats")), ref["stats"], rtol=0, atol=0))


def _bn_result_ref(c: Checker, key: str):
    d = c.ref(key)[0]
    return as_float_array(d["v0"]), as_float_array(d["v1"]), d


def _count(c: Checker, key: str) -> int:
    """Values per channel reaching bn in a call, as the reference's recording states it."""
    return int(np.asarray(c.ref(key)[0]["count"]))


# -- recalibrate_bn ------------------------------------------------------------------------------------

RECAL_NO_DROPOUT = ("two BN, batches of 16", "two BN, batches of 12", "two BN, one batch")
RECAL_DROPOUT = ("dropout, BatchNorm2d", "dropout, nested blocks")
RC_PLAIN = "models without dropout: torch's cumulative average over the batches X[i:i+batch_size], in order"
RC_DROPOUT = "models with dropout before and after BN layers: dropout off during the pass"


def _bn_stats(model) -> np.ndarray:
    bns = [m for m in model.modules() if _is_bn(m)]
    return np.concatenate([np.concatenate([bn.running_mean.double().numpy(), bn.running_var.double().numpy()])
                           for bn in bns])


def _simulate(model, X, batch_size, biased=False, **kwargs):
    """The running statistics a named variant of recalibration leaves (on a copy): the
    reference's recalibration with the variant's options, or (``biased``) the averages of the
    batch means and of the BIASED batch variances of one correct pass."""
    torch = _torch()
    model = copy.deepcopy(model)
    bns = [m for m in model.modules() if _is_bn(m)]
    inputs = {id(bn): [] for bn in bns}
    hooks = [bn.register_forward_pre_hook(lambda m, a: inputs[id(m)].append(a[0].double())) for bn in bns] \
        if biased else []
    recalibrate_with(model, X, batch_size, **kwargs)
    for hook in hooks:
        hook.remove()
    if biased:
        with torch.no_grad():
            for bn in bns:
                zs = inputs[id(bn)]
                bn.running_mean.copy_(torch.stack([_channel_mean(z) for z in zs]).mean(0))
                bn.running_var.copy_(torch.stack([torch.as_tensor(_channel_var(z)) for z in zs]).mean(0))
    return _bn_stats(model)


def _channel_mean(z):
    dims = [d for d in range(z.dim()) if d != 1]
    return z.mean(dim=dims)


#: (the options of recalibrate_with, as a function of len(X) and batch_size; what the student is told).
RC_MISTAKES = [
    (lambda n, b: dict(momentum_none=False),
     "your running statistics are an exponential moving average (each BN's own momentum): set momentum=None for "
     "the pass, so that torch keeps the cumulative average of every batch, and put the momentum back afterwards"),
    (lambda n, b: dict(reset=False),
     "you did not reset the running statistics first: with momentum=None torch averages over every batch since "
     "the last reset (num_batches_tracked counts them), so the old statistics keep most of the weight; call "
     "reset_running_stats() on every BN layer before the pass"),
    (lambda n, b: dict(reset=False, momentum_none=False),
     "the running statistics just continued their exponential average: reset them and set momentum=None first"),
    (lambda n, b: dict(bn_train=False),
     "your running statistics are the reset values (mean 0, variance 1): BN layers update them only in training "
     "mode, so put the BN layers (and only them) in training mode for the pass"),
    (lambda n, b: dict(reset=False, bn_train=False),
     "your running statistics are unchanged: BN layers update them only in training mode"),
    (lambda n, b: dict(biased=True),
     "your running variance averages the BIASED batch variances (divided by the batch size); torch stores the "
     "unbiased ones (divided by batch size - 1)"),
    (lambda n, b: dict(starts=[0], size=n),
     "you passed X as a single batch: recalibrate with the batches X[i:i+batch_size], in order"),
    (lambda n, b: dict(layer_by_layer=True),
     "you recalibrated one BN layer after the other, the earlier ones already in eval mode: torch's recalibration "
     "is a single pass with every BN layer in training mode, each normalising with its batch statistics"),
    (lambda n, b: dict(starts=range(0, n - b + 1, b)),
     "the last, smaller batch is missing: X[i:i+batch_size] for i = 0, batch_size, 2 batch_size, ... up to the "
     "end of X, the last batch may be shorter"),
]


def _recal_problem(c: Checker, key: str, stats) -> str:
    args, _ = probe_arguments(c, key)
    _, model, X, batch_size, _ = args
    params = c.output(key).get("params")
    if params is not None and not close(as_float_array(params), c.ref(key)[0]["params"], rtol=0, atol=0):
        return ("your function changed the BN layers' weights or biases (reset_parameters() resets them; "
                "reset_running_stats() resets only the statistics), so every later BN layer saw other inputs")
    for options, why in RC_MISTAKES:
        if close(stats, _simulate(model, X, batch_size, **options(len(X), batch_size)), rtol=1e-4, atol=1e-5):
            return why
    ref = c.ref(key)[0]["stats"]
    err = float(np.max(np.abs(stats - ref) / np.maximum(np.abs(ref), 1e-3)))
    return ("your running statistics differ from torch's cumulative average (momentum=None after "
            f"reset_running_stats(), every BN layer in training mode, batches X[i:i+batch_size] in order; largest "
            f"relative difference {err:.2g})")


def _recal_result(c: Checker, key: str) -> dict:
    d = c.output(key)
    c.require(isinstance(d, dict), "your function's result could not be read")
    if bool(np.asarray(d.get("none", False))):
        raise CheckFailed(NONE_MESSAGE + " (recalibrate_bn returns the model)")
    return d


def _recal_problem_of(c: Checker, key: str) -> str | None:
    """None when the call's running statistics are torch's cumulative average with dropout
    off (those of the reference), else what is wrong with them."""
    stats = as_float_array(_recal_result(c, key).get("stats"), "running statistics")
    ref = c.ref(key)[0]["stats"]
    c.require(stats.shape == ref.shape, "the returned model does not have the BN layers of the model given")
    if close(stats, ref, rtol=1e-4, atol=1e-5):
        return None
    with one_thread():
        return _recal_problem(c, key, stats)


def check_recalibrate_bn(c: Checker):
    # Central, 3 of 9: the exponential average, no reset, the biased variance, one batch keep nothing.
    with c.check(RC_PLAIN, weight=3, central=True):
        for key in RECAL_NO_DROPOUT:
            problem = _recal_problem_of(c, key)
            if problem:
                raise CheckFailed(problem)

    # Central, 3 of 9, after the first: dropout on during the pass keeps 3/9.
    with c.check(RC_DROPOUT, weight=3, central=True, gated_by=(RC_PLAIN,)):
        for key in RECAL_DROPOUT:
            problem = _recal_problem_of(c, key)
            if problem and problem.startswith("your running statistics differ"):
                problem = ("on models with dropout your statistics differ from the cumulative average with dropout "
                           "off (on models without dropout they are right): switch every dropout layer off (eval "
                           "mode) for the pass and only the BN layers to training mode, not the whole model")
            if problem:
                raise CheckFailed(problem)

    with c.check("returns the model it was given, updated in place", weight=1):
        for key in RECAL_NO_DROPOUT + RECAL_DROPOUT:
            d = _recal_result(c, key)
            c.require(bool(np.asarray(d.get("is_module"))), "recalibrate_bn must return the model (an nn.Module)")
            c.require(bool(np.asarray(d.get("same"))) and close(as_float_array(d.get("orig_stats")),
                                                                c.ref(key)[0]["stats"], rtol=1e-4, atol=1e-5),
                      "you returned a modified COPY of the model: update the model you were given and return it")

    with c.check("every module's mode left as found", weight=1, peripheral=True):
        _every_call(c, RECAL_NO_DROPOUT + RECAL_DROPOUT, lambda key: _recal_result(c, key), _same_modes,
                    MODES_MESSAGE)

    with c.check("weights, biases, every BN's momentum and X untouched", weight=1, peripheral=True):
        for key in RECAL_NO_DROPOUT + RECAL_DROPOUT:
            d = _recal_result(c, key)
            ref = c.ref(key)[0]
            momenta = as_float_array(d.get("momenta"), "momenta")
            c.require(momenta.shape == ref["momenta"].shape
                      and np.array_equal(np.isnan(momenta), np.isnan(ref["momenta"]))
                      and np.allclose(np.nan_to_num(momenta), np.nan_to_num(ref["momenta"]), rtol=0, atol=1e-12),
                      "a BN layer's momentum is not what it was: put every BN's own momentum back after the pass "
                      "(it may be 0.1, another number or None)")
            c.require(close(as_float_array(d.get("params")), ref["params"], rtol=0, atol=0),
                      "your function changed weights or biases (reset_parameters() resets the affine weights; "
                      "reset_running_stats() resets only the statistics)")
            c.require(2 not in c.mutated(key), "your function changed X in place")


# -- uout ---------------------------------------------------------------------------------------------------

U_RANGE = "multiplicative noise: r = out / x - 1 lies in [-beta, beta]; beta = 0 gives x"
U_UNIFORM = "r is uniform on (-beta, beta) (statistical)"
U_ENTRY = "one r per entry of x"
U_EVAL = "training=False gives x unchanged"
#: Range tolerance on r (float32 rounding of x * (1 + r) and of out / x).
R_TOL = 1e-5


def _uout_inputs(c: Checker) -> dict:
    values = c.ref("inputs")
    keys = [k for k, *_ in UOUT_CALLS] + ["eval float32", "eval float64", "beta=0", "fresh", "gradient", "upstream"]
    return {k: as_float_array(v) for k, v in zip(keys, values)}


def _noise(c: Checker, key: str, x: np.ndarray) -> np.ndarray:
    out = c.output(key)
    if out is None:
        raise CheckFailed(NONE_MESSAGE)
    out = as_float_array(out, "output")
    c.require(out.shape == x.shape, f"your output has shape {out.shape} instead of x's {x.shape}")
    c.require(np.all(np.isfinite(out)), "your output holds NaN or inf")
    return out / x - 1.0


def _range_problem(out_r, x, beta) -> str | None:
    if beta < 1 and np.mean(np.abs(out_r + 1.0) <= R_TOL) > 0.01:
        return ("some of your outputs are exactly 0: that is dropout's mask; Uout multiplies every entry by 1 + r "
                "with r uniform on (-beta, beta), so nothing is dropped")
    if np.all(np.abs(out_r) <= beta * (1 + R_TOL) + R_TOL):
        if np.all(np.abs(out_r) <= R_TOL):
            return f"with beta = {fmt(beta)} in training mode your output equals x: no noise was applied"
        return None
    out = (out_r + 1.0) * x
    if np.all(np.abs(out - x) <= beta + R_TOL):
        return ("your noise is ADDITIVE, x + r: Uout multiplies each entry by 1 + r, so that the noise scales with the "
                "unit (out = x * (1 + r))")
    if np.all(np.abs(out / x) <= beta + R_TOL):
        return "you multiplied x by r: Uout multiplies by 1 + r, whose mean is 1"
    if np.all((out_r >= -R_TOL) & (out_r <= 2 * beta + R_TOL)):
        return f"your r lies in [0, {fmt(2 * beta)}]: r ~ U(-beta, beta) is centred on 0"
    worst = float(np.max(np.abs(out_r)))
    return (f"with beta = {fmt(beta)} your out / x - 1 reaches {fmt(worst)}, outside [-beta, beta]: out = x * (1 + r) "
            "with r drawn uniformly from (-beta, beta) (a normal r is unbounded)")


def _hoeffding_mean(n: int, delta: float) -> float:
    """t with 2 exp(-n t^2 / 2) = delta: the mean of n independent values in [-1, 1]."""
    return math.sqrt(2.0 * math.log(2.0 / delta) / n)


def _hoeffding_unit(n: int, delta: float) -> float:
    """t with 2 exp(-2 n t^2) = delta: the mean of n independent values in [0, 1]."""
    return math.sqrt(math.log(2.0 / delta) / (2.0 * n))


def _constant_axes(r: np.ndarray) -> list:
    """The axes (of size > 1) along which r does not change, in every slice."""
    return [a for a in range(r.ndim) if r.shape[a] > 1 and np.all(np.abs(np.diff(r, axis=a)) <= R_TOL)]


def check_uout(c: Checker):
    xs = _uout_inputs(c)
    noise = {}

    # Central, 3 of 12: additive noise, x * r or a normal r keep nothing.
    with c.check(U_RANGE, weight=3, central=True):
        for key, _, _, beta in UOUT_CALLS:
            r = _noise(c, key, xs[key])
            problem = _range_problem(r, xs[key], beta)
            if problem:
                raise CheckFailed(problem)
            noise[key] = (r, beta)
        out = as_float_array(c.output("beta=0"), "output")
        c.require(out.shape == xs["beta=0"].shape and np.allclose(out, xs["beta=0"], rtol=1e-6, atol=0),
                  "with beta = 0 there is no noise: out must equal x")

    # Central, 2 of 12, after the range: r on [0, beta] keeps 7/12.
    with c.check(U_UNIFORM, weight=2, central=True, gated_by=(U_RANGE,)):
        u = np.concatenate([np.clip(r / beta, -1.0, 1.0).reshape(-1) for r, beta in noise.values()])
        t_mean = _hoeffding_mean(u.size, ALPHA / 2)
        t_sq = _hoeffding_unit(u.size, ALPHA / 2)
        mean, sq = float(u.mean()), float((u * u).mean())
        if abs(mean) > t_mean:
            raise CheckFailed(f"your r / beta has mean {mean:.3g} over {u.size} entries, where a uniform r on "
                              f"(-beta, beta) has mean 0 (sampling error allows {t_mean:.2g})"
                              + (": your r lies in [0, beta]; draw from (-beta, beta)" if mean > 0.4 else ""))
        if abs(sq - 1 / 3) > t_sq:
            hint = (": your r spans (-beta/2, beta/2); r ~ U(-beta, beta) spans an interval of width 2 beta"
                    if abs(sq - 1 / 12) < 0.02 else "")
            raise CheckFailed(f"the mean of (r / beta)^2 is {sq:.3g}, where a uniform r on (-beta, beta) gives 1/3 "
                              f"(sampling error allows {t_sq:.2g}){hint}")

    # Central, 2 of 12, after the range: one r for the whole tensor, or per row, keeps at most 5/12.
    with c.check(U_ENTRY, weight=2, central=True, gated_by=(U_RANGE,)):
        for key, (r, _) in noise.items():
            if r.size > 1 and np.ptp(r) <= R_TOL:
                raise CheckFailed("every entry got the same r: draw one r per entry, a tensor of x's shape")
            axes = _constant_axes(r)
            if axes:
                raise CheckFailed(f"for an input of shape {r.shape} your r is the same along dimension "
                                  f"{axes[0]}: draw one r per entry, a tensor of x's shape")

    # Central, 2 of 12, after the range: noise in eval mode keeps 7/12.
    with c.check(U_EVAL, weight=2, central=True, gated_by=(U_RANGE,)):
        for key in ("eval float32", "eval float64"):
            out = c.output(key)
            if out is None:
                raise CheckFailed(NONE_MESSAGE)
            out = as_float_array(out, "output")
            c.require(out.shape == xs[key].shape and np.array_equal(out, xs[key]),
                      "with training=False your output is not x: Uout is noise for training only, the identity at "
                      "test time")

    with c.check("a function of the generator: same seed, same noise; a new draw on every call", weight=1):
        check_function_of_rng(c, "same seed", GENERATOR_MESSAGE)
        first, second = as_float_array(c.output("fresh 1")), as_float_array(c.output("fresh 2"))
        c.require(first.shape != second.shape or not np.array_equal(first, second),
                  "two calls with one generator gave the same noise: draw new noise from the generator on every "
                  "call (no seed fixed inside your function)")

    with c.check("gradients reach x: d out / d x = 1 + r", weight=1):
        error = c.entry("gradient").error_message if c.raised("gradient") else ""
        if "does not require grad" in error or "grad_fn" in error:
            raise CheckFailed("no gradient reaches x: build out from x with torch operations (no .detach(), no "
                              "numpy, no torch.no_grad())")
        if "in-place" in error:
            raise CheckFailed("you changed x in place, which autograd refuses for a tensor that requires grad: "
                              "return a new tensor, x * (1 + r)")
        if "backward" in error:
            raise CheckFailed("your output cannot be backpropagated: return a torch tensor computed from x")
        out, grad = c.outputs("gradient", n=2)
        c.require(grad is not None, "no gradient reached x: build out from x with torch operations (no .detach(), "
                                    "no numpy, no torch.no_grad())")
        out, grad = as_float_array(out, "output"), as_float_array(grad, "gradient")
        x, up = xs["gradient"], xs["upstream"]
        c.require(out.shape == x.shape and grad.shape == x.shape, "the output or the gradient has the wrong shape")
        c.require(np.allclose(grad, up * out / x, rtol=1e-6, atol=1e-9),
                  "the gradient of your output with respect to x is not 1 + r: treat r as a constant drawn "
                  "independently of x")

    with c.check("a tensor of x's shape and dtype; x not modified", weight=1, peripheral=True):
        for key, shape, dtype, _ in UOUT_CALLS:
            (raw,) = c.raw_outputs(key)
            c.require(raw.is_torch, f"uout must return a torch tensor; yours returned a {raw.type}")
            c.require(raw.type == f"torch.Tensor:{dtype}",
                      f"for a {dtype} input your output is {raw.type.split(':')[-1]}: keep x's dtype (draw r with "
                      "dtype=x.dtype)")
            c.require(0 not in c.mutated(key), "your function changed x in place: return a new tensor")


CHECKS = {
    "dropout_variance": check_dropout_variance,
    "variance_shift_ratio": check_variance_shift_ratio,
    "bn_input_variance": check_bn_input_variance,
    "recalibrate_bn": check_recalibrate_bn,
    "uout": check_uout,
}
