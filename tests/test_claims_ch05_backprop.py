"""Every claim chapter 05's prose page makes about an experiment, asserted with
the same experiment functions the page calls (same sizes: they are fast)."""
import numpy as np
import pytest

from dropout_lab.experiments import ch05_backprop as ex
from dropout_lab.schematics import ch05_backprop as schematic

HS = np.logspace(-12, -1, 23)


@pytest.fixture(scope="module")
def gradcheck_errors():
    return ex.gradient_check_errors(HS)


def _slope(hs, err, lo, hi):
    sel = (hs >= lo) & (hs <= hi)
    return np.polyfit(np.log10(hs[sel]), np.log10(err[sel]), 1)[0]


def test_truncation_error_orders(gradcheck_errors):
    """Page: for large h the forward error falls like h, the central like h^2."""
    fwd, cen = gradcheck_errors
    assert 0.9 < _slope(HS, fwd, 1e-5, 1e-1) < 1.1
    assert 1.8 < _slope(HS, cen, 1e-3, 1e-1) < 2.2


def test_best_errors_and_rounding(gradcheck_errors):
    """Page: the central difference reaches a relative error below 1e-8 near h = 1e-5,
    the forward difference never gets below 1e-6 ... and both get worse again for tiny h."""
    fwd, cen = gradcheck_errors
    assert cen.min() < 1e-8
    assert 1e-6 <= HS[np.argmin(cen)] <= 1e-4
    assert fwd.min() > 1e-8 and fwd.min() > 30 * cen.min()
    assert cen[HS <= 1e-11].min() > 1e-6 and fwd[HS <= 1e-11].min() > 1e-6
    i5 = np.argmin(np.abs(HS - 1e-5))
    assert cen[i5] < 1e-8 and fwd[i5] > 1e-6


def test_dropped_entries_have_zero_gradient():
    """Page: autograd gives exactly 0 where the mask dropped, non-zero where it kept."""
    dropped_max, kept_min = ex.dropped_gradient_is_zero()
    assert dropped_max == 0.0 and kept_min > 0.0


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_fresh_mask_disagreement(p):
    """Page: a fresh mask disagrees with the cached one on a fraction 2p(1-p) of units."""
    assert abs(ex.fresh_mask_disagreement(p) - 2 * p * (1 - p)) < 0.01


def test_dropped_unit_drift():
    """Page: while a unit is dropped its weights get exactly zero gradient; plain SGD
    leaves them alone, momentum and weight decay still move them."""
    drift, grad_norm, length = ex.dropped_unit_drift()
    assert all(g == 0.0 for g in grad_norm.values())
    assert np.all(drift["plain SGD"] == 0.0)
    assert drift["SGD + momentum 0.9"][:, -1].min() > 0.05
    assert drift["SGD + weight decay 0.01"][:, -1].min() > 0.0
    assert drift["momentum + weight decay"][:, -1].min() > 0.05
    # momentum's push fades: the last ten steps move the weights less than the first ten
    m = drift["SGD + momentum 0.9"].mean(axis=0)
    assert m[-1] - m[-11] < m[10] - m[0]
    # weight decay alone: a steady drift that never stops
    assert np.all(np.diff(drift["SGD + weight decay 0.01"], axis=1) > 0)
    # both: momentum carries the weights away, then the distance from the start falls again
    both = drift["momentum + weight decay"].mean(axis=0)
    assert both.max() > both[-1] + 0.02
    # "here the push is outward, and the weight vector gets longer" (momentum alone)
    mom_len = length["SGD + momentum 0.9"]
    assert np.all(mom_len[:, -1] > mom_len[:, 0])
    # "weight decay alone: the distance from where they were grows while their length falls"
    wd_len = length["SGD + weight decay 0.01"]
    assert np.all(np.diff(wd_len, axis=1) < 0)
    # "with both, momentum first lengthens them; once the velocity has faded, decay shortens them
    #  again": the length peaks in the middle and falls over the last ten steps, for every seed
    both_len = length["momentum + weight decay"]
    peak = both_len.argmax(axis=1)
    assert np.all((peak > 5) & (peak < both_len.shape[1] - 5))
    assert np.all(both_len[:, -1] < both_len[:, -11])
    assert np.all(both_len.max(axis=1) > both_len[:, 0])
    # plain SGD: the length does not change at all
    assert np.all(length["plain SGD"] == length["plain SGD"][:, :1])


