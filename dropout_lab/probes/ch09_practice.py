"""Probes for chapter 09, dropout in practice (see dropout_lab.probes).

torch is imported inside the probes only, so importing this module (every probe
module is imported together) stays cheap.

max_norm_ works in place, so its calls return what the function returned, the
weight tensor afterwards and whether the returned tensor is that weight.

mc_dropout_predict takes a real ``nn.Module``. Its probe builds small networks
(``ProbeNet``: Linear, an optional BatchNorm1d, ReLU, Dropout, Linear, the dropout
optionally inside an ``nn.Sequential``) whose ``forward`` is the ordinary one and
also writes down, for every call: the inputs, the dropout layer's input and
output, the logits, whether autograd was recording, and every module's training
flag. The log lives in a module-level table keyed by the network, so a student
who runs the passes on a ``copy.deepcopy`` of the model is logged too. A call
returns ``(mean_probs, entropy, log)``; the checks recompute every logged pass
from the network's weights (``"inputs"``), so the log cannot claim passes that
did not happen. torch's global generator (nn.Dropout draws from it) is seeded
before every call and restored when the probe ends.
"""
import contextlib
import itertools
import sys

import numpy as np

from . import child_seed, probe

# -- max_norm_ -----------------------------------------------------------------------------

#: (out_features, in_features) of the weights: square (a norm broadcast along the wrong
#: axis still runs there), wide and tall (rows and columns have different lengths).
MN_SHAPES = {"square": (6, 6), "wide": (4, 10), "tall": (10, 4)}
#: A row is long (projected) or short (left alone); norms relative to max_norm, never
#: closer to it than 20%, so no rounding decides which rows move.
MN_SHORT = (0.25, 0.8)
MN_LONG = (1.25, 3.0)

# -- dropout_ridge_solution ------------------------------------------------------------------

#: (N, d, p) of the central problems. p = 0.5 is avoided: there p/(1-p) = 1 = (1-p)/p,
#: and the mistakes "no p/(1-p)" and "p/(1-p) inverted" would look right.
RIDGE_CASES = ((30, 5, 0.2), (24, 4, 0.7), (40, 6, 0.35))
#: More features than examples: X^T X is singular, the dropout penalty is not.
RIDGE_WIDE = (6, 9, 0.4)

# -- mc_dropout_predict ----------------------------------------------------------------------

#: name -> (N, D, H, C, p, batchnorm, nested, confident) of the probe networks. The confident
#: network's output biases are 0, -400 and -1000: its softmax outputs underflow to exactly 0 in
#: float32 and in float64.
MC_NETS = {
    "plain": (8, 5, 12, 4, 0.3, False, False, False),
    "batchnorm": (9, 5, 10, 3, 0.4, True, False, False),
    "nested": (6, 4, 8, 3, 0.5, False, True, False),
    "confident": (5, 4, 6, 3, 0.2, False, False, True),
}
#: The confident network's output-bias offsets (in a random order).
CONFIDENT_GAPS = (0.0, -400.0, -1000.0)
#: key -> (network, n_samples, the mode the model is in when the call starts). "mixed" is a
#: model in training mode whose BatchNorm is frozen in eval mode (as when fine-tuning).
MC_CALLS = {
    "plain": ("plain", 8, "eval"),
    "plain from train mode": ("plain", 3, "train"),
    "batchnorm": ("batchnorm", 5, "eval"),
    "batchnorm from train mode": ("batchnorm", 4, "train"),
    "batchnorm mixed modes": ("batchnorm", 3, "mixed"),
    "nested dropout": ("nested", 4, "eval"),
    "confident": ("confident", 3, "eval"),
}


