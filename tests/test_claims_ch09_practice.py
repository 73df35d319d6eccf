"""Every claim chapter 09's prose page makes about an experiment, asserted with the same
experiment functions and seeds the page calls (module-scoped fixtures: each runs once)."""
import numpy as np
import pytest

from dropout_lab.experiments import ch09_practice as ex
from dropout_lab.schematics import ch09_practice as schematic


@pytest.fixture(scope="module")
def sweep():
    return ex.p_sweep()


@pytest.fixture(scope="module")
def maxnorm():
    return ex.max_norm_runs()


@pytest.fixture(scope="module")
def mc():
    return ex.mc_dropout_study()


def _mean(sw, key):
    return 100 * sw[key]["heldout_err"].mean(0)


# --- choosing p ---------------------------------------------------------------------

def test_hidden_p_curve_flat_bottom_steep_right_wall(sweep):
    """Page: no dropout about 3.2%; p in 0.2..0.6 between about 2.8% and 3.3%, best only about
    0.4 points below no dropout; 3.9% at p = 0.8 and 5.2% at p = 0.9."""
    ps, fixed = list(sweep["ps"]), _mean(sweep, "fixed")
    mid = fixed[[ps.index(p) for p in (0.2, 0.4, 0.5, 0.6)]]
    assert 2.8 < fixed[0] < 3.6
    assert mid.max() < 3.6 and mid.min() > 2.4
    assert 0.0 < fixed[0] - mid.min() < 1.0          # shallow left wall
    assert fixed[ps.index(0.8)] > mid.min() + 0.6    # right wall
    assert fixed[ps.index(0.9)] > mid.min() + 1.5
    assert 4.5 < fixed[ps.index(0.9)] < 6.0


def test_every_input_rate_is_worse_than_none(sweep):
    """Page: every input rate made the held-out error worse than no input dropout; about 3.9%
    at 0.2 and 7% at 0.5."""
    inputs = _mean(sweep, "inputs")
    assert np.all(inputs[1:] > inputs[0])
    p_ins = list(sweep["p_ins"])
    assert inputs[p_ins.index(0.5)] > inputs[0] + 2.0
    assert 3.4 < inputs[p_ins.index(0.2)] < 4.4


def test_scaled_width_removes_the_right_wall(sweep):
    """Page: with (1-p) n = 64, p = 0 (64 units) is the worst point; at p = 0.8 and 0.9 the
    error stays near the bottom (about 3%) while fixed width at 0.9 is at 5.2%."""
    ps = list(sweep["ps"])
    scaled, fixed = _mean(sweep, "scaled"), _mean(sweep, "fixed")
    assert scaled[0] == scaled.max()
    assert scaled[0] > scaled[1:].min() + 0.4
    assert scaled[1:].max() - scaled[1:].min() < 0.8
    for p in (0.8, 0.9):
        assert scaled[ps.index(p)] < 3.4
    assert fixed[ps.index(0.9)] - scaled[ps.index(0.9)] > 1.5
    assert list(sweep["widths"]) == [64, 80, 107, 128, 160, 320, 640]


# --- max-norm -----------------------------------------------------------------------

def test_no_run_diverges_to_nan(maxnorm):
    for name in ("none", "max-norm"):
        assert not maxnorm[name]["diverged"].any()


def test_max_norm_holds_norms_and_unconstrained_norms_grow(maxnorm):
    """Page: without the constraint the largest norm is about 4 at lr 0.03 and above 20 at 0.3;
    with it the norms sit at c = 3."""
    lrs = list(maxnorm["lrs"])
    assert maxnorm["max-norm"]["max_col_norm"].max() <= maxnorm["c"] + 1e-3
    final = maxnorm["none"]["max_col_norm"][:, :, -1].mean(1)
    assert 3.3 < final[lrs.index(0.03)] < 5.0
    assert final[lrs.index(0.3)] > 15


