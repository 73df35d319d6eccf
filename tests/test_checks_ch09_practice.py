"""The numbers and designed inputs chapter 09's checks rely on
(autograder/checks/ch09_practice.py, dropout_lab/probes/ch09_practice.py).

max_norm_'s weights must separate rows from columns and long rows from short ones,
dropout_ridge_solution's problems every named mistake from the solution, and
mc_dropout_predict's networks must make BatchNorm's training mode and 0 * log(0)
observable; the one statistical check ("the passes differ") must always be made,
with its stated bound. These tests hold the probes to that on many seeds.
"""
import numpy as np
import pytest
import torch

from autograder.checks import ch09_practice as checks
from autograder.checks.base import close
from autograder.checks.stats import ALPHA
from dropout_lab.probes import ch09_practice as probes

SEEDS = range(40)


def _nets(seed):
    rng = np.random.default_rng(seed)
    return {name: probes._mc_net_values(rng, *spec) for name, spec in probes.MC_NETS.items()}


def test_max_norm_rows_are_clearly_long_or_short_and_columns_differ():
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        for shape in list(probes.MN_SHAPES.values()) + [(8, 6), (6, 5)]:
            c = float(rng.uniform(1.5, 4.0))
            kinds = probes._kinds(rng, shape[0])
            W = probes._rows(rng, shape, c, kinds)
            ratio = np.linalg.norm(W, axis=1) / c
            assert np.all((ratio <= probes.MN_SHORT[1] + 1e-9) | (ratio >= probes.MN_LONG[0] - 1e-9))
            assert kinds.count("long") >= 2 and kinds.count("short") >= 2
            want = checks._projection(W, c)
            for value, why in checks._mn_candidates(W, c):
                assert not close(value, want, rtol=1e-5, atol=1e-6 * c), why


def test_every_named_ridge_mistake_is_far_from_the_solution():
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        for n, d, p in probes.RIDGE_CASES:
            X, y = probes._regression(rng, n, d)
            want = checks._ridge(X, y, p)
            for value, why in checks._ridge_candidates(X, y, p):
                assert not close(value, want, rtol=1e-6, atol=1e-9), why
        n, d, p = probes.RIDGE_WIDE
        X, y = probes._regression(rng, n, d)
        assert np.linalg.matrix_rank(X.T @ X) < d
        assert np.all(np.isfinite(checks._ridge(X, y, p)))


def test_the_same_mask_check_is_always_made_with_its_stated_bound():
    name, n_samples, _ = probes.MC_CALLS["plain"]
    for seed in SEEDS:
        net = _nets(seed)[name]
        p = float(net["p"])
        active = int(np.sum(net["x"].astype(np.float64) @ net["W1"].T + net["b1"] > 0))
        assert active >= 9 and ((1 - p) ** n_samples + p ** n_samples) ** active < ALPHA
    # the per-unit probability that n independent masks agree: (1-p)^n + p^n, by enumeration
    p, n = 0.3, 3
    agree = sum((1 - p) ** n if bits == (1,) * n else p ** n if bits == (0,) * n else 0.0
                for bits in np.ndindex(*(2,) * n))
    assert agree == pytest.approx((1 - p) ** n + p ** n)


def test_batchnorm_in_training_mode_is_always_visible():
    """Batch statistics give dropout inputs far from the running statistics' (beyond the
    checks' tolerance), for the batch of one call and for the batch of all passes at once."""
    for seed in SEEDS:
        net = _nets(seed)["batchnorm"]
        z = net["x"].astype(np.float64) @ net["W1"].T + net["b1"]
        pre_eval = np.maximum(checks._bn(z, net, False), 0.0)
        for batch in (z, np.tile(z, (5, 1))):
            pre_train = np.maximum(checks._bn(batch, net, True), 0.0)[:len(z)]
            assert not checks._near(pre_train, pre_eval)
            assert np.abs(pre_train - pre_eval).max() > 0.1


def test_the_confident_network_underflows_to_exact_zeros():
    """Some class gets probability exactly 0 in every pass, in float32 and in float64, so
    -sum(p * log p) without care is NaN."""
    for seed in range(10):
        values = _nets(seed)["confident"]
        net = probes._build_net(values, False, False)
        net.train()
        x = torch.as_tensor(values["x"])
        for dtype in (torch.float32, torch.float64):
            with torch.no_grad():
                probs = torch.softmax(net.to(dtype)(x.to(dtype)), dim=-1)
            assert bool((probs == 0).any(dim=-1).all())
            assert bool(torch.isnan(-(probs * torch.log(probs)).sum(-1)).all())


def test_the_probe_restores_torch_state():
    from autograder.reference.ch09_practice import mc_dropout_predict
    from dropout_lab.recorder import run_probe

    torch.manual_seed(123)
    threads = torch.get_num_threads()
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_probe("mc_dropout_predict", mc_dropout_predict, 5)
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads


def test_public_modules_hold_no_drop_in_solution():
    """Students can import the page's experiments, its schematic and the probes: none of them may
    define a graded name or a function with a graded function's signature."""
    import inspect

    from dropout_lab.experiments import ch09_practice as experiments
    from dropout_lab.schematics import ch09_practice as schematic

    signatures = (["weight", "max_norm"], ["X", "y", "p"], ["model", "x", "n_samples"])
    for module in (experiments, schematic, probes):
        for name in ("max_norm_", "dropout_ridge_solution", "mc_dropout_predict"):
            assert not hasattr(module, name), f"{module.__name__} defines {name}"
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            assert list(inspect.signature(fn).parameters)[:3] not in signatures, (module.__name__, name)
