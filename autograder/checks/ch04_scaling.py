"""Checks for chapter 04, scaling maths.

Exact checks use the student's own mask: out == x * mask / (1 - p) (inverted)
or out == x * mask (standard). Statistical checks bound counts with exact
binomial quantiles from autograder.checks.stats (false-failure probability
ALPHA = 1e-10 per bound); each sub-check says in a comment why its total stays
below the 1e-9 the design asks for.

Gating and weights (autograder/POLICY.md). Each forward function has four
central parts: the training-time scaling (the chapter's point), a new random
mask on every call drawn from rng, the drop rate (credited only with random
masks: a fixed mask drops the same units every time), and the eval branch
(credited only with the training scaling right: returning x or x * (1 - p)
alone is a one-liner). The shares this gives, held by the mutant corpus:
a wrong scaling (/p, *p, *(1-p), none) keeps the mask parts only, about a
quarter; the same mask on every call keeps the scaling and the eval branch,
under a half; dropping in eval mode keeps the training parts, under 0.6.
Everything else earns only once the central parts pass, so claims a forged
recording makes for free (a ValueError raised, x unmodified, a 0/1 mask with
the right drop rate) earn nothing on their own. Peripheral checks (argument
validation, shape, dtype, in-place, None mask in eval) carry at most a
quarter of the weight.

Messages name the mistake (1/p, p, 1-p, no rescaling, inverted scaling in
standard dropout, dropping in eval mode, the same mask every call, a mask that
ignores rng) with numbers from a representative p (0.2 before 0.8; p = 0,
p = 0.5 and p = 1 only when nothing else fails; see base.representative_first).
"""
import numpy as np

from dropout_lab.probes.ch04_scaling import EVAL_PS, FORWARD_PS, MC_FEW_NS, MC_FEW_PS, MC_N, MC_PS, MOMENT_PS

from .base import (Checker, CheckFailed, as_float_array, check_function_of_rng, close, dropped_problem,
                   factor_phrase, fmt, inverted_scale_problem, kept_factor, name_factor, representative_first,
                   require_shape)
from .stats import ALPHA, binomial_bounds


RNG_CHECK = "uses only rng (same seed, same result)"


def _mask_01(c: Checker, mask, shape, where):
    """The mask as a float 0/1 array of ``shape`` (bool or float masks are fine)."""
    m = as_float_array(mask, "mask")
    require_shape(m, shape, "mask")
    c.require(np.isin(m, (0.0, 1.0)).all(), f"{where}: the mask must hold only 0 and 1 (1 = kept)")
    return m


# -- checks both forward functions share ------------------------------------------

def _require_mask_applied(c: Checker, out, x, m, p):
    """The returned mask is the one applied: out = f * x * mask for one
    non-zero factor f (the scaling check says which f is right). A drop rate
    is a property of the masks alone, which anyone can draw without computing
    the output; tied to the output like this, it earns nothing for masks
    invented beside a stub or a forged output. Deterministic: a correct
    function passes it whatever its masks."""
    out = as_float_array(out)
    require_shape(out, x.shape)
    dropped, kept = m == 0, (m == 1) & (np.abs(x) > 1e-3)
    ok = bool(np.all(np.abs(out[dropped]) <= 1e-12))
    if kept.any():
        ratio = out[kept] / x[kept]
        f = float(np.median(ratio))
        ok = ok and np.isfinite(f) and abs(f) > 1e-6 and bool(np.allclose(ratio, f, rtol=1e-4, atol=0))
    c.require(ok, f"with p={p} the output is not x * mask times one factor: return the mask you "
                  "applied to x (1 = kept, 0 = dropped)")


def _train(c: Checker, x, p):
    """(out, mask) of the training call with drop probability p, as float arrays."""
    out, mask = c.outputs(f"train p={p}", n=2)
    m = _mask_01(c, mask, x.shape, f"p={p}")
    out = as_float_array(out)
    require_shape(out, x.shape)
    return out, m


