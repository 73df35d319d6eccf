"""Correct implementations of chapter 05's graded functions, written the ways
students write them. Each must earn full marks under every seed."""
import numpy as np
import torch


# -- dropout_backward ----------------------------------------------------------

def backward_where(dout, mask, p):
    return np.where(mask.astype(bool), dout / (1 - p), 0.0)


def backward_cast_mask(dout, mask, p):
    keep = 1.0 - p
    return dout * mask.astype(dout.dtype) / keep


def backward_loop(dout, mask, p):
    dx = np.zeros_like(dout)
    flat_d, flat_m, flat_x = dout.reshape(-1), mask.reshape(-1), dx.reshape(-1)
    for i in range(flat_d.size):
        if flat_m[i]:
            flat_x[i] = flat_d[i] / (1 - p)
    return dx


def backward_boolean_index(dout, mask, p):
    dx = np.zeros(dout.shape)
    m = mask != 0
    dx[m] = dout[m] * (1.0 / (1.0 - p))
    return dx


# -- numerical_gradient --------------------------------------------------------

def numgrad_cs231n(f, x, h=1e-5):
    """In place with restore, np.nditer as in CS231n."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
        it.iternext()
    return grad


def numgrad_add_subtract(f, x, h=1e-5):
    """In place, restored by arithmetic: may drift by the last bit, which is allowed."""
    grad = np.zeros(x.shape)
    for i in range(x.size):
        x.flat[i] += h
        fp = f(x)
        x.flat[i] -= 2 * h
        fm = f(x)
        x.flat[i] += h
        grad.flat[i] = (fp - fm) / (2 * h)
    return grad


def numgrad_copies(f, x, h=1e-5):
    """Never touches x: a fresh perturbed copy per entry and direction."""
    grad = np.empty(x.shape, dtype=float)
    for idx in np.ndindex(*x.shape):
        e = np.zeros(x.shape)
        e[idx] = h
        grad[idx] = (f(x + e) - f(x - e)) / (2 * h)
    return grad


def numgrad_two_halves(f, x, h=1e-5):
    g = []
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.reshape(-1)[i] += h
        xm.reshape(-1)[i] -= h
        g.append(float(f(xp)) / (2 * h) - float(f(xm)) / (2 * h))
    return np.array(g).reshape(x.shape)


# -- relative_error ------------------------------------------------------------

def rel_cs231n(a, b):
    return np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))


def rel_global(a, b):
    """The other reading: largest difference over largest sum."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def rel_additive_floor(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / (np.abs(a) + np.abs(b) + 1e-8)))


def rel_loop(a, b):
    a, b = np.atleast_1d(np.asarray(a, float)).ravel(), np.atleast_1d(np.asarray(b, float)).ravel()
    worst = 0.0
    for u, v in zip(a, b):
        worst = max(worst, abs(u - v) / max(1e-8, abs(u) + abs(v)))
    return worst


# -- mlp_loss_and_grads --------------------------------------------------------

def mlp_layers(X, y, params, hidden_mask, p):
    """CS231n style: forward with caches, then backward layer by layer."""
    W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))
    a = X @ W1 + b1
    h = np.maximum(0, a)
    if hidden_mask is not None:
        hdrop = h * hidden_mask / (1 - p)
    else:
        hdrop = h
    scores = hdrop @ W2 + b2
    scores = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    N = X.shape[0]
    loss = -np.log(probs[np.arange(N), y]).sum() / N
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    dW2 = hdrop.T @ dscores
    db2 = dscores.sum(0)
    dhdrop = dscores @ W2.T
    dh = dhdrop * hidden_mask / (1 - p) if hidden_mask is not None else dhdrop
    da = dh.copy()
    da[a <= 0] = 0
    return loss, {"W1": X.T @ da, "b1": da.sum(0), "W2": dW2, "b2": db2}


def mlp_onehot(X, y, params, hidden_mask, p):
    """One-hot targets, keep-scale vector, einsum."""
    n, c = X.shape[0], params["b2"].shape[0]
    Y = np.eye(c)[y]
    z = np.einsum("nd,dh->nh", X, params["W1"]) + params["b1"]
    r = (z > 0).astype(float)
    scale = np.ones_like(z) if hidden_mask is None else np.broadcast_to(
        np.asarray(hidden_mask, float) / (1.0 - p), z.shape)
    hd = z * r * scale
    logits = hd @ params["W2"] + params["b2"]
    lse = np.log(np.sum(np.exp(logits - logits.max(1, keepdims=True)), 1)) + logits.max(1)
    loss = np.mean(lse - np.sum(Y * logits, 1))
    P = np.exp(logits - lse[:, None])
    d = (P - Y) / n
    dz = (d @ params["W2"].T) * scale * r
    return float(loss), {"W2": hd.T @ d, "b2": d.sum(0), "W1": X.T @ dz, "b1": dz.sum(0)}


def mlp_torch_autograd(X, y, params, hidden_mask, p):
    """Autograd on torch copies of the numpy arrays: also correct."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h = torch.relu(torch.as_tensor(X) @ t["W1"] + t["b1"])
    if hidden_mask is not None:
        h = h * torch.as_tensor(np.asarray(hidden_mask, dtype=np.float64)) / (1 - p)
    loss = torch.nn.functional.cross_entropy(h @ t["W2"] + t["b2"], torch.as_tensor(y))
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in t.items()}


# -- DropoutFunction -----------------------------------------------------------

class DropoutSaveScale(torch.autograd.Function):
    """Saves mask * 1/(1-p) as one tensor."""

    @staticmethod
    def forward(ctx, x, mask, p):
        scale = mask.to(x.dtype) / (1 - p)
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, grad_output):
        (scale,) = ctx.saved_tensors
        return grad_output * scale, None, None


class DropoutCtxAttributes(torch.autograd.Function):
    """Keeps mask and p as ctx attributes instead of save_for_backward."""

    @staticmethod
    def forward(ctx, x, mask, p):
        ctx.mask = mask
        ctx.keep = 1.0 - p
        return x.mul(mask).div(ctx.keep)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.mul(ctx.mask).div(ctx.keep), None, None


class DropoutWhere(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, p):
        keep = mask.bool()
        ctx.save_for_backward(keep)
        ctx.p = p
        return torch.where(keep, x / (1 - p), torch.zeros_like(x))

    @staticmethod
    def backward(ctx, grad_output):
        (keep,) = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.where(keep, grad_output / (1 - ctx.p), torch.zeros_like(grad_output))
        return grad_x, None, None


VARIANTS = {
    "dropout_backward": [("where", backward_where), ("cast mask", backward_cast_mask),
                         ("loop", backward_loop), ("boolean index", backward_boolean_index)],
    "numerical_gradient": [("cs231n nditer", numgrad_cs231n), ("add subtract in place", numgrad_add_subtract),
                           ("copies", numgrad_copies), ("two halves", numgrad_two_halves)],
    "relative_error": [("cs231n", rel_cs231n), ("global max", rel_global),
                       ("additive floor", rel_additive_floor), ("loop", rel_loop)],
    "mlp_loss_and_grads": [("layers", mlp_layers), ("one-hot einsum", mlp_onehot),
                           ("torch autograd", mlp_torch_autograd)],
    "DropoutFunction": [("save scale", DropoutSaveScale), ("ctx attributes", DropoutCtxAttributes),
                        ("where", DropoutWhere)],
}