@contextlib.contextmanager
def _one_torch_thread():
    """torch on one thread while the probe runs (tiny tensors: many times faster on a busy machine),
    restored afterwards; nothing is imported for a function that never uses torch."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch is not None:
            torch.set_num_threads(threads)


# -- max_norm_ -----------------------------------------------------------------------------

def _rows(rng, shape, c, kinds):
    """A (out, in) weight whose row i has norm c * u with u drawn from MN_SHORT or MN_LONG
    as kinds[i] says ("short", "long" or "zero"), in a random direction."""
    W = rng.normal(size=shape)
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    for i, kind in enumerate(kinds):
        if kind == "zero":
            W[i] = 0.0
        else:
            W[i] *= c * rng.uniform(*(MN_LONG if kind == "long" else MN_SHORT))
    return W


def _kinds(rng, n):
    """Row kinds with at least two long and two short rows, in random order."""
    kinds = ["long", "long", "short", "short"] + list(rng.choice(["long", "short"], size=n - 4))
    return [kinds[i] for i in rng.permutation(n)]


def _run_max_norm(fn, values, c, dtype="float32", parameter=False):
    """(returned, weight afterwards, flags) of one call of fn. flags: the returned value
    is the weight (the same tensor or a view of all of it), the weight still requires
    grad, its .grad is unchanged (these two for a parameter only, else True)."""
    import torch

    if parameter:
        layer = torch.nn.Linear(values.shape[1], values.shape[0])
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(values))
        weight = layer.weight
        grad = torch.linspace(-1.0, 1.0, weight.numel()).reshape(weight.shape)
        weight.grad = grad.clone()
    else:
        weight = torch.tensor(values, dtype=getattr(torch, dtype))
    ptr = weight.data_ptr()
    out = fn(weight, c)
    same = out is weight or (isinstance(out, torch.Tensor) and out.data_ptr() == ptr
                             and tuple(out.shape) == tuple(weight.shape))
    flags = np.array([same,
                      bool(weight.requires_grad) if parameter else True,
                      bool(weight.grad is not None and torch.equal(weight.grad, grad)) if parameter else True])
    return out, weight.detach().clone(), flags


@probe("max_norm_")
def probe_max_norm(fn, rec, rng):
    weights = {}
    for key, shape in MN_SHAPES.items():
        c = float(rng.uniform(1.5, 4.0))
        weights[key] = (_rows(rng, shape, c, _kinds(rng, shape[0])), c)
    c = float(rng.uniform(1.5, 4.0))
    weights["parameter"] = (_rows(rng, (8, 6), c, _kinds(rng, 8)), c)
    c = float(rng.uniform(1.5, 4.0))
    weights["all short"] = (_rows(rng, (5, 7), c, ["short"] * 5), c)
    c = float(rng.uniform(1.5, 4.0))
    kinds = _kinds(rng, 6)
    kinds[int(rng.integers(0, 6))] = "zero"
    weights["zero row"] = (_rows(rng, (6, 5), c, kinds), c)
    with _one_torch_thread():
        for key in ("square", "wide"):
            rec.call(key, lambda W=weights[key]: _run_max_norm(fn, *W))
        rec.call("tall float64", lambda: _run_max_norm(fn, *weights["tall"], dtype="float64"))
        rec.call("parameter", lambda: _run_max_norm(fn, *weights["parameter"], parameter=True))
        rec.call("all short", lambda: _run_max_norm(fn, *weights["all short"]))
        rec.call("zero row", lambda: _run_max_norm(fn, *weights["zero row"]))
    rec.call("inputs", lambda: {k: {"W": W, "c": np.array(c)} for k, (W, c) in weights.items()})


# -- dropout_ridge_solution ------------------------------------------------------------------

def _regression(rng, n, d):
    """X (n, d) with column scales from 0.2 to 3 and two correlated columns, y = X w + noise."""
    Z = rng.normal(size=(n, d))
    Z[:, 1] = 0.6 * Z[:, 0] + 0.8 * Z[:, 1]
    X = Z * np.exp(rng.uniform(np.log(0.2), np.log(3.0), size=d))
    y = X @ rng.normal(size=d) + 0.3 * rng.normal(size=n)
    return X, y


@probe("dropout_ridge_solution")
def probe_dropout_ridge_solution(fn, rec, rng):
    problems = [(*_regression(rng, n, d), p) for n, d, p in RIDGE_CASES]
    n, d, p = RIDGE_WIDE
    wide = (*_regression(rng, n, d), p)
    X0, y0 = _regression(rng, 20, 4)
    X32, y32 = _regression(rng, 25, 4)
    with _one_torch_thread():
        for X, y, p in problems:
            rec.call(f"p={p}", fn, X.copy(), y.copy(), p)
        rec.call("p=0", fn, X0.copy(), y0.copy(), 0.0)
        rec.call("wide", fn, wide[0].copy(), wide[1].copy(), wide[2])
        rec.call("float32", fn, X32.astype(np.float32), y32.astype(np.float32), 0.3)
        rec.call("no in-place", fn, problems[0][0].copy(), problems[0][1].copy(), problems[0][2])
    rec.call("inputs", lambda: (*(a for X, y, _ in problems for a in (X, y)), *wide[:2], X0, y0, X32, y32))


# -- mc_dropout_predict ----------------------------------------------------------------------

#: Logs of the probe networks' forward calls, by network id (see the module docstring).
_LOGS: dict = {}
_NEXT_ID = itertools.count()
_NET_CLASS = None


def probe_net_class():
    """The ``ProbeNet`` class (built on first use, so importing this module needs no torch)."""
    global _NET_CLASS
    if _NET_CLASS is None:
        from torch import nn

        class ProbeNet(nn.Module):
            """x -> Linear -> BatchNorm1d (or nothing) -> ReLU -> Dropout -> Linear, logging every
            forward call; with ``nested`` the dropout and the last layer sit in an nn.Sequential."""

            def __init__(self, d, h, c, p, batchnorm=False, nested=False):
                super().__init__()
                self.fc1 = nn.Linear(d, h)
                self.norm = nn.BatchNorm1d(h) if batchnorm else nn.Identity()
                self.act = nn.ReLU()
                if nested:
                    self.head = nn.Sequential(nn.Dropout(p), nn.Linear(h, c))
                else:
                    self.drop = nn.Dropout(p)
                    self.fc2 = nn.Linear(h, c)
                self.nested = nested
                self.log_id = next(_NEXT_ID)

            def forward(self, x):
                import torch

                drop, last = (self.head[0], self.head[1]) if self.nested else (self.drop, self.fc2)
                pre = self.act(self.norm(self.fc1(x)))
                post = drop(pre)
                logits = last(post)
                log = _LOGS.get(self.log_id)
                if log is not None:
                    log.append(tuple(t.detach().to(torch.float64).clone() for t in (x, pre, post, logits))
                               + (torch.is_grad_enabled(), [m.training for m in self.modules()]))
                return logits

        _NET_CLASS = ProbeNet
    return _NET_CLASS


def _mc_net_values(rng, n, d, h, c, p, batchnorm, nested, confident):
    """The weights and inputs of one probe network, as numpy arrays. Hidden units have
    positive biases, so most of them are active on most inputs."""
    values = {"x": rng.normal(size=(n, d)).astype(np.float32),
              "W1": rng.normal(0.0, 1.0 / np.sqrt(d), size=(h, d)), "b1": rng.uniform(0.1, 0.6, size=h),
              "W2": rng.normal(0.0, 1.5 / np.sqrt(h), size=(c, h)), "b2": rng.normal(0.0, 0.3, size=c),
              "p": np.array(p)}
    if confident:
        values["b2"] = values["b2"] + rng.permutation(np.array(CONFIDENT_GAPS[:c]))
    if batchnorm:  # running statistics far from any batch's: batch statistics give other outputs
        values.update(gamma=rng.uniform(0.8, 1.5, size=h), beta=rng.uniform(0.2, 0.8, size=h),
                      running_mean=rng.normal(0.0, 0.8, size=h), running_var=rng.uniform(0.3, 3.0, size=h),
                      eps=np.array(1e-5))
    return values


def _build_net(values, batchnorm, nested):
    import torch

    h, d = values["W1"].shape
    c = values["W2"].shape[0]
    net = probe_net_class()(d, h, c, float(values["p"]), batchnorm, nested)
    last = net.head[1] if nested else net.fc2
    with torch.no_grad():
        net.fc1.weight.copy_(torch.as_tensor(values["W1"]))
        net.fc1.bias.copy_(torch.as_tensor(values["b1"]))
        last.weight.copy_(torch.as_tensor(values["W2"]))
        last.bias.copy_(torch.as_tensor(values["b2"]))
        if batchnorm:
            net.norm.weight.copy_(torch.as_tensor(values["gamma"]))
            net.norm.bias.copy_(torch.as_tensor(values["beta"]))
            net.norm.running_mean.copy_(torch.as_tensor(values["running_mean"]))
            net.norm.running_var.copy_(torch.as_tensor(values["running_var"]))
    return net


def _state(net) -> np.ndarray:
    """Every parameter and buffer of net, flattened into one float64 vector."""
    return np.concatenate([t.detach().double().reshape(-1).numpy() for t in net.state_dict().values()])


def _stack(items, width, i):
    import torch

    return torch.cat([it[i] for it in items]).numpy() if items else np.zeros((0, width))


def _run_mc(fn, values, batchnorm, nested, n_samples, mode, seed):
    """One call of fn on a fresh probe network in ``mode``; returns fn's result with the
    log appended when it is a pair, else fn's result itself."""
    import torch

    net = _build_net(values, batchnorm, nested)
    net.train(mode != "eval")
    if mode == "mixed":
        net.norm.eval()
    before = [m.training for m in net.modules()]
    state = _state(net)
    x = torch.as_tensor(values["x"])
    _LOGS[net.log_id] = []
    torch.default_generator.manual_seed(seed)  # nn.Dropout's generator (torch.manual_seed also seeds devices, slowly)
    try:
        result = fn(net, x.clone(), n_samples)
    finally:
        calls = _LOGS.pop(net.log_id)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return result
    d, h, c = values["W1"].shape[1], values["W1"].shape[0], values["W2"].shape[0]
    log = {"x": _stack(calls, d, 0), "pre": _stack(calls, h, 1), "post": _stack(calls, h, 2),
           "logits": _stack(calls, c, 3), "rows": np.array([len(it[0]) for it in calls], dtype=np.int64),
           "grad": np.array([it[4] for it in calls], dtype=bool),
           "modes": np.array([it[5] for it in calls], dtype=bool).reshape(len(calls), len(before)),
           "before": np.array(before), "after": np.array([m.training for m in net.modules()]),
           "state_changed": np.array(not np.array_equal(_state(net), state)),
           "requires_grad": np.array([bool(getattr(v, "requires_grad", False)) for v in result])}
    return result[0], result[1], log


@probe("mc_dropout_predict")
def probe_mc_dropout_predict(fn, rec, rng):
    import torch

    nets = {name: _mc_net_values(rng, *spec) for name, spec in MC_NETS.items()}
    seeds = {key: child_seed(rng) for key in MC_CALLS}
    saved = torch.random.get_rng_state()
    try:
        with _one_torch_thread():
            for key, (name, n_samples, mode) in MC_CALLS.items():
                batchnorm, nested = MC_NETS[name][5:7]
                rec.call(key, lambda: _run_mc(fn, nets[name], batchnorm, nested, n_samples, mode, seeds[key]))
    finally:
        torch.random.set_rng_state(saved)
    rec.call("inputs", lambda: nets)
