"""Every claim chapter 06's prose page makes about an experiment or a number, asserted with
the same experiment functions (dropout_lab.experiments.ch06_batchnorm) and the same seeds
and arguments the page uses. Trained networks are cached inside the experiment module, so
the fixtures below share them exactly as the page's cells do."""
import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dropout_lab.experiments import ch06_batchnorm as ex
from dropout_lab.schematics import ch06_batchnorm as schematic

PS = (0.2, 0.5, 0.7)


# --------------------------------------------------------------------------------------
# Fixtures: the page's calls
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tr():
    return ex.running_average_trace(seed=0, batch_size=20)


@pytest.fixture(scope="module")
def sc():
    return ex.shift_scatter(ps=PS, seeds=range(3))


@pytest.fixture(scope="module")
def pa():
    return ex.placement_accuracy(ps=PS, seeds=range(3))


@pytest.fixture(scope="module")
def lr():
    return ex.layer_ratios(ps=(0.5, 0.7), depth=4, seeds=range(3))


@pytest.fixture(scope="module")
def dt():
    return ex.depth_trend(depths=(1, 2, 3, 4), p=0.7, seeds=range(3))


@pytest.fixture(scope="module")
def uv():
    return ex.uout_vs_dropout(betas=(0.5, 1.0, 1.5), ps=PS, seeds=range(3))


@pytest.fixture(scope="module")
def wt():
    return ex.width_trend(widths=(16, 32, 64, 128, 256), p=0.5, seeds=range(3))


def pooled(rows, layer, key, p=None):
    return np.concatenate([r[key] for r in rows if r["layer"] == layer and (p is None or r["p"] == p)])


def rel_err(sc, placement, layer, key):
    m, q = pooled(sc[placement], layer, "measured"), pooled(sc[placement], layer, key)
    ok = np.isfinite(m)
    return np.abs(q[ok] / m[ok] - 1), ok


# --------------------------------------------------------------------------------------
# No drop-in solutions in public code
# --------------------------------------------------------------------------------------

GRADED = ("dropout_variance", "variance_shift_ratio", "bn_input_variance", "recalibrate_bn", "uout")


def test_experiment_and_schematic_modules_expose_no_graded_function():
    for module in (ex, schematic):
        for name in GRADED:
            assert not hasattr(module, name), f"{module.__name__} defines graded name {name}"
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            params = list(inspect.signature(fn).parameters)
            assert params[:3] != ["mean", "var", "p"], name
            assert not (params[:3] == ["model", "X", "batch_size"]), name
            assert not (params[:2] == ["x", "beta"]), name


# --------------------------------------------------------------------------------------
# Running statistics
# --------------------------------------------------------------------------------------

def test_momentum_none_is_the_average_of_unbiased_batch_variances(tr):
    # "it equals the average of the unbiased batch variances to within a relative 1e-6"
    assert np.abs(tr["cumulative"] / tr["mean_of_batch_vars"] - 1).max() < 1e-6
    assert tr["ema"].shape == (50, 8) and tr["cumulative"].shape == (50, 8)


def test_default_momentum_is_the_exponential_average_from_one(tr):
    # eq. ch06-ema with the unbiased batch variance, starting from the reset value 1
    e = np.ones(tr["batch_var"].shape[1])
    for k in range(len(tr["batches"])):
        e = 0.9 * e + 0.1 * tr["batch_var"][k]
        assert np.allclose(tr["ema"][k], e, rtol=1e-4), k


def test_running_averages_after_50_batches(tr):
    # "within 0.2% to 2.1% of the variance over all 1000 images for the 8 channels"
    rel_cum = np.abs(tr["cumulative"][-1] / tr["population_var"] - 1)
    rel_ema = np.abs(tr["ema"][-1] / tr["population_var"] - 1)
    assert rel_cum.min() < 0.003 and rel_cum.max() < 0.022
    # "The default exponential average is 2.6% to 70% too high"
    assert (tr["ema"][-1] > tr["population_var"]).all()
    assert 0.02 < rel_ema.min() < 0.03 and 0.65 < rel_ema.max() < 0.72
    # "these variances are small (0.008 to 0.07)"
    assert tr["population_var"].min() > 0.008 and tr["population_var"].max() < 0.07


