"""Checks for chapter 01, overfitting.

Everything here is deterministic: no function takes randomness, so every
output is compared (to float tolerance) with the hidden reference's or with a
closed form computed from the probe's inputs. No statistical check, hence no
false-failure bound to state. The probes draw well-conditioned inputs (ridge:
Gaussian designs with N >> D, a wide one only with lam > 0), so every correct
way of computing (normal equations, augmented least squares, SVD, vander or
column_stack, torch.norm or sums) agrees far inside the tolerances.

Gating and weights (autograder/POLICY.md). Each function's central
computation is declared ``central=True`` and carries at least half of its
weight; everything else (argument validation, shapes, dtypes, inputs left
unmodified, generators, float32) is a claim a forged recording makes for
free and earns only once the central checks pass. The shares this gives,
held by the mutant corpus (tests/corpus/ch01_overfitting_mutants.py):

* polynomial_features: one central check (column k is x**k). A missing x**0
  column, one degree too few or too many, or decreasing powers keep nothing.
* ridge_fit: two central checks, lam = 0 (least squares, 2 of 12) and lam > 0
  with every coefficient penalised (7 of 12). A penalty that spares the
  intercept, or uses lam/2, 2 lam, lam N, or no lam at all, keeps the least-squares
  part only: 2/12 = 0.17. A missing ValueError loses 1/12.
* l2_penalty, l1_penalty: two central checks on lists of parameters, the value
  (5 of 13) and its gradient with respect to every parameter (4 of 13). A
  penalty computed on detached tensors (``.item()``, ``.detach()``, numpy)
  keeps the value, 5/13 = 0.38; a wrong value (no 0.5, squared L1, only the
  first tensor) keeps nothing. Params given as a generator (as
  ``model.parameters()`` is) are a check of their own (2 of 13): an
  implementation that iterates params twice keeps 11/13.
* early_stopping_epoch: three central checks: the best epoch of a run that
  never exhausts its patience (2 of 12), the best epoch seen before patience
  runs out (5 of 12) and ties that are not improvements (2 of 12). The global
  argmin, stopping one epoch early or late, or returning the epoch where
  training stopped keep at most the first (and, where it passes, the third):
  at most 4/12; a tie counted as an improvement keeps 7/12.

Messages name the mistake, recognised by comparing the student's output with
what that mistake gives on the same hidden inputs (re-derived in the grader,
never shown): "the x**0 column is missing", "your first coefficient is not
penalised", "twice the expected value: did you forget the 0.5?", "no gradient
flows", "you returned the epoch where training stopped". Numbers in messages
come from the public parameters of a call (lam, patience, weight_decay) or
from a small public example, never from the hidden inputs.
"""
import numpy as np

from dropout_lab.probes.ch01_overfitting import PATIENCES, PENALTY_STRENGTHS, POLY_DEGREES, RIDGE_LAMS

from .base import (NONE_MESSAGE, Checker, CheckFailed, as_float_array, close, describe_difference, fmt,
                   probe_arguments, require_shape)


def _near(a, b, rtol=1e-6, atol=1e-9) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


# -- polynomial_features -----------------------------------------------------------------

def _powers(x, first, last):
    return np.stack([x**k for k in range(first, last + 1)], axis=1) if last >= first else np.zeros((len(x), 0))