def _check_drop_rate(c: Checker, x):
    """Statistical: one coin flip per entry (_check_independent_entries, first:
    a mask per row also has a drop rate far off, and the message should name
    the cause), then the number of dropped entries out of x.size = 10 000, for
    masks that were applied to the output (``_require_mask_applied``, at
    0 < p < 1: at p = 0 the mask must be all ones anyway, and a /p output is
    infinite there).

    For a correct function the count is Binomial(10 000, p); binomial_bounds
    gives an interval it leaves with probability <= ALPHA. p = 0 and p = 1
    are deterministic (interval [0, 0] and [n, n]), so only three counts can
    fail by chance, and the independence test adds ALPHA: 4 * ALPHA = 4e-10
    < 1e-9 for the sub-check."""
    _check_independent_entries(c, x)
    for p in representative_first(FORWARD_PS):
        out, mask = c.outputs(f"train p={p}", n=2)
        m = _mask_01(c, mask, x.shape, f"p={p}")
        if 0 < p < 1:
            _require_mask_applied(c, out, x, m, p)
        dropped = int(x.size - m.sum())
        lo, hi = binomial_bounds(x.size, p)
        if not lo <= dropped <= hi:
            swapped = 0 < p < 1 and p != 0.5 and abs(dropped / x.size - (1 - p)) < 0.05
            raise CheckFailed(
                f"with p={p} you dropped {dropped / x.size:.1%} of entries; p is the probability of DROPPING, "
                f"so about {p:.0%} should be dropped"
                + (f" (you dropped with probability 1-p = {fmt(1 - p)}: 1 in the mask means kept)" if swapped else ""))


def _check_independent_entries(c: Checker, x):
    """Statistical: every entry gets its own coin flip (no per-row or
    per-column mask broadcast over the other axis).

    With p = 0.5 the mask bits are fair and independent, so the XORs of
    horizontally adjacent bits (200 rows x 49 pairs) are themselves 9 800
    independent fair bits (the map from a row's bits to (first bit, XORs) is
    a bijection); the same holds for the 199 x 50 vertical pairs. Each
    agreement count is Binomial(n, 0.5) and is tested with alpha = ALPHA / 2,
    so the two together fail a correct function with probability <= ALPHA."""
    _, mask = c.outputs("train p=0.5", n=2)
    m = _mask_01(c, mask, x.shape, "p=0.5")
    for axis, name in ((1, "row"), (0, "column")):
        same = np.diff(m, axis=axis) == 0
        lo, hi = binomial_bounds(same.size, 0.5, alpha=ALPHA / 2)
        c.require(lo <= int(same.sum()) <= hi,
                  f"neighbouring entries in a {name} are kept or dropped together far too often; "
                  "draw one independent keep/drop decision per entry (a mask of x's full shape), "
                  "not one per row or per column")


SAME_MASK_MESSAGE = (
    "every call returned the same mask, even with generators of different seeds: your mask ignores rng, "
    "so the same units are dropped every time and this is not dropout at all (a seed fixed inside the "
    "function, or a mask saved from an earlier call). Draw a new mask from the rng argument on every call")


def _check_random_masks(c: Checker, x):
    """A new random mask on every call, drawn from rng: the calls "train
    p=0.5" and "fresh mask 1" get generators of different seeds, "fresh mask
    1" and "fresh mask 2" one shared generator, all with x's shape and p = 0.5.
    A correct function returns the same mask twice with probability 2**-10000.
    The masks must have been applied to the output (a forged mask beside a
    stub earns nothing)."""
    masks = {}
    for key in ("train p=0.5", "fresh mask 1", "fresh mask 2"):
        out, mask = c.outputs(key, n=2)
        m = _mask_01(c, mask, x.shape, key)
        _require_mask_applied(c, out, x, m, 0.5)
        masks[key] = m
    if np.array_equal(masks["train p=0.5"], masks["fresh mask 1"]):
        raise CheckFailed(SAME_MASK_MESSAGE)
    c.require(not np.array_equal(masks["fresh mask 1"], masks["fresh mask 2"]),
              "two calls with the same Generator returned the same mask; draw a new mask from rng "
              "on every call (no cached mask, no re-seeding inside the function)")


def _check_invalid_p(c: Checker):
    for bad in (-0.1, 1.5):
        raised = c.raised(f"invalid p={bad}")
        c.require(raised == "ValueError",
                  f"p={bad} should raise ValueError, " + (f"got {raised}" if raised else "nothing was raised"))


def _eval_problem(out, x, p, standard: bool):
    """What is wrong with the output of training=False (p given for the message)."""
    want = (f"every unit is kept and multiplied by the keep probability 1-p = {fmt(1 - p)}" if standard
            else "return x unchanged (no mask, no scaling)")
    big = np.abs(x) > 1e-3
    zero = big & (np.abs(out) <= 1e-12)
    if zero.sum() > 0.05 * big.sum():
        rest = big & ~zero
        f = float(np.median(out[rest] / x[rest])) if rest.any() else float("nan")
        others = f" and the others are about {fmt(f)} * x" if np.isfinite(f) else ""
        return (f"with training=False (p={p}) {zero.sum() / big.sum():.0%} of your outputs are 0{others}: you "
                f"drop units in evaluation mode. With training=False dropout is off: nothing is dropped; {want}")
    f = kept_factor(out, x, np.ones_like(x))
    if f is None:
        return f"with training=False (p={p}) your output is not a multiple of x; {want}"
    if not standard:
        return (f"with training=False your output is about {fmt(f)} * x; inverted dropout already rescaled "
                f"while training, so at test time it is the identity: {want}")
    form = name_factor(f, p, forms=("1", "p", "1/(1-p)", "1/p"))
    if form == "1":
        return (f"with training=False and p={p} your output is x, unscaled: you left out the test-time factor. "
                f"Standard dropout did not rescale while training, so at test time {want}")
    if form == "p":
        return (f"with training=False your output is multiplied by p = {fmt(p)} instead of the keep probability "
                f"1-p = {fmt(1 - p)}: p is the probability of dropping")
    if form == "1/(1-p)":
        return (f"with training=False your output is divided by 1-p (scaled by {factor_phrase('1/(1-p)', p)}) "
                f"instead of multiplied by it (1-p = {fmt(1 - p)}): dividing is inverted dropout's training step")
    return f"with training=False and p={p} your output is about {fmt(f)} * x; {want}"


