"""Checks for chapter 09, dropout in practice.

max_norm_ and dropout_ridge_solution are deterministic and are compared (to
float tolerance) with values computed here from the probe's inputs.
mc_dropout_predict draws its masks from torch's global generator through the
model's own nn.Dropout, so its result cannot be compared with the reference's;
instead the probe's networks log every forward pass (inputs, the dropout
layer's input and output, the logits, autograd's state and every module's
mode; dropout_lab/probes/ch09_practice.py). The checks recompute each logged
pass from the networks' weights, so a log cannot claim passes that did not
happen: the dropout layer's input must be what the network computes with
BatchNorm in eval mode (or, for the BatchNorm-in-training-mode mistake, with the
batch's own statistics), its output that input times a 0/1 mask divided by
1 - p (dropout on) or the input itself (dropout off), and the logits what the
last layer makes of it. mean_probs must then equal, to float tolerance, the
mean of the softmax outputs of the n_samples dropout-on passes of each input,
and the entropy the entropy of that mean.

Gating and weights (autograder/POLICY.md). The shares this gives, held by the
mutant corpus (tests/corpus/ch09_practice_mutants.py):

* max_norm_ (9 of 13 central): the projection (6): long rows rescaled to norm
  max_norm along their own direction, short rows untouched, read from the weight
  after the call (or from the returned tensor when the weight was not changed);
  in place (3, after the projection): the caller's weight holds the result. Then
  an nn.Parameter that requires grad (2), a zero row stays 0 (1), returns the
  weight itself (1, peripheral). Columns instead of rows, every row rescaled,
  entries clipped, the whole matrix's norm, a squared norm, a norm broadcast
  along the wrong axis: nothing. A correct projection returned as a new tensor
  keeps 6/13; one that raises on parameters (no torch.no_grad) 11/13.
* dropout_ridge_solution (6 of 9 central): the minimiser on three problems (6);
  p = 0 is least squares (1), more features than examples (1), a (d,) float
  array, float32 inputs, X and y unmodified (1, peripheral). Least squares, the
  penalty without p/(1-p), with (1-p)/p, with p, with the full X^T X, with the
  identity (ordinary ridge), standard dropout's weights w/(1-p): nothing.
* mc_dropout_predict (11 of 19 central): the mean of the softmax outputs of
  n_samples dropout-on passes, on a network without BatchNorm (5); BatchNorm
  in eval mode in those passes, whatever mode the model came in (3, after the
  first); the entropy of the mean in nats (3, after the first); no autograd
  graph (2), modes restored when the model came in eval or train mode (2), a
  mixed-mode model restored module by module (1), dropout inside a submodule
  switched on (1), a finite entropy for a confident network (1), shapes and
  the model's weights and buffers unchanged (1, peripheral). Logits averaged,
  one pass reused, dropout left off: nothing; BatchNorm in training mode keeps
  8/19; the mean of the per-pass entropies keeps 8/19; gradients recorded
  17/19; modes not restored 16/19.

Statistical bounds (false-failure probability of a correct function, per
sub-check, all far below the 1e-9 the design asks for): none of the checks is
statistical except "the passes differ" (mc_dropout_predict, the network without
BatchNorm, n = 8 passes, p = 0.3). It fails a correct function only when every
input's 8 passes give the same output, which needs the 8 masks to agree on
every hidden unit that is active (ReLU input > 0) for that input. Units are
dropped independently, so this has probability ((1-p)^n + p^n)^k, k the number
of active (input, unit) pairs, known from the hidden weights: 0.058^k. The
check is made only when that bound is below ALPHA = 1e-10 (k >= 9; the probe's
positive biases make k about 60), so it fails a correct function with
probability below 1e-10.

Messages name the mistake, recognised by comparing the student's output with
what that mistake gives on the same hidden inputs (never shown): "you rescaled
the COLUMNS", "every row is rescaled", "each entry clipped", "the norm of the
whole matrix", "returns the projected weights but leaves weight itself
unchanged", "the least-squares solution", "without its factor p/(1-p)",
"the full X^T X", "ordinary ridge", "BatchNorm was in training mode", "you
averaged logits", "your model ran ONCE", "dropout was off", "the MEAN of the
per-pass entropies", "in bits", "ran with gradients enabled", "leaves some of
its modules in training mode", "model.children()", "0 * log(0)".
"""
import numpy as np

from dropout_lab.probes.ch09_practice import MC_CALLS, RIDGE_CASES, RIDGE_WIDE

from .base import NONE_MESSAGE, Checker, CheckFailed, as_float_array, close, fmt
from .stats import ALPHA

# -- max_norm_ -----------------------------------------------------------------------------

MN_KEYS = ("square", "wide", "tall float64")
MN_CENTRAL = ("rows longer than max_norm are rescaled to norm max_norm along their own direction, "
              "shorter rows are left as they are")
MN_IN_PLACE = "the weight passed in is changed in place"
MN_PARAM = "works on an nn.Parameter that requires grad (layer.weight)"
MN_ZERO = "a row of zeros stays zero (no NaN)"
MN_RETURN = "returns the weight itself"


