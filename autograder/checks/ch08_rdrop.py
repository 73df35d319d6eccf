"""Checks for chapter 08, R-Drop.

Everything here is deterministic, so there is no statistical check and no false-failure
bound to state: the logits, targets and pad masks are inputs drawn by the probe
(dropout_lab/probes/ch08_rdrop.py), and the dropout masks of ``rdrop_forward``'s probe models
come from torch's generator seeded by the probe right before each call. Values are compared, to float tolerance (relative 1e-6 in
float64, 1e-4 in float32), with closed forms computed here in float64 from the probe's
inputs; gradients with the hidden reference's, computed by the same probe in the grader.

Mistakes are named by computing, on the same hidden inputs, what each known mistake returns
(never shown): KL(P||Q) or KL(Q||P) alone (the direction of ``F.kl_div``), no 0.5, halved
twice, probabilities passed where ``F.kl_div`` wants log-probabilities, a mean over
elements (positions times classes), over the batch only, or a sum; the pad mask ignored,
inverted, counted wrongly (all positions, or the padded ones) or broadcast against the class
axis; a 'sum' that includes padded positions. For ``rdrop_loss``: the cross-entropy of one
pass, both without the 0.5, summed over positions, averaged per sequence, with the pad mask
ignored, or with ``F.cross_entropy`` reading T as the class axis; alpha on the cross-entropy,
alpha missing, the KL summed. For ``rdrop_forward`` a small model is rebuilt here and run the
mistaken ways: eval mode, one half returned twice, rows split by parity, the copies
interleaved, the copies concatenated along time, the model called twice.

Gating and weights (autograder/POLICY.md); the shares below are held by the mutant corpus
(tests/corpus/ch08_rdrop_mutants.py):

* symmetric_kl, 14: central are the value without a mask (4), the pad mask in the mean (3)
  and the 'sum' reduction (2), the last two gated by the first; the gradient flowing into
  both logits (3), finite and right for logit gaps of 150 in float32 (1), a 0-d tensor and
  the logits unmodified (1, peripheral). A wrong KL (one direction, no 0.5, probabilities in
  kl_div, a mean over elements) keeps nothing; the mask ignored, inverted or broadcast along
  the classes keeps 4/14; a mean over all positions 6/14; a 'sum' over padded positions too
  7/14; .item() (no gradient, a float) 10/14; one side detached 11/14; log(softmax) 13/14.
* rdrop_loss, 11: central are the cross-entropy part (alpha = 0: the mean of the two passes'
  cross-entropies over the real positions, 4) and the KL part (the change of the loss from
  alpha = 0 to alpha is alpha times the symmetric KL averaged over the real positions, 4),
  each read on its own, so a loss with one part right keeps that part; gradients (2) and a 0-d
  tensor with inputs unmodified (1, peripheral). One pass's cross-entropy, a summed, unmasked or
  per-sequence cross-entropy keep 4/11 (the wrong class axis, which raises on most shapes,
  nothing); a summed or unmasked KL 4/11; alpha on the cross-entropy or alpha missing nothing;
  .item() 8/11; a detached KL term 9/11.
* rdrop_forward, 11: central are the two halves of the model's output on cat([x, x]) on a
  model whose rows do not interact (3; either order) and, gated by it, ONE call on the
  concatenated batch, read on a model that centres its hidden layer with the batch mean as
  BatchNorm does (4); logits1 the first half (1), gradients reaching the model (1), the model
  left in training mode (1), two tensors returned and x unmodified (1, peripheral), these four
  gated by the halves only. Two calls keep 7/11; the halves swapped 10/11; torch.no_grad()
  10/11; eval mode, one half twice, rows split by parity or interleaved copies nothing.

Can a mistake pass by chance? Only where its value coincides with the right one on the probe's
inputs. For the KL and the loss the probe keeps the counts apart (padded, real and batch counts
never equal, sequences of different lengths), and tests/test_checks_ch08_rdrop.py holds every
named mistake at least 10 times the float64 tolerance away on 40 probe seeds. For
``rdrop_forward``, every hidden unit of the probe models is active, so two rows' outputs
coincide only if their masks do: probability (p**2 + (1-p)**2)**H = 0.52**8 per pair of rows.
A mistake of the halves or of the call count goes unseen only if the masks it confuses coincide
on every pair of rows of both calls of a check (4 in the batch call, 3 x 2 positions in the
sequence call): 0.52**(8 * 10) < 1e-22. (python -c "print(0.52 ** 80)" gives 1.9e-23.)
"""
import numpy as np

from dropout_lab.experiments.threads import one_thread
from dropout_lab.probes.ch08_rdrop import (KL_4D, KL_SEQ, KL_SEQ_SQUARE, KL_SQUARE, LOSS_ALPHAS, STABLE_GAP, probe_net,
                                           seeded)

from .base import Checker, CheckFailed, as_float_array, fmt

RTOL64, ATOL64 = 1e-6, 1e-9
RTOL32, ATOL32 = 1e-4, 1e-6


