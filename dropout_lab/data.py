"""Data sets, all offline.

The default is scikit-learn's bundled 8x8 digits (1797 images, 64 features,
10 classes) with a fixed, stratified train/validation/test split. Real MNIST
is read from local IDX files when a user points at them; nothing is downloaded.
"""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Sizes of the fixed digits split (train, validation, test); they sum to 1797.
DIGITS_SPLIT = (1000, 397, 400)
_SPLIT_SEED = 20140601  # fixed forever: changing it changes every figure


@dataclass(frozen=True)
class Split:
    """Arrays of a train/validation/test split.

    ``X_*`` are float64 of shape (N, D) scaled to [0, 1]; ``y_*`` are int64 (N,)
    class labels in ``range(n_classes)``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def subset(self, n_train: int, seed: int = 0) -> "Split":
        """The same split with only ``n_train`` training samples (drawn without replacement)."""
        if not 1 <= n_train <= len(self.y_train):
            raise ValueError(f"n_train must be in [1, {len(self.y_train)}], got {n_train}")
        idx = np.random.default_rng(seed).permutation(len(self.y_train))[:n_train]
        return Split(self.X_train[idx], self.y_train[idx], self.X_val, self.y_val,
                     self.X_test, self.y_test, self.n_classes)


def load_digits_split() -> Split:
    """scikit-learn's 8x8 digits with the course's fixed stratified split.

    Returns a :class:`Split` with 1000 train, 397 validation and 400 test
    images; pixels are divided by 16 so features lie in [0, 1].
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    n_train, n_val, n_test = DIGITS_SPLIT
    X_train, X_rest, y_train, y_rest = train_test_split(
        X, y, train_size=n_train, stratify=y, random_state=_SPLIT_SEED)
    X_val, X_test, y_val, y_test = train_test_split(
        X_rest, y_rest, train_size=n_val, test_size=n_test, stratify=y_rest, random_state=_SPLIT_SEED)
    return Split(X_train, y_train, X_val, y_val, X_test, y_test, n_classes=10)


# --- MNIST from local IDX files -------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into an array.

    The IDX format: two zero bytes, a type code, the number of dimensions,
    then one big-endian uint32 per dimension, then the data.
    Raises ValueError with the file name when the header or size is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path.name}: not an IDX file (bad magic number)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path.name}: unknown IDX data type 0x{type_code:02x}")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise ValueError(f"{path.name}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header_end])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise ValueError(f"{path.name}: expected {expected} data bytes for shape {shape}, "
                         f"found {len(raw) - header_end}")
    return np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"{stem}[.gz] not found in {directory}")


def load_mnist(directory, n_val: int = 10000) -> Split:
    """Real MNIST from the four standard IDX files in ``directory``.

    Expects ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally
    ``.gz``). Images are flattened to (N, 784) float64 in [0, 1]; the last
    ``n_val`` training images become the validation set.
    """
    directory = Path(directory)
    X_train = read_idx(_find(directory, "train-images-idx3-ubyte"))
    y_train = read_idx(_find(directory, "train-labels-idx1-ubyte"))
    X_test = read_idx(_find(directory, "t10k-images-idx3-ubyte"))
    y_test = read_idx(_find(directory, "t10k-labels-idx1-ubyte"))
    if X_train.ndim != 3 or y_train.ndim != 1 or len(X_train) != len(y_train):
        raise ValueError("training images must be (N, H, W) and labels (N,) of the same length")
    if X_test.ndim != 3 or y_test.ndim != 1 or len(X_test) != len(y_test):
        raise ValueError("test images must be (N, H, W) and labels (N,) of the same length")
    if not 0 <= n_val < len(y_train):
        raise ValueError(f"n_val must be in [0, {len(y_train)}), got {n_val}")

    def flat(images):
        return images.reshape(len(images), -1).astype(np.float64) / 255.0

    cut = len(y_train) - n_val
    return Split(flat(X_train[:cut]), y_train[:cut].astype(np.int64),
                 flat(X_train[cut:]), y_train[cut:].astype(np.int64),
                 flat(X_test), y_test.astype(np.int64), n_classes=10)
