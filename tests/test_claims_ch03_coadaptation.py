"""Every claim chapter 03's prose page makes about a measurement, asserted with the same
experiment functions (dropout_lab.experiments.ch03_coadaptation) and the same seeds the page
uses. The fifteen networks are trained once per module (fixture), as the page trains them once."""
import numpy as np
import pytest

from dropout_lab.experiments import ch03_coadaptation as ex
from dropout_lab.schematics import ch03_coadaptation as schematic

P_VALUES = (0.0, 0.2, 0.5)
NO, P2, P5 = 0, 1, 2  # row of each drop probability


@pytest.fixture(scope="module")
def nets():
    return ex.train_networks(seeds=range(5), p_values=P_VALUES)


@pytest.fixture(scope="module")
def corr(nets):
    return ex.correlation_summary(nets)


@pytest.fixture(scope="module")
def acts(nets):
    return ex.activation_summary(nets)


@pytest.fixture(scope="module")
def imp(nets):
    return ex.importance_summary(nets, ks=(0, 1, 2, 4, 8, 16, 32, 64), n_random=20)


@pytest.fixture(scope="module")
def dele(nets):
    return ex.deletion_curves(nets, fractions=ex.FRACTIONS, n_repeats=20, seed=0)


@pytest.fixture(scope="module")
def margin(nets):
    return ex.margin_spread_summary(nets, fractions=(0.25, 0.5, 0.75))


@pytest.fixture(scope="module")
def feats(nets):
    return ex.feature_summary(nets, seed_index=0, n_units=8)


def _at(dele, f):
    return int(np.argmin(np.abs(dele["fractions"] - f)))


# --------------------------------------------------------------------- schematic

def test_schematic_outputs():
    """Page: both pairs give t with both units; only the copies survive either deletion;
    the squared error over dropout's masks (p = 0.5, t = e = 1) is 5 against 0.5."""
    co = schematic.thinned_outputs("co-adapted", t=1.0, e=1.0)
    red = schematic.thinned_outputs("redundant", t=1.0, e=1.0)
    assert co[(1, 1)] == red[(1, 1)] == 1.0
    assert co[(1, 0)] == 2.0 and co[(0, 1)] == -1.0          # t + e, and -e
    assert red[(1, 0)] == red[(0, 1)] == 0.5                 # half the signal, not rescaled
    red_s = schematic.thinned_outputs("redundant", t=1.0, e=1.0, rescale=True)
    assert red_s[(1, 0)] == red_s[(0, 1)] == 1.0
    assert schematic.training_squared_error("co-adapted", 1.0, 1.0, 0.5) == pytest.approx(5.0)
    assert schematic.training_squared_error("redundant", 1.0, 1.0, 0.5) == pytest.approx(0.5)
    assert sum(schematic.mask_probability(m, 0.3) for m in schematic.MASKS) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        schematic.thinned_outputs("other")


def test_schematic_copies_are_perfectly_correlated():
    """Page: two redundant copies have a correlation of exactly 1 (over any batch)."""
    t = np.random.default_rng(0).normal(size=50)
    fa, fb, _ = schematic.PAIRS["redundant"]
    assert np.corrcoef(fa(t, 0.0), fb(t, 0.0))[0, 1] == pytest.approx(1.0)


# --------------------------------------------------------------------- the networks

def test_networks_fit_and_dropout_helps_a_little(nets):
    err = 100 * nets["heldout_err"]
    # "from about 3.1% without dropout to about 2.5% with p = 0.2 and 2.4% with p = 0.5"
    assert abs(err[NO].mean() - 3.1) < 0.15
    assert abs(err[P2].mean() - 2.5) < 0.15
    assert abs(err[P5].mean() - 2.4) < 0.15
    # "beats the network without dropout of the same seed in all five seeds"
    assert np.all(err[P5] < err[NO])
    # "training error is zero without dropout and stays below 0.2% with it"
    assert nets["train_err"][NO].max() == 0.0
    assert nets["train_err"].mean(1)[1:].max() < 0.002
    # same start for every p
    assert nets["W1_init"].shape == (5, 64, ex.HIDDEN)


