"""Every claim chapter 02's prose page makes about an experiment, asserted with the same
experiment functions (dropout_lab.experiments.ch02_ensembles) and the same seeds the page
uses. Fixtures are module-scoped: each experiment runs once."""
import math

import numpy as np
import pytest

from dropout_lab.experiments import ch01_overfitting as ch01
from dropout_lab.experiments import ch02_ensembles as ex
from dropout_lab.schematics import ch02_ensembles as schematic


# --------------------------------------------------------------------------------------
# Bagging on the sine wave
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bv():
    return ex.bagging_bias_variance(seeds=range(200))


@pytest.fixture(scope="module")
def corr():
    return ex.member_correlation(seeds=range(1000, 2000))


def _k(bv, k):
    return list(bv["ks"]).index(k)


def test_uses_chapter_01_sine_wave():
    # "drawn by the very function chapter 1 uses"
    pic = ex.bagging_picture(seed=0)
    x, y = ch01.sine_train_set(ex.N_TRAIN, 0)
    assert np.array_equal(pic["x"], x) and np.array_equal(pic["y"], y)
    assert ex.N_TRAIN == 30 and ch01.SINE_NOISE == 0.3


def test_bootstrap_miss_probability():
    # "(29/30)^30 ~ 0.362 ... about 64% of the distinct points"; limit e^-1 ~ 0.368
    assert abs((29 / 30) ** 30 - 0.362) < 5e-4
    assert abs(math.exp(-1) - 0.368) < 5e-4
    rng = np.random.default_rng(0)
    distinct = np.mean([len(np.unique(rng.integers(0, 30, 30))) / 30 for _ in range(20000)])
    assert abs(distinct - (1 - (29 / 30) ** 30)) < 0.005
    assert abs(distinct - 0.64) < 0.01


def test_nearest_neighbour_is_a_full_tree():
    # "On one input it is exactly what a fully grown regression tree computes"
    assert ex.nn_equals_full_tree() == 0.0


def test_bagging_halves_variance(bv):
    # "variance 0.099 against 0.088"; "0.070 with two members, 0.045 with twenty and 0.043 with a hundred"
    single, member = bv["single_var"].mean(), bv["var"][:, _k(bv, 1)].mean()
    assert round(single, 3) == 0.088 and round(member, 3) == 0.099 and member > single
    assert round(bv["var"][:, _k(bv, 2)].mean(), 3) == 0.070
    assert round(bv["var"][:, _k(bv, 20)].mean(), 3) == 0.045
    assert round(bv["var"][:, _k(bv, 100)].mean(), 3) == 0.043
    # "bagging halves it"
    assert 0.4 < bv["var"][:, _k(bv, 100)].mean() / single < 0.55
    # "flat long before the variance reaches zero": 20 -> 100 members gains less than 7%
    assert bv["var"][:, _k(bv, 100)].mean() > 0.93 * bv["var"][:, _k(bv, 20)].mean()
    # variance falls monotonically with K (on the group means)
    assert np.all(np.diff(bv["var"].mean(axis=0)) < 0)


def test_bias_is_tiny_and_independent_of_k(bv):
    # "0.002 for the fit to all the data and 0.001 for the bagged predictor, whatever K"
    assert round(bv["single_bias2"].mean(), 3) == 0.002
    b = bv["bias2"].mean(axis=0)
    assert np.all(np.abs(b - 0.0012) < 0.0005), b
    assert np.all(b < 0.1 * bv["var"].mean(axis=0))
    # the exact statement: the mean over training sets of the bagged prediction does not depend
    # on K beyond sampling noise (the 1/K part of the variance), so bias^2 curves are flat
    assert np.ptp(b) < 0.0005


def test_noisy_target_error(bv):
    # "the expected squared error falls from 0.181 to 0.134"
    assert round(bv["single_mse"].mean() + bv["noise_var"], 3) == 0.181
    assert round(bv["mse"][:, _k(bv, 100)].mean() + bv["noise_var"], 3) == 0.134