# -- dropout_forward -------------------------------------------------------------

INVERTED_SCALE = "kept values are scaled by 1/(1-p), dropped ones are 0"
RANDOM_MASK = "a new random mask on every call, drawn from rng"
DROP_RATE = "drops each entry independently with probability p (statistical)"
EVAL_IDENTITY = "training=False returns x unchanged"


def check_dropout_forward(c: Checker):
    x, x3, x_mut, x32 = c.ref("inputs x")

    with c.check("returns (out, mask) with x's shape; mask is 0/1", weight=1, peripheral=True):
        out, mask = c.outputs("train p=0.5", n=2)
        require_shape(as_float_array(out), x.shape)
        _mask_01(c, mask, x.shape, "p=0.5")

    # Central: out = x * mask / (1 - p) ties the output to the hidden x. 14 of 39:
    # a wrong scaling keeps only the two mask parts, 9/39 = 0.23.
    with c.check(INVERTED_SCALE, weight=14, central=True):
        for p in representative_first(p for p in FORWARD_PS if p < 1):
            out, m = _train(c, x, p)
            if not close(out, x * m / (1 - p)):
                raise CheckFailed(f"with p={p} " + inverted_scale_problem(out, x, m, p)
                                  + " (out = x * mask / (1 - p))")

    # Central: dropout is a NEW random mask every call; the same mask every time
    # keeps the scaling and eval parts only, 19/39 = 0.49.
    with c.check(RANDOM_MASK, weight=5, central=True):
        _check_random_masks(c, x)

    # Central, credited with a wrong scale, but only for random masks applied to the output.
    with c.check(DROP_RATE, weight=4, central=True, gated_by=(RANDOM_MASK,)):
        _check_drop_rate(c, x)

    # Central, but `return x, None` alone is a one-liner: credited with the training
    # scaling right. Dropping in eval mode keeps the training parts, 23/39 = 0.59.
    with c.check(EVAL_IDENTITY, weight=5, central=True, gated_by=(INVERTED_SCALE,)):
        out, _ = c.outputs("eval", n=2)
        out = as_float_array(out)
        require_shape(out, x.shape)
        if not close(out, x):
            raise CheckFailed(_eval_problem(out, x, 0.5, standard=False))

    with c.check("p == 1 drops everything without NaN", weight=1):
        out, _ = c.outputs("train p=1.0", n=2)
        out = as_float_array(out)
        c.require(np.isfinite(out).all(), "with p=1 the output contains NaN or inf; return zeros instead of dividing by 0")
        c.require(np.all(out == 0), "with p=1 every unit is dropped, so the output must be all zeros")

    # Not central: reproducibility, 5/39 (a mask from numpy's global state keeps 0.87).
    with c.check(RNG_CHECK, weight=5):
        check_function_of_rng(c, "same seed")

    with c.check("training=False returns None as the mask", weight=1, peripheral=True):
        _, mask = c.outputs("eval", n=2)
        c.require(mask is None, "with training=False the mask must be None: nothing is drawn in evaluation mode")

    with c.check("x is not modified", weight=1, peripheral=True):
        c.outputs("no in-place", n=2)
        c.require(not c.mutated("no in-place"), "your function changed x in place; compute a new array instead")

    with c.check("works for any shape and for float32", weight=1, peripheral=True):
        out, mask = c.outputs("3-d input", n=2)
        m = _mask_01(c, mask, x3.shape, "3-d input")
        c.require(close(as_float_array(out), x3 * m / 0.7),
                  "with a 3-d input and p=0.3 the output is not x * mask / (1 - p) entry by entry")
        out, mask = c.outputs("float32", n=2)
        m = _mask_01(c, mask, x32.shape, "float32 input")
        c.require(close(as_float_array(out), x32.astype(np.float64) * m / 0.5, rtol=1e-4),
                  "a float32 input was not handled like a float64 one")

    with c.check("p outside [0, 1] raises ValueError", weight=1, peripheral=True):
        _check_invalid_p(c)


