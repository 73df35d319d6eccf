"""The mistakes students make in chapter 08. Every one must lose points under every seed
(tests/test_corpora.py), and every table row states, as its third entry, the share of its
function's points it may keep at most (or a (min, max) pair when part of it must be
credited), with the reason on its line: the share an experienced teaching assistant would
leave it (autograder/POLICY.md)."""
import numpy as np
import torch
import torch.nn.functional as F

from .ch08_rdrop_variants import _reduce, kl_jeffreys_identity


# -- symmetric_kl ---------------------------------------------------------------------------------

def _per_position(logits_p, logits_q):
    lp, lq = F.log_softmax(logits_p, -1), F.log_softmax(logits_q, -1)
    return 0.5 * ((lp.exp() - lq.exp()) * (lp - lq)).sum(-1)


def kl_one_direction(logits_p, logits_q, pad_mask=None, reduction="mean"):
    lp, lq = F.log_softmax(logits_p, -1), F.log_softmax(logits_q, -1)
    return _reduce((lp.exp() * (lp - lq)).sum(-1), pad_mask, reduction)


def kl_div_direction_only(logits_p, logits_q, pad_mask=None, reduction="mean"):
    """F.kl_div(log P, Q) taken for KL(P||Q): it is KL(Q||P), and only that."""
    per = F.kl_div(F.log_softmax(logits_p, -1), F.softmax(logits_q, -1), reduction="none").sum(-1)
    return _reduce(per, pad_mask, reduction)


def kl_same_term_twice(logits_p, logits_q, pad_mask=None, reduction="mean"):
    """Copy-paste: both terms are F.kl_div(log P, Q), the same KL."""
    p_loss = F.kl_div(F.log_softmax(logits_p, -1), F.softmax(logits_q, -1), reduction="none").sum(-1)
    q_loss = F.kl_div(F.log_softmax(logits_p, -1), F.softmax(logits_q, -1), reduction="none").sum(-1)
    return _reduce((p_loss + q_loss) / 2, pad_mask, reduction)


def kl_no_half(logits_p, logits_q, pad_mask=None, reduction="mean"):
    return _reduce(2 * _per_position(logits_p, logits_q), pad_mask, reduction)


def kl_softmax_into_kl_div(logits_p, logits_q, pad_mask=None, reduction="mean"):
    P, Q = F.softmax(logits_p, -1), F.softmax(logits_q, -1)
    per = 0.5 * (F.kl_div(Q, P, reduction="none") + F.kl_div(P, Q, reduction="none")).sum(-1)
    return _reduce(per, pad_mask, reduction)


def kl_log_target_missing(logits_p, logits_q, pad_mask=None, reduction="mean"):
    lp, lq = F.log_softmax(logits_p, -1), F.log_softmax(logits_q, -1)
    per = 0.5 * (F.kl_div(lq, lp, reduction="none") + F.kl_div(lp, lq, reduction="none")).sum(-1)
    return _reduce(per, pad_mask, reduction)


def kl_elementwise_mean(logits_p, logits_q, pad_mask=None, reduction="mean"):
    lp, lq = F.log_softmax(logits_p, -1), F.log_softmax(logits_q, -1)
    elem = 0.5 * (lp.exp() - lq.exp()) * (lp - lq)
    if pad_mask is not None:
        elem = elem[~pad_mask]
    return elem.sum() if reduction == "sum" else elem.mean()


def kl_batchmean(logits_p, logits_q, pad_mask=None, reduction="mean"):
    per = _per_position(logits_p, logits_q)
    if pad_mask is not None:
        per = per.masked_fill(pad_mask, 0.0)
    return per.sum() if reduction == "sum" else per.sum() / logits_p.shape[0]


def kl_always_sum(logits_p, logits_q, pad_mask=None, reduction="mean"):
    return _reduce(_per_position(logits_p, logits_q), pad_mask, "sum")