def test_polynomial_bagging_raises_variance():
    # "The stable polynomial's variance grows by about 12% when it is bagged, and its bias stays negligible"
    poly = ex.polynomial_bagging(degree=5)
    ratio = poly["bagged_var"] / poly["single_var"]
    assert 1.08 < ratio < 1.16, ratio
    assert poly["single_bias2"] < 1e-3 and poly["bagged_bias2"] < 1e-3


def test_correlated_average_formula_is_algebra():
    # rho s^2 + (1 - rho) s^2 / K; the double sum of a covariance matrix with equal
    # variances and equal off-diagonal covariances
    for sigma2, rho, K in ((1.0, 0.3, 5), (0.1, 0.42, 100), (2.0, 0.0, 7), (0.5, 1.0, 3)):
        C = np.full((K, K), rho * sigma2) + np.eye(K) * (1 - rho) * sigma2
        assert abs(C.sum() / K**2 - (rho * sigma2 + (1 - rho) * sigma2 / K)) < 1e-12


def test_correlated_average_formula_predicts_bagging(bv, corr):
    # "rho ~ 0.42", "floor ~ 0.042", "1/rho ~ 2.4", "within 2.5% at every K"
    assert round(corr["rho"], 2) == 0.42
    assert round(corr["rho"] * corr["sigma2"], 3) == 0.042
    assert round(1 / corr["rho"], 1) == 2.4
    pred = corr["rho"] * corr["sigma2"] + (1 - corr["rho"]) * corr["sigma2"] / bv["ks"]
    rel = bv["var"].mean(axis=0) / pred - 1
    assert np.abs(rel).max() < 0.025, rel
    # "well inside the spread between groups of seeds"
    assert np.all(np.abs(bv["var"].mean(axis=0) - pred) < 2 * bv["var"].std(axis=0))
    # "wanders between 0.30 and 0.53"
    assert round(corr["rho_x"].min(), 2) == 0.30 and round(corr["rho_x"].max(), 2) == 0.53


# --------------------------------------------------------------------------------------
# Sub-networks: probabilities, correlation, the two means
# --------------------------------------------------------------------------------------

def test_mask_probabilities_in_the_prose():
    # "0.8^256 ~ 1e-25"; schematic at p = 0.2: 0.512, 0.128 x3, 0.032 x3, 0.008, sum 1
    assert -25.5 < 256 * math.log10(0.8) < -24.5
    probs = schematic.probabilities(0.2)
    assert np.allclose(sorted(probs, reverse=True), [0.512] + [0.128] * 3 + [0.032] * 3 + [0.008])
    assert abs(probs.sum() - 1) < 1e-12
    assert np.allclose(schematic.probabilities(0.5), 1 / 8)
    assert len(set(schematic.masks_in_order())) == 8
    with pytest.raises(ValueError):
        schematic.subnetwork_label((1, 0, 1), 1.5)


def test_schematic_draws_eight_panels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = schematic.draw_all_subnetworks(p=0.2)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(fig.axes) == 8
    assert sum("= 0.128" in t for t in texts) == 3 and sum("= 0.512" in t for t in texts) == 1
    plt.close(fig)


@pytest.fixture(scope="module")
def sc():
    return ex.subnetwork_correlation(p=0.5, seeds=range(10))


def test_subnetwork_correlation(sc):
    # "sigma^2 0.099 ... 0.091 between masks ... 0.0087 shared ... rho ~ 0.09 ... about 360 times
    #  ... at most 1/rho ~ 11 ... 0.021 over runs ... 2.4 independently trained networks"
    assert round(sc["sigma2"], 3) == 0.099
    assert round(sc["within"], 3) == 0.091
    assert round(sc["between"], 4) == 0.0087
    assert round(sc["rho"], 2) == 0.09
    assert 340 < sc["between"] / (sc["sigma2"] / 4096) < 380
    assert round(1 / sc["rho"]) == 11
    assert round(sc["ws_var"], 3) == 0.021
    assert round(sc["ws_var"] / sc["between"], 1) == 2.4
    assert abs(sc["within"] + sc["between"] - sc["sigma2"]) < 1e-12


@pytest.fixture(scope="module")
def shallow():
    return ex.enumeration_gaps(p=0.5, deep=False, seeds=range(10))


@pytest.fixture(scope="module")
def shallow2():
    return ex.enumeration_gaps(p=0.2, deep=False, seeds=range(5))


