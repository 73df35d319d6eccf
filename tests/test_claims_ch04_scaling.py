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
    # "Both error curves have a log-log slope close to -1/2"
    assert -0.65 < ex.loglog_slope(conv["ns"], conv["mean_err"]) < -0.35
    assert -0.65 < ex.loglog_slope(conv["ns"], conv["var_err"]) < -0.35


def test_mc_within_one_percent_at_1e5(conv):
    # "With 10^5 samples every one of the ten seeds estimates the mean to within 1%
    #  and the variance to within 1%"
    i = list(conv["ns"]).index(100000)
    assert conv["mean_err"][:, i].max() < 0.01
    assert conv["var_err"][:, i].max() < 0.01


def test_dropout_kurtosis_closed_form():
    # "kappa = (1 - 3p(1-p)) / (p(1-p))": 3.25 at p = 0.2 (from the two centred values
    # 0.25 and -1), 1 at p = 0.5; kappa - 1 = (1-2p)^2 / (p(1-p)).
    for p in (0.1, 0.2, 0.5, 0.7):
        a, b = p / (1 - p), -1.0                    # centred outputs for x = 1
        var = (1 - p) * a**2 + p * b**2
        mu4 = (1 - p) * a**4 + p * b**4
        assert abs(ex.dropout_kurtosis(p) - mu4 / var**2) < 1e-12
        assert abs(ex.dropout_kurtosis(p) - 1 - (1 - 2 * p) ** 2 / (p * (1 - p))) < 1e-12
    assert abs(ex.dropout_kurtosis(0.2) - 3.25) < 1e-12
    assert abs(ex.dropout_kurtosis(0.5) - 1.0) < 1e-12
    # ... and torch's dropout really has that kurtosis (a measurement, not the formula again)
    y = ex._torch_dropout_samples(1.0, 0.2, 400_000, seed=0)
    yc = y - y.mean()
    assert abs((yc**4).mean() / (yc**2).mean() ** 2 - 3.25) < 0.1


def test_mc_reference_lines(conv):
    # "0.5/sqrt(n) for the mean and sqrt((kappa-1)/n) = 1.5/sqrt(n) for the variance"
    ns = conv["ns"]
    assert np.allclose(conv["se_mean"], 0.5 / np.sqrt(ns))
    assert np.allclose(conv["se_var"], 1.5 / np.sqrt(ns))
    # "the seed-averaged curves stay within a factor 1.5 of their standard errors at every n"
    for err, line in ((conv["mean_err"], conv["se_mean"]), (conv["var_err"], conv["se_var"])):
        r = err.mean(axis=0) / line
        assert (r > 1 / 1.5).all() and (r < 1.5).all(), r


def test_variance_error_is_three_times_mean_error(conv):
    # "The variance error is three times the mean error, between 3.00 and 3.06 times for every
    #  n >= 1000"; predicted |1-2p|/p = 3 at p = 0.2
    r = ex.error_ratio(conv, n_min=1000)
    assert len(r) >= 8
    assert (r > 2.95).all() and (r < 3.1).all(), r


def test_variance_error_falls_like_one_over_n_at_half():
    # "Rerun the experiment with p = 0.5 and the variance error falls like 1/n": kappa = 1 there
    c = ex.mc_convergence(x_value=1.0, p=0.5, seeds=range(10))
    assert c["kurtosis"] == pytest.approx(1.0)
    assert np.allclose(c["se_var"], 0.0)
    assert ex.loglog_slope(c["ns"], c["var_err"]) < -0.8
    assert -0.65 < ex.loglog_slope(c["ns"], c["mean_err"]) < -0.35


@pytest.fixture(scope="module")
def sv():
    return ex.standard_vs_inverted(p=0.5, n_samples=20000, seed=0)


def test_standard_and_inverted_test_outputs_identical(sv):
    # "the two test outputs are identical, but that part is algebra"
    assert np.allclose(sv["standard_test"], sv["inverted_test"], rtol=1e-12, atol=1e-12)