def _projection(W, c):
    n = np.linalg.norm(W, axis=1, keepdims=True)
    return W * np.minimum(1.0, c / np.maximum(n, 1e-300))


def _mn_candidates(W, c):
    """(value, why) of the recognisable mistakes on W with bound c."""
    rn = np.linalg.norm(W, axis=1, keepdims=True)
    cn = np.linalg.norm(W, axis=0, keepdims=True)
    fro = np.linalg.norm(W)
    safe = np.maximum(rn, 1e-300)
    out = [
        (W * np.minimum(1.0, c / np.maximum(cn, 1e-300)),
         "you rescaled the COLUMNS of weight: nn.Linear.weight has shape (out_features, in_features), so the "
         "incoming weights of a unit are a ROW; take the norm over dim=1"),
        (W * c / safe, "every row is rescaled to norm max_norm, also the rows that were shorter: the constraint "
                       "only caps a row that is too long; a row within max_norm is left as it is"),
        (W / safe, "every row is divided by its norm (unit rows): rescale only the rows longer than max_norm, and "
                   "to norm max_norm"),
        (np.clip(W, -c, c), "you clipped each ENTRY to [-max_norm, max_norm]: the constraint bounds the norm of a "
                            "unit's whole incoming vector, and clipping entries changes its direction"),
        (W * min(1.0, c / max(fro, 1e-300)),
         "you rescaled the whole matrix by its (Frobenius) norm: the constraint applies to each unit (each row) "
         "on its own"),
        (W * np.maximum(1.0, rn / c), "the long rows are multiplied by norm / max_norm, the inverse factor: "
                                      "they get longer instead of shorter"),
        (W * np.minimum(1.0, c / np.maximum(rn**2, 1e-300)),
         "you divided by the SQUARED norm: the L2 norm is the square root of the sum of squares"),
        (W * np.minimum(1.0, (c / safe) ** 2), "your factor is (max_norm / norm)**2; it is max_norm / norm"),
        (W * np.minimum(1.0, c / np.maximum(np.abs(W).sum(1, keepdims=True), 1e-300)),
         "you used the L1 norm (sum of absolute values); max-norm uses the L2 norm"),
        (W * np.minimum(1.0, c / np.maximum(np.abs(W).max(1, keepdims=True), 1e-300)),
         "you used the largest absolute entry as the norm; max-norm uses the L2 norm"),
        (np.where(rn > c, c, W), "the entries of the long rows are SET to max_norm: rescale the row instead"),
        (W, "nothing was rescaled: the rows longer than max_norm still have their old norm"),
    ]
    if W.shape[0] == W.shape[1]:
        out.append((W * np.minimum(1.0, c / safe).reshape(1, -1),
                    "row i's factor multiplied COLUMN i: the norms of shape (out,) broadcast along the last "
                    "dimension; keep them as a column (keepdim=True) so that each row gets its own factor"))
    return out


def _mn_generic(got, W, c) -> str:
    rn = np.linalg.norm(W, axis=1)
    long_rows = rn > c
    if not np.all(np.isfinite(got)):
        return "your result holds NaN or inf"
    changed_short = int(np.sum(~np.isclose(got[~long_rows], W[~long_rows], rtol=1e-5, atol=1e-6).all(axis=1)))
    if changed_short:
        return (f"{changed_short} of the {int((~long_rows).sum())} rows already within max_norm were changed: a row "
                "within max_norm must be left exactly as it is")
    gn = np.linalg.norm(got[long_rows], axis=1)
    ratio = gn / c
    if not np.allclose(ratio, 1.0, rtol=1e-4):
        return (f"the rows longer than max_norm end with norms between {fmt(ratio.min())} and {fmt(ratio.max())} "
                "times max_norm; each must end with norm exactly max_norm")
    return ("the long rows end with norm max_norm but point in another direction: multiply the whole row by one "
            "number, max_norm / norm, so that its direction is kept")


def _mn_problem(got, W, c) -> str:
    for value, why in _mn_candidates(W, c):
        if value.shape == got.shape and close(got, value, rtol=1e-5, atol=1e-6 * c):
            return why
    return _mn_generic(got, W, c)


def _mn_call(c: Checker, key: str):
    """(returned, weight after, flags) of a max_norm_ call."""
    ret, after, flags = c.outputs(key, n=3)
    return ret, as_float_array(after, "weight"), np.asarray(flags, dtype=bool)


def _mn_inputs(c: Checker, key: str):
    entry = c.ref("inputs")[0][key]
    W, bound = entry["W"], float(entry["c"])
    if key in ("square", "wide", "all short", "zero row", "parameter"):
        W = W.astype(np.float32).astype(np.float64)
    return W, bound


def _mn_produced(ret, after, W, key) -> np.ndarray:
    """What the student computed: the weight if it changed, else the returned tensor."""
    if not np.array_equal(after, W) or ret is None:
        return after
    got = as_float_array(ret, f"value returned for the {key} weight")
    if got.shape != W.shape:
        raise CheckFailed(f"max_norm_ must return the weight, of shape {W.shape}; yours returned shape {got.shape}")
    return got


