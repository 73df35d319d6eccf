"""The numbers and designed inputs chapter 07's checks rely on
(autograder/checks/ch07_variants.py, dropout_lab/probes/ch07_variants.py).

The checks read each function's noise back from its output; these tests hold the probes'
designs to that (the DropConnect batch reveals the masked weights and the bias, the
Multi-Sample head is invertible, DropBlock's lattice positions are independent and
interior), the statistical bounds to their stated values, and the named mistakes to
expectations far outside the acceptance intervals, so that the checks reject them
without ever failing a correct function by chance.
"""
import math

import numpy as np
import pytest
from scipy import stats as sstats

from autograder.checks import ch07_variants as checks
from autograder.checks.stats import ALPHA, Z_ALPHA, binomial_bounds
from dropout_lab.probes import ch07_variants as probes


def _outside(n, q_true, q_wrong, alpha, sds=5.0):
    """The wrong rate's mean count lies at least ``sds`` of its own standard deviations
    outside the acceptance interval of the true rate."""
    lo, hi = binomial_bounds(n, q_true, alpha)
    mean, sd = n * q_wrong, math.sqrt(n * q_wrong * (1 - q_wrong))
    return mean + sds * sd < lo or mean - sds * sd > hi


# -- dropconnect_linear -----------------------------------------------------------------------------

def test_the_dropconnect_design_reveals_the_weights_the_bias_and_a_per_example_mask():
    rng = np.random.default_rng(0)
    n_in, n_out = probes.DC_IN, probes.DC_OUT
    x = probes.dropconnect_design(rng.normal(size=(probes.DC_RANDOM, n_in)))
    weight, bias = rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)
    mask = rng.random(weight.shape) >= 0.5
    out = x @ (weight * mask / 0.5).T + bias
    w_eff, b, resid = checks._dc_split(out, x)
    assert np.allclose(w_eff, weight * mask / 0.5) and np.allclose(b, bias) and np.allclose(resid, 0)
    per_example = np.stack([xi @ (weight * (rng.random(weight.shape) >= 0.5) / 0.5).T + bias for xi in x])
    assert not np.allclose(checks._dc_split(per_example, x)[2], 0, atol=1e-3)


def test_the_dropconnect_bounds():
    # whole rows or columns of the mask at p = 0.5: the bound stated in _dc_structure_problem
    assert probes.DC_IN * 2 * 2.0**-probes.DC_OUT + probes.DC_OUT * 2 * 2.0**-probes.DC_IN < 1e-10
    n = probes.DC_IN * probes.DC_OUT
    for p in (0.2, 0.8):
        assert _outside(n, p, 1 - p, ALPHA / 5)            # p read as the keep probability


# -- gaussian_dropout ----------------------------------------------------------------------------------

def test_the_gaussian_bounds_reject_the_named_mistakes():
    n = probes.GD_SHAPE[0] * probes.GD_SHAPE[1]
    mean_hw, (chi_lo, chi_hi), t = checks._z_bounds(n, ALPHA / 9)
    assert math.isclose(2 * math.exp(-2 * n * t * t), ALPHA / 9)          # DKW with Massart's constant
    assert 9 * (ALPHA / 9) <= ALPHA * (1 + 1e-12)
    sd_chi = math.sqrt(2 * n)
    for p in probes.GD_PS:
        v = p / (1 - p)
        for wrong in (p * p, p, v * v, 1 / v):                            # std p, var p, std v, var (1-p)/p
            if abs(wrong / v - 1) > 0.1:
                s = n * wrong / v                                          # the sum of z^2 it gives
                assert s + 5 * sd_chi * wrong / v < chi_lo or s - 5 * sd_chi * wrong / v > chi_hi, (p, wrong)
    # Uniform noise with the right moments: its CDF differs from the normal's by 0.057 at most,
    # far above the DKW half-width.
    z = np.linspace(-1.7, 1.7, 3401)
    uniform = np.clip((z + math.sqrt(3)) / (2 * math.sqrt(3)), 0, 1)
    assert np.max(np.abs(uniform - sstats.norm.cdf(z))) > 2 * t


def test_noise_added_instead_of_multiplied_has_a_different_spread():
    """|x| uniform on [1, 3]: E[1/x^2] = 1/3, so out / x of x + noise has a third of the variance."""
    x = np.linspace(1.0, 3.0, 200001)
    assert math.isclose(np.mean(1 / x**2), 1 / 3, rel_tol=1e-4)


def test_the_gaussian_check_passes_exact_normal_noise_and_fails_its_mistakes():
    rng = np.random.default_rng(1)
    x = probes._nonzero(rng, probes.GD_SHAPE, 1.0, 3.0)
    p, v = 0.2, 0.25
    z = rng.normal(size=x.shape)
    assert checks._gauss_problem(x * (1 + math.sqrt(v) * z), x, p, ALPHA / 9) is None
    assert "standard deviation p = 0.2" in checks._gauss_problem(x * (1 + p * z), x, p, ALPHA / 9)
    assert "variance p = 0.2" in checks._gauss_problem(x * (1 + math.sqrt(p) * z), x, p, ALPHA / 9)
    assert "added" in checks._gauss_problem(x + math.sqrt(v) * z, x, p, ALPHA / 9)
    bern = x * (rng.random(x.shape) >= p) / (1 - p)
    assert "Bernoulli" in checks._gauss_problem(bern, x, p, ALPHA / 9)


# -- spatial_dropout, drop_path, multi_sample_dropout_logits -----------------------------------------------

