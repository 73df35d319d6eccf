"""Probes for chapter 08, R-Drop (see dropout_lab.probes).

``symmetric_kl`` and ``rdrop_loss`` are called on pairs of logits drawn from ``rng``:
classification batches (N, C) and padded batches of sequences (N, T, C), in float64 and
float32. Each call returns the value and, for one classification and one sequence call, the
gradient of the value with respect to both logits (computed here with ``torch.autograd.grad``),
so that the grader sees whether the loss can be trained with. At padded positions the logits are redrawn with a larger spread:
whatever the model outputs there is meaningless, and a mask that is ignored or counted
wrongly changes the value a lot.

Two shapes are chosen so that a mask broadcast along the wrong axis runs WITHOUT an error,
as it does in the snippet the chapter dissects: a classification batch with N == C and a
per-example mask (N,) (applied to the element-wise KL (N, C) it hides classes), and a
sequence batch with N == T == C (a mask (N, T) applied to (N, T, C) lines up with (T, C)).
The same square batch makes ``F.cross_entropy`` on (N, T, C) logits without moving the
class axis run silently (it reads T as the classes).

``rdrop_forward`` gets a small designed model, :func:`probe_net` (D -> H -> C with a ReLU and
dropout), in training mode. Like ``nn.Dropout`` its dropout draws from torch's global
generator, which the probe seeds right before each call (and restores afterwards, so grading
leaves the notebook's random state alone). It draws each ROW's mask in turn, so the masks depend
only on a row's position in the stream of rows the model has seen: one call on ``cat([x, x])``
and two calls on ``x`` see exactly the same masks, and the outputs tell which rows went where.
Two passes that share one mask (the random state reset between two calls) give equal halves. A *coupled* variant subtracts
the batch mean of the hidden layer in training mode, as BatchNorm's centring does, so its
output depends on which rows share a call: there, one call on the concatenated batch and
two calls differ. torch is imported inside the functions only (every probe module is
imported together).
"""
import contextlib
import functools

import numpy as np

from . import child_seed, probe
from ..experiments.threads import one_thread

# -- symmetric_kl ---------------------------------------------------------------------------------

#: (N, C) of the classification batch without a pad mask.
KL_CLS = (7, 5)
#: N = C of the classification batch with a per-example pad mask of shape (N,).
KL_SQUARE = 6
#: (N, T, C) of the padded sequence batch (T != C).
KL_SEQ = (3, 5, 4)
#: N = T = C of the square padded sequence batch.
KL_SEQ_SQUARE = 4
#: (N, T, C) of a sequence batch without a mask, and a 4-d batch (N, T1, T2, C) with one.
KL_PLAIN = (2, 3, 4)
KL_4D = (2, 3, 2, 5)
#: (N, C) of the stability call (float32), and the logit gap planted in some of its rows:
#: log(softmax(z)) underflows to -inf in float32 from a gap of about 104 on.
KL_STABLE = (5, 4)
STABLE_GAP = 150.0

# -- rdrop_loss -------------------------------------------------------------------------------------

#: (N, C) classification, (N, T, C) padded sequences (T != C), N = T = C square, no mask.
LOSS_CLS = (6, 4)
LOSS_SEQ = (3, 4, 5)
LOSS_SQUARE = 4
LOSS_PLAIN = (2, 3, 4)
#: alphas of the calls beside alpha = 0 (never 1: alpha on the wrong term would not show).
LOSS_ALPHAS = (0.3, 2.5)

# -- rdrop_forward ------------------------------------------------------------------------------------

#: Batch B, inputs D, hidden H, classes C of the probe models, the time steps T of the
#: sequence input, and the drop probability of their dropout. The hidden biases (2 to 3)
#: keep every ReLU active, so that each dropped unit changes the output: two passes of one
#: example then coincide only if their masks do, with probability (p**2 + (1-p)**2)**H per
#: row, 0.52**8 = 5e-3 here, and a mistake goes unseen only if that happens on every row
#: of a call.
NET_B, NET_D, NET_H, NET_C = 4, 5, 8, 3
NET_T = 2
NET_P = 0.4


# -- helpers ----------------------------------------------------------------------------------------

def _pair(rng, shape, pad=None):
    """Two related logit arrays of ``shape``: the second is the first plus noise, so the two
    distributions differ by a realistic amount and KL(P||Q) != KL(Q||P). Positions that
    ``pad`` marks get unrelated logits of a larger spread."""
    a = rng.normal(0.0, 1.5, size=shape)
    b = a + rng.normal(0.0, 1.0, size=shape)
    if pad is not None:
        a[pad] = rng.normal(0.0, 4.0, size=a[pad].shape)
        b[pad] = rng.normal(0.0, 4.0, size=b[pad].shape)
    return a, b


