"""Hidden reference for chapter 05, backprop through masks. Never shipped to students."""
import numpy as np
import torch


def dropout_backward(dout, mask, p):
    return dout * mask / (1.0 - p)


def numerical_gradient(f, x, h=1e-5):
    x = np.array(x, dtype=np.float64, copy=True)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        f_plus = float(f(x))
        x[idx] = old - h
        f_minus = float(f(x))
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2.0 * h)
    return grad


def relative_error(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def mlp_loss_and_grads(X, y, params, hidden_mask, p):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = X.shape[0]
    z = X @ W1 + b1
    h = np.maximum(z, 0.0)
    if hidden_mask is not None:
        scale = np.asarray(hidden_mask, dtype=np.float64) / (1.0 - p)
        hd = h * scale
    else:
        scale = None
        hd = h
    logits = hd @ W2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(n), y].mean())
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), y] -= 1.0
    dlogits /= n
    grads = {"W2": hd.T @ dlogits, "b2": dlogits.sum(axis=0)}
    dhd = dlogits @ W2.T
    dh = dhd * scale if scale is not None else dhd
    dz = dh * (z > 0)
    grads["W1"] = X.T @ dz
    grads["b1"] = dz.sum(axis=0)
    return loss, grads


class DropoutFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, p):
        ctx.save_for_backward(mask)
        ctx.p = p
        return x * mask / (1.0 - p)

    @staticmethod
    def backward(ctx, grad_output):
        (mask,) = ctx.saved_tensors
        return grad_output * mask / (1.0 - ctx.p), None, None
