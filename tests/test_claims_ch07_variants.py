"""Every claim chapter 07's prose page makes about an experiment or a number, asserted with the
same experiment functions (dropout_lab.experiments.ch07_variants) and the same seeds and
arguments the page uses. Timings are never asserted as numbers: they are measured on a shared
machine. Only orderings that follow from how many random numbers a variant draws, with wide
margins, are asserted."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import ndtr

from dropout_lab.experiments import ch07_variants as ex
from dropout_lab.schematics import ch07_variants as schematic

GRADED = ("dropconnect_linear", "gaussian_dropout", "spatial_dropout", "dropblock_gamma", "dropblock",
          "drop_path", "cutout", "multi_sample_dropout_logits")


# --------------------------------------------------------------------------------------
# Fixtures: the page's calls
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pm():
    return ex.photo_masks(p=0.25, block_size=11, cutout_size=48, p_path=0.5, n_batch=8, seed=0)


@pytest.fixture(scope="module")
def fmm():
    return ex.feature_map_masks(p=0.25, block_size=7, seed=0)


@pytest.fixture(scope="module")
def dc():
    return ex.dropconnect_inference(seeds=(0, 1, 2), p=0.5, hidden=128, epochs=30, n_masks=400)


@pytest.fixture(scope="module")
def alpha():
    return ex.alpha_dropout_check(p=0.1, n=1_000_000, seed=0)


@pytest.fixture(scope="module")
def sd():
    return ex.selu_depth(depth=32, width=256, n=512, p=0.1, seeds=(0, 1, 2))


@pytest.fixture(scope="module")
def cnn():
    return ex.train_cnn_variants(seeds=(0, 1, 2))


@pytest.fixture(scope="module")
def neighbours(cnn):
    return {
        "pixels": ex.neighbour_statistics(ex.photo().mean(axis=2)[None, None], max_offset=6),
        "features": ex.neighbour_statistics(ex.photo_features().numpy(), max_offset=6),
        "digits": [ex.neighbour_statistics(ex.cnn_feature_maps(m), max_offset=6) for m in cnn["none"]["models"]],
    }


@pytest.fixture(scope="module")
def dr():
    return ex.dropblock_rates(ps=(0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4), block_sizes=(3, 5, 7), size=16,
                              n_maps=2000, seed=0)


@pytest.fixture(scope="module")
def dp():
    return ex.drop_path_experiment(n_blocks=12, p_last=0.5, width=128, batch=64, n_draws=200, repeats=9, seed=0)


@pytest.fixture(scope="module")
def ms():
    return ex.multi_sample_experiment(ks=(1, 2, 4, 8, 16), p=0.5, width=256, batch=64, n_draws=60, repeats=7,
                                      seed=0)


@pytest.fixture(scope="module")
def fc():
    return ex.forward_costs(repeats=7, inner=10, seed=0)


# --------------------------------------------------------------------------------------
# The module solves no exercise
# --------------------------------------------------------------------------------------

def test_experiment_module_defines_no_graded_function():
    """The experiments must not hand students a drop-in: no attribute with a graded name."""
    for name in GRADED:
        assert not hasattr(ex, name), name
        assert not hasattr(ex, "_" + name), name


def test_schematic_has_six_units():
    import matplotlib.pyplot as plt

    fig = schematic.draw_units()
    assert len(fig.axes) == 6 and len(schematic.PANELS) == 6 == len(schematic.NOISE)
    plt.close(fig)


# --------------------------------------------------------------------------------------
# The photograph and the feature maps
# --------------------------------------------------------------------------------------

def test_photo_sizes():
    """Page: the photograph shrunk four times to 106 x 160; the conv layer's maps are 100 x 154."""
    assert ex.photo().shape == (106, 160, 3)
    assert ex.photo_features().shape == (1, 8, 100, 154)


