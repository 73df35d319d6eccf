"""Correct implementations of chapter 08's graded functions, written the many ways students
write them. Every one must earn full marks under every seed."""
import torch
import torch.nn.functional as F


# -- symmetric_kl ---------------------------------------------------------------------------------

def _reduce(per_position, pad_mask, reduction):
    """Sum or mean of per-position values over the positions pad_mask does not hide."""
    if pad_mask is not None:
        per_position = per_position[~pad_mask]
    return per_position.sum() if reduction == "sum" else per_position.mean()


def kl_two_kl_divs(logits_p, logits_q, pad_mask=None, reduction="mean"):
    """The corrected snippet: both directions with F.kl_div, the mask with a trailing axis."""
    p_loss = F.kl_div(F.log_softmax(logits_q, dim=-1), F.softmax(logits_p, dim=-1), reduction="none")
    q_loss = F.kl_div(F.log_softmax(logits_p, dim=-1), F.softmax(logits_q, dim=-1), reduction="none")
    if pad_mask is not None:
        p_loss = p_loss.masked_fill(pad_mask.unsqueeze(-1), 0.0)
        q_loss = q_loss.masked_fill(pad_mask.unsqueeze(-1), 0.0)
    total = 0.5 * (p_loss.sum() + q_loss.sum())
    if reduction == "sum":
        return total
    n_real = logits_p.shape[:-1].numel() if pad_mask is None else (~pad_mask).sum()
    return total / n_real


def kl_log_target(logits_p, logits_q, pad_mask=None, reduction="mean"):
    lp, lq = F.log_softmax(logits_p, -1), F.log_softmax(logits_q, -1)
    kl_pq = F.kl_div(lq, lp, reduction="none", log_target=True).sum(-1)
    kl_qp = F.kl_div(lp, lq, reduction="none", log_target=True).sum(-1)
    return _reduce(0.5 * (kl_pq + kl_qp), pad_mask, reduction)


def kl_jeffreys_identity(logits_p, logits_q, pad_mask=None, reduction="mean"):
    lp, lq = logits_p.log_softmax(-1), logits_q.log_softmax(-1)
    per = 0.5 * ((lp.exp() - lq.exp()) * (lp - lq)).sum(-1)
    return _reduce(per, pad_mask, reduction)


def kl_float_weights(logits_p, logits_q, pad_mask=None, reduction="mean"):
    lp, lq = torch.log_softmax(logits_p, dim=-1), torch.log_softmax(logits_q, dim=-1)
    per = 0.5 * (torch.sum(lp.exp() * (lp - lq), dim=-1) + torch.sum(lq.exp() * (lq - lp), dim=-1))
    keep = torch.ones_like(per) if pad_mask is None else (~pad_mask).to(per.dtype)
    total = (per * keep).sum()
    return total if reduction == "sum" else total / keep.sum()


def kl_logsumexp(logits_p, logits_q, pad_mask=None, reduction="mean"):
    lp = logits_p - torch.logsumexp(logits_p, dim=-1, keepdim=True)
    lq = logits_q - torch.logsumexp(logits_q, dim=-1, keepdim=True)
    per = 0.5 * torch.einsum("...c,...c->...", lp.exp() - lq.exp(), lp - lq)
    if pad_mask is not None:
        per = torch.where(pad_mask, torch.zeros_like(per), per)
        count = pad_mask.numel() - pad_mask.sum()
    else:
        count = per.numel()
    return per.sum() if reduction == "sum" else per.sum() / count


def kl_float64_inside(logits_p, logits_q, pad_mask=None, reduction="mean"):
    """Computes in float64 whatever the input dtype (returns float64)."""
    lp, lq = F.log_softmax(logits_p.double(), -1), F.log_softmax(logits_q.double(), -1)
    per = 0.5 * (lp.exp() * (lp - lq) + lq.exp() * (lq - lp)).sum(-1)
    if pad_mask is not None:
        per = per[pad_mask.logical_not()]
    if reduction == "mean":
        return per.mean()
    return per.sum()