def kl_reduction_ignored(logits_p, logits_q, pad_mask=None, reduction="mean"):
    return _reduce(_per_position(logits_p, logits_q), pad_mask, "mean")


def kl_mask_ignored(logits_p, logits_q, pad_mask=None, reduction="mean"):
    return _reduce(_per_position(logits_p, logits_q), None, reduction)


def kl_mask_inverted(logits_p, logits_q, pad_mask=None, reduction="mean"):
    return _reduce(_per_position(logits_p, logits_q), None if pad_mask is None else ~pad_mask, reduction)


def kl_snippet_mask(logits_p, logits_q, pad_mask=None, reduction="mean"):
    """The snippet's masked_fill_ with the mask as given: it broadcasts against the class axis."""
    p_loss = F.kl_div(F.log_softmax(logits_p, -1), F.softmax(logits_q, -1), reduction="none")
    q_loss = F.kl_div(F.log_softmax(logits_q, -1), F.softmax(logits_p, -1), reduction="none")
    if pad_mask is not None:
        p_loss.masked_fill_(pad_mask, 0.0)
        q_loss.masked_fill_(pad_mask, 0.0)
    total = (p_loss.sum() + q_loss.sum()) / 2
    if reduction == "sum":
        return total
    return total / (pad_mask.numel() - pad_mask.sum() if pad_mask is not None else logits_p.shape[:-1].numel())


def kl_mean_over_all_positions(logits_p, logits_q, pad_mask=None, reduction="mean"):
    """The mask applied after averaging: padded positions zeroed, but still counted."""
    per = _per_position(logits_p, logits_q)
    if pad_mask is not None:
        per = per * (~pad_mask)
    return per.sum() if reduction == "sum" else per.mean()


def kl_divides_by_padded_count(logits_p, logits_q, pad_mask=None, reduction="mean"):
    per = _per_position(logits_p, logits_q)
    if pad_mask is None:
        return per.sum() if reduction == "sum" else per.mean()
    total = per[~pad_mask].sum()
    return total if reduction == "sum" else total / pad_mask.sum()


def kl_sum_includes_padding(logits_p, logits_q, pad_mask=None, reduction="mean"):
    per = _per_position(logits_p, logits_q)
    if reduction == "sum":
        return per.sum()
    return _reduce(per, pad_mask, "mean")


def kl_item(logits_p, logits_q, pad_mask=None, reduction="mean"):
    return _reduce(_per_position(logits_p, logits_q), pad_mask, reduction).item()


def kl_numpy(logits_p, logits_q, pad_mask=None, reduction="mean"):
    a, b = logits_p.detach().numpy().astype(np.float64), logits_q.detach().numpy().astype(np.float64)
    la = a - a.max(-1, keepdims=True)
    la = la - np.log(np.exp(la).sum(-1, keepdims=True))
    lb = b - b.max(-1, keepdims=True)
    lb = lb - np.log(np.exp(lb).sum(-1, keepdims=True))
    per = 0.5 * ((np.exp(la) - np.exp(lb)) * (la - lb)).sum(-1)
    if pad_mask is not None:
        per = per[~pad_mask.numpy()]
    return float(per.sum() if reduction == "sum" else per.mean())


def kl_one_side_detached(logits_p, logits_q, pad_mask=None, reduction="mean"):
    """Each direction with its target detached (as if one pass were a fixed teacher)."""
    lp, lq = F.log_softmax(logits_p, -1), F.log_softmax(logits_q, -1)
    per = 0.5 * (F.kl_div(lq, lp.exp().detach(), reduction="none").sum(-1)
                 + F.kl_div(lp, lq.exp().detach(), reduction="none").sum(-1))
    return _reduce(per, pad_mask, reduction)