def test_photo_masks_numbers(pm):
    """Page: element dropout 25.1% zero; DropBlock 25.1% with gamma about 0.0024 (one seed per ~400
    positions, each wiping out 121); Cutout exactly one 48 x 48 square (13.6%); 4.2% of Gaussian
    factors negative = Phi(-sqrt 3); DropPath dropped 3 of 8 copies."""
    d = pm["dropped"]
    assert abs(d["element"] - 0.251) < 0.0006
    assert abs(d["dropblock"] - 0.251) < 0.0006
    assert abs(pm["gamma"] - 0.0024) < 0.00005 and 380 < 1 / pm["gamma"] < 430
    assert d["cutout"] == pytest.approx(48 * 48 / (106 * 160)) == pytest.approx(pm["cutout_max_fraction"])
    assert abs(d["cutout"] - 0.136) < 0.0005
    assert abs(d["gaussian"] - 0.042) < 0.0006
    assert abs(ndtr(-math.sqrt(3)) - 0.042) < 0.0005
    assert pm["paths_dropped"] == 3
    # every DropPath copy is kept or dropped as a whole
    per_copy = (pm["droppath"] == 0).reshape(8, -1).mean(axis=1)
    assert set(np.round(per_copy, 6)) <= {0.0, 1.0}


def test_feature_map_masks_numbers(fmm):
    """Page: DropConnect changes the maps by 2.7 times their RMS; SpatialDropout dropped 3 of 8 maps;
    the edge filters sum to zero (so a flat patch gives no response)."""
    assert 2.65 < fmm["dropconnect_change"] < 2.75
    assert fmm["maps_dropped"] == 3
    w = ex._conv_layer()
    assert w.shape == (8, 1, 7, 7)
    assert float(w.sum(dim=(1, 2, 3)).abs().max()) < 1e-12


# --------------------------------------------------------------------------------------
# DropConnect
# --------------------------------------------------------------------------------------

def test_dropconnect_moment_matching_within_mc_error(dc):
    """Page: moment matching differs from the MC average by 0.034 to 0.039, the MC average's own
    sampling error is 0.034 to 0.038: they cannot be told apart; weight scaling is off by 0.21 to
    0.24 (mean 0.22), about six times more."""
    mm, ws, noise = dc["hidden_err"]["moment matching"], dc["hidden_err"]["weight scaling"], dc["mc_self_err"]
    assert np.all((mm > 0.0335) & (mm < 0.0395))
    assert np.all((noise > 0.0335) & (noise < 0.0385))
    assert np.all(mm < 1.2 * noise)
    assert np.all((ws > 0.205) & (ws < 0.245)) and abs(ws.mean() - 0.22) < 0.005
    assert 5.0 < ws.mean() / mm.mean() < 7.0


def test_dropconnect_accuracies_agree(dc):
    """Page: the test accuracies of the three predictions differ by at most 0.005 (two digits of 400)."""
    acc = np.array([dc["acc"][m] for m in ("mc", "weight scaling", "moment matching")])
    assert (acc.max(axis=0) - acc.min(axis=0)).max() <= 0.005 + 1e-9


def test_dropconnect_moments_formula():
    """Page: the pre-activation of DropConnect has mean Wv + b and variance p/(1-p) sum W^2 v^2
    (checked by simulation with independent masks), and input dropout gives the same variance per
    output but a non-zero covariance between outputs, DropConnect none."""
    g = torch.Generator().manual_seed(5)
    W = torch.randn(3, 6, generator=g, dtype=torch.float64)
    v = torch.randn(6, generator=g, dtype=torch.float64)
    b = torch.randn(3, generator=g, dtype=torch.float64)
    p, n = 0.3, 200_000
    M = (torch.rand(n, 3, 6, generator=g, dtype=torch.float64) >= p).double() / (1 - p)
    u = torch.einsum("nji,i->nj", W * M, v) + b
    m = (torch.rand(n, 6, generator=g, dtype=torch.float64) >= p).double() / (1 - p)
    ui = (v * m) @ W.T + b
    var = p / (1 - p) * (W**2) @ (v**2)
    for samples in (u, ui):
        assert torch.allclose(samples.mean(0), W @ v + b, atol=0.02 * float(var.sqrt().max()))
        assert torch.allclose(samples.var(0), var, rtol=0.02)
    cov_in = p / (1 - p) * float((W[0] * W[1] * v**2).sum())
    emp_dc = float(torch.cov(u[:, :2].T)[0, 1])
    emp_in = float(torch.cov(ui[:, :2].T)[0, 1])
    assert abs(emp_dc) < 0.02 * float(var[:2].max())
    assert abs(emp_in - cov_in) < 0.02 * float(var[:2].max())