def test_standard_and_inverted_masks_are_independent(sv):
    # "The two training averages differ from each other by up to 0.02, as two independent
    #  Monte Carlo estimates should": not equal (independent masks) but within sampling error
    diff = np.abs(sv["standard_train_mean"] - sv["inverted_train_mean"])
    assert diff.max() > 1e-6
    assert diff.max() < 0.025
    assert (diff / np.hypot(sv["standard_se"], sv["inverted_se"])).max() < 4


def test_each_network_matches_its_own_test_output(sv):
    # "each of the sixteen averages is within about two of its own standard errors of its test
    #  output (the largest deviation is 2.1 standard errors)"
    z_inv = np.abs(sv["inverted_train_mean"] - sv["inverted_test"]) / sv["inverted_se"]
    z_std = np.abs(sv["standard_train_mean"] - sv["standard_test"]) / sv["standard_se"]
    z = np.concatenate([z_inv, z_std])
    assert len(z) == 16
    assert z.max() < 2.2
    assert (z > 0).all()


def test_standard_vs_inverted_at_other_p_is_not_forced():
    # The same comparison at p = 0.2 with another seed: still within sampling error, and the
    # two training means are still different numbers (nothing computed from the other).
    s2 = ex.standard_vs_inverted(p=0.2, n_samples=20000, seed=3)
    assert not np.allclose(s2["standard_train_mean"], s2["inverted_train_mean"], rtol=0, atol=1e-9)
    assert (np.abs(s2["standard_train_mean"] - s2["standard_test"]) / s2["standard_se"]).max() < 4.5
    assert np.allclose(s2["standard_test"], s2["inverted_test"], rtol=1e-12, atol=1e-12)


def test_jensen_single_unit():
    j = ex.jensen_single_unit(mu=0.0, sigma=1.0)
    assert j["relu_of_mean"] == 0.0
    assert abs(j["closed_form"] - 1 / math.sqrt(2 * math.pi)) < 1e-12
    assert abs(j["mc"] - j["closed_form"]) < 0.01 * j["closed_form"]


@pytest.fixture(scope="module")
def gap():
    return ex.nonlinearity_gap()


@pytest.fixture(scope="module")
def gap5():
    return ex.nonlinearity_gap(d_in=5)


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


def test_preactivation_moments_formula():
    # "mu = w.x, sigma^2 = sum_i w_i^2 x_i^2 p/(1-p)": checked against torch's dropout by sampling
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    W, x, p = rng.normal(size=(3, 20)), rng.normal(size=20), 0.3
    mu, var = ex._preactivation_moments(W, x, p)
    torch.manual_seed(0)
    y = F.dropout(torch.tensor(x).expand(200_000, 20), p=p, training=True).numpy()
    z = y @ W.T
    assert np.allclose(z.mean(0), mu, atol=4 * np.sqrt(var / 200_000).max())
    assert np.allclose(z.var(0), var, rtol=0.02)


def test_expected_relu_gaussian_closed_form():
    # "E[relu(z)] = mu Phi(mu/sigma) + sigma phi(mu/sigma)", checked by quadrature
    from scipy.integrate import quad
    from scipy.stats import norm

    for mu, sigma in ((0.0, 1.0), (0.7, 0.3), (-1.2, 0.8), (2.0, 5.0)):
        num = quad(lambda z: z * norm.pdf(z, mu, sigma), 0, np.inf)[0]
        assert abs(float(ex.expected_relu_gaussian(mu, sigma)) - num) < 1e-7
    assert float(ex.expected_relu_gaussian(-1.0, 0.0)) == 0.0
    assert float(ex.expected_relu_gaussian(2.0, 0.0)) == 2.0


def test_clt_prediction_matches_measured_gap(gap):
    # "within 8% of the measurement for every one of the 40 (layer, p) pairs, and within 4% for
    #  more than three quarters of them"
    rel = np.abs(gap["predicted_gap"] - gap["relu_gap"]) / gap["relu_gap"]
    assert rel.shape == (5, 8)
    assert rel.max() < 0.08
    assert (rel < 0.04).mean() > 0.75