# -- standard_dropout_forward ----------------------------------------------------

STANDARD_TRAIN = "training: out = x * mask, kept values NOT rescaled"
STANDARD_EVAL = "training=False returns x * (1 - p)"


def _standard_train_problem(out, x, m, p):
    """A message naming how out differs from x * m at p (0 < p < 1)."""
    problem = dropped_problem(out, x, m)
    if problem:
        return problem
    f = kept_factor(out, x, m)
    if f is None:
        return "kept values are not all left as they are; standard dropout returns x * mask while training"
    form = name_factor(f, p, forms=("1/(1-p)", "1/p", "1-p", "p"))
    if form == "1/(1-p)":
        return (f"kept values are scaled by {factor_phrase('1/(1-p)', p)} while training: that is inverted "
                "dropout. Standard dropout leaves kept values as they are while training (out = x * mask) "
                "and multiplies by the keep probability 1-p at test time")
    if form == "1-p":
        return (f"kept values are multiplied by 1-p = {fmt(1 - p)} while training: standard dropout applies "
                "the factor 1-p at test time (training=False), not while training (out = x * mask)")
    return (f"kept values are scaled by {fmt(f)} while training; standard dropout does not rescale while "
            "training (out = x * mask; the factor 1-p comes at test time)")


def check_standard_dropout_forward(c: Checker):
    x, x3, x32 = c.ref("inputs x")

    with c.check("returns (out, mask) with x's shape; mask is 0/1", weight=1, peripheral=True):
        out, mask = c.outputs("train p=0.5", n=2)
        require_shape(as_float_array(out), x.shape)
        _mask_01(c, mask, x.shape, "p=0.5")

    # Central, with the test-time factor below the two halves of standard dropout:
    # getting both wrong (inverted dropout) keeps the mask parts only, 7/33 = 0.21.
    with c.check(STANDARD_TRAIN, weight=8, central=True):
        for p in representative_first(FORWARD_PS):
            out, m = _train(c, x, p)
            c.require(np.isfinite(out).all(), f"with p={p} the training output contains NaN or inf")
            if not close(out, x * m):
                raise CheckFailed(f"with p={p} " + _standard_train_problem(out, x, m, p))

    # The same mask every call keeps the training and test-time parts, 16/33 = 0.48.
    with c.check(RANDOM_MASK, weight=4, central=True):
        _check_random_masks(c, x)

    with c.check(DROP_RATE, weight=3, central=True, gated_by=(RANDOM_MASK,)):
        _check_drop_rate(c, x)

    # Forgetting the test-time factor keeps the training parts, 15/33 = 0.45.
    with c.check(STANDARD_EVAL, weight=8, central=True, gated_by=(STANDARD_TRAIN,)):
        for p in representative_first(EVAL_PS):
            out, _ = c.outputs(f"eval p={p}", n=2)
            out = as_float_array(out)
            require_shape(out, x.shape)
            if not close(out, x * (1 - p)):
                raise CheckFailed(_eval_problem(out, x, p, standard=True))

    with c.check(RNG_CHECK, weight=5):
        check_function_of_rng(c, "same seed")

    with c.check("training=False returns None as the mask", weight=1, peripheral=True):
        for p in EVAL_PS:
            _, mask = c.outputs(f"eval p={p}", n=2)
            c.require(mask is None, "with training=False the mask must be None: nothing is drawn in evaluation mode")

    with c.check("x is not modified", weight=1, peripheral=True):
        c.outputs("no in-place", n=2)
        c.outputs("no in-place eval", n=2)
        c.require(not c.mutated("no in-place") and not c.mutated("no in-place eval"),
                  "your function changed x in place; compute a new array instead")

    with c.check("works for any shape and for float32", weight=1, peripheral=True):
        out, mask = c.outputs("3-d input", n=2)
        m = _mask_01(c, mask, x3.shape, "3-d input")
        c.require(close(as_float_array(out), x3 * m),
                  "with a 3-d input and p=0.3 the training output is not x * mask entry by entry")
        out, mask = c.outputs("float32", n=2)
        m = _mask_01(c, mask, x32.shape, "float32 input")
        c.require(close(as_float_array(out), x32.astype(np.float64) * m, rtol=1e-4),
                  "a float32 input was not handled like a float64 one")

    with c.check("p outside [0, 1] raises ValueError", weight=1, peripheral=True):
        _check_invalid_p(c)


# -- dropout_moments -------------------------------------------------------------