# --------------------------------------------------------------------------------------
# Alpha dropout
# --------------------------------------------------------------------------------------

def test_alpha_constants_are_torch_and_selu():
    """Page: torch hard-codes lambda * alpha = 1.7580993408473766; at p = 0.1, a = 0.9213, b = 0.1620,
    a dropped unit ends at -1.4577."""
    assert abs(ex.SELU_LAMBDA * ex.SELU_ALPHA - ex.TORCH_ALPHA_PRIME) < 1e-12
    x = torch.tensor([-50.0], dtype=torch.float64)
    assert abs(float(F.selu(x)) + ex.TORCH_ALPHA_PRIME) < 1e-12       # SELU saturates at -lambda alpha
    c = ex.alpha_constants(0.1)
    assert (round(c["a"], 4), round(c["b"], 4), round(c["dropped_value"], 4)) == (0.9213, 0.1620, -1.4577)


def test_alpha_dropout_matches_formula(alpha):
    """Page: every output of F.alpha_dropout equals a(mx + (1-m)alpha') + b up to rounding; mean
    0.001 and variance 0.999; inverted dropout gives variance 1/(1-p); no affine: p alpha' and
    (1-p)(1 + p alpha'^2)."""
    assert alpha["max_abs_err"] < 1e-12
    assert abs(alpha["dropped_fraction"] - 0.1) < 4 * math.sqrt(0.09 / 1e6)
    assert round(alpha["mean"], 3) == 0.001 and round(alpha["var"], 3) == 0.999
    assert abs(alpha["dropout_var"] - 1 / 0.9) < 0.005 and abs(alpha["dropout_mean"]) < 0.005
    ap = -ex.TORCH_ALPHA_PRIME
    assert abs(alpha["no_affine_mean"] - 0.1 * ap) < 0.005
    assert abs(alpha["no_affine_var"] - 0.9 * (1 + 0.1 * ap**2)) < 0.01


@pytest.mark.parametrize("p", [0.05, 0.1, 0.3])
def test_alpha_constants_against_nn_alphadropout(p):
    """Page: the derived a, b are what torch.nn.AlphaDropout computes (module, training mode), and
    the module is the identity in eval mode."""
    c = ex.alpha_constants(p)
    g = torch.Generator().manual_seed(123)
    x = torch.randn(200_000, generator=g, dtype=torch.float64)
    layer = torch.nn.AlphaDropout(p)
    torch.manual_seed(7)
    y = layer(x)
    dropped = (y - c["dropped_value"]).abs() < 1e-12
    expected = torch.where(dropped, torch.full_like(x, c["dropped_value"]), c["a"] * x + c["b"])
    assert float((y - expected).abs().max()) < 1e-12
    assert abs(float(dropped.double().mean()) - p) < 5 * math.sqrt(p * (1 - p) / x.numel())
    assert abs(float(y.mean())) < 0.01 and abs(float(y.var()) - 1) < 0.02
    layer.eval()
    assert torch.equal(layer(x), x)


