"""The numbers chapter 02's statistical checks rely on (autograder/checks/ch02_ensembles.py).

The many-sample check of mc_dropout_average accepts averages within Hoeffding's
t of the exact average; it rejects "one mask reused for every sample" only
because, on the probe's networks, no single mask's output is that close to the
exact average. That is a property of the probe's random networks, measured
here (3000 networks in the docstring; 300 here, to stay fast).
"""
import math

import numpy as np

from autograder.checks import ch02_ensembles as checks
from autograder.checks.stats import ALPHA
from dropout_lab.probes.ch02_ensembles import BOOT_N, MC_MANY_PS, MC_N, MC_SHAPE, _net


def _single_mask_gap(X, params, p):
    """The smallest, over masks, of the largest entry of |mask output - exact average|."""
    exact = checks._ensembles(X, params, p)[0]
    outs = checks._mask_outputs(X, params, 1 / (1 - p))
    return float(np.abs(outs - exact).reshape(len(outs), -1).max(axis=1).min())


def test_one_mask_is_always_far_outside_the_sampling_band():
    gaps = []
    for seed in range(300):
        X, params = _net(np.random.default_rng(seed), *MC_SHAPE)
        gaps.append(max(_single_mask_gap(X, params, p) for p in MC_MANY_PS))
    assert min(gaps) > 1.3 * checks._MC_T, (min(gaps), checks._MC_T)


def test_the_stated_bounds():
    n, c = MC_SHAPE[0], MC_SHAPE[3]
    assert math.isclose(checks._MC_T, math.sqrt(math.log(2 * len(MC_MANY_PS) * n * c / ALPHA) / (2 * MC_N)))
    assert round(checks._MC_T, 3) == 0.037
    assert 2 * len(MC_MANY_PS) * n * c * math.exp(-2 * MC_N * checks._MC_T**2) <= ALPHA * (1 + 1e-9)
    assert round(checks._DISTINCT_T, 1) == 111.4 and round(checks._DISTINCT_MEAN, 1) == 632.3
    assert 3 * 2 * math.exp(-2 * checks._DISTINCT_T**2 / BOOT_N) <= ALPHA * (1 + 1e-9)
    assert math.factorial(10) / 64**10 < 4e-12


def test_the_first_example_activates_every_hidden_unit():
    """The fresh-draws bound needs distinct masks to give distinct outputs on example 0."""
    for seed in range(50):
        X, params = _net(np.random.default_rng(seed), *MC_SHAPE)
        assert np.all(X[0] @ params["W1"] + params["b1"] >= 0.5)