def test_digits_dropout_curves():
    """Page: on 300 digits, dropout (p = 0.5) ends with a higher training loss, and a lower
    validation loss and higher validation accuracy than no dropout, by more than the spread
    over 3 seeds; without dropout the training accuracy is 1.0."""
    curves = ex.digits_dropout_curves()
    plain, drop = curves[0.0], curves[0.5]

    def final(c, key):
        return c[key][:, -1].mean(), c[key][:, -1].std()

    (vp, sp), (vd, sd) = final(plain, "val_loss"), final(drop, "val_loss")
    assert vd + sd + sp < vp
    (tp, _), (td, _) = final(plain, "train_loss"), final(drop, "train_loss")
    assert td > tp
    # "... and the validation accuracy higher than without dropout, by more than the spread over seeds"
    (ap, sap), (ad, sad) = final(plain, "val_acc"), final(drop, "val_acc")
    assert ad - sad > ap + sap
    assert final(plain, "train_acc")[0] == 1.0


def test_dropout_on_training_loss_is_above_the_full_network():
    """Page: at the final weights, the p = 0.5 network's training loss with dropout on is more than
    twice its loss with dropout off (Jensen: never below it), and with dropout off it fits the
    training set as well as the network trained without dropout."""
    curves = ex.digits_dropout_curves()
    plain, drop = curves[0.0], curves[0.5]
    # p = 0: no dropout, both measurements are the same network
    assert np.allclose(plain["final_train_loss_masked"], plain["final_train_loss_eval"])
    assert np.all(drop["final_train_loss_masked"] > drop["final_train_loss_eval"])
    assert drop["final_train_loss_masked"].mean() > 2 * drop["final_train_loss_eval"].mean()
    assert drop["final_train_loss_eval"].mean() < plain["final_train_loss_eval"].mean() + 0.005
    # the epoch-averaged dropout-on loss (the figure's last point) is above the eval-mode one too
    assert drop["train_loss"][:, -1].mean() > drop["final_train_loss_eval"].mean()


# --- How small is the relative error of a correct gradient? ----------------------------------

@pytest.fixture(scope="module")
def survey():
    return ex.gradcheck_survey(seeds=range(30))


def test_gradcheck_survey_seed0_and_median(survey):
    """Page: at the notebook's seed the largest error is about 2e-9; the median over 30 seeds
    is about 1e-8."""
    w = survey["worst"]
    assert 1e-9 < w[0] < 5e-9
    assert 3e-9 < np.median(w) < 3e-8


def test_gradcheck_survey_exceedances(survey):
    """Page: 4 of the 30 checks exceed 1e-7 and 3 exceed 1e-6, each time at an entry smaller than
    1e-4 whose absolute error is a few times 1e-11; no ReLU input within h of its kink."""
    w = survey["worst"]
    assert np.sum(w > 1e-7) == 4
    assert np.sum(w > 1e-6) == 3
    big = w > 1e-7
    assert survey["worst_grad"][big].max() < 1e-4
    assert survey["worst_absdiff"][big].max() < 1e-10
    assert survey["min_abs_z"].min() > 1e-5


def test_gradcheck_survey_entries(survey):
    """Page/figure: 330 of the 2760 entries are exactly zero in both estimates; every absolute
    error is at the rounding level (below 1e-9); the relative error of large entries is tiny, so the
    errors above 1e-7 come from small entries."""
    g, e, d = survey["entry_grad"], survey["entry_err"], survey["entry_absdiff"]
    assert g.size == 2760 and np.sum(g == 0) == 330
    assert np.all(e[g == 0] == 0)          # exact zeros in both: the floor gives 0, not 0/0
    assert d.max() < 1e-9
    assert e[g > 1e-4].max() < 1e-7
    assert np.all(g[e > 1e-7] < 1e-4)


# --- Zero gradients in a minibatch -----------------------------------------------------------

@pytest.fixture(scope="module")
def zero_units():
    return ex.zero_gradient_units(batch_sizes=(1, 2, 4, 8, 32), p=0.5, n_draws=100, seed=0)