# --------------------------------------------------------------------- 1. correlation

def test_dropout_lowers_mean_abs_correlation(corr):
    m = corr["mean_abs"]
    # "from about 0.31 ... to 0.29 with p = 0.2 and 0.28 with p = 0.5"
    assert abs(m[NO].mean() - 0.31) < 0.01
    assert abs(m[P2].mean() - 0.29) < 0.01
    assert abs(m[P5].mean() - 0.28) < 0.01
    # "in every seed: the five networks with p = 0.5 all lie below the five without dropout"
    assert m[P5].max() < m[NO].min()
    # monotone in p
    assert m[NO].mean() > m[P2].mean() > m[P5].mean()
    # "about 11%" drop
    assert 0.08 < 1 - m[P5].mean() / m[NO].mean() < 0.14


def test_pre_activations_barely_move(corr):
    pre = corr["mean_abs_pre"]
    # "a mean |r| of 0.33 without dropout and 0.32 with p = 0.5: a change of about 4%"
    assert abs(pre[NO].mean() - 0.33) < 0.01 and abs(pre[P5].mean() - 0.32) < 0.01
    drop_pre = 1 - pre[P5].mean() / pre[NO].mean()
    drop_act = 1 - corr["mean_abs"][P5].mean() / corr["mean_abs"][NO].mean()
    assert 0.02 < drop_pre < 0.06
    assert drop_act > 2 * drop_pre          # most of the change appears after the ReLU


def test_no_copies(corr):
    # "about 0.80 without dropout and 0.78 with p = 0.5"; "from 1.4% to 0.9%" above 0.8
    assert abs(corr["nearest"][NO].mean() - 0.80) < 0.015
    assert abs(corr["nearest"][P5].mean() - 0.78) < 0.015
    assert corr["nearest"][P5].mean() < corr["nearest"][NO].mean()
    assert abs(100 * corr["frac_high"][NO].mean() - 1.4) < 0.25
    assert abs(100 * corr["frac_high"][P5].mean() - 0.9) < 0.25


def test_fewer_strongly_negative_correlations(corr):
    # "fewer strongly negative correlations, and more pairs near r = 0"
    centres = 0.5 * (corr["bins"][1:] + corr["bins"][:-1])
    width = np.diff(corr["bins"])
    neg = (corr["hist"][..., centres < -0.5] * width[centres < -0.5]).sum(-1).mean(1)
    near = (corr["hist"][..., np.abs(centres) < 0.1] * width[np.abs(centres) < 0.1]).sum(-1).mean(1)
    assert neg[P5] < neg[NO] and near[P5] > near[NO]


def test_dead_units_range(corr):
    # "between 11 and 26 of the 128 units are dead on the held-out images,
    # and the number varies from seed to seed"
    dead = ex.HIDDEN - corr["n_live"]
    assert 9 <= dead.min() <= 13 and 24 <= dead.max() <= 28 and dead.max() - dead.min() >= 10
    # "counting their pairs as uncorrelated would move the mean by more than the effect"
    live = corr["n_live"]
    with_zeros = corr["mean_abs"] * live * (live - 1) / (ex.HIDDEN * (ex.HIDDEN - 1))
    effect = corr["mean_abs"][NO].mean() - corr["mean_abs"][P5].mean()
    assert with_zeros.max() - with_zeros.min() > effect
    assert np.ptp(with_zeros[NO]) > effect or np.ptp(with_zeros[P5]) > effect


# --------------------------------------------------------------------- 2. sparsity

