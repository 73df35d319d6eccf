"""Experiments behind chapter 08's figures (R-Drop).

Public code, and deliberately not a library of R-Drop losses: chapter 08's exercise notebook
asks students to write ``symmetric_kl``, ``rdrop_loss`` and ``rdrop_forward`` themselves, so
nothing here exposes a reusable function of logits that computes them. The R-Drop loss of
the experiments is written inline inside the private training loops
(:func:`_train_stacked`, :func:`_timed_epoch`); the worked examples
(:func:`padded_batch_example`, :func:`kl_direction`) draw their own fixed inputs and return
numbers, not functions.

Contents:

* :func:`train_rdrop_nets` trains 64-128-10 ReLU networks with dropout (p = 0.5) on the
  course's digits split, many at once as stacked weights: plain dropout, two passes without
  the KL term, and R-Drop at several alphas, three seeds each, and records on the test digits
  the full network's accuracy, one sub-network's accuracy, the agreement between two
  sub-networks and with the full network, and two KL divergences (sub vs sub, full vs sub).
* :func:`epoch_cpu_time` measures the CPU time of one training epoch for plain dropout and
  R-Drop (concatenated batch, and two forward calls) across hidden widths.
* Worked examples: the buggy README snippet (:data:`README_SNIPPET`,
  :func:`snippet_errors`), a pad mask that broadcasts along the wrong axis
  (:func:`mask_broadcast_demo`), the direction of ``F.kl_div`` and stable log-softmax
  (:func:`kl_direction`, :func:`log_softmax_demo`), a short padded batch
  (:func:`padded_batch_example`), the second-order approximation of the symmetric KL
  (:func:`second_order_check`), the masks of a concatenated batch (:func:`mask_overlap`) and
  what a concatenated batch changes for BatchNorm (:func:`batchnorm_concat`).

Every function is seeded and returns plain numbers or arrays; ``tests/test_claims_ch08_rdrop.py``
asserts each claim the page makes about them. Convention: ``p`` is the drop probability.
"""
from __future__ import annotations

from dropout_lab.experiments.threads import one_thread, single_threaded
import time
import warnings

import numpy as np

#: The network of the experiments: 64 inputs, one hidden ReLU layer, 10 classes.
HIDDEN = 128
#: Drop probability of the hidden layer.
P_DROP = 0.5
#: (name, forward passes per example, alpha). alpha multiplies the symmetric KL averaged over
#: the examples of a batch; the cross-entropy is averaged over the examples and the passes.
CONDITIONS = (
    ("plain dropout", 1, 0.0),
    ("two passes, alpha = 0", 2, 0.0),
    ("R-Drop, alpha = 0.3", 2, 0.3),
    ("R-Drop, alpha = 1", 2, 1.0),
    ("R-Drop, alpha = 3", 2, 3.0),
    ("R-Drop, alpha = 10", 2, 10.0),
)

#: The usage snippet of the official R-Drop README as it read from July 2021 to March 2022
#: (github.com/dropreg/R-Drop, commits a4864cd to 084365d), character for character.
README_SNIPPET = '''import torch.nn.functional as F

# define your task model, which outputs the classifier logits
model = TaskModel()

def compute_kl_loss(self, p, q pad_mask=None):
    
    p_loss = F.kl_div(F.log_softmax(p, dim=-1), F.softmax(q, dim=-1), reduction='none')
    q_loss = F.kl_div(F.log_softmax(q, dim=-1), F.softmax(p, dim=-1), reduction='none')
    
    # pad_mask is for seq-level tasks
    if pad_mask is not None:
        p_loss.masked_fill_(pad_mask, 0.)
        q_loss.masked_fill_(pad_mask, 0.)

    # You can choose whether to use function "sum" and "mean" depending on your task
    p_loss = p_loss.sum()
    q_loss = q_loss.sum()

    loss = (p_loss + q_loss) / 2
    return loss

# keep dropout and forward twice
logits = model(x)

logits2 = model(x)

# cross entropy loss for classifier
ce_loss = 0.5 * (cross_entropy_loss(logits, label) + cross_entropy_loss(logits2, label))

kl_loss = compute_kl_loss(logits, logits2)

# carefully choose hyper-parameters
loss = ce_loss + α * kl_loss
'''