def test_dropped_in_every_example_matches_p_to_the_B(zero_units):
    """Page: a unit is dropped in every example about as often as p^B predicts for small batches
    (within 4 binomial standard errors), and not once in 25 600 pairs at B = 32."""
    for B, r in zero_units.items():
        q = 0.5 ** B
        if B <= 8:
            assert abs(r["dropped_all"] - q) < 4 * np.sqrt(q * (1 - q) / r["n"]) + 1e-12
    assert zero_units[32]["dropped_all"] == 0.0
    assert zero_units[32]["n"] == 25_600


def test_zero_gradient_is_dropped_or_inactive_everywhere(zero_units):
    """Page: the fraction with a zero gradient equals, in every row, the fraction dropped-or-inactive
    in every example; at B = 32 about 15% get a zero gradient, about 11% being inactive on every
    digit of the minibatch, a few more reached only by examples that drop them."""
    for r in zero_units.values():
        assert r["zero_grad"] == r["silent_all"]
        assert r["silent_all"] >= max(r["dropped_all"], r["inactive_all"])
    r32 = zero_units[32]
    assert 0.12 < r32["zero_grad"] < 0.18
    assert 0.08 < r32["inactive_all"] < 0.14
    assert 0.01 < r32["zero_grad"] - r32["inactive_all"] < 0.08


def test_minibatch_gradient_is_sum_over_reached_examples_divided_by_B():
    """Page: the batch gradient is the sum over the examples that reached the unit divided by B (to
    rounding), not their mean; an example that dropped the unit contributes exactly zero."""
    dec = ex.minibatch_gradient_decomposition(B=32, p=0.5, seed=0)
    assert dec["err_sum_over_B"] < 1e-12
    assert dec["err_ratio"] < 1e-12
    assert dec["max_dropped_example_grad"] == 0.0
    # the claim is not trivial: most units are reached by only part of the batch
    assert np.median(dec["n_reach"]) < 32 and dec["n_reach"].min() < 16


def test_p_to_the_N_numbers():
    """Page: p^N is 2e-10 for p = 0.5, N = 32 and 5e-20 for N = 64 (arithmetic, kept honest)."""
    assert f"{0.5 ** 32:.0e}" == "2e-10"
    assert f"{0.5 ** 64:.0e}" == "5e-20"


# --- Two hidden layers and input dropout --------------------------------------------------------

@pytest.fixture(scope="module")
def gc2():
    return ex.two_layer_gradient_check(seed=0, p_in=0.2, p_hidden=0.5, h=1e-5)


def test_two_layer_check_fixed_masks(gc2):
    """Page: with the masks fixed every parameter passes 1e-6 except W3, whose largest error, about
    2e-6, sits at an entry of size 3e-6 with an absolute error of 1e-11 (rounding)."""
    fixed = gc2["fixed"]
    assert all(err < 1e-6 for k, (err, _, _) in fixed.items() if k != "W3")
    err, size, absdiff = fixed["W3"]
    assert 1e-6 < err < 4e-6
    assert 1e-6 < size < 6e-6
    assert absdiff < 3e-11
    assert all(d < 1e-10 for _, _, d in fixed.values())
    assert gc2["min_abs_z"] > 1e-5    # no kink within h


def test_two_layer_check_fresh_masks(gc2):
    """Page: with new masks at every evaluation the relative errors are about 1 and the median
    estimate is about a million times the median gradient."""
    assert all(0.99 < e <= 1.0 for e in gc2["fresh"].values())
    assert gc2["fresh_median"] > 0.99
    assert 3e5 < gc2["fresh_scale"] < 3e6


def test_two_layer_derivation(gc2):
    """Page: dL/dW1 with the dropped input matches autograd exactly; with the undropped x the typical
    entry is off by 1/9 = p_in / (2 - p_in) and some entries completely; each layer's own mask is
    exact, the swapped masks get about half the entries wrong (2p(1-p) = 0.5)."""
    assert gc2["w1_dropped"] < 1e-14
    assert abs(gc2["w1_clean_median"] - 0.2 / (2 - 0.2)) < 1e-9
    assert gc2["w1_clean"] > 0.99
    assert gc2["mask_own"] < 1e-14
    assert abs(gc2["mask_swapped_frac"] - 0.5) < 0.1
    assert gc2["mask_swapped"] > 0.99