def test_ema_arithmetic_on_the_page():
    assert abs(0.9**50 - 0.0052) < 1e-4                   # "0.9^50 ≈ 0.005"
    assert abs((1 - 0.9**10) - 0.65) < 0.005              # "the last 10 batches add up to ≈ 0.65"
    assert 1e-7 < 0.9**150 < 2e-7                         # "0.9^150 ≈ 10^-7"
    assert abs(1000 / 999 - 1.001) < 1e-4                 # "N/(N-1) (1.001 ...)"


# --------------------------------------------------------------------------------------
# The formulas, checked by simulation
# --------------------------------------------------------------------------------------

def test_variance_formulas_by_simulation():
    g = torch.Generator().manual_seed(0)
    n = 2_000_000
    for c, v in ((1.0, 1.0), (0.3, 2.0), (-0.5, 0.25)):
        x = c + math.sqrt(v) * torch.randn(n, generator=g, dtype=torch.float64)
        for p in (0.2, 0.5, 0.7):
            torch.manual_seed(int(10 * p))
            y = F.dropout(x, p, training=True)
            predicted = (c * c + v) / (1 - p) - c * c
            assert abs(float(y.var()) / predicted - 1) < 0.01, (c, v, p)
            assert abs(predicted - (v + p / (1 - p) * (c * c + v))) < 1e-12
            assert abs(v / predicted - (1 - p) * v / (v + p * c * c)) < 1e-12
            assert v / predicted <= 1 - p + 1e-12
        for beta in (0.5, 1.0, 1.5):
            r = (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1) * beta
            y = x * (1 + r)
            predicted = (1 + beta**2 / 3) * (c * c + v) - c * c
            assert abs(float(y.var()) / predicted - 1) < 0.01, (c, v, beta)
            assert abs(float(y.mean()) - c) < 0.01
            ratio = v / predicted
            assert abs(ratio - 1 / (1 + beta**2 / 3 * (1 + c * c / v))) < 1e-12


def test_zero_mean_unit_ratio_is_one_minus_p():
    for p in (0.1, 0.5, 0.9):
        assert abs(1.0 / ((0 + 1.0) / (1 - p) - 0) - (1 - p)) < 1e-12


def test_schematic_numbers():
    # c = v = 1, p = 0.5: variance 3 in training, 1 at test, ratio 1/3
    assert (1 + 1) / 0.5 - 1 == 3.0
    fig = schematic.dropout_then_bn(p=0.5, c=1.0, v=1.0)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "1/3 = 0.33" in texts
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_rectified_gaussian_unit_numbers():
    # "c ≈ 0.399, E[x^2] = 1/2, v ≈ 0.341, c^2/v ≈ 0.47, r ≈ 0.73, 0.41, 0.23; sqrt(r) ≈ 0.64 at p = 0.5"
    c = 1 / math.sqrt(2 * math.pi)
    v = 0.5 - c * c
    assert abs(c - 0.399) < 5e-4 and abs(v - 0.341) < 5e-4 and abs(c * c / v - 0.47) < 0.005
    r = {p: (1 - p) * v / (v + p * c * c) for p in PS}
    assert [round(r[p], 2) for p in PS] == [0.73, 0.41, 0.23]
    assert abs(math.sqrt(r[0.5]) - 0.64) < 0.005
    # and a simulation: relu of a standard normal through dropout
    g = torch.Generator().manual_seed(1)
    x = torch.relu(torch.randn(2_000_000, generator=g, dtype=torch.float64))
    torch.manual_seed(2)
    y = F.dropout(x, 0.5, training=True)
    assert abs(float(x.var() / y.var()) - r[0.5]) < 0.005


def test_uout_equivalent_dropout_rate():
    # "Uout with beta = 0.5 (s^2 = 0.083) shifts like dropout with p ≈ 0.077"; beta <= 1 caps s^2 at 1/3 (p = 0.25)
    s2 = ex.multiplier_variance("uout", 0.5)
    assert abs(s2 - 0.0833) < 1e-3
    assert abs(s2 / (1 + s2) - 0.077) < 1e-3
    assert abs(ex.multiplier_variance("uout", 1.0) - ex.multiplier_variance("dropout", 0.25)) < 1e-12
    with pytest.raises(ValueError):
        ex.multiplier_variance("gaussian", 0.5)