def kl_flattened(logits_p, logits_q, pad_mask=None, reduction="mean"):
    C = logits_p.shape[-1]
    a, b = logits_p.reshape(-1, C), logits_q.reshape(-1, C)
    if pad_mask is not None:
        keep = ~pad_mask.reshape(-1)
        a, b = a[keep], b[keep]
    p_loss = F.kl_div(F.log_softmax(b, dim=1), F.log_softmax(a, dim=1), reduction="sum", log_target=True)
    q_loss = F.kl_div(F.log_softmax(a, dim=1), F.log_softmax(b, dim=1), reduction="sum", log_target=True)
    loss = (p_loss + q_loss) / 2
    return loss if reduction == "sum" else loss / a.shape[0]


def kl_mask_expand(logits_p, logits_q, pad_mask=None, reduction="mean"):
    lp, lq = F.log_softmax(logits_p, -1), F.log_softmax(logits_q, -1)
    elem = 0.5 * (lp.exp() - lq.exp()) * (lp - lq)
    if pad_mask is None:
        pad_mask = torch.zeros(logits_p.shape[:-1], dtype=torch.bool)
    hidden = pad_mask.unsqueeze(-1).expand_as(elem)
    total = elem.masked_fill(hidden, 0.0).sum()
    if reduction == "sum":
        return total
    return total / (pad_mask.numel() - int(pad_mask.sum()))


# -- rdrop_loss ---------------------------------------------------------------------------------------

def loss_flatten_and_select(logits1, logits2, targets, alpha, pad_mask=None):
    C = logits1.shape[-1]
    a, b, t = logits1.reshape(-1, C), logits2.reshape(-1, C), targets.reshape(-1)
    if pad_mask is not None:
        keep = ~pad_mask.reshape(-1)
        a, b, t = a[keep], b[keep], t[keep]
    ce = 0.5 * (F.cross_entropy(a, t) + F.cross_entropy(b, t))
    return ce + alpha * kl_jeffreys_identity(logits1, logits2, pad_mask)


def loss_ignore_index(logits1, logits2, targets, alpha, pad_mask=None):
    t = targets if pad_mask is None else targets.masked_fill(pad_mask, -100)
    if logits1.dim() > 2:
        ce1 = F.cross_entropy(logits1.transpose(1, -1), t.transpose(1, -1) if t.dim() > 2 else t, ignore_index=-100)
        ce2 = F.cross_entropy(logits2.transpose(1, -1), t.transpose(1, -1) if t.dim() > 2 else t, ignore_index=-100)
    else:
        ce1, ce2 = F.cross_entropy(logits1, t), F.cross_entropy(logits2, t)
    return 0.5 * (ce1 + ce2) + alpha * kl_two_kl_divs(logits1, logits2, pad_mask, "mean")


def loss_reduction_none(logits1, logits2, targets, alpha, pad_mask=None):
    C = logits1.shape[-1]
    ce1 = F.cross_entropy(logits1.reshape(-1, C), targets.reshape(-1), reduction="none")
    ce2 = F.cross_entropy(logits2.reshape(-1, C), targets.reshape(-1), reduction="none")
    keep = torch.ones_like(ce1) if pad_mask is None else (~pad_mask.reshape(-1)).to(ce1.dtype)
    ce = 0.5 * ((ce1 * keep).sum() + (ce2 * keep).sum()) / keep.sum()
    return ce + alpha * kl_float_weights(logits1, logits2, pad_mask)


def loss_nll_gather(logits1, logits2, targets, alpha, pad_mask=None):
    lp1, lp2 = logits1.log_softmax(-1), logits2.log_softmax(-1)
    nll1 = -lp1.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    nll2 = -lp2.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    if pad_mask is not None:
        nll1, nll2 = nll1[~pad_mask], nll2[~pad_mask]
    kl = kl_logsumexp(logits1, logits2, pad_mask)
    return 0.5 * (nll1.mean() + nll2.mean()) + alpha * kl