def kl_log_of_softmax(logits_p, logits_q, pad_mask=None, reduction="mean"):
    lp, lq = torch.log(torch.softmax(logits_p, -1)), torch.log(torch.softmax(logits_q, -1))
    per = 0.5 * ((lp.exp() - lq.exp()) * (lp - lq)).sum(-1)
    return _reduce(per, pad_mask, reduction)


def kl_distributions(logits_p, logits_q, pad_mask=None, reduction="mean"):
    """torch.distributions: KL is inf as soon as a probability of the second argument underflows."""
    P, Q = torch.distributions.Categorical(logits=logits_p), torch.distributions.Categorical(logits=logits_q)
    per = 0.5 * (torch.distributions.kl_divergence(P, Q) + torch.distributions.kl_divergence(Q, P))
    return _reduce(per, pad_mask, reduction)


def kl_in_place_on_logits(logits_p, logits_q, pad_mask=None, reduction="mean"):
    if pad_mask is not None:
        logits_p.masked_fill_(pad_mask.unsqueeze(-1), 0.0)
        logits_q.masked_fill_(pad_mask.unsqueeze(-1), 0.0)
    return kl_jeffreys_identity(logits_p, logits_q, pad_mask, reduction)


def kl_per_position(logits_p, logits_q, pad_mask=None, reduction="mean"):
    per = _per_position(logits_p, logits_q)
    return per if pad_mask is None else per.masked_fill(pad_mask, 0.0)


def kl_sums_axis_one(logits_p, logits_q, pad_mask=None, reduction="mean"):
    """Written for (N, C) only: the classes summed as axis 1."""
    lp, lq = F.log_softmax(logits_p, 1), F.log_softmax(logits_q, 1)
    per = 0.5 * ((lp.exp() - lq.exp()) * (lp - lq)).sum(1)
    if pad_mask is not None and per.shape == pad_mask.shape:
        per = per[~pad_mask]
    return per.sum() if reduction == "sum" else per.mean()


def kl_of_raw_logits(logits_p, logits_q, pad_mask=None, reduction="mean"):
    per = 0.5 * (F.kl_div(logits_q, logits_p.softmax(-1), reduction="none")
                 + F.kl_div(logits_p, logits_q.softmax(-1), reduction="none")).sum(-1)
    return _reduce(per, pad_mask, reduction)


def kl_returns_none(logits_p, logits_q, pad_mask=None, reduction="mean"):
    _reduce(_per_position(logits_p, logits_q), pad_mask, reduction)


# -- rdrop_loss ----------------------------------------------------------------------------------------

def _ce(logits, targets, pad_mask, reduction="mean"):
    C = logits.shape[-1]
    z, t = logits.reshape(-1, C), targets.reshape(-1)
    if pad_mask is not None:
        keep = ~pad_mask.reshape(-1)
        z, t = z[keep], t[keep]
    return F.cross_entropy(z, t, reduction=reduction)


def loss_first_pass_only(logits1, logits2, targets, alpha, pad_mask=None):
    return _ce(logits1, targets, pad_mask) + alpha * kl_jeffreys_identity(logits1, logits2, pad_mask)


def loss_no_half(logits1, logits2, targets, alpha, pad_mask=None):
    return _ce(logits1, targets, pad_mask) + _ce(logits2, targets, pad_mask) \
        + alpha * kl_jeffreys_identity(logits1, logits2, pad_mask)


def loss_ce_summed(logits1, logits2, targets, alpha, pad_mask=None):
    return 0.5 * (_ce(logits1, targets, pad_mask, "sum") + _ce(logits2, targets, pad_mask, "sum")) \
        + alpha * kl_jeffreys_identity(logits1, logits2, pad_mask)


def loss_alpha_on_ce(logits1, logits2, targets, alpha, pad_mask=None):
    return alpha * 0.5 * (_ce(logits1, targets, pad_mask) + _ce(logits2, targets, pad_mask)) \
        + kl_jeffreys_identity(logits1, logits2, pad_mask)