def check_max_norm(c: Checker):
    # Central, 6 of 13: columns, every row, clipped entries, the whole matrix: nothing.
    with c.check(MN_CENTRAL, weight=6, central=True):
        for key in MN_KEYS + ("all short",):
            ret, after, _ = _mn_call(c, key)
            W, bound = _mn_inputs(c, key.replace(" float64", ""))
            got = _mn_produced(ret, after, W, key)
            if got.shape != W.shape:
                raise CheckFailed(f"the weight of shape {W.shape} has shape {got.shape} after your function")
            if not close(got, _projection(W, bound), rtol=1e-5, atol=1e-6 * bound):
                where = f"with a weight of shape {W.shape}" + (" whose rows are all within max_norm"
                                                               if key == "all short" else "")
                raise CheckFailed(f"{where}: {_mn_problem(got, W, bound)}")

    # Central, 3 of 13, after the projection: a correct projection returned as a new tensor keeps 6/13.
    with c.check(MN_IN_PLACE, weight=3, central=True, gated_by=(MN_CENTRAL,)):
        for key in MN_KEYS:
            ret, after, _ = _mn_call(c, key)
            W, bound = _mn_inputs(c, key.replace(" float64", ""))
            if np.array_equal(after, W):
                raise CheckFailed(
                    "your function returns the projected weights but leaves the weight it was given unchanged: "
                    "max_norm_ works in place (the trailing underscore, as in torch's mul_ and clamp_): after "
                    "max_norm_(layer.weight, c) the layer itself must hold the projected weights")
            c.require(close(after, _projection(W, bound), rtol=1e-5, atol=1e-6 * bound),
                      "the weight you were given is changed, but it does not hold the projection your function "
                      "returns")

    # Not central, 2 of 13: raising on parameters (no torch.no_grad) keeps 11/13.
    with c.check(MN_PARAM, weight=2):
        entry = c.entry("parameter")
        if entry.status == "error":
            msg = entry.error_message.strip().rstrip(".")
            if "numpy()" in msg:
                raise CheckFailed(
                    f"on nn.Linear(6, 8).weight your function raised {entry.error_type}: {msg[:120]}. A layer's "
                    "weight requires grad, so it has no numpy view: work on it with torch operations inside "
                    "torch.no_grad()")
            if "leaf" in msg or "requires grad" in msg or "requires_grad" in msg:
                raise CheckFailed(
                    f"on nn.Linear(6, 8).weight your function raised {entry.error_type}: {msg[:120]}. A layer's "
                    "weight is a leaf tensor that requires grad, and autograd refuses to record an in-place change "
                    "of it; change it inside torch.no_grad(), as an optimizer's step does")
            raise CheckFailed(f"on nn.Linear(6, 8).weight your function raised {entry.error_type}: {msg[:160]}")
        ret, after, flags = _mn_call(c, "parameter")
        W, bound = _mn_inputs(c, "parameter")
        c.require(close(after, _projection(W, bound), rtol=1e-5, atol=1e-6 * bound),
                  "on nn.Linear(6, 8).weight (an nn.Parameter) the layer's weight does not hold the projection "
                  "afterwards")
        c.require(flags[1], "after your function the layer's weight no longer requires grad: the layer would stop "
                            "learning; change its values, not its requires_grad")
        c.require(flags[2], "your function changed the weight's .grad: the projection changes the weights only")

    # Not central, 1 of 13: a zero row giving NaN (0/0) keeps 12/13.
    with c.check(MN_ZERO, weight=1):
        ret, after, _ = _mn_call(c, "zero row")
        W, bound = _mn_inputs(c, "zero row")
        if not np.all(np.isfinite(after)):
            raise CheckFailed("a row of zeros (a unit whose incoming weights are all 0) became NaN: 0 / 0 when you "
                              "divide by its norm. Its norm is 0, within max_norm: leave it as it is")
        c.require(close(after, _projection(W, bound), rtol=1e-5, atol=1e-6 * bound),
                  "with a row of zeros among the rows the weight does not hold the projection afterwards")

    with c.check(MN_RETURN, weight=1, peripheral=True):
        for key in MN_KEYS:
            ret, _, flags = _mn_call(c, key)
            if ret is None:
                raise CheckFailed("max_norm_ returns None; return the weight itself (as torch's in-place methods "
                                  "return their tensor), so that it can be chained")
            c.require(flags[0], "max_norm_ must return the weight it was given (the same tensor, changed in place), "
                                "not a new tensor")


# -- dropout_ridge_solution ------------------------------------------------------------------

RIDGE_CENTRAL = "the minimiser of the expected squared error under inverted input dropout"


def _ridge_with(X, y, M):
    return np.linalg.solve(X.T @ X + M, X.T @ y)


def _ridge(X, y, p):
    G = X.T @ X
    return _ridge_with(X, y, p / (1 - p) * np.diag(np.diag(G)))


