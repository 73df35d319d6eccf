"""Every claim chapter 08's prose page (chapters/08-rdrop/index.md) makes about an experiment or a
formula, asserted with the same functions (dropout_lab.experiments.ch08_rdrop) and the same seeds
the page uses. Fixtures are module-scoped: each experiment runs once.

The corrected version of the README snippet lives HERE (``_corrected_kl``), not in the public
package: it is checked against KL divergences computed from explicit sums. A test of the students'
``symmetric_kl`` / ``rdrop_loss`` against the hidden reference belongs to the grader's tests.
"""
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dropout_lab.experiments import ch08_rdrop as ex
from dropout_lab.schematics import ch08_rdrop as schematic

PAGE = Path(__file__).resolve().parent.parent / "chapters" / "08-rdrop" / "index.md"
LAST = -1


# --------------------------------------------------------------------------------------
# Fixtures: the experiments, run once with the page's arguments
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rd():
    return ex.train_rdrop_nets(seeds=range(3))


@pytest.fixture(scope="module")
def tm():
    return ex.epoch_cpu_time(widths=(32, 128, 512, 2048), repeats=5)


@pytest.fixture(scope="module")
def so():
    return ex.second_order_check(ps=(0.05, 0.1, 0.2, 0.5))


def _final(rd, key, name):
    return rd[key][rd["names"].index(name), :, LAST]


PLAIN, TWO = "plain dropout", "two passes, alpha = 0"
A03, A1, A3, A10 = (f"R-Drop, alpha = {a}" for a in ("0.3", "1", "3", "10"))


# --------------------------------------------------------------------------------------
# The snippet, its bugs, and the corrected version
# --------------------------------------------------------------------------------------

def _page_code_blocks():
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_page_quotes_the_snippet_exactly():
    """Page: 'character for character' — the quoted block is the module's README_SNIPPET."""
    quoted = [b for b in _page_code_blocks() if "def compute_kl_loss(self, p, q pad_mask=None):" in b]
    assert len(quoted) == 1
    assert quoted[0] == ex.README_SNIPPET


def test_snippet_does_not_compile_and_self_breaks_the_call():
    """Page: SyntaxError at the def line; with the comma, the snippet's own call raises a TypeError
    because `q` is missing."""
    se = ex.snippet_errors()
    assert se["syntax"].startswith("SyntaxError") and se["syntax_lineno"] == 6
    assert se["syntax_line"] == "def compute_kl_loss(self, p, q pad_mask=None):"
    assert se["type_error"].startswith("TypeError") and "'q'" in se["type_error"]


def test_page_never_prints_a_complete_corrected_body():
    """The corrected function is shown as a contract only: its body is `...`."""
    blocks = [b for b in _page_code_blocks() if "def compute_kl_loss(p, q, pad_mask=None)" in b]
    assert len(blocks) == 1
    assert blocks[0].rstrip().endswith("...")
    assert "kl_div" not in blocks[0] and "masked_fill" not in blocks[0]


def _corrected_kl(p, q, pad_mask=None, reduction="mean"):
    """The README snippet with its bugs fixed (no self, the comma, a mask of the logits' shape without
    the class axis applied to every class, an explicit reduction over the real positions)."""
    p_loss = F.kl_div(F.log_softmax(p, dim=-1), F.softmax(q, dim=-1), reduction="none")
    q_loss = F.kl_div(F.log_softmax(q, dim=-1), F.softmax(p, dim=-1), reduction="none")
    if pad_mask is not None:
        p_loss = p_loss.masked_fill(pad_mask.unsqueeze(-1), 0.0)
        q_loss = q_loss.masked_fill(pad_mask.unsqueeze(-1), 0.0)
    total = (p_loss.sum() + q_loss.sum()) / 2
    if reduction == "sum":
        return total
    count = p.shape[:-1].numel() if pad_mask is None else int((~pad_mask).sum())
    return total / count


def _explicit_sym_kl(p, q):
    """Per position: 0.5 (KL(P||Q) + KL(Q||P)) from explicit numpy sums over the classes."""
    def log_probs(z):
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    lp, lq = log_probs(np.asarray(p, dtype=np.float64)), log_probs(np.asarray(q, dtype=np.float64))
    P, Q = np.exp(lp), np.exp(lq)
    return 0.5 * (np.sum(P * (lp - lq), axis=-1) + np.sum(Q * (lq - lp), axis=-1))