def _two_arrays(c: Checker, key, shape):
    mean, var = c.outputs(key, n=2)
    mean, var = as_float_array(mean, "mean"), as_float_array(var, "variance")
    require_shape(mean, shape, "mean")
    require_shape(var, shape, "variance")
    return mean, var


#: Variance forms students write, as multiples of x^2, and what each one is.
_VAR_FORMS = {
    "p": (lambda p: p, "x^2 p leaves out the rescaling: out = x * mask / (1 - p) has variance "
                       "x^2 p (1-p) / (1-p)^2 = x^2 p / (1 - p)"),
    "p(1-p)": (lambda p: p * (1 - p), "x^2 p (1-p) is the variance of x * mask, before the rescaling by "
                                      "1/(1-p), which multiplies a variance by 1/(1-p)^2"),
    "(1-p)/p": (lambda p: (1 - p) / p, "that reads p as the keep probability; p is the probability of dropping"),
    "1/(1-p)": (lambda p: 1 / (1 - p), "x^2 / (1 - p) is E[out^2], the second moment: the variance subtracts "
                                       "the squared mean x^2"),
}


def _ratio_message(var, x, p, exact=True):
    """How var differs from x^2 p / (1 - p); ``exact=False`` for estimates,
    whose noise rules out naming the form."""
    big = np.abs(x) > 1e-2
    ratio = np.median(var[big] / x[big] ** 2) if big.any() else float("nan")
    head = (f"with p={p} your variance is about {fmt(ratio)} * x^2; the output of inverted dropout "
            f"has variance x^2 * p / (1 - p) = {fmt(p / (1 - p))} * x^2")
    if not exact:
        return head
    if big.any() and not np.allclose(var[big] / x[big] ** 2, ratio, rtol=1e-3):
        by_abs = var[big] / np.abs(x[big])
        if np.allclose(by_abs, np.sqrt(p / (1 - p)), rtol=1e-3):
            return head + ": you returned the standard deviation |x| sqrt(p / (1 - p)); the variance is its square"
        return head + ": your variance is not proportional to x^2 (a variance scales with the square of x)"
    form = name_factor(ratio, p, forms={k: f for k, (f, _) in _VAR_FORMS.items()})
    return head + (f": {_VAR_FORMS[form][1]}" if form else "")


def check_dropout_moments(c: Checker):
    x, x1 = c.ref("inputs x")

    with c.check("returns (mean, var), both with x's shape", weight=1, peripheral=True):
        _two_arrays(c, "p=0.5", x.shape)

    with c.check("mean = x (inverted dropout is unbiased)", weight=3, central=True):
        for p in representative_first(MOMENT_PS):
            mean, _ = _two_arrays(c, f"p={p}", x.shape)
            if not close(mean, x):
                big = np.abs(x) > 1e-2
                ratios = mean[big] / x[big]
                ratio = float(np.median(ratios))
                if not np.allclose(ratios, ratio, rtol=1e-3):
                    raise CheckFailed(f"with p={p} your mean is not a multiple of x; inverted dropout divides "
                                      "the kept values by the keep probability, so the expected output is exactly x")
                hint = ""
                if name_factor(ratio, p, forms=("1-p",)):
                    hint = (f": x (1-p) = {fmt(1 - p)} * x is the mean of x * mask, before the rescaling by 1/(1-p)")
                raise CheckFailed(
                    f"with p={p} your mean is about {fmt(ratio)} * x{hint}; inverted dropout divides the kept "
                    "values by the keep probability, so the expected output is exactly x")

    with c.check("var = x^2 p / (1 - p)", weight=6, central=True):
        for p in representative_first(MOMENT_PS):
            _, var = _two_arrays(c, f"p={p}", x.shape)
            if not close(var, x**2 * (p / (1 - p))):
                raise CheckFailed(_ratio_message(var, x, p))

    with c.check("works elementwise on a 1-d input", weight=1, peripheral=True):
        mean, var = _two_arrays(c, "1-d input", x1.shape)
        c.require(close(mean, x1) and close(var, x1**2 * (0.3 / 0.7)),
                  "a 1-d input was not handled elementwise (mean x, variance x^2 p/(1-p) per entry)")

    with c.check("x is not modified", weight=1, peripheral=True):
        c.outputs("no in-place", n=2)
        c.require(not c.mutated("no in-place"), "your function changed x in place; compute new arrays instead")