def test_clt_prediction_too_high_at_p_08(gap):
    # "at p = 0.8 the prediction lies above the measurement in all five layers, by 2% to 6%"
    assert gap["ps"][-1] == pytest.approx(0.8)
    rel = (gap["predicted_gap"][:, -1] - gap["relu_gap"][:, -1]) / gap["relu_gap"][:, -1]
    assert (rel > 0.015).all() and (rel < 0.065).all(), rel


def test_clt_prediction_poor_with_five_inputs(gap5):
    # "with 5 inputs ... too low for p <= 0.4 and too high for p >= 0.5 in every layer,
    #  1.5 to 2.2 times the measurement at p = 0.8"
    ps = np.round(gap5["ps"], 2)
    diff = gap5["predicted_gap"] - gap5["relu_gap"]
    assert (diff[:, ps <= 0.4] < 0).all()
    assert (diff[:, ps >= 0.5] > 0).all()
    r = gap5["predicted_gap"][:, -1] / gap5["relu_gap"][:, -1]
    assert (r > 1.45).all() and (r < 2.3).all(), r


@pytest.fixture(scope="module")
def tv():
    return ex.train_test_variance(p=0.5, seeds=range(3))


def test_train_test_variance_mismatch(tv):
    # "the logits' variance is 1.12 to 1.42 times larger in training than at test time
    #  (1.22 on average)"
    r = tv["train_var"] / tv["test_var"]
    assert r.shape == (3, 10)
    assert r.min() > 1.1 and r.max() < 1.45
    assert 1.17 < r.mean() < 1.27


def test_train_test_variance_formula_and_means(tv):
    # "predicts each of the thirty variances to within 1%, and the means agree to within 0.01
    #  standard deviations"
    assert np.abs(tv["predicted_train_var"] / tv["train_var"] - 1).max() < 0.01
    assert tv["mean_shift"].max() < 0.01


@pytest.fixture(scope="module")
def dc():
    return ex.double_compensation(ps=(0.2, 0.5), seeds=range(3))


def _cell(dc, p, factor_start):
    a = list(np.round(dc["ps"], 2)).index(p)
    b = [i for i, n in enumerate(dc["factors"]) if n.startswith(factor_start)]
    assert len(b) == 1
    return a, b[0]


def test_double_compensation_shrink(dc):
    # "PyTorch's eval output already equals the mean training output (1.000 to within 0.1%), and
    #  the ported factor shrinks it to exactly that factor, 0.8 or 0.2 at p = 0.2 and 0.5 at p = 0.5"
    for p in (0.2, 0.5):
        for start, target in (("correct", 1.0), ("x (1-p)", 1 - p), ("x p", p)):
            a, b = _cell(dc, p, start)
            assert np.abs(dc["shrink"][a, b] / target - 1).max() < 0.001, (p, start)


def test_double_compensation_accuracy_barely_moves(dc):
    # "it changes by at most half a percentage point. With the factor 1-p at most 1 of the 400 test
    #  predictions changes, and with the factor 0.2 at p = 0.2 between 3 and 6 of them"
    for p in (0.2, 0.5):
        a, ref = _cell(dc, p, "correct")
        for b in range(len(dc["factors"])):
            assert np.abs(dc["accuracy"][a, b] - dc["accuracy"][a, ref]).max() <= 0.005 + 1e-9
        assert (dc["changed"][a, ref] == 0).all()
    n_test = 400
    for p in (0.2, 0.5):
        a, b = _cell(dc, p, "x (1-p)")
        assert (np.round(dc["changed"][a, b] * n_test) <= 1).all()
    a, b = _cell(dc, 0.2, "x p")
    n_changed = np.round(dc["changed"][a, b] * n_test)
    assert (n_changed >= 3).all() and (n_changed <= 6).all(), n_changed