def test_sparser_activations(acts):
    fi, fl = acts["frac_inactive"].mean(1), acts["frac_inactive_live"].mean(1)
    # "from about 0.25 ... to 0.38 with p = 0.2 and 0.47 with p = 0.5"
    assert np.allclose(fi, [0.25, 0.38, 0.47], atol=0.015)
    # "over the live units alone it almost triples, from 0.14 to 0.38"
    assert abs(fl[NO] - 0.14) < 0.015 and abs(fl[P5] - 0.38) < 0.015 and 2.5 < fl[P5] / fl[NO] < 3.0
    # monotone, and the spread over seeds is small compared with the differences
    assert fi[NO] < fi[P2] < fi[P5]
    assert acts["frac_inactive"][P5].min() > acts["frac_inactive"][NO].max()


def test_smaller_activations(acts):
    ma, med = acts["mean_activation"].mean(1), acts["unit_mean_median"].mean(1)
    # "the mean activation halves (0.81 to 0.41)"; "median ... from about 0.96 to 0.47"
    assert abs(ma[NO] - 0.81) < 0.02 and abs(ma[P5] - 0.41) < 0.02
    assert 1.8 < ma[NO] / ma[P5] < 2.2
    assert abs(med[NO] - 0.96) < 0.03 and abs(med[P5] - 0.47) < 0.03


def test_thresholds_move_sensitivity_stays(acts):
    pm, ps = acts["pre_mean"].mean(1), acts["pre_spread"].mean(1)
    # "mean pre-activation ... falls from about 0.89 to 0.31, while its spread ... stays at about 0.69"
    assert abs(pm[NO] - 0.89) < 0.03 and abs(pm[P5] - 0.31) < 0.03
    assert np.all(np.abs(ps - 0.69) < 0.02)


def test_scale_is_not_just_moved_to_the_outgoing_weights(acts):
    ow, co = acts["out_weight"].mean(1), acts["contribution"].mean(1)
    # "it grows slightly with dropout, 0.81 to 0.90"; "falls, from about 0.77 to 0.44"
    assert abs(ow[NO] - 0.81) < 0.02 and abs(ow[P5] - 0.90) < 0.02
    assert abs(co[NO] - 0.77) < 0.02 and abs(co[P5] - 0.44) < 0.02


def test_relu_rescaling_leaves_the_function_alone(nets):
    # the note on positive homogeneity: c * (W1, b1) and W2 / c give the same logits
    one = {k: nets[k][:1, :1] for k in ("W1", "b1", "W2", "b2")}
    scaled = dict(one, W1=3.0 * one["W1"], b1=3.0 * one["b1"], W2=one["W2"] / 3.0)
    X, _ = ex._heldout()
    assert np.allclose(ex._logits(one, X), ex._logits(scaled, X), atol=1e-4)


# --------------------------------------------------------------------- 3. ablation importance

def test_single_units_matter_little(imp):
    top_images = imp["top"] * imp["n_images"]
    # "about 4 images (0.5 points) without dropout and about 3.6 and 2.4 with p = 0.2 and p = 0.5"
    assert abs(top_images[NO].mean() - 4.2) < 0.5
    assert abs(top_images[P2].mean() - 3.6) < 0.5
    assert abs(top_images[P5].mean() - 2.4) < 0.5
    assert np.all(imp["top"] < 0.01)
    # "at least one [negative importance] in every network and dozens in some"
    assert imp["n_negative"].min() >= 1 and imp["n_negative"].max() >= 24
    # dead units have importance exactly 0, so zeros exist in every network
    assert imp["n_zero"].min() >= 11


def test_importance_scales_down_but_does_not_equalise(imp):
    top = 1000 * imp["loss_sorted"][..., 0].mean(1)
    total = 1000 * np.clip(imp["loss_sorted"], 0, None).sum(-1).mean(1)
    share = imp["loss_top10_share"].mean(1)
    # "about 10 millinats without dropout and 5 with p = 0.5"
    assert abs(top[NO] - 10) < 1.0 and abs(top[P5] - 4.6) < 0.7
    # "falls from about 200 to about 86 millinats"
    assert abs(total[NO] - 200) < 15 and abs(total[P5] - 86) < 10
    # "the ten most important units carry about a third ... (0.32, 0.35, 0.32)"
    assert np.allclose(share, [0.32, 0.35, 0.32], atol=0.02)
    assert abs(share[P5] - share[NO]) < 0.03