def _ridge_candidates(X, y, p):
    """(value, why) of the recognisable mistakes for the problem (X, y, p)."""
    G = X.T @ X
    D = np.diag(np.diag(G))
    lam = p / (1 - p)
    n, d = X.shape
    Xc = X - X.mean(axis=0)
    w = _ridge(X, y, p)
    lam_s = f"p/(1-p) = {fmt(lam)}"
    out = [
        (np.linalg.lstsq(X, y, rcond=None)[0],
         "that is the least-squares solution: the penalty that dropout adds to the expected loss is missing"),
        (_ridge_with(X, y, D), f"your penalty is diag(X^T X) without its factor {lam_s} (p = {fmt(p)})"),
        (_ridge_with(X, y, lam * G),
         f"your penalty uses the full X^T X instead of its diagonal: that shrinks every least-squares coefficient "
         f"by the same factor 1-p = {fmt(1 - p)}, which is right only when the columns are orthogonal. The variance "
         "of a dropped input's contribution involves each feature on its own"),
        (_ridge_with(X, y, (1 - p) / p * D),
         f"the factor is inverted: (1-p)/p = {fmt((1 - p) / p)} instead of {lam_s}: p is the probability of "
         "DROPPING an input"),
        (_ridge_with(X, y, lam * np.eye(d)),
         f"that is ordinary ridge with lambda = {fmt(lam)} (the identity as the penalty matrix): the dropout penalty "
         "weighs each coefficient by the energy (X^T X)_jj of its feature"),
        (_ridge_with(X, y, p * D), f"your factor is p = {fmt(p)} instead of {lam_s}: an input x_ij kept "
                                   "with probability 1-p and divided by 1-p has variance x_ij^2 p/(1-p), not x_ij^2 p"),
        (_ridge_with(X, y, lam * D / n),
         "your penalty is diag(X^T X) / N: the penalty of the summed squared error uses (X^T X)_jj itself (or divide "
         "BOTH terms by N)"),
        (w / (1 - p), f"that is w / (1-p): the weights of STANDARD dropout's training network (inputs not divided by "
                      f"1-p = {fmt(1 - p)}); with inverted dropout the trained weights are the test-time weights"),
        (w * (1 - p), f"your solution is (1-p) = {fmt(1 - p)} times the dropout-ridge solution: inverted dropout needs "
                      "no factor after the solve"),
        (_ridge_with(X, y, lam * np.diag(np.diag(Xc.T @ Xc))),
         "you used the variances of the CENTRED columns: the penalty uses the raw second moments (X^T X)_jj of the "
         "columns as they are"),
        (_ridge_with(X, y, lam * D @ D), "your penalty uses diag(X^T X) squared"),
        (np.linalg.solve(G - lam * D, X.T @ y), "the penalty is SUBTRACTED: the variance adds to the expected loss"),
    ]
    return out


def _ridge_problem(got, X, y, p) -> str:
    for value, why in _ridge_candidates(X, y, p):
        if value.shape == got.shape and close(got, value, rtol=1e-6, atol=1e-9):
            return why
    if not np.all(np.isfinite(got)):
        return "your solution holds NaN or inf"
    rel = np.linalg.norm(got - _ridge(X, y, p)) / np.linalg.norm(_ridge(X, y, p))
    return (f"your solution is not the minimiser of the expected squared error under inverted input dropout (it is "
            f"{rel:.2g} away, relative to its length)")


def _ridge_output(c: Checker, key: str, d: int, strict: bool = False) -> np.ndarray:
    got = as_float_array(c.output(key), "solution w")
    if got.size == d and not strict:
        return got.reshape(d)
    if got.shape != (d,):
        raise CheckFailed(f"w must have shape (d,) = ({d},); yours has shape {got.shape}")
    return got