def _one_thread():
    """torch and numpy's BLAS on one thread (see dropout_lab.experiments.threads)."""
    return one_thread(numpy_too=True)


#: Decorator: run a function inside :func:`_one_thread`.
_single_threaded = single_threaded(numpy_too=True)


_CACHE: dict = {}


def _digits():
    from dropout_lab.data import load_digits_split

    if "digits" not in _CACHE:
        _CACHE["digits"] = load_digits_split()
    return _CACHE["digits"]


# --------------------------------------------------------------------------------------
# The buggy README snippet and the pad mask that broadcasts along the wrong axis
# --------------------------------------------------------------------------------------

def snippet_errors() -> dict:
    """What Python says about :data:`README_SNIPPET`.

    Returns ``syntax`` (the SyntaxError's message and line number when the snippet is
    compiled as it stands), ``syntax_line`` (the offending line) and ``type_error`` (the
    TypeError raised when the comma is added and the function is called as the snippet
    calls it, ``compute_kl_loss(logits, logits2)``).
    """
    import torch
    import torch.nn.functional as F

    out = {}
    try:
        compile(README_SNIPPET, "README.md", "exec")
    except SyntaxError as err:
        out["syntax"] = f"SyntaxError: {err.msg} (line {err.lineno})"
        out["syntax_lineno"] = err.lineno
        out["syntax_line"] = README_SNIPPET.splitlines()[err.lineno - 1]
    fixed = README_SNIPPET.replace("q pad_mask", "q, pad_mask")
    start = fixed.index("def compute_kl_loss")
    stop = fixed.index("# keep dropout")
    namespace = {"F": F}
    exec(compile(fixed[start:stop], "README.md", "exec"), namespace)
    logits = torch.zeros(4, 10)
    try:
        namespace["compute_kl_loss"](logits, logits.clone())
    except TypeError as err:
        out["type_error"] = f"TypeError: {err}"
    return out


def mask_broadcast_demo(seed: int = 0, n_classes: int = 10) -> dict:
    """The snippet's ``masked_fill_(pad_mask, 0.)`` with a per-example mask of shape (N,).

    Two passes' logits (N, C) for a classification batch; the last three examples are to be
    ignored. ``kl_div(..., reduction='none')`` returns (N, C) and a mask of shape (N,)
    broadcasts against the LAST axis, the classes. With N == C (a batch of 10 digits) nothing
    fails and the wrong entries are zeroed; with N != C PyTorch raises. Returns ``right``
    (both directions summed over the 7 kept examples, halved, as the snippet's "sum"),
    ``wrong`` (the same total when the (N,) mask is given to masked_fill_), ``unmasked``
    (no mask at all) and ``error`` (the message for a batch of 12).
    """
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n_classes, n_classes, generator=g, dtype=torch.float64) * 2
    b = a + torch.randn(n_classes, n_classes, generator=g, dtype=torch.float64)
    ignore = torch.zeros(n_classes, dtype=torch.bool)
    ignore[-3:] = True

    def both(a, b):
        return (F.kl_div(F.log_softmax(a, -1), F.softmax(b, -1), reduction="none"),
                F.kl_div(F.log_softmax(b, -1), F.softmax(a, -1), reduction="none"))

    pa, qa = both(a, b)
    right = float((pa[~ignore].sum() + qa[~ignore].sum()) / 2)
    unmasked = float((pa.sum() + qa.sum()) / 2)
    pw, qw = both(a, b)
    pw.masked_fill_(ignore, 0.0)
    qw.masked_fill_(ignore, 0.0)
    wrong = float((pw.sum() + qw.sum()) / 2)
    big = torch.randn(12, n_classes, generator=g)
    pe, _ = both(big, big + 1)
    try:
        pe.masked_fill_(torch.zeros(12, dtype=torch.bool), 0.0)
        error = None
    except RuntimeError as err:
        error = str(err).splitlines()[0]
    return {"right": right, "wrong": wrong, "unmasked": unmasked, "error": error}


# --------------------------------------------------------------------------------------
# KL divergence: direction, stability, a padded batch
# --------------------------------------------------------------------------------------

