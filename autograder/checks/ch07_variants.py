"""Checks for chapter 07, the dropout family.

Exact where the noise is observable. The probes (dropout_lab/probes/ch07_variants.py)
choose inputs from which the noise can be read back from the output whichever way it
was drawn: no input entry is 0, so out / x is the noise and an exact 0 is a dropped
entry; DropConnect gets a batch whose first rows are the identity and the next one
zeros, so the output holds the masked, rescaled weight matrix and the bias; the
Multi-Sample head has orthonormal columns, so every sample's masked features are
(logits - bias) @ weight. Every structural property (one factor 1/(1-p) on what is
kept, whole maps, whole rows, whole squares inside the map, one square per image,
the bias untouched) is then checked exactly on the student's own noise.

Statistical where it is not (ALPHA = 1e-10 per sub-check from
autograder.checks.stats, a union bound over the bounds each sub-check tests; every
docstring below says how its total stays below the 1e-9 the design asks for):

* drop rates: the number of dropped units (weights, maps, rows, features) is
  Binomial(n, p) for a correct function: ``binomial_bounds`` at ALPHA / k each;
* independence: at p = 0.5 the XORs of neighbouring fair, independent keep bits are
  independent fair bits (ch04's argument), so the number of equal neighbours is
  Binomial(n, 1/2); for DropBlock, disjoint pairs of independent Bernoulli(q)
  indicators agree with probability q^2 + (1-q)^2;
* Gaussian noise: z = (eps - 1) / sqrt(p/(1-p)) is exactly N(0, 1) i.i.d. for a
  correct function, so its mean is N(0, 1/n), its sum of squares chi-square with n
  degrees of freedom, and the Dvoretzky-Kiefer-Wolfowitz inequality (Massart's
  constant) bounds P(sup |F_n - Phi| > t) by 2 exp(-2 n t^2);
* DropBlock's seed rate: a position whose b x b neighbourhood holds only valid
  centres is dropped with probability q = 1 - (1 - gamma)^(b^2); positions b apart
  have disjoint sets of centres that can drop them, so on such a lattice the
  indicators are independent Bernoulli(q);
* Cutout's centres: a square is clipped at the top exactly when its centre is in
  the first size//2 rows, probability (size//2)/H for a centre uniform over the rows.

Gating and weights (autograder/POLICY.md). Every function has a central structural
check (the scaling, the unit dropped, the square, the bias), a central "new random
noise on every call from generator" check that ties the noise to the output, a
central statistical check gated by it, and, where there is a ``training`` flag, a
central "training=False" check gated by the others (``return x`` alone is a
one-liner). Same seed, same result (GENERATOR_MESSAGE) is non-central; shape, dtype,
in-place and ValueError checks are peripheral. The shares this gives, held by the
mutant corpus (tests/corpus/ch07_variants_mutants.py): a wrong scaling or a wrong
unit keeps at most 1/4; the same noise on every call (a seed fixed inside) at most
1/2; noise in evaluation mode at most 0.6; torch's global random state at most 0.9.
Per function (weights in brackets; measured shares in the corpus):

* dropconnect_linear (40): masked weights with one mask for the batch (14), the bias
  untouched (2), new masks (4), rate and independence (3), training=False (9). Dropping
  activations, inputs or outputs, one mask per example or a wrong scaling keeps 6-9/40;
  the bias dropped or rescaled 21/40; a mask fixed inside 16/40; eval wrong 23/40.
* gaussian_dropout (38): the noise N(1, p/(1-p)) (14); everything else is gated by it, so a
  wrong variance, Bernoulli, uniform, additive or per-row noise keeps 0; a seed fixed
  inside 14/38; noise in eval 21/38.
* spatial_dropout (37): whole maps scaled by 1/(1-p) (14); per pixel or per row 4/37, a
  wrong scaling 7/37, one mask for the batch or one coin per example 18/37.
* dropblock_gamma (10): square maps (5), H != W (3); the square-map formula keeps 5/10,
  every other wrong formula 0.
* dropblock (46): whole valid squares (7) and the whole-tensor normalisation (7) are
  separate parts; a wrong normalisation or blocks leaving the map keep 19/46, a wrong
  seed rate or masks shared by channels or examples 18/46.
* drop_path (41): row mode (12), batch mode (4); elementwise 4/41, batch mode in row mode
  or the mode ignored 16/41.
* cutout (29): the square (12), new squares (4), centres uniform over the image (5);
  squares shifted inside or centres only where they fit keep 16/29, the same square for
  every image 12/29, a wrong square (per channel, (size-1)-squares, rescaled) at most 4/29.
* multi_sample_dropout_logits (34): each sample head(features * mask / (1-p)) (10), its own
  mask (6), new masks (6); one mask for all samples or per sample shared by the batch
  16/34, no rescaling 6/34, a wrong shape 0.

Messages name the mistake, recognised from the student's own noise (never from the
hidden inputs): "scaled by 1/p = 5.0 instead of 1/(1-p) = 1.25", "you dropped entries
of x (activations), not weights", "the bias is divided by 1-p", "standard deviation
p instead of sqrt(p/(1-p))", "whole rows of a map: F.dropout2d on a 3-d tensor",
"squares stick out of the map", "rescaled by 1/(1-p) instead of numel / kept", "no
square is clipped", "every sample used the same mask".
"""
import functools
import math

import numpy as np
from scipy import stats as sstats

from dropout_lab.probes.ch07_variants import (CO_CALLS, DB_ALL_DROPPED, DB_CALLS, DB_FLOAT32, DB_INVALID,
                                              DB_SMALL, DC_FLOAT32_P, DC_GRAD_P, DC_IN, DC_PS, DG_EDGES,
                                              DG_RECT, DG_SQUARE, DP_BATCH_CALLS, DP_BATCH_P, DP_PS, EVAL_P,
                                              DP_FLOAT32_P, GD_FLOAT32_P, GD_PS, MS_FLOAT32, MS_K, MS_ONE_P, MS_PS,
                                              SD_FLOAT32_P, SD_PS)

from .base import (GENERATOR_MESSAGE, Checker, CheckFailed, as_float_array, check_function_of_rng, close, fmt,
                   inverted_scale_problem, name_factor, representative_first, require_shape)
from .stats import ALPHA
from .stats import binomial_bounds as _binomial_bounds

RNG_CHECK = "uses only generator (same seed, same result)"
_ZERO = 1e-12          # an output entry this small is a dropped (exactly zeroed) entry


@functools.lru_cache(maxsize=256)
def binomial_bounds(n: int, prob: float, alpha: float = ALPHA) -> tuple:
    """stats.binomial_bounds, cached: the checks ask for the same few bounds on every run."""
    return _binomial_bounds(n, prob, alpha)


# -- helpers every function shares ----------------------------------------------------------------

def _array(c: Checker, key: str, shape, what: str = "output") -> np.ndarray:
    """The single array a call returned, as float64, with the expected shape."""
    arr = as_float_array(c.output(key), what)
    require_shape(arr, shape, what)
    return arr


def _finite(c: Checker, arr, where: str) -> None:
    c.require(np.isfinite(arr).all(), f"{where}: your output contains NaN or inf")


def _finite_array(c: Checker, key: str, shape, where: str | None = None) -> np.ndarray:
    """The output of ``key``, of ``shape`` and without NaN or inf."""
    out = _array(c, key, shape)
    _finite(c, out, where or key)
    return out


def _check_returns_tensor(c: Checker, key: str, shape, name: str = "returns a tensor of x's shape") -> None:
    """Peripheral: the call returned one torch tensor of ``shape``."""
    with c.check(name, weight=1, peripheral=True):
        if shape is not None:
            _array(c, key, shape)
        _is_tensor(c, key)


def _is_tensor(c: Checker, key: str, dtype: str | None = None) -> None:
    """The call returned a torch tensor (of ``dtype``, e.g. "float32")."""
    out = c.raw_outputs(key)
    c.require(len(out) == 1 and out[0].is_torch,
              f"return a torch tensor, not a {out[0].type if out else 'nothing'}: the layer's output "
              "feeds the next torch layer")
    if dtype is not None:
        got = out[0].type.split(":")[-1]
        c.require(got == dtype, f"a {dtype} input came back as {got}: keep the input's dtype (draw the "
                                f"noise with dtype=x.dtype, or cast it) so the next {dtype} layer accepts it")


def _not_modified(c: Checker, keys, what: str) -> None:
    for key in keys:
        c.outputs(key)
        c.require(not c.mutated(key), f"your function changed {what} in place (the caller's tensor); "
                                      "compute a new tensor instead (no x.mul_(), x[...] = 0 or .data)")


def _check_eval(c: Checker, name: str, weight: float, gated_by: tuple, calls) -> None:
    """The central training=False check, gated (``return x`` alone is a one-liner): every
    (key, x, p) call must return x."""
    with c.check(name, weight=weight, central=True, gated_by=gated_by):
        for key, xx, p in calls:
            out = _array(c, key, xx.shape)
            if not close(out, xx):
                raise CheckFailed(_eval_message(out, xx, p, "return x unchanged"))


def _check_rng(c: Checker, weight: float) -> None:
    """Not central: same seed, same result, whatever torch's global state."""
    with c.check(RNG_CHECK, weight=weight):
        check_function_of_rng(c, "same seed", GENERATOR_MESSAGE)