def test_max_norm_changes_little_and_rescues_nothing(maxnorm):
    """Page: at 0.01 and 0.03 (about 4.5%) the curves agree within a point; at 0.1 both near
    13-14%; at 0.3 both collapse to near chance (about 87%), with about 99% of the hidden units
    dead (about 80% at 0.1), with and without the constraint."""
    lrs = list(maxnorm["lrs"])
    none, mx = (100 * maxnorm[k]["heldout_err"].mean(0) for k in ("none", "max-norm"))
    for lr in (0.01, 0.03):
        i = lrs.index(lr)
        assert abs(none[i] - mx[i]) < 1.0
        assert 3.5 < none[i] < 5.5
    i = lrs.index(0.1)
    assert 10 < none[i] < 17 and 10 < mx[i] < 17
    i = lrs.index(0.3)
    assert none[i] > 75 and mx[i] > 75
    for k in ("none", "max-norm"):
        dead = maxnorm[k]["dead_frac"].mean(0)
        assert dead[lrs.index(0.3)] > 0.95
        assert 0.65 < dead[lrs.index(0.1)] < 0.9
        assert dead[lrs.index(0.01)] < 0.15


# --- dropout ridge -----------------------------------------------------------------

def test_expected_loss_formula_matches_monte_carlo():
    mc_mean, formula, se = ex.expected_loss_check(p=0.3)
    assert abs(mc_mean - formula) < 4 * se


def test_sgd_with_dropout_converges_to_ridge_not_ols():
    """Page: within about 0.5% of the dropout-ridge solution for every problem, 40% to 60%
    away from least squares."""
    reg = ex.dropout_regression_sgd()
    assert reg["final_ridge"].max() < 0.008
    assert 0.35 < reg["final_ols"].min() and reg["final_ols"].max() < 0.65
    # and the distance to the ridge solution falls during training
    assert np.all(reg["dist_ridge"][:, -1] < 0.1 * reg["dist_ridge"][:, 0])


def test_shrinkage_family():
    """Page: closed form within 0.08 of SGD for every coefficient and p; some coefficients
    within about 0.1 of 1 - p, some change sign; ordinary ridge with the same total strength
    shrinks small-scale features more and large-scale ones less."""
    shr = ex.ridge_shrinkage()
    assert np.abs(shr["sgd"] - shr["closed"]).max() < 0.08
    near = np.abs(shr["closed"] - (1 - shr["ps"])[:, None]).max(axis=0)
    assert (near < 0.1).sum() >= 2
    assert shr["closed"].min() < 0
    ps = list(shr["ps"])
    i = ps.index(0.5)
    assert shr["plain_ridge"][i, 0] > shr["closed"][i, 0] + 0.2           # scale 3: less shrinkage
    for j in (3, 4):                                                        # scales 1 and 0.5: more
        assert abs(shr["plain_ridge"][i, j]) < abs(shr["closed"][i, j])


