"""The numbers and designed models chapter 06's checks rely on
(autograder/checks/ch06_batchnorm.py, dropout_lab/probes/ch06_batchnorm.py).

train_var of bn_input_variance is checked against an interval built from
Bernstein bounds on the models whose dropout layer feeds the measured BN
directly; these tests hold that interval to what the checks' docstring states:
the bounds solve their equations at the stated probability, a correct
measurement lies inside it however the masks fall, and the variance with
dropout off lies outside it on every probe seed (so "dropout never switched
on" cannot pass by luck). uout's Hoeffding bounds and the representative case
of the formula messages are pinned too.
"""
import math

import numpy as np
import pytest
import torch

from autograder.checks import ch06_batchnorm as checks
from autograder.checks.stats import ALPHA
from autograder.reference import ch06_batchnorm as ref
from dropout_lab.experiments.threads import one_thread
from dropout_lab.probes import ch06_batchnorm as probes

SEEDS = range(6)


def test_bernstein_solves_its_equation():
    for V, b, delta in ((0.3, 0.01, ALPHA / checks.BN_STAT_BOUNDS), (2e-4, 5e-3, 1e-6)):
        t = checks._bernstein(V, b, delta)
        assert 2 * math.exp(-t * t / (2 * (V + b * t / 3))) == pytest.approx(delta, rel=1e-9)
    assert checks.BN_STAT_BOUNDS == 2 * sum(
        probes.BN_CALLS[k][0](np.random.default_rng(0))[1][probes.BN_CALLS[k][1]].num_features
        for k in checks.DIRECT_KEYS)


def test_hoeffding_bounds_of_uout():
    n = sum(int(np.prod(shape)) for _, shape, _, _ in probes.UOUT_CALLS)
    assert n == 22740
    t = checks._hoeffding_mean(n, ALPHA / 2)
    assert 2 * math.exp(-n * t * t / 2) == pytest.approx(ALPHA / 2, rel=1e-9)
    t = checks._hoeffding_unit(n, ALPHA / 2)
    assert 2 * math.exp(-2 * n * t * t) == pytest.approx(ALPHA / 2, rel=1e-9)
    # r on [0, beta] (mean 1/2) and r on (-beta/2, beta/2) (mean square 1/12) are far outside
    assert checks._hoeffding_mean(n, ALPHA / 2) < 0.05 and checks._hoeffding_unit(n, ALPHA / 2) < 0.03


@pytest.mark.parametrize("key", checks.DIRECT_KEYS)
def test_the_interval_holds_a_correct_measurement_and_excludes_dropout_off(key):
    """Every probe seed: the variance with dropout off is outside the interval on some channel
    by more than the float slack, and 40 independent measurements with dropout on lie inside."""
    builder, which, _ = probes.BN_CALLS[key]
    with one_thread():
        for seed in SEEDS:
            model, bns, X = builder(np.random.default_rng(seed))
            bn = bns[which]
            lo, hi = checks.train_var_interval(model, bn, X)
            off = checks._channel_var(checks._module_input(model, bn, X))
            assert not checks._inside(off, lo, hi), (key, seed)
            assert np.max(lo - off) > 0.5 * np.max(hi - lo), "dropout off must be far outside, not just outside"
            model.train()
            for draw in range(40 if seed == 0 else 5):
                torch.manual_seed(1000 * seed + draw)
                train_var, _ = ref.bn_input_variance(model, bn, X)
                assert checks._inside(train_var.double().numpy(), lo, hi), (key, seed, draw)


def test_the_models_whose_statistics_are_stale_tell_batch_statistics_apart():
    """The BN layers with stale running statistics make a forward pass with batch statistics
    visibly different, so eval_var (and train_var after them) name that mistake exactly."""
    with one_thread():
        for seed in SEEDS:
            model, bns, X = probes._dropout_after(np.random.default_rng(seed))
            running = checks._channel_var(checks._module_input(model, bns["second"], X))
            batch = checks._channel_var(checks._module_input(model, bns["second"], X, train_bn=True))
            assert np.max(np.abs(batch / running - 1)) > 0.05, seed


def test_the_representative_case_tells_every_named_mistake_apart():
    for truth, mistakes in ((checks._train_var, checks.DV_MISTAKES), (checks._ratio, checks.SR_MISTAKES)):
        values = [truth(*probes.REPRESENTATIVE)] + [fn(*probes.REPRESENTATIVE) for fn, _ in mistakes]
        for i, a in enumerate(values):
            for b in values[i + 1:]:
                assert abs(a - b) > 0.01 * abs(a), (a, b)
    assert 0.5 not in probes.FORMULA_PS                      # p and 1 - p coincide there


def test_uout_inputs_make_additive_noise_visible():
    """|x| between 1/4 and 4: additive noise r leaves [-beta, beta] once divided by a small |x|."""
    rng = np.random.default_rng(0)
    for key, shape, dtype, beta in probes.UOUT_CALLS:
        x = probes._signed_magnitudes(rng, shape, dtype).double()
        assert float(x.abs().min()) >= 0.25 - 1e-6 and float(x.abs().max()) <= 4.0 + 1e-5
        assert float((x.abs() < 0.5).double().mean()) > 0.15, key