def test_double_compensation_confidence_and_nll(dc):
    # "the mean confidence falls from 0.98 to 0.93 at p = 0.5 and to 0.62 at p = 0.2 with the
    #  factor 0.2, and the test cross-entropy grows from 0.070 to 0.110 and from 0.075 to 0.53"
    conf, nll = dc["confidence"].mean(axis=2), dc["nll"].mean(axis=2)
    a, ref = _cell(dc, 0.5, "correct")
    _, b = _cell(dc, 0.5, "x (1-p)")
    assert round(conf[a, ref], 2) == 0.98 and round(conf[a, b], 2) == 0.93
    assert round(nll[a, ref], 3) == pytest.approx(0.070, abs=0.0015)
    assert round(nll[a, b], 3) == pytest.approx(0.110, abs=0.0015)
    a, ref = _cell(dc, 0.2, "correct")
    _, b = _cell(dc, 0.2, "x p")
    _, c = _cell(dc, 0.2, "x (1-p)")
    assert round(conf[a, ref], 2) == 0.98 and round(conf[a, b], 2) == 0.62
    assert nll[a, ref] == pytest.approx(0.075, abs=0.0015)
    assert round(nll[a, b], 2) == 0.53
    # "With the factor 0.8 at p = 0.2 the cross-entropy happens not to change"
    assert abs(nll[a, c] - nll[a, ref]) < 0.002
    # the confidence falls whenever the factor is below 1, in every seed
    for p in (0.2, 0.5):
        a, ref = _cell(dc, p, "correct")
        for start in ("x (1-p)", "x p"):
            _, b = _cell(dc, p, start)
            assert (dc["confidence"][a, b] < dc["confidence"][a, ref]).all()


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
    # "Bernoulli dropout outputs only 0 or 2x, each with probability 1/2"
    values, counts = np.unique(gb["bernoulli"], return_counts=True)
    assert values.tolist() == [0.0, 2.0]
    assert np.allclose(counts / counts.sum(), 0.5, atol=0.005)
    # "negative about 16% of the time"
    assert 0.15 < np.mean(gb["gaussian"] < 0) < 0.17


def test_noise_to_signal_ratios_quoted():
    # 0.5 at p = 0.2, 1 at p = 0.5, 3 at p = 0.9: measured on torch's dropout, not restated.
    for p, r in ((0.2, 0.5), (0.5, 1.0), (0.9, 3.0)):
        samples = ex._torch_dropout_samples(1.0, p, 400_000, seed=0)
        assert abs(samples.std() - r) < 0.02 * r


def test_thinned_network_schematic():
    # The schematic returns a Figure and labels each thinned network with the right probability
    import itertools

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from dropout_lab.schematics import ch04_scaling as sch

    fig = sch.draw_thinned_networks(p_in=0.2, p_hidden=0.5)
    try:
        assert isinstance(fig, Figure)
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        for m_in, m_hid in sch.DEFAULT_MASKS:
            assert sch.probability_label(m_in, m_hid, 0.2, 0.5) in texts
        assert any("512" in t for t in texts)
    finally:
        plt.close(fig)
    # (1-p)^kept p^dropped per layer, e.g. 0.8^3 * 0.2 * 0.5^5 for inputs 1011, hidden 01101
    assert sch.thinned_probability((1, 0, 1, 1), (0, 1, 1, 0, 1), 0.2, 0.5) == pytest.approx(0.8**3 * 0.2 * 0.5**5)
    assert sch.probability_label((1, 0, 1, 1), (0, 1, 1, 0, 1)).endswith("= 0.0032$")
    assert sch.probability_label((1, 1, 1, 1), (1, 1, 0, 1, 1)).endswith("= 0.013$")
    assert sch.probability_label((0, 1, 1, 0), (1, 0, 0, 1, 0)).endswith("= 0.0008$")
    # the probabilities of all 2^9 thinned networks sum to 1, for any rates
    for p_in, p_h in ((0.2, 0.5), (0.1, 0.7)):
        total = sum(sch.thinned_probability(a, b, p_in, p_h)
                    for a in itertools.product((0, 1), repeat=4)
                    for b in itertools.product((0, 1), repeat=5))
        assert total == pytest.approx(1.0)
    with pytest.raises(ValueError):
        sch.thinned_probability((1, 2, 0, 1), (1, 1, 1, 1, 1))
    with pytest.raises(ValueError):
        sch.thinned_probability((1, 1, 0, 1), (1, 1, 1, 1, 1), p_in=1.5)
