"""Every claim chapter 01's prose page makes about an experiment, asserted with the same
experiment functions (dropout_lab.experiments.ch01_overfitting) and the same seeds the
page uses. The expensive experiments run once per module (fixtures)."""
import numpy as np
import pytest

from dropout_lab.experiments import ch01_overfitting as ex
from dropout_lab.schematics import ch01_overfitting as schematic


# --------------------------------------------------------------------- polynomial degree

@pytest.fixture(scope="module")
def sweep():
    return ex.degree_sweep(seeds=range(20))


def _median(a):
    return np.median(a, axis=0)


def test_training_error_reaches_zero_at_interpolation(sweep):
    # "at d = 11 ... the training error is zero (up to rounding: below 1e-23)"
    assert sweep["train_mse"][:, 11:].max() < 1e-23
    assert sweep["train_mse"][:, :11].min() > 1e-6
    # "every added coefficient lowers the training error a little more"
    assert np.all(np.diff(sweep["train_mse"].mean(axis=0)[:12]) < 0)


def test_validation_error_is_u_shaped(sweep):
    med = _median(sweep["val_mse"])
    # lowest median at degree 3, about 0.11, close to the floor 0.09
    assert int(np.argmin(med)) == 3
    assert 0.10 < med[3] < 0.12
    # degrees 0 to 2 underfit: both errors high and close together
    tr = _median(sweep["train_mse"])
    assert np.all(med[:3] > 0.29) and np.all(tr[:3] > 0.29)
    assert np.all(np.abs(med[:3] - tr[:3]) < 0.15 * med[:3])
    # "about 2.5, more than twenty times that of degree 3" at d = 11; "about 13" at d = 15
    assert 2.0 < med[11] < 3.0 and med[11] > 20 * med[3]
    assert 10 < med[15] < 16
    # "keeps growing" past the interpolation threshold (no second descent here)
    assert med[15] > med[13] > med[11]


def test_even_powers_barely_help(sweep):
    med = _median(sweep["val_mse"])
    tr = sweep["train_mse"].mean(axis=0)
    assert abs(med[2] - med[1]) < 0.05 * med[1]
    assert abs(med[4] - med[3]) < 0.15 * med[3]
    assert (tr[1] - tr[2]) < 0.1 * (tr[2] - tr[3])


def test_selection_on_validation(sweep):
    sel = ex.selected_degree(sweep)
    # "picks d = 3 for most seeds and 4 to 6 for the rest"
    assert np.sum(sel["degree"] == 3) > len(sel["degree"]) / 2
    assert set(sel["degree"]) <= {3, 4, 5, 6}
    # "test error (0.113) very close to their validation error (0.112)"
    assert abs(sel["val_mse"].mean() - 0.112) < 0.0015
    assert abs(sel["test_mse"].mean() - 0.113) < 0.0015


def test_more_data_flattens_the_u():
    med100 = _median(ex.degree_sweep(n_train=100, seeds=range(20))["val_mse"])
    # "degree 15 has a median validation error of about 0.10, within 10% of the floor"
    assert med100[15] < 1.1 * ex.SINE_NOISE ** 2
    med30 = _median(ex.degree_sweep(n_train=30, seeds=range(20))["val_mse"])
    assert med30[15] < 0.2


# --------------------------------------------------------------------- ridge

@pytest.fixture(scope="module")
def ridge():
    return ex.ridge_sweep(seeds=range(20))


def test_ridge_closed_form_matches_the_fit():
    # the page's derivation: w = (X^T X + lam I)^{-1} X^T y is what the experiments compute,
    # and the gradient -2 X^T (y - X w) + 2 lam w vanishes there
    (x, y), _, _ = ex._seed_sets(0, 12, 1, 1)
    X = ex._design(x, 15)
    for lam in (1e-4, 1e-2, 1.0):
        w_sk = ex._ridge_coef(X, y, lam)
        w = np.linalg.solve(X.T @ X + lam * np.eye(16), X.T @ y)
        assert np.allclose(X @ w, X @ w_sk, atol=1e-8)
        grad = -2 * X.T @ (y - X @ w_sk) + 2 * lam * w_sk
        assert np.abs(grad).max() < 1e-6