@pytest.fixture(scope="module")
def deep():
    return ex.enumeration_gaps(p=0.5, deep=True, seeds=range(5))


def test_enumeration_is_a_real_average():
    # the private enumeration weights each mask by (1-p)^k p^(n-k): weights sum to one, and a
    # network whose logits do not depend on the hidden layer gives back its own softmax
    H, p = 4, 0.3
    rng = np.random.default_rng(0)
    X = rng.random((5, 3))
    layers = [(rng.normal(size=(3, H)), rng.normal(size=H)), (np.zeros((H, 2)), np.array([0.5, -0.5]))]
    sums, _ = ex._mask_sums(layers, X, p)
    assert np.allclose(sums["prob"].sum(axis=1), 1.0)
    assert np.allclose(sums["prob"], np.exp(ex._log_softmax(np.array([0.5, -0.5]))))
    # and it agrees with a brute-force loop over masks on a random network
    layers[1] = (rng.normal(size=(H, 2)), rng.normal(size=2))
    sums, h = ex._mask_sums(layers, X, p)
    arith = 0
    for code in range(2 ** H):
        m = np.array([(code >> j) & 1 for j in range(H)], dtype=float)
        w = (1 - p) ** m.sum() * p ** (H - m.sum())
        arith = arith + w * np.exp(ex._log_softmax((h * m / (1 - p)) @ layers[1][0] + layers[1][1]))
    assert np.allclose(sums["prob"], arith)


def test_nwgm_equals_weight_scaling_for_one_softmax_layer(shallow, shallow2):
    # "agree to a few units in the fifteenth decimal place on every digit of every network,
    #  at p = 0.5 and at p = 0.2"; caption: below 1e-14 on every digit
    assert shallow["geo_vs_ws"].max() < 1e-14
    assert shallow2["geo_vs_ws"].max() < 1e-14
    assert shallow["geo_vs_ws"].shape == (10, 400) and shallow2["geo_vs_ws"].shape == (5, 400)


def test_relu_between_breaks_it(deep):
    # "they differ by up to 0.76 ... on the median digit by 0.02 to 0.08 ... yet the NWGM still
    #  equals the softmax of the average logits to rounding"
    assert round(deep["geo_vs_ws"].max(), 2) == 0.76
    med = np.median(deep["geo_vs_ws"], axis=1)
    assert med.min() >= 0.02 and med.max() <= 0.08, med
    assert deep["geo_vs_softmax_mean_logit"].max() < 1e-13


def test_arithmetic_mean_is_less_confident(shallow, shallow2):
    # "0.31 apart in total variation on average (0.08 to 0.14 per network at p = 0.2) ...
    #  all but a handful of digits ... mean confidence 0.54 against 0.82 ... (0.12 against 0.31)"
    assert round(shallow["arith_vs_ws"].mean(), 2) == 0.31
    per = shallow2["arith_vs_ws"].mean(axis=1)
    assert round(per.min(), 2) == 0.08 and round(per.max(), 2) == 0.14
    assert round(shallow2["arith_vs_ws"].mean(), 2) == 0.12
    assert shallow2["arith_vs_ws"].mean() < 0.5 * shallow["arith_vs_ws"].mean()
    assert np.sum(shallow["arith_conf"] >= shallow["ws_conf"]) <= 15     # of 4000 pairs
    assert round(shallow["arith_conf"].mean(), 2) == 0.54
    assert round(shallow["ws_conf"].mean(), 2) == 0.82


def test_gap_grows_with_disagreement(shallow):
    # "correlation 0.71 over the 4000 digit-network pairs at p = 0.5"
    r = np.corrcoef(shallow["spread"].ravel(), shallow["arith_vs_ws"].ravel())[0, 1]
    assert round(r, 2) == 0.71