# --------------------------------------------------------------------------------------
# The shift inside the networks (fig-shift-scatter)
# --------------------------------------------------------------------------------------

def test_first_bn_matches_the_per_unit_formula(sc):
    # "median relative difference 0.9%, and 95% of the 813 channels are within 4.3%"
    e, ok = rel_err(sc, "direct", 1, "predicted")
    assert np.median(e) < 0.012
    assert np.percentile(e, 95) < 0.05
    # "339 of the 1152 channels belong to ReLU units that never fire"
    alive = pooled(sc["direct"], 1, "alive")
    assert len(alive) == 1152 and abs(int((~alive).sum()) - 339) <= 15
    assert ok.sum() == alive.sum()


def test_more_masks_shrink_the_first_bn_error():
    # "with 160 masks the median and 95th-percentile differences for one of these networks shrink
    #  2.9- and 2.1-fold, close to the sqrt(8) ≈ 2.8 that sampling error predicts"
    net = ex.trained_net("direct", 0.5, 0)
    s2 = ex.multiplier_variance("dropout", 0.5)
    med, p95 = [], []
    for n_masks in (20, 160):
        row = ex._shift_measurements(net, s2, n_masks=n_masks, seed=0)[0]
        ok = np.isfinite(row["measured"])
        e = np.abs(row["predicted"][ok] / row["measured"][ok] - 1)
        med.append(np.median(e))
        p95.append(np.percentile(e, 95))
    assert abs(med[0] / med[1] - 2.9) < 0.1, med
    assert abs(p95[0] / p95[1] - 2.1) < 0.1, p95
    assert abs(math.sqrt(8) - 2.8) < 0.05


def test_second_bn_needs_training_moments(sc):
    # "for every one of the 1152 channels it predicts a ratio closer to 1 than measured, by 22% in the median"
    m, q = pooled(sc["direct"], 2, "measured"), pooled(sc["direct"], 2, "predicted")
    assert len(m) == 1152 and np.isfinite(m).all()
    assert (q > m).all()
    e, _ = rel_err(sc, "direct", 2, "predicted")
    assert 0.19 < np.median(e) < 0.25
    # "That version is exact again (median difference 1.0%, 95th percentile 4.6%)"
    e, _ = rel_err(sc, "direct", 2, "predicted_train_moments")
    assert np.median(e) < 0.013 and np.percentile(e, 95) < 0.05
    # summary: "each formula predicts 95% of the channels' ratios to within 5% where it is exact"
    for placement, layer in (("direct", 1), ("before", 2)):
        e, _ = rel_err(sc, placement, layer, "predicted")
        assert np.percentile(e, 95) < 0.05


def test_weight_layer_formula_and_the_wrong_per_unit_one(sc):
    # "predicts every channel to within 2.5% (median 0.4%)"
    e, _ = rel_err(sc, "before", 2, "predicted")
    assert np.median(e) < 0.006 and e.max() < 0.025
    # "the per-unit formula applied to z ... predicts a ratio 42% smaller than measured in the median"
    m, own = pooled(sc["before"], 2, "measured"), pooled(sc["before"], 2, "predicted_own")
    assert (own < m).all()
    e, _ = rel_err(sc, "before", 2, "predicted_own")
    assert 0.38 < np.median(e) < 0.46
    # the first BN of that network has no dropout upstream: no shift
    assert np.allclose(pooled(sc["before"], 1, "measured"), 1.0)


def test_median_ratios(sc):
    med = {(pl, layer): [np.nanmedian(pooled(sc[pl], layer, "measured", p)) for p in PS]
           for pl, layer in (("direct", 1), ("direct", 2), ("before", 2))}
    # "0.75 at p = 0.2, 0.44 at p = 0.5 and 0.25 at p = 0.7, close to the 0.73, 0.41 and 0.23"
    assert np.allclose(med["direct", 1], [0.745, 0.442, 0.251], atol=0.01)
    c = 1 / math.sqrt(2 * math.pi)
    v = 0.5 - c * c
    gauss = [(1 - p) * v / (v + p * c * c) for p in PS]
    assert np.all(np.abs(np.array(med["direct", 1]) - gauss) < 0.04)
    # "0.69, 0.34 and 0.16 median ratios at the second BN"
    assert np.allclose(med["direct", 2], [0.688, 0.339, 0.156], atol=0.01)
    # "median ratios of 0.93, 0.82 and 0.70"
    assert np.allclose(med["before", 2], [0.932, 0.819, 0.700], atol=0.01)


