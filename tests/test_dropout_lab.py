"""The public helper package: data, networks, training loop, switches."""
import gzip
import struct

import numpy as np
import pytest

from dropout_lab import is_grading, scaled
from dropout_lab.data import DIGITS_SPLIT, load_digits_split, load_mnist, read_idx
from dropout_lab.nets import accuracy, cross_entropy, forward, init_params, make_mlp, softmax
from dropout_lab.training import progress, progress_enabled, train_numpy_sgd, train_torch


def test_digits_split_is_fixed_disjoint_and_stratified():
    a, b = load_digits_split(), load_digits_split()
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == DIGITS_SPLIT
    np.testing.assert_array_equal(a.X_train, b.X_train)  # same split every time
    assert a.X_train.min() >= 0 and a.X_train.max() <= 1 and a.X_train.dtype == np.float64
    for y in (a.y_train, a.y_val, a.y_test):
        counts = np.bincount(y, minlength=10) / len(y)
        assert counts.min() > 0.08 and counts.max() < 0.12  # every class about 10%


def test_digits_split_parts_are_disjoint():
    from sklearn.datasets import load_digits

    s = load_digits_split()
    total = len(s.y_train) + len(s.y_val) + len(s.y_test)
    assert total == len(load_digits().target)
    # Every original image appears exactly as often as in the full data set.
    full = sorted(r.tobytes() for r in load_digits().data.astype(np.float64) / 16)
    parts = sorted(r.tobytes() for X in (s.X_train, s.X_val, s.X_test) for r in X)
    assert full == parts


def test_subset_draws_without_replacement_and_checks_size():
    s = load_digits_split()
    small = s.subset(100, seed=3)
    assert len(small.y_train) == 100 and small.X_val is s.X_val
    with pytest.raises(ValueError, match="n_train"):
        s.subset(0)


def _write_idx(path, array, type_code, compress=False):
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


def test_read_idx_roundtrip_and_errors(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a", images, 0x08)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), images)
    floats = np.linspace(0, 1, 6).reshape(2, 3)
    _write_idx(tmp_path / "f.gz", floats, 0x0E, compress=True)
    np.testing.assert_allclose(read_idx(tmp_path / "f.gz"), floats)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(open(tmp_path / "a", "rb").read()[:-3])
    with pytest.raises(ValueError, match="expected 24 data bytes"):
        read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing")


def test_load_mnist_from_small_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8), 0x08)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8), 0x08, True)
    split = load_mnist(tmp_path, n_val=5)
    assert split.X_train.shape == (25, 784) and split.X_val.shape == (5, 784) and split.X_test.shape == (10, 784)
    assert split.X_train.max() <= 1.0 and split.y_test.dtype == np.int64
    with pytest.raises(ValueError, match="n_val"):
        load_mnist(tmp_path, n_val=30)
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        (tmp_path / "t10k-images-idx3-ubyte").unlink()
        load_mnist(tmp_path)


def test_numpy_network_follows_the_params_convention():
    rng = np.random.default_rng(0)
    params = init_params(64, 16, 10, rng)
    assert {k: v.shape for k, v in params.items()} == {"W1": (64, 16), "b1": (16,), "W2": (16, 10), "b2": (10,)}
    X = rng.normal(size=(5, 64))
    h = np.maximum(X @ params["W1"] + params["b1"], 0)
    np.testing.assert_allclose(forward(X, params), h @ params["W2"] + params["b2"])
    mask = (rng.random((5, 16)) > 0.5).astype(float)
    np.testing.assert_allclose(forward(X, params, mask, 0.5), (h * mask / 0.5) @ params["W2"] + params["b2"])
    probs = softmax(forward(X, params))
    np.testing.assert_allclose(probs.sum(1), 1.0)
    y = np.array([0, 1, 2, 3, 4])
    assert cross_entropy(forward(X, params), y) == pytest.approx(-np.log(probs[np.arange(5), y]).mean())
    assert 0.0 <= accuracy(probs, y) <= 1.0
    with pytest.raises(ValueError):
        init_params(0, 2, 2, rng)


def test_grading_switch_and_progress(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not is_grading() and scaled(40, 2) == 40
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert is_grading() and scaled(40, 2) == 2
    assert not progress_enabled()
    items = [1, 2, 3]
    assert progress(items) is items  # no tqdm wrapper when grading


def test_training_loops_learn_digits():
    from dropout_lab import seed_everything

    seed_everything(0)
    data = load_digits_split().subset(300)
    model, hist = train_torch(make_mlp(64, (32,), 10, p_hidden=0.2), data, epochs=15, lr=0.1)
    assert hist.val_acc[-1] > 0.8 and len(hist.train_loss) == 15
    assert model.training is False  # left in eval mode after the last evaluation
    rng = np.random.default_rng(0)
    params = init_params(64, 32, 10, rng)

    def loss_and_grads(Xb, yb, params, rng):  # a tiny logistic-regression-like update on b2 only
        logits = forward(Xb, params)
        p = softmax(logits)
        p[np.arange(len(yb)), yb] -= 1
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        grads["b2"] = p.mean(0)
        grads["W2"] = np.maximum(Xb @ params["W1"] + params["b1"], 0).T @ p / len(yb)
        return cross_entropy(logits, yb), grads

    _, hist = train_numpy_sgd(params, loss_and_grads, data, epochs=5, lr=0.5, rng=rng)
    assert hist.train_loss[-1] < hist.train_loss[0]


def test_make_mlp_rejects_bad_rates():
    with pytest.raises(ValueError, match="p_hidden"):
        make_mlp(4, (3,), 2, p_hidden=1.0)


def test_plots_never_hide_a_diverged_run():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dropout_lab.plotting import mean_and_band, ylim_including_data

    fig, ax = plt.subplots()
    epochs = np.arange(1, 6)
    mean_and_band(ax, epochs, [[0.9, 0.95, 0.97, 0.98, 0.98]] * 2, "fine")
    assert ylim_including_data(ax, preferred=(0.8, 1.005)) == (0.8, 1.005)  # the usual view
    line = mean_and_band(ax, epochs, [[0.5, 0.2, 0.1, 0.1, 0.1], [0.5, 0.3, np.nan, np.inf, np.nan]], "diverged")
    lo, hi = ylim_including_data(ax, preferred=(0.8, 1.005))
    assert lo < 0.1 and hi == 1.005 and ax.get_ylim() == (lo, hi)  # an accuracy of 0.10 stays in view
    assert line.get_label() == "diverged (1 of 2 runs diverged)"
    assert np.isfinite(line.get_ydata()).all()  # the finite runs are still drawn
    fig2, ax2 = plt.subplots()
    ax2.plot([1, 2], [0.5, 0.5])
    lo, hi = ylim_including_data(ax2, preferred=(0.5, 0.5), min_span=0.05)
    assert hi - lo == pytest.approx(0.05)  # a flat curve still gets a readable axis
    plt.close(fig)
    plt.close(fig2)
