"""Mistakes students make in chapter 05. Each must lose points under every seed."""
import numpy as np
import torch

from autograder.reference.ch05_backprop import mlp_loss_and_grads as _ref_mlp


# -- dropout_backward ----------------------------------------------------------

def backward_fresh_mask(dout, mask, p):
    """Draws a new mask instead of using the cached forward mask."""
    new_mask = np.random.default_rng().random(dout.shape) >= p
    return dout * new_mask / (1 - p)


def backward_no_scale(dout, mask, p):
    return dout * mask


def backward_times_keep(dout, mask, p):
    return dout * mask * (1 - p)


def backward_divides_by_p(dout, mask, p):
    return dout * mask / p if p > 0 else dout * mask


def backward_in_place(dout, mask, p):
    dout *= mask
    dout /= 1 - p
    return dout


def backward_ignores_mask(dout, mask, p):
    return dout / (1 - p)


# -- numerical_gradient --------------------------------------------------------

def numgrad_forward_difference(f, x, h=1e-5):
    grad = np.zeros_like(x)
    fx = f(x)
    for idx in np.ndindex(x.shape):
        xp = x.copy()
        xp[idx] += h
        grad[idx] = (f(xp) - fx) / h
    return grad


def numgrad_leaves_x_modified(f, x, h=1e-5):
    """Perturbs in place and never restores the last entry's value."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f(x)
        x[idx] = old - h
        fm = f(x)
        grad[idx] = (fp - fm) / (2 * h)
        x[idx] = old - h if idx == tuple(s - 1 for s in x.shape) else old
    return grad


def numgrad_divides_by_h(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        grad[idx] = (f(xp) - f(xm)) / h
    return grad


def numgrad_ignores_h(f, x, h=1e-5):
    """Hard-codes the step: wrong when the caller asks for another h."""
    step = 1e-5
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += step
        xm[idx] -= step
        grad[idx] = (f(xp) - f(xm)) / (2 * step)
    return grad


def numgrad_perturbs_copy_calls_original(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp = x.copy()
        xp[idx] += h
        fp = f(x)
        xp[idx] -= 2 * h
        fm = f(x)
        grad[idx] = (fp - fm) / (2 * h)
    return grad


# -- relative_error ------------------------------------------------------------

def rel_no_floor(a, b):
    return np.max(np.abs(a - b) / (np.abs(a) + np.abs(b)))


def rel_no_floor_global(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a) + np.abs(b)))


def rel_mean(a, b):
    return np.mean(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))


def rel_no_abs(a, b):
    return np.max((a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))


def rel_norms(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.linalg.norm(a - b) / max(1e-8, np.linalg.norm(a) + np.linalg.norm(b)))


def rel_max_denominator(a, b):
    return np.max(np.abs(a - b) / np.maximum(1e-8, np.maximum(np.abs(a), np.abs(b))))


# -- mlp_loss_and_grads --------------------------------------------------------

def _scaled(scale):
    def fn(X, y, params, hidden_mask, p):
        loss, grads = _ref_mlp(X, y, params, hidden_mask, p)
        return loss, {k: v * scale(X.shape[0]) for k, v in grads.items()}
    return fn


mlp_sum_not_mean = _scaled(lambda n: n)
mlp_divides_twice = _scaled(lambda n: 1.0 / n)


def mlp_ignores_mask_in_backward(X, y, params, hidden_mask, p):
    """Forward uses the mask, backward does not."""
    loss, grads = _ref_mlp(X, y, params, hidden_mask, p)
    _, plain = _ref_mlp(X, y, params, None, p)
    if hidden_mask is not None:
        grads["W1"], grads["b1"] = plain["W1"], plain["b1"]
    return loss, grads


def _mlp_generic(X, y, params, hidden_mask, p, *, scale_back=True, relu_b1=True, mask_forward=True,
                 scale_none=False):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = X.shape[0]
    z = X @ W1 + b1
    h = np.maximum(z, 0)
    if hidden_mask is not None and mask_forward:
        s = np.asarray(hidden_mask, float) / (1 - p)
    elif hidden_mask is None and scale_none:
        s = np.full(z.shape, 1 / (1 - p))
    else:
        s = np.ones_like(z)
    hd = h * s
    logits = hd @ W2 + b2
    logits = logits - logits.max(1, keepdims=True)
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    loss = -np.mean(np.log(P[np.arange(n), y]))
    d = P.copy()
    d[np.arange(n), y] -= 1
    d /= n
    dhd = d @ W2.T
    dh = dhd * (s if scale_back else (s > 0))
    dz = dh * (z > 0)
    db1 = dz.sum(0) if relu_b1 else (dh).sum(0)
    return loss, {"W1": X.T @ dz, "b1": db1, "W2": hd.T @ d, "b2": d.sum(0)}


def mlp_backward_no_scale(X, y, params, hidden_mask, p):
    return _mlp_generic(X, y, params, hidden_mask, p, scale_back=False)


def mlp_b1_not_through_relu(X, y, params, hidden_mask, p):
    return _mlp_generic(X, y, params, hidden_mask, p, relu_b1=False)


def mlp_ignores_mask(X, y, params, hidden_mask, p):
    return _mlp_generic(X, y, params, hidden_mask, p, mask_forward=False)


def mlp_scales_without_mask(X, y, params, hidden_mask, p):
    return _mlp_generic(X, y, params, hidden_mask, p, scale_none=True)


def mlp_updates_params(X, y, params, hidden_mask, p):
    loss, grads = _ref_mlp(X, y, params, hidden_mask, p)
    for k in params:
        params[k] -= 0.1 * grads[k]
    return loss, grads


# -- DropoutFunction -----------------------------------------------------------

class DropoutFreshMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, p):
        ctx.p = p
        return x * mask / (1 - p)

    @staticmethod
    def backward(ctx, grad_output):
        mask = (torch.rand(grad_output.shape) >= ctx.p).to(grad_output.dtype)
        return grad_output * mask / (1 - ctx.p), None, None


class DropoutBackwardNoScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, p):
        ctx.save_for_backward(mask)
        return x * mask / (1 - p)

    @staticmethod
    def backward(ctx, grad_output):
        (mask,) = ctx.saved_tensors
        return grad_output * mask, None, None


class DropoutIdentityBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, p):
        return x * mask / (1 - p)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None, None


class DropoutMaskGradient(torch.autograd.Function):
    """Returns d(out)/d(mask) for the mask instead of None."""

    @staticmethod
    def forward(ctx, x, mask, p):
        ctx.save_for_backward(x, mask)
        ctx.p = p
        return x * mask / (1 - p)

    @staticmethod
    def backward(ctx, grad_output):
        x, mask = ctx.saved_tensors
        return grad_output * mask / (1 - ctx.p), grad_output * x / (1 - ctx.p), None


class DropoutForwardNoScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, p):
        ctx.save_for_backward(mask)
        ctx.p = p
        return x * mask

    @staticmethod
    def backward(ctx, grad_output):
        (mask,) = ctx.saved_tensors
        return grad_output * mask / (1 - ctx.p), None, None


class DropoutStubBackward(torch.autograd.Function):
    """A correct forward with backward still the stub: keeps forward's points only."""

    @staticmethod
    def forward(ctx, x, mask, p):
        return x * mask / (1 - p)

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError()