def test_deleting_the_most_important_units(imp):
    ks = list(imp["ks"])
    full = 100 * imp["full_acc"].mean(1)
    top16 = 100 * imp["ordered"][..., ks.index(16)].mean(1)
    rand16 = 100 * imp["random"][..., ks.index(16)].mean(1)
    top64 = 100 * imp["ordered"][..., ks.index(64)].mean(1)
    # "costs ... about 3.5 points (to 93.5%) and ... about 1.1 points (to 96.5%)"
    assert abs(top16[NO] - 93.5) < 0.4 and abs(full[NO] - top16[NO] - 3.5) < 0.4
    assert abs(top16[P5] - 96.5) < 0.4 and abs(full[P5] - top16[P5] - 1.1) < 0.4
    # "16 random units cost them about 1.0 and 0.2 points"
    assert abs(full[NO] - rand16[NO] - 1.0) < 0.3 and abs(full[P5] - rand16[P5] - 0.2) < 0.15
    # "leaves 68% accuracy without dropout and 90% with p = 0.5"
    assert abs(top64[NO] - 68) < 2 and abs(top64[P5] - 90) < 1.5
    # most-important-first hurts more than random, in every condition
    assert np.all(imp["ordered"][..., 1:].mean(1) <= imp["random"][..., 1:].mean(1) + 1e-9)


# --------------------------------------------------------------------- 4. random deletion

def test_graceful_degradation(dele):
    acc = 100 * dele["acc"]
    full = acc[..., 0].mean(1)
    a25, a50, a75 = (acc[..., _at(dele, f)].mean(1) for f in (0.25, 0.5, 0.75))
    # "drops from 96.9% to about 94.5%, ... 96.4% (p = 0.2) and 97.1% (p = 0.5)"
    assert abs(full[NO] - 96.9) < 0.2
    assert np.allclose(a25, [94.5, 96.4, 97.1], atol=0.3)
    # "89.5% against 94.1% and 95.7%"; "74% against 86% and 90%"
    assert np.allclose(a50, [89.5, 94.1, 95.7], atol=0.3)
    assert np.allclose(a75, [74, 86, 90], atol=1.0)
    # "loses less than two points ... more than seven"
    assert full[P5] - a50[P5] < 2.0 and full[NO] - a50[NO] > 7.0
    # "the ordering holds in every seed"
    for f in (0.25, 0.5, 0.75):
        j = _at(dele, f)
        assert np.all(dele["acc"][P5, :, j] > dele["acc"][NO, :, j])
        assert np.all(dele["acc"][P2, :, j] > dele["acc"][NO, :, j])


def test_rescaling_barely_changes_accuracy(dele):
    j = _at(dele, 0.5)
    # "changes at most 0.35% of the predictions at f = 1/2"
    assert dele["changed"][..., j].max() <= 0.0036
    assert np.abs(dele["acc_rescaled"][..., : j + 1] - dele["acc"][..., : j + 1]).max() < 0.004
    # nothing deleted: the factor is 1 and nothing can change
    assert dele["changed"][..., 0].max() == 0.0


def test_rescaling_changes_the_loss_in_opposite_directions(dele):
    j = _at(dele, 0.5)
    loss, res = dele["loss"][..., j].mean(1), dele["loss_rescaled"][..., j].mean(1)
    # "from 0.24 to 0.14 nats for p = 0.5"; "from 0.33 to 0.36"
    assert abs(loss[P5] - 0.24) < 0.015 and abs(res[P5] - 0.14) < 0.015
    assert abs(loss[NO] - 0.33) < 0.015 and abs(res[NO] - 0.36) < 0.015
    assert res[P2] < loss[P2]
    # "and much more at larger f"
    k = _at(dele, 0.875)
    assert dele["loss_rescaled"][NO, :, k].mean() > 2 * dele["loss"][NO, :, k].mean()
    # "all three loss curves rise together" without rescaling, at the largest fraction
    last = dele["loss"][..., -1].mean(1)
    assert last.max() - last.min() < 0.05