@pytest.fixture(scope="module")
def depth():
    return ex.depth_experiment(seeds=(0, 1, 2))


def _m(depth, cfg, key):
    return depth[cfg][key].mean(), depth[cfg][key].std()


def test_depth_all_fit_training_set(depth):
    """Page: all four networks fit the 300 training digits (training accuracy at least 0.989)."""
    assert all(round(r["train_acc"].mean(), 3) >= 0.989 for r in depth.values())


def test_depth_hidden_dropout(depth):
    """Page: hidden dropout leaves the test accuracy where it was (0.953 against 0.949, within the
    spread) and lowers the test loss (0.145 against 0.171, by more than the spread); the loss gap
    shrinks, the accuracy gap does not move (within the spread)."""
    (a0, s0), (a1, s1) = _m(depth, (0.0, 0.0), "test_acc"), _m(depth, (0.0, 0.5), "test_acc")
    assert abs(a1 - a0) < s0 + s1
    assert round(a1, 3) == 0.953 and round(a0, 3) == 0.949
    (l0, t0), (l1, t1) = _m(depth, (0.0, 0.0), "test_loss"), _m(depth, (0.0, 0.5), "test_loss")
    assert l1 + t1 + t0 < l0
    assert round(l1, 3) == 0.145 and round(l0, 3) == 0.171
    assert depth[(0.0, 0.5)]["gap_loss"].mean() < depth[(0.0, 0.0)]["gap_loss"].mean()
    g0, g1 = depth[(0.0, 0.0)]["gap_acc"], depth[(0.0, 0.5)]["gap_acc"]
    assert abs(g1.mean() - g0.mean()) < g0.std() + g1.std()


def test_depth_input_dropout_hurts(depth):
    """Page: input dropout at p_in = 0.2 lowers the test accuracy by about two points, alone (0.926
    against 0.949) and with hidden dropout (0.933 against 0.953), by more than the spread, and widens
    the accuracy gap."""
    for with_in, without in (((0.2, 0.0), (0.0, 0.0)), ((0.2, 0.5), (0.0, 0.5))):
        (a_in, s_in), (a_out, s_out) = _m(depth, with_in, "test_acc"), _m(depth, without, "test_acc")
        assert a_in + s_in + s_out < a_out
        assert 0.01 < a_out - a_in < 0.035
        assert depth[with_in]["gap_acc"].mean() > depth[without]["gap_acc"].mean()
    assert round(depth[(0.2, 0.0)]["test_acc"].mean(), 3) == 0.926
    assert round(depth[(0.2, 0.5)]["test_acc"].mean(), 3) == 0.933


# --- The schematic --------------------------------------------------------------------------

def test_dropout_cache_graph_is_a_figure():
    """The schematic of the cached mask renders, and shows the cache, both passes and the wrong way."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fig = schematic.dropout_cache_graph()
    try:
        assert isinstance(fig, Figure)
        texts = " ".join(t.get_text() for t in fig.axes[0].texts)
        for word in ("cache", "forward pass", "backward pass", "fresh draw", "2p(1-p)"):
            assert word in texts, word
    finally:
        plt.close(fig)


def test_depth_validation_set(depth):
    """Page: the validation set agrees on accuracy, with smaller differences (one point or less), but
    not on loss: there the networks with input dropout have the lowest loss, on the test set a
    higher one than without it."""
    def last(cfg, key):
        return depth[cfg][key][:, -1].mean()

    for with_in, without in (((0.2, 0.0), (0.0, 0.0)), ((0.2, 0.5), (0.0, 0.5))):
        assert 0.003 < last(without, "val_acc") - last(with_in, "val_acc") < 0.015
        assert last(with_in, "val_loss") < last(without, "val_loss")
        assert depth[with_in]["test_loss"].mean() > depth[without]["test_loss"].mean()
    lowest = min(depth, key=lambda c: last(c, "val_loss"))
    assert lowest[0] == 0.2 and sorted(depth, key=lambda c: last(c, "val_loss"))[1][0] == 0.2