def _check_float32(c: Checker, key: str, shape, accept) -> None:
    """Peripheral: a float32 input comes back as a float32 tensor that ``accept(out)`` passes."""
    with c.check("float32 in, float32 out", weight=1, peripheral=True):
        _is_tensor(c, key, "float32")
        c.require(accept(_array(c, key, shape)), "a float32 input was not handled like a float64 one")


def _check_untouched(c: Checker, name: str, keys, what: str, weight: float = 1) -> None:
    """Peripheral: no call changed its tensor arguments in place."""
    with c.check(name, weight=weight, peripheral=True):
        _not_modified(c, keys, what)


def _inverted_by(decisions, p) -> bool:
    """Whether (whole, ratio, problem) from _map_decisions / _row_decisions describes units
    kept whole and scaled by 1/(1-p)."""
    _, ratio, problem = decisions
    return problem is None and (ratio.size == 0 or bool(np.allclose(ratio, 1 / (1 - p), rtol=1e-4)))

def _single_factor(ratio) -> float | None:
    """The one factor all entries of ``ratio`` share (float tolerance), or None."""
    ratio = np.asarray(ratio, dtype=np.float64)
    if ratio.size == 0:
        return None
    f = float(np.median(ratio))
    return f if np.isfinite(f) and np.allclose(ratio, f, rtol=1e-4, atol=1e-9) else None


def _scale_message(ratio, p, noun: str) -> str:
    """How the kept entries' factors ``ratio`` differ from 1/(1-p), naming 1/p, p, 1-p or no
    rescaling (base.inverted_scale_problem, told about ``noun`` instead of kept values)."""
    ratio = np.asarray(ratio, dtype=np.float64).ravel()
    ones = np.ones_like(ratio)
    return inverted_scale_problem(ratio, ones, ones, p).replace("kept values", noun, 1)


def _rate_message(dropped: int, n: int, p: float, unit: str) -> str:
    swapped = 0 < p < 1 and p != 0.5 and abs(dropped / n - (1 - p)) < 0.05
    return (f"with p={p} you dropped {dropped / n:.1%} of the {unit}; p is the probability of DROPPING, so about "
            f"{p:.0%} should be dropped"
            + (f" (you dropped with probability 1-p = {fmt(1 - p)}: p read as the keep probability)"
               if swapped else ""))


def _check_rate(c: Checker, dropped: int, n: int, p: float, alpha: float, unit: str) -> None:
    lo, hi = binomial_bounds(n, p, alpha)
    c.require(lo <= dropped <= hi, _rate_message(dropped, n, p, unit))


def _neighbours_agree(bits, axis: int, alpha: float) -> bool:
    """For i.i.d. fair bits the number of equal neighbours along ``axis`` is Binomial(n, 1/2)
    (XORs of neighbouring independent fair bits are independent fair bits)."""
    same = np.diff(np.asarray(bits, dtype=np.int8), axis=axis) == 0
    lo, hi = binomial_bounds(same.size, 0.5, alpha)
    return lo <= int(same.sum()) <= hi


SAME_NOISE = ("calls with generators of different seeds returned the same {what}: your function ignores "
              "generator (a seed fixed inside it, or {what} saved from an earlier call), so every call treats "
              "the same {unit} the same way and the noise that makes this dropout is gone. Draw new {what} "
              "from generator on every call")
SAME_GENERATOR = ("two calls with the same generator returned the same {what}: draw new random numbers on every "
                  "call (no cached {what}, no re-seeding inside the function)")


def _require_fresh(c: Checker, patterns: dict, what: str, unit: str) -> None:
    """patterns: "other seed", "fresh 1", "fresh 2" -> the noise each call drew."""
    if np.array_equal(patterns["other seed"], patterns["fresh 1"]):
        raise CheckFailed(SAME_NOISE.format(what=what, unit=unit))
    c.require(not np.array_equal(patterns["fresh 1"], patterns["fresh 2"]), SAME_GENERATOR.format(what=what))


FRESH_KEYS = ("other seed", "fresh 1", "fresh 2")


def _fresh_patterns(c: Checker, x, uniform: str) -> dict:
    """The zero pattern of each of the FRESH_KEYS calls on ``x``, each required to be x times
    a 0/1 mask and a positive factor (tied to the hidden x, so invented outputs earn nothing)
    that drops something and keeps something (``uniform`` says what it means if not)."""
    patterns = {}
    for key in FRESH_KEYS:
        out = _array(c, key, x.shape)
        zero = np.abs(out) <= _ZERO
        c.require(np.all(out[~zero] / x[~zero] > 0), f"{key}: your output is not x times a 0/1 mask and a "
                                                     "positive factor")
        c.require(zero.any() and not zero.all(), uniform)
        patterns[key] = zero
    return patterns


def _eval_message(out, x, p, identity: str, noisy: str = "you add noise in evaluation mode") -> str:
    """What is wrong with a training=False output that should be ``x`` (p is the call's)."""
    nz = np.abs(x) > 1e-3
    zero = nz & (np.abs(out) <= _ZERO)
    if zero.sum() > 0.02 * nz.sum():
        return (f"with training=False {zero.sum() / nz.sum():.0%} of your outputs are 0: you drop in evaluation "
                f"mode. With training=False nothing is dropped: {identity}")
    f = _single_factor(out[nz] / x[nz])
    if f is not None and name_factor(f, p, forms=("1-p",)):
        return (f"with training=False your output is multiplied by 1-p = {fmt(1 - p)}: that is standard dropout's "
                f"test-time step, but this layer rescales while training (inverted), so {identity}")
    if f is not None and name_factor(f, p, forms=("1/(1-p)",)):
        return f"with training=False your output is divided by 1-p: nothing is rescaled at test time; {identity}"
    if f is None:
        return f"with training=False your output is not a multiple of x: {noisy}; with training=False {identity}"
    return f"with training=False your output is {fmt(f)} * x; {identity}"


# -- dropconnect_linear -------------------------------------------------------------------------------

def _dc_split(out, x, n_in=DC_IN):
    """(W_eff, bias, residual) read from an output of the design batch: row i < n_in is
    column i of the effective weight plus the bias, row n_in the bias alone, and the
    remaining rows must equal x_r @ W_eff.T + bias (residual 0) when one weight matrix
    served the whole batch."""
    b = out[n_in]
    w_eff = (out[:n_in] - b).T
    pred = x[n_in + 1:] @ w_eff.T + b
    return w_eff, b, out[n_in + 1:] - pred


def _dc_mask(w_eff, weight):
    """(kept, ratio): kept weights (W_eff != 0) and W_eff / weight."""
    ratio = w_eff / weight
    return np.abs(ratio) > 1e-4, ratio


def _dc_applied(c: Checker, key: str, x, weight, p=None):
    """The weight mask of one call, required to be applied to the weights (W_eff =
    f * weight * mask for one non-zero f); the batch's consistency is not required
    here (that is the central check's business)."""
    out = _finite_array(c, key, (x.shape[0], weight.shape[0]))
    w_eff, _, _ = _dc_split(out, x)
    kept, ratio = _dc_mask(w_eff, weight)
    f = _single_factor(ratio[kept])
    c.require(kept.any() and f is not None and abs(f) > 1e-6,
              f"{key}: the output is not x @ (weight * mask * factor).T + bias for one 0/1 weight mask"
              + (f" (p={p})" if p is not None else ""))
    return kept


def _dc_structure_problem(out, x, weight, bias, p) -> str | None:
    """None when ``out`` is x @ (weight * mask / (1-p)).T + b_out for one 0/1 mask
    (b_out, the zero row, is the bias check's business), else the message."""
    w_eff, _, resid = _dc_split(out, x)
    kept, ratio = _dc_mask(w_eff, weight)
    cols_const = np.all(kept == kept[:1], axis=0).all()
    rows_const = np.all(kept == kept[:, :1], axis=1).all()
    if not np.allclose(resid, 0.0, atol=1e-6 * (1 + np.abs(out).max())):
        if cols_const and 0 < p:
            return ("you dropped entries of x (activations), not weights: row i of the batch saw its own "
                    "input mask. DropConnect masks the weight matrix (shape (out, in) = weight.shape) and "
                    "leaves x alone")
        return ("the rows of your batch were computed with different weight masks (one per example?): "
                "draw ONE 0/1 mask of weight's shape per call and use it for the whole batch")
    f = _single_factor(ratio[kept])
    if f is None or not np.isclose(f, 1 / (1 - p), rtol=1e-4):
        return (f"with p={p} " + _scale_message(ratio[kept], p, "kept weights")
                + " (x @ (weight * mask / (1 - p)).T + bias)")
    if p == 0.5:
        # At p = 0.5 a correct mask leaves a whole column (50 weights) or row (40) all kept or
        # all dropped with probability 2 * 2**-50 per column, 2 * 2**-40 per row:
        # 40 * 2**-49 + 50 * 2**-39 < 1e-10 in all.
        if cols_const:
            return ("every column of your weight mask (all weights out of one input) is kept or dropped as a "
                    "whole: you dropped inputs x[:, j], shared by the batch. DropConnect drops each weight "
                    "on its own: a 0/1 mask of weight's full shape (out, in)")
        if rows_const:
            return ("every row of your weight mask (all weights into one output unit) is kept or dropped as a "
                    "whole: that is dropout on the layer's outputs. DropConnect drops each weight on its own: "
                    "a 0/1 mask of weight's full shape (out, in)")
    return None