def test_decisions_almost_always_agree(shallow, shallow2, deep):
    # "same class on 386 to 397 of the 400 digits per network at p = 0.5 (397 to 399 at p = 0.2),
    #  accuracies within about one percentage point"
    d = shallow["disagree"].sum(axis=1)
    assert d.min() == 3 and d.max() == 14
    d2 = shallow2["disagree"].sum(axis=1)
    assert d2.min() == 1 and d2.max() == 3
    acc_gap = np.abs(shallow["ws_correct"].mean(axis=1) - shallow["arith_correct"].mean(axis=1))
    assert acc_gap.max() <= 0.0101
    # "median weight-scaled confidence 0.37 [where they differ], against 0.91 over all digits"
    dis = shallow["disagree"] > 0
    assert round(np.median(shallow["ws_conf"][dis]), 2) == 0.37
    assert round(np.median(shallow["ws_conf"]), 2) == 0.91
    # deep: "decide differently ... on 26 to 46 digits and are less accurate (0.88 against 0.93)"
    dd = deep["disagree"].sum(axis=1)
    assert dd.min() == 26 and dd.max() == 46
    assert round(deep["ws_correct"].mean(), 2) == 0.88 and round(deep["arith_correct"].mean(), 2) == 0.93


# --------------------------------------------------------------------------------------
# Monte Carlo averaging
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def conv():
    return ex.mc_convergence_small(p=0.5, seeds=range(10))


def test_mc_converges_to_the_arithmetic_mean(conv):
    # "falls like 0.42/sqrt(k) over three decades (from 0.40 at k = 1 to 0.013 at k = 1000)"
    k = conv["ks"]
    a = conv["to_arith"].mean(axis=0)
    scaled = a * np.sqrt(k)
    assert scaled.min() > 0.38 and scaled.max() < 0.44, scaled
    assert round(a[0], 2) == 0.40 and round(a[-1], 3) == 0.013
    slope = np.polyfit(np.log(k), np.log(a), 1)[0]
    assert -0.55 < slope < -0.45


def test_mc_does_not_converge_to_weight_scaling(conv):
    # "stops falling at about k = 20 and settles at 0.31, the gap between the two means"
    k = list(conv["ks"])
    w = conv["to_ws"].mean(axis=0)
    assert round(conv["gap"].mean(), 2) == 0.31
    assert abs(w[-1] - conv["gap"].mean()) < 0.002
    assert w[k.index(20)] - w[-1] < 0.01
    assert round(w[0], 1) == 0.4                              # "about 0.4 away from both"
    # every network: the distance to WS at k = 1000 is at least 20 times the distance to A
    assert np.all(conv["to_ws"][:, -1] > 20 * conv["to_arith"][:, -1])


@pytest.fixture(scope="module")
def mca():
    return ex.mc_accuracy(p=0.5, seeds=range(3), repeats=3)


def test_mc_accuracy_on_digits(mca):
    k = list(mca["ks"])
    acc = mca["acc"].mean(axis=0)
    diff = (mca["acc"] - mca["ws_acc_rows"][:, None]).mean(axis=0)
    # "the three networks happen to reach the same accuracy, 97.75%"
    assert np.allclose(mca["ws_acc"], 0.9775)
    # "94.3% against 97.75%, about 14 more mistakes out of 400"
    assert round(100 * acc[0], 1) == 94.3
    assert round(-diff[0] * 400) == 14
    # "about one percentage point with two samples"
    assert 0.008 < -diff[k.index(2)] < 0.017
    # "about a quarter of a point (one digit) by k = 10 to 30"
    for kk in (10, 15, 20, 30):
        assert 0.0015 < -diff[k.index(kk)] < 0.0035, (kk, diff[k.index(kk)])
    # "at k = 50 the Monte Carlo average reaches the weight-scaled network's accuracy; from there to
    #  k = 100 the two stay within a fraction of one digit of each other"
    for kk in (50, 70, 100):
        assert abs(diff[k.index(kk)]) < 0.0025
    assert abs(diff[k.index(50)]) < 0.0005
    # "well inside the spread between mask seeds" and "we do not see [MC beat weight scaling]"
    assert np.all(diff <= 0.0005)
    # "at k = 50 the Monte Carlo average picks the weight-scaled network's class on 99.8%"
    assert round(100 * mca["agree_ws"].mean(axis=0)[k.index(50)], 1) == 99.8
    # accuracy and agreement improve from k = 1 to k = 100
    assert acc[-1] > acc[0] + 0.03