def kl_direction(seed: int = 0) -> dict:
    """Which KL ``F.kl_div`` computes, for two fixed 4-class distributions P and Q.

    Returns ``kl_pq`` = KL(P||Q) and ``kl_qp`` = KL(Q||P) from explicit numpy sums, and what
    ``F.kl_div`` returns (reduction='sum') for ``(log Q, P)``, ``(log P, Q)``, ``(Q, P)``
    (probabilities passed where log-probabilities are expected) and ``(log P, log Q)`` with
    ``log_target=True``; ``jeffreys`` = KL(P||Q) + KL(Q||P) and ``jeffreys_identity`` =
    sum (P - Q)(log P - log Q). For a batch of 8 such pairs: ``batch_sum``, ``batch_mean``
    (reduction='mean', divides by 8 * 4 elements; ``mean_warning`` is the first sentence of the
    warning PyTorch gives for it, None if none) and ``batch_batchmean`` (divides by 8).
    """
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    zp = torch.randn(8, 4, generator=g, dtype=torch.float64) * 1.5
    zq = zp + torch.randn(8, 4, generator=g, dtype=torch.float64)
    lp, lq = F.log_softmax(zp, -1), F.log_softmax(zq, -1)
    P, Q = lp.exp(), lq.exp()
    p, q = P[0].numpy(), Q[0].numpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch_mean = float(F.kl_div(lq, P, reduction="mean"))
    mean_warning = str(caught[0].message).split(".")[0] if caught else None
    return {
        "P": p, "Q": q,
        "kl_pq": float(np.sum(p * (np.log(p) - np.log(q)))),
        "kl_qp": float(np.sum(q * (np.log(q) - np.log(p)))),
        "kl_div(logQ, P)": float(F.kl_div(lq[0], P[0], reduction="sum")),
        "kl_div(logP, Q)": float(F.kl_div(lp[0], Q[0], reduction="sum")),
        "kl_div(Q, P)": float(F.kl_div(Q[0], P[0], reduction="sum")),
        "kl_div(logP, logQ, log_target)": float(F.kl_div(lp[0], lq[0], reduction="sum", log_target=True)),
        "jeffreys": float(np.sum(p * (np.log(p) - np.log(q))) + np.sum(q * (np.log(q) - np.log(p)))),
        "jeffreys_identity": float(np.sum((p - q) * (np.log(p) - np.log(q)))),
        "batch_sum": float(F.kl_div(lq, P, reduction="sum")),
        "batch_mean": batch_mean,
        "mean_warning": mean_warning,
        "batch_batchmean": float(F.kl_div(lq, P, reduction="batchmean")),
    }


def log_softmax_demo(margin: float = 120.0) -> dict:
    """Why log-probabilities must come from ``log_softmax``, not from ``log(softmax(z))``.

    Pass 1 is confident, logits (0, ``margin``) in float32; pass 2 is not, logits (0, 0). In
    float32, softmax((0, 120)) underflows to (0, 1), so ``log(softmax)`` gives -inf and the
    KL divergences built from it are nan or inf; ``log_softmax`` gives (-120, 0). Returns both
    log-probability vectors of pass 1, KL(P1||P2), KL(P2||P1) and their average from each, the
    exact values (float64), and ``fp16_underflow``: the smallest of the margins 15, 15.5, ...,
    20 at which float16 softmax rounds the small probability to 0.
    """
    import torch
    import torch.nn.functional as F

    z1 = torch.tensor([0.0, margin])
    z2 = torch.tensor([0.0, 0.0])
    out = {}
    for name, logp in (("naive", lambda z: torch.log(torch.softmax(z, -1))),
                       ("stable", lambda z: F.log_softmax(z, -1)),
                       ("exact", lambda z: F.log_softmax(z.double(), -1))):
        l1, l2 = logp(z1), logp(z2)
        kl12 = float((l1.exp() * (l1 - l2)).sum())
        kl21 = float((l2.exp() * (l2 - l1)).sum())
        out[f"logp1_{name}"] = l1.tolist()
        out[f"kl12_{name}"], out[f"kl21_{name}"] = kl12, kl21
        out[f"sym_{name}"] = 0.5 * (kl12 + kl21)
    margins = np.arange(15.0, 20.01, 0.5)
    small = [float(torch.softmax(torch.tensor([0.0, m], dtype=torch.float16), -1)[0]) for m in margins]
    out["fp16_underflow"] = float(margins[[v == 0.0 for v in small].index(True)])
    return out