def test_margin_to_spread_ratio(margin, dele):
    rho = margin["rho_median"].mean(1)
    # "rises from about 2.1 without dropout to 2.9 with p = 0.2 and 3.5 with p = 0.5"
    assert np.allclose(rho, [2.1, 2.9, 3.5], atol=0.1)
    assert np.all(margin["rho_median"][P5] > margin["rho_median"][NO].max())
    # the normal approximation "ranks the three conditions correctly and is close at f = 1/2
    # (92%, 95% and 96% ...)", "and it is optimistic"
    pred = 100 * margin["predicted"].mean(1)
    assert np.allclose(pred[:, 1], [92.0, 95.0, 96.2], atol=0.4)
    assert np.all(np.diff(pred, axis=0) > 0)
    measured = 100 * np.stack([dele["acc"][..., _at(dele, f)].mean(1) for f in (0.25, 0.5, 0.75)], axis=1)
    assert np.all(pred >= measured - 0.2)


def test_margin_moments_are_exact():
    """Eq. ch03-margin-moments: mean and variance of a sum over a uniformly random subset
    of k of H numbers, checked by enumerating every subset of a small population."""
    import itertools

    v = np.array([1.5, -0.3, 2.0, 0.7, -1.1, 0.4])
    H, k = len(v), 2
    kept = np.array([v.sum() - v[list(d)].sum() for d in itertools.combinations(range(H), k)])
    assert kept.mean() == pytest.approx((1 - k / H) * v.sum())
    assert kept.var() == pytest.approx(k * (H - k) / (H - 1) * v.var())


# --------------------------------------------------------------------- 5. features

def test_features_barely_change(feats):
    same, other, init = feats["same_unit"], feats["other_unit"], feats["init_corr"]
    # "about 0.89 [p = 0.5] ... (0.96 for p = 0.2), against about 0.02 with a different unit
    # and 0.45 with its own initial weights"
    assert abs(same[P5].mean() - 0.89) < 0.02 and abs(same[P2].mean() - 0.96) < 0.02
    assert np.abs(other[1:]).mean() < 0.05
    assert abs(init.mean() - 0.45) < 0.03
    # "2.5 to 2.7 times the length of the initial weights"
    assert 2.4 < feats["moved"].mean(1).min() and feats["moved"].mean(1).max() < 2.75


def test_feature_smoothness(feats):
    sm = feats["smoothness"]
    # "about -0.02 at initialisation", "about 0.30 in every condition", "0.32 with p = 0.5,
    # higher than without dropout in each of the five seeds, by 0.01 to 0.03"
    assert abs(feats["smoothness_init"].mean() + 0.02) < 0.02
    assert np.all(np.abs(sm.mean(1) - 0.31) < 0.015)
    assert abs(sm[P5].mean() - 0.32) < 0.01
    diff = sm[P5] - sm[NO]
    assert np.all((0.005 < diff) & (diff < 0.03))
    # "61 of which vary in the training set"
    assert feats["n_live_pixels"] == 61


# --------------------------------------------------------------------- no graded solutions

def test_module_defines_no_graded_function():
    graded = {"mean_abs_correlation", "fraction_inactive", "ablation_importance", "random_deletion_accuracy"}
    assert not graded & set(dir(ex))


def test_rescaling_acts_only_through_the_output_bias(nets):
    """Eq. ch03-rescaled-logits: with the output bias set to zero, multiplying the survivors by
    1/(1-f) cannot change a single prediction."""
    no_bias = dict(nets, b2=np.zeros_like(nets["b2"]))
    d = ex.deletion_curves(no_bias, fractions=(0.25, 0.5, 0.75), n_repeats=2, seed=1)
    assert d["changed"].max() == 0.0
    assert np.array_equal(d["acc"], d["acc_rescaled"])