def loss_concatenated_ce(logits1, logits2, targets, alpha, pad_mask=None):
    """fairseq's way: one cross-entropy over both passes stacked (the same count of real positions each)."""
    C = logits1.shape[-1]
    both = torch.cat([logits1.reshape(-1, C), logits2.reshape(-1, C)])
    t = targets.reshape(-1).repeat(2)
    if pad_mask is not None:
        keep = (~pad_mask.reshape(-1)).repeat(2)
        both, t = both[keep], t[keep]
    ce = F.nll_loss(F.log_softmax(both, dim=-1), t)
    return ce + alpha * kl_log_target(logits1, logits2, pad_mask=pad_mask, reduction="mean")


def loss_sum_then_divide(logits1, logits2, targets, alpha, pad_mask=None):
    C = logits1.shape[-1]
    keep = torch.ones(targets.shape, dtype=torch.bool) if pad_mask is None else ~pad_mask
    n = keep.sum()
    ce1 = F.cross_entropy(logits1[keep].reshape(-1, C), targets[keep], reduction="sum") / n
    ce2 = F.cross_entropy(logits2[keep].reshape(-1, C), targets[keep], reduction="sum") / n
    kl = kl_mask_expand(logits1, logits2, pad_mask, reduction="sum") / n
    return (ce1 + ce2) / 2 + alpha * kl


# -- rdrop_forward ---------------------------------------------------------------------------------------

def fwd_chunk(model, x):
    return model(torch.cat([x, x], dim=0)).chunk(2, dim=0)


def fwd_repeat_split(model, x):
    out = model(x.repeat(2, *([1] * (x.dim() - 1))))
    logits1, logits2 = out.split(x.shape[0], dim=0)
    return logits1, logits2


def fwd_stack_unbind(model, x):
    out = model(torch.stack([x, x]).flatten(0, 1))
    return out.view(2, x.shape[0], *out.shape[1:]).unbind(0)


def fwd_train_first(model, x):
    model.train()
    logits = model(torch.cat((x, x)))
    B = len(x)
    return logits[:B], logits[B:]


def fwd_restore_mode(model, x):
    was_training = model.training
    model.train()
    try:
        logits = model(torch.cat([x, x], 0))
    finally:
        model.train(was_training)
    return tuple(logits.tensor_split(2))


def fwd_expand(model, x):
    doubled = x.unsqueeze(0).expand(2, *x.shape).reshape(-1, *x.shape[1:])
    out = model(doubled)
    half = out.shape[0] // 2
    return [out[:half], out[half:]]


def fwd_contiguous(model, x):
    out = model(torch.cat([x, x.clone()], dim=0))
    B = x.size(0)
    return out[:B].contiguous(), out[B:].contiguous()


VARIANTS = {
    "symmetric_kl": [
        ("two kl_divs, masked_fill with a trailing axis", kl_two_kl_divs),
        ("kl_div with log_target", kl_log_target),
        ("(P - Q)(log P - log Q)", kl_jeffreys_identity),
        ("float weights", kl_float_weights),
        ("logsumexp, einsum, torch.where", kl_logsumexp),
        ("float64 inside", kl_float64_inside),
        ("flattened positions", kl_flattened),
        ("mask expanded over the classes", kl_mask_expand),
    ],
    "rdrop_loss": [
        ("flatten and select", loss_flatten_and_select),
        ("ignore_index", loss_ignore_index),
        ("reduction='none' and weights", loss_reduction_none),
        ("nll and gather", loss_nll_gather),
        ("one cross-entropy over both passes", loss_concatenated_ce),
        ("sums divided by the count", loss_sum_then_divide),
    ],
    "rdrop_forward": [
        ("cat and chunk", fwd_chunk),
        ("repeat and split", fwd_repeat_split),
        ("stack, flatten, unbind", fwd_stack_unbind),
        ("model.train() first", fwd_train_first),
        ("mode restored, tensor_split", fwd_restore_mode),
        ("expand, list", fwd_expand),
        ("contiguous halves", fwd_contiguous),
    ],
}