def padded_batch_example(lengths=(5, 3, 2), n_classes: int = 4, seed: int = 0) -> dict:
    """A short padded batch of sequences and the reductions of its symmetric KL.

    Three sequences of ``lengths`` padded to the longest; two passes' logits (N, T, C) are
    drawn for EVERY position (a model produces outputs at padded positions too). Returns
    ``pad`` (N, T) bool (True = padding, to be ignored), ``per_position`` (N, T): the
    symmetric KL 0.5 (KL(P1||P2) + KL(P2||P1)) summed over classes at each position, from
    explicit numpy sums, ``n_real`` (non-padded positions), and the reductions: ``sum``
    (non-padded positions), ``mean`` (``sum / n_real``), ``sum_ignoring_mask``,
    ``mean_ignoring_mask`` (over all N*T positions), ``elementwise_mean`` (the snippet's
    ``.mean()`` after ``masked_fill_``: ``sum / (N*T*C)``) and ``mean_wrong_count``
    (``sum`` divided by all N*T positions).
    """
    rng = np.random.default_rng(seed)
    N, T, C = len(lengths), max(lengths), n_classes
    z1 = rng.normal(0.0, 1.5, size=(N, T, C))
    z2 = z1 + rng.normal(0.0, 0.7, size=(N, T, C))

    def log_probs(z):
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    l1, l2 = log_probs(z1), log_probs(z2)
    kl12 = np.sum(np.exp(l1) * (l1 - l2), axis=-1)
    kl21 = np.sum(np.exp(l2) * (l2 - l1), axis=-1)
    per_position = 0.5 * (kl12 + kl21)
    pad = np.arange(T)[None, :] >= np.asarray(lengths)[:, None]
    n_real = int((~pad).sum())
    total = float(per_position[~pad].sum())
    return {
        "lengths": tuple(lengths), "pad": pad, "per_position": per_position, "n_real": n_real,
        "N": N, "T": T, "C": C, "logits1": z1, "logits2": z2,
        "sum": total, "mean": total / n_real,
        "sum_ignoring_mask": float(per_position.sum()),
        "mean_ignoring_mask": float(per_position.mean()),
        "elementwise_mean": total / (N * T * C),
        "mean_wrong_count": total / (N * T),
    }