MUTANTS = {
    "dropout_backward": [("fresh mask", backward_fresh_mask), ("no 1/(1-p)", backward_no_scale),
                         ("times keep", backward_times_keep), ("divides by p", backward_divides_by_p),
                         ("in place", backward_in_place), ("ignores mask", backward_ignores_mask)],
    "numerical_gradient": [("forward difference", numgrad_forward_difference),
                           ("leaves x modified", numgrad_leaves_x_modified),
                           ("divides by h", numgrad_divides_by_h), ("ignores h", numgrad_ignores_h),
                           ("perturbs a copy, calls f(x)", numgrad_perturbs_copy_calls_original)],
    "relative_error": [("no floor", rel_no_floor), ("no floor, global", rel_no_floor_global),
                       ("mean", rel_mean), ("no abs", rel_no_abs), ("norms", rel_norms),
                       ("max denominator", rel_max_denominator)],
    "mlp_loss_and_grads": [("sum not mean", mlp_sum_not_mean), ("divides twice", mlp_divides_twice),
                           ("mask ignored in backward", mlp_ignores_mask_in_backward),
                           ("backward misses 1/(1-p)", mlp_backward_no_scale),
                           ("b1 not through relu", mlp_b1_not_through_relu),
                           ("mask ignored", mlp_ignores_mask),
                           ("scales without a mask", mlp_scales_without_mask),
                           ("updates params", mlp_updates_params)],
    "DropoutFunction": [("fresh mask in backward", DropoutFreshMask),
                        ("backward misses 1/(1-p)", DropoutBackwardNoScale),
                        ("identity backward", DropoutIdentityBackward),
                        ("mask gradient", DropoutMaskGradient),
                        ("forward misses 1/(1-p)", DropoutForwardNoScale),
                        ("backward still a stub", DropoutStubBackward, 0.25)],
}
