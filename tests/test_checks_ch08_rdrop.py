"""What chapter 08's checks rely on (autograder/checks/ch08_rdrop.py,
dropout_lab/probes/ch08_rdrop.py), and the page's corrected snippet against the hidden reference.

The checks are exact (no statistical bound to pin): they accept a value within float tolerance
of the closed form and name a mistake when the value matches what that mistake gives. That is
sound only if, on the probe's inputs, no named mistake comes near the right value and the
probe models tell one call from two. These tests hold the probe to that on many seeds.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.checks import ch08_rdrop as checks
from autograder.reference import ch08_rdrop as ref
from dropout_lab.probes import ch08_rdrop as probes
from tests.test_claims_ch08_rdrop import _corrected_kl

SEEDS = range(40)


def _inputs(grade_id, seed):
    """The probe's "inputs" dict for a seed (the probe run on the reference)."""
    from dropout_lab.recorder import Recording

    rec = Recording(grade_id, seed)
    probe = {"symmetric_kl": probes.probe_symmetric_kl, "rdrop_loss": probes.probe_rdrop_loss,
             "rdrop_forward": probes.probe_rdrop_forward}[grade_id]
    rec.call = lambda key, fn, *a, **k: None if key != "inputs" else setattr(rec, "inputs", fn())
    probe(getattr(ref, grade_id), rec, np.random.default_rng(seed))
    return rec.inputs


# -- the page's corrected snippet is the reference ----------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 5), (2, 3, 2, 4)])
def test_the_corrected_snippet_equals_the_reference(shape):
    g = torch.Generator().manual_seed(sum(shape))
    for dtype, rtol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        a = torch.randn(*shape, generator=g, dtype=dtype) * 2
        b = a + torch.randn(*shape, generator=g, dtype=dtype)
        pad = torch.rand(*shape[:-1], generator=g) < 0.3
        pad.view(-1)[0] = False
        for mask in (None, pad):
            for reduction in ("mean", "sum"):
                want = ref.symmetric_kl(a, b, mask, reduction=reduction)
                assert math.isclose(float(_corrected_kl(a, b, mask, reduction)), float(want), rel_tol=rtol)
            targets = torch.randint(0, shape[-1], shape[:-1], generator=g)
            for alpha in (0.0, 0.3, 4.0):
                m = torch.zeros(targets.numel(), dtype=torch.bool) if mask is None else mask.reshape(-1)
                ce = 0.5 * sum(F.cross_entropy(z.reshape(-1, shape[-1])[~m], targets.reshape(-1)[~m]) for z in (a, b))
                loss = ce + alpha * _corrected_kl(a, b, mask)
                assert math.isclose(float(ref.rdrop_loss(a, b, targets, alpha, mask)), float(loss), rel_tol=rtol)


# -- no named mistake comes near the right value ---------------------------------------------------

def _far(value, right, rel=1e-5):
    """Ten times the checks' float64 tolerance (relative 1e-6) apart, or not finite. (The
    float32 calls test that float32 is accepted; the float64 calls separate the mistakes.)"""
    return not np.isfinite(value) or abs(value - right) > rel * max(abs(right), 1e-3)


def test_every_named_kl_mistake_is_far_from_the_right_value():
    for seed in SEEDS:
        groups = _group_inputs(_inputs("symmetric_kl", seed))
        for key, (_, name, reduction) in checks._KL_CALLS.items():
            if "float32" in key:
                continue
            a, b, pad = groups[name]
            right = checks._sym_kl(a, b, pad, reduction)
            for value, why in checks._kl_mistakes(a, b, pad, reduction):
                assert _far(value, right), (seed, key, why)


def test_every_named_loss_mistake_is_far_from_the_right_value():
    for seed in SEEDS:
        v = _inputs("rdrop_loss", seed)
        for name, n in (("classification", 3), ("sequences_mask", 4), ("sequences_square", 4),
                        ("sequences_plain", 3)):
            a, b, targets, *pad = (v[f"{name}.{i}"] for i in range(n))
            pad = pad[0] if pad else None
            right = checks._cross_entropy(a, b, targets, pad)
            for value, why in checks._ce_mistakes(a, b, targets, pad):
                assert _far(value, right), (seed, name, why)
            for alpha in probes.LOSS_ALPHAS:
                right = alpha * checks._sym_kl(a, b, pad)
                for value, why in checks._kl_term_mistakes(a, b, targets, pad, alpha):
                    assert _far(value, right), (seed, name, why)