def test_ridge_validation_u_shape(ridge):
    med = _median(ridge["val_mse"])
    best = ridge["lams"][np.argmin(med)]
    # "falls to about 0.13 near lambda = 0.01"
    assert 3e-3 <= best <= 3e-2 and 0.12 < med.min() < 0.14
    # lambda = 1e-10 reproduces the interpolating fit: about 13, coefficients of length ~1000
    assert 10 < med[0] < 16
    assert 500 < np.median(ridge["coef_norm"][:, 0]) < 2000
    # at lambda = 100 both errors approach the variance of the targets, about 0.6
    assert 0.5 < med[-1] < 0.65 and ridge["train_mse"][:, -1].mean() > 0.5
    # the training error rises from zero and the coefficients shrink as lambda grows
    assert ridge["train_mse"][:, 0].max() < 1e-6
    assert np.all(np.diff(ridge["train_mse"].mean(axis=0)) >= -1e-12)
    assert np.all(np.diff(_median(ridge["coef_norm"])) < 0)


def test_ridge_curves():
    c = ex.ridge_curves(lams=(0.0, 1e-6, 1e-2, 1.0, 100.0), seed=0)
    G = np.interp(c["x"], c["grid"], c["curves"][0])
    # lambda = 0 passes through every point (up to interpolation on the grid) and overshoots
    assert np.abs(G - c["y"]).max() < 0.05
    assert np.abs(c["curves"][0]).max() > 1.1
    # lambda = 100: "nearly the constant zero"
    assert np.abs(c["curves"][-1]).max() < 0.1


def test_intercept_penalty():
    ie = ex.intercept_effect(offset=3.0, lam=1.0, seeds=range(20))
    # "the same validation error to within 0.002" on the sine wave
    assert abs(ie["pen"].mean() - ie["free"].mean()) < 0.002
    # unpenalised: moves up by exactly 3, same error; penalised: short by up to 0.39
    assert ie["equivariance_free"].max() < 1e-9
    assert np.allclose(ie["free_shift"], ie["free"], atol=1e-12)
    assert 0.35 < ie["equivariance_pen"].max() < 0.43
    # "its validation error grows by about a quarter"
    assert 1.2 < ie["pen_shift"].mean() / ie["pen"].mean() < 1.33


# --------------------------------------------------------------------- L1 / L2

def test_schematic_touching_points():
    # L1 ball: touches at a corner (w2 = 0); L2 ball: both weights non-zero
    w1 = schematic.constrained_minimum("l1")
    w2 = schematic.constrained_minimum("l2")
    assert abs(w1[1]) < 1e-3 and abs(w1[0] - schematic.RADIUS) < 1e-3
    assert min(abs(w2)) > 0.2


def test_soft_threshold_formula():
    # eq. ch01-soft-threshold, checked by brute force on a grid
    theta = np.linspace(-3, 3, 600001)
    for a, lam, t_star in ((1.0, 0.5, 1.2), (2.0, 1.0, 0.3), (0.5, 0.2, -0.9)):
        l1 = 0.5 * a * (theta - t_star) ** 2 + lam * np.abs(theta)
        l2 = 0.5 * a * (theta - t_star) ** 2 + 0.5 * lam * theta ** 2
        assert abs(theta[np.argmin(l1)] - np.sign(t_star) * max(abs(t_star) - lam / a, 0)) < 1e-4
        assert abs(theta[np.argmin(l2)] - a / (a + lam) * t_star) < 1e-4


@pytest.fixture(scope="module")
def hist():
    return ex.penalty_histograms(seeds=(0, 1, 2))


def test_weight_sizes(hist):
    rms = {k: hist[k]["rms"].mean() for k in hist["names"]}
    none, l2, l1 = (rms[k] for k in hist["names"])
    assert abs(none - 0.114) < 0.003 and abs(l2 - 0.079) < 0.003 and abs(l1 - 0.082) < 0.003