def loss_alpha_missing(logits1, logits2, targets, alpha, pad_mask=None):
    return 0.5 * (_ce(logits1, targets, pad_mask) + _ce(logits2, targets, pad_mask)) \
        + kl_jeffreys_identity(logits1, logits2, pad_mask)


def loss_kl_summed(logits1, logits2, targets, alpha, pad_mask=None):
    return 0.5 * (_ce(logits1, targets, pad_mask) + _ce(logits2, targets, pad_mask)) \
        + alpha * kl_jeffreys_identity(logits1, logits2, pad_mask, reduction="sum")


def loss_ce_mask_ignored(logits1, logits2, targets, alpha, pad_mask=None):
    return 0.5 * (_ce(logits1, targets, None) + _ce(logits2, targets, None)) \
        + alpha * kl_jeffreys_identity(logits1, logits2, pad_mask)


def loss_kl_mask_ignored(logits1, logits2, targets, alpha, pad_mask=None):
    return 0.5 * (_ce(logits1, targets, pad_mask) + _ce(logits2, targets, pad_mask)) \
        + alpha * kl_jeffreys_identity(logits1, logits2)


def loss_mask_ignored(logits1, logits2, targets, alpha, pad_mask=None):
    return 0.5 * (_ce(logits1, targets, None) + _ce(logits2, targets, None)) \
        + alpha * kl_jeffreys_identity(logits1, logits2)


def loss_class_axis(logits1, logits2, targets, alpha, pad_mask=None):
    """F.cross_entropy on (N, T, C) logits as they come: it reads axis 1 (T) as the classes."""
    ce = 0.5 * (F.cross_entropy(logits1, targets) + F.cross_entropy(logits2, targets))
    return ce + alpha * kl_jeffreys_identity(logits1, logits2, pad_mask)


def loss_per_sequence_mean(logits1, logits2, targets, alpha, pad_mask=None):
    if logits1.dim() < 3 or pad_mask is None:
        return loss_kl_mask_ignored(logits1, logits2, targets, alpha, pad_mask)
    ces = []
    for n in range(logits1.shape[0]):
        keep = ~pad_mask[n]
        ces.append(0.5 * (F.cross_entropy(logits1[n][keep], targets[n][keep])
                          + F.cross_entropy(logits2[n][keep], targets[n][keep])))
    return torch.stack(ces).mean() + alpha * kl_jeffreys_identity(logits1, logits2, pad_mask)


def loss_divides_by_all_positions(logits1, logits2, targets, alpha, pad_mask=None):
    n_all = targets.numel()
    ce = 0.5 * (_ce(logits1, targets, pad_mask, "sum") + _ce(logits2, targets, pad_mask, "sum")) / n_all
    return ce + alpha * kl_jeffreys_identity(logits1, logits2, pad_mask)


def loss_item(logits1, logits2, targets, alpha, pad_mask=None):
    ce = 0.5 * (_ce(logits1, targets, pad_mask) + _ce(logits2, targets, pad_mask))
    return (ce + alpha * kl_jeffreys_identity(logits1, logits2, pad_mask)).item()


def loss_detached_kl(logits1, logits2, targets, alpha, pad_mask=None):
    ce = 0.5 * (_ce(logits1, targets, pad_mask) + _ce(logits2, targets, pad_mask))
    return ce + alpha * kl_jeffreys_identity(logits1, logits2, pad_mask).detach()


def loss_returns_none(logits1, logits2, targets, alpha, pad_mask=None):
    0.5 * (_ce(logits1, targets, pad_mask) + _ce(logits2, targets, pad_mask))


# -- rdrop_forward -------------------------------------------------------------------------------------------

def fwd_two_calls(model, x):
    return model(x), model(x)


def fwd_same_half_twice(model, x):
    out = model(torch.cat([x, x]))
    return out[: len(x)], out[: len(x)]


def fwd_one_pass(model, x):
    out = model(x)
    return out, out