DC_STRUCTURE = "x @ (weight * mask / (1-p)).T + bias with ONE 0/1 weight mask for the batch"
DC_BIAS = "the bias is added unchanged (never dropped or rescaled)"
DC_RANDOM = "a new random weight mask on every call, drawn from generator"


def check_dropconnect_linear(c: Checker):
    x, weight, bias, x_eval, g_out = c.ref("inputs")
    shape = (x.shape[0], weight.shape[0])

    _check_returns_tensor(c, "train p=0.5", shape, "returns a tensor of shape (N, out)")

    # Central: the weights masked and rescaled, one mask for the whole batch; statistical only
    # in the column/row test at p = 0.5 (bound in _dc_structure_problem: < 1e-10). 14 of 40:
    # a wrong scaling or unit keeps the bias and the mask parts, 9/40.
    with c.check(DC_STRUCTURE, weight=14, central=True):
        for p in representative_first(DC_PS):
            out = _finite_array(c, f"train p={p}", shape, f"p={p}")
            problem = _dc_structure_problem(out, x, weight, bias, p)
            if problem:
                raise CheckFailed(problem)

    with c.check(DC_BIAS, weight=2, central=True):
        for p in representative_first(DC_PS):
            got = _array(c, f"train p={p}", shape)[x.shape[1]]      # the zero row: the bias alone
            if close(got, bias, rtol=1e-6):
                continue
            if 0 < p < 1 and close(got, bias / (1 - p), rtol=1e-6):
                raise CheckFailed(f"with p={p} your bias is divided by 1-p = {fmt(1 - p)}: only the masked weights "
                                  "are rescaled; the bias is never dropped, so it needs no rescaling")
            zero = np.abs(got) <= 1e-9
            if zero.any() and 0 < p < 1 and close(got[~zero], bias[~zero] / (1 - p), rtol=1e-6):
                raise CheckFailed(f"with p={p} your bias is masked like the weights (some entries 0, the others "
                                  "divided by 1-p): DropConnect drops weights only; the bias is added unchanged")
            if np.allclose(got, 0, atol=1e-9):
                raise CheckFailed("your output has no bias: add bias (unchanged) to x @ W.T")
            raise CheckFailed(f"with p={p} the bias your output adds is not the bias you were given: add it "
                              "unchanged, it is never dropped")

    # Central: 4 of 40. A mask fixed inside the function keeps the structure and the bias, 16/40.
    with c.check(DC_RANDOM, weight=4, central=True):
        masks = {key: _dc_applied(c, key, x, weight) for key in FRESH_KEYS}
        _require_fresh(c, masks, "weight mask", "weights")

    # Statistical: 3 drop counts (Binomial(2000, p)) and 2 neighbour tests at p = 0.5, each at
    # ALPHA / 5: ALPHA = 1e-10 < 1e-9 for the sub-check. p = 0 is deterministic.
    with c.check("each weight dropped independently with probability p (statistical)",
                 weight=3, central=True, gated_by=(DC_RANDOM,)):
        kept = _dc_applied(c, "train p=0.5", x, weight, 0.5)       # independence first: it names the cause
        for axis, name in ((1, "row"), (0, "column")):
            c.require(_neighbours_agree(kept, axis, ALPHA / 5),
                      f"neighbouring weights in a {name} of your mask are kept or dropped together far "
                      "too often: draw one independent keep/drop decision per weight")
        for p in representative_first(DC_PS):
            kept = _dc_applied(c, f"train p={p}", x, weight, p)
            if p == 0:
                c.require(kept.all(), "with p=0 nothing may be dropped")
                continue
            _check_rate(c, int((~kept).sum()), kept.size, p, ALPHA / 5, "weights")

    # Central, gated: F.linear alone is a one-liner. 9 of 40: dropping in eval keeps 23/40.
    with c.check("training=False is the plain linear layer x @ weight.T + bias",
                 weight=9, central=True, gated_by=(DC_STRUCTURE, DC_BIAS, DC_RANDOM)):
        out = _array(c, "eval", (x_eval.shape[0], weight.shape[0]))
        plain = x_eval @ weight.T
        if not close(out, plain + bias, rtol=1e-6, atol=1e-7):
            raise CheckFailed(_eval_message(out - bias, plain, EVAL_P,
                                            "return x @ weight.T + bias (F.linear(x, weight, bias))",
                                            "you still drop weights in evaluation mode"))

    _check_rng(c, 4)         # 4 of 40: torch's global generator keeps 36/40 = 0.9

    with c.check("differentiable: the gradient reaches weight through the mask", weight=1):
        no_grad = ("no gradient reached weight or bias: did you compute under torch.no_grad(), call .detach(), "
                   ".data, .item() or convert to numpy? The layer must train, so the output must depend on "
                   "weight through torch operations")
        entry = c.entry("gradient")
        c.require(not (entry.status == "error" and "grad" in entry.error_message), no_grad)
        out, gw, gb = c.outputs("gradient", n=3)
        c.require(gw is not None and gb is not None, no_grad)
        out = as_float_array(out)
        w_eff, _, _ = _dc_split(out, x)
        kept, _ = _dc_mask(w_eff, weight)
        want = (g_out.T @ x) * kept / (1 - DC_GRAD_P)
        c.require(close(as_float_array(gw), want, rtol=1e-5, atol=1e-8)
                  and close(as_float_array(gb), g_out.sum(axis=0), rtol=1e-5, atol=1e-8),
                  "the gradient with respect to weight is not the upstream gradient times the same mask / (1-p) "
                  "the forward pass used")

    with c.check("float32 in, float32 out", weight=1, peripheral=True):
        _is_tensor(c, "float32", "float32")
        out = _array(c, "float32", shape)
        w_eff, _, resid = _dc_split(out, x)
        kept, ratio = _dc_mask(w_eff, weight)
        c.require(np.allclose(resid, 0, atol=1e-4) and np.allclose(ratio[kept], 1 / (1 - DC_FLOAT32_P), rtol=1e-4),
                  "a float32 input was not handled like a float64 one")

    _check_untouched(c, "x, weight and bias are not modified",
                     [f"train p={p}" for p in DC_PS] + ["fresh 1", "fresh 2", "eval"], "x, weight or bias")


# -- gaussian_dropout ------------------------------------------------------------------------------------

def _z_bounds(n: int, alpha: float):
    """(mean half-width, chi-square interval, DKW t) for n i.i.d. N(0, 1) values, each of the
    three tests at false-failure probability alpha."""
    mean_hw = float(sstats.norm.isf(alpha / 2)) / math.sqrt(n)
    chi = (float(sstats.chi2.ppf(alpha / 2, n)), float(sstats.chi2.isf(alpha / 2, n)))
    t = math.sqrt(math.log(2 / alpha) / (2 * n))
    return mean_hw, chi, t


def _ks_distance(z) -> float:
    z = np.sort(np.asarray(z, dtype=np.float64).ravel())
    n = z.size
    cdf = sstats.norm.cdf(z)
    return float(max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n)))


def _gauss_problem(out, x, p, alpha) -> str | None:
    """None when out / x passes the three tests of N(1, p/(1-p)) noise at alpha each, else
    the message naming the mistake."""
    v = p / (1 - p)
    eps = out / x
    z = (eps - 1) / math.sqrt(v)
    n = z.size
    mean_hw, (chi_lo, chi_hi), t = _z_bounds(n, alpha)
    ss = float(np.sum(z * z))
    ok_mean, ok_var = abs(float(z.mean())) <= mean_hw, chi_lo <= ss <= chi_hi
    ok_ks = ok_mean and ok_var and _ks_distance(z) <= t
    if ok_mean and ok_var and ok_ks:
        return None
    dropped = np.abs(eps) <= 1e-9
    if dropped.mean() > 0.05 and np.allclose(eps[~dropped], 1 / (1 - p), rtol=1e-5):
        return (f"with p={p} your noise takes only the values 0 and 1/(1-p) = {fmt(1 / (1 - p))}: that is (inverted) "
                "Bernoulli dropout, which has the same mean and variance; Gaussian dropout multiplies every entry "
                "by normal noise N(1, p/(1-p)), which is never exactly 0")
    m, s2 = float(eps.mean()), float(eps.var())
    if abs(m) < 0.1 and s2 > 0.1 * v:
        return (f"with p={p} your noise has mean {fmt(m)}: x * N(0, ...) makes the expected output 0. Multiply x "
                "by noise with mean 1 (1 + sigma * z), so that the expected output stays x")
    if eps.ndim == 2 and s2 > 1e-12:
        if np.allclose(eps, eps[:, :1], rtol=1e-6):
            return (f"with p={p} every entry of a row (example) got the same noise: draw one noise value per "
                    "entry, noise of x's full shape")
        if np.allclose(eps, eps[:1], rtol=1e-6):
            return (f"with p={p} every example got the same noise (one value per feature, shared by the batch): "
                    "draw one noise value per entry, noise of x's full shape")
    d, ax = out - x, np.abs(x)
    small, large = d[ax < np.quantile(ax, 0.25)], d[ax > np.quantile(ax, 0.75)]
    if abs(float(d.var()) / v - 1) < 0.1 and 0.7 < float(small.var()) / float(large.var()) < 1.4:
        return (f"with p={p} your output is x plus noise of variance p/(1-p) (added, the same spread for every x): "
                "Gaussian dropout MULTIPLIES x by noise N(1, p/(1-p)), so the spread grows with |x|")
    if abs(m - 1) > 0.05 * math.sqrt(v) + 0.01:
        return f"with p={p} your noise out / x has mean {fmt(m)}; it must have mean 1 so that the expected output is x"
    named = {
        f"standard deviation p = {fmt(p)} instead of sqrt(p/(1-p)) = {fmt(math.sqrt(v))}": p * p,
        f"variance p = {fmt(p)} instead of p/(1-p) = {fmt(v)}": p,
        (f"standard deviation p/(1-p) = {fmt(v)}: you used the variance as the standard deviation; the standard "
         f"deviation is its square root, sqrt(p/(1-p)) = {fmt(math.sqrt(v))}"): v * v,
        (f"variance (1-p)/p = {fmt(1 / v)} instead of p/(1-p) = {fmt(v)}: p is the probability of DROPPING, 1-p "
         "that of keeping"): 1 / v,
        f"variance p(1-p) = {fmt(p * (1 - p))} instead of p/(1-p) = {fmt(v)}": p * (1 - p),
        f"variance 1-p = {fmt(1 - p)} instead of p/(1-p) = {fmt(v)}": 1 - p,
    }
    if s2 < 1e-12:
        return f"with p={p} your output is x: no noise at all while training"
    for what, var in named.items():
        if abs(s2 / var - 1) < 0.05 and abs(var / v - 1) > 0.1:
            return f"with p={p} your noise has {what}"
    if not ok_var:
        return (f"with p={p} your noise has variance {fmt(s2)}; Gaussian dropout's noise has the variance of "
                f"Bernoulli dropout's, p/(1-p) = {fmt(v)}")
    if not ok_mean:
        return f"with p={p} your noise has mean {fmt(m)}, too far from 1 for {n} draws of N(1, p/(1-p))"
    return (f"with p={p} your noise has the right mean and variance but is not Gaussian (its distribution differs "
            f"from N(1, p/(1-p)) by {_ks_distance(z):.3f} in cumulative probability): draw it with torch.randn or "
            "torch.normal")


