"""Every claim chapter 04's prose page makes about an experiment, asserted with
the same experiment functions (dropout_lab.experiments.ch04_scaling) and the
same seeds the page uses."""
import math

import numpy as np
import pytest

from dropout_lab.experiments import ch04_scaling as ex


@pytest.fixture(scope="module")
def conv():
    return ex.mc_convergence(x_value=1.0, p=0.2, seeds=range(10))


def test_mc_errors_fall_like_one_over_sqrt_n(conv):
    # "on a log-log plot their slope is close to -1/2"
    assert -0.65 < ex.loglog_slope(conv["ns"], conv["mean_err"]) < -0.35
    assert -0.65 < ex.loglog_slope(conv["ns"], conv["var_err"]) < -0.35


def test_mc_within_one_and_two_percent_at_1e5(conv):
    # "With 10^5 samples every one of the ten seeds estimates the mean to within 1%
    #  and the variance to within 2%"
    i = list(conv["ns"]).index(100000)
    assert conv["mean_err"][:, i].max() < 0.01
    assert conv["var_err"][:, i].max() < 0.02


def test_variance_error_falls_like_one_over_n_at_half():
    # "Rerun the experiment with p = 0.5 and the variance error falls like 1/n"
    c = ex.mc_convergence(x_value=1.0, p=0.5, seeds=range(10))
    assert ex.loglog_slope(c["ns"], c["var_err"]) < -0.8
    assert -0.65 < ex.loglog_slope(c["ns"], c["mean_err"]) < -0.35


def test_standard_and_inverted_agree():
    sv = ex.standard_vs_inverted(p=0.5, n_samples=20000, seed=0)
    # "the two test-time networks give identical outputs"
    assert np.allclose(sv["standard_test"], sv["inverted_test"], rtol=1e-12, atol=1e-12)
    assert np.allclose(sv["standard_train_mean"], sv["inverted_train_mean"], rtol=1e-12, atol=1e-12)
    # "Every point lies on the diagonal, within a few standard errors"
    z = np.abs(sv["inverted_train_mean"] - sv["inverted_test"]) / sv["se"]
    assert z.max() < 4


def test_jensen_single_unit():
    j = ex.jensen_single_unit(mu=0.0, sigma=1.0)
    assert j["relu_of_mean"] == 0.0
    assert abs(j["closed_form"] - 1 / math.sqrt(2 * math.pi)) < 1e-12
    assert abs(j["mc"] - j["closed_form"]) < 0.01 * j["closed_form"]


@pytest.fixture(scope="module")
def gap():
    return ex.nonlinearity_gap()


def test_relu_gap_positive_and_growing(gap):
    # "positive for every layer and every p ... grows steadily with p"
    assert (gap["relu_gap"] > 0).all()
    assert np.all(np.diff(gap["relu_gap"].mean(axis=0)) > 0)


def test_relu_gap_size_at_half(gap):
    # "about 20% of a typical pre-activation at p = 0.5, more than ten times the noise floor"
    k = list(np.round(gap["ps"], 2)).index(0.5)
    relu, lin = gap["relu_gap"][:, k].mean(), gap["linear_gap"][:, k].mean()
    assert 0.15 < relu < 0.25
    assert relu > 10 * lin


def test_linear_gap_is_monte_carlo_noise(gap):
    # mean |E[Wy] - Wx| over units is O(1/sqrt(n_samples)): far below the ReLU gap at every p >= 0.2
    assert (gap["linear_gap"] < 0.06).all()


def test_functional_dropout_bug():
    bug = ex.functional_dropout_bug(seed=0)
    assert bug["buggy_differs"] and bug["buggy_max_diff"] > 0
    assert not bug["fixed_differs"]


def test_functional_dropout_defaults_to_training():
    import inspect

    import torch.nn.functional as F

    assert inspect.signature(F.dropout).parameters["training"].default is True


def test_gaussian_matches_two_moments():
    gb = ex.gaussian_vs_bernoulli(x_value=1.0, p=0.5, n_samples=200000, seed=0)
    for name in ("bernoulli", "gaussian"):
        # "Both samples have mean 1 and variance 1 to within 1%"
        assert abs(gb[name].mean() - 1) < 0.01
        assert abs(gb[name].var() - 1) < 0.01
    # "Bernoulli dropout outputs only 0 or 2x"
    assert set(np.unique(gb["bernoulli"])) <= {0.0, 2.0}
    # "negative about 16% of the time"
    assert 0.15 < np.mean(gb["gaussian"] < 0) < 0.17


def test_noise_to_signal_ratios_quoted():
    # 0.5 at p = 0.2, 1 at p = 0.5, 3 at p = 0.9: measured on torch's dropout, not restated.
    for p, r in ((0.2, 0.5), (0.5, 1.0), (0.9, 3.0)):
        samples = ex._torch_dropout_samples(1.0, p, 400_000, seed=0)
        assert abs(samples.std() - r) < 0.02 * r