@_single_threaded
def second_order_check(ps=(0.05, 0.1, 0.2, 0.5), n_digits: int = 100, n_pairs: int = 2000,
                       seed: int = 0) -> dict:
    """Symmetric KL between two dropout passes vs its quadratic approximation tr(F Cov).

    A linear softmax layer z = W^T (x * m / (1 - p)) on ``n_digits`` test digits, W (64, 10)
    Gaussian with standard deviation 0.3 (seeded), inverted dropout with drop probability p
    on the 64 inputs. ``mc`` (len(ps),): the symmetric KL 0.5 (KL(P1||P2) + KL(P2||P1)) of
    two independent masks, averaged over ``n_pairs`` pairs and the digits; ``quad``: the
    average of tr(F Cov(z)) with F = diag(pi) - pi pi^T at pi = softmax(W^T x) and
    Cov(z) = W^T diag(x^2 p / (1 - p)) W (exact for this layer). ``ratio`` = mc / quad.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    X = torch.tensor(_digits().X_test[:n_digits], dtype=torch.float64)
    W = torch.randn(64, 10, generator=g, dtype=torch.float64) * 0.3
    pi = (X @ W).softmax(-1)
    Fisher = torch.diag_embed(pi) - pi[:, :, None] * pi[:, None, :]
    mc, quad = [], []
    chunk = 250
    for p in ps:
        cov = torch.einsum("ik,kc,kd->icd", X ** 2 * p / (1 - p), W, W)
        quad.append(float((Fisher * cov).sum((-1, -2)).mean()))
        total = 0.0
        for _ in range(n_pairs // chunk):
            m1 = (torch.rand(chunk, *X.shape, generator=g, dtype=torch.float64) >= p) / (1 - p)
            m2 = (torch.rand(chunk, *X.shape, generator=g, dtype=torch.float64) >= p) / (1 - p)
            l1 = ((m1 * X) @ W).log_softmax(-1)
            l2 = ((m2 * X) @ W).log_softmax(-1)
            total += float((0.5 * ((l1.exp() - l2.exp()) * (l1 - l2)).sum(-1)).sum())
        mc.append(total / (chunk * (n_pairs // chunk) * len(X)))
    mc, quad = np.array(mc), np.array(quad)
    return {"ps": np.asarray(ps), "mc": mc, "quad": quad, "ratio": mc / quad}


# --------------------------------------------------------------------------------------
# One forward on the concatenated batch: masks and BatchNorm
# --------------------------------------------------------------------------------------

@_single_threaded
def mask_overlap(p: float = P_DROP, batch: int = 500, width: int = 128, seed: int = 0) -> dict:
    """The masks torch's dropout draws for the two halves of ``cat([h, h])``.

    ``h`` is all ones (batch, width); the mask of each half is read off the output. Returns
    the fractions of units ``kept_both``, ``dropped_both`` and ``differ`` (kept in exactly one
    half), to compare with (1-p)^2, p^2 and 2p(1-p); ``kept_each`` (per half) and
    ``identical_rows`` (rows whose two masks coincide entirely).
    """
    import torch
    import torch.nn.functional as F

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = F.dropout(torch.ones(2 * batch, width), p, training=True)
    m1, m2 = out[:batch] > 0, out[batch:] > 0
    return {
        "kept_both": float((m1 & m2).float().mean()), "dropped_both": float((~m1 & ~m2).float().mean()),
        "differ": float((m1 ^ m2).float().mean()),
        "kept_each": (float(m1.float().mean()), float(m2.float().mean())),
        "identical_rows": int((m1 == m2).all(dim=1).sum()), "p": p,
    }


@_single_threaded
def batchnorm_concat(batch: int = 16, width: int = 8, p: float = P_DROP, seed: int = 0) -> dict:
    """What a BatchNorm layer sees when R-Drop's two passes run as one concatenated batch.

    Before any dropout, ``cat([x, x])`` has the same batch mean and the same biased variance
    as ``x`` (``max_mean_diff``, ``max_var_diff``), but one training step updates the running
    statistics ONCE instead of twice (``tracked_two_calls``, ``tracked_concat``) and the
    unbiased correction uses 2B - 1 instead of B - 1 (``running_var_ratio``: running variance
    after one concatenated step over one step of a separate call, from the same start).
    After a dropout layer, Linear -> dropout (explicit masks) -> BatchNorm: ``coupling_concat``
    is the largest change of the FIRST half's output when only the SECOND half's mask is
    redrawn (non-zero: each pass is normalised with statistics of both); ``coupling_two_calls``
    is the same for two separate calls and ``coupling_no_bn`` for the concatenated batch
    without BatchNorm (both exactly 0).
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, width, generator=g)
    bn_a, bn_b = torch.nn.BatchNorm1d(width), torch.nn.BatchNorm1d(width)
    xx = torch.cat([x, x])
    out = {
        "max_mean_diff": float((xx.mean(0) - x.mean(0)).abs().max()),
        "max_var_diff": float((xx.var(0, unbiased=False) - x.var(0, unbiased=False)).abs().max()),
    }
    bn_a.train()
    bn_b.train()
    bn_a(x)
    bn_b(xx)
    first_step_ratio = (bn_b.running_var - 0.9) / (bn_a.running_var - 0.9)   # both start at 1
    bn_a(x)
    out.update({
        "tracked_two_calls": int(bn_a.num_batches_tracked), "tracked_concat": int(bn_b.num_batches_tracked),
        "running_var_ratio": float(first_step_ratio.mean()),
        "expected_ratio": (2 * batch / (2 * batch - 1)) / (batch / (batch - 1)),
    })

    lin = torch.nn.Linear(width, width)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(width, width, generator=g) / np.sqrt(width))
        lin.bias.zero_()
    bn = torch.nn.BatchNorm1d(width).train()

    def mask(n):
        return (torch.rand(n, width, generator=g) >= p).float() / (1 - p)

    m1, m2, m2_new = mask(batch), mask(batch), mask(batch)
    with torch.no_grad():
        h = lin(x)
        a = bn(torch.cat([h * m1, h * m2]))[:batch]
        b = bn(torch.cat([h * m1, h * m2_new]))[:batch]
        c1, c2 = bn(h * m1), bn(h * m1)
        n1 = torch.cat([h * m1, h * m2])[:batch]
        n2 = torch.cat([h * m1, h * m2_new])[:batch]
    out.update({
        "coupling_concat": float((a - b).abs().max()),
        "coupling_two_calls": float((c1 - c2).abs().max()),
        "coupling_no_bn": float((n1 - n2).abs().max()),
    })
    return out


