"""Every claim chapter 05's prose page makes about an experiment, asserted with
the same experiment functions the page calls (same sizes: they are fast)."""
import numpy as np
import pytest

from dropout_lab.experiments import ch05_backprop as ex

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
    drift, grad_norm = ex.dropped_unit_drift()
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
    # both: momentum carries the weights away, then decay pulls them back
    both = drift["momentum + weight decay"].mean(axis=0)
    assert both.max() > both[-1] + 0.02


def test_digits_dropout_curves():
    """Page: on 300 digits, dropout (p = 0.5) ends with a lower validation loss and a
    higher training loss than no dropout, by more than the spread over 3 seeds."""
    curves = ex.digits_dropout_curves()
    plain, drop = curves[0.0], curves[0.5]

    def final(c, key):
        return c[key][:, -1].mean(), c[key][:, -1].std()

    (vp, sp), (vd, sd) = final(plain, "val_loss"), final(drop, "val_loss")
    assert vd + sd + sp < vp
    (tp, _), (td, _) = final(plain, "train_loss"), final(drop, "train_loss")
    assert td > tp
    assert final(drop, "val_acc")[0] > final(plain, "val_acc")[0]
    assert final(plain, "train_acc")[0] == 1.0