def _close(got, want, float32=False) -> bool:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    rtol, atol = (RTOL32, ATOL32) if float32 else (RTOL64, ATOL64)
    return got.shape == want.shape and bool(np.all(np.isfinite(got))) and \
        bool(np.allclose(got, want, rtol=rtol, atol=atol))


def _log_softmax(z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _is_tensor(output) -> bool:
    return output.is_torch


def _scalar(c: Checker, key: str, name: str, positions=None) -> float:
    """The one number a loss call returned (its value; the gradients come after it)."""
    value, *_ = c.outputs(key, n=3)
    arr = as_float_array(value, "value")
    if arr.size != 1:
        extra = ""
        if positions is not None and tuple(arr.shape) == tuple(positions):
            extra = ": one value per position; reduce them to one number (the mean over the real positions)"
        raise CheckFailed(f"{name} must return one number (a 0-d tensor) for the whole batch; yours has shape "
                          f"{tuple(arr.shape)}{extra}")
    return float(arr.reshape(-1)[0])


def _gradients(c: Checker, key: str, side="student"):
    _, g1, g2 = c.outputs(key, n=3, side=side)
    return (None if g1 is None else as_float_array(g1, "gradient"),
            None if g2 is None else as_float_array(g2, "gradient"))


NO_GRADIENT = ("no gradient flows from your value to the logits: did you call .item(), .detach() or numpy, wrap the "
               "computation in torch.no_grad(), or build a new tensor with torch.tensor(...)? The loss is "
               "backpropagated, so compute it with torch operations on the logits themselves")


def _gradient_problem(got, want, names) -> str | None:
    """None when the gradients ``got`` (a pair) equal ``want``; otherwise a message."""
    if got[0] is None and got[1] is None:
        return NO_GRADIENT
    for g, w, name, other in ((got[0], want[0], names[0], names[1]), (got[1], want[1], names[1], names[0])):
        if g is None:
            return (f"no gradient reaches {name}: is it detached (.detach(), .data)? Both passes are trained: the "
                    f"gradient flows into {name} as into {other}")
        if not _close(g, w, float32=True):
            return (f"the gradient with respect to {name} is not the gradient of your value: is part of the "
                    "computation detached (.detach(), .data, torch.no_grad())? R-Drop lets the gradient flow "
                    "through both distributions, neither is a fixed target")
    return None


def _require_gradients(c: Checker, keys, names) -> None:
    """The gradients of the calls ``keys`` are the reference's (``names`` of the two logits)."""
    for key in keys:
        problem = _gradient_problem(_gradients(c, key), _gradients(c, key, "reference"), names)
        if problem:
            raise CheckFailed(problem)


def _require_loss_tensor(c: Checker, key: str, name: str, use: str, in_place: str) -> None:
    """The call ``key`` returned a 0-d torch tensor, and the "no in-place" call changed nothing."""
    out = c.raw_outputs(key)[0]
    c.require(_is_tensor(out), f"{name} must return a torch tensor (0-d), {use}; yours returned a {out.type}")
    c.require(tuple(out.shape or ()) == (), f"{name} must return a 0-d tensor, like F.cross_entropy; yours has "
                                            f"shape {tuple(out.shape)}")
    c.outputs("no in-place")
    c.require(not c.mutated("no in-place"), in_place)


# -- symmetric_kl ------------------------------------------------------------------------------

def _kl_terms(a, b):
    """(elementwise KL(P||Q) terms, elementwise KL(Q||P) terms, P, Q, log P, log Q)."""
    lp, lq = _log_softmax(a), _log_softmax(b)
    P, Q = np.exp(lp), np.exp(lq)
    return P * (lp - lq), Q * (lq - lp), P, Q, lp, lq


def _reduce(per, real, reduction):
    total = float(per[real].sum())
    return total if reduction == "sum" else total / int(real.sum())


def _sym_kl(a, b, pad=None, reduction="mean") -> float:
    e_pq, e_qp, *_ = _kl_terms(a, b)
    per = 0.5 * (e_pq + e_qp).sum(axis=-1)
    real = np.ones(per.shape, dtype=bool) if pad is None else ~np.asarray(pad, dtype=bool)
    return _reduce(per, real, reduction)


def _kl_mistakes(a, b, pad, reduction) -> list:
    """(value, message) of the recognisable mistakes on these inputs, most specific first."""
    e_pq, e_qp, P, Q, lp, lq = _kl_terms(a, b)
    kl_pq, kl_qp = e_pq.sum(-1), e_qp.sum(-1)
    sym = 0.5 * (kl_pq + kl_qp)
    positions = sym.shape
    real = np.ones(positions, dtype=bool) if pad is None else ~np.asarray(pad, dtype=bool)
    n_real, n_all, n_cls = int(real.sum()), sym.size, a.shape[-1]
    total = float(sym[real].sum())

    def red(per):
        return _reduce(per, real, reduction)

    formula = [
        (red(kl_pq), "your value is KL(P||Q) alone, one direction: the symmetric KL averages KL(P||Q) and "
                     "KL(Q||P) (P = softmax(logits_p), Q = softmax(logits_q))"),
        (red(kl_qp), "your value is KL(Q||P) alone, one direction (note that F.kl_div(F.log_softmax(p), "
                     "F.softmax(q)) is KL(Q||P): the distribution whose log you pass comes SECOND in the KL): the "
                     "symmetric KL averages both directions"),
        (red(kl_pq + kl_qp), "your value is twice the symmetric KL: did you forget the 0.5? (KL(P||Q) + KL(Q||P) "
                             "is Jeffreys' divergence; this chapter's symmetric KL is half of it)"),
        (red(0.25 * (kl_pq + kl_qp)), "your value is half the symmetric KL: there is one factor 0.5, not two"),
        (red(0.5 * ((Q * (lq - P)).sum(-1) + (P * (lp - Q)).sum(-1))),
         "you passed PROBABILITIES where F.kl_div expects log-probabilities (its first argument, input): "
         "F.kl_div(input, target) computes target * (log(target) - input); take F.log_softmax of the logits"),
        (red((P * (lp - Q)).sum(-1)), "you passed probabilities where F.kl_div expects log-probabilities, and kept "
                                      "only one direction"),
        (red((Q * (lq - P)).sum(-1)), "you passed probabilities where F.kl_div expects log-probabilities, and kept "
                                      "only one direction"),
    ]
    out = []
    if reduction == "mean":
        out += [
            (total / (n_real * n_cls), f"you divided by the number of ELEMENTS (positions times the {n_cls} "
                                       "classes): a KL sums over the classes; average over the positions only "
                                       "(.mean() on F.kl_div(..., reduction='none') divides by the classes too)"),
            (total, "that is the SUM over the positions; reduction='mean' (the default) divides by their number"),
        ]
        if len(positions) > 1:
            out.append((total / positions[0], f"you divided by the batch size N = {positions[0]} only (as "
                                              "reduction='batchmean' does): with sequences every real position "
                                              "counts, divide by their number"))
    else:
        out.append((total / n_real, "your value is the MEAN over the real positions; reduction='sum' asks for "
                                    "their total"))
    if a.ndim >= 3:
        lp1, lq1 = _log_softmax(np.moveaxis(a, 1, -1)), _log_softmax(np.moveaxis(b, 1, -1))
        per1 = 0.5 * ((np.exp(lp1) - np.exp(lq1)) * (lp1 - lq1)).sum(-1)
        out.append((float(per1.sum() if reduction == "sum" else per1.mean()),
                    "your softmax and your sum over the classes run along axis 1: the classes are the LAST axis "
                    "(dim=-1), whatever the number of axes before them"))
    if pad is not None:
        pad = np.asarray(pad, dtype=bool)
        n_pad = int(pad.sum())
        out += [
            (_reduce(sym, np.ones(positions, dtype=bool), reduction),
             "your value includes the padded positions: the pad mask is ignored (True marks padding: leave those "
             "positions out)"),
            (_reduce(sym, pad, reduction),
             "your value is the KL of the PADDED positions only: the mask is inverted (True marks padding, to be "
             "ignored; the real positions are ~pad_mask)"),
        ]
        if reduction == "mean":
            out += [
                (total / n_all, f"the padded positions still count in your mean: you divided the total over the "
                                f"{n_real} real positions by all {n_all} positions (masking after averaging, or "
                                "zeros averaged in); divide by the number of real positions"),
                (total / (n_all * n_cls), f"you divided by all {n_all} positions times the {n_cls} classes (the "
                                          "snippet's .mean() after masked_fill): divide by the number of real "
                                          "positions"),
                (total / max(n_pad, 1), "you divided by the number of PADDED positions (pad_mask.sum()); divide "
                                        "by the number of real ones"),
            ]
        if pad.shape == e_pq.shape[-pad.ndim:] and pad.ndim < e_pq.ndim:
            hidden = np.broadcast_to(pad, e_pq.shape)
            wrong_total = float((0.5 * (e_pq + e_qp))[~hidden].sum())
            denominators = (1.0,) if reduction == "sum" else (n_real, n_all, n_all * n_cls, positions[0])
            axis = ("the CLASS axis" if pad.ndim == 1 else "the last two axes (positions and classes)")
            for d in denominators:
                out.append((wrong_total / d,
                            f"your pad mask hides the wrong entries: masked_fill broadcasts a mask of shape "
                            f"{pad.shape} against {axis} of the element-wise KL {e_pq.shape} (from the right), "
                            "silently here because the sizes happen to match. Give the mask a trailing axis "
                            "(pad_mask.unsqueeze(-1)) or mask the per-position KL after summing over the classes"))
    # With a mask, the value without one has been checked first (and gates the masked calls), so a
    # mistake of the mask or the count explains a wrong value better than a mistake of the formula.
    return out + formula if pad is not None else formula + out


#: What each symmetric_kl call is, for messages: (description, inputs index, reduction).
_KL_CALLS = {
    "classification": ("on a classification batch (7, 5) without a pad mask", "cls", "mean"),
    "classification sum": ("on a classification batch (7, 5), reduction='sum'", "cls", "sum"),
    "sequences, no mask": ("on a batch of sequences (2, 3, 4) without a pad mask", "plain", "mean"),
    "classification, (N,) mask, N = C": (f"on a classification batch ({KL_SQUARE}, {KL_SQUARE}) with a pad mask of "
                                         f"shape ({KL_SQUARE},)", "square", "mean"),
    "sequences, mask": (f"on a padded batch of sequences {KL_SEQ} with a pad mask {KL_SEQ[:2]}", "seq", "mean"),
    "sequences, mask, N = T = C": (f"on a padded batch of sequences {(KL_SEQ_SQUARE,) * 3}", "seq_square", "mean"),
    "sequences, mask, float32": (f"on a padded batch of sequences {KL_SEQ} in float32", "seq", "mean"),
    "sequences, mask, sum": (f"on a padded batch of sequences {KL_SEQ}, reduction='sum'", "seq", "sum"),
    "4-d, mask, sum": (f"on a padded batch of shape {KL_4D}, reduction='sum'", "four", "sum"),
    "4-d, mask, mean": (f"on a padded batch of shape {KL_4D}", "four", "mean"),
    "large logit gaps, float32": ("on a float32 batch with logit gaps of 150", "stable", "mean"),
}


def _group(c: Checker, name: str, n: int) -> tuple:
    """The arrays ``name.0`` .. ``name.{n-1}`` of the reference's "inputs" dict."""
    inputs = c.ref("inputs")[0]
    return tuple(inputs[f"{name}.{i}"] for i in range(n))


def _kl_inputs(c: Checker) -> dict:
    out = {name: _group(c, name, 3) for name in ("square", "seq", "seq_square", "four")}
    out.update({name: (*_group(c, name, 2), None) for name in ("cls", "plain", "stable")})
    return out


def _kl_call(c: Checker, inputs: dict, key: str) -> None:
    """Fail with a message naming the mistake unless the call ``key`` returned the right value."""
    where, name, reduction = _KL_CALLS[key]
    a, b, pad = inputs[name]
    entry = c.entry(key)
    if entry.status == "error" and pad is not None and "must match the size of tensor" in entry.error_message:
        raise CheckFailed(f"{where} your function raised {entry.error_type}: {entry.error_message}: a mask of the "
                          "positions' shape broadcasts against the LAST axes of the element-wise KL, which end with "
                          "the classes; give it a trailing axis (pad_mask.unsqueeze(-1)) or mask the per-position KL "
                          "after summing over the classes")
    got = _scalar(c, key, "symmetric_kl", positions=a.shape[:-1])
    want = _sym_kl(a, b, pad, reduction)
    if _close(got, want, float32="float32" in key):
        return
    if not np.isfinite(got):
        raise CheckFailed(f"{where} your value is {got}: is F.kl_div's target given log-probabilities without "
                          "log_target=True, or a log taken of a probability that is 0?")
    for value, why in _kl_mistakes(a, b, pad, reduction):
        if np.isfinite(value) and np.isclose(got, value, rtol=1e-5, atol=1e-9):
            raise CheckFailed(f"{where} {why}")
    if got < -1e-9:
        raise CheckFailed(f"{where} your value is negative ({fmt(got)}); a KL divergence never is: did F.kl_div get "
                          "probabilities where it expects log-probabilities?")
    raise CheckFailed(f"{where} your value is {fmt(got / want)} times the symmetric KL 0.5 (KL(P||Q) + KL(Q||P)) "
                      "summed over the classes and reduced over the real positions")


KL_VALUE = "0.5 (KL(P||Q) + KL(Q||P)) summed over the classes, averaged over the positions (no pad mask)"
KL_MASK = "with a pad mask, the mean over the real (non-padded) positions only"
KL_SUM = "reduction='sum' totals the real positions"


def check_symmetric_kl(c: Checker):
    inputs = _kl_inputs(c)

    # Central, 4 of 14: a wrong KL (one direction, no 0.5, probabilities into kl_div) keeps nothing.
    with c.check(KL_VALUE, weight=4, central=True):
        for key in ("classification", "sequences, no mask"):
            _kl_call(c, inputs, key)

    # Central, 3 of 14, after the value: a mask ignored, inverted or on the class axis keeps 4/14;
    # a mean over all positions keeps 6/14 (the 'sum' part is right).
    with c.check(KL_MASK, weight=3, central=True, gated_by=(KL_VALUE,)):
        for key in ("classification, (N,) mask, N = C", "sequences, mask, N = T = C", "sequences, mask",
                    "4-d, mask, mean", "sequences, mask, float32"):
            _kl_call(c, inputs, key)

    # Central, 2 of 14, after the value: a 'sum' over the padded positions too keeps 7/14.
    with c.check(KL_SUM, weight=2, central=True, gated_by=(KL_VALUE,)):
        for key in ("classification sum", "sequences, mask, sum", "4-d, mask, sum"):
            _kl_call(c, inputs, key)

    # Not central, 3 of 14: .item() or numpy keeps 10/14 (with the peripheral part lost), one side detached 11/14.
    with c.check("differentiable: the gradient flows into both logits", weight=3):
        _require_gradients(c, ("classification", "sequences, mask"), ("logits_p", "logits_q"))

    # Not central, 1 of 14: log(softmax(z)) keeps 13/14.
    with c.check(f"log-probabilities stay finite for confident predictions (logit gaps of {fmt(STABLE_GAP)} in "
                 "float32)", weight=1):
        a, b, _ = inputs["stable"]
        got = _scalar(c, "large logit gaps, float32", "symmetric_kl")
        want = _sym_kl(a, b)
        if not _close(got, want, float32=True):
            if not np.isfinite(got):
                raise CheckFailed(f"with a logit gap of {fmt(STABLE_GAP)} in float32 your value is {got}: softmax "
                                  "rounds the small probabilities to 0 and log(0) = -inf; compute the "
                                  "log-probabilities with F.log_softmax, never torch.log(torch.softmax(...))")
            raise CheckFailed(f"with a logit gap of {fmt(STABLE_GAP)} in float32 your value is {fmt(got / want)} times "
                              "the true one: clamping or adding an epsilon before the log changes the KL of "
                              "confident predictions; compute the log-probabilities with F.log_softmax")

    with c.check("returns a 0-d tensor; the logits are not modified", weight=1, peripheral=True):
        _require_loss_tensor(c, "classification", "symmetric_kl", "the loss term you add to the cross-entropy",
                             "your function changed the logits in place (masked_fill_ on them?); work on new tensors")


# -- rdrop_loss -----------------------------------------------------------------------------------

def _loss_inputs(c: Checker) -> dict:
    return {"classification": (*_group(c, "classification", 3), None),
            "sequences, mask": _group(c, "sequences_mask", 4),
            "sequences, mask, N = T = C": _group(c, "sequences_square", 4),
            "sequences, no mask": (*_group(c, "sequences_plain", 3), None),
            "float32": (*_group(c, "float32", 3), None)}


_LOSS_WHERE = {
    "classification": "on a classification batch (6, 4)",
    "sequences, mask": "on a padded batch of sequences (3, 4, 5)",
    "sequences, mask, N = T = C": "on a padded batch of sequences (4, 4, 4)",
    "sequences, no mask": "on a batch of sequences (2, 3, 4) without a pad mask",
    "float32": "on a float32 classification batch (6, 4)",
}


def _ce_per_position(a, targets):
    lp = _log_softmax(a)
    return -np.take_along_axis(lp, np.asarray(targets)[..., None], axis=-1)[..., 0]


def _cross_entropy(a, b, targets, pad):
    real = np.ones(np.shape(targets), dtype=bool) if pad is None else ~np.asarray(pad, dtype=bool)
    return 0.5 * (_ce_per_position(a, targets)[real].mean() + _ce_per_position(b, targets)[real].mean())


def _ce_mistakes(a, b, targets, pad) -> list:
    """(value, message) of the recognisable cross-entropy mistakes (alpha = 0)."""
    ce1, ce2 = _ce_per_position(a, targets), _ce_per_position(b, targets)
    real = np.ones(ce1.shape, dtype=bool) if pad is None else ~np.asarray(pad, dtype=bool)
    n_real, n_all = int(real.sum()), ce1.size
    m1, m2 = ce1[real].mean(), ce2[real].mean()
    out = [
        (m1, "your loss is the cross-entropy of the FIRST pass only: R-Drop trains both passes, 0.5 * (CE1 + CE2)"),
        (m2, "your loss is the cross-entropy of the SECOND pass only: R-Drop trains both passes, 0.5 * (CE1 + CE2)"),
        (m1 + m2, "your loss adds the two cross-entropies: average them (0.5 * (CE1 + CE2)), so that alpha = 0 is "
                  "the dropout objective estimated with two masks"),
        (0.5 * (ce1[real].sum() + ce2[real].sum()),
         f"your cross-entropies are SUMMED over the {n_real} positions: average them (F.cross_entropy's default), "
         "so that alpha means the same for every batch size"),
        (ce1[real].sum() + ce2[real].sum(), "your cross-entropies are summed over the positions and over the two "
                                            "passes: average both"),
        (_sym_kl(a, b, pad), "with alpha = 0 your loss is the symmetric KL: alpha multiplies the cross-entropy "
                             "instead of the KL term"),
        (_cross_entropy(a, b, targets, pad) + _sym_kl(a, b, pad),
         "with alpha = 0 your loss still contains the KL term: multiply it by alpha"),
    ]
    if pad is not None:
        out += [
            (0.5 * (ce1.mean() + ce2.mean()), "your cross-entropy includes the padded positions: leave out the "
                                              "positions the pad mask marks (True = padding)"),
            (0.5 * (ce1[real].sum() + ce2[real].sum()) / n_all,
             f"the padded positions still count in your mean: you divided by all {n_all} positions instead of the "
             f"{n_real} real ones"),
        ]
        if ce1.ndim == 2:
            per_seq = 0.5 * np.mean([ce1[n][real[n]].mean() + ce2[n][real[n]].mean() for n in range(len(ce1))])
            out.append((per_seq, "you averaged within each sequence, then over the sequences: every real position "
                                 "counts once, so average over all real positions of the batch (short sequences "
                                 "weigh less)"))
    if np.ndim(a) == 3 and a.shape[1] == a.shape[2]:
        # F.cross_entropy(logits (N, T, C), targets (N, T)) reads axis 1 as the classes.
        def wrong_axis(z, mask_positions):
            lp = _log_softmax(np.swapaxes(z, 1, 2))            # log_softmax over axis 1 of z
            per = -np.take_along_axis(lp, np.asarray(targets)[..., None], axis=-1)[..., 0]
            return per[mask_positions].mean()

        why = ("F.cross_entropy reads the classes from axis 1: logits (N, T, C) must become (N, C, T) "
               "(logits.transpose(1, 2)) or (N*T, C); with N = T = C yours ran silently on the time axis")
        everywhere = np.ones(real.shape, dtype=bool)
        for mask in (everywhere, real):
            out.append((0.5 * (wrong_axis(a, mask) + wrong_axis(b, mask)), why))
    return out


def _kl_term_mistakes(a, b, targets, pad, alpha) -> list:
    """(change of the loss from alpha = 0 to alpha, message) of the recognisable KL-term mistakes."""
    e_pq, e_qp, *_ = _kl_terms(a, b)
    sym = 0.5 * (e_pq + e_qp).sum(-1)
    real = np.ones(sym.shape, dtype=bool) if pad is None else ~np.asarray(pad, dtype=bool)
    mean, total = sym[real].mean(), sym[real].sum()
    out = [
        (alpha * _cross_entropy(a, b, targets, pad), f"alpha = {fmt(alpha)} multiplies your cross-entropy instead "
                                                     "of the KL term"),
        (0.0, "your loss does not change with alpha: multiply the KL term by alpha"),
        (alpha * total, f"your KL term is the SUM over the {int(real.sum())} real positions while the cross-entropy "
                        "is a mean: use symmetric_kl's mean (reduction='mean'), or alpha grows with the batch size"),
        (alpha * 2 * mean, "your KL term is twice alpha times the symmetric KL (no 0.5, or KL(P||Q) + KL(Q||P) "
                           "not halved)"),
        (alpha * 0.5 * mean, "your KL term is half of alpha times the symmetric KL (0.5 applied twice?)"),
        (alpha * e_pq.sum(-1)[real].mean(), "your KL term is alpha times KL(P1||P2) only, one direction: use the "
                                            "symmetric KL"),
        (alpha * e_qp.sum(-1)[real].mean(), "your KL term is alpha times KL(P2||P1) only, one direction: use the "
                                            "symmetric KL"),
        (alpha * total / (sym.size * a.shape[-1]), "your KL term is a mean over ELEMENTS (positions times classes): "
                                                   "sum over the classes, average over the real positions"),
    ]
    if pad is not None:
        out.append((alpha * sym.mean(), "your KL term includes the padded positions: pass the pad mask to "
                                        "symmetric_kl"))
    return out


def _loss_value(c: Checker, key: str) -> float:
    return _scalar(c, key, "rdrop_loss")


LOSS_CE = "alpha = 0: the mean of the two passes' cross-entropies over the real positions"
LOSS_KL = "alpha adds alpha times the symmetric KL of the two passes, averaged over the real positions"


def check_rdrop_loss(c: Checker):
    inputs = _loss_inputs(c)

    # Central, 4 of 11: one pass, summed, unmasked, wrong class axis keep the KL part, 4/11.
    with c.check(LOSS_CE, weight=4, central=True):
        for name in ("classification", "sequences, mask, N = T = C", "sequences, mask", "sequences, no mask",
                     "float32"):
            a, b, targets, pad = inputs[name]
            got = _loss_value(c, f"{name} alpha=0.0")
            want = _cross_entropy(a, b, targets, pad)
            if _close(got, want, float32=name == "float32"):
                continue
            for value, why in _ce_mistakes(a, b, targets, pad):
                if np.isclose(got, value, rtol=1e-5, atol=1e-9):
                    raise CheckFailed(f"{_LOSS_WHERE[name]} with alpha = 0, {why}")
            raise CheckFailed(f"{_LOSS_WHERE[name]} with alpha = 0 your loss is {fmt(got / want)} times the mean of "
                              "the two passes' cross-entropies over the real positions")

    # Central, 4 of 11: read on the change from alpha = 0, so independent of the cross-entropy part.
    with c.check(LOSS_KL, weight=4, central=True):
        pairs = [("classification", alpha) for alpha in LOSS_ALPHAS] + \
                [(name, LOSS_ALPHAS[0]) for name in ("sequences, mask, N = T = C", "sequences, mask",
                                                     "sequences, no mask", "float32")]
        for name, alpha in pairs:
            a, b, targets, pad = inputs[name]
            change = _loss_value(c, f"{name} alpha={alpha}") - _loss_value(c, f"{name} alpha=0.0")
            want = alpha * _sym_kl(a, b, pad)
            tol = dict(rtol=1e-4, atol=1e-5) if name == "float32" else dict(rtol=1e-6, atol=1e-8)
            if np.isclose(change, want, **tol):
                continue
            for value, why in _kl_term_mistakes(a, b, targets, pad, alpha):
                if np.isclose(change, value, rtol=1e-5, atol=1e-8):
                    raise CheckFailed(f"{_LOSS_WHERE[name]}, alpha = {fmt(alpha)}: {why}")
            raise CheckFailed(f"{_LOSS_WHERE[name]}, alpha = {fmt(alpha)}: your loss grows from alpha = 0 by "
                              f"{fmt(change / want)} times alpha times the symmetric KL averaged over the real "
                              "positions (if your rdrop_loss calls your symmetric_kl, check that one first)")

    with c.check("differentiable: the gradient flows into both logits", weight=2):
        _require_gradients(c, (f"classification alpha={LOSS_ALPHAS[0]}", f"sequences, mask alpha={LOSS_ALPHAS[0]}"),
                           ("logits1", "logits2"))

    with c.check("returns a 0-d tensor; logits, targets and pad mask are not modified", weight=1, peripheral=True):
        _require_loss_tensor(c, f"classification alpha={LOSS_ALPHAS[0]}", "rdrop_loss", "to call .backward() on",
                             "your function changed its inputs in place (masked_fill_ on the logits, or targets "
                             "overwritten with an ignore index?); work on new tensors")


# -- rdrop_forward ---------------------------------------------------------------------------------

def _forward_inputs(c: Checker) -> dict:
    (x,), (xs,), (weights,) = (_group(c, name, 1) for name in ("x", "xs", "weights"))
    specs = [_group(c, f"spec{i}", 5) for i in range(4)]
    return {"batch": (specs[0], x, False), "sequences": (specs[1], xs, False),
            "coupled batch": (specs[2], x, True), "coupled sequences": (specs[3], xs, True), "weights": weights}


def _simulate(spec, x, couple, how):
    """(logits1, logits2) of a fresh probe model run the way ``how`` says, as float64 arrays."""
    import torch

    model = probe_net(spec, couple)
    xt = torch.tensor(x, dtype=torch.float32)
    B = xt.shape[0]
    with torch.no_grad(), seeded(spec):
        if how == "two calls":
            pair = model(xt), model(xt)
        elif how == "interleaved":
            out = model(xt.repeat_interleave(2, dim=0))
            pair = out[0::2], out[1::2]
        elif how == "interleaved halves":
            out = model(xt.repeat_interleave(2, dim=0))
            pair = out[:B], out[B:]
        elif how == "time axis":
            if xt.ndim < 3:
                return None
            out = model(torch.cat([xt, xt], dim=1))
            pair = out[:, : xt.shape[1]], out[:, xt.shape[1]:]
        else:
            if how == "eval":
                model.eval()
            out = model(torch.cat([xt, xt], dim=0))
            pair = (out[0::2], out[1::2]) if how == "parity" else (out[:B], out[B:])
    return tuple(t.double().numpy() for t in pair)


_FORWARD_MISTAKES = (
    ("eval", "both of your halves are the network WITHOUT dropout: the model ran in eval mode (model.eval() or "
             "model.train(False) before the call?). R-Drop needs training mode, so that the two copies of every "
             "example get two different dropout masks"),
    ("parity", "your halves mix the two passes: the output on torch.cat([x, x], dim=0) holds pass 1 of every example "
               "in its first B rows and pass 2 in its last B rows; split there, not into even and odd rows"),
    ("interleaved", "you interleaved the copies (x.repeat_interleave(2, dim=0) or a stack along a new axis 1): "
                    "concatenate [x, x] along the batch axis and take the first and the second half"),
    ("interleaved halves", "your halves mix examples: the copies are interleaved (x0, x0, x1, x1, ...), so the first "
                           "half holds some examples twice; concatenate [x, x] along dim 0"),
    ("time axis", "you concatenated along the time axis (dim=1): the two passes are two copies of the BATCH, "
                  "torch.cat([x, x], dim=0)"),
)


def _pair(c: Checker, key: str, shape):
    entry = c.entry(key)
    if entry.status == "ok" and not entry.is_tuple and len(entry.outputs) == 1 and entry.outputs[0].kind != "none":
        raise CheckFailed("rdrop_forward returns TWO tensors, (logits1, logits2): the first and the second half of "
                          "the model's output; yours returned one value")
    l1, l2 = c.outputs(key, n=2)
    l1, l2 = as_float_array(l1, "logits1"), as_float_array(l2, "logits2")
    for arr, name in ((l1, "logits1"), (l2, "logits2")):
        if arr.shape != tuple(shape):
            raise CheckFailed(f"for a batch x of {shape[0]} examples the model gives logits of shape {tuple(shape)} "
                              f"per pass; your {name} has shape {arr.shape}")
    return l1, l2


def _expected_shape(x):
    from dropout_lab.probes.ch08_rdrop import NET_C

    return tuple(np.shape(x)[:-1]) + (NET_C,)


def _same_pair(got, want, either_order=False) -> bool:
    def same(a, b):
        return _close(a[0], b[0], float32=True) and _close(a[1], b[1], float32=True)

    return same(got, want) or (either_order and same(got, want[::-1]))


def _not_one_call(c: Checker, inputs: dict, keys):
    """(spec, x, couple, outputs) of each call in ``keys`` whose two outputs are not the halves of
    one call on cat([x, x]) (in either order)."""
    for key in keys:
        spec, x, couple = inputs[key]
        got = _pair(c, key, _expected_shape(x))
        if not _same_pair(got, _simulate(spec, x, couple, "one call"), either_order=True):
            yield spec, x, couple, got


FWD_HALVES = "two dropout passes: the two halves of the model's output on torch.cat([x, x], dim=0)"
FWD_ONE_CALL = "ONE call of the model on the concatenated batch (a model whose rows interact, like BatchNorm)"


def check_rdrop_forward(c: Checker):
    with one_thread():  # the probe models are tiny: torch's thread pool only costs time
        _check_rdrop_forward(c)


def _check_rdrop_forward(c: Checker):
    inputs = _forward_inputs(c)

    # Central, 3 of 11: eval mode, one half twice, mixed or interleaved rows keep nothing.
    with c.check(FWD_HALVES, weight=3, central=True):
        for spec, x, couple, got in _not_one_call(c, inputs, ("batch", "sequences")):
            if _close(got[0], got[1], float32=True):
                if _close(got[0], _simulate(spec, x, couple, "eval")[0], float32=True):
                    raise CheckFailed(_FORWARD_MISTAKES[0][1])
                raise CheckFailed("your logits1 and logits2 are identical: one half returned twice, or two passes "
                                  "sharing one mask (the random state reset between them?). Return the FIRST and "
                                  "the SECOND half of the model's output on the concatenated batch: each copy of an "
                                  "example gets its own mask")
            for how, why in _FORWARD_MISTAKES:
                wrong = _simulate(spec, x, couple, how)
                if wrong is not None and _same_pair(got, wrong):
                    raise CheckFailed(why)
            raise CheckFailed("your two outputs are not the first and the second half of the model's output on "
                              "torch.cat([x, x], dim=0) (the model in training mode)")

    # Central, 4 of 11, after the halves: two calls keep 7/11.
    with c.check(FWD_ONE_CALL, weight=4, central=True, gated_by=(FWD_HALVES,)):
        for spec, x, couple, got in _not_one_call(c, inputs, ("coupled batch", "coupled sequences")):
            if _same_pair(got, _simulate(spec, x, couple, "two calls"), either_order=True):
                raise CheckFailed("you call the model twice: for a model whose layers use statistics of the batch "
                                  "(BatchNorm in training mode) two calls are not the same as the spec's ONE call on "
                                  "torch.cat([x, x], dim=0), split into its first and second half (one call is "
                                  "also one kernel launch per layer)")
            raise CheckFailed("on a model whose hidden layer is centred with the batch mean (as BatchNorm does) your "
                              "halves are not those of one call on torch.cat([x, x], dim=0)")

    # Not central, 1 each, gated by the halves only (not by the one call): two calls keep 7/11.
    with c.check("logits1 is the first half, logits2 the second", weight=1, gated_by=(FWD_HALVES,)):
        for key in ("batch", "sequences"):
            spec, x, couple = inputs[key]
            got = _pair(c, key, _expected_shape(x))
            c.require(_same_pair(got, _simulate(spec, x, couple, "one call")),
                      "your halves are swapped: logits1 is the FIRST half of the output (rows 0 to B-1), logits2 "
                      "the second")

    with c.check("gradients reach the model's parameters through both halves", weight=1, gated_by=(FWD_HALVES,)):
        got, want = c.output("gradient", allow_none=True), c.ref("gradient")[0]
        c.require(got is not None, "no gradient reaches the model's parameters: did you call the model under "
                                   "torch.no_grad() or .detach() its output? The R-Drop loss is backpropagated "
                                   "through both passes")
        c.require(_close(as_float_array(got, "gradient"), want, float32=True),
                  "the gradient reaching the model's parameters is not that of your two outputs (part of them "
                  "detached?)")

    with c.check("the model is left in training mode", weight=1, gated_by=(FWD_HALVES,)):
        mode = as_float_array(c.output("mode after"), "mode")
        c.require(mode.size == 1 and bool(mode.reshape(-1)[0]),
                  "after your rdrop_forward the model is in eval mode: it was given to you in training mode and the "
                  "training loop goes on with it; leave its mode alone (or restore it)")

    with c.check("returns two tensors; x is not modified", weight=1, peripheral=True, gated_by=(FWD_HALVES,)):
        outs = c.raw_outputs("batch")
        c.require(all(_is_tensor(o) for o in outs), "rdrop_forward must return torch tensors (the model's outputs "
                                                    "themselves, so that the loss can be backpropagated)")
        c.outputs("no in-place")
        c.require(not c.mutated("no in-place"), "your function changed x in place")


CHECKS = {
    "symmetric_kl": check_symmetric_kl,
    "rdrop_loss": check_rdrop_loss,
    "rdrop_forward": check_rdrop_forward,
}