GD_NOISE = "multiplies every entry by its own noise ~ N(1, p/(1-p)) (statistical)"
GD_RANDOM = "new noise on every call, drawn from generator"
GD_INDEPENDENT = "independent noise for every entry (statistical)"


def check_gaussian_dropout(c: Checker):
    x, small, x32 = c.ref("inputs")

    _check_returns_tensor(c, "train p=0.5", x.shape)

    # Central and statistical: 3 values of p, three tests each (mean, chi-square variance,
    # DKW on the distribution), each at ALPHA / 9: ALPHA = 1e-10 in all. 14 of 38: a wrong
    # variance, Bernoulli or additive noise keeps nothing (its other parts are gated by it).
    with c.check(GD_NOISE, weight=14, central=True):
        for p in representative_first(GD_PS):
            out = _finite_array(c, f"train p={p}", x.shape, f"p={p}")
            problem = _gauss_problem(out, x, p, ALPHA / 9)
            if problem:
                raise CheckFailed(problem)

    # Central, gated by the noise (an arbitrary new output every call is no achievement).
    # A seed fixed inside keeps the noise part, 14/38.
    with c.check(GD_RANDOM, weight=4, central=True, gated_by=(GD_NOISE,)):
        noise = {key: _array(c, key, small.shape) / small for key in FRESH_KEYS}
        _require_fresh(c, noise, "noise", "entries")

    # Statistical: disjoint pairs of z along rows and along columns; (z_a - z_b) / sqrt(2) is
    # N(0, 1) for independent entries, so each sum of squares is chi-square with 10 000 degrees
    # of freedom, tested from below at ALPHA / 2: ALPHA in all. Shared noise gives 0.
    with c.check(GD_INDEPENDENT, weight=3, central=True, gated_by=(GD_NOISE, GD_RANDOM)):
        z = (_array(c, "train p=0.5", x.shape) / x - 1)         # p = 0.5: variance 1
        for pairs, name in (((z[:, 0::2] - z[:, 1::2]) / math.sqrt(2), "row"),
                            ((z[0::2] - z[1::2]) / math.sqrt(2), "column")):
            lo = float(sstats.chi2.ppf(ALPHA / 2, pairs.size))
            c.require(float(np.sum(pairs**2)) >= lo,
                      f"neighbouring entries in a {name} get (nearly) the same noise: draw one noise value per "
                      "entry (noise of x's full shape), not one per " + ("example" if name == "row" else "feature"))

    # 9 of 38: noise in eval keeps 21/38.
    _check_eval(c, "training=False returns x", 9, (GD_NOISE, GD_RANDOM, GD_INDEPENDENT), [("eval", small, EVAL_P)])

    with c.check("p = 0 returns x", weight=1):
        c.require(close(_array(c, "p=0", small.shape), small), "with p=0 the noise has variance 0: return x")

    _check_rng(c, 4)
    # Statistical: the mean, chi-square and DKW tests of 2000 values at ALPHA / 4 each (0.75 ALPHA).
    _check_float32(c, "float32", x32.shape,
                   lambda out: _gauss_problem(out, x32.astype(np.float64), GD_FLOAT32_P, ALPHA / 4) is None)
    _check_untouched(c, "x is not modified", [f"train p={p}" for p in GD_PS] + ["fresh 1", "fresh 2", "eval"], "x")


# -- spatial_dropout ---------------------------------------------------------------------------------------

def _map_decisions(out, x):
    """(dropped maps (N, C) bool, ratio of the kept entries) or a message when a map is
    only partly zeroed."""
    zero = np.abs(out) <= _ZERO
    whole = zero.all(axis=(2, 3))
    partial = zero.any(axis=(2, 3)) & ~whole
    if partial.any():
        rows = zero.all(axis=3)
        if np.all(zero == rows[..., None]) and not np.all(rows == whole[..., None]):
            return None, None, ("your output zeroes whole ROWS of a feature map, not whole maps (one coin per "
                                "(n, c, h)): that is what F.dropout2d does to a 3-d tensor, which it reads as "
                                "(N, C, L). Draw one keep/drop decision per (n, c): a mask of shape (N, C, 1, 1)")
        return None, None, ("some feature maps are only partly zeroed: you dropped single entries (element "
                            "dropout). SpatialDropout keeps or drops a whole (n, c) map, one decision per "
                            "(example, channel): a mask of shape (N, C, 1, 1)")
    kept = ~zero
    return whole, out[kept] / x[kept], None


SD_MAPS = "whole (n, c) maps kept (scaled by 1/(1-p)) or zeroed"
SD_RANDOM = "a new random map mask on every call, drawn from generator"
SD_RATE = "each (n, c) map dropped independently with probability p (statistical)"


def check_spatial_dropout(c: Checker):
    x, small = c.ref("inputs")

    _check_returns_tensor(c, "train p=0.5", x.shape)

    # Central and exact: 14 of 37. A wrong scaling or unit keeps the mask parts, 7/37.
    with c.check(SD_MAPS, weight=14, central=True):
        for p in representative_first(SD_PS):
            out = _finite_array(c, f"train p={p}", x.shape, f"p={p}")
            _, ratio, problem = _map_decisions(out, x)
            if problem:
                raise CheckFailed(f"with p={p} {problem}")
            f = _single_factor(ratio)
            if ratio.size and (f is None or not np.isclose(f, 1 / (1 - p), rtol=1e-4)):
                raise CheckFailed(f"with p={p} " + _scale_message(ratio, p, "kept maps"))

    # Central: 4 of 37. At p = 0.5 a call drops all of its 256 maps or none with probability 2 * 2**-256.
    with c.check(SD_RANDOM, weight=4, central=True):
        _require_fresh(c, _fresh_patterns(c, small, "a call with p=0.5 dropped every map or none"), "mask", "maps")

    # Statistical: 3 counts of dropped maps (Binomial(1024, p)) and 2 neighbour tests at p = 0.5
    # (over n and over c), each at ALPHA / 5: ALPHA in all.
    with c.check(SD_RATE, weight=3, central=True, gated_by=(SD_RANDOM,)):
        decisions = {}
        for p in representative_first(SD_PS):
            whole, _, problem = _map_decisions(_array(c, f"train p={p}", x.shape), x)
            c.require(problem is None, f"with p={p} the maps are not kept or dropped whole")
            decisions[p] = whole
        c.require(_neighbours_agree(decisions[0.5], 0, ALPHA / 5),       # independence first: it names the cause
                  "the examples of your batch drop the same channels: one channel mask shared by the "
                  "batch. Draw one coin per (example, channel): a mask of shape (N, C, 1, 1)")
        c.require(_neighbours_agree(decisions[0.5], 1, ALPHA / 5),
                  "all channels of an example are kept or dropped together: that is one coin per "
                  "example (DropPath's unit). SpatialDropout draws one per (example, channel)")
        for p, whole in decisions.items():
            if p == 0:
                c.require(not whole.any(), "with p=0 nothing may be dropped")
            else:
                _check_rate(c, int(whole.sum()), whole.size, p, ALPHA / 5, "feature maps")

    _check_eval(c, "training=False returns x", 9, (SD_MAPS, SD_RANDOM, SD_RATE), [("eval", small, EVAL_P)])
    _check_rng(c, 4)
    _check_float32(c, "float32", small.shape, lambda out: _inverted_by(_map_decisions(out, small), SD_FLOAT32_P))
    _check_untouched(c, "x is not modified", [f"train p={p}" for p in SD_PS] + ["fresh 1", "fresh 2", "eval"], "x")