# --------------------------------------------------------------------------------------
# Training: plain dropout vs R-Drop on digits, many networks at once
# --------------------------------------------------------------------------------------

def _stacked_init(seeds, n_conditions, sizes):
    """Weights like ``nn.Linear`` (uniform in +-1/sqrt(fan_in)), one set per seed, repeated for
    every condition (so the conditions of a seed start from the same weights). Stacked
    (n_conditions * len(seeds), ...), condition-major."""
    import torch

    params = []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = torch.empty(len(seeds), fan_in, fan_out), torch.empty(len(seeds), 1, fan_out)
        bound = 1.0 / np.sqrt(fan_in)
        for s, seed in enumerate(seeds):
            g = torch.Generator().manual_seed(1000 * int(seed) + layer)
            W[s] = (2 * torch.rand(fan_in, fan_out, generator=g) - 1) * bound
            b[s] = (2 * torch.rand(1, fan_out, generator=g) - 1) * bound
        params.append(W.repeat(n_conditions, 1, 1).requires_grad_(True))
        params.append(b.repeat(n_conditions, 1, 1).requires_grad_(True))
    return params


def _train_stacked(conditions, seeds, hidden, p, epochs, batch_size, lr, eval_every, n_pairs, torch_seed):
    """Train one 64-hidden-10 network per (condition, seed), all at once, and evaluate.

    Every network does ONE forward call per step on its minibatch concatenated with itself
    (2B rows, a fresh dropout mask for every row), so the two halves are two passes with
    independent masks. Its loss, written out here: with log-probabilities l1, l2 of the two
    halves and the mean cross-entropies ce1, ce2 over the B examples,

    * one pass (plain dropout): ce1 (the second half gets no gradient);
    * two passes: 0.5 (ce1 + ce2) + alpha * mean over the B examples of
      0.5 * sum_c (P1 - P2)(log P1 - log P2), the symmetric KL.

    Losses of different networks are summed; Adam is elementwise, so this is the same as
    training each network alone. Networks of one seed share their initial weights and the
    order of their minibatches. Evaluation on the 400 test digits every ``eval_every`` epochs.
    """
    import torch
    import torch.nn.functional as F

    d = _digits()
    X = torch.tensor(d.X_train, dtype=torch.float32)
    y = torch.tensor(d.y_train)
    Xt = torch.tensor(d.X_test, dtype=torch.float32)
    yt = torch.tensor(d.y_test)
    n_cond, n_seeds = len(conditions), len(seeds)
    S = n_cond * n_seeds
    two = torch.tensor([float(c[1] == 2) for c in conditions for _ in seeds])
    alpha = torch.tensor([float(c[2]) for c in conditions for _ in seeds])
    W1, b1, W2, b2 = _stacked_init(seeds, n_cond, (X.shape[1], hidden, 10))
    opt = torch.optim.Adam([W1, b1, W2, b2], lr=lr)
    n = len(y)
    steps = n // batch_size
    B = batch_size

    def forward(x, train):
        h = torch.relu(torch.baddbmm(b1, x, W1))
        if train:
            h = F.dropout(h, p, training=True)
        return torch.baddbmm(b2, h, W2)

    keys = ("acc_full", "acc_sub", "agree_pair", "agree_full", "symkl_sub", "kl_full_sub",
            "train_ce_full", "train_acc_full")
    evals = []
    records = {k: [] for k in keys}

    def evaluate():
        with torch.no_grad():
            xt = Xt.expand(S, -1, -1)
            full = forward(xt, False)
            lf = full.log_softmax(-1)
            pred_f = full.argmax(-1)
            acc_sub, agree_pair, agree_full, symkl, klfs = (torch.zeros(S) for _ in range(5))
            for _ in range(n_pairs):
                za, zb = forward(xt, True), forward(xt, True)
                la, lb = za.log_softmax(-1), zb.log_softmax(-1)
                pa, pb = za.argmax(-1), zb.argmax(-1)
                acc_sub += 0.5 * ((pa == yt).float().mean(1) + (pb == yt).float().mean(1))
                agree_pair += (pa == pb).float().mean(1)
                agree_full += 0.5 * ((pa == pred_f).float().mean(1) + (pb == pred_f).float().mean(1))
                symkl += (0.5 * ((la.exp() - lb.exp()) * (la - lb)).sum(-1)).mean(1)
                klfs += 0.5 * ((lf.exp() * (lf - la)).sum(-1).mean(1) + (lf.exp() * (lf - lb)).sum(-1).mean(1))
            full_train = forward(X.expand(S, -1, -1), False)
            ce_train = -full_train.log_softmax(-1).gather(-1, y.expand(S, -1)[..., None]).squeeze(-1).mean(1)
            values = {
                "acc_full": (pred_f == yt).float().mean(1), "acc_sub": acc_sub / n_pairs,
                "agree_pair": agree_pair / n_pairs, "agree_full": agree_full / n_pairs,
                "symkl_sub": symkl / n_pairs, "kl_full_sub": klfs / n_pairs,
                "train_ce_full": ce_train, "train_acc_full": (full_train.argmax(-1) == y).float().mean(1),
            }
        for k in keys:
            records[k].append(values[k].double().numpy().reshape(n_cond, n_seeds))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed)
        evaluate()
        evals.append(0)
        for epoch in range(epochs):
            orders = []
            for seed in seeds:
                g = torch.Generator().manual_seed(100_000 * int(seed) + epoch)
                orders.append(torch.randperm(n, generator=g))
            orders = torch.stack(orders).repeat(n_cond, 1)          # (S, n): shared within a seed
            for k in range(steps):
                idx = orders[:, k * B:(k + 1) * B]
                xb, yb = X[idx], y[idx]
                z = forward(torch.cat([xb, xb], dim=1), True)          # (S, 2B, 10)
                l1, l2 = z[:, :B].log_softmax(-1), z[:, B:].log_softmax(-1)
                ce1 = -l1.gather(-1, yb[..., None]).squeeze(-1).mean(1)
                ce2 = -l2.gather(-1, yb[..., None]).squeeze(-1).mean(1)
                sym = (0.5 * ((l1.exp() - l2.exp()) * (l1 - l2)).sum(-1)).mean(1)
                loss = two * (0.5 * (ce1 + ce2) + alpha * sym) + (1 - two) * ce1
                opt.zero_grad()
                loss.sum().backward()
                opt.step()
            if (epoch + 1) % eval_every == 0:
                evaluate()
                evals.append(epoch + 1)
    out = {k: np.stack(v, axis=-1) for k, v in records.items()}           # (n_cond, n_seeds, n_evals)
    out["epochs"] = np.array(evals)
    return out