def test_selu_depth(sd):
    """Page: without noise and with alpha dropout the activations stay at mean 0, variance 1 (alpha
    within 0.02 at every layer); inverted dropout lifts the variance by 1/(1-p) at the first layer,
    to about 1.6 after 32 layers and still climbing, the mean drifting to about +0.05."""
    for mode in ("none", "alpha"):
        assert np.abs(sd[mode]["mean"].mean(0)).max() < 0.02
    assert np.abs(sd["none"]["var"].mean(0) - 1).max() < 0.05
    assert np.abs(sd["alpha"]["var"].mean(0) - 1).max() < 0.02
    v = sd["dropout"]["var"].mean(0)
    assert abs(v[0] - 1 / 0.9) < 0.02
    assert 1.55 < v[-1] < 1.7
    assert v[-4:].mean() > v[12:16].mean()
    assert 0.03 < sd["dropout"]["mean"].mean(0)[-1] < 0.08


# --------------------------------------------------------------------------------------
# SpatialDropout: neighbours and the Dropout2d trap
# --------------------------------------------------------------------------------------

def test_neighbour_correlations(neighbours):
    """Page: pixels 0.97 (neighbours explain 98%), photo feature maps 0.80 (92%), digits CNN about
    0.45 (about half), about 0.1 two positions away; the shuffled control about 0."""
    pix, feat, dig = neighbours["pixels"], neighbours["features"], neighbours["digits"]
    assert round(pix["corr"][0], 2) == 0.97 and round(pix["neighbour_r2"], 2) == 0.98
    assert round(feat["corr"][0], 2) == 0.80 and round(feat["neighbour_r2"], 2) == 0.92
    assert abs(feat["shuffled"]) < 0.02
    d1 = np.array([s["corr"][0] for s in dig])
    assert 0.40 < d1.mean() < 0.50 and np.all(d1 < 0.55)
    assert 0.45 < np.mean([s["neighbour_r2"] for s in dig]) < 0.6
    assert 0.05 < np.mean([s["corr"][1] for s in dig]) < 0.15
    # correlation falls with distance in the photograph's feature maps
    assert np.all(np.diff(feat["corr"]) < 0)


def test_dropout2d_on_one_image():
    """Page: dropout2d on a (C, H, W) image drops rows, not channels, with a UserWarning naming
    (N, C, L); with the batch dimension it drops channels."""
    t = ex.dropout2d_on_one_image(p=0.5, shape=(3, 6, 8), seed=0)
    assert t["rows_constant"] and not t["channels_constant"]
    assert t["batched_channels_constant"]
    assert "(N, C, L)" in t["warning"]


# --------------------------------------------------------------------------------------
# DropBlock
# --------------------------------------------------------------------------------------

def test_dropblock_realised_rate_follows_exact_expectation(dr):
    """Page: every measured point sits on the exact expectation within its sampling error; the
    exact expectation is below p everywhere; realised below p for p >= 0.1; the covered fraction
    without overlaps is p by construction."""
    for b in (3, 5, 7):
        z = (dr["realised"][b] - dr["exact"][b]) / dr["realised_se"][b]
        assert np.abs(z).max() < 4
        assert np.all(dr["exact"][b] < dr["ps"])
        assert np.all(dr["realised"][b][1:] < dr["ps"][1:])
        assert np.allclose(dr["covered"][b], dr["ps"])


def test_dropblock_rate_numbers(dr):
    """Page: at p = 0.1: 0.097, 0.093, 0.092; at p = 0.4: 0.33, 0.31, 0.30 (b = 3, 5, 7)."""
    assert [round(float(dr["realised"][b][1]), 3) for b in (3, 5, 7)] == [0.097, 0.093, 0.092]
    assert [round(float(dr["realised"][b][-1]), 2) for b in (3, 5, 7)] == [0.33, 0.31, 0.30]