# -- dropblock_gamma ----------------------------------------------------------------------------------------

def _gamma(p, b, h, w):
    return p * h * w / (b * b * (h - b + 1) * (w - b + 1))


def _gamma_mistakes(p, b, h, w):
    """(value, message) of the recognisable mistakes for one case."""
    valid = (h - b + 1) * (w - b + 1)
    out = [
        (p / b**2, "you left out the valid-region factor HW / ((H-b+1)(W-b+1)): seeds may only fall where the "
                   "whole block fits, a smaller area than the map, so each of them must be more likely"),
        (p, "gamma = p: every seed drops a whole block of block_size^2 positions, so a seed rate of p drops far "
            "more than p of the map"),
        (p * h * w / (b * valid), "you divided by block_size instead of block_size^2 (the number of positions "
                                  "one block covers)"),
        (p / b**2 * valid / (h * w), "your valid-region factor is upside down: it is HW / ((H-b+1)(W-b+1)) >= 1"),
        (_gamma(1 - p, b, h, w), "you used the keep probability 1-p where the drop probability p belongs"),
    ]
    if h != w:
        out.append((p * h * h / (b * b * (h - b + 1) ** 2),
                    "you used the square-map formula with H for both sides: with H != W the map has H*W "
                    "positions and (H-b+1)(W-b+1) valid centres"))
        out.append((p * w * w / (b * b * (w - b + 1) ** 2),
                    "you used the square-map formula with W for both sides: with H != W the map has H*W "
                    "positions and (H-b+1)(W-b+1) valid centres"))
    if b < min(h, w):
        out.append((p * h * w / (b * b * (h - b) * (w - b)),
                    "you counted (H-b)(W-b) valid centres; a block fits at H-b+1 positions per column"))
    return out


def _check_gamma_cases(c: Checker, cases):
    for case in cases:
        got = as_float_array(c.output(f"gamma {case}"), "gamma")
        c.require(got.size == 1, f"gamma must be one number; yours has shape {got.shape}")
        got = float(got.reshape(-1)[0])
        want = _gamma(*case)
        if np.isclose(got, want, rtol=1e-6, atol=0):
            continue
        p, b, h, w = case
        where = f"with p={p}, block_size={b}, H={h}, W={w}"
        for value, why in _gamma_mistakes(*case):
            if np.isclose(got, value, rtol=1e-6, atol=0):
                raise CheckFailed(f"{where}: {why}")
        if got == 0:
            raise CheckFailed(f"{where} your gamma is 0: did you use integer division (//)?")
        raise CheckFailed(f"{where} your gamma is {fmt(got)}; derive it from the expected fraction of the map "
                          "the blocks cover (overlaps ignored), counting only the centres where a block fits")


def check_dropblock_gamma(c: Checker):
    drawn = tuple(c.ref("inputs")[0].tolist())
    drawn = (drawn[0], int(drawn[1]), int(drawn[2]), int(drawn[3]))

    # Central: the formula on square maps (5 of 10) and on maps with H != W (3 of 10); the
    # square-map formula keeps the first part, 5/10.
    with c.check("gamma on square maps", weight=5, central=True):
        _check_gamma_cases(c, DG_SQUARE)

    with c.check("gamma on maps with H != W", weight=3, central=True):
        _check_gamma_cases(c, DG_RECT + (drawn,))

    with c.check("block_size = 1 and block_size = min(H, W)", weight=1):
        _check_gamma_cases(c, DG_EDGES)

    with c.check("returns one float", weight=1, peripheral=True):
        key = f"gamma {DG_SQUARE[0]}"
        c.require(not c.entry(key).is_tuple, "return the number itself, not a list or tuple holding it")
        arr = np.asarray(c.output(key))
        c.require(arr.ndim == 0, f"return one float, not an array of shape {arr.shape} (use float(...))")


# -- dropblock ------------------------------------------------------------------------------------------------

def _window_reduce(a, b, pad_value, reduce):
    """For every position, ``reduce`` (np.logical_and or np.logical_or) over the b x b square
    centred on it, ``a`` (N, C, H, W) bool padded with ``pad_value`` outside the map. Separable:
    b shifted slices along H, then along W."""
    r = b // 2
    out = a
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        padded = np.pad(out, pad, constant_values=pad_value)
        n = out.shape[axis]
        acc = np.take(padded, np.arange(0, n), axis=axis)
        for shift in range(1, b):
            acc = reduce(acc, np.take(padded, np.arange(shift, shift + n), axis=axis))
        out = acc
    return out


def _squares_explain(dropped, b, anywhere=False):
    """Whether ``dropped`` (N, C, H, W) is exactly a union of b x b squares centred on
    valid centres (where the whole square fits), or, with ``anywhere``, on any centre with
    the squares cut off at the border."""
    h, w = dropped.shape[2:]
    r = b // 2
    seeds = _window_reduce(dropped, b, anywhere, np.logical_and)      # centres whose square is all dropped
    if not anywhere:
        valid = np.zeros((h, w), dtype=bool)
        valid[r:h - r, r:w - r] = True
        seeds = seeds & valid
    covered = _window_reduce(seeds, b, False, np.logical_or)
    return bool(np.array_equal(covered, dropped))


def _block_problem(dropped, b) -> str | None:
    if _squares_explain(dropped, b):
        return None
    if _squares_explain(dropped, b, anywhere=True):
        return ("some of your blocks stick out of the map (cut off at the border): seeds may only be where the "
                f"whole {b} x {b} square centred on them lies inside the map (rows and columns block_size//2 .. "
                "size - 1 - block_size//2), and each square is centred on its seed")
    for other in (2 * b + 1, b + 2, b - 2, b + 1, b - 1):
        if 1 <= other <= min(dropped.shape[2:]) and other % 2 == 1 and \
                _squares_explain(dropped, other, anywhere=True):
            return f"your blocks are {other} x {other} squares, not block_size x block_size = {b} x {b}"
    return (f"the positions you dropped are not whole {b} x {b} squares: each seed drops the block_size x "
            "block_size square centred on it, in every map on its own")


def _kept_factor_problem(out, x, dropped, p) -> str | None:
    """None when the kept entries are x * numel / (number kept), else the message."""
    kept = ~dropped
    n_kept = int(kept.sum())
    if n_kept == 0:
        return None
    want = kept.size / n_kept
    ratio = out[kept] / x[kept]
    if np.allclose(ratio, want, rtol=1e-6):
        return None
    what = f"numel / (number kept) = {fmt(want)} for this call"
    f = _single_factor(ratio)
    if f is not None and np.isclose(f, 1.0, rtol=1e-6):
        return (f"your kept values are not rescaled: DropBlock multiplies the survivors by the whole tensor's "
                f"numel / (number kept), here {fmt(want)}, so that the expected sum stays the same")
    if f is not None and 0 < p < 1 and np.isclose(f, 1 / (1 - p), rtol=1e-6):
        return (f"you rescaled by 1/(1-p) = {fmt(1 / (1 - p))}, element dropout's factor; blocks overlap, so the "
                f"fraction kept is not 1-p: rescale by what your mask actually kept, {what}")
    hw = x.shape[2] * x.shape[3]
    per_map = hw / np.maximum(kept.sum(axis=(2, 3), keepdims=True), 1)
    if np.allclose(out[kept], (x * per_map)[kept], rtol=1e-6):
        return ("each of your maps is rescaled by its own kept fraction: normalise over the WHOLE tensor (as the "
                "official code does), numel / mask.sum() with both counts over every map; a per-map factor is "
                "noisier and divides by 0 for an empty map")
    if f is not None:
        return f"your kept values are scaled by {fmt(f)}; the spec's factor is {what}"
    return f"your kept values are not all scaled by one factor; the spec's factor is {what}"


def _require_kept_multiple(c: Checker, out, x, dropped, where) -> None:
    """What is not dropped is x times a positive factor (one per map is allowed here)."""
    c.require(np.all(out[~dropped] / x[~dropped] > 0),
              f"{where}: your output is not x times a 0/1 block mask and a positive factor")


def _db_call(c: Checker, key, x):
    out = _finite_array(c, key, x.shape)
    return out, np.abs(out) <= _ZERO


#: DropBlock's statistical check on the "main" call: interior positions (all b*b centres that
#: can drop them are valid) on a lattice of spacing b, so that no two share a centre.
def lattice(shape, b):
    h, w = shape[2:]
    r = b // 2
    return np.arange(2 * r, h - 2 * r, b), np.arange(2 * r, w - 2 * r, b)


def _lattice_q(p, b, h, w):
    return 1 - (1 - _gamma(p, b, h, w)) ** (b * b)


DB_SQUARES = "dropped positions are whole block_size x block_size squares centred where they fit"
DB_NORMALISED = "kept values scaled by numel / (number kept) over the whole tensor"
DB_RANDOM = "a new random block mask on every call, drawn from generator"
DB_RATE = "seed rate gamma and an independent mask per (n, c) map (statistical)"


