"""Claim 2 (training): adversarial training at several input scales.

Full-batch gradient descent on W, a and b at points perturbed by fopa's PGA, on
scikit-learn data sets scaled by tau (``docs/experiments/4-adversarial-training.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._json import jsonable
from .._validate import as_int, as_positive_scalar, as_rng
from ..ascent import projected_gradient_ascent
from ..derivatives import loss as loss_values
from ..derivatives import predict
from ..network import TwoLayerNet
from ..training import parameter_gradient
from .common import StudyResult, cell_axis, claims_row, constant_settings
from .datasets import DATASETS, load_binary_dataset
from .verdicts import training_verdict

__all__ = [
    "TrainingStudy",
    "TrainingStudies",
    "adversarial_training",
    "training_curves",
    "training_study",
]


@dataclass(frozen=True)
class TrainingStudy(StudyResult):
    """Claim 2 (training): adversarial training at several input scales.

    ``robust_loss[t, e]`` and ``robust_accuracy[t, e]`` are measured on the whole
    training set at the start of epoch e (e = 0..epochs) with inputs scaled by
    ``taus[t]``; ``epochs_to_target[t]`` is the first epoch whose robust loss is at
    most ``target_fraction`` times the initial one (-1 if none).
    """

    dataset: str
    taus: tuple
    robust_loss: np.ndarray
    robust_accuracy: np.ndarray
    clean_accuracy: np.ndarray
    epochs_to_target: np.ndarray
    settings: dict


@dataclass(frozen=True)
class TrainingStudies:
    """One :class:`TrainingStudy` per data set (``runs[dataset]``)."""

    runs: dict

    def to_dict(self) -> dict:
        """``{dataset: study.to_dict()}``."""
        return {name: study.to_dict() for name, study in self.runs.items()}


def adversarial_training(
    dataset="breast_cancer", taus=(0.1, 0.3, 1.0), *, m=32, epochs=30, ratio=0.1,
    learning_rate=0.5, pga_steps=10, pga_step_factor=0.25, target_fraction=0.5,
    activation="tanh", rng=0,
) -> TrainingStudy:  # fmt: skip
    """Adversarial training of a two-layer network with the quadratic loss.

    Inputs ``tau * x`` (x standardized), radius ``eps = ratio * tau * sqrt(d)``.
    Each epoch: the inner maximization by fopa's PGA (``pga_steps`` steps of size
    ``pga_step_factor * eps`` from the origin, every training point), then one
    full-batch gradient-descent step on W, a and b at the perturbed points
    (:func:`fopa.parameter_gradient`). The same initial network is used for every
    tau.
    """
    X, y = load_binary_dataset(dataset)
    n, d = X.shape
    gen = as_rng(rng)
    net0 = TwoLayerNet.random(d, m, activation=activation, rng=gen)
    epochs = as_int("epochs", epochs, minimum=1)
    curves = [
        training_curves(
            X,
            y,
            net0,
            tau,
            epochs=epochs,
            ratio=ratio,
            learning_rate=learning_rate,
            pga_steps=pga_steps,
            pga_step_factor=pga_step_factor,
        )  # fmt: skip
        for tau in taus
    ]
    settings = dict(m=m, epochs=epochs, ratio=ratio, learning_rate=learning_rate,
                    pga_steps=pga_steps, pga_step_factor=pga_step_factor,
                    target_fraction=target_fraction, activation=activation, n=n, d=d)  # fmt: skip
    return training_study(dataset, taus, curves, settings)


def adversarial_training_all(rng=0, **params) -> TrainingStudies:
    """:func:`adversarial_training` on every data set of :data:`DATASETS`, same seed."""
    return TrainingStudies({ds: adversarial_training(ds, rng=rng, **params) for ds in DATASETS})


def training_curves(X, y, net0, tau, *, epochs, ratio, learning_rate, pga_steps,
                    pga_step_factor):  # fmt: skip
    """Adversarial training from ``net0`` on inputs ``tau * X``, ``eps = ratio tau sqrt(d)``.

    Returns a JSON-ready dict of lists of length ``epochs + 1``: ``robust_loss``,
    ``robust_accuracy`` and ``clean_accuracy`` at the start of each epoch.
    """
    tau = as_positive_scalar("tau", float(tau))
    Xs = tau * X
    eps = ratio * tau * np.sqrt(X.shape[1])
    W, a, b = net0.W.copy(), net0.a.copy(), net0.b.copy()
    losses, robust_acc, clean_acc = [], [], []
    for e in range(epochs + 1):
        net = TwoLayerNet(W, a, b, net0.activation, net0.output_scale)
        res = projected_gradient_ascent(
            net, Xs, y, eps, step_size=("relative", pga_step_factor), max_iter=pga_steps,
            tol=0.0,
        )  # fmt: skip
        P = Xs + res.delta
        losses.append(float(np.mean(loss_values(net, P, y))))
        robust_acc.append(float(np.mean(np.sign(predict(net, P)) == y)))
        clean_acc.append(float(np.mean(np.sign(predict(net, Xs)) == y)))
        if e == epochs:
            break
        grad = parameter_gradient(net, P, y)
        W = W - learning_rate * grad.W
        a = a - learning_rate * grad.a
        b = b - learning_rate * grad.b
    return dict(robust_loss=losses, robust_accuracy=robust_acc, clean_accuracy=clean_acc)


def training_study(dataset, taus, curves, settings):
    """A :class:`TrainingStudy` from one :func:`training_curves` dict per tau."""
    losses = np.array([c["robust_loss"] for c in curves])
    reached = losses <= settings["target_fraction"] * losses[:, :1]
    to_target = np.array([int(np.argmax(row)) if row.any() else -1 for row in reached])
    return TrainingStudy(
        dataset=dataset, taus=tuple(taus), robust_loss=losses,
        robust_accuracy=np.array([c["robust_accuracy"] for c in curves]),
        clean_accuracy=np.array([c["clean_accuracy"] for c in curves]),
        epochs_to_target=to_target, settings=dict(settings),
    )  # fmt: skip


def training_claims(name, studies):
    """One claims-table row per data set of a :class:`TrainingStudies`."""
    rows = []
    for ds, r in studies.runs.items():
        rows.append(claims_row(
            claim="2. smaller input scale, faster adversarial training",
            experiment=f"{name} ({ds})",
            statistic=(f"epochs to {r.settings['target_fraction']:.0%} of the initial robust "
                       f"loss: {jsonable(r.epochs_to_target)} for tau in {jsonable(r.taus)} "
                       "(-1: not reached)"),
            verdict=training_verdict(),
            n="one run per tau",
            settings=(f"quadratic loss, m={r.settings['m']}, "
                      f"lr={r.settings['learning_rate']}, "
                      f"eps = {r.settings['ratio']} tau sqrt(d)"),
        ))  # fmt: skip
    return rows


def training_figure(studies):
    """Robust training loss per epoch, one panel per data set, one line per tau."""
    from matplotlib.figure import Figure

    runs = studies.runs
    fig = Figure(figsize=(5 * len(runs), 3.6), layout="constrained")
    axes = fig.subplots(1, len(runs))
    for ax, (ds, r) in zip(np.atleast_1d(axes), runs.items(), strict=True):
        for t, tau in enumerate(r.taus):
            ax.plot(r.robust_loss[t], label=f"tau={tau}")
        ax.set(xlabel="epoch", ylabel="robust training loss", title=ds, yscale="log")
        ax.legend(fontsize=8)
    return fig


def training_studies_from_cells(seeds, rows, *, rng):
    """The :class:`TrainingStudies` of ``training`` cells that sweep scale (and dataset)."""
    if len(seeds) != 1:
        raise ValueError("the training study sweeps scale (and dataset) with one seed")
    runs = {}
    for dataset in cell_axis(rows, "dataset"):
        part = sorted((r for r in rows if r["params"]["dataset"] == dataset),
                      key=lambda r: r["params"]["scale"])  # fmt: skip
        n, d = load_binary_dataset(dataset)[0].shape
        names = ("m", "epochs", "ratio", "learning_rate", "pga_steps", "pga_step_factor",
                 "target_fraction", "activation")  # fmt: skip
        settings = constant_settings(part, names)
        runs[dataset] = training_study(
            dataset, [r["params"]["scale"] for r in part], [r["outputs"] for r in part],
            dict(settings, n=n, d=d),
        )  # fmt: skip
    return TrainingStudies(runs)