def _counts_ok(pad, n) -> bool:
    """The counts a mistaken reduction divides by must not coincide with the right one: some
    padding, some real positions, as many real as padded positions never, and neither count
    equal to the batch size n (else a mean over the batch, or a division by the number of
    padded positions, would equal the right mean)."""
    n_pad = int(pad.sum())
    return 0 < n_pad < pad.size and 2 * n_pad != pad.size and n_pad != n and pad.size - n_pad != n


def _sequence_pad(rng, n, t):
    """Pad mask (n, t), True after each sequence's end: lengths in 1..t, not all equal (so a
    mean per sequence differs from the mean over positions), one of them at least 2."""
    while True:
        lengths = rng.integers(1, t + 1, size=n)
        pad = np.arange(t)[None, :] >= lengths[:, None]
        if len(set(lengths.tolist())) > 1 and lengths.max() >= 2 and _counts_ok(pad, n):
            return pad


def _example_pad(rng, n, k):
    """Pad mask (n,) with k padded examples."""
    pad = np.zeros(n, dtype=bool)
    pad[rng.choice(n, size=k, replace=False)] = True
    return pad


def _random_pad(rng, shape):
    """A pad mask of ``shape`` with about a third padded (see :func:`_counts_ok`)."""
    while True:
        pad = rng.random(shape) < 0.35
        if _counts_ok(pad, shape[0]):
            return pad


def _with_gradients(out, leaves, gradients=True):
    """What a call returned, with the gradient of it with respect to each leaf.

    A one-element tensor that requires grad gives ``(value, grad of leaf 0, grad of leaf 1)``
    (a None gradient for a leaf it does not depend on); any other tensor or number gives
    ``(value, None, None)``: no gradient flows. None stays None. With ``gradients`` False the
    gradients are not computed (None): only some calls' gradients are checked."""
    import torch

    if out is None:
        return None
    if isinstance(out, torch.Tensor):
        if gradients and out.requires_grad and out.numel() == 1:
            grads = torch.autograd.grad(out.reshape(()), leaves, allow_unused=True)
            return (out.detach(), *[None if g is None else g.detach() for g in grads])
        return (out.detach(), *[None] * len(leaves))
    return (out, *[None] * len(leaves))


def _logits(a, dtype):
    """(leaf, logits): a leaf tensor that requires grad and the logits handed to the function,
    a non-leaf copy of it, as a model's output is (so that an in-place change of the logits
    runs, as it would in training, instead of raising)."""
    import torch

    leaf = torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True)
    return leaf, leaf.clone()


def _kl_run(fn, a, b, pad=None, reduction=None, dtype="float64", gradients=False):
    """``fn(a, b[, pad_mask][, reduction=...])``, with the gradients of its value if asked."""
    import torch

    (la, ta), (lb, tb) = _logits(a, dtype), _logits(b, dtype)
    args = (ta, tb) if pad is None else (ta, tb, torch.tensor(pad))
    kwargs = {} if reduction is None else {"reduction": reduction}
    return _with_gradients(fn(*args, **kwargs), (la, lb), gradients)


def _loss_run(fn, a, b, targets, alpha, pad=None, dtype="float64", gradients=False):
    """``fn(logits1, logits2, targets, alpha[, pad_mask=...])``, with the gradients if asked."""
    import torch

    (la, ta), (lb, tb) = _logits(a, dtype), _logits(b, dtype)
    kwargs = {} if pad is None else {"pad_mask": torch.tensor(pad)}
    return _with_gradients(fn(ta, tb, torch.tensor(targets), alpha, **kwargs), (la, lb), gradients)


def _named(**groups):
    """One dict of the probe's inputs for the "inputs" call: ``name.i`` -> the i-th array of
    the group ``name`` (a recording holds at most 16 values per call, a dict up to 64)."""
    return {f"{name}.{i}": np.asarray(v) for name, group in groups.items() for i, v in enumerate(group)}


def _tensors(*arrays, dtype="float64"):
    import torch

    return tuple(torch.tensor(a, dtype=getattr(torch, dtype)) for a in arrays)


# -- symmetric_kl --------------------------------------------------------------------------------

@probe("symmetric_kl")
def probe_symmetric_kl(fn, rec, rng):
    with one_thread():  # tiny tensors: torch's thread pool costs milliseconds per call on a busy machine
        _symmetric_kl_calls(fn, rec, rng)