def test_l1_makes_weights_sparse_and_l2_does_not(hist):
    none, l2, l1 = (hist[k] for k in hist["names"])
    assert none["frac_small"].max() < 0.01
    assert 0.005 < l2["frac_small"].mean() < 0.02          # "only about 1%"
    assert 0.40 < l1["frac_small"].mean() < 0.46           # "about 43%"
    # second population peaking near 1e-5 (the L1 step eta * lambda = 5e-6); ~3% below 1e-6
    dens = l1["density"].mean(axis=0)
    centres = np.sqrt(hist["bins"][1:] * hist["bins"][:-1])
    sel = centres < 1e-3
    assert 2e-6 < centres[sel][np.argmax(dens[sel])] < 3e-5
    below = 1 - (dens * np.diff(np.log10(hist["bins"]))).sum()
    assert 0.01 < below < 0.06
    # no-penalty bump peaks just below 0.1
    peak = centres[np.argmax(none["density"].mean(axis=0))]
    assert 0.05 < peak < 0.1


def test_penalties_leave_accuracy_alone(hist):
    for k in hist["names"]:
        assert np.all((0.025 < hist[k]["heldout_err"]) & (hist[k]["heldout_err"] < 0.035))
        # "the seeds agree closely": the bands are barely visible
        assert hist[k]["density"].std(axis=0).max() < 0.05


def test_weight_decay_vs_l2():
    d = ex.decay_vs_l2()
    assert d["sgd"] < 1e-12          # SGD: identical up to rounding
    assert d["adam"] < 1e-12         # torch's Adam(weight_decay) is an L2 term
    # AdamW ends elsewhere, "as far apart as the weights are large"
    assert d["adam_vs_adamw"] > 0.5 * d["param_scale"] and d["adam_vs_adamw"] > 0.3


# --------------------------------------------------------------------- early stopping

@pytest.fixture(scope="module")
def es():
    return ex.early_stopping_curves(seeds=range(5), label_noise=(0.0, 0.2))


def test_wrong_labels_are_learned_last(es):
    r = es[0.2]
    val = r["val_err"].mean(axis=1)
    k = int(np.argmin(val))
    # "falls to about 11% around epoch 10, while the training error is still above 20%"
    assert 5 <= k <= 15 and 0.095 < val[k] < 0.125
    assert r["train_err"].mean(axis=1)[k] > 0.20
    # "climbs to about 20%"; training error about 1%: nearly all 60 wrong labels memorised
    assert 0.18 < val[-1] < 0.23
    assert r["train_err"][-1].mean() < 0.02 and r["train_err"][-1].max() * 300 <= 6


def test_early_stopping_with_wrong_labels(es):
    r = es[0.2]
    # "lowest between epochs 25 and 34"; test error about 12% there, about 19% at epoch 100
    assert r["best_epoch"].min() >= 25 and r["best_epoch"].max() <= 34
    assert 0.10 < r["test_err_best"].mean() < 0.13
    assert 0.17 < r["test_err_last"].mean() < 0.20
    assert np.all(r["test_err_last"] > r["test_err_best"])


def test_early_stopping_with_clean_labels(es):
    r = es[0.0]
    # "minimum between epochs 31 and 47, then rises by about 8% by epoch 100"
    assert r["best_epoch"].min() >= 31 and r["best_epoch"].max() <= 47
    rise = (r["val_loss"][-1] / r["val_loss"].min(axis=0)).mean() - 1
    assert 0.05 < rise < 0.12
    # "the validation error stays flat around 6.8%"
    assert abs(r["val_err_last"].mean() - r["val_err_best"].mean()) < 0.005
    assert 0.06 < r["val_err_last"].mean() < 0.075
    # test error at the best-loss epoch (5.6%) no better than at epoch 100 (5.2%)
    assert abs(r["test_err_best"].mean() - 0.056) < 0.002 and abs(r["test_err_last"].mean() - 0.052) < 0.002