# -- mc_moments --------------------------------------------------------------------
#
# Why the bounds below are exact. One inverted-dropout draw of entry i is
# y = x_i * m / (1 - p) with m ~ Bernoulli(1 - p): it takes only the two values
# 0 and x_i / (1 - p). Over n draws let K_i be the number kept,
# K_i ~ Binomial(n, 1 - p), and q = K_i / n. Then
#     sample mean      = x_i / (1 - p) * q,
#     sample variance  = (x_i / (1 - p))**2 * q * (1 - q) * c,  c = 1 (ddof 0) or n/(n-1) (ddof 1).
# The mean estimator has variance Var[y]/n = x_i**2 p / ((1 - p) n) (the formula
# of dropout_moments divided by n); instead of a Gaussian z * sigma / sqrt(n) we
# use the exact binomial interval [lo, hi] for K_i, which is the same interval
# up to the CLT (about 6.5 standard errors wide on each side). q(1 - q) is
# concave, so over q in [lo/n, hi/n] the variance estimate lies between the
# smaller end value and the maximum (at q = 1/2 when it is inside).
# Each sub-check tests len(MC_PS) * x.size (p, entry) pairs, each with
# alpha = ALPHA / (len(MC_PS) * x.size), so by the union bound a correct function
# fails a sub-check with probability <= ALPHA = 1e-10 < 1e-9 (zeros of x and
# p = 0 are deterministic and cannot fail at all).
#
# What this rejects, with MC_N = 2001 draws: no rescaling (q would have to be
# (1-p)^2 instead of 1-p, more than 20 standard errors away for p = 0.2),
# variance of the mask (|x|/(1-p) >= 1.5 so the estimate is off by a factor
# >= 2.25), one mask for all samples (q is 0 or 1, variance 0).

_FLOAT_SLACK = 1e-4   # relative slack for float32 accumulation, far below the statistical widths


def _mc_interval(p, n_pairs):
    """(qlo, qhi, fmin, fmax): the acceptance range of q = K/n and of q(1-q)."""
    lo, hi = binomial_bounds(MC_N, 1 - p, alpha=ALPHA / n_pairs)
    qlo, qhi = lo / MC_N, hi / MC_N
    f = lambda q: q * (1 - q)  # noqa: E731
    fmin = min(f(qlo), f(qhi))
    fmax = 0.25 if qlo <= 0.5 <= qhi else max(f(qlo), f(qhi))
    return qlo, qhi, fmin, fmax


def _mc_pair(c, key, x):
    mean, var = c.outputs(key, n=2)
    mean, var = as_float_array(mean, "mean estimate"), as_float_array(var, "variance estimate")
    require_shape(mean, x.shape, "mean estimate")
    require_shape(var, x.shape, "variance estimate")
    c.require(np.isfinite(mean).all() and np.isfinite(var).all(), f"{key}: the estimates contain NaN or inf")
    return mean, var


# -- mc_moments with a handful of samples ------------------------------------------
#
# Exact, not statistical. With n draws of entry i, each output is 0 or
# s_i = x_i / (1 - p), so for K_i kept draws (an integer in [0, n])
#     sample mean     = s_i * K_i / n,
#     sample variance = s_i**2 * q (1 - q) * c,   q = K_i / n,  c = 1 (ddof 0) or n/(n-1) (ddof 1),
# whatever way the masks are drawn (all at once as (n, *x.shape), in a loop,
# binomial or uniform), and NaN for ddof 1 with n = 1 (0/0). The only slack
# needed is float rounding (_FEW_TOL, far above float32 accumulation error and
# far below the gap of 1 between counts), so a correct implementation cannot
# fail this by chance. With n * (1 - p) never a whole number (MC_FEW_PS,
# MC_FEW_NS), the analytic answer, with or without noise, lies between counts.
# One addition is statistical: the 200 counts of one call must not all be equal
# (a formula rounded onto the lattice gives one count everywhere). For a
# correct function P(all 200 equal) = sum_k P(K = k)^200 <= max_k P(K = k)^199,
# at most 0.7^199 < 1e-30 (n = 1, p = 0.3) per call: 6 calls < 1e-29.