def _group_inputs(v):
    def g(name, n):
        return tuple(v[f"{name}.{i}"] for i in range(n))

    out = {name: g(name, 3) for name in ("square", "seq", "seq_square", "four")}
    out.update({name: (*g(name, 2), None) for name in ("cls", "plain", "stable")})
    return out


def test_the_stability_call_breaks_log_of_softmax_and_not_log_softmax():
    for seed in SEEDS:
        a, b, _ = _group_inputs(_inputs("symmetric_kl", seed))["stable"]
        ta, tb = torch.tensor(a), torch.tensor(b)
        assert ta.dtype == torch.float32
        naive_p, naive_q = torch.log(torch.softmax(ta, -1)), torch.log(torch.softmax(tb, -1))
        naive = 0.5 * ((naive_p.exp() - naive_q.exp()) * (naive_p - naive_q)).sum(-1).mean()
        assert not torch.isfinite(naive)
        assert checks._close(float(ref.symmetric_kl(ta, tb)), checks._sym_kl(a, b), float32=True)


def test_the_pad_masks_keep_the_counts_apart():
    for seed in SEEDS:
        groups = _group_inputs(_inputs("symmetric_kl", seed))
        for name in ("seq", "seq_square", "four"):
            pad = groups[name][2]
            n_pad, n = int(pad.sum()), pad.shape[0]
            assert 0 < n_pad < pad.size and n_pad != n and pad.size - n_pad != n


# -- the probe models ---------------------------------------------------------------------------------

def test_the_probe_model_tells_one_call_from_two_only_when_it_is_coupled():
    for seed in SEEDS:
        v = _inputs("rdrop_forward", seed)
        specs = [tuple(v[f"spec{k}.{i}"] for i in range(5)) for k in range(4)]
        for x, spec, coupled in ((v["x.0"], specs[0], specs[2]), (v["xs.0"], specs[1], specs[3])):
            one = checks._simulate(spec, x, False, "one call")
            two = checks._simulate(spec, x, False, "two calls")
            assert all(np.allclose(o, t, rtol=1e-6, atol=1e-6) for o, t in zip(one, two))
            one_c = checks._simulate(coupled, x, True, "one call")
            two_c = checks._simulate(coupled, x, True, "two calls")
            assert max(np.abs(o - t).max() for o, t in zip(one_c, two_c)) > 1e-2
            # the two passes differ, and differ from the network without dropout
            assert np.abs(one[0] - one[1]).max() > 1e-2
            full = checks._simulate(spec, x, False, "eval")[0]
            assert min(np.abs(one[0] - full).max(), np.abs(one[1] - full).max()) > 1e-2
            for how in ("parity", "interleaved", "interleaved halves"):
                wrong = checks._simulate(spec, x, False, how)
                assert max(np.abs(w - o).max() for w, o in zip(wrong, one)) > 1e-2, how


def test_the_probe_model_is_public_and_defines_no_graded_function():
    for name in ("symmetric_kl", "rdrop_loss", "rdrop_forward"):
        assert not hasattr(probes, name)


def test_the_stated_bound_for_rdrop_forward():
    """The checks' docstring: a mistake of the halves or of the call count goes unseen only if the
    masks it confuses coincide on all 10 pairs of rows (8 units each) of a check's two calls."""
    p = probes.NET_P
    pairs = probes.NET_B + (probes.NET_B - 1) * probes.NET_T
    assert pairs == 10
    assert (p**2 + (1 - p) ** 2) ** (probes.NET_H * pairs) < 1e-22
    for seed in range(20):                     # every hidden unit of every probe model is active
        v = _inputs("rdrop_forward", seed)
        for k in range(4):
            W1, b1 = v[f"spec{k}.0"], v[f"spec{k}.1"]
            for x in (v["x.0"], v["xs.0"]):
                assert (x @ W1 + b1).min() > 0.1