def check_dropout_ridge_solution(c: Checker):
    inputs = c.ref("inputs")
    problems = [(inputs[2 * i], inputs[2 * i + 1], p) for i, (_, _, p) in enumerate(RIDGE_CASES)]
    k = 2 * len(RIDGE_CASES)
    Xw, yw, X0, y0, X32, y32 = inputs[k:k + 6]

    # Central, 6 of 9: least squares, the wrong factor or matrix, standard dropout's weights: nothing.
    with c.check(RIDGE_CENTRAL, weight=6, central=True):
        for X, y, p in sorted(problems, key=lambda t: abs(t[2] - 0.2)):
            got = _ridge_output(c, f"p={p}", X.shape[1])
            if not close(got, _ridge(X, y, p), rtol=1e-6, atol=1e-9):
                raise CheckFailed(f"with p = {fmt(p)}: {_ridge_problem(got, X, y, p)}")

    with c.check("p = 0 (no dropout) gives the least-squares solution", weight=1):
        entry = c.entry("p=0")
        if entry.status == "error":
            raise CheckFailed(f"with p = 0 (no dropout) your function raised {entry.error_type}: "
                              f"{entry.error_message[:120]}; without dropout the penalty vanishes and the solution "
                              "is plain least squares")
        got = _ridge_output(c, "p=0", X0.shape[1])
        c.require(close(got, np.linalg.lstsq(X0, y0, rcond=None)[0], rtol=1e-6, atol=1e-9),
                  "with p = 0 (no dropout) the penalty vanishes and the solution is plain least squares; yours "
                  "is not" + (" (it holds NaN or inf: a division by p?)" if not np.all(np.isfinite(got)) else ""))

    with c.check("more features than examples: still the unique minimiser", weight=1):
        n, d, p = RIDGE_WIDE
        entry = c.entry("wide")
        if entry.status == "error":
            raise CheckFailed(f"with more features ({d}) than examples ({n}) your function raised {entry.error_type}: "
                              f"{entry.error_message[:120]}; X^T X is singular there, but with p > 0 the matrix of "
                              "the dropout-ridge system is not")
        got = _ridge_output(c, "wide", d)
        c.require(close(got, _ridge(Xw, yw, p), rtol=1e-6, atol=1e-9),
                  f"with more features ({d}) than examples ({n}) your result is not the minimiser: X^T X is singular "
                  "there (least squares has no unique solution to start from), but the dropout penalty makes the "
                  "system well-posed; solve it directly")

    with c.check("returns a float array of shape (d,); float32 inputs work; X and y are not modified",
                 weight=1, peripheral=True):
        X, y, p = problems[0]
        _ridge_output(c, f"p={p}", X.shape[1], strict=True)
        c.require(not c.entry(f"p={p}").is_tuple, "return w as a numpy array, not a tuple or list")
        c.require(np.asarray(c.output(f"p={p}")).dtype.kind == "f", "w must be a float array")
        got32 = _ridge_output(c, "float32", X32.shape[1], strict=True)
        want32 = _ridge(X32.astype(np.float32).astype(np.float64), y32.astype(np.float32).astype(np.float64), 0.3)
        c.require(close(got32, want32, rtol=1e-3, atol=1e-4), "with float32 X and y your solution is wrong "
                                                              "(convert them to float64 before solving)")
        c.output("no in-place")
        c.require(not c.mutated("no in-place"), "your function changed X or y in place")


# -- mc_dropout_predict ----------------------------------------------------------------------

MC_CENTRAL = ("mean_probs is the mean of the softmax outputs of n_samples passes with dropout on "
              "(a network without BatchNorm)")
MC_BN = "BatchNorm stays in eval mode during the passes, whatever mode the model came in"
MC_ENTROPY = "entropy is the predictive entropy of mean_probs, in nats"
MC_NO_GRAD = "the passes run under torch.no_grad()"
MC_MODES = "every module's mode is restored (model in eval or in training mode)"
MC_MIXED = "a model in mixed modes is restored module by module"
MC_NESTED = "dropout inside a submodule (an nn.Sequential) is switched on too"
MC_CONFIDENT = "a confident network (probabilities that underflow to 0) gets a finite entropy"
MC_SHAPES = "returns (N, C) and (N,) float results; the model's weights and buffers are unchanged"


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _entropy(P):
    P = np.asarray(P, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(P > 0, P * np.log(np.where(P > 0, P, 1.0)), 0.0).sum(axis=-1)


class _Passes:
    """What one verified call did: the student's results and the dropout-on passes
    of each input, recomputed from the network's weights."""

    def __init__(self, mean, ent, log, probs, logits, n_forwards, bn_train, off_rows):
        self.mean, self.ent, self.log = mean, ent, log
        self.probs, self.logits = probs, logits            # per input: (passes, C) arrays
        self.n_forwards, self.bn_train, self.off_rows = n_forwards, bn_train, off_rows

    def expected_mean(self):
        return np.stack([p.mean(axis=0) for p in self.probs])


_LOG_KEYS = ("x", "pre", "post", "logits", "rows", "grad", "modes", "before", "after", "state_changed",
             "requires_grad")


def _log_of(log, net) -> dict:
    if not isinstance(log, dict) or not all(k in log for k in _LOG_KEYS):
        raise CheckFailed("the log of your model's forward passes is incomplete")
    out = {k: np.asarray(log[k]) for k in _LOG_KEYS}
    R, F = len(out["x"]), len(out["rows"])
    d, h, C = net["W1"].shape[1], net["W1"].shape[0], net["W2"].shape[0]
    shapes_ok = (out["x"].shape == (R, d) and out["pre"].shape == (R, h) and out["post"].shape == (R, h)
                 and out["logits"].shape == (R, C) and out["rows"].sum() == R and len(out["grad"]) == F
                 and len(out["modes"]) == F)
    if not shapes_ok:
        raise CheckFailed("the log of your model's forward passes is inconsistent (did you change the model's "
                          "forward or its inputs' shape?)")
    return out


def _bn(z, net, train):
    if "gamma" not in net:
        return z
    if train:
        mu, var = z.mean(axis=0), z.var(axis=0)
    else:
        mu, var = net["running_mean"], net["running_var"]
    return (z - mu) / np.sqrt(var + float(net["eps"])) * net["gamma"] + net["beta"]


def _near(a, b, tol=1e-4):
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= tol * (1.0 + np.abs(b))))


