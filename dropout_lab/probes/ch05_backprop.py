"""Probes for chapter 05, backprop through masks (see dropout_lab.probes).

torch is imported inside the DropoutFunction probe only, so importing this
module (every probe module is imported together) stays cheap.
"""
import numpy as np

from . import child_seed, probe  # noqa: F401

#: Drop probabilities the backward passes are probed with.
BACKWARD_PS = (0.0, 0.2, 0.5, 0.8)
#: Step sizes numerical_gradient is probed with besides its default: 1e-2 is large
#: enough that forward differences (error O(h)) and central ones (error O(h^2)) differ.
LARGE_H = 1e-2
#: Relative differences used by the relative_error probes.
REL_EPS = (1e-7, 1e-3, 0.5)
#: Shapes of the MLP probe: batch N, inputs D, hidden H, classes C.
MLP_SHAPE = (12, 6, 10, 4)
#: Drop probabilities of the DropoutFunction probe.
FUNCTION_PS = (0.0, 0.2, 0.5, 0.75)


# -- dropout_backward ----------------------------------------------------------

@probe("dropout_backward")
def probe_dropout_backward(fn, rec, rng):
    dout = rng.normal(size=(30, 40))
    masks = {}
    for p in BACKWARD_PS:
        mask = rng.random(dout.shape) >= p
        masks[p] = mask
        rec.call(f"bool mask p={p}", fn, dout.copy(), mask.copy(), p)
    fmask = (rng.random(dout.shape) >= 0.5).astype(np.float64)
    rec.call("float mask p=0.5", fn, dout.copy(), fmask.copy(), 0.5)
    d3 = rng.normal(size=(3, 4, 5))
    m3 = rng.random(d3.shape) >= 0.3
    rec.call("3-d p=0.3", fn, d3.copy(), m3.copy(), 0.3)
    d32 = dout[:10].astype(np.float32)
    rec.call("float32 p=0.5", fn, d32.copy(), masks[0.5][:10].copy(), 0.5)
    rec.call("inputs", lambda: (dout, np.stack([masks[p] for p in BACKWARD_PS]), fmask, d3, m3, d32))


# -- numerical_gradient --------------------------------------------------------

def _gradient_run(fn, f, x, **kwargs):
    """Call fn on a copy of x; return the gradient and the copy afterwards (to see
    whether x was left unchanged, allowing last-bit drift from += h; -= h)."""
    xc = x.copy()
    grad = fn(f, xc, **kwargs)
    return grad, xc


@probe("numerical_gradient")
def probe_numerical_gradient(fn, rec, rng):
    # f1 on a vector: non-separable (every output of A @ x mixes all entries) plus a cubic.
    A = rng.normal(size=(3, 6))
    c = rng.normal(size=3)
    x1 = rng.normal(size=6)

    def f1(x):
        return np.sum(np.tanh(A @ x + c)) + 0.3 * np.sum(x ** 3)

    # f2 on a matrix: it needs x's shape (x @ B) and has a large third derivative.
    B = rng.normal(size=(4, 2))
    x2 = rng.normal(size=(3, 4))

    def f2(x):
        return np.sum(np.sin(x @ B)) + 0.5 * np.sum(x ** 3) + np.sum(x[0] * x[-1])

    rec.call("f1 default h", lambda: _gradient_run(fn, f1, x1))
    rec.call("f2 default h", lambda: _gradient_run(fn, f2, x2))
    rec.call(f"f1 h={LARGE_H}", lambda: _gradient_run(fn, f1, x1, h=LARGE_H))
    rec.call(f"f2 h={LARGE_H}", lambda: _gradient_run(fn, f2, x2, h=LARGE_H))
    rec.call("inputs", lambda: (x1, x2))


# -- relative_error ------------------------------------------------------------

def _agreeing_pair(rng, shape, eps):
    """(a, b) with b = a * (1 + eps * t), t in [0, 1] and t = 1 where |a| is largest.

    The elementwise reading max_i |a_i-b_i| / max(1e-8, |a_i|+|b_i|) and the
    global reading max|a-b| / max(1e-8, max(|a|+|b|)) give the same number here,
    both eps / (2 + eps), so either is accepted."""
    a = rng.normal(size=shape)
    t = rng.random(size=shape)
    t.flat[np.argmax(np.abs(a))] = 1.0
    return a, a * (1.0 + eps * t)


@probe("relative_error")
def probe_relative_error(fn, rec, rng):
    for eps in REL_EPS:
        a, b = _agreeing_pair(rng, (25,), eps)
        rec.call(f"vector eps={eps}", fn, a, b)
    a, b = _agreeing_pair(rng, (4, 5), 1e-4)
    rec.call("matrix", fn, a, b)
    rec.call("matrix swapped", fn, b.copy(), a.copy())
    s = float(rng.uniform(0.5, 3.0))
    rec.call("scalars", fn, s, s * (1 + 2e-6))
    rec.call("equal", fn, a.copy(), a.copy())
    # Values far below the 1e-8 floor: the floor makes the error tiny (2e-4), not 0.5.
    rec.call("tiny values", fn, np.array([1e-12]), np.array([3e-12]))
    rec.call("all zeros", fn, np.zeros(6), np.zeros(6))
    a, b = _agreeing_pair(rng, (12,), 1e-3)
    zero = rng.random(12) < 0.5
    zero[np.argmax(np.abs(a))] = False
    a[zero] = 0.0
    b[zero] = 0.0
    rec.call("some zeros", fn, a, b)


