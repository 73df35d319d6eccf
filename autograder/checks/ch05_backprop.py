"""Checks for chapter 05, backprop through masks.

Everything here is deterministic: the masks are inputs, so every output is
compared exactly (up to float tolerance) with the hidden reference or with a
closed form. No statistical check, hence no false-failure bound to state.

Gating (autograder.checks.base): each function's central computation is
declared ``central=True`` and carries at least half of its weight; the other
sub-checks (shapes, dtypes, inputs left unmodified, gradcheck's verdict, ...)
are claims a forged recording makes for free, so they earn only once the
central ones pass. DropoutFunction has two central parts, forward and
backward, each gating only the sub-checks that depend on it.
"""
import numpy as np

from dropout_lab.probes.ch05_backprop import BACKWARD_PS, FUNCTION_PS, LARGE_H, MLP_SHAPE, REL_EPS

from .base import (Checker, CheckFailed, as_float_array, close, describe_difference, factor_phrase,
                   inverted_scale_problem, kept_factor, probe_arguments, representative_first, require_shape)

PARAM_KEYS = ("W1", "b1", "W2", "b2")


# -- dropout_backward ----------------------------------------------------------

def _diagnose_backward(dx, dout, mask, p) -> str:
    """A message saying how dx differs from dout * mask / (1 - p): a backward
    that ignores the mask, draws a new one, or forgets (or misreads) 1/(1-p)."""
    return f"with p={p} " + inverted_scale_problem(dx, dout, mask, p, backward=True)


def _check_backward_call(c, key, dout, mask, p, rtol=1e-6):
    dx = as_float_array(c.output(key), "dx")
    require_shape(dx, dout.shape, "dx")
    expected = dout.astype(np.float64) * mask / (1 - p)
    if not close(dx, expected, rtol=rtol):
        raise CheckFailed(_diagnose_backward(dx, dout.astype(np.float64), mask, p))


BACKWARD_MASKED = "dx is 0 where mask == 0 and dout times one factor elsewhere"
BACKWARD_EXACT = "dx = dout * mask / (1 - p) with a boolean mask"


def check_dropout_backward(c: Checker):
    dout, masks, fmask, d3, m3, d32 = c.ref("inputs")
    masks = masks.astype(bool)
    cases = [(p, masks[BACKWARD_PS.index(p)]) for p in representative_first(BACKWARD_PS)]

    with c.check("returns dx with dout's shape", weight=1, peripheral=True):
        dx = as_float_array(c.output("bool mask p=0.5"), "dx")
        require_shape(dx, dout.shape, "dx")

    # Central, the mask half of the one-line answer: a backward that applies the mask
    # but scales by the wrong factor keeps it, 2/12 = 0.17; one that ignores the mask
    # keeps nothing.
    with c.check(BACKWARD_MASKED, weight=2, central=True):
        for p, mask in cases:
            dx = as_float_array(c.output(f"bool mask p={p}"), "dx")
            require_shape(dx, dout.shape, "dx")
            f = kept_factor(dx, dout, mask)
            if f is None or abs(f) < 1e-6 or np.any(np.abs(dx[~mask]) > 1e-9):
                raise CheckFailed(_diagnose_backward(dx, dout, mask, p))

    with c.check(BACKWARD_EXACT, weight=7, central=True):
        for p, mask in cases:
            _check_backward_call(c, f"bool mask p={p}", dout, mask, p)

    with c.check("works with a float 0/1 mask, any shape and float32", weight=1, peripheral=True):
        _check_backward_call(c, "float mask p=0.5", dout, fmask, 0.5)
        _check_backward_call(c, "3-d p=0.3", d3, m3, 0.3)
        _check_backward_call(c, "float32 p=0.5", d32, masks[BACKWARD_PS.index(0.5)][:10], 0.5, rtol=1e-5)

    with c.check("dout and mask are not modified", weight=1, peripheral=True):
        for key in [f"bool mask p={p}" for p in BACKWARD_PS] + ["float mask p=0.5", "3-d p=0.3"]:
            c.outputs(key)
            c.require(not c.mutated(key),
                      "your function changed dout or mask in place; the upstream gradient may be needed "
                      "elsewhere, so return a new array (dx = dout * mask / (1 - p))")


# -- numerical_gradient --------------------------------------------------------