def _verify(c: Checker, key: str, net: dict, n_samples: int) -> _Passes:
    """Recompute every logged pass of the call ``key`` (see the module docstring) and return
    the dropout-on passes of each input; CheckFailed names what is wrong."""
    outs = c.outputs(key)
    if len(outs) == 1 and outs[0] is None:
        raise CheckFailed(NONE_MESSAGE)
    if len(outs) != 3:
        raise CheckFailed("mc_dropout_predict must return two values, (mean_probs, entropy)")
    mean_raw, ent_raw, log = outs
    x = net["x"].astype(np.float64)
    N, C = len(x), net["W2"].shape[0]
    mean = as_float_array(mean_raw, "mean_probs")
    if mean.shape != (N, C):
        if mean.shape == (C, N) and N != C:
            raise CheckFailed(f"mean_probs has shape (C, N) = {mean.shape}: it must be (N, C), one row per input")
        raise CheckFailed(f"mean_probs must have shape (N, C) = {(N, C)}; yours has shape {mean.shape}")
    log = _log_of(log, net)
    p = float(net["p"])
    W1, b1, W2, b2 = net["W1"], net["b1"], net["W2"], net["b2"]
    starts = np.concatenate([[0], np.cumsum(log["rows"])])
    probs = [[] for _ in range(N)]
    logits_by = [[] for _ in range(N)]
    bn_train, off_rows = False, 0
    if len(log["rows"]) == 0:
        raise CheckFailed("your function never ran the model")
    for f in range(len(log["rows"])):
        s = slice(starts[f], starts[f + 1])
        xr = log["x"][s]
        if len(xr) == 0:
            continue
        dist = np.abs(xr[:, None, :] - x[None, :, :]).max(axis=-1)
        idx = dist.argmin(axis=1)
        if dist[np.arange(len(idx)), idx].max() > 1e-6:
            raise CheckFailed("your passes ran the model on inputs that are not rows of x")
        z = xr @ W1.T + b1
        pre = log["pre"][s]
        if _near(pre, np.maximum(_bn(z, net, False), 0.0)):
            this_bn_train = False
        elif "gamma" in net and _near(pre, np.maximum(_bn(z, net, True), 0.0)):
            this_bn_train = True
        else:
            raise CheckFailed("the logged passes do not match the network (was the model changed, e.g. converted "
                              "or its weights updated?)")
        post = log["post"][s]
        active = pre > 1e-6
        if np.any(np.abs(post[~active]) > 1e-6):
            raise CheckFailed("the logged passes do not match the network")
        ratio = post[active] / pre[active]
        if np.allclose(ratio, 1.0, rtol=1e-4, atol=0):
            on = False
        elif np.all(np.isclose(ratio, 0.0, atol=1e-6) | np.isclose(ratio, 1 / (1 - p), rtol=1e-4)):
            on = True
        else:
            raise CheckFailed("the logged passes do not match the network (the dropout layer's output is not its "
                              "input times a 0/1 mask divided by 1-p)")
        lg = log["logits"][s]
        if not _near(lg, post @ W2.T + b2, 1e-4):
            raise CheckFailed("the logged passes do not match the network")
        if not on:
            off_rows += len(xr)
            continue
        bn_train |= this_bn_train
        pr = _softmax(lg)
        for r, i in enumerate(idx):
            probs[i].append(pr[r])
            logits_by[i].append(lg[r])
    passes = _Passes(mean, ent_raw, log, [np.array(q).reshape(-1, C) for q in probs],
                     [np.array(q).reshape(-1, C) for q in logits_by], len(log["rows"]), bn_train, off_rows)
    counts = np.array([len(q) for q in probs])
    if counts.sum() == 0:
        raise CheckFailed("dropout was off in every pass: model.eval() switches the dropout modules off too, so "
                          "every pass was the same deterministic network. Switch the dropout modules (and only "
                          "them) back to training mode for the passes")
    if passes.n_forwards == 1 and n_samples > 1 and np.all(counts == 1):
        raise CheckFailed(f"your model ran ONCE: mean_probs is the softmax of one dropout pass, reused "
                          f"n_samples = {n_samples} times. Each pass must be a new forward call, with new masks")
    if not np.all(counts == n_samples):
        raise CheckFailed(f"your function ran {', '.join(sorted(set(str(k) for k in counts)))} dropout passes per "
                          f"input instead of n_samples = {n_samples}")
    return passes