def fwd_shared_mask(model, x):
    """Two calls with the random state reset in between: both passes share one mask."""
    state = torch.get_rng_state()
    logits1 = model(x)
    torch.set_rng_state(state)
    return logits1, model(x)


def fwd_eval_mode(model, x):
    model.eval()
    out = model(torch.cat([x, x]))
    return out[: len(x)], out[len(x):]


def fwd_parity_split(model, x):
    out = model(torch.cat([x, x]))
    return out[0::2], out[1::2]


def fwd_repeat_interleave(model, x):
    out = model(x.repeat_interleave(2, dim=0))
    return out[0::2], out[1::2]


def fwd_stack_new_axis(model, x):
    out = model(torch.stack([x, x], dim=1).flatten(0, 1))
    return out[: len(x)], out[len(x):]


def fwd_cat_last_axis(model, x):
    out = model(torch.cat([x, x], dim=-1))
    return out.chunk(2, dim=-1)


def fwd_swapped(model, x):
    out = model(torch.cat([x, x]))
    return out[len(x):], out[: len(x)]


def fwd_no_grad(model, x):
    with torch.no_grad():
        out = model(torch.cat([x, x]))
    return out[: len(x)], out[len(x):]


def fwd_eval_afterwards(model, x):
    out = model(torch.cat([x, x]))
    model.eval()
    return out[: len(x)], out[len(x):]


def fwd_numpy(model, x):
    out = model(torch.cat([x, x])).detach().numpy()
    return out[: len(x)], out[len(x):]


def fwd_whole_output(model, x):
    return model(torch.cat([x, x]))


def fwd_returns_none(model, x):
    model(torch.cat([x, x]))