def _features_problem(F, x, d) -> str:
    """How the (N, ?) matrix F differs from the columns x**0 .. x**d."""
    n = len(x)
    want = f"degree {d} has {d + 1} columns, x**0 (all ones) up to and including x**{d}"
    if F.ndim == 2 and F.shape == (d + 1, n) and _near(F.T, _powers(x, 0, d)):
        return (f"your matrix is transposed (shape {F.shape}): one ROW per sample, one column per power, "
                "so (N, degree+1)")
    if F.ndim != 2 or F.shape[0] != n:
        return f"with {n} points and degree {d} the result must have shape ({n}, {d + 1}); yours has shape {F.shape}"
    named = [
        (_powers(x, 1, d), f"the x**0 column (all ones) is missing: {want}"),
        (_powers(x, 0, d - 1), f"one degree too few: {want}"),
        (_powers(x, 0, d + 1), f"one degree too many: {want}"),
        (_powers(x, 0, d)[:, ::-1], "your columns are in decreasing order of power (np.vander's default order): "
                                    "column k must be x**k, from x**0 on the left to x**degree on the right"),
        (_powers(x, 1, d + 1), f"your columns are x**1 .. x**{d + 1}, shifted by one: {want}"),
    ]
    for candidate, message in named:
        if F.shape == candidate.shape and _near(F, candidate):
            return message
    if F.shape != (n, d + 1):
        return f"with degree {d} the result must have {d + 1} columns (x**0 .. x**{d}); yours has {F.shape[1]}"
    ref = _powers(x, 0, d)
    bad = [k for k in range(d + 1) if not _near(F[:, k], ref[:, k], rtol=1e-5, atol=1e-8)]
    return f"with degree {d}, column{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))} " \
           f"{'are' if len(bad) > 1 else 'is'} not x**k (column k must hold x**k)"


def _features(c, key):
    F = as_float_array(c.output(key), "feature matrix")
    return F


POLY_CENTRAL = "column k is x**k, for k = 0 .. degree"


def check_polynomial_features(c: Checker):
    x, x_short = c.ref("inputs")

    # Central, 6 of 8: a missing x**0 column, a degree too few or decreasing powers keep nothing.
    with c.check(POLY_CENTRAL, weight=6, central=True):
        for key, xs, d in [(f"degree={d}", x, d) for d in POLY_DEGREES] + [("7 points degree=4", x_short, 4)]:
            F = _features(c, key)
            if not (F.shape == (len(xs), d + 1) and close(F, _powers(xs, 0, d))):
                raise CheckFailed(_features_problem(F, xs, d))

    with c.check("degree 0 gives one column of ones", weight=1):
        F = _features(c, "degree=0")
        c.require(F.shape == (len(x), 1) and np.all(F == 1.0),
                  f"with degree 0 the result is one column of ones, shape ({len(x)}, 1); yours has shape {F.shape}"
                  + ("" if F.shape != (len(x), 1) else " and is not all ones"))

    with c.check("x is not modified", weight=1, peripheral=True):
        c.outputs("no in-place")
        c.require(not c.mutated("no in-place"), "your function changed x in place; compute the powers in a new array")


# -- ridge_fit -----------------------------------------------------------------------------

def _ridge(X, y, penalties):
    """argmin ||y - Xw||^2 + sum_j penalties[j] w_j^2, by augmented least squares."""
    d = X.shape[1]
    A = np.vstack([X, np.diag(np.sqrt(penalties))])
    return np.linalg.lstsq(A, np.concatenate([y, np.zeros(d)]), rcond=None)[0]


def _weights(c, key, d):
    w = as_float_array(c.output(key), "w")
    c.require(w.size == d, f"w must hold one coefficient per column of X ({d}); yours has shape {w.shape}")
    return w.reshape(d)