def check_dropblock(c: Checker):
    inputs = c.ref("inputs")
    xs = {key: inputs[i] for i, (key, *_rest) in enumerate(DB_CALLS)}
    small, everything, x32 = inputs[len(DB_CALLS):]

    _check_returns_tensor(c, "train main", xs["main"].shape)

    # Central and exact: any union of valid squares passes, whatever the seeds. 7 of 46.
    with c.check(DB_SQUARES, weight=7, central=True):
        for key, _shape, p, b in DB_CALLS:
            out, dropped = _db_call(c, f"train {key}", xs[key])
            # Tied to the hidden x: what is kept is x times a positive factor, and the main call
            # (512 maps) drops something (it drops nothing with probability (1-gamma)^51200 < 1e-300).
            _require_kept_multiple(c, out, xs[key], dropped, f"with p={p} and block_size={b}")
            c.require(dropped.any() or key != "main", f"with p={p} and block_size={b} nothing was dropped")
            problem = _block_problem(dropped, b)
            if problem:
                raise CheckFailed(f"with p={p} and block_size={b}: {problem}")

    # Central and exact, on the student's own mask. 7 of 46: without it the blocks, the
    # randomness and the rate keep 19/46.
    with c.check(DB_NORMALISED, weight=7, central=True):
        for key, _shape, p, b in DB_CALLS:
            out, dropped = _db_call(c, f"train {key}", xs[key])
            problem = _kept_factor_problem(out, xs[key], dropped, p)
            if problem:
                raise CheckFailed(f"with p={p} and block_size={b}: {problem}")

    # Central: 4 of 46. A call of DB_SMALL drops nothing with probability (1 - gamma)^1152 < 1e-30.
    with c.check(DB_RANDOM, weight=4, central=True):
        _require_fresh(c, _fresh_patterns(c, small, "a call with p=0.3 dropped nothing (or everything)"),
                       "block mask", "positions")

    # Statistical, on the "main" call (512 maps of 12 x 12, block_size 3, p = 0.3): 9 lattice
    # positions per map, 4608 independent Bernoulli(q) indicators, q = 1 - (1 - gamma)^9; the
    # count and the agreements of 2304 disjoint pairs of maps over c and over n
    # (Binomial(2304, q^2 + (1-q)^2)) are tested at ALPHA / 3 each: ALPHA in all.
    with c.check(DB_RATE, weight=8, central=True, gated_by=(DB_RANDOM,)):
        key, shape, p, b = DB_CALLS[0]
        _, dropped = _db_call(c, f"train {key}", xs[key])
        rows, cols = lattice(shape, b)
        z = dropped[:, :, rows][:, :, :, cols]
        q = _lattice_q(p, b, *shape[2:])
        lo, hi = binomial_bounds(z.size, q, ALPHA / 3)
        count = int(z.sum())
        if not lo <= count <= hi:
            alt = {"gamma = p (every seed drops a whole block, so far too much is dropped)":
                   1 - (1 - p) ** (b * b),
                   "gamma = p / block_size^2 without the valid-region factor (too few blocks)":
                   1 - (1 - p / b**2) ** (b * b)}
            for why, q_alt in alt.items():
                a_lo, a_hi = binomial_bounds(z.size, q_alt, ALPHA)
                if a_lo <= count <= a_hi:
                    raise CheckFailed(f"with p={p} and block_size={b} your blocks fall as if {why}: use "
                                      f"gamma = {_gamma(p, b, *shape[2:]):.4f} from dropblock_gamma")
            for other in (2 * b + 1, b + 2):
                if count > hi and other <= min(shape[2:]) and dropped.any() and _squares_explain(dropped, other):
                    raise CheckFailed(f"with p={p} and block_size={b} your blocks look {other} x {other} (every "
                                      f"dropped region is made of {other} x {other} squares), not block_size x "
                                      f"block_size = {b} x {b}: the square centred on a seed spans block_size//2 "
                                      "positions on each side")
            raise CheckFailed(f"with p={p} and block_size={b} interior positions are dropped {count / z.size:.1%} of "
                              f"the time; with the spec's gamma they are dropped {q:.1%} of the time")
        agree = q * q + (1 - q) ** 2
        for axis, name, fix in ((1, "channels", "all channels of an example"),
                                (0, "examples", "every example of the batch")):
            first = np.take(z, np.arange(0, z.shape[axis] - 1, 2), axis=axis)
            second = np.take(z, np.arange(1, z.shape[axis], 2), axis=axis)
            same = int((first == second).sum())
            a_lo, a_hi = binomial_bounds(first.size, agree, ALPHA / 3)
            c.require(a_lo <= same <= a_hi,
                      f"your block masks are (nearly) the same for {fix}: draw an independent mask for every "
                      f"(n, c) map (seeds of x's full shape (N, C, H, W)); the {name} should not share blocks")

    with c.check("identity when training=False or p == 0",
                 weight=10, central=True, gated_by=(DB_SQUARES, DB_NORMALISED, DB_RANDOM, DB_RATE)):
        out = _array(c, "eval", small.shape)
        if not close(out, small):
            raise CheckFailed(_eval_message(out, small, DB_SMALL[1], "return x unchanged"))
        c.require(close(_array(c, "p=0", small.shape), small),
                  "with p=0 gamma is 0, no block is dropped and the factor is 1: return x")

    with c.check("everything dropped gives zeros, not NaN", weight=1):
        shape, p, b = DB_ALL_DROPPED
        c.require(c.raised("all dropped") is None, f"p = {p} is a valid drop probability (gamma = 1 when block_size "
                                                   "= H = W: every map is dropped): return zeros, do not raise")
        out = _array(c, "all dropped", shape)
        c.require(np.isfinite(out).all(), f"with block_size = H = W = {b} and p = {p} every map is dropped and "
                                          "your output contains NaN (0 * numel / 0): return zeros when nothing is kept")
        c.require(np.all(out == 0), f"with block_size = H = W = {b} and p = {p} every map is dropped: the output "
                                    "must be all zeros")

    with c.check("even block_size or block_size > min(H, W) raises ValueError", weight=1, peripheral=True):
        for key, shape, b in DB_INVALID:
            raised = c.raised(key)
            c.require(raised == "ValueError", f"{key} (block_size={b} on {shape[2]} x {shape[3]} maps) should raise "
                                              "ValueError, " + (f"got {raised}" if raised else "nothing was raised"))

    _check_rng(c, 5)

    def blocks_ok(out):
        dropped = np.abs(out) <= _ZERO
        kept = ~dropped
        return _squares_explain(dropped, DB_FLOAT32[2]) and (
            not kept.any() or np.allclose(out[kept] / x32[kept], kept.size / kept.sum(), rtol=1e-4))

    _check_float32(c, "float32", DB_FLOAT32[0], blocks_ok)
    _check_untouched(c, "x is not modified", [f"train {key}" for key, *_ in DB_CALLS] + ["fresh 1", "fresh 2", "eval"],
                     "x")


# -- drop_path --------------------------------------------------------------------------------------------

def _row_decisions(out, x):
    """(dropped rows (N,) bool, ratio of the kept entries, message or None)."""
    zero = (np.abs(out) <= _ZERO).reshape(out.shape[0], -1)
    whole = zero.all(axis=1)
    if (zero.any(axis=1) & ~whole).any():
        if np.all(zero == zero[:1]):
            return None, None, ("the same features are zeroed in every example: your mask broadcasts along the "
                                "last dimension (a mask of shape (N,) multiplies COLUMNS of an (N, N) x, a mask "
                                "of shape (1, D) drops features). One coin per example needs the shape "
                                "(N, 1, ..., 1)")
        return None, None, ("single entries of an example are dropped: DropPath keeps or drops an example's whole "
                            "residual branch, one coin per row (a mask of shape (N, 1, ..., 1))")
    kept = ~(np.abs(out) <= _ZERO)
    return whole, out[kept] / x[kept], None


def _batch_problem(out, x, p) -> str | None:
    """A batch-mode output must be all 0 or x / (1 - p); ``out`` may hold several calls'
    outputs stacked along a first axis (x broadcast against each)."""
    out = out.reshape((-1,) + x.shape)
    zero = (np.abs(out) <= _ZERO).reshape(out.shape[0], -1)
    whole = zero.all(axis=1)
    if (zero.any(axis=1) & ~whole).any():
        return ("in batch mode part of the tensor is dropped and part kept: one coin decides for the WHOLE tensor "
                "(mode=\"batch\"), rows are dropped separately only in row mode")
    if whole.all():
        return None
    ratio = out[~whole] / x
    f = _single_factor(ratio)
    if f is None or not np.isclose(f, 1 / (1 - p), rtol=1e-4):
        return "in batch mode " + _scale_message(ratio, p, "kept values")
    return None


DP_ROWS = "row mode: each example kept whole (scaled by 1/(1-p)) or zeroed"
DP_BATCH = "batch mode: the whole tensor kept (scaled by 1/(1-p)) or zeroed"
DP_RANDOM = "a new random decision on every call, drawn from generator"
DP_RATE = "rows dropped independently with probability p, the batch with probability p (statistical)"