def _symmetric_kl_calls(fn, rec, rng):
    cls = _pair(rng, KL_CLS)
    square_pad = _example_pad(rng, KL_SQUARE, 2)
    square = _pair(rng, (KL_SQUARE, KL_SQUARE), square_pad)
    seq_pad = _sequence_pad(rng, *KL_SEQ[:2])
    seq = _pair(rng, KL_SEQ, seq_pad)
    sq_pad = _sequence_pad(rng, KL_SEQ_SQUARE, KL_SEQ_SQUARE)
    seq_square = _pair(rng, (KL_SEQ_SQUARE,) * 3, sq_pad)
    plain = _pair(rng, KL_PLAIN)
    pad4 = _random_pad(rng, KL_4D[:-1])
    four = _pair(rng, KL_4D, pad4)
    stable = _pair(rng, KL_STABLE)
    rows = rng.choice(KL_STABLE[0], size=2, replace=False)
    stable[0][rows, rng.integers(0, KL_STABLE[1], size=2)] += STABLE_GAP
    stable = tuple(s.astype(np.float32) for s in stable)

    rec.call("classification", lambda: _kl_run(fn, *cls, gradients=True))
    rec.call("classification sum", lambda: _kl_run(fn, *cls, reduction="sum"))
    rec.call("sequences, no mask", lambda: _kl_run(fn, *plain))
    rec.call("classification, (N,) mask, N = C", lambda: _kl_run(fn, *square, square_pad))
    rec.call("sequences, mask", lambda: _kl_run(fn, *seq, seq_pad, gradients=True))
    rec.call("sequences, mask, N = T = C", lambda: _kl_run(fn, *seq_square, sq_pad))
    rec.call("sequences, mask, float32", lambda: _kl_run(fn, *seq, seq_pad, dtype="float32"))
    rec.call("sequences, mask, sum", lambda: _kl_run(fn, *seq, seq_pad, reduction="sum"))
    rec.call("4-d, mask, sum", lambda: _kl_run(fn, *four, pad4, reduction="sum"))
    rec.call("4-d, mask, mean", lambda: _kl_run(fn, *four, pad4, reduction="mean"))
    rec.call("large logit gaps, float32", lambda: _kl_run(fn, *stable, dtype="float32"))
    import torch

    rec.call("no in-place", fn, *_tensors(*seq), torch.tensor(seq_pad))
    rec.call("inputs", lambda: _named(cls=cls, square=(*square, square_pad), seq=(*seq, seq_pad),
                                      seq_square=(*seq_square, sq_pad), plain=plain, four=(*four, pad4),
                                      stable=stable))


# -- rdrop_loss ------------------------------------------------------------------------------------

@probe("rdrop_loss")
def probe_rdrop_loss(fn, rec, rng):
    with one_thread():  # tiny tensors: torch's thread pool costs milliseconds per call on a busy machine
        _rdrop_loss_calls(fn, rec, rng)


def _rdrop_loss_calls(fn, rec, rng):
    def labelled(shape, pad=None):
        a, b = _pair(rng, shape, pad)
        return a, b, rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int64)

    cls = labelled(LOSS_CLS)
    seq_pad = _sequence_pad(rng, *LOSS_SEQ[:2])
    seq = labelled(LOSS_SEQ, seq_pad)
    sq_pad = _sequence_pad(rng, LOSS_SQUARE, LOSS_SQUARE)
    square = labelled((LOSS_SQUARE,) * 3, sq_pad)
    plain = labelled(LOSS_PLAIN)
    cls32 = labelled(LOSS_CLS)

    for alpha in (0.0, *LOSS_ALPHAS):
        rec.call(f"classification alpha={alpha}",
                 lambda alpha=alpha: _loss_run(fn, *cls, alpha, gradients=alpha == LOSS_ALPHAS[0]))
    for alpha in (0.0, LOSS_ALPHAS[0]):
        rec.call(f"sequences, mask alpha={alpha}",
                 lambda alpha=alpha: _loss_run(fn, *seq, alpha, seq_pad, gradients=alpha == LOSS_ALPHAS[0]))
        rec.call(f"sequences, mask, N = T = C alpha={alpha}",
                 lambda alpha=alpha: _loss_run(fn, *square, alpha, sq_pad))
        rec.call(f"sequences, no mask alpha={alpha}", lambda alpha=alpha: _loss_run(fn, *plain, alpha))
        rec.call(f"float32 alpha={alpha}", lambda alpha=alpha: _loss_run(fn, *cls32, alpha, dtype="float32"))
    import torch

    rec.call("no in-place", fn, *_tensors(*seq[:2]), torch.tensor(seq[2]), LOSS_ALPHAS[0], torch.tensor(seq_pad))
    rec.call("inputs", lambda: _named(classification=cls, sequences_mask=(*seq, seq_pad),
                                      sequences_square=(*square, sq_pad), sequences_plain=plain, float32=cls32))


