"""The numbers and designed networks chapter 03's checks rely on
(autograder/checks/ch03_coadaptation.py, dropout_lab/probes/ch03_coadaptation.py).

The exact checks of random_deletion_accuracy read the deleted units off an
accuracy on the coded network, and tell rescaled survivors apart on the balance
network; the ablation check names a rescaled ablation on its balance network.
These tests hold the networks to the properties the checks' docstring states, on
many probe seeds, and the statistical bounds to their stated values.
"""
import math

import numpy as np
import pytest

from autograder.checks import ch03_coadaptation as checks
from autograder.checks.stats import ALPHA, binomial_bounds
from dropout_lab.probes import ch03_coadaptation as probes


def _logits(X, params, deleted=(), scale=1.0):
    h = np.maximum(X @ params["W1"] + params["b1"], 0.0) * scale
    h[:, list(deleted)] = 0.0
    return h @ params["W2"] + params["b2"]


def _gap(z):
    top = np.sort(z, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


@pytest.mark.parametrize("base", [2, probes.FRESH_REPEATS + 1])
def test_the_coded_network_reveals_how_often_each_unit_was_deleted(base):
    n_repeats = base - 1
    for seed in range(20):
        rng = np.random.default_rng(seed)
        X, y, params = probes._coded_net(rng, base)
        assert len(y) == (base**probes.DEL_H - 1) // (base - 1)
        for _ in range(5):
            sets = [rng.choice(probes.DEL_H, size=int(rng.integers(0, probes.DEL_H + 1)), replace=False)
                    for _ in range(n_repeats)]
            accs = []
            for S in sets:
                for scale in (1.0, 2.0):                       # rescaled survivors: the same predictions
                    z = _logits(X, params, S, scale)
                    assert _gap(z).min() >= 0.5
                    accs.append(np.mean(z.argmax(1) == y))
                assert accs[-1] == accs[-2]
            r = float(np.mean(accs[::2]))
            want = np.zeros(probes.DEL_H, dtype=int)
            for S in sets:
                want[S] += 1
            assert np.array_equal(checks._decode(r, len(y), n_repeats), want)
            assert np.array_equal(checks._decode(np.float32(r), len(y), n_repeats), want)


def test_the_balance_network_separates_rescaled_survivors():
    for seed in range(30):
        rng = np.random.default_rng(seed)
        for f in probes.BALANCE_FRACTIONS:
            k = round(f * probes.DEL_H)
            X, y, params = probes._balance_net(rng, probes.BALANCE_N, probes.DEL_H, probes.DEL_H, probes.DEL_C,
                                               probes.DEL_H - k, probes.DEL_H, False)
            for S in (rng.choice(probes.DEL_H, k, replace=False) for _ in range(10)):
                plain, rescaled = _logits(X, params, S), _logits(X, params, S, 1 / (1 - f))
                assert np.all(plain.argmax(1) == y) and _gap(plain).min() > 0.05
                assert np.all(rescaled.argmax(1) != y) and _gap(rescaled).min() > 0.05


def test_the_ablation_balance_network_names_every_mistake():
    for seed in range(30):
        X, y, params = probes._ablation_balance_net(np.random.default_rng(seed))
        lo, hi = checks._ablation_ranges(X, y, params)
        assert np.array_equal(lo, hi) and np.all(lo > 0), "exact, positive importances"
        for value, why in checks._ablation_mistakes(X, y, params):
            assert not np.allclose(value, lo), why
        for j in range(params["W1"].shape[1]):
            assert _gap(_logits(X, params, [j])).min() > 0.04


def test_the_stated_bounds():
    lo, hi = binomial_bounds(probes.MANY_CALLS, 0.5, ALPHA / probes.DEL_H)
    assert 0 < lo < probes.MANY_CALLS / 2 < hi < probes.MANY_CALLS
    assert math.comb(8, 4) ** -probes.FRESH_CALLS < 1e-22
    values = np.array([0.6, 0.7, 0.7, 0.75, 0.9])
    t = checks._bernstein_t(values, probes.STAT_REPEATS, ALPHA / 2)
    s2, b = values.var(), np.abs(values - values.mean()).max()
    bound = 2 * math.exp(-probes.STAT_REPEATS * t**2 / (2 * s2 + 2 * b * t / 3))
    assert bound == pytest.approx(ALPHA / 2, rel=1e-9)


def test_fractions_never_round_a_half():
    for f in probes.WHOLE_FRACTIONS + probes.ROUND_FRACTIONS + probes.STAT_FRACTIONS + probes.BALANCE_FRACTIONS:
        fh = f * probes.DEL_H
        assert abs(fh - math.floor(fh) - 0.5) > 0.05
    for f in probes.WHOLE_FRACTIONS:
        assert f * probes.DEL_H == int(f * probes.DEL_H)
    assert all(int(f * 8) != round(f * 8) or math.ceil(f * 8) != round(f * 8) for f in probes.ROUND_FRACTIONS)
