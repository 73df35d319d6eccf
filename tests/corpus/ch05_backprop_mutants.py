"""Mistakes students make in chapter 05. Each must lose points under every
seed, and each table row states the share of its function's points it may
keep (a number: at most; a (min, max) pair: that range), with the reason on
its line (autograder/POLICY.md)."""
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


def mlp_backward_ignores_mask(X, y, params, hidden_mask, p):
    """Mask and 1/(1-p) in the forward pass; the backward pass uses neither."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = X.shape[0]
    z = X @ W1 + b1
    h = np.maximum(z, 0)
    hd = h * np.asarray(hidden_mask, float) / (1 - p) if hidden_mask is not None else h
    logits = hd @ W2 + b2
    logits = logits - logits.max(1, keepdims=True)
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    loss = -np.mean(np.log(P[np.arange(n), y]))
    d = P.copy()
    d[np.arange(n), y] -= 1
    d /= n
    dz = (d @ W2.T) * (z > 0)
    return loss, {"W1": X.T @ dz, "b1": dz.sum(0), "W2": hd.T @ d, "b2": d.sum(0)}


def mlp_returns_none(X, y, params, hidden_mask, p):
    """Computes the loss and forgets `return`."""
    _ref_mlp(X, y, params, hidden_mask, p)


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


class DropoutBackwardIgnoresMask(torch.autograd.Function):
    """Keeps the 1/(1-p) in backward but not the mask."""

    @staticmethod
    def forward(ctx, x, mask, p):
        ctx.p = p
        return x * mask / (1 - p)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output / (1 - ctx.p), None, None


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
    "dropout_backward": [
        # The mask is the half of the one-line answer that matters most: ignoring it earns nothing.
        ("fresh mask", backward_fresh_mask, 0.0),           # a new mask instead of the one given
        ("ignores mask", backward_ignores_mask, 0.0),       # dout / (1 - p) everywhere
        # Mask right, scale wrong: a wrong central computation (at most a quarter).
        ("no 1/(1-p)", backward_no_scale, 0.25),            # forgets 1/(1-p)
        ("times keep", backward_times_keep, 0.25),          # *(1-p) instead of /(1-p)
        ("divides by p", backward_divides_by_p, 0.25),      # /p instead of /(1-p)
        ("in place", backward_in_place, 0.95),              # modifies dout
    ],
    "numerical_gradient": [
        ("forward difference", numgrad_forward_difference, 0.25),  # O(h) error: the method is the exercise
        ("divides by h", numgrad_divides_by_h, 0.25),       # twice the gradient
        ("perturbs a copy, calls f(x)", numgrad_perturbs_copy_calls_original, 0.0),  # always 0: nothing right
        ("ignores h", numgrad_ignores_h, 0.5),              # right only at the default step
        ("leaves x modified", numgrad_leaves_x_modified, 0.9),  # right values, x not restored
    ],
    "relative_error": [
        ("no floor", rel_no_floor, 0.5),                    # right except where a and b are 0
        ("no floor, global", rel_no_floor_global, 0.5),
        ("mean", rel_mean, 0.25),                           # a different formula
        ("no abs", rel_no_abs, 0.25),
        ("norms", rel_norms, 0.25),
        ("max denominator", rel_max_denominator, 0.25),
    ],
    "mlp_loss_and_grads": [
        ("sum not mean", mlp_sum_not_mean, 0.25),           # every gradient N times too large
        ("divides twice", mlp_divides_twice, 0.25),         # every gradient N times too small
        ("b1 not through relu", mlp_b1_not_through_relu, 0.25),  # a hidden-layer gradient wrong everywhere
        ("mask ignored", mlp_ignores_mask, 0.25),           # no dropout at all: loss and gradients with a mask wrong
        # Backprop through the mask is the chapter's point: the network without dropout is all that is right.
        ("mask ignored in backward", mlp_ignores_mask_in_backward, 0.5),  # no-dropout gradients for W1, b1
        ("backward ignores mask", mlp_backward_ignores_mask, 0.5),        # dh not multiplied by mask / (1 - p)
        ("backward misses 1/(1-p)", mlp_backward_no_scale, 0.5),         # dh multiplied by the mask only
        ("scales without a mask", mlp_scales_without_mask, 0.9),  # an edge case (mask None with p > 0)
        ("updates params", mlp_updates_params, 0.9),        # modifies params
        ("returns None", mlp_returns_none, 0.0),            # forgot `return`: nothing to credit
    ],
    "DropoutFunction": [
        # Backward is the chapter's point (3 of 8); a correct forward keeps its 2 of 8.
        ("fresh mask in backward", DropoutFreshMask, 0.25),
        ("backward misses 1/(1-p)", DropoutBackwardNoScale, 0.25),
        ("identity backward", DropoutIdentityBackward, 0.25),      # ignores mask and scale
        ("backward ignores mask", DropoutBackwardIgnoresMask, 0.25),
        ("backward still a stub", DropoutStubBackward, (0.25, 0.25)),  # forward credited on its own
        ("forward misses 1/(1-p)", DropoutForwardNoScale, 0.5),    # backward right, forward unscaled
        ("mask gradient", DropoutMaskGradient, 0.9),        # a gradient for the mask instead of None
    ],
}