def check_numerical_gradient(c: Checker):
    x1, x2 = c.ref("inputs")
    xs = {"f1": x1, "f2": x2}

    def grad_and_x(key):
        grad, x_after = c.outputs(key, n=2)
        ref_grad, _ = c.ref(key)
        grad = as_float_array(grad, "gradient")
        require_shape(grad, ref_grad.shape, "gradient (it must have x's shape)")
        return grad, ref_grad, as_float_array(x_after, "x")

    with c.check("returns a gradient with x's shape", weight=1, peripheral=True):
        grad_and_x("f1 default h")
        grad_and_x("f2 default h")

    with c.check("matches the true gradient with the default h = 1e-5", weight=3, central=True):
        for name in ("f1", "f2"):
            grad, ref_grad, _ = grad_and_x(f"{name} default h")
            if not close(grad, ref_grad, rtol=1e-5, atol=1e-6):
                ratio = float(np.sum(grad * ref_grad) / max(np.sum(ref_grad ** 2), 1e-300))
                hint = ""
                if np.isclose(ratio, 2.0, rtol=1e-3):
                    hint = "; it is twice the true gradient: divide f(x+h) - f(x-h) by 2h, not by h"
                elif np.isclose(ratio, 0.5, rtol=1e-3):
                    hint = "; it is half the true gradient: restore x[i] before evaluating f(x - h)"
                elif np.allclose(grad, 0):
                    hint = "; it is zero: f must be evaluated at the perturbed x (x[i] + h and x[i] - h)"
                raise CheckFailed("the numerical gradient does not match the true gradient of f "
                                  f"({describe_difference(grad, ref_grad)}){hint}. Perturb one entry "
                                  "at a time and use (f(x + h e_i) - f(x - h e_i)) / (2h)")

    with c.check("uses central differences (checked with h = 1e-2)", weight=3, central=True):
        for name in ("f1", "f2"):
            grad, ref_grad, _ = grad_and_x(f"{name} h={LARGE_H}")
            c.require(close(grad, ref_grad, rtol=1e-6, atol=1e-8),
                      f"with h={LARGE_H} your estimate differs from the central difference "
                      f"(f(x+h) - f(x-h)) / (2h) by {np.max(np.abs(grad - ref_grad)):.2g}; a forward "
                      "difference (f(x+h) - f(x)) / h has an O(h) error, a central one O(h^2). "
                      "Also make sure the h argument is used rather than a fixed step")

    with c.check("x is left unchanged", weight=1, peripheral=True):
        for key in ("f1 default h", "f2 default h", f"f1 h={LARGE_H}", f"f2 h={LARGE_H}"):
            _, _, x_after = grad_and_x(key)
            x = xs[key.split()[0]]
            c.require(x_after.shape == x.shape and np.allclose(x_after, x, rtol=0, atol=1e-12),
                      "x was changed by your function: if you perturb x in place, put the original "
                      "value back after evaluating f(x + h) and f(x - h)")


# -- relative_error ------------------------------------------------------------

def _scalar(c, key):
    value = as_float_array(c.output(key), "relative error")
    c.require(value.size == 1, f"relative_error must return one number, got an array of shape {value.shape}")
    return float(value.reshape(-1)[0])


def check_relative_error(c: Checker):
    def agrees(key, rtol=1e-6):
        got, want = _scalar(c, key), float(np.asarray(c.ref(key)[0]))
        if np.isnan(got):
            raise CheckFailed("the relative error is NaN where a or b is 0: the denominator "
                              "max(1e-8, |a| + |b|) must never be 0")
        c.require(np.isclose(got, want, rtol=rtol, atol=1e-300),
                  f"the relative error is {got:.4g} where max |a-b| / max(1e-8, |a|+|b|) gives {want:.4g}")

    with c.check("returns one number", weight=1, peripheral=True):
        _scalar(c, "matrix")

    with c.check("max |a - b| / max(1e-8, |a| + |b|) for arrays", weight=3, central=True):
        for eps in REL_EPS:
            agrees(f"vector eps={eps}")
        agrees("matrix")
        agrees("scalars")
        agrees("equal")

    with c.check("symmetric in a and b", weight=1):
        c.require(np.isclose(_scalar(c, "matrix"), _scalar(c, "matrix swapped"), rtol=1e-9),
                  "relative_error(a, b) and relative_error(b, a) differ; use |a - b| and |a| + |b|")

    with c.check("the 1e-8 floor: zeros give 0, tiny values stay tiny", weight=2, central=True):
        agrees("all zeros")
        agrees("some zeros")
        # 1e-2: also accepts the floor written as |a| + |b| + 1e-8; without a floor the error is 0.5.
        agrees("tiny values", rtol=1e-2)