def _ridge_problem(w, X, y, lam) -> str:
    """Name the mistake when w is the solution of a recognisable wrong problem."""
    n, d = X.shape
    every = np.full(d, lam)
    first_free, last_free = every.copy(), every.copy()
    first_free[0], last_free[-1] = 0.0, 0.0
    named = [
        (first_free, f"with lam={fmt(lam)} your first coefficient (the intercept) is not penalised: the spec "
                     "penalises every coefficient, the intercept included (lam ||w||^2 sums over all of w)"),
        (last_free, f"with lam={fmt(lam)} your last coefficient is not penalised: the spec penalises every "
                    "coefficient (lam ||w||^2 sums over all of w)"),
        (every / 2, f"your w is the ridge solution for lam/2 = {fmt(lam / 2)} instead of lam = {fmt(lam)}: "
                    "the gradient of lam ||w||^2 is 2 lam w, and that 2 cancels the 2 of the data term's gradient"),
        (every * 2, f"your w is the ridge solution for 2 lam = {fmt(2 * lam)} instead of lam = {fmt(lam)}: "
                    "check the factors of 2 when you set the gradient to zero"),
        (every * n, f"your w is the ridge solution for lam * N = {fmt(lam * n)} instead of lam = {fmt(lam)}: "
                    "the data term is the SUM of squared errors ||y - Xw||^2, not their mean"),
        (every / n, f"your w is the ridge solution for lam / N instead of lam = {fmt(lam)}: "
                    "the data term is the SUM of squared errors ||y - Xw||^2, not their mean"),
        (np.zeros(d), f"with lam={fmt(lam)} your w is the plain least-squares solution: lam is ignored"),
        (every ** 2, f"your w is the ridge solution for lam**2 = {fmt(lam ** 2)} instead of lam = {fmt(lam)}: "
                     "lam multiplies ||w||^2 as it is"),
        (np.sqrt(every), f"your w is the ridge solution for sqrt(lam) = {fmt(np.sqrt(lam))} instead of "
                         f"lam = {fmt(lam)}: lam multiplies ||w||^2 as it is"),
    ]
    for penalties, message in named:
        if lam > 0 and _near(w, _ridge(X, y, penalties), rtol=1e-5, atol=1e-7):
            return message
    norm, ref_norm = float(np.linalg.norm(w)), float(np.linalg.norm(_ridge(X, y, every)))
    return (f"with lam={fmt(lam)} w is not argmin ||y - Xw||^2 + lam ||w||^2 "
            f"(||w|| = {norm:.4g} where the minimiser has {ref_norm:.4g}); set the gradient to zero and solve "
            "the linear system it gives")


RIDGE_LSQ = "lam = 0 gives the least-squares solution"
RIDGE_CENTRAL = "lam > 0 penalises every coefficient: w = argmin ||y - Xw||^2 + lam ||w||^2"


def check_ridge_fit(c: Checker):
    X, y, Xw, yw = c.ref("inputs")
    d = X.shape[1]

    # Central, 2 of 12: a wrong penalty keeps this part only, 2/12 = 0.17.
    with c.check(RIDGE_LSQ, weight=2, central=True):
        w = _weights(c, "lam=0.0", d)
        ref = _ridge(X, y, np.zeros(d))
        if not close(w, ref):
            raise CheckFailed("with lam=0 your w does not minimise ||y - Xw||^2 "
                              f"({describe_difference(w, ref)}): without a penalty, ridge regression is "
                              "ordinary least squares")

    # Central, 7 of 12: the penalty, on every coefficient.
    with c.check(RIDGE_CENTRAL, weight=7, central=True):
        for lam in RIDGE_LAMS:
            w = _weights(c, f"lam={lam}", d)
            if not close(w, _ridge(X, y, np.full(d, lam))):
                raise CheckFailed(_ridge_problem(w, X, y, lam))

    with c.check("works with more features than samples (lam > 0)", weight=1):
        w = _weights(c, "wide lam=1.0", Xw.shape[1])
        ref = _ridge(Xw, yw, np.ones(Xw.shape[1]))
        c.require(close(w, ref), f"with {Xw.shape[0]} samples, {Xw.shape[1]} features and lam=1.0 your w is not the "
                                 f"ridge solution ({describe_difference(w, ref)}); with lam > 0 the problem has "
                                 "exactly one solution whatever the shape of X")

    with c.check("lam < 0 raises ValueError", weight=1, peripheral=True):
        for bad in (-1.0, -0.001):
            raised = c.raised(f"invalid lam={bad}")
            c.require(raised == "ValueError", f"lam={bad} should raise ValueError, "
                                              + (f"got {raised}" if raised else "nothing was raised"))

    with c.check("returns w of shape (D,); X and y are not modified", weight=1, peripheral=True):
        w = as_float_array(c.output("lam=3.0"), "w")
        require_shape(w, (d,), "w")
        c.outputs("no in-place")
        c.require(not c.mutated("no in-place"), "your function changed X or y in place; build new arrays instead")


# -- l2_penalty and l1_penalty -------------------------------------------------------------