def _mean_problem(passes: _Passes, n_samples: int) -> str | None:
    """A message when mean_probs is not the mean of the passes' softmax outputs."""
    got, want = passes.mean, passes.expected_mean()
    if close(got, want, rtol=1e-4, atol=2e-5):
        return None
    logits = passes.logits
    named = [
        (np.stack([_softmax(q.mean(axis=0)) for q in logits]),
         "you averaged logits, then took one softmax: MC dropout averages the PROBABILITIES of the passes (the "
         "softmax of each pass, then their mean); the softmax of the mean logits is a different, more confident "
         "average"),
        (n_samples * want, f"you added the {n_samples} softmax outputs; divide by n_samples"),
        (np.stack([q.mean(axis=0) for q in logits]), "you averaged the logits and never took a softmax"),
        (np.stack([np.log(p.clip(1e-300)).mean(axis=0) for p in passes.probs]),
         "you averaged LOG-probabilities; MC dropout averages the probabilities"),
        (np.stack([q[-1] for q in passes.probs]), "mean_probs is the softmax of the LAST pass only: average all "
                                                  "n_samples of them"),
        (np.stack([q[0] for q in passes.probs]), "mean_probs is the softmax of the FIRST pass only: average all "
                                                 "n_samples of them"),
    ]
    for value, why in named:
        if close(got, value, rtol=1e-4, atol=2e-5):
            return why
    if np.all(np.isclose(got.sum(axis=0), 1.0, atol=1e-3)) and not np.all(np.isclose(got.sum(axis=1), 1.0, atol=1e-3)):
        return ("the columns of your mean_probs sum to 1, not its rows: take the softmax over the classes (the "
                "last dimension, dim=-1), not over the batch")
    if not np.all(np.isfinite(got)):
        return "mean_probs holds NaN or inf"
    gap = float(np.abs(got - want).max())
    return (f"mean_probs is not the mean of the softmax outputs of your dropout passes (largest difference "
            f"{gap:.3g})")


def _entropy_problem(passes: _Passes) -> str | None:
    ent = as_float_array(passes.ent, "entropy")
    N = passes.mean.shape[0]
    if ent.shape != (N,):
        if ent.shape == passes.mean.shape:
            return ("entropy must have shape (N,): one number per input, -sum over classes of p log p; yours has "
                    "shape (N, C): sum over the classes")
        return f"entropy must have shape (N,) = ({N},); yours has shape {ent.shape}"
    want = _entropy(passes.expected_mean())
    if close(ent, want, rtol=1e-4, atol=2e-5):
        return None
    per_pass = np.array([_entropy(q).mean() for q in passes.probs])
    named = [
        (per_pass, "your entropy is the MEAN of the per-pass entropies: the predictive entropy is the entropy of "
                   "the MEAN distribution; thinned networks that are each confident but disagree give a low mean "
                   "of entropies and a high entropy of the mean"),
        (want / np.log(2), "your entropy is in bits (log base 2); the task asks for nats (the natural log)"),
        (want / np.log(10), "your entropy uses log base 10; the task asks for nats (the natural log)"),
        (-want, "your entropy has the wrong sign: it is -sum p log p, positive"),
        (np.array([_entropy(q[-1]) for q in passes.probs]), "your entropy is that of the last pass only"),
    ]
    for value, why in named:
        if close(ent, value, rtol=1e-4, atol=2e-5):
            return why
    if not np.all(np.isfinite(ent)):
        return "your entropy holds NaN or inf"
    return "your entropy is not -sum over classes of mean_probs * log(mean_probs), in nats"


def _same_masks(passes: _Passes, call) -> bool:
    """True when every input's passes are all identical, and a correct function does that
    with probability below ALPHA (see the module docstring); False otherwise."""
    net, n_samples = call
    p = float(net["p"])
    active = int(np.sum(net["x"].astype(np.float64) @ net["W1"].T + net["b1"] > 0))
    bound = ((1 - p) ** n_samples + p ** n_samples) ** active
    return bound < ALPHA and all(np.allclose(q, q[0], rtol=0, atol=1e-9) for q in passes.probs)


def _calls(c: Checker):
    nets = c.ref("inputs")[0]
    return {key: (nets[name], n) for key, (name, n, _) in MC_CALLS.items()}