@pytest.mark.parametrize("shape", [(7, 5), (3, 6, 4), (2, 3, 4, 5)])
def test_corrected_snippet_equals_explicit_sums(shape):
    """Page: the corrected version sums each direction over the classes, adds, halves, and reduces over
    the real positions, as a sum or divided by their count."""
    g = torch.Generator().manual_seed(sum(shape))
    a = torch.randn(*shape, generator=g, dtype=torch.float64) * 2
    b = a + torch.randn(*shape, generator=g, dtype=torch.float64)
    per = _explicit_sym_kl(a.numpy(), b.numpy())
    pad = torch.rand(*shape[:-1], generator=g) < 0.3
    pad.view(-1)[0] = False
    real = ~pad.numpy()
    assert math.isclose(float(_corrected_kl(a, b, reduction="sum")), per.sum(), rel_tol=1e-10)
    assert math.isclose(float(_corrected_kl(a, b)), per.mean(), rel_tol=1e-10)
    assert math.isclose(float(_corrected_kl(a, b, pad, "sum")), per[real].sum(), rel_tol=1e-10)
    assert math.isclose(float(_corrected_kl(a, b, pad)), per[real].mean(), rel_tol=1e-10)
    # what the mask hides does not matter: garbage at padded positions leaves the value unchanged
    a2 = a.clone()
    a2[pad] = 1e3 * torch.randn(int(pad.sum()), shape[-1], generator=g, dtype=torch.float64)
    assert math.isclose(float(_corrected_kl(a2, b, pad)), per[real].mean(), rel_tol=1e-10)
    # symmetric in its two arguments
    assert math.isclose(float(_corrected_kl(b, a, pad)), float(_corrected_kl(a, b, pad)), rel_tol=1e-12)