NO_GRADIENT = ("no gradient flows from your penalty to the parameters: did you call .detach(), .item() or numpy, "
               "or build a new tensor with torch.tensor(...)? Compute the penalty with torch operations on the "
               "parameter tensors themselves, so that loss + penalty can be backpropagated")


def _value_and_grad(c, key):
    value, grad = c.outputs(key, n=2)
    if value is None:
        raise CheckFailed(NONE_MESSAGE)
    value = as_float_array(value, "penalty")
    c.require(value.size == 1, f"the penalty must be one number (a scalar tensor); yours has shape {value.shape}: "
                               "add up the contributions of every tensor")
    return float(value.reshape(-1)[0]), (None if grad is None else as_float_array(grad, "gradient"))


def _l2_named(value, arrays, s):
    sq = [float(np.sum(a * a)) for a in arrays]
    return [
        (s * sum(sq), "your penalty is twice the expected value: did you forget the 0.5? The L2 penalty here is "
                      "0.5 * weight_decay * (sum of squares), whose gradient is weight_decay * w"),
        (0.25 * s * sum(sq), "your penalty is half the expected value: there is one factor 0.5, not two"),
        (0.5 * sum(sq), f"your penalty does not scale with weight_decay (with weight_decay={s} it equals 0.5 * the "
                        "sum of squares): multiply by weight_decay"),
        (0.5 * s * sq[0], "only the first parameter tensor counts in your penalty: add up the squares of EVERY "
                          "tensor in params"),
        (0.5 * s * sq[-1], "only the last parameter tensor counts in your penalty: did you overwrite the total in "
                           "your loop instead of adding to it?"),
        (0.5 * s * sum(float(np.mean(a * a)) for a in arrays),
         "your penalty uses the MEAN of the squares of each tensor: use their sum"),
        (0.5 * s * sum(float(np.sqrt(q)) for q in sq),
         "your penalty adds up norms ||w||, not squared norms ||w||^2"),
        (0.5 * s * sum(float(np.sum(np.abs(a))) for a in arrays),
         "your penalty adds up absolute values: that is the L1 penalty; L2 adds up squares"),
    ]


def _l1_named(value, arrays, s):
    ab = [float(np.sum(np.abs(a))) for a in arrays]
    sq = sum(float(np.sum(a * a)) for a in arrays)
    return [
        (s * sq, "your penalty adds up squares, not absolute values: that is the L2 penalty (it makes weights "
                 "small, not sparse)"),
        (0.5 * s * sq, "your penalty adds up squares, not absolute values: that is the L2 penalty (it makes "
                       "weights small, not sparse)"),
        (s * sum(ab) ** 2, "your penalty squares the sum of absolute values: the L1 penalty is strength * sum |w|, "
                           "not squared"),
        (s * sum(float(np.sum(a)) for a in arrays), "your penalty adds up the weights without their absolute "
                                                    "values: negative weights cancel positive ones"),
        (0.5 * s * sum(ab), "your penalty is half the expected value: the L1 penalty is strength * sum |w|, with "
                            "no 0.5"),
        (sum(ab), f"your penalty does not scale with strength (with strength={s} it equals the sum of absolute "
                  "values): multiply by strength"),
        (s * ab[0], "only the first parameter tensor counts in your penalty: add up the absolute values of EVERY "
                    "tensor in params"),
        (s * ab[-1], "only the last parameter tensor counts in your penalty: did you overwrite the total in your "
                     "loop instead of adding to it?"),
        (s * sum(float(np.mean(np.abs(a))) for a in arrays),
         "your penalty uses the MEAN absolute value of each tensor: use the sum"),
    ]


def _penalty_value_problem(value, arrays, s, want, named, what) -> str:
    for candidate, message in named(value, arrays, s):
        if np.isclose(value, candidate, rtol=1e-5, atol=1e-12):
            return message
    if np.isclose(value, 0.0, atol=1e-12):
        return f"your penalty is 0 with {what}={s}; it must add up the contribution of every parameter tensor"
    return (f"with {what}={s} your penalty is {value / want:.4g} times the expected value; "
            f"{'0.5 * weight_decay * sum of squares' if what == 'weight_decay' else 'strength * sum of |w|'} "
            "over every entry of every tensor")