def test_orthogonal_design_shrinks_by_one_minus_p():
    """Page derivation: with orthogonal columns every coefficient is (1 - p) times least squares."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(50, 4)))
    X = Q * np.array([3.0, 1.0, 0.5, 0.2])
    y = rng.normal(size=50)
    p = 0.3
    G = X.T @ X
    w = np.linalg.solve(G + p / (1 - p) * np.diag(np.diag(G)), X.T @ y)
    assert np.allclose(w, (1 - p) * np.linalg.lstsq(X, y, rcond=None)[0])


# --- MC dropout --------------------------------------------------------------------

def test_mc_accuracy_against_T(mc):
    """Page: one pass about 94.7% against 97.1% weight-scaled; about two points gained from T = 1
    to T = 10; with 50 to 100 passes within a few tenths of the weight-scaled network."""
    ts = list(mc["ts"])
    acc, scaled = 100 * mc["acc_mc"], 100 * mc["acc_scaled"]
    assert scaled.mean() - acc[:, 0].mean() > 1.5
    assert np.all(acc[:, ts.index(10)] > acc[:, 0])
    assert 1.3 < acc[:, ts.index(10)].mean() - acc[:, 0].mean() < 3.0
    for T in (50, 100):
        assert abs(acc[:, ts.index(T)].mean() - scaled.mean()) < 0.5
    assert 93.5 < acc[:, 0].mean() < 95.8 and 96.5 < scaled.mean() < 97.7


def test_entropy_flags_noise_and_shifts_but_not_rotations(mc):
    """Page: entropy on noise and shifted digits three to four times that on test digits, AUROC
    about 0.9 and 0.95; rotated digits get lower entropy than test digits, AUROC about 0.33."""
    ent = mc["entropy"]
    for name in ("noise", "shifted"):
        assert np.all(ent[name] > 2.5 * ent["test digits"])
        assert np.all(ent[name] < 5.0 * ent["test digits"])
    assert np.all(ent["rotated"] < ent["test digits"])
    assert 0.85 < mc["auroc_mc"]["noise"].mean() < 0.95
    assert 0.9 < mc["auroc_mc"]["shifted"].mean() < 0.99
    assert 0.2 < mc["auroc_mc"]["rotated"].mean() < 0.45
    assert np.all(mc["auroc_scaled"]["rotated"] < 0.5)


def test_mc_entropy_higher_and_ranking_slightly_better(mc):
    for name in mc["entropy"]:
        assert np.all(mc["entropy"][name] > mc["entropy_scaled"][name])
    for name in ("noise", "shifted"):
        gain = mc["auroc_mc"][name].mean() - mc["auroc_scaled"][name].mean()
        assert 0.0 < gain < 0.06


def test_mc_dropout_is_worse_calibrated_and_underconfident(mc):
    """Page: ECE about 2.6% weight-scaled, about 5.8% MC dropout for every network; NLL about
    0.15 against 0.115; MC dropout's points above the diagonal (underconfident)."""
    assert np.all(mc["ece_mc"] > 1.5 * mc["ece_scaled"])
    assert 0.045 < mc["ece_mc"].mean() < 0.07 and 0.018 < mc["ece_scaled"].mean() < 0.035
    assert np.all(mc["nll_mc"] > mc["nll_scaled"])
    assert 0.13 < mc["nll_mc"].mean() < 0.17 and 0.10 < mc["nll_scaled"].mean() < 0.13
    cnt = mc["bin_count_mc"]
    gap = np.nansum((mc["bin_acc_mc"] - mc["bin_conf_mc"]) * cnt) / cnt.sum()
    assert gap > 0.03     # accuracy above confidence on average: underconfident
    # MC dropout puts more predictions below 0.9 confidence than the weight-scaled network
    assert cnt[:, :-1].sum() > 1.5 * mc["bin_count_scaled"][:, :-1].sum()


def test_unseen_inputs_are_what_the_page_says():
    from dropout_lab.data import load_digits_split

    X = load_digits_split().X_test
    u = ex.unseen_inputs()
    assert u["noise"].shape == X.shape and 0 <= u["noise"].min() and u["noise"].max() <= 1
    img, rot = X[0].reshape(8, 8), u["rotated"][0].reshape(8, 8)
    assert np.allclose(rot, np.rot90(img))
    sh = u["shifted"][0].reshape(8, 8)
    assert np.allclose(sh[2:, 3:], img[:6, :5]) and np.all(sh[:2] == 0) and np.all(sh[:, :3] == 0)


def test_schematic_projection_and_figure():
    assert np.allclose(schematic.project_to_ball([3.0, 4.0], 2.5), [1.5, 2.0])
    assert np.allclose(schematic.project_to_ball([1.0, 1.0], 3.0), [1.0, 1.0])
    import matplotlib

    matplotlib.use("Agg")
    fig = schematic.draw_practice_schematic()
    assert len(fig.axes) == 2