def test_patience_is_needed(es):
    # "goes up from one epoch to the next several times" before the best epoch, in every run
    for q in es["label_noise"]:
        r = es[q]
        for s, b in enumerate(r["best_epoch"]):
            assert np.sum(np.diff(r["val_loss"][1:b + 1, s]) > 0) >= 3


def test_gd_vs_ridge_shrinkage():
    gr = ex.gd_vs_ridge_shrinkage(steps=(10, 100, 1000))
    # measured factors lie on the exact formulas
    assert np.abs(gr["gd"] - gr["gd_formula"]).max() < 1e-10
    assert np.abs(gr["ridge"] - gr["ridge_formula"]).max() < 1e-10
    # eigenvalues span four decades
    assert 1e3 < gr["eig"].max() / gr["eig"].min() < 1e5
    # "about 10% ... for all three t" vs "78%, 56% and 27%"
    assert np.all(gr["dist_gd_ridge"] < 0.12)
    assert np.allclose(gr["dist_gd_ols"], [0.78, 0.56, 0.27], atol=0.01)
    # "the largest difference ... is about 0.2"
    gap = np.abs(gr["gd"] - gr["ridge"]).max(axis=1)
    assert np.all((0.15 < gap) & (gap < 0.25))
    # at eta * lambda * t = 1 gradient descent reaches about 1 - 1/e, ridge exactly 0.5
    t = 1000
    assert abs((1 - (1 - 1 / t) ** t) - (1 - np.exp(-1))) < 1e-3


# --------------------------------------------------------------------- data size

@pytest.fixture(scope="module")
def ds():
    return ex.data_size_dropout(sizes=(100, 300, 1000), seeds=range(5))


def test_training_error_is_zero_or_nearly(ds):
    for name in ds["names"]:
        assert ds[name]["train_err"].max() <= 0.005


def test_no_gain_at_100(ds):
    base, drop = ds["no dropout"]["heldout_err"][0], ds["dropout p = 0.5"]["heldout_err"][0]
    gain = 100 * (base - drop)
    # "both ... miss about 10% ... the paired difference averages zero and goes either way"
    assert 9 < 100 * base.mean() < 11 and 9 < 100 * drop.mean() < 11
    assert abs(gain.mean()) < 0.2 and gain.min() < 0 < gain.max()
    assert gain.min() > -0.6 and gain.max() < 0.6


def test_spread_at_100_dwarfs_the_effect(ds):
    sd = 100 * ds["no dropout"]["heldout_err"][0].std()
    gains = 100 * (ds["no dropout"]["heldout_err"] - ds["dropout p = 0.5"]["heldout_err"]).mean(axis=1)
    assert 1.3 < sd < 2.5                       # "about +-2 points"
    assert sd > 2 * np.abs(gains).max()         # "several times larger than any effect of dropout"


def test_gain_at_300_and_1000(ds):
    base, drop = ds["no dropout"]["heldout_err"], ds["dropout p = 0.5"]["heldout_err"]
    # "from about 6.2% to 5.6%" and "from about 2.8% to 2.0%"
    assert abs(100 * base[1].mean() - 6.2) < 0.3 and abs(100 * drop[1].mean() - 5.6) < 0.3
    assert abs(100 * base[2].mean() - 2.8) < 0.3 and abs(100 * drop[2].mean() - 2.0) < 0.3
    # "in every one of the five seeds at both sizes"
    assert np.all(base[1:] > drop[1:])
    gain = 100 * (base - drop).mean(axis=1)
    rel = gain / (100 * base.mean(axis=1))
    # "about 0.6 points (9% of the error) at 300 and 0.8 points (close to 30%) at 1000"
    assert 0.4 < gain[1] < 0.8 and 0.06 < rel[1] < 0.13
    assert 0.6 < gain[2] < 1.0 and 0.25 < rel[2] < 0.35
    assert gain[0] < gain[1] < gain[2]
    # the gap narrows at 300 and 1000
    assert np.all(ds["dropout p = 0.5"]["gap"][1:].mean(axis=1) < ds["no dropout"]["gap"][1:].mean(axis=1))