def _grad_problem(grad, arrays, s, l1: bool) -> str:
    if grad is None:
        return NO_GRADIENT
    flat = np.concatenate([a.reshape(-1) for a in arrays])
    want = s * (np.sign(flat) if l1 else flat)
    first = arrays[0].size
    rest = np.zeros(flat.size - first)
    if _near(grad[first:], rest) and not _near(want[first:], rest):
        return "the gradient reaches only the first parameter tensor: every tensor in params must be penalised"
    ratio = float(grad @ want / max(float(want @ want), 1e-300))
    if _near(grad, ratio * want, rtol=1e-5, atol=1e-12):
        return (f"the gradient of your penalty is {ratio:.4g} times the expected one "
                f"({'strength * sign(w)' if l1 else 'weight_decay * w'})")
    return f"the gradient of your penalty is not {'strength * sign(w)' if l1 else 'weight_decay * w'} " \
           f"({describe_difference(grad, want)})"


def _check_penalty(c: Checker, l1: bool):
    inputs = c.ref("inputs")
    arrays, arrays32 = inputs[:4], inputs[4:]
    what = "strength" if l1 else "weight_decay"
    named = _l1_named if l1 else _l2_named

    def expected(arrs, s):
        if l1:
            return s * sum(float(np.sum(np.abs(a.astype(np.float64)))) for a in arrs)
        return 0.5 * s * sum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrs)

    value_name = ("strength * sum of |w| over every parameter tensor" if l1
                  else "0.5 * weight_decay * sum of squares over every parameter tensor")
    # Central, 5 of 13: the value. A wrong value (no 0.5, squares for L1, one tensor only) keeps nothing.
    with c.check(value_name, weight=5, central=True):
        for s in PENALTY_STRENGTHS:
            value, _ = _value_and_grad(c, f"list s={s}")
            want = expected(arrays, s)
            if not np.isclose(value, want, rtol=1e-6, atol=1e-12):
                raise CheckFailed(_penalty_value_problem(value, arrays, s, want, named, what))

    grad_name = ("differentiable: its gradient is strength * sign(w) for every parameter" if l1
                 else "differentiable: its gradient is weight_decay * w for every parameter")
    # Central, 4 of 13: the gradient. A detached penalty keeps the value only, 5/13 = 0.38.
    with c.check(grad_name, weight=4, central=True):
        for s in PENALTY_STRENGTHS:
            _, grad = _value_and_grad(c, f"list s={s}")
            flat = np.concatenate([a.reshape(-1) for a in arrays])
            if grad is None or not _near(grad, s * (np.sign(flat) if l1 else flat), rtol=1e-6, atol=1e-12):
                raise CheckFailed(_grad_problem(grad, arrays, s, l1))

    # Not central, 2 of 13: model.parameters() is a generator, consumed by one pass.
    with c.check("works when params is a generator, such as model.parameters()", weight=2):
        flat = np.concatenate([a.reshape(-1) for a in arrays])
        for key in ("generator s=0.1", "model.parameters() s=0.1"):
            entry = c.entry(key)
            if entry.status == "error":
                raise CheckFailed(
                    f"with params given as a generator (as model.parameters() returns) your function raised "
                    f"{entry.error_type}: {entry.error_message[:120]}. A generator has no len() and no "
                    "indexing and can be iterated only once: go through params in one loop, or make it a "
                    "list first (params = list(params))")
            value, grad = _value_and_grad(c, key)
            want = expected(arrays, 0.1)
            c.require(np.isclose(value, want, rtol=1e-6, atol=1e-12),
                      f"with params given as a generator (as model.parameters() returns) your penalty is "
                      f"{value / want:.4g} times the expected value (right for a list): a generator can be "
                      "iterated only once, so a second pass over params sees nothing. Go through params in "
                      "one loop, or make it a list first (params = list(params))")
            c.require(grad is not None and _near(grad, 0.1 * (np.sign(flat) if l1 else flat), rtol=1e-6,
                                                 atol=1e-12),
                      "with params given as a generator the gradient of your penalty is wrong: "
                      + _grad_problem(grad, arrays, 0.1, l1))

    with c.check("returns a scalar tensor (0-dimensional)", weight=1, peripheral=True):
        out = c.raw_outputs("list s=0.1")[0]
        c.require(out.kind == "array" and out.is_torch and tuple(out.value.shape) == (),
                  f"the penalty must be a 0-dimensional torch tensor, which loss + penalty needs; yours is "
                  f"{out.type.replace('torch.Tensor:', 'a torch tensor of dtype ')}"
                  + (f" of shape {tuple(out.value.shape)}" if out.kind == "array" else ""))

    with c.check("works with float32 parameters", weight=1, peripheral=True):
        value, grad = _value_and_grad(c, "float32 s=0.1")
        want = expected(arrays32, 0.1)
        c.require(np.isclose(value, want, rtol=1e-4, atol=1e-8),
                  f"with float32 parameters your penalty is {value:.6g}, expected {want:.6g}")
        flat32 = np.concatenate([a.reshape(-1).astype(np.float64) for a in arrays32])
        c.require(grad is not None and _near(grad, 0.1 * (np.sign(flat32) if l1 else flat32), rtol=1e-4, atol=1e-7),
                  "with float32 parameters the gradient of your penalty is wrong")