_FEW_TOL = 1e-3


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def _averages_of_draws(mean, kept_value, n):
    """True when every mean is kept_value * k / n for a whole k in [0, n],
    with k not the same for all entries (a formula gives one k everywhere)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        k = mean * n / kept_value
    kr = np.round(k)
    ok = np.isfinite(k) & (np.abs(k - kr) <= _FEW_TOL) & (kr >= 0) & (kr <= n)
    return bool(ok.all()) and np.ptp(kr) > 0


def _kept_counts(mean, x, p, n):
    """(k, message): the number of kept draws per entry that ``mean`` implies,
    and a message when it is not an average of n draws of every entry."""
    s = x / (1 - p)                                  # the value of a kept draw
    k = mean * n / s                                 # kept draws, if mean averages n draws
    kr = np.round(k)
    ok = np.isfinite(k) & (np.abs(k - kr) <= _FEW_TOL) & (kr >= 0) & (kr <= n)
    draws = _plural(n, "dropout draw")
    if not ok.all():
        if _averages_of_draws(mean, x, n):
            return kr, (f"with p={p} and n_samples={n} your estimates are averages of {n} draws of x * mask "
                        f"that are not rescaled: each draw of inverted dropout is x * mask / (1 - p), kept "
                        f"values scaled by {factor_phrase('1/(1-p)', p)}")
        if _averages_of_draws(mean, x / p, n):
            return kr, (f"with p={p} and n_samples={n} the kept values of your draws are scaled by "
                        f"1/p = {fmt(1 / p)} instead of {factor_phrase('1/(1-p)', p)}: p is the probability "
                        "of dropping")
        return kr, (f"with n_samples={n} your estimates are not averages of {draws}: the mean of {n} "
                    f"outputs x * mask / (1 - p) is x / (1 - p) * k / {n} for a whole number k of kept draws. "
                    "Simulate n_samples draws; do not use the formula")
    if np.ptp(kr) == 0:
        return kr, (f"with n_samples={n} every entry got the same number of kept draws, which {draws} "
                    "per entry practically never give; draw a fresh mask of x's full shape for each sample")
    return kr, None


def _variance_problem(var, kr, x, p, n):
    """None when ``var`` is the sample variance (ddof 0 or 1) of the n draws
    with kr kept, else the student-facing reason."""
    s2 = (x / (1 - p)) ** 2
    q = kr / n
    base = s2 * q * (1 - q)
    tol = _FEW_TOL * s2
    ok = np.abs(var - base) <= tol
    if n > 1:
        ok |= np.abs(var - base * n / (n - 1)) <= tol
    else:
        ok |= np.isnan(var)                          # ddof=1 with one sample: 0/0
    if ok.all():
        return None
    return (f"with n_samples={n} your variance estimates are not the sample variance (ddof 0 or 1) of "
            f"the same {_plural(n, 'dropout draw')} whose mean you returned; compute both from the same "
            "samples x * mask / (1 - p)")


def _few_calls(c: Checker, x_few):
    """(n, p, mean, var) of every few-sample call, n = 1 (the oddest case to
    read in a message) last."""
    for n in sorted(MC_FEW_NS, key=lambda n: n == 1):
        for p in MC_FEW_PS:
            mean, var = c.outputs(f"few p={p} n={n}", n=2)
            mean, var = as_float_array(mean, "mean estimate"), as_float_array(var, "variance estimate")
            require_shape(mean, x_few.shape, "mean estimate")
            require_shape(var, x_few.shape, "variance estimate")
            yield n, p, mean, var


def _check_few_means(c: Checker, x_few):
    for n, p, mean, _ in _few_calls(c, x_few):
        _, problem = _kept_counts(mean, x_few, p, n)
        if problem:
            raise CheckFailed(problem)


def _check_few_variances(c: Checker, x_few):
    for n, p, mean, var in _few_calls(c, x_few):
        kr, problem = _kept_counts(mean, x_few, p, n)
        problem = problem or _variance_problem(var, kr, x_few, p, n)
        if problem:
            raise CheckFailed(problem)


MC_FEW_MEAN = "with a handful of samples the mean is an average of that many draws (exact)"
MC_FEW_VAR = "with a handful of samples the variance is that of the same draws (exact)"


def check_mc_moments(c: Checker):
    x, x_few = c.ref("inputs x")
    n_pairs = len(MC_PS) * x.size
    nz = x != 0

    with c.check("returns (mean, var), both with x's shape", weight=1, peripheral=True):
        _mc_pair(c, "p=0.5", x)

    # Central and exact: they tell a Monte Carlo estimate from a formula with noise.
    with c.check(MC_FEW_MEAN, weight=2, central=True):
        _check_few_means(c, x_few)

    with c.check(MC_FEW_VAR, weight=2, central=True, gated_by=(MC_FEW_MEAN,)):
        _check_few_variances(c, x_few)

    # Central too, but an analytic answer plus a little noise passes them: credited
    # only when the estimates are averages of draws.
    with c.check("the mean estimate is within sampling error of x (statistical)", weight=2,
                 central=True, gated_by=(MC_FEW_MEAN,)):
        for p in representative_first(MC_PS):
            mean, _ = _mc_pair(c, f"p={p}", x)
            qlo, qhi, _, _ = _mc_interval(p, n_pairs)
            q = mean[nz] * (1 - p) / x[nz]  # the fraction of draws kept, if the estimate is right
            ok = (q >= qlo * (1 - _FLOAT_SLACK) - 1e-12) & (q <= qhi * (1 + _FLOAT_SLACK) + 1e-12)
            if not ok.all():
                ratio = float(np.median(mean[nz] / x[nz]))
                se = np.sqrt(p / (1 - p) / MC_N) if p > 0 else 0.0
                hint = ""
                if 0 < p < 1 and abs(ratio - (1 - p)) < 0.05 * (1 - p) and abs(ratio - 1) > 0.05:
                    hint = (f" = (1-p) * x: your samples are not rescaled by 1/(1-p) = {fmt(1 / (1 - p))}, "
                            "so they average to x (1-p)")
                elif 0 < p < 1 and np.all(np.isclose(mean[nz], 0, atol=1e-12)
                                          | np.isclose(mean[nz], x[nz] / (1 - p), rtol=1e-9)):
                    hint = (": every estimate is 0 or x / (1 - p), so all your samples share one mask; draw a "
                            "fresh mask for each sample")
                raise CheckFailed(
                    f"with p={p} and n_samples={MC_N} your mean estimates are about {fmt(ratio)} * x{hint}; the "
                    f"output of inverted dropout has mean x, so the estimate must lie within a few standard "
                    f"errors ({se:.2g} * |x|) of x. Average n_samples outputs x * mask / (1 - p), "
                    "each with a fresh mask")
            c.require(np.all(np.abs(mean[~nz]) <= 1e-9),
                      f"with p={p} the mean estimate of an entry x = 0 is not 0")

    with c.check("the variance estimate is within sampling error of x^2 p/(1-p) (statistical)", weight=2,
                 central=True, gated_by=(MC_FEW_VAR,)):
        for p in representative_first(MC_PS):
            _, var = _mc_pair(c, f"p={p}", x)
            _, _, fmin, fmax = _mc_interval(p, n_pairs)
            scale = (x[nz] / (1 - p)) ** 2
            f = var[nz] / scale  # q(1-q) (times n/(n-1) for ddof=1), if the estimate is right
            upper = fmax * MC_N / (MC_N - 1) * (1 + _FLOAT_SLACK) + _FLOAT_SLACK
            lower = fmin * (1 - _FLOAT_SLACK) - _FLOAT_SLACK
            if not np.all((f >= lower) & (f <= upper)):
                raise CheckFailed(
                    _ratio_message(var[nz], x[nz], p, exact=False).replace("your variance", "your variance estimate")
                    + f"; with n_samples={MC_N} the sample variance of the outputs x * mask / (1 - p) "
                    "(ddof 0 or 1) must lie within sampling error of it (a variance over the samples, "
                    "not over the mask alone)")
            c.require(np.all(np.abs(var[~nz]) <= 1e-9),
                      f"with p={p} the variance estimate of an entry x = 0 is not 0; an output that is "
                      "always 0 has variance 0")

    with c.check("every entry gets its own mask in every sample (statistical)", weight=1):
        # For a correct function the kept counts K_i of the 18 non-zero entries are
        # independent Binomial(2001, 1/2); all equal has probability
        # <= max_k P(K = k)^17 < 0.02^17 < 1e-28. A mask shared by all entries of a
        # sample gives one K for every entry.
        mean, _ = _mc_pair(c, "p=0.5", x)
        k = mean[nz] * 0.5 * MC_N / x[nz]
        if np.ptp(k) <= 0.5 and np.abs(k - np.round(k)).max() > 0.01:
            raise CheckFailed("your mean estimate is exactly x, which an average of n_samples random draws "
                              "cannot be here; estimate the moments from samples, not from the formula")
        c.require(np.ptp(k) > 0.5,
                  "every entry of x got the same number of kept draws; draw a mask of x's full shape for "
                  "each sample, so that entries are dropped independently")

    with c.check("fresh draws on every call", weight=1):
        m1, _ = _mc_pair(c, "fresh 1", x)
        m2, _ = _mc_pair(c, "fresh 2", x)
        # Equal for all 18 non-zero entries by chance: < 0.02^18 (as above).
        c.require(not np.array_equal(m1, m2),
                  "two calls with the same Generator returned the same estimates; draw fresh masks from rng "
                  "(a Monte Carlo estimate changes from call to call, the analytic formula does not)")

    with c.check(RNG_CHECK, weight=2):
        _mc_pair(c, "same seed 1", x)
        _mc_pair(c, "same seed 2", x)
        check_function_of_rng(c, "same seed")

    with c.check("x is not modified", weight=1, peripheral=True):
        c.outputs("no in-place", n=2)
        c.require(not c.mutated("no in-place"), "your function changed x in place; compute new arrays instead")


CHECKS = {
    "dropout_forward": check_dropout_forward,
    "standard_dropout_forward": check_standard_dropout_forward,
    "dropout_moments": check_dropout_moments,
    "mc_moments": check_mc_moments,
}