def train_rdrop_nets(conditions=CONDITIONS, seeds=range(3), hidden: int = HIDDEN, p: float = P_DROP,
                     epochs: int = 50, batch_size: int = 50, lr: float = 2e-3, eval_every: int = 5,
                     n_pairs: int = 10, torch_seed: int = 0) -> dict:
    """Plain dropout vs R-Drop on the course's digits split.

    One 64-``hidden``-10 ReLU network with dropout (drop probability ``p``) on the hidden
    layer per (condition, seed) of ``conditions`` (see :data:`CONDITIONS`), trained with Adam
    (``lr``) on the 1000 training digits for ``epochs`` epochs of minibatches of
    ``batch_size``. Every ``eval_every`` epochs (and before training) the 400 test digits are
    evaluated; with ``n_pairs`` pairs of independent dropout masks per digit. Returns
    ``names``, ``alphas``, ``passes``, ``epochs`` (the evaluation epochs) and arrays of shape
    (len(conditions), len(seeds), len(epochs)):

    * ``acc_full``: test accuracy of the full network (no dropout, the inference network);
    * ``acc_sub``: test accuracy of one sub-network (dropout on), averaged over masks;
    * ``agree_pair``: fraction of test digits on which two sub-networks pick the same class;
    * ``agree_full``: fraction on which a sub-network picks the full network's class;
    * ``symkl_sub``: symmetric KL 0.5 (KL(P1||P2) + KL(P2||P1)) between two sub-networks
      (nats, mean over test digits);
    * ``kl_full_sub``: KL(P_full || P_sub) (nats, mean over test digits and masks);
    * ``train_ce_full``, ``train_acc_full``: the full network on the training digits.

    Cached per arguments within a process (callers must not modify the arrays).
    """
    conditions = tuple(tuple(c) for c in conditions)
    seeds = tuple(int(s) for s in seeds)
    key = ("rdrop", conditions, seeds, hidden, p, epochs, batch_size, lr, eval_every, n_pairs, torch_seed)
    if key not in _CACHE:
        with _one_thread():
            out = _train_stacked(conditions, seeds, hidden, p, epochs, batch_size, lr, eval_every,
                                 n_pairs, torch_seed)
        out.update({"names": [c[0] for c in conditions], "passes": np.array([c[1] for c in conditions]),
                    "alphas": np.array([c[2] for c in conditions]), "seeds": seeds})
        _CACHE[key] = out
    return _CACHE[key]