def test_the_rate_bounds_reject_p_read_as_keep():
    maps = probes.SD_SHAPE[0] * probes.SD_SHAPE[1]
    for p in (0.2, 0.8):
        assert _outside(maps, p, 1 - p, ALPHA / 5)
        assert _outside(probes.DP_ROWS[0], p, 1 - p, ALPHA / 5)
        assert _outside(probes.MS_K * probes.MS_N * probes.MS_D, p, 1 - p, ALPHA / 5)
    assert _outside(probes.DP_BATCH_CALLS, probes.DP_BATCH_P, 1 - probes.DP_BATCH_P, ALPHA / 5)


def test_neighbour_agreements_reject_shared_coins():
    """A mask shared along an axis makes every neighbour agree: far above the bound."""
    for n in ((probes.SD_SHAPE[0] - 1) * probes.SD_SHAPE[1], probes.DP_ROWS[0] - 1,
              (probes.MS_N - 1) * probes.MS_D * probes.MS_K):
        lo, hi = binomial_bounds(n, 0.5, ALPHA / 5)
        assert 0 < lo < n / 2 < hi < n


def test_multi_sample_bounds_and_head():
    assert math.comb(probes.MS_K, 2) * 0.68**(probes.MS_N * probes.MS_D) < 1e-70
    assert 0.68 ** (probes.MS_D * (probes.MS_N - 1)) < 1e-70
    rng = np.random.default_rng(2)
    weight, _ = np.linalg.qr(rng.normal(size=(probes.MS_C, probes.MS_D)))
    assert np.allclose(weight.T @ weight, np.eye(probes.MS_D))                # (L - b) @ W recovers h


# -- dropblock ----------------------------------------------------------------------------------------------

def test_the_dropblock_lattice_is_interior_and_independent():
    key, shape, p, b = probes.DB_CALLS[0]
    h, w = shape[2:]
    r = b // 2
    rows, cols = checks.lattice(shape, b)
    assert len(rows) * len(cols) == 9
    centres = []
    for i in rows:
        for j in cols:
            cover = {(u, v) for u in range(i - r, i + r + 1) for v in range(j - r, j + r + 1)}
            assert all(r <= u < h - r and r <= v < w - r for u, v in cover)   # every covering centre is valid
            centres.append(cover)
    assert sum(map(len, centres)) == len(set().union(*centres))              # pairwise disjoint


def test_the_dropblock_rate_rejects_the_wrong_seed_rates():
    key, shape, p, b = probes.DB_CALLS[0]
    n = shape[0] * shape[1] * 9
    q = checks._lattice_q(p, b, *shape[2:])
    assert _outside(n, q, 1 - (1 - p / b**2) ** (b * b), ALPHA / 3)          # no valid-region factor
    assert _outside(n, q, 1 - (1 - p) ** (b * b), ALPHA / 3)                 # gamma = p
    agree = q * q + (1 - q) ** 2
    lo, hi = binomial_bounds(n // 2, agree, ALPHA / 3)
    assert hi < n // 2                                                        # a shared mask agrees everywhere


def test_the_lattice_rate_matches_the_reference():
    """q = 1 - (1 - gamma)^(b^2) is what the hidden reference realises (a loose Monte Carlo check)."""
    import torch

    from autograder.reference.ch07_variants import dropblock

    key, shape, p, b = probes.DB_CALLS[0]
    g = torch.Generator().manual_seed(0)
    rows, cols = checks.lattice(shape, b)
    hits = [(dropblock(torch.ones(shape, dtype=torch.float64), p, b, g) == 0).numpy()[:, :, rows][:, :, :, cols]
            for _ in range(5)]
    q = checks._lattice_q(p, b, *shape[2:])
    freq = np.mean(hits)
    assert abs(freq - q) < 5 * math.sqrt(q * (1 - q) / (5 * np.prod(shape[:2]) * 9))


def test_squares_are_recognised():
    rng = np.random.default_rng(3)
    h, w, b = 12, 11, 3
    r = b // 2
    seeds = (rng.random((2, 3, h, w)) < 0.05)
    seeds[..., :r, :] = seeds[..., h - r:, :] = seeds[..., :, :r] = seeds[..., :, w - r:] = False
    dropped = checks._window_reduce(seeds, b, False, np.logical_or)
    assert checks._squares_explain(dropped, b) and checks._block_problem(dropped, b) is None
    border = dropped.copy()
    border[0, 0, 0, 0] = True                                                 # a square cut off at the corner
    border[0, 0, :2, :2] = True
    assert "stick out" in checks._block_problem(border, b)


# -- cutout ----------------------------------------------------------------------------------------------------

def test_cutout_clipping_probabilities():
    """For centres uniform over the rows, a square is clipped at the top for size//2 of the H
    centres (odd size), and a square kept inside never is: the binomial bounds of the check
    separate the two."""
    key, (n, _, h, w), size = probes.CO_CALLS[0]
    k = size // 2
    starts = [max(c - k, 0) for c in range(h)]
    lengths = [min(c - k + size, h) - max(c - k, 0) for c in range(h)]
    top = sum(1 for s, length in zip(starts, lengths) if s == 0 and length < size)
    assert top == k
    lo, hi = binomial_bounds(n, k / h, ALPHA / 4)
    assert lo > 0 and hi < n
    assert binomial_bounds(n // 2, 1 / (h * w), ALPHA / 2)[1] < n // 2       # the same square for every image


@pytest.mark.parametrize("size", [5, 6, 7])
def test_accepted_spans(size):
    spans = checks._accepted_spans(16, size)
    assert (0, size - size // 2) in spans                                     # centre in row 0
    assert all(length <= size for _, length in spans)
    if size % 2:
        assert len(spans) == 16                                               # one span per centre
    assert Z_ALPHA > 6