def check_l2_penalty(c: Checker):
    _check_penalty(c, l1=False)


def check_l1_penalty(c: Checker):
    _check_penalty(c, l1=True)


# -- early_stopping_epoch --------------------------------------------------------------------

def _best_epoch(losses, patience, tie_improves=False):
    """The spec's rule; ``tie_improves`` counts an equal loss as a new best (a mistake)."""
    best, best_epoch, waited = float("inf"), 0, 0
    for epoch, loss in enumerate(losses):
        if loss < best or (tie_improves and loss == best):
            best, best_epoch, waited = loss, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                break
    return best_epoch


def _stop_epoch(losses, patience):
    """The epoch at which training stops, None when it never stops."""
    best, waited = float("inf"), 0
    for epoch, loss in enumerate(losses):
        if loss < best:
            best, waited = loss, 0
        else:
            waited += 1
            if waited >= patience:
                return epoch
    return None


#: A small public example each message can quote (never a hidden input).
_EXAMPLE = "[0.9, 0.7, 0.8, 0.75, 0.72, 0.6]"
_EXAMPLE_RULE = (f"With val_losses = {_EXAMPLE} and patience = 3 the epochs 2, 3 and 4 bring no new best, so "
                 "training stops after epoch 4 and the answer is epoch 1")

#: Recognisable mistakes, in the order a message prefers them when one output fits several.
ES_MISTAKES = {
    "argmin": ("you returned the epoch of the lowest loss of the whole run, ignoring patience: early stopping "
               "never sees the epochs after it stops. " + _EXAMPLE_RULE + ", not 5"),
    "stop": ("you returned the epoch where training stopped; return the best epoch seen before it. "
             + _EXAMPLE_RULE + ", not 4"),
    "late": ("you stop one epoch too late (after patience + 1 epochs without a new best): stop as soon as "
             "patience epochs in a row bring no new best. " + _EXAMPLE_RULE + " (the 0.6 of epoch 5 is never seen)"),
    "early": ("you stop one epoch too early (after patience - 1 epochs without a new best): with val_losses = "
              "[0.9, 0.7, 0.8, 0.75, 0.6] and patience = 3 only epochs 2 and 3 bring no new best, epoch 4 does, "
              "and the answer is 4"),
    "tie": ("a loss EQUAL to the best so far is not a new best (only a strictly lower one is): with val_losses = "
            "[0.9, 0.7, 0.7, 0.8, 0.6] and patience = 2, training stops after epoch 3 and the answer is 1, not 4"),
    "one-based": "your epochs are counted from 1: return the 0-based index (the first loss in val_losses is epoch 0)",
    "last": ("you returned the last epoch of the run; return the best epoch seen before patience ran out. "
             + _EXAMPLE_RULE),
}