def test_dropblock_wrong_gammas(dr):
    """Page: gamma = p drops 47% at p = 0.05 and 95% at p = 0.4 (b = 5); without the valid-region
    factor about half of the target."""
    assert dr["wrong_block"] == 5
    assert round(float(dr["gamma_is_p"][0]), 2) == 0.47 and round(float(dr["gamma_is_p"][-1]), 2) == 0.95
    ratio = dr["no_valid_factor"] / dr["ps"]
    assert np.all((ratio > 0.45) & (ratio < 0.6))


def test_dropblock_normalisation():
    """Page: per-map factor varies by 20%, whole-tensor factor by 0.7%."""
    norm = ex.dropblock_normalisation(p=0.2, block_size=3, shape=(32, 16, 8, 8), n_draws=200, seed=0)
    assert round(norm["whole_cv"], 3) == 0.007
    assert 0.18 < norm["per_map_cv"] < 0.22


# --------------------------------------------------------------------------------------
# DropPath
# --------------------------------------------------------------------------------------

def test_linear_decay_expected_depth():
    """Page: 110-layer ResNet, L = 54, p_L = 0.5: 40.25 active blocks expected; L = 12: 8.75."""
    assert float((1 - ex.linear_decay(54, 0.5)).sum()) == pytest.approx(40.25)
    assert float((1 - ex.linear_decay(12, 0.5)).sum()) == pytest.approx(12 - 0.5 * 13 / 2) == pytest.approx(8.75)
    assert ex.linear_decay(12, 0.5)[-1] == 0.5


def test_drop_path_counts(dp):
    """Page: row mode: 8.73 blocks per example on average (theory 8.75), variance 2.12 (theory 2.12);
    batch mode computes 8.68 branches per pass, row mode all 12; batch mode skips 27% on average."""
    act = dp["active_row"]
    assert dp["expected_active"] == pytest.approx(8.75)
    assert abs(act.mean() - 8.75) < 4 * math.sqrt(dp["expected_active_var"] / act.size) + 0.01
    assert round(float(act.mean()), 2) == 8.73
    assert round(float(act.var()), 2) == 2.12 and round(dp["expected_active_var"], 2) == 2.12
    assert np.all(dp["evaluated_row"] == 12)
    assert round(float(dp["evaluated_batch"].mean()), 2) == 8.68
    assert abs(dp["evaluated_batch"].mean() - 8.75) < 4 * math.sqrt(dp["expected_active_var"] / 200)
    assert round(1 - dp["expected_active"] / 12, 2) == 0.27
    # batch mode: every example of a pass has the same depth
    assert np.all(dp["active_batch"].std(axis=1) == 0)


# --------------------------------------------------------------------------------------
# Multi-Sample Dropout
# --------------------------------------------------------------------------------------

def test_multi_sample_gradient_spread(ms):
    """Page: the spread of the head's gradient falls like 1/sqrt(K): by 4.0 from K = 1 to 16; 16
    samples make a step more than twice as slow (timing: a wide margin)."""
    sdv = ms["grad_sd"]
    assert np.all(np.diff(sdv) < 0)
    assert round(float(sdv[0] / sdv[-1]), 1) == 4.0
    slope = np.polyfit(np.log(ms["ks"]), np.log(sdv), 1)[0]
    assert abs(slope + 0.5) < 0.05
    assert ms["seconds"][-1] > 2 * ms["seconds"][0]


# --------------------------------------------------------------------------------------
# The CNN on digits
# --------------------------------------------------------------------------------------

def _final(r, key):
    a = r[key][:, -1] if r[key].ndim == 2 else r[key]
    return a.mean(), a.std()