# -- mlp_loss_and_grads --------------------------------------------------------

def _params_copy(params):
    return {k: v.copy() for k, v in params.items()}


@probe("mlp_loss_and_grads")
def probe_mlp_loss_and_grads(fn, rec, rng):
    n, d, h, c = MLP_SHAPE
    X = rng.normal(size=(n, d))
    y = rng.integers(0, c, size=n)
    params = {"W1": rng.normal(0, 0.7, size=(d, h)), "b1": rng.normal(0, 0.5, size=h),
              "W2": rng.normal(0, 0.7, size=(h, c)), "b2": rng.normal(0, 0.3, size=c)}
    mask_b = rng.random((n, h)) >= 0.5
    mask_f = (rng.random((n, h)) >= 0.2).astype(np.float64)
    mask_h = (rng.random(h) >= 0.5).astype(np.float64)
    mask_h[:2] = (0.0, 1.0)  # at least one unit dropped and one kept for the whole batch
    rec.call("no dropout", fn, X.copy(), y.copy(), _params_copy(params), None, 0.0)
    rec.call("mask None p=0.5", fn, X.copy(), y.copy(), _params_copy(params), None, 0.5)
    rec.call("bool mask (N,H) p=0.5", fn, X.copy(), y.copy(), _params_copy(params), mask_b.copy(), 0.5)
    rec.call("float mask (N,H) p=0.2", fn, X.copy(), y.copy(), _params_copy(params), mask_f.copy(), 0.2)
    rec.call("mask (H,) p=0.5", fn, X.copy(), y.copy(), _params_copy(params), mask_h.copy(), 0.5)

    def params_after():
        pc = _params_copy(params)
        fn(X.copy(), y.copy(), pc, mask_b.copy(), 0.5)
        return pc

    rec.call("params after", params_after)
    rec.call("inputs", lambda: params)


# -- DropoutFunction -----------------------------------------------------------

def _apply_and_backprop(fn, x, mask, p, g, dtype=None, mask_requires_grad=False):
    """(out, grad_x, grad_mask) of ``fn.apply(x, mask, p)`` backpropagating g."""
    import torch

    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    mt = torch.tensor(mask, dtype=torch.bool if mask.dtype == np.bool_ else dtype)
    if mask_requires_grad:
        mt.requires_grad_(True)
    out = fn.apply(xt, mt, p)
    out.backward(torch.tensor(g, dtype=out.dtype))
    return out.detach(), xt.grad, mt.grad if mask_requires_grad else None


def _forward_only(fn, x, mask, p, dtype):
    """``fn.apply(x, mask, p)`` without backpropagating: forward is graded on
    its own, so a correct forward earns its points while backward is a stub."""
    import torch

    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    return fn.apply(xt, torch.tensor(mask, dtype=dtype), p).detach()


def _gradcheck(fn, x, mask, p):
    import torch

    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    mt = torch.tensor(mask, dtype=torch.float64)
    return bool(torch.autograd.gradcheck(lambda t: fn.apply(t, mt, p), (xt,), raise_exception=False))


@probe("DropoutFunction")
def probe_dropout_function(fn, rec, rng):
    import torch

    x = rng.normal(size=(6, 8))
    g = rng.normal(size=(6, 8))
    masks = []
    for p in FUNCTION_PS:
        mask = (rng.random(x.shape) >= p).astype(np.float64)
        masks.append(mask)
        rec.call(f"forward p={p}", lambda: _forward_only(fn, x, mask, p, torch.float64))
        rec.call(f"float64 p={p}", lambda: _apply_and_backprop(fn, x, mask, p, g, torch.float64))
    mask_b = rng.random(x.shape) >= 0.5
    rec.call("bool mask p=0.5", lambda: _apply_and_backprop(fn, x, mask_b, 0.5, g, torch.float64))
    rec.call("float32 p=0.5", lambda: _apply_and_backprop(fn, x, masks[2], 0.5, g, torch.float32))
    rec.call("mask requires grad", lambda: _apply_and_backprop(fn, x, masks[2], 0.5, g, torch.float64,
                                                               mask_requires_grad=True))
    xs = rng.normal(size=(3, 4))
    ms = (rng.random(xs.shape) >= 0.4).astype(np.float64)
    ms.flat[:2] = (0.0, 1.0)
    rec.call("gradcheck", lambda: _gradcheck(fn, xs, ms, 0.4))
    rec.call("inputs", lambda: (x, g, np.stack(masks), mask_b))