# -- mlp_loss_and_grads --------------------------------------------------------

def _loss_grads(c, key):
    loss, grads = c.outputs(key, n=2)
    c.require(isinstance(grads, dict), "the second returned value must be a dict of gradients")
    missing = [k for k in PARAM_KEYS if k not in grads]
    c.require(not missing, f"grads is missing the keys {missing}; it must have params' keys W1, b1, W2, b2")
    loss = as_float_array(loss, "loss")
    c.require(loss.size == 1, f"the loss must be one number, got shape {loss.shape}")
    return float(loss.reshape(-1)[0]), {k: as_float_array(grads[k], f"grads[{k!r}]") for k in PARAM_KEYS}


def _compare_grads(c, key, keys=PARAM_KEYS, what=""):
    _, grads = _loss_grads(c, key)
    _, ref = c.ref(key)
    n = MLP_SHAPE[0]
    bad = []
    for k in keys:
        require_shape(grads[k], ref[k].shape, f"grads[{k!r}]")
        if not close(grads[k], ref[k], rtol=1e-5, atol=1e-8):
            bad.append(k)
    if not bad:
        return
    g = np.concatenate([grads[k].ravel() for k in bad])
    r = np.concatenate([ref[k].ravel() for k in bad])
    ratio = float(g @ r / max(r @ r, 1e-300))
    if np.isclose(ratio, n, rtol=1e-3):
        hint = (f"they are {n} (the batch size) times too large: the loss is a MEAN over the batch, "
                "so divide dlogits = softmax - one_hot(y) by N")
    elif np.isclose(ratio, 1 / n, rtol=1e-3):
        hint = "they are divided by the batch size twice: divide by N once, in dlogits"
    elif set(bad) <= {"W1", "b1"} and (mistake := _hidden_backward_mistake(c, key, grads)):
        hint = mistake
    elif bad == ["b1"]:
        hint = "db1 must pass through the ReLU (zero where X @ W1 + b1 <= 0) and the mask, like dW1"
    else:
        hint = describe_difference(g, r)
    raise CheckFailed(f"{what}gradients {', '.join(bad)} are wrong: {hint}")


def _hidden_grads(X, y, params, forward_scale, backward_scale):
    """dW1, db1 of the two-layer network whose hidden activations are
    multiplied by ``forward_scale`` in the forward pass and whose hidden
    gradient is multiplied by ``backward_scale`` in the backward pass (the
    two are equal, mask / (1 - p), in a correct implementation)."""
    W1, b1, W2, b2 = (np.asarray(params[k], dtype=np.float64) for k in PARAM_KEYS)
    n = X.shape[0]
    z = X @ W1 + b1
    logits = np.maximum(z, 0.0) * forward_scale @ W2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    probs[np.arange(n), y] -= 1.0
    dz = (probs / n) @ W2.T * backward_scale * (z > 0)
    return {"W1": X.T @ dz, "b1": dz.sum(axis=0)}


def _hidden_backward_mistake(c, key, grads):
    """A message naming what the backward pass did with the mask, when the
    student's dW1, db1 are those of a recognisable mistake: the mask ignored
    (with or without 1/(1-p)), the network's gradients without dropout, or
    the mask without 1/(1-p). The inputs are re-derived in the grader and
    never shown."""
    args, _ = probe_arguments(c, key)
    X, y, params, mask, p = args
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=np.float64)
    scale = mask / (1 - p)
    _, no_dropout = c.ref("no dropout")

    def matches(candidate):
        return all(close(grads[k], candidate[k], rtol=1e-5, atol=1e-8) for k in ("W1", "b1"))

    kept = f"kept ones the forward's factor {factor_phrase('1/(1-p)', p)}"
    if matches(_hidden_grads(X, y, params, scale, 1.0)) or \
            matches(_hidden_grads(X, y, params, scale, np.full_like(scale, 1 / (1 - p)))) or matches(no_dropout):
        return (f"with p={p} your backward ignores the dropout mask: dh must be multiplied by mask / (1 - p) "
                f"exactly as h was in the forward pass, so dropped units (mask == 0) get no gradient and {kept}")
    if matches(_hidden_grads(X, y, params, scale, mask)):
        return (f"with p={p} your backward forgets the 1/(1-p): dh is multiplied by the mask but not by "
                f"{factor_phrase('1/(1-p)', p)}, the factor the forward pass applied to h")
    return None