def check_drop_path(c: Checker):
    x, x4, square, small, xb = c.ref("inputs")

    _check_returns_tensor(c, "row p=0.5", x.shape)

    # Central and exact: 12 of 41. An elementwise or unrescaled DropPath keeps at most the mask parts.
    with c.check(DP_ROWS, weight=12, central=True):
        calls = [(f"row p={p}", x, p) for p in representative_first(DP_PS)]
        calls += [("row 4-d", x4, 0.3), ("row square", square, 0.5), ("default mode", x4, 0.5)]
        for key, xx, p in calls:
            out = _finite_array(c, key, xx.shape)
            _, ratio, problem = _row_decisions(out, xx)
            if problem:
                raise CheckFailed(f"with p={p} {problem}" + (" (called without mode=, whose default is \"row\")"
                                                           if key == "default mode" else ""))
            f = _single_factor(ratio)
            if ratio.size and (f is None or not np.isclose(f, 1 / (1 - p), rtol=1e-4)):
                raise CheckFailed(f"with p={p} " + _scale_message(ratio, p, "kept examples"))

    with c.check(DP_BATCH, weight=4, central=True):
        many = _array(c, "batch many", (DP_BATCH_CALLS,) + xb.shape)
        _finite(c, many, "batch mode")
        problem = _batch_problem(many, xb, DP_BATCH_P)
        if problem:
            raise CheckFailed(f"with p={DP_BATCH_P} {problem}")
        problem = _batch_problem(_array(c, "batch 4-d", x4.shape), x4, 0.5)
        c.require(problem is None, f"with p=0.5 {problem}")

    # Central: 4 of 41. At p = 0.5 the 64 rows of a call are all kept or all dropped with probability
    # 2 * 2**-64 < 1e-18 for a correct function.
    with c.check(DP_RANDOM, weight=4, central=True):
        batch_like = ("in row mode your examples are all kept or all dropped together (one coin for the whole "
                      "batch, batch mode's behaviour): row mode draws one independent coin per example")
        _require_fresh(c, _fresh_patterns(c, small, batch_like), "mask", "examples")

    # Statistical: 3 counts of dropped rows (Binomial(400, p)), the neighbour test at p = 0.5
    # (399 pairs) and the count of dropped batch-mode calls (Binomial(120, 0.2)), each at
    # ALPHA / 5: ALPHA in all.
    with c.check(DP_RATE, weight=4, central=True, gated_by=(DP_RANDOM,)):
        for p in representative_first(DP_PS):
            whole, _, problem = _row_decisions(_array(c, f"row p={p}", x.shape), x)
            c.require(problem is None, f"with p={p} the examples are not kept or dropped whole")
            if p == 0:
                c.require(not whole.any(), "with p=0 nothing may be dropped")
                continue
            _check_rate(c, int(whole.sum()), whole.size, p, ALPHA / 5, "examples")
            if p == 0.5:
                c.require(_neighbours_agree(whole, 0, ALPHA / 5),
                          "in row mode the examples are kept or dropped together (one coin for the whole batch?): "
                          "row mode draws one independent coin per example")
        many = _array(c, "batch many", (DP_BATCH_CALLS,) + xb.shape)
        c.require(_batch_problem(many, xb, DP_BATCH_P) is None, "batch mode does not keep or drop the whole tensor")
        dropped = int((np.abs(many) <= _ZERO).reshape(DP_BATCH_CALLS, -1).all(axis=1).sum())
        lo, hi = binomial_bounds(DP_BATCH_CALLS, DP_BATCH_P, ALPHA / 5)
        c.require(lo <= dropped <= hi, _rate_message(dropped, DP_BATCH_CALLS, DP_BATCH_P, "batch-mode calls"))

    _check_eval(c, "training=False returns x in both modes", 9, (DP_ROWS, DP_BATCH, DP_RANDOM, DP_RATE),
                [("eval row", small, EVAL_P), ("eval batch", xb, EVAL_P)])
    _check_rng(c, 5)
    _check_float32(c, "float32", small.shape, lambda out: _inverted_by(_row_decisions(out, small), DP_FLOAT32_P))
    _check_untouched(c, "x is not modified", [f"row p={p}" for p in DP_PS]
                     + ["row 4-d", "batch 4-d", "fresh 1", "fresh 2", "eval row"], "x")


# -- cutout -------------------------------------------------------------------------------------------------

