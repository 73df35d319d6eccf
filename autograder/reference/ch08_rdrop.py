"""Hidden reference for chapter 08, R-Drop. Never shipped to students."""
import torch
import torch.nn.functional as F


def symmetric_kl(logits_p, logits_q, pad_mask=None, reduction="mean"):
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    log_p = F.log_softmax(logits_p, dim=-1)
    log_q = F.log_softmax(logits_q, dim=-1)
    # 0.5 * (KL(P||Q) + KL(Q||P)) = 0.5 * sum_c (P - Q)(log P - log Q), per position
    per_position = 0.5 * ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(dim=-1)
    if pad_mask is not None:
        per_position = per_position[~pad_mask.bool()]
    return per_position.sum() if reduction == "sum" else per_position.mean()


def rdrop_loss(logits1, logits2, targets, alpha, pad_mask=None):
    n_classes = logits1.shape[-1]
    flat1, flat2 = logits1.reshape(-1, n_classes), logits2.reshape(-1, n_classes)
    flat_targets = targets.reshape(-1)
    if pad_mask is not None:
        real = ~pad_mask.bool().reshape(-1)
        flat1, flat2, flat_targets = flat1[real], flat2[real], flat_targets[real]
    ce = 0.5 * (F.cross_entropy(flat1, flat_targets) + F.cross_entropy(flat2, flat_targets))
    return ce + alpha * symmetric_kl(logits1, logits2, pad_mask, reduction="mean")


def rdrop_forward(model, x):
    logits = model(torch.cat([x, x], dim=0))
    return logits[: x.shape[0]], logits[x.shape[0]:]