def check_mlp_loss_and_grads(c: Checker):
    params = c.ref("inputs")[0]

    with c.check("returns (loss, grads) with params' keys and shapes", weight=1, peripheral=True):
        _, grads = _loss_grads(c, "no dropout")
        for k in PARAM_KEYS:
            require_shape(grads[k], params[k].shape, f"grads[{k!r}]")

    with c.check("loss: softmax cross-entropy averaged over the batch", weight=1, central=True):
        for key in ("no dropout", "bool mask (N,H) p=0.5", "mask (H,) p=0.5"):
            loss, _ = _loss_grads(c, key)
            ref = float(np.asarray(c.ref(key)[0]))
            if not np.isclose(loss, ref, rtol=1e-6):
                hint = ""
                if np.isclose(loss, ref * MLP_SHAPE[0], rtol=1e-6):
                    hint = ": it is summed over the batch; take the mean"
                elif key != "no dropout":
                    hint = ": apply the mask after the ReLU, h = relu(X @ W1 + b1) * mask / (1 - p)"
                raise CheckFailed(f"the loss ({'no dropout' if key == 'no dropout' else 'with a mask'}) "
                                  f"is {loss:.5g}, expected {ref:.5g}{hint}")

    with c.check("output-layer gradients W2, b2 without dropout", weight=1, central=True):
        _compare_grads(c, "no dropout", ("W2", "b2"), "without dropout the ")

    with c.check("hidden-layer gradients W1, b1 without dropout", weight=1, central=True):
        _compare_grads(c, "no dropout", ("W1", "b1"), "without dropout the ")

    with c.check("gradients with a mask of shape (N, H), bool or float", weight=2, central=True):
        for key in ("float mask (N,H) p=0.2", "bool mask (N,H) p=0.5"):  # p = 0.2 first, for the message
            _compare_grads(c, key, what="with a dropout mask the ")

    with c.check("gradients with a mask of shape (H,)", weight=1):
        _compare_grads(c, "mask (H,) p=0.5", what="with a mask of shape (H,) (one mask for the whole batch) the ")

    with c.check("hidden_mask=None means no dropout, whatever p is", weight=1):
        loss, _ = _loss_grads(c, "mask None p=0.5")
        ref = float(np.asarray(c.ref("mask None p=0.5")[0]))
        c.require(np.isclose(loss, ref, rtol=1e-6),
                  "with hidden_mask=None and p=0.5 the loss differs from the network without dropout: "
                  "no mask means no dropping and no 1/(1-p) scaling")
        _compare_grads(c, "mask None p=0.5", what="with hidden_mask=None the ")

    with c.check("params are not modified", weight=1, peripheral=True):
        after = c.output("params after")
        c.require(isinstance(after, dict) and all(k in after for k in PARAM_KEYS),
                  "params lost a key during your function")
        for k in PARAM_KEYS:
            c.require(np.array_equal(as_float_array(after[k]), params[k]),
                      f"params[{k!r}] was changed in place; compute gradients without updating params "
                      "(the training loop does the update)")


# -- DropoutFunction -----------------------------------------------------------

def _function_call(c, key, x, mask, g, p, rtol=1e-6):
    out, grad_x, _ = c.outputs(key, n=3)
    out = as_float_array(out, "forward output")
    require_shape(out, x.shape, "forward output")
    c.require(close(out, x * mask / (1 - p), rtol=rtol),
              f"with p={p} forward returned something other than x * mask / (1 - p): "
              f"{describe_difference(out, x * mask / (1 - p))}")
    grad_x = as_float_array(grad_x, "gradient of x")
    require_shape(grad_x, x.shape, "gradient of x")
    if not close(grad_x, g * mask / (1 - p), rtol=rtol):
        raise CheckFailed("backward: " + _diagnose_backward(grad_x, g, mask, p)
                          + " (save the mask with ctx.save_for_backward in forward)")