# -- rdrop_forward -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def probe_net_class():
    """The class of the probe models (defined on first use, so that importing this module
    does not import torch)."""
    import torch

    class ProbeNet(torch.nn.Module):
        """x (..., D) -> relu(x @ W1 + b1) -> dropout(p) -> [minus the batch mean] -> @ W2 + b2.

        In training mode the dropout mask of each row (a slice along the first axis) is drawn
        in turn from torch's global generator, as nn.Dropout draws; with ``couple`` the hidden
        layer then has its mean over the rows of the call subtracted, as BatchNorm centres with
        batch statistics. In eval mode nothing is dropped and nothing is subtracted."""

        def __init__(self, W1, b1, W2, b2, p, couple=False):
            super().__init__()
            self.W1, self.b1, self.W2, self.b2 = (torch.nn.Parameter(torch.tensor(v, dtype=torch.float32))
                                                  for v in (W1, b1, W2, b2))
            self.p = float(p)
            self.couple = bool(couple)

        def forward(self, x):
            h = torch.relu(x @ self.W1 + self.b1)
            if self.training:
                rows = [torch.rand(h.shape[1:]) >= self.p for _ in range(h.shape[0])]
                h = h * torch.stack(rows).to(h.dtype) / (1.0 - self.p)
                if self.couple:
                    h = h - h.mean(dim=0, keepdim=True)
            return h @ self.W2 + self.b2

    return ProbeNet


def probe_net(spec, couple=False):
    """A fresh probe model in training mode from ``spec`` = (W1, b1, W2, b2, seed)."""
    W1, b1, W2, b2, _ = spec
    return probe_net_class()(W1, b1, W2, b2, NET_P, couple).train()


@contextlib.contextmanager
def seeded(spec):
    """torch's global generator seeded with the spec's seed for the block, restored afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(spec[4]))
        yield


def _net_spec(rng):
    return (rng.normal(0.0, 0.15, size=(NET_D, NET_H)), rng.uniform(2.0, 3.0, size=NET_H),
            rng.normal(0.0, 0.8, size=(NET_H, NET_C)), rng.normal(0.0, 0.3, size=NET_C), child_seed(rng))


def _detached(out):
    """What rdrop_forward returned, with tensors detached (the count and kinds kept)."""
    import torch

    def one(v):
        return v.detach() if isinstance(v, torch.Tensor) else v

    if isinstance(out, (tuple, list)):
        return tuple(one(v) for v in out)
    return one(out)


def _forward_run(fn, spec, x, couple=False):
    import torch

    model, xt = probe_net(spec, couple), torch.tensor(x, dtype=torch.float32)
    with seeded(spec):
        return _detached(fn(model, xt))


def _forward_gradient(fn, spec, x, weights):
    """The gradient of sum(weights * (logits1 + logits2)) with respect to W1 and W2 (flattened),
    or None when no gradient reaches the model."""
    import torch

    model = probe_net(spec)
    with seeded(spec):
        out = fn(model, torch.tensor(x, dtype=torch.float32))
    if out is None:
        return None
    l1, l2 = out
    if not (isinstance(l1, torch.Tensor) and isinstance(l2, torch.Tensor)):
        return None
    w = torch.tensor(weights, dtype=torch.float32)
    total = (w * l1).sum() + (w * l2).sum()
    if not total.requires_grad:
        return None
    grads = torch.autograd.grad(total, (model.W1, model.W2), allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(t)).reshape(-1)
                      for g, t in zip(grads, (model.W1, model.W2))])


def _mode_after(fn, spec, x):
    import torch

    model = probe_net(spec)
    with seeded(spec):
        fn(model, torch.tensor(x, dtype=torch.float32))
    return bool(model.training)


@probe("rdrop_forward")
def probe_rdrop_forward(fn, rec, rng):
    import torch

    with one_thread(), torch.random.fork_rng(devices=[]):   # the notebook's random state is left alone
        _rdrop_forward_calls(fn, rec, rng)


def _rdrop_forward_calls(fn, rec, rng):
    specs = [_net_spec(rng) for _ in range(4)]
    x = rng.normal(size=(NET_B, NET_D))
    xs = rng.normal(size=(NET_B - 1, NET_T, NET_D))
    weights = rng.normal(size=(NET_B, NET_C))
    rec.call("batch", lambda: _forward_run(fn, specs[0], x))
    rec.call("sequences", lambda: _forward_run(fn, specs[1], xs))
    rec.call("coupled batch", lambda: _forward_run(fn, specs[2], x, couple=True))
    rec.call("coupled sequences", lambda: _forward_run(fn, specs[3], xs, couple=True))
    rec.call("gradient", lambda: _forward_gradient(fn, specs[0], x, weights))
    rec.call("mode after", lambda: _mode_after(fn, specs[0], x))
    import torch

    torch.manual_seed(int(specs[1][4]))
    rec.call("no in-place", fn, probe_net(specs[1]), torch.tensor(xs, dtype=torch.float32))
    rec.call("inputs", lambda: _named(x=(x,), xs=(xs,), weights=(weights,),
                                      **{f"spec{i}": spec for i, spec in enumerate(specs)}))