def _es_candidates(losses, patience) -> dict:
    """What each recognisable mistake returns on these losses."""
    return {"argmin": int(np.argmin(losses)), "stop": _stop_epoch(losses, patience),
            "late": _best_epoch(losses, patience + 1),
            "early": _best_epoch(losses, patience - 1) if patience > 1 else None,
            "tie": _best_epoch(losses, patience, tie_improves=True),
            "one-based": _best_epoch(losses, patience) + 1, "last": len(losses) - 1}


def _epoch(c, key):
    value = as_float_array(c.output(key), "epoch")
    c.require(value.size == 1, f"early_stopping_epoch must return one epoch number; yours has shape {value.shape}")
    return float(value.reshape(-1)[0])


def _check_epochs(c, keys):
    """Every call must return the reference's epoch. The message names the
    mistake that explains every failing call (the hidden losses are
    re-derived in the grader and never shown)."""
    failing = []
    for key in keys:
        got = _epoch(c, key)
        if got != float(np.asarray(c.ref(key)[0]).reshape(-1)[0]):
            failing.append((key, got))
    if not failing:
        return
    fits = None
    patience_shown = None
    for key, got in failing:
        args, _ = probe_arguments(c, key)
        losses, patience = [float(v) for v in args[0]], int(args[1])
        if patience_shown is None or patience == 3:
            patience_shown = patience
        here = {name for name, value in _es_candidates(losses, patience).items() if value is not None and got == value}
        fits = here if fits is None else fits & here
    for name, message in ES_MISTAKES.items():
        if name in fits:
            return_message = message
            break
    else:
        return_message = "your epoch is not the best epoch seen before patience ran out. " + _EXAMPLE_RULE
    raise CheckFailed(f"with patience={patience_shown}: {return_message}")


ES_NEVER = "a run that never exhausts its patience: the epoch of the lowest loss"
ES_STOPS = "stops once patience epochs bring no new best and returns the best epoch seen"
ES_TIES = "a loss equal to the best so far is not a new best"


def check_early_stopping_epoch(c: Checker):
    # Central, 2 of 12: the global argmin passes this part (and only this one), 2/12 = 0.17.
    with c.check(ES_NEVER, weight=2, central=True):
        _check_epochs(c, [f"never stops patience={p + 3}" for p in PATIENCES])

    # Central, 5 of 12: patience. Off by one, the global argmin and the stop epoch fail it.
    with c.check(ES_STOPS, weight=5, central=True):
        _check_epochs(c, [f"stops patience={p}" for p in PATIENCES] + ["stops best first patience=3"])

    # Central, 2 of 12: strictly lower. A tie counted as an improvement keeps 7/12 = 0.58.
    with c.check(ES_TIES, weight=2, central=True):
        _check_epochs(c, ["tie stops patience=3", "tie stops patience=2", "tie never stops patience=6"])

    with c.check("patience < 1 raises ValueError", weight=1, peripheral=True):
        for bad in (0, -2):
            raised = c.raised(f"invalid patience={bad}")
            c.require(raised == "ValueError", f"patience={bad} should raise ValueError, "
                                              + (f"got {raised}" if raised else "nothing was raised"))

    with c.check("returns an integer epoch", weight=1, peripheral=True):
        value = c.output("stops patience=3")
        arr = np.asarray(value)
        c.require(arr.dtype.kind in "iu",
                  f"the epoch must be an int (an index into val_losses); yours has dtype {arr.dtype}")

    with c.check("val_losses may be a list, a tuple or a numpy array", weight=1, peripheral=True):
        _check_epochs(c, ["ndarray patience=3", "tuple patience=3"])


CHECKS = {
    "polynomial_features": check_polynomial_features,
    "ridge_fit": check_ridge_fit,
    "l2_penalty": check_l2_penalty,
    "l1_penalty": check_l1_penalty,
    "early_stopping_epoch": check_early_stopping_epoch,
}
