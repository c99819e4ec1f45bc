"""Real data sets for the studies, loaded from packages (nothing is downloaded)."""

from __future__ import annotations

import numpy as np

__all__ = ["DATASETS", "load_binary_dataset"]

DATASETS = ("breast_cancer", "digits")


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