def test_running_var_is_what_bn_was_exposed_to(sc):
    # "differs from the measured training-mode variance by between 1.6% and 4.1% in the median"
    for placement, layer in (("direct", 1), ("direct", 2), ("before", 2)):
        e = np.abs(pooled(sc[placement], layer, "running") / pooled(sc[placement], layer, "measured") - 1)
        assert 0.012 < np.nanmedian(e) < 0.045, (placement, layer)


# --------------------------------------------------------------------------------------
# Accuracy (fig-placement-accuracy)
# --------------------------------------------------------------------------------------

def test_recalibration_changes_nothing_on_two_blocks(pa):
    # "between -0.75 and +0.5 percentage points for every arrangement, p and seed"
    i = [pa["placements"].index(k) for k in ("before", "direct")]
    gain = (pa["refit_off"] - pa["running"])[i]
    assert gain.min() >= -0.0075 - 1e-6 and gain.max() <= 0.005 + 1e-6
    # "the control that keeps the noise moves it by at most a quarter of a point"
    control = (pa["refit_on"] - pa["running"])[i]
    assert np.abs(control).max() <= 0.0025 + 1e-6


def test_placement_accuracies(pa):
    acc = {k: pa["running"][pa["placements"].index(k)].mean(-1) for k in pa["placements"]}
    none = pa["none"].mean()
    assert abs(none - 0.9842) < 0.001                                         # no dropout 98.4%
    assert np.all((acc["after"] >= 0.983 - 1e-6) & (acc["after"] <= 0.985))  # "98.3% to 98.4%"
    assert np.all(acc["after"] >= none - 0.002)                              # "loses nothing"
    # "at p = 0.7, dropout -> BN reaches 95.4% ... dropout -> linear -> BN 97.2%"; no BN 95.1%
    assert abs(acc["direct"][2] - 0.954) < 0.002
    assert abs(acc["before"][2] - 0.972) < 0.002
    assert abs(acc["plain"][2] - 0.951) < 0.002
    assert acc["plain"][2] <= acc["direct"][2]                               # "no better than with BN"
    # "at p = 0.2 and 0.5 it is about a point worse (97.2% and 96.7% against 98.3% and 97.6%)"
    assert np.allclose(acc["plain"][:2], [0.972, 0.967], atol=0.002)
    assert np.allclose(acc["direct"][:2], [0.983, 0.976], atol=0.002)
    assert np.all(acc["direct"][:2] - acc["plain"][:2] > 0.008)
    # accuracy of dropout -> BN falls with p; "matches it only up to p = 0.5 / only at p = 0.2"
    assert acc["direct"][0] > acc["direct"][1] > acc["direct"][2]
    assert np.all(acc["before"][:2] >= acc["after"][:2] - 0.002) and acc["before"][2] < acc["after"][2] - 0.005
    assert acc["direct"][0] >= acc["after"][0] - 0.002 and np.all(acc["direct"][1:] < acc["after"][1:] - 0.005)


# --------------------------------------------------------------------------------------
# Deep stacks (fig-deep-stacks)
# --------------------------------------------------------------------------------------

def test_the_shift_compounds_with_depth(lr):
    r = lr["ratio"].mean(2)            # (placement, p, layer)
    s = lr["mean_shift"].mean(2)
    d, b = lr["placements"].index("direct"), lr["placements"].index("before")
    # "the first BN meets a ratio of 0.21, the fourth one of 0.08"
    assert abs(r[d, 1, 0] - 0.21) < 0.01 and abs(r[d, 1, 3] - 0.08) < 0.01
    assert np.all(np.diff(r[d, 1]) < 0)
    # "offset ... grows from 0.015 to 0.105 stored standard deviations"
    assert abs(s[d, 1, 0] - 0.015) < 0.005 and abs(s[d, 1, 3] - 0.105) < 0.01
    # "At p = 0.5 the ratio levels off after the second layer (0.43, 0.34, 0.33, 0.33)"
    assert np.allclose(r[d, 0], [0.43, 0.34, 0.33, 0.33], atol=0.01)
    # "with dropout -> linear -> BN ... to 0.73 at p = 0.5 and 0.47 at p = 0.7 by the fourth BN"
    assert abs(r[b, 0, 3] - 0.73) < 0.01 and abs(r[b, 1, 3] - 0.47) < 0.01
    assert np.allclose(r[b, :, 0], 1.0, atol=0.005)      # no dropout before the first BN