MUTANTS = {
    "symmetric_kl": [
        ("KL(P||Q) only", kl_one_direction, 0.25),                    # one direction: not the symmetric KL
        ("kl_div(log P, Q) only", kl_div_direction_only, 0.25),       # F.kl_div's order misread, one direction
        ("the same term twice", kl_same_term_twice, 0.25),            # copy-paste: both terms KL(Q||P)
        ("no 0.5", kl_no_half, 0.25),                                 # Jeffreys' divergence, twice the value
        ("softmax into kl_div", kl_softmax_into_kl_div, 0.25),        # probabilities where log-probabilities go
        ("log-probabilities as target", kl_log_target_missing, 0.25), # NaN: log_target=True forgotten
        ("mean over elements", kl_elementwise_mean, 0.25),            # divides by the classes too
        ("batchmean", kl_batchmean, 0.25),                            # divides by N, not by the positions
        ("always sum", kl_always_sum, 0.25),                          # reduction='mean' returns the total
        ("mask ignored", kl_mask_ignored, 0.3),                       # padded positions counted: keeps the value, 4/14
        ("mask inverted", kl_mask_inverted, 0.3),                     # only the padded positions: 4/14
        ("snippet's masked_fill", kl_snippet_mask, 0.3),              # the mask hides classes: 4/14
        ("mean over all positions", kl_mean_over_all_positions, 0.45),  # masked after averaging: sum right, 6/14
        ("divides by the padded count", kl_divides_by_padded_count, 0.45),  # wrong count: sum right, 6/14
        ("sum includes padding", kl_sum_includes_padding, 0.5),       # the 'sum' branch ignores the mask: 7/14
        ("reduction ignored", kl_reduction_ignored, 0.5),             # always the mean: 7/14
        (".item()", kl_item, (0.71, 0.72)),                           # right number, no gradient, not a tensor: 10/14
        ("numpy", kl_numpy, (0.71, 0.72)),                            # the same
        ("one side detached", kl_one_side_detached, (0.78, 0.79)),    # gradient through one side only: 11/14
        ("log(softmax)", kl_log_of_softmax, (0.92, 0.93)),            # NaN for confident predictions: 13/14
        ("torch.distributions", kl_distributions, (0.92, 0.93)),      # inf once a probability underflows: 13/14
        ("masked_fill_ on the logits", kl_in_place_on_logits, (0.92, 0.93)),  # changes the caller's logits: 13/14
        ("per-position values", kl_per_position, 0.25),               # not reduced to one number
        ("classes on axis 1", kl_sums_axis_one, 0.25),                # right for (N, C) only
        ("kl_div of raw logits", kl_of_raw_logits, 0.25),             # logits are not log-probabilities
        ("returns None", kl_returns_none, 0.0),                       # nothing to grade
    ],
    "rdrop_loss": [
        ("first pass only", loss_first_pass_only, (0.36, 0.37)),      # one cross-entropy: the KL part, 4/11
        ("no 0.5", loss_no_half, (0.36, 0.37)),                       # CE1 + CE2: the KL part, 4/11
        ("cross-entropy summed", loss_ce_summed, (0.36, 0.37)),       # alpha depends on the batch size: 4/11
        ("alpha on the cross-entropy", loss_alpha_on_ce, 0.0),        # both parts wrong
        ("alpha missing", loss_alpha_missing, 0.0),                   # alpha = 0 is not the dropout objective
        ("KL summed", loss_kl_summed, (0.36, 0.37)),                  # the snippet's sum: the CE part, 4/11
        ("cross-entropy over padding", loss_ce_mask_ignored, (0.36, 0.37)),  # the KL part, 4/11
        ("KL over padding", loss_kl_mask_ignored, (0.36, 0.37)),      # the CE part, 4/11
        ("mask ignored", loss_mask_ignored, 0.0),                     # both parts wrong
        ("class axis", loss_class_axis, (0.0, 0.37)),                 # F.cross_entropy reads T as the classes
        ("per-sequence mean", loss_per_sequence_mean, (0.36, 0.37)),  # short sequences weigh more: the KL part
        ("divides by all positions", loss_divides_by_all_positions, (0.36, 0.37)),  # padding still counted
        (".item()", loss_item, (0.72, 0.73)),                         # right number, cannot be trained: 8/11
        ("KL detached", loss_detached_kl, (0.81, 0.82)),              # the KL term trains nothing: 9/11
        ("returns None", loss_returns_none, 0.0),                     # nothing to grade
    ],
    "rdrop_forward": [
        ("two calls", fwd_two_calls, (0.63, 0.64)),                   # R-Drop, but not one call: 7/11
        ("the same half twice", fwd_same_half_twice, 0.0),            # no second pass
        ("one pass returned twice", fwd_one_pass, 0.0),               # no second pass, no concatenation
        ("one mask for both passes", fwd_shared_mask, 0.0),           # the random state reset between two calls
        ("eval mode", fwd_eval_mode, 0.0),                            # no dropout: both passes identical
        ("halves by parity", fwd_parity_split, 0.0),                  # mixes the passes of different examples
        ("repeat_interleave", fwd_repeat_interleave, 0.0),            # copies interleaved, not the spec's halves
        ("stack on a new axis 1", fwd_stack_new_axis, 0.0),           # interleaved copies split in halves
        ("cat on the last axis", fwd_cat_last_axis, 0.0),             # features doubled, not the batch
        ("halves swapped", fwd_swapped, (0.9, 0.91)),                 # the same pair, the wrong order: 10/11
        ("torch.no_grad()", fwd_no_grad, (0.9, 0.91)),                # nothing can be trained: 10/11
        ("model left in eval mode", fwd_eval_afterwards, (0.9, 0.91)),  # breaks the training loop after it: 10/11
        ("numpy outputs", fwd_numpy, (0.81, 0.82)),                   # detached numpy arrays: 9/11
        ("the whole output", fwd_whole_output, 0.0),                  # not split
        ("returns None", fwd_returns_none, 0.0),                      # nothing to grade
    ],
}