def check_mc_dropout_predict(c: Checker):
    calls = _calls(c)
    cache: dict = {}

    def verified(key) -> _Passes:
        if key not in cache:
            try:
                cache[key] = _verify(c, key, *calls[key])
            except CheckFailed as exc:
                cache[key] = exc
        if isinstance(cache[key], CheckFailed):
            raise cache[key]
        return cache[key]

    # Central, 5 of 19: logits averaged, one pass reused, dropout off: nothing.
    with c.check(MC_CENTRAL, weight=5, central=True):
        for key in ("plain", "plain from train mode"):
            passes = verified(key)
            problem = _mean_problem(passes, calls[key][1])
            if problem:
                raise CheckFailed(problem)
            if key == "plain" and _same_masks(passes, calls[key]):
                raise CheckFailed("every pass of every input gave the same output: the passes used the same dropout "
                                  "mask (did you reseed torch inside the loop?)")

    # Central, 3 of 19, after the first: BatchNorm in training mode keeps 8/19.
    with c.check(MC_BN, weight=3, central=True, gated_by=(MC_CENTRAL,)):
        for key in ("batchnorm", "batchnorm from train mode", "batchnorm mixed modes"):
            passes = verified(key)
            if passes.bn_train:
                if key == "batchnorm from train mode" and not verified("batchnorm").bn_train:
                    raise CheckFailed(
                        "when the model came in TRAINING mode, BatchNorm stayed in training mode during your passes: "
                        "you switched dropout on but left every other module as it was. Put the whole model in eval "
                        "mode first, then switch only the dropout modules to training mode")
                raise CheckFailed(
                    "BatchNorm was in training mode during your passes: model.train() switches EVERY module, so "
                    "BatchNorm normalised with the statistics of the batch being predicted (and updated its running "
                    "statistics with test data). Put the model in eval mode and switch only the dropout modules "
                    "to training mode")
            problem = _mean_problem(passes, calls[key][1])
            if problem:
                raise CheckFailed(f"with BatchNorm in the network: {problem}")

    # Central, 3 of 19, after the first: the mean of per-pass entropies keeps 8/19.
    with c.check(MC_ENTROPY, weight=3, central=True, gated_by=(MC_CENTRAL,)):
        for key in ("plain", "plain from train mode"):
            problem = _entropy_problem(verified(key))
            if problem:
                raise CheckFailed(problem)

    # Not central, 2 of 19: gradients recorded keeps 17/19.
    with c.check(MC_NO_GRAD, weight=2):
        for key in MC_CALLS:
            if key == "nested dropout":
                continue
            log = verified(key).log
            c.require(not log["grad"].any() and not log["requires_grad"].any(),
                      "your passes ran with gradients enabled: autograd recorded a graph for every pass (memory "
                      "and time for nothing, as nothing is trained). Run them under torch.no_grad()")

    # Not central, 2 of 19: modes not restored keeps 16/19.
    with c.check(MC_MODES, weight=2):
        for key in ("plain", "plain from train mode", "batchnorm", "batchnorm from train mode"):
            log = verified(key).log
            before, after = log["before"].astype(bool), log["after"].astype(bool)
            if np.array_equal(before, after):
                continue
            if not before.any():
                raise CheckFailed("the model came in eval mode and your function leaves some of its modules in "
                                  "training mode (dropout still on): save every module's mode before the passes "
                                  "and restore it afterwards")
            raise CheckFailed("the model came in TRAINING mode and your function leaves it (or some of its modules) "
                              "in eval mode: restore each module's own mode afterwards, so that training can "
                              "go on")

    # Not central, 1 of 19: restoring only the top-level flag keeps 18/19.
    with c.check(MC_MIXED, weight=1):
        log = verified("batchnorm mixed modes").log
        before, after = log["before"].astype(bool), log["after"].astype(bool)
        if not np.array_equal(before, after):
            if after.all():
                raise CheckFailed("a model in training mode with its BatchNorm frozen in eval mode (as when "
                                  "fine-tuning) came back with BatchNorm in training mode: model.train(flag) sets "
                                  "EVERY module; save and restore each module's .training")
            raise CheckFailed("a model in training mode with its BatchNorm frozen in eval mode did not get its "
                              "modules' modes back: save and restore each module's .training")

    # Not central, 1 of 19: only the top-level dropout modules switched on keeps 18/19.
    with c.check(MC_NESTED, weight=1):
        try:
            passes = verified("nested dropout")
        except CheckFailed as exc:
            if "dropout was off" in str(exc):
                raise CheckFailed("with the dropout module inside an nn.Sequential submodule dropout was off in "
                                  "every pass: model.children() lists only the top-level modules; model.modules() "
                                  "visits every module, however deeply nested") from None
            raise
        problem = _mean_problem(passes, calls["nested dropout"][1])
        if problem:
            raise CheckFailed(f"with the dropout inside a submodule: {problem}")

    # Not central, 1 of 19: NaN from 0 * log(0) keeps 18/19.
    with c.check(MC_CONFIDENT, weight=1):
        passes = verified("confident")
        ent = as_float_array(passes.ent, "entropy")
        if not np.all(np.isfinite(ent)):
            raise CheckFailed("a confident network gets a NaN entropy from you: some probabilities underflow to "
                              "exactly 0 and 0 * log(0) is NaN in floating point; the term is 0 in the entropy "
                              "(use torch.special.xlogy(p, p), or clamp p to a tiny positive value inside the log)")
        c.require(close(ent, _entropy(passes.expected_mean()), rtol=1e-4, atol=1e-4),
                  "with a confident network your entropy is not that of mean_probs")

    with c.check(MC_SHAPES, weight=1, peripheral=True):
        for key in MC_CALLS:
            if key == "nested dropout":
                continue
            passes = verified(key)
            c.require(np.asarray(passes.ent).shape == (passes.mean.shape[0],),
                      "entropy must have shape (N,), one number per input")
            c.require(not passes.log["state_changed"].any(),
                      "your function changed the model's weights or buffers (BatchNorm's running statistics?): "
                      "prediction must leave the model as it was")
            raw = c.raw_outputs(key)
            c.require(all(o.kind == "array" and np.asarray(o.value).dtype.kind == "f" for o in raw[:2]),
                      "mean_probs and entropy must be float tensors or arrays")


CHECKS = {
    "max_norm_": check_max_norm,
    "dropout_ridge_solution": check_dropout_ridge_solution,
    "mc_dropout_predict": check_mc_dropout_predict,
}