def test_cnn_accuracies(cnn):
    """Page: test accuracy 0.951 +- 0.013 (none), 0.961 +- 0.002 (element), 0.952 +- 0.012 (spatial),
    0.952 +- 0.008 (DropBlock), 0.950 +- 0.005 (Cutout), each within the spread over seeds of none."""
    expected = {"none": (0.951, 0.013), "element": (0.961, 0.002), "spatial": (0.952, 0.012),
                "dropblock": (0.952, 0.008), "cutout": (0.950, 0.005)}
    m0, s0 = _final(cnn["none"], "test_acc")
    for v, (m, s) in expected.items():
        mv, sv = _final(cnn[v], "test_acc")
        assert abs(mv - m) < 0.0015 and abs(sv - s) < 0.0015, v
        assert abs(mv - m0) <= sv + s0, v


def test_cnn_validation_and_training(cnn):
    """Page: on validation the first three are within the spread; Cutout is lower beyond it (0.951 +-
    0.007 against 0.970 +- 0.004), has training loss 0.061 against 0.006 and training accuracy 0.985
    against 1.000; the validation curves are flat at the end."""
    m0, s0 = _final(cnn["none"], "val_acc")
    assert abs(m0 - 0.970) < 0.0015 and abs(s0 - 0.004) < 0.0015
    for v in ("element", "spatial", "dropblock"):
        mv, sv = _final(cnn[v], "val_acc")
        assert abs(mv - m0) <= sv + s0, v
    mc, sc = _final(cnn["cutout"], "val_acc")
    assert abs(mc - 0.951) < 0.0015 and abs(sc - 0.007) < 0.0015
    assert m0 - mc > sc + s0
    losses = {v: cnn[v]["train_loss"].mean() for v in cnn}
    assert max(losses, key=losses.get) == "cutout"
    assert round(losses["cutout"], 3) == 0.061 and round(losses["none"], 3) == 0.006
    assert round(cnn["cutout"]["train_acc"].mean(), 3) == 0.985 and round(cnn["none"]["train_acc"].mean(), 3) == 1.0
    for v in cnn:
        curve = cnn[v]["val_acc"].mean(0)
        assert abs(curve[-1] - curve[-4:].mean()) < 0.01, v


def test_cnn_test_losses(cnn):
    """Page: test loss 0.201 +- 0.055 without a regulariser; element dropout 0.122 +- 0.015, a difference
    just larger than the two spreads together; SpatialDropout 0.147 +- 0.034, DropBlock 0.169 +- 0.026,
    Cutout 0.161 +- 0.011 lower on average but within the spread."""
    m0, s0 = _final(cnn["none"], "test_loss")
    assert abs(m0 - 0.201) < 0.0015 and abs(s0 - 0.055) < 0.0015
    me, se = _final(cnn["element"], "test_loss")
    assert abs(me - 0.122) < 0.0015 and abs(se - 0.015) < 0.0015
    assert s0 + se < m0 - me < 1.3 * (s0 + se)
    for v, (m, s) in {"spatial": (0.147, 0.034), "dropblock": (0.169, 0.026), "cutout": (0.161, 0.011)}.items():
        mv, sv = _final(cnn[v], "test_loss")
        assert abs(mv - m) < 0.0015 and abs(sv - s) < 0.0015, v
        assert mv < m0 and m0 - mv <= sv + s0, v


# --------------------------------------------------------------------------------------
# The cost table: orderings only
# --------------------------------------------------------------------------------------

def test_cost_orderings(fc):
    """Page: one number per channel or example (SpatialDropout, DropPath) costs a small fraction of one
    number per entry; DropBlock costs more than element dropout; DropConnect with one mask per example
    costs many times one mask per call (32 times the random numbers); Multi-Sample with 8 samples costs
    more than one pass of the head."""
    s = fc["seconds"]
    assert s["spatial"] < s["element"] / 3 and s["droppath"] < s["element"] / 3
    assert s["cutout"] < s["element"] / 2
    assert s["dropblock"] > s["element"]
    assert s["dropconnect_example"] > 5 * s["dropconnect_call"]
    assert fc["dropconnect_example_mask_entries"] == 32 * fc["dropconnect_call_mask_entries"]
    assert s["multisample8"] > s["head"]
