"""The planted bugs of chapter 05's bug hunt are the bugs the answer key names,
and each one is visible to a central-difference gradient check."""
import numpy as np
import pytest

from autograder.reference.ch05_backprop import mlp_loss_and_grads, numerical_gradient, relative_error
from dropout_lab.nets import init_params
from dropout_lab.suspects.ch05_backprop import SUSPECTS

P_DROP = 0.5


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    params = init_params(6, 8, 4, rng)
    params["b1"] = rng.normal(scale=0.5, size=8)
    X, y = rng.normal(size=(10, 6)), rng.integers(0, 4, size=10)
    mask = rng.random((10, 8)) >= P_DROP
    return X, y, params, mask


def check(fn, problem):
    """relative error of each gradient of fn against central differences."""
    X, y, params, mask = problem
    _, grads = fn(X, y, params, mask, P_DROP)
    errors = {}
    for key in params:
        def loss_of(value, key=key):
            return fn(X, y, {**params, key: value}, mask, P_DROP)[0]
        errors[key] = relative_error(grads[key], numerical_gradient(loss_of, params[key].copy()))
    return errors, grads


@pytest.mark.parametrize("name", sorted(SUSPECTS))
def test_every_suspect_returns_the_correct_loss(name, problem):
    X, y, params, mask = problem
    assert SUSPECTS[name](X, y, params, mask, P_DROP)[0] == pytest.approx(mlp_loss_and_grads(X, y, params, mask, P_DROP)[0])


def test_the_reference_passes_the_same_check(problem):
    errors, _ = check(mlp_loss_and_grads, problem)
    assert max(errors.values()) < 1e-6


def test_suspect_a_only_the_bias_gradient_is_wrong(problem):
    errors, _ = check(SUSPECTS["A"], problem)
    assert errors["b1"] > 1e-2 and max(errors[k] for k in ("W1", "W2", "b2")) < 1e-6


def test_suspect_b_misses_the_factor_one_over_keep(problem):
    X, y, params, mask = problem
    errors, grads = check(SUSPECTS["B"], problem)
    _, true = mlp_loss_and_grads(X, y, params, mask, P_DROP)
    assert errors["W2"] < 1e-6 and errors["b2"] < 1e-6
    for key in ("W1", "b1"):
        assert errors[key] == pytest.approx(P_DROP / (2 - P_DROP), rel=1e-4)
        np.testing.assert_allclose(grads[key], (1 - P_DROP) * true[key], atol=1e-12)


def test_suspect_c_uses_another_mask_each_call(problem):
    X, y, params, mask = problem
    errors, first = check(SUSPECTS["C"], problem)
    assert errors["W1"] > 1e-2 and errors["b1"] > 1e-2 and errors["W2"] < 1e-6
    _, second = SUSPECTS["C"](X, y, params, mask, P_DROP)
    assert not np.allclose(first["W1"], second["W1"])