# --------------------------------------------------------------------------------------
# Cost: CPU time per epoch
# --------------------------------------------------------------------------------------

def _timed_epoch(model, opt, X, y, order, batch_size, mode, alpha):
    """CPU time (s, this thread) of one epoch of minibatch training.

    ``mode`` "plain": cross-entropy of one pass. "concat": one call on ``cat([x, x])``, split
    into halves; "two calls": two calls on ``x``. Both R-Drop modes use
    0.5 (ce1 + ce2) + alpha * mean over the batch of 0.5 sum_c (P1 - P2)(log P1 - log P2)."""
    import torch
    import torch.nn.functional as F

    B = batch_size
    start = time.thread_time()
    for k in range(len(y) // B):
        idx = order[k * B:(k + 1) * B]
        xb, yb = X[idx], y[idx]
        if mode == "plain":
            loss = F.cross_entropy(model(xb), yb)
        else:
            if mode == "concat":
                z = model(torch.cat([xb, xb]))
                z1, z2 = z[:B], z[B:]
            else:
                z1, z2 = model(xb), model(xb)
            l1, l2 = z1.log_softmax(-1), z2.log_softmax(-1)
            loss = (0.5 * (F.nll_loss(l1, yb) + F.nll_loss(l2, yb))
                    + alpha * (0.5 * ((l1.exp() - l2.exp()) * (l1 - l2)).sum(-1)).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.thread_time() - start


TIMING_MODES = ("plain", "concat", "two calls")


@_single_threaded
def epoch_cpu_time(widths=(32, 128, 512, 2048), repeats: int = 5, batch_size: int = 50,
                   p: float = P_DROP, alpha: float = 1.0, seed: int = 0) -> dict:
    """CPU time of one training epoch (1000 digits) for plain dropout and R-Drop, per width.

    For each hidden width, three ``nn.Sequential`` networks 64-width-10 (Linear, ReLU,
    Dropout(p), Linear; Adam) are trained for ``repeats`` + 1 epochs, the three modes of
    :func:`_timed_epoch` interleaved epoch by epoch on the same minibatch order; the first
    epoch is a warm-up and is dropped. Times are ``time.thread_time`` on one thread, i.e. the
    CPU time of this process's work, which other processes on the machine hardly disturb.
    Returns ``widths`` and, per mode, an array (len(widths), repeats) in milliseconds.
    """
    import torch
    from torch import nn

    d = _digits()
    X = torch.tensor(d.X_train, dtype=torch.float32)
    y = torch.tensor(d.y_train)
    out = {m: np.zeros((len(widths), repeats)) for m in TIMING_MODES}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, width in enumerate(widths):
            runs = {}
            for mode in TIMING_MODES:
                torch.manual_seed(seed)
                net = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Dropout(p), nn.Linear(width, 10))
                runs[mode] = (net, torch.optim.Adam(net.parameters(), lr=1e-3))
            g = torch.Generator().manual_seed(seed + i)
            for r in range(repeats + 1):
                order = torch.randperm(len(y), generator=g)
                for mode in TIMING_MODES:
                    t = _timed_epoch(*runs[mode], X, y, order, batch_size, mode, alpha)
                    if r > 0:
                        out[mode][i, r - 1] = 1000 * t
    out["widths"] = np.asarray(widths)
    return out