def _accepted_spans(n: int, size: int) -> set:
    """(start, length) of the clipped spans a centre c in 0..n-1 can give along one axis: the
    square covers c - lo .. c - lo + size - 1 with lo = size // 2, or for an even size also
    lo = size // 2 - 1 (either central pixel)."""
    los = {size // 2} | ({size // 2 - 1} if size % 2 == 0 else set())
    spans = set()
    for lo in los:
        for centre in range(n):
            a = centre - lo
            start, stop = max(a, 0), min(a + size, n)
            spans.add((start, stop - start))
    return spans


def _squares(out, images):
    """Per image (top, height, left, width) of its zeroed rectangle, or a message."""
    zero = np.abs(out) <= _ZERO
    if not np.all(zero == zero[:, :1]):
        return None, ("the zeroed pixels differ between the channels of an image: Cutout zeroes one square per "
                      "image, the same for all of its channels")
    z = zero[:, 0]
    rest = ~zero
    if rest.any() and not np.allclose(out[rest], images[rest], rtol=1e-6, atol=0):
        f = _single_factor(out[rest] / images[rest])
        if f is not None:
            return None, (f"the pixels outside your squares are multiplied by {fmt(f)}: Cutout is a data "
                          "augmentation and rescales nothing; every pixel outside the square stays as it was")
        return None, "the pixels outside your squares changed: every pixel outside the square stays as it was"
    rows, cols = z.any(axis=2), z.any(axis=1)
    if not np.array_equal(z, rows[:, :, None] & cols[:, None, :]):
        return None, "the zeros of an image do not form one rectangle: Cutout zeroes one square per image"
    if not rows.any(axis=1).all():
        return None, ("an image has no zeroed pixel: the centre lies inside the image (row in 0..H-1, column in "
                      "0..W-1), so every image loses at least part of a square")
    spans = []
    for axis_bits in (rows, cols):
        start = axis_bits.argmax(axis=1)
        length = axis_bits.sum(axis=1)
        if not np.all(axis_bits.sum(axis=1) == (np.cumsum(axis_bits, axis=1).argmax(axis=1) - start + 1)):
            return None, "the zeros of an image do not form one rectangle: Cutout zeroes one square per image"
        spans.append((start, length))
    return np.stack([spans[0][0], spans[0][1], spans[1][0], spans[1][1]], axis=1), None


def _span_problem(boxes, h, w, size) -> str | None:
    for (start_i, len_i), n, axis in (((0, 1), h, "rows"), ((2, 3), w, "columns")):
        ok = _accepted_spans(n, size)
        bad = [k for k in range(len(boxes)) if (int(boxes[k, start_i]), int(boxes[k, len_i])) not in ok]
        if not bad:
            continue
        full = boxes[:, len_i][(boxes[:, start_i] > 0) & (boxes[:, start_i] + boxes[:, len_i] < n)]
        if full.size:
            side = int(np.median(full))
            if side != size:
                hint = (": slices y - size//2 : y + size//2 hold only size - 1 pixels for an odd size; the square "
                        "spans y - size//2 .. y - size//2 + size - 1") if side == size - 1 else ""
                return f"your squares span {side} {axis}, not size = {size}{hint}"
        return (f"some of your squares are cut by the border more than a square centred inside the image can be "
                f"(at most size//2 = {size // 2} {axis} lost): the drawn pixel is the square's CENTRE, uniform over "
                f"all {n} {axis}")
    return None


CO_SQUARE = "one size x size square per image, shared by its channels, clipped at the border; nothing rescaled"
CO_RANDOM = "a new square for every image and every call, drawn from generator"


def check_cutout(c: Checker):
    inputs = c.ref("inputs")
    images = {key: inputs[i] for i, (key, *_rest) in enumerate(CO_CALLS)}
    small = inputs[len(CO_CALLS)]
    shapes = {key: shape for key, shape, _ in CO_CALLS}
    read = {}

    def squares(key, shape=None, source=None):
        """(boxes, problem) of one call, read once (three sub-checks use the main call)."""
        if key not in read:
            read[key] = _squares(_array(c, key, shape or shapes[key]), images[key] if source is None else source)
        return read[key]

    # Central and exact: 12 of 29. A rescaled output, a square per channel or the official
    # code's (size-1)-squares keep at most the randomness part, 4/29.
    with c.check(CO_SQUARE, weight=12, central=True):
        for key, shape, size in CO_CALLS:
            _finite(c, _array(c, key, shape), key)
            boxes, problem = squares(key)
            if problem is None:
                problem = _span_problem(boxes, shape[2], shape[3], size)
            if problem:
                raise CheckFailed(f"with size={size} on {shape[2]} x {shape[3]} images: {problem}")

    # Central: 4 of 29. Within one call, 150 disjoint pairs of images share a square with
    # probability 1/256 each for a correct function (the clipped square determines the centre
    # for an odd size): the count is tested against binomial_bounds(150, 1/256) at ALPHA / 2.
    # Across calls, 20 images all with the same squares: (1/64)^20 < 1e-36.
    with c.check(CO_RANDOM, weight=4, central=True):
        key, shape, size = CO_CALLS[0]
        boxes, problem = squares(key)
        c.require(problem is None, "your squares could not be read from the output")
        same = int(np.all(boxes[0::2][:len(boxes) // 2] == boxes[1::2][:len(boxes) // 2], axis=1).sum())
        _, hi = binomial_bounds(len(boxes) // 2, 1 / (shape[2] * shape[3]), ALPHA / 2)
        c.require(same <= hi, "your images get the same square (one centre drawn per call?): draw a centre for "
                              "every image")
        drawn = {}
        for k in FRESH_KEYS:
            b, problem = squares(k, small.shape, small)
            c.require(problem is None, f"{k}: your squares could not be read from the output")
            drawn[k] = b
        _require_fresh(c, drawn, "squares", "pixels")

    # Statistical: in the main call (300 images of 16 x 16, size 7) the numbers of squares
    # clipped at the top, bottom, left and right are each Binomial(300, 3/16) for centres
    # uniform over the pixels; each is tested at ALPHA / 4: ALPHA in all.
    with c.check("centres uniform over all H*W pixels: squares near the border are clipped (statistical)",
                 weight=5, central=True, gated_by=(CO_SQUARE, CO_RANDOM)):
        key, (n, _, h, w), size = CO_CALLS[0]
        boxes, problem = squares(key)
        c.require(problem is None, "your squares could not be read from the output")
        k = size // 2
        clipped = {"top": (boxes[:, 0] == 0) & (boxes[:, 1] < size),
                   "bottom": (boxes[:, 0] + boxes[:, 1] == h) & (boxes[:, 1] < size),
                   "left": (boxes[:, 2] == 0) & (boxes[:, 3] < size),
                   "right": (boxes[:, 2] + boxes[:, 3] == w) & (boxes[:, 3] < size)}
        if not any(v.any() for v in clipped.values()):
            expected = 1 - (1 - 2 * k / h) * (1 - 2 * k / w)
            raise CheckFailed(f"none of your {n} squares is clipped by the border, but with centres uniform over all "
                              f"{h} x {w} pixels about {expected:.0%} of them would be: draw the centre anywhere in "
                              "the image and clip the square (do not shift it inside, nor draw centres only where it "
                              "fits)")
        for side, hit in clipped.items():
            n_side = h if side in ("top", "bottom") else w
            lo, hi = binomial_bounds(n, k / n_side, ALPHA / 4)
            c.require(lo <= int(hit.sum()) <= hi,
                      f"{int(hit.sum())} of your {n} squares are clipped at the {side}, but with centres uniform over "
                      f"the image about {n * k / n_side:.0f} would be: the drawn pixel is the square's centre, "
                      "uniform over all pixels")

    _check_rng(c, 5)

    with c.check("float32 images come back as a float32 tensor", weight=1, peripheral=True):
        _is_tensor(c, CO_CALLS[0][0], "float32")

    _check_untouched(c, "images are not modified", [key for key, *_ in CO_CALLS] + ["fresh 1", "fresh 2"], "images",
                     weight=2)


# -- multi_sample_dropout_logits -------------------------------------------------------------------------------

def _ms_masked(c: Checker, key, k, features, weight, bias):
    """(masked features (k, N, D), message or None) read through the orthonormal head."""
    n, c_out = features.shape[0], weight.shape[0]
    out = as_float_array(c.output(key), "logits")
    if out.shape == (n, c_out) and k > 1:
        return None, (f"you returned one (N, C) array (the mean over the samples?): return every sample's logits, "
                      f"shape (n_samples, N, C) = ({k}, {n}, {c_out})")
    if out.shape == (n, k, c_out) and n != k:
        return None, (f"your logits have shape (N, n_samples, C) = {out.shape}: stack the samples along the FIRST "
                      "dimension, (n_samples, N, C)")
    require_shape(out, (k, n, c_out), "logits")
    c.require(np.isfinite(out).all(), f"{key}: your logits contain NaN or inf")
    h = (out - bias) @ weight
    if not np.allclose(h @ weight.T + bias, out, rtol=1e-5, atol=1e-6):
        return None, ("your logits are not the head applied to masked features: apply each sample's mask to the "
                      "FEATURES, then the head (masking the logits is not Multi-Sample Dropout)")
    return h, None


def _ms_problem(h, features, p) -> str | None:
    ratio = h / features
    kept = np.abs(ratio) > 1e-4
    f = _single_factor(ratio[kept])
    if f is not None and np.isclose(f, 1 / (1 - p), rtol=1e-4):
        return None
    if h.shape[0] > 1 and kept[0].all() and np.allclose(ratio[0], 1.0, rtol=1e-5):
        return ("your first sample is the head on the unmasked features: every one of the n_samples copies gets "
                "its own dropout mask")
    return _scale_message(ratio[kept], p, "kept features")


MS_SAMPLES = "each sample is head(features * mask / (1-p)) with a 0/1 mask"
MS_OWN_MASK = "every sample and every example has its own mask"
MS_RANDOM = "new random masks on every call, drawn from generator"


def check_multi_sample_dropout_logits(c: Checker):
    features, weight, bias = c.ref("inputs")

    _check_returns_tensor(c, "p=0.5", None, "returns a tensor of shape (n_samples, N, C)")

    # Central and exact: 10 of 34. No rescaling, p as keep or masked logits keep at most 6/34.
    with c.check(MS_SAMPLES, weight=10, central=True):
        for key, p, k in [(f"p={p}", p, MS_K) for p in representative_first(MS_PS)] + [("one sample", MS_ONE_P, 1)]:
            h, problem = _ms_masked(c, key, k, features, weight, bias)
            problem = problem or _ms_problem(h, features, p)
            if problem:
                raise CheckFailed(f"with p={p} {problem}")

    # Central: 6 of 34. For a correct function two of 8 samples share a mask of 480 entries with
    # probability below 28 * 0.68**480 (p = 0.2: agreement per entry 0.8^2 + 0.2^2 = 0.68), and the
    # 40 examples of a sample all share one 12-entry mask with probability below 0.68**(12*39):
    # both < 1e-70. One mask for all samples, or one per sample shared by the batch, keeps 16/34.
    with c.check(MS_OWN_MASK, weight=6, central=True, gated_by=(MS_SAMPLES,)):
        for p in representative_first(MS_PS):
            h, problem = _ms_masked(c, f"p={p}", MS_K, features, weight, bias)
            c.require(problem is None, problem or "")
            kept = np.abs(h / features) > 1e-4
            flat = kept.reshape(MS_K, -1)
            for i in range(MS_K):
                for j in range(i + 1, MS_K):
                    c.require(not np.array_equal(flat[i], flat[j]),
                              f"with p={p} samples {i} and {j} used the same mask (one mask for all samples?): "
                              "each of the n_samples copies of the features gets its own dropout mask")
            c.require(not np.all(kept == kept[:, :1]),
                      f"with p={p} every example of a sample got the same mask: draw a mask of the features' full "
                      "shape (N, D) for every sample, i.e. (n_samples, N, D) in all")

    with c.check(MS_RANDOM, weight=6, central=True):
        masks = {}
        for key in FRESH_KEYS:
            h, problem = _ms_masked(c, key, 2, features, weight, bias)
            c.require(problem is None, f"{key}: {problem}")
            kept = np.abs(h / features) > 1e-4
            f = _single_factor((h / features)[kept])
            c.require(f is not None and abs(f) > 1e-6, f"{key}: the features are not masked with one factor")
            masks[key] = kept
        _require_fresh(c, masks, "masks", "features")

    # Statistical: 3 counts of dropped features (Binomial(8 * 40 * 12 = 3840, p)) and 2 neighbour
    # tests at p = 0.5 (over examples and over features), each at ALPHA / 5: ALPHA in all.
    with c.check("features dropped independently with probability p (statistical)",
                 weight=4, central=True, gated_by=(MS_RANDOM, MS_OWN_MASK)):
        for p in representative_first(MS_PS):
            h, problem = _ms_masked(c, f"p={p}", MS_K, features, weight, bias)
            c.require(problem is None, problem or "")
            kept = np.abs(h / features) > 1e-4
            _check_rate(c, int((~kept).sum()), kept.size, p, ALPHA / 5, "features")
            if p == 0.5:
                for axis, name in ((1, "examples"), (2, "features")):
                    c.require(_neighbours_agree(kept, axis, ALPHA / 5),
                              f"neighbouring {name} are kept or dropped together far too often: draw one "
                              "independent coin per (sample, example, feature)")

    _check_rng(c, 5)

    def masked_ok(out):
        ratio = ((out - bias) @ weight) / features
        kept = np.abs(ratio) > 1e-3
        return np.allclose(ratio[kept], 1 / (1 - MS_FLOAT32[0]), rtol=1e-4, atol=1e-4)

    _check_float32(c, "float32", (MS_FLOAT32[1], features.shape[0], weight.shape[0]), masked_ok)
    _check_untouched(c, "features are not modified", [f"p={p}" for p in MS_PS] + ["one sample", "fresh 1", "fresh 2"],
                     "features")


CHECKS = {
    "dropconnect_linear": check_dropconnect_linear,
    "gaussian_dropout": check_gaussian_dropout,
    "spatial_dropout": check_spatial_dropout,
    "dropblock_gamma": check_dropblock_gamma,
    "dropblock": check_dropblock,
    "drop_path": check_drop_path,
    "cutout": check_cutout,
    "multi_sample_dropout_logits": check_multi_sample_dropout_logits,
}