def test_corrected_usage_makes_alpha_independent_of_the_batch_size():
    """Page: with a mean KL beside a mean cross-entropy, alpha no longer depends on the batch size;
    with the snippet's sum, the KL term grows with the batch."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 10, generator=g, dtype=torch.float64)
    b = a + torch.randn(8, 10, generator=g, dtype=torch.float64)
    aa, bb = torch.cat([a, a, a, a]), torch.cat([b, b, b, b])          # the same batch, 4 times
    assert math.isclose(float(_corrected_kl(aa, bb)), float(_corrected_kl(a, b)), rel_tol=1e-12)
    assert math.isclose(float(_corrected_kl(aa, bb, reduction="sum")),
                        4 * float(_corrected_kl(a, b, reduction="sum")), rel_tol=1e-12)


def test_reduction_conversion_table():
    """Page: the table of reductions and the numbers after it."""
    g = torch.Generator().manual_seed(1)
    N, T, C = 4, 6, 5
    a = torch.randn(N, T, C, generator=g, dtype=torch.float64)
    b = a + torch.randn(N, T, C, generator=g, dtype=torch.float64)
    pad = torch.zeros(N, T, dtype=torch.bool)
    pad[1, 4:] = pad[2, 2:] = pad[3, 5:] = True
    n = int((~pad).sum())
    s_bar = float(_explicit_sym_kl(a.numpy(), b.numpy())[~pad.numpy()].mean())
    p_loss = F.kl_div(F.log_softmax(a, -1), F.softmax(b, -1), reduction="none").masked_fill(pad[..., None], 0)
    q_loss = F.kl_div(F.log_softmax(b, -1), F.softmax(a, -1), reduction="none").masked_fill(pad[..., None], 0)
    snippet_sum = float((p_loss.sum() + q_loss.sum()) / 2)
    snippet_mean = float((p_loss.mean() + q_loss.mean()) / 2)
    assert math.isclose(snippet_sum, n * s_bar, rel_tol=1e-10)
    assert math.isclose(snippet_mean, n * s_bar / (N * T * C), rel_tol=1e-10)
    # reduction='batchmean' on (N, T, C) divides the total by N, the first axis only
    la, pb_ = F.log_softmax(a, -1), F.softmax(b, -1)
    assert math.isclose(float(F.kl_div(la, pb_, reduction="batchmean")),
                        float(F.kl_div(la, pb_, reduction="sum")) / N, rel_tol=1e-12)
    assert math.isclose(float((p_loss.sum() + q_loss.sum()) / 2 / N), n * s_bar / N, rel_tol=1e-10)
    # "alpha_sum = 0.01 is alpha = 0.64 for 64 images and 19.2 for 64 sentences of 30 real tokens"
    assert math.isclose(0.01 * 64, 0.64) and math.isclose(0.01 * 64 * 30, 19.2)
    # "alpha_elem = 1 over a 32 000-token vocabulary is alpha ~ 3e-5"
    assert 2.5e-5 < 1 / 32000 < 3.5e-5


def test_official_forms_convert_as_the_page_says():
    """Page: fairseq's form is 2 x this chapter's loss with alpha_f / 2; the ViT code's is 2 x with
    alpha_v * B; the BERT code's is 2 x with B / 4. Checked on random classification batches."""
    g = torch.Generator().manual_seed(2)
    for B in (8, 16, 32):
        a = torch.randn(B, 7, generator=g, dtype=torch.float64)
        b = a + torch.randn(B, 7, generator=g, dtype=torch.float64)
        y = torch.randint(0, 7, (B,), generator=g)
        ce1 = F.cross_entropy(a, y)
        ce2 = F.cross_entropy(b, y)
        s_bar = _corrected_kl(a, b)
        kl_sum = F.kl_div(F.log_softmax(a, -1), F.softmax(b, -1), reduction="sum")
        rev_sum = F.kl_div(F.log_softmax(b, -1), F.softmax(a, -1), reduction="sum")

        def ours(alpha):
            return 0.5 * (ce1 + ce2) + alpha * s_bar

        alpha_f = 5.0                       # fairseq: sums over tokens of both copies, / n tokens
        fairseq = (F.cross_entropy(torch.cat([a, b]), torch.cat([y, y]), reduction="sum")
                   + alpha_f * (kl_sum + rev_sum) / 2) / B
        assert math.isclose(float(fairseq), float(2 * ours(alpha_f / 2)), rel_tol=1e-10)
        alpha_v = 0.3                       # ViT: CE1 + CE2 (means) + alpha (sum KL + sum reverse KL)
        vit = ce1 + ce2 + alpha_v * (kl_sum + rev_sum)
        assert math.isclose(float(vit), float(2 * ours(alpha_v * B)), rel_tol=1e-10)
        bert = ce1 + ce2 + 0.5 * (kl_sum + rev_sum) / 2.0
        assert math.isclose(float(bert), float(2 * ours(B / 4)), rel_tol=1e-10)
    # "alpha = 9.6" (0.3 x 32 images per call), "8, 4, 2" (B/4), "2.5, 0.35, 0.5" (alpha_f / 2)
    assert math.isclose(0.3 * (512 // 16), 9.6)
    assert [B / 4 for B in (32, 16, 8)] == [8, 4, 2]
    assert [a / 2 for a in (5, 0.7, 1.0)] == [2.5, 0.35, 0.5]


# --------------------------------------------------------------------------------------
# KL divergence: direction, stability, the padded batch, the broadcasting trap
# --------------------------------------------------------------------------------------

def test_kl_direction():
    """Page: F.kl_div(log Q, P) = KL(P||Q) = 0.245, F.kl_div(log P, Q) = KL(Q||P) = 0.311; probabilities
    passed as input give -1.02 silently; the identity; the reductions; the warning for 'mean'."""
    kd = ex.kl_direction(seed=0)
    assert abs(kd["kl_div(logQ, P)"] - kd["kl_pq"]) < 1e-12 and round(kd["kl_pq"], 3) == 0.245
    assert abs(kd["kl_div(logP, Q)"] - kd["kl_qp"]) < 1e-12 and round(kd["kl_qp"], 3) == 0.311
    assert abs(kd["kl_div(logP, logQ, log_target)"] - kd["kl_qp"]) < 1e-12
    assert round(kd["kl_div(Q, P)"], 2) == -1.02
    # "the two directions differ by a quarter here"
    assert 0.2 < kd["kl_qp"] / kd["kl_pq"] - 1 < 0.3
    assert abs(kd["jeffreys"] - kd["jeffreys_identity"]) < 1e-12
    assert math.isclose(kd["batch_batchmean"], kd["batch_sum"] / 8, rel_tol=1e-12)
    assert math.isclose(kd["batch_mean"], kd["batch_sum"] / 32, rel_tol=1e-12)
    assert kd["mean_warning"] and "batch size and the support size" in kd["mean_warning"]


def test_jeffreys_identity_and_nonnegativity():
    """Page: KL(P||Q) + KL(Q||P) = sum (P - Q)(log P - log Q), each term >= 0 (the form the
    experiments use for the symmetric KL)."""
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(6), size=200)
    Q = rng.dirichlet(np.ones(6), size=200)
    lhs = np.sum(P * np.log(P / Q), 1) + np.sum(Q * np.log(Q / P), 1)
    terms = (P - Q) * (np.log(P) - np.log(Q))
    assert np.allclose(lhs, terms.sum(1), atol=1e-12)
    assert np.all(terms >= 0)


def test_log_softmax_stability():
    """Page: log(softmax) gives -inf, nan and inf; log_softmax gives 0.693, 59.31, 30.0 like float64;
    float32 underflows from a gap of 104, float16 from 17.5."""
    ls = ex.log_softmax_demo(margin=120.0)
    assert ls["logp1_naive"][0] == -math.inf and ls["logp1_stable"] == [-120.0, 0.0]
    assert math.isnan(ls["kl12_naive"]) and ls["kl21_naive"] == math.inf and math.isnan(ls["sym_naive"])
    for k in ("kl12", "kl21", "sym"):
        assert math.isclose(ls[f"{k}_stable"], ls[f"{k}_exact"], rel_tol=1e-6)
    assert round(ls["kl12_exact"], 4) == 0.6931 and round(ls["kl21_exact"], 2) == 59.31
    assert round(ls["sym_exact"], 3) == 30.0
    assert ls["fp16_underflow"] == 17.5
    small = [float(torch.softmax(torch.tensor([0.0, m]), -1)[0]) for m in (103.0, 104.0)]
    assert small[0] > 0 and small[1] == 0.0
    assert 103.2 < -math.log(torch.finfo(torch.float32).smallest_normal * 2.0 ** -23) < 103.4


def test_one_underflowing_example_poisons_every_parameter_gradient():
    """Page: with log(softmax), one example with an underflowing probability makes the batch's loss nan
    and, through the shared weights, the gradient of every parameter."""
    W = torch.tensor([[0.0, 120.0], [0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.3]])        # example 0: logits (0, 120)

    def loss_with(logp):
        z1 = x @ W + b
        z2 = torch.zeros_like(z1)                                 # a second, undecided pass
        l1, l2 = logp(z1), logp(z2)
        return (0.5 * ((l1.exp() * (l1 - l2)).sum(-1) + (l2.exp() * (l2 - l1)).sum(-1))).mean()

    naive = loss_with(lambda z: torch.log(torch.softmax(z, -1)))
    naive.backward()
    assert torch.isnan(naive) and torch.isnan(W.grad).all() and torch.isnan(b.grad).all()
    W.grad = b.grad = None
    stable = loss_with(lambda z: F.log_softmax(z, -1))
    stable.backward()
    assert torch.isfinite(stable) and torch.isfinite(W.grad).all() and torch.isfinite(b.grad).all()


def test_padded_batch_example():
    """Page: 10 real positions of 15; sum 1.569, mean 0.157, sum/(NT) 0.105 'a third less', sum/(NTC)
    0.026 'six times less', the padded positions add 0.601."""
    pb = ex.padded_batch_example(lengths=(5, 3, 2), n_classes=4, seed=0)
    assert pb["n_real"] == 10 and pb["N"] * pb["T"] == 15 and pb["C"] == 4
    assert pb["pad"].sum() == 5 and not pb["pad"][0].any()
    assert round(pb["sum"], 3) == 1.569 and round(pb["mean"], 3) == 0.157
    assert round(pb["mean_wrong_count"], 3) == 0.105 and math.isclose(pb["mean_wrong_count"], pb["mean"] * 10 / 15)
    assert round(pb["elementwise_mean"], 3) == 0.026 and math.isclose(pb["elementwise_mean"] * 6, pb["mean"])
    assert round(pb["sum_ignoring_mask"] - pb["sum"], 3) == 0.601
    assert round(pb["sum_ignoring_mask"], 3) == 2.170 and round(pb["mean_ignoring_mask"], 3) == 0.145
    # the per-position values agree with an independent computation
    per = _explicit_sym_kl(pb["logits1"], pb["logits2"])
    assert np.allclose(per, pb["per_position"], atol=1e-12)


def test_mask_broadcasts_along_the_class_axis():
    """Page: with N == C the (N,) mask raises nothing and gives 1.839 instead of 2.169; with 12 examples
    PyTorch raises."""
    bd = ex.mask_broadcast_demo(seed=0)
    assert round(bd["right"], 4) == 2.1686 and round(bd["wrong"], 4) == 1.8388
    assert round(bd["unmasked"], 4) == 2.5310
    assert bd["error"] is not None and "must match" in bd["error"]


# --------------------------------------------------------------------------------------
# The second-order argument
# --------------------------------------------------------------------------------------

def test_kl_is_quadratic_to_second_order():
    """Eq. ch08-kl-quadratic: KL(softmax(a) || softmax(a + eps)) = 0.5 eps^T F eps + O(eps^3)."""
    g = torch.Generator().manual_seed(3)
    a = torch.randn(10, generator=g, dtype=torch.float64)
    d = torch.randn(10, generator=g, dtype=torch.float64)
    pi = a.softmax(-1)
    Fm = torch.diag(pi) - torch.outer(pi, pi)
    rel = []
    for t in (1e-1, 1e-2, 1e-3):
        e = t * d
        kl = float((pi * (a.log_softmax(-1) - (a + e).log_softmax(-1))).sum())
        rel.append(abs(kl / float(0.5 * e @ Fm @ e) - 1))
    assert rel[1] < 0.2 * rel[0] and rel[2] < 0.2 * rel[1] and rel[2] < 1e-2
    assert torch.allclose(Fm @ torch.ones(10, dtype=torch.float64), torch.zeros(10, dtype=torch.float64), atol=1e-15)


def test_second_order_check(so):
    """Page: within 0.5% at p = 0.05 and 0.1, within 3% at p = 0.2, Monte Carlo 12% below at p = 0.5."""
    r = dict(zip(np.round(so["ps"], 2), so["ratio"]))
    assert abs(r[0.05] - 1) < 0.005 and abs(r[0.1] - 1) < 0.005
    assert abs(r[0.2] - 1) < 0.03
    assert 0.86 < r[0.5] < 0.89


# --------------------------------------------------------------------------------------
# The concatenated batch
# --------------------------------------------------------------------------------------

def test_concatenated_masks_are_independent():
    """Page: the two copies' masks overlap as independent masks would: (1-p)^2, p^2, 2p(1-p)."""
    mo = ex.mask_overlap(p=0.5, batch=500, width=128, seed=0)
    n = 500 * 128
    tol = 5 * math.sqrt(0.25 * 0.75 / n)
    assert abs(mo["kept_both"] - 0.25) < tol and abs(mo["dropped_both"] - 0.25) < tol
    assert abs(mo["differ"] - 0.5) < 5 * math.sqrt(0.25 / n)
    assert all(abs(k - 0.5) < 0.01 for k in mo["kept_each"])
    assert mo["identical_rows"] == 0


def test_batchnorm_and_the_concatenated_batch():
    """Page: same mean and biased variance before dropout; 2 updates vs 1; ratio 0.9677 for B = 16;
    pass 1's output moves by up to 1.17 when only pass 2's mask is redrawn, and not at all otherwise."""
    bn = ex.batchnorm_concat(batch=16, width=8, p=0.5, seed=0)
    assert bn["max_mean_diff"] < 1e-6 and bn["max_var_diff"] < 1e-6
    assert bn["tracked_two_calls"] == 2 and bn["tracked_concat"] == 1
    assert round(bn["expected_ratio"], 4) == 0.9677
    assert abs(bn["running_var_ratio"] - bn["expected_ratio"]) < 1e-5
    assert round(bn["coupling_concat"], 2) == 1.17
    assert bn["coupling_two_calls"] == 0.0 and bn["coupling_no_bn"] == 0.0


# --------------------------------------------------------------------------------------
# The digits experiment
# --------------------------------------------------------------------------------------

def test_experiment_setup(rd):
    """Page: six conditions, three seeds, evaluated every 5 epochs up to 50."""
    assert rd["names"] == [c[0] for c in ex.CONDITIONS] and len(rd["names"]) == 6
    assert list(rd["alphas"]) == [0.0, 0.0, 0.3, 1.0, 3.0, 10.0] and list(rd["passes"]) == [1, 2, 2, 2, 2, 2]
    assert rd["acc_full"].shape == (6, 3, 11) and rd["epochs"][-1] == 50 and rd["epochs"][1] == 5
    assert ex.HIDDEN == 128 and ex.P_DROP == 0.5


def test_symmetric_kl_falls_with_alpha(rd):
    """Page: 0.142 (plain), 0.133 (two passes), 0.112, 0.091, 0.085, 0.052; falls steadily with alpha."""
    sym = {n: _final(rd, "symkl_sub", n).mean() for n in rd["names"]}
    expected = {PLAIN: 0.142, TWO: 0.133, A03: 0.112, A1: 0.091, A3: 0.085, A10: 0.052}
    for n, v in expected.items():
        assert abs(sym[n] - v) < 0.0051, (n, sym[n])
    order = [sym[n] for n in (TWO, A03, A1, A3, A10)]
    assert all(x > y for x, y in zip(order, order[1:]))
    # "reduced the disagreement by a fifth to a third" (alpha = 0.3 and 1) / "more than a third" at 1
    assert 0.18 < 1 - sym[A03] / sym[PLAIN] < 0.25
    assert 1 - sym[A1] / sym[PLAIN] > 1 / 3
    # and already during training (right panel): at every evaluation after the first, alpha = 1 < plain
    for i in range(1, len(rd["epochs"])):
        assert rd["symkl_sub"][rd["names"].index(A1), :, i].mean() < rd["symkl_sub"][0, :, i].mean()


def test_gap_to_the_full_network_narrows(rd):
    """Page: KL(full || sub) 0.053 -> 0.035 at alpha = 1; the ratio of the two KLs is 2.2 to 2.8."""
    kl = {n: _final(rd, "kl_full_sub", n).mean() for n in rd["names"]}
    assert round(kl[PLAIN], 3) == 0.053 and round(kl[A1], 3) == 0.035
    assert kl[A10] < kl[A3] < kl[A1] < kl[A03] < kl[TWO]
    ratio = rd["symkl_sub"][:, :, LAST] / rd["kl_full_sub"][:, :, LAST]
    assert ratio.min() > 2.15 and ratio.max() < 2.8


def test_decisions_agree_more(rd):
    """Page: sub-sub agreement 95.7% -> 96.9% (alpha = 1); sub-full 97.1% -> 97.8%; one sub-network
    95.9% -> 96.3%; agreement suffers at alpha = 10 (about 92%)."""
    ap = {n: 100 * _final(rd, "agree_pair", n).mean() for n in rd["names"]}
    af = {n: 100 * _final(rd, "agree_full", n).mean() for n in rd["names"]}
    sub = {n: 100 * _final(rd, "acc_sub", n).mean() for n in rd["names"]}
    assert round(ap[PLAIN], 1) == 95.7 and round(ap[A1], 1) == 96.9
    assert round(af[PLAIN], 1) == 97.1 and round(af[A1], 1) == 97.8
    assert round(sub[PLAIN], 1) == 95.9 and round(sub[A1], 1) == 96.3
    assert 91.5 < ap[A10] < 93.0 and ap[A10] < ap[PLAIN]


def test_full_network_accuracy_does_not_change_measurably(rd):
    """Page: 97.67, 98.00, 97.67, 97.83 after 50 epochs; at most 1.3 digits apart on average; paired
    differences of alpha = 0.3 and 1 from plain go both ways, between -0.25 and +0.75 points; the two-pass
    control ahead in two seeds and level in the third; no alpha better than the control."""
    acc = {n: 100 * _final(rd, "acc_full", n) for n in rd["names"]}
    expected = {PLAIN: 97.67, TWO: 98.00, A03: 97.67, A1: 97.83}
    for n, v in expected.items():
        assert abs(acc[n].mean() - v) < 0.006, (n, acc[n].mean())
    means = [acc[n].mean() for n in expected]
    assert round((max(means) - min(means)) / 0.25, 1) <= 1.3      # in test digits
    for n in (A03, A1):
        diff = acc[n] - acc[PLAIN]
        assert diff.min() < 0 < diff.max() and diff.min() >= -0.25 - 1e-9 and diff.max() <= 0.75 + 1e-9
    diff_two = acc[TWO] - acc[PLAIN]
    assert np.sum(diff_two > 0) == 2 and np.sum(np.abs(diff_two) < 1e-9) == 1
    assert all(acc[n].mean() <= acc[TWO].mean() for n in (A03, A1, A3, A10))
    # "the spread between seeds is of the same size" (standard deviations 0.2 to 0.42 points)
    assert all(0.15 < acc[n].std() < 0.45 for n in expected)


def test_large_alpha_costs_fit(rd):
    """Page: training CE 0.070 vs 0.030 at alpha = 3 ('more than doubles'), test 96.5%; alpha = 10:
    training CE 0.53, stalls near 92% from the fifteenth epoch on, ends at 92.2%."""
    ce = {n: _final(rd, "train_ce_full", n).mean() for n in rd["names"]}
    assert round(ce[PLAIN], 3) == 0.030 and round(ce[A3], 3) == 0.070 and ce[A3] > 2 * ce[PLAIN]
    assert round(ce[A10], 2) == 0.53
    assert round(100 * _final(rd, "acc_full", A3).mean(), 1) == 96.5
    assert round(100 * _final(rd, "acc_full", A10).mean(), 1) == 92.2
    curve = 100 * rd["acc_full"][rd["names"].index(A10)].mean(axis=0)
    from_15 = curve[list(rd["epochs"]).index(15):]
    assert np.all(np.abs(from_15 - 92.5) < 1.2)
    # "up to alpha = 1 the accuracy curves lie on top of each other": within 1.5 points from epoch 10 on
    i10 = list(rd["epochs"]).index(10)
    curves = np.array([100 * rd["acc_full"][rd["names"].index(n)].mean(axis=0)[i10:] for n in (PLAIN, TWO, A03, A1)])
    assert np.ptp(curves, axis=0).max() < 1.5
    # "alpha = 3 ends about one point lower"
    assert 0.8 < 100 * (_final(rd, "acc_full", PLAIN).mean() - _final(rd, "acc_full", A3).mean()) < 1.5


# --------------------------------------------------------------------------------------
# Cost (wide tolerances: CPU times on a shared machine)
# --------------------------------------------------------------------------------------

def test_rdrop_epoch_costs_between_one_and_two_plain_epochs(tm):
    """Page: about 1.5 times for the narrowest networks, about 1.8 for 2048 units, below 2; the
    concatenated batch and two calls about the same."""
    for mode in ("concat", "two calls"):
        ratio = np.median(tm[mode] / tm["plain"], axis=1)
        assert np.all(ratio > 1.2) and np.all(ratio < 2.3), (mode, ratio)
        assert ratio[0] < 1.95 and ratio[-1] > 1.5, (mode, ratio)
    same = np.median(tm["concat"] / tm["two calls"], axis=1)
    assert np.all((same > 0.8) & (same < 1.15)), same
    # time grows with width
    assert np.all(np.diff(np.median(tm["plain"], axis=1)) > 0)


# --------------------------------------------------------------------------------------
# Schematic
# --------------------------------------------------------------------------------------

def test_schematic_renders():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = schematic.draw_two_passes_vs_concat()
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "P_1" in texts and "P_2" in texts and "KL" in texts and "first half" in texts
    assert schematic.MASK1 != schematic.MASK2
    assert round(schematic.symmetric_kl_of_illustration(), 3) == 0.104
    assert math.isclose(schematic.P1.sum(), 1.0) and math.isclose(schematic.P2.sum(), 1.0)
    plt.close(fig)