FORWARD = "forward returns x * mask / (1 - p)"
BACKWARD = "backward returns grad_output * mask / (1 - p) for x"


def _backward_call(c, key, mask, g, p):
    """Only the gradient of x from a forward-and-backward call."""
    _, grad_x, _ = c.outputs(key, n=3)
    grad_x = as_float_array(grad_x, "gradient of x")
    require_shape(grad_x, g.shape, "gradient of x")
    if not close(grad_x, g * mask / (1 - p)):
        raise CheckFailed("backward: " + _diagnose_backward(grad_x, g, mask, p)
                          + " (save the mask with ctx.save_for_backward in forward)")


def _forward_problem(out, x, mask, p) -> str:
    if p > 0 and p != 0.5:
        return f"with p={p} forward: " + inverted_scale_problem(out, x, mask, p) + " (out = x * mask / (1 - p))"
    return (f"with p={p} forward returned something other than x * mask / (1 - p): "
            f"{describe_difference(out, x * mask / (1 - p))}")


BACKWARD_STUB = ("backward is still a stub (it raises NotImplementedError). {forward} Now write backward: the "
                 "gradient for x is grad_output * mask / (1 - p), with the mask saved in forward "
                 "(ctx.save_for_backward), and None for mask and p")


def _backward_is_stub(c) -> bool:
    entries = [c.entry(f"float64 p={p}") for p in FUNCTION_PS]
    return all(e.status == "error" and e.error_type == "NotImplementedError" for e in entries)


def check_dropout_function(c: Checker):
    x, g, masks, mask_b = c.ref("inputs")
    cases = [(p, masks[FUNCTION_PS.index(p)]) for p in representative_first(FUNCTION_PS)]

    # Two central parts, each checked on its own calls: a correct forward earns
    # its points, 2/8 = 0.25, even while backward is still a stub. Backward is
    # the chapter's point and carries more.
    with c.check(FORWARD, weight=2, central=True):
        for p, mask in cases:
            out = as_float_array(c.output(f"forward p={p}"), "forward output")
            require_shape(out, x.shape, "forward output")
            if not close(out, x * mask / (1 - p)):
                raise CheckFailed(_forward_problem(out, x, mask, p))
    forward_right = c.results[-1].passed

    with c.check(BACKWARD, weight=3, central=True):
        if _backward_is_stub(c):
            raise CheckFailed(BACKWARD_STUB.format(
                forward="Your forward is right and earns its points." if forward_right else
                "Your forward is not right yet either (see above)."))
        for p, mask in cases:
            _backward_call(c, f"float64 p={p}", mask, g, p)

    with c.check("works with a bool mask and float32 inputs", weight=1, peripheral=True):
        _function_call(c, "bool mask p=0.5", x, mask_b.astype(np.float64), g, 0.5)
        _function_call(c, "float32 p=0.5", x.astype(np.float32).astype(np.float64),
                       masks[FUNCTION_PS.index(0.5)], g.astype(np.float32).astype(np.float64), 0.5, rtol=1e-4)

    with c.check("backward returns None for mask and p", weight=1, peripheral=True, gated_by=(BACKWARD,)):
        _, _, grad_mask = c.outputs("mask requires grad", n=3)
        c.require(grad_mask is None or np.all(as_float_array(grad_mask) == 0),
                  "backward returned a gradient for the mask; the mask is not something we differentiate "
                  "with respect to: return (grad_x, None, None)")

    # gradcheck's verdict is a boolean the kernel reports: a claim, gated by both parts.
    with c.check("torch.autograd.gradcheck passes", weight=1):
        ok = c.output("gradcheck")
        c.require(ok is not None and bool(np.asarray(ok)),
                  "torch.autograd.gradcheck failed on double inputs: the gradient from backward does "
                  "not match finite differences of forward")


CHECKS = {
    "dropout_backward": check_dropout_backward,
    "numerical_gradient": check_numerical_gradient,
    "relative_error": check_relative_error,
    "mlp_loss_and_grads": check_mlp_loss_and_grads,
    "DropoutFunction": check_dropout_function,
}
