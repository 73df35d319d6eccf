"""Three suspects for chapter 05's gradient-check bug hunt.

Each has the interface of ``mlp_loss_and_grads(X, y, params, hidden_mask, p) -> (loss,
grads)`` and returns the *correct* loss with gradients that carry one planted mistake
(which one is for the student to find with ``numerical_gradient``). The gradients come
from torch autograd on a graph whose backward path has been altered; no hand-written
backward pass of the network appears here.

Shapes: X (N, D) float64, y (N,) int, params {"W1" (D, H), "b1" (H,), "W2" (H, C),
"b2" (C,)}, hidden_mask (N, H) or (H,) of 0/1 or bool, or None for no dropout.
"""
from __future__ import annotations

import numpy as np
import torch

_fresh_masks = np.random.default_rng(2024)


def _graph(X, y, params, hidden_mask, p, dropout):
    """Build loss = CE(relu(X W1 + b1) -> dropout -> W2, b2) with ``dropout(h, scale)``
    deciding how the hidden layer is masked; returns (loss, tensors, z, h_dropped)."""
    T = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in params.items()}
    z = torch.tensor(np.asarray(X, dtype=np.float64)) @ T["W1"] + T["b1"]
    h = torch.relu(z)
    if hidden_mask is None:
        scale = torch.ones_like(h)
    else:
        scale = torch.as_tensor(np.broadcast_to(np.asarray(hidden_mask, dtype=np.float64), h.shape) / (1 - p))
    h_dropped = dropout(h, scale)
    logits = h_dropped @ T["W2"] + T["b2"]
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(np.asarray(y), dtype=torch.long))
    return loss, T, z, h_dropped


def _result(loss, T, override=None):
    loss.backward()
    grads = {k: t.grad.numpy().copy() for k, t in T.items()}
    grads.update(override or {})
    return float(loss.detach()), grads


def suspect_a(X, y, params, hidden_mask, p):
    loss, T, z, h_dropped = _graph(X, y, params, hidden_mask, p, lambda h, s: h * s)
    upstream, = torch.autograd.grad(loss, h_dropped, retain_graph=True)
    db1 = (upstream * (z > 0)).sum(0).detach().numpy()
    return _result(loss, T, {"b1": db1})


def suspect_b(X, y, params, hidden_mask, p):
    keep = 1.0 - p

    def forward_scaled_backward_not(h, s):
        unscaled = h * (s * keep)
        return unscaled + (h * s - unscaled).detach()

    return _result(*_graph(X, y, params, hidden_mask, p, forward_scaled_backward_not)[:2])


def suspect_c(X, y, params, hidden_mask, p):
    def other_mask_backward(h, s):
        if hidden_mask is None:
            return h
        other = torch.as_tensor((_fresh_masks.random(h.shape) >= p) / (1 - p))
        return h * other + (h * s - h * other).detach()

    return _result(*_graph(X, y, params, hidden_mask, p, other_mask_backward)[:2])


SUSPECTS = {"A": suspect_a, "B": suspect_b, "C": suspect_c}