def test_depth_trend(dt):
    run, off, on = (100 * dt[k].mean(-1) for k in ("running", "refit_off", "refit_on"))
    d, b, pl = (dt["placements"].index(k) for k in ("direct", "before", "plain"))
    # "97.2% with one block, 95.4% with two, 90.7% with three and 61.3% with four"
    assert np.allclose(run[d], [97.2, 95.4, 90.7, 61.3], atol=0.1)
    # "back to 70.2%, 9 points, while the same re-estimation with dropout on only reaches 62.9%"
    assert abs(off[d, 3] - 70.2) < 0.1 and abs(on[d, 3] - 62.9) < 0.1
    # "9 points on average, though unevenly: 17 and 9 points for two of the seeds, half a point for the third"
    gain = np.sort(100 * (dt["refit_off"][d, 3] - dt["running"][d, 3]))
    assert abs(gain.mean() - 8.9) < 0.2
    assert np.allclose(gain, [0.5, 9.25, 17.0], atol=0.3), gain
    # "Dropout -> linear -> BN suffers less (87.7% at four blocks) and gains 1 point"
    assert abs(run[b, 3] - 87.7) < 0.1 and 0.8 < off[b, 3] - run[b, 3] < 1.4
    # "The control network without BN collapses too (58.9% at four blocks)"
    assert abs(run[pl, 3] - 58.9) < 0.1
    # "still more than 25 points below the two-block ones"
    assert run[d, 1] - off[d, 3] > 25 and run[b, 1] - off[d, 3] > 25
    # "at three blocks re-estimation changes nothing measurable"
    assert abs(off[d, 2] - run[d, 2]) < 0.5


# --------------------------------------------------------------------------------------
# Uout (fig-uout) and width (fig-width)
# --------------------------------------------------------------------------------------

def test_uout_and_dropout_share_one_curve(uv):
    s2, measured = [], []
    for kind in ("uout", "dropout"):
        u = uv[kind]
        # "agrees with the prediction to within 0.003"
        assert np.abs(u["measured"].mean(0) - u["predicted"].mean(0)).max() < 0.004
        s2 += list(u["s2"])
        measured += list(u["measured"].mean(0))
    order = np.argsort(s2)
    assert np.all(np.diff(np.array(measured)[order]) < 0)             # one decreasing curve in s^2
    m = {kind: uv[kind]["measured"].mean(0) for kind in uv}
    # "Uout with beta = 1 (s^2 = 0.33) shifts the variance to 0.68, ... p = 0.2 (0.73) ... beta = 1.5 (0.50)"
    assert abs(m["uout"][1] - 0.677) < 0.005 and abs(m["dropout"][0] - 0.726) < 0.005
    assert abs(m["uout"][2] - 0.497) < 0.005
    # "Its networks are as accurate as the network without noise (98.3% to 98.4%)"
    acc = uv["uout"]["accuracy"].mean(0)
    assert np.all((acc >= 0.983 - 1e-6) & (acc <= 0.985))


def test_width_dilutes_the_shift(wt):
    meas, pred, low = (wt[k].mean(0) for k in ("measured", "predicted", "min"))
    # "The mean ratio rises from 0.63 at width 16 to 0.85 at width 256"
    assert np.all(np.diff(meas) > 0)
    assert abs(meas[0] - 0.633) < 0.005 and abs(meas[-1] - 0.847) < 0.005
    # "the prediction from the weights follows it to within 0.003 at every width"
    assert np.abs(meas - pred).max() < 0.004
    # "The smallest channel rises too, from 0.52 to 0.72"
    assert abs(low[0] - 0.52) < 0.01 and abs(low[-1] - 0.72) < 0.01
    # "(90.7% to 98.6%) ... re-estimating changes it by at most 0.25 points at any width"
    acc = 100 * wt["accuracy"].mean(0)
    assert abs(acc[0] - 90.7) < 0.1 and abs(acc[-1] - 98.6) < 0.1
    assert np.abs(100 * wt["gain"].mean(0)).max() <= 0.25 + 1e-6
